// ReliableSender: keeps every batch until the receiver acknowledges it, paces batches by the
// receiver's credit and its own window, says HELLO after a reconnect or a lost peer and resends
// what is unacknowledged (docs/protocol.md, "Sender").
#include <algorithm>
#include <deque>
#include <stdexcept>
#include <string>
#include <utility>

#include "reliable_link.hpp"
#include "zkit/json.hpp"
#include "zkit/reliable.hpp"

namespace zkit {

namespace link = detail::link;
using namespace detail::link;
using detail::Waker;
using std::chrono::milliseconds;

namespace {

// Messages handled per service() before timers and transmission run.
constexpr std::size_t kDrain = 1024;
// How often the blocking calls retry a HELLO or DATA that found no room.
constexpr milliseconds kRetry{20};

}  // namespace

struct ReliableSender::State {
  enum class Phase { kConnecting, kReady };

  struct Held {
    zmq::message_t frame;
    std::uint64_t link_seq = 0;
    std::uint64_t id = 0;
    std::uint64_t producer_id = 0;
    std::uint64_t seq = 0;
    std::uint64_t records = 0;  // 0: unknown (a trusted or compressed frame; close() peeks it)
  };

  State(zmq::context_t& context, ReliableSenderOptions options)
      : o(std::move(options)),
        socket(context, zmq::socket_type::dealer),
        sequence{o.first_seq},
        batcher(o.batch, &sequence),
        session(random_producer_id()),
        waker(context) {
    apply(socket, o.socket, o.limits);  // acknowledgements come back on it
  }

  ReliableSenderOptions o;
  zmq::socket_t socket;
  SequenceCounter sequence;
  Batcher batcher;
  std::uint64_t session;
  Waker waker;  // wait_until's; the sender has no stop(), so nothing wakes it
  Phase phase = Phase::kConnecting;
  std::deque<Held> held;        // link seqs acked+1 .. next_link-1, oldest first
  std::uint64_t acked = 0;      // cumulative acknowledged link seq
  std::uint64_t next_link = 1;  // link seq the next queued batch gets
  std::uint64_t next_send = 1;  // link seq transmitted next
  std::uint64_t highest_sent = 0;
  std::uint64_t credit = 0;  // highest link seq the receiver allows
  bool stalled = false;
  bool hello_blocked = false;  // the last HELLO found no room (a bound DEALER with no peer yet)
  bool data_blocked = false;   // DATA found no room (high-water mark)
  bool closed = false;
  Liveness peer;  // the receiver
  Clock::time_point last_ping{};
  Clock::time_point hello_due{};  // CONNECTING: when to say HELLO (again)
  Clock::time_point progress{};   // resend timer base: last ack progress or (re)transmission start
  ReliableSenderStats st;
  ErrorCallback on_error;

  void reject(const Status& why) {
    ++st.decode_errors;
    if (on_error) on_error(why);
  }

  std::uint64_t in_flight() const noexcept { return next_send - 1 - acked; }
  bool waiting() const noexcept { return next_send < next_link; }
  bool credit_ok() const noexcept {
    return phase == Phase::kReady && next_send <= credit && in_flight() < o.window;
  }

  bool send_control(MessageType type, std::uint64_t seq, std::uint64_t value) {
    return link::send_control(socket, LinkMessage{type, session, seq, value});
  }

  void send_hello(Clock::time_point now) {
    // A bound DEALER with no peer yet refuses at once: poll_item() then asks for POLLOUT, which
    // fires when a peer connects, and the blocking calls retry every kRetry.
    hello_blocked = !send_control(MessageType::kHello, acked, o.window);
    hello_due = now + o.heartbeat_interval;
    if (!hello_blocked) ++st.hellos;
  }

  bool out_blocked() const noexcept {
    return (phase == Phase::kConnecting && hello_blocked) || (data_blocked && waiting());
  }

  // Moves sealed batches from the batcher into the held queue while there is room.
  void pump_batcher() {
    while (held.size() < o.max_queued && batcher.has_sealed()) {
      SealedBatch b = *batcher.take();
      Held h;
      h.producer_id = batcher.producer_id();
      h.seq = b.seq;
      h.id = b.seq;
      h.records = b.records;
      h.frame = std::move(b.frame);
      enqueue(std::move(h));
    }
  }

  void enqueue(Held h) {
    h.link_seq = next_link++;
    held.push_back(std::move(h));
    ++st.batches_queued;
  }

  // Sends what credit and window allow.
  void transmit(Clock::time_point now) {
    data_blocked = false;
    while (waiting() && credit_ok()) {
      Held& h = held[next_send - acked - 1];
      zmq::message_t header =
          reliable::encode(LinkMessage{MessageType::kData, session, h.link_seq, 0});
      if (!socket.send(header, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        data_blocked = true;
        break;
      }
      zmq::message_t body;
      body.copy(h.frame);  // shares the buffer (reference counted), no byte copy
      // Parts after the first of a multipart message are not subject to the high-water mark.
      (void)socket.send(body, zmq::send_flags::none);
      if (in_flight() == 0) progress = now;
      if (h.link_seq <= highest_sent) {
        ++st.batches_resent;
      } else {
        highest_sent = h.link_seq;
      }
      ++next_send;
      ++st.batches_sent;
    }
    bool blocked = waiting() && phase == Phase::kReady && !credit_ok();
    if (blocked && !stalled) ++st.credit_stalls;
    stalled = blocked;
  }

  // Cumulative acknowledgement up to `upto`; returns batches newly acknowledged.
  std::size_t take_ack(std::uint64_t upto, const AckCallback& callback, Clock::time_point now) {
    if (upto >= next_link) {  // acknowledges what was never sent: a confused or foreign peer
      reject(Status::corruption("acknowledgement of link seq " + std::to_string(upto) +
                                " which was never sent (next is " + std::to_string(next_link) +
                                ")"));
      return 0;
    }
    std::size_t n = 0;
    while (acked < upto) {
      Held h = std::move(held.front());
      held.pop_front();
      acked = h.link_seq;
      ++st.batches_acked;
      ++n;
      if (next_send <= acked) next_send = acked + 1;
      progress = now;
      if (callback) callback(AckedBatch{h.id, h.producer_id, h.seq, h.link_seq});
    }
    return n;
  }

  std::size_t handle(const LinkMessage& m, const AckCallback& callback, Clock::time_point now) {
    if (m.session != session) {
      reject(Status::corruption(std::string(reliable::message_type_name(m.type)) +
                                " for another session " + std::to_string(m.session)));
      return 0;
    }
    peer.heard(now);
    switch (m.type) {
      case MessageType::kWelcome: {
        std::size_t n = m.seq > acked ? take_ack(m.seq, callback, now) : 0;
        if (phase == Phase::kConnecting) {
          phase = Phase::kReady;
          credit = m.value;
          next_send = acked + 1;  // go back: resend everything unacknowledged
          progress = now;
          last_ping = now;
        } else {
          credit = std::max(credit, m.value);
        }
        return n;
      }
      case MessageType::kAck: {
        std::size_t n = m.seq > acked ? take_ack(m.seq, callback, now) : 0;
        if (phase == Phase::kReady) credit = std::max(credit, m.value);
        return n;
      }
      case MessageType::kNack:
        ++st.nacks;
        if (phase == Phase::kReady && m.seq > acked && m.seq < next_send) {
          next_send = m.seq;
          progress = now;
        }
        return 0;
      case MessageType::kReset:
        ++st.resets;
        if (phase == Phase::kReady) {
          phase = Phase::kConnecting;
          send_hello(now);
        }
        return 0;
      default:  // a receiver never sends HELLO, DATA or PING
        reject(Status::corruption(std::string("unexpected ") + reliable::message_type_name(m.type) +
                                  " from the receiver"));
        return 0;
    }
  }

  // Handles what arrived, runs the timers, sends what credit allows.
  std::size_t service(const AckCallback& callback) {
    std::size_t acks = 0;
    for (std::size_t i = 0; i < kDrain; ++i) {
      zmq::message_t part[1];
      std::size_t frames = link::recv_message(socket, part);
      if (frames == 0) break;
      if (frames > 1) {
        reject(Status::corruption("a multipart message from the receiver"));
        continue;
      }
      Result<LinkMessage> m = reliable::decode(part[0]);
      if (!m) {
        reject(m.status());
        continue;
      }
      acks += handle(*m, callback, Clock::now());
    }
    Clock::time_point now = Clock::now();
    if (phase == Phase::kReady && !peer.alive(now, o.heartbeat_timeout)) {
      ++st.peer_lost;
      phase = Phase::kConnecting;
      send_hello(now);
    } else if (phase == Phase::kConnecting && (now >= hello_due || hello_blocked)) {
      send_hello(now);
    }
    if (phase == Phase::kReady) {
      // No ack progress: probe with a PING rather than resending the whole window. The receiver
      // NACKs what it misses (then we go back) and ACKs what it has; a receiver that merely holds
      // its acks (manual mode, a spool waiting for fsync) costs no resend.
      bool probe = in_flight() > 0 && now - progress >= o.resend_timeout;
      if (probe) {
        ++st.timeouts;
        progress = now;
      }
      if (probe || now - last_ping >= o.heartbeat_interval) {
        (void)send_control(MessageType::kPing, next_send - 1, 0);
        last_ping = now;
      }
    }
    batcher.poll(now);
    pump_batcher();
    transmit(now);
    return acks;
  }

  // The earliest moment service() has work to do without input (room to send aside).
  Clock::time_point next_deadline() const noexcept {
    Clock::time_point d;
    if (phase == Phase::kConnecting) {
      d = hello_due;
    } else {
      d = std::min(peer.last_heard + o.heartbeat_timeout, last_ping + o.heartbeat_interval);
      if (in_flight() > 0) d = std::min(d, progress + o.resend_timeout);
    }
    if (auto b = batcher.deadline()) d = std::min(d, *b);
    return d;
  }

  // Waits for input until the next timer or `limit`; a send waiting for room retries every
  // kRetry (core's wait is for input only; a device loop polls poll_item()'s POLLOUT instead).
  void wait(std::optional<Clock::time_point> limit) {
    Clock::time_point now = Clock::now();
    Clock::time_point d = next_deadline();
    if (out_blocked()) d = std::min(d, now + kRetry);
    if (limit) d = std::min(d, *limit);
    (void)link::wait(socket, waker, d);
  }

  bool all_acked() const noexcept {
    return held.empty() && !batcher.has_sealed() && batcher.held_records() == 0;
  }

  Status queue_frame(zmq::message_t&& frame, std::uint64_t id, std::uint64_t producer_id,
                     std::uint64_t seq, std::uint64_t records) {
    pump_batcher();
    if (held.size() >= o.max_queued) {
      ++st.send_would_block;
      return Status::limit_exceeded("sender backlog full (" + std::to_string(o.max_queued) +
                                    " batches)");
    }
    Held h;
    h.frame = std::move(frame);
    h.id = id;
    h.producer_id = producer_id;
    h.seq = seq;
    h.records = records;
    enqueue(std::move(h));
    transmit(Clock::now());
    return {};
  }

  Status check_size(const zmq::message_t& frame) const {
    if (frame.size() <= o.limits.max_batch_bytes) return {};
    return Status::limit_exceeded("batch frame is " + std::to_string(frame.size()) +
                                  " bytes, limit " + std::to_string(o.limits.max_batch_bytes));
  }
};

ReliableSender::ReliableSender(zmq::context_t& context, ReliableSenderOptions options) {
  if (options.window == 0) throw std::invalid_argument("ReliableSender: window is 0");
  if (options.max_queued < options.window) {
    throw std::invalid_argument("ReliableSender: max_queued is smaller than window");
  }
  if (options.heartbeat_interval.count() <= 0 || options.heartbeat_timeout.count() <= 0 ||
      options.resend_timeout.count() <= 0) {
    throw std::invalid_argument("ReliableSender: heartbeat and resend times must be positive");
  }
  if (options.first_seq == 0) throw std::invalid_argument("ReliableSender: first_seq is 0");
  s_ = std::make_unique<State>(context, std::move(options));
}

ReliableSender::~ReliableSender() { close(); }
ReliableSender::ReliableSender(ReliableSender&&) noexcept = default;
ReliableSender& ReliableSender::operator=(ReliableSender&& other) noexcept {
  if (this != &other) {
    close();
    s_ = std::move(other.s_);
    on_acked_ = std::move(other.on_acked_);
  }
  return *this;
}

ReliableSender::State& ReliableSender::live() const {
  if (!s_) throw std::logic_error("zkit::ReliableSender: used after move");
  return *s_;
}

std::string ReliableSender::bind(const std::string& endpoint) {
  return attach(live().socket, Endpoint{endpoint, true});
}
std::string ReliableSender::connect(const std::string& endpoint) {
  return attach(live().socket, Endpoint{endpoint, false});
}

bool ReliableSender::send(std::span<const std::byte> message, milliseconds timeout) {
  State& s = live();
  s.pump_batcher();
  if (s.batcher.has_sealed()) {
    std::optional<Clock::time_point> deadline = link::deadline_of(timeout, Clock::now());
    while (s.batcher.has_sealed()) {
      if (deadline && Clock::now() >= *deadline) {
        ++s.st.send_would_block;
        return false;
      }
      s.wait(deadline);
      s.service(on_acked_);
    }
  }
  bool sealed = s.batcher.add(message);
  ++s.st.messages;
  if (sealed) s.service(on_acked_);
  return true;
}

void ReliableSender::on_error(ErrorCallback callback) { live().on_error = std::move(callback); }
void ReliableSender::on_acked(AckCallback callback) {
  (void)live();
  on_acked_ = std::move(callback);
}

void ReliableSender::flush() {
  State& s = live();
  s.batcher.flush();
  s.service(on_acked_);
}

Status ReliableSender::send_batch(zmq::message_t&& frame, std::uint64_t id) {
  State& s = live();
  if (Status size = s.check_size(frame); !size.is_ok()) return size;
  Result<envelope::Header> h = envelope::peek(link::bytes_of(frame));
  if (!h) return h.status();
  return s.queue_frame(std::move(frame), id, h->producer_id, h->seq, h->record_count);
}

Status ReliableSender::send_batch(zmq::message_t&& frame, std::uint64_t id,
                                  std::uint64_t producer_id, std::uint64_t seq) {
  State& s = live();
  if (Status size = s.check_size(frame); !size.is_ok()) return size;
  return s.queue_frame(std::move(frame), id, producer_id, seq, 0);
}

bool ReliableSender::has_credit() const { return live().credit_ok(); }
bool ReliableSender::can_send() const {
  const State& s = live();
  return s.credit_ok() && !s.waiting() && !s.batcher.has_sealed() && s.held.size() < s.o.max_queued;
}

zmq_pollitem_t ReliableSender::poll_item() noexcept {
  if (!s_ || s_->closed) return link::kNoPollItem;
  short events = ZMQ_POLLIN;
  if (s_->out_blocked()) events |= ZMQ_POLLOUT;
  return {s_->socket.handle(), 0, events, 0};
}

std::optional<Clock::time_point> ReliableSender::next_deadline() const noexcept {
  if (!s_ || s_->closed) return std::nullopt;
  return s_->next_deadline();
}

std::size_t ReliableSender::poll_once(milliseconds timeout) {
  State& s = live();
  std::optional<Clock::time_point> limit = link::deadline_of(timeout, Clock::now());
  // Work due now (a sealed batch, an expired timer) runs first without waiting.
  std::size_t acks = s.service(on_acked_);
  if (acks > 0 || timeout.count() == 0) return acks;
  s.wait(limit);
  return acks + s.service(on_acked_);
}

bool ReliableSender::wait_all_acked(milliseconds timeout) {
  State& s = live();
  s.batcher.flush();
  std::optional<Clock::time_point> deadline = link::deadline_of(timeout, Clock::now());
  s.service(on_acked_);
  while (!s.all_acked()) {
    if (deadline && Clock::now() >= *deadline) return false;
    s.wait(deadline);
    s.service(on_acked_);
  }
  return true;
}

std::size_t ReliableSender::in_flight() const { return live().in_flight(); }
std::size_t ReliableSender::unacked() const { return live().held.size(); }
bool ReliableSender::connected() const {
  const State& s = live();
  return s.phase == State::Phase::kReady && s.peer.alive(Clock::now(), s.o.heartbeat_timeout);
}
std::uint64_t ReliableSender::session_id() const { return live().session; }
std::uint64_t ReliableSender::producer_id() const { return live().batcher.producer_id(); }

ReliableSenderStats ReliableSender::stats() const {
  const State& s = live();
  ReliableSenderStats st = s.st;
  st.in_flight = s.in_flight();
  st.queued = s.held.size();
  st.peers = connected() ? 1 : 0;
  return st;
}

std::string ReliableSenderStats::to_json() const {
  JsonWriter w;
  w.begin_object()
      .field("messages", messages)
      .field("batches_queued", batches_queued)
      .field("batches_sent", batches_sent)
      .field("batches_acked", batches_acked)
      .field("batches_resent", batches_resent)
      .field("credit_stalls", credit_stalls)
      .field("nacks", nacks)
      .field("timeouts", timeouts)
      .field("hellos", hellos)
      .field("resets", resets)
      .field("peer_lost", peer_lost)
      .field("decode_errors", decode_errors)
      .field("send_would_block", send_would_block)
      .field("in_flight", in_flight)
      .field("queued", queued)
      .field("peers", peers)
      .end_object();
  return std::move(w).str();
}

CloseReport ReliableSender::close() {
  CloseReport r;
  if (!s_ || s_->closed) return r;
  State& s = *s_;
  s.closed = true;
  for (const State::Held& h : s.held) {
    ++r.unsent_batches;
    r.unsent_messages += h.records != 0 ? h.records : link::records_of(h.frame);
  }
  while (std::optional<SealedBatch> b = s.batcher.take()) {
    ++r.unsent_batches;
    r.unsent_messages += b->records;
  }
  if (s.batcher.held_records() > 0) {
    ++r.unsent_batches;
    r.unsent_messages += s.batcher.held_records();
  }
  s.held.clear();
  s.socket.close();
  s.waker.close();
  return r;
}

}  // namespace zkit
