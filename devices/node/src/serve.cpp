// The consumer groups' serving loop: members, tags, credit, ack_wait, heartbeats and redelivery
// over one ROUTER, driven by the spool node's single poll. Durable state (what is acked, delivery
// counts, dead letters) is spool::Group's; a member's deliveries are only a list of tags here.
#include "serve.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <map>
#include <span>
#include <stdexcept>
#include <unordered_map>

#include "zkit/consumer_codec.hpp"

namespace zkit::detail {

namespace {

using Clock = ConsumerServer::Clock;
using TimePoint = Clock::time_point;
using std::chrono::milliseconds;
namespace cm = consumer;

constexpr TimePoint kNever = TimePoint::max();
// Longest ack_wait and NACK delay honoured: larger requests are clamped (JOINED says what holds).
constexpr milliseconds kMaxWait{24LL * 3600 * 1000};
// Malformed frames a joined member may send before it is dropped.
constexpr std::uint32_t kMaxMalformed = 16;
// Messages read from the ROUTER per round, so that timers and deliveries keep their turn.
constexpr std::size_t kBurst = 2048;
// After a disconnect event the members are probed now and again later: ZeroMQ may report the
// event before the socket has forgotten the peer's pipe.
constexpr std::array<milliseconds, 4> kProbeAfter{milliseconds{0}, milliseconds{50},
                                                  milliseconds{400}, milliseconds{1500}};
// A group whose log read failed is retried after this.
constexpr milliseconds kReadRetry{1000};
// Frames over this are refused by ZeroMQ before they are allocated (the codec's own bound is
// 32 KiB).
constexpr std::int64_t kMaxFrame = 64 * 1024;

std::string hex(std::string_view routing) {
  std::string s;
  for (unsigned char c : routing) fmt::format_to(std::back_inserter(s), "{:02x}", c);
  return s;
}

std::span<const std::byte> bytes_of(const zmq::message_t& m) {
  return {static_cast<const std::byte*>(m.data()), m.size()};
}

}  // namespace

struct ConsumerServer::Impl {
  struct Group;

  // One delivery a member holds: tags rise, so the vector stays sorted by tag.
  struct Held {
    std::uint64_t tag = 0;
    spool::Position position;
    std::uint32_t messages = 0;
    TimePoint deadline;
  };

  struct Member {
    std::uint64_t id = 0;
    std::string routing;
    Group* group = nullptr;
    std::uint64_t prefetch_batches = 1;
    std::uint64_t prefetch_messages = 0;
    milliseconds ack_wait{0};
    std::uint64_t next_tag = 1;
    std::vector<Held> held;
    std::uint64_t held_messages = 0;
    TimePoint last_heard;
    TimePoint check_at = kNever;  // no held deadline is earlier than this
    std::uint32_t malformed = 0;

    std::size_t bundle_bytes = 0;  // > 0: deliveries go out in BUNDLEs of up to this

    // Room for one more batch beyond what it holds and `batches`/`messages` about to be sent.
    bool has_credit(std::size_t batches = 0, std::uint64_t messages = 0) const {
      return held.size() + batches < prefetch_batches &&
             (prefetch_messages == 0 || held_messages + messages < prefetch_messages);
    }
  };

  struct Group {
    explicit Group(spool::Group g) : state(std::move(g)) {}
    spool::Group state;
    std::vector<Member*> members;
    std::size_t turn = 0;  // breaks ties between equally loaded members
    bool idle = false;     // next() found nothing; look again after a commit, ack or release
    TimePoint retry_at{};  // a failed read is retried then
    TimePoint persist_retry_at{};  // after a failed group file write
  };

  Impl(zmq::context_t& context, spool::Store& s, const SpoolNodeOptions& o)
      : store(s),
        opt(o),
        router(context, zmq::socket_type::router),
        monitor(context, zmq::socket_type::pair) {
    SocketOptions so = opt.serve_socket;
    if (!so.max_message_bytes) so.max_message_bytes = kMaxFrame;
    // Deliveries are bounded by credit (max_prefetch per member); the rest of the pipe is for
    // PONG and ERROR replies, which a peer that reads nothing fills (then dropped and counted).
    if (!so.sndhwm)
      so.sndhwm = static_cast<int>(std::min<std::size_t>(opt.max_prefetch, 1 << 20)) + 1024;
    apply(router, so);
    router.set(zmq::sockopt::router_mandatory, 1);  // a send to a gone peer fails: it is gone
    static std::atomic<std::uint64_t> instance{0};
    const std::string mon = fmt::format("inproc://zkit-serve-monitor-{}", ++instance);
    if (zmq_socket_monitor(router.handle(), mon.c_str(), ZMQ_EVENT_DISCONNECTED) != 0) {
      throw zmq::error_t();
    }
    monitor.set(zmq::sockopt::linger, 0);
    monitor.connect(mon);
    open_existing();
  }

  spool::GroupOptions group_options() const {
    spool::GroupOptions g;
    g.max_deliver = opt.max_deliver;
    g.max_pending = opt.max_pending;
    g.max_dead_bytes = opt.max_dead_bytes;
    return g;
  }

  void open_existing() {
    auto infos = spool::list_groups(opt.store.dir, opt.store.env);
    if (!infos) throw std::runtime_error("spool groups: " + infos.status().to_string());
    for (const spool::GroupInfo& info : infos.value()) {
      const std::string& name = info.name;
      // The node drives `forward` itself when it forwards; otherwise the group still holds
      // retention back (and is listed), but no consumer may join it.
      if (name == kForwardGroup && !opt.forward.empty()) continue;
      auto g = spool::Group::open(store, name, group_options(), spool::Position{});
      if (!g) {
        throw std::runtime_error("spool group " + name + ": " + g.status().to_string());
      }
      groups.emplace(name, std::make_unique<Group>(std::move(g).value()));
    }
    if (!groups.empty()) spdlog::info("spool: {} consumer groups opened", groups.size());
  }

  // ---- sending -----------------------------------------------------------------------------

  enum class Sent { kOk, kFull, kGone };

  Sent send(const std::string& routing, zmq::message_t&& control, zmq::message_t* batch) {
    try {
      if (!router.send(zmq::buffer(routing),
                       zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        return Sent::kFull;
      }
      // Once the first frame is queued the rest of the message is too.
      (void)router.send(control, batch ? zmq::send_flags::sndmore : zmq::send_flags::none);
      if (batch) (void)router.send(*batch, zmq::send_flags::none);
      return Sent::kOk;
    } catch (const zmq::error_t& e) {
      if (e.num() == EHOSTUNREACH) return Sent::kGone;
      throw;
    }
  }

  // PONG and ERROR: best effort; a peer that reads nothing loses them (counted).
  void reply(const std::string& routing, std::uint64_t member, cm::Body body) {
    cm::Message m;
    m.member = member;
    m.body = std::move(body);
    if (send(routing, cm::encode(m), nullptr) == Sent::kFull) ++st.replies_dropped;
  }

  void error(const std::string& routing, std::uint64_t member, cm::ErrorCode code,
             std::string text) {
    ++st.errors_sent;
    if (text.size() > cm::kMaxErrorTextBytes) text.resize(cm::kMaxErrorTextBytes);
    reply(routing, member, cm::Error{code, std::move(text)});
  }

  // Logs the first few misbehaviours and then one in a thousand, naming the peer.
  void complain(std::string_view routing, std::string_view what) {
    if (complaints++ < 20 || complaints % 1000 == 0) {
      spdlog::warn("spool --serve: peer {}: {} ({} complaints so far)", hex(routing), what,
                   complaints);
    }
  }

  // ---- members -----------------------------------------------------------------------------

  // Everything the member holds goes back to its group at once; the member is forgotten.
  void remove_member(Member& m, const TimePoint now) {
    Group& g = *m.group;
    for (const Held& h : m.held) put_back(g, h.position, now);
    g.members.erase(std::find(g.members.begin(), g.members.end(), &m));
    members.erase(m.id);
  }

  void put_back(Group& g, spool::Position p, TimePoint not_before) {
    auto r = g.state.release(p, not_before);
    if (!r) {
      spdlog::error("spool group {}: releasing {}: {}", g.state.name(), p.to_string(),
                    r.status().to_string());
    }
    g.idle = false;
  }

  Member* find_member(std::uint64_t id, std::string_view routing) {
    auto it = members.find(id);
    if (it == members.end() || it->second.routing != routing) return nullptr;
    return &it->second;
  }

  bool valid_prefetch(std::uint64_t batches) const {
    return batches >= 1 && batches <= opt.max_prefetch;
  }

  void on_join(const std::string& routing, std::uint64_t id, const cm::Join& j, TimePoint now) {
    auto refuse = [&](cm::ErrorCode c, std::string text) {
      ++st.refused_joins;
      error(routing, id, c, std::move(text));
    };
    if (auto it = members.find(id); it != members.end()) {
      Member& m = it->second;
      if (m.routing != routing || m.group->state.name() != j.group) {
        ++st.malformed;
        complain(routing, "JOIN with a member id already in use");
        return refuse(cm::ErrorCode::kMalformed, "member id already joined elsewhere");
      }
      // The same JOIN again (its JOINED was lost): answer it, take the new credit.
      if (!valid_prefetch(j.prefetch_batches)) {
        return refuse(cm::ErrorCode::kBadPrefetch, bad_prefetch(j.prefetch_batches));
      }
      m.prefetch_batches = j.prefetch_batches;
      m.prefetch_messages = j.prefetch_messages;
      m.bundle_bytes = bundle_bytes_for(j);
      m.last_heard = now;
      return joined(m);
    }
    if (!valid_prefetch(j.prefetch_batches)) {
      return refuse(cm::ErrorCode::kBadPrefetch, bad_prefetch(j.prefetch_batches));
    }
    if (j.group == kForwardGroup) {
      return refuse(cm::ErrorCode::kBadStart, "group name 'forward' is the --forward link's");
    }
    Group* g = nullptr;
    if (auto it = groups.find(j.group); it != groups.end()) {
      g = it->second.get();
    } else {
      if (groups.size() >= opt.max_groups) {
        return refuse(
            cm::ErrorCode::kTooManyGroups,
            fmt::format("the spool serves at most {} groups (--max-groups)", opt.max_groups));
      }
      auto start =
          store.resolve_start(static_cast<spool::StartKind>(j.start_kind), j.start_a, j.start_b);
      if (!start) return refuse(cm::ErrorCode::kBadStart, start.status().message());
      auto opened = spool::Group::open(store, j.group, group_options(), start.value());
      if (!opened) {
        spdlog::error("spool group {}: cannot create: {}", j.group, opened.status().to_string());
        return refuse(cm::ErrorCode::kBadStart,
                      "group cannot be created: " + opened.status().message());
      }
      g = groups.emplace(j.group, std::make_unique<Group>(std::move(opened).value()))
              .first->second.get();
      spdlog::info("spool group {}: created at {}", j.group, g->state.floor().to_string());
    }
    // One member per connection and group: a consumer that re-joins (after a lost PONG) replaces
    // its old self, so a join storm on one connection cannot fill the group.
    for (Member* old : g->members) {
      if (old->routing == routing) {
        ++st.replaced;
        remove_member(*old, now);
        break;
      }
    }
    if (g->members.size() >= opt.max_members) {
      return refuse(
          cm::ErrorCode::kGroupFull,
          fmt::format("group {} has {} members (--max-members)", j.group, g->members.size()));
    }
    Member& m = members[id];
    m.id = id;
    m.routing = routing;
    m.group = g;
    m.prefetch_batches = j.prefetch_batches;
    m.prefetch_messages = j.prefetch_messages;
    m.bundle_bytes = bundle_bytes_for(j);
    m.ack_wait = j.ack_wait_ms == 0
                     ? opt.ack_wait
                     : std::min(milliseconds(static_cast<std::int64_t>(
                                    std::min<std::uint64_t>(j.ack_wait_ms, kMaxWait.count()))),
                                kMaxWait);
    m.held.reserve(std::min<std::uint64_t>(j.prefetch_batches, 1024));
    m.last_heard = now;
    g->members.push_back(&m);
    ++st.joins;
    joined(m);
  }

  std::size_t bundle_bytes_for(const cm::Join& j) const {
    return static_cast<std::size_t>(std::min<std::uint64_t>(j.bundle_bytes, opt.bundle_bytes));
  }

  std::string bad_prefetch(std::uint64_t n) const {
    return fmt::format("prefetch_batches {} is not in 1..{} (--max-prefetch)", n, opt.max_prefetch);
  }

  void joined(Member& m) {
    reply(m.routing, m.id,
          cm::Joined{m.group->state.name(), static_cast<std::uint64_t>(m.ack_wait.count()),
                     static_cast<std::uint64_t>(opt.consumer_heartbeat.count() / 3),
                     opt.max_deliver});
  }

  // The held entries with first <= tag <= last.
  std::pair<std::vector<Held>::iterator, std::vector<Held>::iterator> held_range(
      Member& m, std::uint64_t first, std::uint64_t last) {
    auto lo = std::lower_bound(m.held.begin(), m.held.end(), first,
                               [](const Held& h, std::uint64_t t) { return h.tag < t; });
    auto hi = std::upper_bound(lo, m.held.end(), last,
                               [](std::uint64_t t, const Held& h) { return t < h.tag; });
    return {lo, hi};
  }

  void on_ack(Member& m, const cm::Ack& a) {
    Group& g = *m.group;
    bool unknown = false, any = false;
    for (const cm::TagRange& r : a.ranges) {
      auto [lo, hi] = held_range(m, r.first, r.last);
      const auto n = static_cast<std::uint64_t>(hi - lo);
      if (n == 0 || n - 1 != r.last - r.first) unknown = true;
      for (auto it = lo; it != hi; ++it) {
        if (Status s = g.state.ack(it->position); !s) {
          spdlog::error("spool group {}: ack of {}: {}", g.state.name(), it->position.to_string(),
                        s.to_string());
        }
        m.held_messages -= it->messages;
      }
      m.held.erase(lo, hi);
      any = any || n > 0;
    }
    if (any) g.idle = false;  // max_pending may have held it back
    if (unknown) {
      ++st.unknown_tag;
      error(m.routing, m.id, cm::ErrorCode::kUnknownTag,
            "ACK names a tag this member does not hold");
    }
  }

  Held* find_tag(Member& m, std::uint64_t tag) {
    auto [lo, hi] = held_range(m, tag, tag);
    return lo == hi ? nullptr : &*lo;
  }

  void unknown_tag(Member& m, std::uint64_t tag, const char* what) {
    ++st.unknown_tag;
    error(m.routing, m.id, cm::ErrorCode::kUnknownTag,
          fmt::format("{} of tag {}, which this member does not hold", what, tag));
  }

  void on_message(const std::string& routing, const cm::Message& msg, TimePoint now) {
    if (const auto* j = msg.get<cm::Join>()) return on_join(routing, msg.member, *j, now);
    Member* m = find_member(msg.member, routing);
    if (m == nullptr) {
      ++st.unknown_member;
      return error(routing, msg.member, cm::ErrorCode::kUnknownMember, "join first");
    }
    m->last_heard = now;
    switch (msg.type()) {
      case cm::MessageType::kAck:
        return on_ack(*m, *msg.get<cm::Ack>());
      case cm::MessageType::kNack: {
        const auto& n = *msg.get<cm::Nack>();
        Held* h = find_tag(*m, n.tag);
        if (!h) return unknown_tag(*m, n.tag, "NACK");
        ++st.nacks;
        const auto delay = milliseconds(
            static_cast<std::int64_t>(std::min<std::uint64_t>(n.delay_ms, kMaxWait.count())));
        m->held_messages -= h->messages;
        const spool::Position p = h->position;
        m->held.erase(m->held.begin() + (h - m->held.data()));
        put_back(*m->group, p, now + delay);
        return;
      }
      case cm::MessageType::kProgress: {
        const auto& p = *msg.get<cm::Progress>();
        Held* h = find_tag(*m, p.tag);
        if (!h) return unknown_tag(*m, p.tag, "PROGRESS");
        h->deadline = now + m->ack_wait;  // later than before: check_at stays a lower bound
        return;
      }
      case cm::MessageType::kCredit: {
        const auto& c = *msg.get<cm::Credit>();
        if (!valid_prefetch(c.prefetch_batches)) {
          return error(m->routing, m->id, cm::ErrorCode::kBadPrefetch,
                       bad_prefetch(c.prefetch_batches));
        }
        m->prefetch_batches = c.prefetch_batches;
        m->prefetch_messages = c.prefetch_messages;
        return;
      }
      case cm::MessageType::kPing:
        return reply(m->routing, m->id, cm::Pong{});
      case cm::MessageType::kLeave:
        ++st.leaves;
        return remove_member(*m, now);
      default:  // JOINED, DELIVER, PONG, ERROR, BUNDLE: the spool's own messages
        return malformed(routing, m, "a spool-to-consumer message sent to the spool", msg.member,
                         cm::ErrorCode::kMalformed);
    }
  }

  void malformed(const std::string& routing, Member* m, const std::string& why,
                 std::uint64_t member, cm::ErrorCode code) {
    ++st.malformed;
    complain(routing, why);
    error(routing, member, code, why);
    if (m && ++m->malformed > kMaxMalformed) {
      ++st.dropped;
      complain(routing, "dropped after too many malformed messages");
      remove_member(*m, Clock::now());
    }
  }

  // The member whose routing id sent a frame that did not decode, if it joined.
  Member* member_of(const std::string& routing) {
    for (auto& [id, m] : members) {
      if (m.routing == routing) return &m;
    }
    return nullptr;
  }

  void read(TimePoint now) {
    for (std::size_t n = 0; n < kBurst; ++n) {
      if (!router.recv(in_routing, zmq::recv_flags::dontwait)) return;
      if (!in_routing.more()) continue;  // ROUTER always adds the routing id; defensive
      in_peer.assign(static_cast<const char*>(in_routing.data()), in_routing.size());
      (void)router.recv(in_body, zmq::recv_flags::none);
      bool extra = false;
      while (in_body.more()) {  // every consumer message is one frame
        extra = true;
        (void)router.recv(in_spare, zmq::recv_flags::none);
        if (!in_spare.more()) break;
      }
      if (extra) {
        malformed(in_peer, member_of(in_peer), "a message of more than one frame", 0,
                  cm::ErrorCode::kMalformed);
        continue;
      }
      if (Status s = cm::decode_into(bytes_of(in_body), in); !s) {
        malformed(in_peer, member_of(in_peer), s.to_string(), 0, cm::error_code_for(s));
        continue;
      }
      on_message(in_peer, in, now);
    }
  }

  // ---- timers --------------------------------------------------------------------------------

  void expire(TimePoint now) {
    doomed.clear();
    for (auto& [id, m] : members) {
      if (now - m.last_heard >= opt.consumer_heartbeat) {
        doomed.push_back(&m);
        continue;
      }
      if (now < m.check_at) continue;
      TimePoint next = kNever;
      std::size_t kept = 0;
      for (Held& h : m.held) {
        if (h.deadline <= now) {
          ++st.ack_wait_expired;
          m.held_messages -= h.messages;
          put_back(*m.group, h.position, now);
        } else {
          next = std::min(next, h.deadline);
          m.held[kept++] = h;
        }
      }
      m.held.resize(kept);
      m.check_at = next;
    }
    for (Member* m : doomed) {
      ++st.timed_out;
      spdlog::info("spool group {}: member {:016x} ({}) silent for {} ms: its {} batches go back",
                   m->group->state.name(), m->id, hex(m->routing), opt.consumer_heartbeat.count(),
                   m->held.size());
      remove_member(*m, now);
    }
  }

  void read_monitor(TimePoint now) {
    bool any = false;
    zmq::message_t f;
    while (monitor.recv(f, zmq::recv_flags::dontwait)) {
      while (f.more()) (void)monitor.recv(f, zmq::recv_flags::none);
      any = true;
    }
    if (!any) return;
    for (std::size_t i = 0; i < kProbeAfter.size(); ++i) probes[i] = now + kProbeAfter[i];
  }

  // Finds members whose connection has gone: with ROUTER_MANDATORY a send to them fails. The
  // probe is a PONG, which a consumer takes as a sign of life.
  void probe(TimePoint now) {
    bool due = false;
    for (TimePoint& p : probes) {
      if (p <= now) {
        p = kNever;
        due = true;
      }
    }
    if (!due) return;
    doomed.clear();
    for (auto& [id, m] : members) {
      cm::Message pong;
      pong.member = m.id;
      pong.body = cm::Pong{};
      if (send(m.routing, cm::encode(pong), nullptr) == Sent::kGone) doomed.push_back(&m);
    }
    for (Member* m : doomed) gone(*m, now);
  }

  void gone(Member& m, TimePoint now) {
    ++st.disconnected;
    spdlog::info("spool group {}: member {:016x} ({}) disconnected: its {} batches go back",
                 m.group->state.name(), m.id, hex(m.routing), m.held.size());
    remove_member(m, now);
  }

  // ---- delivery ------------------------------------------------------------------------------

  Member* pick(Group& g) {
    Member* best = nullptr;
    const std::size_t n = g.members.size();
    for (std::size_t i = 0; i < n; ++i) {
      Member* m = g.members[(g.turn + i) % n];
      if (m->has_credit() && (!best || m->held.size() < best->held.size())) best = m;
    }
    if (best) ++g.turn;
    return best;
  }

  void deliver(Group& g, TimePoint now) {
    if (g.members.empty() || now < g.retry_at) return;
    if (g.idle) {
      const auto due = g.state.next_due();
      if (!due || *due > now) return;
      g.idle = false;
    }
    for (;;) {
      Member* m = pick(g);
      if (!m) return;
      if (!(m->bundle_bytes > 0 ? deliver_bundles(g, *m, now) : deliver_one(g, *m, now))) {
        return;
      }
    }
  }

  // The group's next batch to hand out (its frame valid until the next call on the group), or
  // nullopt when there is none now: the group goes idle, or waits for a read retry.
  std::optional<spool::Delivery> take(Group& g, TimePoint now) {
    auto r = g.state.next(now);
    if (!r) {
      spdlog::error("spool group {}: reading the log: {}; retrying", g.state.name(),
                    r.status().to_string());
      g.retry_at = now + kReadRetry;
      return std::nullopt;
    }
    if (!r.value()) g.idle = true;
    return r.value();
  }

  Held hold(Member& m, const spool::Delivery& d, TimePoint now) {
    return Held{m.next_tag++, d.record.position, d.record.meta.message_count, now + m.ack_wait};
  }

  // What follows a send: the member holds `sent` on success; otherwise they go back to the group
  // and the member is gone (its connection closed, or it reads nothing: dropped). False when the
  // member is gone.
  bool settle(Group& g, Member& m, Sent sent, std::span<const Held> taken, TimePoint now) {
    if (sent != Sent::kOk) {
      for (const Held& h : taken) put_back(g, h.position, now);
      if (sent == Sent::kGone) {
        gone(m, now);
      } else {
        ++st.dropped;
        complain(m.routing, "its queue is full (it reads nothing): dropped");
        remove_member(m, now);
      }
      return false;
    }
    for (const Held& h : taken) {
      ++st.deliveries;
      m.held_messages += h.messages;
      m.check_at = std::min(m.check_at, h.deadline);
      m.held.push_back(h);
    }
    return true;
  }

  // One DELIVER; false when the group has nothing more to hand out now.
  bool deliver_one(Group& g, Member& m, TimePoint now) {
    const std::optional<spool::Delivery> d = take(g, now);
    if (!d) return false;
    const Held h = hold(m, *d, now);
    cm::Message head;
    head.member = m.id;
    head.body = cm::Deliver{h.tag, d->delivery_count, h.position.segment, h.position.offset};
    zmq::message_t batch(d->record.frame.data(), d->record.frame.size());
    (void)settle(g, m, send(m.routing, cm::encode(head), &batch), std::span(&h, 1), now);
    return true;
  }

  // Batches on their way into one BUNDLE: the frame (owned by the message once sent), the
  // entries, and what the member will hold.
  struct Pack {
    std::unique_ptr<std::vector<std::byte>> bytes = std::make_unique<std::vector<std::byte>>();
    cm::Bundle bundle;
    std::vector<Held> held;
    std::uint64_t messages = 0;

    void add(const spool::Delivery& d, const Held& h, std::size_t reserve) {
      const auto frame = d.record.frame;
      if (bytes->empty()) bytes->reserve(std::max(reserve, frame.size()));
      bytes->insert(bytes->end(), frame.begin(), frame.end());
      bundle.entries.push_back(
          {h.tag, d.delivery_count, h.position.segment, h.position.offset, frame.size()});
      held.push_back(h);
      messages += h.messages;
    }
  };

  bool send_pack(Group& g, Member& m, Pack& p, TimePoint now) {
    cm::Message head;
    head.member = m.id;
    head.body = std::move(p.bundle);
    std::vector<std::byte>* raw = p.bytes.release();  // the message owns it from here
    zmq::message_t frame(
        raw->data(), raw->size(),
        [](void*, void* hint) { delete static_cast<std::vector<std::byte>*>(hint); }, raw);
    const bool ok = settle(g, m, send(m.routing, cm::encode(head), &frame), p.held, now);
    if (ok) ++st.bundles;
    return ok;
  }

  // BUNDLEs for `m` while its credit lasts, each up to m.bundle_bytes and kMaxBundleBatches (a
  // batch bigger than bundle_bytes goes alone). False when the group ran out of batches to hand
  // out now.
  bool deliver_bundles(Group& g, Member& m, TimePoint now) {
    Pack p;
    for (;;) {
      const bool room = p.bundle.entries.size() < cm::kMaxBundleBatches &&
                        p.bytes->size() < m.bundle_bytes && m.has_credit(p.held.size(), p.messages);
      if (!room) {
        (void)send_pack(g, m, p, now);
        return true;
      }
      const std::optional<spool::Delivery> d = take(g, now);
      if (!d) {
        if (!p.held.empty()) (void)send_pack(g, m, p, now);
        return false;
      }
      const Held h = hold(m, *d, now);
      if (!p.held.empty() && p.bytes->size() + d->record.frame.size() > m.bundle_bytes) {
        Pack next;  // this batch starts the next bundle (copied now: the send may touch the group)
        next.add(*d, h, m.bundle_bytes);
        if (!send_pack(g, m, p, now)) {
          for (const Held& n : next.held) put_back(g, n.position, now);
          return true;  // the member is gone; the others may take more
        }
        p = std::move(next);
        continue;
      }
      p.add(*d, h, m.bundle_bytes);
    }
  }

  std::optional<TimePoint> persist_due(const Group& g) const {
    auto due = g.state.persist_due();
    if (due && *due < g.persist_retry_at) due = g.persist_retry_at;
    return due;
  }

  void persist(Group& g, TimePoint now) {
    const auto due = persist_due(g);
    if (!due || *due > now) return;
    if (Status s = g.state.persist_if_due(now); !s) {
      spdlog::warn("spool group {}: state not persisted ({}); will retry", g.state.name(),
                   s.to_string());
      g.persist_retry_at = now + kReadRetry;
    }
  }

  void step(const zmq_pollitem_t* items) {
    TimePoint now = Clock::now();
    if (items[1].revents & ZMQ_POLLIN) read_monitor(now);
    if (items[0].revents & ZMQ_POLLIN) read(now);
    probe(now);
    expire(now);
    for (auto& [name, g] : groups) {
      deliver(*g, now);
      persist(*g, now);
    }
  }

  std::optional<TimePoint> next_deadline() const {
    TimePoint d = kNever;
    for (const TimePoint& p : probes) d = std::min(d, p);
    for (const auto& [id, m] : members) {
      d = std::min(d, m.last_heard + opt.consumer_heartbeat);
      d = std::min(d, m.check_at);
    }
    for (const auto& [name, g] : groups) {
      if (auto due = persist_due(*g)) d = std::min(d, *due);
      if (g->members.empty()) continue;
      if (g->retry_at > Clock::now()) d = std::min(d, g->retry_at);
      if (g->idle) {
        if (auto due = g->state.next_due()) d = std::min(d, *due);
      }
    }
    if (d == kNever) return std::nullopt;
    return d;
  }

  Group* find_group(std::string_view name) {
    auto it = groups.find(name);
    return it == groups.end() ? nullptr : it->second.get();
  }

  // Members keep their membership; what they hold is forgotten (their acks of it get ERROR 5).
  void forget_held(Group& g) {
    for (Member* m : g.members) {
      m->held.clear();
      m->held_messages = 0;
      m->check_at = kNever;
    }
  }

  spool::Store& store;
  const SpoolNodeOptions& opt;
  zmq::socket_t router;
  zmq::socket_t monitor;
  std::map<std::string, std::unique_ptr<Group>, std::less<>> groups;
  std::unordered_map<std::uint64_t, Member> members;
  std::array<TimePoint, kProbeAfter.size()> probes{kNever, kNever, kNever, kNever};
  std::vector<Member*> doomed;
  // Scratch buffers of read(), kept for their capacity.
  zmq::message_t in_routing, in_body, in_spare;
  std::string in_peer;
  cm::Message in;
  std::uint64_t complaints = 0;
  ServeFigures st;
  bool shut = false;
};

ConsumerServer::ConsumerServer(zmq::context_t& context, spool::Store& store,
                               const SpoolNodeOptions& options)
    : impl_(std::make_unique<Impl>(context, store, options)) {}

ConsumerServer::~ConsumerServer() {
  if (Status s = shutdown(); !s) spdlog::error("spool --serve: shutdown: {}", s.to_string());
}

std::string ConsumerServer::attach(const Endpoint& endpoint) {
  return zkit::attach(impl_->router, endpoint);
}

void ConsumerServer::add_poll_items(std::vector<zmq_pollitem_t>& items) {
  items.push_back({impl_->router.handle(), 0, ZMQ_POLLIN, 0});
  items.push_back({impl_->monitor.handle(), 0, ZMQ_POLLIN, 0});
}

void ConsumerServer::step(const zmq_pollitem_t* items) { impl_->step(items); }

std::optional<ConsumerServer::Clock::time_point> ConsumerServer::next_deadline() const {
  return impl_->next_deadline();
}

void ConsumerServer::on_committed() {
  for (auto& [name, g] : impl_->groups) g->idle = false;
}

std::optional<spool::Position> ConsumerServer::retention_floor() const {
  std::optional<spool::Position> f;
  for (const auto& [name, g] : impl_->groups) {
    const spool::Position p = g->state.floor();
    if (!f || p < *f) f = p;
  }
  return f;
}

void ConsumerServer::fill(SpoolNodeStats& s) const {
  s.serve = impl_->st;
  s.serve.members = impl_->members.size();
  for (const auto& [name, g] : impl_->groups) {
    GroupFigures f;
    f.name = name;
    f.members = g->members.size();
    f.state = g->state.stats();
    s.groups.push_back(std::move(f));
  }
}

Status ConsumerServer::reset(std::string_view name, std::string_view start_text) {
  Impl::Group* g = impl_->find_group(name);
  if (!g) return Status::not_found(fmt::format("no group '{}'", name));
  auto start = parse_group_start(start_text);
  if (!start) return start.status();
  auto p = impl_->store.resolve_start(static_cast<spool::StartKind>(start.value().kind),
                                      start.value().a, start.value().b);
  if (!p) return p.status();
  impl_->forget_held(*g);
  if (Status s = g->state.reset(p.value()); !s) return s;
  g->idle = false;
  spdlog::info("spool group {}: reset to {}", name, p.value().to_string());
  return g->state.persist();
}

Status ConsumerServer::remove(std::string_view name) {
  Impl::Group* g = impl_->find_group(name);
  if (!g) return Status::not_found(fmt::format("no group '{}'", name));
  const auto now = Clock::now();
  while (!g->members.empty()) {
    Impl::Member& m = *g->members.back();
    impl_->error(m.routing, m.id, consumer::ErrorCode::kUnknownMember, "group deleted");
    m.held.clear();
    impl_->remove_member(m, now);
  }
  const std::string n(name);
  impl_->groups.erase(impl_->groups.find(name));
  spdlog::info("spool group {}: deleted", n);
  return spool::delete_group(impl_->opt.store.dir, n, impl_->opt.store.env);
}

Result<std::uint64_t> ConsumerServer::replay_dead(std::string_view name) {
  Impl::Group* g = impl_->find_group(name);
  if (!g) return Status::not_found(fmt::format("no group '{}'", name));
  auto r = g->state.replay_dead_letters();
  if (r) {
    g->idle = false;
    spdlog::info("spool group {}: {} dead-lettered batches replayed", name, r.value());
  }
  return r;
}

Status ConsumerServer::shutdown() {
  Impl& i = *impl_;
  if (i.shut) return Status::ok();
  i.shut = true;
  Status first;
  for (auto& [name, g] : i.groups) {
    if (Status s = g->state.persist(); !s && first.is_ok()) first = s;
  }
  (void)zmq_socket_monitor(i.router.handle(), nullptr, 0);
  i.monitor.close();
  i.router.set(zmq::sockopt::linger, 0);
  i.router.close();
  return first;
}

}  // namespace zkit::detail
