// The Batcher's flush policy: records, bytes, linger, adaptive pacing and explicit flush.
#include "zkit/batcher.hpp"

#include <random>
#include <stdexcept>

namespace zkit {

const char* flush_reason_name(FlushReason r) noexcept {
  switch (r) {
    case FlushReason::kRecords: return "records";
    case FlushReason::kBytes: return "bytes";
    case FlushReason::kLinger: return "linger";
    case FlushReason::kAdaptive: return "adaptive";
    case FlushReason::kExplicit: return "explicit";
  }
  return "unknown";
}

std::uint64_t random_producer_id() {
  std::random_device rd;
  std::uint64_t id = 0;
  while (id == 0) id = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  return id;
}

Batcher::Batcher(BatcherOptions options, SequenceCounter* sequence)
    : options_(options), encoder_(options.encoder), external_(sequence) {
  if (options_.max_records == 0) throw std::invalid_argument("Batcher: max_records is 0");
  if (options_.max_bytes < envelope::kEncodedHeaderBytes + envelope::record_overhead(0)) {
    throw std::invalid_argument("Batcher: max_bytes " + std::to_string(options_.max_bytes) +
                                " cannot hold one record");
  }
  if (options_.linger.count() < 0 || options_.adaptive_interval.count() < 0) {
    throw std::invalid_argument("Batcher: negative linger or adaptive_interval");
  }
  if (options_.producer_id == 0) options_.producer_id = random_producer_id();
}

bool Batcher::add(std::span<const std::byte> message, Clock::time_point now) {
  std::size_t need = envelope::record_overhead(message.size()) + message.size();
  if (envelope::kEncodedHeaderBytes + need > options_.max_bytes) {
    throw std::length_error("message of " + std::to_string(message.size()) +
                            " bytes exceeds the batch limit of " +
                            std::to_string(options_.max_bytes) + " bytes");
  }
  // The message that would overflow the held batch goes into the next one.
  if (held_records() > 0 && encoder_.encoded_bytes() + need > options_.max_bytes) {
    seal(FlushReason::kBytes, now);
  }
  if (held_records() == 0) {
    if (!open_) {
      encoder_.begin(options_.producer_id);
      open_ = true;
    }
    first_add_ = now;
  }
  encoder_.add(message);
  if (held_records() >= options_.max_records) {
    seal(FlushReason::kRecords, now);
    return true;
  }
  // A deadline already passed seals at once, this message included: an idle producer's message
  // under kAdaptive, or a batch whose owner kept adding without polling.
  return poll(now);
}

// A clock read costs about as much as appending a 16-byte record, so the common case skips it.
bool Batcher::add(std::span<const std::byte> message) {
  std::size_t held = held_records();
  std::size_t need = envelope::record_overhead(message.size()) + message.size();
  if (held == 0 || held % kClockStride == 0 || held + 1 >= options_.max_records ||
      encoder_.encoded_bytes() + need > options_.max_bytes) {
    return add(message, Clock::now());
  }
  encoder_.add(message);
  return has_sealed();
}

std::optional<Batcher::Clock::time_point> Batcher::deadline() const noexcept {
  if (held_records() == 0) return std::nullopt;
  Clock::time_point linger = first_add_ + options_.linger;
  if (options_.mode == FlushMode::kAdaptive) {
    return std::min(linger, last_seal_ + options_.adaptive_interval);
  }
  return linger;
}

bool Batcher::poll(Clock::time_point now) {
  if (auto d = deadline(); d && now >= *d) {
    bool lingered = now >= first_add_ + options_.linger;
    seal(lingered ? FlushReason::kLinger : FlushReason::kAdaptive, now);
  }
  return has_sealed();
}

bool Batcher::flush(Clock::time_point now) {
  if (held_records() > 0) seal(FlushReason::kExplicit, now);
  return has_sealed();
}

std::optional<SealedBatch> Batcher::take() {
  if (sealed_.empty()) return std::nullopt;
  SealedBatch b = std::move(sealed_.front());
  sealed_.pop_front();
  return b;
}

void Batcher::seal(FlushReason reason, Clock::time_point now) {
  SequenceCounter& counter = external_ ? *external_ : own_;
  SealedBatch b;
  b.records = encoder_.record_count();
  b.seq = counter.next;
  b.reason = reason;
  b.frame = encoder_.finish(b.seq, envelope::unix_now_ns());
  ++counter.next;  // only once the frame exists: a failed finish() skips no number
  open_ = false;
  last_seal_ = now;
  sealed_.push_back(std::move(b));
}

}  // namespace zkit
