// The two-thread harness every one-way link benchmark uses, as templates over a sending end (Out)
// and a receiving end (In), so that raw libzmq, the Batcher, the typed sockets and the reliable
// link all pay for exactly the same loop.
//
//   In(zmq::context_t&, const InArgs&)   binds tcp://127.0.0.1:* in the receiving thread
//     std::string endpoint()             where the sender (or a device in between) connects
//     Next next(on_message, total, delivered)
//                                        handles at least one frame, calling on_message(span) for
//                                        every message in it; kDone once `delivered` reached the
//                                        sender's total; kTimeout after kReceiveTimeoutMs idle
//     std::uint64_t created_ns()         the last batch's created_ns, 0 when the link has none
//   Out(zmq::context_t&, const std::string& endpoint, const OutArgs&)   connects
//     void send(span)                    takes one message (throws SendTimeout when stuck)
//     std::optional<time_point> deadline(); void poll(); void finish()   (flush at the end)
//
// A Via (optional) stands between the two: given the receiver's endpoint it starts a device and
// returns the endpoint the sender connects to; the device lives as long as the returned holder.
#pragma once

#include <cstring>
#include <memory>
#include <optional>
#include <span>

#include "bench_util.hpp"
#include "zkit/envelope.hpp"

namespace zkit::bench {

using Bytes = std::span<const std::byte>;

inline constexpr int kReceiveTimeoutMs = 5000;  // a stuck run fails instead of hanging
inline constexpr int kReceiveSliceMs = 10;      // how often an idle receiver checks the total
inline constexpr int kSenderLingerMs = 5000;
inline constexpr int kLatencyWarmupMessages = 10;  // stamp 0; make sure the connection is up
inline constexpr std::size_t kSaturationSampleStride = 16;
inline constexpr std::size_t kMaxSamples = std::size_t{2} << 20;

// The receiver stopped taking messages (it failed); the sender gives up instead of blocking.
struct SendTimeout {};

enum class Next { kFrame, kDone, kTimeout };

// For receivers that poll in slices: kDone when the sender's total is known and reached.
inline bool all_delivered(const std::atomic<std::uint64_t>& total, std::uint64_t delivered) {
  std::uint64_t t = total.load(std::memory_order_acquire);
  return t != Window::kUnknown && delivered >= t;
}

inline std::string timeout_error(std::uint64_t delivered, const std::atomic<std::uint64_t>& total) {
  std::uint64_t t = total.load(std::memory_order_acquire);
  return "receive timed out after " + std::to_string(delivered) + " messages (sender: " +
         (t == Window::kUnknown ? std::string("still sending") : std::to_string(t) + " sent") + ")";
}

// A device between sender and receiver: holder keeps it running.
struct ViaHandle {
  std::shared_ptr<void> holder;
  std::string endpoint;
};
using Via = std::function<ViaHandle(const std::string& receiver_endpoint)>;

namespace detail {

inline void stamp(std::vector<std::byte>& payload, std::uint64_t ns) {
  std::memcpy(payload.data(), &ns, sizeof ns);
}

inline std::uint64_t stamp_of(Bytes message) {
  std::uint64_t ns = 0;
  if (message.size() >= sizeof ns) std::memcpy(&ns, message.data(), sizeof ns);
  return ns;
}

// Runs receive(ctx) -> R in one thread and send(ctx, endpoint) in another, with an optional Via.
template <class R, class Receive, class Send>
R two_threads(const Config& config, const Via* via, Receive receive, Send send,
              std::atomic<std::uint64_t>& total) {
  Contexts contexts(config.shared_context);
  std::promise<std::string> endpoint;
  std::future<std::string> endpoint_ready = endpoint.get_future();
  std::future<R> result = std::async(std::launch::async, [&] {
    try {
      return receive(contexts.receiver(), endpoint);
    } catch (const std::exception& e) {  // a malformed frame, a refused socket option
      R r;
      r.error = e.what();
      return r;
    }
  });
  ViaHandle device;
  std::thread sender;
  try {
    std::string ep = endpoint_ready.get();
    if (via) {
      device = (*via)(ep);
      ep = device.endpoint;
    }
    sender = std::thread([&, ep] {
      try {
        send(contexts.sender(), ep);
      } catch (const SendTimeout&) {
        total.store(0, std::memory_order_release);  // the receiver has already failed
      }
    });
  } catch (const std::exception& e) {
    total.store(0, std::memory_order_release);
    R r = result.get();
    if (r.error.empty()) r.error = e.what();
    return r;
  }
  R r = result.get();
  sender.join();
  return r;
}

}  // namespace detail

// Sends for config.warmup + config.duration as fast as Out takes messages of `size` bytes; the
// receiver measures over its Window.
template <class In, class Out, class InArgs, class OutArgs>
Measured measure_throughput(const Config& config, std::size_t size, const InArgs& in_args,
                            const OutArgs& out_args, const Via* via = nullptr) {
  std::atomic<std::uint64_t> total{Window::kUnknown};
  auto receive = [&](zmq::context_t& ctx, std::promise<std::string>& endpoint) {
    std::optional<In> in;
    try {
      in.emplace(ctx, in_args);
      endpoint.set_value(in->endpoint());
    } catch (const std::exception& e) {
      endpoint.set_exception(std::current_exception());
      Measured m;
      m.error = e.what();
      return m;
    }
    Window window(config.warmup, total);
    std::uint64_t messages = 0, bytes = 0, frames = 0, checksum = 0;
    auto on_message = [&](Bytes rec) {
      ++messages;
      bytes += rec.size();
      if (!rec.empty()) checksum += static_cast<std::uint8_t>(rec[0]);
    };
    for (;;) {
      Next n = in->next(on_message, total, messages);
      if (n != Next::kFrame) {
        Measured m = window.result(checksum);
        if (n == Next::kTimeout) m.error = timeout_error(messages, total);
        return m;
      }
      ++frames;
      if (window.delivered(messages, bytes, frames)) return window.result(checksum);
    }
  };
  auto send = [&](zmq::context_t& ctx, const std::string& endpoint) {
    Out out(ctx, endpoint, out_args);
    std::vector<std::byte> payload = make_payload(size);
    Bytes message(payload);
    Clock::time_point end = Clock::now() + config.warmup + config.duration;
    std::uint64_t n = 0;
    for (;; ++n) {
      if ((n & 63) == 0 && Clock::now() >= end) break;
      out.send(message);
    }
    out.finish();
    total.store(n, std::memory_order_release);
  };
  return detail::two_threads<Measured>(config, via, receive, send, total);
}

// rate > 0: `count` messages paced at `rate` msg/s. rate == 0: as fast as Out takes them for
// config.saturation (every kSaturationSampleStride-th message sampled).
template <class In, class Out, class InArgs, class OutArgs>
Latency measure_latency(const Config& config, std::size_t size, int rate, int count,
                        const InArgs& in_args, const OutArgs& out_args, const Via* via = nullptr) {
  std::atomic<std::uint64_t> total{Window::kUnknown};
  std::size_t stride = rate > 0 ? 1 : kSaturationSampleStride;
  auto receive = [&](zmq::context_t& ctx, std::promise<std::string>& endpoint) {
    Latency lat;
    std::optional<In> in;
    try {
      in.emplace(ctx, in_args);
      endpoint.set_value(in->endpoint());
    } catch (const std::exception& e) {
      endpoint.set_exception(std::current_exception());
      lat.error = e.what();
      return lat;
    }
    std::uint64_t delivered = 0;  // including warm-up
    Clock::time_point first{}, last{};
    for (;;) {
      std::uint64_t now_ns = 0;
      bool measured = false;
      Next n = in->next(
          [&](Bytes rec) {
            ++delivered;
            std::uint64_t sent_ns = detail::stamp_of(rec);
            if (sent_ns == 0) return;  // warm-up
            if (now_ns == 0) now_ns = envelope::unix_now_ns();  // once per frame
            measured = true;
            if (lat.messages++ % stride == 0 && lat.us.size() < kMaxSamples) {
              lat.us.push_back(static_cast<double>(static_cast<std::int64_t>(now_ns - sent_ns)) /
                               1e3);
            }
          },
          total, delivered);
      if (n == Next::kDone) break;
      if (n == Next::kTimeout) {
        lat.error = timeout_error(delivered, total);
        return lat;
      }
      if (measured) {
        Clock::time_point t = Clock::now();
        if (first == Clock::time_point{}) first = t;
        last = t;
        std::uint64_t created = in->created_ns();
        if (created != 0 && lat.batch_us.size() < kMaxSamples) {
          lat.batch_us.push_back(static_cast<double>(static_cast<std::int64_t>(now_ns - created)) /
                                 1e3);
        }
      }
      if (all_delivered(total, delivered)) break;
    }
    lat.seconds = std::chrono::duration<double>(last - first).count();
    std::sort(lat.us.begin(), lat.us.end());
    std::sort(lat.batch_us.begin(), lat.batch_us.end());
    return lat;
  };
  auto send = [&](zmq::context_t& ctx, const std::string& endpoint) {
    Out out(ctx, endpoint, out_args);
    std::vector<std::byte> payload = make_payload(std::max<std::size_t>(size, 8));
    std::uint64_t n = 0;
    detail::stamp(payload, 0);
    for (int i = 0; i < kLatencyWarmupMessages; ++i, ++n) {
      out.send(Bytes(payload));
      out.finish();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    Clock::time_point start = Clock::now();
    if (rate > 0) {
      auto interval = std::chrono::nanoseconds(1'000'000'000LL / rate);
      for (int i = 0; i < count; ++i, ++n) {
        Clock::time_point due = start + i * interval;
        // Sleep until the message is due, waking for the sender's own deadline meanwhile.
        for (Clock::time_point now = Clock::now(); now < due; now = Clock::now()) {
          std::optional<Clock::time_point> d = out.deadline();
          if (d && *d <= now) {
            out.poll();
            continue;
          }
          std::this_thread::sleep_until(d ? std::min(*d, due) : due);
        }
        detail::stamp(payload, envelope::unix_now_ns());
        out.send(Bytes(payload));
      }
    } else {
      Clock::time_point end = start + config.saturation;
      for (;; ++n) {
        if ((n & 63) == 0 && Clock::now() >= end) break;
        detail::stamp(payload, envelope::unix_now_ns());
        out.send(Bytes(payload));
      }
    }
    out.finish();
    total.store(n, std::memory_order_release);
  };
  return detail::two_threads<Latency>(config, via, receive, send, total);
}

}  // namespace zkit::bench
