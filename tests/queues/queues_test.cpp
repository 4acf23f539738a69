// Consumer groups on the spool node (--serve): distribution under credit, fan-out across groups,
// acks, nacks, ack_wait, heartbeats and disconnects, dead letters, group management, restart,
// and hostile consumers. Every peer runs on the test thread; consumers speak the protocol by hand.
#include <functional>

#include "queue_harness.hpp"
#include "zkit/reliable_codec.hpp"
#include "zkit/spool/inspect.hpp"

using namespace queue_test;
using zkit::SpoolNode;

namespace {

struct Rig {
  explicit Rig(const std::function<void(zkit::SpoolNodeOptions&)>& adjust = {}) {
    auto o = serve_options(tmp.file("spool"), "tcp://127.0.0.1:*");
    o.control = "tcp://127.0.0.1:*";
    if (adjust) adjust(o);
    options = o;
    start();
  }
  void start() {
    node = std::make_unique<SpoolNode>(ctx, options);
    if (producers.empty()) {
      for (std::uint64_t id : {11, 12}) {
        producers.push_back(std::make_unique<Producer>(ctx, id, node->listen_endpoint()));
      }
    }
  }
  RawConsumer& consumer() {
    consumers.push_back(std::make_unique<RawConsumer>(ctx, node->serve_endpoint()));
    return *consumers.back();
  }
  void step() {
    (void)node->poll_once(1ms);
    for (auto& p : producers) p->poll();
    for (auto& c : consumers) c->poll();
  }
  // Sends n batches of 1..4 messages from each producer.
  void produce(int n) {
    std::mt19937 rng(5);
    for (int b = 0; b < n; ++b) {
      for (auto& p : producers) {
        REQUIRE(
            pump_until([&] { step(); }, [&] { return p->offer(1 + static_cast<int>(rng() % 4)); }));
      }
    }
    REQUIRE(pump_until([&] { step(); },
                       [&] {
                         for (auto& p : producers) {
                           if (!p->all_acked()) return false;
                         }
                         return true;
                       }));
  }
  std::vector<Producer*> all_producers() {
    std::vector<Producer*> v;
    for (auto& p : producers) v.push_back(p.get());
    return v;
  }
  std::string control(const std::string& cmd) {
    zmq::socket_t req(ctx, zmq::socket_type::req);
    req.set(zmq::sockopt::linger, 0);
    req.connect(node->control_endpoint());
    req.send(zmq::buffer(cmd), zmq::send_flags::none);
    zmq::message_t reply;
    REQUIRE(pump_until([&] { step(); },
                       [&] { return req.recv(reply, zmq::recv_flags::dontwait).has_value(); }));
    return reply.to_string();
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
  zkit::SpoolNodeOptions options;
  std::unique_ptr<SpoolNode> node;
  std::vector<std::unique_ptr<Producer>> producers;
  std::vector<std::unique_ptr<RawConsumer>> consumers;
  std::vector<zkit::GroupFigures> figures;
};

bool joined(Rig& rig, RawConsumer& c) {
  return pump_until([&] { rig.step(); }, [&] { return c.joined.has_value(); });
}

// Acks everything the consumers get (tallying it) until the tally is complete.
bool consume_all(Rig& rig, std::vector<RawConsumer*> cs, Tally& tally,
                 std::size_t max_held = ~std::size_t{0}) {
  return pump_until([&] { rig.step(); },
                    [&] {
                      for (RawConsumer* c : cs) {
                        if (c->inbox.size() > max_held)
                          FAIL("a member holds " << c->inbox.size() << " batches");
                        for (const Got& g : c->inbox) tally.add(g);
                        c->ack_all();
                      }
                      return tally.complete(rig.all_producers());
                    });
}

}  // namespace

TEST_CASE("A group's members share the batches, each never holding more than its prefetch",
          "[queues]") {
  Rig rig;
  RawConsumer& a = rig.consumer();
  RawConsumer& b = rig.consumer();
  a.join("work", 3);
  b.join("work", 3);
  REQUIRE(joined(rig, a));
  REQUIRE(joined(rig, b));
  CHECK(a.joined->group == "work");
  CHECK(a.joined->max_deliver == 5);
  rig.produce(100);
  Tally tally;
  REQUIRE(consume_all(rig, {&a, &b}, tally, 3));
  CHECK(tally.duplicates() == 0);
  CHECK(a.deliveries > 0);
  CHECK(b.deliveries > 0);
  CHECK(a.deliveries + b.deliveries == 200);
  REQUIRE(
      pump_until([&] { rig.step(); }, [&] { return rig.group("work")->state.lag_batches == 0; }));
  CHECK(rig.group("work")->state.acked == 200);
  CHECK(rig.group("work")->members == 2);
}

TEST_CASE("A member that asks for BUNDLEs gets several batches a message, within credit and size",
          "[queues]") {
  Rig rig;
  rig.produce(30);  // 60 batches of one to four "producer:index" messages (tens of bytes each)
  RawConsumer& c = rig.consumer();
  c.join("bulk", 8, cm::StartKind::kEarliest, 0, /*bundle_bytes=*/300);
  REQUIRE(joined(rig, c));
  Tally tally;
  REQUIRE(consume_all(rig, {&c}, tally, 8));
  CHECK(tally.duplicates() == 0);
  CHECK(c.deliveries == 60);
  CHECK(c.bundles > 0);
  CHECK(c.bundles < c.deliveries);  // some carried more than one batch
  CHECK(c.largest_bundle <= 8);
  CHECK(c.most_bundle_bytes <= 300);
  CHECK(rig.node->stats().serve.bundles == c.bundles);
  CHECK(rig.node->stats().serve.deliveries == 60);
}

TEST_CASE("A spool with bundle_bytes 0 sends DELIVERs to a member that asks for BUNDLEs",
          "[queues]") {
  Rig rig([](zkit::SpoolNodeOptions& o) { o.bundle_bytes = 0; });
  rig.produce(5);
  RawConsumer& c = rig.consumer();
  c.join("bulk", 8, cm::StartKind::kEarliest, 0, /*bundle_bytes=*/1 << 20);
  REQUIRE(joined(rig, c));
  Tally tally;
  REQUIRE(consume_all(rig, {&c}, tally, 8));
  CHECK(c.deliveries == 10);
  CHECK(c.bundles == 0);
}

TEST_CASE("Every group gets every batch, each at its own pace", "[queues]") {
  Rig rig;
  RawConsumer& a = rig.consumer();
  RawConsumer& b = rig.consumer();
  a.join("billing", 8);
  b.join("audit", 2);
  rig.produce(50);
  Tally ta, tb;
  REQUIRE(consume_all(rig, {&a}, ta));
  REQUIRE(consume_all(rig, {&b}, tb, 2));
  CHECK(ta.duplicates() == 0);
  CHECK(tb.duplicates() == 0);
  // One member receives log order.
  CHECK(a.deliveries == 100);
}

TEST_CASE("A member that disconnects holding batches: another member gets them at once, count 2",
          "[queues]") {
  Rig rig;
  RawConsumer& a = rig.consumer();
  a.join("work", 4);
  REQUIRE(joined(rig, a));
  rig.produce(2);  // 4 batches, all to a
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return a.inbox.size() == 4; }));
  std::set<std::pair<std::uint64_t, std::uint64_t>> held;
  for (const Got& g : a.inbox) held.insert({g.d.segment, g.d.offset});
  RawConsumer& b = rig.consumer();
  b.join("work", 8);
  REQUIRE(joined(rig, b));
  a.close();
  // Before the 5 s heartbeat could: the disconnect is seen by its probe (counted as disconnected).
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return b.inbox.size() == 4; }, 4500ms));
  for (const Got& g : b.inbox) {
    CHECK(held.count({g.d.segment, g.d.offset}) == 1);
    CHECK(g.d.delivery_count == 2);
  }
  CHECK(rig.node->stats().serve.disconnected == 1);
}

TEST_CASE("A delivery not acked within ack_wait is redelivered with its count raised", "[queues]") {
  Rig rig;
  RawConsumer& a = rig.consumer();
  a.join("work", 1, cm::StartKind::kEarliest, 100);
  REQUIRE(joined(rig, a));
  CHECK(a.joined->ack_wait_ms == 100);
  rig.produce(1);
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return a.deliveries == 1; }));
  const Got first = a.inbox.front();
  a.inbox.clear();
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return a.deliveries == 2; }));
  CHECK(a.inbox.front().d.segment == first.d.segment);
  CHECK(a.inbox.front().d.offset == first.d.offset);
  CHECK(a.inbox.front().d.delivery_count == 2);
  CHECK(a.inbox.front().d.tag != first.d.tag);
  // The expired tag is no longer the member's.
  a.ack(first.d.tag);
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return a.has_error(cm::ErrorCode::kUnknownTag); }));
  CHECK(rig.node->stats().serve.ack_wait_expired >= 1);
}

TEST_CASE("PROGRESS restarts the ack timer; NACK redelivers; past max_deliver it is a dead letter",
          "[queues]") {
  Rig rig([](zkit::SpoolNodeOptions& o) { o.max_deliver = 2; });
  RawConsumer& a = rig.consumer();
  a.join("work", 1, cm::StartKind::kEarliest, 300);
  REQUIRE(joined(rig, a));
  rig.producers.resize(1);
  rig.produce(1);
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return a.deliveries == 1; }));
  // Keep it in progress for longer than ack_wait: no redelivery meanwhile.
  const auto until = Clock::now() + 600ms;
  while (Clock::now() < until) {
    a.send(cm::Progress{a.inbox.front().d.tag});
    for (int i = 0; i < 20; ++i) rig.step();
  }
  CHECK(a.deliveries == 1);
  a.send(cm::Nack{a.inbox.front().d.tag, 0});
  a.inbox.clear();
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return a.deliveries == 2; }));
  CHECK(a.inbox.front().d.delivery_count == 2);
  a.send(cm::Nack{a.inbox.front().d.tag, 0});  // the third time would exceed max_deliver 2
  a.inbox.clear();
  REQUIRE(
      pump_until([&] { rig.step(); }, [&] { return rig.group("work")->state.dead_lettered == 1; }));
  for (int i = 0; i < 50; ++i) rig.step();
  CHECK(a.deliveries == 2);
  CHECK(rig.group("work")->state.lag_batches == 0);
  // The dead-letter log is a spool directory of its own.
  auto report = zkit::spool::verify(zkit::spool::dead_letter_dir(rig.options.store.dir, "work"));
  REQUIRE(report);
  CHECK(report.value().batches == 1);
  // Replayed, it goes to this group again with its count starting over.
  const std::string r = rig.control("GROUP-REPLAY-DEAD work");
  CHECK(r.find("\"ok\":true") != std::string::npos);
  CHECK(r.find("\"replayed\":1") != std::string::npos);
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return a.deliveries == 3; }));
  CHECK(a.inbox.front().d.delivery_count == 1);
}

TEST_CASE("A member silent past the heartbeat timeout is dead: its batches go to another member",
          "[queues]") {
  // One thread drives the spool and both members, so a stall of that thread silences b as well:
  // the timeout must be long against a scheduling stall of a loaded machine (300 ms was not).
  Rig rig([](zkit::SpoolNodeOptions& o) { o.consumer_heartbeat = 1500ms; });
  RawConsumer& a = rig.consumer();
  a.join("work", 4);
  REQUIRE(joined(rig, a));
  CHECK(a.joined->heartbeat_ms == 500);
  rig.produce(1);
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return a.inbox.size() == 2; }));
  RawConsumer& b = rig.consumer();
  b.join("work", 4);
  REQUIRE(joined(rig, b));
  // b keeps pinging, a says nothing (but stays connected).
  REQUIRE(pump_until(
      [&] {
        b.send(cm::Ping{});
        for (int i = 0; i < 10; ++i) rig.step();
      },
      [&] { return b.inbox.size() == 2; }, 5000ms));
  CHECK(b.pongs > 0);
  CHECK(b.inbox.front().d.delivery_count == 2);
  CHECK(rig.node->stats().serve.timed_out == 1);
  a.send(cm::Ping{});
  REQUIRE(
      pump_until([&] { rig.step(); }, [&] { return a.has_error(cm::ErrorCode::kUnknownMember); }));
}

TEST_CASE("Acks of tags never given, or of another member's, get ERROR 5 and change nothing",
          "[queues]") {
  Rig rig;
  RawConsumer& good = rig.consumer();
  RawConsumer& bad = rig.consumer();
  good.join("work", 4);
  REQUIRE(joined(rig, good));
  rig.produce(2);
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return good.inbox.size() == 4; }));
  bad.join("work", 4);
  REQUIRE(joined(rig, bad));
  // The good member's tags, by the bad member; then huge ranges; then the good member's id.
  bad.send(cm::Ack{{{1, 4}}});
  bad.send(cm::Ack{{{0, ~std::uint64_t{0}}}});
  bad.send(cm::Nack{1, 0});
  bad.send(cm::Progress{2});
  bad.send(cm::Ack{{{1, 4}}}, good.member());
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return bad.errors.size() >= 5; }));
  CHECK(bad.has_error(cm::ErrorCode::kUnknownTag));
  CHECK(bad.has_error(cm::ErrorCode::kUnknownMember));
  CHECK(good.errors.empty());
  CHECK(rig.group("work")->state.acked == 0);
  CHECK(rig.group("work")->state.pending == 4);
  Tally tally;
  REQUIRE(consume_all(rig, {&good, &bad}, tally));
  CHECK(tally.duplicates() == 0);
  CHECK(good.errors.empty());
  // An ACK naming one held tag and one that is not: the held one is acked, ERROR 5 for the rest.
  rig.produce(1);
  REQUIRE(
      pump_until([&] { rig.step(); }, [&] { return good.inbox.size() + bad.inbox.size() == 2; }));
  RawConsumer& holder = good.inbox.empty() ? bad : good;
  const std::uint64_t t = holder.inbox.front().d.tag;
  holder.send(cm::Ack{{{t, t + 1000}}});
  holder.inbox.pop_front();
  const std::size_t errors = holder.errors.size();
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return holder.errors.size() > errors; }));
}

TEST_CASE("Prefetch 0 or 2^63 gets ERROR 2 and does not join", "[queues]") {
  Rig rig;
  RawConsumer& a = rig.consumer();
  a.join("work", 0);
  a.join("work", std::uint64_t{1} << 63);
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return a.errors.size() == 2; }));
  CHECK(a.errors[0].code == cm::ErrorCode::kBadPrefetch);
  CHECK(a.errors[1].code == cm::ErrorCode::kBadPrefetch);
  CHECK_FALSE(a.joined);
  a.send(cm::Ping{});
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return a.errors.size() == 3; }));
  CHECK(a.errors[2].code == cm::ErrorCode::kUnknownMember);
  // A joined member asking for bad credit keeps what it had.
  a.join("work", 2);
  REQUIRE(joined(rig, a));
  a.send(cm::Credit{0, 0});
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return a.errors.size() == 4; }));
  CHECK(a.errors[3].code == cm::ErrorCode::kBadPrefetch);
  rig.produce(2);
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return a.inbox.size() == 2; }));
}

TEST_CASE("Endless new group names stop at max-groups; a join storm stops at max-members",
          "[queues]") {
  Rig rig([](zkit::SpoolNodeOptions& o) {
    o.max_groups = 3;
    o.max_members = 2;
  });
  RawConsumer& storm = rig.consumer();
  for (int i = 0; i < 50; ++i) {
    cm::Join j;
    j.group = "g" + std::to_string(i);
    j.prefetch_batches = 1;
    storm.send(j, 5000 + 2 * static_cast<std::uint64_t>(i) + 1);
  }
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return storm.errors.size() == 47; }));
  for (const auto& e : storm.errors) CHECK(e.code == cm::ErrorCode::kTooManyGroups);
  // One connection re-joining with new member ids replaces itself: still one member.
  RawConsumer& again = rig.consumer();
  for (int i = 0; i < 100; ++i) {
    cm::Join j;
    j.group = "g0";
    j.prefetch_batches = 1;
    again.send(j, 1000 + 2 * static_cast<std::uint64_t>(i) + 1);
  }
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return rig.node->stats().serve.replaced >= 99; }));
  CHECK(rig.group("g0")->members == 2);  // storm's own member of g0, and `again`
  RawConsumer& third = rig.consumer();
  third.join("g0", 1);
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return !third.errors.empty(); }));
  CHECK(third.errors[0].code == cm::ErrorCode::kGroupFull);
  // The group name 'forward' is the link's.
  third.join("forward", 1);
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return third.errors.size() == 2; }));
  CHECK(third.errors[1].code == cm::ErrorCode::kBadStart);
}

TEST_CASE(
    "Malformed frames and reliable-link frames get ERROR 6; a persistent offender is "
    "dropped and nothing it held is lost",
    "[queues]") {
  Rig rig;
  RawConsumer& good = rig.consumer();
  RawConsumer& bad = rig.consumer();
  good.join("work", 4);
  bad.join("work", 4);
  REQUIRE(joined(rig, good));
  REQUIRE(joined(rig, bad));
  rig.produce(10);
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return !bad.inbox.empty(); }));
  bad.send_raw("garbage");
  const zmq::message_t hello =
      zkit::reliable::encode({zkit::reliable::MessageType::kHello, 7, 0, 8});
  bad.send_raw(hello.to_string());
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return bad.errors.size() >= 2; }));
  CHECK(bad.errors[0].code == cm::ErrorCode::kMalformed);
  CHECK(bad.errors[1].code == cm::ErrorCode::kMalformed);
  for (int i = 0; i < 20; ++i) bad.send_raw(std::string(40, 'x'));
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return rig.node->stats().serve.dropped == 1; }));
  CHECK(rig.node->stats().serve.malformed >= 17);
  Tally tally;
  for (const Got& g : bad.inbox) (void)g;  // never acked: the group takes them back
  bad.inbox.clear();
  REQUIRE(consume_all(rig, {&good}, tally));
  CHECK(good.errors.empty());
}

TEST_CASE(
    "The forward link keeps working beside --serve: the sink and the group each get everything",
    "[queues]") {
  TempDir sink_dir;
  zmq::context_t sink_ctx;
  Sink sink(sink_ctx, "tcp://127.0.0.1:*");
  Rig rig([&](zkit::SpoolNodeOptions& o) { o.forward = sink.endpoint(); });
  RawConsumer& a = rig.consumer();
  a.join("work", 8);
  rig.produce(30);
  Tally tally;
  REQUIRE(consume_all(rig, {&a}, tally));
  REQUIRE(pump_until(
      [&] {
        rig.step();
        sink.poll();
      },
      [&] { return sink.messages() == tally.seen.size(); }));
  for (auto& p : rig.producers) check_exactly_once(sink, p->id(), p->sent());
  REQUIRE(pump_until(
      [&] {
        rig.step();
        sink.poll();
      },
      [&] { return rig.group("forward")->state.acked == 60; }));
  CHECK(rig.figures.front().name == "forward");
}

TEST_CASE("GROUPS lists the groups; GROUP-RESET replays from a start; GROUP-DELETE removes",
          "[queues]") {
  Rig rig;
  RawConsumer& a = rig.consumer();
  a.join("work", 8);
  rig.produce(5);
  Tally tally;
  REQUIRE(consume_all(rig, {&a}, tally));
  const std::string list = rig.control("GROUPS");
  CHECK(list.find("\"name\":\"work\"") != std::string::npos);
  CHECK(list.find("\"members\":1") != std::string::npos);
  CHECK(rig.control("STATS").find("\"groups\"") != std::string::npos);
  CHECK(rig.control("GROUP-RESET work nowhere").find("\"ok\":false") != std::string::npos);
  CHECK(rig.control("GROUP-RESET nogroup earliest").find("\"ok\":false") != std::string::npos);
  CHECK(rig.control("GROUP-RESET work earliest").find("\"ok\":true") != std::string::npos);
  Tally again;
  REQUIRE(consume_all(rig, {&a}, again));
  CHECK(again.duplicates() == 0);
  CHECK(rig.control("GROUP-DELETE work").find("\"ok\":true") != std::string::npos);
  REQUIRE(
      pump_until([&] { rig.step(); }, [&] { return a.has_error(cm::ErrorCode::kUnknownMember); }));
  CHECK(rig.group("work") == nullptr);
  CHECK(rig.control("GROUP-DELETE work").find("\"ok\":false") != std::string::npos);
}

TEST_CASE("Group state survives a restart: only what was not acked is delivered again",
          "[queues]") {
  Rig rig;
  {
    RawConsumer& a = rig.consumer();
    a.join("work", 4);
    rig.produce(10);
    Tally tally;
    REQUIRE(consume_all(rig, {&a}, tally));
    rig.produce(2);
    REQUIRE(pump_until([&] { rig.step(); }, [&] { return a.inbox.size() == 4; }));
    // These four stay unacked.
  }
  rig.consumers.clear();
  REQUIRE(rig.node->shutdown());
  rig.node.reset();
  rig.start();
  for (auto& p : rig.producers) p->sender().connect(rig.node->listen_endpoint());
  RawConsumer& b = rig.consumer();
  b.join("work", 8);
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return b.inbox.size() == 4; }));
  for (int i = 0; i < 50; ++i) rig.step();
  CHECK(b.inbox.size() == 4);
  for (const Got& g : b.inbox) CHECK(g.d.delivery_count == 2);
}

TEST_CASE("A JOIN with a bad start or a bad group name gets ERROR 7 and does not join",
          "[queues]") {
  Rig rig;
  rig.produce(1);
  RawConsumer& a = rig.consumer();
  // A position before the log's first record, and a start kind the protocol does not have.
  cm::Join j;
  j.group = "new";
  j.prefetch_batches = 1;
  j.start_kind = cm::StartKind::kPosition;
  j.start_a = 0;
  j.start_b = 0;
  a.send(j);
  std::string bytes = cm::encode(cm::Message{a.member(), cm::Join{"other", 1}}).to_string();
  bytes[12 + 1 + 5 + 9 + 9 + 8] = '\x09';  // start_kind's low byte (after "other", two numbers): 9
  a.send_raw(bytes);
  a.send_raw(std::string("\x9b\x01\x14") + std::string("\xcf\0\0\0\0\0\0\0\x07", 9) +
             "\xa3"
             "a b" +
             std::string(7, '\0'));
  REQUIRE(pump_until([&] { rig.step(); }, [&] { return a.errors.size() >= 3; }));
  for (const auto& e : a.errors)
    CHECK((e.code == cm::ErrorCode::kBadStart || e.code == cm::ErrorCode::kMalformed));
  CHECK(a.errors[0].code == cm::ErrorCode::kBadStart);
  CHECK(a.errors[1].code == cm::ErrorCode::kBadStart);
  CHECK_FALSE(a.joined);
  CHECK(rig.group("new") == nullptr);
  CHECK(rig.group("other") == nullptr);
}
