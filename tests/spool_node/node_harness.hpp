// One-thread harness for spool node tests: numbered-message producers over ReliableSender, a
// SpoolNode (optionally over a FaultInjectionEnv) and a downstream ReliableReceiver, all driven by
// pump() from the test thread, and a checker for "every acknowledged message once, in order".
#pragma once

#include <chrono>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <zmq.hpp>

#include "temp_dir.hpp"
#include "zkit/envelope.hpp"
#include "zkit/reliable.hpp"
#include "zkit/spool_node.hpp"

namespace spool_node_test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using zkit::test::TempDir;

// A producer of numbered messages "producer:index", batched by hand so that each batch's last
// index comes back with its acknowledgement.
class Producer {
 public:
  Producer(zmq::context_t& ctx, std::uint64_t producer_id, const std::string& endpoint,
           std::uint64_t first_seq = 1, std::uint64_t first_index = 1)
      : id_(producer_id), seq_(first_seq - 1), index_(first_index - 1) {
    zkit::ReliableSenderOptions o;
    o.socket.linger = 0ms;
    o.socket.reconnect_ivl = 20ms;
    o.heartbeat_interval = 50ms;
    o.heartbeat_timeout = 500ms;
    o.resend_timeout = 300ms;
    o.window = 16;
    o.max_queued = 32;
    sender_ = std::make_unique<zkit::ReliableSender>(ctx, o);
    sender_->connect(endpoint);
    sender_->on_acked([this](const zkit::AckedBatch& a) {
      acked_ = a.id;
      ++acked_batches_;
    });
  }
  // Queues one batch of n messages unless the sender's backlog is full. True when queued.
  bool offer(int n) {
    if (!pending_) {
      zkit::envelope::Encoder enc;
      enc.begin(id_);
      for (int i = 0; i < n; ++i) enc.add(std::to_string(id_) + ":" + std::to_string(++index_));
      pending_ = enc.finish(++seq_, zkit::envelope::unix_now_ns());
      pending_last_ = index_;
    }
    zkit::Status s = sender_->send_batch(std::move(*pending_), pending_last_);
    if (!s) return false;
    pending_.reset();
    sent_ = pending_last_;
    ++sent_batches_;
    return true;
  }
  // Offers again a batch that found the backlog full (no new batch). True when none is left.
  bool retry_pending() { return !pending_ || offer(0); }
  // The frame of the batch with this seq, as it was sent (for resend tests).
  static zmq::message_t batch(std::uint64_t producer, std::uint64_t seq, int n,
                              std::uint64_t first_index) {
    zkit::envelope::Encoder enc;
    enc.begin(producer);
    for (int i = 0; i < n; ++i) {
      enc.add(std::to_string(producer) + ":" + std::to_string(first_index + static_cast<std::uint64_t>(i)));
    }
    return enc.finish(seq, zkit::envelope::unix_now_ns());
  }
  void poll() { (void)sender_->poll_once(0ms); }
  zkit::ReliableSender& sender() { return *sender_; }
  std::uint64_t id() const { return id_; }
  std::uint64_t sent() const { return sent_; }      // messages 1..sent queued
  std::uint64_t acked() const { return acked_; }    // messages 1..acked acknowledged
  std::uint64_t sent_batches() const { return sent_batches_; }
  std::uint64_t acked_batches() const { return acked_batches_; }
  bool all_acked() const { return acked_ == sent_ && !pending_; }

 private:
  std::uint64_t id_;
  std::uint64_t seq_;
  std::uint64_t index_;
  std::unique_ptr<zkit::ReliableSender> sender_;
  std::optional<zmq::message_t> pending_;
  std::uint64_t pending_last_ = 0;
  std::uint64_t sent_ = 0, acked_ = 0, sent_batches_ = 0, acked_batches_ = 0;
};

// The application behind the downstream receiver: every message index per producer, in arrival
// order.
class Sink {
 public:
  Sink(zmq::context_t& ctx, const std::string& bind_endpoint) {
    zkit::ReliableReceiverOptions o;
    o.socket.linger = 0ms;
    o.heartbeat_timeout = 500ms;
    receiver_ = std::make_unique<zkit::ReliableReceiver>(ctx, o);
    endpoint_ = receiver_->bind(bind_endpoint);
  }
  void poll() {
    (void)receiver_->poll_once(
        [this](zkit::Delivery& d) {
          for (auto rec : d.batch) {
            const char* p = reinterpret_cast<const char*>(rec.data());
            const char* colon = static_cast<const char*>(std::memchr(p, ':', rec.size()));
            if (colon == nullptr) continue;
            std::uint64_t producer = 0, index = 0;
            std::from_chars(p, colon, producer);
            std::from_chars(colon + 1, p + rec.size(), index);
            seen_[producer].push_back(index);
            ++messages_;
          }
        },
        0ms);
  }
  const std::string& endpoint() const { return endpoint_; }
  std::uint64_t messages() const { return messages_; }
  const std::vector<std::uint64_t>& seen(std::uint64_t producer) { return seen_[producer]; }
  // Highest index such that 1..n arrived (in order, as checked by check_exactly_once).
  std::uint64_t contiguous(std::uint64_t producer) {
    const auto& v = seen_[producer];
    std::uint64_t n = 0;
    for (auto i : v) {
      if (i == n + 1) n = i;
    }
    return n;
  }

 private:
  std::unique_ptr<zkit::ReliableReceiver> receiver_;
  std::string endpoint_;
  std::map<std::uint64_t, std::vector<std::uint64_t>> seen_;
  std::uint64_t messages_ = 0;
};

// Every index 1..upto arrived exactly once and in order; nothing else arrived.
inline void check_exactly_once(Sink& sink, std::uint64_t producer, std::uint64_t upto) {
  const auto& v = sink.seen(producer);
  INFO("producer " << producer << ": " << v.size() << " messages seen, expected " << upto);
  REQUIRE(v.size() == upto);
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] != i + 1) {
      FAIL("producer " << producer << ": message " << i + 1 << " is index " << v[i]);
    }
  }
}

inline zkit::SpoolNodeOptions node_options(const std::string& dir, const std::string& listen,
                                           const std::string& forward) {
  zkit::SpoolNodeOptions o;
  o.store.dir = dir;
  o.listen = listen;
  o.forward = forward;
  o.listen_socket.linger = 0ms;
  o.forward_socket.linger = 0ms;
  o.forward_socket.reconnect_ivl = 20ms;
  o.heartbeat_interval = 50ms;
  o.heartbeat_timeout = 500ms;
  o.resend_timeout = 300ms;
  o.retry_min = 10ms;
  o.retry_max = 100ms;
  o.linger = 200ms;
  o.forward_window = 16;
  o.upstream_window = 16;
  return o;
}

// Calls step() until done() or the deadline; returns done().
inline bool pump_until(const std::function<void()>& step, const std::function<bool()>& done,
                       std::chrono::milliseconds limit = 15000ms) {
  const auto deadline = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    step();
  }
  return true;
}

}  // namespace spool_node_test
