// Report-only benchmark (not run by ctest): reliable link vs plain batched DEALER/ROUTER, same
// batcher, same message size, one sender thread and one receiver thread over tcp loopback.
//   reliable_bench [messages=10000000] [size=16] [endpoint=tcp://127.0.0.1:*] [window=64]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "zkit/batcher.hpp"
#include "zkit/envelope.hpp"
#include "zkit/reliable.hpp"

using namespace zkit;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double plain(zmq::context_t& ctx, const std::string& endpoint, std::uint64_t n, std::size_t size) {
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.bind(endpoint);
  std::string ep = router.get(zmq::sockopt::last_endpoint);
  std::vector<std::byte> msg(size, std::byte{'x'});
  auto t0 = Clock::now();
  std::thread sender([&] {
    zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
    dealer.connect(ep);
    Batcher batcher;
    for (std::uint64_t i = 0; i < n; ++i) {
      if (batcher.add(msg)) {
        while (auto b = batcher.take()) (void)dealer.send(b->frame, zmq::send_flags::none);
      }
    }
    batcher.flush();
    while (auto b = batcher.take()) (void)dealer.send(b->frame, zmq::send_flags::none);
  });
  std::uint64_t got = 0;
  while (got < n) {
    zmq::message_t id, frame;
    (void)router.recv(id);
    (void)router.recv(frame);
    auto batch = envelope::decode(std::move(frame));
    if (!batch) std::abort();
    for (auto rec : *batch) got += rec.size() == size;
  }
  double s = seconds_since(t0);
  sender.join();
  return s;
}

double reliable(zmq::context_t& ctx, const std::string& endpoint, std::uint64_t n, std::size_t size,
                std::size_t window, std::string& stats) {
  ReliableReceiverOptions receiver_options;
  receiver_options.window = window;
  ReliableReceiver receiver(ctx, receiver_options);
  std::string ep = receiver.bind(endpoint);
  std::vector<std::byte> msg(size, std::byte{'x'});
  auto t0 = Clock::now();
  std::thread sender_thread([&] {
    ReliableSenderOptions sender_options;
    sender_options.window = window;
    sender_options.max_queued = 2 * window;
    ReliableSender sender(ctx, sender_options);
    sender.connect(ep);
    for (std::uint64_t i = 0; i < n; ++i) sender.send(msg);
    if (!sender.wait_all_acked(std::chrono::milliseconds(60000))) std::abort();
    stats = sender.stats().to_json();
  });
  std::uint64_t got = 0;
  ReliableReceiver::Handler handler = [&](Delivery& d) {
    for (auto rec : d.batch) got += rec.size() == size;
  };
  while (got < n) receiver.poll_once(handler, std::chrono::milliseconds(100));
  double s = seconds_since(t0);
  // Keep answering until the sender has its last acks.
  while (true) {
    receiver.poll_once(handler, std::chrono::milliseconds(10));
    if (!stats.empty()) break;
  }
  sender_thread.join();
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 10'000'000;
  std::size_t size = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 16;
  std::string endpoint = argc > 3 ? argv[3] : "tcp://127.0.0.1:*";
  std::size_t window = argc > 4 ? std::strtoul(argv[4], nullptr, 10) : 64;
  zmq::context_t ctx;
  double p = plain(ctx, endpoint, n, size);
  std::string stats;
  double r = reliable(ctx, endpoint, n, size, window, stats);
  std::printf("messages %llu of %zu B over %s, window %zu\n", static_cast<unsigned long long>(n),
              size, endpoint.c_str(), window);
  std::printf("plain batched DEALER/ROUTER  %12.0f msg/s  (%.3f s)\n", n / p, p);
  std::printf("reliable link                %12.0f msg/s  (%.3f s)\n", n / r, r);
  std::printf("reliable / plain             %12.2f\n", p / r);
  std::printf("sender stats %s\n", stats.c_str());
  return 0;
}
