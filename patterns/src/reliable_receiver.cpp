// ReliableReceiver: delivers each batch of each sender session once and in link order, suppresses
// (producer, seq) repeats, grants credit, and acknowledges a batch only once the application has
// (the handler returned, or ack() in manual mode). docs/protocol.md, "Receiver".
#include <algorithm>
#include <deque>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "reliable_link.hpp"
#include "zkit/json.hpp"
#include "zkit/reliable.hpp"

namespace zkit {

namespace link = detail::link;
using namespace detail::link;
using detail::Waker;
using std::chrono::milliseconds;

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
    Liveness sender;
    std::uint64_t incarnation = 0;  // AckToken::incarnation of its deliveries
  };

  struct Producer {
    std::uint64_t delivered = 0;  // highest seq handed to the application (or seeded)
    std::uint64_t durable = 0;    // highest seq the application acknowledged (or seeded)
    Clock::time_point last_seen{};
  };

  State(zmq::context_t& context, ReliableReceiverOptions options)
      : o(std::move(options)), socket(context, zmq::socket_type::router), waker(context) {
    apply(socket, o.socket, o.limits);
    socket.set(zmq::sockopt::router_handover, 1);  // a sender reconnecting under a fixed id
  }

  ReliableReceiverOptions o;
  zmq::socket_t socket;
  Waker waker;  // stop()
  std::unordered_map<std::uint64_t, Session> sessions;
  std::unordered_map<std::uint64_t, Producer> producers;
  std::size_t waiting_duplicates = 0;  // duplicates among the pending batches (they wait for
                                       // their original to become durable)
  bool paused = false;
  bool closed = false;
  bool acks_due = false;  // ack() or resume_credit() made acknowledgements that wait for a poll
  std::uint64_t incarnations = 0;
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
    // A ROUTER does not block; a peer that has gone takes nothing, and its sender's timers
    // recover whatever this message said.
    (void)link::send_control(socket, LinkMessage{type, session, seq, value}, &routing_id);
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

  // Makes room for one more session: the longest-silent of the dead sessions that hold nothing
  // unacknowledged goes. A session that is alive, or whose batches the application holds (manual
  // mode) or that waits for a duplicate's original, is never forgotten: its acks would be lost,
  // and a peer opening sessions could take other peers' data down with it. False: none can go.
  bool evict_session(Clock::time_point now) {
    auto victim = sessions.end();
    for (auto it = sessions.begin(); it != sessions.end(); ++it) {
      const Session& s = it->second;
      if (!s.pending.empty() || s.sender.alive(now, o.heartbeat_timeout)) continue;
      if (victim == sessions.end() || s.sender.last_heard < victim->second.sender.last_heard) {
        victim = it;
      }
    }
    if (victim == sessions.end()) return false;
    sessions.erase(victim);
    ++st.sessions_evicted;
    return true;
  }

  void on_hello(const std::string& rid, const LinkMessage& m, Clock::time_point now) {
    auto it = sessions.find(m.session);
    if (it == sessions.end()) {
      if (sessions.size() >= o.max_sessions && !evict_session(now)) {
        // The table is full of live or busy sessions: the newcomer waits (its HELLO retries)
        // rather than anyone losing state.
        send_to(rid, MessageType::kReset, m.session, 0, 0);
        ++st.resets_sent;
        ++st.sessions_refused;
        return;
      }
      it = sessions.try_emplace(m.session).first;
      Session& s = it->second;
      s.received = s.acked = s.app_acked = s.credit = m.seq;
      s.incarnation = ++incarnations;
    }
    Session& s = it->second;
    s.routing_id = rid;
    s.sender.heard(now);
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
    s.sender.heard(now);
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
    if (p.seq <= prod.delivered && prod.delivered - p.seq >= o.duplicate_window) {
      // Not a resend (those are at most a sender's backlog behind): a restarted or forged
      // sequence. Deliver it and follow the new sequence from here.
      ++st.seq_restarts;
      prod.delivered = prod.durable = p.seq - 1;
    }
    if (p.seq <= prod.delivered) {
      p.kind = Kind::kDuplicate;
      ++st.duplicates;
      ++waiting_duplicates;
      accept(s, p);
      return 0;
    }
    // Accepted before the handler runs, so that a manual-mode handler may ack() its own token;
    // undone if the handler throws, so that the resend offers the batch again.
    p.kind = Kind::kDelivered;
    s.received = m.seq;
    s.pending.push_back(p);
    std::size_t records = batch->size();
    Delivery d{p.producer_id, p.seq,  m.session,
               peer_key,      *batch, AckToken{m.session, m.seq, s.incarnation}};
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
    s.sender.heard(now);
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
    zmq::message_t parts[3];  // routing id, link message, batch frame (DATA)
    std::size_t frames = link::recv_message(socket, parts);
    if (frames == 0) return false;
    Clock::time_point now = Clock::now();
    if (frames == 1) {
      reject(Status::corruption("a message with no frame after the routing id"));
      return true;
    }
    if (frames > 3) {
      reject(Status::corruption("a message of more than two frames"));
      return true;
    }
    zmq::message_t& rid_frame = parts[0];
    zmq::message_t& head = parts[1];
    zmq::message_t& body = parts[2];
    bool has_body = frames == 3;
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
      if (s.sender.alive(now, o.heartbeat_timeout)) ++n;
    }
    return n;
  }

  // Sends the acks made since the last step (ack(), resume_credit()), waits until `deadline` for
  // messages (or a stop), handles up to max_drain of them, then sends the acks they made due.
  std::size_t step(const Handler& handler, std::optional<Clock::time_point> deadline) {
    flush_acks();
    (void)link::wait(socket, waker, deadline);
    std::size_t delivered = 0;
    for (std::size_t i = 0; i < o.max_drain && !waker.requested(); ++i) {
      if (!handle_one(handler, delivered)) break;
    }
    flush_acks();
    return delivered;
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
  if (options.max_sessions == 0 || options.max_producers == 0 || options.duplicate_window == 0) {
    throw std::invalid_argument(
        "ReliableReceiver: max_sessions, max_producers and duplicate_window must be > 0");
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
  if (!s_ || s_->closed) return link::kNoPollItem;
  return {s_->socket.handle(), 0, ZMQ_POLLIN, 0};
}

std::optional<Clock::time_point> ReliableReceiver::next_deadline() const noexcept {
  if (!s_ || s_->closed || !s_->acks_due) return std::nullopt;
  return Clock::now();
}

std::size_t ReliableReceiver::poll_once(const Handler& handler, milliseconds timeout) {
  State& s = live();
  std::size_t delivered = s.step(handler, link::deadline_of(timeout, Clock::now()));
  if (s.waker.requested()) s.waker.clear();  // consumed: this call returned early for it
  return delivered;
}

void ReliableReceiver::run(const Handler& handler) {
  State& s = live();
  try {
    while (!s.waker.requested()) s.step(handler, std::nullopt);
  } catch (const zmq::error_t& e) {
    if (e.num() != ETERM) throw;
  }
  s.waker.clear();
}

void ReliableReceiver::stop() noexcept {
  if (!s_) return;
  try {
    s_->waker.wake();
  } catch (...) {  // a closed context: nothing is waiting any more
  }
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
  JsonWriter w;
  w.begin_object()
      .field("batches_received", batches_received)
      .field("batches_delivered", batches_delivered)
      .field("messages_delivered", messages_delivered)
      .field("duplicates", duplicates)
      .field("seq_restarts", seq_restarts)
      .field("out_of_order", out_of_order)
      .field("bad_batches", bad_batches)
      .field("decode_errors", decode_errors)
      .field("acks_sent", acks_sent)
      .field("nacks_sent", nacks_sent)
      .field("resets_sent", resets_sent)
      .field("sessions_refused", sessions_refused)
      .field("sessions_evicted", sessions_evicted)
      .field("acks_for_forgotten_sessions", acks_for_forgotten_sessions)
      .field("credit_paused", credit_paused)
      .field("unacked", unacked)
      .field("sessions", sessions)
      .field("peers", peers)
      .field("producers", producers)
      .end_object();
  return std::move(w).str();
}

CloseReport ReliableReceiver::close() {
  if (!s_ || s_->closed) return {};
  s_->closed = true;
  s_->flush_acks();
  s_->socket.close();
  s_->waker.close();
  return {};
}

}  // namespace zkit
