// Client/Server: many requests in flight over every transport, replies through a kept Responder,
// timeouts, cancellation at close, a reply to a gone client, raw mode against pyzmq REQ/REP, and
// servers behind a queue proxy or a chain of ROUTER-DEALER hops.
#include "zkit/rpc.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "pattern_testutil.hpp"
#include "zkit/proxy.hpp"

using namespace std::chrono_literals;
using zkit::Client;
using zkit::Message;
using zkit::PatternOptions;
using zkit::Reply;
using zkit::ReplyStatus;
using zkit::Responder;
using zkit::Server;
using zkit::test::TempDir;

namespace {

// Runs a server on its own thread that answers "echo:" + request at once; it binds ep, or
// connects to it when bind is false.
struct EchoServer {
  EchoServer(zmq::context_t& ctx, const std::string& ep, PatternOptions o = {}, bool bind = true)
      : server(ctx, o) {
    endpoint = bind ? server.bind(ep) : server.connect(ep);
    thread = std::thread([this] {
      server.run([](const Message& m, Responder r) { r.reply("echo:" + std::string(m.text())); });
    });
  }
  ~EchoServer() { finish(); }
  // Stops the server thread; stats() may be read after it.
  void finish() {
    if (!thread.joinable()) return;
    server.stop();
    thread.join();
  }
  Server server;
  std::string endpoint;
  std::thread thread;
};

// Polls the client until nothing is in flight (bounded).
void settle(Client& client) {
  for (int i = 0; i < 2000 && client.in_flight() > 0; ++i) client.poll_once(10ms);
}

// Sends n requests "<tag> i" and counts the replies that carry "echo:" + that request's own body.
struct Tally {
  int ok = 0;
  int wrong = 0;
};
void send_tagged(Client& client, const std::string& tag, int n, Tally& tally) {
  for (int i = 0; i < n; ++i) {
    std::string body = tag + " " + std::to_string(i);
    auto handler = [&tally, body](const Reply& r) {
      if (r.ok() && r.text() == "echo:" + body) {
        ++tally.ok;
      } else {
        ++tally.wrong;
      }
    };
    client.send(body, handler, 10s);
  }
}

// A ROUTER frontend (bound) and a DEALER backend (connected to upstream) passing frames both ways
// on a thread, as zmq_proxy does: each hop adds one identity frame to a request's envelope.
class Hop {
 public:
  Hop(zmq::context_t& ctx, const std::string& upstream)
      : front_(ctx, zmq::socket_type::router), back_(ctx, zmq::socket_type::dealer) {
    front_.set(zmq::sockopt::linger, 0);
    back_.set(zmq::sockopt::linger, 0);
    front_.bind("tcp://127.0.0.1:*");
    back_.connect(upstream);
    frontend = front_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { loop(); });
  }
  ~Hop() {
    stop_ = true;
    thread_.join();
  }
  std::string frontend;

 private:
  static void pass(zmq::socket_t& from, zmq::socket_t& to) {
    zmq::message_t part;
    while (from.recv(part, zmq::recv_flags::dontwait)) {
      bool more = part.more();
      to.send(part, more ? zmq::send_flags::sndmore : zmq::send_flags::none);
      while (more) {
        (void)from.recv(part, zmq::recv_flags::none);
        more = part.more();
        to.send(part, more ? zmq::send_flags::sndmore : zmq::send_flags::none);
      }
    }
  }
  void loop() {
    while (!stop_) {
      zmq::pollitem_t items[2] = {{front_.handle(), 0, ZMQ_POLLIN, 0},
                                  {back_.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 2, 10ms);
      pass(front_, back_);
      pass(back_, front_);
    }
  }
  zmq::socket_t front_, back_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

TEST_CASE("Many requests in flight each get their own reply over inproc, ipc and tcp", "[rpc]") {
  std::string transport = GENERATE("inproc", "ipc", "tcp");
  TempDir dir;
  zmq::context_t ctx;
  EchoServer echo(ctx, zkit::test::endpoint_for(transport, dir));
  Client client(ctx);
  client.connect(echo.endpoint);
  constexpr int kRequests = 5000;
  std::map<std::uint64_t, std::string> expected;
  int ok = 0, wrong = 0;
  for (int i = 0; i < kRequests; ++i) {
    std::string body = "req " + std::to_string(i);
    std::uint64_t id = *client.send(
        body,
        [&, body](const Reply& r) {
          if (r.ok() && r.text() == "echo:" + body && expected.count(r.id)) {
            ++ok;
          } else {
            ++wrong;
          }
        },
        10s);
    expected[id] = body;
  }
  CHECK(client.in_flight() == kRequests);
  client.flush();
  settle(client);
  CHECK(ok == kRequests);
  CHECK(wrong == 0);
  CHECK(client.stats().batches_out < kRequests);  // requests were batched
  CHECK(client.stats().timeouts == 0);
}

TEST_CASE("A server may keep the Responder and answer in a later turn", "[rpc]") {
  zmq::context_t ctx;
  Server server(ctx);
  Client client(ctx);
  client.connect(server.bind("inproc://later"));
  std::vector<std::string> replies;
  for (int i = 0; i < 3; ++i) {
    client.send(
        "q" + std::to_string(i), [&](const Reply& r) { replies.emplace_back(r.text()); }, 10s);
  }
  client.flush();
  std::vector<Responder> kept;
  for (int i = 0; i < 200 && kept.size() < 3; ++i) {
    server.poll_once(
        [&](const Message& m, Responder r) {
          CHECK(m.text().substr(0, 1) == "q");
          kept.push_back(std::move(r));
        },
        10ms);
  }
  REQUIRE(kept.size() == 3);
  client.poll_once(20ms);
  CHECK(replies.empty());
  // Answer in reverse order; each reply finds its own request.
  for (auto it = kept.rbegin(); it != kept.rend(); ++it) it->reply("a" + std::to_string(it->id()));
  CHECK_THROWS_AS(kept[0].reply("twice"), std::invalid_argument);
  server.flush();
  settle(client);
  REQUIRE(replies.size() == 3);
  CHECK(replies[0] == "a" + std::to_string(kept[2].id()));
  CHECK(replies[2] == "a" + std::to_string(kept[0].id()));
}

TEST_CASE("A request without a reply completes with a timeout and a late reply is dropped",
          "[rpc]") {
  zmq::context_t ctx;
  Server server(ctx);
  Client client(ctx);
  client.connect(server.bind("inproc://timeout"));
  ReplyStatus got = ReplyStatus::kOk;
  int calls = 0;
  client.send(
      "slow",
      [&](const Reply& r) {
        got = r.status;
        ++calls;
      },
      30ms);
  client.flush();
  std::optional<Responder> held;
  for (int i = 0; i < 200 && !held; ++i) {
    server.poll_once([&](const Message&, Responder r) { held = std::move(r); }, 10ms);
  }
  REQUIRE(held);
  for (int i = 0; i < 200 && calls == 0; ++i) client.poll_once(10ms);
  CHECK(calls == 1);
  CHECK(got == ReplyStatus::kTimeout);
  CHECK(client.stats().timeouts == 1);
  held->reply("too late");
  server.flush();
  for (int i = 0; i < 200 && client.stats().dropped_messages == 0; ++i) client.poll_once(10ms);
  CHECK(client.stats().dropped_messages == 1);
  CHECK(calls == 1);  // the handler ran once only
}

TEST_CASE("close() cancels every outstanding request", "[rpc]") {
  zmq::context_t ctx;
  Server server(ctx);
  PatternOptions o;
  o.socket.linger = 50ms;
  Client client(ctx, o);
  client.connect(server.bind("inproc://cancel"));
  int cancelled = 0;
  for (int i = 0; i < 4; ++i) {
    client.send(
        "x", [&](const Reply& r) { cancelled += r.status == ReplyStatus::kCancelled; }, 10s);
  }
  auto report = client.close();
  CHECK(cancelled == 4);
  CHECK(report.clean());  // the server's socket took them; nobody answered
  CHECK(client.in_flight() == 0);
}

TEST_CASE("stop() from the reply handler ends Client::run()", "[rpc]") {
  zmq::context_t ctx;
  EchoServer echo(ctx, "inproc://client-stop");
  Client client(ctx);
  client.connect(echo.endpoint);
  int n = 0;
  for (int i = 0; i < 10; ++i) {
    client.send(
        "x",
        [&](const Reply&) {
          if (++n == 10) client.stop();
        },
        10s);
  }
  client.run();
  CHECK(n == 10);
}

TEST_CASE("A reply to a client that has gone is dropped and counted", "[rpc]") {
  zmq::context_t ctx;
  Server server(ctx);
  std::string ep = server.bind("tcp://127.0.0.1:*");
  std::optional<Responder> held;
  {
    PatternOptions o;
    o.socket.linger = 0ms;
    Client client(ctx, o);
    client.connect(ep);
    client.send(
        "bye", [](const Reply&) {}, 10s);
    client.flush();
    for (int i = 0; i < 200 && !held; ++i) {
      server.poll_once([&](const Message&, Responder r) { held = std::move(r); }, 10ms);
    }
  }
  REQUIRE(held);
  // The disconnect reaches the ROUTER asynchronously; try until the reply is refused.
  for (int i = 0; i < 200 && server.stats().dropped_messages == 0; ++i) {
    Responder r = *held;
    r.reply("nobody home");
    server.flush();
    std::this_thread::sleep_for(10ms);
  }
  CHECK(server.stats().dropped_messages >= 1);
}

TEST_CASE("A client reaches a restarted server and gets replies again", "[rpc]") {
  TempDir dir;
  zmq::context_t ctx;
  std::string ep = "ipc://" + dir.path() + "/restart.sock";
  PatternOptions o;
  o.socket.reconnect_ivl = 10ms;
  Client client(ctx, o);
  client.connect(ep);
  auto ask = [&](const std::string& body, std::chrono::milliseconds timeout) {
    std::string answer;
    client.send(
        body, [&](const Reply& r) { answer = r.ok() ? std::string(r.text()) : "failed"; }, timeout);
    client.flush();
    settle(client);
    return answer;
  };
  {
    EchoServer first(ctx, ep);
    CHECK(ask("one", 5s) == "echo:one");
  }
  EchoServer second(ctx, ep);
  // A request written before the client noticed the old server was gone goes down with that
  // connection (plain mode); its handler still runs, with kTimeout. Later ones reach the new
  // server.
  std::string answer;
  int attempts = 0;
  while (answer != "echo:two" && attempts < 50) {
    answer = ask("two", 100ms);
    ++attempts;
  }
  CHECK(answer == "echo:two");
  CHECK(client.stats().timeouts == static_cast<std::uint64_t>(attempts - 1));
}

namespace {
const char* kPyReq = R"(import sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.REQ)
s.setsockopt(zmq.RCVTIMEO, 10000)
s.connect(sys.argv[1])
for i in range(3):
    s.send(b"py %d" % i)
    print(s.recv().decode(), flush=True)
s.close(linger=10000)
ctx.term()
)";
const char* kPyRep = R"(import sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.REP)
s.setsockopt(zmq.RCVTIMEO, 10000)
s.bind(sys.argv[1])
print("ready", flush=True)
for i in range(int(sys.argv[2])):
    s.send(b"rep:" + s.recv())
s.close(linger=10000)
ctx.term()
)";
}  // namespace

TEST_CASE("A raw Server answers a pyzmq REQ client", "[rpc][interop]") {
  TempDir dir;
  zmq::context_t ctx;
  PatternOptions o;
  o.raw = true;
  Server server(ctx, o);
  std::string ep = server.bind("tcp://127.0.0.1:*");
  zkit::test::PyPeer peer(dir, kPyReq, ep);
  int handled = 0;
  std::vector<std::string> lines;
  for (int i = 0; i < 500 && handled < 3; ++i) {
    handled += static_cast<int>(server.poll_once(
        [](const Message& m, Responder r) { r.reply("srv:" + std::string(m.text())); }, 10ms));
  }
  CHECK(handled == 3);
  for (int i = 0; i < 3; ++i) CHECK(peer.line() == "srv:py " + std::to_string(i));
  CHECK(peer.wait() == 0);
}

TEST_CASE("A raw Client talks to a pyzmq REP server, replies matched in order", "[rpc][interop]") {
  TempDir dir;
  std::string ep = "ipc://" + dir.path() + "/rep.sock";
  zkit::test::PyPeer peer(dir, kPyRep, ep + " 4");
  REQUIRE(peer.line() == "ready");
  zmq::context_t ctx;
  PatternOptions o;
  o.raw = true;
  Client client(ctx, o);
  client.connect(ep);
  std::map<std::uint64_t, std::string> got;
  for (int i = 0; i < 4; ++i) {
    std::uint64_t id = *client.send(
        "r" + std::to_string(i), [&](const Reply& r) { got[r.id] = std::string(r.text()); }, 10s);
    CHECK(id == static_cast<std::uint64_t>(i + 1));
  }
  settle(client);
  REQUIRE(got.size() == 4);
  for (int i = 0; i < 4; ++i) CHECK(got[i + 1] == "rep:r" + std::to_string(i));
  CHECK(peer.wait() == 0);
}

TEST_CASE("Requests through a queue proxy each get their own reply, batched per client",
          "[rpc][proxy]") {
  zmq::context_t ctx;
  zkit::ProxyOptions po;
  po.type = zkit::ProxyType::kQueue;
  po.frontend = "@tcp://127.0.0.1:*";
  po.backend = "@tcp://127.0.0.1:*";
  zkit::Proxy proxy(ctx, po);
  EchoServer echo(ctx, proxy.backend_endpoint(), {}, false);
  Client a(ctx), b(ctx);
  a.connect(proxy.frontend_endpoint());
  b.connect(proxy.frontend_endpoint());
  constexpr int kRequests = 3000;
  Tally ta, tb;
  send_tagged(a, "a", kRequests, ta);
  send_tagged(b, "b", kRequests, tb);
  CHECK(a.in_flight() == kRequests);
  a.flush();
  b.flush();
  for (int i = 0; i < 2000 && (a.in_flight() > 0 || b.in_flight() > 0); ++i) {
    a.poll_once(5ms);
    b.poll_once(5ms);
  }
  CHECK(ta.ok == kRequests);
  CHECK(tb.ok == kRequests);
  CHECK(ta.wrong + tb.wrong == 0);
  CHECK(a.stats().timeouts + b.stats().timeouts == 0);
  echo.finish();
  CHECK(echo.server.stats().decode_errors == 0);
  CHECK(echo.server.stats().messages_in == 2 * kRequests);
  CHECK(echo.server.stats().batches_out < 2 * kRequests);  // replies were batched
}

TEST_CASE("A server behind two ROUTER-DEALER hops answers along the whole envelope",
          "[rpc][proxy]") {
  zmq::context_t ctx;
  Server server(ctx);
  std::string ep = server.bind("tcp://127.0.0.1:*");
  Hop near(ctx, ep);                // the server sees [near][far][client][batch]
  Hop far(ctx, near.frontend);
  Client a(ctx), b(ctx);
  a.connect(far.frontend);
  b.connect(far.frontend);
  constexpr int kRequests = 500;
  Tally ta, tb;
  send_tagged(a, "a", kRequests, ta);
  send_tagged(b, "b", kRequests, tb);
  a.flush();
  b.flush();
  std::map<std::string, int> per_peer;  // Responder::peer(): the client's identity at `far`
  auto echo = [&](const Message& m, Responder r) {
    ++per_peer[r.peer()];
    r.reply("echo:" + std::string(m.text()));
  };
  for (int i = 0; i < 2000 && (a.in_flight() > 0 || b.in_flight() > 0); ++i) {
    server.poll_once(echo, 2ms);
    server.flush();
    a.poll_once(2ms);
    b.poll_once(2ms);
  }
  CHECK(ta.ok == kRequests);
  CHECK(tb.ok == kRequests);
  CHECK(ta.wrong + tb.wrong == 0);
  CHECK(server.stats().decode_errors == 0);
  CHECK(per_peer.size() == 2);  // two clients told apart behind the same hops
}

TEST_CASE("A raw Server answers a REQ socket behind a ROUTER-DEALER hop", "[rpc][proxy]") {
  zmq::context_t ctx;
  PatternOptions o;
  o.raw = true;
  Server server(ctx, o);
  Hop hop(ctx, server.bind("tcp://127.0.0.1:*"));  // the server sees [hop][req][""][payload]
  zmq::socket_t req(ctx, zmq::socket_type::req);
  req.set(zmq::sockopt::linger, 0);
  req.set(zmq::sockopt::rcvtimeo, 10000);
  req.connect(hop.frontend);
  for (int n = 0; n < 3; ++n) {
    std::string body = "hi " + std::to_string(n);
    req.send(zmq::buffer(body), zmq::send_flags::none);
    std::size_t handled = 0;
    for (int i = 0; i < 500 && handled == 0; ++i) {
      handled = server.poll_once(
          [](const Message& m, Responder r) { r.reply("srv:" + std::string(m.text())); }, 10ms);
    }
    REQUIRE(handled == 1);
    zmq::message_t reply;
    REQUIRE(req.recv(reply, zmq::recv_flags::none));
    CHECK(reply.to_string() == "srv:" + body);
  }
  CHECK(server.stats().decode_errors == 0);
}

TEST_CASE("Server and Client say why through on_error for every frame they count as malformed",
          "[rpc]") {
  zmq::context_t ctx;
  Server server(ctx);
  std::vector<std::string> why;
  server.on_error([&](const zkit::Status& s) { why.push_back(s.to_string()); });
  const std::string ep = server.bind("tcp://127.0.0.1:*");
  zmq::socket_t raw(ctx, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.connect(ep);
  raw.send(zmq::str_buffer("not a batch"), zmq::send_flags::none);
  for (int i = 0; i < 500 && server.stats().decode_errors < 1; ++i) {
    (void)server.poll_once([](const Message&, Responder) {}, 10ms);
  }
  REQUIRE(server.stats().decode_errors == 1);
  REQUIRE(why.size() == 1);
  CHECK(why[0] == "Corruption: batch at byte 0 is not an array (type byte 0x6e)");

  // A Client given a reply of two frames (a zkit Server never sends one).
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind("tcp://127.0.0.1:*");
  Client client(ctx);
  std::vector<std::string> client_why;
  client.on_error([&](const zkit::Status& s) { client_why.push_back(s.to_string()); });
  client.connect(router.get(zmq::sockopt::last_endpoint));
  REQUIRE(client.send(
      "ping", [](const zkit::Reply&) {}, 10s));
  REQUIRE(client.flush());
  zmq::message_t id, request;
  router.set(zmq::sockopt::rcvtimeo, 10000);
  REQUIRE(router.recv(id));
  REQUIRE(router.recv(request));
  router.send(id, zmq::send_flags::sndmore);
  router.send(zmq::str_buffer("a"), zmq::send_flags::sndmore);
  router.send(zmq::str_buffer("b"), zmq::send_flags::none);
  for (int i = 0; i < 500 && client.stats().decode_errors < 1; ++i) (void)client.poll_once(10ms);
  REQUIRE(client.stats().decode_errors == 1);
  REQUIRE(client_why.size() == 1);
  CHECK(client_why[0] == "Corruption: reply of 2 frames; a Client takes one batch frame");
}
