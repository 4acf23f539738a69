// Encoder and decoder of the consumer protocol's control messages (layout in consumer_format.hpp).
#include "zkit/consumer_codec.hpp"

#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "consumer_format.hpp"
#include "msgpack_cursor.hpp"

namespace zkit::consumer {
namespace {

namespace fmt = format;
static_assert(kMaxAckRanges == fmt::kMaxAckRanges);
static_assert(kMaxGroupNameBytes == fmt::kMaxGroupBytes);
static_assert(kMaxErrorTextBytes == fmt::kMaxErrorTextBytes);
static_assert(kMaxBundleBatches == fmt::kMaxBundleBatches);
static_assert(std::variant_size_v<Body> == fmt::kMaxType - fmt::kMinType + 1);

// Elements of the whole array, indexed by type - 20.
constexpr std::uint8_t kFieldCount[] = {11, 7, 7, 4, 5, 4, 5, 3, 3, 3, 5, 4};

std::size_t field_count(MessageType t) noexcept {
  return kFieldCount[static_cast<std::uint8_t>(t) - fmt::kMinType];
}

// The elements written for `m`: a JOIN with bundle_bytes has one more.
std::size_t field_count(const Message& m) noexcept {
  const Join* j = m.get<Join>();
  return field_count(m.type()) + (j && j->bundle_bytes != 0 ? 1 : 0);
}

// Writes into a buffer sized beforehand by the same rules (size_of_* below).
class Writer {
 public:
  explicit Writer(std::byte* p) noexcept : p_(p) {}
  void byte(std::uint8_t b) noexcept { *p_++ = std::byte{b}; }
  void uint(std::uint64_t v) noexcept {
    p_[0] = std::byte{detail::kUint64};
    for (int i = 8; i >= 1; --i) {
      p_[i] = static_cast<std::byte>(v & 0xff);
      v >>= 8;
    }
    p_ += fmt::kUintBytes;
  }
  void str(std::string_view s) noexcept {
    if (s.size() <= 31) {
      byte(static_cast<std::uint8_t>(detail::kFixStrMask | s.size()));
    } else if (s.size() <= 0xff) {
      byte(detail::kStr8);
      byte(static_cast<std::uint8_t>(s.size()));
    } else {
      byte(detail::kStr16);
      byte(static_cast<std::uint8_t>(s.size() >> 8));
      byte(static_cast<std::uint8_t>(s.size() & 0xff));
    }
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  void array(std::size_t n) noexcept {
    if (n <= 15) {
      byte(static_cast<std::uint8_t>(fmt::kFixArray | n));
    } else {
      byte(detail::kArray16);
      byte(static_cast<std::uint8_t>(n >> 8));
      byte(static_cast<std::uint8_t>(n & 0xff));
    }
  }
  std::byte* position() const noexcept { return p_; }

 private:
  std::byte* p_;
};

std::size_t str_bytes(std::string_view s) noexcept {
  return (s.size() <= 31 ? 1 : s.size() <= 0xff ? 2 : 3) + s.size();
}
std::size_t array_header_bytes(std::size_t n) noexcept { return n <= 15 ? 1 : 3; }

[[noreturn]] void misuse(const std::string& what) {
  throw std::invalid_argument("zkit::consumer::encode: " + what);
}

void check_group(std::string_view group) {
  if (!valid_group_name(group)) {
    misuse("bad group name \"" + std::string(group.substr(0, 80)) + "\" (1..64 of [A-Za-z0-9._-])");
  }
}

void check_ranges(std::span<const TagRange> ranges) {
  if (ranges.empty() || ranges.size() > kMaxAckRanges) {
    misuse("an ACK carries 1.." + std::to_string(kMaxAckRanges) + " ranges, not " +
           std::to_string(ranges.size()));
  }
  for (const TagRange& r : ranges) {
    if (r.first > r.last) misuse("ACK range with first > last");
  }
}

// Payload bytes after [1, type, member]; validates what encode() refuses.
struct SizeOf {
  std::size_t operator()(const Join& j) const {
    check_group(j.group);
    if (static_cast<std::uint8_t>(j.start_kind) > 3) misuse("unknown start kind");
    if (j.flags & ~kJoinKnownFlags) misuse("unknown JOIN flag bits");
    return str_bytes(j.group) + (j.bundle_bytes != 0 ? 8 : 7) * fmt::kUintBytes;
  }
  std::size_t operator()(const Joined& j) const {
    check_group(j.group);
    return str_bytes(j.group) + 3 * fmt::kUintBytes;
  }
  std::size_t operator()(const Deliver& d) const {
    if (d.tag == 0) misuse("DELIVER with tag 0");
    if (d.delivery_count == 0) misuse("DELIVER with delivery_count 0");
    return 4 * fmt::kUintBytes;
  }
  std::size_t operator()(const Ack& a) const {
    check_ranges(a.ranges);
    return array_header_bytes(a.ranges.size()) + a.ranges.size() * fmt::kRangeBytes;
  }
  std::size_t operator()(const Nack&) const { return 2 * fmt::kUintBytes; }
  std::size_t operator()(const Progress&) const { return fmt::kUintBytes; }
  std::size_t operator()(const Credit&) const { return 2 * fmt::kUintBytes; }
  std::size_t operator()(const Ping&) const { return 0; }
  std::size_t operator()(const Pong&) const { return 0; }
  std::size_t operator()(const Leave&) const { return 0; }
  std::size_t operator()(const Error& e) const {
    if (e.text.size() > kMaxErrorTextBytes) misuse("ERROR text over 1024 bytes");
    return fmt::kUintBytes + str_bytes(e.text);
  }
  std::size_t operator()(const Bundle& b) const {
    if (b.entries.empty() || b.entries.size() > kMaxBundleBatches) {
      misuse("a BUNDLE carries 1.." + std::to_string(kMaxBundleBatches) + " batches, not " +
             std::to_string(b.entries.size()));
    }
    for (const BundleEntry& e : b.entries) {
      if (e.tag == 0) misuse("BUNDLE entry with tag 0");
      if (e.delivery_count == 0) misuse("BUNDLE entry with delivery_count 0");
    }
    return array_header_bytes(b.entries.size()) + b.entries.size() * fmt::kBundleEntryBytes;
  }
};

void write_ranges(Writer& w, std::span<const TagRange> ranges) noexcept {
  w.array(ranges.size());
  for (const TagRange& r : ranges) {
    w.byte(fmt::kFixArray | 2);
    w.uint(r.first);
    w.uint(r.last);
  }
}

struct WriteBody {
  Writer& w;
  void operator()(const Join& j) const {
    w.str(j.group);
    w.uint(j.prefetch_batches);
    w.uint(j.prefetch_messages);
    w.uint(static_cast<std::uint64_t>(j.start_kind));
    w.uint(j.start_a);
    w.uint(j.start_b);
    w.uint(j.ack_wait_ms);
    w.uint(j.flags);
    if (j.bundle_bytes != 0) w.uint(j.bundle_bytes);
  }
  void operator()(const Joined& j) const {
    w.str(j.group);
    w.uint(j.ack_wait_ms);
    w.uint(j.heartbeat_ms);
    w.uint(j.max_deliver);
  }
  void operator()(const Deliver& d) const {
    w.uint(d.tag);
    w.uint(d.delivery_count);
    w.uint(d.segment);
    w.uint(d.offset);
  }
  void operator()(const Ack& a) const { write_ranges(w, a.ranges); }
  void operator()(const Nack& n) const {
    w.uint(n.tag);
    w.uint(n.delay_ms);
  }
  void operator()(const Progress& p) const { w.uint(p.tag); }
  void operator()(const Credit& c) const {
    w.uint(c.prefetch_batches);
    w.uint(c.prefetch_messages);
  }
  void operator()(const Ping&) const {}
  void operator()(const Pong&) const {}
  void operator()(const Leave&) const {}
  void operator()(const Error& e) const {
    w.uint(static_cast<std::uint64_t>(e.code));
    w.str(e.text);
  }
  void operator()(const Bundle& b) const {
    w.array(b.entries.size());
    for (const BundleEntry& e : b.entries) {
      w.byte(fmt::kFixArray | 5);
      w.uint(e.tag);
      w.uint(e.delivery_count);
      w.uint(e.segment);
      w.uint(e.offset);
      w.uint(e.bytes);
    }
  }
};

void write_head(Writer& w, MessageType t, std::size_t fields, std::uint64_t member) noexcept {
  w.byte(static_cast<std::uint8_t>(fmt::kFixArray | fields));
  w.byte(static_cast<std::uint8_t>(kProtocolVersion));
  w.byte(static_cast<std::uint8_t>(t));
  w.uint(member);
}

// ---- reading ----

std::string at(std::size_t offset) { return " at byte " + std::to_string(offset); }

Status read_group(detail::Cursor& c, std::string& out) {
  std::size_t group_at = c.offset();
  std::span<const std::byte> s;
  if (Status st = c.read_str("group", s); !st) return st;
  std::string_view name(reinterpret_cast<const char*>(s.data()), s.size());
  if (!valid_group_name(name)) {
    return Status::invalid_argument("group" + at(group_at) + " is not 1..64 of [A-Za-z0-9._-]" +
                                    " (" + std::to_string(s.size()) + " bytes)");
  }
  out.assign(name);
  return {};
}

Status read_nonzero(detail::Cursor& c, const char* field, std::uint64_t& out) {
  std::size_t field_at = c.offset();
  if (Status s = c.read_uint(field, out); !s) return s;
  if (out == 0) return Status::corruption(std::string(field) + at(field_at) + " is 0");
  return {};
}

Status read_ranges(detail::Cursor& c, std::vector<TagRange>& out) {
  std::size_t ranges_at = c.offset();
  std::uint64_t n = 0;
  if (Status s = c.read_array("ranges", n); !s) return s;
  if (n == 0) return Status::corruption("ranges" + at(ranges_at) + " is empty");
  if (n > kMaxAckRanges) {
    return Status::limit_exceeded("ranges" + at(ranges_at) + " has " + std::to_string(n) +
                                  " ranges, more than " + std::to_string(kMaxAckRanges));
  }
  // Each range takes at least 3 bytes: never reserve for ranges the frame cannot hold.
  if (n * 3 > c.remaining()) return c.truncated("ranges");
  out.clear();
  out.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    std::size_t range_at = c.offset();
    std::uint64_t two = 0;
    if (Status s = c.read_array("range", two); !s) return s;
    if (two != 2) {
      return Status::corruption("range" + at(range_at) + " has " + std::to_string(two) +
                                " elements, expected 2");
    }
    TagRange r;
    if (Status s = c.read_uint("first_tag", r.first); !s) return s;
    if (Status s = c.read_uint("last_tag", r.last); !s) return s;
    if (r.first > r.last) {
      return Status::corruption("range" + at(range_at) + " has first_tag " +
                                std::to_string(r.first) + " > last_tag " + std::to_string(r.last));
    }
    out.push_back(r);
  }
  return {};
}

Status read_bundle(detail::Cursor& c, std::vector<BundleEntry>& out) {
  std::size_t entries_at = c.offset();
  std::uint64_t n = 0;
  if (Status s = c.read_array("entries", n); !s) return s;
  if (n == 0) return Status::corruption("entries" + at(entries_at) + " is empty");
  if (n > kMaxBundleBatches) {
    return Status::limit_exceeded("entries" + at(entries_at) + " has " + std::to_string(n) +
                                  " batches, more than " + std::to_string(kMaxBundleBatches));
  }
  // Each entry takes at least 6 bytes: never reserve for entries the frame cannot hold.
  if (n * 6 > c.remaining()) return c.truncated("entries");
  out.clear();
  out.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    std::size_t entry_at = c.offset();
    std::uint64_t five = 0;
    if (Status s = c.read_array("entry", five); !s) return s;
    if (five != 5) {
      return Status::corruption("entry" + at(entry_at) + " has " + std::to_string(five) +
                                " elements, expected 5");
    }
    BundleEntry e;
    if (Status s = read_nonzero(c, "tag", e.tag); !s) return s;
    if (Status s = read_nonzero(c, "delivery_count", e.delivery_count); !s) return s;
    if (Status s = c.read_uint("segment", e.segment); !s) return s;
    if (Status s = c.read_uint("offset", e.offset); !s) return s;
    if (Status s = c.read_uint("bytes", e.bytes); !s) return s;
    out.push_back(e);
  }
  return {};
}

// The element for type T, reusing what `out` already holds when it is a T.
template <class T>
T& slot(Body& out) {
  if (T* p = std::get_if<T>(&out)) return *p;
  return out.emplace<T>();
}

// `fields`: the message's element count (a JOIN of 12 carries bundle_bytes).
Status read_body(detail::Cursor& c, MessageType type, std::uint64_t fields, Body& body) {
  switch (type) {
    case MessageType::kJoin: {
      Join& j = slot<Join>(body);
      if (Status s = read_group(c, j.group); !s) return s;
      if (Status s = c.read_uint("prefetch_batches", j.prefetch_batches); !s) return s;
      if (Status s = c.read_uint("prefetch_messages", j.prefetch_messages); !s) return s;
      std::size_t kind_at = c.offset();
      std::uint64_t kind = 0;
      if (Status s = c.read_uint("start_kind", kind); !s) return s;
      if (kind > 3) {
        return Status::invalid_argument("start_kind" + at(kind_at) + " is " + std::to_string(kind) +
                                        ", expected 0..3");
      }
      j.start_kind = static_cast<StartKind>(kind);
      if (Status s = c.read_uint("start_a", j.start_a); !s) return s;
      if (Status s = c.read_uint("start_b", j.start_b); !s) return s;
      if (Status s = c.read_uint("ack_wait_ms", j.ack_wait_ms); !s) return s;
      std::size_t flags_at = c.offset();
      if (Status s = c.read_uint("flags", j.flags); !s) return s;
      if (j.flags & ~kJoinKnownFlags) {
        return Status::unsupported("flags" + at(flags_at) + " has unknown bits " +
                                   std::to_string(j.flags & ~kJoinKnownFlags));
      }
      j.bundle_bytes = 0;
      if (fields == 12) return c.read_uint("bundle_bytes", j.bundle_bytes);
      return {};
    }
    case MessageType::kJoined: {
      Joined& j = slot<Joined>(body);
      if (Status s = read_group(c, j.group); !s) return s;
      if (Status s = c.read_uint("ack_wait_ms", j.ack_wait_ms); !s) return s;
      if (Status s = c.read_uint("heartbeat_ms", j.heartbeat_ms); !s) return s;
      return c.read_uint("max_deliver", j.max_deliver);
    }
    case MessageType::kDeliver: {
      Deliver& d = slot<Deliver>(body);
      if (Status s = read_nonzero(c, "tag", d.tag); !s) return s;
      if (Status s = read_nonzero(c, "delivery_count", d.delivery_count); !s) return s;
      if (Status s = c.read_uint("segment", d.segment); !s) return s;
      return c.read_uint("offset", d.offset);
    }
    case MessageType::kAck:
      return read_ranges(c, slot<Ack>(body).ranges);
    case MessageType::kNack: {
      Nack& n = slot<Nack>(body);
      if (Status s = c.read_uint("tag", n.tag); !s) return s;
      return c.read_uint("delay_ms", n.delay_ms);
    }
    case MessageType::kProgress:
      return c.read_uint("tag", slot<Progress>(body).tag);
    case MessageType::kCredit: {
      Credit& cr = slot<Credit>(body);
      if (Status s = c.read_uint("prefetch_batches", cr.prefetch_batches); !s) return s;
      return c.read_uint("prefetch_messages", cr.prefetch_messages);
    }
    case MessageType::kPing:
      slot<Ping>(body);
      return {};
    case MessageType::kPong:
      slot<Pong>(body);
      return {};
    case MessageType::kLeave:
      slot<Leave>(body);
      return {};
    case MessageType::kError: {
      Error& e = slot<Error>(body);
      std::size_t code_at = c.offset();
      std::uint64_t code = 0;
      if (Status s = c.read_uint("code", code); !s) return s;
      if (code > std::numeric_limits<std::uint32_t>::max()) {
        return Status::corruption("code" + at(code_at) + " is over 2^32-1");
      }
      e.code = static_cast<ErrorCode>(code);
      std::size_t text_at = c.offset();
      std::span<const std::byte> t;
      if (Status s = c.read_str("text", t); !s) return s;
      if (t.size() > kMaxErrorTextBytes) {
        return Status::limit_exceeded("text" + at(text_at) + " is " + std::to_string(t.size()) +
                                      " bytes, more than " + std::to_string(kMaxErrorTextBytes));
      }
      e.text.assign(reinterpret_cast<const char*>(t.data()), t.size());
      return {};
    }
    case MessageType::kBundle:
      return read_bundle(c, slot<Bundle>(body).entries);
  }
  return Status::unsupported("unknown message type");
}

Status decode_impl(std::span<const std::byte> frame, Message& out) {
  if (frame.size() > fmt::kMaxFrameBytes) {
    return Status::corruption("control message is " + std::to_string(frame.size()) +
                              " bytes, longer than any valid one (" +
                              std::to_string(fmt::kMaxFrameBytes) + ")");
  }
  detail::Cursor c(frame.data(), frame.size());
  std::uint64_t fields = 0;
  if (Status s = c.read_array("message", fields); !s) return s;
  if (fields < 3) {
    return Status::corruption("message is an array of " + std::to_string(fields) +
                              " elements, expected at least 3");
  }
  std::uint64_t version = 0;
  if (Status s = c.read_uint("version", version); !s) return s;
  if (version != kProtocolVersion) {
    return Status::unsupported("unsupported consumer protocol version " + std::to_string(version));
  }
  std::size_t type_at = c.offset();
  std::uint64_t type = 0;
  if (Status s = c.read_uint("type", type); !s) return s;
  if (type < fmt::kMinType || type > fmt::kMaxType) {
    return Status::unsupported("unknown message type " + std::to_string(type) + at(type_at));
  }
  auto t = static_cast<MessageType>(type);
  const bool long_join = t == MessageType::kJoin && fields == field_count(t) + 1;
  if (fields != field_count(t) && !long_join) {
    return Status::corruption(std::string(message_type_name(t)) + " is an array of " +
                              std::to_string(fields) + " elements, expected " +
                              std::to_string(field_count(t)));
  }
  std::size_t member_at = c.offset();
  if (Status s = c.read_uint("member", out.member); !s) return s;
  if (out.member == 0 && t != MessageType::kError) {
    return Status::corruption("member" + at(member_at) + " is 0");
  }
  if (Status s = read_body(c, t, fields, out.body); !s) return s;
  if (!c.at_end()) {
    return Status::corruption(std::to_string(c.remaining()) + " trailing bytes after " +
                              message_type_name(t) + at(c.offset()));
  }
  return {};
}

}  // namespace

const char* message_type_name(MessageType t) noexcept {
  switch (t) {
    case MessageType::kJoin:
      return "JOIN";
    case MessageType::kJoined:
      return "JOINED";
    case MessageType::kDeliver:
      return "DELIVER";
    case MessageType::kAck:
      return "ACK";
    case MessageType::kNack:
      return "NACK";
    case MessageType::kProgress:
      return "PROGRESS";
    case MessageType::kCredit:
      return "CREDIT";
    case MessageType::kPing:
      return "PING";
    case MessageType::kPong:
      return "PONG";
    case MessageType::kLeave:
      return "LEAVE";
    case MessageType::kError:
      return "ERROR";
    case MessageType::kBundle:
      return "BUNDLE";
  }
  return "UNKNOWN";
}

const char* error_code_name(ErrorCode c) noexcept {
  switch (c) {
    case ErrorCode::kUnknownMember:
      return "unknown member";
    case ErrorCode::kBadPrefetch:
      return "bad prefetch";
    case ErrorCode::kTooManyGroups:
      return "too many groups";
    case ErrorCode::kGroupFull:
      return "group full";
    case ErrorCode::kUnknownTag:
      return "unknown tag";
    case ErrorCode::kMalformed:
      return "malformed message";
    case ErrorCode::kBadStart:
      return "bad start or group name";
    case ErrorCode::kPendingLimit:
      return "pending limit reached";
  }
  return "unknown error";
}

bool valid_group_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > kMaxGroupNameBytes) return false;
  for (char ch : name) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

zmq::message_t encode(const Message& m) {
  MessageType t = m.type();
  if (m.member == 0 && t != MessageType::kError) misuse("member 0");
  std::size_t body = std::visit(SizeOf{}, m.body);
  zmq::message_t frame(fmt::kFieldsOffset + body);
  Writer w(static_cast<std::byte*>(frame.data()));
  write_head(w, t, field_count(m), m.member);
  std::visit(WriteBody{w}, m.body);
  return frame;
}

zmq::message_t encode_ack(std::uint64_t member, std::span<const TagRange> ranges) {
  if (member == 0) misuse("member 0");
  check_ranges(ranges);
  zmq::message_t frame(fmt::kFieldsOffset + array_header_bytes(ranges.size()) +
                       ranges.size() * fmt::kRangeBytes);
  Writer w(static_cast<std::byte*>(frame.data()));
  write_head(w, MessageType::kAck, field_count(MessageType::kAck), member);
  write_ranges(w, ranges);
  return frame;
}

Status decode_into(std::span<const std::byte> frame, Message& out) noexcept {
  try {
    return decode_impl(frame, out);
  } catch (const std::bad_alloc&) {
    return Status::io_error("out of memory decoding a consumer message");
  }
}

Result<Message> decode(std::span<const std::byte> frame) noexcept {
  try {
    Message m;
    if (Status s = decode_impl(frame, m); !s) return s;
    return m;
  } catch (const std::bad_alloc&) {
    return Status::io_error("out of memory decoding a consumer message");
  }
}

ErrorCode error_code_for(const Status& decode_error) noexcept {
  return decode_error.code() == Code::kInvalidArgument ? ErrorCode::kBadStart
                                                       : ErrorCode::kMalformed;
}

}  // namespace zkit::consumer
