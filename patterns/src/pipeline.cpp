// Pusher and Puller: a Batcher feeding a PUSH socket, and a PULL socket feeding an Inbox.
#include "zkit/pipeline.hpp"

#include <stdexcept>

#include "core.hpp"

namespace zkit {

using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
struct Pusher::Impl {
  Impl(zmq::context_t& context, PatternOptions o)
      : options(std::move(o)), socket(context, zmq::socket_type::push), batcher(options.batch) {
    zkit::apply(socket, options.socket);
    // Queue only to completed connections: what no peer has taken stays countable in zkit.
    socket.set(zmq::sockopt::immediate, 1);
    socket.set(zmq::sockopt::sndtimeo,
               options.send_timeout ? static_cast<int>(options.send_timeout->count()) : -1);
  }

  void check_open() const {
    if (closed) throw std::invalid_argument("zkit::Pusher used after close()");
  }

  // Hands sealed batches to ZeroMQ in order; false when one met a full socket (kept in blocked).
  bool drain() {
    for (;;) {
      if (!blocked) {
        blocked = batcher.take();
        if (!blocked) return true;
      }
      std::size_t bytes = blocked->frame.size();
      if (!socket.send(blocked->frame, zmq::send_flags::none)) {
        ++stats.send_would_block;
        return false;
      }
      detail::count_sent(stats, blocked->records, bytes, blocked->reason);
      blocked.reset();
    }
  }

  bool send(std::span<const std::byte> message) {
    check_open();
    detail::check_size(message.size(), options);
    if (options.raw) {
      zmq::message_t frame(message.data(), message.size());
      if (!socket.send(frame, zmq::send_flags::none)) {
        ++stats.send_would_block;
        return false;
      }
      detail::count_sent(stats, 1, message.size(), FlushReason::kExplicit);
      return true;
    }
    if ((blocked || batcher.has_sealed()) && !drain()) return false;
    if (batcher.add(message)) drain();  // the message is taken whatever drain() finds
    return true;
  }

  // The batcher's deadline, or now while a sealed batch still waits for room at the HWM.
  std::optional<Clock::time_point> deadline() const {
    if (blocked || batcher.has_sealed()) return Clock::now();
    return batcher.deadline();
  }

  CloseReport close() {
    if (closed) return report;
    closed = true;
    batcher.flush();
    Clock::time_point deadline = Clock::now() + options.socket.linger;
    while (blocked || batcher.has_sealed()) {
      socket.set(zmq::sockopt::sndtimeo, detail::to_ms(deadline - Clock::now()));
      if (!drain() && Clock::now() >= deadline) break;
    }
    if (blocked) {
      report.unsent_messages += blocked->records;
      ++report.unsent_batches;
      blocked.reset();
    }
    while (auto b = batcher.take()) {
      report.unsent_messages += b->records;
      ++report.unsent_batches;
    }
    stats.unsent_messages += report.unsent_messages;
    socket.set(zmq::sockopt::linger, detail::to_ms(deadline - Clock::now()));
    socket.close();
    return report;
  }

  PatternOptions options;
  zmq::socket_t socket;
  Batcher batcher;
  std::optional<SealedBatch> blocked;
  SocketStats stats;
  CloseReport report;
  bool closed = false;
};

Pusher::Pusher(zmq::context_t& context, PatternOptions options)
    : impl_(std::make_unique<Impl>(context, std::move(options))) {}
Pusher::~Pusher() {
  if (impl_) impl_->close();
}
Pusher::Pusher(Pusher&&) noexcept = default;
Pusher& Pusher::operator=(Pusher&& o) noexcept {
  if (this != &o) {
    if (impl_) impl_->close();
    impl_ = std::move(o.impl_);
  }
  return *this;
}
std::string Pusher::bind(const std::string& ep) { return detail::attach(impl_->socket, ep, true); }
std::string Pusher::connect(const std::string& ep) {
  return detail::attach(impl_->socket, ep, false);
}
bool Pusher::send(std::span<const std::byte> message) { return impl_->send(message); }
bool Pusher::flush() {
  impl_->check_open();
  impl_->batcher.flush();
  return impl_->drain();
}
std::optional<Clock::time_point> Pusher::pump() {
  impl_->check_open();
  impl_->batcher.poll();
  impl_->drain();
  return impl_->deadline();
}
std::optional<Clock::time_point> Pusher::deadline() const { return impl_->deadline(); }
CloseReport Pusher::close() { return impl_->close(); }
const SocketStats& Pusher::stats() const noexcept { return impl_->stats; }
zmq::socket_ref Pusher::socket() noexcept { return impl_->socket; }

// ---------------------------------------------------------------------------------------------
struct Puller::Impl final : detail::Receiver {
  Impl(zmq::context_t& context, PatternOptions o)
      : Receiver(context, zmq::socket_type::pull, std::move(o), "Puller") {}

  bool take_ready() override {
    zmq::message_t frame;
    while (socket.recv(frame, zmq::recv_flags::dontwait)) {
      if (options.raw) {
        inbox.hold_raw(std::move(frame), stats);
        return true;
      }
      if (inbox.hold(std::move(frame), options.limits, stats) && !inbox.empty()) return true;
      frame = zmq::message_t();
    }
    return false;
  }
};

Puller::Puller(zmq::context_t& context, PatternOptions options)
    : impl_(std::make_unique<Impl>(context, std::move(options))) {}
Puller::~Puller() {
  if (impl_) impl_->close();
}
Puller::Puller(Puller&&) noexcept = default;
Puller& Puller::operator=(Puller&& o) noexcept {
  if (this != &o) {
    if (impl_) impl_->close();
    impl_ = std::move(o.impl_);
  }
  return *this;
}
std::string Puller::bind(const std::string& ep) { return detail::attach(impl_->socket, ep, true); }
std::string Puller::connect(const std::string& ep) {
  return detail::attach(impl_->socket, ep, false);
}

std::optional<Message> Puller::receive(std::chrono::milliseconds timeout) {
  return impl_->receive(timeout);
}
std::size_t Puller::poll_once(const MessageHandler& handler, std::chrono::milliseconds timeout) {
  return impl_->poll_once(handler, timeout);
}
void Puller::run(const MessageHandler& handler) { impl_->run(handler); }
void Puller::stop() { impl_->waker.wake(); }
CloseReport Puller::close() { return impl_->close(); }
const SocketStats& Puller::stats() const noexcept { return impl_->stats; }
zmq::socket_ref Puller::socket() noexcept { return impl_->socket; }

}  // namespace zkit
