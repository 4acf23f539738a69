// Socket-level ends of a PUSH/PULL link for the harness (harness.hpp): raw libzmq, one frame per
// message, and batched, zkit::Batcher feeding the socket and zkit::envelope::decode reading it.
#pragma once

#include <string>

#include "harness.hpp"
#include "zkit/batcher.hpp"
#include "zkit/envelope.hpp"

namespace zkit::bench {

struct NoArgs {};

// Socket settings every end shares; `tune` may set CURVE or other options on top.
struct SocketSetup {
  std::function<void(zmq::socket_t&)> tune;  // empty: nothing
};

inline zmq::socket_t bound_socket(zmq::context_t& ctx, zmq::socket_type type,
                                  const SocketSetup& setup = {}) {
  zmq::socket_t s(ctx, type);
  s.set(zmq::sockopt::rcvtimeo, kReceiveSliceMs);
  s.set(zmq::sockopt::linger, 0);
  if (setup.tune) setup.tune(s);
  s.bind("tcp://127.0.0.1:*");
  return s;
}

inline zmq::socket_t connected_socket(zmq::context_t& ctx, zmq::socket_type type,
                                      const std::string& endpoint, const SocketSetup& setup = {}) {
  zmq::socket_t s(ctx, type);
  s.set(zmq::sockopt::linger, kSenderLingerMs);
  s.set(zmq::sockopt::sndtimeo, kReceiveTimeoutMs);
  if (setup.tune) setup.tune(s);
  s.connect(endpoint);
  return s;
}

// Frame-at-a-time receiving over a PULL socket; Unpack turns one frame into messages.
template <class Unpack>
class FrameIn {
 public:
  FrameIn(zmq::context_t& ctx, const SocketSetup& setup)
      : socket_(bound_socket(ctx, zmq::socket_type::pull, setup)) {}
  FrameIn(zmq::context_t& ctx, NoArgs) : FrameIn(ctx, SocketSetup{}) {}
  std::string endpoint() const { return socket_.get(zmq::sockopt::last_endpoint); }
  std::uint64_t created_ns() const { return unpack_.created_ns; }

  template <class F>
  Next next(F&& on_message, const std::atomic<std::uint64_t>& total, std::uint64_t delivered) {
    for (int waited = 0; waited < kReceiveTimeoutMs; waited += kReceiveSliceMs) {
      if (socket_.recv(frame_)) {
        if (!unpack_(frame_, on_message)) throw std::runtime_error(unpack_.error);
        return Next::kFrame;
      }
      if (all_delivered(total, delivered)) return Next::kDone;
    }
    return Next::kTimeout;
  }

 private:
  zmq::socket_t socket_;
  zmq::message_t frame_;
  Unpack unpack_;
};

struct RawUnpack {
  std::uint64_t created_ns = 0;  // raw frames carry no batch header
  std::string error;
  template <class F>
  bool operator()(zmq::message_t& frame, F& on_message) {
    on_message(Bytes(static_cast<const std::byte*>(frame.data()), frame.size()));
    return true;
  }
};

struct BatchUnpack {
  std::uint64_t created_ns = 0;
  std::string error;
  template <class F>
  bool operator()(zmq::message_t& frame, F& on_message) {
    Result<envelope::Batch> batch = envelope::decode(std::move(frame));
    if (!batch) {
      error = batch.status().to_string();
      return false;
    }
    created_ns = batch->header().created_ns;
    for (Bytes record : *batch) on_message(record);
    return true;
  }
};

using RawIn = FrameIn<RawUnpack>;
using BatchedIn = FrameIn<BatchUnpack>;

// One zmq_send per message: raw libzmq's ordinary fast path (the bytes are copied into the frame).
class RawOut {
 public:
  RawOut(zmq::context_t& ctx, const std::string& endpoint, const SocketSetup& setup)
      : socket_(connected_socket(ctx, zmq::socket_type::push, endpoint, setup)) {}
  RawOut(zmq::context_t& ctx, const std::string& endpoint, NoArgs)
      : RawOut(ctx, endpoint, SocketSetup{}) {}
  void send(Bytes m) {
    if (!socket_.send(zmq::const_buffer(m.data(), m.size()), zmq::send_flags::none)) {
      throw SendTimeout();
    }
  }
  std::optional<Clock::time_point> deadline() const { return std::nullopt; }
  void poll() {}
  void finish() {}

 private:
  zmq::socket_t socket_;
};

struct BatchedArgs {
  BatcherOptions batcher;
  SocketSetup setup;
};

// Drives the Batcher the way zkit::Pusher does: add() (which reads the clock and seals a batch
// whose deadline has passed), then sends what was sealed; poll() only when idle, by deadline().
class BatchedOut {
 public:
  BatchedOut(zmq::context_t& ctx, const std::string& endpoint, const BatchedArgs& args)
      : socket_(connected_socket(ctx, zmq::socket_type::push, endpoint, args.setup)),
        batcher_(args.batcher) {}
  void send(Bytes m) {
    if (batcher_.add(m)) drain();
  }
  std::optional<Clock::time_point> deadline() const { return batcher_.deadline(); }
  void poll() {
    if (batcher_.poll()) drain();
  }
  void finish() {
    if (batcher_.flush()) drain();
  }

 private:
  void drain() {
    while (batcher_.has_sealed()) {
      if (!socket_.send(std::move(batcher_.take()->frame), zmq::send_flags::none)) {
        throw SendTimeout();
      }
    }
  }
  zmq::socket_t socket_;
  Batcher batcher_;
};

}  // namespace zkit::bench
