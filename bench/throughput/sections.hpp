// The benchmark's sections. Each prints its table, appends its rows to the JSON report and records
// the targets it measures; it returns false when a run failed.
#pragma once

#include <string>
#include <vector>

#include "bench_util.hpp"

namespace zkit::bench {

struct Target {
  std::string name;    // "batched/raw msgs/s at 16 B"
  double value = 0;
  bool at_least = true;  // value >= goal (else value <= goal)
  double goal = 0;
  double stretch = 0;    // 0: none
  bool met() const { return at_least ? value >= goal : value <= goal; }
};

struct Report {
  Json json;
  std::vector<Target> targets;
};

bool section_throughput(const Config& config, Report& report);  // raw vs batched PUSH/PULL
bool section_latency(const Config& config, Report& report);     // paced and saturated latency
bool section_tune(const Config& config, Report& report);        // BatcherOptions variations
bool section_patterns(const Config& config, Report& report);    // typed sockets, when built
bool section_devices(const Config& config, Report& report);     // proxies and CURVE, when built
void print_targets(Report& report);                              // also adds them to the JSON

}  // namespace zkit::bench
