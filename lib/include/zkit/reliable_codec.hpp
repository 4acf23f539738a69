// The reliable link's control messages: what a ReliableSender (DEALER) and a ReliableReceiver
// (ROUTER) say to each other besides the batch frames themselves. Each message is one MessagePack
// array in one ZeroMQ frame; a DATA message is followed by a second frame holding the batch exactly
// as the envelope encoder wrote it. docs/protocol.md describes every message, state and timer.
//
// Pure functions, no state: safe from any thread. Decoding takes untrusted bytes and returns a
// Result whose error names the field and byte offset.
#pragma once

#include <cstdint>
#include <span>
#include <zmq.hpp>

#include "zkit/status.hpp"

namespace zkit::reliable {

inline constexpr std::uint64_t kProtocolVersion = 1;

// Who sends what (S = sender, R = receiver) and what the two numbers after the session mean.
enum class MessageType : std::uint8_t {
  kHello = 1,    // S→R  seq: sender's cumulative acked link seq   value: sender's window
  kWelcome = 2,  // R→S  seq: receiver's cumulative acked link seq value: credit limit
  kData = 3,     // S→R  seq: link seq of the batch frame that follows (value unused, absent)
  kAck = 4,      // R→S  seq: cumulative acked link seq            value: credit limit
  kNack = 5,     // R→S  seq: the link seq the receiver expects next (value absent)
  kPing = 6,     // S→R  seq: highest link seq sent so far         (value absent)
  kReset = 7,    // R→S  the receiver does not know this session; say HELLO (seq, value absent)
};
const char* message_type_name(MessageType t) noexcept;

// One decoded control message. Fields a type does not carry are 0.
struct Message {
  MessageType type = MessageType::kPing;
  std::uint64_t session = 0;  // the sender session (random per ReliableSender object; never 0)
  std::uint64_t seq = 0;      // see MessageType
  std::uint64_t value = 0;    // see MessageType

  bool operator==(const Message&) const = default;
};

// Number of array elements a message of this type has on the wire (3, 4 or 5).
std::size_t field_count(MessageType t) noexcept;

// Encodes one control message into a new frame. Throws std::invalid_argument on an unknown type or
// a zero session (a program bug, not untrusted input).
zmq::message_t encode(const Message& message);

// Decodes one control frame. Errors: Corruption (truncated, wrong MessagePack type, wrong element
// count for the type, trailing bytes, zero session), Unsupported (protocol version other than 1,
// unknown message type). The message names the field and the byte offset.
[[nodiscard]] Result<Message> decode(std::span<const std::byte> frame) noexcept;
[[nodiscard]] inline Result<Message> decode(const zmq::message_t& frame) noexcept {
  return decode(std::span(static_cast<const std::byte*>(frame.data()), frame.size()));
}

}  // namespace zkit::reliable
