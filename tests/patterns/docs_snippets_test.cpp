// clang-format off
// The code of docs/patterns.md, compiled and run here in one thread as the page shows it; the
// last case checks that every snippet below stands in the page letter for letter.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "zkit/consumer.hpp"
#include "zkit/consumer_codec.hpp"
#include "zkit/pipeline.hpp"
#include "zkit/pubsub.hpp"
#include "zkit/rpc.hpp"

TEST_CASE("docs: the options snippet names real fields", "[docs]") {
  // snippet: options
  zkit::PatternOptions o;
  o.socket.sndhwm = 1000;                        // zkit/options.hpp: HWMs, linger, reconnect, heartbeats, CURVE
  o.socket.linger = std::chrono::seconds(2);     // senders: also how long close() waits
  o.batch.max_records = 4096;                    // zkit/batcher.hpp: when a batch is sealed
  o.batch.mode = zkit::FlushMode::kAdaptive;     // idle: seal at once; busy: pace batches (50 us)
  o.limits.max_record_bytes = 1 << 20;           // send() refuses bigger messages (std::length_error)
  o.raw = false;                                 // true: one frame = one message, for plain ZeroMQ peers
  o.send_timeout = std::chrono::milliseconds(100);  // unset: block at the HWM (Publisher: never wait)
  // end snippet
  zmq::context_t ctx;
  CHECK_NOTHROW(zkit::Pusher(ctx, o));
}

TEST_CASE("docs: the pipeline snippet delivers its ten messages in one thread", "[docs]") {
  int received = 0;
  {
    // snippet: pipeline
    zmq::context_t ctx;
    zkit::Puller consumer(ctx);
    std::string ep = consumer.bind("tcp://127.0.0.1:*");  // the port bound, resolved
    zkit::Pusher producer(ctx);
    producer.connect(ep);                                 // either side may start first
    for (int i = 0; i < 10; ++i) producer.send("Hello World " + std::to_string(i));
    zkit::CloseReport r = producer.close();               // flush, wait up to the linger
    if (!r.clean()) std::fprintf(stderr, "%llu not sent\n", (unsigned long long)r.unsent_messages);

    int n = 0;
    consumer.run([&](const zkit::Message& m) {            // until stop()
      std::printf(" [x] Received '%.*s'\n", int(m.data.size()), m.text().data());
      if (++n == 10) consumer.stop();                     // from inside; or from another thread
    });
    // end snippet
    received = n;
  }
  CHECK(received == 10);
}

TEST_CASE("docs: the pub/sub snippet hears the publisher once subscribed", "[docs]") {
  std::optional<std::string> heard;
  {
    // snippet: pubsub
    zmq::context_t ctx;
    zkit::Publisher pub(ctx);
    std::string ep = pub.bind("tcp://127.0.0.1:*");
    zkit::Subscriber sub(ctx);
    sub.connect(ep);
    sub.subscribe("weather.");                            // prefixes; (un)subscribe at any time
    // The subscription reaches the publisher asynchronously: what is published before that is
    // lost (the slow joiner, below). So publish until the subscriber hears.
    std::optional<zkit::Message> m;
    for (int i = 0; i < 500 && !m; ++i) {
      pub.send("weather.paris", "sunny");                 // one batch per topic: [topic][batch]
      pub.flush();
      m = sub.receive(std::chrono::milliseconds(10));
    }
    if (m) std::cout << m->topic << ": " << m->text() << "\n";
    // end snippet
    if (m) heard = std::string(m->topic) + ": " + std::string(m->text());
  }
  CHECK(heard == "weather.paris: sunny");
}

TEST_CASE("docs: the request/reply snippet answers all its requests in one thread", "[docs]") {
  int ok = 0;
  {
    // snippet: rpc
    zmq::context_t ctx;
    zkit::Server server(ctx);
    std::string ep = server.bind("tcp://127.0.0.1:*");
    std::vector<zkit::Responder> later;
    auto handle = [&](const zkit::Message& req, zkit::Responder r) {
      if (req.text().back() != '7') r.reply("done");
      else later.push_back(std::move(r));                 // answer in a later turn, same thread
    };

    zkit::Client client(ctx);
    client.connect(ep);
    for (int i = 0; i < 1000; ++i) {                      // many requests in flight
      client.send("job " + std::to_string(i),
                  [&](const zkit::Reply& r) {             // called once: reply, kTimeout or kCancelled
                    if (r.ok()) ++ok;
                  },
                  std::chrono::seconds(5));
    }
    while (client.in_flight() > 0) {                      // one thread turns both sockets
      client.poll_once(std::chrono::milliseconds(1));
      server.poll_once(handle, std::chrono::milliseconds(1));
      for (zkit::Responder& r : later) r.reply("done later");
      later.clear();
    }
    // end snippet
  }
  CHECK(ok == 1000);
}

TEST_CASE("docs: the poll-loop snippet drives a Pusher and a Puller from one zmq::poll", "[docs]") {
  int delivered = 0;
  {
    // snippet: poll
    zmq::context_t ctx;
    zkit::PatternOptions o;
    o.send_timeout = std::chrono::milliseconds(0);      // a step must never block
    zkit::Puller puller(ctx, o);
    zkit::Pusher pusher(ctx, o);
    pusher.connect(puller.bind("inproc://work"));
    int received = 0;
    auto handler = [&](const zkit::Message&) { ++received; };
    for (int i = 0; i < 100; ++i) pusher.send("task");  // held and sealed by the batcher

    using Clock = std::chrono::steady_clock;
    while (received < 100) {                            // one turn of a device's loop
      zmq_pollitem_t items[] = {pusher.poll_item(), puller.poll_item()};
      std::optional<Clock::time_point> due[] = {pusher.next_deadline(), puller.next_deadline()};
      auto timeout = std::chrono::milliseconds(-1);     // nothing timed: wait for an event
      for (auto& d : due) {
        if (!d) continue;
        auto left = std::chrono::ceil<std::chrono::milliseconds>(*d - Clock::now());
        left = std::max(left, std::chrono::milliseconds(0));
        timeout = timeout.count() < 0 ? left : std::min(timeout, left);
      }
      zmq::poll(items, 2, timeout);
      auto ready = [&](int i) { return items[i].revents != 0 || (due[i] && *due[i] <= Clock::now()); };
      if (ready(0)) pusher.pump();
      if (ready(1)) puller.poll_once(handler, std::chrono::milliseconds(0));
    }
    // end snippet
    delivered = received;
  }
  CHECK(delivered == 100);
}

// A scripted spool for the consumer snippet: answers the JOIN, delivers three batches (the third a
// redelivery), and waits (bounded) for their acks.
struct ScriptedSpool {
  zmq::context_t ctx;
  zmq::socket_t router{ctx, zmq::socket_type::router};
  std::string endpoint;
  std::uint64_t acked = 0;
  std::thread thread;
  ScriptedSpool() {
    router.set(zmq::sockopt::linger, 0);
    router.bind("tcp://127.0.0.1:*");
    endpoint = router.get(zmq::sockopt::last_endpoint);
    thread = std::thread([this] { serve(); });
  }
  ~ScriptedSpool() { thread.join(); }
  void serve() {
    namespace proto = zkit::consumer;
    router.set(zmq::sockopt::rcvtimeo, 5000);
    zmq::message_t rid, head;
    for (int turns = 0; turns < 100 && acked < 3; ++turns) {
      if (!router.recv(rid) || !router.recv(head)) return;
      auto m = proto::decode(head);
      if (!m) continue;
      auto send = [&](const proto::Message& out, zmq::message_t* batch = nullptr) {
        router.send(zmq::buffer(rid.to_string_view()), zmq::send_flags::sndmore);
        router.send(proto::encode(out), batch ? zmq::send_flags::sndmore : zmq::send_flags::none);
        if (batch) router.send(*batch, zmq::send_flags::none);
      };
      if (const auto* j = m->get<proto::Join>()) {
        send({m->member, proto::Joined{j->group, 30000, 1666, 5}});
        for (std::uint64_t tag = 1; tag <= 3; ++tag) {
          zkit::envelope::Encoder e;
          e.begin(42);
          e.add("task " + std::to_string(tag));
          zmq::message_t batch = e.finish(tag, zkit::envelope::unix_now_ns());
          send({m->member, proto::Deliver{tag, tag == 3 ? 2u : 1u, 0, 64 * tag}}, &batch);
        }
      } else if (const auto* a = m->get<proto::Ack>()) {
        for (const auto& r : a->ranges) acked += r.last - r.first + 1;
      } else if (m->get<proto::Ping>()) {
        send({m->member, proto::Pong{}});
      }
    }
  }
};

TEST_CASE("docs: the consumer snippet handles three batches from a spool", "[docs]") {
  ScriptedSpool spool;
  std::string spool_endpoint = spool.endpoint;
  std::vector<std::string> done;
  auto work = [&](std::span<const std::byte> m) {
    done.emplace_back(reinterpret_cast<const char*>(m.data()), m.size());
  };
  int batches = 0;
  {
    // snippet: consumer
    zmq::context_t ctx;
    zkit::ConsumerOptions o;
    o.group = "work";                                    // created by the first JOIN
    o.prefetch_batches = 16;                             // at most 16 unacked batches here
    o.start = zkit::ConsumerStart::earliest();           // where a new group starts reading
    o.ack_wait = std::chrono::seconds(30);               // unacked this long: redelivered
    zkit::Consumer consumer(ctx, o);
    consumer.connect(spool_endpoint);                    // zkit spool --serve EP
    consumer.run([&](const zkit::ConsumedBatch& b) {     // acked when it returns
      if (b.info.redelivered())                          // delivery_count > 1
        std::printf("batch %llu again (delivery %llu)\n", (unsigned long long)b.info.seq,
                    (unsigned long long)b.info.delivery_count);
      for (std::span<const std::byte> m : b) work(m);
      if (++batches == 3) consumer.stop();
    });
    // end snippet
  }
  CHECK(batches == 3);
  CHECK(done == std::vector<std::string>{"task 1", "task 2", "task 3"});
}

// Every "// snippet: NAME" ... "// end snippet" block of this file, indentation removed.
std::vector<std::string> snippets_of(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in);
  std::vector<std::string> out;
  std::string line, block;
  bool inside = false;
  std::size_t indent = 0;
  while (std::getline(in, line)) {
    std::size_t first = line.find_first_not_of(' ');
    std::string body = first == std::string::npos ? "" : line.substr(first);
    if (body.rfind("// snippet:", 0) == 0) {
      inside = true;
      indent = first;
      block.clear();
    } else if (body == "// end snippet") {
      inside = false;
      out.push_back(block);
    } else if (inside) {
      block += (line.size() > indent ? line.substr(indent) : "") + "\n";
    }
  }
  return out;
}

TEST_CASE("docs: patterns.md shows exactly the snippets compiled here", "[docs]") {
  std::ifstream page(std::string(ZKIT_SOURCE_DIR) + "/docs/patterns.md");
  REQUIRE(page);
  std::stringstream text;
  text << page.rdbuf();
  auto blocks = snippets_of(std::string(ZKIT_SOURCE_DIR) + "/tests/patterns/docs_snippets_test.cpp");
  REQUIRE(blocks.size() == 6);
  for (const std::string& b : blocks) {
    INFO(b);
    CHECK(text.str().find("```cpp\n" + b + "```") != std::string::npos);
  }
}
// clang-format on
