// Asynchronous request/reply: a Client (DEALER) sends requests, each with a correlation id, many in
// flight at once, each with its own timeout; a Server (ROUTER) hands every request to a handler
// together with a Responder it may keep and answer through later. Requests and replies are batched
// like any zkit traffic: each record is [correlation id: 8 bytes little-endian][payload]
// (docs/patterns.md; patterns/src/rpc_format.hpp), replies to one client share that client's batch.
//
// Semantics:
//  - Every request's handler is called exactly once, from Client::poll_once()/run(): with the
//    reply, with ReplyStatus::kTimeout when its timeout expires first, or kCancelled from close().
//    A reply that arrives after the timeout is dropped and counted (stats().dropped_messages).
//  - A reply to a client that has gone is dropped and counted by the Server (ZMQ_ROUTER_MANDATORY).
//  - Proxies: the Server takes every frame before the batch as the routing envelope (identities
//    added by any chain of ROUTERs, e.g. a queue zkit::Proxy, and a REQ peer's empty delimiter)
//    and sends each reply batch back with that same envelope; replies are batched per envelope.
//  - Raw mode talks to plain REQ/REP-style peers: the Client sends [""][payload] and matches
//    replies in order (one server answering in order, as REP does); the Server accepts
//    [""][payload] (REQ) or [payload] (DEALER) from each peer, behind any envelope, and answers
//    in the same shape.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <zmq.hpp>

#include "zkit/pattern.hpp"

namespace zkit {

enum class ReplyStatus : std::uint8_t { kOk, kTimeout, kCancelled };
const char* reply_status_name(ReplyStatus s) noexcept;

struct Reply {
  std::uint64_t id = 0;  // what send() returned
  ReplyStatus status = ReplyStatus::kOk;
  std::span<const std::byte> data;  // valid during the handler call only
  bool ok() const noexcept { return status == ReplyStatus::kOk; }
  std::string_view text() const noexcept {
    return {reinterpret_cast<const char*>(data.data()), data.size()};
  }
};
using ReplyHandler = std::function<void(const Reply&)>;

class Client {
 public:
  explicit Client(zmq::context_t& context, PatternOptions options = {});
  ~Client();  // close(): outstanding handlers run here, with kCancelled
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  std::string bind(const std::string& endpoint);
  std::string connect(const std::string& endpoint);

  // Sends a request; on_reply is called once, later, from poll_once()/run() on this thread.
  // Returns the correlation id. Blocks at the high-water mark like a Pusher; with send_timeout,
  // empty when the request could not be handed over in time (not taken, on_reply never called,
  // counted in send_would_block). Throws std::length_error over the limits,
  // std::invalid_argument after close() or without a handler.
  std::optional<std::uint64_t> send(std::span<const std::byte> request, ReplyHandler on_reply,
                                    std::chrono::milliseconds timeout);
  std::optional<std::uint64_t> send(std::string_view request, ReplyHandler on_reply,
                                    std::chrono::milliseconds timeout) {
    return send(as_bytes(request), std::move(on_reply), timeout);
  }
  bool flush();
  // As Pusher::pump().
  std::optional<std::chrono::steady_clock::time_point> pump();
  // The poll contract (pattern.hpp); the step is poll_once(0ms). The deadline includes the
  // earliest request timeout.
  zmq_pollitem_t poll_item() noexcept;
  std::optional<std::chrono::steady_clock::time_point> next_deadline() const noexcept;

  // Sends due batches, waits up to timeout (less when a batch or a request timeout is due first),
  // calls the handlers of the replies that arrived and of the requests that timed out. Returns
  // how many handlers ran.
  std::size_t poll_once(std::chrono::milliseconds timeout);
  // poll_once() until stop() (or context termination).
  void run();
  void stop();  // thread-safe
  // As Puller::on_error; also for a reply that is not one batch frame or a record too short for
  // its correlation id.
  void on_error(ErrorCallback callback);
  std::size_t in_flight() const;

  // Flushes and hands requests over within the linger, then completes every outstanding request
  // with kCancelled. unsent_messages counts requests never handed to ZeroMQ.
  CloseReport close();

  const SocketStats& stats() const;
  zmq::socket_ref socket();

 private:
  struct Impl;
  Impl& impl() const;  // throws std::logic_error after a move
  std::unique_ptr<Impl> impl_;
};

class Server;

// The way back to one request's client. Copyable; reply() once, from the Server's thread, while the
// Server lives (it may be kept and used in a later poll_once()/run() turn).
class Responder {
 public:
  // Queues the reply in the client's batch. Throws std::invalid_argument on a second reply,
  // std::length_error over the limits.
  void reply(std::span<const std::byte> payload);
  void reply(std::string_view payload) { reply(as_bytes(payload)); }
  std::uint64_t id() const noexcept { return id_; }
  // The client's identity: the last non-empty frame of the routing envelope, i.e. the identity
  // the first ROUTER on the way gave it (this Server's, or a queue proxy's frontend). Unique only
  // per ROUTER; the reply goes back along the whole envelope, not by this.
  const std::string& peer() const noexcept { return peer_; }
  bool replied() const noexcept { return replied_; }

 private:
  friend class Server;
  struct Target;
  Responder(Target* target, std::string_view route, std::string_view peer, std::uint64_t id)
      : target_(target), route_(route), peer_(peer), id_(id) {}
  Target* target_ = nullptr;
  std::string route_;  // the whole envelope, encoded (ZeroMQ identities are 5 bytes: one or two
                       // frames need no allocation)
  std::string peer_;
  std::uint64_t id_ = 0;
  bool replied_ = false;
};

using RequestHandler = std::function<void(const Message&, Responder)>;

class Server {
 public:
  explicit Server(zmq::context_t& context, PatternOptions options = {});
  ~Server();  // close()
  Server(Server&&) noexcept;
  Server& operator=(Server&&) noexcept;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  std::string bind(const std::string& endpoint);
  std::string connect(const std::string& endpoint);

  // Hands requests to handler (as Puller::poll_once) and sends the reply batches that are due.
  std::size_t poll_once(const RequestHandler& handler, std::chrono::milliseconds timeout);
  void run(const RequestHandler& handler);
  void stop();  // thread-safe
  // As Puller::on_error; also for a request record too short for its correlation id.
  void on_error(ErrorCallback callback);
  bool flush();
  std::optional<std::chrono::steady_clock::time_point> pump();
  // The poll contract (pattern.hpp); the step is poll_once(handler, 0ms).
  zmq_pollitem_t poll_item() noexcept;
  std::optional<std::chrono::steady_clock::time_point> next_deadline() const noexcept;
  CloseReport close();

  const SocketStats& stats() const;
  zmq::socket_ref socket();

 private:
  struct Impl;
  Impl& impl() const;  // throws std::logic_error after a move
  std::unique_ptr<Impl> impl_;
};

}  // namespace zkit
