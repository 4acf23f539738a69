// A small RAII handle over one rabbitmq-c connection with one channel: what the bridge needs of
// AMQP 0-9-1 and nothing more. rabbitmq-c does the protocol (framing, heartbeats, login); this
// file turns its replies into values and its failures into AmqpError, which says whether trying
// again can help (a lost connection) or not (refused credentials, a missing queue).
//
// Thread: one owner thread. Blocking: the constructor (bounded by the settings' timeout) and the
// synchronous calls (declare, qos, consume, sync) wait for the broker's reply; publish() may wait
// for socket room; next() waits at most its timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <variant>
#include <zmq.hpp>

#include "zkit/bridge.hpp"

struct amqp_connection_state_t_;

namespace zkit::amqp {

// A failure. fatal(): retrying cannot help (credentials, vhost, a missing queue or exchange, a
// queue declared with other arguments); otherwise the connection is lost and may come back.
class AmqpError : public std::runtime_error {
 public:
  AmqpError(const std::string& what, bool fatal) : std::runtime_error(what), fatal_(fatal) {}
  bool fatal() const noexcept { return fatal_; }

 private:
  bool fatal_;
};

struct Delivery {
  std::uint64_t tag = 0;
  bool redelivered = false;
  std::string content_type;
  std::string message_id;  // empty when absent
  std::uint64_t copy = 0;  // header x-zkit-copy (a --to-amqp publish), 0 when absent
  zmq::message_t body;
};
struct Confirm {  // basic.ack / basic.nack from the broker (publisher confirms)
  std::uint64_t tag = 0;
  bool multiple = false;
  bool ack = true;
};
struct Returned {  // basic.return: a mandatory message no queue took
  std::uint16_t code = 0;
  std::string text;
};
using Event = std::variant<std::monostate, Delivery, Confirm, Returned>;

// Properties of a published message (persistent delivery always).
struct Publish {
  std::string_view message_id;
  std::string_view content_type;
  // x-zkit-producer, x-zkit-seq, x-zkit-index and x-zkit-copy headers when has_ids.
  bool has_ids = false;
  std::uint64_t producer_id = 0, seq = 0, index = 0, copy = 0;
};

class Connection {
 public:
  // Connects, logs in, opens channel 1. Throws AmqpError.
  explicit Connection(const AmqpSettings& settings);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  int fd() const noexcept;
  // True when rabbitmq-c holds bytes or frames already read: next() must run without a poll.
  bool buffered() const noexcept;

  void confirm_select();
  void qos(std::uint16_t prefetch);
  // Declares a durable queue of `type` ("quorum" or "classic").
  void declare_queue(const std::string& queue, const std::string& type);
  void bind_queue(const std::string& queue, const std::string& exchange, const std::string& key);
  // Passive declare: throws a fatal AmqpError naming the queue when it does not exist.
  void check_queue(const std::string& queue);
  void consume(const std::string& queue);
  // Publishes one persistent, mandatory message. Throws AmqpError (not fatal) when the
  // connection is gone.
  void publish(const std::string& exchange, const std::string& key,
               std::span<const std::byte> body, const Publish& props);
  void ack(std::uint64_t tag, bool multiple);
  void reject(std::uint64_t tag);  // requeue=false: dead-lettered when the queue has a DLX
  // A synchronous round trip on the channel (basic.qos): when it returns, the broker has
  // processed every ack sent before it.
  void sync();
  // The next event, waiting up to `timeout` (0: only what is buffered or readable now). An empty
  // monostate on timeout. Throws AmqpError when the broker closed the channel or connection.
  Event next(std::chrono::milliseconds timeout);

  // Closes politely (connection.close), ignoring errors.
  void close() noexcept;

 private:
  amqp_connection_state_t_* conn_ = nullptr;
  std::uint16_t prefetch_ = 0;
  std::string where_;  // "amqp://host:port/vhost" for messages
};

}  // namespace zkit::amqp
