// The Proxy actor in-process: each type end to end with zkit batch frames and plain frames, the
// control socket (zmq_proxy_steerable's commands and STATS), capture, and garbage from raw peers.
#include "zkit/proxy.hpp"

#include <catch2/catch.hpp>
#include <map>
#include <thread>

#include "disconnect_watch.hpp"
#include "test_util.hpp"
#include "zkit/control.hpp"

using namespace zkit;
using namespace zkit::test;
using namespace std::chrono_literals;

namespace {

ProxyOptions options(ProxyType type) {
  ProxyOptions o;
  o.type = type;
  o.frontend = "@tcp://127.0.0.1:*";
  o.backend = "@tcp://127.0.0.1:*";
  o.control = unique_inproc("control");
  return o;
}

std::uint64_t seq_of(const zmq::message_t& frame) {
  auto h = envelope::peek(std::span(static_cast<const std::byte*>(frame.data()), frame.size()));
  REQUIRE(h.is_ok());
  return h->seq;
}

// Waits (bounded) until the proxy's STATS satisfy `done`.
template <class Pred>
nlohmann::json wait_stats(zmq::context_t& ctx, const std::string& ep, Pred done) {
  nlohmann::json j;
  for (int i = 0; i < 500; ++i) {
    j = stats_json(ctx, ep);
    if (done(j)) break;
    std::this_thread::sleep_for(10ms);
  }
  return j;
}

}  // namespace

TEST_CASE("Streamer carries batches from two producers in order and STATS counts records exactly",
          "[devices][proxy]") {
  zmq::context_t ctx;
  Proxy proxy(ctx, options(ProxyType::kStreamer));
  zmq::socket_t a(ctx, zmq::socket_type::push), b(ctx, zmq::socket_type::push);
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  a.connect(proxy.frontend_endpoint());
  b.connect(proxy.frontend_endpoint());
  pull.connect(proxy.backend_endpoint());

  constexpr int kBatches = 50;
  std::uint64_t records = 0, bytes = 0;
  for (int i = 1; i <= kBatches; ++i) {
    for (std::uint64_t producer : {1, 2}) {
      zmq::message_t frame = make_batch(producer, i, static_cast<std::size_t>(i % 7 + 1));
      records += i % 7 + 1;
      bytes += frame.size();
      (producer == 1 ? a : b).send(frame, zmq::send_flags::none);
    }
  }
  std::map<std::uint64_t, std::uint64_t> last_seq;
  for (int i = 0; i < 2 * kBatches; ++i) {
    auto msg = recv_within(pull);
    REQUIRE(msg);
    REQUIRE(msg->size() == 1);
    auto frame = std::span(static_cast<const std::byte*>((*msg)[0].data()), (*msg)[0].size());
    auto h = envelope::peek(frame);
    REQUIRE(h.is_ok());
    CHECK(h->seq == last_seq[h->producer_id] + 1);
    last_seq[h->producer_id] = h->seq;
  }
  CHECK(last_seq[1] == kBatches);
  CHECK(last_seq[2] == kBatches);

  const auto j = stats_json(ctx, proxy.control_endpoint());
  CHECK(j["type"] == "streamer");
  CHECK(j["state"] == "active");
  for (const auto& flow : {j["frontend"]["recv"], j["backend"]["sent"]}) {
    CHECK(flow["messages"] == 2 * kBatches);
    CHECK(flow["frames"] == 2 * kBatches);
    CHECK(flow["batches"] == 2 * kBatches);
    CHECK(flow["records"] == records);
    CHECK(flow["bytes"] == bytes);
    CHECK(flow["raw"] == 0);
  }
  CHECK(j["drops"] == 0);

  // zmq_proxy_steerable's STATISTICS: 8 uint64 frames, frames and bytes per side and direction.
  const auto v = statistics(ctx, proxy.control_endpoint());
  REQUIRE(v.size() == 8);
  CHECK(v == std::vector<std::uint64_t>{2 * kBatches, bytes, 0, 0, 0, 0, 2 * kBatches, bytes});
  CHECK(proxy.stats().frontend_recv.records == records);
}

TEST_CASE("Forwarder sends subscriptions upstream and filtered [topic][batch] frames down",
          "[devices][proxy]") {
  zmq::context_t ctx;
  Proxy proxy(ctx, options(ProxyType::kForwarder));
  // An XPUB publisher shows the subscription that travelled up through the proxy.
  zmq::socket_t pub(ctx, zmq::socket_type::xpub);
  pub.connect(proxy.frontend_endpoint());
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, "A");
  sub.connect(proxy.backend_endpoint());
  auto subscription = recv_within(pub);
  REQUIRE(subscription);
  CHECK((*subscription)[0].to_string() == std::string("\x01"
                                                      "A",
                                                      2));

  constexpr int kBatches = 20;
  for (int i = 1; i <= kBatches; ++i) {
    for (const char* topic : {"A", "B"}) {
      pub.send(zmq::buffer(std::string(topic)), zmq::send_flags::sndmore);
      pub.send(make_batch(7, i, 3), zmq::send_flags::none);
    }
  }
  for (int i = 1; i <= kBatches; ++i) {
    auto msg = recv_within(sub);
    REQUIRE(msg);
    REQUIRE(msg->size() == 2);
    CHECK((*msg)[0].to_string() == "A");
    CHECK(seq_of((*msg)[1]) == static_cast<std::uint64_t>(i));
  }
  CHECK_FALSE(recv_within(sub, 200ms));  // topic B never subscribed

  const auto j = stats_json(ctx, proxy.control_endpoint());
  CHECK(j["subscriptions"]["subscribe"] == 1);
  CHECK(j["backend"]["recv"]["messages"] == 1);
  CHECK(j["frontend"]["sent"]["messages"] == 1);
  CHECK(j["frontend"]["recv"]["batches"] == kBatches);  // the publisher filtered B itself
  CHECK(j["frontend"]["recv"]["records"] == 3 * kBatches);
  CHECK(j["backend"]["sent"]["records"] == 3 * kBatches);
  CHECK(j["frontend"]["recv"]["frames"] == 2 * kBatches);
}

TEST_CASE("Queue routes each reply to its requester and counts batch requests",
          "[devices][proxy]") {
  zmq::context_t ctx;
  Proxy proxy(ctx, options(ProxyType::kQueue));
  zmq::socket_t c1(ctx, zmq::socket_type::req), c2(ctx, zmq::socket_type::req);
  zmq::socket_t worker(ctx, zmq::socket_type::rep);
  c1.connect(proxy.frontend_endpoint());
  c2.connect(proxy.frontend_endpoint());
  worker.connect(proxy.backend_endpoint());

  constexpr int kRounds = 10;
  for (int i = 1; i <= kRounds; ++i) {
    c1.send(make_batch(1, i, 2), zmq::send_flags::none);
    c2.send(make_batch(2, i, 2), zmq::send_flags::none);
    for (int k = 0; k < 2; ++k) {
      auto req = recv_within(worker);
      REQUIRE(req);
      auto h = envelope::peek(
          std::span(static_cast<const std::byte*>((*req)[0].data()), (*req)[0].size()));
      REQUIRE(h.is_ok());
      worker.send(zmq::buffer("reply to " + std::to_string(h->producer_id)), zmq::send_flags::none);
    }
    auto r1 = recv_within(c1);
    auto r2 = recv_within(c2);
    REQUIRE(r1);
    REQUIRE(r2);
    CHECK((*r1)[0].to_string() == "reply to 1");
    CHECK((*r2)[0].to_string() == "reply to 2");
  }
  const auto j = stats_json(ctx, proxy.control_endpoint());
  CHECK(j["frontend"]["recv"]["messages"] == 2 * kRounds);
  CHECK(j["frontend"]["recv"]["batches"] == 2 * kRounds);
  CHECK(j["frontend"]["recv"]["records"] == 4 * kRounds);
  CHECK(j["frontend"]["recv"]["frames"] == 3 * 2 * kRounds);  // [identity][][batch]
  CHECK(j["backend"]["recv"]["raw"] == 2 * kRounds);          // the text replies
  CHECK(j["frontend"]["sent"]["messages"] == 2 * kRounds);
  CHECK(j["drops"] == 0);
}

TEST_CASE("PAUSE holds traffic, RESUME releases it, and both answer one empty frame",
          "[devices][proxy][control]") {
  zmq::context_t ctx;
  Proxy proxy(ctx, options(ProxyType::kStreamer));
  zmq::socket_t push(ctx, zmq::socket_type::push), pull(ctx, zmq::socket_type::pull);
  push.connect(proxy.frontend_endpoint());
  pull.connect(proxy.backend_endpoint());

  auto reply = control(ctx, proxy.control_endpoint(), "PAUSE");
  REQUIRE(reply.size() == 1);
  CHECK(reply[0].size() == 0);
  CHECK(stats_json(ctx, proxy.control_endpoint())["state"] == "paused");
  for (int i = 0; i < 10; ++i)
    push.send(zmq::buffer("m" + std::to_string(i)), zmq::send_flags::none);
  CHECK_FALSE(recv_within(pull, 300ms));
  CHECK(proxy.stats().frontend_recv.messages == 0);

  reply = control(ctx, proxy.control_endpoint(), "RESUME");
  REQUIRE(reply.size() == 1);
  CHECK(reply[0].size() == 0);
  for (int i = 0; i < 10; ++i) {
    auto m = recv_within(pull);
    REQUIRE(m);
    CHECK((*m)[0].to_string() == "m" + std::to_string(i));
  }
  // The in-process handle steers the same way.
  proxy.pause();
  CHECK(proxy.stats().paused);
  proxy.resume();
  CHECK_FALSE(proxy.stats().paused);
}

TEST_CASE("Unknown control commands get an empty reply and change nothing",
          "[devices][proxy][control]") {
  zmq::context_t ctx;
  Proxy proxy(ctx, options(ProxyType::kStreamer));
  auto reply = control(ctx, proxy.control_endpoint(), "FROBNICATE");
  REQUIRE(reply.size() == 1);
  CHECK(reply[0].size() == 0);
  CHECK_FALSE(proxy.terminated());
  CHECK(stats_json(ctx, proxy.control_endpoint())["control_commands"] == 2);
}

TEST_CASE("TERMINATE answers an empty frame and stops the device", "[devices][proxy][control]") {
  zmq::context_t ctx;
  Proxy proxy(ctx, options(ProxyType::kQueue));
  auto reply = control(ctx, proxy.control_endpoint(), "TERMINATE");
  REQUIRE(reply.size() == 1);
  CHECK(reply[0].size() == 0);
  for (int i = 0; i < 500 && !proxy.terminated(); ++i) std::this_thread::sleep_for(10ms);
  CHECK(proxy.terminated());
  CHECK(proxy.stats().terminated);
  CHECK(proxy.failure().empty());
}

TEST_CASE("Capture receives a copy of every frame", "[devices][proxy][capture]") {
  zmq::context_t ctx;
  ProxyOptions o = options(ProxyType::kStreamer);
  o.capture = unique_inproc("capture");
  o.capture_push = true;
  Proxy proxy(ctx, o);
  zmq::socket_t tap(ctx, zmq::socket_type::pull);
  tap.connect(proxy.capture_endpoint());
  zmq::socket_t push(ctx, zmq::socket_type::push), pull(ctx, zmq::socket_type::pull);
  push.connect(proxy.frontend_endpoint());
  pull.connect(proxy.backend_endpoint());
  for (int i = 0; i < 5; ++i) push.send(make_batch(3, i + 1, 4), zmq::send_flags::none);
  for (int i = 0; i < 5; ++i) {
    auto m = recv_within(pull);
    auto c = recv_within(tap);
    REQUIRE(m);
    REQUIRE(c);
    CHECK((*c)[0] == (*m)[0]);
  }
  CHECK(proxy.stats().capture_frames == 5);
}

TEST_CASE("A capture nobody reads loses copies but never stalls traffic",
          "[devices][proxy][capture]") {
  zmq::context_t ctx;
  ProxyOptions o = options(ProxyType::kStreamer);
  o.capture = unique_inproc("capture");
  o.capture_push = true;  // a PUSH with no peer cannot take anything
  Proxy proxy(ctx, o);
  zmq::socket_t push(ctx, zmq::socket_type::push), pull(ctx, zmq::socket_type::pull);
  push.connect(proxy.frontend_endpoint());
  pull.connect(proxy.backend_endpoint());
  for (int i = 0; i < 20; ++i) push.send(zmq::str_buffer("x"), zmq::send_flags::none);
  for (int i = 0; i < 20; ++i) REQUIRE(recv_within(pull));
  const ProxyStats s = proxy.stats();
  CHECK(s.capture_dropped == 20);
  CHECK(s.capture_frames == 0);
}

TEST_CASE("Garbage and malformed batches are counted and forwarded without disturbing a good peer",
          "[devices][proxy][garbage]") {
  zmq::context_t ctx;
  Proxy proxy(ctx, options(ProxyType::kStreamer));
  zmq::socket_t good(ctx, zmq::socket_type::push), raw(ctx, zmq::socket_type::push);
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  good.connect(proxy.frontend_endpoint());
  raw.connect(proxy.frontend_endpoint());
  pull.connect(proxy.backend_endpoint());

  const std::string malformed("\x96\x01\xff\xff", 4);  // an array of 6 that is not a batch
  raw.send(zmq::buffer(malformed), zmq::send_flags::none);
  raw.send(zmq::message_t(), zmq::send_flags::none);
  raw.send(zmq::str_buffer("\xc1\xc1 not msgpack"), zmq::send_flags::none);
  raw.send(zmq::str_buffer("part 1"), zmq::send_flags::sndmore);  // a multipart oddity
  raw.send(zmq::str_buffer("part 2"), zmq::send_flags::none);
  for (int i = 1; i <= 10; ++i) good.send(make_batch(9, i, 5), zmq::send_flags::none);

  std::uint64_t next_seq = 1;
  int others = 0;
  for (int i = 0; i < 14; ++i) {
    auto m = recv_within(pull);
    REQUIRE(m);
    auto h = envelope::peek(
        std::span(static_cast<const std::byte*>(m->back().data()), m->back().size()));
    if (h.is_ok()) {
      CHECK(h->seq == next_seq++);
    } else {
      ++others;  // forwarded untouched
      if (m->size() == 1 && (*m)[0].size() == malformed.size()) {
        CHECK((*m)[0].to_string() == malformed);
      }
    }
  }
  CHECK(next_seq == 11);
  CHECK(others == 4);
  const ProxyStats s = proxy.stats();
  CHECK(s.frontend_recv.messages == 14);
  CHECK(s.frontend_recv.frames == 15);
  CHECK(s.frontend_recv.batches == 10);
  CHECK(s.frontend_recv.records == 50);
  CHECK(s.frontend_recv.raw == 4);
  CHECK(s.frontend_recv.malformed == 1);
  CHECK(s.backend_sent.messages == 14);
}

TEST_CASE("A raw DEALER sending garbage through the queue does not disturb a REQ client",
          "[devices][proxy][garbage]") {
  zmq::context_t ctx;
  Proxy proxy(ctx, options(ProxyType::kQueue));
  zmq::socket_t client(ctx, zmq::socket_type::req), rogue(ctx, zmq::socket_type::dealer);
  zmq::socket_t worker(ctx, zmq::socket_type::rep);
  client.connect(proxy.frontend_endpoint());
  rogue.connect(proxy.frontend_endpoint());
  worker.connect(proxy.backend_endpoint());
  // No empty delimiter: a REP worker discards such a message.
  rogue.send(zmq::str_buffer("garbage"), zmq::send_flags::none);
  for (int i = 0; i < 5; ++i) {
    client.send(zmq::buffer("q" + std::to_string(i)), zmq::send_flags::none);
    auto req = recv_within(worker);
    REQUIRE(req);
    CHECK((*req)[0].to_string() == "q" + std::to_string(i));
    worker.send(zmq::buffer("a" + std::to_string(i)), zmq::send_flags::none);
    auto rep = recv_within(client);
    REQUIRE(rep);
    CHECK((*rep)[0].to_string() == "a" + std::to_string(i));
  }
  CHECK(proxy.stats().frontend_recv.messages == 6);
}

TEST_CASE("stop() closes the device and stats() keeps the final figures", "[devices][proxy]") {
  zmq::context_t ctx;
  ProxyOptions o = options(ProxyType::kStreamer);
  o.frontend_options.linger = 200ms;
  Proxy proxy(ctx, o);
  zmq::socket_t push(ctx, zmq::socket_type::push), pull(ctx, zmq::socket_type::pull);
  push.connect(proxy.frontend_endpoint());
  pull.connect(proxy.backend_endpoint());
  for (int i = 0; i < 3; ++i) push.send(zmq::str_buffer("x"), zmq::send_flags::none);
  for (int i = 0; i < 3; ++i) REQUIRE(recv_within(pull));
  proxy.stop();
  proxy.stop();  // idempotent
  CHECK(proxy.terminated());
  const ProxyStats s = proxy.stats();
  CHECK(s.terminated);
  CHECK(s.backend_sent.messages == 3);
}

TEST_CASE("A bad endpoint or type is refused before anything runs", "[devices][proxy]") {
  zmq::context_t ctx;
  ProxyOptions o = options(ProxyType::kStreamer);
  o.backend = "nonsense";
  CHECK_THROWS_AS(Proxy(ctx, o), std::invalid_argument);
  CHECK_THROWS_AS(parse_proxy_type("broker"), std::invalid_argument);
  ProxyOptions none = options(ProxyType::kForwarder);
  none.max_subscriptions = 0;
  CHECK_THROWS_AS(Proxy(ctx, none), std::invalid_argument);
  CHECK(parse_proxy_type("queue") == ProxyType::kQueue);
}

TEST_CASE("A streamer with no consumer holds messages and delivers them in order when one connects",
          "[devices][proxy]") {
  zmq::context_t ctx;
  Proxy proxy(ctx, options(ProxyType::kStreamer));
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.connect(proxy.frontend_endpoint());
  for (int i = 0; i < 20; ++i)
    push.send(zmq::buffer("m" + std::to_string(i)), zmq::send_flags::none);
  std::this_thread::sleep_for(100ms);  // the proxy has nowhere to send them yet
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  pull.connect(proxy.backend_endpoint());
  for (int i = 0; i < 20; ++i) {
    auto m = recv_within(pull);
    REQUIRE(m);
    CHECK((*m)[0].to_string() == "m" + std::to_string(i));
  }
  CHECK(proxy.stats().backend_sent.dropped == 0);
}

TEST_CASE("A publisher connecting after 1,100 subscriptions sorted before its topic still delivers",
          "[devices][proxy][forwarder]") {
  // libzmq's XSUB replays every held subscription to a publisher when it connects, in topic order,
  // and drops those past its send high-water mark (1000 by default): "B" came after 1,100 others.
  zmq::context_t ctx;
  Proxy proxy(ctx, options(ProxyType::kForwarder));
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::sndhwm, 0);  // the subscriber's own queue must not drop them either
  sub.connect(proxy.backend_endpoint());
  constexpr int kBefore = 1100;
  for (int i = 0; i < kBefore; ++i) {
    sub.set(zmq::sockopt::subscribe, "A" + std::to_string(10000 + i));
  }
  sub.set(zmq::sockopt::subscribe, "B");
  const auto j = wait_stats(ctx, proxy.control_endpoint(), [](const nlohmann::json& s) {
    return s["subscriptions"]["topics"] == kBefore + 1;
  });
  REQUIRE(j["subscriptions"]["topics"] == kBefore + 1);

  // An XPUB publisher shows which subscriptions reached it.
  zmq::socket_t pub(ctx, zmq::socket_type::xpub);
  pub.connect(proxy.frontend_endpoint());
  bool got_b = false;
  for (int i = 0; i < kBefore + 1 && !got_b; ++i) {
    auto m = recv_within(pub, 2000ms);
    if (!m) break;
    got_b = (*m)[0].to_string() == std::string("\x01"
                                               "B",
                                               2);
  }
  REQUIRE(got_b);
  pub.send(zmq::str_buffer("B"), zmq::send_flags::sndmore);
  pub.send(make_batch(5, 1, 2), zmq::send_flags::none);
  auto m = recv_within(sub);
  REQUIRE(m);
  CHECK((*m)[0].to_string() == "B");
  CHECK(seq_of((*m)[1]) == 1);
}

TEST_CASE("The forwarder holds at most max_subscriptions topics and counts those it refuses",
          "[devices][proxy][forwarder]") {
  zmq::context_t ctx;
  ProxyOptions o = options(ProxyType::kForwarder);
  o.max_subscriptions = 3;
  Proxy proxy(ctx, o);
  zmq::socket_t pub(ctx, zmq::socket_type::xpub);
  pub.connect(proxy.frontend_endpoint());
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.connect(proxy.backend_endpoint());
  for (const char* t : {"a", "b", "c", "d", "e"}) sub.set(zmq::sockopt::subscribe, t);
  auto j = wait_stats(ctx, proxy.control_endpoint(), [](const nlohmann::json& s) {
    return s["subscriptions"]["subscribe"] == 5;
  });
  CHECK(j["subscriptions"]["topics"] == 3);
  CHECK(j["subscriptions"]["refused"] == 2);
  CHECK(j["frontend"]["sent"]["messages"] == 3);  // only held topics go upstream
  // The publisher sees a, b, c and nothing else.
  std::vector<std::string> seen;
  while (auto m = recv_within(pub, 300ms)) seen.push_back((*m)[0].to_string().substr(1));
  CHECK(seen == std::vector<std::string>{"a", "b", "c"});
  // A refused topic never matches: "d" is not delivered, "a" is.
  for (const char* t : {"d", "a"}) {
    pub.send(zmq::buffer(std::string(t)), zmq::send_flags::sndmore);
    pub.send(make_batch(6, 1, 1), zmq::send_flags::none);
  }
  auto m = recv_within(sub);
  REQUIRE(m);
  CHECK((*m)[0].to_string() == "a");

  // Unsubscribing frees a place; the last unsubscription of a topic travels upstream.
  sub.set(zmq::sockopt::unsubscribe, "a");
  auto up = recv_within(pub);
  REQUIRE(up);
  CHECK((*up)[0].to_string() == std::string("\0a", 2));
  sub.set(zmq::sockopt::subscribe, "f");
  up = recv_within(pub);
  REQUIRE(up);
  CHECK((*up)[0].to_string() == "\x01"
                                "f");
  CHECK(proxy.stats().topics == 3);
}

TEST_CASE("The forwarder counts what it drops for a subscriber that never reads",
          "[devices][proxy][forwarder]") {
  zmq::context_t ctx;
  ProxyOptions o = options(ProxyType::kForwarder);
  o.backend_options.sndhwm = 10;
  o.backend_options.sndbuf = 64 * 1024;
  Proxy proxy(ctx, o);
  zmq::socket_t pub(ctx, zmq::socket_type::xpub);
  pub.set(zmq::sockopt::sndhwm, 0);
  pub.set(zmq::sockopt::linger, 0);
  pub.connect(proxy.frontend_endpoint());
  zmq::socket_t sub(ctx, zmq::socket_type::sub);  // never reads
  sub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::rcvhwm, 10);
  sub.set(zmq::sockopt::rcvbuf, 64 * 1024);
  sub.set(zmq::sockopt::subscribe, "T");
  sub.connect(proxy.backend_endpoint());
  REQUIRE(recv_within(pub));  // the subscription arrived: the path is complete

  // 2,000 messages of 16 KiB: far more than both high-water marks and socket buffers hold.
  constexpr int kMessages = 2000;
  const std::string payload(16 * 1024, 'x');
  for (int i = 0; i < kMessages; ++i) {
    pub.send(zmq::str_buffer("T"), zmq::send_flags::sndmore);
    pub.send(zmq::buffer(payload), zmq::send_flags::none);
  }
  const auto j = wait_stats(ctx, proxy.control_endpoint(), [&](const nlohmann::json& s) {
    return s["frontend"]["recv"]["messages"] == kMessages;
  });
  REQUIRE(j["frontend"]["recv"]["messages"] == kMessages);
  const auto sent = j["backend"]["sent"]["messages"].get<std::uint64_t>();
  const auto dropped = j["backend"]["sent"]["dropped"].get<std::uint64_t>();
  CHECK(dropped > 0);
  CHECK(sent + dropped == kMessages);  // every message read is either handed on or counted
  CHECK(j["drops"] == dropped);
}

TEST_CASE("A streamer whose consumer never reads shows the message it holds, then counts its loss",
          "[devices][proxy]") {
  zmq::context_t ctx;
  ProxyOptions o = options(ProxyType::kStreamer);
  o.backend_options.sndhwm = 1;
  o.backend_options.sndbuf = 64 * 1024;
  o.frontend_options.linger = 0ms;
  Proxy proxy(ctx, o);
  zmq::socket_t pull(ctx, zmq::socket_type::pull);  // never reads
  pull.set(zmq::sockopt::linger, 0);
  pull.set(zmq::sockopt::rcvhwm, 1);
  pull.set(zmq::sockopt::rcvbuf, 64 * 1024);
  pull.connect(proxy.backend_endpoint());
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.set(zmq::sockopt::sndhwm, 0);
  push.set(zmq::sockopt::linger, 0);
  push.connect(proxy.frontend_endpoint());
  constexpr int kMessages = 400;
  const std::string payload(16 * 1024, 'x');
  for (int i = 0; i < kMessages; ++i) push.send(zmq::buffer(payload), zmq::send_flags::none);

  // The proxy reads until its PUSH has no room, then holds one message and reads no more.
  const auto j = wait_stats(ctx, proxy.control_endpoint(), [](const nlohmann::json& s) {
    return s["backend"]["sent"]["held"] == 1;
  });
  REQUIRE(j["backend"]["sent"]["held"] == 1);
  const auto recv = j["frontend"]["recv"]["messages"].get<std::uint64_t>();
  const auto sent = j["backend"]["sent"]["messages"].get<std::uint64_t>();
  CHECK(recv == sent + 1);
  CHECK(recv < kMessages);
  CHECK(j["drops"] == 0);
  // Stopping gives up the held message: counted as dropped.
  proxy.stop();
  const ProxyStats s = proxy.stats();
  CHECK(s.backend_sent.held == 0);
  CHECK(s.backend_sent.dropped == 1);
  CHECK(s.frontend_recv.messages == s.backend_sent.messages + s.backend_sent.dropped);
}

TEST_CASE("A control request over the size bound is refused and the control socket keeps answering",
          "[devices][proxy][control]") {
  zmq::context_t ctx;
  ProxyOptions o = options(ProxyType::kStreamer);
  o.control = "@tcp://127.0.0.1:*";  // ZeroMQ checks ZMQ_MAXMSGSIZE on a transport's decoder
  Proxy proxy(ctx, o);
  zmq::socket_t big(ctx, zmq::socket_type::req);
  big.set(zmq::sockopt::linger, 0);
  big.connect(proxy.control_endpoint());
  big.send(zmq::buffer(std::string(ControlSocket::kMaxCommandBytes + 1, 'S')),
           zmq::send_flags::none);
  CHECK_FALSE(recv_within(big, 300ms));  // ZeroMQ dropped the connection: no reply
  const auto j = stats_json(ctx, proxy.control_endpoint());
  CHECK(j["device"] == "proxy");
  CHECK(j["control_commands"] == 1);  // the oversize request never reached the device
}

TEST_CASE("The proxy disconnects a peer whose frame is over its limits and forwards the others",
          "[devices][proxy][limits]") {
  zmq::context_t ctx;
  ProxyOptions o = options(ProxyType::kStreamer);
  o.limits = envelope::Limits().batch_bytes(1024);  // data options leave max_message_bytes unset
  Proxy proxy(ctx, o);
  zmq::socket_t hostile(ctx, zmq::socket_type::push);
  hostile.set(zmq::sockopt::linger, 0);
  hostile.set(zmq::sockopt::reconnect_ivl, 60000);  // stay away once dropped
  DisconnectWatch watch(ctx, hostile);
  hostile.connect(proxy.frontend_endpoint());
  const std::string big(static_cast<std::size_t>(receive_limit(o.limits)) + 1, 'x');
  REQUIRE(hostile.send(zmq::buffer(big), zmq::send_flags::none));
  REQUIRE(watch.wait(10s));

  zmq::socket_t good(ctx, zmq::socket_type::push), pull(ctx, zmq::socket_type::pull);
  good.connect(proxy.frontend_endpoint());
  pull.connect(proxy.backend_endpoint());
  good.send(make_batch(1, 1, 3), zmq::send_flags::none);
  auto msg = recv_within(pull);
  REQUIRE(msg);
  CHECK(seq_of((*msg)[0]) == 1);
  auto j = wait_stats(ctx, proxy.control_endpoint(), [](const nlohmann::json& s) {
    return s["frontend"]["recv"]["messages"] == 1;
  });
  CHECK(j["frontend"]["recv"]["messages"] == 1);  // the big frame never reached the proxy
}
