// The consumer protocol's control messages: what a consumer (DEALER) and the spool's serving socket
// (ROUTER, `zkit spool --serve EP`) say to each other. Each message is one MessagePack array in one
// ZeroMQ frame, [1, type, member, ...]; a DELIVER is followed by a second frame holding the batch
// exactly as stored, a BUNDLE by one frame holding several such batches back to back.
// docs/protocol.md ("The consumer protocol (v1)") describes every message, the credit, timers,
// redelivery and errors.
//
// Pure functions, no state: safe from any thread. Decoding takes untrusted bytes and returns a
// Status/Result whose error names the field and the byte offset. Decoding a DELIVER, ACK of few
// ranges, NACK, PROGRESS, CREDIT, PING, PONG or LEAVE allocates nothing; decode_into() also reuses
// the capacity of a previous ACK's ranges and a previous message's strings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>
#include <zmq.hpp>

#include "zkit/status.hpp"

namespace zkit::consumer {

inline constexpr std::uint64_t kProtocolVersion = 1;
// Bounds every reader enforces (and every writer respects).
inline constexpr std::size_t kMaxAckRanges = 1024;       // ranges in one ACK
inline constexpr std::size_t kMaxGroupNameBytes = 64;    // group: 1..64 of [A-Za-z0-9._-]
inline constexpr std::size_t kMaxErrorTextBytes = 1024;  // ERROR text
inline constexpr std::size_t kMaxBundleBatches = 256;    // batches in one BUNDLE

// C = consumer, S = spool. The numbers start at 20 so that a reliable-link frame (types 1..7) sent
// to the serving socket by mistake is rejected as an unknown type.
enum class MessageType : std::uint8_t {
  kJoin = 20,      // C→S
  kJoined = 21,    // S→C
  kDeliver = 22,   // S→C, + the batch frame
  kAck = 23,       // C→S
  kNack = 24,      // C→S
  kProgress = 25,  // C→S
  kCredit = 26,    // C→S
  kPing = 27,      // C→S
  kPong = 28,      // S→C
  kLeave = 29,     // C→S
  kError = 30,     // S→C
  kBundle = 31,    // S→C, + one frame: the batches back to back (to a JOIN with bundle_bytes)
};
const char* message_type_name(MessageType t) noexcept;  // "JOIN", ...; "UNKNOWN"

enum class StartKind : std::uint8_t {
  kEarliest = 0,  // the oldest batch the log still holds
  kLatest = 1,    // batches committed after the group is created
  kPosition = 2,  // start_a = segment, start_b = offset
  kTime = 3,      // start_a = unix ns: the first batch stored at or after it; start_b = 0
};

enum class ErrorCode : std::uint32_t {
  kUnknownMember = 1,  // join first (also after the spool declared the member dead)
  kBadPrefetch = 2,    // prefetch_batches not in 1..max_prefetch; not joined
  kTooManyGroups = 3,  // the spool's --max-groups; not joined
  kGroupFull = 4,      // the group's --max-members; not joined
  kUnknownTag = 5,     // a tag this member does not hold; nothing changed
  kMalformed = 6,      // the message did not decode; counted, the member may be dropped
  kBadStart = 7,       // bad start or bad group name; not joined
  kPendingLimit = 8,   // the group's pending limit is reached
};
const char* error_code_name(ErrorCode c) noexcept;  // "unknown member", ...; "unknown error"

inline constexpr std::uint64_t kJoinManualAck = 1;  // JOIN flags bit 0 (informational)
inline constexpr std::uint64_t kJoinKnownFlags = kJoinManualAck;

struct Join {
  std::string group;
  std::uint64_t prefetch_batches = 1;
  std::uint64_t prefetch_messages = 0;  // 0: no message limit
  StartKind start_kind = StartKind::kEarliest;
  std::uint64_t start_a = 0;
  std::uint64_t start_b = 0;
  std::uint64_t ack_wait_ms = 0;  // 0: the spool's default
  std::uint64_t flags = 0;        // kJoinManualAck
  // The largest BUNDLE frame the member takes; 0: none, DELIVERs only. Written as a 12th element
  // only when not 0 (an 11-element JOIN means 0).
  std::uint64_t bundle_bytes = 0;
  bool operator==(const Join&) const = default;
};
struct Joined {
  std::string group;
  std::uint64_t ack_wait_ms = 0;   // in force for this member
  std::uint64_t heartbeat_ms = 0;  // send something at least this often
  std::uint64_t max_deliver = 0;   // 0: unlimited
  bool operator==(const Joined&) const = default;
};
struct Deliver {
  std::uint64_t tag = 0;             // never 0
  std::uint64_t delivery_count = 0;  // 1 = first delivery; never 0
  std::uint64_t segment = 0;         // the batch's log position
  std::uint64_t offset = 0;
  bool operator==(const Deliver&) const = default;
};
struct TagRange {
  std::uint64_t first = 0;  // inclusive, first <= last
  std::uint64_t last = 0;
  bool operator==(const TagRange&) const = default;
};
struct Ack {
  std::vector<TagRange> ranges;  // 1..kMaxAckRanges
  bool operator==(const Ack&) const = default;
};
struct Nack {
  std::uint64_t tag = 0;
  std::uint64_t delay_ms = 0;  // 0: redeliver now
  bool operator==(const Nack&) const = default;
};
struct Progress {
  std::uint64_t tag = 0;
  bool operator==(const Progress&) const = default;
};
struct Credit {
  std::uint64_t prefetch_batches = 1;  // absolute, replaces the JOIN values
  std::uint64_t prefetch_messages = 0;
  bool operator==(const Credit&) const = default;
};
struct Ping {
  bool operator==(const Ping&) const = default;
};
struct Pong {
  bool operator==(const Pong&) const = default;
};
struct Leave {
  bool operator==(const Leave&) const = default;
};
struct Error {
  ErrorCode code = ErrorCode::kMalformed;  // may be a code this build does not know
  std::string text;                        // at most kMaxErrorTextBytes
  bool operator==(const Error&) const = default;
};

// One batch of a BUNDLE: what a DELIVER says, and its length in the bundle's frame.
struct BundleEntry {
  std::uint64_t tag = 0;             // never 0
  std::uint64_t delivery_count = 0;  // never 0
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;
  std::uint64_t bytes = 0;  // the batch is the next `bytes` of the frame
  bool operator==(const BundleEntry&) const = default;
};
struct Bundle {
  std::vector<BundleEntry> entries;  // 1..kMaxBundleBatches, in tag order; the byte counts add
                                     // up to the frame's size (the consumer checks)
  bool operator==(const Bundle&) const = default;
};

// The alternatives are in type order: index() + 20 is the type.
using Body = std::variant<Join, Joined, Deliver, Ack, Nack, Progress, Credit, Ping, Pong, Leave,
                          Error, Bundle>;

struct Message {
  // The consumer's member id: random, nonzero, one per consumer object and join. An ERROR about a
  // message whose member could not be read carries 0.
  std::uint64_t member = 0;
  Body body;

  MessageType type() const noexcept { return static_cast<MessageType>(body.index() + 20); }
  template <class T>
  const T* get() const noexcept {
    return std::get_if<T>(&body);
  }
  bool operator==(const Message&) const = default;
};

// True for 1..64 bytes of [A-Za-z0-9._-].
bool valid_group_name(std::string_view name) noexcept;

// Encodes one control message into a new frame. Throws std::invalid_argument on what is a program
// bug rather than untrusted input: member 0 (except in ERROR), a bad group name, a start kind or
// JOIN flags outside the enum, an ACK of 0 or more than kMaxAckRanges ranges or with first > last,
// a DELIVER or BUNDLE entry with tag 0 or delivery_count 0, a BUNDLE of 0 or more than
// kMaxBundleBatches entries, an ERROR text over kMaxErrorTextBytes.
zmq::message_t encode(const Message& message);
// The same ACK without building a Message (the consumer's per-batch path).
zmq::message_t encode_ack(std::uint64_t member, std::span<const TagRange> ranges);

// Decodes one control frame. Errors:
//   Corruption      truncated, wrong MessagePack type, wrong element count for the type, trailing
//                   bytes, member 0 (outside ERROR), a range with first > last, a DELIVER or
//                   BUNDLE entry with tag or delivery_count 0, an empty BUNDLE, a frame over
//                   32 KiB, an ERROR code over 2^32-1;
//   Unsupported     a protocol version other than 1, an unknown type, unknown JOIN flag bits;
//   LimitExceeded   an ACK of more than kMaxAckRanges ranges, a BUNDLE of more than
//                   kMaxBundleBatches entries, an ERROR text over 1024 bytes;
//   InvalidArgument a JOIN or JOINED whose group name breaks the rules, a start_kind over 3.
// The message names the field and its byte offset. error_code_for() says what the spool answers.
[[nodiscard]] Result<Message> decode(std::span<const std::byte> frame) noexcept;
[[nodiscard]] inline Result<Message> decode(const zmq::message_t& frame) noexcept {
  return decode(std::span(static_cast<const std::byte*>(frame.data()), frame.size()));
}
// As decode(), into `out`, keeping the capacity of its ACK ranges and strings when the new message
// has the same type. On error `out` holds an unspecified valid message.
[[nodiscard]] Status decode_into(std::span<const std::byte> frame, Message& out) noexcept;
[[nodiscard]] inline Status decode_into(const zmq::message_t& frame, Message& out) noexcept {
  return decode_into(std::span(static_cast<const std::byte*>(frame.data()), frame.size()), out);
}

// The ERROR code the spool answers a frame that failed to decode with: kBadStart for
// InvalidArgument (group name, start kind), kMalformed for everything else.
ErrorCode error_code_for(const Status& decode_error) noexcept;

}  // namespace zkit::consumer
