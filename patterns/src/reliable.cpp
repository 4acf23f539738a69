// The reliable link's two endpoints: ReliableSender (DEALER) keeps batches until they are
// acknowledged and paces them by credit; ReliableReceiver (ROUTER) delivers each batch once, in
// link order, and acknowledges it after the application. The rules are in docs/protocol.md.
#include "zkit/reliable.hpp"

#include <algorithm>
#include <atomic>
#include <deque>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "zkit/reliable_codec.hpp"

namespace zkit {
namespace {

using Clock = std::chrono::steady_clock;
using LinkMessage = reliable::Message;
using reliable::MessageType;
using std::chrono::milliseconds;

// Messages handled per sender poll before timers and transmission run.
constexpr std::size_t kSenderDrain = 1024;
// HELLO retry when the socket had no peer to take it.
constexpr milliseconds kHelloRetry{20};
// run() wakes this often to notice stop().
constexpr milliseconds kRunSlice{100};

std::span<const std::byte> bytes_of(const zmq::message_t& m) noexcept {
  return {static_cast<const std::byte*>(m.data()), m.size()};
}

// Milliseconds from now to `t`, rounded up, at least 0.
milliseconds until(Clock::time_point t, Clock::time_point now) {
  if (t <= now) return milliseconds(0);
  return std::chrono::ceil<milliseconds>(t - now);
}

// Waits until `deadline` (or for ever when empty) for input on the socket.
void wait_input(zmq::socket_t& socket, std::optional<Clock::time_point> deadline) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  milliseconds t = deadline ? until(*deadline, Clock::now()) : milliseconds(-1);
  zmq::poll(&item, 1, t);
}

// The pollitem of a moved-from object: no socket, no fd, nothing to wait for.
constexpr zmq_pollitem_t kNoItem{nullptr, -1, 0, 0};

std::uint64_t records_of(const zmq::message_t& frame) {
  Result<envelope::Header> h = envelope::peek(
      {static_cast<const std::byte*>(frame.data()), frame.size()});
  return h ? h->record_count : 0;
}

void drain_more(zmq::socket_t& socket, zmq::message_t& part) {
  while (part.more()) {
    if (!socket.recv(part, zmq::recv_flags::none)) break;
  }
}

// The ZAP User-Id a message carries (zkit's ZapHandler: the peer's Z85 CURVE key); empty when
// there is none. Valid while `m` lives.
std::string_view user_id(zmq::message_t& m) noexcept {
  const char* v = zmq_msg_gets(m.handle(), "User-Id");
  return v ? std::string_view(v) : std::string_view();
}

// A tiny JSON object writer for flat counters.
class JsonObject {
 public:
  JsonObject& add(const char* key, std::uint64_t v) {
    out_ += out_.size() > 1 ? ",\"" : "\"";
    out_ += key;
    out_ += "\":";
    out_ += std::to_string(v);
    return *this;
  }
  std::string str() const { return out_ + "}"; }

 private:
  std::string out_ = "{";
};

}  // namespace

// ==== ReliableSender =============================================================================

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
        session(random_producer_id()) {
    apply(socket, o.socket);
  }

  ReliableSenderOptions o;
  zmq::socket_t socket;
  SequenceCounter sequence;
  Batcher batcher;
  std::uint64_t session;
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
  Clock::time_point last_heard{};
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
    zmq::message_t m = reliable::encode(LinkMessage{type, session, seq, value});
    return socket.send(m, zmq::send_flags::dontwait).has_value();
  }

  void send_hello(Clock::time_point now) {
    // A bound DEALER with no peer yet refuses at once: poll_item() then asks for POLLOUT, which
    // fires when a peer connects, and the blocking calls retry every kHelloRetry.
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
      zmq::message_t header = reliable::encode(LinkMessage{MessageType::kData, session, h.link_seq, 0});
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
    last_heard = now;
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
    zmq::message_t part;
    for (std::size_t i = 0; i < kSenderDrain; ++i) {
      if (!socket.recv(part, zmq::recv_flags::dontwait)) break;
      bool multipart = part.more();
      drain_more(socket, part);
      if (multipart) {
        reject(Status::corruption("a multipart message from the receiver"));
        continue;
      }
      Result<LinkMessage> m = reliable::decode(part);
      if (!m) {
        reject(m.status());
        continue;
      }
      acks += handle(*m, callback, Clock::now());
    }
    Clock::time_point now = Clock::now();
    if (phase == Phase::kReady && now - last_heard >= o.heartbeat_timeout) {
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
      d = std::min(last_heard + o.heartbeat_timeout, last_ping + o.heartbeat_interval);
      if (in_flight() > 0) d = std::min(d, progress + o.resend_timeout);
    }
    if (auto b = batcher.deadline()) d = std::min(d, *b);
    return d;
  }

  // What the blocking calls wait for: next_deadline(), sooner while a send waits for room
  // (they poll for input only).
  Clock::time_point wait_deadline(Clock::time_point now) const noexcept {
    Clock::time_point d = next_deadline();
    return out_blocked() ? std::min(d, now + kHelloRetry) : d;
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
    std::optional<Clock::time_point> deadline;
    if (timeout.count() >= 0) deadline = Clock::now() + timeout;
    while (s.batcher.has_sealed()) {
      Clock::time_point now = Clock::now();
      if (deadline && now >= *deadline) {
        ++s.st.send_would_block;
        return false;
      }
      Clock::time_point until_t = s.wait_deadline(now);
      if (deadline) until_t = std::min(until_t, *deadline);
      wait_input(s.socket, until_t);
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
  Result<envelope::Header> h = envelope::peek(bytes_of(frame));
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
  if (!s_ || s_->closed) return kNoItem;
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
  Clock::time_point now = Clock::now();
  // Work due now (a sealed batch, an expired timer) runs first without waiting.
  std::size_t acks = s.service(on_acked_);
  if (acks > 0 || timeout.count() == 0) return acks;
  std::optional<Clock::time_point> until_t = s.wait_deadline(now);
  if (timeout.count() > 0) until_t = std::min(*until_t, now + timeout);
  wait_input(s.socket, until_t);
  return acks + s.service(on_acked_);
}

bool ReliableSender::wait_all_acked(milliseconds timeout) {
  State& s = live();
  s.batcher.flush();
  std::optional<Clock::time_point> deadline;
  if (timeout.count() >= 0) deadline = Clock::now() + timeout;
  s.service(on_acked_);
  while (!s.all_acked()) {
    Clock::time_point now = Clock::now();
    if (deadline && now >= *deadline) return false;
    Clock::time_point until_t = s.wait_deadline(now);
    if (deadline) until_t = std::min(until_t, *deadline);
    wait_input(s.socket, until_t);
    s.service(on_acked_);
  }
  return true;
}

std::size_t ReliableSender::in_flight() const { return live().in_flight(); }
std::size_t ReliableSender::unacked() const { return live().held.size(); }
bool ReliableSender::connected() const {
  const State& s = live();
  return s.phase == State::Phase::kReady && Clock::now() - s.last_heard < s.o.heartbeat_timeout;
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
  const ReliableSenderStats& st = *this;
  return JsonObject()
      .add("messages", st.messages)
      .add("batches_queued", st.batches_queued)
      .add("batches_sent", st.batches_sent)
      .add("batches_acked", st.batches_acked)
      .add("batches_resent", st.batches_resent)
      .add("credit_stalls", st.credit_stalls)
      .add("nacks", st.nacks)
      .add("timeouts", st.timeouts)
      .add("hellos", st.hellos)
      .add("resets", st.resets)
      .add("peer_lost", st.peer_lost)
      .add("decode_errors", st.decode_errors)
      .add("send_would_block", st.send_would_block)
      .add("in_flight", st.in_flight)
      .add("queued", st.queued)
      .add("peers", st.peers)
      .str();
}

CloseReport ReliableSender::close() {
  CloseReport r;
  if (!s_ || s_->closed) return r;
  State& s = *s_;
  s.closed = true;
  for (const State::Held& h : s.held) {
    ++r.unsent_batches;
    r.unsent_messages += h.records != 0 ? h.records : records_of(h.frame);
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
  return r;
}


// ==== ReliableReceiver ===========================================================================

struct ReliableReceiver::State {
  enum class Kind : std::uint8_t { kDelivered, kDuplicate, kBad };

  // A batch accepted in link order but not yet acknowledged.
  struct Pending {
    std::uint64_t link_seq = 0;
    std::uint64_t producer_id = 0;
    std::uint64_t seq = 0;
    Kind kind = Kind::kDelivered;
  };

  struct Session {
    std::string routing_id;
    std::uint64_t received = 0;    // highest link seq accepted, in order
    std::uint64_t acked = 0;       // cumulative acknowledged link seq
    std::uint64_t app_acked = 0;   // highest link seq the application acknowledged
    std::uint64_t credit = 0;      // credit limit granted (never lowered)
    std::uint64_t nacked = 0;      // the expected link seq last NACKed (one NACK per gap)
    std::uint64_t sent_acked = 0;  // what the last ACK/WELCOME said
    std::uint64_t sent_credit = 0;
    bool reply_due = false;       // an ACK is owed even if nothing changed (PING, resend)
    std::deque<Pending> pending;  // link seqs acked+1 .. received
    Clock::time_point last_heard{};
    std::uint64_t incarnation = 0;  // AckToken::incarnation of its deliveries
  };

  struct Producer {
    std::uint64_t delivered = 0;  // highest seq handed to the application (or seeded)
    std::uint64_t durable = 0;    // highest seq the application acknowledged (or seeded)
    Clock::time_point last_seen{};
  };

  State(zmq::context_t& context, ReliableReceiverOptions options)
      : o(std::move(options)), socket(context, zmq::socket_type::router) {
    apply(socket, o.socket);
    socket.set(zmq::sockopt::router_handover, 1);  // a sender reconnecting under a fixed id
  }

  ReliableReceiverOptions o;
  zmq::socket_t socket;
  std::unordered_map<std::uint64_t, Session> sessions;
  std::unordered_map<std::uint64_t, Producer> producers;
  std::size_t waiting_duplicates = 0;  // pending duplicates whose original is not yet acked
  bool paused = false;
  bool closed = false;
  bool acks_due = false;  // ack() or resume_credit() made acknowledgements that wait for a poll
  std::uint64_t incarnations = 0;
  std::atomic<bool> stop{false};
  ReliableReceiverStats st;
  ErrorCallback on_error;

  void reject(const Status& why) {
    ++st.decode_errors;
    if (on_error) on_error(why);
  }

  std::uint64_t grant(const Session& s) const noexcept {
    return paused ? s.credit : std::max(s.credit, s.acked + o.window);
  }

  void send_to(const std::string& routing_id, MessageType type, std::uint64_t session,
               std::uint64_t seq, std::uint64_t value) {
    zmq::message_t id(routing_id.data(), routing_id.size());
    if (!socket.send(id, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return;
    zmq::message_t m = reliable::encode(LinkMessage{type, session, seq, value});
    (void)socket.send(m, zmq::send_flags::none);
  }

  void send_ack(std::uint64_t id, Session& s, MessageType type) {
    s.credit = grant(s);
    send_to(s.routing_id, type, id, s.acked, s.credit);
    s.sent_acked = s.acked;
    s.sent_credit = s.credit;
    s.reply_due = false;
    if (type == MessageType::kAck) ++st.acks_sent;
  }

  void flush_acks() {
    acks_due = false;
    for (auto& [id, s] : sessions) {
      if (s.reply_due || s.acked != s.sent_acked || grant(s) != s.sent_credit) {
        send_ack(id, s, MessageType::kAck);
      }
    }
  }

  bool done(const Pending& p, const Session& s) const {
    switch (p.kind) {
      case Kind::kDelivered:
        return p.link_seq <= s.app_acked;
      case Kind::kBad:
        return true;
      case Kind::kDuplicate: {
        auto it = producers.find(p.producer_id);
        return it == producers.end() || it->second.durable >= p.seq;
      }
    }
    return true;
  }

  // Moves `acked` over the done prefix of the pending batches.
  void advance(Session& s) {
    while (!s.pending.empty() && done(s.pending.front(), s)) {
      if (s.pending.front().kind == Kind::kDuplicate) --waiting_duplicates;
      s.acked = s.pending.front().link_seq;
      s.pending.pop_front();
    }
  }

  void advance_all() {
    for (auto& [id, s] : sessions) advance(s);
  }

  Producer& producer(std::uint64_t id, Clock::time_point now) {
    auto [it, added] = producers.try_emplace(id);
    it->second.last_seen = now;
    if (added && producers.size() > o.max_producers) {
      forget_producers();
      return producers[id];
    }
    return it->second;
  }

  // Forgets the longest-unseen eighth of the producers (at least one).
  void forget_producers() {
    std::vector<std::pair<Clock::time_point, std::uint64_t>> seen;
    seen.reserve(producers.size());
    for (auto& [id, p] : producers) seen.emplace_back(p.last_seen, id);
    std::size_t drop = std::max<std::size_t>(1, seen.size() / 8);
    std::nth_element(seen.begin(), seen.begin() + static_cast<std::ptrdiff_t>(drop - 1),
                     seen.end());
    for (std::size_t i = 0; i < drop; ++i) producers.erase(seen[i].second);
  }

  // Makes room for one more session: the longest-silent one goes (dead ones are the silent ones).
  void evict_session() {
    auto oldest = sessions.begin();
    for (auto it = sessions.begin(); it != sessions.end(); ++it) {
      if (it->second.last_heard < oldest->second.last_heard) oldest = it;
    }
    for (const Pending& p : oldest->second.pending) {
      if (p.kind == Kind::kDuplicate) --waiting_duplicates;
    }
    sessions.erase(oldest);
  }

  void on_hello(const std::string& rid, const LinkMessage& m, Clock::time_point now) {
    auto it = sessions.find(m.session);
    if (it == sessions.end()) {
      if (sessions.size() >= o.max_sessions) evict_session();
      it = sessions.try_emplace(m.session).first;
      Session& s = it->second;
      s.received = s.acked = s.app_acked = s.credit = m.seq;
      s.incarnation = ++incarnations;
    }
    Session& s = it->second;
    s.routing_id = rid;
    s.last_heard = now;
    s.nacked = 0;
    if (m.seq > s.received) {  // the sender knows of acks this state lost: trust it, it is ahead
      s.received = s.acked = s.app_acked = m.seq;
      for (const Pending& p : s.pending) {
        if (p.kind == Kind::kDuplicate) --waiting_duplicates;
      }
      s.pending.clear();
    }
    send_ack(m.session, s, MessageType::kWelcome);
  }

  // DATA: `body` is the batch frame. Returns 1 when delivered.
  std::size_t on_data(const std::string& rid, const LinkMessage& m, zmq::message_t&& body,
                      std::string_view peer_key, const Handler& handler, Clock::time_point now) {
    ++st.batches_received;
    auto it = sessions.find(m.session);
    if (it == sessions.end()) {
      send_to(rid, MessageType::kReset, m.session, 0, 0);
      ++st.resets_sent;
      return 0;
    }
    Session& s = it->second;
    s.routing_id = rid;
    s.last_heard = now;
    if (m.seq <= s.received) {  // a resend of what we have: say so again
      ++st.duplicates;
      s.reply_due = true;
      return 0;
    }
    if (m.seq > s.received + 1) {  // something before it was lost: go-back-N
      ++st.out_of_order;
      if (s.nacked != s.received + 1) {
        send_to(rid, MessageType::kNack, m.session, s.received + 1, 0);
        s.nacked = s.received + 1;
        ++st.nacks_sent;
      }
      return 0;
    }
    if (m.seq > s.credit) {  // beyond the credit granted: a misbehaving sender
      reject(Status::corruption("DATA link seq " + std::to_string(m.seq) + " of session " +
                                std::to_string(m.session) + " beyond the credit limit " +
                                std::to_string(s.credit)));
      return 0;
    }
    Pending p{m.seq, 0, 0, Kind::kBad};
    Result<envelope::Batch> batch = envelope::decode(std::move(body), o.limits);
    if (!batch) {
      ++st.bad_batches;
      if (on_error) {
        on_error(Status(batch.status().code(),
                        "batch of DATA link seq " + std::to_string(m.seq) + " of session " +
                            std::to_string(m.session) +
                            " (acknowledged, not delivered): " + batch.status().message()));
      }
      accept(s, p);
      return 0;
    }
    p.producer_id = batch->header().producer_id;
    p.seq = batch->header().seq;
    Producer& prod = producer(p.producer_id, now);
    if (p.seq <= prod.delivered) {
      p.kind = Kind::kDuplicate;
      ++st.duplicates;
      if (prod.durable < p.seq) ++waiting_duplicates;
      accept(s, p);
      return 0;
    }
    // Accepted before the handler runs, so that a manual-mode handler may ack() its own token;
    // undone if the handler throws, so that the resend offers the batch again.
    p.kind = Kind::kDelivered;
    s.received = m.seq;
    s.pending.push_back(p);
    std::size_t records = batch->size();
    Delivery d{p.producer_id, p.seq, m.session, peer_key, *batch,
               AckToken{m.session, m.seq, s.incarnation}};
    try {
      handler(d);
    } catch (...) {
      s.pending.pop_back();
      s.received = m.seq - 1;
      throw;
    }
    Producer& after = producer(p.producer_id, now);  // the handler may have seeded producers
    after.delivered = std::max(after.delivered, p.seq);
    ++st.batches_delivered;
    st.messages_delivered += records;
    if (!o.manual_ack) {
      after.durable = std::max(after.durable, p.seq);
      s.app_acked = m.seq;
      if (waiting_duplicates > 0) {
        advance_all();
        return 1;
      }
    }
    advance(s);
    return 1;
  }

  // Takes a batch that is not delivered (duplicate or undecodable) into the link order.
  void accept(Session& s, const Pending& p) {
    s.received = p.link_seq;
    s.pending.push_back(p);
    advance(s);
  }

  void on_ping(const std::string& rid, const LinkMessage& m, Clock::time_point now) {
    auto it = sessions.find(m.session);
    if (it == sessions.end()) {
      send_to(rid, MessageType::kReset, m.session, 0, 0);
      ++st.resets_sent;
      return;
    }
    Session& s = it->second;
    s.routing_id = rid;
    s.last_heard = now;
    // The sender sent more than we have and nothing is arriving: the tail was lost.
    if (m.seq > s.received) {
      send_to(rid, MessageType::kNack, m.session, s.received + 1, 0);
      s.nacked = s.received + 1;
      ++st.nacks_sent;
    }
    s.reply_due = true;
  }

  // Reads one ZeroMQ message (all its frames). Returns false when none was waiting.
  bool handle_one(const Handler& handler, std::size_t& delivered) {
    zmq::message_t rid_frame;
    if (!socket.recv(rid_frame, zmq::recv_flags::dontwait)) return false;
    Clock::time_point now = Clock::now();
    if (!rid_frame.more()) {
      reject(Status::corruption("a message with no frame after the routing id"));
      return true;
    }
    zmq::message_t head;
    (void)socket.recv(head, zmq::recv_flags::none);
    zmq::message_t body;
    bool has_body = head.more();
    if (has_body) (void)socket.recv(body, zmq::recv_flags::none);
    if (body.more()) {  // more frames than any message has
      drain_more(socket, body);
      reject(Status::corruption("a message of more than two frames"));
      return true;
    }
    Result<LinkMessage> m = reliable::decode(head);
    if (!m) {
      reject(m.status());
      return true;
    }
    bool want_body = m->type == MessageType::kData;
    if (has_body != want_body) {
      reject(Status::corruption(std::string(reliable::message_type_name(m->type)) +
                                (want_body ? " without its batch frame" : " with a second frame")));
      return true;
    }
    std::string rid(static_cast<const char*>(rid_frame.data()), rid_frame.size());
    switch (m->type) {
      case MessageType::kHello:
        on_hello(rid, *m, now);
        break;
      case MessageType::kData:
        delivered += on_data(rid, *m, std::move(body), user_id(head), handler, now);
        break;
      case MessageType::kPing:
        on_ping(rid, *m, now);
        break;
      default:  // a sender never sends WELCOME, ACK, NACK or RESET
        reject(Status::corruption(std::string("unexpected ") +
                                  reliable::message_type_name(m->type) + " from a sender"));
        break;
    }
    return true;
  }

  std::size_t live_sessions() const noexcept {
    Clock::time_point now = Clock::now();
    std::size_t n = 0;
    for (const auto& [id, s] : sessions) {
      if (now - s.last_heard < o.heartbeat_timeout) ++n;
    }
    return n;
  }

  std::size_t pending_delivered() const noexcept {
    std::size_t n = 0;
    for (const auto& [id, s] : sessions) {
      for (const Pending& p : s.pending) {
        if (p.kind == Kind::kDelivered && p.link_seq > s.app_acked) ++n;
      }
    }
    return n;
  }
};

ReliableReceiver::ReliableReceiver(zmq::context_t& context, ReliableReceiverOptions options) {
  if (options.window == 0) throw std::invalid_argument("ReliableReceiver: window is 0");
  if (options.max_drain == 0) throw std::invalid_argument("ReliableReceiver: max_drain is 0");
  if (options.max_sessions == 0 || options.max_producers == 0) {
    throw std::invalid_argument("ReliableReceiver: max_sessions and max_producers must be > 0");
  }
  if (options.heartbeat_timeout.count() <= 0) {
    throw std::invalid_argument("ReliableReceiver: heartbeat_timeout must be positive");
  }
  s_ = std::make_unique<State>(context, std::move(options));
}

ReliableReceiver::~ReliableReceiver() { close(); }
ReliableReceiver::ReliableReceiver(ReliableReceiver&&) noexcept = default;
ReliableReceiver& ReliableReceiver::operator=(ReliableReceiver&& other) noexcept {
  if (this != &other) {
    close();
    s_ = std::move(other.s_);
  }
  return *this;
}

ReliableReceiver::State& ReliableReceiver::live() const {
  if (!s_) throw std::logic_error("zkit::ReliableReceiver: used after move");
  return *s_;
}

std::string ReliableReceiver::bind(const std::string& endpoint) {
  return attach(live().socket, Endpoint{endpoint, true});
}
std::string ReliableReceiver::connect(const std::string& endpoint) {
  return attach(live().socket, Endpoint{endpoint, false});
}

void ReliableReceiver::seed(std::uint64_t producer_id, std::uint64_t highest_seq) {
  State& s = live();
  State::Producer& p = s.producer(producer_id, Clock::now());
  p.delivered = std::max(p.delivered, highest_seq);
  p.durable = std::max(p.durable, highest_seq);
  if (s.waiting_duplicates > 0) s.advance_all();
}

zmq_pollitem_t ReliableReceiver::poll_item() noexcept {
  if (!s_ || s_->closed) return kNoItem;
  return {s_->socket.handle(), 0, ZMQ_POLLIN, 0};
}

std::optional<Clock::time_point> ReliableReceiver::next_deadline() const noexcept {
  if (!s_ || s_->closed || !s_->acks_due) return std::nullopt;
  return Clock::now();
}

std::size_t ReliableReceiver::poll_once(const Handler& handler, milliseconds timeout) {
  State& s = live();
  s.flush_acks();  // acks made by ack() since the last poll go out before waiting
  zmq::pollitem_t item{s.socket.handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, timeout);
  std::size_t delivered = 0;
  for (std::size_t i = 0; i < s.o.max_drain; ++i) {
    if (!s.handle_one(handler, delivered)) break;
  }
  s.flush_acks();
  return delivered;
}

void ReliableReceiver::run(const Handler& handler) {
  State& s = live();
  while (!s.stop.load(std::memory_order_relaxed)) poll_once(handler, kRunSlice);
  s.stop.store(false, std::memory_order_relaxed);
}

void ReliableReceiver::stop() noexcept {
  if (s_) s_->stop.store(true, std::memory_order_relaxed);
}

void ReliableReceiver::ack(const AckToken& token) {
  State& s = live();
  if (!s.o.manual_ack) throw std::invalid_argument("ReliableReceiver::ack: manual_ack is off");
  auto it = s.sessions.find(token.session);
  if (it == s.sessions.end() || it->second.incarnation != token.incarnation) {
    ++s.st.acks_for_forgotten_sessions;
    return;
  }
  State::Session& sess = it->second;
  if (token.link_seq > sess.received) {
    throw std::invalid_argument("ReliableReceiver::ack: token " + std::to_string(token.link_seq) +
                                " was never delivered");
  }
  if (token.link_seq <= sess.app_acked) return;
  Clock::time_point now = Clock::now();
  for (const State::Pending& p : sess.pending) {
    if (p.link_seq > token.link_seq) break;
    if (p.kind == State::Kind::kDelivered && p.link_seq > sess.app_acked) {
      State::Producer& prod = s.producer(p.producer_id, now);
      prod.durable = std::max(prod.durable, p.seq);
    }
  }
  sess.app_acked = token.link_seq;
  s.acks_due = true;
  if (s.waiting_duplicates > 0) {
    s.advance_all();
  } else {
    s.advance(sess);
  }
}

void ReliableReceiver::on_error(ErrorCallback callback) { live().on_error = std::move(callback); }

void ReliableReceiver::pause_credit() { live().paused = true; }
void ReliableReceiver::resume_credit() {
  State& s = live();
  if (!s.paused) return;
  s.paused = false;
  s.flush_acks();
}
bool ReliableReceiver::credit_paused() const { return live().paused; }

std::size_t ReliableReceiver::peers() const { return live().live_sessions(); }
std::size_t ReliableReceiver::unacked() const { return live().pending_delivered(); }

ReliableReceiverStats ReliableReceiver::stats() const {
  const State& s = live();
  ReliableReceiverStats st = s.st;
  st.credit_paused = s.paused ? 1 : 0;
  st.unacked = s.pending_delivered();
  st.sessions = s.sessions.size();
  st.peers = s.live_sessions();
  st.producers = s.producers.size();
  return st;
}

std::string ReliableReceiverStats::to_json() const {
  const ReliableReceiverStats& st = *this;
  return JsonObject()
      .add("batches_received", st.batches_received)
      .add("batches_delivered", st.batches_delivered)
      .add("messages_delivered", st.messages_delivered)
      .add("duplicates", st.duplicates)
      .add("out_of_order", st.out_of_order)
      .add("bad_batches", st.bad_batches)
      .add("decode_errors", st.decode_errors)
      .add("acks_sent", st.acks_sent)
      .add("nacks_sent", st.nacks_sent)
      .add("resets_sent", st.resets_sent)
      .add("sessions_refused", st.sessions_refused)
      .add("sessions_evicted", st.sessions_evicted)
      .add("acks_for_forgotten_sessions", st.acks_for_forgotten_sessions)
      .add("credit_paused", st.credit_paused)
      .add("unacked", st.unacked)
      .add("sessions", st.sessions)
      .add("peers", st.peers)
      .add("producers", st.producers)
      .str();
}

CloseReport ReliableReceiver::close() {
  if (!s_ || s_->closed) return {};
  s_->closed = true;
  s_->flush_acks();
  s_->socket.close();
  return {};
}

}  // namespace zkit
