// The receiver's session table under a HELLO flood (issue 8, defect 1): a hostile peer opening more
// than max_sessions sessions must cost itself service, never another peer's data; ack() never
// throws for a session the receiver forgot; a resent copy of a batch still pending in manual mode
// is acknowledged once the original is.
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "link_harness.hpp"
#include "zkit/reliable.hpp"
#include "zkit/reliable_codec.hpp"

using namespace zkit;
using namespace zkit::test;

namespace {

constexpr std::uint64_t kFloodSessions = 1100;  // past the default max_sessions (1024)

// Opens `total` sessions with one HELLO each, from raw DEALER sockets with distinct routing ids
// (100 at a time), and waits until every one was answered (WELCOME or RESET), so that the receiver
// has handled every HELLO. Drives only the receiver: the real senders stay silent meanwhile.
void hello_flood(zmq::context_t& ctx, const std::string& ep, ReliableReceiver& receiver,
                 std::uint64_t total, std::uint64_t first_session = 1'000'000) {
  auto handler = [](Delivery&) { FAIL("the flood carries no DATA"); };
  constexpr std::uint64_t kBatch = 100;
  for (std::uint64_t done = 0; done < total;) {
    std::uint64_t n = std::min(kBatch, total - done);
    std::vector<std::unique_ptr<zmq::socket_t>> peers;
    for (std::uint64_t i = 0; i < n; ++i) {
      auto d = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
      d->set(zmq::sockopt::linger, 0);
      d->set(zmq::sockopt::routing_id, "flood-" + std::to_string(done + i));
      d->connect(ep);
      zmq::message_t hello =
          reliable::encode({reliable::MessageType::kHello, first_session + done + i, 0, 8});
      REQUIRE(d->send(hello, zmq::send_flags::none));  // a connecting DEALER queues it
      peers.push_back(std::move(d));
    }
    std::vector<bool> answered(n, false);
    std::uint64_t answers = 0;
    REQUIRE(drive([&] { return answers == n; },
                  [&] {
                    receiver.poll_once(handler, milliseconds(1));
                    for (std::uint64_t i = 0; i < n; ++i) {
                      zmq::message_t m;
                      while (peers[i]->recv(m, zmq::recv_flags::dontwait)) {
                        if (!answered[i]) ++answers;
                        answered[i] = true;
                      }
                    }
                  }));
    done += n;
  }
}

struct ManualLink {
  explicit ManualLink(zmq::context_t& ctx)
      : receiver(ctx, options()),
        ep(receiver.bind("tcp://127.0.0.1:*")),
        sender(ctx, fast_sender()) {
    sender.connect(ep);
    sender.on_acked([this](const AckedBatch&) { ++acked; });
  }
  static ReliableReceiverOptions options() {
    ReliableReceiverOptions o = fast_receiver();
    o.manual_ack = true;
    return o;
  }
  void step() {
    sender.poll_once(milliseconds(0));
    receiver.poll_once(handler, milliseconds(1));
  }
  // One batch, delivered to the application and not acknowledged.
  void deliver_one() {
    REQUIRE(sender.send("0:0"));
    sender.flush();
    REQUIRE(drive([&] { return tokens.size() == 1; }, [&] { step(); }));
    CHECK(receiver.unacked() == 1);
  }

  ReliableReceiver receiver;
  std::string ep;
  ReliableSender sender;
  std::vector<AckToken> tokens;
  ReliableReceiver::Handler handler = [this](Delivery& d) { tokens.push_back(d.token); };
  int acked = 0;
};

}  // namespace

TEST_CASE("A HELLO flood past max_sessions does not make a held batch's ack() throw or be lost",
          "[reliable][sessions][robustness]") {
  zmq::context_t ctx;
  ctx.set(zmq::ctxopt::max_sockets, 4096);
  ManualLink link(ctx);
  link.deliver_one();
  hello_flood(ctx, link.ep, link.receiver, kFloodSessions);
  ReliableReceiverStats st = link.receiver.stats();
  CHECK(st.sessions <= 1024);
  // Every HELLO beyond the table's room either took a dead, idle session's place or was refused.
  CHECK(st.sessions_evicted + st.sessions_refused >= kFloodSessions + 1 - 1024);
  CHECK(link.receiver.unacked() == 1);  // the real session, and its held batch, are still there
  REQUIRE_NOTHROW(link.receiver.ack(link.tokens.front()));
  REQUIRE(drive([&] { return link.acked == 1; }, [&] { link.step(); }));
  CHECK(link.sender.unacked() == 0);
  CHECK(link.receiver.stats().acks_for_forgotten_sessions == 0);
  CHECK(link.tokens.size() == 1);  // delivered once
}

TEST_CASE("After a HELLO flood, the sender's resend of a held batch is acked once it is",
          "[reliable][sessions][manual]") {
  zmq::context_t ctx;
  ctx.set(zmq::ctxopt::max_sockets, 4096);
  ManualLink link(ctx);
  link.deliver_one();
  hello_flood(ctx, link.ep, link.receiver, kFloodSessions);
  // Make the sender resend the held batch: while the receiver is not driven, the sender hears
  // nothing and gives the peer up after its heartbeat_timeout; it then says HELLO again and resends
  // everything unacknowledged. (A receiver that had lost the session would take the HELLO as a
  // new session, and the resend as a duplicate of the delivered batch waiting for its original.)
  REQUIRE(drive([&] { return link.sender.stats().peer_lost >= 1; },
                [&] { link.sender.poll_once(milliseconds(5)); }));
  REQUIRE(drive([&] { return link.receiver.stats().duplicates >= 1 && link.sender.connected(); },
                [&] { link.step(); }));
  CHECK(link.acked == 0);  // not before the application's ack
  REQUIRE_NOTHROW(link.receiver.ack(link.tokens.front()));
  REQUIRE(drive([&] { return link.acked == 1; }, [&] { link.step(); }));
  CHECK(link.sender.unacked() == 0);
  CHECK(link.tokens.size() == 1);
}

TEST_CASE("ack() of a session the receiver does not know is counted, never thrown",
          "[reliable][sessions]") {
  zmq::context_t ctx;
  ReliableReceiverOptions ro = fast_receiver();
  ro.manual_ack = true;
  ReliableReceiver receiver(ctx, ro);
  REQUIRE_NOTHROW(receiver.ack(AckToken{12345, 7, 1}));
  CHECK(receiver.stats().acks_for_forgotten_sessions == 1);
}

TEST_CASE("A flood of live sessions is refused and a live session keeps its place",
          "[reliable][sessions]") {
  zmq::context_t ctx;
  ReliableReceiverOptions ro = fast_receiver();
  ro.max_sessions = 4;
  ro.heartbeat_timeout = milliseconds(30000);  // nobody dies during this test
  ReliableReceiver receiver(ctx, ro);
  std::string ep = receiver.bind("tcp://127.0.0.1:*");
  ReliableSender sender(ctx, fast_sender());
  sender.connect(ep);
  Sink sink;
  auto handler = sink.handler();
  REQUIRE(drive([&] { return sender.connected(); },
                [&] {
                  sender.poll_once(milliseconds(0));
                  receiver.poll_once(handler, milliseconds(1));
                }));
  hello_flood(ctx, ep, receiver, 20);
  CHECK(receiver.stats().sessions == 4);
  CHECK(receiver.stats().sessions_refused == 17);  // 3 found room, the rest were told RESET
  CHECK(receiver.stats().sessions_evicted == 0);
  Feeder feeder{&sender, 0, 100};
  REQUIRE(drive([&] { return sink.count(0) == 100 && sender.unacked() == 0; },
                [&] {
                  feeder.feed();
                  sender.poll_once(milliseconds(0));
                  receiver.poll_once(handler, milliseconds(1));
                }));
  CHECK(sender.stats().resets == 0);  // its session was never taken
}

TEST_CASE("Once the flood's sessions are dead and idle, a new sender takes the place of one",
          "[reliable][sessions]") {
  zmq::context_t ctx;
  ReliableReceiverOptions ro = fast_receiver();
  ro.max_sessions = 4;
  ro.heartbeat_timeout = milliseconds(200);
  ReliableReceiver receiver(ctx, ro);
  std::string ep = receiver.bind("tcp://127.0.0.1:*");
  hello_flood(ctx, ep, receiver, 4);
  CHECK(receiver.stats().sessions == 4);
  ReliableSender sender(ctx, fast_sender());  // HELLOs every 20 ms until it is let in
  sender.connect(ep);
  Sink sink;
  auto handler = sink.handler();
  Feeder feeder{&sender, 0, 100};
  REQUIRE(drive([&] { return sink.count(0) == 100 && sender.unacked() == 0; },
                [&] {
                  feeder.feed();
                  sender.poll_once(milliseconds(0));
                  receiver.poll_once(handler, milliseconds(1));
                }));
  CHECK(receiver.stats().sessions_evicted >= 1);
  CHECK(receiver.stats().sessions <= 4);
}
