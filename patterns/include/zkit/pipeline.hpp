// Pipeline (PUSH/PULL): a Pusher hands batches to its connected Pullers round-robin, a Puller
// fair-queues from every Pusher. Each message reaches exactly one Puller while every process lives.
//
// Semantics at the limits:
//  - At the high-water mark a Pusher's send() blocks (ZeroMQ's behaviour): back-pressure reaches
//    the producer, nothing is dropped. With PatternOptions::send_timeout it waits that long and
//    then returns false (message refused, counted in stats().send_would_block).
//  - The Pusher sets ZMQ_IMMEDIATE: batches are queued only to completed connections, so whatever
//    no peer has taken yet is still in zkit and close() can count it. A batch already queued to a
//    peer that then dies is lost with that peer (plain mode; the reliable link resends).
//  - A frame that is not a valid batch is counted (decode_errors) and dropped.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <zmq.hpp>

#include "zkit/pattern.hpp"

namespace zkit {

class Pusher {
 public:
  // Throws std::invalid_argument for bad batch options, zmq::error_t for refused socket options.
  explicit Pusher(zmq::context_t& context, PatternOptions options = {});
  ~Pusher();  // close()
  Pusher(Pusher&&) noexcept;
  Pusher& operator=(Pusher&&) noexcept;
  Pusher(const Pusher&) = delete;
  Pusher& operator=(const Pusher&) = delete;

  std::string bind(const std::string& endpoint);
  std::string connect(const std::string& endpoint);

  // Takes one message (copied once, into the batch). Returns false only with a send_timeout, when
  // a sealed batch could not be handed to ZeroMQ in time and this message was therefore refused.
  // Throws std::length_error naming the sizes when the message exceeds the limits (nothing held is
  // affected), std::invalid_argument after close().
  bool send(std::span<const std::byte> message);
  bool send(std::string_view message) { return send(as_bytes(message)); }
  // Seals the held batch and hands every sealed batch over. Returns false when one is still
  // waiting at the high-water mark (send_timeout set).
  bool flush();
  // Seals a batch that is due and hands batches over; returns next_deadline(), or now while a
  // sealed batch still waits for room (for loops that do not poll the socket).
  std::optional<std::chrono::steady_clock::time_point> pump();
  // The poll contract (pattern.hpp); the step is pump().
  zmq_pollitem_t poll_item() noexcept;
  std::optional<std::chrono::steady_clock::time_point> next_deadline() const noexcept;

  // Flushes, hands batches over until the linger (options.socket.linger) runs out, closes the
  // socket. Idempotent (a second call returns the first report).
  CloseReport close();

  const SocketStats& stats() const;
  zmq::socket_ref socket();

 private:
  struct Impl;
  Impl& impl() const;  // throws std::logic_error after a move
  std::unique_ptr<Impl> impl_;
};

class Puller {
 public:
  explicit Puller(zmq::context_t& context, PatternOptions options = {});
  ~Puller();
  Puller(Puller&&) noexcept;
  Puller& operator=(Puller&&) noexcept;
  Puller(const Puller&) = delete;
  Puller& operator=(const Puller&) = delete;

  std::string bind(const std::string& endpoint);
  std::string connect(const std::string& endpoint);

  // The next message, waiting up to timeout; empty on timeout or stop(). The Puller holds the
  // current batch and hands out its records one by one without copying.
  std::optional<Message> receive(std::chrono::milliseconds timeout);
  // Hands every held message and every message of one frame that arrives within timeout to
  // handler; returns how many. Stops early, keeping the rest of the batch, after stop().
  std::size_t poll_once(const MessageHandler& handler, std::chrono::milliseconds timeout);
  // Calls handler for every message until stop(). A stop() that comes while no run() is active
  // makes the next run() return at once. Returns on context termination too.
  void run(const MessageHandler& handler);
  // Thread-safe; wakes a blocked run()/receive()/poll_once(). The Puller must outlive the call.
  void stop();
  // Called for every frame counted in stats().decode_errors, with the codec's Status saying what
  // was wrong and where; on this socket's thread, from inside receive/poll_once/run.
  void on_error(ErrorCallback callback);
  // The poll contract (pattern.hpp); the step is poll_once(handler, 0ms).
  zmq_pollitem_t poll_item() noexcept;
  std::optional<std::chrono::steady_clock::time_point> next_deadline() const noexcept;

  // Closes the socket; messages still held are discarded (counted in stats().dropped_messages).
  CloseReport close();

  const SocketStats& stats() const;
  zmq::socket_ref socket();

 private:
  struct Impl;
  Impl& impl() const;  // throws std::logic_error after a move
  std::unique_ptr<Impl> impl_;
};

}  // namespace zkit
