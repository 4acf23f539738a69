// Shared machinery of the typed sockets (see core.hpp).
#include "core.hpp"

#include <algorithm>
#include <stdexcept>

namespace zkit::detail {

namespace {
std::atomic<std::uint64_t> g_waker_serial{0};
}

Waker::Waker(zmq::context_t& context)
    : rx_(context, zmq::socket_type::pair), tx_(context, zmq::socket_type::pair) {
  // Unique per context; inproc names live in the context, not the process.
  std::string name = "inproc://zkit-waker-" + std::to_string(++g_waker_serial) + "-" +
                     std::to_string(reinterpret_cast<std::uintptr_t>(this));
  rx_.set(zmq::sockopt::linger, 0);
  tx_.set(zmq::sockopt::linger, 0);
  rx_.bind(name);
  tx_.connect(name);
}

void Waker::wake() {
  flag_.store(true, std::memory_order_release);
  std::lock_guard<std::mutex> lock(mutex_);
  if (tx_.handle() == nullptr) return;
  // A full pipe already holds a wake-up; dontwait keeps stop() from blocking.
  (void)tx_.send(zmq::const_buffer(nullptr, 0), zmq::send_flags::dontwait);
}

void Waker::clear() {
  flag_.store(false, std::memory_order_release);
  zmq::message_t m;
  while (rx_.recv(m, zmq::recv_flags::dontwait)) {
  }
}

void Waker::close() {
  std::lock_guard<std::mutex> lock(mutex_);
  tx_.close();
  rx_.close();
}

Wait wait_until(zmq::socket_t& socket, Waker& waker,
                std::optional<std::chrono::steady_clock::time_point> deadline) {
  for (;;) {
    if (waker.requested()) return Wait::kStopped;
    // zmq::poll counts whole milliseconds, and the Batcher's adaptive deadline is often tens of
    // microseconds away: rounding it up to 1 ms costs a request/reply round trip ~1 ms. So poll
    // for the whole milliseconds left (rounded down), then with timeout 0 until the deadline. The
    // spin is bounded: under 1 ms per wait (usually the few tens of us of a batch deadline), and
    // it still returns the moment the socket is readable or a stop is requested.
    long timeout = -1;
    if (deadline) {
      auto left = std::chrono::floor<std::chrono::milliseconds>(*deadline -
                                                                std::chrono::steady_clock::now());
      timeout =
          left.count() < 0 ? 0 : static_cast<long>(std::min<long long>(left.count(), 1 << 30));
    }
    zmq::pollitem_t items[2] = {{socket.handle(), 0, ZMQ_POLLIN, 0},
                                {waker.socket().handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 2, std::chrono::milliseconds(timeout));
    if (items[0].revents & ZMQ_POLLIN) return Wait::kReadable;
    if (items[1].revents & ZMQ_POLLIN) {
      if (waker.requested()) return Wait::kStopped;
      waker.clear();  // a wake-up left over from a request already consumed
      continue;
    }
    if (deadline && std::chrono::steady_clock::now() >= *deadline) return Wait::kTimeout;
  }
}

Wait wait_readable(zmq::socket_t& socket, Waker& waker, std::chrono::milliseconds timeout) {
  if (timeout.count() < 0) return wait_until(socket, waker, std::nullopt);
  return wait_until(socket, waker, std::chrono::steady_clock::now() + timeout);
}

std::string attach(zmq::socket_t& socket, const std::string& endpoint, bool bind) {
  return zkit::attach(socket, Endpoint{endpoint, bind});
}

Status Inbox::hold(zmq::message_t&& frame, const envelope::Limits& limits, SocketStats& stats) {
  stats.bytes_in += frame.size();
  auto decoded = envelope::decode(std::move(frame), limits);
  if (!decoded) return decoded.status();
  batch_.emplace(std::move(decoded).value());
  raw_held_ = false;
  it_ = batch_->begin();
  remaining_ = batch_->size();
  ++stats.batches_in;
  std::uint64_t now = envelope::unix_now_ns();
  std::uint64_t created = batch_->header().created_ns;
  if (created != 0 && created <= now) stats.latency.record(now - created);
  return Status::ok();
}

void Inbox::hold_raw(zmq::message_t&& frame, SocketStats& stats) {
  stats.bytes_in += frame.size();
  ++stats.batches_in;
  batch_.reset();
  raw_ = std::move(frame);
  raw_held_ = true;
  remaining_ = 1;
}

bool Inbox::next(Message& m, SocketStats& stats) {
  if (remaining_ == 0) return false;
  --remaining_;
  ++stats.messages_in;
  if (raw_held_) {
    m.data = {static_cast<const std::byte*>(raw_.data()), raw_.size()};
    m.producer_id = 0;
    m.seq = 0;
    return true;
  }
  m.data = *it_;
  ++it_;
  m.producer_id = batch_->header().producer_id;
  m.seq = batch_->header().seq;
  return true;
}

std::size_t Inbox::discard() noexcept {
  std::size_t n = remaining_;
  remaining_ = 0;
  batch_.reset();
  raw_held_ = false;
  return n;
}

Receiver::Receiver(zmq::context_t& context, zmq::socket_type type, PatternOptions o,
                   const char* name)
    : options(std::move(o)),
      socket(context, type),
      waker(context),
      receive_only_(type == zmq::socket_type::sub || type == zmq::socket_type::pull),
      name_(name) {
  // Every receiving socket refuses frames its decoder would refuse, before allocating them.
  zkit::apply(socket, options.socket, options.limits);
}

bool Receiver::hold(zmq::message_t&& frame) {
  Status s = inbox.hold(std::move(frame), options.limits, stats);
  if (s) return true;
  malformed(s);
  return false;
}

void Receiver::malformed(const Status& why) {
  ++stats.decode_errors;
  if (on_error) on_error(why);
}

void Receiver::check_open() const {
  if (closed) throw std::invalid_argument(std::string("zkit::") + name_ + " used after close()");
}

std::optional<Receiver::Clock::time_point> Receiver::deadline_of(std::chrono::milliseconds t) {
  if (t.count() < 0) return std::nullopt;
  return Clock::now() + t;
}

zmq_pollitem_t Receiver::poll_item(short extra) noexcept {
  return closed ? inert_poll_item() : poll_item_of(socket, extra);
}

bool Receiver::fill(std::optional<Clock::time_point> deadline) {
  if (waker.requested()) return false;
  while (inbox.empty()) {
    if (take_ready()) return true;
    if (wait_until(socket, waker, deadline) != Wait::kReadable) return false;
  }
  return true;
}

std::size_t Receiver::dispatch(const MessageHandler& handler) {
  std::size_t n = 0;
  Message m;
  while (!waker.requested() && inbox.next(m, stats)) {
    annotate(m);
    handler(m);
    ++n;
  }
  return n;
}

std::optional<Message> Receiver::receive(std::chrono::milliseconds timeout) {
  check_open();
  // Fast path: a held batch needs no clock read and no wait.
  if ((!inbox.empty() && !waker.requested()) || fill(deadline_of(timeout))) {
    Message m;
    inbox.next(m, stats);
    annotate(m);
    return m;
  }
  if (waker.requested()) waker.clear();
  return std::nullopt;
}

std::size_t Receiver::poll_once(const MessageHandler& handler, std::chrono::milliseconds timeout) {
  check_open();
  std::size_t n = 0;
  if (fill(deadline_of(timeout))) n = dispatch(handler);
  if (waker.requested()) waker.clear();
  return n;
}

void Receiver::run(const MessageHandler& handler) {
  check_open();
  try {
    while (fill(std::nullopt)) dispatch(handler);
  } catch (const zmq::error_t& e) {
    if (e.num() != ETERM) throw;
  }
  waker.clear();
}

CloseReport Receiver::close() {
  if (closed) return report;
  closed = true;
  stats.dropped_messages += inbox.discard();
  // The linger is for senders. A SUB or PULL has no data of its own to deliver; a SUB's
  // subscription messages queued for a publisher that has gone would otherwise hold the
  // context's termination for the whole linger (libzmq 4.3.4, tcp).
  if (receive_only_) socket.set(zmq::sockopt::linger, 0);
  socket.close();
  waker.close();
  return report;
}

std::optional<std::chrono::steady_clock::time_point> earliest(
    std::optional<std::chrono::steady_clock::time_point> a,
    std::optional<std::chrono::steady_clock::time_point> b) noexcept {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}

void set_send_timeout(zmq::socket_t& socket, const PatternOptions& options, int unset_ms) {
  socket.set(zmq::sockopt::sndtimeo,
             options.send_timeout ? static_cast<int>(options.send_timeout->count()) : unset_ms);
}

Outbox::Outbox(BatcherOptions batch, Policy policy, SocketStats& stats, SendFn send)
    : batch_(std::move(batch)), policy_(policy), stats_(stats), send_(std::move(send)) {
  // One series needs one producer id; otherwise each destination's Batcher picks its own.
  if (policy_.one_series && batch_.producer_id == 0) batch_.producer_id = random_producer_id();
  Batcher check(batch_);
}

Outbox::Map::iterator Outbox::find(std::string_view to) {
  if (last_ != batchers_.end() && last_->first == to) return last_;
  last_ = batchers_.find(to);
  if (last_ == batchers_.end()) {
    last_ =
        batchers_
            .emplace(std::string(to), Batcher(batch_, policy_.one_series ? &sequence_ : nullptr))
            .first;
  }
  return last_;
}

bool Outbox::hand_over(std::string_view to, SealedBatch& sb) {
  std::size_t bytes = sb.frame.size();
  Sent r = send_(to, sb.frame);
  last_dropped_ = false;
  if (r == Sent::kOk) {
    count_sent(stats_, sb.records, bytes, sb.reason);
    return true;
  }
  if (r == Sent::kFull) {
    ++stats_.send_would_block;
    if (policy_.at_full == AtFull::kKeep) return false;
  }
  if (closing_) {
    count_unsent(sb);
  } else {
    stats_.dropped_messages += sb.records;
    ++stats_.dropped_batches;
  }
  last_dropped_ = true;
  return true;
}

void Outbox::count_unsent(const SealedBatch& sb) {
  report_.unsent_messages += sb.records;
  ++report_.unsent_batches;
}

bool Outbox::drain(const std::string& to, Batcher& b) {
  // The blocked batch goes first: batches leave in the order they were sealed.
  if (blocked_) {
    if (!hand_over(blocked_to_, *blocked_)) return false;
    blocked_.reset();
  }
  while (auto sb = b.take()) {
    if (!hand_over(to, *sb)) {
      blocked_ = std::move(sb);
      blocked_to_ = to;
      return false;
    }
  }
  return true;
}

bool Outbox::drain_all() {
  for (auto& [to, b] : batchers_) {
    if (!drain(to, b)) return false;
  }
  if (blocked_) {  // no batcher left (none was ever made)
    if (!hand_over(blocked_to_, *blocked_)) return false;
    blocked_.reset();
  }
  return true;
}

bool Outbox::add(std::string_view to, std::span<const std::byte> message) {
  auto it = find(to);
  Batcher& b = it->second;
  if ((blocked_ || b.has_sealed()) && !drain(it->first, b)) return false;
  last_dropped_ = false;
  if (b.add(message)) drain(it->first, b);  // kKeep: the message is taken whatever drain() finds
  // Not held any more: it was in the last batch handed over (kDrop drains every sealed batch).
  return !(last_dropped_ && b.held_records() == 0);
}

bool Outbox::send_now(std::string_view to, zmq::message_t&& frame) {
  SealedBatch sb{std::move(frame), 0, 1, FlushReason::kExplicit};
  last_dropped_ = false;
  return hand_over(to, sb) && !last_dropped_;
}

void Outbox::poll(Clock::time_point now) {
  for (auto it = batchers_.begin(); it != batchers_.end();) {
    if (it->second.poll(now) || blocked_) drain(it->first, it->second);
    bool idle = it->second.held_records() == 0 && !it->second.has_sealed() &&
                !(blocked_ && blocked_to_ == it->first);
    if (idle && batchers_.size() > policy_.idle_kept) {
      if (last_ == it) last_ = batchers_.end();
      it = batchers_.erase(it);
      continue;
    }
    ++it;
  }
}

bool Outbox::flush() {
  Clock::time_point now = Clock::now();
  for (auto& [to, b] : batchers_) {
    if (b.flush(now) || blocked_) drain(to, b);
  }
  return !blocked_;
}

std::optional<Outbox::Clock::time_point> Outbox::deadline() const noexcept {
  std::optional<Clock::time_point> d;
  for (const auto& [to, b] : batchers_) d = earliest(d, b.deadline());
  return d;
}

CloseReport Outbox::close(zmq::socket_t& socket, std::chrono::milliseconds linger) {
  closing_ = true;
  Clock::time_point deadline = Clock::now() + linger;
  Clock::time_point now = Clock::now();
  for (auto& [to, b] : batchers_) b.flush(now);
  // A failed send waits out its send timeout, so this loop ends by the deadline.
  for (;;) {
    socket.set(zmq::sockopt::sndtimeo, to_ms(deadline - Clock::now()));
    if (drain_all() || Clock::now() >= deadline) break;
  }
  if (blocked_) {
    count_unsent(*blocked_);
    blocked_.reset();
  }
  for (auto& [to, b] : batchers_) {
    while (auto sb = b.take()) count_unsent(*sb);
  }
  stats_.unsent_messages += report_.unsent_messages;
  socket.set(zmq::sockopt::linger, to_ms(deadline - Clock::now()));
  return report_;
}

void check_size(std::size_t size, const PatternOptions& options) {
  if (size > options.limits.max_record_bytes) {
    throw std::length_error("message of " + std::to_string(size) +
                            " bytes exceeds the record limit of " +
                            std::to_string(options.limits.max_record_bytes) + " bytes");
  }
}

}  // namespace zkit::detail
