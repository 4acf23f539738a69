// Pusher and Puller: a Batcher feeding a PUSH socket, and a PULL socket feeding an Inbox.
#include "zkit/pipeline.hpp"

#include <stdexcept>

#include "core.hpp"

namespace zkit {

using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
struct Pusher::Impl {
  Impl(zmq::context_t& context, PatternOptions o)
      : options(std::move(o)),
        socket(context, zmq::socket_type::push),
        outbox(options.batch, {}, stats, [this](std::string_view, zmq::message_t& frame) {
          return socket.send(frame, zmq::send_flags::none) ? detail::Sent::kOk
                                                           : detail::Sent::kFull;
        }) {
    zkit::apply(socket, options.socket);
    // Queue only to completed connections: what no peer has taken stays countable in zkit.
    socket.set(zmq::sockopt::immediate, 1);
    detail::set_send_timeout(socket, options, -1);
  }

  void check_open() const {
    if (closed) throw std::invalid_argument("zkit::Pusher used after close()");
  }

  bool send(std::span<const std::byte> message) {
    check_open();
    detail::check_size(message.size(), options);
    if (options.raw) return outbox.send_now({}, zmq::message_t(message.data(), message.size()));
    return outbox.add({}, message);
  }

  CloseReport close() {
    if (closed) return report;
    closed = true;
    report = outbox.close(socket, options.socket.linger);
    socket.close();
    return report;
  }

  PatternOptions options;
  zmq::socket_t socket;
  SocketStats stats;
  detail::Outbox outbox;
  CloseReport report;
  bool closed = false;
};

Pusher::Pusher(zmq::context_t& context, PatternOptions options)
    : impl_(std::make_unique<Impl>(context, std::move(options))) {}
Pusher::~Pusher() { detail::replace(impl_, nullptr); }
Pusher::Pusher(Pusher&&) noexcept = default;
Pusher& Pusher::operator=(Pusher&& o) noexcept {
  detail::replace(impl_, std::move(o.impl_));
  return *this;
}
Pusher::Impl& Pusher::impl() const { return detail::live(impl_, "Pusher"); }
std::string Pusher::bind(const std::string& ep) { return detail::attach(impl().socket, ep, true); }
std::string Pusher::connect(const std::string& ep) {
  return detail::attach(impl().socket, ep, false);
}
bool Pusher::send(std::span<const std::byte> message) { return impl().send(message); }
bool Pusher::flush() {
  impl().check_open();
  return impl_->outbox.flush();
}
std::optional<Clock::time_point> Pusher::pump() {
  impl().check_open();
  impl_->outbox.poll();
  if (impl_->outbox.blocked()) return Clock::now();
  return impl_->outbox.deadline();
}
zmq_pollitem_t Pusher::poll_item() noexcept {
  if (!impl_ || impl_->closed) return detail::inert_poll_item();
  return detail::poll_item_of(impl_->socket, impl_->outbox.poll_events());
}
std::optional<Clock::time_point> Pusher::next_deadline() const noexcept {
  if (!impl_ || impl_->closed) return std::nullopt;
  return impl_->outbox.deadline();
}
CloseReport Pusher::close() { return impl_ ? impl_->close() : CloseReport{}; }
const SocketStats& Pusher::stats() const { return impl().stats; }
zmq::socket_ref Pusher::socket() { return impl().socket; }

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
      if (hold(std::move(frame)) && !inbox.empty()) return true;
      frame = zmq::message_t();
    }
    return false;
  }
};

Puller::Puller(zmq::context_t& context, PatternOptions options)
    : impl_(std::make_unique<Impl>(context, std::move(options))) {}
Puller::~Puller() { detail::replace(impl_, nullptr); }
Puller::Puller(Puller&&) noexcept = default;
Puller& Puller::operator=(Puller&& o) noexcept {
  detail::replace(impl_, std::move(o.impl_));
  return *this;
}
Puller::Impl& Puller::impl() const { return detail::live(impl_, "Puller"); }
std::string Puller::bind(const std::string& ep) { return detail::attach(impl().socket, ep, true); }
std::string Puller::connect(const std::string& ep) {
  return detail::attach(impl().socket, ep, false);
}

std::optional<Message> Puller::receive(std::chrono::milliseconds timeout) {
  return impl().receive(timeout);
}
std::size_t Puller::poll_once(const MessageHandler& handler, std::chrono::milliseconds timeout) {
  return impl().poll_once(handler, timeout);
}
void Puller::run(const MessageHandler& handler) { impl().run(handler); }
void Puller::stop() { impl().waker.wake(); }
void Puller::on_error(ErrorCallback callback) { impl().on_error = std::move(callback); }
zmq_pollitem_t Puller::poll_item() noexcept {
  return impl_ ? impl_->poll_item() : detail::inert_poll_item();
}
std::optional<Clock::time_point> Puller::next_deadline() const noexcept {
  return impl_ ? impl_->held_deadline() : std::nullopt;
}
CloseReport Puller::close() { return impl_ ? impl_->close() : CloseReport{}; }
const SocketStats& Puller::stats() const { return impl().stats; }
zmq::socket_ref Puller::socket() { return impl().socket; }

}  // namespace zkit
