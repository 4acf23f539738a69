// A reliable pipeline whose receiver crashes mid-stream: the sender streams N numbered messages
// over the reliable link; the receiver (a thread with its own objects) stores each batch, then
// "crashes" after storing one batch but before acknowledging it, and is restarted on the same
// endpoint, seeded with what its store holds. The sink still ends with every message exactly once.
//
//   reliable_pipeline [messages=20000]
//
// Prints a summary; exits 0 when every message arrived exactly once.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "zkit/reliable.hpp"

using namespace std::chrono_literals;

namespace {

// What the receiving application keeps across its restart (a file or database in real life): the
// messages, and the highest batch seq stored per producer, to seed duplicate suppression with.
struct Store {
  std::vector<int> copies;  // copies[i]: how often message i was stored
  std::map<std::uint64_t, std::uint64_t> highest;
  std::uint64_t stored = 0;
  std::uint64_t stored_at_crash = 0;
};

struct Crash : std::runtime_error {
  Crash() : std::runtime_error("simulated crash") {}
};

// One life of the receiver. Returns the receiver's statistics.
std::string receiver_life(zmq::context_t& ctx, const std::string& endpoint, Store& store,
                          std::uint64_t crash_after, const std::atomic<bool>& sender_done) {
  zkit::ReliableReceiverOptions options;
  options.socket.linger = 0ms;  // a crash sends nothing more
  zkit::ReliableReceiver receiver(ctx, options);
  for (int attempt = 0;; ++attempt) {  // the previous life's port may be closing still
    try {
      receiver.bind(endpoint);
      break;
    } catch (const zmq::error_t& e) {
      if (e.num() != EADDRINUSE || attempt == 500) throw;
      std::this_thread::sleep_for(10ms);
    }
  }
  for (auto [producer, seq] : store.highest) receiver.seed(producer, seq);

  zkit::ReliableReceiver::Handler handler = [&](zkit::Delivery& d) {
    for (auto record : d.batch) {
      std::string text(reinterpret_cast<const char*>(record.data()), record.size());
      store.copies.at(std::stoul(text.substr(text.find(' ') + 1)))++;
    }
    store.highest[d.producer_id] = d.seq;
    store.stored += d.batch.size();
    // Stored, not yet acknowledged: the worst moment to die.
    if (crash_after && store.stored >= crash_after) throw Crash();
  };
  try {
    // Runs until the sender has everything acknowledged (bounded by the sender's own timeout).
    while (!sender_done.load()) receiver.poll_once(handler, 10ms);
  } catch (const Crash&) {
    store.stored_at_crash = store.stored;
  }
  return receiver.stats().to_json();
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t total = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 20000;
  if (total < 3) {
    std::fprintf(stderr, "usage: reliable_pipeline [messages>=3]\n");
    return 2;
  }
  zmq::context_t ctx;
  // Find a free port once; both lives of the receiver bind it.
  std::string endpoint;
  {
    zmq::socket_t probe(ctx, zmq::socket_type::router);
    probe.bind("tcp://127.0.0.1:*");
    endpoint = probe.get(zmq::sockopt::last_endpoint);
  }

  Store store;
  store.copies.assign(total, 0);
  std::atomic<bool> sender_done{false};
  std::string first_life, second_life;
  std::thread receiver_thread([&] {
    first_life = receiver_life(ctx, endpoint, store, total / 3, sender_done);
    std::this_thread::sleep_for(200ms);  // down for a while; the sender keeps its batches
    second_life = receiver_life(ctx, endpoint, store, 0, sender_done);
  });

  zkit::ReliableSenderOptions options;
  options.batch.max_records = 100;
  options.heartbeat_interval = 50ms;
  options.heartbeat_timeout = 500ms;
  options.resend_timeout = 200ms;
  options.socket.reconnect_ivl = 20ms;
  zkit::ReliableSender sender(ctx, options);
  sender.connect(endpoint);
  for (std::uint64_t i = 0; i < total; ++i) sender.send("message " + std::to_string(i));
  bool all_acked = sender.wait_all_acked(30s);
  std::string sender_stats = sender.stats().to_json();
  sender_done = true;
  receiver_thread.join();

  std::uint64_t missing = 0, duplicated = 0;
  for (int copies : store.copies) {
    if (copies == 0) ++missing;
    if (copies > 1) ++duplicated;
  }
  std::printf("sender:   %s\n", sender_stats.c_str());
  std::printf("receiver before the crash: %s\n", first_life.c_str());
  std::printf("receiver after the restart: %s\n", second_life.c_str());
  std::printf("sent %llu messages, receiver crashed after storing %llu and was restarted\n",
              static_cast<unsigned long long>(total),
              static_cast<unsigned long long>(store.stored_at_crash));
  std::printf("sink: %llu stored, %llu missing, %llu duplicated, all acknowledged: %s\n",
              static_cast<unsigned long long>(store.stored),
              static_cast<unsigned long long>(missing), static_cast<unsigned long long>(duplicated),
              all_acked ? "yes" : "no");
  bool ok = all_acked && missing == 0 && duplicated == 0 && store.stored == total;
  std::printf("%s\n", ok ? "OK: every message exactly once" : "FAILED");
  return ok ? 0 : 1;
}
