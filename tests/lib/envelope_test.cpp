#include <catch2/catch.hpp>

#include <string>

#include "zkit/envelope.hpp"

using namespace zkit;

TEST_CASE("A two-record batch round-trips", "[envelope]") {
  envelope::Encoder enc;
  enc.begin(42);
  enc.add(std::string_view("hello"));
  enc.add(std::string_view(""));
  zmq::message_t frame = enc.finish(7, 123);
  auto b = envelope::decode(std::move(frame));
  REQUIRE(b.is_ok());
  CHECK(b->header().producer_id == 42);
  CHECK(b->header().seq == 7);
  CHECK(b->size() == 2);
  auto it = b->begin();
  CHECK(std::string(reinterpret_cast<const char*>((*it).data()), (*it).size()) == "hello");
  ++it;
  CHECK((*it).empty());
  ++it;
  CHECK(it == b->end());
}

TEST_CASE("An array claiming 4 billion items is refused at once", "[envelope]") {
  const unsigned char bad[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
  auto r = envelope::decode(std::as_bytes(std::span(bad)));
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == Code::kCorruption);
  INFO(r.status().to_string());
}
