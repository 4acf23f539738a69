// The reliable link: a ReliableSender (DEALER) streams batches to a ReliableReceiver (ROUTER) and
// keeps every batch until the receiver acknowledges it; the receiver hands each batch to the
// application exactly once while both processes live, and acknowledges it only after the
// application's handler returned (or, in manual mode, after ack()). Many senders may connect to one
// receiver. docs/protocol.md describes the wire messages, states and timers.
//
// Semantics in short:
//   - Every batch gets a link sequence number (1, 2, ... per sender session). Acknowledgements are
//     cumulative over it; the receiver accepts batches of a session only in link order and drops
//     any that arrive early (go-back-N: the sender resends from the batch the receiver's NACK
//     names, or from the oldest unacknowledged one after a reconnect; when acks stop coming for
//     resend_timeout, the sender probes with a PING that provokes the NACK if anything is missing).
//   - Flow control by credit, counted in batches: the sender never has more than min(window, the
//     receiver's credit) batches in flight. A receiver can withhold credit (pause_credit()).
//   - Duplicate suppression by the envelope's (producer_id, seq): a batch whose seq is not above
//     the highest already delivered for its producer, and less than duplicate_window below it, is
//     acknowledged but not delivered again. A seq further below restarts that producer's sequence
//     (counted in seq_restarts), so a forged seq 2^63 cannot make the real producer's batches look
//     like repeats (docs/protocol.md says what an unauthenticated peer can still do).
//     After a receiver restart that table is empty unless the application seeds it (seed());
//     without a seed, a batch that was delivered but whose acknowledgement was lost is delivered a
//     second time.
//   - Heartbeats: the sender pings every heartbeat_interval and the receiver answers; a side that
//     hears nothing for heartbeat_timeout considers the peer dead (the sender then says HELLO again
//     and resends what is unacknowledged).
//
// Threads: each object owns one socket and belongs to the thread that drives it (no hidden
// threads); only ReliableReceiver::stop() may be called from another thread. Objects are move-only;
// a moved-from object throws std::logic_error("zkit::<Type>: used after move") from every member
// except the destructor, move-assignment, close() and stop() (no-ops), and poll_item() and
// next_deadline(), which are noexcept and report nothing to wait for ({nullptr, -1, 0, 0}; empty).
// Blocking: poll_once(timeout), run(), wait_all_acked(timeout), and send() while the sender's
// backlog is full, block the calling thread (driving the protocol meanwhile); everything else
// returns at once.
//
// Poll loops (zkit/pattern.hpp): poll_item() is what to wait on and next_deadline() when the
// non-blocking step (poll_once(0ms), on either side) must run even without an event. The timers are
// real ones only: an idle sender wakes for its heartbeat, an idle receiver not at all.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <zmq.hpp>

#include "zkit/batcher.hpp"
#include "zkit/envelope.hpp"
#include "zkit/options.hpp"
#include "zkit/pattern.hpp"
#include "zkit/status.hpp"

namespace zkit {

// ---- Sender -------------------------------------------------------------------------------------

struct ReliableSenderOptions {
  SocketOptions socket;          // DEALER options (routing_id, CURVE, linger: see close())
  BatcherOptions batch;          // flush policy; batch.producer_id 0: a random id per object
  envelope::Limits limits;       // send_batch() refuses frames over limits.max_batch_bytes
  std::size_t window = 64;       // most batches in flight (sent, not yet acknowledged)
  std::size_t max_queued = 128;  // most batches held (in flight + waiting); send() waits beyond
  std::chrono::milliseconds heartbeat_interval{1000};  // PING period; HELLO retry period
  std::chrono::milliseconds heartbeat_timeout{5000};   // silence after which the receiver is dead
  std::chrono::milliseconds resend_timeout{2000};      // no ack progress this long: probe (PING);
                                                       // the receiver's NACK starts the resend
  std::uint64_t first_seq = 1;  // envelope seq of the first batch send() seals (set it with
                                // batch.producer_id to continue a producer across restarts)
};

// Reported once per batch, in send order, when the receiver acknowledged it.
struct AckedBatch {
  std::uint64_t id = 0;           // send_batch()'s id; for batches made by send(), the envelope seq
  std::uint64_t producer_id = 0;  // from the batch envelope
  std::uint64_t seq = 0;          // from the batch envelope
  std::uint64_t link_seq = 0;     // the link sequence number it travelled under
};

struct ReliableSenderStats {
  std::uint64_t messages = 0;        // messages given to send()
  std::uint64_t batches_queued = 0;  // batches sealed or given to send_batch()
  std::uint64_t batches_sent = 0;    // DATA messages put on the wire, resends included
  std::uint64_t batches_acked = 0;
  std::uint64_t batches_resent = 0;
  std::uint64_t credit_stalls = 0;  // times a waiting batch found no credit or window
  std::uint64_t nacks = 0;          // NACKs received
  std::uint64_t timeouts = 0;       // probes sent because resend_timeout passed
  std::uint64_t hellos = 0;         // HELLOs sent
  std::uint64_t resets = 0;         // RESETs received (the receiver lost our session)
  std::uint64_t peer_lost = 0;      // heartbeat timeouts
  std::uint64_t decode_errors = 0;  // malformed or foreign frames received and dropped
  std::uint64_t send_would_block = 0;  // send() timeouts and send_batch() refusals: backlog full
  std::uint64_t in_flight = 0;      // now
  std::uint64_t queued = 0;         // now: held batches (in flight + waiting)
  std::uint64_t peers = 0;          // now: 1 when the receiver is alive, else 0

  std::string to_json() const;  // every field above, as one flat JSON object
};

class ReliableSender {
 public:
  using AckCallback = std::function<void(const AckedBatch&)>;
  using ErrorCallback = std::function<void(const Status&)>;

  // Creates the DEALER socket with options.socket applied. Throws std::invalid_argument on a zero
  // window or max_queued < window, zmq::error_t from socket options.
  ReliableSender(zmq::context_t& context, ReliableSenderOptions options = {});
  ~ReliableSender();
  ReliableSender(ReliableSender&&) noexcept;
  ReliableSender& operator=(ReliableSender&&) noexcept;
  ReliableSender(const ReliableSender&) = delete;
  ReliableSender& operator=(const ReliableSender&) = delete;

  // Return the endpoint (bind resolves "*"). zmq::error_t propagates. The usual topology is the
  // receiver binding and senders connecting; either side may bind.
  std::string bind(const std::string& endpoint);
  std::string connect(const std::string& endpoint);

  // Buffers one message in the batcher. Returns true when accepted. While the backlog holds
  // max_queued batches it drives the protocol (as poll_once) up to `timeout` (negative: without
  // limit) and returns false (counted in send_would_block) if the backlog stayed full. Throws
  // std::length_error when the message alone exceeds batch.max_bytes.
  bool send(std::span<const std::byte> message,
            std::chrono::milliseconds timeout = std::chrono::milliseconds(-1));
  bool send(std::string_view message,
            std::chrono::milliseconds timeout = std::chrono::milliseconds(-1)) {
    return send(std::as_bytes(std::span(message.data(), message.size())), timeout);
  }
  // Seals what the batcher holds; it goes out as credit allows.
  void flush();

  // Queues a pre-encoded batch frame unchanged (its producer_id and seq are the original
  // producer's; the spool forwards stored frames this way). `id` comes back in AckedBatch.
  // Returns Corruption/Unsupported when the frame is not a valid batch header, LimitExceeded when
  // it is over limits.max_batch_bytes or the backlog is full (max_queued, also counted in
  // send_would_block); the frame is then left untouched with the caller. Never blocks.
  [[nodiscard]] Status send_batch(zmq::message_t&& frame, std::uint64_t id);
  // The same for a trusted frame (read back from a checksummed store): the caller vouches that it
  // is a valid batch whose envelope names producer_id and seq; it is not peeked. Only the size
  // limit and the backlog are checked.
  [[nodiscard]] Status send_batch(zmq::message_t&& frame, std::uint64_t id,
                                  std::uint64_t producer_id, std::uint64_t seq);

  // True when the receiver is alive and credit and window allow one more batch in flight.
  bool has_credit() const;
  // True when a batch handed over now would go on the wire at once: has_credit() and nothing
  // waiting ahead of it.
  bool can_send() const;

  // Called during poll_once() (and the calls that drive it) for each acknowledged batch, in order.
  void on_acked(AckCallback callback);
  // Called for every malformed or unexpected message from the receiver, which is then counted
  // (decode_errors) and dropped; the Status says what was wrong (and where, for decode errors).
  void on_error(ErrorCallback callback);

  // The DEALER to poll: ZMQ_POLLIN, plus ZMQ_POLLOUT while a HELLO or DATA waits for room (no peer
  // yet, or the high-water mark).
  zmq_pollitem_t poll_item() noexcept;
  // When poll_once(0ms) must run without an event: the batcher's flush, the heartbeat (PING, and
  // the peer's heartbeat_timeout), the resend probe while batches are in flight, the HELLO retry.
  // Never empty while open: a live link always has its heartbeat.
  std::optional<std::chrono::steady_clock::time_point> next_deadline() const noexcept;

  // Waits up to `timeout` (0: not at all, negative: without limit) for a message or the next timer,
  // then handles everything that arrived, runs the timers and sends what credit allows. Returns the
  // number of batches acknowledged during the call.
  std::size_t poll_once(std::chrono::milliseconds timeout);
  // Flushes, then polls until every batch is acknowledged (true) or `timeout` passed (false).
  bool wait_all_acked(std::chrono::milliseconds timeout);

  std::size_t in_flight() const;
  std::size_t unacked() const;  // held batches (in flight + waiting), sealed ones only
  bool connected() const;       // the receiver answered and is alive
  std::uint64_t session_id() const;
  std::uint64_t producer_id() const;
  ReliableSenderStats stats() const;

  // Closes the socket without waiting (as in ZeroMQ, socket.linger then bounds how long the
  // context's termination waits for frames already handed over). Every batch never acknowledged
  // is dropped and reported: unsent_batches (the unsealed batcher content counts as one) and
  // unsent_messages (their records). Call wait_all_acked() first to lose nothing. Idempotent (a
  // second call reports nothing); the destructor calls it.
  CloseReport close();

 private:
  struct State;
  State& live() const;  // throws std::logic_error when moved from
  std::unique_ptr<State> s_;
  AckCallback on_acked_;
};

// ---- Receiver -----------------------------------------------------------------------------------

struct ReliableReceiverOptions {
  SocketOptions socket;
  envelope::Limits limits;  // every received batch is decoded against these
  std::size_t window = 64;  // credit per sender session: batches delivered or in
                            // transit but not acknowledged, at most
  bool manual_ack = false;  // true: a batch is acknowledged by ack(token), not by the
                            // handler returning
  std::chrono::milliseconds heartbeat_timeout{5000};  // a session silent this long is dead
  std::size_t max_sessions = 1024;    // session states kept (keep it above the live senders);
                                      // beyond, the longest-silent session that is dead (silent
                                      // for heartbeat_timeout) and holds nothing unacknowledged
                                      // is forgotten; when none is, the new session is refused
                                      // (RESET, counted in sessions_refused)
  std::size_t max_producers = 65536;  // (producer_id -> highest seq) entries kept for duplicate
                                      // suppression; beyond, the longest-unseen eighth is forgotten
  std::uint64_t duplicate_window = 65536;  // a seq at most this far below the highest delivered
                                           // is a repeat; further below, a restart (must be > 0)
  std::size_t max_drain = 256;        // messages handled per poll_once before acks go out
};

// Names one delivered batch for ack() in manual mode. Cheap to copy and store.
struct AckToken {
  std::uint64_t session = 0;
  std::uint64_t link_seq = 0;
  std::uint64_t incarnation = 0;  // which state of the session (a forgotten one may come back)
};

// What the handler receives for each new batch.
struct Delivery {
  std::uint64_t producer_id = 0;  // from the envelope
  std::uint64_t seq = 0;          // from the envelope
  std::uint64_t session = 0;      // the sender session it came over
  // The ZAP User-Id of the DATA message (with zkit's ZapHandler: the sender's Z85 CURVE public
  // key); empty without authentication. Valid while the handler runs.
  std::string_view peer_key;
  // The decoded, validated batch; batch.frame() holds the frame bytes exactly as received. The
  // handler may take the frame (std::move(batch).release_frame()); the receiver does not touch the
  // batch after the handler returns.
  envelope::Batch& batch;
  AckToken token;  // for ack() in manual mode
};

struct ReliableReceiverStats {
  std::uint64_t batches_received = 0;   // DATA messages, resends included
  std::uint64_t batches_delivered = 0;  // handed to the handler
  std::uint64_t messages_delivered = 0;
  std::uint64_t duplicates = 0;     // suppressed: link resends and (producer, seq) repeats
  std::uint64_t seq_restarts = 0;   // a producer's seq fell more than duplicate_window below its
                                    // highest: delivered as new, its sequence starts again there
  std::uint64_t out_of_order = 0;   // dropped because an earlier link seq was missing
  std::uint64_t bad_batches = 0;    // DATA whose batch did not decode: counted, acknowledged,
                                    // not delivered (see docs/protocol.md)
  std::uint64_t decode_errors = 0;  // malformed link messages: dropped
  std::uint64_t acks_sent = 0;
  std::uint64_t nacks_sent = 0;
  std::uint64_t resets_sent = 0;
  std::uint64_t sessions_refused = 0;  // HELLOs refused (RESET) because max_sessions were all
                                       // alive or held unacknowledged batches
  std::uint64_t sessions_evicted = 0;  // dead, idle session states forgotten for a new one
  std::uint64_t acks_for_forgotten_sessions = 0;  // ack() tokens of sessions no longer kept
  std::uint64_t credit_paused = 0;  // now: 1 while credit is withheld
  std::uint64_t unacked = 0;        // now: delivered, not yet acknowledged (manual mode)
  std::uint64_t sessions = 0;       // now: session states kept
  std::uint64_t peers = 0;          // now: sessions heard within heartbeat_timeout
  std::uint64_t producers = 0;      // now: duplicate-suppression entries

  std::string to_json() const;  // every field above, as one flat JSON object
};

class ReliableReceiver {
 public:
  using Handler = std::function<void(Delivery&)>;
  using ErrorCallback = std::function<void(const Status&)>;

  // Creates the ROUTER socket. Throws std::invalid_argument on a zero window or max_drain,
  // zmq::error_t from socket options.
  ReliableReceiver(zmq::context_t& context, ReliableReceiverOptions options = {});
  ~ReliableReceiver();
  ReliableReceiver(ReliableReceiver&&) noexcept;
  ReliableReceiver& operator=(ReliableReceiver&&) noexcept;
  ReliableReceiver(const ReliableReceiver&) = delete;
  ReliableReceiver& operator=(const ReliableReceiver&) = delete;

  std::string bind(const std::string& endpoint);
  std::string connect(const std::string& endpoint);

  // Declares that batches of `producer_id` up to `highest_seq` were already delivered and made
  // durable (recovered from disk after a restart): they are acknowledged but not delivered again.
  // Never lowers what the receiver already knows. Call before or between polls.
  void seed(std::uint64_t producer_id, std::uint64_t highest_seq);

  // The ROUTER to poll (ZMQ_POLLIN).
  zmq_pollitem_t poll_item() noexcept;
  // Now while acknowledgements made by ack() or resume_credit() wait to go out (poll_once(0ms)
  // sends them); otherwise empty: the receiver has no timer of its own (it answers PINGs).
  std::optional<std::chrono::steady_clock::time_point> next_deadline() const noexcept;

  // Waits up to `timeout` (0: not at all, negative: without limit) for messages, handles up to
  // max_drain of them (calling `handler` for each new batch, in link order per session), then
  // sends the acknowledgements and credit that became due. Returns the batches delivered.
  // An exception from the handler propagates; that batch is neither acknowledged nor counted as
  // delivered, and the sender's resend will offer it again.
  std::size_t poll_once(const Handler& handler, std::chrono::milliseconds timeout);
  // Polls until stop().
  void run(const Handler& handler);
  // Makes run() (or a poll_once waiting) return at once; a stop requested while neither runs ends
  // the next one. Any thread, also the handler.
  void stop() noexcept;

  // Manual mode: acknowledges the batch `token` names and every earlier batch of its session; the
  // acknowledgement goes out on the next poll_once. Never throws for a token of a session the
  // receiver no longer keeps (counted in acks_for_forgotten_sessions; the sender resends, and the
  // resend is acknowledged as a duplicate) or a token already acknowledged. Throws
  // std::invalid_argument for a token beyond what its session delivered, or when manual_ack is off.
  void ack(const AckToken& token);

  // Called for every message that is counted and dropped (decode_errors) and for every batch that
  // does not decode (bad_batches), with a Status that says what was wrong and where. Logging it is
  // the application's choice; the receiver carries on with the other peers either way.
  void on_error(ErrorCallback callback);

  // Withholds credit: the senders may fill what was granted, then stall. Acks still flow.
  void pause_credit();
  // Grants credit again (at once, to every live session).
  void resume_credit();
  bool credit_paused() const;

  std::size_t peers() const;
  std::size_t unacked() const;
  ReliableReceiverStats stats() const;

  // Sends the acknowledgements due, then closes the socket. A receiver holds no data of its own,
  // so the report is always clean (batches delivered but not acknowledged are resent by their
  // senders). Idempotent; the destructor calls it.
  CloseReport close();

 private:
  struct State;
  State& live() const;  // throws std::logic_error when moved from
  std::unique_ptr<State> s_;
};

}  // namespace zkit
