// Into RabbitMQ: batches from reliable senders are published with publisher confirms; a batch is
// acknowledged upstream only when every AMQP message of it is confirmed. A loss of the
// connection, a nack or a return (no queue took a mandatory message) publishes every unconfirmed
// batch again on a new connection, so RabbitMQ may hold a message twice; each carries its id
// (message_id "<producer hex>-<seq>-<index>", headers x-zkit-producer/seq/index) for the next hop,
// and x-zkit-copy, which tells the copies apart (this run and connection).
#include <fmt/format.h>

#include <deque>
#include <set>

#include "link.hpp"
#include "zkit/control.hpp"
#include "zkit/reliable.hpp"

namespace zkit {
namespace {

using namespace bridge_detail;

class ToAmqp final : public Bridge {
 public:
  ToAmqp(zmq::context_t& context, ToAmqpOptions o)
      : o_(std::move(o)), link_(o_.amqp, stats_), receiver_(context, receiver_options()) {
    if (o_.routing_key.empty() && o_.exchange.empty()) {
      throw std::invalid_argument("to-amqp: a routing key is needed for the default exchange");
    }
    if (o_.queue_type != "quorum" && o_.queue_type != "classic") {
      throw std::invalid_argument("to-amqp: queue type must be quorum or classic");
    }
    const Endpoint le = parse_endpoint(o_.listen, true);
    endpoint_ = le.bind ? receiver_.bind(le.address) : receiver_.connect(le.address);
    if (!o_.control.empty()) {
      control_ = ControlSocket(context, o_.control, o_.control_socket);
      control_endpoint_ = control_.endpoint();
    }
    receiver_.on_error([](const Status& s) { spdlog::warn("bridge: upstream: {}", s.to_string()); });
    stats_.direction = "to-amqp";
  }

  bool poll_once(std::chrono::milliseconds timeout, zmq_pollitem_t* extra) override {
    std::vector<zmq_pollitem_t> items;
    items.push_back(receiver_.poll_item());
    amqp::Connection* c = link_.get();
    if (c) items.push_back({nullptr, c->fd(), ZMQ_POLLIN, 0});
    if (control_) items.push_back(control_.poll_item());
    if (extra) items.push_back(*extra);
    std::optional<Clock::time_point> d;
    earliest(d, receiver_.next_deadline());
    earliest(d, link_.deadline());
    if (c) earliest(d, Clock::now() + heartbeat_tick());
    if (c && c->buffered()) d = Clock::now();
    zmq::poll(items.data(), items.size(), wait_for(timeout, d));
    if (extra) extra->revents = items.back().revents;

    receiver_.poll_once([this](Delivery& dl) { take(dl); }, std::chrono::milliseconds(0));
    if (link_.due(Clock::now())) {
      if (link_.connect([this](amqp::Connection& conn) { setup(conn); })) restart_publishing();
    }
    if (link_.get()) {
      try {
        read_events();
        publish();
      } catch (const amqp::AmqpError& e) {
        link_.lost(e);
        restart_publishing();
      }
    }
    receiver_.poll_once([this](Delivery& dl) { take(dl); }, std::chrono::milliseconds(0));
    return !control_ || serve_control(control_, stats_, [this] { return stats().to_json(); });
  }

  void shutdown(std::chrono::milliseconds linger) override {
    if (stopped_) return;
    stopped_ = true;
    receiver_.pause_credit();
    const auto until = Clock::now() + linger;
    while (!pending_.empty() && Clock::now() < until && link_.get()) {
      try {
        publish();
        read_events(std::chrono::milliseconds(20));
      } catch (const amqp::AmqpError& e) {
        spdlog::warn("bridge: at shutdown: {}", e.what());
        break;
      }
      receiver_.poll_once([this](Delivery& dl) { take(dl); }, std::chrono::milliseconds(0));
    }
    if (!pending_.empty()) {
      spdlog::info("bridge: {} batches not confirmed at stop; their senders will resend them",
                   pending_.size());
    }
    (void)receiver_.close();
    link_.close();
  }

  BridgeStats stats() const override {
    BridgeStats s = stats_;
    s.state = stopped_ ? "stopped" : (link_connected() ? "connected" : "connecting");
    s.uptime_ms = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_).count());
    s.pending_batches = pending_.size();
    return s;
  }
  const std::string& endpoint() const noexcept override { return endpoint_; }
  const std::string& control_endpoint() const noexcept override { return control_endpoint_; }

 private:
  struct Pending {
    explicit Pending(envelope::Batch&& b) : batch(std::move(b)) {}
    envelope::Batch batch;
    AckToken token;
    bool published = false;      // on the current connection
    std::uint64_t last_tag = 0;  // its last publish's delivery tag on that connection
  };

  ReliableReceiverOptions receiver_options() const {
    ReliableReceiverOptions r;
    r.socket = o_.listen_socket;
    r.limits = o_.limits;
    r.window = o_.window;
    r.manual_ack = true;
    r.max_sessions = o_.max_sessions;
    return r;
  }
  // x-zkit-copy: which publish of a message this is. Each connection publishes a message at most
  // once, so (this run, this connection) tells RabbitMQ's copies of one message_id apart.
  std::uint64_t copy() const { return run_id_ << 24 | (stats_.connects & 0xffffff); }
  bool link_connected() const { return const_cast<AmqpLink&>(link_).get() != nullptr; }
  std::chrono::milliseconds heartbeat_tick() const {
    const auto hb = std::chrono::duration_cast<std::chrono::milliseconds>(o_.amqp.heartbeat);
    return hb.count() > 0 ? hb / 2 : std::chrono::milliseconds(1000);
  }

  void setup(amqp::Connection& c) {
    c.confirm_select();
    if (!o_.declare_queue.empty()) {
      c.declare_queue(o_.declare_queue, o_.queue_type);
      if (!o_.exchange.empty()) c.bind_queue(o_.declare_queue, o_.exchange, o_.routing_key);
    }
  }

  void take(Delivery& d) {
    ++stats_.batches_received;
    stats_.messages_received += d.batch.size();
    pending_.emplace_back(std::move(d.batch));
    pending_.back().token = d.token;
  }

  // A new connection numbers its publishes from 1: everything unconfirmed goes out again.
  void restart_publishing() {
    spdlog::debug("bridge: {} unconfirmed batches to publish again", pending_.size());
    next_tag_ = 1;
    floor_ = 0;
    above_.clear();
    for (Pending& p : pending_) {
      if (p.published) republish_count_ += o_.mode == BridgeMode::kBatch ? 1 : p.batch.size();
      p.published = false;
    }
    next_publish_ = 0;
  }

  void publish() {
    amqp::Connection* c = link_.get();
    for (; c && next_publish_ < pending_.size(); ++next_publish_) {
      Pending& p = pending_[next_publish_];
      const auto& h = p.batch.header();
      if (o_.mode == BridgeMode::kBatch) {
        const std::string id = fmt::format("{:016x}-{}", h.producer_id, h.seq);
        const auto& f = p.batch.frame();
        c->publish(o_.exchange, o_.routing_key,
                   std::span(static_cast<const std::byte*>(f.data()), f.size()),
                   {id, kBatchContentType, true, h.producer_id, h.seq, 0, copy()});
        p.last_tag = next_tag_++;
        ++stats_.published;
      } else {
        std::uint64_t index = 0;
        for (const auto record : p.batch) {
          const std::string id = fmt::format("{:016x}-{}-{}", h.producer_id, h.seq, index);
          c->publish(o_.exchange, o_.routing_key, record,
                     {id, {}, true, h.producer_id, h.seq, index, copy()});
          ++index;
          ++stats_.published;
        }
        // An empty batch has nothing of its own to confirm: it waits for the one before it.
        p.last_tag = next_tag_ + index - 1;
        next_tag_ += index;
      }
      spdlog::trace("bridge: published {:016x}-{} ({} messages), last tag {}", h.producer_id,
                    h.seq, p.batch.size(), p.last_tag);
      p.published = true;
    }
    stats_.republished += republish_count_;
    republish_count_ = 0;
  }

  void read_events(std::chrono::milliseconds first_wait = std::chrono::milliseconds(0)) {
    amqp::Connection* c = link_.get();
    for (int i = 0; c && i < 100000; ++i) {
      amqp::Event ev = c->next(i == 0 ? first_wait : std::chrono::milliseconds(0));
      if (std::holds_alternative<std::monostate>(ev)) break;
      if (auto* cf = std::get_if<amqp::Confirm>(&ev)) {
        if (!cf->ack) {
          ++stats_.nacked;
          spdlog::warn("bridge: RabbitMQ nacked delivery tag {}: publishing again", cf->tag);
          throw amqp::AmqpError("RabbitMQ nacked a message", false);
        }
        confirm(cf->tag, cf->multiple);
      } else if (auto* r = std::get_if<amqp::Returned>(&ev)) {
        ++stats_.returned;
        // The return comes before the confirm of the same message: nothing from here on may be
        // acknowledged upstream, so the connection is started again and everything unconfirmed
        // goes out again after the backoff.
        throw amqp::AmqpError(
            fmt::format("RabbitMQ returned a message: {} {} (exchange '{}', routing key '{}'); "
                        "no queue took it",
                        r->code, r->text, o_.exchange, o_.routing_key),
            false);
      }
    }
    ack_upstream();
  }

  void confirm(std::uint64_t tag, bool multiple) {
    const std::uint64_t before = floor_ + above_.size();
    if (multiple) {
      floor_ = std::max(floor_, tag);
    } else if (tag > floor_) {
      above_.insert(tag);
    }
    while (!above_.empty() && *above_.begin() <= floor_ + 1) {
      floor_ = std::max(floor_, *above_.begin());
      above_.erase(above_.begin());
    }
    stats_.confirmed += floor_ + above_.size() - before;
  }

  void ack_upstream() {
    bool any = false;
    while (!pending_.empty()) {
      Pending& p = pending_.front();
      if (!p.published || p.last_tag > floor_) break;
      receiver_.ack(p.token);
      ++stats_.batches_acked_upstream;
      stats_.messages_acked_upstream += p.batch.size();
      pending_.pop_front();
      --next_publish_;
      any = true;
    }
    if (any) receiver_.poll_once([this](Delivery& dl) { take(dl); }, std::chrono::milliseconds(0));
  }

  ToAmqpOptions o_;
  BridgeStats stats_;
  AmqpLink link_;
  ReliableReceiver receiver_;
  ControlSocket control_;
  std::string endpoint_, control_endpoint_;
  std::deque<Pending> pending_;
  std::size_t next_publish_ = 0;  // pending_[0, next_publish_) are published on this connection
  std::uint64_t next_tag_ = 1;
  std::uint64_t floor_ = 0;        // every tag <= floor_ is confirmed
  std::set<std::uint64_t> above_;  // confirmed tags above floor_ (out-of-order single confirms)
  std::uint64_t republish_count_ = 0;
  const std::uint64_t run_id_ = random_producer_id() >> 24;  // 40 random bits per run
  bool stopped_ = false;
  Clock::time_point started_ = Clock::now();
};

}  // namespace

std::unique_ptr<Bridge> Bridge::to_amqp(zmq::context_t& context, ToAmqpOptions options) {
  return std::make_unique<ToAmqp>(context, std::move(options));
}

}  // namespace zkit
