// The crash test's traffic: reliable senders streaming numbered messages into a spool and a
// reliable receiver draining it, in one process that outlives the spool's kills. At the end it
// checks that every acknowledged message reached the receiver exactly once and in order.
//
//   crash_peer --listen EP --forward EP --stop-file PATH [--producers N] [--cycles N]
//              [--drain-s S] [--batch-max N] [--pace-us US]
// Senders connect to --listen (the spool's); the receiver binds --forward (the spool connects).
// Once PATH exists the senders stop producing and wait for every acknowledgement, the receiver
// waits for every acknowledged message; then one result line is printed. Exit 0 when nothing
// acknowledged was lost, nothing was seen twice and nothing arrived out of order.
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <zmq.hpp>

#include "zkit/envelope.hpp"
#include "zkit/reliable.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string listen, forward, stop_file;
  int producers = 4;
  long long cycles = 0;
  int drain_s = 120;
  int batch_max = 50;
  int pace_us = 2000;
};

struct ProducerResult {
  std::uint64_t sent = 0;   // messages handed to the link
  std::uint64_t acked = 0;  // messages 1..acked acknowledged by the spool
  bool all_acked = false;
};

// What the application behind the receiver saw of one producer.
struct Seen {
  std::uint64_t next = 1;  // the index expected next
  std::uint64_t duplicates = 0;
  std::uint64_t out_of_order = 0;
};

std::atomic<bool> g_stop_producing{false};
std::atomic<bool> g_stop_receiving{false};

void run_sender(const Args& a, int k, ProducerResult& out) {
  zmq::context_t ctx;
  zkit::ReliableSenderOptions o;
  o.socket.linger = 0ms;
  o.socket.reconnect_ivl = 50ms;
  o.heartbeat_interval = 100ms;
  o.heartbeat_timeout = 1000ms;
  o.resend_timeout = 500ms;
  o.window = 32;
  o.max_queued = 64;
  zkit::ReliableSender sender(ctx, o);
  sender.connect(a.listen);
  std::uint64_t acked = 0;
  sender.on_acked([&acked](const zkit::AckedBatch& b) { acked = b.id; });
  const std::uint64_t producer = 1000 + static_cast<std::uint64_t>(k);
  std::mt19937_64 rng(producer * 7919 + static_cast<std::uint64_t>(::getpid()));
  zkit::envelope::Encoder enc;
  std::uint64_t index = 0, seq = 0;
  std::optional<zmq::message_t> pending;
  std::uint64_t pending_last = 0;
  while (!g_stop_producing.load()) {
    if (!pending) {
      enc.begin(producer);
      const int n = 1 + static_cast<int>(rng() % static_cast<std::uint64_t>(a.batch_max));
      for (int i = 0; i < n; ++i) {
        enc.add(std::to_string(producer) + ":" + std::to_string(++index));
      }
      pending = enc.finish(++seq, zkit::envelope::unix_now_ns());
      pending_last = index;
    }
    zkit::Status s = sender.send_batch(std::move(*pending), pending_last);
    if (s) {
      pending.reset();
      out.sent = pending_last;
      (void)sender.poll_once(0ms);
      if (a.pace_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(a.pace_us));
    } else {
      (void)sender.poll_once(10ms);  // backlog full: the spool is down or slow
    }
  }
  out.all_acked = sender.wait_all_acked(std::chrono::seconds(a.drain_s));
  out.acked = acked;
  sender.close();
}

void run_receiver(const Args& a, std::map<std::uint64_t, Seen>& seen, std::uint64_t& received,
                  std::mutex& mu) {
  zmq::context_t ctx;
  zkit::ReliableReceiverOptions o;
  o.socket.linger = 0ms;
  o.heartbeat_timeout = 1000ms;
  o.max_sessions = 64;
  zkit::ReliableReceiver receiver(ctx, o);
  receiver.bind(a.forward);
  auto handler = [&](zkit::Delivery& d) {
    std::lock_guard lock(mu);
    for (auto rec : d.batch) {
      const char* p = reinterpret_cast<const char*>(rec.data());
      const char* end = p + rec.size();
      const char* colon = static_cast<const char*>(std::memchr(p, ':', rec.size()));
      std::uint64_t producer = 0, index = 0;
      if (colon == nullptr) continue;
      std::from_chars(p, colon, producer);
      std::from_chars(colon + 1, end, index);
      Seen& s = seen[producer];
      if (index == s.next) {
        ++s.next;
      } else if (index < s.next) {
        ++s.duplicates;
      } else {
        ++s.out_of_order;
        s.next = index + 1;
      }
      ++received;
    }
  };
  while (!g_stop_receiving.load()) (void)receiver.poll_once(handler, 20ms);
  receiver.close();
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--listen") a.listen = v;
    else if (k == "--forward") a.forward = v;
    else if (k == "--stop-file") a.stop_file = v;
    else if (k == "--producers") a.producers = std::stoi(v);
    else if (k == "--cycles") a.cycles = std::stoll(v);
    else if (k == "--drain-s") a.drain_s = std::stoi(v);
    else if (k == "--batch-max") a.batch_max = std::stoi(v);
    else if (k == "--pace-us") a.pace_us = std::stoi(v);
    else {
      std::fprintf(stderr, "crash_peer: unknown flag %s\n", k.c_str());
      std::exit(2);
    }
  }
  if (a.listen.empty() || a.forward.empty() || a.stop_file.empty() || a.producers < 1 ||
      a.batch_max < 1) {
    std::fprintf(stderr, "crash_peer: --listen, --forward and --stop-file are required\n");
    std::exit(2);
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  std::vector<ProducerResult> results(static_cast<std::size_t>(a.producers));
  std::map<std::uint64_t, Seen> seen;
  std::uint64_t received = 0;
  std::mutex mu;
  std::thread receiver([&] { run_receiver(a, seen, received, mu); });
  std::vector<std::thread> senders;
  for (int k = 0; k < a.producers; ++k) {
    senders.emplace_back([&, k] { run_sender(a, k, results[static_cast<std::size_t>(k)]); });
  }
  while (!std::filesystem::exists(a.stop_file)) std::this_thread::sleep_for(50ms);
  g_stop_producing = true;
  for (auto& t : senders) t.join();

  // Every acknowledged message must arrive; give the spool the drain time to forward them.
  const auto deadline = Clock::now() + std::chrono::seconds(a.drain_s);
  auto all_arrived = [&] {
    std::lock_guard lock(mu);
    for (int k = 0; k < a.producers; ++k) {
      if (seen[1000 + static_cast<std::uint64_t>(k)].next <= results[static_cast<std::size_t>(k)].acked) return false;
    }
    return true;
  };
  while (!all_arrived() && Clock::now() < deadline) std::this_thread::sleep_for(50ms);
  std::this_thread::sleep_for(300ms);  // late duplicates, if any, would show up now
  g_stop_receiving = true;
  receiver.join();

  std::uint64_t sent = 0, acked = 0, lost = 0, dups = 0, ooo = 0, unacked_producers = 0;
  for (int k = 0; k < a.producers; ++k) {
    const ProducerResult& r = results[static_cast<std::size_t>(k)];
    const Seen& s = seen[1000 + static_cast<std::uint64_t>(k)];
    sent += r.sent;
    acked += r.acked;
    const std::uint64_t got = s.next - 1;
    if (got < r.acked) lost += r.acked - got;
    dups += s.duplicates;
    ooo += s.out_of_order;
    if (!r.all_acked) ++unacked_producers;
  }
  std::printf(
      "crash test: iterations %lld, producers %d, messages sent %llu, acknowledged %llu, "
      "received %llu, lost %llu, duplicates %llu, out of order %llu, producers not fully "
      "acknowledged %llu\n",
      a.cycles, a.producers, static_cast<unsigned long long>(sent),
      static_cast<unsigned long long>(acked), static_cast<unsigned long long>(received),
      static_cast<unsigned long long>(lost), static_cast<unsigned long long>(dups),
      static_cast<unsigned long long>(ooo), static_cast<unsigned long long>(unacked_producers));
  const bool ok = lost == 0 && dups == 0 && ooo == 0 && unacked_producers == 0 && acked > 0;
  std::printf("crash test: %s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
