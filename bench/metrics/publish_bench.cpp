// What a scrape costs the device's loop, in isolation: one take_ask() while nobody asks (every
// round pays it), and one answered ask (stats() of a spool node's size copied into the triple
// buffer, answered through the eventfd). Prints ns per operation; metrics_bench.py measures the
// same thing end to end. Usage: publish_bench [iterations]
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "zkit/metrics_server.hpp"
#include "zkit/spool_node.hpp"

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 200000;
  using Clock = std::chrono::steady_clock;
  zkit::SpoolNodeStats stats;
  stats.state = "running";
  for (int i = 0; i < 1000; ++i) {
    stats.batch_age.record(1000u * static_cast<unsigned>(i));
    stats.store.fsync_latency.record(5000u * static_cast<unsigned>(i));
  }
  zkit::StatsSlot<zkit::SpoolNodeStats> slot(stats);
  zkit::SnapshotExchange exchange;

  long asked = 0;
  auto t0 = Clock::now();
  for (long i = 0; i < n; ++i) asked += exchange.take_ask() ? 1 : 0;
  const double idle_ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / n;

  t0 = Clock::now();
  for (long i = 0; i < n; ++i) {
    slot.publish(stats);
    exchange.answered();
    stats.accepted_batches += static_cast<std::uint64_t>(slot.read().uptime_ms + 1);
  }
  const double publish_ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / n;
  std::printf("take_ask() with nobody asking: %.1f ns per round (%ld asks)\n", idle_ns, asked);
  std::printf("publish of SpoolNodeStats (%zu bytes) + answer: %.0f ns; at the 50/s cap %.4f%% "
              "of one core\n",
              sizeof stats, publish_ns, publish_ns * 50 / 1e9 * 100);
  return 0;
}
