// Statistics every zkit socket keeps: counters for messages, batches and bytes in each direction,
// flush reasons, drops and decode errors, and a latency histogram; a JSON snapshot for tools.
// Plain values with no locks: a socket's stats belong to the socket's thread (copy them out there).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "zkit/batcher.hpp"

namespace zkit {

// Log-linear histogram of nanosecond values (HdrHistogram's layout): values below 32 have their own
// bucket, above that each power of two is cut into 32 buckets, so a percentile is within ~3% of the
// true value. Values of 2^40 ns (18 minutes) and more share the last bucket. Fixed size, no
// allocation; record() is a few instructions.
class LatencyHistogram {
 public:
  static constexpr int kSubBits = 5;
  static constexpr int kMaxExponent = 40;
  static constexpr std::size_t kBuckets = (kMaxExponent - kSubBits + 1) * (1u << kSubBits);

  void record(std::uint64_t ns) noexcept;
  void merge(const LatencyHistogram& other) noexcept;
  void reset() noexcept { *this = LatencyHistogram{}; }

  std::uint64_t count() const noexcept { return count_; }
  std::uint64_t min() const noexcept { return count_ ? min_ : 0; }
  std::uint64_t max() const noexcept { return max_; }
  double mean() const noexcept { return count_ ? static_cast<double>(sum_) / count_ : 0.0; }
  std::uint64_t sum() const noexcept { return sum_; }
  // Samples in buckets that lie wholly at or below ns (a bucket straddling ns is left out, so the
  // figure never over-counts; it is within the ~3% resolution). For cumulative exposition
  // buckets (zkit/metrics.hpp).
  std::uint64_t count_at_most(std::uint64_t ns) const noexcept;
  // The value below which p percent of the samples fall (p in [0, 100]); 0 when empty.
  // Throws std::invalid_argument for p outside [0, 100].
  std::uint64_t percentile(double p) const;

 private:
  static std::size_t bucket_of(std::uint64_t ns) noexcept;
  static std::uint64_t value_of(std::size_t bucket) noexcept;  // the bucket's midpoint
  std::array<std::uint64_t, kBuckets> buckets_{};
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t min_ = ~std::uint64_t{0};
  std::uint64_t max_ = 0;
};

struct SocketStats {
  // What left through the socket (handed to ZeroMQ). bytes_* count frame bytes on the wire.
  std::uint64_t messages_out = 0;
  std::uint64_t batches_out = 0;
  std::uint64_t bytes_out = 0;
  // What arrived and was handed to the application.
  std::uint64_t messages_in = 0;
  std::uint64_t batches_in = 0;
  std::uint64_t bytes_in = 0;
  // Sent batches by the reason they were sealed (index: FlushReason).
  std::array<std::uint64_t, kFlushReasons> flushes{};
  // A send found the socket at its high-water mark (EAGAIN, or the send timeout expired).
  std::uint64_t send_would_block = 0;
  // Given up by zkit and counted: a Publisher's batch at the high-water mark, a Server's reply to a
  // peer that is gone, a reply that came after its request timed out.
  std::uint64_t dropped_messages = 0;
  std::uint64_t dropped_batches = 0;
  // Frames that were not valid batches (or not the expected frame shape); each was dropped.
  std::uint64_t decode_errors = 0;
  // Batches a Subscriber never saw, from gaps in each producer's sequence numbers.
  std::uint64_t missed_batches = 0;
  // Subscriber: sequence jumps past PatternOptions::max_sequence_gap (not counted as missed), and
  // producers forgotten at PatternOptions::max_producers.
  std::uint64_t sequence_resets = 0;
  std::uint64_t producers_forgotten = 0;
  // Client: requests whose timeout expired before a reply came.
  std::uint64_t timeouts = 0;
  // close() could not hand these to ZeroMQ within the linger.
  std::uint64_t unsent_messages = 0;
  // Receivers: unix-clock ns from a batch's created_ns to its arrival, one sample per batch (clocks
  // of different hosts add their offset).
  LatencyHistogram latency;

  // One JSON object: every counter, flushes by reason name, latency {count,min,max,mean,p50,p99,
  // p999} in ns.
  std::string to_json() const;
};

}  // namespace zkit
