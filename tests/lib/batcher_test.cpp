#include <catch2/catch.hpp>

#include "zkit/batcher.hpp"

using namespace zkit;

TEST_CASE("Batcher seals at max_records with rising sequence numbers", "[batcher]") {
  BatcherOptions o;
  o.max_records = 3;
  o.mode = FlushMode::kLinger;
  Batcher b(o);
  auto t = Batcher::Clock::now();
  CHECK_FALSE(b.add("a", t));
  CHECK_FALSE(b.add("b", t));
  CHECK(b.add("c", t));
  auto s = b.take();
  REQUIRE(s);
  CHECK(s->seq == 1);
  CHECK(s->records == 3);
  CHECK(s->reason == FlushReason::kRecords);
}
