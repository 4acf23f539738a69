// Built instead of device_rows.cpp while the tree has no zkit::devices proxy (or no typed sockets).
#include <cstdio>

#include "sections.hpp"

namespace zkit::bench {

bool section_devices(const Config&, Report& report) {
  std::printf("proxies and CURVE: zkit::devices or zkit::patterns not in this build, rows skipped\n\n");
  report.json["devices"] = "not built: zkit::devices or zkit::patterns missing in this tree";
  return true;
}

}  // namespace zkit::bench
