// Typed-socket rows (issue 3): Pusher/Puller, Publisher/Subscriber fan-out, Client/Server
// request/reply and the reliable link, each beside raw libzmq in the same run.
#include <cstdio>

#include "endpoints.hpp"
#include "links.hpp"
#include "pattern_links.hpp"
#include "sections.hpp"
#include "zkit/pipeline.hpp"
#include "zkit/pubsub.hpp"
#include "zkit/reliable.hpp"
#include "zkit/rpc.hpp"

namespace zkit::bench {
namespace {

using std::chrono::milliseconds;
constexpr milliseconds kSlice{kReceiveSliceMs};
constexpr milliseconds kIdleEnd{500};  // total known and nothing for this long: the rest is lost

PatternOptions pattern_options(bool raw) {
  PatternOptions o;
  o.raw = raw;
  o.send_timeout = milliseconds(kReceiveTimeoutMs);  // back-pressure, bounded
  o.socket.linger = milliseconds(kSenderLingerMs);
  return o;
}

// Receivers linger 0: a Subscriber's unsubscription to a publisher already gone would otherwise
// hold its context's termination for the whole linger.
PatternOptions receiver_options(bool raw) {
  PatternOptions o = pattern_options(raw);
  o.socket.linger = milliseconds(0);
  return o;
}

// ---- Pusher / Puller --------------------------------------------------------------------------

class PusherOut {
 public:
  PusherOut(zmq::context_t& ctx, const std::string& endpoint, bool raw)
      : p_(ctx, pattern_options(raw)) {
    p_.connect(endpoint);
  }
  void send(Bytes m) {
    if (!p_.send(m)) throw SendTimeout();
  }
  std::optional<Clock::time_point> deadline() const { return p_.next_deadline(); }
  void poll() { p_.pump(); }
  void finish() {
    if (!p_.flush()) throw SendTimeout();
  }

 private:
  Pusher p_;
};

// Receives through a typed socket's poll_once(handler, slice); Socket is Puller or Subscriber.
template <class Socket>
class PolledIn {
 public:
  PolledIn(zmq::context_t& ctx, bool raw) : s_(ctx, receiver_options(raw)) {
    endpoint_ = s_.bind("tcp://127.0.0.1:*");
  }
  std::string endpoint() const { return endpoint_; }
  std::uint64_t created_ns() const { return 0; }  // Message does not carry it
  template <class F>
  Next next(F&& on_message, const std::atomic<std::uint64_t>& total, std::uint64_t delivered) {
    MessageHandler handler = [&on_message](const Message& m) { on_message(m.data); };
    for (int waited = 0; waited < kReceiveTimeoutMs; waited += kReceiveSliceMs) {
      if (s_.poll_once(handler, kSlice) > 0) return Next::kFrame;
      if (all_delivered(total, delivered)) return Next::kDone;
    }
    return Next::kTimeout;
  }

 private:
  Socket s_;
  std::string endpoint_;
};
using PullerIn = PolledIn<Puller>;

// ---- the reliable link ------------------------------------------------------------------------

class ReliableOut {
 public:
  ReliableOut(zmq::context_t& ctx, const std::string& endpoint, NoArgs) : s_(ctx, options()) {
    s_.connect(endpoint);
  }
  void send(Bytes m) {
    if (!s_.send(m, milliseconds(kReceiveTimeoutMs))) throw SendTimeout();
  }
  std::optional<Clock::time_point> deadline() const { return std::nullopt; }
  void poll() { s_.poll_once(milliseconds(0)); }
  void finish() { (void)s_.wait_all_acked(milliseconds(kReceiveTimeoutMs)); }

 private:
  static ReliableSenderOptions options() {
    ReliableSenderOptions o;
    o.socket.linger = milliseconds(kSenderLingerMs);
    return o;
  }
  ReliableSender s_;
};

class ReliableIn {
 public:
  ReliableIn(zmq::context_t& ctx, NoArgs) : r_(ctx, options()) {
    endpoint_ = r_.bind("tcp://127.0.0.1:*");
  }
  static ReliableReceiverOptions options() {
    ReliableReceiverOptions o;
    o.socket.linger = milliseconds(0);
    return o;
  }
  std::string endpoint() const { return endpoint_; }
  std::uint64_t created_ns() const { return created_ns_; }
  template <class F>
  Next next(F&& on_message, const std::atomic<std::uint64_t>& total, std::uint64_t delivered) {
    ReliableReceiver::Handler handler = [&](Delivery& d) {
      created_ns_ = d.batch.header().created_ns;
      for (Bytes record : d.batch) on_message(record);
    };
    for (int waited = 0; waited < kReceiveTimeoutMs; waited += kReceiveSliceMs) {
      if (r_.poll_once(handler, kSlice) > 0) return Next::kFrame;
      if (all_delivered(total, delivered)) return Next::kDone;
    }
    return Next::kTimeout;
  }

 private:
  ReliableReceiver r_;
  std::string endpoint_;
  std::uint64_t created_ns_ = 0;
};

// ---- Publisher / Subscriber fan-out -----------------------------------------------------------

// Topics: 'w' (warm-up, until every subscriber has joined) and 'm' (measured).
class RawPub {
 public:
  RawPub(zmq::context_t& ctx, const std::string& connect_to) : s_(ctx, zmq::socket_type::pub) {
    s_.set(zmq::sockopt::xpub_nodrop, 1);  // block at the high-water mark instead of dropping
    s_.set(zmq::sockopt::sndtimeo, kReceiveTimeoutMs);
    s_.set(zmq::sockopt::linger, kSenderLingerMs);
    if (connect_to.empty()) {
      s_.bind("tcp://127.0.0.1:*");
    } else {
      s_.connect(connect_to);
    }
  }
  std::string endpoint() const { return s_.get(zmq::sockopt::last_endpoint); }
  // One frame per message; its first byte is the topic.
  void send(char topic, std::vector<std::byte>& payload) {
    payload[0] = static_cast<std::byte>(topic);
    if (!s_.send(zmq::const_buffer(payload.data(), payload.size()), zmq::send_flags::none)) {
      throw SendTimeout();
    }
  }
  void flush() {}

 private:
  zmq::socket_t s_;
};

class RawSub {
 public:
  RawSub(zmq::context_t& ctx, const std::string& endpoint) : s_(ctx, zmq::socket_type::sub) {
    s_.set(zmq::sockopt::rcvtimeo, kReceiveSliceMs);
    s_.set(zmq::sockopt::linger, 0);
    s_.set(zmq::sockopt::subscribe, "");
    s_.connect(endpoint);
  }
  // Handles one frame if one arrives within a slice; false otherwise.
  template <class F>
  bool next(F&& on_message) {
    if (!s_.recv(frame_)) return false;
    Bytes m(static_cast<const std::byte*>(frame_.data()), frame_.size());
    on_message(m.empty() ? '\0' : static_cast<char>(m[0]), m);
    return true;
  }

 private:
  zmq::socket_t s_;
  zmq::message_t frame_;
};

class TypedPub {
 public:
  TypedPub(zmq::context_t& ctx, const std::string& connect_to) : p_(ctx, pattern_options(false)) {
    endpoint_ = connect_to.empty() ? p_.bind("tcp://127.0.0.1:*") : p_.connect(connect_to);
  }
  std::string endpoint() const { return endpoint_; }
  void send(char topic, std::vector<std::byte>& payload) {
    (void)p_.send(std::string_view(&topic, 1), Bytes(payload));  // drops are counted: dropped()
  }
  void flush() { p_.flush(); }
  std::uint64_t dropped() const { return p_.stats().dropped_messages; }

 private:
  Publisher p_;
  std::string endpoint_;
};

class TypedSub {
 public:
  TypedSub(zmq::context_t& ctx, const std::string& endpoint) : s_(ctx, receiver_options(false)) {
    s_.subscribe("");
    s_.connect(endpoint);
  }
  template <class F>
  bool next(F&& on_message) {
    MessageHandler handler = [&on_message](const Message& m) {
      on_message(m.topic.empty() ? '\0' : m.topic[0], m.data);
    };
    return s_.poll_once(handler, kSlice) > 0;
  }

 private:
  Subscriber s_;
};

template <class Pub, class Sub>
FanOut fan_out(const Config& config, std::size_t size, int subscribers,
               const MiddleFactory* middle) {
  FanOut result;
  Middle device;
  if (middle) device = (*middle)();
  zmq::context_t pub_ctx(1);
  std::vector<std::unique_ptr<zmq::context_t>> sub_ctx;
  for (int i = 0; i < subscribers; ++i) sub_ctx.push_back(std::make_unique<zmq::context_t>(1));
  std::atomic<std::uint64_t> total{Window::kUnknown};
  std::atomic<int> joined{0};
  std::promise<std::string> endpoint;
  std::future<std::string> endpoint_ready = endpoint.get_future();
  std::string pub_error;

  std::thread publisher([&] {
    try {
      Pub pub(pub_ctx, middle ? device.upstream : std::string());
      endpoint.set_value(middle ? device.downstream : pub.endpoint());
      std::vector<std::byte> payload = make_payload(std::max<std::size_t>(size, 1));
      // Slow joiners: publish warm-up messages until every subscriber has seen one.
      Clock::time_point give_up = Clock::now() + milliseconds(kReceiveTimeoutMs);
      while (joined.load() < subscribers && Clock::now() < give_up) {
        pub.send('w', payload);
        pub.flush();
        std::this_thread::sleep_for(milliseconds(1));
      }
      if (joined.load() < subscribers) {
        pub_error = "subscribers did not join within " + std::to_string(kReceiveTimeoutMs) + " ms";
        total.store(0);
        return;
      }
      Clock::time_point end = Clock::now() + config.warmup + config.duration;
      std::uint64_t n = 0;
      for (;; ++n) {
        if ((n & 63) == 0 && Clock::now() >= end) break;
        pub.send('m', payload);
      }
      pub.flush();
      total.store(n, std::memory_order_release);
    } catch (const SendTimeout&) {
      pub_error = "publisher blocked for " + std::to_string(kReceiveTimeoutMs) + " ms";
      total.store(0);
    } catch (const std::exception& e) {
      pub_error = e.what();
      try {
        endpoint.set_exception(std::current_exception());
      } catch (const std::future_error&) {
      }
      total.store(0);
    }
  });

  std::string ep;
  try {
    ep = endpoint_ready.get();
  } catch (const std::exception& e) {
    publisher.join();
    result.error = e.what();
    return result;
  }
  result.subscribers.resize(static_cast<std::size_t>(subscribers));
  std::vector<std::uint64_t> got(static_cast<std::size_t>(subscribers), 0);
  std::vector<std::thread> subs;
  for (int i = 0; i < subscribers; ++i) {
    subs.emplace_back([&, i] {
      auto idx = static_cast<std::size_t>(i);
      Measured& out = result.subscribers[idx];
      try {
        Sub sub(*sub_ctx[idx], ep);
        bool seen = false;
        Window window(config.warmup, total);
        std::uint64_t messages = 0, bytes = 0, frames = 0, checksum = 0;
        Clock::time_point last_progress = Clock::now();
        for (;;) {
          std::uint64_t before = messages;
          bool frame = sub.next([&](char topic, Bytes m) {
            if (topic != 'm') {
              if (!seen) {
                seen = true;
                joined.fetch_add(1);
              }
              return;
            }
            ++messages;
            bytes += m.size();
            checksum += static_cast<std::uint8_t>(m[m.size() - 1]);
          });
          Clock::time_point now = Clock::now();
          if (frame && messages > before) {
            last_progress = now;
            if (window.delivered(messages, bytes, ++frames)) break;
            continue;
          }
          std::uint64_t t = total.load(std::memory_order_acquire);
          if (t != Window::kUnknown && (messages >= t || now - last_progress >= kIdleEnd)) break;
          if (now - last_progress >= milliseconds(kReceiveTimeoutMs)) {
            out.error = "subscriber " + std::to_string(i) + ": nothing for " +
                        std::to_string(kReceiveTimeoutMs) + " ms";
            return;
          }
        }
        out = window.result(checksum);
        got[idx] = messages;
      } catch (const std::exception& e) {
        out.error = e.what();
      }
    });
  }
  for (std::thread& t : subs) t.join();
  publisher.join();
  std::uint64_t sent = total.load();
  if (!pub_error.empty()) result.error = pub_error;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (result.error.empty() && !result.subscribers[i].error.empty()) {
      result.error = result.subscribers[i].error;
    }
    if (sent != Window::kUnknown && got[i] < sent) result.lost = std::max(result.lost, sent - got[i]);
  }
  return result;
}

// ---- Client / Server --------------------------------------------------------------------------

class RawServer {
 public:
  RawServer(zmq::context_t& ctx, const std::string& connect_to) : s_(ctx, zmq::socket_type::router) {
    s_.set(zmq::sockopt::rcvtimeo, kReceiveSliceMs);
    s_.set(zmq::sockopt::linger, 0);
    if (connect_to.empty()) {
      s_.bind("tcp://127.0.0.1:*");
    } else {
      s_.connect(connect_to);
    }
  }
  std::string endpoint() const { return s_.get(zmq::sockopt::last_endpoint); }
  // Answers every request [identity...][payload] with the same frames.
  void serve_once() {
    bool more = true;
    std::vector<zmq::message_t> parts;
    if (!s_.recv(part_)) return;
    parts.push_back(std::move(part_));
    while (more) {
      more = parts.back().more();
      if (more) {
        parts.emplace_back();
        (void)s_.recv(parts.back());
      }
    }
    for (std::size_t i = 0; i < parts.size(); ++i) {
      (void)s_.send(parts[i], i + 1 < parts.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }

 private:
  zmq::socket_t s_;
  zmq::message_t part_;
};

class TypedServer {
 public:
  TypedServer(zmq::context_t& ctx, const std::string& connect_to) : s_(ctx, pattern_options(false)) {
    endpoint_ = connect_to.empty() ? s_.bind("tcp://127.0.0.1:*") : s_.connect(connect_to);
    handler_ = [](const Message& m, Responder r) { r.reply(m.data); };
  }
  std::string endpoint() const { return endpoint_; }
  void serve_once() { s_.poll_once(handler_, kSlice); }

 private:
  Server s_;
  std::string endpoint_;
  RequestHandler handler_;
};

class RawClient {
 public:
  RawClient(zmq::context_t& ctx, const std::string& endpoint) : s_(ctx, zmq::socket_type::dealer) {
    s_.set(zmq::sockopt::linger, 0);
    s_.set(zmq::sockopt::sndtimeo, kReceiveTimeoutMs);
    s_.connect(endpoint);
  }
  void send(Bytes m) {
    if (!s_.send(zmq::const_buffer(m.data(), m.size()), zmq::send_flags::none)) throw SendTimeout();
  }
  // Waits up to a slice for replies; returns how many arrived.
  std::size_t poll() {
    std::size_t n = 0;
    zmq::pollitem_t item{s_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, kSlice) == 0) return 0;
    while (s_.recv(reply_, zmq::recv_flags::dontwait)) ++n;
    return n;
  }

 private:
  zmq::socket_t s_;
  zmq::message_t reply_;
};

class TypedClient {
 public:
  TypedClient(zmq::context_t& ctx, const std::string& endpoint) : c_(ctx, pattern_options(false)) {
    c_.connect(endpoint);
    on_reply_ = [this](const Reply& r) {
      if (r.ok()) ++replies_;
    };
  }
  void send(Bytes m) { c_.send(m, on_reply_, milliseconds(kReceiveTimeoutMs)); }
  std::size_t poll() {
    std::uint64_t before = replies_;
    c_.poll_once(kSlice);
    return static_cast<std::size_t>(replies_ - before);
  }

 private:
  Client c_;
  ReplyHandler on_reply_;
  std::uint64_t replies_ = 0;
};

template <class ClientT, class ServerT>
Rpc request_reply(const Config& config, std::size_t size, int in_flight,
                  const MiddleFactory* middle) {
  Rpc result;
  Middle device;
  if (middle) device = (*middle)();
  Contexts contexts(config.shared_context);
  std::atomic<bool> stop{false};
  std::promise<std::string> endpoint;
  std::future<std::string> endpoint_ready = endpoint.get_future();
  std::string server_error;
  std::thread server([&] {
    try {
      ServerT s(contexts.receiver(), middle ? device.downstream : std::string());
      endpoint.set_value(middle ? device.upstream : s.endpoint());
      while (!stop.load(std::memory_order_relaxed)) s.serve_once();
    } catch (const std::exception& e) {
      server_error = e.what();
      try {
        endpoint.set_exception(std::current_exception());
      } catch (const std::future_error&) {
      }
    }
  });
  try {
    ClientT client(contexts.sender(), endpoint_ready.get());
    std::vector<std::byte> payload = make_payload(size);
    Clock::time_point open = Clock::now() + config.warmup;
    Clock::time_point end = open + config.duration;
    Clock::time_point last_reply = Clock::now();
    bool opened = false;
    std::uint64_t done = 0, done_at_open = 0;
    Clock::time_point opened_at{}, closed_at{};
    std::int64_t outstanding = 0;
    for (;;) {
      Clock::time_point now = Clock::now();
      if (now >= end) break;
      while (outstanding < in_flight) {
        client.send(Bytes(payload));
        ++outstanding;
      }
      std::size_t n = client.poll();
      now = Clock::now();
      if (n == 0) {
        if (now - last_reply > milliseconds(kReceiveTimeoutMs)) {
          result.error = "no reply for " + std::to_string(kReceiveTimeoutMs) + " ms";
          break;
        }
        continue;
      }
      last_reply = now;
      outstanding -= static_cast<std::int64_t>(n);
      done += n;
      if (!opened && now >= open) {
        opened = true;
        opened_at = now;
        done_at_open = done;
      }
      closed_at = now;
    }
    // Collect what is still outstanding so the server is idle when it stops.
    for (Clock::time_point give_up = Clock::now() + milliseconds(1000);
         outstanding > 0 && Clock::now() < give_up;) {
      outstanding -= static_cast<std::int64_t>(client.poll());
    }
    if (opened) {
      result.completed = done - done_at_open;
      result.seconds = std::chrono::duration<double>(closed_at - opened_at).count();
    } else if (result.error.empty()) {
      result.error = "measurement window never opened";
    }
  } catch (const std::exception& e) {
    result.error = e.what();
  }
  stop.store(true);
  server.join();
  if (result.error.empty() && !server_error.empty()) result.error = server_error;
  return result;
}

}  // namespace

double FanOut::slowest() const {
  double r = 0;
  bool first = true;
  for (const Measured& m : subscribers) {
    if (first || m.msgs_per_s() < r) r = m.msgs_per_s();
    first = false;
  }
  return r;
}

double FanOut::aggregate() const {
  double r = 0;
  for (const Measured& m : subscribers) r += m.msgs_per_s();
  return r;
}

Measured pushpull_typed(const Config& config, std::size_t size, bool raw_mode, const Via* via) {
  return measure_throughput<PullerIn, PusherOut>(config, size, raw_mode, raw_mode, via);
}

FanOut pubsub(const Config& config, std::size_t size, int subscribers, bool batched,
              const MiddleFactory* middle) {
  return batched ? fan_out<TypedPub, TypedSub>(config, size, subscribers, middle)
                 : fan_out<RawPub, RawSub>(config, size, subscribers, middle);
}

Rpc rpc(const Config& config, std::size_t size, int in_flight, bool batched,
        const MiddleFactory* middle) {
  return batched ? request_reply<TypedClient, TypedServer>(config, size, in_flight, middle)
                 : request_reply<RawClient, RawServer>(config, size, in_flight, middle);
}

Measured reliable_link(const Config& config, std::size_t size) {
  return measure_throughput<ReliableIn, ReliableOut>(config, size, NoArgs{}, NoArgs{});
}

}  // namespace zkit::bench

// ---- the section ----------------------------------------------------------------------------------

namespace zkit::bench {
namespace {

template <class T, class Rate>
T median_by(std::vector<T> runs, Rate rate) {
  std::vector<T> good;
  for (T& r : runs) {
    if (r.error.empty()) good.push_back(std::move(r));
  }
  if (good.empty()) return runs.empty() ? T{} : runs.front();
  std::sort(good.begin(), good.end(), [&](const T& a, const T& b) { return rate(a) < rate(b); });
  return good[good.size() / 2];
}

std::string errors_of(const std::vector<std::string>& errors) {
  std::string s;
  for (const std::string& e : errors) {
    if (!e.empty()) s += (s.empty() ? "" : "; ") + e;
  }
  return s;
}

std::string size_label(std::size_t n) {
  return n % 1024 == 0 ? std::to_string(n / 1024) + " KiB" : std::to_string(n) + " B";
}

bool pushpull_rows(const Config& config, Report& report) {
  std::printf("Pusher/Puller (zkit::patterns) over tcp loopback vs raw libzmq PUSH/PULL, msgs/s\n");
  std::printf("%-7s %14s %16s %16s %8s\n", "size", "raw libzmq", "Pusher raw mode",
              "Pusher batched", "ratio");
  Json rows = Json::array();
  bool ok = true;
  for (std::size_t size : config.sizes) {
    std::vector<Measured> raw, typed_raw, typed;
    for (int r = 0; r < config.repeats; ++r) {
      raw.push_back(throughput_raw(config, size));
      typed_raw.push_back(pushpull_typed(config, size, true));
      typed.push_back(pushpull_typed(config, size, false));
    }
    Measured a = median(raw), b = median(typed_raw), c = median(typed);
    std::string err = errors_of({raw.front().error, typed_raw.front().error, typed.front().error});
    for (auto* v : {&raw, &typed_raw, &typed}) {
      for (const Measured& m : *v) ok &= m.error.empty();
    }
    double ratio = a.msgs_per_s() > 0 ? c.msgs_per_s() / a.msgs_per_s() : 0;
    std::printf("%-7s %14s %16s %16s %7.1fx %s\n", size_label(size).c_str(),
                si(a.msgs_per_s()).c_str(), si(b.msgs_per_s()).c_str(), si(c.msgs_per_s()).c_str(),
                ratio, err.c_str());
    std::fflush(stdout);
    rows.push_back({{"size", size},
                    {"raw_libzmq_msgs_per_s", a.msgs_per_s()},
                    {"pusher_raw_mode_msgs_per_s", b.msgs_per_s()},
                    {"pusher_batched_msgs_per_s", c.msgs_per_s()},
                    {"pusher_batched_mb_per_s", c.mb_per_s()},
                    {"spread", {{"raw", spread(raw)}, {"raw_mode", spread(typed_raw)},
                                {"batched", spread(typed)}}},
                    {"ratio_batched_over_raw", ratio}});
    if (size == 16) {
      report.targets.push_back({"Pusher/Puller batched / raw libzmq msgs/s at 16 B", ratio, true,
                                5.0, 10.0});
    }
  }
  report.json["patterns"]["pushpull"] = rows;
  std::printf("\n");
  return ok;
}

bool pubsub_rows(const Config& config, Report& report) {
  const std::size_t size = 16;
  std::printf("Publisher/Subscriber fan-out, 16 B, msgs/s each subscriber received (slowest); raw "
              "libzmq PUB (XPUB_NODROP) / SUB\n");
  std::printf("%-12s %14s %14s %8s %12s\n", "subscribers", "raw libzmq", "batched", "ratio",
              "lost raw/bat");
  Json rows = Json::array();
  bool ok = true;
  for (int subs : {1, 4}) {
    std::vector<FanOut> raw, bat;
    for (int r = 0; r < config.repeats; ++r) {
      raw.push_back(pubsub(config, size, subs, false));
      bat.push_back(pubsub(config, size, subs, true));
    }
    auto rate = [](const FanOut& f) { return f.slowest(); };
    FanOut a = median_by(raw, rate), b = median_by(bat, rate);
    ok &= a.error.empty() && b.error.empty();
    double ratio = a.slowest() > 0 ? b.slowest() / a.slowest() : 0;
    std::printf("%-12d %14s %14s %7.1fx %5llu / %-5llu %s\n", subs, si(a.slowest()).c_str(),
                si(b.slowest()).c_str(), ratio, static_cast<unsigned long long>(a.lost),
                static_cast<unsigned long long>(b.lost), errors_of({a.error, b.error}).c_str());
    std::fflush(stdout);
    rows.push_back({{"subscribers", subs},
                    {"size", size},
                    {"raw_slowest_msgs_per_s", a.slowest()},
                    {"raw_aggregate_msgs_per_s", a.aggregate()},
                    {"batched_slowest_msgs_per_s", b.slowest()},
                    {"batched_aggregate_msgs_per_s", b.aggregate()},
                    {"raw_lost", a.lost},
                    {"batched_lost", b.lost},
                    {"ratio", ratio}});
  }
  report.json["patterns"]["pubsub"] = rows;
  std::printf("\n");
  return ok;
}

bool rpc_rows(const Config& config, Report& report) {
  const std::size_t size = 16;
  std::printf("Client/Server request/reply, 16 B, requests/s (server answers at once); raw libzmq "
              "DEALER/ROUTER, a frame per request\n");
  std::printf("%-10s %14s %14s %8s\n", "in flight", "raw libzmq", "batched", "ratio");
  Json rows = Json::array();
  bool ok = true;
  for (int in_flight : {1, 64}) {
    std::vector<Rpc> raw, bat;
    for (int r = 0; r < config.repeats; ++r) {
      raw.push_back(rpc(config, size, in_flight, false));
      bat.push_back(rpc(config, size, in_flight, true));
    }
    auto rate = [](const Rpc& x) { return x.per_s(); };
    Rpc a = median_by(raw, rate), b = median_by(bat, rate);
    ok &= a.error.empty() && b.error.empty();
    double ratio = a.per_s() > 0 ? b.per_s() / a.per_s() : 0;
    std::printf("%-10d %14s %14s %7.2fx %s\n", in_flight, si(a.per_s()).c_str(),
                si(b.per_s()).c_str(), ratio, errors_of({a.error, b.error}).c_str());
    std::fflush(stdout);
    rows.push_back({{"in_flight", in_flight},
                    {"size", size},
                    {"raw_requests_per_s", a.per_s()},
                    {"batched_requests_per_s", b.per_s()},
                    {"ratio", ratio}});
  }
  report.json["patterns"]["rpc"] = rows;
  std::printf("\n");
  return ok;
}

bool reliable_rows(const Config& config, Report& report) {
  std::printf("reliable link (ReliableSender/Receiver: acks, credit) vs plain batched "
              "Pusher/Puller, msgs/s\n");
  std::printf("%-7s %16s %16s %10s\n", "size", "plain batched", "reliable", "reliable %");
  Json rows = Json::array();
  bool ok = true;
  for (std::size_t size : {std::size_t{16}, std::size_t{1024}}) {
    std::vector<Measured> plain, rel;
    for (int r = 0; r < config.repeats; ++r) {
      plain.push_back(pushpull_typed(config, size, false));
      rel.push_back(reliable_link(config, size));
    }
    Measured a = median(plain), b = median(rel);
    for (auto* v : {&plain, &rel}) {
      for (const Measured& m : *v) ok &= m.error.empty();
    }
    double share = a.msgs_per_s() > 0 ? b.msgs_per_s() / a.msgs_per_s() : 0;
    std::printf("%-7s %16s %16s %9.0f%% %s\n", size_label(size).c_str(), si(a.msgs_per_s()).c_str(),
                si(b.msgs_per_s()).c_str(), 100 * share,
                errors_of({plain.front().error, rel.front().error}).c_str());
    std::fflush(stdout);
    rows.push_back({{"size", size},
                    {"plain_batched_msgs_per_s", a.msgs_per_s()},
                    {"reliable_msgs_per_s", b.msgs_per_s()},
                    {"spread", {{"plain", spread(plain)}, {"reliable", spread(rel)}}},
                    {"reliable_share", share}});
    if (size == 16) {
      report.targets.push_back({"reliable / plain batched msgs/s at 16 B", share, true, 0.5, 0});
    }
  }
  report.json["patterns"]["reliable"] = rows;
  std::printf("\n");
  return ok;
}

bool pusher_latency_rows(const Config& config, Report& report) {
  std::printf("Pusher/Puller one-way latency at %d msg/s, 16 B, %d messages, us (raw libzmq beside "
              "it)\n",
              config.latency_rate, std::max(1, config.latency_count / 2));
  std::printf("%-16s %9s %9s %9s\n", "link", "p50", "p99", "p99.9");
  int count = std::max(1, config.latency_count / 2);
  Latency raw = latency_raw(config, 16, config.latency_rate, count);
  Latency typed = measure_latency<PullerIn, PusherOut>(config, 16, config.latency_rate, count,
                                                        false, false);
  Json rows = Json::array();
  for (auto [name, l] : {std::pair<const char*, const Latency*>{"raw libzmq", &raw},
                         {"Pusher batched", &typed}}) {
    std::printf("%-16s %9.1f %9.1f %9.1f %s\n", name, percentile(l->us, 0.5),
                percentile(l->us, 0.99), percentile(l->us, 0.999), l->error.c_str());
    rows.push_back({{"link", name},
                    {"rate", config.latency_rate},
                    {"p50_us", percentile(l->us, 0.5)},
                    {"p99_us", percentile(l->us, 0.99)},
                    {"p999_us", percentile(l->us, 0.999)}});
  }
  double raw_p50 = percentile(raw.us, 0.5);
  if (raw_p50 > 0) {
    report.targets.push_back({"Pusher/Puller p50 / raw p50 latency at " +
                                  std::to_string(config.latency_rate) + " msg/s",
                              percentile(typed.us, 0.5) / raw_p50, false, 1.5, 0});
  }
  report.json["patterns"]["latency"] = rows;
  std::printf("\n");
  return raw.error.empty() && typed.error.empty();
}

}  // namespace

bool section_patterns(const Config& config, Report& report) {
  report.json["patterns"] = Json::object();
  bool ok = pushpull_rows(config, report);
  ok &= pusher_latency_rows(config, report);
  ok &= pubsub_rows(config, report);
  ok &= rpc_rows(config, report);
  ok &= reliable_rows(config, report);
  return ok;
}

}  // namespace zkit::bench
