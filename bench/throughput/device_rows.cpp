// Device rows (issue 4): each proxy type (zkit::Proxy) in the path vs direct, batched and raw, and
// CURVE vs plain text, all in the same run.
#include <cstdio>
#include <optional>

#include "endpoints.hpp"
#include "links.hpp"
#include "pattern_links.hpp"
#include "sections.hpp"
#include "zkit/proxy.hpp"

namespace zkit::bench {
namespace {

// A proxy with its own context, as a separate device process would have.
struct Device {
  zmq::context_t context{1};
  std::optional<Proxy> proxy;
};

std::shared_ptr<Device> start_proxy(ProxyType type, const std::string& frontend,
                                    const std::string& backend) {
  auto d = std::make_shared<Device>();
  ProxyOptions o;
  o.type = type;
  o.frontend = frontend;
  o.backend = backend;
  d->proxy.emplace(d->context, o);
  return d;
}

// streamer: PULL binds for the senders, PUSH connects to the receiver that bound.
const Via kStreamer = [](const std::string& receiver) {
  auto d = start_proxy(ProxyType::kStreamer, "@tcp://127.0.0.1:*", ">" + receiver);
  return ViaHandle{d, d->proxy->frontend_endpoint()};
};

Middle both_bound(ProxyType type) {
  auto d = start_proxy(type, "@tcp://127.0.0.1:*", "@tcp://127.0.0.1:*");
  return Middle{d, d->proxy->frontend_endpoint(), d->proxy->backend_endpoint()};
}
const MiddleFactory kForwarder = [] { return both_bound(ProxyType::kForwarder); };
const MiddleFactory kQueue = [] { return both_bound(ProxyType::kQueue); };

struct Pair {
  double direct = 0, via = 0;
  std::string error;
  double share() const { return direct > 0 ? via / direct : 0; }
};

// Runs direct and through the device alternately, config.repeats times each; medians.
template <class Run, class Rate>
Pair alternate(const Config& config, Run run, Rate rate) {
  std::vector<double> direct, via;
  Pair p;
  for (int r = 0; r < config.repeats; ++r) {
    for (bool through : {false, true}) {
      auto result = run(through);
      if (!result.error.empty()) {
        if (p.error.empty()) p.error = (through ? "via proxy: " : "direct: ") + result.error;
        continue;
      }
      (through ? via : direct).push_back(rate(result));
    }
  }
  auto med = [](std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  p.direct = med(direct);
  p.via = med(via);
  return p;
}

void print_pair(const char* what, const char* link, const Pair& p, const char* unit) {
  std::printf("%-28s %-8s %14s %14s %8.0f%% %s %s\n", what, link, si(p.direct).c_str(),
              si(p.via).c_str(), 100 * p.share(), unit, p.error.c_str());
  std::fflush(stdout);
}

Json pair_json(const char* what, const char* link, std::size_t size, const Pair& p) {
  Json j = {{"path", what}, {"link", link}, {"size", size}, {"direct_per_s", p.direct},
            {"via_proxy_per_s", p.via}, {"via_share", p.share()}};
  if (!p.error.empty()) j["error"] = p.error;
  return j;
}

bool proxy_rows(const Config& config, Report& report) {
  std::printf("through a zkit proxy (own context, as a device process) vs direct, tcp loopback\n");
  std::printf("%-28s %-8s %14s %14s %9s\n", "path", "link", "direct", "via proxy", "via/dir");
  Json rows = Json::array();
  bool ok = true;
  for (std::size_t size : {std::size_t{16}, std::size_t{1024}}) {
    std::string what = "streamer PUSH/PULL " + std::to_string(size) + " B";
    Pair raw = alternate(
        config,
        [&](bool via) {
          return measure_throughput<RawIn, RawOut>(config, size, NoArgs{}, NoArgs{},
                                                   via ? &kStreamer : nullptr);
        },
        [](const Measured& m) { return m.msgs_per_s(); });
    Pair bat = alternate(
        config, [&](bool via) { return pushpull_typed(config, size, false, via ? &kStreamer : nullptr); },
        [](const Measured& m) { return m.msgs_per_s(); });
    print_pair(what.c_str(), "raw", raw, "msgs/s");
    print_pair(what.c_str(), "batched", bat, "msgs/s");
    ok &= raw.error.empty() && bat.error.empty();
    rows.push_back(pair_json("streamer", "raw", size, raw));
    rows.push_back(pair_json("streamer", "batched", size, bat));
    if (size == 16) {
      report.targets.push_back({"streamer proxy: batched via/direct msgs/s at 16 B", bat.share(),
                                true, 0.85, 0});
    }
  }
  {
    auto rate = [](const FanOut& f) { return f.slowest(); };
    Pair raw = alternate(
        config, [&](bool via) { return pubsub(config, 16, 1, false, via ? &kForwarder : nullptr); },
        rate);
    Pair bat = alternate(
        config, [&](bool via) { return pubsub(config, 16, 1, true, via ? &kForwarder : nullptr); },
        rate);
    print_pair("forwarder PUB/SUB 16 B, 1 sub", "raw", raw, "msgs/s");
    print_pair("forwarder PUB/SUB 16 B, 1 sub", "batched", bat, "msgs/s");
    ok &= raw.error.empty() && bat.error.empty();
    rows.push_back(pair_json("forwarder", "raw", 16, raw));
    rows.push_back(pair_json("forwarder", "batched", 16, bat));
    report.targets.push_back({"forwarder proxy: batched via/direct msgs/s at 16 B", bat.share(),
                              true, 0.85, 0});
  }
  {
    auto rate = [](const Rpc& r) { return r.per_s(); };
    Pair raw = alternate(
        config, [&](bool via) { return rpc(config, 16, 64, false, via ? &kQueue : nullptr); }, rate);
    Pair bat = alternate(
        config, [&](bool via) { return rpc(config, 16, 64, true, via ? &kQueue : nullptr); }, rate);
    print_pair("queue Client/Server 16 B, 64", "raw", raw, "req/s");
    print_pair("queue Client/Server 16 B, 64", "batched", bat, "req/s");
    ok &= raw.error.empty() && bat.error.empty();
    rows.push_back(pair_json("queue", "raw", 16, raw));
    rows.push_back(pair_json("queue", "batched", 16, bat));
    report.targets.push_back({"queue proxy: batched via/direct requests/s (16 B, 64 in flight)",
                              bat.share(), true, 0.85, 0});
  }
  report.json["devices"]["proxies"] = rows;
  std::printf("\n");
  return ok;
}

// CURVE: the receiver (PULL, binds) is the CURVE server; no ZAP handler runs, so libzmq accepts
// any client key (the encryption cost is what is measured here).
bool curve_rows(const Config& config, Report& report) {
  char server_public[41] = {}, server_secret[41] = {}, client_public[41] = {},
       client_secret[41] = {};
  if (zmq_curve_keypair(server_public, server_secret) != 0 ||
      zmq_curve_keypair(client_public, client_secret) != 0) {
    std::printf("CURVE: zmq_curve_keypair failed (libzmq without libsodium?); rows skipped\n\n");
    report.json["devices"]["curve"] = "skipped: no CURVE in this libzmq";
    return true;
  }
  std::string spub = server_public, ssec = server_secret, cpub = client_public,
              csec = client_secret;
  SocketSetup server{[=](zmq::socket_t& s) {
    s.set(zmq::sockopt::curve_server, true);
    s.set(zmq::sockopt::curve_secretkey, ssec);
  }};
  SocketSetup client{[=](zmq::socket_t& s) {
    s.set(zmq::sockopt::curve_serverkey, spub);
    s.set(zmq::sockopt::curve_publickey, cpub);
    s.set(zmq::sockopt::curve_secretkey, csec);
  }};
  std::printf("CURVE vs plain text, PUSH/PULL over tcp loopback, msgs/s (batched: Batcher + decode)\n");
  std::printf("%-28s %-8s %14s %14s %9s\n", "size", "link", "plain", "CURVE", "curve/pl");
  Json rows = Json::array();
  bool ok = true;
  auto rate = [](const Measured& m) { return m.msgs_per_s(); };
  for (std::size_t size : {std::size_t{16}, std::size_t{1024}}) {
    Pair raw = alternate(
        config,
        [&](bool curve) {
          return curve ? measure_throughput<RawIn, RawOut>(config, size, server, client)
                       : measure_throughput<RawIn, RawOut>(config, size, NoArgs{}, NoArgs{});
        },
        rate);
    Pair bat = alternate(
        config,
        [&](bool curve) {
          return measure_throughput<BatchedIn, BatchedOut>(
              config, size, curve ? server : SocketSetup{},
              BatchedArgs{BatcherOptions{}, curve ? client : SocketSetup{}});
        },
        rate);
    std::string what = std::to_string(size) + " B";
    print_pair(what.c_str(), "raw", raw, "msgs/s");
    print_pair(what.c_str(), "batched", bat, "msgs/s");
    ok &= raw.error.empty() && bat.error.empty();
    rows.push_back({{"size", size}, {"link", "raw"}, {"plain_msgs_per_s", raw.direct},
                    {"curve_msgs_per_s", raw.via}, {"curve_share", raw.share()}});
    rows.push_back({{"size", size}, {"link", "batched"}, {"plain_msgs_per_s", bat.direct},
                    {"curve_msgs_per_s", bat.via}, {"curve_share", bat.share()}});
  }
  report.json["devices"]["curve"] = rows;
  std::printf("\n");
  return ok;
}

}  // namespace

bool section_devices(const Config& config, Report& report) {
  report.json["devices"] = Json::object();
  bool ok = proxy_rows(config, report);
  ok &= curve_rows(config, report);
  return ok;
}

}  // namespace zkit::bench
