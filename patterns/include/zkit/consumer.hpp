// Consumer: a member of a named group on a spool's serving socket (`zkit spool --serve EP`), over
// the consumer protocol (docs/protocol.md, "The consumer protocol (v1)"). Within a group each
// batch goes to one member that has credit, least loaded first; every group gets every batch.
//
// Semantics in short:
//   - Credit: the spool hands this consumer at most prefetch_batches unacknowledged batches (and,
//     when prefetch_messages > 0, stops once that many messages are unacknowledged).
//   - Acknowledgement per batch: automatic (the handler returned) or manual (ack() / ack(token),
//     from the handler or later). nack(delay) gives a batch back for redelivery; in_progress()
//     restarts its ack timer (call it during work that outlasts ack_wait or the heartbeat).
//   - Redelivery: a batch not acked within ack_wait, nacked, or held by a member that died comes
//     back (here or to another member) with delivery_count + 1. Delivery is at least once.
//   - Duplicates: the consumer remembers the (producer_id, seq) of the last acked_memory batches it
//     acknowledged; a redelivery of one of those (its ack was lost) is acknowledged again and not
//     handed to the handler, counted in stats().duplicates_dropped.
//   - Membership: the consumer JOINs when connected (retrying every join_retry until JOINED) and
//     JOINs again under a new member id after ERROR 1 (the spool forgot it) or when a PING goes
//     unanswered for heartbeat_timeout. Batches it held under the old id went back to the group;
//     their tokens become stale (ack() of one is counted, not sent).
//
// Threads and blocking: one thread drives the object (stop() is callable from any thread).
// poll_once(handler, timeout) and run(handler) block the caller, driving the protocol (handlers
// run inside them); everything else returns at once. Timers (heartbeat, join retry) run only
// inside those calls: poll at least every heartbeat interval, and call in_progress() from a
// handler that runs longer. A moved-from Consumer throws std::logic_error("zkit::Consumer: used
// after move") from every member but the destructor, move-assignment, close() and stop() (no-ops),
// and poll_item() and next_deadline() (noexcept: an item that never fires; empty).
//
// Poll loops (zkit/pattern.hpp): poll_item() is what to wait on; next_deadline() when
// poll_once(handler, 0ms) must run without an event (acks waiting, PING due, JOIN retry, the
// spool's heartbeat timeout).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "zkit/envelope.hpp"
#include "zkit/options.hpp"
#include "zkit/pattern.hpp"
#include "zkit/status.hpp"

namespace zkit {

// Where a group that does not exist yet starts reading the log (an existing group keeps its place).
struct ConsumerStart {
  enum class Kind : std::uint8_t { kEarliest = 0, kLatest = 1, kPosition = 2, kTime = 3 };
  Kind kind = Kind::kEarliest;
  std::uint64_t segment = 0;  // kPosition: the first batch at or after (segment, offset)
  std::uint64_t offset = 0;
  std::uint64_t unix_ns = 0;  // kTime: the first batch stored at or after this time

  static ConsumerStart earliest() noexcept { return {}; }
  static ConsumerStart latest() noexcept { return {Kind::kLatest}; }
  static ConsumerStart position(std::uint64_t segment, std::uint64_t offset) noexcept {
    return {Kind::kPosition, segment, offset, 0};
  }
  static ConsumerStart time(std::chrono::system_clock::time_point t) noexcept;
};

struct ConsumerOptions {
  std::string group;                      // required: 1..64 of [A-Za-z0-9._-]
  std::uint64_t prefetch_batches = 64;    // 1.. the spool's max_prefetch (default 1024)
  std::uint64_t prefetch_messages = 0;    // 0: no message limit
  bool manual_ack = false;                // true: ack() acknowledges, not the handler returning
  ConsumerStart start;                    // for a group that does not exist yet
  std::chrono::milliseconds ack_wait{0};  // 0: the spool's default (--ack-wait)
  // PING period when nothing else was sent; 0: the heartbeat_ms the spool's JOINED asks for.
  // Never longer than that.
  std::chrono::milliseconds heartbeat_interval{0};
  std::chrono::milliseconds heartbeat_timeout{5000};  // a PING unanswered this long: re-JOIN
  std::chrono::milliseconds join_retry{1000};         // JOIN again until JOINED comes
  std::size_t acked_memory = 16384;  // (producer_id, seq) of acked batches remembered to drop
                                     // redeliveries of them; 0: none (every redelivery is handed
                                     // to the handler)
  std::size_t max_drain = 256;       // messages handled per poll_once before acks go out
  // Asks the spool to send batches in BUNDLEs of up to this many bytes (capped at
  // limits.max_batch_bytes), several batches per ZeroMQ message; each still goes to the handler
  // on its own, with its own tag. 0: one DELIVER per batch.
  std::size_t bundle_bytes = 256 * 1024;
  SocketOptions socket;     // DEALER options (routing_id, CURVE, HWMs, linger)
  envelope::Limits limits;  // every delivered batch is decoded against these; they also
                            // set ZMQ_MAXMSGSIZE (receive_limit())
};

// Names one delivery for ack()/nack()/in_progress() after the handler returned. Cheap to copy.
struct ConsumerToken {
  std::uint64_t member = 0;  // the member id it was delivered to (stale after a re-JOIN)
  std::uint64_t tag = 0;
};

// What the consumer knows about one delivered batch.
struct DeliveryInfo {
  std::uint64_t delivery_count = 0;  // 1: first delivery; > 1: a redelivery
  std::uint64_t producer_id = 0;     // from the envelope
  std::uint64_t seq = 0;             // from the envelope
  std::uint64_t segment = 0;         // its position in the spool's log
  std::uint64_t offset = 0;
  ConsumerToken token;

  bool redelivered() const noexcept { return delivery_count > 1; }
};

// What the handler receives: the batch and where it came from. Valid while the handler runs; the
// handler may take the frame (std::move(batch).release_frame()).
struct ConsumedBatch {
  const DeliveryInfo& info;
  envelope::Batch& batch;  // the messages: for (std::span<const std::byte> m : batch) ...

  std::size_t size() const noexcept { return batch.size(); }
  envelope::Batch::Iterator begin() const noexcept { return batch.begin(); }
  envelope::Batch::Iterator end() const noexcept { return batch.end(); }
};

struct ConsumerStats {
  std::uint64_t batches_delivered = 0;  // handed to the handler
  std::uint64_t messages_delivered = 0;
  std::uint64_t redelivered = 0;         // of those, with delivery_count > 1
  std::uint64_t duplicates_dropped = 0;  // redeliveries of batches already acked: re-acked, not
                                         // handed to the handler
  std::uint64_t batches_acked = 0;       // deliveries acknowledged (duplicates included)
  std::uint64_t acks_sent = 0;           // ACK messages
  std::uint64_t nacks_sent = 0;
  std::uint64_t progress_sent = 0;
  std::uint64_t pings_sent = 0;
  std::uint64_t pongs = 0;
  std::uint64_t joins_sent = 0;
  std::uint64_t joined = 0;            // JOINED received for a new member
  std::uint64_t rejoins = 0;           // new member ids after ERROR 1 or a lost spool
  std::uint64_t spool_lost = 0;        // PINGs unanswered for heartbeat_timeout
  std::uint64_t join_refused = 0;      // ERROR 2, 3, 4 or 7 to a JOIN
  std::uint64_t errors = 0;            // ERROR messages received (all codes)
  std::uint64_t unknown_tags = 0;      // ERROR 5
  std::uint64_t stale = 0;             // messages for an earlier member id, dropped
  std::uint64_t stale_acks = 0;        // ack/nack/in_progress of a token of an earlier member id
  std::uint64_t bad_batches = 0;       // DELIVERs whose batch did not decode: nacked (1 s)
  std::uint64_t decode_errors = 0;     // malformed messages from the spool: dropped
  std::uint64_t in_session = 0;        // now: 1 while joined
  std::uint64_t unacked = 0;           // now: handed to the handler, not yet acked or nacked
  std::uint64_t acked_remembered = 0;  // now: entries of the duplicate table
  std::uint64_t member = 0;            // now: the current member id

  std::string to_json() const;  // every field above, as one flat JSON object
};

class Consumer {
 public:
  using Handler = std::function<void(const ConsumedBatch&)>;
  using ErrorCallback = std::function<void(const Status&)>;

  // Creates the DEALER socket (options.socket and the receive limit applied). Throws
  // std::invalid_argument on a bad group name, prefetch_batches 0, max_drain 0, a non-positive
  // heartbeat_timeout or join_retry; zmq::error_t from socket options.
  Consumer(zmq::context_t& context, ConsumerOptions options);
  ~Consumer();  // close()
  Consumer(Consumer&&) noexcept;
  Consumer& operator=(Consumer&&) noexcept;
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // Return the endpoint (bind resolves "*"); the JOIN goes out at once (or on the next poll when
  // ZeroMQ cannot take it yet). Connect to one spool only. zmq::error_t propagates.
  std::string connect(const std::string& endpoint);
  std::string bind(const std::string& endpoint);  // for a spool that connects (`--serve >EP`)

  // Waits up to `timeout` (0: not at all, negative: without limit) for messages or the next timer,
  // handles up to max_drain messages (calling handler for each new batch), runs the timers, then
  // sends the acknowledgements due. Returns the batches handed to the handler. An exception from
  // the handler propagates after that batch was nacked (delay 0): it is neither acked nor lost.
  std::size_t poll_once(const Handler& handler, std::chrono::milliseconds timeout);
  // Polls until stop(); returns on context termination too.
  void run(const Handler& handler);
  // Makes run() (or a waiting poll_once) return; a stop while neither runs ends the next one.
  // Any thread, also the handler.
  void stop() noexcept;

  // The current batch (inside the handler): acknowledge it now (automatic mode: early), give it
  // back for redelivery after `delay`, or restart its ack timer (sent at once). After ack() or
  // nack() the handler's return acknowledges nothing more. Throws std::logic_error outside a
  // handler.
  void ack();
  void nack(std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  void in_progress();
  // The same for a token from DeliveryInfo (manual mode, after the handler returned). A token of an
  // earlier member id is counted (stale_acks) and ignored: that batch went back to the group. A
  // token already acked or nacked is ignored. Throws std::invalid_argument for a tag this member
  // was never given.
  void ack(const ConsumerToken& token);
  void nack(const ConsumerToken& token,
            std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  void in_progress(const ConsumerToken& token);

  // New credit (sent at once as CREDIT). Throws std::invalid_argument for prefetch_batches 0.
  void set_prefetch(std::uint64_t prefetch_batches, std::uint64_t prefetch_messages = 0);

  // Called for every ERROR from the spool (Status code InvalidArgument, text "ERROR <code>
  // (<name>): <text>"), every malformed message (Corruption/Unsupported, counted in
  // decode_errors) and every batch that does not decode (bad_batches). On this thread, inside
  // poll_once/run.
  void on_error(ErrorCallback callback);

  // The DEALER to poll (ZMQ_POLLIN).
  zmq_pollitem_t poll_item() noexcept;
  std::optional<std::chrono::steady_clock::time_point> next_deadline() const noexcept;

  bool joined() const;  // JOINED received for the current member id
  std::uint64_t member_id() const;
  ConsumerStats stats() const;

  // Sends the acknowledgements due, then LEAVE (every batch still unacked goes back to the group
  // at once, with its delivery count), then closes the socket (socket.linger bounds how long
  // ZeroMQ may take to write them). The consumer holds no data of its own: the report is always
  // clean. Idempotent; the destructor calls it.
  CloseReport close();

 private:
  struct State;
  State& live() const;  // throws std::logic_error when moved from
  std::unique_ptr<State> s_;
};

}  // namespace zkit
