// The spool node's loop: reliable link in -> Store (group commit) -> acks up; Store reader ->
// reliable link out -> cursor. One thread; every disk or peer failure becomes backpressure.
#include "zkit/spool_node.hpp"

#include <algorithm>
#include <deque>
#include <optional>
#include <stdexcept>

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

// How often limits are enforced and the store's full state is looked at without traffic.
constexpr milliseconds kHousekeeping{250};
// Longest single wait of a round: the control socket and the links are looked at this often.
constexpr milliseconds kIdleWait{10};
// Wait while batches are in flight downstream and nothing else happens (acks arrive on the
// sender's socket, which this loop cannot poll together with the receiver's; see poll_once).
constexpr milliseconds kInFlightWait{1};

}  // namespace

struct SpoolNode::Impl {
  // One batch received upstream, in arrival order. The inbox holds an appended prefix (waiting
  // for the commit that covers its ticket) and a parked suffix (not yet stored: the store was full
  // or the disk failed); a parked entry keeps its frame.
  struct Entry {
    std::optional<AckToken> token;  // none for --pull frames
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

  void on_delivery(Delivery& d) {
    ++st.accepted_batches;
    st.accepted_messages += d.batch.size();
    Entry e;
    e.token = d.token;
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
    auto r = store.append(frame);
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
        receiver.ack(*inbox.front().token);
        ++st.acknowledged_upstream;
        ++n;
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
    if (Clock::now() < read_retry_at) return 0;
    while (true) {
      if (outq.size() >= opt.forward_window || sender.unacked() >= opt.forward_window) break;
      auto r = store.read_next();
      if (!r) {
        spdlog::error("spool: reading the log failed ({}); retrying", r.status().to_string());
        read_retry_at = Clock::now() + opt.retry_max;
        break;
      }
      if (!r.value()) break;
      const spool::StoredRecord& rec = *r.value();
      Out o{++next_id, rec.next, rec.meta.message_count, false};
      Status s = sender.send_batch(zmq::message_t(rec.frame.data(), rec.frame.size()), o.id);
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
    if (!next) return;
    if (Status s = store.advance_cursor(*next); !s) {
      spdlog::warn("spool: cursor not persisted ({}); will retry", s.to_string());
    }
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
  Clock::time_point retry_at{};
  Clock::time_point read_retry_at{};
  Clock::time_point next_housekeeping{};
  bool busy = false;
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
    apply(i.pull, i.opt.pull_socket);
    i.pull_ep = attach(i.pull, *pe);
  }
  if (!i.opt.control.empty()) {
    i.control = ControlSocket(context, i.opt.control, i.opt.control_socket);
    i.control_ep = i.control.endpoint();
  }
  i.sender.on_acked([&i](const AckedBatch& a) { i.on_acked(a); });
  const spool::Stats s = i.store.stats();
  spdlog::info("spool: {} opened: {} segments, backlog {} batches ({} messages, {} B){}",
               i.opt.store.dir, s.segments, s.backlog_batches, s.backlog_messages,
               s.backlog_bytes,
               s.corrupt_skipped ? fmt::format(", {} corrupt records skipped", s.corrupt_skipped)
                                 : std::string());
}

SpoolNode::~SpoolNode() {
  if (!impl_) return;
  if (Status s = shutdown(); !s) spdlog::error("spool: shutdown: {}", s.to_string());
}

bool SpoolNode::poll_once(milliseconds timeout) {
  Impl& i = *impl_;
  if (i.shut) return false;
  // The receiver and the sender each poll their own socket; the loop waits on the receiver
  // (upstream traffic wakes it at once) and looks at the sender without waiting, so the wait is
  // short while batches are in flight downstream and zero while there is work.
  milliseconds wait = i.busy ? milliseconds{0} : std::min(timeout, i.outq.empty() ? kIdleWait
                                                                                  : kInFlightWait);
  if (wait.count() < 0) wait = i.outq.empty() ? kIdleWait : kInFlightWait;
  const std::size_t delivered =
      i.receiver.poll_once([&i](Delivery& d) { i.on_delivery(d); }, wait);
  const std::size_t acked = i.sender.poll_once(milliseconds{0});
  const std::size_t pulled = i.read_pull();
  bool terminate = false;
  if (i.control) i.handle_control(terminate);
  const auto now = Clock::now();
  if (now >= i.next_housekeeping) {
    i.next_housekeeping = now + kHousekeeping;
    if (Status s = i.store.enforce_limits(); !s) {
      spdlog::warn("spool: enforcing limits: {}", s.to_string());
    }
  }
  i.retry_disk();
  i.commit();
  const std::size_t acks_up = i.release_acks();
  i.update_credit();
  i.advance();
  const std::size_t forwarded = i.forward();
  i.busy = delivered + acked + pulled + acks_up + forwarded > 0;
  if (terminate) stop();
  return !stopping();
}

void SpoolNode::run() {
  while (poll_once(milliseconds{100})) {
  }
  if (Status s = shutdown(); !s) spdlog::error("spool: shutdown: {}", s.to_string());
}

void SpoolNode::stop() noexcept { stop_.store(true, std::memory_order_release); }

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
  w.field("max_us", d.fsync_ns_max / 1000).end_object();
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
  w.field("control_commands", control_commands);
  w.end_object();
  return std::move(w).str();
}

}  // namespace zkit
