// Private machinery the typed sockets share: waking a blocked receiver from another thread, waiting
// for a socket, holding a received batch and handing out its records, and sent-batch accounting.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <zmq.hpp>

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

// Holds the batch (or raw frame) being handed out.
class Inbox {
 public:
  // Decodes frame; false when it is not a valid batch (counted in decode_errors, dropped).
  bool hold(zmq::message_t&& frame, const envelope::Limits& limits, SocketStats& stats);
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

  PatternOptions options;
  zmq::socket_t socket;
  Waker waker;
  Inbox inbox;
  SocketStats stats;
  CloseReport report;
  bool closed = false;

 protected:
  // Reads frames that are already there; true as soon as the inbox holds messages.
  virtual bool take_ready() = 0;
  virtual void annotate(Message&) {}

 private:
  std::size_t dispatch(const MessageHandler& handler);
  bool receive_only_;  // SUB/PULL: close() with linger 0
  const char* name_;
};

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
