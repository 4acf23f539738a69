// What the queue benchmarks share (zkit's and the peers'): flags, the numbered payload, the
// check that every message arrived (lost and duplicates counted, never assumed) and the one-line
// JSON result that bench/queues/run.sh collects.
//
// Work, the same for every system: `publishers` threads publish `messages` messages of `size`
// bytes (bytes 0-7: the message number, little-endian; the rest 'x'), each at its system's
// strongest durability setting, while `consumers` threads consume them competitively and ack them.
// The figure is messages / (time from the first publish to the moment the last distinct message
// has been handled and its ack issued).
#pragma once

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

namespace zkit::qbench {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string url;               // the server (peer programs); "" where not used
  std::uint64_t messages = 200000;
  std::size_t size = 16;         // >= 8
  int publishers = 1;
  int consumers = 4;
  int prefetch = 1000;           // per consumer: unacked messages it may hold
  int window = 1000;             // per publisher: publishes not yet confirmed
  double timeout_s = 120;        // the run fails (exit 1) when not done by then
  std::string label;             // free text copied into the JSON line
};

[[noreturn]] inline void usage_error(const char* prog, const std::string& what) {
  std::fprintf(stderr, "%s: %s (flags: --url U --messages N --size B --publishers P "
                       "--consumers C --prefetch N --window N --timeout-s S --label L)\n",
               prog, what.c_str());
  std::_Exit(2);
}

// Parses "--name value" pairs; an unknown flag or a bad number is a usage error (exit 2).
inline Args parse_args(int argc, char** argv) {
  Args a;
  const char* prog = argv[0];
  auto number = [&](const std::string& flag, const char* v) -> std::uint64_t {
    char* end = nullptr;
    errno = 0;
    const unsigned long long n = std::strtoull(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0') usage_error(prog, "bad number for " + flag + ": " + v);
    return n;
  };
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) usage_error(prog, flag + " needs a value");
    const char* v = argv[i + 1];
    if (flag == "--url") a.url = v;
    else if (flag == "--messages") a.messages = number(flag, v);
    else if (flag == "--size") a.size = number(flag, v);
    else if (flag == "--publishers") a.publishers = static_cast<int>(number(flag, v));
    else if (flag == "--consumers") a.consumers = static_cast<int>(number(flag, v));
    else if (flag == "--prefetch") a.prefetch = static_cast<int>(number(flag, v));
    else if (flag == "--window") a.window = static_cast<int>(number(flag, v));
    else if (flag == "--timeout-s") a.timeout_s = static_cast<double>(number(flag, v));
    else if (flag == "--label") a.label = v;
    else usage_error(prog, "unknown flag " + flag);
  }
  if (a.size < 8) usage_error(prog, "--size must be at least 8 (the message number)");
  if (a.messages == 0 || a.publishers < 1 || a.consumers < 1 || a.prefetch < 1 || a.window < 1) {
    usage_error(prog, "--messages, --publishers, --consumers, --prefetch and --window must be >= 1");
  }
  return a;
}

inline std::string payload(std::uint64_t n, std::size_t size) {
  std::string p(size, 'x');
  std::memcpy(p.data(), &n, 8);
  return p;
}

// Which message numbers arrived; any thread. A Tally is recorded into either with record() only
// or with record_batch() only (the two set the flags differently).
class Tally {
 public:
  explicit Tally(std::uint64_t n) : n_(n), seen_(new std::atomic<std::uint8_t>[n]) {
    for (std::uint64_t i = 0; i < n; ++i) seen_[i].store(0, std::memory_order_relaxed);
  }
  // Records one delivered payload; false for a malformed one (counted).
  bool record(const void* data, std::size_t len) {
    std::uint64_t fresh = 0;
    const bool ok = mark(data, len, fresh, false);
    add_distinct(fresh);
    return ok;
  }
  // Records every payload of one batch (a range of std::span<const std::byte>), under a lock
  // taken once per batch: the flags are then set with a plain load and store instead of one
  // atomic exchange per message, and the distinct count is raised once per batch (done_at() is
  // the end of the batch that completed the set). As exact as record(): every duplicate and
  // every malformed payload is counted.
  template <class Range>
  void record_batch(const Range& payloads) {
    std::uint64_t fresh = 0;
    {
      std::lock_guard<std::mutex> lock(batch_mu_);
      for (std::span<const std::byte> m : payloads) (void)mark(m.data(), m.size(), fresh, true);
    }
    add_distinct(fresh);
  }
  bool done() const { return done_.load(std::memory_order_acquire); }
  Clock::time_point done_at() const { return done_at_; }
  std::uint64_t distinct() const { return distinct_.load(); }
  std::uint64_t duplicates() const { return duplicates_.load(); }
  std::uint64_t malformed() const { return malformed_.load(); }
  std::uint64_t lost() const { return n_ - distinct(); }

 private:
  // Sets message k's flag; counts a new one in `fresh`, a duplicate or a malformed payload in
  // their counters. locked: under batch_mu_, the only writer of the flags.
  bool mark(const void* data, std::size_t len, std::uint64_t& fresh, bool locked) {
    std::uint64_t k = 0;
    if (len < 8) {
      malformed_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    std::memcpy(&k, data, 8);
    if (k >= n_) {
      malformed_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    const bool seen = locked ? seen_[k].load(std::memory_order_relaxed) != 0
                             : seen_[k].exchange(1, std::memory_order_relaxed) != 0;
    if (seen) {
      duplicates_.fetch_add(1, std::memory_order_relaxed);
    } else {
      if (locked) seen_[k].store(1, std::memory_order_relaxed);
      ++fresh;
    }
    return true;
  }
  void add_distinct(std::uint64_t fresh) {
    if (fresh != 0 && distinct_.fetch_add(fresh, std::memory_order_acq_rel) + fresh == n_) {
      done_at_ = Clock::now();
      done_.store(true, std::memory_order_release);
    }
  }

  std::uint64_t n_;
  std::mutex batch_mu_;
  std::unique_ptr<std::atomic<std::uint8_t>[]> seen_;
  std::atomic<std::uint64_t> distinct_{0}, duplicates_{0}, malformed_{0};
  std::atomic<bool> done_{false};
  Clock::time_point done_at_{};
};

// What a run measured, for the result line.
struct Outcome {
  double seconds = 0;
  std::uint64_t distinct = 0, lost = 0, duplicates = 0, malformed = 0;
  static Outcome of(const Tally& t, double seconds) {
    return {seconds, t.distinct(), t.lost(), t.duplicates(), t.malformed()};
  }
};

// The result line: {"system":..., "label":..., "size":..., "msgs_per_s":..., "lost":...}.
// msgs_per_s is distinct messages / seconds.
inline void print_result(const char* system, const Args& a, const Outcome& o,
                         const std::string& extra_json = "") {
  std::printf("{\"system\":\"%s\",\"label\":\"%s\",\"size\":%zu,\"messages\":%llu,"
              "\"publishers\":%d,\"consumers\":%d,\"prefetch\":%d,\"window\":%d,"
              "\"seconds\":%.4f,\"msgs_per_s\":%.1f,\"lost\":%llu,\"duplicates\":%llu,"
              "\"malformed\":%llu%s%s}\n",
              system, a.label.c_str(), a.size, static_cast<unsigned long long>(a.messages),
              a.publishers, a.consumers, a.prefetch, a.window, o.seconds,
              static_cast<double>(o.distinct) / o.seconds, static_cast<unsigned long long>(o.lost),
              static_cast<unsigned long long>(o.duplicates),
              static_cast<unsigned long long>(o.malformed), extra_json.empty() ? "" : ",",
              extra_json.c_str());
  std::fflush(stdout);
}
inline void print_result(const char* system, const Args& a, double seconds, const Tally& t,
                         const std::string& extra_json = "") {
  print_result(system, a, Outcome::of(t, seconds), extra_json);
}

}  // namespace zkit::qbench
