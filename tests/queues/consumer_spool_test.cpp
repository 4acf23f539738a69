// zkit::Consumer against an in-process SpoolNode serving consumers (--serve): competing members of
// one group plus a second group, a member that leaves holding batches (redelivered with
// delivery_count > 1), and a member the spool declared dead (ERROR 1, then a new member id).
// Every peer runs on the test thread.
#include <map>
#include <memory>

#include "queue_harness.hpp"
#include "zkit/consumer.hpp"

using namespace queue_test;
using zkit::ConsumedBatch;
using zkit::Consumer;
using zkit::ConsumerOptions;
using zkit::SpoolNode;

namespace {

// One zkit::Consumer and what its handler saw.
struct Member {
  Member(zmq::context_t& ctx, const std::string& endpoint, ConsumerOptions o) {
    o.socket.linger = 0ms;
    consumer = std::make_unique<Consumer>(ctx, std::move(o));
    consumer->connect(endpoint);
  }
  void poll() {
    (void)consumer->poll_once(
        [this](const ConsumedBatch& b) {
          ++batches;
          if (b.info.redelivered()) ++redelivered;
          if (hold) held.push_back(b.info.token);
          for (auto rec : b) {
            const char* p = reinterpret_cast<const char*>(rec.data());
            const char* colon = static_cast<const char*>(std::memchr(p, ':', rec.size()));
            std::uint64_t producer = 0, index = 0;
            std::from_chars(p, colon, producer);
            std::from_chars(colon + 1, p + rec.size(), index);
            ++seen[{producer, index}];
          }
        },
        0ms);
  }
  std::unique_ptr<Consumer> consumer;
  std::map<std::pair<std::uint64_t, std::uint64_t>, int> seen;
  std::vector<zkit::ConsumerToken> held;
  bool hold = false;
  int batches = 0;
  int redelivered = 0;
};

ConsumerOptions group_options(const std::string& group, std::uint64_t prefetch = 4,
                              bool manual = false) {
  ConsumerOptions o;
  o.group = group;
  o.prefetch_batches = prefetch;
  o.manual_ack = manual;
  return o;
}

struct Rig {
  explicit Rig(std::chrono::milliseconds consumer_heartbeat = 5000ms) {
    auto o = serve_options(tmp.file("spool"), "tcp://127.0.0.1:*");
    o.consumer_heartbeat = consumer_heartbeat;
    node = std::make_unique<SpoolNode>(ctx, o);
    producer = std::make_unique<Producer>(ctx, 21, node->listen_endpoint());
  }
  Member& member(ConsumerOptions o) {
    members.push_back(std::make_unique<Member>(ctx, node->serve_endpoint(), std::move(o)));
    return *members.back();
  }
  void step() {
    (void)node->poll_once(1ms);
    producer->poll();
    for (auto& m : members) {
      if (m->consumer) m->poll();
    }
  }
  void produce(int batches, int per) {
    for (int b = 0; b < batches; ++b) {
      REQUIRE(pump_until([&] { step(); }, [&] { return producer->offer(per); }));
    }
    REQUIRE(pump_until([&] { step(); }, [&] { return producer->all_acked(); }));
  }
  // Every message 1..sent of the producer seen by at least one of `group`.
  bool complete(const std::vector<Member*>& group) const {
    for (std::uint64_t i = 1; i <= producer->sent(); ++i) {
      bool any = false;
      for (Member* m : group) any = any || m->seen.count({21, i});
      if (!any) return false;
    }
    return true;
  }
  const zkit::GroupFigures* group(const std::string& name) {
    figures = node->stats().groups;
    for (const auto& g : figures) {
      if (g.name == name) return &g;
    }
    return nullptr;
  }

  TempDir tmp;
  zmq::context_t ctx;
  std::unique_ptr<SpoolNode> node;
  std::unique_ptr<Producer> producer;
  std::vector<std::unique_ptr<Member>> members;
  std::vector<zkit::GroupFigures> figures;
};

}  // namespace

TEST_CASE("Consumers share one group's batches and a second group gets every batch",
          "[queues][consumer]") {
  Rig rig;
  Member& a = rig.member(group_options("workers"));
  Member& b = rig.member(group_options("workers"));
  Member& audit = rig.member(group_options("audit", 16));
  REQUIRE(pump_until(
      [&] { rig.step(); },
      [&] { return a.consumer->joined() && b.consumer->joined() && audit.consumer->joined(); }));
  rig.produce(60, 5);
  REQUIRE(pump_until([&] { rig.step(); },
                     [&] {
                       return rig.complete({&a, &b}) && rig.complete({&audit});
                     }));
  // Within the group each batch went to one member; both worked.
  CHECK(a.batches > 0);
  CHECK(b.batches > 0);
  CHECK(a.batches + b.batches == 60);
  CHECK(audit.batches == 60);
  for (const auto& [k, n] : a.seen) CHECK(b.seen.count(k) == 0);
  REQUIRE(pump_until([&] { rig.step(); },
                     [&] {
                       const auto* g = rig.group("workers");
                       return g && g->state.lag_batches == 0 && g->state.pending == 0;
                     }));
  CHECK(a.consumer->stats().redelivered + b.consumer->stats().redelivered == 0);
}

TEST_CASE("Batches a member holds when it leaves come to another with delivery_count 2",
          "[queues][consumer]") {
  Rig rig;
  Member& holder = rig.member(group_options("jobs", 3, /*manual=*/true));
  holder.hold = true;  // never acks
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return holder.consumer->joined(); }));
  rig.produce(10, 2);
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return holder.held.size() == 3; }));
  Member& other = rig.member(group_options("jobs", 8));
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return other.consumer->joined(); }));
  // The holder goes: close() sends LEAVE, so its three batches go back at once.
  CHECK(holder.consumer->close().clean());
  holder.consumer.reset();
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return rig.complete({&other}); }));
  CHECK(other.batches == 10);
  CHECK(other.redelivered == 3);
  REQUIRE(pump_until([&] { rig.step(); },
                     [&] {
                       const auto* g = rig.group("jobs");
                       return g && g->state.lag_batches == 0 && g->state.pending == 0;
                     }));
  CHECK(rig.group("jobs")->state.redelivered == 3);
}

TEST_CASE("A member the spool declared dead joins again under a new id and carries on",
          "[queues][consumer]") {
  Rig rig(300ms);  // the spool's consumer heartbeat
  Member& m = rig.member(group_options("slow", 4));
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return m.consumer->joined(); }));
  std::uint64_t first = m.consumer->member_id();
  rig.produce(4, 1);
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return rig.complete({&m}); }));
  // The consumer stops polling (a stuck process) until the spool has forgotten it.
  Consumer* c = m.consumer.release();
  REQUIRE(pump_until([&] { rig.step(); },
                     [&] {
                       const auto* g = rig.group("slow");
                       return g && g->members == 0;
                     }));
  m.consumer.reset(c);
  rig.produce(4, 1);
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return rig.complete({&m}); }));
  CHECK(m.consumer->member_id() != first);
  CHECK(m.consumer->stats().rejoins == 1);
  CHECK(m.batches >= 8);
}
