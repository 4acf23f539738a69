// Statistics: the histogram's bucket arithmetic and the JSON snapshot (through zkit::JsonWriter).
#include "zkit/stats.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <stdexcept>

#include "zkit/json.hpp"

namespace zkit {

std::size_t LatencyHistogram::bucket_of(std::uint64_t ns) noexcept {
  constexpr std::uint64_t kSub = 1u << kSubBits;
  if (ns < kSub) return static_cast<std::size_t>(ns);
  int e = 63 - std::countl_zero(ns);  // e >= kSubBits
  if (e >= kMaxExponent) return kBuckets - 1;
  std::uint64_t mantissa = (ns >> (e - kSubBits)) & (kSub - 1);
  return static_cast<std::size_t>((e - kSubBits + 1) * kSub + mantissa);
}

std::uint64_t LatencyHistogram::value_of(std::size_t bucket) noexcept {
  constexpr std::size_t kSub = 1u << kSubBits;
  if (bucket < kSub) return bucket;
  std::size_t block = bucket / kSub;  // e - kSubBits + 1
  std::uint64_t low = static_cast<std::uint64_t>(kSub + bucket % kSub) << (block - 1);
  return low + ((std::uint64_t{1} << (block - 1)) >> 1);
}

void LatencyHistogram::record(std::uint64_t ns) noexcept {
  ++buckets_[bucket_of(ns)];
  ++count_;
  sum_ += ns;
  min_ = std::min(min_, ns);
  max_ = std::max(max_, ns);
}

void LatencyHistogram::merge(const LatencyHistogram& o) noexcept {
  for (std::size_t i = 0; i < kBuckets; ++i) buckets_[i] += o.buckets_[i];
  count_ += o.count_;
  sum_ += o.sum_;
  min_ = std::min(min_, o.min_);
  max_ = std::max(max_, o.max_);
}

std::uint64_t LatencyHistogram::count_at_most(std::uint64_t ns) const noexcept {
  constexpr std::size_t kSub = 1u << kSubBits;
  std::uint64_t n = 0;
  // The last bucket is open-ended: never wholly below a bound.
  for (std::size_t i = 0; i + 1 < kBuckets; ++i) {
    std::uint64_t top = i;  // the bucket's highest value
    if (i >= kSub) {
      const std::size_t block = i / kSub;
      top = (static_cast<std::uint64_t>(kSub + i % kSub) << (block - 1)) +
            (std::uint64_t{1} << (block - 1)) - 1;
    }
    if (top > ns) break;
    n += buckets_[i];
  }
  return n;
}

std::uint64_t LatencyHistogram::percentile(double p) const {
  if (!(p >= 0.0 && p <= 100.0)) throw std::invalid_argument("percentile outside [0, 100]");
  if (count_ == 0) return 0;
  if (p == 0.0) return min_;
  if (p == 100.0) return max_;
  auto rank = static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::clamp(value_of(i), min_, max_);
  }
  return max_;
}

std::string SocketStats::to_json() const {
  // Keys in alphabetical order, as the snapshot has always listed them.
  JsonWriter w;
  w.begin_object();
  w.field("batches_in", batches_in).field("batches_out", batches_out);
  w.field("bytes_in", bytes_in).field("bytes_out", bytes_out);
  w.field("decode_errors", decode_errors);
  w.field("dropped_batches", dropped_batches).field("dropped_messages", dropped_messages);
  w.key("flushes").begin_object();
  for (FlushReason r : {FlushReason::kAdaptive, FlushReason::kBytes, FlushReason::kExplicit,
                        FlushReason::kLinger, FlushReason::kRecords}) {
    w.field(flush_reason_name(r), flushes[static_cast<std::size_t>(r)]);
  }
  w.end_object();
  w.key("latency_ns").begin_object();
  w.field("count", latency.count()).field("max", latency.max()).field("mean", latency.mean());
  w.field("min", latency.min()).field("p50", latency.percentile(50));
  w.field("p99", latency.percentile(99)).field("p999", latency.percentile(99.9));
  w.end_object();
  w.field("messages_in", messages_in).field("messages_out", messages_out);
  w.field("missed_batches", missed_batches).field("producers_forgotten", producers_forgotten);
  w.field("send_would_block", send_would_block).field("sequence_resets", sequence_resets);
  w.field("timeouts", timeouts).field("unsent_messages", unsent_messages);
  w.end_object();
  return std::move(w).str();
}

}  // namespace zkit
