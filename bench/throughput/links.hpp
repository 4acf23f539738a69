// The PUSH/PULL links the benchmark compares over tcp loopback: raw libzmq (one frame per message)
// and batched (zkit::Batcher on the sending side, zkit::envelope::decode on the receiving side, the
// receiver reading every record). Each run uses fresh sockets in two threads.
#pragma once

#include <cstddef>

#include "bench_util.hpp"
#include "zkit/batcher.hpp"

namespace zkit::bench {

// Sends for config.warmup + config.duration as fast as the link takes messages of `size` bytes.
Measured throughput_raw(const Config& config, std::size_t size);
Measured throughput_batched(const Config& config, std::size_t size, const BatcherOptions& options);

// One-way latency (see Latency in bench_util.hpp).
// rate > 0: `count` messages paced at `rate` msg/s. rate == 0: saturation for config.saturation.
Latency latency_raw(const Config& config, std::size_t size, int rate, int count);
Latency latency_batched(const Config& config, std::size_t size, int rate, int count,
                        const BatcherOptions& options);

}  // namespace zkit::bench
