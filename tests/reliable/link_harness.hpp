// Test harness for the reliable link: a sink that checks exactly-once, in-order delivery per
// producer, a feeder that streams numbered messages, a bounded loop that drives every object from
// one thread, and a lossy proxy that drops and reorders frames on purpose.
#pragma once

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "temp_dir.hpp"
#include "zkit/reliable.hpp"

namespace zkit::test {

using std::chrono::milliseconds;

// Options with short timers so that recovery happens within a test's time.
inline ReliableSenderOptions fast_sender(std::size_t window = 8) {
  ReliableSenderOptions o;
  o.batch.max_records = 16;
  o.window = window;
  o.max_queued = window * 2;
  o.heartbeat_interval = milliseconds(20);
  o.heartbeat_timeout = milliseconds(400);
  o.resend_timeout = milliseconds(100);
  o.socket.reconnect_ivl = milliseconds(10);
  o.socket.linger = milliseconds(0);
  return o;
}

inline ReliableReceiverOptions fast_receiver(std::size_t window = 8) {
  ReliableReceiverOptions o;
  o.window = window;
  o.heartbeat_timeout = milliseconds(400);
  o.socket.linger = milliseconds(0);
  return o;
}

// Records every message the application sees: "<sender>:<n>" per message.
class Sink {
 public:
  void take(const Delivery& d) {
    for (auto rec : d.batch) {
      std::string text(reinterpret_cast<const char*>(rec.data()), rec.size());
      auto colon = text.find(':');
      REQUIRE(colon != std::string::npos);
      int sender = std::stoi(text.substr(0, colon));
      std::uint64_t n = std::stoull(text.substr(colon + 1));
      auto& seen = per_sender_[sender];
      if (n < seen.size()) {
        ++duplicates_;
      } else {
        if (n != seen.size()) ++gaps_;
        seen.resize(n + 1, false);
        seen[n] = true;
      }
      ++messages_;
    }
    std::uint64_t& h = highest_[d.producer_id];
    h = std::max(h, d.seq);
  }
  ReliableReceiver::Handler handler() {
    return [this](Delivery& d) { take(d); };
  }
  // Count of distinct messages from `sender` seen in order from 0.
  std::size_t count(int sender) const {
    auto it = per_sender_.find(sender);
    return it == per_sender_.end() ? 0 : it->second.size();
  }
  std::size_t messages() const { return messages_; }
  std::size_t duplicates() const { return duplicates_; }
  std::size_t gaps() const { return gaps_; }
  // The "stored" highest seq per producer, for ReliableReceiver::seed().
  const std::map<std::uint64_t, std::uint64_t>& highest() const { return highest_; }

 private:
  std::map<int, std::vector<bool>> per_sender_;
  std::map<std::uint64_t, std::uint64_t> highest_;
  std::size_t messages_ = 0;
  std::size_t duplicates_ = 0;
  std::size_t gaps_ = 0;
};

// Streams "<index>:0" .. "<index>:<total-1>" into a sender without blocking.
struct Feeder {
  ReliableSender* sender;
  int index;
  std::uint64_t total;
  std::uint64_t next = 0;

  void feed(std::size_t at_most = 64) {
    for (std::size_t i = 0; i < at_most && next < total; ++i) {
      std::string m = std::to_string(index) + ":" + std::to_string(next);
      if (!sender->send(m, milliseconds(0))) return;
      ++next;
    }
    if (next == total) sender->flush();
  }
  bool fed() const { return next == total; }
};

// Long runs: ZKIT_LONG_TESTS=N repeats the randomized tests N times (N seeds) with N times the
// time bounds. Unset: 1, the short run ctest does.
inline int long_factor() {
  const char* v = std::getenv("ZKIT_LONG_TESTS");
  int n = v ? std::atoi(v) : 1;
  return n > 0 ? n : 1;
}

// Runs `step` until `done` or the bounds (iterations and wall time) run out. Returns done().
inline bool drive(const std::function<bool()>& done, const std::function<void()>& step,
                  int max_iterations = 200000, milliseconds max_time = milliseconds(20000)) {
  auto until = std::chrono::steady_clock::now() + max_time * long_factor();
  for (int i = 0; i < max_iterations * long_factor() && std::chrono::steady_clock::now() < until;
       ++i) {
    if (done()) return true;
    step();
  }
  return done();
}

// A ROUTER (facing one sender) and a DEALER (facing the receiver) that pass messages through,
// dropping and reordering some on purpose. Deterministic (xorshift) and bounded: it drops at most
// max_drops messages in total, so that the link always recovers.
class LossyProxy {
 public:
  LossyProxy(zmq::context_t& ctx, const std::string& receiver_endpoint, int drop_percent,
             int reorder_percent, std::size_t max_drops, std::uint64_t seed = 1)
      : front_(ctx, zmq::socket_type::router),
        back_(ctx, zmq::socket_type::dealer),
        drop_(drop_percent),
        reorder_(reorder_percent),
        max_drops_(max_drops),
        x_(0x2545f4914f6cdd1dull ^ (seed * 0x9e3779b97f4a7c15ull)) {
    if (x_ == 0) x_ = 1;
    front_.set(zmq::sockopt::linger, 0);
    back_.set(zmq::sockopt::linger, 0);
    front_.bind("tcp://127.0.0.1:*");
    endpoint_ = front_.get(zmq::sockopt::last_endpoint);
    back_.connect(receiver_endpoint);
  }
  const std::string& endpoint() const { return endpoint_; }

  // Moves what is waiting in either direction; holds at most one message per direction back.
  void step() {
    zmq::pollitem_t items[] = {{front_.handle(), 0, ZMQ_POLLIN, 0},
                               {back_.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 2, milliseconds(1));
    bool up = pass(front_, true);
    bool down = pass(back_, false);
    if (!up) release(held_up_, true);
    if (!down) release(held_down_, false);
  }
  std::size_t dropped() const { return drops_; }
  std::size_t reordered() const { return reorders_; }

 private:
  using Parts = std::vector<zmq::message_t>;

  bool pass(zmq::socket_t& from, bool upstream) {
    bool any = false;
    for (int i = 0; i < 256; ++i) {
      Parts parts;
      zmq::message_t part;
      if (!from.recv(part, zmq::recv_flags::dontwait)) break;
      any = true;
      parts.push_back(std::move(part));
      while (parts.back().more()) {
        zmq::message_t next;
        (void)from.recv(next, zmq::recv_flags::none);
        parts.push_back(std::move(next));
      }
      if (upstream) {  // from the sender: strip and remember its routing id
        sender_id_ = parts.front().to_string();
        parts.erase(parts.begin());
      }
      int roll = static_cast<int>(rand() % 100);
      if (drops_ < max_drops_ && roll < drop_) {
        ++drops_;
        continue;
      }
      auto& held = upstream ? held_up_ : held_down_;
      if (!held && roll < drop_ + reorder_) {
        held = std::move(parts);  // goes out after the next message: a swap
        ++reorders_;
        continue;
      }
      forward(std::move(parts), upstream);
      release(held, upstream);
    }
    return any;
  }

  void release(std::optional<Parts>& held, bool upstream) {
    if (!held) return;
    Parts p = std::move(*held);
    held.reset();
    forward(std::move(p), upstream);
  }

  void forward(Parts parts, bool upstream) {
    zmq::socket_t& to = upstream ? back_ : front_;
    if (!upstream) {
      if (sender_id_.empty()) return;
      zmq::message_t id(sender_id_.data(), sender_id_.size());
      (void)to.send(id, zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    }
    for (std::size_t i = 0; i < parts.size(); ++i) {
      auto flags = i + 1 < parts.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
      (void)to.send(parts[i], flags | zmq::send_flags::dontwait);
    }
  }

  std::uint64_t rand() {
    x_ ^= x_ << 13;
    x_ ^= x_ >> 7;
    x_ ^= x_ << 17;
    return x_;
  }

  zmq::socket_t front_;
  zmq::socket_t back_;
  std::string endpoint_;
  std::string sender_id_;
  int drop_;
  int reorder_;
  std::size_t max_drops_;
  std::size_t drops_ = 0;
  std::size_t reorders_ = 0;
  std::optional<Parts> held_up_;
  std::optional<Parts> held_down_;
  std::uint64_t x_;
};

}  // namespace zkit::test
