// Queue tests' helpers: a consumer that speaks the consumer protocol by hand (so that tests can
// also speak it wrongly), over a DEALER driven from the test thread beside an in-process SpoolNode.
#pragma once

#include <charconv>
#include <cstring>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "../spool_node/node_harness.hpp"
#include "zkit/consumer_codec.hpp"

namespace queue_test {

using namespace spool_node_test;
namespace cm = zkit::consumer;

// One DELIVER as the consumer saw it: its header and the messages' "producer:index" pairs.
struct Got {
  cm::Deliver d;
  std::uint64_t producer = 0;
  std::uint64_t seq = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> messages;
};

class RawConsumer {
 public:
  RawConsumer(zmq::context_t& ctx, const std::string& endpoint, std::uint64_t member = 0)
      : socket_(ctx, zmq::socket_type::dealer) {
    static std::mt19937_64 rng(std::random_device{}());
    member_ = member ? member : (rng() | 1);
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(endpoint);
  }
  std::uint64_t member() const { return member_; }

  void send(cm::Body body, std::uint64_t member = 0) {
    cm::Message m;
    m.member = member ? member : member_;
    m.body = std::move(body);
    (void)socket_.send(cm::encode(m), zmq::send_flags::dontwait);
  }
  void send_raw(const std::string& bytes) {
    (void)socket_.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
  }
  void join(const std::string& group, std::uint64_t prefetch = 4,
            cm::StartKind start = cm::StartKind::kEarliest, std::uint64_t ack_wait_ms = 0,
            std::uint64_t bundle_bytes = 0) {
    cm::Join j;
    j.group = group;
    j.prefetch_batches = prefetch;
    j.start_kind = start;
    j.ack_wait_ms = ack_wait_ms;
    j.bundle_bytes = bundle_bytes;
    send(j);
  }
  void ack(std::uint64_t tag) { send(cm::Ack{{{tag, tag}}}); }
  void ack_all() {
    for (const Got& g : inbox) ack(g.d.tag);
    inbox.clear();
  }
  void close() { socket_.close(); }
  bool closed() const { return !socket_; }

  // Reads everything waiting.
  void poll() {
    if (closed()) return;
    zmq::message_t f;
    while (socket_.recv(f, zmq::recv_flags::dontwait)) {
      auto m = cm::decode(f);
      REQUIRE(m);
      const cm::Message& msg = m.value();
      if (const auto* d = msg.get<cm::Deliver>()) {
        REQUIRE(f.more());
        zmq::message_t batch;
        (void)socket_.recv(batch, zmq::recv_flags::none);
        take(*d, {static_cast<const std::byte*>(batch.data()), batch.size()});
      } else if (const auto* b = msg.get<cm::Bundle>()) {
        REQUIRE(f.more());
        zmq::message_t frame;
        (void)socket_.recv(frame, zmq::recv_flags::none);
        ++bundles;
        largest_bundle = std::max(largest_bundle, b->entries.size());
        if (b->entries.size() > 1) most_bundle_bytes = std::max(most_bundle_bytes, frame.size());
        std::size_t at = 0;
        for (const cm::BundleEntry& e : b->entries) {
          REQUIRE(e.bytes <= frame.size() - at);
          take({e.tag, e.delivery_count, e.segment, e.offset},
               {static_cast<const std::byte*>(frame.data()) + at, e.bytes});
          at += e.bytes;
        }
        REQUIRE(at == frame.size());
      } else if (const auto* e = msg.get<cm::Error>()) {
        errors.push_back(*e);
      } else if (const auto* j = msg.get<cm::Joined>()) {
        joined = *j;
      } else if (msg.get<cm::Pong>()) {
        ++pongs;
      }
    }
  }
  // One delivered batch (of a DELIVER or a BUNDLE) into the inbox.
  void take(const cm::Deliver& d, std::span<const std::byte> batch) {
    auto b = zkit::envelope::decode(batch);
    REQUIRE(b);
    Got g;
    g.d = d;
    g.producer = b.value().header().producer_id;
    g.seq = b.value().header().seq;
    for (auto rec : b.value()) {
      const char* p = reinterpret_cast<const char*>(rec.data());
      const char* colon = static_cast<const char*>(std::memchr(p, ':', rec.size()));
      std::uint64_t producer = 0, index = 0;
      if (colon) {
        std::from_chars(p, colon, producer);
        std::from_chars(colon + 1, p + rec.size(), index);
      }
      g.messages.emplace_back(producer, index);
    }
    ++deliveries;
    inbox.push_back(std::move(g));
  }

  bool has_error(cm::ErrorCode c) const {
    for (const auto& e : errors) {
      if (e.code == c) return true;
    }
    return false;
  }

  std::deque<Got> inbox;              // delivered, not yet acked by the test
  std::uint64_t bundles = 0;          // BUNDLE messages (their batches count in deliveries)
  std::size_t largest_bundle = 0;     // most batches in one BUNDLE
  std::size_t most_bundle_bytes = 0;  // largest frame of a BUNDLE of more than one batch
  std::vector<cm::Error> errors;
  std::optional<cm::Joined> joined;
  std::uint64_t deliveries = 0;
  std::uint64_t pongs = 0;

 private:
  zmq::socket_t socket_;
  std::uint64_t member_ = 0;
};

// Which messages one group got: every (producer, index) and how often.
struct Tally {
  std::map<std::pair<std::uint64_t, std::uint64_t>, int> seen;
  void add(const Got& g) {
    for (const auto& m : g.messages) ++seen[m];
  }
  // Every index 1..n of each producer at least once.
  bool complete(const std::vector<Producer*>& producers) const {
    std::size_t want = 0;
    for (Producer* p : producers) want += p->sent();
    if (seen.size() != want) return false;
    for (Producer* p : producers) {
      for (std::uint64_t i = 1; i <= p->sent(); ++i) {
        if (!seen.count({p->id(), i})) return false;
      }
    }
    return true;
  }
  std::size_t duplicates() const {
    std::size_t n = 0;
    for (const auto& [k, c] : seen) n += static_cast<std::size_t>(c - 1);
    return n;
  }
};

inline zkit::SpoolNodeOptions serve_options(const std::string& dir, const std::string& listen) {
  auto o = node_options(dir, listen, "");
  o.serve = "tcp://127.0.0.1:*";
  o.serve_socket.linger = 0ms;
  return o;
}

}  // namespace queue_test
