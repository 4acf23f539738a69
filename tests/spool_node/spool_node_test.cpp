// Spool node behaviour: end to end exactly once, chains, resends after a lost ack, downstream
// outage, full disk and write errors, bad input on the wire and on disk. All peers run on the test
// thread (see node_harness.hpp); power loss has its own file.
#include <atomic>
#include <fstream>
#include <thread>

#include "disconnect_watch.hpp"
#include "fault_env.hpp"
#include "node_harness.hpp"
#include "zkit/reliable_codec.hpp"
#include "zkit/spool/inspect.hpp"

using namespace spool_node_test;
using zkit::SpoolNode;

namespace {

// Sends `batches` batches of 1..8 messages from each producer while stepping everything.
void stream(std::vector<Producer*> producers, int batches, const std::function<void()>& step) {
  std::mt19937 rng(7);
  for (int b = 0; b < batches; ++b) {
    for (Producer* p : producers) {
      const auto deadline = Clock::now() + 10s;
      while (!p->offer(1 + static_cast<int>(rng() % 8))) {
        REQUIRE(Clock::now() < deadline);
        step();
      }
    }
    step();
  }
}

}  // namespace

TEST_CASE("Sender to spool to receiver delivers every message once and in order per producer",
          "[spool_node]") {
  TempDir tmp;
  zmq::context_t ctx;
  Sink sink(ctx, "tcp://127.0.0.1:*");
  SpoolNode node(ctx, node_options(tmp.file("spool"), "tcp://127.0.0.1:*", sink.endpoint()));
  Producer a(ctx, 11, node.listen_endpoint()), b(ctx, 12, node.listen_endpoint()),
      c(ctx, 13, node.listen_endpoint());
  auto step = [&] {
    (void)node.poll_once(1ms);
    sink.poll();
    a.poll();
    b.poll();
    c.poll();
  };
  stream({&a, &b, &c}, 150, step);
  REQUIRE(pump_until(step, [&] {
    return a.all_acked() && b.all_acked() && c.all_acked() &&
           sink.messages() == a.sent() + b.sent() + c.sent() && node.stats().in_flight == 0 &&
           node.stats().store.backlog_batches == 0;
  }));
  check_exactly_once(sink, 11, a.sent());
  check_exactly_once(sink, 12, b.sent());
  check_exactly_once(sink, 13, c.sent());
  const auto s = node.stats();
  CHECK(s.accepted_batches == 450);
  CHECK(s.store.stored == 450);
  CHECK(s.acknowledged_upstream == 450);
  CHECK(s.acknowledged_batches == 450);
  CHECK(s.duplicates == 0);
  CHECK(s.store.fsyncs > 0);
  CHECK(s.store.fsyncs <= 450);  // group commit may share one fsync among several batches
  CHECK(node.stats().to_json().find("\"device\":\"spool\"") != std::string::npos);
}

TEST_CASE("Chain of two spools delivers every message once and in order", "[spool_node]") {
  TempDir tmp;
  zmq::context_t ctx;
  Sink sink(ctx, "tcp://127.0.0.1:*");
  SpoolNode second(ctx, node_options(tmp.file("b"), "tcp://127.0.0.1:*", sink.endpoint()));
  SpoolNode first(ctx, node_options(tmp.file("a"), "tcp://127.0.0.1:*",
                                    second.listen_endpoint()));
  Producer p(ctx, 21, first.listen_endpoint()), q(ctx, 22, first.listen_endpoint());
  auto step = [&] {
    (void)first.poll_once(1ms);
    (void)second.poll_once(0ms);
    sink.poll();
    p.poll();
    q.poll();
  };
  stream({&p, &q}, 120, step);
  REQUIRE(pump_until(step, [&] {
    return p.all_acked() && q.all_acked() && sink.messages() == p.sent() + q.sent();
  }));
  check_exactly_once(sink, 21, p.sent());
  check_exactly_once(sink, 22, q.sent());
  CHECK(first.stats().store.stored == 240);
  CHECK(second.stats().store.stored == 240);
}

TEST_CASE("A batch resent after a lost acknowledgement is acknowledged but not stored twice",
          "[spool_node]") {
  TempDir tmp;
  zmq::context_t ctx;
  const std::string in = tmp.ipc("in");
  // No downstream: everything stays in the backlog, where a second copy would show.
  const std::string out = tmp.ipc("out");
  auto run_sender = [&](SpoolNode& node, std::uint64_t seq) {
    zkit::ReliableSenderOptions so;
    so.socket.linger = 0ms;
    so.heartbeat_interval = 50ms;
    zkit::ReliableSender s(ctx, so);
    s.connect(in);
    int acked = 0;
    s.on_acked([&](const zkit::AckedBatch&) { ++acked; });
    REQUIRE(s.send_batch(Producer::batch(31, seq, 3, seq * 3 - 2), seq));
    REQUIRE(pump_until([&] { (void)node.poll_once(1ms); (void)s.poll_once(0ms); },
                       [&] { return acked == 1; }));
  };
  {
    SpoolNode node(ctx, node_options(tmp.file("spool"), in, out));
    run_sender(node, 1);
    run_sender(node, 2);
    // The same sender "restarted" and resent batch 2: the link's memory answers it.
    run_sender(node, 2);
    CHECK(node.stats().store.stored == 2);
  }
  // After a restart the link forgot; the store's per-producer highest seq answers.
  SpoolNode node(ctx, node_options(tmp.file("spool"), in, out));
  run_sender(node, 2);
  run_sender(node, 1);
  const auto s = node.stats();
  CHECK(s.store.stored == 0);
  // Seq 1 after seq 2 within one run is answered by the link's own memory (not delivered).
  CHECK(s.duplicates == 1);
  CHECK(s.acknowledged_upstream == 1);
  CHECK(s.store.backlog_batches == 2);
  run_sender(node, 3);
  CHECK(node.stats().store.stored == 1);
  CHECK(node.stats().store.backlog_batches == 3);
}

TEST_CASE("Downstream outage grows the backlog on disk and everything drains when it returns",
          "[spool_node]") {
  TempDir tmp;
  zmq::context_t ctx;
  const std::string out = tmp.ipc("out");
  SpoolNode node(ctx, node_options(tmp.file("spool"), "tcp://127.0.0.1:*", out));
  Producer p(ctx, 41, node.listen_endpoint());
  std::optional<Sink> sink;
  auto step = [&] {
    (void)node.poll_once(1ms);
    p.poll();
    if (sink) sink->poll();
  };
  stream({&p}, 200, step);
  REQUIRE(pump_until(step, [&] { return p.all_acked(); }));
  auto s = node.stats();
  CHECK(s.store.backlog_batches == 200);
  CHECK(s.store.backlog_messages == p.sent());
  CHECK(s.acknowledged_batches == 0);
  sink.emplace(ctx, out);  // the receiver comes back
  REQUIRE(pump_until(step, [&] {
    return sink->messages() == p.sent() && node.stats().store.backlog_batches == 0;
  }));
  check_exactly_once(*sink, 41, p.sent());
  // The receiver goes away again and returns as a new process: only new batches reach it.
  sink.reset();
  stream({&p}, 50, step);
  REQUIRE(pump_until(step, [&] { return p.all_acked(); }));
  CHECK(node.stats().store.backlog_batches == 50);
  const std::uint64_t before = p.sent() - node.stats().store.backlog_messages;
  sink.emplace(ctx, out);
  REQUIRE(pump_until(step, [&] { return node.stats().store.backlog_batches == 0; }));
  const auto& seen = sink->seen(41);
  REQUIRE(seen.size() == p.sent() - before);
  for (std::size_t i = 0; i < seen.size(); ++i) REQUIRE(seen[i] == before + i + 1);
}

TEST_CASE("At max-bytes with block the node withholds credit, loses nothing and resumes",
          "[spool_node]") {
  TempDir tmp;
  zmq::context_t ctx;
  const std::string out = tmp.ipc("out");
  auto o = node_options(tmp.file("spool"), "tcp://127.0.0.1:*", out);
  o.store.max_bytes = 512 * 1024;  // segments of 128 KiB
  o.store.when_full = zkit::spool::WhenFull::kBlock;
  SpoolNode node(ctx, o);
  Producer p(ctx, 51, node.listen_endpoint());
  std::optional<Sink> sink;
  auto step = [&] {
    (void)node.poll_once(1ms);
    p.poll();
    if (sink) sink->poll();
  };
  // ~2 KiB batches: the bound is reached after a few hundred.
  const auto deadline = Clock::now() + 10s;
  while (!node.stats().credit_paused && Clock::now() < deadline) {
    (void)p.offer(100);
    step();
  }
  REQUIRE(node.stats().credit_paused);
  for (int i = 0; i < 50; ++i) step();
  const auto s = node.stats();
  CHECK(s.store.full);
  CHECK(s.store.disk_bytes <= o.store.max_bytes);
  CHECK(s.acknowledged_upstream == s.store.stored);  // nothing acknowledged that is not stored
  CHECK_FALSE(p.all_acked());
  sink.emplace(ctx, out);
  REQUIRE(pump_until(step, [&] {
    (void)p.offer(100);
    return p.sent() > s.store.stored_messages * 2;
  }));
  const bool drained =
      pump_until(step, [&] { return p.all_acked() && sink->messages() == p.sent(); });
  INFO(node.stats().to_json() << "\nsender " << p.sender().stats().to_json() << " sent " << p.sent()
                         << " acked " << p.acked() << " sink " << sink->messages());
  REQUIRE(drained);
  check_exactly_once(*sink, 51, p.sent());
  CHECK(node.stats().store.dropped_messages == 0);
}

TEST_CASE("At max-bytes with drop-oldest the node keeps accepting and counts what it dropped",
          "[spool_node]") {
  TempDir tmp;
  zmq::context_t ctx;
  auto o = node_options(tmp.file("spool"), "tcp://127.0.0.1:*", tmp.ipc("nobody"));
  o.store.max_bytes = 512 * 1024;
  o.store.when_full = zkit::spool::WhenFull::kDropOldest;
  SpoolNode node(ctx, o);
  Producer p(ctx, 52, node.listen_endpoint());
  auto step = [&] {
    (void)node.poll_once(1ms);
    p.poll();
  };
  stream({&p}, 1, step);
  for (int i = 0; i < 600; ++i) {
    REQUIRE(pump_until(step, [&] { return p.offer(100); }));
  }
  REQUIRE(pump_until(step, [&] { return p.all_acked(); }));
  const auto s = node.stats();
  CHECK(s.store.dropped_batches > 0);
  CHECK(s.store.backlog_messages + s.store.dropped_messages == p.sent());
  CHECK(s.store.disk_bytes <= o.store.max_bytes);
}

TEST_CASE("A write error stops acknowledgements, is retried, and nothing is lost when the disk "
          "recovers", "[spool_node]") {
  TempDir tmp;
  zmq::context_t ctx;
  zkit::spool::FaultInjectionEnv env;
  Sink sink(ctx, "tcp://127.0.0.1:*");
  auto o = node_options(tmp.file("spool"), "tcp://127.0.0.1:*", sink.endpoint());
  o.store.env = &env;
  SpoolNode node(ctx, o);
  Producer p(ctx, 61, node.listen_endpoint());
  auto step = [&] {
    (void)node.poll_once(1ms);
    p.poll();
    sink.poll();
  };
  stream({&p}, 30, step);
  REQUIRE(pump_until(step, [&] { return p.all_acked(); }));
  for (int err : {ENOSPC, EIO}) {
    zkit::spool::FaultInjectionEnv::Faults f;
    f.write_budget = 3000;
    f.write_errno = err;
    env.set_faults(f);
    const std::uint64_t acked_before = node.stats().acknowledged_upstream;
    stream({&p}, 40, step);
    for (int i = 0; i < 100; ++i) step();
    const auto s = node.stats();
    CHECK(s.disk_failing);
    CHECK(s.write_errors > 0);
    CHECK(s.credit_paused);
    CHECK_FALSE(p.all_acked());
    CHECK(s.acknowledged_upstream < acked_before + 40);
    env.clear_faults();
    REQUIRE(pump_until(step, [&] { return p.all_acked() && sink.messages() == p.sent(); }));
    CHECK_FALSE(node.stats().disk_failing);
  }
  // A failing fsync holds the acknowledgements too.
  zkit::spool::FaultInjectionEnv::Faults f;
  f.fail_sync = true;
  env.set_faults(f);
  const std::uint64_t acked_before = node.stats().acknowledged_upstream;
  stream({&p}, 5, step);
  for (int i = 0; i < 50; ++i) step();
  CHECK(node.stats().acknowledged_upstream == acked_before);
  env.clear_faults();
  REQUIRE(pump_until(step, [&] { return p.all_acked() && sink.messages() == p.sent(); }));
  check_exactly_once(sink, 61, p.sent());
}

TEST_CASE("A HELLO flood past max_sessions while a batch is parked does not abort the node, and "
          "the parked batch is stored and acknowledged once the disk recovers", "[spool_node]") {
  // Defect 1: the flood evicted the real sender's session; its new session made the parked
  // batch's token unknown and ReliableReceiver::ack threw out of the loop (SIGABRT in `zkit spool`).
  TempDir tmp;
  zmq::context_t ctx;
  zkit::spool::FaultInjectionEnv env;
  Sink sink(ctx, "tcp://127.0.0.1:*");
  auto o = node_options(tmp.file("spool"), "tcp://127.0.0.1:*", sink.endpoint());
  o.store.env = &env;
  SpoolNode node(ctx, o);
  Producer p(ctx, 81, node.listen_endpoint());
  auto step = [&] {
    (void)node.poll_once(1ms);
    p.poll();
    sink.poll();
  };
  stream({&p}, 5, step);
  REQUIRE(pump_until(step, [&] { return p.all_acked(); }));

  zkit::spool::FaultInjectionEnv::Faults f;
  f.write_budget = 0;
  f.write_errno = ENOSPC;
  env.set_faults(f);
  stream({&p}, 1, step);
  REQUIRE(pump_until(step, [&] { return node.stats().disk_failing; }));
  // Batches arriving while the disk fails are parked (the one above may have been appended, in
  // memory, before the commit that failed).
  stream({&p}, 2, step);
  REQUIRE(pump_until(step, [&] { return node.stats().parked > 0; }));

  // More sessions than max_sessions (1024), each opened by one HELLO from a raw DEALER.
  zmq::socket_t rogue(ctx, zmq::socket_type::dealer);
  rogue.set(zmq::sockopt::linger, 0);
  rogue.set(zmq::sockopt::sndhwm, 0);
  rogue.set(zmq::sockopt::rcvhwm, 0);
  rogue.connect(node.listen_endpoint());
  constexpr int kHellos = 1100;
  for (int i = 0; i < kHellos; ++i) {
    const zkit::reliable::Message hello{zkit::reliable::MessageType::kHello,
                                        static_cast<std::uint64_t>(900000 + i), 0, 16};
    rogue.send(zkit::reliable::encode(hello), zmq::send_flags::none);
  }
  std::uint64_t replies = 0;
  auto drain_rogue = [&] {
    zmq::message_t m;
    while (rogue.recv(m, zmq::recv_flags::dontwait)) ++replies;
  };
  // Every HELLO is answered (welcomed, or refused); then let the real sender talk once more, so
  // that a lost session would show as a RESET (bounded: with its session kept there is none).
  REQUIRE(pump_until([&] { step(); drain_rogue(); }, [&] { return replies >= kHellos; }));
  (void)pump_until(step, [&] { return p.sender().stats().resets > 0; }, 1000ms);

  env.clear_faults();
  const bool done = pump_until([&] { step(); drain_rogue(); },
                               [&] { return p.all_acked() && sink.messages() == p.sent(); });
  INFO(node.stats().to_json() << "\nsender " << p.sender().stats().to_json() << " sent "
                              << p.sent() << " acked " << p.acked() << " sink " << sink.messages());
  REQUIRE(done);
  check_exactly_once(sink, 81, p.sent());
  CHECK(node.stats().acknowledged_upstream >= p.sent_batches());
}

TEST_CASE("Malformed input from raw peers is counted and good peers are undisturbed",
          "[spool_node]") {
  TempDir tmp;
  zmq::context_t ctx;
  Sink sink(ctx, "tcp://127.0.0.1:*");
  auto o = node_options(tmp.file("spool"), "tcp://127.0.0.1:*", sink.endpoint());
  o.pull = "tcp://127.0.0.1:*";
  SpoolNode node(ctx, o);
  Producer good(ctx, 71, node.listen_endpoint());
  zmq::socket_t raw_dealer(ctx, zmq::socket_type::dealer);
  raw_dealer.set(zmq::sockopt::linger, 0);
  raw_dealer.connect(node.listen_endpoint());
  zmq::socket_t pusher(ctx, zmq::socket_type::push);
  pusher.set(zmq::sockopt::linger, 0);
  pusher.connect(node.pull_endpoint());
  auto step = [&] {
    (void)node.poll_once(1ms);
    good.poll();
    sink.poll();
  };
  std::mt19937 rng(3);
  for (int i = 0; i < 60; ++i) {
    std::string garbage(1 + rng() % 64, '\0');
    for (auto& ch : garbage) ch = static_cast<char>(rng());
    raw_dealer.send(zmq::buffer(garbage), zmq::send_flags::dontwait);
    // Blocking: a PUSH queues once its connection is up (dontwait would drop it before).
    pusher.send(zmq::buffer(garbage), zmq::send_flags::none);
    (void)good.offer(4);
    step();
  }
  // Plain PUSH peers' valid batches are stored and forwarded (no acknowledgement).
  for (std::uint64_t seq = 1; seq <= 10; ++seq) {
    pusher.send(Producer::batch(72, seq, 2, seq * 2 - 1), zmq::send_flags::none);
  }
  REQUIRE(pump_until(step, [&] {
    return good.all_acked() && sink.messages() == good.sent() + 20 &&
           node.stats().pull_malformed == 60;
  }));
  check_exactly_once(sink, 71, good.sent());
  check_exactly_once(sink, 72, 20);
  const auto s = node.stats();
  CHECK(s.pull_batches == 10);
  CHECK(s.pull_malformed == 60);
  CHECK(s.link_decode_errors > 0);
}

TEST_CASE("Garbage segment files are skipped with clear errors and the node keeps working",
          "[spool_node]") {
  TempDir tmp;
  zmq::context_t ctx;
  const std::string dir = tmp.file("spool");
  const std::string in = tmp.ipc("in"), out = tmp.ipc("out");
  {
    SpoolNode node(ctx, node_options(dir, in, out));
    Producer p(ctx, 81, in);
    stream({&p}, 20, [&] { (void)node.poll_once(1ms); p.poll(); });
    REQUIRE(pump_until([&] { (void)node.poll_once(1ms); p.poll(); },
                       [&] { return p.all_acked(); }));
  }
  // Garbage in the middle of the existing segment and a whole garbage segment after it.
  std::string first;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".seg") first = e.path().string();
  }
  REQUIRE(!first.empty());
  {
    std::fstream f(first, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::streamoff(std::filesystem::file_size(first) / 2));
    f.write("GARBAGE-GARBAGE-GARBAGE", 23);
  }
  {
    // The segment after the last one the node wrote.
    std::string next = std::filesystem::path(first).filename().string();
    next = std::string(20 - std::to_string(std::stoull(next) + 1).size(), '0') +
           std::to_string(std::stoull(next) + 1) + ".seg";
    std::ofstream g(dir + "/" + next, std::ios::binary);
    std::mt19937 rng(5);
    for (int i = 0; i < 70000; ++i) g.put(static_cast<char>(rng()));
  }
  auto report = zkit::spool::verify(dir);
  REQUIRE(report);
  CHECK_FALSE(report.value().clean());
  for (const auto& c : report.value().corrupt) {
    CHECK_FALSE(c.file.empty());
    CHECK_FALSE(c.reason.empty());
  }
  SpoolNode node(ctx, node_options(dir, in, out));
  CHECK(node.stats().store.corrupt_skipped > 0);
  Sink sink(ctx, out);
  Producer p(ctx, 82, in);
  auto step = [&] {
    (void)node.poll_once(1ms);
    p.poll();
    sink.poll();
  };
  stream({&p}, 20, step);
  REQUIRE(pump_until(step, [&] { return p.all_acked() && sink.seen(82).size() == p.sent(); }));
  check_exactly_once(sink, 82, p.sent());
  // What survived of producer 81 arrives in order, without duplicates.
  const auto& old = sink.seen(81);
  for (std::size_t i = 1; i < old.size(); ++i) CHECK(old[i] > old[i - 1]);
}

TEST_CASE("Control socket answers STATS as JSON and TERMINATE stops the node", "[spool_node]") {
  TempDir tmp;
  zmq::context_t ctx;
  auto o = node_options(tmp.file("spool"), "tcp://127.0.0.1:*", tmp.ipc("out"));
  o.control = "tcp://127.0.0.1:*";
  SpoolNode node(ctx, o);
  zmq::socket_t req(ctx, zmq::socket_type::req);
  req.set(zmq::sockopt::linger, 0);
  req.connect(node.control_endpoint());
  auto ask = [&](const char* cmd) {
    req.send(zmq::buffer(std::string(cmd)), zmq::send_flags::none);
    zmq::message_t reply;
    REQUIRE(pump_until([&] { (void)node.poll_once(1ms); },
                       [&] { return req.recv(reply, zmq::recv_flags::dontwait).has_value(); }));
    return reply.to_string();
  };
  const std::string stats = ask("STATS");
  for (const char* field : {"\"device\":\"spool\"", "\"accepted\"", "\"stored\"", "\"forwarded\"",
                            "\"acknowledged\"", "\"duplicates\"", "\"backlog\"", "\"fsync\"",
                            "\"free_bytes\"", "\"corrupt_skipped\"", "\"dropped\""}) {
    CHECK(stats.find(field) != std::string::npos);
  }
  CHECK(ask("TERMINATE").empty());
  CHECK_FALSE(node.poll_once(0ms));
  CHECK(node.shutdown());
}

TEST_CASE("A forged --pull batch cannot make the node discard a reliable producer's batches",
          "[spool_node]") {
  // Defect 4 at the node: one --pull frame claiming producer 777 and seq 2^63 made the store take
  // every later batch of the real producer 777 for a duplicate: acknowledged, never stored.
  TempDir tmp;
  zmq::context_t ctx;
  Sink sink(ctx, "tcp://127.0.0.1:*");
  auto o = node_options(tmp.file("spool"), "tcp://127.0.0.1:*", sink.endpoint());
  o.pull = "tcp://127.0.0.1:*";
  SpoolNode node(ctx, o);
  zmq::socket_t pusher(ctx, zmq::socket_type::push);
  pusher.set(zmq::sockopt::linger, 0);
  pusher.connect(node.pull_endpoint());
  pusher.send(Producer::batch(777, std::uint64_t{1} << 63, 1, 1000000), zmq::send_flags::none);
  Producer p(ctx, 777, node.listen_endpoint());
  auto step = [&] {
    (void)node.poll_once(1ms);
    p.poll();
    sink.poll();
  };
  REQUIRE(pump_until(step, [&] { return node.stats().pull_batches == 1; }));
  stream({&p}, 100, step);
  const bool done = pump_until(step, [&] {
    return p.all_acked() && node.stats().acknowledged_batches == 101;
  });
  INFO(node.stats().to_json());
  REQUIRE(done);
  // Every batch of the real producer is stored and forwarded (what the downstream receiver then
  // makes of two streams claiming producer 777 is the link's duplicate suppression, not the
  // spool's).
  const auto s = node.stats();
  CHECK(s.duplicates == 0);
  CHECK(s.store.stored == 101);
  CHECK(s.forwarded_batches == 101);
  CHECK(s.forwarded_messages == p.sent() + 1);
}

TEST_CASE("stop() from another thread makes run() return", "[spool_node]") {
  TempDir tmp;
  zmq::context_t ctx;
  SpoolNode node(ctx, node_options(tmp.file("spool"), "tcp://127.0.0.1:*", tmp.ipc("out")));
  std::atomic<bool> returned{false};
  std::thread t([&] {
    node.run();  // waits without a timeout: only the waker ends the wait
    returned = true;
  });
  node.stop();
  t.join();
  CHECK(returned);
  CHECK_FALSE(node.poll_once(0ms));
}

TEST_CASE("poll_once waits on the driver's extra item and reports it", "[spool_node]") {
  TempDir tmp;
  zmq::context_t ctx;
  SpoolNode node(ctx, node_options(tmp.file("spool"), "tcp://127.0.0.1:*", tmp.ipc("out")));
  zmq::socket_t rx(ctx, zmq::socket_type::pair), tx(ctx, zmq::socket_type::pair);
  rx.bind("inproc://driver-event");
  tx.connect("inproc://driver-event");
  zmq_pollitem_t item{rx.handle(), 0, ZMQ_POLLIN, 0};
  tx.send(zmq::str_buffer("event"), zmq::send_flags::none);
  // No timeout of its own: only the driver's event (or a node timer) ends the wait.
  REQUIRE(pump_until([&] { CHECK(node.poll_once(-1ms, &item)); },
                     [&] { return (item.revents & ZMQ_POLLIN) != 0; }));
}

TEST_CASE("A --pull peer whose frame is over the store's frame limit is disconnected",
          "[spool_node][limits]") {
  // Defect 6 at the node: the frame was received whole before being refused.
  TempDir tmp;
  zmq::context_t ctx;
  Sink sink(ctx, "tcp://127.0.0.1:*");
  auto o = node_options(tmp.file("spool"), "tcp://127.0.0.1:*", sink.endpoint());
  o.pull = "tcp://127.0.0.1:*";
  o.store.max_frame_bytes = 4096;  // pull_socket.max_message_bytes stays unset
  SpoolNode node(ctx, o);
  zmq::socket_t hostile(ctx, zmq::socket_type::push);
  hostile.set(zmq::sockopt::linger, 0);
  hostile.set(zmq::sockopt::reconnect_ivl, 60000);  // stay away once dropped
  zkit::test::DisconnectWatch watch(ctx, hostile);
  hostile.connect(node.pull_endpoint());
  const std::string big(
      static_cast<std::size_t>(zkit::receive_limit(zkit::envelope::Limits().batch_bytes(4096))) + 1,
      'x');
  REQUIRE(hostile.send(zmq::buffer(big), zmq::send_flags::none));
  REQUIRE(watch.wait(10s));

  zmq::socket_t pusher(ctx, zmq::socket_type::push);
  pusher.set(zmq::sockopt::linger, 0);
  pusher.connect(node.pull_endpoint());
  pusher.send(Producer::batch(5, 1, 1, 100), zmq::send_flags::none);
  auto step = [&] {
    (void)node.poll_once(1ms);
    sink.poll();
  };
  REQUIRE(pump_until(step, [&] { return node.stats().pull_batches == 1; }));
  CHECK(node.stats().pull_malformed == 0);  // the big frame never reached the node
}
