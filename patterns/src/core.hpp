// Private machinery the typed sockets share: waking a blocked receiver from another thread, waiting
// for a socket, holding a received batch and handing out its records, the sender's Outbox (batches
// to ZeroMQ, the blocked slot, close with linger), and the moved-from check.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <zmq.hpp>

#include "zkit/batcher.hpp"
#include "zkit/envelope.hpp"
#include "zkit/pattern.hpp"
#include "zkit/stats.hpp"

namespace zkit::detail {

// A stop request: an atomic flag plus an inproc PAIR pair in the application's context, so a
// blocked zmq::poll wakes at once. wake() is thread-safe; everything else is the owner's.
class Waker {
 public:
  explicit Waker(zmq::context_t& context);
  void wake();
  bool requested() const noexcept { return flag_.load(std::memory_order_acquire); }
  // Consumes the request (the flag and any wake-up frames).
  void clear();
  zmq::socket_t& socket() noexcept { return rx_; }
  void close();

 private:
  zmq::socket_t rx_;
  zmq::socket_t tx_;
  std::mutex mutex_;  // tx_ is used by whichever thread calls wake()
  std::atomic<bool> flag_{false};
};

enum class Wait { kReadable, kTimeout, kStopped };
// Waits until socket is readable, the timeout passes (negative: never) or a stop is requested.
Wait wait_readable(zmq::socket_t& socket, Waker& waker, std::chrono::milliseconds timeout);
// As above with an absolute deadline (empty: none).
Wait wait_until(zmq::socket_t& socket, Waker& waker,
                std::optional<std::chrono::steady_clock::time_point> deadline);

std::string attach(zmq::socket_t& socket, const std::string& endpoint, bool bind);

// {handle, 0, ZMQ_POLLIN | extra, 0}: the poll contract's item (pattern.hpp).
inline zmq_pollitem_t poll_item_of(zmq::socket_t& socket, short extra = 0) noexcept {
  return {socket.handle(), 0, static_cast<short>(ZMQ_POLLIN | extra), 0};
}
// An item that never fires: what a moved-from socket offers a poll loop (poll_item() is noexcept).
inline zmq_pollitem_t inert_poll_item() noexcept { return {nullptr, -1, 0, 0}; }

// Holds the batch (or raw frame) being handed out.
class Inbox {
 public:
  // Decodes frame and holds it; else the codec's Status (nothing held, nothing counted but
  // bytes_in: the caller counts the error, see Receiver::hold).
  Status hold(zmq::message_t&& frame, const envelope::Limits& limits, SocketStats& stats);
  void hold_raw(zmq::message_t&& frame, SocketStats& stats);
  // The next record into m (data, producer_id, seq); false when nothing is held.
  bool next(Message& m, SocketStats& stats);
  bool empty() const noexcept { return remaining_ == 0; }
  const envelope::Header* header() const noexcept { return batch_ ? &batch_->header() : nullptr; }
  // Drops what is held; returns how many messages that was.
  std::size_t discard() noexcept;

 private:
  std::optional<envelope::Batch> batch_;
  envelope::Batch::Iterator it_;
  zmq::message_t raw_;
  bool raw_held_ = false;
  std::size_t remaining_ = 0;
};

// The receive loop every receiving socket shares; a socket supplies take_ready() (read what frames
// are there into the inbox) and may annotate each message (the topic).
class Receiver {
 public:
  using Clock = std::chrono::steady_clock;
  Receiver(zmq::context_t& context, zmq::socket_type type, PatternOptions options,
           const char* name);
  virtual ~Receiver() = default;
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  std::optional<Message> receive(std::chrono::milliseconds timeout);
  std::size_t poll_once(const MessageHandler& handler, std::chrono::milliseconds timeout);
  void run(const MessageHandler& handler);
  // Closes the socket; a receive-only one (SUB, PULL) with linger 0, whatever options say.
  CloseReport close();
  void check_open() const;

  // Fills the inbox, waiting until deadline (empty: for ever); false on timeout or stop.
  bool fill(std::optional<Clock::time_point> deadline);
  static std::optional<Clock::time_point> deadline_of(std::chrono::milliseconds timeout);
  // The poll contract's item (inert once closed), with extra events (ZMQ_POLLOUT) added.
  zmq_pollitem_t poll_item(short extra = 0) noexcept;
  // Now while messages are held (the step must run with nothing new to read); else empty.
  std::optional<Clock::time_point> held_deadline() const noexcept {
    if (closed || inbox.empty()) return std::nullopt;
    return Clock::now();
  }

  PatternOptions options;
  zmq::socket_t socket;
  Waker waker;
  Inbox inbox;
  SocketStats stats;
  CloseReport report;
  bool closed = false;

  // Decodes frame into the inbox; false when it is not a valid batch (see malformed()).
  bool hold(zmq::message_t&& frame);
  // Counts a frame (or record) dropped as malformed in stats.decode_errors and passes why to
  // on_error: every drop counted there goes through here.
  void malformed(const Status& why);

  ErrorCallback on_error;  // empty: drops are only counted

 protected:
  // Reads frames that are already there; true as soon as the inbox holds messages.
  virtual bool take_ready() = 0;
  virtual void annotate(Message&) {}

 private:
  std::size_t dispatch(const MessageHandler& handler);
  bool receive_only_;  // SUB/PULL: close() with linger 0
  const char* name_;
};

// The owner of a public handle's state; throws std::logic_error("zkit::<type>: used after move")
// when it has been moved from.
template <class T>
T& live(const std::unique_ptr<T>& impl, const char* type) {
  if (!impl) throw std::logic_error(std::string("zkit::") + type + ": used after move");
  return *impl;
}

// Closes what impl holds (if anything) and puts next in its place: a handle's move-assignment and
// destructor.
template <class T>
void replace(std::unique_ptr<T>& impl, std::type_identity_t<std::unique_ptr<T>>&& next) noexcept {
  if (impl && impl != next) impl->close();
  impl = std::move(next);
}

// What handing one frame to ZeroMQ did.
enum class Sent {
  kOk,
  kFull,  // no room within the send timeout (EAGAIN); the frame is untouched
  kGone,  // the peer has gone (ROUTER_MANDATORY); the frame is dropped whatever the policy
};

// What a sender does with a sealed batch that finds no room within its send timeout.
enum class AtFull {
  kKeep,  // keep it in the blocked slot and refuse new messages until it has gone (Pusher, Client)
  kDrop,  // drop it, counted in dropped_batches/dropped_messages (Publisher, Server)
};

// The sender machinery of every typed socket: one Batcher per destination (Pusher and Client use
// the one destination ""; a Publisher has one per topic, a Server one per routing envelope), the
// sealed batches handed to ZeroMQ in order through the socket's send function, the blocked slot
// (a sealed batch waiting for room at the high-water mark, kKeep), and close() with the linger.
// Every batch handed over is counted in stats (count_sent); every one given up is counted too.
// Belongs to its socket's thread; stats and send must outlive it.
class Outbox {
 public:
  using Clock = std::chrono::steady_clock;
  // Hands frame, bound for to, to ZeroMQ.
  using SendFn = std::function<Sent(std::string_view to, zmq::message_t& frame)>;
  struct Policy {
    AtFull at_full = AtFull::kKeep;
    bool one_series = false;  // every destination's batches share one producer id and seq series
    // Destinations holding nothing beyond this many are forgotten by poll() (a Server's peers).
    std::size_t idle_kept = std::numeric_limits<std::size_t>::max();
  };

  // Throws std::invalid_argument for bad batch options (checked now, not at the first send).
  Outbox(BatcherOptions batch, Policy policy, SocketStats& stats, SendFn send);
  Outbox(Outbox&&) = delete;  // last_ points into batchers_; lives in its socket's Impl

  // Adds message to to's batch and hands over what that seals. false: no room within the send
  // timeout, and the message did not go: kKeep: it was refused (the blocked batch is still
  // waiting); kDrop: it was in a batch dropped and counted by this call (earlier batches dropped
  // by the call are counted but do not make it false). Throws std::length_error as Batcher does.
  bool add(std::string_view to, std::span<const std::byte> message);
  // Hands one unbatched frame (raw mode: one message) over now; false when there was no room
  // (kKeep: refused; kDrop: dropped and counted).
  bool send_now(std::string_view to, zmq::message_t&& frame);
  // Retries the blocked batch, seals what is due and hands every sealed batch over; then forgets
  // idle destinations beyond policy.idle_kept.
  void poll(Clock::time_point now = Clock::now());
  // Seals everything held and hands it over; false when a batch is left in the blocked slot.
  bool flush();
  bool blocked() const noexcept { return blocked_.has_value(); }
  // The earliest deadline of a held batch; empty when nothing is held. A blocked batch adds no
  // deadline: a poll loop waits for ZMQ_POLLOUT instead (see poll_events()).
  std::optional<Clock::time_point> deadline() const noexcept;
  // ZMQ_POLLOUT while a batch is blocked, else 0.
  short poll_events() const noexcept { return blocked_ ? ZMQ_POLLOUT : 0; }
  // Seals everything, hands batches over until linger has passed (setting the socket's send
  // timeout to what is left), counts what is left in the report and stats.unsent_messages, and sets
  // the socket's ZMQ_LINGER to what is left. The caller then closes the socket.
  CloseReport close(zmq::socket_t& socket, std::chrono::milliseconds linger);

 private:
  using Map = std::map<std::string, Batcher, std::less<>>;
  Map::iterator find(std::string_view to);
  bool drain(const std::string& to, Batcher& b);
  bool drain_all();
  bool hand_over(std::string_view to, SealedBatch& sb);
  void count_unsent(const SealedBatch& sb);

  BatcherOptions batch_;
  Policy policy_;
  SocketStats& stats_;
  SendFn send_;
  SequenceCounter sequence_;  // policy.one_series
  Map batchers_;
  Map::iterator last_ = batchers_.end();  // the destination of the last add()
  std::optional<SealedBatch> blocked_;
  std::string blocked_to_;
  CloseReport report_;
  bool closing_ = false;
  bool last_dropped_ = false;  // the last hand_over() gave its batch up
};

// Sets ZMQ_SNDTIMEO from options.send_timeout, or unset_ms when it is unset.
void set_send_timeout(zmq::socket_t& socket, const PatternOptions& options, int unset_ms);

std::optional<std::chrono::steady_clock::time_point> earliest(
    std::optional<std::chrono::steady_clock::time_point> a,
    std::optional<std::chrono::steady_clock::time_point> b) noexcept;

// Counts a batch handed to ZeroMQ.
inline void count_sent(SocketStats& s, std::size_t records, std::size_t bytes, FlushReason reason) {
  s.messages_out += records;
  s.batches_out += 1;
  s.bytes_out += bytes;
  s.flushes[static_cast<std::size_t>(reason)] += 1;
}

// Throws std::length_error when a message is over the record limit.
void check_size(std::size_t size, const PatternOptions& options);

inline int to_ms(std::chrono::steady_clock::duration d) {
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(d).count();
  return ms < 0 ? 0 : static_cast<int>(std::min<long long>(ms, 1 << 30));
}

}  // namespace zkit::detail
