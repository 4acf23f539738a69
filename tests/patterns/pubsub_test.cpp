// Publisher/Subscriber: topics and filters over every transport, run-time (un)subscribe, the slow
// joiner and the high-water mark (both counted), raw mode against pyzmq, stop.
#include "zkit/pubsub.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "pattern_testutil.hpp"

using namespace std::chrono_literals;
using zkit::Message;
using zkit::PatternOptions;
using zkit::Publisher;
using zkit::Subscriber;
using zkit::test::TempDir;

namespace {

// Publishes on topic until the subscriber sees one message there (subscriptions travel to the
// publisher asynchronously); then drains what is left of the probes.
void await_subscription(Publisher& pub, Subscriber& sub, const std::string& topic) {
  bool seen = false;
  for (int i = 0; i < 500 && !seen; ++i) {
    pub.send(topic, "probe");
    pub.flush();
    seen = sub.receive(10ms).has_value();
  }
  REQUIRE(seen);
  while (sub.receive(20ms)) {
  }
}

}  // namespace

TEST_CASE("Subscribers get their topics' messages with the topic, over inproc, ipc and tcp",
          "[pubsub]") {
  std::string transport = GENERATE("inproc", "ipc", "tcp");
  TempDir dir;
  zmq::context_t ctx;
  Publisher pub(ctx);
  std::string ep = pub.bind(zkit::test::endpoint_for(transport, dir));
  Subscriber weather(ctx), all(ctx);
  weather.connect(ep);
  weather.subscribe("weather.");
  all.connect(ep);
  all.subscribe("");
  await_subscription(pub, weather, "weather.sync");
  await_subscription(pub, all, "sync");
  for (int i = 0; i < 1000; ++i) {
    pub.send("weather.paris", "sun " + std::to_string(i));
    pub.send("news", "headline " + std::to_string(i));
  }
  pub.flush();
  std::vector<std::string> w;
  while (w.size() < 1000) {
    auto m = weather.receive(5s);
    if (!m) break;
    CHECK(m->topic == "weather.paris");
    w.emplace_back(m->text());
  }
  REQUIRE(w.size() == 1000);
  CHECK(w.front() == "sun 0");
  CHECK(w.back() == "sun 999");
  std::size_t news = 0, sun = 0;
  while (news + sun < 2000) {
    auto m = all.receive(5s);
    if (!m) break;
    (m->topic == "news" ? news : sun) += 1;
  }
  CHECK(news == 1000);
  CHECK(sun == 1000);
  CHECK_FALSE(weather.receive(50ms));  // no news for the weather subscriber
}

TEST_CASE("Unsubscribing at run time stops a topic, subscribing starts one", "[pubsub]") {
  zmq::context_t ctx;
  Publisher pub(ctx);
  Subscriber sub(ctx);
  sub.connect(pub.bind("inproc://resub"));
  sub.subscribe("a");
  await_subscription(pub, sub, "a");
  sub.unsubscribe("a");
  sub.subscribe("b");
  await_subscription(pub, sub, "b");
  pub.send("a", "not for you");
  pub.send("b", "for you");
  pub.flush();
  auto m = sub.receive(2s);
  REQUIRE(m);
  CHECK(m->topic == "b");
  CHECK(m->text() == "for you");
  CHECK_FALSE(sub.receive(50ms));
}

TEST_CASE("All topics of a publisher share one sequence series", "[pubsub]") {
  zmq::context_t ctx;
  Publisher pub(ctx);
  Subscriber sub(ctx);
  sub.connect(pub.bind("inproc://seq"));
  sub.subscribe("");
  await_subscription(pub, sub, "s");
  std::uint64_t missed = sub.stats().missed_batches;
  std::vector<std::uint64_t> seqs;
  for (const char* t : {"x", "y", "z", "x"}) {
    pub.send(t, "m");
    pub.flush();
  }
  for (int i = 0; i < 4; ++i) {
    auto m = sub.receive(2s);
    REQUIRE(m);
    seqs.push_back(m->seq);
  }
  for (std::size_t i = 1; i < seqs.size(); ++i) CHECK(seqs[i] == seqs[i - 1] + 1);
  CHECK(sub.stats().missed_batches == missed);
}

TEST_CASE("A slow joiner misses the first batches and counts them from the sequence gap",
          "[pubsub]") {
  zmq::context_t ctx;
  Publisher pub(ctx);
  std::string ep = pub.bind("tcp://127.0.0.1:*");
  constexpr int kEarly = 25;
  for (int i = 0; i < kEarly; ++i) {  // nobody is listening: plain ZeroMQ drops these silently
    pub.send("t", "early " + std::to_string(i));
    pub.flush();
  }
  CHECK(pub.stats().dropped_batches == 0);  // the publisher cannot see this loss
  Subscriber sub(ctx);
  sub.connect(ep);
  sub.subscribe("t");
  std::optional<Message> first;
  for (int i = 0; i < 500 && !first; ++i) {
    pub.send("t", "late");
    pub.flush();
    first = sub.receive(10ms);
  }
  REQUIRE(first);
  CHECK(first->text() == "late");  // none of the early ones arrived
  // Every batch before the first one seen is counted as missed.
  CHECK(sub.stats().missed_batches == first->seq - 1);
  CHECK(sub.stats().missed_batches >= kEarly);
}

TEST_CASE("A publisher at the high-water mark drops whole batches and counts them", "[pubsub]") {
  zmq::context_t ctx;
  PatternOptions po;
  po.socket.sndhwm = 2;
  po.socket.sndbuf = 4096;
  po.batch.max_records = 1;
  Publisher pub(ctx, po);
  std::string ep = pub.bind("tcp://127.0.0.1:*");
  PatternOptions so;
  so.socket.rcvhwm = 2;
  so.socket.rcvbuf = 4096;
  Subscriber sub(ctx, so);
  sub.connect(ep);
  sub.subscribe("");
  await_subscription(pub, sub, "sync");
  std::uint64_t missed0 = sub.stats().missed_batches;
  std::uint64_t sent0 = pub.stats().batches_out;
  std::uint64_t dropped0 = pub.stats().dropped_batches;
  // The subscriber does not read: its queues fill and the publisher must drop.
  constexpr int kBatches = 5000;
  std::string payload(2000, 'x');
  std::uint64_t refused = 0;  // one message a batch: send() is false exactly for a dropped batch
  for (int i = 0; i < kBatches; ++i) refused += pub.send("data", payload) ? 0 : 1;
  const zkit::SocketStats& ps = pub.stats();
  std::uint64_t dropped = ps.dropped_batches - dropped0;
  REQUIRE(dropped > 0);
  CHECK(refused == dropped);
  CHECK(ps.dropped_messages == ps.dropped_batches);
  CHECK(ps.send_would_block == ps.dropped_batches);
  CHECK(ps.batches_out - sent0 + dropped == kBatches);
  // Whatever was handed to ZeroMQ arrives; what the publisher dropped the subscriber counts as
  // missed, batch for batch.
  std::uint64_t received = 0;
  while (sub.receive(200ms)) ++received;
  CHECK(received == ps.batches_out - sent0);
  // Gaps after the last received batch are invisible until another batch arrives.
  for (int i = 0; i < 200; ++i) {
    pub.send("data", "tail");
    pub.flush();
    if (sub.receive(20ms)) break;
  }
  CHECK(sub.stats().missed_batches - missed0 == ps.dropped_batches - dropped0);
}

TEST_CASE("Subscriber run() stops from another thread", "[pubsub]") {
  zmq::context_t ctx;
  Subscriber sub(ctx);
  sub.bind("inproc://sub-stop");
  sub.subscribe("");
  std::thread t([&] { sub.run([](const Message&) {}); });
  std::this_thread::sleep_for(20ms);
  sub.stop();
  t.join();
  SUCCEED("run() returned");
}

TEST_CASE("A lingering Subscriber does not hold up its context once the publisher is gone",
          "[pubsub]") {
  // A linger of an hour: if closing the Subscriber kept its queued subscription for the linger,
  // ctx.close() would block far beyond the ctest TIMEOUT. A receiver has nothing of its own to
  // deliver, so close() must not wait.
  bool publisher_seen = GENERATE(false, true);
  zmq::context_t ctx;
  PatternOptions o;
  o.socket.linger = std::chrono::hours(1);
  std::string endpoint;
  {
    Publisher pub(ctx);
    endpoint = pub.bind("tcp://127.0.0.1:*");
    Subscriber sub(ctx, o);
    sub.connect(endpoint);
    if (publisher_seen) {
      sub.subscribe("t");
      await_subscription(pub, sub, "t");
    }
    CHECK(pub.close().clean());
    // Time for the Subscriber to see the connection drop and start reconnecting.
    while (sub.receive(100ms)) {
    }
    sub.subscribe("after");
    CHECK(sub.close().clean());
  }
  ctx.close();
  SUCCEED("the context closed");
}

namespace {
const char* kPySub = R"(import sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.SUB)
s.setsockopt(zmq.RCVTIMEO, 10000)
s.setsockopt(zmq.SUBSCRIBE, b"keep")
s.connect(sys.argv[1])
print("ready", flush=True)
n = 0
while n < int(sys.argv[2]):
    topic, body = s.recv_multipart()
    if body == b"probe":
        continue
    print(topic.decode() + " " + body.decode(), flush=True)
    n += 1
s.close(linger=0)
ctx.term()
)";
const char* kPyPub = R"(import sys, time, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.PUB)
s.bind(sys.argv[1])
print(s.getsockopt(zmq.LAST_ENDPOINT).decode(), flush=True)
for r in range(400):
    s.send_multipart([b"keep", b"hello %d" % r])
    s.send(b"single-frame %d" % r)
    time.sleep(0.01)
s.close(linger=0)
ctx.term()
)";
}  // namespace

TEST_CASE("A pyzmq SUB receives a raw Publisher's topic frames", "[pubsub][interop]") {
  TempDir dir;
  zmq::context_t ctx;
  PatternOptions o;
  o.raw = true;
  Publisher pub(ctx, o);
  std::string ep = pub.bind("tcp://127.0.0.1:*");
  zkit::test::PyPeer peer(dir, kPySub, ep + " 3");
  REQUIRE(peer.line() == "ready");
  // Publish probes until pyzmq's subscription has certainly arrived, then the real ones.
  for (int i = 0; i < 30; ++i) {
    pub.send("keep", "probe");
    pub.send("drop", "probe");
    std::this_thread::sleep_for(10ms);
  }
  for (int i = 0; i < 3; ++i) {
    pub.send("drop", "filtered " + std::to_string(i));
    pub.send("keep", "msg " + std::to_string(i));
  }
  for (int i = 0; i < 3; ++i) CHECK(peer.line() == "keep msg " + std::to_string(i));
  CHECK(peer.wait() == 0);
}

TEST_CASE("A raw Subscriber reads a pyzmq PUB, one-frame and two-frame messages",
          "[pubsub][interop]") {
  TempDir dir;
  std::string ep = "ipc://" + dir.path() + "/pub.sock";
  zkit::test::PyPeer peer(dir, kPyPub, ep);
  REQUIRE(peer.line() == ep);
  zmq::context_t ctx;
  PatternOptions o;
  o.raw = true;
  Subscriber sub(ctx, o);
  sub.connect(ep);
  sub.subscribe("");
  int two = 0, one = 0;
  for (int i = 0; i < 500 && (two < 3 || one < 3); ++i) {
    auto m = sub.receive(5s);
    REQUIRE(m);
    if (m->topic == "keep") {
      CHECK_THAT(std::string(m->text()), Catch::StartsWith("hello "));
      ++two;
    } else {
      CHECK(m->topic.empty());
      CHECK_THAT(std::string(m->text()), Catch::StartsWith("single-frame "));
      ++one;
    }
  }
  CHECK(two >= 3);
  CHECK(one >= 3);
  CHECK(sub.stats().decode_errors == 0);
  sub.close();
  peer.wait();
}

TEST_CASE("A batched Subscriber counts and drops plain frames from a raw publisher", "[pubsub]") {
  zmq::context_t ctx;
  Subscriber sub(ctx);
  std::set<std::string> why;  // on_error: every frame counted says why
  std::uint64_t reported = 0;
  sub.on_error([&](const zkit::Status& s) {
    ++reported;
    why.insert(s.to_string());
  });
  std::string ep = sub.bind("tcp://127.0.0.1:*");
  sub.subscribe("");
  zmq::socket_t plain(ctx, zmq::socket_type::pub);
  plain.connect(ep);
  Publisher good(ctx);
  good.connect(ep);
  bool seen = false;
  for (int i = 0; i < 500 && !seen; ++i) {
    plain.send(zmq::str_buffer("garbage"), zmq::send_flags::none);
    plain.send(zmq::str_buffer("topic"), zmq::send_flags::sndmore);
    plain.send(zmq::str_buffer("not a batch"), zmq::send_flags::none);
    good.send("ok", "fine");
    good.flush();
    seen = sub.receive(10ms).has_value();
  }
  REQUIRE(seen);
  for (int i = 0; i < 50 && sub.stats().decode_errors < 2; ++i) (void)sub.receive(10ms);
  CHECK(sub.stats().decode_errors >= 2);
  CHECK(reported == sub.stats().decode_errors);
  CHECK(why.count("Corruption: message of one frame (7 bytes) without its topic; a Subscriber "
                  "takes [topic][batch]") == 1);
  CHECK(why.count("Corruption: batch at byte 0 is not an array (type byte 0x6e)") == 1);
}

namespace {

// A plain XPUB that hands a Subscriber hand-made batches (producer, seq) once it has subscribed.
struct ForgedPublisher {
  ForgedPublisher(zmq::context_t& ctx, Subscriber& sub, const std::string& ep)
      : xpub(ctx, zmq::socket_type::xpub) {
    xpub.set(zmq::sockopt::rcvtimeo, 5000);
    xpub.bind(ep);
    sub.connect(ep);
    sub.subscribe("");
    zmq::message_t subscription;
    REQUIRE(xpub.recv(subscription));  // inproc: what is sent from now on arrives
  }
  void send(std::uint64_t producer, std::uint64_t seq) {
    zkit::envelope::Encoder e;
    e.begin(producer);
    e.add("x");
    zmq::message_t frame = e.finish(seq, 0);
    xpub.send(zmq::str_buffer("t"), zmq::send_flags::sndmore);
    xpub.send(frame, zmq::send_flags::none);
  }
  zmq::socket_t xpub;
};

}  // namespace

TEST_CASE("One implausible sequence jump is counted as a reset, not as 2^63 missed batches",
          "[pubsub][defect8]") {
  zmq::context_t ctx;
  Subscriber sub(ctx);
  ForgedPublisher forged(ctx, sub, "inproc://forged-seq");
  forged.send(777, 1);
  forged.send(777, std::uint64_t{1} << 63);  // forged: 2^63 - 2 "missed" before the fix
  forged.send(777, 2);                       // the real producer again: far back, a reset
  forged.send(777, 4);                       // a real gap of one batch
  for (int i = 0; i < 4; ++i) REQUIRE(sub.receive(5s));
  CHECK(sub.stats().missed_batches == 1);
  CHECK(sub.stats().sequence_resets == 2);
}

TEST_CASE("A first batch far into a series is a reset; within max_sequence_gap it counts as missed",
          "[pubsub][defect8]") {
  zmq::context_t ctx;
  PatternOptions o;
  o.max_sequence_gap = 100;
  Subscriber sub(ctx, o);
  ForgedPublisher forged(ctx, sub, "inproc://forged-first");
  forged.send(1, 101);  // 100 missed: at the bound, still plausible
  forged.send(2, 102);  // 101 missed: past it
  for (int i = 0; i < 2; ++i) REQUIRE(sub.receive(5s));
  CHECK(sub.stats().missed_batches == 100);
  CHECK(sub.stats().sequence_resets == 1);
}

TEST_CASE("The Subscriber tracks at most max_producers and forgets the one seen longest ago",
          "[pubsub][defect8]") {
  zmq::context_t ctx;
  PatternOptions o;
  o.max_producers = 4;
  Subscriber sub(ctx, o);
  ForgedPublisher forged(ctx, sub, "inproc://forged-producers");
  for (std::uint64_t p = 1; p <= 4; ++p) forged.send(p, 1);
  forged.send(1, 2);  // producer 1 is now the most recently seen
  forged.send(5, 1);  // the table is full: producer 2, seen longest ago, is forgotten
  forged.send(1, 3);  // still tracked: no gap
  forged.send(2, 2);  // forgotten, so new: seq 1 counts as missed
  for (int i = 0; i < 8; ++i) REQUIRE(sub.receive(5s));
  CHECK(sub.stats().producers_forgotten == 2);  // 2 for 5, then 3 for 2's return
  CHECK(sub.stats().missed_batches == 1);
  PatternOptions none;
  none.max_producers = 0;
  CHECK_THROWS_AS(Subscriber(ctx, none), std::invalid_argument);
}
