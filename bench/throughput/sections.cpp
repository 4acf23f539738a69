// Throughput, latency and tuning sections over the raw and batched PUSH/PULL links.
#include "sections.hpp"

#include <cstdio>

#include "links.hpp"

namespace zkit::bench {
namespace {

Json runs_json(const std::vector<Measured>& runs) {
  Json a = Json::array();
  for (const Measured& m : runs) {
    if (m.error.empty()) {
      a.push_back(m.msgs_per_s());
    } else {
      a.push_back(m.error);
    }
  }
  return a;
}

Json side_json(const Measured& med, const std::vector<Measured>& runs) {
  Json j;
  j["msgs_per_s"] = med.msgs_per_s();
  j["mb_per_s"] = med.mb_per_s();
  j["frames_per_s"] = med.seconds > 0 ? static_cast<double>(med.frames) / med.seconds : 0;
  j["msgs_per_frame"] = med.frames ? static_cast<double>(med.messages) / static_cast<double>(med.frames) : 0;
  j["spread"] = spread(runs);
  j["runs_msgs_per_s"] = runs_json(runs);
  return j;
}

bool report_errors(const char* what, const std::vector<Measured>& runs) {
  bool ok = true;
  for (const Measured& m : runs) {
    if (!m.error.empty()) {
      std::fprintf(stderr, "%s: run failed: %s\n", what, m.error.c_str());
      ok = false;
    }
  }
  return ok;
}

std::string size_name(std::size_t n) {
  return n % 1024 == 0 ? std::to_string(n / 1024) + " KiB" : std::to_string(n) + " B";
}

Json latency_json(const char* link, int rate, const Latency& l) {
  Json j;
  j["link"] = link;
  j["rate_target"] = rate > 0 ? Json(rate) : Json("saturation");
  j["achieved_msgs_per_s"] = l.rate();
  j["messages"] = l.messages;
  j["samples"] = l.us.size();
  j["p50_us"] = percentile(l.us, 0.5);
  j["p99_us"] = percentile(l.us, 0.99);
  j["p999_us"] = percentile(l.us, 0.999);
  j["max_us"] = l.us.empty() ? 0 : l.us.back();
  if (!l.batch_us.empty()) {
    j["from_created_ns"] = {{"p50_us", percentile(l.batch_us, 0.5)},
                            {"p99_us", percentile(l.batch_us, 0.99)},
                            {"p999_us", percentile(l.batch_us, 0.999)}};
  }
  if (!l.error.empty()) j["error"] = l.error;
  return j;
}

void print_latency(const char* link, int rate, const Latency& l) {
  std::string target = rate > 0 ? si(rate) + "/s" : "saturation";
  std::printf("%-8s %-12s %12s/s %9.1f %9.1f %9.1f %9.1f", link, target.c_str(),
              si(l.rate()).c_str(), percentile(l.us, 0.5), percentile(l.us, 0.99),
              percentile(l.us, 0.999), l.us.empty() ? 0.0 : l.us.back());
  if (!l.batch_us.empty()) {
    std::printf("   %9.1f", percentile(l.batch_us, 0.5));
  }
  if (!l.error.empty()) std::printf("   FAILED: %s", l.error.c_str());
  std::printf("\n");
}

}  // namespace

bool section_throughput(const Config& config, Report& report) {
  std::printf("PUSH/PULL throughput, tcp loopback: raw libzmq (1 frame per message) vs zkit batched "
              "(Batcher kAdaptive + envelope::decode, every record read)\n");
  std::printf("%-7s %14s %9s %14s %9s %10s %8s %15s\n", "size", "raw msgs/s", "raw MB/s",
              "batched msgs/s", "bat MB/s", "msgs/batch", "ratio", "spread raw/bat");
  bool ok = true;
  Json rows = Json::array();
  BatcherOptions options;  // the defaults, as the patterns use them
  for (std::size_t size : config.sizes) {
    std::vector<Measured> raw, batched;
    for (int r = 0; r < config.repeats; ++r) {  // interleaved, so drift hits both alike
      raw.push_back(throughput_raw(config, size));
      batched.push_back(throughput_batched(config, size, options));
    }
    ok &= report_errors("raw", raw);
    ok &= report_errors("batched", batched);
    Measured r = median(raw), b = median(batched);
    double ratio = r.msgs_per_s() > 0 ? b.msgs_per_s() / r.msgs_per_s() : 0;
    double per_batch = b.frames ? static_cast<double>(b.messages) / static_cast<double>(b.frames) : 0;
    std::printf("%-7s %14s %9.1f %14s %9.1f %10.0f %7.1fx %7.0f%% / %3.0f%%\n",
                size_name(size).c_str(), si(r.msgs_per_s()).c_str(), r.mb_per_s(),
                si(b.msgs_per_s()).c_str(), b.mb_per_s(), per_batch, ratio, 100 * spread(raw),
                100 * spread(batched));
    std::fflush(stdout);
    rows.push_back({{"size", size},
                    {"raw", side_json(r, raw)},
                    {"batched", side_json(b, batched)},
                    {"ratio_msgs_per_s", ratio}});
    if (size == 16) {
      report.targets.push_back({"batched/raw msgs/s at 16 B (push/pull, saturation)", ratio, true,
                                5.0, 10.0});
    }
  }
  report.json["throughput"] = rows;
  std::printf("\n");
  return ok;
}

bool section_latency(const Config& config, Report& report) {
  const std::size_t size = 16;
  std::printf("one-way latency, 16 B messages, us (stamped at send()/Batcher::add, read on receipt "
              "of the frame)\n");
  std::printf("%-8s %-12s %14s %9s %9s %9s %9s   %s\n", "link", "rate", "achieved", "p50",
              "p99", "p99.9", "max", "p50 from created_ns");
  BatcherOptions options;
  Json rows = Json::array();
  bool ok = true;
  Latency raw_low = latency_raw(config, size, config.latency_rate, config.latency_count);
  print_latency("raw", config.latency_rate, raw_low);
  Latency bat_low = latency_batched(config, size, config.latency_rate, config.latency_count, options);
  print_latency("batched", config.latency_rate, bat_low);
  Latency raw_sat = latency_raw(config, size, 0, 0);
  print_latency("raw", 0, raw_sat);
  Latency bat_sat = latency_batched(config, size, 0, 0, options);
  print_latency("batched", 0, bat_sat);
  for (const Latency* l : {&raw_low, &bat_low, &raw_sat, &bat_sat}) ok &= l->error.empty();
  rows.push_back(latency_json("raw", config.latency_rate, raw_low));
  rows.push_back(latency_json("batched", config.latency_rate, bat_low));
  rows.push_back(latency_json("raw", 0, raw_sat));
  rows.push_back(latency_json("batched", 0, bat_sat));
  report.json["latency"] = rows;
  double raw_p50 = percentile(raw_low.us, 0.5);
  if (raw_p50 > 0) {
    report.targets.push_back({"batched/raw p50 latency at " + std::to_string(config.latency_rate) +
                                  " msg/s",
                              percentile(bat_low.us, 0.5) / raw_p50, false, 1.5, 0});
  }
  std::printf("saturation latency is queueing: each sender runs as fast as its link takes messages "
              "and the high-water marks fill.\n\n");
  return ok;
}

bool section_tune(const Config& config, Report& report) {
  struct Variant {
    std::string name;
    BatcherOptions options;
  };
  std::vector<Variant> variants;
  auto add = [&](std::string name, auto&& change) {
    BatcherOptions o;
    change(o);
    variants.push_back({std::move(name), o});
  };
  add("defaults (adaptive 50us, 4096 rec, 256 KiB)", [](BatcherOptions&) {});
  for (int us : {10, 20, 100, 200, 1000}) {
    add("adaptive_interval " + std::to_string(us) + "us",
        [us](BatcherOptions& o) { o.adaptive_interval = std::chrono::microseconds(us); });
  }
  for (std::size_t n : {256u, 1024u, 16384u, 65536u}) {
    add("max_records " + std::to_string(n), [n](BatcherOptions& o) { o.max_records = n; });
  }
  for (std::size_t kb : {16u, 64u, 1024u}) {
    add("max_bytes " + std::to_string(kb) + " KiB",
        [kb](BatcherOptions& o) { o.max_bytes = kb * 1024; });
  }
  for (int us : {100, 1000}) {
    add("kLinger, linger " + std::to_string(us) + "us", [us](BatcherOptions& o) {
      o.mode = FlushMode::kLinger;
      o.linger = std::chrono::microseconds(us);
    });
  }
  std::printf("BatcherOptions variations, 16 B messages: throughput (median of %d) and p50 latency "
              "at %d msg/s (%d messages)\n",
              config.repeats, config.latency_rate, config.latency_count / 4);
  std::printf("%-46s %14s %10s %9s %9s\n", "variant", "batched msgs/s", "msgs/batch", "p50 us",
              "p99 us");
  Json rows = Json::array();
  bool ok = true;
  for (const Variant& v : variants) {
    std::vector<Measured> runs;
    for (int r = 0; r < config.repeats; ++r) runs.push_back(throughput_batched(config, 16, v.options));
    ok &= report_errors(v.name.c_str(), runs);
    Measured m = median(runs);
    Latency l = latency_batched(config, 16, config.latency_rate,
                                std::max(1, config.latency_count / 4), v.options);
    ok &= l.error.empty();
    double per_batch = m.frames ? static_cast<double>(m.messages) / static_cast<double>(m.frames) : 0;
    std::printf("%-46s %14s %10.0f %9.1f %9.1f\n", v.name.c_str(), si(m.msgs_per_s()).c_str(),
                per_batch, percentile(l.us, 0.5), percentile(l.us, 0.99));
    std::fflush(stdout);
    rows.push_back({{"variant", v.name},
                    {"msgs_per_s", m.msgs_per_s()},
                    {"msgs_per_batch", per_batch},
                    {"spread", spread(runs)},
                    {"p50_us_at_rate", percentile(l.us, 0.5)},
                    {"p99_us_at_rate", percentile(l.us, 0.99)}});
  }
  report.json["tune"] = rows;
  std::printf("\n");
  return ok;
}

void print_targets(Report& report) {
  Json rows = Json::array();
  std::printf("targets\n");
  for (const Target& t : report.targets) {
    const char* op = t.at_least ? ">=" : "<=";
    std::printf("  %-58s %7.2fx  (target %s %.2fx: %s", t.name.c_str(), t.value, op, t.goal,
                t.met() ? "met" : "NOT met");
    if (t.stretch > 0) {
      std::printf("; stretch %.0fx: %s", t.stretch,
                  (t.at_least ? t.value >= t.stretch : t.value <= t.stretch) ? "met" : "not met");
    }
    std::printf(")\n");
    Json j = {{"name", t.name}, {"value", t.value}, {"target", std::string(op) + " " + std::to_string(t.goal)},
              {"met", t.met()}};
    if (t.stretch > 0) j["stretch"] = t.stretch;
    rows.push_back(j);
  }
  report.json["targets"] = rows;
}

}  // namespace zkit::bench
