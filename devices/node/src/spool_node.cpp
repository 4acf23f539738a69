// The spool node's loop: reliable link in -> Store (group commit) -> acks up; Store reader ->
// reliable link out -> cursor. One thread, one zmq::poll; every disk or peer failure becomes
// backpressure. A batch is validated once, by the link that received it (or here for --pull):
// the store and the downstream link are handed its header and trust it.
#include "zkit/spool_node.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
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

  std::size_t forward() {
    std::size_t n = 0;
    if (read_retry_at && Clock::now() < *read_retry_at) return 0;
    read_retry_at.reset();
    while (true) {
      if (outq.size() >= opt.forward_window || sender.unacked() >= opt.forward_window) break;
      auto r = store.read_next();
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
      Out o{++next_id, rec.next, rec.meta.message_count, false, 0};
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
        ++st.acknowledged_batches;
        st.acknowledged_messages += o.messages;
        const std::uint64_t now = envelope::unix_now_ns();
        if (o.created_ns != 0) st.batch_age.record(now > o.created_ns ? now - o.created_ns : 0);
        return;
      }
    }
  }

  void advance() {
    std::optional<spool::Position> next;
    while (!outq.empty() && outq.front().acked) {
      next = outq.front().next;
      outq.pop_front();
    }
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
    return d;
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
  }

  // ---- control ----------------------------------------------------------------------------------

  void handle_control(bool& stop) {
    // TERMINATE is the node's one command of its own; STATS as every device.
    auto command = control.serve([this] { return snapshot().to_json(); },
                                 [](std::string_view cmd) -> std::optional<ControlSocket::Reply> {
                                   if (cmd == "TERMINATE") return ControlSocket::Reply{};
                                   return std::nullopt;
                                 });
    if (command && *command == "TERMINATE") stop = true;
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
    } else {
      s.store = final_store;
    }
    return s;
  }

  SpoolNodeOptions opt;
  spool::Store store;
  ReliableReceiver receiver;
  ReliableSender sender;
  zmq::socket_t pull;
  ControlSocket control;
  std::uint64_t control_commands_closed = 0;
  envelope::Limits pull_limits;
  std::string listen_ep, forward_ep, pull_ep, control_ep;
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
  if (o.forward.empty()) throw std::invalid_argument("spool node: forward endpoint is empty");
  if (o.upstream_window == 0 || o.forward_window == 0) {
    throw std::invalid_argument("spool node: windows must be at least 1");
  }
  // Parse every endpoint before opening anything, so a typo fails without side effects.
  const Endpoint le = parse_endpoint(o.listen, true);
  const Endpoint fe = parse_endpoint(o.forward, false);
  std::optional<Endpoint> pe;
  if (!o.pull.empty()) pe = parse_endpoint(o.pull, true);
  if (!o.control.empty()) (void)parse_endpoint(o.control, true);

  auto store = spool::Store::open(o.store);
  if (!store) {
    throw std::runtime_error("spool directory " + o.store.dir + ": " + store.status().to_string());
  }
  impl_ = std::make_unique<Impl>(context, std::move(o), std::move(store).value());
  Impl& i = *impl_;
  i.listen_ep = le.bind ? i.receiver.bind(le.address) : (i.receiver.connect(le.address), le.address);
  i.forward_ep = fe.bind ? i.sender.bind(fe.address) : (i.sender.connect(fe.address), fe.address);
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
  w.end_object();
  return std::move(w).str();
}

}  // namespace zkit
