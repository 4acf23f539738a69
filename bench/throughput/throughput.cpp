// throughput_bench: every zkit link beside its baseline (raw libzmq, or the direct path for a
// device) in the same process run, as a table: one Row per measurement (what, size, baseline, zkit)
// and one runner per shape. Prints each row with its ratio and writes them all as JSON.
#include <sys/utsname.h>

#include <algorithm>
#include <atomic>
#include <boost/program_options.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "ends.hpp"
#include "zkit/proxy.hpp"

namespace zkit::bench {
namespace {

using Json = nlohmann::ordered_json;

struct Config {
  milliseconds duration{200}, warmup{80}, saturation{500};
  int repeats = 3, latency_count = 2000, latency_rate = 1000;
  bool quick = false;
};

// ---- the table ----------------------------------------------------------------------------------

enum class Link {
  kRaw,
  kBatcher,
  kPusherRaw,
  kPusher,
  kReliable,
  kRawPubSub,
  kPubSub,
  kRawRpc,
  kRpc
};
enum class Shape { kThroughput, kPaced, kSaturation, kRpc };

struct Side {
  const char* name;
  Link link;
  std::optional<ProxyType> via = std::nullopt;  // a zkit::Proxy between the ends
  bool curve = false;
  BatcherOptions batcher{};  // kBatcher only
};

struct Goal {        // a target from the issues; judged only in full runs
  double ratio = 0;  // 0: none
  bool at_least = true;
};

struct Row {
  std::string section, label;
  Shape shape;
  std::size_t size;
  int fan;  // subscribers (pub/sub), requests in flight (rpc), else 1
  Side base, zkit;
  Goal goal{};
};

std::vector<Row> rows(bool tune) {
  const Side raw{"raw libzmq", Link::kRaw}, batcher{"Batcher+decode", Link::kBatcher},
      pusher{"Pusher batched", Link::kPusher}, pusher_raw{"Pusher raw mode", Link::kPusherRaw},
      reliable{"reliable link", Link::kReliable}, raw_pub{"raw PUB/SUB", Link::kRawPubSub},
      pub{"Publisher", Link::kPubSub}, raw_rpc{"raw DEALER/ROUTER", Link::kRawRpc},
      rpc{"Client/Server", Link::kRpc};
  auto via = [](Side s, ProxyType type) {
    s.via = type;
    s.name = "via proxy";
    return s;
  };
  auto curve = [](Side s) {
    s.curve = true;
    s.name = "CURVE";
    return s;
  };
  using S = Shape;
  std::vector<Row> r;
  for (std::size_t n : {16, 64, 256, 1024}) {
    r.push_back({"pushpull", "", S::kThroughput, n, 1, raw, batcher, n == 16 ? Goal{5} : Goal{}});
  }
  r.push_back({"latency", "1000/s", S::kPaced, 16, 1, raw, batcher, Goal{1.5, false}});
  r.push_back({"latency", "saturation", S::kSaturation, 16, 1, raw, batcher});
  for (std::size_t n : {16, 64, 256, 1024}) {
    r.push_back({"patterns", "", S::kThroughput, n, 1, raw, pusher_raw});
    r.push_back({"patterns", "", S::kThroughput, n, 1, raw, pusher, n == 16 ? Goal{5} : Goal{}});
  }
  r.push_back({"patterns", "1000/s", S::kPaced, 16, 1, raw, pusher, Goal{1.5, false}});
  for (int subs : {1, 4}) {
    r.push_back({"pubsub", std::to_string(subs) + " sub", S::kThroughput, 16, subs, raw_pub, pub});
  }
  for (int n : {1, 64}) {
    r.push_back({"rpc", std::to_string(n) + " in flight", S::kRpc, 16, n, raw_rpc, rpc});
  }
  for (std::size_t n : {16, 1024}) {
    r.push_back(
        {"reliable", "", S::kThroughput, n, 1, pusher, reliable, n == 16 ? Goal{0.5} : Goal{}});
  }
  for (std::size_t n : {16, 1024}) {
    Goal g = n == 16 ? Goal{0.85} : Goal{};
    r.push_back({"proxies", "streamer", S::kThroughput, n, 1, raw, via(raw, ProxyType::kStreamer)});
    r.push_back({"proxies", "streamer", S::kThroughput, n, 1, pusher,
                 via(pusher, ProxyType::kStreamer), g});
  }
  r.push_back({"proxies", "forwarder", S::kThroughput, 16, 1, raw_pub,
               via(raw_pub, ProxyType::kForwarder)});
  r.push_back({"proxies", "forwarder", S::kThroughput, 16, 1, pub, via(pub, ProxyType::kForwarder),
               Goal{0.85}});
  r.push_back({"proxies", "queue, 64 in flight", S::kRpc, 16, 64, raw_rpc,
               via(raw_rpc, ProxyType::kQueue)});
  r.push_back({"proxies", "queue, 64 in flight", S::kRpc, 16, 64, rpc, via(rpc, ProxyType::kQueue),
               Goal{0.85}});
  for (std::size_t n : {16, 1024}) {
    r.push_back({"curve", "", S::kThroughput, n, 1, raw, curve(raw)});
    r.push_back({"curve", "", S::kThroughput, n, 1, batcher, curve(batcher)});
  }
  if (!tune) return r;
  auto variant = [&](const char* name, auto change) {
    Side s{name, Link::kBatcher};
    change(s.batcher);
    r.push_back({"tune", "", S::kThroughput, 16, 1, batcher, s});
    r.push_back({"tune", "1000/s", S::kPaced, 16, 1, batcher, s});
  };
  using us = std::chrono::microseconds;
  variant("adaptive_interval 10us", [](BatcherOptions& o) { o.adaptive_interval = us(10); });
  variant("adaptive_interval 200us", [](BatcherOptions& o) { o.adaptive_interval = us(200); });
  variant("adaptive_interval 1000us", [](BatcherOptions& o) { o.adaptive_interval = us(1000); });
  variant("max_records 256", [](BatcherOptions& o) { o.max_records = 256; });
  variant("max_records 65536", [](BatcherOptions& o) { o.max_records = 65536; });
  variant("max_bytes 16 KiB", [](BatcherOptions& o) { o.max_bytes = 16 * 1024; });
  variant("kLinger 100us", [](BatcherOptions& o) {
    o.mode = FlushMode::kLinger;
    o.linger = us(100);
  });
  return r;
}

const char* unit(Shape s) {
  return s == Shape::kRpc ? "requests/s" : s == Shape::kThroughput ? "msgs/s" : "p50 us";
}

// ---- building the ends --------------------------------------------------------------------------

struct Keys {
  Tune server, client;  // the receiver (it binds) is the CURVE server; no ZAP: any client key
};

Keys curve_keys() {
  char spub[41], ssec[41], cpub[41], csec[41];
  if (zmq_curve_keypair(spub, ssec) != 0 || zmq_curve_keypair(cpub, csec) != 0) {
    throw std::runtime_error("zmq_curve_keypair failed (libzmq without CURVE?)");
  }
  std::string sp = spub, ss = ssec, cp = cpub, cs = csec;
  return {[=](zmq::socket_t& s) {
            s.set(zmq::sockopt::curve_server, true);
            s.set(zmq::sockopt::curve_secretkey, ss);
          },
          [=](zmq::socket_t& s) {
            s.set(zmq::sockopt::curve_serverkey, sp);
            s.set(zmq::sockopt::curve_publickey, cp);
            s.set(zmq::sockopt::curve_secretkey, cs);
          }};
}

std::unique_ptr<Out> make_out(const Side& s, zmq::context_t& ctx, const Tune& tune) {
  using T = zmq::socket_type;
  switch (s.link) {
    case Link::kRaw:
      return std::make_unique<RawOut>(ctx, T::push, tune);
    case Link::kRawPubSub:
      return std::make_unique<RawOut>(ctx, T::pub, tune);
    case Link::kBatcher:
      return std::make_unique<BatcherOut>(ctx, s.batcher, tune);
    case Link::kPusherRaw:
      return std::make_unique<PusherOut>(ctx, true);
    case Link::kPusher:
      return std::make_unique<PusherOut>(ctx, false);
    case Link::kPubSub:
      return std::make_unique<PublisherOut>(ctx);
    case Link::kReliable:
      return std::make_unique<ReliableOut>(ctx);
    default:
      throw std::logic_error("not a one-way link");
  }
}

std::unique_ptr<In> make_in(const Side& s, zmq::context_t& ctx, const Tune& tune) {
  using T = zmq::socket_type;
  switch (s.link) {
    case Link::kRaw:
      return std::make_unique<RawIn>(ctx, T::pull, false, tune);
    case Link::kRawPubSub:
      return std::make_unique<RawIn>(ctx, T::sub, false, tune);
    case Link::kBatcher:
      return std::make_unique<RawIn>(ctx, T::pull, true, tune);
    case Link::kPusherRaw:
      return std::make_unique<PolledIn<Puller>>(ctx, true);
    case Link::kPusher:
      return std::make_unique<PolledIn<Puller>>(ctx, false);
    case Link::kPubSub:
      return std::make_unique<PolledIn<Subscriber>>(ctx, false);
    case Link::kReliable:
      return std::make_unique<PolledIn<ReliableReceiver>>(ctx, false);
    default:
      throw std::logic_error("not a one-way link");
  }
}

// A proxy with its own context (as a device process), binding both sides: senders and clients
// connect to `up`, receivers and servers to `down`.
struct Device {
  zmq::context_t ctx{1};
  Proxy proxy;
  std::string up = proxy.frontend_endpoint(), down = proxy.backend_endpoint();
  explicit Device(ProxyType type) : proxy(ctx, options(type)) {}
  static ProxyOptions options(ProxyType type) {
    ProxyOptions o;
    o.type = type;
    o.frontend = o.backend = "@tcp://127.0.0.1:*";
    return o;
  }
};

std::unique_ptr<Device> start_device(std::optional<ProxyType> via) {
  return via ? std::make_unique<Device>(*via) : nullptr;
}

// ---- the runners --------------------------------------------------------------------------------

struct Figure {
  double value = 0;          // per second (throughput, rpc) or p50 µs (latency)
  double p99 = 0, p999 = 0;  // latency only
  double per_frame = 0;      // messages per frame (batched links)
  std::uint64_t lost = 0;    // messages some receiver never got (pub/sub)
  std::string error;
};

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

std::vector<std::byte> payload(std::size_t n, std::byte first) {
  std::vector<std::byte> p(n);
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::byte>('a' + i % 26);
  p[0] = first;
  return p;
}

constexpr std::uint64_t kUnknown = ~std::uint64_t{0};
constexpr milliseconds kIdleEnd{500};  // total known and nothing for this long: the rest is lost

// What one receiving thread saw. Throughput: the window opens `warmup` after the first delivery
// and closes at the last, on the receiver's clock; latency: every stamped message is sampled.
struct Received {
  Sink sink;
  double seconds = 0;
  std::uint64_t in_window = 0, frames_in_window = 0;
  std::string error;
};

void receive(In& in, Received& r, milliseconds warmup, const std::atomic<std::uint64_t>& total,
             std::atomic<int>& joined) {
  Clock::time_point first{}, open{}, last{}, progress = Clock::now();
  std::uint64_t at_open = 0, frames_at_open = 0, at_last = 0, frames_at_last = 0;
  bool counted = false;
  for (;;) {
    std::uint64_t before = r.sink.messages;
    in.receive(r.sink);
    Clock::time_point now = Clock::now();
    if (r.sink.joined && !counted) {
      counted = true;
      joined.fetch_add(1);
    }
    if (r.sink.messages > before) {
      progress = last = now;
      at_last = r.sink.messages;
      frames_at_last = r.sink.frames;
      if (first == Clock::time_point{}) first = now;
      if (open == Clock::time_point{} && now - first >= warmup) {
        open = now;
        at_open = r.sink.messages;
        frames_at_open = r.sink.frames;
      }
    }
    std::uint64_t t = total.load(std::memory_order_acquire);
    if (t != kUnknown && (r.sink.messages >= t || now - progress >= kIdleEnd)) break;
    if (now - progress >= kStuck) {
      r.error = "nothing received for 5000 ms";
      return;
    }
  }
  if (warmup.count() == 0) open = first;  // latency: from the first to the last delivery
  if (open == Clock::time_point{} || last <= open) {
    if (r.sink.messages > 0 && warmup.count() > 0) r.error = "run shorter than its warm-up";
    return;
  }
  r.seconds = std::chrono::duration<double>(last - open).count();
  r.in_window = at_last - at_open;
  r.frames_in_window = frames_at_last - frames_at_open;
}

// One-way: `row.fan` receivers, each in its own thread and context; the sender in this thread.
Figure run_oneway(const Config& c, const Row& row, const Side& side) {
  const auto fan = static_cast<std::size_t>(row.fan);
  const bool latency = row.shape != Shape::kThroughput;
  Figure f;
  std::unique_ptr<Device> device = start_device(side.via);
  Keys keys = side.curve ? curve_keys() : Keys{};
  std::atomic<std::uint64_t> total{kUnknown};
  std::atomic<int> joined{0};
  std::vector<Received> got(fan);
  std::vector<std::promise<std::string>> endpoints(fan);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < fan; ++i) {
    threads.emplace_back([&, i] {
      zmq::context_t ctx(1);
      try {
        std::unique_ptr<In> in = make_in(side, ctx, keys.server);
        if (device) in->connect(device->down);
        endpoints[i].set_value(device ? device->up : in->bind());
        got[i].sink.stride = row.shape == Shape::kSaturation ? 16 : latency ? 1 : 0;
        receive(*in, got[i], latency ? milliseconds(0) : c.warmup, total, joined);
      } catch (const std::exception& e) {
        got[i].error = e.what();
        try {
          endpoints[i].set_exception(std::current_exception());
        } catch (const std::future_error&) {  // already set: the failure came later
        }
      }
    });
  }
  {
    zmq::context_t ctx(1);
    std::uint64_t n = 0;
    try {
      std::unique_ptr<Out> out = make_out(side, ctx, keys.client);
      for (std::size_t i = 0; i < fan; ++i) {
        std::string ep = endpoints[i].get_future().get();
        if (!device || i == 0) out->connect(ep);
      }
      // Every receiver joins (connections and subscriptions are up) before anything is measured.
      std::vector<std::byte> warm = payload(row.size, kWarmup),
                             m = payload(row.size, std::byte{'m'});
      for (Clock::time_point give_up = Clock::now() + kStuck; joined.load() < row.fan;) {
        if (Clock::now() > give_up) throw std::runtime_error("receivers did not join in 5000 ms");
        out->send(warm);
        out->flush();
        std::this_thread::sleep_for(milliseconds(1));
      }
      auto stamp = [&] {
        std::uint64_t ns = envelope::unix_now_ns();
        std::memcpy(m.data() + kStampAt, &ns, sizeof ns);
      };
      Clock::time_point start = Clock::now();
      if (row.shape == Shape::kPaced) {
        auto interval = std::chrono::nanoseconds(1'000'000'000LL / c.latency_rate);
        for (; n < static_cast<std::uint64_t>(c.latency_count); ++n) {
          Clock::time_point due = start + n * interval;
          for (Clock::time_point now = Clock::now(); now < due; now = Clock::now()) {
            std::optional<Clock::time_point> d = out->pump();  // the end's own timers meanwhile
            std::this_thread::sleep_until(d ? std::min(*d, due) : due);
          }
          stamp();
          out->send(m);
        }
      } else {
        Clock::time_point end = start + (latency ? c.saturation : c.warmup + c.duration);
        for (;; ++n) {
          if ((n & 63) == 0 && Clock::now() >= end) break;
          if (latency) stamp();
          out->send(m);
        }
      }
      out->flush();
    } catch (const std::exception& e) {
      f.error = e.what();
      n = 0;
    }
    total.store(n, std::memory_order_release);
    for (std::thread& t : threads) t.join();  // before the sender's context closes
  }
  for (Received& r : got) {
    if (f.error.empty() && !r.error.empty()) f.error = r.error;
    std::uint64_t sent = total.load();
    if (r.sink.messages < sent) f.lost = std::max(f.lost, sent - r.sink.messages);
  }
  if (latency) {
    std::vector<double>& us = got[0].sink.us;
    std::sort(us.begin(), us.end());
    f.value = percentile(us, 0.5);
    f.p99 = percentile(us, 0.99);
    f.p999 = percentile(us, 0.999);
    return f;
  }
  f.value = -1;
  for (const Received& r : got) {  // the slowest receiver: the rate every one kept up with
    double rate = r.seconds > 0 ? static_cast<double>(r.in_window) / r.seconds : 0;
    f.value = f.value < 0 ? rate : std::min(f.value, rate);
  }
  const Received& r0 = got[0];
  if (r0.frames_in_window > 0) {
    f.per_frame = static_cast<double>(r0.in_window) / static_cast<double>(r0.frames_in_window);
  }
  return f;
}

// Request/reply: `row.fan` requests kept in flight; the server answers each at once.
Figure run_rpc(const Config& c, const Row& row, const Side& side) {
  Figure f;
  std::unique_ptr<Device> device = start_device(side.via);
  const bool raw = side.link == Link::kRawRpc;
  std::atomic<bool> stop{false};
  std::promise<std::string> endpoint;
  std::string server_error;
  std::thread server_thread([&] {
    zmq::context_t ctx(1);
    try {
      std::unique_ptr<Server> s;
      if (raw)
        s = std::make_unique<RawServer>(ctx);
      else
        s = std::make_unique<ZkitServer>(ctx);
      if (device) s->connect(device->down);
      endpoint.set_value(device ? device->up : s->bind());
      while (!stop.load(std::memory_order_relaxed)) s->serve();
    } catch (const std::exception& e) {
      server_error = e.what();
      try {
        endpoint.set_exception(std::current_exception());
      } catch (const std::future_error&) {
      }
    }
  });
  {
    zmq::context_t ctx(1);
    try {
      std::unique_ptr<Client> client;
      if (raw)
        client = std::make_unique<RawClient>(ctx);
      else
        client = std::make_unique<ZkitClient>(ctx);
      client->connect(endpoint.get_future().get());
      std::vector<std::byte> m = payload(row.size, std::byte{'m'});
      Clock::time_point now = Clock::now(), open = now + c.warmup, end = open + c.duration;
      Clock::time_point progress = now, opened{}, closed{};
      std::uint64_t done = 0, done_at_open = 0;
      std::int64_t outstanding = 0;
      while ((now = Clock::now()) < end) {
        for (; outstanding < row.fan; ++outstanding) client->send(m);
        std::size_t n = client->poll();
        now = Clock::now();
        if (n == 0) {
          if (now - progress > kStuck) throw std::runtime_error("no reply for 5000 ms");
          continue;
        }
        progress = closed = now;
        outstanding -= static_cast<std::int64_t>(n);
        done += n;
        if (opened == Clock::time_point{} && now >= open) {
          opened = now;
          done_at_open = done;
        }
      }
      for (auto give_up = Clock::now() + milliseconds(1000);
           outstanding > 0 && Clock::now() < give_up;) {
        outstanding -= static_cast<std::int64_t>(client->poll());  // leave the server idle
      }
      if (opened == Clock::time_point{} || closed <= opened) throw std::runtime_error("no window");
      f.value = static_cast<double>(done - done_at_open) /
                std::chrono::duration<double>(closed - opened).count();
    } catch (const std::exception& e) {
      f.error = e.what();
    }
    stop.store(true);
    server_thread.join();
  }
  if (f.error.empty()) f.error = server_error;
  return f;
}

Figure run(const Config& c, const Row& row, const Side& side) {
  try {
    return row.shape == Shape::kRpc ? run_rpc(c, row, side) : run_oneway(c, row, side);
  } catch (const std::exception& e) {  // a refused option, a device that did not start
    Figure f;
    f.error = e.what();
    return f;
  }
}

// ---- reporting ----------------------------------------------------------------------------------

std::string si(double v) {
  char buf[32];
  if (v >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2f M", v / 1e6);
  } else if (v >= 1e3) {
    std::snprintf(buf, sizeof buf, "%.1f k", v / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f", v);
  }
  return buf;
}

std::string label(const Row& r) {
  std::string size =
      r.size % 1024 == 0 ? std::to_string(r.size / 1024) + " KiB" : std::to_string(r.size) + " B";
  return r.label.empty() ? size : r.label + ", " + size;
}

// Median by value of the runs without an error (the first error when every run failed).
Figure median(std::vector<Figure> runs) {
  std::vector<Figure> good;
  for (Figure& f : runs) {
    if (f.error.empty()) good.push_back(f);
  }
  if (good.empty()) return runs.front();
  std::sort(good.begin(), good.end(), [](auto& a, auto& b) { return a.value < b.value; });
  return good[good.size() / 2];
}

Json side_json(const Side& s, const Figure& med, const std::vector<Figure>& runs) {
  Json j = {{"name", s.name}, {"value", med.value}};
  if (med.p99 > 0) {
    j["p99_us"] = med.p99;
    j["p999_us"] = med.p999;
  }
  if (med.per_frame > 1) j["msgs_per_frame"] = med.per_frame;
  if (med.lost > 0) j["lost"] = med.lost;
  Json a = Json::array();
  for (const Figure& f : runs) a.push_back(f.error.empty() ? Json(f.value) : Json(f.error));
  j["runs"] = a;
  return j;
}

std::string cell(const Side& s, const Figure& f, Shape shape) {
  if (!f.error.empty()) return std::string(s.name) + " FAILED: " + f.error;
  char buf[96];
  if (shape == Shape::kPaced || shape == Shape::kSaturation) {
    std::snprintf(buf, sizeof buf, "%s %.1f/%.1f/%.1f", s.name, f.value, f.p99, f.p999);
  } else {
    std::snprintf(buf, sizeof buf, "%s %s", s.name, si(f.value).c_str());
  }
  std::string text = buf;
  if (f.per_frame > 1) text += " (" + std::to_string(std::lround(f.per_frame)) + "/frame)";
  if (f.lost > 0) text += " (lost " + std::to_string(f.lost) + ")";
  return text;
}

Json machine() {
  utsname u{};
  uname(&u);
  int major = 0, minor = 0, patch = 0;
  zmq_version(&major, &minor, &patch);
  std::ifstream load("/proc/loadavg");
  std::string one, five;
  load >> one >> five;
  std::string commit = "unknown";
  // -dirty: a tracked file differs from the commit (not counting bench/results/, which runs
  // rewrite)
  if (FILE* p =
          popen("cd '" ZKIT_SOURCE_DIR "' && git rev-parse --short HEAD && git status --porcelain "
                "--untracked-files=no -- . ':!bench/results' 2>/dev/null",
                "r")) {
    char buf[64] = {};
    if (std::fgets(buf, sizeof buf, p)) commit = std::string(buf, std::strcspn(buf, "\n"));
    if (std::fgets(buf, sizeof buf, p)) commit += "-dirty";
    pclose(p);
  }
  char date[32];
  std::time_t t = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return {
      {"date", date},
      {"git_commit", commit},
      {"nproc", std::thread::hardware_concurrency()},
      {"kernel", std::string(u.sysname) + " " + u.release},
      {"libzmq", std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch)},
      {"compiler", __VERSION__},
      {"build_type", ZKIT_BUILD_TYPE},
      {"load_average_at_start", one + " " + five}};
}

int run_all(const Config& c, const std::vector<Row>& table, const std::string& sections,
            const std::string& json_path) {
  Json doc = {{"benchmark", "throughput"},
              {"machine", machine()},
              {"config",
               {{"transport", "tcp://127.0.0.1, one context per end"},
                {"duration_ms", c.duration.count()},
                {"warmup_ms", c.warmup.count()},
                {"repeats", c.repeats},
                {"latency_count", c.latency_count},
                {"latency_rate", c.latency_rate},
                {"saturation_ms", c.saturation.count()},
                {"quick", c.quick}}},
              {"rows", Json::array()}};
  std::printf("throughput_bench: %s, %d ms runs after %d ms warm-up, median of %d, commit %s\n",
              c.quick ? "quick run (figures only, no verdicts)" : "full run",
              static_cast<int>(c.duration.count()), static_cast<int>(c.warmup.count()), c.repeats,
              doc["machine"]["git_commit"].get<std::string>().c_str());
  std::printf("latency cells: p50/p99/p99.9 us; ratio: zkit / baseline\n");
  bool ok = true;
  std::string section;
  std::vector<std::string> verdicts;
  auto started = Clock::now();
  for (const Row& row : table) {
    if (sections != "all" &&
        ("," + sections + ",").find("," + row.section + ",") == std::string::npos) {
      continue;
    }
    if (row.section != section)
      std::printf("\n== %s (%s)\n", (section = row.section).c_str(), unit(row.shape));
    std::vector<Figure> base, zkit;
    for (int i = 0; i < c.repeats; ++i) {  // interleaved, so drift hits both alike
      base.push_back(run(c, row, row.base));
      zkit.push_back(run(c, row, row.zkit));
    }
    Figure b = median(base), z = median(zkit);
    bool failed = !b.error.empty() || !z.error.empty();
    ok &= !failed;
    double ratio = b.value > 0 ? z.value / b.value : 0;
    std::printf("%-24s %-44s %-44s %6.2fx\n", label(row).c_str(),
                cell(row.base, b, row.shape).c_str(), cell(row.zkit, z, row.shape).c_str(), ratio);
    Json j = {{"section", row.section},
              {"label", label(row)},
              {"size", row.size},
              {"unit", unit(row.shape)},
              {"baseline", side_json(row.base, b, base)},
              {"zkit", side_json(row.zkit, z, zkit)},
              {"ratio", ratio}};
    if (row.goal.ratio > 0) {
      char target_text[16];
      std::snprintf(target_text, sizeof target_text, "%s %.2fx",
                    row.goal.at_least ? ">=" : "<=", row.goal.ratio);
      std::string target = target_text;
      j["target"] = target;
      if (!c.quick) {
        bool met =
            !failed && (row.goal.at_least ? ratio >= row.goal.ratio : ratio <= row.goal.ratio);
        j["met"] = met;
        char line[160];
        std::snprintf(line, sizeof line, "%s %s, %s: %.3fx (target %s): %s", row.section.c_str(),
                      label(row).c_str(), row.zkit.name, ratio, target.c_str(),
                      met ? "met" : "NOT met");
        verdicts.push_back(line);
      }
    }
    doc["rows"].push_back(j);
  }
  if (!verdicts.empty()) std::printf("\ntargets\n");
  for (const std::string& v : verdicts) std::printf("  %s\n", v.c_str());
  doc["seconds"] = std::chrono::duration<double>(Clock::now() - started).count();
  std::filesystem::path path(json_path);
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << doc.dump(2) << "\n";
  std::printf("\n%.0f s; figures written to %s\n", doc["seconds"].get<double>(), json_path.c_str());
  if (!ok) std::fprintf(stderr, "throughput_bench: some runs failed (see FAILED above); exit 1\n");
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace zkit::bench

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  using namespace zkit::bench;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  Config c;
  int duration = 200, warmup = 80, saturation = 500;
  std::string sections = "pushpull,latency,patterns,pubsub,rpc,reliable,proxies,curve";
  std::string json = ZKIT_BINARY_DIR "/bench/results/throughput.json";
  po::options_description flags(
      "throughput_bench: zkit links beside raw libzmq in the same run (about 80 s; --quick 10 s)\n"
      "Options");
  flags.add_options()("help,h", "this text")(
      "quick", "figures only, no verdicts: 1 repeat, 60 ms runs, 300 latency messages")(
      "repeats", po::value(&c.repeats)->default_value(3), "runs per row and side (median shown)")(
      "duration-ms", po::value(&duration)->default_value(200), "measured time per run")(
      "warmup-ms", po::value(&warmup)->default_value(80), "warm-up before the measurement")(
      "latency-count", po::value(&c.latency_count)->default_value(2000), "messages per paced run")(
      "latency-rate", po::value(&c.latency_rate)->default_value(1000), "msg/s of the paced run")(
      "saturation-ms", po::value(&saturation)->default_value(500), "length of a saturation run")(
      "sections", po::value(&sections)->default_value(sections), "comma-separated, or all")(
      "tune", "add the BatcherOptions variations (section tune)")(
      "json", po::value(&json)->default_value(json), "where to write the figures");
  try {
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, flags), vm);
    po::notify(vm);
    if (vm.count("help")) {
      std::cout << flags << "\n";
      return 0;
    }
    if ((c.quick = vm.count("quick") > 0)) {
      if (vm["repeats"].defaulted()) c.repeats = 1;
      if (vm["duration-ms"].defaulted()) duration = 60;
      if (vm["warmup-ms"].defaulted()) warmup = 20;
      if (vm["latency-count"].defaulted()) c.latency_count = 300;
      if (vm["saturation-ms"].defaulted()) saturation = 150;
    }
    if (vm.count("tune")) sections += ",tune";
    if (c.repeats < 1 || duration < 1 || warmup < 1 || c.latency_count < 1 || c.latency_rate < 1 ||
        saturation < 1) {
      throw std::invalid_argument(
          "--repeats, --duration-ms, --warmup-ms, --latency-count, "
          "--latency-rate and --saturation-ms must be positive");
    }
  } catch (const std::exception& e) {
    std::cerr << "throughput_bench: " << e.what() << "\n";
    return 2;
  }
  c.duration = milliseconds(duration);
  c.warmup = milliseconds(warmup);
  c.saturation = milliseconds(saturation);
  return run_all(c, rows(sections.find("tune") != std::string::npos), sections, json);
}
