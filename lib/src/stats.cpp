// Statistics: the histogram's bucket arithmetic and the JSON snapshot (nlohmann stays in here).
#include "zkit/stats.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>

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
  nlohmann::json flush_json = nlohmann::json::object();
  for (std::size_t i = 0; i < kFlushReasons; ++i) {
    flush_json[flush_reason_name(static_cast<FlushReason>(i))] = flushes[i];
  }
  nlohmann::json j = {
      {"messages_out", messages_out},
      {"batches_out", batches_out},
      {"bytes_out", bytes_out},
      {"messages_in", messages_in},
      {"batches_in", batches_in},
      {"bytes_in", bytes_in},
      {"flushes", flush_json},
      {"send_would_block", send_would_block},
      {"dropped_messages", dropped_messages},
      {"dropped_batches", dropped_batches},
      {"decode_errors", decode_errors},
      {"missed_batches", missed_batches},
      {"timeouts", timeouts},
      {"unsent_messages", unsent_messages},
      {"latency_ns",
       {{"count", latency.count()},
        {"min", latency.min()},
        {"max", latency.max()},
        {"mean", latency.mean()},
        {"p50", latency.percentile(50)},
        {"p99", latency.percentile(99)},
        {"p999", latency.percentile(99.9)}}},
  };
  return j.dump();
}

}  // namespace zkit
