// The Batcher decides when a batch is sealed. It has no thread and no socket: the owner adds
// messages, takes sealed frames, and asks deadline() how long its poll loop may sleep.
//
// A batch is sealed on whichever comes first:
//   records  the batch holds max_records messages;
//   bytes    the next message would take the frame past max_bytes (sealed before that message);
//   linger   linger has passed since the first message of the batch;
//   adaptive (FlushMode::kAdaptive, the default) the producer is idle: a message that finds the
//            batch empty and no batch sealed within the last adaptive_interval is sealed at once,
//            alone, so a low message rate adds no latency. Under load, batches are sealed at most
//            once per adaptive_interval (or earlier when full), so a high rate makes full batches
//            and the added latency is bounded by adaptive_interval.
//   explicit flush().
// The held batch's deadline is first_message + linger, and under kAdaptive also
// last_seal + adaptive_interval, whichever is earlier. poll() seals it once the deadline has passed;
// add() does too (this message included), so an owner that only adds still never holds a message
// past its deadline. The reason is kLinger when linger has passed, else kAdaptive.
// Sequence numbers start at 1 and rise by one per sealed batch (docs/batching.md says more).
// Not thread-safe: one owner thread, which passes its clock readings in (tests pass fixed ones).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string_view>

#include <zmq.hpp>

#include "zkit/envelope.hpp"

namespace zkit {

enum class FlushReason : std::uint8_t { kRecords, kBytes, kLinger, kAdaptive, kExplicit };
inline constexpr std::size_t kFlushReasons = 5;
const char* flush_reason_name(FlushReason r) noexcept;

enum class FlushMode : std::uint8_t {
  kAdaptive,  // seal at once when idle, pace batches under load (see above)
  kLinger,    // hold every batch up to linger (classic Nagle-style batching)
};

struct BatcherOptions {
  std::size_t max_records = 4096;                 // records per batch
  std::size_t max_bytes = 256 * 1024;             // encoded (uncompressed) frame size
  std::chrono::microseconds linger{1000};         // longest a message waits in a batch
  FlushMode mode = FlushMode::kAdaptive;
  std::chrono::microseconds adaptive_interval{50};  // pacing of batches under load (kAdaptive)
  std::uint64_t producer_id = 0;                  // 0: a random id chosen at construction
  envelope::EncoderOptions encoder;               // compression
};

// A sealed batch, ready to send.
struct SealedBatch {
  zmq::message_t frame;
  std::uint64_t seq = 0;
  std::size_t records = 0;
  FlushReason reason = FlushReason::kExplicit;
};

// Where sequence numbers come from; several batchers (one per pub/sub topic) may share one so that
// a producer's sequence stays one series. Must outlive the batchers that use it.
struct SequenceCounter {
  std::uint64_t next = 1;
};

class Batcher {
 public:
  using Clock = std::chrono::steady_clock;

  // Throws std::invalid_argument on a zero limit or a max_bytes too small for one record.
  explicit Batcher(BatcherOptions options = {}, SequenceCounter* sequence = nullptr);
  Batcher(Batcher&&) noexcept = default;
  Batcher& operator=(Batcher&&) noexcept = default;

  // Appends one message, copying it once into the held batch. Throws std::length_error when the
  // message alone cannot fit in max_bytes (the caller refuses it; nothing held is affected).
  // Returns true when sealed batches are ready.
  bool add(std::span<const std::byte> message, Clock::time_point now);
  bool add(std::string_view message, Clock::time_point now) {
    return add(std::as_bytes(std::span(message.data(), message.size())), now);
  }
  // As above, reading the clock itself only when the time can matter: when a batch starts, when
  // this message fills or overflows it, and every kClockStride messages in between (a deadline
  // passed while the owner only adds is noticed within that many messages; poll() is exact).
  bool add(std::span<const std::byte> message);
  bool add(std::string_view message) {
    return add(std::as_bytes(std::span(message.data(), message.size())));
  }
  static constexpr std::size_t kClockStride = 16;
  // Seals the held batch if its deadline has passed. Returns true when sealed batches are ready.
  bool poll(Clock::time_point now = Clock::now());
  // Seals whatever is held (reason kExplicit). Returns true when sealed batches are ready.
  bool flush(Clock::time_point now = Clock::now());
  // When poll() must next be called; empty when nothing is held.
  std::optional<Clock::time_point> deadline() const noexcept;

  // The oldest sealed batch, if any. The owner sends it (or keeps it, for resend).
  std::optional<SealedBatch> take();
  bool has_sealed() const noexcept { return !sealed_.empty(); }

  std::size_t held_records() const noexcept { return encoder_.record_count(); }
  std::size_t held_bytes() const noexcept { return held_records() ? encoder_.encoded_bytes() : 0; }
  std::uint64_t producer_id() const noexcept { return options_.producer_id; }
  std::uint64_t next_seq() const noexcept { return external_ ? external_->next : own_.next; }
  const BatcherOptions& options() const noexcept { return options_; }

 private:
  void seal(FlushReason reason, Clock::time_point now);

  BatcherOptions options_;
  envelope::Encoder encoder_;
  SequenceCounter own_;
  SequenceCounter* external_;  // shared counter, or null for own_
  std::deque<SealedBatch> sealed_;
  Clock::time_point first_add_{};
  Clock::time_point last_seal_{};
  bool open_ = false;  // encoder_.begin() was called for the held batch
};

// A random 64-bit producer id (never 0).
std::uint64_t random_producer_id();

}  // namespace zkit
