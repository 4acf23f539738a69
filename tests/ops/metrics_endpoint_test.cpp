// The HTTP metrics endpoint in-process: routes and status codes, bad and busy endpoints, the
// ask/answer exchange, the triple buffer, readiness, a stalled loop, a slow client, and a request
// flood while messages go through a proxy (no timing assertions: counts only).
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "http_get.hpp"
#include "zkit/device_metrics.hpp"
#include "zkit/envelope.hpp"
#include "zkit/metrics_server.hpp"
#include "zkit/proxy.hpp"

using namespace zkit;
using namespace zkit::test;
using namespace std::chrono_literals;

namespace {

MetricsServerOptions local() {
  MetricsServerOptions o;
  o.endpoint = "127.0.0.1:0";
  return o;
}

struct Fake {
  std::uint64_t n = 0;
};

MetricsEndpoint<Fake> fake_endpoint(MetricsServerOptions o = local()) {
  return MetricsEndpoint<Fake>(
      o, {{"device", "fake"}}, Fake{},
      [](metrics::Exposition& x, const Fake& f) { x.counter("zkit_fake_total", "Fake.", f.n); },
      [](const Fake& f) { return f.n == 0 ? std::string("nothing yet") : std::string(); });
}

// The value of the first sample line starting with `prefix`, or -1.
double sample(const std::string& text, const std::string& prefix) {
  for (std::size_t at = 0; at < text.size();) {
    const auto end = text.find('\n', at);
    const std::string line = text.substr(at, end - at);
    if (line.rfind(prefix, 0) == 0) return std::stod(line.substr(line.rfind(' ') + 1));
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return -1;
}

}  // namespace

TEST_CASE("HttpServer answers its routes, 404 for other paths and 405 for other methods",
          "[ops][metrics]") {
  HttpServer server(local(), {{"/a",
                               [] {
                                 return HttpReply{200, "text/plain", "A\n"};
                               }},
                              {"/b", [] {
                                 return HttpReply{503, "text/plain", "B\n"};
                               }}});
  REQUIRE(server.endpoint().rfind("127.0.0.1:", 0) == 0);
  CHECK(server.endpoint() != "127.0.0.1:0");
  const auto a = http_get(server.endpoint(), "/a");
  CHECK(a.status == 200);
  CHECK(a.body == "A\n");
  CHECK(http_get(server.endpoint(), "/b").status == 503);
  CHECK(http_get(server.endpoint(), "/nope").status == 404);
  CHECK(http_get(server.endpoint(), "/a/").status == 404);
  CHECK(http_request(server.endpoint(), "/a", "POST").status == 405);
  CHECK(http_request(server.endpoint(), "/a", "HEAD").status == 200);
}

TEST_CASE("A bad endpoint and a port in use are refused, naming the endpoint", "[ops][metrics]") {
  for (const char* bad : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:x",
                          "nohost:9464", ":9464", "tcp://127.0.0.1:9464"}) {
    MetricsServerOptions o;
    o.endpoint = bad;
    CHECK_THROWS_WITH(HttpServer(o, {}), Catch::Contains(std::string("'") + bad + "'") &&
                                             Catch::Contains("HOST:PORT"));
  }
  HttpServer first(local(), {});
  MetricsServerOptions o;
  o.endpoint = first.endpoint();
  CHECK_THROWS_AS(HttpServer(o, {}), MetricsBindError);
  CHECK_THROWS_WITH(HttpServer(o, {}),
                    Catch::Contains(first.endpoint()) && Catch::Contains("in use"));
}

TEST_CASE("An ask is answered only by a publication after it; unanswered asks time out",
          "[ops][metrics]") {
  SnapshotExchange x;
  CHECK_FALSE(x.take_ask());
  CHECK_FALSE(x.ask(10ms));  // nobody answers
  CHECK(x.take_ask());       // the ask is pending for the loop
  x.answered();              // answers the ask it took, which is older than the next one
  std::thread loop([&x] {
    zmq_pollitem_t item = x.ask_item();
    for (int i = 0; i < 100; ++i) {  // bounded: at most 100 rounds of 100 ms
      zmq::poll(&item, 1, 100ms);
      if (x.take_ask()) {
        x.answered();
        return;
      }
    }
  });
  CHECK(x.ask(10s));
  loop.join();
}

TEST_CASE("The triple buffer hands the reader the latest publication", "[ops][metrics]") {
  StatsSlot<int> slot(7);
  CHECK(slot.read() == 7);
  slot.publish(1);
  slot.publish(2);
  CHECK(slot.read() == 2);
  CHECK(slot.read() == 2);
  slot.publish(3);
  CHECK(slot.read() == 3);
}

TEST_CASE("/readyz and /metrics follow what the loop publishes", "[ops][metrics]") {
  auto o = local();
  o.min_interval = 0ms;
  o.fresh_wait = 50ms;
  auto ep = fake_endpoint(o);
  const auto r = http_get(ep.endpoint(), "/readyz");
  CHECK(r.status == 503);
  CHECK(r.body == "not ready: nothing yet\n");
  CHECK(http_get(ep.endpoint(), "/healthz").status == 200);
  ep.publish(Fake{42});
  const auto m = http_get(ep.endpoint(), "/metrics");
  CHECK(m.status == 200);
  CHECK(sample(m.body, "zkit_fake_total{device=\"fake\"}") == 42);
  CHECK(m.body.find("# TYPE zkit_stats_age_seconds gauge") != std::string::npos);
  CHECK(http_get(ep.endpoint(), "/readyz").status == 200);
  ep.stopping();
  const auto s = http_get(ep.endpoint(), "/readyz");
  CHECK(s.status == 503);
  CHECK(s.body == "not ready: stopping\n");
}

TEST_CASE("/healthz turns 503 once the loop has not answered for stall_after", "[ops][metrics]") {
  auto o = local();
  o.min_interval = 0ms;
  o.fresh_wait = 20ms;
  o.stall_after = 200ms;
  auto ep = fake_endpoint(o);  // nobody ever serves its asks
  int status = 0;
  for (int i = 0; i < 200 && status != 503; ++i)
    status = http_get(ep.endpoint(), "/healthz").status;
  CHECK(status == 503);
  const auto body = http_get(ep.endpoint(), "/healthz").body;
  CHECK(body.find("stalled") != std::string::npos);
  ep.publish(Fake{1});  // an answer: alive again
  CHECK(http_get(ep.endpoint(), "/healthz").status == 200);
}

TEST_CASE("A slow client holding a half-sent request does not hold up other requests",
          "[ops][metrics]") {
  auto ep = fake_endpoint();
  ep.publish(Fake{1});
  std::vector<int> slow;
  for (int i = 0; i < 8; ++i) {
    slow.push_back(http_connect(ep.endpoint()));
    const char part[] = "GET /metr";
    (void)::send(slow.back(), part, sizeof part - 1, MSG_NOSIGNAL);
  }
  CHECK(http_get(ep.endpoint(), "/healthz").status == 200);
  CHECK(http_get(ep.endpoint(), "/metrics").status == 200);
  for (int fd : slow) ::close(fd);
}

TEST_CASE("Readiness of the spool and the proxy comes from their stats", "[ops][metrics]") {
  SpoolNodeStats s;
  s.state = "running";
  s.downstream_connected = true;
  CHECK(not_ready(s, true).empty());
  s.downstream_connected = false;
  CHECK(not_ready(s, true) == "downstream not connected");
  CHECK(not_ready(s, false).empty());
  s.state = "blocked: full";
  CHECK(not_ready(s, false) == "spool blocked: full");
  ProxyStats p;
  CHECK(not_ready(p).empty());
  p.terminated = true;
  CHECK_FALSE(not_ready(p).empty());
}

TEST_CASE("A bridge's figures and readiness come from its BridgeStats", "[ops][metrics]") {
  BridgeStats s;
  s.direction = "from-amqp";
  s.state = "connected";
  s.connects = 2;
  s.connection_losses = 1;
  s.deliveries = 120;
  s.messages_acked_downstream = 100;
  s.unacked = 21;
  s.downstream_connected = true;
  metrics::Exposition x({{"device", "bridge"}});
  write_metrics(x, s);
  const std::string t = x.text();
  const std::string pre = "{device=\"bridge\",direction=\"from-amqp\"";
  CHECK(t.find("zkit_bridge_amqp_connected" + pre + ",socket=\"amqp\"} 1\n") != std::string::npos);
  CHECK(t.find("zkit_bridge_amqp_connection_losses_total" + pre + ",socket=\"amqp\"} 1\n") !=
        std::string::npos);
  CHECK(t.find("zkit_bridge_deliveries_total" + pre + ",socket=\"amqp\"} 120\n") !=
        std::string::npos);
  CHECK(t.find("zkit_bridge_acked_downstream_messages_total" + pre + ",socket=\"to\"} 100\n") !=
        std::string::npos);
  CHECK(t.find("zkit_bridge_unacked_messages" + pre + ",socket=\"amqp\"} 21\n") !=
        std::string::npos);
  CHECK(t.find("zkit_bridge_state" + pre + ",state=\"connecting\"} 0\n") != std::string::npos);
  CHECK(t.find("zkit_bridge_published_total") == std::string::npos);  // a to-amqp figure

  CHECK(not_ready(s).empty());
  s.downstream_connected = false;
  CHECK(not_ready(s) == "downstream not connected");
  s.state = "connecting";
  CHECK(not_ready(s) == "RabbitMQ connecting");
  s.direction = "to-amqp";  // no downstream link: RabbitMQ alone decides
  CHECK(not_ready(s) == "RabbitMQ connecting");
  s.state = "connected";
  CHECK(not_ready(s).empty());
  s.published = 9;
  metrics::Exposition y({{"device", "bridge"}});
  write_metrics(y, s);
  CHECK(y.text().find("zkit_bridge_published_total{device=\"bridge\",direction=\"to-amqp\","
                      "socket=\"amqp\"} 9\n") != std::string::npos);
}

TEST_CASE("A group's figures carry its name and the names the alert rules use", "[ops][metrics]") {
  SpoolNodeStats s;
  for (const char* name : {"audit", "billing"}) {
    GroupFigures g;
    g.name = name;
    g.state.delivered = 10;
    g.state.redelivered = 3;
    g.state.dead_lettered = 2;
    g.state.lag_batches = 4;
    s.groups.push_back(g);
  }
  metrics::Exposition x({{"device", "spool"}});
  write_metrics(x, s);
  const std::string t = x.text();
  CHECK(t.find(
            "zkit_spool_group_dead_lettered_batches_total{device=\"spool\",group=\"audit\"} 2\n") !=
        std::string::npos);
  CHECK(t.find(
            "zkit_spool_group_redelivered_batches_total{device=\"spool\",group=\"billing\"} 3\n") !=
        std::string::npos);
  CHECK(t.find("zkit_spool_group_lag_batches{device=\"spool\",group=\"audit\"} 4\n") !=
        std::string::npos);
  CHECK(t.find("zkit_spool_group_delivered_batches_total{device=\"spool\",group=\"audit\"} 10\n") !=
        std::string::npos);
}

TEST_CASE("A /metrics flood leaves the proxy's message path running and the figures exact",
          "[ops][metrics]") {
  zmq::context_t ctx;
  ProxyOptions po;
  po.frontend = "@tcp://127.0.0.1:*";
  po.backend = "@tcp://127.0.0.1:*";
  Proxy proxy(ctx, po);
  auto o = local();
  MetricsEndpoint<ProxyStats> ep(
      o, {{"device", "proxy"}, {"name", "flood"}}, ProxyStats{},
      [](metrics::Exposition& x, const ProxyStats& s) { write_metrics(x, s); },
      [](const ProxyStats& s) { return not_ready(s); });
  // The owner's loop, as `zkit proxy` runs it: answers asks with the device's STATS.
  std::atomic<bool> stop{false};
  std::thread owner([&] {
    zmq_pollitem_t item = ep.asked_item();
    while (!stop.load()) {
      zmq::poll(&item, 1, 50ms);
      ep.serve([&proxy] { return proxy.stats(); });
    }
  });
  std::atomic<bool> traffic_done{false};
  std::atomic<int> scrapes{0}, failures{0};
  std::vector<std::thread> hammers;
  for (int t = 0; t < 4; ++t) {
    hammers.emplace_back([&] {
      // At least one scrape each, then until the traffic is through (bounded).
      for (int i = 0; i < 200000 && (i == 0 || !traffic_done.load()); ++i) {
        try {
          if (http_get(ep.endpoint(), "/metrics").status == 200) ++scrapes;
        } catch (const std::exception&) {
          ++failures;  // refused at max_connections: allowed, counted
        }
      }
    });
  }
  zmq::socket_t push(ctx, zmq::socket_type::push), pull(ctx, zmq::socket_type::pull);
  push.connect(proxy.frontend_endpoint());
  pull.connect(proxy.backend_endpoint());
  constexpr int kBatches = 20000, kRecords = 10;
  std::thread producer([&] {
    for (int i = 1; i <= kBatches; ++i) {
      envelope::Encoder enc;
      enc.begin(1);
      for (int r = 0; r < kRecords; ++r) enc.add("m");
      push.send(enc.finish(static_cast<std::uint64_t>(i), envelope::unix_now_ns()),
                zmq::send_flags::none);
    }
  });
  pull.set(zmq::sockopt::rcvtimeo, 10000);
  int received = 0;
  for (; received < kBatches; ++received) {
    zmq::message_t m;
    if (!pull.recv(m)) break;
  }
  producer.join();
  traffic_done = true;
  for (auto& h : hammers) h.join();
  CHECK(received == kBatches);
  CHECK(scrapes.load() >= 4);
  // After the traffic, a scrape shows exactly what went through (bounded retries: the first may
  // be served from the copy of the previous scrape).
  double records = -1;
  const std::string key =
      "zkit_proxy_received_records_total{device=\"proxy\",name=\"flood\",socket=\"frontend\"}";
  for (int i = 0; i < 100 && records != kBatches * kRecords; ++i) {
    std::this_thread::sleep_for(o.min_interval);
    records = sample(http_get(ep.endpoint(), "/metrics").body, key);
  }
  CHECK(records == kBatches * kRecords);
  stop = true;
  owner.join();
  INFO("failed requests " << failures.load());
}
