// The spool node's loop: reliable link in -> Store (group commit) -> acks up; Store reader ->
// reliable link out -> cursor. One thread, one zmq::poll; every disk or peer failure becomes
// backpressure. A batch is validated once, by the link that received it (or here for --pull):
// the store and the downstream link are handed its header and trust it.
#include "zkit/spool_node.hpp"

#include "serve.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <deque>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <vector>

#include <spdlog/spdlog.h>

#include "zkit/control.hpp"
#include "zkit/envelope.hpp"
#include "zkit/json.hpp"
#include "zkit/reliable.hpp"

namespace zkit {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::span<const std::byte> bytes_of(const zmq::message_t& m) {
  return {static_cast<const std::byte*>(m.data()), m.size()};
}

// How often max_age is enforced while there is a backlog it could apply to.
constexpr milliseconds kHousekeeping{250};

using TimePoint = Clock::time_point;

void earliest(std::optional<TimePoint>& d, std::optional<TimePoint> t) {
  if (t && (!d || *t < *d)) d = t;
}

// The duplicate-suppression scope of an authenticated peer: FNV-1a of its CURVE key (stable
// across runs and builds, as it is stored with the records), never 0 or spool::kNoDedupe.
std::uint64_t scope_of(std::string_view peer_key) {
  if (peer_key.empty()) return 0;
  std::uint64_t h = 14695981039346656037ull;
  for (char c : peer_key) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h == 0 || h == spool::kNoDedupe ? 1 : h;
}

}  // namespace

struct SpoolNode::Impl {
  // One batch received upstream, in arrival order. The inbox holds an appended prefix (waiting
  // for the commit that covers its ticket) and a parked suffix (not yet stored: the store was full
  // or the disk failed); a parked entry keeps its frame.
  struct Entry {
    std::optional<AckToken> token;  // none for --pull frames
    spool::RecordMeta meta;         // from the header the link (or read_pull) validated
    bool appended = false;
    std::uint64_t ticket = 0;
    zmq::message_t frame;  // parked entries only
  };
  // One batch handed to the downstream link, in send order.
  struct Out {
    std::uint64_t id = 0;
    spool::Position position;  // group mode: what the forward group acks
    spool::Position next;
    std::uint32_t messages = 0;
    bool acked = false;
    std::uint64_t created_ns = 0;  // the batch's, for SpoolNodeStats::batch_age
  };
  enum class Outcome { kDone, kPark };

  Impl(zmq::context_t& context, SpoolNodeOptions o, spool::Store s)
      : opt(std::move(o)),
        store(std::move(s)),
        receiver(context, receiver_options(opt)),
        sender(context, sender_options(opt)),
        started(Clock::now()) {
    pull_limits = receiver_options(opt).limits;
  }

  static ReliableReceiverOptions receiver_options(const SpoolNodeOptions& o) {
    ReliableReceiverOptions r;
    r.socket = o.listen_socket;
    r.window = o.upstream_window;
    r.manual_ack = true;
    r.heartbeat_timeout = o.heartbeat_timeout;
    r.max_sessions = o.max_sessions;
    r.duplicate_window = o.store.duplicate_window;
    // A batch the store could never take is refused by the link (counted as bad, acknowledged)
    // rather than parked forever.
    r.limits.max_batch_bytes = o.store.max_frame_bytes;
    if (o.store.max_bytes > 0) {
      r.limits.max_batch_bytes = std::min<std::size_t>(r.limits.max_batch_bytes,
                                                       o.store.max_bytes / 2);
    }
    return r;
  }

  static ReliableSenderOptions sender_options(const SpoolNodeOptions& o) {
    ReliableSenderOptions s;
    s.socket = o.forward_socket;
    s.window = o.forward_window;
    s.max_queued = o.forward_window;
    s.heartbeat_interval = o.heartbeat_interval;
    s.heartbeat_timeout = o.heartbeat_timeout;
    s.resend_timeout = o.resend_timeout;
    s.limits.max_batch_bytes = o.store.max_frame_bytes;
    return s;
  }

  // ---- upstream ---------------------------------------------------------------------------------

  static spool::RecordMeta meta_of(const envelope::Batch& b, std::uint64_t scope) {
    spool::RecordMeta m;
    m.producer_id = b.header().producer_id;
    m.seq = b.header().seq;
    m.arrival_ns = envelope::unix_now_ns();
    m.message_count = static_cast<std::uint32_t>(b.size());
    m.scope = scope;
    return m;
  }

  // The link decoded and validated the batch: its header goes to the store as it is.
  void on_delivery(Delivery& d) {
    ++st.accepted_batches;
    st.accepted_messages += d.batch.size();
    Entry e;
    e.token = d.token;
    e.meta = meta_of(d.batch, scope_of(d.peer_key));
    if (parked == 0 && !blocked()) {
      if (try_append(e, bytes_of(d.batch.frame())) == Outcome::kDone) {
        inbox.push_back(std::move(e));
        return;
      }
    }
    e.frame = std::move(d.batch).release_frame();
    inbox.push_back(std::move(e));
    ++parked;
  }

  std::size_t read_pull() {
    if (!pull) return 0;
    std::size_t n = 0;
    while (n < opt.pull_burst && parked == 0 && !blocked()) {
      zmq::message_t frame;
      if (!pull.recv(frame, zmq::recv_flags::dontwait)) break;
      ++n;
      // Untrusted and unacknowledged: validated whole here (the reliable link validates its own).
      auto batch = envelope::decode(bytes_of(frame), pull_limits);
      if (!batch) {
        if (st.pull_malformed++ == 0 || st.pull_malformed % 1000 == 0) {
          spdlog::warn("spool: --pull frame dropped ({} so far): {}", st.pull_malformed,
                       batch.status().to_string());
        }
        continue;
      }
      ++st.pull_batches;
      st.pull_messages += batch.value().size();
      Entry e;
      // Unauthenticated and unacknowledged: never suppressed, and never able to make the store
      // discard another peer's batches as duplicates.
      e.meta = meta_of(batch.value(), spool::kNoDedupe);
      if (try_append(e, bytes_of(frame)) == Outcome::kPark) {
        e.frame = std::move(frame);
        ++parked;
      }
      inbox.push_back(std::move(e));
    }
    return n;
  }

  bool blocked() const { return full || disk_failing; }

  Outcome try_append(Entry& e, std::span<const std::byte> frame) {
    auto r = store.append(frame, e.meta);
    if (r) {
      e.appended = true;
      e.ticket = r.value().ticket;
      if (r.value().outcome == spool::AppendResult::Outcome::kDuplicate) ++st.duplicates;
      return Outcome::kDone;
    }
    const Status& s = r.status();
    if (s.code() == Code::kIOError) {
      enter_disk_failure(s);
      return Outcome::kPark;
    }
    if (s.code() == Code::kLimitExceeded && store.full()) {
      if (!full) {
        full = true;
        spdlog::warn("spool: {}; withholding credit upstream until space is freed", s.message());
      }
      return Outcome::kPark;
    }
    // Never storable (malformed header, over a size limit): acknowledged so that the sender does
    // not offer it forever, and counted.
    ++st.rejected;
    spdlog::warn("spool: batch refused, not stored ({} so far): {}", st.rejected, s.to_string());
    e.appended = true;
    e.ticket = 0;
    return Outcome::kDone;
  }

  // Stores parked entries in order until one does not fit.
  void drain_parked() {
    while (parked > 0 && !blocked()) {
      Entry& e = inbox[inbox.size() - parked];
      if (try_append(e, bytes_of(e.frame)) == Outcome::kPark) return;
      e.frame = zmq::message_t();
      --parked;
    }
  }

  // Backoff grows across failed retries and resets only once a retry succeeded.
  void enter_disk_failure(const Status& s) {
    ++st.write_errors;
    disk_failing = true;
    backoff = backoff.count() == 0 ? opt.retry_min : std::min(backoff * 2, opt.retry_max);
    retry_at = Clock::now() + backoff;
    // The store logs the one clear line (what failed, acknowledgements held).
    spdlog::debug("spool: write failed ({}); retrying in {} ms", s.to_string(), backoff.count());
  }

  void retry_disk() {
    if (!disk_failing || Clock::now() < retry_at) return;
    if (Status s = store.commit(); !s) {
      enter_disk_failure(s);
      return;
    }
    disk_failing = false;
    drain_parked();  // a failure here sets disk_failing again
    if (disk_failing) return;
    if (Status s = store.commit(); !s) {
      enter_disk_failure(s);
      return;
    }
    backoff = milliseconds{0};
    spdlog::debug("spool: disk writable again after {} failed writes; accepting", st.write_errors);
  }

  void commit() {
    if (disk_failing) return;
    const auto due = store.next_sync_due();
    if (store.appended_ticket() == store.committed_ticket() && !(due && Clock::now() >= *due)) {
      return;
    }
    if (Status s = store.commit(); !s) enter_disk_failure(s);
  }

  // Acknowledges, in arrival order, every batch the last commit covers.
  std::size_t release_acks() {
    const std::uint64_t committed = store.committed_ticket();
    std::size_t n = 0;
    while (!inbox.empty() && inbox.front().appended && inbox.front().ticket <= committed) {
      if (inbox.front().token) {
        // The batch is stored whatever happens here: a session the link no longer knows resends
        // it, and the store answers the resend as a duplicate.
        try {
          receiver.ack(*inbox.front().token);
          ++st.acknowledged_upstream;
          ++n;
        } catch (const std::exception& ex) {
          loop_error("acknowledging upstream", ex);
        }
      }
      inbox.pop_front();
    }
    return n;
  }

  void update_credit() {
    if (full && !store.full()) {
      full = false;
      spdlog::info("spool: space freed; accepting again");
      drain_parked();
    }
    const bool pause = blocked() || parked > 0;
    if (pause != receiver.credit_paused()) {
      if (pause) {
        receiver.pause_credit();
      } else {
        receiver.resume_credit();
      }
    }
  }

  // ---- downstream -------------------------------------------------------------------------------

  // The next record for the downstream: from the cursor, or (group mode) the forward group.
  Result<std::optional<spool::StoredRecord>> read_forward() {
    if (!forward_group) return store.read_next();
    auto r = forward_group->next(Clock::now());
    if (!r) return r.status();
    if (!r.value()) return std::optional<spool::StoredRecord>();
    return std::optional<spool::StoredRecord>(r.value()->record);
  }

  std::size_t forward() {
    std::size_t n = 0;
    if (opt.forward.empty()) return 0;
    if (read_retry_at && Clock::now() < *read_retry_at) return 0;
    read_retry_at.reset();
    while (true) {
      if (outq.size() >= opt.forward_window || sender.unacked() >= opt.forward_window) break;
      auto r = read_forward();
      if (!r) {
        spdlog::error("spool: reading the log failed ({}); retrying", r.status().to_string());
        read_retry_at = Clock::now() + opt.retry_max;
        break;
      }
      if (!r.value()) {
        caught_up = true;
        break;
      }
      const spool::StoredRecord& rec = *r.value();
      Out o{++next_id, rec.position, rec.next, rec.meta.message_count, false, 0};
      if (auto h = envelope::peek(rec.frame); h.is_ok()) o.created_ns = h->created_ns;
      // Read back from the checksummed log with the header it was stored with: not peeked again.
      Status s = sender.send_batch(zmq::message_t(rec.frame.data(), rec.frame.size()), o.id,
                                   rec.meta.producer_id, rec.meta.seq);
      if (s) {
        ++st.forwarded_batches;
        st.forwarded_messages += o.messages;
      } else {
        ++st.unforwardable;
        spdlog::warn("spool: stored record at {} not forwarded: {}", rec.position.to_string(),
                     s.to_string());
        o.acked = true;
        ack_forward_group(o);
      }
      outq.push_back(o);
      ++n;
    }
    advance();
    return n;
  }

  void on_acked(const AckedBatch& a) {
    for (Out& o : outq) {
      if (o.id == a.id) {
        o.acked = true;
        ack_forward_group(o);
        ++st.acknowledged_batches;
        st.acknowledged_messages += o.messages;
        const std::uint64_t now = envelope::unix_now_ns();
        if (o.created_ns != 0) st.batch_age.record(now > o.created_ns ? now - o.created_ns : 0);
        return;
      }
    }
  }

  void ack_forward_group(const Out& o) {
    if (!forward_group) return;
    if (Status s = forward_group->ack(o.position); !s) {
      spdlog::error("spool: forward group ack of {}: {}", o.position.to_string(), s.to_string());
    }
  }

  void advance() {
    std::optional<spool::Position> next;
    while (!outq.empty() && outq.front().acked) {
      next = outq.front().next;
      outq.pop_front();
    }
    if (group_mode) return;  // the groups' floors move the retention floor instead
    if (next) cursor_pending = next;
    if (!cursor_pending || (cursor_retry_at && Clock::now() < *cursor_retry_at)) return;
    if (Status s = store.advance_cursor(*cursor_pending); !s) {
      spdlog::warn("spool: cursor not persisted ({}); will retry", s.to_string());
      cursor_retry_at = Clock::now() + opt.retry_max;
      return;
    }
    cursor_pending.reset();
    cursor_retry_at.reset();
  }

  // ---- the loop ---------------------------------------------------------------------------------

  // A peer's behaviour (or a bug) must never take the node down: counted, logged (the first, then
  // one in a thousand), and the loop carries on.
  void loop_error(const char* where, const std::exception& e) {
    if (st.loop_errors++ % 1000 == 0) {
      spdlog::error("spool: {}: {} ({} so far); carrying on", where, e.what(), st.loop_errors);
    }
  }

  bool accepting() const { return parked == 0 && !blocked(); }

  // The earliest time something must run without a socket event.
  std::optional<TimePoint> next_deadline() const {
    std::optional<TimePoint> d;
    earliest(d, receiver.next_deadline());
    earliest(d, sender.next_deadline());
    if (disk_failing) {
      earliest(d, retry_at);
    } else {
      earliest(d, store.next_sync_due());
    }
    earliest(d, read_retry_at);
    if (cursor_pending) earliest(d, cursor_retry_at);
    // max_age applies only to records not yet acknowledged downstream.
    if (opt.store.max_age.count() > 0 && !(caught_up && outq.empty())) {
      earliest(d, next_housekeeping);
    }
    if (server) earliest(d, server->next_deadline());
    if (forward_group) {
      if (auto due = forward_group->persist_due()) earliest(d, std::max(*due, group_retry_at));
    }
    return d;
  }

  // ---- groups -----------------------------------------------------------------------------------

  // Group mode: the forward group's state is persisted like every group's, and the store keeps
  // what the slowest group still needs.
  void groups_housekeeping() {
    if (!group_mode) return;
    const auto now = Clock::now();
    if (forward_group && now >= group_retry_at) {
      const auto due = forward_group->persist_due();
      if (due && *due <= now) {
        if (Status s = forward_group->persist_if_due(now); !s) {
          spdlog::warn("spool: forward group not persisted ({}); will retry", s.to_string());
          group_retry_at = now + opt.retry_max;
        }
      }
    }
    std::optional<spool::Position> floor;
    if (server) floor = server->retention_floor();
    if (forward_group && (!floor || forward_group->floor() < *floor)) {
      floor = forward_group->floor();
    }
    if (floor && floor != retention_floor) {
      if (Status s = store.set_retention_floor(*floor); !s) {
        spdlog::warn("spool: freeing acknowledged segments: {}", s.to_string());
        return;
      }
      retention_floor = floor;
    }
  }

  // One round; sets terminate on TERMINATE.
  void round(milliseconds timeout, int wake_fd, zmq_pollitem_t* extra, bool& terminate) {
    std::vector<zmq_pollitem_t>& items = poll_items;
    items.clear();
    items.push_back({nullptr, wake_fd, ZMQ_POLLIN, 0});
    items.push_back(receiver.poll_item());
    items.push_back(sender.poll_item());
    std::size_t pull_at = 0, control_at = 0;
    // --pull is left unread while batches wait for room: ZeroMQ holds the rest (and pushes back).
    if (pull && accepting()) {
      pull_at = items.size();
      items.push_back({pull.handle(), 0, ZMQ_POLLIN, 0});
    }
    if (control) {
      control_at = items.size();
      items.push_back(control.poll_item());
    }
    const std::size_t serve_at = items.size();
    if (server) server->add_poll_items(items);
    const std::size_t extra_at = items.size();
    if (extra) items.push_back(*extra);
    milliseconds wait = timeout;
    if (const auto d = next_deadline()) {
      const auto until = std::chrono::ceil<milliseconds>(*d - Clock::now());
      wait = std::max(milliseconds{0}, wait.count() < 0 ? until : std::min(wait, until));
    }
    try {
      zmq::poll(items.data(), items.size(), wait);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
    }
    if (extra) extra->revents = items[extra_at].revents;
    if (items[0].revents & ZMQ_POLLIN) {
      std::uint64_t n = 0;
      while (::read(wake_fd, &n, sizeof n) < 0 && errno == EINTR) {
      }
    }
    // The links' steps are non-blocking and cheap: run on every wake, they cover both "its item
    // fired" and "its deadline passed".
    try {
      (void)receiver.poll_once([this](Delivery& d) { on_delivery(d); }, milliseconds{0});
    } catch (const zmq::error_t&) {
      throw;
    } catch (const std::exception& e) {
      loop_error("upstream link", e);
    }
    try {
      (void)sender.poll_once(milliseconds{0});
    } catch (const zmq::error_t&) {
      throw;
    } catch (const std::exception& e) {
      loop_error("downstream link", e);
    }
    if (pull_at && (items[pull_at].revents & ZMQ_POLLIN)) (void)read_pull();
    if (control_at && (items[control_at].revents & ZMQ_POLLIN)) handle_control(terminate);
    const auto now = Clock::now();
    if (opt.store.max_age.count() > 0 && now >= next_housekeeping) {
      next_housekeeping = now + kHousekeeping;
      if (Status s = store.enforce_limits(); !s) {
        spdlog::warn("spool: enforcing limits: {}", s.to_string());
      }
    }
    retry_disk();
    if (store.appended_ticket() != appended_seen) {
      appended_seen = store.appended_ticket();
      caught_up = false;  // something new to read
    }
    commit();
    (void)release_acks();
    update_credit();
    advance();
    (void)forward();
    if (server) {
      if (store.committed_ticket() != committed_seen) {
        committed_seen = store.committed_ticket();
        server->on_committed();
      }
      try {
        server->step(&items[serve_at]);
      } catch (const zmq::error_t&) {
        throw;
      } catch (const std::exception& e) {
        loop_error("serving consumers", e);
      }
    }
    groups_housekeeping();
  }

  // ---- control ----------------------------------------------------------------------------------

  void handle_control(bool& stop) {
    // TERMINATE and the GROUP commands are the node's own; STATS as every device.
    auto command = control.serve([this] { return snapshot().to_json(); },
                                 [this](std::string_view cmd) -> std::optional<ControlSocket::Reply> {
                                   if (cmd == "TERMINATE") return ControlSocket::Reply{};
                                   return group_command(cmd);
                                 });
    if (command && *command == "TERMINATE") stop = true;
  }

  static ControlSocket::Reply one_frame(const std::string& text) {
    ControlSocket::Reply r;
    r.emplace_back(text.data(), text.size());
    return r;
  }

  static std::string outcome_json(const Status& s, std::string_view group,
                                  std::optional<std::uint64_t> replayed = std::nullopt) {
    JsonWriter w;
    w.begin_object().field("ok", s.is_ok()).field("group", group);
    if (replayed) w.field("replayed", *replayed);
    if (!s) w.field("error", s.to_string());
    w.end_object();
    return std::move(w).str();
  }

  // GROUPS; GROUP-RESET NAME START; GROUP-DELETE NAME; GROUP-REPLAY-DEAD NAME (docs/queues.md).
  std::optional<ControlSocket::Reply> group_command(std::string_view cmd) {
    std::vector<std::string_view> words;
    for (std::size_t i = 0; i < cmd.size();) {
      const std::size_t j = std::min(cmd.find(' ', i), cmd.size());
      if (j > i) words.push_back(cmd.substr(i, j - i));
      i = j + 1;
    }
    if (words.empty()) return std::nullopt;
    if (words[0] == "GROUPS" && words.size() == 1) return one_frame(snapshot().groups_json());
    const bool reset = words[0] == "GROUP-RESET", del = words[0] == "GROUP-DELETE",
               replay = words[0] == "GROUP-REPLAY-DEAD";
    if (!reset && !del && !replay) return std::nullopt;
    if (words.size() != (reset ? 3u : 2u)) {
      return one_frame(outcome_json(
          Status::invalid_argument(reset ? "usage: GROUP-RESET NAME START"
                                         : std::string(words[0]) + " NAME"),
          words.size() > 1 ? words[1] : ""));
    }
    const std::string_view name = words[1];
    if (name == kForwardGroup) {
      return one_frame(outcome_json(
          Status::invalid_argument("the forward group follows the --forward link; not managed"),
          name));
    }
    if (!server) {
      return one_frame(outcome_json(Status::not_found("this spool does not --serve"), name));
    }
    if (reset) return one_frame(outcome_json(server->reset(name, words[2]), name));
    if (del) return one_frame(outcome_json(server->remove(name), name));
    auto r = server->replay_dead(name);
    return one_frame(r ? outcome_json(Status::ok(), name, r.value()) : outcome_json(r.status(), name));
  }

  std::string state() const {
    if (shut) return "stopped";
    if (disk_failing) return "blocked: write error";
    if (full) return "blocked: full";
    return "running";
  }

  SpoolNodeStats snapshot() {
    SpoolNodeStats s = st;
    s.state = state();
    s.uptime_ms = static_cast<std::uint64_t>(
        std::chrono::duration_cast<milliseconds>(Clock::now() - started).count());
    s.parked = parked;
    s.disk_failing = disk_failing;
    s.in_flight = outq.size();
    s.control_commands = control.commands() + control_commands_closed;
    if (!shut) {
      s.store = store.stats();
      const ReliableReceiverStats r = receiver.stats();
      s.bad_batches = r.bad_batches;
      s.link_decode_errors = r.decode_errors;
      s.upstream_peers = r.peers;
      s.credit_paused = r.credit_paused != 0;
      s.downstream_connected = sender.connected();
      final_store = s.store;
      if (forward_group) {
        GroupFigures f;
        f.name = std::string(kForwardGroup);
        f.members = s.downstream_connected ? 1 : 0;
        f.state = forward_group->stats();
        s.groups.push_back(std::move(f));
      }
      if (server) server->fill(s);
      final_groups = s.groups;
      final_serve = s.serve;
    } else {
      s.store = final_store;
      s.groups = final_groups;
      s.serve = final_serve;
    }
    return s;
  }

  SpoolNodeOptions opt;
  spool::Store store;
  // Declared after the store: groups are closed before it.
  bool group_mode = false;  // --serve, or groups on disk: retention by the groups' floors
  std::optional<spool::Group> forward_group;
  std::unique_ptr<detail::ConsumerServer> server;
  std::optional<spool::Position> retention_floor;
  TimePoint group_retry_at{};
  std::uint64_t committed_seen = 0;
  std::vector<GroupFigures> final_groups;
  ServeFigures final_serve;
  ReliableReceiver receiver;
  ReliableSender sender;
  zmq::socket_t pull;
  ControlSocket control;
  std::uint64_t control_commands_closed = 0;
  envelope::Limits pull_limits;
  std::string listen_ep, forward_ep, pull_ep, control_ep, serve_ep;
  Clock::time_point started;

  std::deque<Entry> inbox;
  std::size_t parked = 0;
  std::deque<Out> outq;
  std::uint64_t next_id = 0;
  bool full = false;
  bool disk_failing = false;
  milliseconds backoff{0};
  TimePoint retry_at{};
  std::optional<TimePoint> read_retry_at;    // a failed read is retried then
  std::optional<spool::Position> cursor_pending;  // acknowledged downstream, cursor not moved yet
  std::optional<TimePoint> cursor_retry_at;  // after a failed cursor write
  TimePoint next_housekeeping{};
  bool caught_up = false;  // the reader found nothing more to read since the last append
  std::uint64_t appended_seen = 0;
  std::vector<zmq_pollitem_t> poll_items;
  bool shut = false;
  Status shut_status;
  spool::Stats final_store;
  struct Counters : SpoolNodeStats {
    std::uint64_t rejected = 0;
  } st;
};

SpoolNode::SpoolNode(zmq::context_t& context, SpoolNodeOptions o) {
  if (o.listen.empty()) throw std::invalid_argument("spool node: listen endpoint is empty");
  if (o.forward.empty() && o.serve.empty()) {
    throw std::invalid_argument("spool node: neither a forward nor a serve endpoint");
  }
  if (!o.serve.empty() && (o.max_groups == 0 || o.max_members == 0 || o.max_prefetch == 0 ||
                           o.max_pending == 0 || o.ack_wait.count() <= 0 ||
                           o.consumer_heartbeat.count() < 3)) {
    throw std::invalid_argument(
        "spool node: max_groups, max_members, max_prefetch, max_pending and ack_wait must be "
        "positive, consumer_heartbeat at least 3 ms");
  }
  if (o.upstream_window == 0 || o.forward_window == 0) {
    throw std::invalid_argument("spool node: windows must be at least 1");
  }
  // Parse every endpoint before opening anything, so a typo fails without side effects.
  const Endpoint le = parse_endpoint(o.listen, true);
  const std::optional<Endpoint> fe =
      o.forward.empty() ? std::nullopt : std::optional(parse_endpoint(o.forward, false));
  std::optional<Endpoint> se;
  if (!o.serve.empty()) se = parse_endpoint(o.serve, true);
  std::optional<Endpoint> pe;
  if (!o.pull.empty()) pe = parse_endpoint(o.pull, true);
  if (!o.control.empty()) (void)parse_endpoint(o.control, true);

  auto store = spool::Store::open(o.store);
  if (!store) {
    throw std::runtime_error("spool directory " + o.store.dir + ": " + store.status().to_string());
  }
  // Groups on disk (a node that served before) keep retention by floors even without --serve.
  auto on_disk = spool::list_groups(o.store.dir, o.store.env);
  if (!on_disk) {
    throw std::runtime_error("spool directory " + o.store.dir + ": " + on_disk.status().to_string());
  }
  const bool group_mode = !o.serve.empty() || !on_disk.value().empty();
  impl_ = std::make_unique<Impl>(context, std::move(o), std::move(store).value());
  Impl& i = *impl_;
  i.group_mode = group_mode;
  if (group_mode && fe) {
    spool::GroupOptions go;
    go.max_deliver = 0;  // the link resends by itself; nothing is ever put back
    go.max_pending = std::max<std::size_t>(i.opt.max_pending, i.opt.forward_window);
    // A new forward group starts where today's cursor is: switching an old spool directory to
    // group mode forwards nothing twice.
    auto g = spool::Group::open(i.store, std::string(kForwardGroup), go, i.store.cursor());
    if (!g) {
      throw std::runtime_error("spool directory " + i.opt.store.dir + ": forward group: " +
                               g.status().to_string());
    }
    i.forward_group.emplace(std::move(g).value());
  }
  if (group_mode) i.server = std::make_unique<detail::ConsumerServer>(context, i.store, i.opt);
  i.listen_ep = le.bind ? i.receiver.bind(le.address) : (i.receiver.connect(le.address), le.address);
  if (fe) {
    i.forward_ep =
        fe->bind ? i.sender.bind(fe->address) : (i.sender.connect(fe->address), fe->address);
  }
  if (se) i.serve_ep = i.server->attach(*se);
  if (pe) {
    i.pull = zmq::socket_t(context, zmq::socket_type::pull);
    apply(i.pull, i.opt.pull_socket, i.pull_limits);
    i.pull_ep = attach(i.pull, *pe);
  }
  if (!i.opt.control.empty()) {
    i.control = ControlSocket(context, i.opt.control, i.opt.control_socket);
    i.control_ep = i.control.endpoint();
  }
  i.sender.on_acked([&i](const AckedBatch& a) { i.on_acked(a); });
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "spool node: eventfd");
  const spool::Stats s = i.store.stats();
  spdlog::info("spool: {} opened: {} segments, backlog {} batches ({} messages, {} B){}",
               i.opt.store.dir, s.segments, s.backlog_batches, s.backlog_messages,
               s.backlog_bytes,
               s.corrupt_skipped ? fmt::format(", {} corrupt records skipped", s.corrupt_skipped)
                                 : std::string());
}

SpoolNode::~SpoolNode() {
  if (impl_) {
    try {
      if (Status s = shutdown(); !s) spdlog::error("spool: shutdown: {}", s.to_string());
    } catch (const std::exception& e) {
      spdlog::error("spool: shutdown: {}", e.what());
    }
  }
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

bool SpoolNode::poll_once(milliseconds timeout, zmq_pollitem_t* extra) {
  Impl& i = *impl_;
  if (extra) extra->revents = 0;
  if (i.shut || stopping()) return false;
  bool terminate = false;
  try {
    i.round(timeout, wake_fd_, extra, terminate);
  } catch (const zmq::error_t& e) {
    if (e.num() == ETERM) {
      stop();  // the context is being closed: nothing more can be sent or received
    } else {
      i.loop_error("ZeroMQ", e);
    }
  } catch (const std::exception& e) {
    i.loop_error("loop", e);
  }
  if (terminate) stop();
  return !stopping();
}

void SpoolNode::run() {
  while (poll_once(milliseconds{-1})) {
  }
  if (Status s = shutdown(); !s) spdlog::error("spool: shutdown: {}", s.to_string());
}

void SpoolNode::stop() noexcept {
  stop_.store(true, std::memory_order_release);
  const std::uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!::write(wake_fd_, &one, sizeof one);
}

Status SpoolNode::shutdown() {
  Impl& i = *impl_;
  if (i.shut) return i.shut_status;
  stop();
  Status first;
  auto note = [&first](Status s) {
    if (!s && first.is_ok()) first = std::move(s);
  };
  // Upstream: what is stored gets its acknowledgement; parked batches were never acknowledged
  // and will be resent by their senders to the next run.
  i.receiver.pause_credit();
  if (!i.disk_failing) note(i.store.commit());
  if (i.store.appended_ticket() == i.store.committed_ticket()) (void)i.release_acks();
  i.receiver.close();
  if (i.pull) i.pull.close();
  // Downstream: give what is in flight up to linger to be acknowledged; the rest stays in the
  // backlog and is sent again by the next run.
  const auto deadline = Clock::now() + i.opt.linger;
  while (!i.outq.empty() && Clock::now() < deadline) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    (void)i.sender.poll_once(std::max(milliseconds{1}, std::min(left, milliseconds{50})));
    i.advance();
  }
  i.final_store = i.store.stats();
  i.sender.close();
  (void)i.snapshot();  // the groups' last figures, kept for stats() after shutdown
  if (i.server) note(i.server->shutdown());
  if (i.forward_group) note(i.forward_group->persist());
  i.server.reset();
  i.forward_group.reset();
  note(i.store.close());
  i.control_commands_closed += i.control.commands();
  i.control = ControlSocket();
  i.shut = true;
  i.shut_status = first;
  return first;
}

SpoolNodeStats SpoolNode::stats() { return impl_->snapshot(); }
const std::string& SpoolNode::listen_endpoint() const noexcept { return impl_->listen_ep; }
const std::string& SpoolNode::forward_endpoint() const noexcept { return impl_->forward_ep; }
const std::string& SpoolNode::pull_endpoint() const noexcept { return impl_->pull_ep; }
const std::string& SpoolNode::control_endpoint() const noexcept { return impl_->control_ep; }
const std::string& SpoolNode::serve_endpoint() const noexcept { return impl_->serve_ep; }

namespace {

void groups_array(JsonWriter& w, const std::vector<GroupFigures>& groups) {
  w.begin_array();
  for (const GroupFigures& g : groups) {
    w.begin_object().field("name", g.name).field("members", g.members);
    w.key("state").raw(g.state.to_json());
    w.end_object();
  }
  w.end_array();
}

}  // namespace

std::string SpoolNodeStats::groups_json() const {
  JsonWriter w;
  w.begin_object().key("groups");
  groups_array(w, groups);
  w.end_object();
  return std::move(w).str();
}

Result<GroupStart> parse_group_start(std::string_view text) {
  auto number = [](std::string_view t, std::uint64_t& out) {
    const auto r = std::from_chars(t.data(), t.data() + t.size(), out);
    return r.ec == std::errc() && r.ptr == t.data() + t.size() && !t.empty();
  };
  GroupStart g;
  if (text == "earliest") return g;
  if (text == "latest") {
    g.kind = spool::StartKind::kLatest;
    return g;
  }
  if (text.starts_with("pos=")) {
    const std::string_view rest = text.substr(4);
    const std::size_t colon = rest.find(':');
    if (colon != std::string_view::npos && number(rest.substr(0, colon), g.a) &&
        number(rest.substr(colon + 1), g.b)) {
      g.kind = spool::StartKind::kPosition;
      return g;
    }
  }
  if (text.starts_with("time=") && number(text.substr(5), g.a)) {
    g.kind = spool::StartKind::kTime;
    return g;
  }
  return Status::invalid_argument(
      fmt::format("start '{}' is not earliest, latest, pos=SEGMENT:OFFSET or time=UNIX_NS", text));
}

std::string SpoolNodeStats::to_json() const {
  const spool::Stats& d = store;
  JsonWriter w;
  auto pair = [&w](std::string_view name, std::uint64_t batches, std::uint64_t messages) {
    w.key(name).begin_object().field("batches", batches).field("messages", messages).end_object();
  };
  w.begin_object();
  w.field("device", "spool").field("state", state);
  w.field("uptime_s", static_cast<double>(uptime_ms) / 1000.0);
  pair("accepted", accepted_batches, accepted_messages);
  w.key("pull").begin_object();
  w.field("batches", pull_batches).field("messages", pull_messages);
  w.field("malformed", pull_malformed).end_object();
  pair("stored", d.stored, d.stored_messages);
  w.field("duplicates", duplicates).field("acknowledged_upstream", acknowledged_upstream);
  pair("forwarded", forwarded_batches, forwarded_messages);
  pair("acknowledged", acknowledged_batches, acknowledged_messages);
  w.key("backlog").begin_object();
  w.field("batches", d.backlog_batches).field("messages", d.backlog_messages);
  w.field("bytes", d.backlog_bytes).field("oldest_age_ms", d.oldest_age_ms).end_object();
  w.key("fsync").begin_object();
  w.field("count", d.fsyncs);
  w.field("avg_us", d.fsyncs ? d.fsync_ns_total / d.fsyncs / 1000 : std::uint64_t{0});
  w.field("max_us", d.fsync_ns_max / 1000);
  w.field("p99_us", d.fsync_latency.percentile(99) / 1000).end_object();
  w.key("batch_age_ms").begin_object();
  w.field("count", batch_age.count()).field("p50", batch_age.percentile(50) / 1'000'000);
  w.field("p99", batch_age.percentile(99) / 1'000'000).field("max", batch_age.max() / 1'000'000);
  w.end_object();
  w.key("disk").begin_object();
  w.field("bytes", d.disk_bytes).field("free_bytes", d.disk_free_bytes);
  w.field("segments", d.segments).field("full", d.full);
  w.field("write_errors", write_errors).field("failing", disk_failing);
  w.field("io_errors", d.io_errors).end_object();
  w.field("corrupt_skipped", d.corrupt_skipped);
  pair("dropped", d.dropped_batches, d.dropped_messages);
  w.field("rejected_full", d.rejected_full);
  w.field("bad_batches", bad_batches).field("link_decode_errors", link_decode_errors);
  w.field("unforwardable", unforwardable);
  w.key("upstream").begin_object();
  w.field("peers", upstream_peers).field("credit_paused", credit_paused);
  w.field("parked", parked).end_object();
  w.key("downstream").begin_object();
  w.field("connected", downstream_connected).field("in_flight", in_flight).end_object();
  w.field("control_commands", control_commands).field("loop_errors", loop_errors);
  const ServeFigures& v = serve;
  w.key("serve").begin_object();
  w.field("members", v.members).field("joins", v.joins).field("refused_joins", v.refused_joins);
  w.field("replaced", v.replaced).field("leaves", v.leaves).field("timed_out", v.timed_out);
  w.field("disconnected", v.disconnected).field("dropped", v.dropped);
  w.field("deliveries", v.deliveries).field("bundles", v.bundles);
  w.field("ack_wait_expired", v.ack_wait_expired);
  w.field("nacks", v.nacks).field("malformed", v.malformed);
  w.field("unknown_member", v.unknown_member).field("unknown_tag", v.unknown_tag);
  w.field("errors_sent", v.errors_sent).field("replies_dropped", v.replies_dropped);
  w.end_object();
  w.key("groups");
  groups_array(w, groups);
  w.end_object();
  return std::move(w).str();
}

}  // namespace zkit
