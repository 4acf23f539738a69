// The reliable link's socket vocabulary (zkit/pattern.hpp, CONTRACT 1-3): poll_item() and
// next_deadline() drive both ends from one zmq::poll, connect() returns the endpoint, close()
// reports, moved-from objects throw, full backlogs report, Delivery::peer_key, trusted send_batch.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "disconnect_watch.hpp"
#include "link_harness.hpp"
#include "zkit/reliable.hpp"
#include "zkit/zap.hpp"

using namespace zkit;
using namespace zkit::test;
using Clock = std::chrono::steady_clock;

namespace {

// One zmq::poll over both ends, timeout = the earliest deadline, as a device does it.
void poll_both(ReliableSender& sender, ReliableReceiver& receiver,
               const ReliableReceiver::Handler& handler) {
  zmq_pollitem_t items[2] = {sender.poll_item(), receiver.poll_item()};
  std::optional<Clock::time_point> d = sender.next_deadline();
  if (auto r = receiver.next_deadline()) d = d ? std::min(*d, *r) : *r;
  long timeout = -1;
  if (d) {
    timeout = std::max<long>(
        0, static_cast<long>(std::chrono::ceil<milliseconds>(*d - Clock::now()).count()));
  }
  REQUIRE(zmq_poll(items, 2, timeout) >= 0);
  sender.poll_once(milliseconds(0));
  receiver.poll_once(handler, milliseconds(0));
}

zmq::message_t one_batch(std::uint64_t producer, std::uint64_t seq, const std::string& text) {
  envelope::Encoder enc;
  enc.begin(producer);
  enc.add(text);
  return enc.finish(seq, 1);
}

std::string curve_public(const std::string& secret) {
  char pub[41];
  REQUIRE(zmq_curve_public(pub, secret.c_str()) == 0);
  return pub;
}

}  // namespace

TEST_CASE("One poll over poll_item() and next_deadline() drives a whole link", "[reliable][poll]") {
  zmq::context_t ctx;
  ReliableReceiverOptions ro = fast_receiver();
  ro.manual_ack = true;
  ReliableReceiver receiver(ctx, ro);
  std::string ep = receiver.bind("tcp://127.0.0.1:*");
  ReliableSenderOptions so = fast_sender();
  so.heartbeat_interval = milliseconds(1000);  // timers far away: only events move this link
  so.heartbeat_timeout = milliseconds(30000);
  so.resend_timeout = milliseconds(30000);
  ReliableSender sender(ctx, so);
  CHECK(sender.connect(ep) == ep);

  // An idle receiver has no timer; a sender always has its heartbeat.
  CHECK_FALSE(receiver.next_deadline().has_value());
  REQUIRE(sender.next_deadline().has_value());
  zmq_pollitem_t item = receiver.poll_item();
  CHECK(item.socket != nullptr);
  CHECK(item.events == ZMQ_POLLIN);

  std::vector<AckToken> tokens;
  auto handler = [&](Delivery& d) { tokens.push_back(d.token); };
  for (int i = 0; i < 100; ++i) REQUIRE(sender.send("0:" + std::to_string(i), milliseconds(0)));
  sender.flush();
  int rounds = 0;
  while (sender.unacked() > 0 && rounds < 2000) {
    for (const AckToken& t : tokens) receiver.ack(t);
    // An ack waits for the receiver's next step: its deadline says so.
    if (!tokens.empty()) {
      std::optional<Clock::time_point> due = receiver.next_deadline();
      REQUIRE(due.has_value());
      CHECK(*due <= Clock::now());
    }
    tokens.clear();
    poll_both(sender, receiver, handler);
    ++rounds;
  }
  CHECK(sender.unacked() == 0);
  CHECK(receiver.stats().batches_delivered == sender.stats().batches_acked);
  CHECK_FALSE(receiver.next_deadline().has_value());
}

TEST_CASE("A bound sender with no peer asks for POLLOUT instead of retrying on a timer",
          "[reliable][poll]") {
  zmq::context_t ctx;
  ReliableSender sender(ctx, fast_sender());
  std::string ep = sender.bind("tcp://127.0.0.1:*");
  sender.poll_once(milliseconds(0));  // the HELLO finds no peer
  CHECK((sender.poll_item().events & ZMQ_POLLOUT) != 0);
  CHECK(sender.stats().hellos == 0);
  ReliableReceiver receiver(ctx, fast_receiver());
  CHECK(receiver.connect(ep) == ep);
  Sink sink;
  auto handler = sink.handler();
  REQUIRE(drive([&] { return sender.connected(); }, [&] { poll_both(sender, receiver, handler); },
                2000));
  CHECK((sender.poll_item().events & ZMQ_POLLOUT) == 0);
  CHECK(sender.stats().hellos >= 1);
}

TEST_CASE("A moved-from sender or receiver throws std::logic_error, and close() is a no-op",
          "[reliable][api]") {
  zmq::context_t ctx;
  ReliableSender a(ctx, fast_sender());
  ReliableSender b(std::move(a));
  CHECK_THROWS_AS(a.send("x"), std::logic_error);
  CHECK_THROWS_AS(a.stats(), std::logic_error);
  CHECK_THROWS_AS(a.poll_once(milliseconds(0)), std::logic_error);
  CHECK_THROWS_AS(a.connect("tcp://127.0.0.1:1"), std::logic_error);
  CHECK_THROWS_WITH(a.unacked(), "zkit::ReliableSender: used after move");
  CHECK(a.poll_item().socket == nullptr);
  CHECK_FALSE(a.next_deadline().has_value());
  CHECK(a.close().clean());
  CHECK(b.stats().messages == 0);  // the new owner works

  ReliableReceiver r(ctx, fast_receiver());
  ReliableReceiver q(std::move(r));
  CHECK_THROWS_WITH(r.poll_once([](Delivery&) {}, milliseconds(0)),
                    "zkit::ReliableReceiver: used after move");
  CHECK_THROWS_AS(r.ack(AckToken{}), std::logic_error);
  CHECK_THROWS_AS(r.stats(), std::logic_error);
  CHECK(r.poll_item().socket == nullptr);
  r.stop();  // noexcept, harmless
  CHECK(r.close().clean());
  CHECK(q.stats().sessions == 0);
}

TEST_CASE("A full backlog makes send() return false and send_batch() refuse, both counted",
          "[reliable][api]") {
  zmq::context_t ctx;
  TempDir dir;
  ReliableSenderOptions so = fast_sender(2);
  so.batch.max_records = 1;  // every message seals a batch
  ReliableSender sender(ctx, so);
  sender.connect(dir.ipc("nobody"));
  int accepted = 0;
  while (accepted < 100 && sender.send("0:" + std::to_string(accepted), milliseconds(0))) {
    ++accepted;
  }
  CHECK(accepted < 100);
  CHECK(sender.stats().send_would_block == 1);
  zmq::message_t frame = one_batch(1, 1, "x");
  std::size_t size = frame.size();
  Status s = sender.send_batch(std::move(frame), 7, 1, 1);
  CHECK(s.code() == Code::kLimitExceeded);
  CHECK(frame.size() == size);  // left with the caller
  CHECK(sender.stats().send_would_block == 2);
  CloseReport report = sender.close();
  CHECK(report.unsent_batches == static_cast<std::uint64_t>(accepted));
  CHECK(report.unsent_messages == static_cast<std::uint64_t>(accepted));
}

TEST_CASE("A trusted send_batch is not peeked: its ack names the ids the caller gave",
          "[reliable][spool]") {
  zmq::context_t ctx;
  ReliableReceiver receiver(ctx, fast_receiver());
  std::string ep = receiver.bind("tcp://127.0.0.1:*");
  ReliableSenderOptions so = fast_sender();
  so.limits.max_batch_bytes = 64;
  ReliableSender sender(ctx, so);
  sender.connect(ep);
  // The size limit holds on the trusted path too.
  CHECK(sender.send_batch(one_batch(31, 4, std::string(100, 'x')), 999, 31, 4).code() ==
        Code::kLimitExceeded);
  std::vector<AckedBatch> acked;
  sender.on_acked([&](const AckedBatch& a) { acked.push_back(a); });
  REQUIRE(sender.send_batch(one_batch(31, 5, "0:0"), 1000, 31, 5).is_ok());
  Sink sink;
  auto handler = sink.handler();
  REQUIRE(drive([&] { return acked.size() == 1; }, [&] { poll_both(sender, receiver, handler); },
                2000));
  CHECK(acked[0].id == 1000);
  CHECK(acked[0].producer_id == 31);
  CHECK(acked[0].seq == 5);
  CHECK(sink.count(0) == 1);
  CHECK(sink.highest().at(31) == 5);
}

TEST_CASE("Delivery::peer_key is the sender's CURVE key under ZAP, empty without",
          "[reliable][curve]") {
  zmq::context_t ctx;
  char server_pub[41], server_sec[41], client_pub[41], client_sec[41];
  REQUIRE(zmq_curve_keypair(server_pub, server_sec) == 0);
  REQUIRE(zmq_curve_keypair(client_pub, client_sec) == 0);
  REQUIRE(curve_public(client_sec) == client_pub);
  ZapHandler zap(ctx, {client_pub});

  ReliableReceiverOptions ro = fast_receiver();
  ro.socket.curve.server = true;
  ro.socket.curve.secret_key = server_sec;
  ro.socket.curve.zap_domain = "zkit";
  ReliableReceiver receiver(ctx, ro);
  std::string ep = receiver.bind("tcp://127.0.0.1:*");
  ReliableSenderOptions so = fast_sender();
  so.socket.curve.public_key = client_pub;
  so.socket.curve.secret_key = client_sec;
  so.socket.curve.server_key = server_pub;
  ReliableSender sender(ctx, so);
  sender.connect(ep);

  ReliableReceiver plain(ctx, fast_receiver());
  std::string plain_ep = plain.bind("tcp://127.0.0.1:*");
  ReliableSender plain_sender(ctx, fast_sender());
  plain_sender.connect(plain_ep);

  std::vector<std::string> keys;
  auto handler = [&](Delivery& d) { keys.emplace_back(d.peer_key); };
  REQUIRE(sender.send("0:0"));
  sender.flush();
  REQUIRE(plain_sender.send("0:0"));
  plain_sender.flush();
  REQUIRE(drive([&] { return keys.size() == 2; },
                [&] {
                  poll_both(sender, receiver, handler);
                  poll_both(plain_sender, plain, handler);
                },
                4000));
  std::sort(keys.begin(), keys.end());
  CHECK(keys[0].empty());
  CHECK(keys[1] == client_pub);
}

TEST_CASE("stop() from another thread ends a run() or poll_once(-1) waiting with no traffic",
          "[reliable][run]") {
  zmq::context_t ctx;
  ReliableReceiver receiver(ctx, fast_receiver());
  receiver.bind("tcp://127.0.0.1:*");
  auto nothing = [](Delivery&) { FAIL("no traffic expected"); };
  for (int round = 0; round < 2; ++round) {
    std::atomic<bool> started{false};
    std::atomic<bool> returned{false};
    std::thread waiter([&] {
      started = true;
      if (round == 0) {
        receiver.run(nothing);
      } else {
        receiver.poll_once(nothing, milliseconds(-1));  // no timeout: only stop() ends it
      }
      returned = true;
    });
    while (!started) std::this_thread::yield();
    receiver.stop();  // before or during the wait: either way the call returns
    waiter.join();
    CHECK(returned);
  }
  // The request was consumed: a later poll waits for its timeout again, and returns.
  CHECK(receiver.poll_once(nothing, milliseconds(1)) == 0);
}

TEST_CASE("The docs/patterns.md reliable snippet runs in one thread as written",
          "[reliable][docs]") {
  std::vector<std::string> got;
  auto store = [&](std::span<const std::byte> r) {
    got.emplace_back(reinterpret_cast<const char*>(r.data()), r.size());
  };
  // ---- from docs/patterns.md, "Reliable link" ----
  zmq::context_t ctx;
  zkit::ReliableReceiverOptions ro;
  ro.manual_ack = true;  // acknowledge once stored, not when the handler returns
  zkit::ReliableReceiver receiver(ctx, ro);
  std::string ep = receiver.bind("tcp://127.0.0.1:*");

  zkit::ReliableSender sender(ctx);  // keeps every batch until the receiver acks it
  sender.connect(ep);
  for (int i = 0; i < 10; ++i) sender.send("Hello World " + std::to_string(i));
  sender.flush();

  std::vector<zkit::AckToken> held;
  auto handler = [&](zkit::Delivery& d) {  // each batch once, in order per sender
    for (auto record : d.batch) store(record);
    held.push_back(d.token);
  };
  while (sender.unacked() > 0) {  // one thread, one poll for both ends
    zmq_pollitem_t items[] = {sender.poll_item(), receiver.poll_item()};
    auto wake = *sender.next_deadline();  // never empty: the heartbeat
    if (auto r = receiver.next_deadline()) wake = std::min(wake, *r);
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(wake - std::chrono::steady_clock::now());
    zmq::poll(items, 2, std::max(ms, std::chrono::milliseconds(0)));
    sender.poll_once(std::chrono::milliseconds(0));  // acks, timers, resends
    receiver.poll_once(handler, std::chrono::milliseconds(0));
    for (const zkit::AckToken& t : held) receiver.ack(t);  // once durable
    held.clear();
  }
  zkit::CloseReport r = sender.close();  // r.unsent_batches: never acknowledged
  // ---- end of the snippet ----
  CHECK(r.clean());
  REQUIRE(got.size() == 10);
  CHECK(got[9] == "Hello World 9");
}

TEST_CASE("A ReliableReceiver disconnects a peer whose frame is over its decode limits",
          "[reliable][limits]") {
  zmq::context_t ctx;
  ReliableReceiverOptions ro = fast_receiver();  // socket.max_message_bytes unset
  ro.limits = envelope::Limits().batch_bytes(1024);
  ReliableReceiver receiver(ctx, ro);
  const std::string ep = receiver.bind("tcp://127.0.0.1:*");
  zmq::socket_t hostile(ctx, zmq::socket_type::dealer);
  hostile.set(zmq::sockopt::linger, 0);
  hostile.set(zmq::sockopt::reconnect_ivl, 60000);  // stay away once dropped
  DisconnectWatch watch(ctx, hostile);
  hostile.connect(ep);
  const std::string big(static_cast<std::size_t>(receive_limit(ro.limits)) + 1, 'x');
  REQUIRE(hostile.send(zmq::buffer(big), zmq::send_flags::none));
  // The receiver is not polled: ZeroMQ's I/O thread refuses the frame on its length alone.
  REQUIRE(watch.wait(milliseconds(10000)));

  ReliableSenderOptions so = fast_sender();
  so.limits = ro.limits;
  ReliableSender sender(ctx, so);
  sender.connect(ep);
  for (int i = 0; i < 10; ++i) REQUIRE(sender.send("0:" + std::to_string(i), milliseconds(0)));
  sender.flush();
  Sink sink;
  auto handler = sink.handler();
  REQUIRE(drive([&] { return sender.unacked() == 0 && sink.count(0) == 10; },
                [&] { poll_both(sender, receiver, handler); }, 5000));
  CHECK(sink.duplicates() == 0);
  CHECK(receiver.stats().decode_errors == 0);  // the big frame never reached the receiver
}
