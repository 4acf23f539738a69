// The contracts every typed socket shares (pattern.hpp): one zmq::poll drives several sockets
// through poll_item()/next_deadline(); a moved-from socket throws std::logic_error; a full socket
// after send_timeout returns an empty result and counts send_would_block.
#include <catch2/catch.hpp>
#include <set>
#include <stdexcept>
#include <string>

#include "pattern_testutil.hpp"
#include "zkit/pipeline.hpp"
#include "zkit/pubsub.hpp"
#include "zkit/rpc.hpp"

using namespace std::chrono_literals;
using zkit::Message;
using zkit::PatternOptions;
using zkit::test::poll_turn;
using zkit::test::Polled;

namespace {
constexpr int kTurns = 200000;  // bounds every loop; a turn waits only for an event or a deadline

// The socket's own verb, for the moved-from test.
void use(zkit::Pusher& s) { (void)s.send("x"); }
void use(zkit::Puller& s) { (void)s.receive(0ms); }
void use(zkit::Publisher& s) { (void)s.send("t", "x"); }
void use(zkit::Subscriber& s) { s.subscribe(""); }
void use(zkit::Client& s) {
  (void)s.send(
      "x", [](const zkit::Reply&) {}, 1s);
}
void use(zkit::Server& s) {
  (void)s.poll_once([](const Message&, zkit::Responder) {}, 0ms);
}
}  // namespace

TEST_CASE("One zmq::poll drives a Pusher and a Puller and delivers everything", "[poll]") {
  zmq::context_t ctx;
  PatternOptions o;
  o.send_timeout = 0ms;  // a step must not block
  o.socket.sndhwm = 2;   // inproc: a pipe of 2 + 2 frames, so the Pusher is often full
  o.socket.rcvhwm = 2;
  o.batch.max_records = 10;
  zkit::Puller puller(ctx, o);
  zkit::Pusher pusher(ctx, o);
  pusher.connect(puller.bind("inproc://poll-pipeline"));
  constexpr int kMessages = 3000;
  int sent = 0;
  std::set<std::string> got;
  std::vector<Polled> loop{
      {[&] { return pusher.poll_item(); }, [&] { return pusher.next_deadline(); },
       [&] { (void)pusher.pump(); }},
      {[&] { return puller.poll_item(); }, [&] { return puller.next_deadline(); },
       [&] { puller.poll_once([&](const Message& m) { got.emplace(m.text()); }, 0ms); }},
  };
  bool saw_pollout = false;
  for (int turn = 0; turn < kTurns && got.size() < kMessages; ++turn) {
    while (sent < kMessages && pusher.send("m" + std::to_string(sent))) ++sent;
    saw_pollout = saw_pollout || (pusher.poll_item().events & ZMQ_POLLOUT) != 0;
    poll_turn(loop);
  }
  CHECK(got.size() == kMessages);
  CHECK(saw_pollout);  // the blocked slot was waited for through ZMQ_POLLOUT
  CHECK(pusher.stats().send_would_block > 0);
  CHECK_FALSE(pusher.next_deadline());  // nothing held: a loop may sleep for ever
  CHECK_FALSE(puller.next_deadline());
}

TEST_CASE("One zmq::poll drives a Publisher and a Subscriber and delivers everything", "[poll]") {
  zmq::context_t ctx;
  PatternOptions o;
  o.send_timeout = 0ms;
  zkit::Subscriber sub(ctx, o);
  zkit::Publisher pub(ctx, o);
  sub.subscribe("");
  pub.connect(sub.bind("inproc://poll-pubsub"));
  constexpr int kMessages = 500;
  int sent = 0;
  bool synced = false;
  std::set<std::string> got;
  std::vector<Polled> loop{
      {[&] { return pub.poll_item(); }, [&] { return pub.next_deadline(); },
       [&] { (void)pub.pump(); }},
      {[&] { return sub.poll_item(); }, [&] { return sub.next_deadline(); },
       [&] {
         sub.poll_once(
             [&](const Message& m) {
               if (m.topic == "sync") synced = true;
               if (m.topic == "data") got.emplace(m.text());
             },
             0ms);
       }},
  };
  for (int turn = 0; turn < kTurns && got.size() < kMessages; ++turn) {
    if (!synced) {
      (void)pub.send("sync", "?");  // until the subscription has reached the publisher
    } else if (sent < kMessages && pub.send("data", "m" + std::to_string(sent))) {
      ++sent;  // false: the message's batch was dropped, so it is sent again
    }
    poll_turn(loop);
  }
  CHECK(got.size() == kMessages);
  CHECK(pub.stats().dropped_batches == 0);
  for (int turn = 0; turn < kTurns && (pub.next_deadline() || sub.next_deadline()); ++turn) {
    poll_turn(loop);  // the last probes' batches
  }
  CHECK_FALSE(pub.next_deadline());  // idle: nothing timed, a loop sleeps until an event
  CHECK_FALSE(sub.next_deadline());
}

TEST_CASE("One zmq::poll drives a Client and a Server and answers every request", "[poll]") {
  zmq::context_t ctx;
  PatternOptions o;
  o.send_timeout = 0ms;
  o.socket.sndhwm = 4;
  o.socket.rcvhwm = 4;
  zkit::Server server(ctx, o);
  zkit::Client client(ctx, o);
  client.connect(server.bind("inproc://poll-rpc"));
  constexpr int kRequests = 2000;
  int sent = 0, ok = 0, failed = 0;
  std::vector<Polled> loop{
      {[&] { return client.poll_item(); }, [&] { return client.next_deadline(); },
       [&] { client.poll_once(0ms); }},
      {[&] { return server.poll_item(); }, [&] { return server.next_deadline(); },
       [&] {
         server.poll_once(
             [](const Message& m, zkit::Responder r) { r.reply("re:" + std::string(m.text())); },
             0ms);
       }},
  };
  for (int turn = 0; turn < kTurns && ok + failed < kRequests; ++turn) {
    while (sent < kRequests) {
      std::string body = "q" + std::to_string(sent);
      auto id = client.send(
          body,
          [&, body](const zkit::Reply& r) { ++(r.ok() && r.text() == "re:" + body ? ok : failed); },
          60s);
      if (!id) break;  // full: try again after the next turn
      ++sent;
    }
    poll_turn(loop);
  }
  CHECK(ok == kRequests);
  CHECK(failed == 0);
  CHECK(server.stats().dropped_messages == 0);
  CHECK_FALSE(server.next_deadline());
  CHECK_FALSE(client.next_deadline());  // answered requests leave no timer behind
}

TEMPLATE_TEST_CASE("A moved-from socket throws std::logic_error; close() on it is a no-op",
                   "[contract]", zkit::Pusher, zkit::Puller, zkit::Publisher, zkit::Subscriber,
                   zkit::Client, zkit::Server) {
  zmq::context_t ctx;
  TestType a(ctx);
  TestType b(std::move(a));
  CHECK_THROWS_AS(a.bind("inproc://moved"), std::logic_error);
  CHECK_THROWS_AS(a.connect("inproc://moved"), std::logic_error);
  CHECK_THROWS_AS(a.stats(), std::logic_error);
  CHECK_THROWS_AS(a.socket(), std::logic_error);
  CHECK_THROWS_WITH(use(a), Catch::Contains("used after move"));
  CHECK(a.poll_item().socket == nullptr);
  CHECK(a.poll_item().events == 0);
  CHECK_FALSE(a.next_deadline());
  CHECK(a.close().clean());
  a = TestType(ctx);  // move-assignment revives it
  CHECK_NOTHROW(a.stats());
  CHECK_NOTHROW(b.bind("inproc://moved-live"));
}

TEST_CASE("A Client full after send_timeout returns no id and counts it, never throws",
          "[contract]") {
  zmq::context_t ctx;
  PatternOptions o;
  o.send_timeout = 10ms;
  o.socket.linger = 0ms;
  zkit::Client client(ctx, o);  // connected to nothing: a DEALER has nowhere to put a frame
  int cancelled = 0;
  auto handler = [&](const zkit::Reply& r) {
    cancelled += r.status == zkit::ReplyStatus::kCancelled;
  };
  // The first request is taken and its batch waits in the blocked slot; the next is refused.
  auto first = client.send("one", handler, 10s);
  CHECK(first);
  CHECK((client.poll_item().events & ZMQ_POLLOUT) != 0);
  auto second = client.send("two", handler, 10s);
  CHECK_FALSE(second);
  CHECK(client.stats().send_would_block == 2);
  CHECK(client.in_flight() == 1);
  zkit::CloseReport r = client.close();
  CHECK(r.unsent_messages == 1);
  CHECK(cancelled == 1);  // the refused request's handler is never called

  PatternOptions raw = o;
  raw.raw = true;
  zkit::Client raw_client(ctx, raw);
  CHECK_FALSE(raw_client.send("one", handler, 10s));
  CHECK(raw_client.stats().send_would_block == 1);
  CHECK(raw_client.in_flight() == 0);
}

TEST_CASE("Every socket that receives refuses frames over its decode limits unless told otherwise",
          "[limits]") {
  zmq::context_t ctx;
  PatternOptions o;
  o.limits = zkit::envelope::Limits().batch_bytes(4000);
  const std::int64_t want = zkit::receive_limit(o.limits);
  // Publisher receives subscriptions; Client receives replies; the others receive batches.
  CHECK(zkit::Puller(ctx, o).socket().get(zmq::sockopt::maxmsgsize) == want);
  CHECK(zkit::Subscriber(ctx, o).socket().get(zmq::sockopt::maxmsgsize) == want);
  CHECK(zkit::Server(ctx, o).socket().get(zmq::sockopt::maxmsgsize) == want);
  CHECK(zkit::Client(ctx, o).socket().get(zmq::sockopt::maxmsgsize) == want);
  CHECK(zkit::Publisher(ctx, o).socket().get(zmq::sockopt::maxmsgsize) == want);
  o.socket.max_message_bytes = 123;  // set by the user: it wins
  CHECK(zkit::Puller(ctx, o).socket().get(zmq::sockopt::maxmsgsize) == 123);
  CHECK(zkit::Subscriber(ctx, o).socket().get(zmq::sockopt::maxmsgsize) == 123);
  CHECK(zkit::Server(ctx, o).socket().get(zmq::sockopt::maxmsgsize) == 123);
  CHECK(zkit::Client(ctx, o).socket().get(zmq::sockopt::maxmsgsize) == 123);
  CHECK(zkit::Publisher(ctx, o).socket().get(zmq::sockopt::maxmsgsize) == 123);
}
