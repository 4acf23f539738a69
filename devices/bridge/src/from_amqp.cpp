// Out of RabbitMQ: deliveries are packed into batches (message mode) or forwarded as the batches
// they are (batch mode), sent over the reliable link, and acknowledged to RabbitMQ (multiple)
// only once the downstream acknowledged the batch that holds them.
//
// Redeliveries: after a lost connection (or, with a journal, a crash) RabbitMQ delivers again
// what it had not seen acknowledged, flagged redelivered, with new delivery tags. Such a message
// is matched by the fingerprint of its body (a 64-bit FNV-1a; a multiset, so identical bodies
// match one for one) against the messages this bridge already holds:
//   - in a batch still in flight downstream (or, after a crash, in a journaled batch, which is
//     sent again with its original producer id and seq, so the downstream drops it if it had it):
//     the new tag is adopted by that batch and the message is not forwarded again;
//   - in a batch the downstream acknowledged whose RabbitMQ ack was not yet confirmed by a
//     round trip: it is acknowledged at once.
// Matching ends once everything held was matched, or redelivery_window after the connection came
// up; whatever was not matched by then had reached RabbitMQ's acks. docs/bridge.md has the
// argument.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <unordered_map>

#include "link.hpp"
#include "zkit/control.hpp"
#include "zkit/reliable.hpp"

namespace zkit {
namespace {

using namespace bridge_detail;
namespace fs = std::filesystem;

std::uint64_t fingerprint(std::span<const std::byte> b) {
  std::uint64_t h = 1469598103934665603ULL;
  for (std::byte c : b) {
    h ^= static_cast<std::uint64_t>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

std::span<const std::byte> span_of(const zmq::message_t& m) {
  return {static_cast<const std::byte*>(m.data()), m.size()};
}

// Writes `data` to `path` and fsyncs it. Returns an empty string or what failed.
std::string write_synced(const fs::path& path, std::span<const std::byte> data) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fmt::format("open {}: {}", path.string(), std::strerror(errno));
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string e = fmt::format("write {}: {}", path.string(), std::strerror(errno));
      ::close(fd);
      return e;
    }
    done += static_cast<std::size_t>(n);
  }
  const int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? std::string() : fmt::format("fsync {}: {}", path.string(), std::strerror(errno));
}

class FromAmqp final : public Bridge {
 public:
  FromAmqp(zmq::context_t& context, FromAmqpOptions o)
      : o_(std::move(o)), link_(o_.amqp, stats_), sender_(context, sender_options()),
        batcher_(batcher_options()) {
    if (o_.queue.empty()) throw std::invalid_argument("from-amqp: a queue is needed");
    if (!o_.queue_type.empty() && o_.queue_type != "quorum" && o_.queue_type != "classic") {
      throw std::invalid_argument("from-amqp: queue type must be quorum or classic");
    }
    if (o_.prefetch == 0) throw std::invalid_argument("from-amqp: prefetch must be at least 1");
    const Endpoint te = parse_endpoint(o_.to, false);
    endpoint_ = te.bind ? sender_.bind(te.address) : sender_.connect(te.address);
    if (!o_.control.empty()) {
      control_ = ControlSocket(context, o_.control, o_.control_socket);
      control_endpoint_ = control_.endpoint();
    }
    sender_.on_acked([this](const AckedBatch& a) { acked_downstream(a); });
    sender_.on_error([](const Status& s) { spdlog::warn("bridge: downstream: {}", s.to_string()); });
    stats_.direction = "from-amqp";
    if (!o_.journal_dir.empty() && o_.mode == BridgeMode::kMessage) load_journal();
  }

  bool poll_once(std::chrono::milliseconds timeout, zmq_pollitem_t* extra) override {
    std::vector<zmq_pollitem_t> items;
    items.push_back(sender_.poll_item());
    amqp::Connection* c = link_.get();
    if (c) items.push_back({nullptr, c->fd(), ZMQ_POLLIN, 0});
    if (control_) items.push_back(control_.poll_item());
    if (extra) items.push_back(*extra);
    std::optional<Clock::time_point> d;
    earliest(d, sender_.next_deadline());
    earliest(d, batcher_.deadline());
    earliest(d, link_.deadline());
    if (c) earliest(d, Clock::now() + heartbeat_tick());
    if (c && sync_due_) earliest(d, *sync_due_);
    if (c && matching_) earliest(d, matching_until_);
    if (c && c->buffered()) d = Clock::now();
    if (!unsent_.empty() || journal_retry_) earliest(d, Clock::now() + std::chrono::milliseconds(50));
    zmq::poll(items.data(), items.size(), wait_for(timeout, d));
    if (extra) extra->revents = items.back().revents;

    sender_.poll_once(std::chrono::milliseconds(0));
    if (link_.due(Clock::now())) {
      if (link_.connect([this](amqp::Connection& conn) { setup(conn); })) new_connection();
    }
    if (link_.get()) {
      try {
        read_deliveries();
      } catch (const amqp::AmqpError& e) {
        lost(e);
      }
    }
    if (matching_ && Clock::now() >= matching_until_) {
      end_matching();
      drop_finished();
    }
    if (batcher_.poll()) take_sealed();
    send_ready();
    sender_.poll_once(std::chrono::milliseconds(0));
    if (link_.get()) {
      try {
        ack_amqp();
      } catch (const amqp::AmqpError& e) {
        lost(e);
      }
    }
    return !control_ || serve_control(control_, stats_, [this] { return stats().to_json(); });
  }

  void shutdown(std::chrono::milliseconds linger) override {
    if (stopped_) return;
    stopped_ = true;
    batcher_.flush();
    take_sealed();
    const auto until = Clock::now() + linger;
    while (Clock::now() < until && (!outs_.empty() || !open_.empty())) {
      send_ready();
      sender_.poll_once(std::chrono::milliseconds(10));
      if (!link_.get()) continue;
      try {
        // Deliveries are no longer read: those not taken are redelivered to the next consumer.
        ack_amqp();
        if (acked_sent_ > sure_floor_) sync_now();
        drop_finished();
      } catch (const amqp::AmqpError& e) {
        spdlog::warn("bridge: at shutdown: {}", e.what());
        break;
      }
      if (std::all_of(outs_.begin(), outs_.end(), [](const Out& x) { return x.acked_down; }) &&
          ack_upto_ == acked_sent_ && acked_sent_ == sure_floor_) {
        break;
      }
    }
    if (!outs_.empty()) {
      spdlog::info("bridge: {} batches not finished at stop; RabbitMQ redelivers their messages",
                   outs_.size());
    }
    sender_.close();
    link_.close();
  }

  BridgeStats stats() const override {
    BridgeStats s = stats_;
    s.state = stopped_ ? "stopped" : (const_cast<AmqpLink&>(link_).get() ? "connected" : "connecting");
    s.uptime_ms = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_).count());
    s.unacked = tags_.size();
    s.downstream_connected = sender_.connected();
    return s;
  }
  const std::string& endpoint() const noexcept override { return endpoint_; }
  const std::string& control_endpoint() const noexcept override { return control_endpoint_; }

 private:
  struct Rec {
    std::uint64_t fp = 0;
    std::uint64_t tag = 0;  // delivery tag on the current connection; 0: none (yet)
  };
  struct Out {  // one batch sent (or to be sent) downstream
    std::uint64_t id = 0;
    std::uint64_t producer_id = 0, seq = 0;
    std::vector<Rec> recs;
    bool acked_down = false;
    std::string journal;  // its journal file (shared by the batches of one round), or empty
  };

  ReliableSenderOptions sender_options() const {
    ReliableSenderOptions s;
    s.socket = o_.to_socket;
    s.limits = o_.limits;
    s.window = o_.window;
    s.max_queued = std::max<std::size_t>(2 * o_.window, 1);
    return s;
  }
  BatcherOptions batcher_options() const {
    BatcherOptions b = o_.batch;
    if (b.producer_id == 0) b.producer_id = random_producer_id();
    return b;
  }
  std::chrono::milliseconds heartbeat_tick() const {
    const auto hb = std::chrono::duration_cast<std::chrono::milliseconds>(o_.amqp.heartbeat);
    return hb.count() > 0 ? hb / 2 : std::chrono::milliseconds(1000);
  }

  void setup(amqp::Connection& c) {
    if (!o_.queue_type.empty()) {
      c.declare_queue(o_.queue, o_.queue_type);
    } else {
      c.check_queue(o_.queue);
    }
    c.qos(o_.prefetch);
    c.consume(o_.queue);
  }

  // Delivery tags start at 1 on a new channel: every message held loses its tag and waits to be
  // matched by its redelivery (see the file comment).
  void new_connection() {
    tags_.clear();
    ack_floor_ = ack_upto_ = ack_count_ = sure_floor_ = acked_sent_ = 0;
    sync_due_.reset();
    waiting_.clear();
    done_.clear();
    // The last messages finished in this process count as acknowledged-but-unsure: a
    // redelivery of one of them is acked at once. Only redeliveries are matched, and every
    // message redelivered to this process was delivered to it before, so a match never drops
    // a message the downstream lacks (identical bodies are interchangeable).
    for (std::uint64_t fp : recent_) ++done_[fp];
    for (Out& out : outs_) {
      for (Rec& r : out.recs) {
        r.tag = 0;
        if (out.acked_down) {
          ++done_[r.fp];
        } else {
          waiting_[r.fp].push_back(&r);
        }
      }
    }
    for (Rec& r : open_) {
      r.tag = 0;
      waiting_[r.fp].push_back(&r);
    }
    matching_ = !waiting_.empty() || !done_.empty();
    matching_until_ = Clock::now() + o_.redelivery_window;
    spdlog::debug("bridge: connected; matching redeliveries against {} waiting and {} finished "
                  "fingerprints", waiting_.size(), done_.size());
  }

  void lost(const amqp::AmqpError& e) {
    link_.lost(e);  // throws BridgeError when fatal
  }

  void read_deliveries() {
    amqp::Connection* c = link_.get();
    for (int i = 0; c && i < 4096; ++i) {
      amqp::Event ev = c->next(std::chrono::milliseconds(0));
      if (std::holds_alternative<std::monostate>(ev)) break;
      if (auto* d = std::get_if<amqp::Delivery>(&ev)) take(*d);
    }
  }

  void take(amqp::Delivery& d) {
    ++stats_.deliveries;
    if (d.tag != ack_floor_ + tags_.size() + 1) {
      spdlog::warn("bridge: delivery tag {} where {} was expected", d.tag,
                   ack_floor_ + tags_.size() + 1);
    }
    while (ack_floor_ + tags_.size() < d.tag) tags_.push_back(0);
    if (d.redelivered) ++stats_.redelivered;
    const std::uint64_t fp = fingerprint(span_of(d.body));
    if (spdlog::should_log(spdlog::level::trace)) trace(d, fp);
    if (d.redelivered && matching_ && match(fp, d.tag)) {
      spdlog::trace("bridge: delivery {} suppressed", d.tag);
      ++stats_.suppressed;
      if (waiting_.empty() && done_.empty()) end_matching();  // everything held was matched
      return;
    }
    if (o_.mode == BridgeMode::kBatch) {
      take_batch(d, fp);
    } else {
      take_message(d, fp);
    }
  }

  // --log-level trace: one line per delivery (tests count RabbitMQ's copies by it).
  void trace(const amqp::Delivery& d, std::uint64_t fp) const {
    const auto* b = static_cast<const char*>(d.body.data());
    std::string head(b, std::min<std::size_t>(d.body.size(), 24));
    for (char& ch : head) {
      if (ch < 0x21 || ch > 0x7e) ch = '.';
    }
    spdlog::trace(
        "bridge: delivery {} redelivered {} matching {} fp {:016x} id {} copy {:x} body {}", d.tag,
        d.redelivered ? 1 : 0, matching_ ? 1 : 0, fp, d.message_id.empty() ? "-" : d.message_id,
        d.copy, head);
  }

  bool match(std::uint64_t fp, std::uint64_t tag) {
    if (auto it = done_.find(fp); it != done_.end()) {
      if (--it->second == 0) done_.erase(it);
      settle(tag);
      return true;
    }
    if (auto it = waiting_.find(fp); it != waiting_.end()) {
      it->second.front()->tag = tag;
      it->second.pop_front();
      if (it->second.empty()) waiting_.erase(it);
      return true;
    }
    return false;
  }

  // Matching ends when everything held was matched, or redelivery_window after the connection
  // came up: RabbitMQ requeues a dead consumer's messages at once, at the head of the queue, so
  // what was not redelivered by then had reached RabbitMQ's acks.
  void end_matching() {
    spdlog::debug("bridge: matching ends ({} waiting and {} finished fingerprints unmatched)",
                  waiting_.size(), done_.size());
    matching_ = false;
    waiting_.clear();
    done_.clear();
  }

  void bad(const amqp::Delivery& d, bool too_large, const std::string& why) {
    const std::string what = fmt::format("message with delivery tag {} ({} bytes) {}", d.tag,
                                         d.body.size(), why);
    if (o_.on_bad == BadMessagePolicy::kStop) {
      throw BridgeError(what + "; it stays in queue '" + o_.queue + "' (--on-bad-message stop)");
    }
    (too_large ? stats_.too_large : stats_.not_batch)++;
    ++stats_.rejected;
    spdlog::error("bridge: {}: rejected (dead-lettered if queue '{}' has a dead-letter exchange)",
                  what, o_.queue);
    link_.get()->reject(d.tag);
    settle(d.tag, kRejected);
  }

  void take_message(amqp::Delivery& d, std::uint64_t fp) {
    if (d.body.size() > o_.limits.max_record_bytes) {
      return bad(d, true, fmt::format("is over the record limit of {} bytes",
                                      o_.limits.max_record_bytes));
    }
    bool sealed = false;
    try {
      sealed = batcher_.add(span_of(d.body));
    } catch (const std::length_error&) {
      return bad(d, true, fmt::format("does not fit in a batch of {} bytes (--batch-bytes)",
                                      o_.batch.max_bytes));
    }
    // A sealed batch may or may not hold the message just added (bytes seal before it);
    // take_sealed() splits open_ by the sealed batches' record counts, so it is pushed first.
    open_.push_back({fp, d.tag});
    if (sealed) take_sealed();
  }

  void take_batch(amqp::Delivery& d, std::uint64_t fp) {
    if (d.body.size() > o_.limits.max_batch_bytes) {
      return bad(d, true, fmt::format("is over the batch limit of {} bytes",
                                      o_.limits.max_batch_bytes));
    }
    auto batch = envelope::decode(span_of(d.body), o_.limits);
    if (!batch) {
      return bad(d, batch.status().code() == Code::kLimitExceeded,
                 "is not a zkit batch: " + batch.status().to_string());
    }
    Out out;
    out.id = next_id_++;
    out.producer_id = batch->header().producer_id;
    out.seq = batch->header().seq;
    out.recs.push_back({fp, d.tag});
    outs_.push_back(std::move(out));
    unsent_.push_back({outs_.back().id, std::move(d.body), outs_.back().producer_id,
                       outs_.back().seq, batch->size()});
  }

  void take_sealed() {
    while (auto sb = batcher_.take()) {
      Out out;
      out.id = next_id_++;
      out.producer_id = batcher_.producer_id();
      out.seq = sb->seq;
      const std::size_t n = std::min(sb->records, open_.size());
      out.recs.assign(open_.begin(), open_.begin() + static_cast<std::ptrdiff_t>(n));
      open_.erase(open_.begin(), open_.begin() + static_cast<std::ptrdiff_t>(n));
      outs_.push_back(std::move(out));
      // Those records were copied out of open_: waiting_ pointers to them (tag 0) are stale.
      if (matching_ && std::any_of(outs_.back().recs.begin(), outs_.back().recs.end(),
                                   [](const Rec& r) { return r.tag == 0; })) {
        rebuild_waiting();
      }
      unsent_.push_back({outs_.back().id, std::move(sb->frame), outs_.back().producer_id,
                         outs_.back().seq, n});
      if (!o_.journal_dir.empty()) unjournaled_.push_back(outs_.back().id);
    }
  }

  void rebuild_waiting() {
    waiting_.clear();
    for (Out& out : outs_) {
      if (out.acked_down) continue;
      for (Rec& r : out.recs) {
        if (r.tag == 0) waiting_[r.fp].push_back(&r);
      }
    }
    for (Rec& r : open_) {
      if (r.tag == 0) waiting_[r.fp].push_back(&r);
    }
  }

  Out* find(std::uint64_t id) {
    auto it = std::lower_bound(outs_.begin(), outs_.end(), id,
                               [](const Out& o, std::uint64_t v) { return o.id < v; });
    return it != outs_.end() && it->id == id ? &*it : nullptr;
  }

  // Journals (message mode), then hands batches to the link as its backlog allows.
  void send_ready() {
    if (!unjournaled_.empty()) {
      // Group commit: the batches sealed this round go into one file, one fsync.
      journal_retry_ = false;
      std::string bytes;
      std::vector<Out*> members;
      for (std::uint64_t id : unjournaled_) {
        Out* out = find(id);
        auto u = std::find_if(unsent_.begin(), unsent_.end(),
                              [id](const Unsent& x) { return x.id == id; });
        if (!out || u == unsent_.end()) continue;
        const auto n = static_cast<std::uint32_t>(u->frame.size());
        const unsigned char len[4] = {static_cast<unsigned char>(n >> 24),
                                      static_cast<unsigned char>(n >> 16),
                                      static_cast<unsigned char>(n >> 8),
                                      static_cast<unsigned char>(n)};
        bytes.append(reinterpret_cast<const char*>(len), 4);
        bytes.append(static_cast<const char*>(u->frame.data()), u->frame.size());
        members.push_back(out);
      }
      if (!members.empty()) {
        const fs::path p = o_.journal_dir / fmt::format("{:016x}-{:020}.zj",
                                                        members[0]->producer_id, members[0]->seq);
        const std::string e = write_synced(p, std::as_bytes(std::span(bytes.data(), bytes.size())));
        if (!e.empty()) {
          ++stats_.journal_errors;
          spdlog::error("bridge: journal: {}; retrying", e);
          journal_retry_ = true;
          return;  // nothing goes downstream before it is journaled
        }
        for (Out* out : members) out->journal = p.string();
        journal_refs_[p.string()] += static_cast<int>(members.size());
        sync_dir();
      }
      unjournaled_.clear();
    }
    while (!unsent_.empty()) {
      Unsent& u = unsent_.front();
      // On refusal the frame stays with us (send_batch's contract).
      const Status st = sender_.send_batch(std::move(u.frame), u.id, u.producer_id, u.seq);
      if (!st) break;  // backlog full: next round
      ++stats_.batches_sent;
      stats_.messages_sent += u.messages;
      unsent_.pop_front();
    }
  }

  void sync_dir() {
    const int fd = ::open(o_.journal_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      (void)::fsync(fd);
      ::close(fd);
    }
  }

  void acked_downstream(const AckedBatch& a) {
    Out* out = find(a.id);
    if (!out) return;
    out->acked_down = true;
    ++stats_.batches_acked_downstream;
    stats_.messages_acked_downstream += out->recs.size();
    bool moved = false;
    for (Rec& r : out->recs) {
      if (r.tag != 0) {
        settle(r.tag);
      } else if (matching_) {  // its redelivery, when it comes, is acknowledged at once
        ++done_[r.fp];
        moved = true;
      }
    }
    if (moved) rebuild_waiting();
  }

  // A tag is settled by the downstream's ack (kAcked) or by basic.reject (kRejected). A multiple
  // ack must name a tag still outstanding, so it names the last kAcked one below the floor.
  static constexpr char kOpen = 0, kAcked = 1, kRejected = 2;
  void settle(std::uint64_t tag, char how = kAcked) {
    if (tag <= ack_floor_ || tag > ack_floor_ + tags_.size()) return;
    tags_[tag - ack_floor_ - 1] = how;
    while (!tags_.empty() && tags_.front() != kOpen) {
      ++ack_floor_;
      if (tags_.front() == kAcked) {
        ack_upto_ = ack_floor_;
        ++ack_count_;
      }
      tags_.pop_front();
    }
  }

  void ack_amqp() {
    amqp::Connection* c = link_.get();
    if (!c) return;
    if (ack_upto_ > acked_sent_) {
      c->ack(ack_upto_, true);
      ++stats_.amqp_acks;
      stats_.messages_acked_amqp += ack_count_;
      ack_count_ = 0;
      acked_sent_ = ack_upto_;
      if (!sync_due_) sync_due_ = Clock::now() + o_.sync_interval;
    }
    if (sync_due_ && Clock::now() >= *sync_due_) sync_now();
    drop_finished();
  }

  // One round trip: every ack sent before it has been processed by RabbitMQ.
  void sync_now() {
    link_.get()->sync();
    sure_floor_ = acked_sent_;
    sync_due_.reset();
  }

  // Batches acknowledged downstream whose messages RabbitMQ surely acked are forgotten (and
  // their journal files deleted).
  void drop_finished() {
    while (!outs_.empty()) {
      Out& out = outs_.front();
      if (!out.acked_down) break;
      const bool sure = std::all_of(out.recs.begin(), out.recs.end(), [this](const Rec& r) {
        return (r.tag != 0 && r.tag <= sure_floor_) || (r.tag == 0 && !matching_);
      });
      if (!sure) break;
      if (!out.journal.empty() && --journal_refs_[out.journal] <= 0) {
        std::error_code ec;
        fs::remove(out.journal, ec);
        journal_refs_.erase(out.journal);
      }
      // Remembered a while: a quorum queue whose leader fails over may not have committed acks
      // its channel had processed, and delivers those messages again (see new_connection).
      for (const Rec& r : out.recs) recent_.push_back(r.fp);
      while (recent_.size() > kRecentFactor * o_.prefetch) recent_.pop_front();
      outs_.pop_front();  // acknowledged downstream: none of its records is in waiting_
    }
  }

  void load_journal() {
    std::error_code ec;
    fs::create_directories(o_.journal_dir, ec);
    if (ec) {
      throw std::runtime_error(
          fmt::format("journal directory '{}': {}", o_.journal_dir.string(), ec.message()));
    }
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(o_.journal_dir)) {
      if (e.path().extension() == ".zj") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& p : files) {
      std::ifstream in(p, std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
      std::size_t pos = 0, kept = 0;
      // A torn tail is a round never sent downstream (sending waits for the fsync): ignored.
      while (pos + 4 <= bytes.size()) {
        const auto* b = reinterpret_cast<const unsigned char*>(bytes.data() + pos);
        const std::size_t n = std::size_t{b[0]} << 24 | std::size_t{b[1]} << 16 |
                              std::size_t{b[2]} << 8 | b[3];
        if (pos + 4 + n > bytes.size()) break;
        zmq::message_t frame(bytes.data() + pos + 4, n);
        pos += 4 + n;
        auto batch = envelope::decode(span_of(frame), o_.limits);
        if (!batch) {
          spdlog::warn("bridge: journal file {}: a record is not a batch ({}): skipped",
                       p.string(), batch.status().to_string());
          continue;
        }
        Out out;
        out.id = next_id_++;
        out.producer_id = batch->header().producer_id;
        out.seq = batch->header().seq;
        out.journal = p.string();
        for (const auto rec : *batch) out.recs.push_back({fingerprint(rec), 0});
        unsent_.push_back({out.id, std::move(frame), out.producer_id, out.seq, out.recs.size()});
        outs_.push_back(std::move(out));
        ++stats_.resent_from_journal;
        ++kept;
      }
      if (kept == 0) {
        fs::remove(p, ec);
      } else {
        journal_refs_[p.string()] += static_cast<int>(kept);
      }
    }
    if (!files.empty()) {
      spdlog::info("bridge: journal {}: {} batches of an earlier run are sent again",
                   o_.journal_dir.string(), stats_.resent_from_journal);
    }
  }

  struct Unsent {
    std::uint64_t id;
    zmq::message_t frame;
    std::uint64_t producer_id, seq;
    std::size_t messages;
  };

  FromAmqpOptions o_;
  BridgeStats stats_;
  AmqpLink link_;
  ReliableSender sender_;
  Batcher batcher_;
  ControlSocket control_;
  std::string endpoint_, control_endpoint_;

  std::deque<Out> outs_;   // by id; the batches not yet finished
  std::deque<Rec> open_;  // messages held by the batcher, in order (a deque: waiting_ points in)
  std::deque<Unsent> unsent_;
  std::vector<std::uint64_t> unjournaled_;
  std::unordered_map<std::string, int> journal_refs_;  // journal file -> batches not finished
  bool journal_retry_ = false;
  std::uint64_t next_id_ = 1;

  std::deque<char> tags_;        // tags ack_floor_+1 ...: 1 once settled
  std::uint64_t ack_floor_ = 0;  // every tag <= ack_floor_ is settled
  std::uint64_t ack_upto_ = 0;   // the highest kAcked tag <= ack_floor_
  std::uint64_t ack_count_ = 0;  // kAcked tags passed since the last basic.ack
  std::uint64_t acked_sent_ = 0;  // basic.ack sent up to here
  std::uint64_t sure_floor_ = 0;  // ...and processed by RabbitMQ up to here (sync)
  std::optional<Clock::time_point> sync_due_;

  bool matching_ = false;  // redeliveries are matched (see the file comment)
  Clock::time_point matching_until_{};
  std::unordered_map<std::uint64_t, std::deque<Rec*>> waiting_;
  std::unordered_map<std::uint64_t, std::uint64_t> done_;
  static constexpr std::size_t kRecentFactor = 4;  // recent_ holds 4 x prefetch fingerprints
  std::deque<std::uint64_t> recent_;                // of the last messages finished

  bool stopped_ = false;
  Clock::time_point started_ = Clock::now();
};

}  // namespace

std::unique_ptr<Bridge> Bridge::from_amqp(zmq::context_t& context, FromAmqpOptions options) {
  return std::make_unique<FromAmqp>(context, std::move(options));
}

}  // namespace zkit
