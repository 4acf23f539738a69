// Small helpers shared by the throughput benchmark's sections: run configuration, medians and
// percentiles, the machine description, and the two-thread harness every link benchmark uses.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

namespace zkit::bench {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

// What one benchmark run measures and for how long. Every field is bounded by a flag.
struct Config {
  std::chrono::milliseconds duration{200};  // measured time per throughput run
  std::chrono::milliseconds warmup{80};     // sent before the measurement window opens
  int repeats = 3;                          // runs per row; the table shows the median
  std::vector<std::size_t> sizes{16, 64, 256, 1024};
  bool shared_context = false;  // one zmq context for both ends instead of one per end
  int latency_count = 2000;     // messages per paced latency run
  int latency_rate = 1000;      // msg/s of the low-rate latency run
  std::chrono::milliseconds saturation{500};  // length of the saturation latency run
};

// Both ends of a link: contexts (one per end, as two processes would have, unless shared).
class Contexts {
 public:
  explicit Contexts(bool shared) : shared_(shared), a_(1) {
    if (!shared_) b_.emplace(1);
  }
  zmq::context_t& sender() { return a_; }
  zmq::context_t& receiver() { return shared_ ? a_ : *b_; }

 private:
  bool shared_;
  zmq::context_t a_;
  std::optional<zmq::context_t> b_;
};

// What the receiving end saw inside the measurement window.
struct Measured {
  std::uint64_t messages = 0;   // application messages
  std::uint64_t frames = 0;     // ZeroMQ frames (batches, for batched links)
  std::uint64_t bytes = 0;      // payload bytes (sum of message lengths)
  double seconds = 0;
  std::uint64_t checksum = 0;   // first byte of every message, summed: keeps the reads alive
  std::string error;            // non-empty when the run failed (decode error, timeout)

  double msgs_per_s() const { return seconds > 0 ? static_cast<double>(messages) / seconds : 0; }
  double mb_per_s() const { return seconds > 0 ? static_cast<double>(bytes) / seconds / 1e6 : 0; }
};

// One-way latency of messages stamped with the unix clock (envelope::unix_now_ns) just before
// send()/Batcher::add(), taken by the receiver when the frame carrying them arrives.
struct Latency {
  std::vector<double> us;        // per message (sampled at saturation), sorted
  std::vector<double> batch_us;  // batched only: receipt minus the batch's created_ns, sorted
  std::uint64_t messages = 0;    // delivered in the run (warm-up excluded)
  double seconds = 0;            // from the first to the last delivery
  std::string error;
  double rate() const { return seconds > 0 ? static_cast<double>(messages) / seconds : 0; }
};

// The receiver's side of the measurement window. The window opens at the first delivery after
// warm-up since the first delivery, and closes at the last delivery, once the sender has said how
// many messages it sent in all. Rates are taken over the window on the receiver's clock only.
class Window {
 public:
  Window(Clock::duration warmup, const std::atomic<std::uint64_t>& total_sent)
      : warmup_(warmup), total_sent_(total_sent) {}

  // Call after each delivery (a frame) with the running totals; returns true when everything the
  // sender sent has arrived.
  bool delivered(std::uint64_t messages, std::uint64_t bytes, std::uint64_t frames) {
    Clock::time_point now = Clock::now();
    if (!started_) {
      started_ = true;
      first_ = now;
    } else if (!open_ && now - first_ >= warmup_) {
      open_ = true;
      open_at_ = now;
      messages_at_open_ = messages;
      bytes_at_open_ = bytes;
      frames_at_open_ = frames;
    }
    last_ = now;
    last_messages_ = messages;
    last_bytes_ = bytes;
    last_frames_ = frames;
    std::uint64_t total = total_sent_.load(std::memory_order_acquire);
    return total != kUnknown && messages >= total;
  }

  Measured result(std::uint64_t checksum) const {
    Measured m;
    m.checksum = checksum;
    if (!open_) {
      m.error = "measurement window never opened (run shorter than warm-up)";
      return m;
    }
    m.messages = last_messages_ - messages_at_open_;
    m.bytes = last_bytes_ - bytes_at_open_;
    m.frames = last_frames_ - frames_at_open_;
    m.seconds = std::chrono::duration<double>(last_ - open_at_).count();
    return m;
  }

  static constexpr std::uint64_t kUnknown = ~std::uint64_t{0};

 private:
  Clock::duration warmup_;
  const std::atomic<std::uint64_t>& total_sent_;
  bool started_ = false, open_ = false;
  Clock::time_point first_{}, open_at_{}, last_{};
  std::uint64_t messages_at_open_ = 0, bytes_at_open_ = 0, frames_at_open_ = 0;
  std::uint64_t last_messages_ = 0, last_bytes_ = 0, last_frames_ = 0;
};

// Median of the runs by msgs/s (runs with errors are dropped; empty input gives an empty result).
Measured median(std::vector<Measured> runs);
// Relative spread of the runs: (max - min) / median of msgs/s.
double spread(const std::vector<Measured>& runs);

// p in [0, 1] over sorted samples (nearest rank); 0 for an empty set.
double percentile(const std::vector<double>& sorted, double p);

// A payload of n bytes with non-constant content.
std::vector<std::byte> make_payload(std::size_t n);

// nproc, CPU model, kernel, libzmq version, load average, date, git commit.
Json machine_description();
std::string utc_now_iso8601();

// Formats 12345678.9 as "12.35 M".
std::string si(double v);

}  // namespace zkit::bench
