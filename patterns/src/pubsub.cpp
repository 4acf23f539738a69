// Publisher (an XPUB with ZMQ_XPUB_NODROP, one Batcher per topic) and Subscriber (SUB feeding an
// Inbox, with per-producer sequence gap counting).
#include "zkit/pubsub.hpp"

#include <map>
#include <stdexcept>
#include <unordered_map>

#include "core.hpp"

namespace zkit {

using Clock = std::chrono::steady_clock;

namespace {
constexpr std::uint64_t kSubscriptionDrainEvery = 1024;  // batches between reads of XPUB's input
}

struct Publisher::Impl {
  Impl(zmq::context_t& context, PatternOptions o)
      : options(std::move(o)), socket(context, zmq::socket_type::xpub) {
    if (options.batch.producer_id == 0) options.batch.producer_id = random_producer_id();
    Batcher check(options.batch);  // reject bad batch options now, not at the first send
    zkit::apply(socket, options.socket);
    // A full subscriber queue fails the send (EAGAIN) instead of PUB's silent drop, so it counts.
    socket.set(zmq::sockopt::xpub_nodrop, 1);
    socket.set(zmq::sockopt::sndtimeo,
               options.send_timeout ? static_cast<int>(options.send_timeout->count()) : 0);
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

  // Sends [topic][frame]; false when the socket had no room within its send timeout.
  bool send_frames(std::string_view topic, zmq::message_t& frame) {
    if (!topic.empty() || !options.raw) {
      zmq::message_t t(topic.data(), topic.size());
      if (!socket.send(t, zmq::send_flags::sndmore)) return false;
      socket.send(frame, zmq::send_flags::none);  // later parts of a message always go
      return true;
    }
    return socket.send(frame, zmq::send_flags::none).has_value();
  }

  // Sends every sealed batch of one topic. Normally a batch without room is dropped and counted;
  // when closing it stays for close() to count.
  bool send_sealed(std::string_view topic, Batcher& b) {
    while (b.has_sealed()) {
      SealedBatch sb = *b.take();
      std::size_t bytes = sb.frame.size();
      if (send_frames(topic, sb.frame)) {
        detail::count_sent(stats, sb.records, bytes, sb.reason);
      } else {
        ++stats.send_would_block;
        if (closing) {
          report.unsent_messages += sb.records;
          ++report.unsent_batches;
          continue;
        }
        stats.dropped_messages += sb.records;
        ++stats.dropped_batches;
      }
      if (++batches_since_drain >= kSubscriptionDrainEvery) {
        batches_since_drain = 0;
        drain_subscriptions();
      }
    }
    return true;
  }

  Batcher& batcher_for(std::string_view topic) {
    if (last != topics.end() && last->first == topic) return last->second;
    last = topics.find(topic);
    if (last == topics.end()) {
      last = topics.emplace(std::string(topic), Batcher(options.batch, &sequence)).first;
    }
    return last->second;
  }

  bool send(std::string_view topic, std::span<const std::byte> message) {
    check_open();
    detail::check_size(message.size(), options);
    if (options.raw) {
      zmq::message_t frame(message.data(), message.size());
      if (send_frames(topic, frame)) {
        detail::count_sent(stats, 1, message.size(), FlushReason::kExplicit);
      } else {
        ++stats.send_would_block;
        ++stats.dropped_messages;
        ++stats.dropped_batches;
      }
      return true;
    }
    Batcher& b = batcher_for(topic);
    if (b.add(message)) send_sealed(last->first, b);
    return true;
  }

  std::optional<Clock::time_point> deadline() const {
    std::optional<Clock::time_point> d;
    for (const auto& [topic, b] : topics) {
      if (auto t = b.deadline(); t && (!d || *t < *d)) d = t;
    }
    return d;
  }

  std::optional<Clock::time_point> pump() {
    check_open();
    Clock::time_point now = Clock::now();
    for (auto& [topic, b] : topics) {
      if (b.poll(now)) send_sealed(topic, b);
    }
    drain_subscriptions();
    return deadline();
  }

  bool flush() {
    check_open();
    for (auto& [topic, b] : topics) {
      if (b.flush()) send_sealed(topic, b);
    }
    drain_subscriptions();
    return true;
  }

  CloseReport close() {
    if (closed) return report;
    closing = true;
    Clock::time_point deadline = Clock::now() + options.socket.linger;
    for (auto& [topic, b] : topics) {
      socket.set(zmq::sockopt::sndtimeo, detail::to_ms(deadline - Clock::now()));
      if (b.flush()) send_sealed(topic, b);
    }
    stats.unsent_messages += report.unsent_messages;
    socket.set(zmq::sockopt::linger, detail::to_ms(deadline - Clock::now()));
    socket.close();
    closed = true;
    return report;
  }

  PatternOptions options;
  zmq::socket_t socket;
  SequenceCounter sequence;  // one series for every topic
  std::map<std::string, Batcher, std::less<>> topics;
  std::map<std::string, Batcher, std::less<>>::iterator last = topics.end();
  SocketStats stats;
  CloseReport report;
  std::uint64_t batches_since_drain = 0;
  bool closing = false;
  bool closed = false;
};

Publisher::Publisher(zmq::context_t& context, PatternOptions options)
    : impl_(std::make_unique<Impl>(context, std::move(options))) {}
Publisher::~Publisher() {
  if (impl_) impl_->close();
}
Publisher::Publisher(Publisher&&) noexcept = default;
Publisher& Publisher::operator=(Publisher&& o) noexcept {
  if (this != &o) {
    if (impl_) impl_->close();
    impl_ = std::move(o.impl_);
  }
  return *this;
}
std::string Publisher::bind(const std::string& ep) {
  return detail::attach(impl_->socket, ep, true);
}
std::string Publisher::connect(const std::string& ep) {
  return detail::attach(impl_->socket, ep, false);
}
bool Publisher::send(std::string_view topic, std::span<const std::byte> message) {
  return impl_->send(topic, message);
}
bool Publisher::flush() { return impl_->flush(); }
std::optional<Clock::time_point> Publisher::pump() { return impl_->pump(); }
std::optional<Clock::time_point> Publisher::deadline() const { return impl_->deadline(); }
CloseReport Publisher::close() { return impl_->close(); }
const SocketStats& Publisher::stats() const noexcept { return impl_->stats; }
zmq::socket_ref Publisher::socket() noexcept { return impl_->socket; }

// ---------------------------------------------------------------------------------------------
struct Subscriber::Impl final : detail::Receiver {
  Impl(zmq::context_t& context, PatternOptions o)
      : Receiver(context, zmq::socket_type::sub, std::move(o), "Subscriber") {}

  // Reads the rest of a message with more parts than expected; counts it as malformed.
  void skip_rest(zmq::message_t& part) {
    while (part.more()) {
      if (!socket.recv(part, zmq::recv_flags::none)) break;
      stats.bytes_in += part.size();
    }
    ++stats.decode_errors;
  }

  void count_gap(const envelope::Header& h) {
    auto [it, fresh] = last_seq.try_emplace(h.producer_id, 0);
    std::uint64_t expected = it->second + 1;  // a new producer: everything before seq was missed
    if (h.seq > expected) stats.missed_batches += h.seq - expected;
    if (h.seq > it->second) it->second = h.seq;
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
        ++stats.decode_errors;  // a batch needs its topic frame
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
      if (!inbox.hold(std::move(second), options.limits, stats)) continue;
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
  std::unordered_map<std::uint64_t, std::uint64_t> last_seq;  // producer id -> highest seq seen
};

Subscriber::Subscriber(zmq::context_t& context, PatternOptions options)
    : impl_(std::make_unique<Impl>(context, std::move(options))) {}
Subscriber::~Subscriber() {
  if (impl_) impl_->close();
}
Subscriber::Subscriber(Subscriber&&) noexcept = default;
Subscriber& Subscriber::operator=(Subscriber&& o) noexcept {
  if (this != &o) {
    if (impl_) impl_->close();
    impl_ = std::move(o.impl_);
  }
  return *this;
}
std::string Subscriber::bind(const std::string& ep) {
  return detail::attach(impl_->socket, ep, true);
}
std::string Subscriber::connect(const std::string& ep) {
  return detail::attach(impl_->socket, ep, false);
}
void Subscriber::subscribe(std::string_view prefix) {
  impl_->check_open();
  impl_->socket.set(zmq::sockopt::subscribe, prefix);
}
void Subscriber::unsubscribe(std::string_view prefix) {
  impl_->check_open();
  impl_->socket.set(zmq::sockopt::unsubscribe, prefix);
}
std::optional<Message> Subscriber::receive(std::chrono::milliseconds timeout) {
  return impl_->receive(timeout);
}
std::size_t Subscriber::poll_once(const MessageHandler& handler,
                                  std::chrono::milliseconds timeout) {
  return impl_->poll_once(handler, timeout);
}
void Subscriber::run(const MessageHandler& handler) { impl_->run(handler); }
void Subscriber::stop() { impl_->waker.wake(); }
CloseReport Subscriber::close() { return impl_->close(); }
const SocketStats& Subscriber::stats() const noexcept { return impl_->stats; }
zmq::socket_ref Subscriber::socket() noexcept { return impl_->socket; }

}  // namespace zkit
