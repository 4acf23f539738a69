// Built instead of patterns_rows.cpp while the tree has no typed sockets (zkit::patterns headers).
#include <cstdio>

#include "sections.hpp"

namespace zkit::bench {

bool section_patterns(const Config&, Report& report) {
  std::printf("typed sockets (Pusher/Puller, Publisher/Subscriber, Client/Server): not in this "
              "build, rows skipped\n\n");
  report.json["patterns"] = "not built: zkit::patterns has no typed sockets in this tree";
  return true;
}

}  // namespace zkit::bench
