// Consumer: a member of a spool group over the consumer protocol (docs/protocol.md, "The consumer
// protocol (v1)"): JOIN and re-JOIN, DELIVER to the handler, coalesced ACK ranges, NACK, PROGRESS,
// heartbeats, and dropping redeliveries of batches it already acknowledged.
#include "zkit/consumer.hpp"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "reliable_link.hpp"
#include "zkit/batcher.hpp"
#include "zkit/consumer_codec.hpp"
#include "zkit/json.hpp"

namespace zkit {

namespace proto = consumer;
using detail::link::Clock;
using std::chrono::milliseconds;

namespace {

// A batch whose ack the spool did not see comes back with a new tag. Nacking an undecodable batch
// with a delay keeps it from cycling at full speed between members until max_deliver retires it.
constexpr milliseconds kBadBatchDelay{1000};
// A JOIN ZeroMQ could not take yet (a bound DEALER without a peer) is tried again this soon.
constexpr milliseconds kJoinBusyRetry{20};
// Until JOINED says otherwise.
constexpr milliseconds kDefaultHeartbeat{1000};

// The (producer_id, seq) of the last `capacity` batches acknowledged: an open-addressing set
// (linear probing, backward-shift deletion) plus a ring that says which key goes next. Its two
// arrays are allocated at the first insert, never afterwards.
class AckedSet {
 public:
  explicit AckedSet(std::size_t capacity) : capacity_(capacity) {}

  bool contains(std::uint64_t producer, std::uint64_t seq) const noexcept {
    if (filled_ == 0 || (producer == 0 && seq == 0)) return false;
    for (std::size_t i = home(producer, seq);; i = (i + 1) & mask_) {
      const Key& k = slots_[i];
      if (k.empty()) return false;
      if (k.producer == producer && k.seq == seq) return true;
    }
  }

  void insert(std::uint64_t producer, std::uint64_t seq) {
    if (capacity_ == 0 || (producer == 0 && seq == 0) || contains(producer, seq)) return;
    if (slots_.empty()) {
      std::size_t n = 2;
      while (n < 2 * capacity_) n <<= 1;
      slots_.assign(n, Key{});
      mask_ = n - 1;
      ring_.assign(capacity_, Key{});
    }
    if (filled_ == capacity_) {
      erase(ring_[next_]);
    } else {
      ++filled_;
    }
    Key k{producer, seq};
    ring_[next_] = k;
    next_ = (next_ + 1) % capacity_;
    std::size_t i = home(producer, seq);
    while (!slots_[i].empty()) i = (i + 1) & mask_;
    slots_[i] = k;
  }

  std::size_t size() const noexcept { return filled_; }

 private:
  struct Key {
    std::uint64_t producer = 0;
    std::uint64_t seq = 0;
    bool empty() const noexcept { return producer == 0 && seq == 0; }
  };

  std::size_t home(std::uint64_t producer, std::uint64_t seq) const noexcept {
    std::uint64_t h = producer * 0x9e3779b97f4a7c15ull ^ (seq + 0x632be59bd9b4e019ull);
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
    return static_cast<std::size_t>(h) & mask_;
  }

  void erase(const Key& key) noexcept {
    std::size_t i = home(key.producer, key.seq);
    while (!(slots_[i].producer == key.producer && slots_[i].seq == key.seq)) {
      if (slots_[i].empty()) return;
      i = (i + 1) & mask_;
    }
    // Backward shift: pull later entries of the same probe run into the hole, so that lookups
    // never need tombstones.
    for (std::size_t j = (i + 1) & mask_; !slots_[j].empty(); j = (j + 1) & mask_) {
      std::size_t h = home(slots_[j].producer, slots_[j].seq);
      if (((j - h) & mask_) >= ((j - i) & mask_)) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = Key{};
  }

  std::size_t capacity_;
  std::vector<Key> slots_;
  std::size_t mask_ = 0;
  std::vector<Key> ring_;
  std::size_t next_ = 0;
  std::size_t filled_ = 0;
};

std::uint64_t new_member_id() {
  std::uint64_t id = 0;
  while (id == 0) id = random_producer_id();
  return id;
}

}  // namespace

ConsumerStart ConsumerStart::time(std::chrono::system_clock::time_point t) noexcept {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  return {Kind::kTime, 0, 0, ns < 0 ? 0 : static_cast<std::uint64_t>(ns)};
}

struct Consumer::State {
  // A delivery handed to the handler and not yet acked or nacked (tags rise, so this stays sorted).
  struct Held {
    std::uint64_t tag = 0;
    std::uint64_t producer_id = 0;
    std::uint64_t seq = 0;
  };

  State(zmq::context_t& context, ConsumerOptions options)
      : o(std::move(options)),
        socket(context, zmq::socket_type::dealer),
        waker(context),
        acked(o.acked_memory),
        member(new_member_id()) {
    apply(socket, o.socket, o.limits);
    credit_cap = o.prefetch_batches;
    pending_acks.reserve(64);
    held.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(o.prefetch_batches, 4096)));
  }

  ConsumerOptions o;
  zmq::socket_t socket;
  detail::Waker waker;
  AckedSet acked;
  ConsumerStats st;
  ErrorCallback on_error;
  proto::Message in;  // the last control message read (its capacity is reused)
  std::vector<zmq::message_t> bundle_parts;  // on_bundle's, kept for its capacity

  bool closed = false;
  bool attached = false;
  std::uint64_t member;
  bool is_joined = false;
  std::optional<Clock::time_point> join_due;  // when the next JOIN goes (not joined)
  milliseconds heartbeat = kDefaultHeartbeat;
  Clock::time_point last_sent{};
  std::optional<Clock::time_point> ping_since;  // the oldest PING not answered by anything
  std::uint64_t highest_tag = 0;                // of the current member
  std::vector<proto::TagRange> pending_acks;    // tags to acknowledge, as ranges
  std::vector<Held> held;
  std::uint64_t current_tag = 0;  // the batch in the handler (0: none)
  bool current_settled = false;   // the handler acked or nacked it itself
  bool in_handler = false;
  std::uint64_t credit_cap = 0;  // the most prefetch_batches ever granted (a lower CREDIT does
                                 // not take back what was delivered)

  void report(Status why) {
    if (on_error) on_error(why);
  }
  void malformed(Status why) {
    ++st.decode_errors;
    report(std::move(why));
  }

  // One control frame, without waiting. False when ZeroMQ had no room (no peer yet, or the HWM).
  bool send(zmq::message_t&& frame) {
    if (!socket.send(frame, zmq::send_flags::dontwait)) return false;
    last_sent = Clock::now();
    return true;
  }
  bool send(const proto::Body& body) { return send(proto::encode(proto::Message{member, body})); }

  bool send_join() {
    std::uint64_t flags = o.manual_ack ? proto::kJoinManualAck : 0;
    proto::Join j{o.group,
                  o.prefetch_batches,
                  o.prefetch_messages,
                  static_cast<proto::StartKind>(o.start.kind),
                  o.start.kind == ConsumerStart::Kind::kTime ? o.start.unix_ns : o.start.segment,
                  o.start.kind == ConsumerStart::Kind::kTime ? 0 : o.start.offset,
                  static_cast<std::uint64_t>(std::max<long long>(0, o.ack_wait.count())),
                  flags,
                  std::min<std::uint64_t>(o.bundle_bytes, o.limits.max_batch_bytes)};
    if (!send(j)) return false;
    ++st.joins_sent;
    return true;
  }

  // A new member id: whatever the old one held has gone (or goes, with the LEAVE) back to the
  // group, so its tags and pending acks mean nothing any more. The acked set stays: it is what
  // drops the redeliveries of batches acked under the old id.
  void rejoin(bool leave_old) {
    if (leave_old) (void)send(proto::Leave{});
    member = new_member_id();
    is_joined = false;
    highest_tag = 0;
    held.clear();
    pending_acks.clear();
    ping_since.reset();
    join_due = Clock::now();
    ++st.rejoins;
  }

  void queue_ack(std::uint64_t tag) {
    if (!pending_acks.empty() && pending_acks.back().last + 1 == tag) {
      pending_acks.back().last = tag;
    } else {
      pending_acks.push_back({tag, tag});
    }
    ++st.batches_acked;
  }

  void flush_acks() {
    while (!pending_acks.empty()) {
      std::size_t n = std::min(pending_acks.size(), proto::kMaxAckRanges);
      zmq::message_t frame = proto::encode_ack(member, std::span(pending_acks.data(), n));
      if (!send(std::move(frame))) return;  // no room: they go on the next step
      ++st.acks_sent;
      pending_acks.erase(pending_acks.begin(), pending_acks.begin() + static_cast<long>(n));
    }
  }

  std::vector<Held>::iterator find_held(std::uint64_t tag) {
    auto it = std::lower_bound(held.begin(), held.end(), tag,
                               [](const Held& h, std::uint64_t t) { return h.tag < t; });
    return it != held.end() && it->tag == tag ? it : held.end();
  }

  // A held delivery is done: acknowledged, and remembered for dropping its redeliveries.
  void ack_held(std::vector<Held>::iterator it) {
    acked.insert(it->producer_id, it->seq);
    queue_ack(it->tag);
    held.erase(it);
  }

  void nack_held(std::vector<Held>::iterator it, milliseconds delay) {
    std::uint64_t tag = it->tag;
    held.erase(it);
    (void)send(proto::Nack{tag, static_cast<std::uint64_t>(std::max<long long>(0, delay.count()))});
    ++st.nacks_sent;
  }

  // The held entry a token names; held.end() (after counting) for a stale or settled one.
  std::vector<Held>::iterator held_for(const ConsumerToken& t, const char* call) {
    if (t.member != member) {
      ++st.stale_acks;
      return held.end();
    }
    if (t.tag == 0 || t.tag > highest_tag) {
      throw std::invalid_argument(std::string("zkit::Consumer::") + call + ": tag " +
                                  std::to_string(t.tag) + " was never delivered");
    }
    return find_held(t.tag);
  }

  std::uint64_t current() const {
    if (current_tag == 0) {
      throw std::logic_error(
          "zkit::Consumer: ack/nack/in_progress without a token outside a "
          "handler");
    }
    return current_tag;
  }

  void on_joined(const proto::Joined& j) {
    if (is_joined) return;  // the answer to a repeated JOIN
    is_joined = true;
    join_due.reset();
    ++st.joined;
    milliseconds spool{static_cast<long long>(std::min<std::uint64_t>(j.heartbeat_ms, 1u << 30))};
    if (spool.count() == 0) spool = kDefaultHeartbeat;
    heartbeat = o.heartbeat_interval.count() > 0 ? std::min(o.heartbeat_interval, spool) : spool;
  }

  void on_spool_error(const proto::Error& e) {
    ++st.errors;
    report(Status::invalid_argument("ERROR " + std::to_string(static_cast<unsigned>(e.code)) +
                                    " (" + proto::error_code_name(e.code) + "): " + e.text));
    switch (e.code) {
      case proto::ErrorCode::kUnknownMember:
        rejoin(false);
        break;
      case proto::ErrorCode::kUnknownTag:
        ++st.unknown_tags;
        break;
      case proto::ErrorCode::kBadPrefetch:
      case proto::ErrorCode::kTooManyGroups:
      case proto::ErrorCode::kGroupFull:
      case proto::ErrorCode::kBadStart:
        // Refused: the JOIN retry (join_due) asks again in join_retry.
        if (!is_joined) ++st.join_refused;
        break;
      default:
        break;
    }
  }

  // DELIVER: returns 1 when the batch went to the handler.
  std::size_t on_deliver(const proto::Deliver& d, zmq::message_t&& frame, const Handler& handler) {
    highest_tag = std::max(highest_tag, d.tag);
    Result<envelope::Batch> batch = envelope::decode(std::move(frame), o.limits);
    if (!batch) {
      ++st.bad_batches;
      report(Status(batch.status().code(), "batch of DELIVER tag " + std::to_string(d.tag) +
                                               " (nacked): " + batch.status().message()));
      (void)send(proto::Nack{d.tag, static_cast<std::uint64_t>(kBadBatchDelay.count())});
      ++st.nacks_sent;
      return 0;
    }
    const envelope::Header& h = batch->header();
    if (acked.contains(h.producer_id, h.seq)) {  // its ack was lost: say it again
      ++st.duplicates_dropped;
      queue_ack(d.tag);
      return 0;
    }
    if (held.size() >= credit_cap) {  // more than any credit we gave: the spool broke the rule
      malformed(Status::corruption("DELIVER tag " + std::to_string(d.tag) +
                                   " beyond the credit of " + std::to_string(credit_cap) +
                                   " batches (nacked)"));
      (void)send(proto::Nack{d.tag, 0});
      ++st.nacks_sent;
      return 0;
    }
    held.push_back({d.tag, h.producer_id, h.seq});
    DeliveryInfo info{d.delivery_count, h.producer_id, h.seq,
                      d.segment,        d.offset,      ConsumerToken{member, d.tag}};
    std::size_t records = batch->size();
    current_tag = d.tag;
    current_settled = false;
    in_handler = true;
    try {
      handler(ConsumedBatch{info, *batch});
    } catch (...) {
      in_handler = false;
      current_tag = 0;
      if (!current_settled) {
        if (auto it = find_held(d.tag); it != held.end()) nack_held(it, milliseconds(0));
      }
      throw;
    }
    in_handler = false;
    current_tag = 0;
    ++st.batches_delivered;
    st.messages_delivered += records;
    if (d.delivery_count > 1) ++st.redelivered;
    if (!o.manual_ack && !current_settled) {
      if (auto it = find_held(d.tag); it != held.end()) ack_held(it);
    }
    return 1;
  }

  // A BUNDLE's frame, shared by the messages made of its batches: freed with the last of them.
  struct SharedFrame {
    zmq::message_t frame;
    std::atomic<std::size_t> refs;  // a handler may hand a frame to a socket: ZeroMQ's I/O
                                    // thread then releases it
    static void release(void*, void* hint) {
      auto* s = static_cast<SharedFrame*>(hint);
      if (s->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete s;
    }
  };

  // BUNDLE: each batch as if it had come in a DELIVER of its own. Returns the batches that went to
  // the handler.
  std::size_t on_bundle(const proto::Bundle& b, zmq::message_t&& frame, const Handler& handler) {
    std::size_t total = 0;
    bool fits = true;
    for (const proto::BundleEntry& e : b.entries) {
      fits = fits && e.bytes <= frame.size() - total;
      if (fits) total += static_cast<std::size_t>(e.bytes);
    }
    auto nack_from = [&](std::size_t first, milliseconds delay) {
      for (std::size_t i = first; i < b.entries.size(); ++i) {
        highest_tag = std::max(highest_tag, b.entries[i].tag);
        (void)send(proto::Nack{b.entries[i].tag, static_cast<std::uint64_t>(delay.count())});
        ++st.nacks_sent;
      }
    };
    if (!fits || total != frame.size()) {
      ++st.bad_batches;
      report(Status::corruption("BUNDLE of " + std::to_string(b.entries.size()) +
                                " batches whose sizes do not add up to its " +
                                std::to_string(frame.size()) + "-byte frame (nacked)"));
      nack_from(0, kBadBatchDelay);
      return 0;
    }
    // Each batch a message of its own over the shared bytes (no copy): the handler may keep it,
    // as it may a DELIVER's frame.
    auto* shared = new SharedFrame{std::move(frame), 1};  // this call's reference, then one a part
    struct Release {
      SharedFrame* s;
      ~Release() { SharedFrame::release(nullptr, s); }
    } release_ours{shared};
    auto* bytes = static_cast<std::byte*>(shared->frame.data());
    bundle_parts.clear();
    bundle_parts.reserve(b.entries.size());
    for (const proto::BundleEntry& e : b.entries) {
      bundle_parts.emplace_back(bytes, static_cast<std::size_t>(e.bytes), &SharedFrame::release,
                                shared);
      shared->refs.fetch_add(1, std::memory_order_relaxed);
      bytes += e.bytes;
    }
    std::size_t delivered = 0;
    for (std::size_t i = 0; i < b.entries.size(); ++i) {
      const proto::BundleEntry& e = b.entries[i];
      try {
        delivered += on_deliver({e.tag, e.delivery_count, e.segment, e.offset},
                                std::move(bundle_parts[i]), handler);
      } catch (...) {
        bundle_parts.clear();               // releases the rest of the frame
        nack_from(i + 1, milliseconds(0));  // not handed to the handler: back at once
        throw;
      }
    }
    bundle_parts.clear();
    return delivered;
  }

  // Reads one ZeroMQ message; false when none was waiting.
  bool handle_one(const Handler& handler, std::size_t& delivered) {
    zmq::message_t parts[2];
    std::size_t frames = detail::link::recv_message(socket, parts);
    if (frames == 0) return false;
    if (frames > 2) {
      malformed(Status::corruption("a message of " + std::to_string(frames) + " frames"));
      return true;
    }
    if (Status s = proto::decode_into(parts[0], in); !s) {
      malformed(std::move(s));
      return true;
    }
    proto::MessageType type = in.type();
    bool want_batch = type == proto::MessageType::kDeliver || type == proto::MessageType::kBundle;
    if ((frames == 2) != want_batch) {
      malformed(
          Status::corruption(std::string(proto::message_type_name(type)) +
                             (want_batch ? " without its batch frame" : " with a second frame")));
      return true;
    }
    // Member 0: an ERROR about a message of ours the spool could not read.
    if (in.member != member && !(type == proto::MessageType::kError && in.member == 0)) {
      ++st.stale;
      return true;
    }
    ping_since.reset();  // the spool is alive
    switch (type) {
      case proto::MessageType::kJoined:
        on_joined(*in.get<proto::Joined>());
        break;
      case proto::MessageType::kDeliver:
        delivered += on_deliver(*in.get<proto::Deliver>(), std::move(parts[1]), handler);
        break;
      case proto::MessageType::kBundle:
        delivered += on_bundle(*in.get<proto::Bundle>(), std::move(parts[1]), handler);
        break;
      case proto::MessageType::kPong:
        ++st.pongs;
        break;
      case proto::MessageType::kError:
        on_spool_error(*in.get<proto::Error>());
        break;
      default:
        malformed(Status::corruption(std::string("unexpected ") + proto::message_type_name(type) +
                                     " from the spool"));
        break;
    }
    return true;
  }

  void run_timers(Clock::time_point now) {
    if (!attached) return;
    if (!is_joined) {
      if (join_due && now >= *join_due) {
        join_due = now + (send_join() ? o.join_retry : kJoinBusyRetry);
      }
      return;
    }
    if (ping_since && now - *ping_since >= o.heartbeat_timeout) {
      ++st.spool_lost;
      rejoin(true);
      join_due = now + (send_join() ? o.join_retry : kJoinBusyRetry);
      return;
    }
    if (now - last_sent >= heartbeat) {
      if (send(proto::Ping{})) {
        ++st.pings_sent;
        if (!ping_since) ping_since = now;
      }
    }
  }

  std::optional<Clock::time_point> timer_deadline() const noexcept {
    if (closed) return std::nullopt;
    if (!pending_acks.empty()) return Clock::now();
    if (!attached) return std::nullopt;
    if (!is_joined) return join_due;
    Clock::time_point d = last_sent + heartbeat;
    if (ping_since) d = std::min(d, *ping_since + o.heartbeat_timeout);
    return d;
  }

  std::size_t step(const Handler& handler, std::optional<Clock::time_point> deadline) {
    if (in_handler) throw std::logic_error("zkit::Consumer: poll_once/run called from a handler");
    run_timers(Clock::now());
    flush_acks();
    std::optional<Clock::time_point> until = detail::earliest(deadline, timer_deadline());
    (void)detail::link::wait(socket, waker, until);
    std::size_t delivered = 0;
    for (std::size_t i = 0; i < o.max_drain && !waker.requested(); ++i) {
      if (!handle_one(handler, delivered)) break;
    }
    run_timers(Clock::now());
    flush_acks();
    return delivered;
  }

  void attach_done() {
    attached = true;
    join_due = Clock::now();
    run_timers(Clock::now());
  }

  CloseReport close() {
    if (closed) return {};
    closed = true;
    if (attached) {
      flush_acks();
      (void)send(proto::Leave{});  // what this member holds goes back to the group at once
    }
    socket.close();
    waker.close();
    return {};
  }
};

Consumer::Consumer(zmq::context_t& context, ConsumerOptions options) {
  if (!proto::valid_group_name(options.group)) {
    throw std::invalid_argument("zkit::Consumer: bad group name \"" + options.group +
                                "\" (1..64 of [A-Za-z0-9._-])");
  }
  if (options.prefetch_batches == 0) {
    throw std::invalid_argument("zkit::Consumer: prefetch_batches is 0");
  }
  if (options.max_drain == 0) throw std::invalid_argument("zkit::Consumer: max_drain is 0");
  if (options.heartbeat_timeout.count() <= 0 || options.join_retry.count() <= 0) {
    throw std::invalid_argument("zkit::Consumer: heartbeat_timeout and join_retry must be > 0");
  }
  s_ = std::make_unique<State>(context, std::move(options));
}

Consumer::~Consumer() { close(); }
Consumer::Consumer(Consumer&&) noexcept = default;
Consumer& Consumer::operator=(Consumer&& other) noexcept {
  if (this != &other) {
    close();
    s_ = std::move(other.s_);
  }
  return *this;
}

Consumer::State& Consumer::live() const {
  if (!s_) throw std::logic_error("zkit::Consumer: used after move");
  return *s_;
}

std::string Consumer::connect(const std::string& endpoint) {
  State& s = live();
  std::string ep = attach(s.socket, Endpoint{endpoint, false});
  s.attach_done();
  return ep;
}

std::string Consumer::bind(const std::string& endpoint) {
  State& s = live();
  std::string ep = attach(s.socket, Endpoint{endpoint, true});
  s.attach_done();
  return ep;
}

std::size_t Consumer::poll_once(const Handler& handler, milliseconds timeout) {
  State& s = live();
  std::size_t n = s.step(handler, detail::link::deadline_of(timeout, Clock::now()));
  if (s.waker.requested()) s.waker.clear();
  return n;
}

void Consumer::run(const Handler& handler) {
  State& s = live();
  try {
    while (!s.waker.requested()) s.step(handler, std::nullopt);
  } catch (const zmq::error_t& e) {
    if (e.num() != ETERM) throw;
  }
  s.waker.clear();
}

void Consumer::stop() noexcept {
  if (!s_) return;
  try {
    s_->waker.wake();
  } catch (...) {  // a closed context: nothing is waiting any more
  }
}

void Consumer::ack() {
  State& s = live();
  std::uint64_t tag = s.current();
  if (auto it = s.find_held(tag); it != s.held.end()) s.ack_held(it);
  s.current_settled = true;
}

void Consumer::nack(milliseconds delay) {
  State& s = live();
  std::uint64_t tag = s.current();
  if (auto it = s.find_held(tag); it != s.held.end()) s.nack_held(it, delay);
  s.current_settled = true;
}

void Consumer::in_progress() {
  State& s = live();
  std::uint64_t tag = s.current();
  if (s.send(proto::Progress{tag})) ++s.st.progress_sent;
}

void Consumer::ack(const ConsumerToken& token) {
  State& s = live();
  auto it = s.held_for(token, "ack");
  if (it == s.held.end()) return;
  if (token.tag == s.current_tag) s.current_settled = true;
  s.ack_held(it);
}

void Consumer::nack(const ConsumerToken& token, milliseconds delay) {
  State& s = live();
  auto it = s.held_for(token, "nack");
  if (it == s.held.end()) return;
  if (token.tag == s.current_tag) s.current_settled = true;
  s.nack_held(it, delay);
}

void Consumer::in_progress(const ConsumerToken& token) {
  State& s = live();
  auto it = s.held_for(token, "in_progress");
  if (it == s.held.end()) return;
  if (s.send(proto::Progress{token.tag})) ++s.st.progress_sent;
}

void Consumer::set_prefetch(std::uint64_t prefetch_batches, std::uint64_t prefetch_messages) {
  State& s = live();
  if (prefetch_batches == 0) throw std::invalid_argument("zkit::Consumer: prefetch_batches is 0");
  s.o.prefetch_batches = prefetch_batches;
  s.o.prefetch_messages = prefetch_messages;
  s.credit_cap = std::max(s.credit_cap, prefetch_batches);
  // Not joined yet: the next JOIN carries the new values.
  if (s.attached && s.is_joined) (void)s.send(proto::Credit{prefetch_batches, prefetch_messages});
}

void Consumer::on_error(ErrorCallback callback) { live().on_error = std::move(callback); }

zmq_pollitem_t Consumer::poll_item() noexcept {
  if (!s_ || s_->closed) return detail::link::kNoPollItem;
  return {s_->socket.handle(), 0, ZMQ_POLLIN, 0};
}

std::optional<Clock::time_point> Consumer::next_deadline() const noexcept {
  return s_ ? s_->timer_deadline() : std::nullopt;
}

bool Consumer::joined() const { return live().is_joined; }
std::uint64_t Consumer::member_id() const { return live().member; }

ConsumerStats Consumer::stats() const {
  const State& s = live();
  ConsumerStats st = s.st;
  st.in_session = s.is_joined ? 1 : 0;
  st.unacked = s.held.size();
  st.acked_remembered = s.acked.size();
  st.member = s.member;
  return st;
}

std::string ConsumerStats::to_json() const {
  JsonWriter w;
  w.begin_object()
      .field("batches_delivered", batches_delivered)
      .field("messages_delivered", messages_delivered)
      .field("redelivered", redelivered)
      .field("duplicates_dropped", duplicates_dropped)
      .field("batches_acked", batches_acked)
      .field("acks_sent", acks_sent)
      .field("nacks_sent", nacks_sent)
      .field("progress_sent", progress_sent)
      .field("pings_sent", pings_sent)
      .field("pongs", pongs)
      .field("joins_sent", joins_sent)
      .field("joined", joined)
      .field("rejoins", rejoins)
      .field("spool_lost", spool_lost)
      .field("join_refused", join_refused)
      .field("errors", errors)
      .field("unknown_tags", unknown_tags)
      .field("stale", stale)
      .field("stale_acks", stale_acks)
      .field("bad_batches", bad_batches)
      .field("decode_errors", decode_errors)
      .field("in_session", in_session)
      .field("unacked", unacked)
      .field("acked_remembered", acked_remembered)
      .field("member", member)
      .end_object();
  return std::move(w).str();
}

CloseReport Consumer::close() { return s_ ? s_->close() : CloseReport{}; }

}  // namespace zkit
