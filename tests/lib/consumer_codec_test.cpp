// The consumer protocol's control-message codec: round trips, the fixed layout, bounds, malformed
// input, and a DELIVER decode that allocates nothing.
#include "zkit/consumer_codec.hpp"

#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "alloc_watch.hpp"
#include "consumer_format.hpp"

using namespace zkit;
using namespace zkit::consumer;

namespace {

std::vector<std::byte> bytes(std::initializer_list<int> l) {
  std::vector<std::byte> v;
  for (int b : l) v.push_back(static_cast<std::byte>(b));
  return v;
}

std::vector<std::byte> bytes_of(const zmq::message_t& m) {
  auto* p = static_cast<const std::byte*>(m.data());
  return {p, p + m.size()};
}

void expect_error(std::span<const std::byte> frame, Code code, const std::string& fragment) {
  Result<Message> r = decode(frame);
  REQUIRE_FALSE(r.is_ok());
  INFO(r.status().to_string());
  CHECK(r.status().code() == code);
  CHECK(r.status().message().find(fragment) != std::string::npos);
}

// One message of every type, with values that use the whole width of each field.
std::vector<Message> every_type() {
  constexpr std::uint64_t kBig = 0xfffffffffffffffeull;
  return {
      {0x0102030405060708ull,
       Join{"orders.eu-1_A", 16, 1000, StartKind::kPosition, 7, kBig, 30000, kJoinManualAck}},
      {0x0a0b, Join{"w", 64, 0, StartKind::kEarliest, 0, 0, 0, 0, 256 * 1024}},
      {1, Joined{std::string(64, 'g'), 30000, 1666, 5}},
      {2, Deliver{kBig, 3, 12, 4096}},
      {3, Ack{{{1, 1}, {3, kBig}}}},
      {4, Nack{9, 250}},
      {5, Progress{kBig}},
      {6, Credit{1024, 0}},
      {7, Ping{}},
      {8, Pong{}},
      {9, Leave{}},
      {10, Error{ErrorCode::kUnknownTag, "tag 17 is not yours"}},
      {0, Error{ErrorCode::kMalformed, std::string(kMaxErrorTextBytes, 'x')}},
      {11, Bundle{{{kBig, 1, 3, 64, 30000}, {kBig - 1, 7, kBig, kBig, 1}}}},
      {12, Bundle{std::vector<BundleEntry>(kMaxBundleBatches, BundleEntry{1, 1, 1, 1, kBig})}},
  };
}

}  // namespace

TEST_CASE("Every message type survives a round trip", "[lib][consumer_codec]") {
  for (const Message& m : every_type()) {
    INFO(message_type_name(m.type()));
    zmq::message_t f = encode(m);
    CHECK(f.size() <= format::kMaxWrittenFrameBytes);
    Result<Message> back = decode(f);
    REQUIRE(back.is_ok());
    CHECK(*back == m);
  }
}

TEST_CASE("Types are numbered 20 to 31 in variant order", "[lib][consumer_codec]") {
  CHECK(Message{1, Join{"g"}}.type() == MessageType::kJoin);
  CHECK(static_cast<int>(Message{1, Deliver{1, 1, 0, 0}}.type()) == 22);
  CHECK(static_cast<int>(Message{1, Error{}}.type()) == 30);
  CHECK(static_cast<int>(Message{1, Bundle{}}.type()) == 31);
  CHECK(std::string(message_type_name(MessageType::kBundle)) == "BUNDLE");
  CHECK(std::string(message_type_name(MessageType::kProgress)) == "PROGRESS");
  CHECK(std::string(error_code_name(ErrorCode::kPendingLimit)) == "pending limit reached");
  CHECK(std::string(error_code_name(static_cast<ErrorCode>(99))) == "unknown error");
}

TEST_CASE("The writer uses the fixed-width layout of consumer_format.hpp",
          "[lib][consumer_codec]") {
  auto b = bytes_of(encode(Message{7, Deliver{9, 2, 3, 4}}));
  REQUIRE(b.size() == format::kFieldsOffset + 4 * format::kUintBytes);
  CHECK(b[0] == std::byte{0x97});
  CHECK(b[format::kVersionOffset] == std::byte{1});
  CHECK(b[format::kTypeOffset] == std::byte{22});
  CHECK(b[format::kMemberOffset] == std::byte{0xcf});
  CHECK(b[format::kMemberOffset + 8] == std::byte{7});
  CHECK(b[format::kFieldsOffset] == std::byte{0xcf});
  CHECK(b[format::kFieldsOffset + 8] == std::byte{9});
  CHECK(b[format::kFieldsOffset + 9 + 8] == std::byte{2});
  CHECK(encode(Message{1, Ping{}}).size() == 12);
  // JOIN: fixstr group then seven numbers.
  auto j = bytes_of(encode(Message{1, Join{"ab"}}));
  CHECK(j[0] == std::byte{0x9b});
  CHECK(j[format::kFieldsOffset] == std::byte{0xa2});
  CHECK(j.size() == format::kFieldsOffset + 3 + 7 * format::kUintBytes);
  // A JOIN with bundle_bytes: 12 elements, the 12th after the flags; without, the 11 of before.
  Join jb{"ab"};
  jb.bundle_bytes = 65536;
  auto k = bytes_of(encode(Message{1, jb}));
  CHECK(k[0] == std::byte{0x9c});
  REQUIRE(k.size() == j.size() + format::kUintBytes);
  CHECK(std::equal(j.begin() + 1, j.end(), k.begin() + 1));
  Result<Message> eleven = decode(j);
  REQUIRE(eleven.is_ok());
  CHECK(eleven->get<Join>()->bundle_bytes == 0);
  // BUNDLE: [1, 31, member, entries], each entry a fixarray of 5 numbers.
  auto u = bytes_of(encode(Message{1, Bundle{{{1, 1, 0, 0, 10}, {2, 1, 0, 10, 20}}}}));
  CHECK(u[0] == std::byte{0x94});
  CHECK(u[format::kTypeOffset] == std::byte{31});
  CHECK(u[format::kFieldsOffset] == std::byte{0x92});
  CHECK(u[format::kFieldsOffset + 1] == std::byte{0x95});
  CHECK(u.size() == format::kFieldsOffset + 1 + 2 * format::kBundleEntryBytes);
  // ACK of 16 ranges: array16 header.
  std::vector<TagRange> r(16, TagRange{1, 2});
  auto a = bytes_of(encode_ack(1, r));
  CHECK(a[format::kFieldsOffset] == std::byte{0xdc});
  CHECK(a.size() == format::kFieldsOffset + 3 + 16 * format::kRangeBytes);
}

TEST_CASE("encode_ack writes what encode writes for the same ranges", "[lib][consumer_codec]") {
  std::vector<TagRange> r{{1, 4}, {6, 6}, {9, 100}};
  CHECK(bytes_of(encode_ack(42, r)) == bytes_of(encode(Message{42, Ack{r}})));
  std::vector<TagRange> full(kMaxAckRanges, TagRange{5, 5});
  CHECK(encode_ack(42, full).size() == format::kMaxWrittenFrameBytes);
}

TEST_CASE("Compact MessagePack from another writer is accepted", "[lib][consumer_codec]") {
  // [1, 22, 5, 300, 1, 0, 16]: DELIVER, member 5, tag 300, first delivery, segment 0 offset 16.
  auto f = bytes({0x97, 0x01, 0x16, 0x05, 0xcd, 0x01, 0x2c, 0x01, 0x00, 0x10});
  Result<Message> m = decode(f);
  REQUIRE(m.is_ok());
  CHECK(m->member == 5);
  REQUIRE(m->get<Deliver>() != nullptr);
  CHECK(*m->get<Deliver>() == Deliver{300, 1, 0, 16});
  // [1, 23, 5, [[1, 3]]] with an array16 outer ranges header and str8 in a JOIN.
  auto ack = bytes({0x94, 0x01, 0x17, 0x05, 0xdc, 0x00, 0x01, 0x92, 0x01, 0x03});
  Result<Message> a = decode(ack);
  REQUIRE(a.is_ok());
  CHECK(a->get<Ack>()->ranges == std::vector<TagRange>{{1, 3}});
  auto join =
      bytes({0x9b, 0x01, 0x14, 0x05, 0xd9, 0x01, 'w', 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00});
  Result<Message> j = decode(join);
  REQUIRE(j.is_ok());
  CHECK(j->get<Join>()->group == "w");
  CHECK(j->get<Join>()->start_kind == StartKind::kLatest);
}

TEST_CASE("A truncated message of any type names a field and is Corruption",
          "[lib][consumer_codec]") {
  for (const Message& m : every_type()) {
    auto full = bytes_of(encode(m));
    for (std::size_t n = 0; n < full.size(); ++n) {
      Result<Message> r = decode(std::span(full.data(), n));
      INFO(message_type_name(m.type()) << " cut at " << n << ": " << r.status().to_string());
      REQUIRE_FALSE(r.is_ok());
      CHECK(r.status().code() == Code::kCorruption);
    }
  }
  expect_error(bytes({0x97, 0x01, 0x16, 0xcf, 0, 0}), Code::kCorruption,
               "truncated at byte 6 (member)");
}

TEST_CASE("Trailing bytes and wrong element counts are rejected", "[lib][consumer_codec]") {
  auto f = bytes_of(encode(Message{1, Ping{}}));
  f.push_back(std::byte{0});
  expect_error(f, Code::kCorruption, "1 trailing bytes after PING at byte 12");
  // PING declared with 4 elements.
  expect_error(bytes({0x94, 0x01, 0x1b, 0x01, 0x01}), Code::kCorruption,
               "PING is an array of 4 elements, expected 3");
  expect_error(bytes({0x92, 0x01, 0x1b}), Code::kCorruption, "expected at least 3");
  expect_error(bytes({0x01}), Code::kCorruption, "message at byte 0 is not an array");
}

TEST_CASE("Version, unknown types and reliable-link frames are Unsupported",
          "[lib][consumer_codec]") {
  expect_error(bytes({0x93, 0x02, 0x1b, 0x01}), Code::kUnsupported,
               "unsupported consumer protocol version 2");
  expect_error(bytes({0x93, 0x01, 0x20, 0x01}), Code::kUnsupported,
               "unknown message type 32 at byte 2");
  // A reliable-link HELLO [1, 1, session, acked, window].
  expect_error(bytes({0x95, 0x01, 0x01, 0x07, 0x00, 0x10}), Code::kUnsupported,
               "unknown message type 1");
  auto flags = bytes_of(encode(Message{1, Join{"g"}}));
  flags.back() = std::byte{6};  // flags low byte: bits 1 and 2
  expect_error(flags, Code::kUnsupported, "flags at byte");
}

TEST_CASE("Zero members, tags and counts are rejected where the protocol forbids them",
          "[lib][consumer_codec]") {
  expect_error(bytes({0x93, 0x01, 0x1b, 0x00}), Code::kCorruption, "member at byte 3 is 0");
  // An ERROR may carry member 0.
  CHECK(decode(encode(Message{0, Error{ErrorCode::kMalformed, "?"}})).is_ok());
  expect_error(bytes({0x97, 0x01, 0x16, 0x01, 0x00, 0x01, 0x00, 0x00}), Code::kCorruption,
               "tag at byte 4 is 0");
  expect_error(bytes({0x97, 0x01, 0x16, 0x01, 0x01, 0x00, 0x00, 0x00}), Code::kCorruption,
               "delivery_count at byte 5 is 0");
  // Tag 0 in an ACK, NACK or PROGRESS is well formed: the spool answers ERROR 5.
  CHECK(decode(bytes({0x94, 0x01, 0x19, 0x01, 0x00})).is_ok());
}

TEST_CASE("ACK ranges are bounded and ordered", "[lib][consumer_codec]") {
  // first > last.
  expect_error(bytes({0x94, 0x01, 0x17, 0x01, 0x91, 0x92, 0x05, 0x04}), Code::kCorruption,
               "range at byte 5 has first_tag 5 > last_tag 4");
  expect_error(bytes({0x94, 0x01, 0x17, 0x01, 0x90}), Code::kCorruption,
               "ranges at byte 4 is empty");
  expect_error(bytes({0x94, 0x01, 0x17, 0x01, 0x91, 0x93, 0x01, 0x02, 0x03}), Code::kCorruption,
               "range at byte 5 has 3 elements");
  // 1025 ranges declared: refused before reading them.
  expect_error(bytes({0x94, 0x01, 0x17, 0x01, 0xdc, 0x04, 0x01}), Code::kLimitExceeded,
               "1025 ranges, more than 1024");
  // A lying count within the bound costs no allocation for ranges that are not there.
  auto lying = bytes({0x94, 0x01, 0x17, 0x01, 0xdc, 0x04, 0x00, 0x92, 0x01, 0x01});
  {
    testing::AllocationWatch watch;
    Message out;
    Status s = decode_into(lying, out);
    CHECK(s.code() == Code::kCorruption);
    if (testing::AllocationWatch::available()) CHECK(watch.largest() < 1024);
  }
  std::vector<TagRange> too_many(kMaxAckRanges + 1, TagRange{1, 1});
  CHECK_THROWS_AS(encode_ack(1, too_many), std::invalid_argument);
  CHECK_THROWS_AS(encode_ack(1, {}), std::invalid_argument);
  std::vector<TagRange> backwards{{3, 2}};
  CHECK_THROWS_AS(encode_ack(1, backwards), std::invalid_argument);
}

TEST_CASE("BUNDLE entries are bounded and checked like DELIVERs", "[lib][consumer_codec]") {
  // [1, 31, 1, [[tag, count, segment, offset, bytes]]] with tag 0, then count 0.
  expect_error(bytes({0x94, 0x01, 0x1f, 0x01, 0x91, 0x95, 0x00, 0x01, 0x00, 0x00, 0x01}),
               Code::kCorruption, "tag at byte 6 is 0");
  expect_error(bytes({0x94, 0x01, 0x1f, 0x01, 0x91, 0x95, 0x01, 0x00, 0x00, 0x00, 0x01}),
               Code::kCorruption, "delivery_count at byte 7 is 0");
  expect_error(bytes({0x94, 0x01, 0x1f, 0x01, 0x90}), Code::kCorruption,
               "entries at byte 4 is empty");
  expect_error(bytes({0x94, 0x01, 0x1f, 0x01, 0x91, 0x94, 0xcc, 0x01, 0x01, 0x00, 0x00}),
               Code::kCorruption, "entry at byte 5 has 4 elements, expected 5");
  expect_error(bytes({0x94, 0x01, 0x1f, 0x01, 0x92, 0x95, 0x01, 0x01, 0x00, 0x00, 0x00}),
               Code::kCorruption, "truncated");  // two entries declared, room for one
  // 257 entries declared: refused before reading them.
  expect_error(bytes({0x94, 0x01, 0x1f, 0x01, 0xdc, 0x01, 0x01}), Code::kLimitExceeded,
               "257 batches, more than 256");
  CHECK(decode(bytes({0x94, 0x01, 0x1f, 0x01, 0x91, 0x95, 0x01, 0x01, 0x00, 0x00, 0x00}))
            .is_ok());  // a 0-byte entry is well formed; the consumer refuses its batch
  CHECK_THROWS_AS(encode(Message{1, Bundle{}}), std::invalid_argument);
  CHECK_THROWS_AS(encode(Message{1, Bundle{{{0, 1, 0, 0, 1}}}}), std::invalid_argument);
  CHECK_THROWS_AS(encode(Message{1, Bundle{{{1, 0, 0, 0, 1}}}}), std::invalid_argument);
  CHECK_THROWS_AS(
      encode(Message{1, Bundle{std::vector<BundleEntry>(kMaxBundleBatches + 1, {1, 1, 0, 0, 1})}}),
      std::invalid_argument);
}

TEST_CASE("Group names follow the rules and a bad one is InvalidArgument (ERROR 7)",
          "[lib][consumer_codec]") {
  CHECK(valid_group_name("a"));
  CHECK(valid_group_name("Orders_v2.eu-west"));
  CHECK(valid_group_name(std::string(64, 'z')));
  CHECK_FALSE(valid_group_name(""));
  CHECK_FALSE(valid_group_name(std::string(65, 'z')));
  CHECK_FALSE(valid_group_name("a b"));
  CHECK_FALSE(valid_group_name("a/b"));
  CHECK_FALSE(valid_group_name("é"));
  CHECK_THROWS_AS(encode(Message{1, Join{"a/b"}}), std::invalid_argument);

  // A JOIN naming group "a/b" as another writer would send it.
  auto f = bytes_of(encode(Message{1, Join{"abc"}}));
  f[format::kFieldsOffset + 2] = std::byte{'/'};
  Result<Message> r = decode(f);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == Code::kInvalidArgument);
  CHECK(r.status().message().find("group at byte 12") != std::string::npos);
  CHECK(error_code_for(r.status()) == ErrorCode::kBadStart);

  auto kind = bytes_of(encode(Message{1, Join{"abc"}}));
  kind[format::kFieldsOffset + 4 + 2 * 9 + 8] = std::byte{4};  // start_kind low byte
  Result<Message> k = decode(kind);
  REQUIRE_FALSE(k.is_ok());
  CHECK(k.status().code() == Code::kInvalidArgument);
  CHECK(k.status().message().find("start_kind at byte 34 is 4") != std::string::npos);
  CHECK(error_code_for(Status::corruption("x")) == ErrorCode::kMalformed);
}

TEST_CASE("ERROR texts and codes are bounded", "[lib][consumer_codec]") {
  CHECK_THROWS_AS(encode(Message{1, Error{ErrorCode::kMalformed, std::string(1025, 'x')}}),
                  std::invalid_argument);
  // text declared as a str16 of 1025 bytes, all present.
  std::vector<std::byte> f = bytes({0x95, 0x01, 0x1e, 0x01, 0x06, 0xda, 0x04, 0x01});
  f.resize(f.size() + 1025, std::byte{'x'});
  expect_error(f, Code::kLimitExceeded, "text at byte 5 is 1025 bytes");
  expect_error(bytes({0x95, 0x01, 0x1e, 0x01, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0, 0xa0}),
               Code::kCorruption, "code at byte 4 is over 2^32-1");
  // An unknown code is passed through.
  Result<Message> u = decode(bytes({0x95, 0x01, 0x1e, 0x01, 0x63, 0xa1, 'q'}));
  REQUIRE(u.is_ok());
  CHECK(static_cast<int>(u->get<Error>()->code) == 99);
}

TEST_CASE("A frame longer than any valid message is refused unread", "[lib][consumer_codec]") {
  std::vector<std::byte> f(format::kMaxFrameBytes + 1, std::byte{0});
  expect_error(f, Code::kCorruption, "longer than any valid one");
}

TEST_CASE("Decoding a DELIVER allocates nothing and decode_into reuses ACK capacity",
          "[lib][consumer_codec]") {
  if (!testing::AllocationWatch::available()) return;  // under AddressSanitizer
  zmq::message_t deliver = encode(Message{77, Deliver{5, 1, 2, 3}});
  std::vector<TagRange> r(20, TagRange{1, 2});
  zmq::message_t ack = encode_ack(77, r);
  Message out;
  REQUIRE(decode_into(ack, out));  // grows the ranges once
  {
    testing::AllocationWatch watch;
    Result<Message> d = decode(deliver);
    REQUIRE(d.is_ok());
    CHECK(d->get<Deliver>()->tag == 5);
    REQUIRE(decode_into(ack, out));
    CHECK(out.get<Ack>()->ranges.size() == 20);
    CHECK(watch.largest() == 0);
  }
}

TEST_CASE("Mutated frames of every type decode or fail cleanly, and what decodes re-encodes",
          "[lib][consumer_codec]") {
  // A deterministic xorshift: the same mutations on every run.
  std::uint64_t x = 0x9e3779b97f4a7c15ull;
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  std::size_t decoded = 0, refused = 0;
  for (const Message& m : every_type()) {
    auto base = bytes_of(encode(m));
    for (int round = 0; round < 2000; ++round) {
      auto f = base;
      int edits = 1 + static_cast<int>(next() % 3);
      for (int e = 0; e < edits; ++e) {
        std::size_t at = next() % f.size();
        switch (next() % 3) {
          case 0:
            f[at] = static_cast<std::byte>(next());
            break;
          case 1:
            f.erase(f.begin() + static_cast<std::ptrdiff_t>(at));
            break;
          default:
            f.insert(f.begin() + static_cast<std::ptrdiff_t>(at), static_cast<std::byte>(next()));
        }
        if (f.empty()) f.push_back(std::byte{0x90});
      }
      Result<Message> r = decode(f);
      if (!r.is_ok()) {
        ++refused;
        CHECK_FALSE(r.status().message().empty());
        continue;
      }
      ++decoded;
      // What decodes is a valid message: it re-encodes (a writer would accept it) and the
      // re-encoding reads back as the same message.
      Message back = *r;
      Result<Message> again = decode(encode(back));
      REQUIRE(again.is_ok());
      CHECK(*again == back);
    }
  }
  CHECK(decoded > 0);
  CHECK(refused > 0);
}
