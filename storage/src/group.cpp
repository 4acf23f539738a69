// Consumer group state: a window of the batches between the floor and the read position (out, put
// back, acked), a second window over the group's dead-letter log while it is replayed, the timers
// of batches put back, and the group file.
#include "zkit/spool/group.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "group_format.hpp"
#include "log_format.hpp"
#include "zkit/json.hpp"

namespace zkit::spool {

using Clock = std::chrono::steady_clock;
namespace gf = group_format;

bool valid_group_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string dead_letter_dir(const std::string& dir, const std::string& name) {
  return dir + "/" + gf::kDeadDir + "/" + name;
}

std::string GroupStats::to_json() const {
  JsonWriter w;
  w.begin_object();
  w.field("delivered", delivered).field("redelivered", redelivered).field("acked", acked);
  w.field("acked_messages", acked_messages).field("nacked", nacked);
  w.field("dead_lettered", dead_lettered).field("dead_lettered_messages", dead_lettered_messages);
  w.field("dead_letter_refused", dead_letter_refused);
  w.field("dropped_batches", dropped_batches).field("dropped_messages", dropped_messages);
  w.field("replayed", replayed).field("persists", persists).field("persist_errors", persist_errors);
  w.field("pending", pending).field("returned", returned);
  w.field("acked_above_floor", acked_above_floor).field("lag_batches", lag_batches);
  w.field("dead_bytes", dead_bytes).field("floor", floor.to_string());
  w.end_object();
  return std::move(w).str();
}

namespace {

std::string groups_dir(const std::string& dir) { return dir + "/" + gf::kGroupsDir; }
std::string group_path(const std::string& dir, const std::string& name) {
  return groups_dir(dir) + "/" + name + gf::kSuffix;
}

enum State : std::uint8_t { kOut = 0, kReturned = 1, kAcked = 2 };

struct Entry {
  Position pos;
  std::uint32_t messages = 0;
  std::uint32_t count = 0;  // deliveries so far
  std::uint8_t state = kOut;
};

// What the group file says about one batch.
struct FileEntry {
  Position pos;
  std::uint32_t count = 0;
  bool done = false;
};

// What a group file holds.
struct FileState {
  Position floor, replay_floor, replay_end;
  Position delivered_to;  // H (version 1: the floor)
  bool closed = false;    // written by the destructor: nothing was handed out after it
  std::array<std::uint64_t, gf::kCounters> counters{};
  std::vector<FileEntry> entries;
};

Result<FileState> decode_file(std::span<const std::byte> b, const std::string& path) {
  using namespace format;
  auto bad = [&](const std::string& why) {
    return Status::corruption("group file " + path + ": " + why);
  };
  if (b.size() < gf::kHeaderSizeV1 + gf::kCrcSize) {
    return bad("has " + std::to_string(b.size()) + " bytes, less than a header");
  }
  if (std::memcmp(b.data(), gf::kMagic.data(), gf::kMagic.size()) != 0) return bad("bad magic");
  const std::size_t body = b.size() - gf::kCrcSize;
  if (get_u32(b.data() + body) != crc32(b.first(body))) return bad("checksum mismatch");
  const std::uint32_t version = get_u32(b.data() + 8);
  if (version != gf::kVersion && version != gf::kVersion1) {
    return Status::unsupported("group file " + path + ": unsupported version " +
                               std::to_string(version));
  }
  const std::size_t header = version == gf::kVersion1 ? gf::kHeaderSizeV1 : gf::kHeaderSize;
  if (body < header) {
    return bad("has " + std::to_string(b.size()) + " bytes, less than a header");
  }
  FileState f;
  auto pos_at = [&](std::size_t off) {
    return Position{get_u64(b.data() + off), get_u64(b.data() + off + 8)};
  };
  f.floor = pos_at(gf::kFloorOffset);
  f.replay_floor = pos_at(gf::kReplayFloorOffset);
  f.replay_end = pos_at(gf::kReplayEndOffset);
  f.delivered_to = version == gf::kVersion1 ? f.floor : pos_at(gf::kDeliveredToOffset);
  f.closed = version != gf::kVersion1 && (get_u32(b.data() + gf::kFlagsOffset) & gf::kClosed) != 0;
  for (std::size_t i = 0; i < gf::kCounters; ++i) {
    f.counters[i] = get_u64(b.data() + gf::kCountersOffset + 8 * i);
  }
  const std::uint64_t n = get_u32(b.data() + gf::kEntryCountOffset);
  if (n * gf::kEntrySize != body - header) {
    return bad("entry count " + std::to_string(n) + " does not match its size of " +
               std::to_string(body - header) + " bytes");
  }
  f.entries.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::byte* e = b.data() + header + i * gf::kEntrySize;
    const std::uint8_t done = std::to_integer<std::uint8_t>(e[20]);
    if (done > 1) return bad("entry " + std::to_string(i) + " has a bad done flag");
    f.entries.push_back({{get_u64(e), get_u64(e + 8)}, get_u32(e + 16), done == 1});
  }
  return f;
}

Result<FileState> read_file(Env& env, const std::string& path) {
  auto size = env.file_size(path);
  if (!size) return size.status();
  auto file = env.open_readable(path);
  if (!file) return file.status();
  std::vector<std::byte> b(static_cast<std::size_t>(size.value()));
  auto n = file.value()->read(0, b);
  if (!n) return n.status();
  b.resize(n.value());
  return decode_file(b, path);
}

// The counters' places in the file and in GroupStats.
std::array<std::uint64_t*, gf::kCounters> counter_refs(GroupStats& s) {
  return {&s.delivered,
          &s.redelivered,
          &s.acked,
          &s.acked_messages,
          &s.nacked,
          &s.dead_lettered,
          &s.dead_lettered_messages,
          &s.dead_letter_refused,
          &s.dropped_batches,
          &s.dropped_messages,
          &s.replayed};
}

// Entries ascending by position in a ring (no allocation per batch once it has grown).
class Window {
 public:
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  Entry& at(std::size_t i) { return buf_[(head_ + i) & (buf_.size() - 1)]; }
  const Entry& at(std::size_t i) const { return buf_[(head_ + i) & (buf_.size() - 1)]; }
  Entry& front() { return at(0); }
  const Entry& front() const { return at(0); }
  void pop_front() {
    head_ = (head_ + 1) & (buf_.size() - 1);
    --size_;
  }
  void push_back(const Entry& e) {
    if (size_ == buf_.size()) grow();
    buf_[(head_ + size_) & (buf_.size() - 1)] = e;
    ++size_;
  }
  void clear() noexcept { head_ = size_ = 0; }
  // The entry at p, or nullptr (binary search).
  Entry* find(Position p) {
    std::size_t lo = 0, hi = size_;
    while (lo < hi) {
      const std::size_t mid = lo + (hi - lo) / 2;
      if (at(mid).pos < p) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo < size_ && at(lo).pos == p ? &at(lo) : nullptr;
  }

 private:
  void grow() {
    std::vector<Entry> bigger(std::max<std::size_t>(64, buf_.size() * 2));
    for (std::size_t i = 0; i < size_; ++i) bigger[i] = at(i);
    buf_ = std::move(bigger);
    head_ = 0;
  }
  std::vector<Entry> buf_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

Position tag(Position p) { return {p.segment | kReplaySegmentBit, p.offset}; }
Position untag(Position p) { return {p.segment & ~kReplaySegmentBit, p.offset}; }

// One log the group reads: the main log, or its dead-letter log while replaying.
struct Source {
  bool replay = false;
  Window win;         // [floor, read_pos), positions tagged for the replay source
  Position read_pos;  // the next new record is read here (untagged)
  Position end{~std::uint64_t{0} >> 1, 0};  // replay: read up to here only
  std::vector<FileEntry> recovered;         // from the file, ascending, not yet read again
  std::size_t next_recovered = 0;
  std::size_t out = 0, returned = 0, acked = 0;  // entries in win by state
  LogCount read_seg;  // main: batch records in read_pos.segment before read_pos

  Position floor() const {
    return win.empty() ? (replay ? tag(read_pos) : read_pos) : win.front().pos;
  }
  void pop_done() {
    while (!win.empty() && win.front().state == kAcked) {
      win.pop_front();
      --acked;
    }
  }
  void clear() {
    win.clear();
    out = returned = acked = 0;
    recovered.clear();
    next_recovered = 0;
  }
  void count_leaving(std::uint8_t state) {
    if (state == kOut) --out;
    if (state == kReturned) --returned;
    if (state == kAcked) --acked;
  }
};

}  // namespace

struct Group::Impl {
  Store* store = nullptr;
  Env* env = nullptr;
  std::string dir;
  std::string name;
  std::string path;
  GroupOptions opt;
  bool created = false;
  bool sync = true;
  std::uint64_t listener = 0;

  Source main;
  Source rep;
  // Redeliveries after a crash (docs/spool.md, "Groups"). delivered_to: H as last written (every
  // main-log batch handed out before that write is before it). unpersisted: main-log batches at
  // or after H handed out since; next() writes the file before it would exceed max_unpersisted.
  // maybe_from/maybe_left: after recovery, the first maybe_left batches read at or after the
  // recovered H may have been handed out before the crash with no trace in the file, if they
  // were in the log then (before maybe_end, the log's end at open).
  Position delivered_to;
  std::size_t unpersisted = 0;
  Position maybe_from, maybe_end;
  std::size_t maybe_left = 0;
  std::optional<Store> dead;

  std::set<Position> ready;                            // put back and due (tagged or not)
  std::multimap<Clock::time_point, Position> waiting;  // put back, not yet due
  Clock::time_point ready_due{};

  GroupStats st;  // counters; the "now" figures are filled by stats()
  bool dirty = false;
  bool groups_dir_made = false;
  Clock::time_point last_persist{};
  std::vector<std::byte> buf;  // the file being written (kept between persists)

  Impl() { rep.replay = true; }
  ~Impl() {
    if (store) store->remove_drop_listener(listener);
  }

  Source& source_of(Position p) { return is_replay(p) ? rep : main; }
  Store* store_of(const Source& s) { return s.replay ? (dead ? &*dead : nullptr) : store; }

  Status open_dead(bool create);
  Status make_groups_dir();
  Status persist(bool closing = false);
  Result<std::optional<Delivery>> next(Clock::time_point now);
  Result<std::optional<Delivery>> read_new(Source& src);
  Status dead_letter(Source& src, Entry& e);
  void on_dropped(const DroppedSegment& d);
  Status set_read_pos(Position p);
  void advance_replay_floor();
  void mark_changed() { dirty = true; }
};

Status Group::Impl::make_groups_dir() {
  if (groups_dir_made) return {};
  const std::string g = groups_dir(dir);
  if (!env->exists(g)) {
    if (Status s = env->create_dir(g); !s) return s;
    if (sync) {
      if (Status s = env->sync_dir(dir); !s) return s;
    }
  }
  groups_dir_made = true;
  return {};
}

// The dead-letter log is a spool directory of its own; its directory entries are synced so that a
// dead letter synced into it is not lost with its directory.
Status Group::Impl::open_dead(bool create) {
  if (dead) return {};
  const std::string d = dead_letter_dir(dir, name);
  if (!env->exists(d)) {
    if (!create) return {};
    const std::string parent = dir + "/" + gf::kDeadDir;
    if (!env->exists(parent)) {
      if (Status s = env->create_dir(parent); !s) return s;
      if (sync) {
        if (Status s = env->sync_dir(dir); !s) return s;
      }
    }
    if (Status s = env->create_dir(d); !s) return s;
    if (sync) {
      if (Status s = env->sync_dir(parent); !s) return s;
    }
  }
  Options o;
  o.dir = d;
  o.env = store->options().env;
  o.fsync = FsyncPolicy::always();
  o.max_bytes = opt.max_dead_bytes;
  o.when_full = WhenFull::kBlock;
  o.create_if_missing = false;
  auto s = Store::open(o);
  if (!s) return s.status();
  dead.emplace(std::move(s.value()));
  return {};
}

Status Group::Impl::set_read_pos(Position p) {
  main.read_pos = p;
  auto c = store->count_before(p);
  if (!c) return c.status();
  main.read_seg = c.value();
  return {};
}

Status Group::Impl::persist(bool closing) {
  if (Status s = make_groups_dir(); !s) return s;
  using namespace format;
  std::size_t n = 0;
  for (const Source* s : {&main, &rep})
    n += s->win.size() + (s->recovered.size() - s->next_recovered);
  buf.resize(gf::kHeaderSize + n * gf::kEntrySize + gf::kCrcSize);
  std::byte* b = buf.data();
  std::memset(b, 0, gf::kHeaderSize);
  std::memcpy(b, gf::kMagic.data(), gf::kMagic.size());
  put_u32(b + 8, gf::kVersion);
  put_u32(b + gf::kFlagsOffset, closing ? gf::kClosed : 0);
  auto put_pos = [&](std::size_t off, Position p) {
    put_u64(b + off, p.segment);
    put_u64(b + off + 8, p.offset);
  };
  put_pos(gf::kFloorOffset, main.floor());
  put_pos(gf::kReplayFloorOffset, untag(rep.floor()));
  put_pos(gf::kReplayEndOffset, rep.end);
  const Position h = std::max(delivered_to, main.read_pos);
  put_pos(gf::kDeliveredToOffset, h);
  auto refs = counter_refs(st);
  for (std::size_t i = 0; i < gf::kCounters; ++i)
    put_u64(b + gf::kCountersOffset + 8 * i, *refs[i]);
  put_u32(b + gf::kEntryCountOffset, static_cast<std::uint32_t>(n));
  std::byte* e = b + gf::kHeaderSize;
  auto put_entry = [&](Position p, std::uint32_t count, bool done) {
    put_u64(e, p.segment);
    put_u64(e + 8, p.offset);
    put_u32(e + 16, count);
    e[20] = std::byte{static_cast<unsigned char>(done ? 1 : 0)};
    e += gf::kEntrySize;
  };
  for (Source* s : {&main, &rep}) {
    for (std::size_t i = 0; i < s->win.size(); ++i) {
      const Entry& x = s->win.at(i);
      put_entry(x.pos, x.count, x.state == kAcked);
    }
    for (std::size_t i = s->next_recovered; i < s->recovered.size(); ++i) {
      put_entry(s->recovered[i].pos, s->recovered[i].count, s->recovered[i].done);
    }
  }
  const std::size_t body = buf.size() - gf::kCrcSize;
  put_u32(b + body, crc32(std::span<const std::byte>(buf).first(body)));

  last_persist = Clock::now();
  const std::string tmp = groups_dir(dir) + "/" + name + gf::kTempSuffix;
  auto f = env->new_writable(tmp);
  Status s = f ? Status{} : f.status();
  if (s) s = f.value()->append(buf);
  if (s && sync) s = f.value()->sync();
  if (s) s = f.value()->close();
  if (s) s = env->rename(tmp, path);
  if (s && sync) s = env->sync_dir(groups_dir(dir));
  if (!s) {
    ++st.persist_errors;
    (void)env->remove(tmp);
    return s;
  }
  ++st.persists;
  dirty = false;
  delivered_to = h;
  unpersisted = 0;
  return {};
}

// A new record of src (the main log, or the dead-letter log up to the replay end), skipping those
// the group file recorded done.
Result<std::optional<Delivery>> Group::Impl::read_new(Source& src) {
  Store* log = store_of(src);
  if (log == nullptr) return std::optional<Delivery>();
  while (src.read_pos < src.end) {
    auto r = log->read_at(src.read_pos);
    if (!r) return r.status();
    if (!r.value() || r.value()->position >= src.end) {
      if (src.replay && r.value()) src.read_pos = src.end;  // the replay has read all it should
      return std::optional<Delivery>();
    }
    StoredRecord rec = *r.value();
    if (!src.replay) {
      if (rec.position.segment != src.read_pos.segment) src.read_seg = {};
      ++src.read_seg.batches;
      src.read_seg.messages += rec.meta.message_count;
    }
    src.read_pos = rec.next;
    if (src.replay) {
      rec.position = tag(rec.position);
      rec.next = tag(rec.next);
    }
    std::uint32_t count = 0;
    while (src.next_recovered < src.recovered.size() &&
           src.recovered[src.next_recovered].pos < rec.position) {
      ++src.next_recovered;  // a record the file knew and the log no longer has (damage)
    }
    if (src.next_recovered < src.recovered.size() &&
        src.recovered[src.next_recovered].pos == rec.position) {
      const FileEntry& fe = src.recovered[src.next_recovered++];
      if (fe.done) {
        src.win.push_back({rec.position, rec.meta.message_count, fe.count, kAcked});
        ++src.acked;
        src.pop_done();
        continue;
      }
      count = fe.count;
    } else if (!src.replay && (rec.position < maybe_from ||
                               (maybe_left > 0 && rec.position < maybe_end))) {
      // Not in the file, yet maybe handed out before the crash: its next delivery must not say
      // it is the first.
      count = 1;
    }
    if (!src.replay && rec.position >= maybe_from && maybe_left > 0) --maybe_left;
    if (!src.replay && rec.position >= delivered_to) ++unpersisted;
    if (src.next_recovered == src.recovered.size() && !src.recovered.empty()) {
      src.recovered.clear();
      src.recovered.shrink_to_fit();
      src.next_recovered = 0;
    }
    src.win.push_back({rec.position, rec.meta.message_count, count + 1, kOut});
    ++src.out;
    ++st.delivered;
    if (count + 1 > 1) ++st.redelivered;
    mark_changed();
    return std::optional<Delivery>(Delivery{rec, count + 1});
  }
  return std::optional<Delivery>();
}

Result<std::optional<Delivery>> Group::Impl::next(Clock::time_point now) {
  while (!waiting.empty() && waiting.begin()->first <= now) {
    if (ready.empty()) ready_due = waiting.begin()->first;
    ready.insert(waiting.begin()->second);
    waiting.erase(waiting.begin());
  }
  while (!ready.empty()) {
    const Position p = *ready.begin();
    Source& src = source_of(p);
    Entry* e = src.win.find(p);
    Store* log = store_of(src);
    if (e == nullptr || e->state != kReturned || log == nullptr) {  // dropped or reset since
      ready.erase(ready.begin());
      continue;
    }
    auto r = log->read_at(untag(p));
    if (!r) return r.status();
    ready.erase(ready.begin());
    if (!r.value() || r.value()->position != untag(p)) {
      // The record can no longer be read (damage found since it was first delivered): it is
      // lost for the group, and counted so.
      spdlog::error("spool group {}: batch at {} can no longer be read; counted as dropped", name,
                    p.to_string());
      ++st.dropped_batches;
      st.dropped_messages += e->messages;
      --src.returned;
      ++src.acked;
      e->state = kAcked;
      src.pop_done();
      if (src.replay) advance_replay_floor();
      mark_changed();
      continue;
    }
    StoredRecord rec = *r.value();
    if (src.replay) {
      rec.position = p;
      rec.next = tag(rec.next);
    }
    e->state = kOut;
    ++e->count;
    --src.returned;
    ++src.out;
    ++st.delivered;
    if (e->count > 1) ++st.redelivered;
    mark_changed();
    return std::optional<Delivery>(Delivery{rec, e->count});
  }
  if (main.win.size() + rep.win.size() >= opt.max_pending) return std::optional<Delivery>();
  if (rep.read_pos < rep.end) {
    auto d = read_new(rep);
    if (!d || d.value()) return d;
  }
  if (unpersisted >= opt.max_unpersisted) {
    // The bound on batches handed out with no trace in the file (what a crash would redeliver
    // as first deliveries): write it before handing out one more.
    if (Status s = persist(); !s) return s;
  }
  return read_new(main);
}

void Group::Impl::advance_replay_floor() {
  if (!dead) return;
  // The dead-letter log keeps what the replay has not finished and what was dead-lettered since.
  (void)dead->set_retention_floor(untag(rep.floor()));
}

Status Group::Impl::dead_letter(Source& src, Entry& e) {
  if (Status s = open_dead(true); !s) return s;
  Store* from = store_of(src);
  auto r = from->read_at(untag(e.pos));
  if (!r) return r.status();
  if (!r.value() || r.value()->position != untag(e.pos)) {
    return Status::not_found("batch at " + e.pos.to_string() + " can no longer be read");
  }
  const StoredRecord& rec = *r.value();
  RecordMeta meta = rec.meta;
  meta.scope = kNoDedupe;  // a batch dead-lettered again after a replay is stored again
  auto a = dead->append(rec.frame, meta);
  if (!a) return a.status();
  return dead->commit();
}

void Group::Impl::on_dropped(const DroppedSegment& d) {
  std::uint64_t lost = 0, lost_messages = 0;
  if (main.read_pos.segment <= d.segment) {
    const LogCount before = main.read_pos.segment == d.segment ? main.read_seg : LogCount{};
    lost += d.batches - std::min(d.batches, before.batches);
    lost_messages += d.messages - std::min(d.messages, before.messages);
    main.read_pos = d.next;
    main.read_seg = {};
  }
  while (!main.win.empty() && main.win.front().pos.segment <= d.segment) {
    const Entry& e = main.win.front();
    if (e.state != kAcked) {
      ++lost;
      lost_messages += e.messages;
    }
    main.count_leaving(e.state);
    main.win.pop_front();
  }
  main.pop_done();
  if (lost > 0 || main.read_pos == d.next) mark_changed();
  st.dropped_batches += lost;
  st.dropped_messages += lost_messages;
  if (lost > 0) {
    spdlog::warn("spool group {}: drop-oldest deleted {} batches ({} messages) it had not done",
                 name, lost, lost_messages);
  }
}

// ---- Group ---------------------------------------------------------------------------------

Group::Group(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Group::Group(Group&&) noexcept = default;
Group& Group::operator=(Group&& other) noexcept {
  if (this != &other) {
    if (impl_) (void)impl_->persist(/*closing=*/true);
    impl_ = std::move(other.impl_);
  }
  return *this;
}
Group::~Group() {
  // Written even when unchanged: the file says it was closed, so that reopening it does not take
  // the batches after H for possibly delivered (group_format.hpp).
  if (impl_) {
    if (Status s = impl_->persist(/*closing=*/true); !s) {
      spdlog::error("spool group {}: writing {}: {}", impl_->name, impl_->path, s.to_string());
    }
  }
}

Result<Group> Group::open(Store& store, std::string name, GroupOptions options, Position start) {
  if (!valid_group_name(name)) {
    return Status::invalid_argument("bad group name '" + name +
                                    "' (1 to 64 of A-Z a-z 0-9 . _ -, not . or ..)");
  }
  if (options.max_pending == 0) return Status::invalid_argument("max-pending must be at least 1");
  if (options.max_unpersisted == 0) {
    return Status::invalid_argument("max-unpersisted must be at least 1");
  }
  auto impl = std::make_unique<Impl>();
  Impl& g = *impl;
  g.store = &store;
  g.env = &store.env();
  g.dir = store.options().dir;
  g.name = std::move(name);
  g.path = group_path(g.dir, g.name);
  g.opt = options;
  g.sync = store.options().fsync.mode != FsyncPolicy::Mode::kNever;
  (void)g.env->remove(groups_dir(g.dir) + "/" + g.name + gf::kTempSuffix);

  auto first = store.resolve_start(StartKind::kEarliest);
  if (!first) return first.status();
  const Position end = store.end();
  auto clamp = [&](Position p) { return std::clamp(p, first.value(), end); };

  bool write_now = false;
  if (g.env->exists(g.path)) {
    auto f = read_file(*g.env, g.path);
    if (!f) return f.status();
    FileState& fs = f.value();
    auto refs = counter_refs(g.st);
    for (std::size_t i = 0; i < gf::kCounters; ++i) *refs[i] = fs.counters[i];
    Position floor = clamp(fs.floor);
    if (floor != fs.floor) {
      // Before the log: those segments went while the group was closed. After it: the log's
      // unsynced end was lost with the power, and new records will take those offsets again.
      spdlog::warn("spool group {}: floor {} outside the log, moved to {}", g.name,
                   fs.floor.to_string(), floor.to_string());
      write_now = true;
    }
    if (Status s = g.set_read_pos(floor); !s) return s;
    // A crash may have come after up to max_unpersisted batches were handed out past H.
    g.delivered_to = std::clamp(fs.delivered_to, floor, end);
    g.maybe_from = g.delivered_to;
    g.maybe_left = fs.closed ? 0 : options.max_unpersisted;
    g.maybe_end = end;
    for (const FileEntry& e : fs.entries) {
      if (is_replay(e.pos)) {
        g.rep.recovered.push_back(e);
      } else if (e.pos >= floor && e.pos < end) {
        g.main.recovered.push_back(e);
      }
    }
    auto by_pos = [](const FileEntry& a, const FileEntry& b) { return a.pos < b.pos; };
    std::sort(g.main.recovered.begin(), g.main.recovered.end(), by_pos);
    std::sort(g.rep.recovered.begin(), g.rep.recovered.end(), by_pos);
    if (Status s = g.open_dead(false); !s) return s;
    g.rep.read_pos = fs.replay_floor;
    g.rep.end = fs.replay_end;
    if (g.dead) {
      const Position dfirst = g.dead->resolve_start(StartKind::kEarliest).value();
      g.rep.read_pos = std::max(g.rep.read_pos, dfirst);
      g.rep.end = std::min(std::max(g.rep.end, g.rep.read_pos), g.dead->end());
    } else {
      g.rep.read_pos = g.rep.end = Position{};
    }
    std::erase_if(g.rep.recovered,
                  [&](const FileEntry& e) { return untag(e.pos) < g.rep.read_pos; });
  } else {
    g.created = true;
    write_now = true;
    if (Status s = g.set_read_pos(clamp(start)); !s) return s;
    g.delivered_to = g.maybe_from = g.main.read_pos;
    g.rep.read_pos = g.rep.end = Position{};
    if (Status s = g.open_dead(false); !s) return s;  // a dead-letter log left by a deleted group
    if (g.dead) g.rep.read_pos = g.rep.end = g.dead->end();
  }
  if (write_now) {
    g.dirty = true;
    if (Status s = g.persist(); !s) return s;
  }
  Impl* raw = impl.get();
  g.listener = store.add_drop_listener([raw](const DroppedSegment& d) { raw->on_dropped(d); });
  return Group(std::move(impl));
}

const std::string& Group::name() const noexcept { return impl_->name; }
bool Group::created() const noexcept { return impl_->created; }

Result<std::optional<Delivery>> Group::next(Clock::time_point now) { return impl_->next(now); }

Status Group::ack(Position p) {
  Impl& g = *impl_;
  Source& src = g.source_of(p);
  if (p < src.floor()) return {};
  Entry* e = src.win.find(p);
  if (e == nullptr || e->state != kOut) {
    return Status::invalid_argument("group " + g.name + ": ack of " + p.to_string() +
                                    ", which is not out");
  }
  e->state = kAcked;
  --src.out;
  ++src.acked;
  ++g.st.acked;
  g.st.acked_messages += e->messages;
  src.pop_done();
  if (src.replay) g.advance_replay_floor();
  g.mark_changed();
  return {};
}

Result<bool> Group::release(Position p, Clock::time_point not_before) {
  Impl& g = *impl_;
  Source& src = g.source_of(p);
  if (p < src.floor()) return false;
  Entry* e = src.win.find(p);
  if (e == nullptr || e->state != kOut) {
    return Status::invalid_argument("group " + g.name + ": release of " + p.to_string() +
                                    ", which is not out");
  }
  ++g.st.nacked;
  g.mark_changed();
  if (g.opt.max_deliver != 0 && e->count >= g.opt.max_deliver) {
    const std::uint32_t messages = e->messages;
    if (Status s = g.dead_letter(src, *e); s) {
      // dead_letter may have read through the Store: find the entry again (the window did not
      // change, but keep the pointer's life short).
      e = src.win.find(p);
      e->state = kAcked;
      --src.out;
      ++src.acked;
      ++g.st.dead_lettered;
      g.st.dead_lettered_messages += messages;
      src.pop_done();
      if (src.replay) g.advance_replay_floor();
      return true;
    } else {
      ++g.st.dead_letter_refused;
      spdlog::warn("spool group {}: batch at {} not dead-lettered ({}); it goes back", g.name,
                   p.to_string(), s.to_string());
      e = src.win.find(p);
    }
  }
  e->state = kReturned;
  --src.out;
  ++src.returned;
  g.waiting.emplace(not_before, p);
  return false;
}

std::optional<Clock::time_point> Group::next_due() const {
  const Impl& g = *impl_;
  std::optional<Clock::time_point> due;
  if (!g.ready.empty()) due = g.ready_due;
  if (!g.waiting.empty()) {
    due = due ? std::min(*due, g.waiting.begin()->first) : g.waiting.begin()->first;
  }
  return due;
}

Status Group::reset(Position start) {
  Impl& g = *impl_;
  auto first = g.store->resolve_start(StartKind::kEarliest);
  if (!first) return first.status();
  const Position p = std::clamp(start, first.value(), g.store->end());
  g.main.clear();
  if (Status s = g.set_read_pos(p); !s) return s;
  // Counts start over from the new start (what was handed out is forgotten).
  g.delivered_to = g.maybe_from = p;
  g.maybe_left = 0;
  g.unpersisted = 0;
  std::erase_if(g.ready, [](const Position& q) { return !is_replay(q); });
  std::erase_if(g.waiting, [](const auto& w) { return !is_replay(w.second); });
  // Replayed dead letters out now go back at once: the caller forgets its tags.
  for (std::size_t i = 0; i < g.rep.win.size(); ++i) {
    Entry& e = g.rep.win.at(i);
    if (e.state != kOut) continue;
    e.state = kReturned;
    --g.rep.out;
    ++g.rep.returned;
    if (g.ready.empty()) g.ready_due = Clock::now();
    g.ready.insert(e.pos);
  }
  g.dirty = true;
  return g.persist();
}

Result<std::uint64_t> Group::replay_dead_letters() {
  Impl& g = *impl_;
  if (Status s = g.open_dead(false); !s) return s;
  if (!g.dead) return std::uint64_t{0};
  // From the replay's end (or its floor when none runs) to the end of the dead-letter log now.
  const Position from = std::max(g.rep.end, g.rep.read_pos);
  const Position to = g.dead->end();
  if (to <= from) return std::uint64_t{0};
  auto before = g.dead->count_before(from);
  if (!before) return before.status();
  const std::uint64_t n = g.dead->count_from(from.segment).batches - before.value().batches;
  if (g.rep.win.empty() && g.rep.read_pos >= g.rep.end) g.rep.read_pos = from;
  g.rep.end = to;
  g.st.replayed += n;
  g.dirty = true;
  if (Status s = g.persist(); !s) return s;
  return n;
}

Status Group::persist_if_due(Clock::time_point now) {
  Impl& g = *impl_;
  if (!g.dirty || now - g.last_persist < g.opt.persist_interval) return {};
  return g.persist();
}

Status Group::persist() {
  if (!impl_->dirty) return {};
  return impl_->persist();
}

std::optional<Clock::time_point> Group::persist_due() const {
  if (!impl_->dirty) return std::nullopt;
  return impl_->last_persist + impl_->opt.persist_interval;
}

Position Group::floor() const noexcept { return impl_->main.floor(); }

GroupStats Group::stats() const {
  Impl& g = *impl_;
  GroupStats s = g.st;
  s.pending = g.main.out + g.main.returned + g.rep.out + g.rep.returned;
  s.returned = g.main.returned + g.rep.returned;
  s.acked_above_floor = g.main.acked + g.rep.acked;
  // Committed records from the read position on, plus the window's not-done entries.
  const LogCount after = g.store->count_from(g.main.read_pos.segment);
  auto first = g.store->resolve_start(StartKind::kEarliest);
  const bool in_log = first && first.value().segment <= g.main.read_pos.segment;
  const std::uint64_t before = in_log ? g.main.read_seg.batches : 0;
  s.lag_batches = (after.batches - std::min(after.batches, before)) + g.main.out + g.main.returned;
  if (g.dead) s.dead_bytes = g.dead->stats().disk_bytes;
  s.floor = g.main.floor();
  return s;
}

// ---- management ----------------------------------------------------------------------------

Result<std::vector<GroupInfo>> list_groups(const std::string& dir, Env* env_in) {
  Env& env = env_in ? *env_in : Env::posix();
  std::vector<GroupInfo> out;
  const std::string g = groups_dir(dir);
  if (!env.exists(g)) return out;
  auto names = env.list_dir(g);
  if (!names) return names.status();
  const std::string suffix = gf::kSuffix;
  for (const auto& n : names.value()) {
    if (n.size() <= suffix.size() || !n.ends_with(suffix)) continue;
    const std::string name = n.substr(0, n.size() - suffix.size());
    if (!valid_group_name(name)) continue;
    auto f = read_file(env, g + "/" + n);
    if (!f) return f.status();
    GroupInfo info;
    info.name = name;
    info.floor = f.value().floor;
    auto refs = counter_refs(info.stats);
    for (std::size_t i = 0; i < gf::kCounters; ++i) *refs[i] = f.value().counters[i];
    for (const auto& e : f.value().entries) {
      if (e.done) {
        ++info.acked_above_floor;
      } else {
        ++info.pending;
      }
    }
    info.stats.floor = info.floor;
    info.stats.pending = info.pending;
    info.stats.acked_above_floor = info.acked_above_floor;
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(),
            [](const GroupInfo& a, const GroupInfo& b) { return a.name < b.name; });
  return out;
}

Status delete_group(const std::string& dir, const std::string& name, Env* env_in) {
  Env& env = env_in ? *env_in : Env::posix();
  if (!valid_group_name(name)) return Status::invalid_argument("bad group name '" + name + "'");
  const std::string file = group_path(dir, name);
  const std::string dead = dead_letter_dir(dir, name);
  const bool has_file = env.exists(file);
  const bool has_dead = env.exists(dead);
  if (!has_file && !has_dead) return Status::not_found("no group " + name + " in " + dir);
  if (has_dead) {
    // A dead-letter log in use (its Store holds the lock) is not deleted under its owner.
    auto lock = env.lock(dead + "/" + format::kLockName);
    if (!lock) return lock.status();
    auto files = env.list_dir(dead);
    if (!files) return files.status();
    for (const auto& f : files.value()) {
      if (f == format::kLockName) continue;
      if (Status s = env.remove(dead + "/" + f); !s) return s;
    }
    if (Status s = env.remove(dead + "/" + format::kLockName); !s) return s;
    lock.value().reset();
    if (Status s = env.remove_dir(dead); !s) return s;
    if (Status s = env.sync_dir(dir + "/" + gf::kDeadDir); !s) return s;
  }
  if (has_file) {
    if (Status s = env.remove(file); !s) return s;
    if (Status s = env.sync_dir(groups_dir(dir)); !s) return s;
  }
  return {};
}

}  // namespace zkit::spool
