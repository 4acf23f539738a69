// SocketStats and LatencyHistogram: bucket accuracy, percentiles, JSON snapshot.
#include "zkit/stats.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using zkit::LatencyHistogram;

TEST_CASE("Histogram percentiles are within the bucket precision of the true values", "[stats]") {
  LatencyHistogram h;
  for (std::uint64_t v = 1; v <= 100000; ++v) h.record(v * 1000);  // 1 us .. 100 ms
  CHECK(h.count() == 100000);
  CHECK(h.min() == 1000);
  CHECK(h.max() == 100000000);
  auto near = [](std::uint64_t got, double want) {
    return std::abs(static_cast<double>(got) - want) <= want * 0.035;
  };
  CHECK(near(h.percentile(50), 50e6));
  CHECK(near(h.percentile(99), 99e6));
  CHECK(near(h.percentile(99.9), 99.9e6));
  CHECK(h.percentile(100) == h.max());
  CHECK(h.percentile(0) == h.min());
}

TEST_CASE("Small values are exact and huge values land in the last bucket", "[stats]") {
  LatencyHistogram h;
  h.record(0);
  h.record(7);
  h.record(31);
  CHECK(h.percentile(33) == 0);
  CHECK(h.percentile(50) == 7);
  CHECK(h.percentile(100) == 31);
  h.record(~std::uint64_t{0});
  CHECK(h.max() == ~std::uint64_t{0});
  CHECK(h.percentile(100) == ~std::uint64_t{0});
}

TEST_CASE("An empty histogram reports zeros and a bad percentile throws", "[stats]") {
  LatencyHistogram h;
  CHECK(h.percentile(99) == 0);
  CHECK(h.min() == 0);
  CHECK_THROWS_AS(h.percentile(101), std::invalid_argument);
  CHECK_THROWS_AS(h.percentile(-1), std::invalid_argument);
}

TEST_CASE("Merged histograms count both sides", "[stats]") {
  LatencyHistogram a, b;
  a.record(100);
  b.record(1000000);
  a.merge(b);
  CHECK(a.count() == 2);
  CHECK(a.min() == 100);
  CHECK(a.max() == 1000000);
}

TEST_CASE("The JSON snapshot carries every counter, flush reasons by name and percentiles",
          "[stats]") {
  zkit::SocketStats s;
  s.messages_out = 10;
  s.flushes[static_cast<std::size_t>(zkit::FlushReason::kAdaptive)] = 3;
  s.decode_errors = 2;
  s.latency.record(5000);
  auto j = nlohmann::json::parse(s.to_json());
  CHECK(j["messages_out"] == 10);
  CHECK(j["flushes"]["adaptive"] == 3);
  CHECK(j["flushes"]["explicit"] == 0);
  CHECK(j["decode_errors"] == 2);
  CHECK(j["latency_ns"]["count"] == 1);
  CHECK(j["latency_ns"]["p99"].get<std::uint64_t>() > 4800);
  CHECK(j.contains("missed_batches"));
  CHECK(j.contains("unsent_messages"));
}

TEST_CASE("The JSON snapshot writes the largest counters exactly, the Subscriber's included",
          "[stats]") {
  zkit::SocketStats s;
  s.missed_batches = ~std::uint64_t{0};
  s.sequence_resets = 2;
  s.producers_forgotten = 3;
  std::string text = s.to_json();
  auto j = nlohmann::json::parse(text);
  CHECK(j["missed_batches"].get<std::uint64_t>() == ~std::uint64_t{0});
  CHECK(j["sequence_resets"] == 2);
  CHECK(j["producers_forgotten"] == 3);
  CHECK(j.size() == 17);
  CHECK(text.rfind("{\"batches_in\":0,", 0) == 0);  // keys in alphabetical order
}
