// Report-only measurement (not a ctest): messages per second through each proxy type against a
// direct connection, with raw frames (one message per frame) and zkit batches, over tcp loopback;
// and the streamer with CURVE against plain. Every row runs its baseline in the same run.
//   proxy_throughput [messages=1000000] [size=100] [batch=256]
// Batched rows send 10x `messages`; every figure is the best of 3 runs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "zkit/envelope.hpp"
#include "zkit/keys.hpp"
#include "zkit/proxy.hpp"

using namespace zkit;
using Clock = std::chrono::steady_clock;

namespace {

struct Path {
  zmq::socket_type send, recv;
  std::optional<ProxyType> proxy;
  bool curve = false;
};

struct Setup {
  std::size_t messages, size, batch;
};

// Sends `frames` frames of `records` messages each from one thread, receives them on another;
// returns application messages per second.
double measure(const Path& path, const Setup& s, bool batched) {
  zmq::context_t ctx(2);
  const std::size_t per_frame = batched ? s.batch : 1;
  const std::size_t frames = s.messages / per_frame;
  const std::string payload(s.size, 'x');
  zmq::message_t prototype;
  if (batched) {
    envelope::Encoder enc;
    enc.begin(1);
    for (std::size_t i = 0; i < per_frame; ++i) enc.add(payload);
    prototype = enc.finish(1, envelope::unix_now_ns());
  } else {
    prototype = zmq::message_t(payload.data(), payload.size());
  }

  SocketOptions plain;
  // PUB drops at its high-water mark: the pub/sub rows run without one so every message counts.
  const int hwm = path.recv == zmq::socket_type::sub ? 0 : 10000;
  plain.sndhwm = plain.rcvhwm = hwm;
  SocketOptions server = plain, client = plain;
  if (path.curve) {
    const CurveKeyPair sk = generate_curve_keypair(), ck = generate_curve_keypair();
    server.curve.server = true;
    server.curve.secret_key = sk.secret_key;
    client.curve.public_key = ck.public_key;
    client.curve.secret_key = ck.secret_key;
    client.curve.server_key = sk.public_key;
  }
  std::optional<Proxy> proxy;
  std::string send_ep, recv_ep;
  zmq::socket_t rx(ctx, path.recv);
  if (path.recv == zmq::socket_type::sub) rx.set(zmq::sockopt::subscribe, "");
  if (path.proxy) {
    ProxyOptions o;
    o.type = *path.proxy;
    o.frontend = "@tcp://127.0.0.1:*";
    o.backend = "@tcp://127.0.0.1:*";
    o.frontend_options = server;
    o.backend_options = plain;
    o.frontend_options.linger = o.backend_options.linger = std::chrono::milliseconds(0);
    proxy.emplace(ctx, o);
    send_ep = proxy->frontend_endpoint();
    apply(rx, plain);
    rx.connect(proxy->backend_endpoint());
  } else {
    apply(rx, server);
    rx.bind("tcp://127.0.0.1:*");
    send_ep = rx.get(zmq::sockopt::last_endpoint);
  }
  zmq::socket_t tx(ctx, path.send);
  apply(tx, client);
  tx.connect(send_ep);
  // Warm-up until one message gets through (connections, subscriptions).
  for (;;) {
    zmq::message_t m(prototype.data(), prototype.size());
    (void)tx.send(m, zmq::send_flags::dontwait);
    zmq_pollitem_t item{rx.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) > 0) break;
  }
  while (true) {  // drain the warm-up
    zmq::message_t m;
    if (!rx.recv(m, zmq::recv_flags::dontwait)) break;
  }

  const auto start = Clock::now();
  std::thread sender([&] {
    for (std::size_t i = 0; i < frames; ++i) {
      zmq::message_t m(prototype.data(), prototype.size());
      tx.send(m, zmq::send_flags::none);
    }
  });
  std::size_t got = 0;
  rx.set(zmq::sockopt::rcvtimeo, 2000);  // a lost message ends the run instead of hanging it
  while (got < frames) {
    zmq::message_t m;
    if (!rx.recv(m, zmq::recv_flags::none)) break;
    if (m.size() == prototype.size()) ++got;
  }
  if (got < frames) std::fprintf(stderr, "lost %zu of %zu frames\n", frames - got, frames);
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  sender.join();
  tx.set(zmq::sockopt::linger, 0);
  rx.set(zmq::sockopt::linger, 0);
  return static_cast<double>(got * per_frame) / secs;
}

}  // namespace

int main(int argc, char** argv) {
  Setup s{1000000, 100, 256};
  if (argc > 1) s.messages = std::strtoull(argv[1], nullptr, 10);
  if (argc > 2) s.size = std::strtoull(argv[2], nullptr, 10);
  if (argc > 3) s.batch = std::strtoull(argv[3], nullptr, 10);
  std::printf("messages %zu (batched: %zu) of %zu B, batches of %zu, tcp loopback\n", s.messages,
              s.messages * 10, s.size, s.batch);
  std::printf("%-28s %14s %14s %8s\n", "path", "msgs/s", "direct msgs/s", "ratio");
  struct Row {
    const char* name;
    zmq::socket_type send, recv;
    ProxyType type;
    bool curve;
  };
  using T = zmq::socket_type;
  const Row rows[] = {
      {"streamer", T::push, T::pull, ProxyType::kStreamer, false},
      {"forwarder", T::pub, T::sub, ProxyType::kForwarder, false},
      {"queue (dealer->dealer)", T::dealer, T::dealer, ProxyType::kQueue, false},
      {"streamer, CURVE in", T::push, T::pull, ProxyType::kStreamer, true},
  };
  for (const Row& r : rows) {
    for (bool batched : {false, true}) {
      // The forwarder's baseline is PUB->SUB direct; the queue's DEALER->DEALER.
      // Batched rows carry 10x the messages so that they run about as long as the raw ones;
      // each figure is the best of 3 alternating runs (the machine may be shared).
      Setup run = s;
      if (batched) run.messages *= 10;
      double direct = 0, through = 0;
      for (int i = 0; i < 3; ++i) {
        direct = std::max(direct, measure({r.send, r.recv, std::nullopt, r.curve}, run, batched));
        through = std::max(through, measure({r.send, r.recv, r.type, r.curve}, run, batched));
      }
      std::printf("%-20s %-7s %14.0f %14.0f %7.2f\n", r.name, batched ? "batched" : "raw", through,
                  direct, through / direct);
      std::fflush(stdout);
    }
  }
  return 0;
}
