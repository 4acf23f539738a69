// Benchmark links over zkit's typed sockets (patterns/), each beside its raw libzmq baseline:
// Pusher/Puller, Publisher/Subscriber fan-out, Client/Server request/reply, the reliable link.
// A Middle puts a device (a proxy) between the two sides.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "harness.hpp"

namespace zkit::bench {

// A device that binds both of its sides: publishers/clients connect to `upstream`,
// subscribers/servers connect to `downstream`. It runs as long as `holder` lives.
struct Middle {
  std::shared_ptr<void> holder;
  std::string upstream;
  std::string downstream;
};
using MiddleFactory = std::function<Middle()>;

// PUSH/PULL through zkit::Pusher/Puller, batched (the defaults) or in raw mode.
Measured pushpull_typed(const Config& config, std::size_t size, bool raw_mode,
                        const Via* via = nullptr);

// One publisher, `subscribers` subscribers (every topic), each in its own thread and context.
struct FanOut {
  std::vector<Measured> subscribers;  // what each subscriber received in its window
  std::uint64_t lost = 0;             // measured messages some subscriber never got
  std::string error;
  double slowest() const;    // msgs/s of the slowest subscriber: the rate everyone kept up with
  double aggregate() const;  // sum of deliveries/s over subscribers
};
// batched: zkit::Publisher/Subscriber (send_timeout set, so back-pressure instead of drops);
// else raw libzmq PUB (ZMQ_XPUB_NODROP, blocking) / SUB with [topic][payload] frames.
FanOut pubsub(const Config& config, std::size_t size, int subscribers, bool batched,
              const MiddleFactory* middle = nullptr);

// Requests/s with `in_flight` requests outstanding; the server answers each at once with the
// request's bytes. batched: zkit::Client/Server; else raw libzmq DEALER/ROUTER, a frame each.
struct Rpc {
  std::uint64_t completed = 0;  // replies in the window
  double seconds = 0;
  std::string error;
  double per_s() const { return seconds > 0 ? static_cast<double>(completed) / seconds : 0; }
};
Rpc rpc(const Config& config, std::size_t size, int in_flight, bool batched,
        const MiddleFactory* middle = nullptr);

// ReliableSender -> ReliableReceiver (acknowledged, credit-based) with default options.
Measured reliable_link(const Config& config, std::size_t size);

}  // namespace zkit::bench
