// Publisher (an XPUB with ZMQ_XPUB_NODROP, one Batcher per topic) and Subscriber (SUB feeding an
// Inbox, with per-producer sequence gap counting).
#include "zkit/pubsub.hpp"

#include <list>
#include <stdexcept>
#include <unordered_map>

#include "core.hpp"

namespace zkit {

using Clock = std::chrono::steady_clock;

namespace {
constexpr std::uint64_t kSubscriptionDrainEvery = 1024;  // frames between reads of XPUB's input
}

struct Publisher::Impl {
  Impl(zmq::context_t& context, PatternOptions o)
      : options(std::move(o)),
        socket(context, zmq::socket_type::xpub),
        outbox(options.batch, {detail::AtFull::kDrop, true}, stats,
               [this](std::string_view topic, zmq::message_t& frame) {
                 return send_frames(topic, frame);
               }) {
    // Subscriptions arrive on an XPUB: a peer's oversized one is refused before it is allocated.
    zkit::apply(socket, options.socket, options.limits);
    // A full subscriber queue fails the send (EAGAIN) instead of PUB's silent drop, so it counts.
    socket.set(zmq::sockopt::xpub_nodrop, 1);
    detail::set_send_timeout(socket, options, 0);
  }

  void check_open() const {
    if (closed) throw std::invalid_argument("zkit::Publisher used after close()");
  }

  // Subscriptions arrive as messages on an XPUB; libzmq acts on them itself, we only discard them
  // so they do not pile up.
  void drain_subscriptions() {
    zmq::message_t m;
    while (socket.recv(m, zmq::recv_flags::dontwait)) {
    }
  }

  // Sends [topic][frame] ([frame] for a raw empty topic).
  detail::Sent send_frames(std::string_view topic, zmq::message_t& frame) {
    if (++frames_since_drain >= kSubscriptionDrainEvery) {
      frames_since_drain = 0;
      drain_subscriptions();
    }
    if (!topic.empty() || !options.raw) {
      zmq::message_t t(topic.data(), topic.size());
      if (!socket.send(t, zmq::send_flags::sndmore)) return detail::Sent::kFull;
      socket.send(frame, zmq::send_flags::none);  // later parts of a message always go
      return detail::Sent::kOk;
    }
    return socket.send(frame, zmq::send_flags::none) ? detail::Sent::kOk : detail::Sent::kFull;
  }

  bool send(std::string_view topic, std::span<const std::byte> message) {
    check_open();
    detail::check_size(message.size(), options);
    if (options.raw) return outbox.send_now(topic, zmq::message_t(message.data(), message.size()));
    return outbox.add(topic, message);
  }

  std::optional<Clock::time_point> pump() {
    check_open();
    outbox.poll();
    drain_subscriptions();
    return outbox.deadline();
  }

  bool flush() {
    check_open();
    outbox.flush();
    drain_subscriptions();
    return true;
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
  detail::Outbox outbox;  // one batch per topic, one sequence series for all
  CloseReport report;
  std::uint64_t frames_since_drain = 0;
  bool closed = false;
};

Publisher::Publisher(zmq::context_t& context, PatternOptions options)
    : impl_(std::make_unique<Impl>(context, std::move(options))) {}
Publisher::~Publisher() { detail::replace(impl_, nullptr); }
Publisher::Publisher(Publisher&&) noexcept = default;
Publisher& Publisher::operator=(Publisher&& o) noexcept {
  detail::replace(impl_, std::move(o.impl_));
  return *this;
}
Publisher::Impl& Publisher::impl() const { return detail::live(impl_, "Publisher"); }
std::string Publisher::bind(const std::string& ep) {
  return detail::attach(impl().socket, ep, true);
}
std::string Publisher::connect(const std::string& ep) {
  return detail::attach(impl().socket, ep, false);
}
bool Publisher::send(std::string_view topic, std::span<const std::byte> message) {
  return impl().send(topic, message);
}
bool Publisher::flush() { return impl().flush(); }
std::optional<Clock::time_point> Publisher::pump() { return impl().pump(); }
zmq_pollitem_t Publisher::poll_item() noexcept {
  if (!impl_ || impl_->closed) return detail::inert_poll_item();
  return detail::poll_item_of(impl_->socket, impl_->outbox.poll_events());
}
std::optional<Clock::time_point> Publisher::next_deadline() const noexcept {
  if (!impl_ || impl_->closed) return std::nullopt;
  return impl_->outbox.deadline();
}
CloseReport Publisher::close() { return impl_ ? impl_->close() : CloseReport{}; }
const SocketStats& Publisher::stats() const { return impl().stats; }
zmq::socket_ref Publisher::socket() { return impl().socket; }

// ---------------------------------------------------------------------------------------------
struct Subscriber::Impl final : detail::Receiver {
  Impl(zmq::context_t& context, PatternOptions o)
      : Receiver(context, zmq::socket_type::sub, std::move(o), "Subscriber") {
    if (options.max_producers == 0) {
      throw std::invalid_argument("zkit::Subscriber: max_producers must be at least 1");
    }
  }

  // Reads the rest of a message with more parts than expected; counts it as malformed.
  void skip_rest(zmq::message_t& part) {
    std::size_t parts = 2;
    while (part.more()) {
      if (!socket.recv(part, zmq::recv_flags::none)) break;
      stats.bytes_in += part.size();
      ++parts;
    }
    malformed(Status::corruption("message of " + std::to_string(parts) +
                                 " frames; a Subscriber takes [topic][batch]"));
  }

  // The producer's entry, made most recently seen; a new one may push out the least recent.
  std::uint64_t& last_seq_of(std::uint64_t producer) {
    if (auto it = producers.find(producer); it != producers.end()) {
      recency.splice(recency.begin(), recency, it->second);
      return it->second->second;
    }
    if (producers.size() >= options.max_producers) {
      producers.erase(recency.back().first);
      recency.pop_back();
      ++stats.producers_forgotten;
    }
    recency.emplace_front(producer, 0);
    producers.emplace(producer, recency.begin());
    return recency.front().second;
  }

  void count_gap(const envelope::Header& h) {
    std::uint64_t& last = last_seq_of(h.producer_id);
    std::uint64_t expected = last + 1;  // a new producer: everything before seq was missed
    std::uint64_t bound = options.max_sequence_gap;
    if (h.seq > expected && h.seq - expected > bound) {
      ++stats.sequence_resets;  // one implausible jump must not pass for 2^63 lost batches
      last = h.seq;
    } else if (h.seq <= last && last - h.seq > bound) {
      ++stats.sequence_resets;  // far back: the series restarted; count gaps from here
      last = h.seq;
    } else if (h.seq > last) {
      stats.missed_batches += h.seq - expected;
      last = h.seq;
    }
  }

  bool take_ready() override {
    zmq::message_t first;
    while (socket.recv(first, zmq::recv_flags::dontwait)) {
      if (!first.more()) {
        if (options.raw) {
          topic.rebuild(std::size_t{0});
          inbox.hold_raw(std::move(first), stats);
          return true;
        }
        stats.bytes_in += first.size();
        malformed(
            Status::corruption("message of one frame (" + std::to_string(first.size()) +
                               " bytes) without its topic; a Subscriber takes [topic][batch]"));
        continue;
      }
      zmq::message_t second;
      (void)socket.recv(second, zmq::recv_flags::none);  // parts arrive together
      stats.bytes_in += first.size();
      if (second.more()) {
        stats.bytes_in += second.size();
        skip_rest(second);
        continue;
      }
      if (options.raw) {
        topic = std::move(first);
        inbox.hold_raw(std::move(second), stats);
        return true;
      }
      if (!hold(std::move(second))) continue;
      topic = std::move(first);
      count_gap(*inbox.header());
      if (!inbox.empty()) return true;
    }
    return false;
  }

  void annotate(Message& m) override {
    m.topic = {static_cast<const char*>(topic.data()), topic.size()};
  }

  zmq::message_t topic;
  // producer id -> highest seq seen, most recently seen first; at most options.max_producers.
  using Recency = std::list<std::pair<std::uint64_t, std::uint64_t>>;
  Recency recency;
  std::unordered_map<std::uint64_t, Recency::iterator> producers;
};

Subscriber::Subscriber(zmq::context_t& context, PatternOptions options)
    : impl_(std::make_unique<Impl>(context, std::move(options))) {}
Subscriber::~Subscriber() { detail::replace(impl_, nullptr); }
Subscriber::Subscriber(Subscriber&&) noexcept = default;
Subscriber& Subscriber::operator=(Subscriber&& o) noexcept {
  detail::replace(impl_, std::move(o.impl_));
  return *this;
}
Subscriber::Impl& Subscriber::impl() const { return detail::live(impl_, "Subscriber"); }
std::string Subscriber::bind(const std::string& ep) {
  return detail::attach(impl().socket, ep, true);
}
std::string Subscriber::connect(const std::string& ep) {
  return detail::attach(impl().socket, ep, false);
}
void Subscriber::subscribe(std::string_view prefix) {
  impl().check_open();
  impl_->socket.set(zmq::sockopt::subscribe, prefix);
}
void Subscriber::unsubscribe(std::string_view prefix) {
  impl().check_open();
  impl_->socket.set(zmq::sockopt::unsubscribe, prefix);
}
std::optional<Message> Subscriber::receive(std::chrono::milliseconds timeout) {
  return impl().receive(timeout);
}
std::size_t Subscriber::poll_once(const MessageHandler& handler,
                                  std::chrono::milliseconds timeout) {
  return impl().poll_once(handler, timeout);
}
void Subscriber::run(const MessageHandler& handler) { impl().run(handler); }
void Subscriber::stop() { impl().waker.wake(); }
void Subscriber::on_error(ErrorCallback callback) { impl().on_error = std::move(callback); }
zmq_pollitem_t Subscriber::poll_item() noexcept {
  return impl_ ? impl_->poll_item() : detail::inert_poll_item();
}
std::optional<Clock::time_point> Subscriber::next_deadline() const noexcept {
  return impl_ ? impl_->held_deadline() : std::nullopt;
}
CloseReport Subscriber::close() { return impl_ ? impl_->close() : CloseReport{}; }
const SocketStats& Subscriber::stats() const { return impl().stats; }
zmq::socket_ref Subscriber::socket() { return impl().socket; }

}  // namespace zkit
