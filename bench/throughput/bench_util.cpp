// Harness and reporting helpers for the throughput benchmark (see bench_util.hpp).
#include "bench_util.hpp"

#include <sys/utsname.h>

#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>

namespace zkit::bench {

Measured median(std::vector<Measured> runs) {
  std::erase_if(runs, [](const Measured& m) { return !m.error.empty(); });
  if (runs.empty()) return {};
  std::sort(runs.begin(), runs.end(),
            [](const Measured& a, const Measured& b) { return a.msgs_per_s() < b.msgs_per_s(); });
  return runs[runs.size() / 2];
}

double spread(const std::vector<Measured>& runs) {
  std::vector<double> r;
  for (const Measured& m : runs) {
    if (m.error.empty()) r.push_back(m.msgs_per_s());
  }
  if (r.size() < 2) return 0;
  std::sort(r.begin(), r.end());
  double mid = r[r.size() / 2];
  return mid > 0 ? (r.back() - r.front()) / mid : 0;
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

std::vector<std::byte> make_payload(std::size_t n) {
  std::vector<std::byte> p(n);
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::byte>('a' + i % 26);
  return p;
}

namespace {

std::string first_line_of(const char* command) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(popen(command, "r"), pclose);
  if (!f) return "unknown";
  char buf[256] = {};
  if (!std::fgets(buf, sizeof buf, f.get())) return "unknown";
  std::string s(buf);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.empty() ? "unknown" : s;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown";
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  double one = 0, five = 0, fifteen = 0;
  in >> one >> five >> fifteen;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %.2f %.2f", one, five, fifteen);
  return buf;
}

}  // namespace

std::string utc_now_iso8601() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Json machine_description() {
  utsname u{};
  uname(&u);
  int major = 0, minor = 0, patch = 0;
  zmq_version(&major, &minor, &patch);
  std::string git = "git -C '" ZKIT_SOURCE_DIR "' rev-parse --short HEAD 2>/dev/null";
  std::string dirty = "git -C '" ZKIT_SOURCE_DIR
                      "' status --porcelain --untracked-files=no 2>/dev/null | head -1";
  std::string commit = first_line_of(git.c_str());
  if (commit != "unknown" && first_line_of(dirty.c_str()) != "unknown") commit += "-dirty";
  Json j;
  j["date"] = utc_now_iso8601();
  j["git_commit"] = commit;
  j["nproc"] = std::thread::hardware_concurrency();
  j["cpu"] = cpu_model();
  j["kernel"] = std::string(u.sysname) + " " + u.release;
  j["libzmq"] = std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
  j["compiler"] = __VERSION__;
  j["build_type"] = ZKIT_BUILD_TYPE;
  j["load_average_at_start"] = load_average();
  return j;
}

std::string si(double v) {
  char buf[32];
  if (v >= 1e9) {
    std::snprintf(buf, sizeof buf, "%.2f G", v / 1e9);
  } else if (v >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2f M", v / 1e6);
  } else if (v >= 1e3) {
    std::snprintf(buf, sizeof buf, "%.1f k", v / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f  ", v);
  }
  return buf;
}

}  // namespace zkit::bench
