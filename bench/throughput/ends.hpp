// The ends of the links throughput_bench compares, behind two small interfaces each: a one-way
// link (Out sends, In receives) and request/reply (Client, Server). Raw libzmq ends and zkit ends
// implement the same interface, so a baseline and zkit pay for the same harness loop. The zkit
// ends use only send/flush/pump/poll_once/bind/connect of the typed sockets.
#pragma once

#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <zmq.hpp>

#include "zkit/batcher.hpp"
#include "zkit/envelope.hpp"
#include "zkit/pipeline.hpp"
#include "zkit/pubsub.hpp"
#include "zkit/reliable.hpp"
#include "zkit/rpc.hpp"

namespace zkit::bench {

using Clock = std::chrono::steady_clock;
using Bytes = std::span<const std::byte>;
using std::chrono::milliseconds;

inline constexpr milliseconds kSlice{10};    // one receive wait; idle receivers check the total
inline constexpr milliseconds kStuck{5000};  // a run making no progress this long fails
inline constexpr std::byte kWarmup{'w'};     // first byte of a warm-up (join) message
inline constexpr std::size_t kStampAt = 8;   // latency runs: send time (unix ns) at bytes 8..15

// Thrown by a sending end that could not hand a message over within kStuck.
struct SendTimeout : std::runtime_error {
  SendTimeout() : std::runtime_error("send blocked for 5000 ms") {}
};

// What a receiving end hands every message to. Concrete and inline: no indirection per message.
struct Sink {
  std::uint64_t messages = 0, bytes = 0, frames = 0, checksum = 0;
  bool joined = false;         // saw a warm-up message
  std::size_t stride = 0;      // latency: sample every stride-th message; 0: no samples
  std::vector<double> us;      // latency samples (µs, receipt minus stamp)
  std::uint64_t frame_ns = 0;  // latency: clock read once per frame

  void frame() {
    ++frames;
    frame_ns = 0;
  }
  void add(Bytes m) {
    if (m.empty() || m[0] == kWarmup) {
      joined = true;
      return;
    }
    ++messages;
    bytes += m.size();
    checksum += static_cast<std::uint8_t>(m.back());  // read the bytes, so nothing is optimised out
    if (stride != 0 && messages % stride == 0 && m.size() >= kStampAt + 8) {
      if (frame_ns == 0) frame_ns = envelope::unix_now_ns();
      std::uint64_t sent = 0;
      std::memcpy(&sent, m.data() + kStampAt, sizeof sent);
      us.push_back(static_cast<double>(static_cast<std::int64_t>(frame_ns - sent)) / 1e3);
    }
  }
};

// Options applied to a raw socket before bind/connect (CURVE keys); empty: none.
using Tune = std::function<void(zmq::socket_t&)>;

// ---- one-way: sending ends ----------------------------------------------------------------------

struct Out {
  virtual ~Out() = default;
  virtual void connect(const std::string& endpoint) = 0;
  virtual void send(Bytes m) = 0;  // throws SendTimeout
  virtual void flush() {}          // hands over what is held
  // Runs the end's timers; returns the next time it must run again (empty: nothing held).
  virtual std::optional<Clock::time_point> pump() { return std::nullopt; }
};

// Senders linger (what they queued still goes out after close); receivers do not, so that a
// subscriber's goodbye to a publisher already gone cannot hold up its context's termination.
inline zmq::socket_t raw_socket(zmq::context_t& ctx, zmq::socket_type type, const Tune& tune,
                                bool sender) {
  zmq::socket_t s(ctx, type);
  s.set(zmq::sockopt::sndtimeo, static_cast<int>(kStuck.count()));
  s.set(zmq::sockopt::rcvtimeo, static_cast<int>(kSlice.count()));
  s.set(zmq::sockopt::linger, sender ? static_cast<int>(kStuck.count()) : 0);
  if (type == zmq::socket_type::pub) s.set(zmq::sockopt::xpub_nodrop, 1);  // block, never drop
  if (type == zmq::socket_type::sub) s.set(zmq::sockopt::subscribe, "");
  if (tune) tune(s);
  return s;
}

// Raw libzmq: one zmq_send per message (libzmq's ordinary fast path).
class RawOut : public Out {
 public:
  RawOut(zmq::context_t& ctx, zmq::socket_type type, const Tune& tune)
      : s_(raw_socket(ctx, type, tune, true)) {}
  void connect(const std::string& ep) override { s_.connect(ep); }
  void send(Bytes m) override {
    if (!s_.send(zmq::const_buffer(m.data(), m.size()), zmq::send_flags::none)) throw SendTimeout();
  }

 private:
  zmq::socket_t s_;
};

// zkit::Batcher on a raw PUSH socket, driven as zkit::Pusher drives it.
class BatcherOut : public Out {
 public:
  BatcherOut(zmq::context_t& ctx, const BatcherOptions& options, const Tune& tune)
      : s_(raw_socket(ctx, zmq::socket_type::push, tune, true)), batcher_(options) {}
  void connect(const std::string& ep) override { s_.connect(ep); }
  void send(Bytes m) override {
    if (batcher_.add(m)) drain();
  }
  void flush() override {
    if (batcher_.flush()) drain();
  }
  std::optional<Clock::time_point> pump() override {
    if (batcher_.poll()) drain();
    return batcher_.deadline();
  }

 private:
  void drain() {
    while (batcher_.has_sealed()) {
      if (!s_.send(std::move(batcher_.take()->frame), zmq::send_flags::none)) throw SendTimeout();
    }
  }
  zmq::socket_t s_;
  Batcher batcher_;
};

inline PatternOptions pattern_options(bool raw, bool sender) {
  PatternOptions o;
  o.raw = raw;
  o.send_timeout = kStuck;  // back-pressure, bounded
  o.socket.linger = sender ? kStuck : milliseconds(0);
  return o;
}

// zkit::Pusher (batched, or raw mode: one frame per message).
class PusherOut : public Out {
 public:
  PusherOut(zmq::context_t& ctx, bool raw) : p_(ctx, pattern_options(raw, true)) {}
  void connect(const std::string& ep) override { (void)p_.connect(ep); }
  void send(Bytes m) override {
    if (!p_.send(m)) throw SendTimeout();
  }
  void flush() override {
    if (!p_.flush()) throw SendTimeout();
  }
  std::optional<Clock::time_point> pump() override { return p_.pump(); }

 private:
  Pusher p_;
};

// zkit::Publisher, every message on topic "t".
class PublisherOut : public Out {
 public:
  explicit PublisherOut(zmq::context_t& ctx) : p_(ctx, pattern_options(false, true)) {}
  void connect(const std::string& ep) override { (void)p_.connect(ep); }
  void send(Bytes m) override {
    if (!p_.send("t", m)) throw SendTimeout();
  }
  void flush() override { (void)p_.flush(); }
  std::optional<Clock::time_point> pump() override { return p_.pump(); }

 private:
  Publisher p_;
};

// zkit::ReliableSender with default options; flush() waits until everything is acknowledged.
class ReliableOut : public Out {
 public:
  explicit ReliableOut(zmq::context_t& ctx) : s_(ctx, ReliableSenderOptions{}) {}
  void connect(const std::string& ep) override { (void)s_.connect(ep); }
  void send(Bytes m) override {
    if (!s_.send(m, kStuck)) throw SendTimeout();
  }
  void flush() override {
    if (!s_.wait_all_acked(kStuck)) throw SendTimeout();
  }

 private:
  ReliableSender s_;
};

// ---- one-way: receiving ends --------------------------------------------------------------------

struct In {
  virtual ~In() = default;
  virtual std::string bind() = 0;
  virtual void connect(const std::string& endpoint) = 0;
  // Waits up to kSlice; hands every message of what arrived to sink. False: nothing arrived.
  virtual bool receive(Sink& sink) = 0;
};

// Raw libzmq PULL or SUB, one message per frame; decode: every frame is a zkit batch.
class RawIn : public In {
 public:
  RawIn(zmq::context_t& ctx, zmq::socket_type type, bool decode, const Tune& tune)
      : s_(raw_socket(ctx, type, tune, false)), decode_(decode) {}
  std::string bind() override {
    s_.bind("tcp://127.0.0.1:*");
    return s_.get(zmq::sockopt::last_endpoint);
  }
  void connect(const std::string& ep) override { s_.connect(ep); }
  bool receive(Sink& sink) override {
    if (!s_.recv(frame_)) return false;
    sink.frame();
    if (!decode_) {
      sink.add(Bytes(static_cast<const std::byte*>(frame_.data()), frame_.size()));
      return true;
    }
    Result<envelope::Batch> batch = envelope::decode(std::move(frame_));
    if (!batch) throw std::runtime_error(batch.status().to_string());
    for (Bytes record : *batch) sink.add(record);
    return true;
  }

 private:
  zmq::socket_t s_;
  zmq::message_t frame_;
  bool decode_;
};

// zkit::Puller, Subscriber (every topic) or ReliableReceiver through poll_once(handler, kSlice).
template <class Socket>
class PolledIn : public In {
 public:
  PolledIn(zmq::context_t& ctx, bool raw) : s_(ctx, options(raw)) {
    if constexpr (std::is_same_v<Socket, Subscriber>) s_.subscribe("");
  }
  std::string bind() override { return s_.bind("tcp://127.0.0.1:*"); }
  void connect(const std::string& ep) override { (void)s_.connect(ep); }
  bool receive(Sink& sink) override {
    sink_ = &sink;
    return s_.poll_once(handler_, kSlice) > 0;
  }

 private:
  using Handler = std::conditional_t<std::is_same_v<Socket, ReliableReceiver>,
                                     ReliableReceiver::Handler, MessageHandler>;
  static auto options(bool raw) {
    if constexpr (std::is_same_v<Socket, ReliableReceiver>) {
      ReliableReceiverOptions o;
      o.socket.linger = milliseconds(0);
      return o;
    } else {
      return pattern_options(raw, false);
    }
  }
  Socket s_;
  Sink* sink_ = nullptr;
  std::uint64_t seq_ = 0;
  Handler handler_ = [this](auto& m) {
    if constexpr (std::is_same_v<Socket, ReliableReceiver>) {
      sink_->frame();
      for (Bytes record : m.batch) sink_->add(record);
    } else {  // messages, not frames, come out: a new batch shows as a new seq (raw mode: 0)
      if (m.seq == 0 || m.seq != seq_) sink_->frame();
      seq_ = m.seq;
      sink_->add(m.data);
    }
  };
};

// ---- request/reply ------------------------------------------------------------------------------

struct Server {
  virtual ~Server() = default;
  virtual std::string bind() = 0;
  virtual void connect(const std::string& endpoint) = 0;
  virtual void serve() = 0;  // answers what arrives within kSlice with the request's bytes
};

struct Client {
  virtual ~Client() = default;
  virtual void connect(const std::string& endpoint) = 0;
  virtual void send(Bytes request) = 0;  // throws SendTimeout
  virtual std::size_t poll() = 0;        // waits up to kSlice; returns the replies that arrived
};

// Raw libzmq ROUTER answering [identity...][payload] with the same frames.
class RawServer : public Server {
 public:
  explicit RawServer(zmq::context_t& ctx)
      : s_(raw_socket(ctx, zmq::socket_type::router, {}, false)) {}
  std::string bind() override {
    s_.bind("tcp://127.0.0.1:*");
    return s_.get(zmq::sockopt::last_endpoint);
  }
  void connect(const std::string& ep) override { s_.connect(ep); }
  void serve() override {
    std::vector<zmq::message_t> parts(1);
    if (!s_.recv(parts[0])) return;
    while (parts.back().more()) (void)s_.recv(parts.emplace_back());
    for (std::size_t i = 0; i < parts.size(); ++i) {
      (void)s_.send(parts[i],
                    i + 1 < parts.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }

 private:
  zmq::socket_t s_;
};

class RawClient : public Client {
 public:
  explicit RawClient(zmq::context_t& ctx)
      : s_(raw_socket(ctx, zmq::socket_type::dealer, {}, false)) {}
  void connect(const std::string& ep) override { s_.connect(ep); }
  void send(Bytes m) override {
    if (!s_.send(zmq::const_buffer(m.data(), m.size()), zmq::send_flags::none)) throw SendTimeout();
  }
  std::size_t poll() override {
    std::size_t n = 0;
    zmq::message_t reply;
    if (!s_.recv(reply)) return 0;
    do ++n;
    while (s_.recv(reply, zmq::recv_flags::dontwait));
    return n;
  }

 private:
  zmq::socket_t s_;
};

class ZkitServer : public Server {
 public:
  explicit ZkitServer(zmq::context_t& ctx) : s_(ctx, pattern_options(false, false)) {}
  std::string bind() override { return s_.bind("tcp://127.0.0.1:*"); }
  void connect(const std::string& ep) override { (void)s_.connect(ep); }
  void serve() override { s_.poll_once(handler_, kSlice); }

 private:
  zkit::Server s_;
  RequestHandler handler_ = [](const Message& m, Responder r) { r.reply(m.data); };
};

class ZkitClient : public Client {
 public:
  explicit ZkitClient(zmq::context_t& ctx) : c_(ctx, pattern_options(false, false)) {}
  void connect(const std::string& ep) override { (void)c_.connect(ep); }
  void send(Bytes m) override {
    if (!c_.send(m, on_reply_, kStuck)) throw SendTimeout();
  }
  std::size_t poll() override {
    std::uint64_t before = replies_;
    c_.poll_once(kSlice);
    return static_cast<std::size_t>(replies_ - before);
  }

 private:
  zkit::Client c_;
  std::uint64_t replies_ = 0;
  ReplyHandler on_reply_ = [this](const Reply& r) { replies_ += r.ok() ? 1 : 0; };
};

}  // namespace zkit::bench
