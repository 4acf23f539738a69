// The reliable link's control-message codec: round trips, the fixed layout, malformed input.
#include "zkit/reliable_codec.hpp"

#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "reliable_format.hpp"

using namespace zkit;
using namespace zkit::reliable;

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
  CHECK(r.status().code() == code);
  INFO(r.status().to_string());
  CHECK(r.status().message().find(fragment) != std::string::npos);
}

const MessageType kAll[] = {MessageType::kHello, MessageType::kWelcome, MessageType::kData,
                            MessageType::kAck,   MessageType::kNack,    MessageType::kPing,
                            MessageType::kReset};

}  // namespace

TEST_CASE("Every message type survives a round trip", "[reliable][codec]") {
  for (MessageType t : kAll) {
    Message m{t, 0x0102030405060708ull, 0, 0};
    if (field_count(t) >= 4) m.seq = 0xfffffffffffffffeull;
    if (field_count(t) == 5) m.value = 42;
    zmq::message_t f = encode(m);
    Result<Message> back = decode(f);
    REQUIRE(back.is_ok());
    CHECK(*back == m);
  }
}

TEST_CASE("The writer uses the fixed-width layout of reliable_format.hpp", "[reliable][codec]") {
  zmq::message_t f = encode(Message{MessageType::kAck, 7, 9, 11});
  auto b = bytes_of(f);
  REQUIRE(b.size() == format::kMaxFrameBytes);
  CHECK(b[0] == std::byte{0x95});
  CHECK(b[format::kVersionOffset] == std::byte{1});
  CHECK(b[format::kTypeOffset] == std::byte{4});
  CHECK(b[format::kSessionOffset] == std::byte{0xcf});
  CHECK(b[format::kSessionOffset + 8] == std::byte{7});
  CHECK(b[format::kSeqOffset + 8] == std::byte{9});
  CHECK(b[format::kValueOffset + 8] == std::byte{11});
  CHECK(encode(Message{MessageType::kData, 1, 2, 0}).size() == 21);
  CHECK(encode(Message{MessageType::kReset, 1, 0, 0}).size() == 12);
}

TEST_CASE("Compact MessagePack integers from another writer are accepted", "[reliable][codec]") {
  // [1, 3, 5, 300] as a minimal encoder writes it: DATA, session 5, link seq 300.
  auto f = bytes({0x94, 0x01, 0x03, 0x05, 0xcd, 0x01, 0x2c});
  Result<Message> m = decode(f);
  REQUIRE(m.is_ok());
  CHECK(m->type == MessageType::kData);
  CHECK(m->session == 5);
  CHECK(m->seq == 300);
}

TEST_CASE("A truncated message names the field and offset", "[reliable][codec]") {
  auto full = bytes_of(encode(Message{MessageType::kHello, 3, 4, 5}));
  for (std::size_t n = 0; n < full.size(); ++n) {
    Result<Message> r = decode(std::span(full.data(), n));
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == Code::kCorruption);
    CHECK(r.status().message().find("truncated at byte") != std::string::npos);
  }
  expect_error(std::span(full.data(), 14), Code::kCorruption, "(acked)");
  expect_error(std::span(full.data(), 25), Code::kCorruption, "(window)");
}

TEST_CASE("Malformed messages are refused with typed errors", "[reliable][codec]") {
  expect_error(bytes({0x80}), Code::kCorruption, "message at byte 0 is not an array");
  expect_error(bytes({0x92, 0x01, 0x06}), Code::kCorruption, "expected 3 to 5");
  expect_error(bytes({0x93, 0x02, 0x07, 0x01}), Code::kUnsupported, "version 2");
  expect_error(bytes({0x93, 0x01, 0x09, 0x01}), Code::kUnsupported,
               "unknown message type 9 at byte 2");
  expect_error(bytes({0x93, 0x01, 0x00, 0x01}), Code::kUnsupported, "unknown message type 0");
  expect_error(bytes({0x94, 0x01, 0x07, 0x01, 0x02}), Code::kCorruption,
               "RESET is an array of 4 elements, expected 3");
  expect_error(bytes({0x93, 0x01, 0x07, 0x00}), Code::kCorruption, "session at byte 3 is 0");
  expect_error(bytes({0x93, 0x01, 0x07, 0xa1, 0x41}), Code::kCorruption,
               "session at byte 3 is not an unsigned integer");
  expect_error(bytes({0x93, 0x01, 0x07, 0x01, 0x00}), Code::kCorruption,
               "1 trailing bytes after RESET at byte 4");
  expect_error(bytes({0x94, 0x01, 0x03, 0x01, 0xc4, 0x00}), Code::kCorruption,
               "link_seq at byte 4 is not an unsigned integer");
  std::vector<std::byte> huge(1000, std::byte{0});
  expect_error(huge, Code::kCorruption, "longer than any valid one");
}

TEST_CASE("Encoding a program error throws", "[reliable][codec]") {
  CHECK_THROWS_AS(encode(Message{MessageType::kPing, 0, 1, 0}), std::invalid_argument);
  CHECK_THROWS_AS(encode(Message{static_cast<MessageType>(99), 1, 1, 0}), std::invalid_argument);
}

TEST_CASE("Random bytes never crash the decoder", "[reliable][codec]") {
  std::uint64_t x = 0x9e3779b97f4a7c15ull;
  std::vector<std::byte> buf(40);
  int ok = 0;
  for (int i = 0; i < 20000; ++i) {
    std::size_t n = static_cast<std::size_t>(x % 41);
    for (std::size_t j = 0; j < n; ++j) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      buf[j] = static_cast<std::byte>(j < 3 ? (j == 0 ? 0x93 + x % 3 : 1 + x % 7) : x & 0xff);
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    Result<Message> r = decode(std::span(buf.data(), n));
    if (r.is_ok()) {
      ++ok;
      CHECK(r->session != 0);
    }
  }
  CHECK(ok < 20000);
}
