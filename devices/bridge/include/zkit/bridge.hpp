// The bridge device: the reliable link on one side, RabbitMQ (AMQP 0-9-1, through rabbitmq-c) on
// the other. docs/bridge.md describes both directions, the ids that travel with each message and
// where a duplicate can appear.
//
//   to AMQP:   reliable senders -> ReliableReceiver (manual ack) -> publish, persistent, mandatory,
//              publisher confirms -> a batch is acknowledged upstream once RabbitMQ confirmed
//              every message of it (a returned or nacked message is published again).
//   from AMQP: consume (manual acks, prefetch) -> adaptive Batcher (or, in batch mode, the body
//              forwarded as the batch it is) -> ReliableSender -> downstream; RabbitMQ is acked
//              (multiple) only after the downstream acknowledged.
//
// Both directions survive a lost connection or a broker restart: they reconnect with a doubling
// backoff and resume; nothing acknowledged on either side is lost.
//
// Thread: a bridge belongs to the thread that drives it (poll_once). Waiting: one zmq::poll over
// the link socket, the AMQP socket, the control socket and an extra item of the caller's.
// Errors: bad options throw std::invalid_argument; what retrying cannot cure (refused
// credentials, a missing queue or exchange, the first connection failing for connect_timeout, a
// bad message under BadMessagePolicy::kStop) is thrown from poll_once as BridgeError; everything
// else is counted, logged and retried.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <zmq.hpp>

#include "zkit/batcher.hpp"
#include "zkit/envelope.hpp"
#include "zkit/options.hpp"
#include "zkit/status.hpp"

namespace zkit {

// Content type of an AMQP message whose body is one zkit batch frame (docs/wire-format.md).
inline constexpr std::string_view kBatchContentType = "application/vnd.zkit.batch.v1+msgpack";

struct AmqpSettings {
  std::string host = "127.0.0.1";
  int port = 5672;
  std::string vhost = "/";
  std::string user = "guest";
  std::string password;  // from a credentials file, never a flag
  std::chrono::seconds heartbeat{10};           // AMQP heartbeat (0: off)
  std::chrono::milliseconds timeout{5000};      // connect and each synchronous reply
  std::chrono::milliseconds connect_timeout{30000};  // the first connection must succeed within
                                                     // this; later losses are retried for ever
  std::chrono::milliseconds retry_min{100};  // reconnect backoff: first wait, doubling to
  std::chrono::milliseconds retry_max{5000};  // this
};

// "amqp://[user@]host[:port][/vhost]" (vhost percent-encoded, "%2F" is "/"). A password in the
// URL, another scheme or a malformed port is an InvalidArgument naming what was wrong.
Result<AmqpSettings> parse_amqp_url(std::string_view url);
// A credentials file: one line "user:password" (the first ':' splits; a trailing newline is
// ignored). NotFound / InvalidArgument say what was wrong with the file.
Status read_credentials(const std::filesystem::path& file, AmqpSettings& settings);

enum class BridgeMode { kMessage, kBatch };
// What the from-AMQP side does with a message it cannot forward (over the limits; in batch mode,
// a body that is not a valid batch): kReject rejects it (requeue=false: RabbitMQ dead-letters it
// when the queue has a dead-letter exchange, else drops it) and counts it; kStop leaves it
// unacknowledged in the queue and ends the bridge with a BridgeError.
enum class BadMessagePolicy { kReject, kStop };

// Thrown by poll_once for what retrying cannot cure.
class BridgeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The device's counters, in one place (STATS, the statistics line, and later /metrics read it).
struct BridgeStats {
  std::string direction;  // "to-amqp" or "from-amqp"
  std::string state;      // "connected", "connecting" or "stopped"
  std::uint64_t uptime_ms = 0;
  // AMQP connection.
  std::uint64_t connects = 0;          // successful connections
  std::uint64_t connection_losses = 0;
  std::uint64_t connect_failures = 0;  // attempts that failed (each followed by a backoff)
  // to-amqp.
  std::uint64_t batches_received = 0;   // new batches from reliable senders
  std::uint64_t messages_received = 0;
  std::uint64_t published = 0;          // AMQP messages published, republished ones included
  std::uint64_t republished = 0;        // published again after a loss, nack or return
  std::uint64_t confirmed = 0;          // AMQP messages RabbitMQ confirmed
  std::uint64_t nacked = 0;             // basic.nack from RabbitMQ (published again)
  std::uint64_t returned = 0;           // mandatory messages no queue took (published again)
  std::uint64_t batches_acked_upstream = 0;
  std::uint64_t messages_acked_upstream = 0;
  std::uint64_t pending_batches = 0;    // now: received, not yet fully confirmed
  // from-amqp.
  std::uint64_t deliveries = 0;         // AMQP messages received, redeliveries included
  std::uint64_t redelivered = 0;        // of those, flagged redelivered by RabbitMQ
  std::uint64_t suppressed = 0;         // redeliveries already in a batch sent downstream
  std::uint64_t rejected = 0;           // bad messages rejected (too_large + not_batch)
  std::uint64_t too_large = 0;          // over the batch or record limits
  std::uint64_t not_batch = 0;          // batch mode: a body that is not a valid zkit batch
  std::uint64_t batches_sent = 0;       // batches handed to the downstream link
  std::uint64_t messages_sent = 0;
  std::uint64_t resent_from_journal = 0;  // batches of an earlier run sent again at start
  std::uint64_t batches_acked_downstream = 0;
  std::uint64_t messages_acked_downstream = 0;
  std::uint64_t amqp_acks = 0;          // basic.ack calls (multiple)
  std::uint64_t messages_acked_amqp = 0;
  std::uint64_t unacked = 0;            // now: messages taken from RabbitMQ, not yet acked
  bool downstream_connected = false;    // now: the downstream receiver answers
  std::uint64_t journal_errors = 0;     // failed journal writes (each retried)
  std::uint64_t control_commands = 0;

  // {"device":"bridge", every field above}: docs/bridge.md describes them.
  std::string to_json() const;
};

struct ToAmqpOptions {
  AmqpSettings amqp;
  std::string listen;  // reliable senders connect here (parse_endpoint; plain binds). Required.
  std::string control;  // REP control socket (STATS, TERMINATE); empty: none
  SocketOptions listen_socket, control_socket;
  std::string exchange;     // "" is the default exchange
  std::string routing_key;  // required
  std::string declare_queue;       // declared durable (and bound to exchange/key) when set
  std::string queue_type = "quorum";  // of declare_queue: "quorum" or "classic"
  BridgeMode mode = BridgeMode::kMessage;
  envelope::Limits limits;       // batches are decoded against these
  std::size_t window = 64;       // credit per sender session (batches awaiting confirms)
  std::size_t max_sessions = 1024;
};

struct FromAmqpOptions {
  AmqpSettings amqp;
  std::string queue;       // required
  std::string queue_type;  // "quorum"/"classic": declare the queue durable; empty: it must exist
  std::string to;          // downstream reliable receiver (parse_endpoint; plain connects)
  std::string control;
  SocketOptions to_socket, control_socket;
  BridgeMode mode = BridgeMode::kMessage;  // kBatch: each body is a zkit batch, forwarded as is
  std::uint16_t prefetch = 2000;           // unacknowledged deliveries RabbitMQ may send
  BatcherOptions batch;                    // message mode: the adaptive batcher
  envelope::Limits limits;  // a body over limits.max_record_bytes (message mode) or a batch
                            // that does not decode against these (batch mode) is a bad message
  std::size_t window = 64;  // batches in flight downstream
  BadMessagePolicy on_bad = BadMessagePolicy::kReject;
  // Message mode: where each batch is written before it is sent downstream, so that after a
  // crash RabbitMQ's redeliveries are matched to it and not forwarded twice (docs/bridge.md).
  // Empty: no journal (a crash may then duplicate what was in flight).
  std::filesystem::path journal_dir;
  std::chrono::milliseconds sync_interval{200};  // how often acks are confirmed by a round trip
  // After a (re)connection, redelivered messages are matched against what the bridge holds for
  // this long at most (less when everything held was matched); a redelivery later than that is
  // forwarded again (docs/bridge.md).
  std::chrono::milliseconds redelivery_window{30000};
};

class Bridge {
 public:
  // Bind/connect the link and control sockets (zmq::error_t propagates) and start connecting to
  // RabbitMQ in poll_once. Throws std::invalid_argument for bad options, std::runtime_error when
  // the journal directory cannot be used.
  static std::unique_ptr<Bridge> to_amqp(zmq::context_t& context, ToAmqpOptions options);
  static std::unique_ptr<Bridge> from_amqp(zmq::context_t& context, FromAmqpOptions options);
  virtual ~Bridge() = default;

  // One round: waits up to `timeout` (or the earliest timer) for traffic on any socket, handles
  // what arrived, (re)connects when due. Returns false after TERMINATE on the control socket.
  // `extra`: one more item for the same wait (the driver's signal descriptor); revents set.
  // Throws BridgeError as the header comment says.
  virtual bool poll_once(std::chrono::milliseconds timeout, zmq_pollitem_t* extra = nullptr) = 0;
  // Stops taking new work and waits up to `linger` for what is in flight to be acknowledged on
  // the far side, then closes the AMQP connection. What is left stays unacknowledged on the
  // near side (the sender resends / RabbitMQ redelivers).
  virtual void shutdown(std::chrono::milliseconds linger) = 0;
  virtual BridgeStats stats() const = 0;
  virtual const std::string& endpoint() const noexcept = 0;  // the link socket, as bound
  virtual const std::string& control_endpoint() const noexcept = 0;
};

}  // namespace zkit
