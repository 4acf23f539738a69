// Tests of the Batcher's flush policy with explicit clock readings (no sleeping): records, bytes,
// linger, adaptive pacing, explicit flush, sequence numbers and misuse.
#include "zkit/batcher.hpp"

#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "zkit/envelope.hpp"

using namespace zkit;
using namespace std::chrono_literals;
using Clock = Batcher::Clock;

namespace {

const Clock::time_point T0 = Clock::time_point{} + 1h;

std::vector<std::string> records_of(const SealedBatch& s) {
  auto b = envelope::decode(
      std::as_bytes(std::span(static_cast<const char*>(s.frame.data()), s.frame.size())));
  REQUIRE(b.is_ok());
  CHECK(b->header().seq == s.seq);
  CHECK(b->size() == s.records);
  std::vector<std::string> out;
  for (auto r : *b) out.emplace_back(reinterpret_cast<const char*>(r.data()), r.size());
  return out;
}

BatcherOptions linger_mode(std::size_t max_records = 100) {
  BatcherOptions o;
  o.mode = FlushMode::kLinger;
  o.max_records = max_records;
  o.linger = 1000us;
  o.producer_id = 77;
  return o;
}

using Strings = std::vector<std::string>;

}  // namespace

TEST_CASE("Batcher seals at max_records", "[batcher]") {
  Batcher b(linger_mode(3));
  CHECK_FALSE(b.add("a", T0));
  CHECK_FALSE(b.add("b", T0));
  CHECK(b.held_records() == 2);
  CHECK(b.add("c", T0));
  CHECK(b.held_records() == 0);
  CHECK_FALSE(b.deadline());
  auto s = b.take();
  REQUIRE(s);
  CHECK(s->seq == 1);
  CHECK(s->records == 3);
  CHECK(s->reason == FlushReason::kRecords);
  CHECK(records_of(*s) == Strings{"a", "b", "c"});
  CHECK_FALSE(b.take());
}

TEST_CASE("Batcher seals on bytes, and the message that would overflow starts the next batch",
          "[batcher]") {
  BatcherOptions o = linger_mode();
  const std::string ten(10, 'x');
  o.max_bytes = envelope::kEncodedHeaderBytes + 2 * envelope::record_overhead(10) + 20;  // 59
  Batcher b(o);
  CHECK_FALSE(b.add(ten, T0));
  CHECK_FALSE(b.add(ten, T0));  // exactly max_bytes: still held
  CHECK(b.held_bytes() == o.max_bytes);
  CHECK(b.add("y", T0 + 1us));  // would overflow: the held two are sealed first
  auto s = b.take();
  REQUIRE(s);
  CHECK(s->reason == FlushReason::kBytes);
  CHECK(records_of(*s) == Strings{ten, ten});
  CHECK(s->frame.size() <= o.max_bytes);
  CHECK(b.held_records() == 1);
  REQUIRE(b.deadline());
  CHECK(*b.deadline() == T0 + 1us + 1000us);  // the new batch's linger runs from "y"
  CHECK(b.flush(T0 + 2us));
  auto t = b.take();
  REQUIRE(t);
  CHECK(records_of(*t) == Strings{"y"});
  CHECK(t->seq == 2);
}

TEST_CASE("A message too large for max_bytes throws and leaves the held batch intact",
          "[batcher]") {
  BatcherOptions o = linger_mode();
  o.max_bytes = 100;
  Batcher b(o);
  CHECK_FALSE(b.add("kept", T0));
  const std::string big(100 - envelope::kEncodedHeaderBytes - 1, 'z');  // 64 + 2 > 65 bytes left
  CHECK_THROWS_AS(b.add(big, T0), std::length_error);
  CHECK(b.held_records() == 1);
  CHECK_FALSE(b.has_sealed());
  CHECK(b.next_seq() == 1);
  const std::string fits(100 - envelope::kEncodedHeaderBytes - 2, 'f');  // alone it just fits
  CHECK(b.add(fits, T0));  // seals "kept" on bytes, holds "fits"
  CHECK(b.flush(T0));
  auto first = b.take();
  auto second = b.take();
  REQUIRE(first);
  REQUIRE(second);
  CHECK(records_of(*first) == Strings{"kept"});
  CHECK(records_of(*second) == Strings{fits});
  CHECK(second->frame.size() == 100);
}

TEST_CASE("Batcher seals on linger, counted from the first message of the batch", "[batcher]") {
  Batcher b(linger_mode());
  CHECK_FALSE(b.deadline());
  CHECK_FALSE(b.poll(T0));
  CHECK_FALSE(b.add("a", T0));
  REQUIRE(b.deadline());
  CHECK(*b.deadline() == T0 + 1000us);
  CHECK_FALSE(b.add("b", T0 + 600us));
  CHECK(*b.deadline() == T0 + 1000us);  // later messages do not move it
  CHECK_FALSE(b.poll(T0 + 999us));
  CHECK(b.held_records() == 2);
  CHECK(b.poll(T0 + 1000us));
  auto s = b.take();
  REQUIRE(s);
  CHECK(s->reason == FlushReason::kLinger);
  CHECK(records_of(*s) == Strings{"a", "b"});
  CHECK_FALSE(b.deadline());

  // An owner that adds without polling: the overdue batch is sealed with the new message in it.
  CHECK_FALSE(b.add("c", T0 + 2000us));
  CHECK(b.add("d", T0 + 5000us));
  auto t = b.take();
  REQUIRE(t);
  CHECK(t->reason == FlushReason::kLinger);
  CHECK(records_of(*t) == Strings{"c", "d"});
  CHECK(t->seq == 2);
}

TEST_CASE("Adaptive mode seals an idle producer's message alone, at once", "[batcher]") {
  BatcherOptions o;  // kAdaptive is the default
  REQUIRE(o.mode == FlushMode::kAdaptive);
  o.adaptive_interval = 50us;
  Batcher b(o);
  CHECK(b.add("first", T0));
  auto s = b.take();
  REQUIRE(s);
  CHECK(s->reason == FlushReason::kAdaptive);
  CHECK(s->records == 1);
  CHECK_FALSE(b.deadline());
  // Idle again (more than adaptive_interval since the last seal): again no waiting.
  CHECK(b.add("later", T0 + 1s));
  REQUIRE(b.take());
}

TEST_CASE("Adaptive mode under load holds messages until last seal + adaptive_interval",
          "[batcher]") {
  BatcherOptions o;
  o.adaptive_interval = 50us;
  o.linger = 1000us;
  Batcher b(o);
  REQUIRE(b.add("m0", T0));  // idle: sealed at once, last seal T0
  REQUIRE(b.take());
  CHECK_FALSE(b.add("m1", T0 + 10us));  // busy: held
  REQUIRE(b.deadline());
  CHECK(*b.deadline() == T0 + 50us);
  CHECK_FALSE(b.add("m2", T0 + 20us));
  CHECK_FALSE(b.add("m3", T0 + 49us));
  CHECK_FALSE(b.poll(T0 + 49us));
  CHECK(b.poll(T0 + 50us));
  auto s = b.take();
  REQUIRE(s);
  CHECK(s->reason == FlushReason::kAdaptive);
  CHECK(records_of(*s) == Strings{"m1", "m2", "m3"});
  // Next batch paced from that seal.
  CHECK_FALSE(b.add("m4", T0 + 60us));
  CHECK(*b.deadline() == T0 + 100us);
  CHECK(b.add("m5", T0 + 100us));  // deadline reached while adding: sealed with m5 in it
  auto t = b.take();
  REQUIRE(t);
  CHECK(t->reason == FlushReason::kAdaptive);
  CHECK(records_of(*t) == Strings{"m4", "m5"});

  // A full batch under load is sealed on records regardless of pacing.
  BatcherOptions small = o;
  small.max_records = 2;
  Batcher c(small);
  REQUIRE(c.add("x", T0));
  REQUIRE(c.take());
  CHECK_FALSE(c.add("y", T0 + 1us));
  CHECK(c.add("z", T0 + 2us));
  auto u = c.take();
  REQUIRE(u);
  CHECK(u->reason == FlushReason::kRecords);
}

TEST_CASE("Adaptive mode never holds a message past linger", "[batcher]") {
  BatcherOptions o;
  o.adaptive_interval = 5000us;
  o.linger = 1000us;
  Batcher b(o);
  REQUIRE(b.add("a", T0));
  REQUIRE(b.take());
  CHECK_FALSE(b.add("b", T0 + 100us));
  CHECK(*b.deadline() == T0 + 1100us);  // linger comes before the pacing deadline
  CHECK(b.poll(T0 + 1100us));
  auto s = b.take();
  REQUIRE(s);
  CHECK(s->reason == FlushReason::kLinger);
}

TEST_CASE("flush seals what is held, and nothing when nothing is held", "[batcher]") {
  Batcher b(linger_mode());
  CHECK_FALSE(b.flush(T0));
  CHECK(b.next_seq() == 1);  // an empty flush uses no sequence number
  CHECK_FALSE(b.add("a", T0));
  CHECK(b.flush(T0));
  auto s = b.take();
  REQUIRE(s);
  CHECK(s->reason == FlushReason::kExplicit);
  CHECK(s->seq == 1);
  CHECK(std::string(flush_reason_name(s->reason)) == "explicit");
}

TEST_CASE("Sequence numbers start at 1 and rise by one; frames carry seq and producer",
          "[batcher]") {
  Batcher b(linger_mode(1));
  for (std::uint64_t i = 1; i <= 5; ++i) {
    CHECK(b.next_seq() == i);
    REQUIRE(b.add(std::to_string(i), T0));
  }
  for (std::uint64_t i = 1; i <= 5; ++i) {
    auto s = b.take();
    REQUIRE(s);
    CHECK(s->seq == i);
    auto h = envelope::peek(
        std::as_bytes(std::span(static_cast<const char*>(s->frame.data()), s->frame.size())));
    REQUIRE(h.is_ok());
    CHECK(h->seq == i);
    CHECK(h->producer_id == 77);
    CHECK(h->created_ns > 0);
    CHECK(records_of(*s) == Strings{std::to_string(i)});
  }
}

TEST_CASE("Batchers sharing a SequenceCounter number one series", "[batcher]") {
  SequenceCounter counter;
  Batcher a(linger_mode(1), &counter);
  Batcher b(linger_mode(1), &counter);
  REQUIRE(a.add("a1", T0));
  REQUIRE(b.add("b1", T0));
  REQUIRE(a.add("a2", T0));
  REQUIRE(b.add("b2", T0));
  CHECK(a.take()->seq == 1);
  CHECK(b.take()->seq == 2);
  CHECK(a.take()->seq == 3);
  CHECK(b.take()->seq == 4);
  CHECK(counter.next == 5);
  CHECK(a.next_seq() == 5);
}

TEST_CASE("A moved Batcher keeps its sequence and its held and sealed batches", "[batcher]") {
  Batcher a(linger_mode(2));
  REQUIRE_FALSE(a.add("1", T0));
  REQUIRE(a.add("2", T0));
  CHECK(a.add("3", T0));  // true: batch 1 is still waiting to be taken
  Batcher b(std::move(a));
  CHECK(b.next_seq() == 2);
  CHECK(b.producer_id() == 77);
  CHECK(b.held_records() == 1);
  CHECK(b.has_sealed());
  REQUIRE(b.flush(T0));
  CHECK(b.take()->seq == 1);
  auto s = b.take();
  REQUIRE(s);
  CHECK(s->seq == 2);
  CHECK(records_of(*s) == Strings{"3"});

  Batcher c(linger_mode());
  c = std::move(b);
  REQUIRE_FALSE(c.add("4", T0));
  REQUIRE(c.flush(T0));
  CHECK(c.take()->seq == 3);
}

TEST_CASE("Sealed batches keep send order across records, bytes and compression", "[batcher]") {
  BatcherOptions o = linger_mode(7);
  o.max_bytes = 600;
  o.encoder.compression = envelope::Compression::kZstd;
  o.encoder.compress_min_bytes = 0;
  Batcher b(o);
  std::vector<std::string> sent, got;
  auto now = T0;
  for (int i = 0; i < 200; ++i) {
    std::string m(static_cast<std::size_t>(i % 50), static_cast<char>('a' + i % 26));
    m += std::to_string(i);
    sent.push_back(m);
    now += 10us;
    b.add(m, now);
    b.poll(now);
  }
  b.flush(now);
  std::uint64_t seq = 0;
  while (auto s = b.take()) {
    CHECK(s->seq == ++seq);
    for (auto& r : records_of(*s)) got.push_back(r);
  }
  CHECK(got == sent);
}

TEST_CASE("Batcher options are checked; producer id 0 picks a random one", "[batcher]") {
  BatcherOptions o;
  o.max_records = 0;
  CHECK_THROWS_AS(Batcher(o), std::invalid_argument);
  o = {};
  o.max_bytes = envelope::kEncodedHeaderBytes + 1;
  CHECK_THROWS_AS(Batcher(o), std::invalid_argument);
  o = {};
  o.linger = -1us;
  CHECK_THROWS_AS(Batcher(o), std::invalid_argument);
  Batcher x{BatcherOptions{}};
  Batcher y{BatcherOptions{}};
  CHECK(x.producer_id() != 0);
  CHECK(x.producer_id() != y.producer_id());
}

TEST_CASE("Adding without a time still seals on records, bytes and an idle producer",
          "[batcher]") {
  zkit::BatcherOptions o;
  o.max_records = 40;  // not a multiple of kClockStride: the count check must not rely on it
  o.max_bytes = 35 + 30 * 4;
  o.adaptive_interval = std::chrono::microseconds(0);  // every batch start counts as idle
  zkit::Batcher idle(o);
  CHECK(idle.add(std::string_view("x")));
  REQUIRE(idle.take()->reason == zkit::FlushReason::kAdaptive);

  o.mode = zkit::FlushMode::kLinger;
  o.linger = std::chrono::hours(1);
  zkit::Batcher b(o);
  std::size_t sealed_at = 0;
  for (std::size_t i = 1; i <= 100 && !sealed_at; ++i) {
    if (b.add(std::string_view("ab"))) sealed_at = i;
  }
  CHECK(sealed_at == 31);  // 30 records of 4 bytes fill 155 bytes: the 31st seals them first
  auto s = b.take();
  REQUIRE(s);
  CHECK(s->reason == zkit::FlushReason::kBytes);
  CHECK(s->records == 30);
}
