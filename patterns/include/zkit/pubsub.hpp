// Publish/subscribe: a Publisher sends each topic's messages in that topic's own batch, as frames
// [topic][batch], so SUB prefix filtering works unchanged; a Subscriber receives the batches whose
// topic starts with one of its prefixes and reports the topic with each message. All topics of a
// Publisher share one sequence series (one SequenceCounter), so seq numbers a producer's batches.
//
// The two ways plain ZeroMQ pub/sub loses messages without a word, and what zkit does:
//  - Slow joiner: a subscriber gets only what is published after its subscription reached the
//    publisher. The Subscriber counts the batches before the first one it sees, and every later
//    gap, in stats().missed_batches. Exact when it subscribes to every topic; with a topic filter
//    the gaps include other topics' batches, so the figure is then an upper bound.
//  - High-water mark: a PUB socket drops silently. zkit's Publisher is an XPUB with
//    ZMQ_XPUB_NODROP, so a full subscriber queue makes the send fail instead; the Publisher then
//    drops that batch for every subscriber and counts it (stats().dropped_messages/dropped_batches,
//    send_would_block). The seq number is spent, so subscribers see and count the gap too. With
//    PatternOptions::send_timeout it first waits that long for room (back-pressure on the
//    producer). To peers it is an ordinary PUB: plain SUB sockets connect to it unchanged.
// Order: kept within a topic; across topics a later message may overtake an earlier one that is
// still waiting in its own topic's batch. flush() first when one must follow another topic's.
// Raw mode: send(topic, data) sends [topic][data] (or [data] when the topic is empty); a raw
// Subscriber accepts one frame (topic empty) or two ([topic][data]).
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

class Publisher {
 public:
  explicit Publisher(zmq::context_t& context, PatternOptions options = {});
  ~Publisher();  // close()
  Publisher(Publisher&&) noexcept;
  Publisher& operator=(Publisher&&) noexcept;
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  std::string bind(const std::string& endpoint);
  std::string connect(const std::string& endpoint);

  // Adds message to topic's batch. Never blocks longer than send_timeout (default: not at all). A
  // batch that finds no room is dropped and counted (dropped_batches/dropped_messages,
  // send_would_block); send() returns false when this message was in a batch dropped so
  // (not delivered; sending it again is no duplicate). Throws std::length_error over the limits,
  // std::invalid_argument after close().
  bool send(std::string_view topic, std::span<const std::byte> message);
  bool send(std::string_view topic, std::string_view message) {
    return send(topic, as_bytes(message));
  }
  bool flush();
  // Seals batches that are due, hands them over, reads pending subscriptions; returns
  // next_deadline().
  std::optional<std::chrono::steady_clock::time_point> pump();
  // The poll contract (pattern.hpp); the step is pump() (ZMQ_POLLIN fires on subscriptions).
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

class Subscriber {
 public:
  explicit Subscriber(zmq::context_t& context, PatternOptions options = {});
  ~Subscriber();
  Subscriber(Subscriber&&) noexcept;
  Subscriber& operator=(Subscriber&&) noexcept;
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  std::string bind(const std::string& endpoint);
  std::string connect(const std::string& endpoint);
  // Topic prefixes; "" is every topic. May be called at any time from the owning thread.
  void subscribe(std::string_view prefix);
  void unsubscribe(std::string_view prefix);

  std::optional<Message> receive(std::chrono::milliseconds timeout);
  std::size_t poll_once(const MessageHandler& handler, std::chrono::milliseconds timeout);
  void run(const MessageHandler& handler);
  void stop();  // thread-safe, as Puller::stop()
  // As Puller::on_error; also for a message that is not [topic][batch].
  void on_error(ErrorCallback callback);
  // The poll contract (pattern.hpp); the step is poll_once(handler, 0ms).
  zmq_pollitem_t poll_item() noexcept;
  std::optional<std::chrono::steady_clock::time_point> next_deadline() const noexcept;
  // Closes with linger 0 whatever the options say: a subscriber has nothing to deliver, and its
  // subscriptions to a publisher that is gone would hold up the context's termination.
  CloseReport close();

  const SocketStats& stats() const;
  zmq::socket_ref socket();

 private:
  struct Impl;
  Impl& impl() const;  // throws std::logic_error after a move
  std::unique_ptr<Impl> impl_;
};

}  // namespace zkit
