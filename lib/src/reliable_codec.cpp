// Encoder and decoder of the reliable link's control messages (layout in reliable_format.hpp).
#include "zkit/reliable_codec.hpp"

#include <stdexcept>
#include <string>

#include "msgpack_cursor.hpp"
#include "reliable_format.hpp"

namespace zkit::reliable {
namespace {

namespace fmt = format;

void put_uint64(std::byte* p, std::uint64_t v) noexcept {
  p[0] = std::byte{detail::kUint64};
  for (int i = 8; i >= 1; --i) {
    p[i] = static_cast<std::byte>(v & 0xff);
    v >>= 8;
  }
}

bool known_type(std::uint64_t t) noexcept { return t >= fmt::kMinType && t <= fmt::kMaxType; }

// Field names as docs/protocol.md spells them, for error messages.
const char* seq_name(MessageType t) noexcept {
  switch (t) {
    case MessageType::kHello:
    case MessageType::kWelcome:
    case MessageType::kAck:
      return "acked";
    case MessageType::kData:
      return "link_seq";
    case MessageType::kNack:
      return "expected";
    case MessageType::kPing:
      return "sent";
    case MessageType::kReset:
      break;
  }
  return "seq";
}

const char* value_name(MessageType t) noexcept {
  return t == MessageType::kHello ? "window" : "credit";
}

}  // namespace

const char* message_type_name(MessageType t) noexcept {
  switch (t) {
    case MessageType::kHello:
      return "HELLO";
    case MessageType::kWelcome:
      return "WELCOME";
    case MessageType::kData:
      return "DATA";
    case MessageType::kAck:
      return "ACK";
    case MessageType::kNack:
      return "NACK";
    case MessageType::kPing:
      return "PING";
    case MessageType::kReset:
      return "RESET";
  }
  return "UNKNOWN";
}

std::size_t field_count(MessageType t) noexcept {
  switch (t) {
    case MessageType::kHello:
    case MessageType::kWelcome:
    case MessageType::kAck:
      return 5;
    case MessageType::kData:
    case MessageType::kNack:
    case MessageType::kPing:
      return 4;
    case MessageType::kReset:
      return 3;
  }
  return 0;
}

zmq::message_t encode(const Message& m) {
  std::size_t fields = field_count(m.type);
  if (fields == 0) throw std::invalid_argument("zkit::reliable::encode: unknown message type");
  if (m.session == 0) throw std::invalid_argument("zkit::reliable::encode: session 0");
  zmq::message_t frame(fmt::kSessionOffset + (fields - 2) * fmt::kUintBytes);
  auto* p = static_cast<std::byte*>(frame.data());
  p[0] = std::byte{static_cast<std::uint8_t>(fmt::kFixArray | fields)};
  p[fmt::kVersionOffset] = std::byte{static_cast<std::uint8_t>(kProtocolVersion)};
  p[fmt::kTypeOffset] = std::byte{static_cast<std::uint8_t>(m.type)};
  put_uint64(p + fmt::kSessionOffset, m.session);
  if (fields >= 4) put_uint64(p + fmt::kSeqOffset, m.seq);
  if (fields == 5) put_uint64(p + fmt::kValueOffset, m.value);
  return frame;
}

Result<Message> decode(std::span<const std::byte> frame) noexcept {
  try {
    if (frame.size() > 4 * fmt::kMaxFrameBytes) {
      return Status::corruption("control message is " + std::to_string(frame.size()) +
                                " bytes, longer than any valid one");
    }
    detail::Cursor c(frame.data(), frame.size());
    std::uint64_t fields = 0;
    if (Status s = c.read_array("message", fields); !s) return s;
    if (fields < 3) {
      return Status::corruption("message is an array of " + std::to_string(fields) +
                                " elements, expected 3 to 5");
    }
    std::uint64_t version = 0;
    if (Status s = c.read_uint("version", version); !s) return s;
    if (version != kProtocolVersion) {
      return Status::unsupported("unsupported link protocol version " + std::to_string(version));
    }
    std::size_t type_at = c.offset();
    std::uint64_t type = 0;
    if (Status s = c.read_uint("type", type); !s) return s;
    if (!known_type(type)) {
      return Status::unsupported("unknown message type " + std::to_string(type) + " at byte " +
                                 std::to_string(type_at));
    }
    Message m;
    m.type = static_cast<MessageType>(type);
    if (fields != field_count(m.type)) {
      return Status::corruption(std::string(message_type_name(m.type)) + " is an array of " +
                                std::to_string(fields) + " elements, expected " +
                                std::to_string(field_count(m.type)));
    }
    std::size_t session_at = c.offset();
    if (Status s = c.read_uint("session", m.session); !s) return s;
    if (m.session == 0) {
      return Status::corruption("session at byte " + std::to_string(session_at) + " is 0");
    }
    if (fields >= 4) {
      if (Status s = c.read_uint(seq_name(m.type), m.seq); !s) return s;
    }
    if (fields == 5) {
      if (Status s = c.read_uint(value_name(m.type), m.value); !s) return s;
    }
    if (!c.at_end()) {
      return Status::corruption(std::to_string(c.remaining()) + " trailing bytes after " +
                                message_type_name(m.type) + " at byte " +
                                std::to_string(c.offset()));
    }
    return m;
  } catch (const std::bad_alloc&) {
    return Status::io_error("out of memory decoding a link message");
  }
}

}  // namespace zkit::reliable
