// Raw and batched PUSH/PULL over tcp loopback through the shared harness (harness.hpp).
#include "links.hpp"

#include "endpoints.hpp"

namespace zkit::bench {

Measured throughput_raw(const Config& config, std::size_t size) {
  return measure_throughput<RawIn, RawOut>(config, size, NoArgs{}, NoArgs{});
}

Measured throughput_batched(const Config& config, std::size_t size, const BatcherOptions& options) {
  return measure_throughput<BatchedIn, BatchedOut>(config, size, NoArgs{}, BatchedArgs{options, {}});
}

Latency latency_raw(const Config& config, std::size_t size, int rate, int count) {
  return measure_latency<RawIn, RawOut>(config, size, rate, count, NoArgs{}, NoArgs{});
}

Latency latency_batched(const Config& config, std::size_t size, int rate, int count,
                        const BatcherOptions& options) {
  return measure_latency<BatchedIn, BatchedOut>(config, size, rate, count, NoArgs{},
                                                BatchedArgs{options, {}});
}

}  // namespace zkit::bench
