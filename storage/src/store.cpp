// The spool store: segment files written through log::Writer with group commit, recovery by a
// full scan on open, a forward reader, the cursor file, limits and statistics.
#include "zkit/spool/store.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <deque>
#include <list>
#include <unordered_map>

#include "log.hpp"
#include "log_format.hpp"
#include "segment_files.hpp"
#include "zkit/envelope.hpp"
#include "zkit/json.hpp"

namespace zkit::spool {

using Clock = std::chrono::steady_clock;

// The write buffer keeps at most this much memory between commits.
constexpr std::size_t kKeepBufferBytes = std::size_t{16} << 20;

std::string Position::to_string() const {
  return files::segment_name(segment) + "@" + std::to_string(offset);
}

Result<FsyncPolicy> FsyncPolicy::parse(std::string_view text) {
  if (text == "always") return always();
  if (text == "never") return never();
  constexpr std::string_view kPrefix = "interval=";
  if (text.starts_with(kPrefix)) {
    std::string_view num = text.substr(kPrefix.size());
    long long ms = 0;
    auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), ms);
    if (ec == std::errc{} && end == num.data() + num.size() && ms > 0) {
      return every(std::chrono::milliseconds(ms));
    }
  }
  return Status::invalid_argument("bad fsync policy '" + std::string(text) +
                                  "' (expected always, interval=MS or never)");
}

std::string FsyncPolicy::to_string() const {
  switch (mode) {
    case Mode::kAlways: return "always";
    case Mode::kNever: return "never";
    case Mode::kInterval: return "interval=" + std::to_string(interval.count());
  }
  return "?";
}

Result<WhenFull> parse_when_full(std::string_view text) {
  if (text == "block") return WhenFull::kBlock;
  if (text == "drop-oldest" || text == "drop_oldest") return WhenFull::kDropOldest;
  return Status::invalid_argument("bad when-full policy '" + std::string(text) +
                                  "' (expected block or drop-oldest)");
}

std::string Stats::to_json() const {
  JsonWriter w;
  w.begin_object();
  w.field("accepted", accepted).field("stored", stored).field("stored_messages", stored_messages);
  w.field("duplicates", duplicates).field("seq_restarts", seq_restarts);
  w.field("producers", producers).field("producers_forgotten", producers_forgotten);
  w.field("rejected_full", rejected_full).field("forwarded", forwarded).field("acked", acked);
  w.field("acked_messages", acked_messages).field("backlog_batches", backlog_batches);
  w.field("backlog_messages", backlog_messages).field("backlog_bytes", backlog_bytes);
  w.field("oldest_age_ms", oldest_age_ms).field("segments", segments);
  w.field("disk_bytes", disk_bytes).field("disk_free_bytes", disk_free_bytes);
  w.field("fsyncs", fsyncs).field("fsync_ns_total", fsync_ns_total);
  w.field("fsync_ns_max", fsync_ns_max).field("corrupt_skipped", corrupt_skipped);
  w.field("dropped_batches", dropped_batches).field("dropped_messages", dropped_messages);
  w.field("io_errors", io_errors).field("full", full);
  w.end_object();
  return std::move(w).str();
}

namespace {

std::uint64_t now_ns() { return envelope::unix_now_ns(); }

// What memory holds about one segment: counts, never the records.
struct Segment {
  std::uint64_t number = 0;
  std::uint64_t size = 0;      // file bytes, including bytes appended but not yet written
  std::uint64_t batches = 0;
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;     // frame bytes
  std::uint64_t first_arrival = 0;
  std::uint64_t last_arrival = 0;
};

struct InFlight {
  Position next;
  std::uint32_t messages;
  std::uint64_t bytes;
  std::uint64_t arrival;
};

struct ProducerKey {
  std::uint64_t scope = 0;
  std::uint64_t producer = 0;
  bool operator==(const ProducerKey&) const = default;
};
struct ProducerKeyHash {
  std::size_t operator()(const ProducerKey& k) const noexcept {
    return std::hash<std::uint64_t>{}(k.producer * 0x9e3779b97f4a7c15ull ^ k.scope);
  }
};

// The highest seq stored per (scope, producer), at most `max` entries: a new one beyond that makes
// the store forget the longest-unseen one (peers choose producer ids, so the table must be bounded).
// Each entry remembers where its last mention is on disk: a segment, or 0 for the PRODUCERS file.
class ProducerTable {
 public:
  struct Entry {
    std::uint64_t seq = 0;
    std::uint64_t segment = 0;  // 0: held by the PRODUCERS file
    std::list<ProducerKey>::iterator age;
  };
  std::size_t max = 65536;
  std::uint64_t forgotten = 0;

  const Entry* find(const ProducerKey& k) const {
    auto it = map_.find(k);
    return it == map_.end() ? nullptr : &it->second;
  }
  // k's highest seq is now seq, last written in segment; k becomes the most recently seen.
  void set(const ProducerKey& k, std::uint64_t seq, std::uint64_t segment) {
    auto [it, fresh] = map_.try_emplace(k);
    if (fresh) {
      order_.push_front(k);
      it->second.age = order_.begin();
    } else {
      order_.splice(order_.begin(), order_, it->second.age);
    }
    it->second.seq = seq;
    it->second.segment = segment;
    while (map_.size() > max) {
      map_.erase(order_.back());
      order_.pop_back();
      ++forgotten;
    }
  }
  // The entries last written in segments before `below`: they are now held by the PRODUCERS file
  // alone. `idle` gets the number of entries the file holds afterwards.
  std::vector<log::ProducerEntry> retire(std::uint64_t below, std::size_t& idle) {
    std::vector<log::ProducerEntry> out;
    idle = 0;
    for (auto& [k, e] : map_) {
      if (e.segment != 0 && e.segment < below) {
        out.push_back({k.scope, k.producer, e.seq});
        e.segment = 0;
      }
      if (e.segment == 0) ++idle;
    }
    return out;
  }
  std::vector<log::ProducerEntry> idle() const {
    std::vector<log::ProducerEntry> out;
    for (const auto& [k, e] : map_) {
      if (e.segment == 0) out.push_back({k.scope, k.producer, e.seq});
    }
    return out;
  }
  std::size_t size() const noexcept { return map_.size(); }

 private:
  std::unordered_map<ProducerKey, Entry, ProducerKeyHash> map_;
  std::list<ProducerKey> order_;  // most recently seen first
};

// A RandomAccessFile over bytes in memory (the PRODUCERS file read at open, pending records).
class MemoryFile final : public RandomAccessFile {
 public:
  // The bytes of `data` sit at file offset `base`; the bytes before base read as zeros.
  MemoryFile(std::span<const std::byte> data, std::uint64_t base) : data_(data), base_(base) {}
  Result<std::size_t> read(std::uint64_t offset, std::span<std::byte> out) override {
    const std::uint64_t end = base_ + data_.size();
    if (offset >= end) return std::size_t{0};
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), end - offset));
    for (std::size_t i = 0; i < n; ++i) {
      out[i] = offset + i < base_ ? std::byte{0} : data_[offset + i - base_];
    }
    return n;
  }

 private:
  std::span<const std::byte> data_;
  std::uint64_t base_;
};

}  // namespace

struct Store::Impl {
  Options opt;
  Env* env = nullptr;
  Reporter reporter;
  std::uint64_t segment_bytes = 0;  // effective roll size
  std::unique_ptr<FileLock> dir_lock;

  std::deque<Segment> segments;     // ascending; back() is the active one
  std::unique_ptr<WritableFile> active;
  log::Writer writer{0};
  log::Buffer pending;              // appended, not yet written to the active file
  std::uint64_t written = 0;        // bytes of the active file written and committed
  std::uint64_t synced = 0;         // bytes of the active file known synced
  bool needs_repair = false;        // a write or sync failed: cut back to `written` and rewrite
  bool dir_dirty = false;           // a segment was created and the directory not yet synced
  Clock::time_point last_sync = Clock::now();

  std::uint64_t appended = 0;       // tickets
  std::uint64_t committed = 0;

  ProducerTable producers;
  std::unique_ptr<WritableFile> pfile;  // PRODUCERS, open for appends once written
  log::Writer pwriter{0};
  bool pfile_stale = false;             // an append failed: rewrite it whole at the next chance

  Position cursor;
  Position persisted_cursor;
  Clock::time_point last_cursor_write{};  // the last attempt, successful or not
  // Batches acknowledged in the segment of the last acknowledged one (the rest of it is backlog).
  std::uint64_t acked_segment = 0;
  std::uint64_t acked_in_segment = 0;
  std::uint64_t acked_messages_in_segment = 0;
  std::uint64_t acked_bytes_in_segment = 0;

  // forward reader
  Position read_pos;
  std::uint64_t reader_segment = 0;
  std::unique_ptr<RandomAccessFile> reader_file;
  std::unique_ptr<log::Reader> reader;
  bool reader_at_end = false;
  std::uint64_t reader_limit = 0;   // the limit the reader was given
  std::optional<StoredRecord> lookahead;
  std::deque<InFlight> inflight;    // read, not yet acknowledged, in log order
  Position highest_read;            // the furthest StoredRecord::next handed out

  // read_at's readers: up to kPositionedReaders open at once so that that many groups reading at
  // their own pace each continue sequentially (a hit is a reader whose last record ended where the
  // caller asks); a miss (a redelivery, a group's first read) takes the least recently used slot.
  // A slot's 32 KiB block is allocated when it is first used.
  struct PositionedReader {
    std::uint64_t segment = 0;
    std::uint64_t next = 0;   // the offset after the last record returned
    std::uint64_t limit = 0;  // the limit the reader was given
    bool at_end = false;
    std::uint64_t used = 0;   // for least-recently-used replacement
    std::unique_ptr<RandomAccessFile> file;
    std::unique_ptr<log::Reader> reader;
  };
  static constexpr std::size_t kPositionedReaders = 32;
  std::array<PositionedReader, kPositionedReaders> preaders;
  std::uint64_t preader_clock = 0;
  // Per segment number: the end of the prefix whose fragments a read_at reader has checked
  // (log::Reader::set_verified), so that each record's checksum is computed once while the store
  // is open however many groups read it. Safe because those bytes came from the same file in this
  // process's life and the store never rewrites bytes below `written` or a closed segment's size
  // (a failed write is cut at `written`; recovery runs before any reader). Bytes not yet verified
  // (corruption since, the unread tail) are checked as before. Erased with the segment.
  std::unordered_map<std::uint64_t, std::uint64_t> verified;
  bool retention_mode = false;  // set_retention_floor was called: the cursor is the groups' floor
  std::vector<std::pair<std::uint64_t, DropListener>> drop_listeners;
  std::uint64_t next_listener_id = 1;

  bool recycling = false;  // in recycle_acked_active (its roll commits, which writes the cursor)
  bool full_flag = false;
  std::uint64_t full_need = 0;
  bool closed = false;
  bool failing = false;  // the last I/O failed (logged once)
  Stats st;

  std::string path(std::uint64_t number) const {
    return opt.dir + "/" + files::segment_name(number);
  }
  Segment* find(std::uint64_t number) {
    for (auto& s : segments) {
      if (s.number == number) return &s;
    }
    return nullptr;
  }
  // Segment bytes on disk: what the active segment has written, not its write buffer.
  std::uint64_t disk_bytes() const {
    std::uint64_t total = 0;
    for (const auto& s : segments) total += &s == &segments.back() ? written : s.size;
    return total;
  }
  // What max_bytes limits: the segment files with the bytes appended but not yet written.
  std::uint64_t reserved_bytes() const {
    std::uint64_t total = 0;
    for (const auto& s : segments) total += s.size;
    return total;
  }
  void report(const std::string& file, const log::Corruption& c) {
    ++st.corrupt_skipped;
    CorruptRecord r{file, c.offset, c.bytes, c.reason};
    if (reporter) {
      reporter(r);
    } else {
      spdlog::warn("spool: corrupt record skipped in {} at offset {} ({} bytes): {}", r.file,
                   r.offset, r.bytes, r.reason);
    }
  }
  // One log line when the disk starts failing, one when it works again (not one per retry).
  Status io_failed(Status s) {
    ++st.io_errors;
    if (!failing) {
      spdlog::error("spool: {} (acknowledgements held until the disk recovers)", s.to_string());
      failing = true;
    }
    return s;
  }
  void io_recovered() {
    if (failing) spdlog::info("spool: {} writable again", opt.dir);
    failing = false;
  }

  Status open_dir();
  Status recover_segment(std::uint64_t number, bool last);
  Status start_segment(std::uint64_t number);
  Status roll();
  bool move_pending_to_new_segment();
  bool recycle_acked_active();
  Status write_pending();
  Status sync_active();
  Status commit();
  Status write_cursor();
  Status maybe_write_cursor();
  Status delete_acked_segments();
  Status read_producers_file();
  Status rewrite_producers_file();
  Status retire_producers(std::uint64_t below);
  Status drop_front_segment();
  Status make_room(std::uint64_t need);
  Status enforce_age(std::uint64_t now);
  bool over_age(std::uint64_t now);
  std::uint64_t acked_in(const Segment& s) const {
    return s.number == acked_segment ? acked_in_segment : 0;
  }
  std::optional<std::uint64_t> oldest_unacked_arrival();
  Result<AppendResult> append(std::span<const std::byte> frame, const RecordMeta& meta);
  Result<std::optional<StoredRecord>> read_raw();
  Result<std::optional<StoredRecord>> read_next();
  Status advance(Position next);
  void reset_reader();
  Result<std::optional<StoredRecord>> read_at(Position p);
  Position end() const {
    return {segments.back().number,
            std::max<std::uint64_t>(written, format::kSegmentHeaderSize)};
  }
  const Segment* segment_at_or_after(std::uint64_t number) const {
    auto it = std::lower_bound(segments.begin(), segments.end(), number,
                               [](const Segment& s, std::uint64_t n) { return s.number < n; });
    return it == segments.end() ? nullptr : &*it;
  }
  void forget_readers(std::uint64_t number) {
    verified.erase(number);
    for (auto& r : preaders) {
      if (r.reader && r.segment == number) {
        r.reader.reset();
        r.file.reset();
        r.used = 0;  // free: taken first
      }
    }
  }
  // Scans segment `number` between the header and `limit`, calling f(offset, view) per batch
  // record until f returns false.
  template <class F>
  Status scan_segment(std::uint64_t number, std::uint64_t limit, F&& f);
  Status set_retention_floor(Position p);
};

// ---- recovery ------------------------------------------------------------------------------

Status Store::Impl::open_dir() {
  if (!env->exists(opt.dir)) {
    if (!opt.create_if_missing) return Status::not_found("spool directory " + opt.dir + " missing");
    if (Status s = env->create_dir(opt.dir); !s) return s;
  }
  auto lock = env->lock(opt.dir + "/" + format::kLockName);
  if (!lock) return lock.status();
  dir_lock = std::move(lock.value());
  (void)env->remove(opt.dir + "/" + format::kCursorTempName);

  auto numbers = files::list_segments(*env, opt.dir);
  if (!numbers) return numbers.status();

  auto c = files::read_cursor(*env, opt.dir);
  if (c) {
    cursor = c.value();
  } else if (c.status().code() != Code::kNotFound) {
    report(format::kCursorName, {0, format::kCursorFileSize,
                                 c.status().message() + "; reading from the oldest segment"});
  }
  // Segments wholly before the cursor were acknowledged; a crash left them behind.
  for (std::uint64_t n : numbers.value()) {
    if (n < cursor.segment) (void)env->remove(path(n));
  }
  std::erase_if(numbers.value(), [&](std::uint64_t n) { return n < cursor.segment; });

  if (Status s = read_producers_file(); !s) return s;
  for (std::size_t i = 0; i < numbers.value().size(); ++i) {
    const std::uint64_t number = numbers.value()[i];
    if (i > 0 && number != numbers.value()[i - 1] + 1) {
      // Numbers are consecutive by construction: a hole is a file lost outside the spool.
      report(files::segment_name(numbers.value()[i - 1] + 1),
             {0, 0, "segment file missing (up to " + files::segment_name(number - 1) + ")"});
    }
    if (Status s = recover_segment(number, i + 1 == numbers.value().size()); !s) return s;
  }
  // A new active segment when there is none, the last one is unreadable, or all were acked.
  if (!active || cursor.segment > segments.back().number) {
    std::uint64_t next = std::max<std::uint64_t>(
        {segments.empty() ? 1 : segments.back().number + 1, cursor.segment, 1});
    if (Status s = start_segment(next); !s) return s;
    if (Status s = commit(); !s) return s;
  }
  if (cursor.segment < segments.front().number) {
    cursor = {segments.front().number, format::kSegmentHeaderSize};
  }
  if (Segment* cs = find(cursor.segment)) {
    cursor.offset = std::clamp<std::uint64_t>(cursor.offset, format::kSegmentHeaderSize, cs->size);
  }
  persisted_cursor = cursor;
  if (c && cursor < c.value()) {
    // The cursor file outlived the unsynced end of the log it points into: new records will
    // take those offsets, so the old cursor must not be read again after the next restart.
    if (Status s = write_cursor(); !s) return s;
  }
  read_pos = highest_read = cursor;
  if (env->exists(opt.dir + "/" + format::kProducersName)) {
    // Compacted once per open; a failure (a full disk) only postpones it: the old file stays.
    if (Status s = rewrite_producers_file(); !s) pfile_stale = true;
  }
  return {};
}

// The PRODUCERS file: entries of producers whose segments were deleted (log_format.hpp). Damage
// is reported and skipped like a segment's; the file is rewritten after recovery.
Status Store::Impl::read_producers_file() {
  const std::string path = opt.dir + "/" + format::kProducersName;
  if (!env->exists(path)) return {};
  auto size = env->file_size(path);
  if (!size) return size.status();
  auto file = env->open_readable(path);
  if (!file) return file.status();
  auto header = log::read_segment_header(*file.value());
  if (!header) return header.status();
  auto hdr = log::decode_segment_header(header.value());
  if (!hdr || hdr.value() != 0) {
    report(format::kProducersName, {0, size.value(), "bad header; file ignored"});
    return {};
  }
  log::Reader scan(*file.value(), format::kSegmentHeaderSize, size.value(),
                   [&](const log::Corruption& c) { report(format::kProducersName, c); });
  std::span<const std::byte> rec;
  while (true) {
    auto got = scan.next(rec);
    if (!got) return got.status();
    if (!got.value()) return {};
    auto v = log::decode_record(rec);
    if (!v || !v.value().is_producers()) {
      report(format::kProducersName, {scan.record_offset(), scan.record_end() - scan.record_offset(),
                                      v ? "not a producers record" : v.status().message()});
      continue;
    }
    for (std::uint32_t i = 0; i < v.value().header.count; ++i) {
      const log::ProducerEntry e = log::producer_entry(v.value(), i);
      producers.set({e.scope, e.producer}, e.seq, 0);
    }
  }
}

// Writes the entries the PRODUCERS file must hold to PRODUCERS.tmp, syncs it and renames it over
// PRODUCERS; the file then stays open for appends.
Status Store::Impl::rewrite_producers_file() {
  const bool sync = opt.fsync.mode != FsyncPolicy::Mode::kNever;
  const std::string tmp = opt.dir + "/" + format::kProducersTempName;
  pfile.reset();
  auto f = env->new_writable(tmp);
  if (!f) return io_failed(f.status());
  log::Buffer buf;
  auto header = log::encode_segment_header(0);
  std::memcpy(buf.grow(header.size()), header.data(), header.size());
  pwriter.reset(header.size());
  const auto entries = producers.idle();
  log::add_producers(pwriter, entries, now_ns(), buf);
  Status s = f.value()->append(buf.bytes());
  if (s && sync) s = f.value()->sync();
  if (s) s = env->rename(tmp, opt.dir + "/" + format::kProducersName);
  if (s && sync) s = env->sync_dir(opt.dir);
  if (!s) {
    (void)env->remove(tmp);
    return io_failed(s);
  }
  pfile = std::move(f.value());
  pfile_stale = false;
  return {};
}

// Before segments below `below` are removed: the producers last seen in them go to the PRODUCERS
// file (appended and synced), so that duplicates are still recognised after a restart. When that
// fails the segments are removed all the same (space first: a full disk must be left); the file is
// rewritten at the next deletion, and a crash before then may store a resend of those producers
// again (a duplicate downstream, never a loss).
Status Store::Impl::retire_producers(std::uint64_t below) {
  std::size_t idle = 0;
  const auto entries = producers.retire(below, idle);
  if (entries.empty() && !pfile_stale) return {};
  const std::uint64_t live = format::kSegmentHeaderSize + idle * format::kScopedProducerEntrySize;
  if (!pfile || pfile_stale || pfile->size() > 2 * live + (std::uint64_t{64} << 10)) {
    return rewrite_producers_file();
  }
  log::Buffer buf;
  pwriter.reset(pfile->size());
  log::add_producers(pwriter, entries, now_ns(), buf);
  Status s = pfile->append(buf.bytes());
  if (s && opt.fsync.mode != FsyncPolicy::Mode::kNever) s = pfile->sync();
  if (!s) {
    pfile_stale = true;
    return io_failed(s);
  }
  return {};
}

// Scans one segment: counts, producers' highest seq, acknowledged prefix; the last one has its
// torn tail cut and becomes the active segment.
Status Store::Impl::recover_segment(std::uint64_t number, bool last) {
  const std::string name = files::segment_name(number);
  auto size = env->file_size(path(number));
  if (!size) return size.status();
  auto file = env->open_readable(path(number));
  if (!file) return file.status();

  auto read = log::read_segment_header(*file.value());
  if (!read) return read.status();
  const std::vector<std::byte>& header = read.value();
  auto hdr = log::decode_segment_header(header);
  if (hdr && hdr.value() != number) {
    hdr = Status::corruption("segment header names segment " + std::to_string(hdr.value()));
  }
  if (!hdr) {
    bool torn = header.size() < format::kSegmentHeaderSize ||
                std::all_of(header.begin(), header.end(), [](std::byte b) { return b == std::byte{0}; });
    if (last && torn) {
      // Created just before a crash: nothing in it was ever committed.
      file.value().reset();
      return env->remove(path(number));
    }
    report(name, {0, size.value(), hdr.status().message() + "; file skipped"});
    segments.push_back({number, size.value(), 0, 0, 0, 0, 0});
    return {};
  }

  Segment seg{number, size.value(), 0, 0, 0, 0, 0};
  std::uint64_t good_end = format::kSegmentHeaderSize;
  log::Reader scan(*file.value(), format::kSegmentHeaderSize, size.value(),
                     [&](const log::Corruption& c) { report(name, c); });
  std::span<const std::byte> rec;
  while (true) {
    auto got = scan.next(rec);
    if (!got) return got.status();
    if (!got.value()) break;
    good_end = scan.record_end();
    auto v = log::decode_record(rec);
    if (!v) {
      report(name, {scan.record_offset(), scan.record_end() - scan.record_offset(),
                    v.status().message()});
      continue;
    }
    const auto& h = v.value().header;
    // The last mention of a producer in log order is its current highest seq (a seq far below it
    // restarted the producer's sequence, see append()).
    if (v.value().is_producers()) {  // version 0.1's snapshot at the start of each segment
      for (std::uint32_t i = 0; i < h.count; ++i) {
        const log::ProducerEntry e = log::producer_entry(v.value(), i);
        producers.set({e.scope, e.producer}, e.seq, number);
      }
      continue;
    }
    if (v.value().scope != kNoDedupe) producers.set({v.value().scope, h.producer_id}, h.seq, number);
    if (seg.batches == 0) seg.first_arrival = h.arrival_ns;
    seg.last_arrival = h.arrival_ns;
    ++seg.batches;
    seg.messages += h.count;
    seg.bytes += v.value().body.size();
    if (number == cursor.segment && scan.record_offset() < cursor.offset) {
      acked_segment = number;
      ++acked_in_segment;
      acked_messages_in_segment += h.count;
      acked_bytes_in_segment += v.value().body.size();
      continue;
    }
    ++st.backlog_batches;
    st.backlog_messages += h.count;
    st.backlog_bytes += v.value().body.size();
  }
  file.value().reset();

  if (!last) {
    segments.push_back(seg);
    return {};
  }
  auto w = env->reopen_writable(path(number));
  if (!w) return w.status();
  if (good_end < size.value()) {
    spdlog::info("spool: truncating torn tail of {} from {} to {} bytes", name, size.value(),
                 good_end);
    if (Status s = w.value()->truncate(good_end); !s) return s;
    if (opt.fsync.mode != FsyncPolicy::Mode::kNever) {
      if (Status s = w.value()->sync(); !s) return s;
    }
    seg.size = good_end;
  }
  active = std::move(w.value());
  writer.reset(seg.size);
  written = synced = seg.size;
  segments.push_back(seg);
  return {};
}

// ---- writing -------------------------------------------------------------------------------

// Creates segment `number` as the active one; its header goes to pending.
Status Store::Impl::start_segment(std::uint64_t number) {
  auto f = env->new_writable(path(number));
  if (!f) return io_failed(f.status());
  if (active) (void)active->close();
  active = std::move(f.value());
  pending.clear();
  auto header = log::encode_segment_header(number);
  std::memcpy(pending.grow(header.size()), header.data(), header.size());
  writer.reset(header.size());
  written = synced = 0;
  needs_repair = false;
  dir_dirty = true;
  segments.push_back({number, writer.offset(), 0, 0, 0, 0, 0});
  return {};
}

// After a failed write (ENOSPC above all): the records in the write buffer go to a new segment, so
// that the committed part of the active one becomes a closed segment which acknowledgements delete.
// Without this a disk smaller than a segment stays full for good: the active segment is freed only
// by rolling, and it never fills to segment_bytes. Done only when the active segment holds
// committed records (else there is nothing to free). The AppendResult::position of a moved record
// is stale afterwards (its ticket is not). False when nothing was moved.
bool Store::Impl::move_pending_to_new_segment() {
  if (written <= format::kSegmentHeaderSize || pending.size() == 0) return false;
  const std::uint64_t old_number = segments.back().number;
  // Cut what the failed write left (that frees it) and make the committed part durable first:
  // the new segment must not become durable before the end of this one.
  if (!active->truncate(written)) return false;
  needs_repair = false;
  synced = std::min(synced, written);
  if (opt.fsync.mode != FsyncPolicy::Mode::kNever && synced < written && !sync_active()) {
    return false;
  }
  log::Buffer moved;
  std::swap(moved, pending);
  const std::uint64_t moved_end = writer.offset();
  const std::uint64_t old_written = written;
  if (!start_segment(old_number + 1)) {
    std::swap(moved, pending);  // stays in the old segment, as if nothing happened
    writer.reset(moved_end);
    written = synced = old_written;
    return false;
  }
  Segment& fresh = segments.back();
  Segment& old = segments[segments.size() - 2];
  old.size = old_written;
  MemoryFile file(moved.bytes(), old.size);
  log::Reader scan(file, old.size, old.size + moved.size(), {});
  std::span<const std::byte> rec;
  for (auto got = scan.next(rec); got && got.value(); got = scan.next(rec)) {
    auto v = log::decode_record(rec);
    if (!v) continue;  // cannot happen: the writer framed it
    writer.add(v.value().header, rec.subspan(format::kRecordHeaderSize), pending);
    if (!v.value().is_batch()) continue;
    const auto& h = v.value().header;
    old.batches -= 1;
    old.messages -= h.count;
    old.bytes -= v.value().body.size();
    if (fresh.batches == 0) fresh.first_arrival = h.arrival_ns;
    fresh.last_arrival = h.arrival_ns;
    ++fresh.batches;
    fresh.messages += h.count;
    fresh.bytes += v.value().body.size();
  }
  fresh.size = writer.offset();
  spdlog::info("spool: write failed; {} records moved to {} so that {} can be freed once "
               "acknowledged", fresh.batches, files::segment_name(fresh.number),
               files::segment_name(old.number));
  // The committed part may be acknowledged already: delete it now, and write the cursor while
  // the cut freed some space.
  (void)delete_acked_segments();
  if (cursor != persisted_cursor) (void)write_cursor();
  return true;
}

// Under pressure (full, or the disk failing) a wholly acknowledged active segment is rolled and
// deleted: it is the only space left to free. True when it was.
bool Store::Impl::recycle_acked_active() {
  const Segment& back = segments.back();
  if (recycling || segments.size() != 1 || back.batches == 0 || cursor.segment != back.number ||
      cursor.offset < back.size) {
    return false;
  }
  recycling = true;
  const bool rolled = static_cast<bool>(roll());
  recycling = false;
  if (!rolled) return false;
  cursor = {segments.back().number, format::kSegmentHeaderSize};
  read_pos = std::max(read_pos, cursor);
  highest_read = std::max(highest_read, cursor);
  (void)delete_acked_segments();
  return true;
}

Status Store::Impl::roll() {
  if (Status s = commit(); !s) return s;
  if (opt.fsync.mode != FsyncPolicy::Mode::kNever && synced < written) {
    // The next segment must not become durable before the end of this one.
    if (Status s = sync_active(); !s) return s;
  }
  return start_segment(segments.back().number + 1);
}

Status Store::Impl::write_pending() {
  if (needs_repair) {
    if (Status s = active->truncate(written); !s) return io_failed(s);
    synced = std::min(synced, written);
    needs_repair = false;
  }
  if (pending.size() == 0) return {};
  if (Status s = active->append(pending.bytes()); !s) {
    needs_repair = true;  // a prefix of pending may be in the file
    return io_failed(s);
  }
  return {};
}

Status Store::Impl::sync_active() {
  auto t0 = Clock::now();
  if (Status s = active->sync(); !s) return io_failed(s);
  if (dir_dirty) {
    if (Status s = env->sync_dir(opt.dir); !s) return io_failed(s);
    dir_dirty = false;
  }
  auto ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
  ++st.fsyncs;
  st.fsync_ns_total += ns;
  st.fsync_ns_max = std::max(st.fsync_ns_max, ns);
  st.fsync_latency.record(ns);
  last_sync = Clock::now();
  synced = active->size();
  return {};
}

Status Store::Impl::commit() {
  const bool always = opt.fsync.mode == FsyncPolicy::Mode::kAlways;
  if (pending.size() > 0 || needs_repair) {
    Status w = write_pending();
    if (!w && move_pending_to_new_segment()) w = write_pending();
    if (!w) {
      (void)maybe_write_cursor();  // it needs little space, and a restart would resend more
      return w;
    }
    if (always) {
      if (Status s = sync_active(); !s) {
        needs_repair = true;  // rewrite everything since the last good sync: the page cache may
        return s;             // have dropped the failed pages
      }
    }
    written += pending.size();
    pending.clear();
    io_recovered();
    if (pending.capacity() > kKeepBufferBytes) pending.release();  // after a huge group
    committed = appended;
  }
  if (opt.fsync.mode == FsyncPolicy::Mode::kInterval && synced < written &&
      Clock::now() - last_sync >= opt.fsync.interval) {
    if (Status s = sync_active(); !s) return s;
  }
  // The batches are committed whatever happens to the cursor and PRODUCERS files: a failure there
  // only means a crash would resend more (logged; retried at the next commit, see next_sync_due).
  (void)maybe_write_cursor();
  if (pfile_stale && Clock::now() - last_cursor_write >= opt.cursor_interval) {
    last_cursor_write = Clock::now();
    (void)rewrite_producers_file();
  }
  return {};
}

// ---- cursor --------------------------------------------------------------------------------

Status Store::Impl::write_cursor() {
  const bool sync = opt.fsync.mode != FsyncPolicy::Mode::kNever;
  const std::string tmp = opt.dir + "/" + format::kCursorTempName;
  auto f = env->new_writable(tmp);
  if (!f) return io_failed(f.status());
  auto bytes = files::encode_cursor(cursor);
  Status s = f.value()->append(bytes);
  if (s && sync) s = f.value()->sync();
  if (s) s = f.value()->close();
  if (s) s = env->rename(tmp, opt.dir + "/" + format::kCursorName);
  if (s && sync) s = env->sync_dir(opt.dir);
  last_cursor_write = Clock::now();
  if (!s) {
    (void)env->remove(tmp);  // a partial CURSOR.tmp holds space the retry needs
    return io_failed(s);
  }
  persisted_cursor = cursor;
  return {};
}

Status Store::Impl::maybe_write_cursor() {
  if (cursor == persisted_cursor || Clock::now() - last_cursor_write < opt.cursor_interval) {
    return {};
  }
  Status s = write_cursor();
  if (!s && recycle_acked_active() && cursor != persisted_cursor) s = write_cursor();
  return s;
}

Status Store::Impl::delete_acked_segments() {
  // A closed segment whose end the cursor reached is wholly acknowledged.
  while (segments.size() > 1 && cursor.segment == segments.front().number &&
         cursor.offset >= segments.front().size) {
    cursor = {segments[1].number, format::kSegmentHeaderSize};
  }
  Status result;
  if (segments.size() > 1 && segments.front().number < cursor.segment) {
    std::uint64_t keep = segments.back().number;
    for (const auto& s : segments) {
      if (s.number >= cursor.segment) {
        keep = s.number;
        break;
      }
    }
    result = retire_producers(keep);
  }
  while (segments.size() > 1 && segments.front().number < cursor.segment) {
    const std::uint64_t number = segments.front().number;
    if (reader_segment == number) reset_reader();
    forget_readers(number);
    if (retention_mode) {
      // The groups' floor passed the segment: it leaves the backlog whole (the backlog figures
      // move a segment at a time in this mode; the groups count their own lag exactly).
      const Segment& f = segments.front();
      const bool partly = f.number == acked_segment;
      st.backlog_batches -= std::min(st.backlog_batches, f.batches - acked_in(f));
      st.backlog_messages -= std::min(st.backlog_messages,
                                      f.messages - (partly ? acked_messages_in_segment : 0));
      st.backlog_bytes -= std::min(st.backlog_bytes, f.bytes - (partly ? acked_bytes_in_segment : 0));
      if (partly) acked_in_segment = acked_messages_in_segment = acked_bytes_in_segment = 0;
    }
    segments.pop_front();
    if (Status s = env->remove(path(number)); !s && s.code() != Code::kNotFound) {
      result = io_failed(s);  // an orphan file; recovery removes it (it is before the cursor)
    }
  }
  // On a full disk the PRODUCERS append fails until the segments are gone: try again now.
  if (pfile_stale && rewrite_producers_file()) result = {};
  return result;
}

// ---- limits --------------------------------------------------------------------------------

Status Store::Impl::drop_front_segment() {
  Segment& front = segments.front();
  const bool partly_acked = front.number == acked_segment;
  const std::uint64_t lost = front.batches - acked_in(front);
  const std::uint64_t lost_messages = front.messages - (partly_acked ? acked_messages_in_segment : 0);
  const std::uint64_t lost_bytes = front.bytes - (partly_acked ? acked_bytes_in_segment : 0);
  st.dropped_batches += lost;
  st.dropped_messages += lost_messages;
  st.backlog_batches -= std::min(st.backlog_batches, lost);
  st.backlog_messages -= std::min(st.backlog_messages, lost_messages);
  st.backlog_bytes -= std::min(st.backlog_bytes, lost_bytes);
  spdlog::warn("spool: dropping {} ({} unforwarded batches, {} messages) to stay within limits",
               files::segment_name(front.number), lost, lost_messages);
  const DroppedSegment dropped{front.number, front.batches, front.messages,
                               {segments[1].number, format::kSegmentHeaderSize}};
  for (const auto& [id, listener] : drop_listeners) listener(dropped);
  if (front.number == acked_segment) {
    acked_in_segment = acked_messages_in_segment = acked_bytes_in_segment = 0;
  }
  // Counted as lost above: the retention accounting in delete_acked_segments must not count it.
  front.batches = front.messages = front.bytes = 0;
  std::erase_if(inflight, [&](const InFlight& f) { return f.next.segment == front.number; });
  cursor = {segments[1].number, format::kSegmentHeaderSize};
  if (read_pos < cursor) {
    read_pos = cursor;
    reset_reader();
  }
  highest_read = std::max(highest_read, cursor);
  return delete_acked_segments();
}

Status Store::Impl::make_room(std::uint64_t need) {
  if (opt.max_bytes == 0) return {};
  if (need > opt.max_bytes) {
    return Status::limit_exceeded("batch of " + std::to_string(need) +
                                  " bytes is larger than max-bytes " + std::to_string(opt.max_bytes));
  }
  if (reserved_bytes() + need <= opt.max_bytes) return {};
  if (opt.when_full == WhenFull::kBlock) {
    full_flag = true;
    full_need = need;
    ++st.rejected_full;
    return Status::limit_exceeded("spool full: " + std::to_string(reserved_bytes()) + " of " +
                                  std::to_string(opt.max_bytes) + " bytes used");
  }
  while (reserved_bytes() + need > opt.max_bytes) {
    if (segments.size() == 1) {
      if (segments.back().batches == 0) break;
      if (Status s = roll(); !s) return s;
    }
    if (Status s = drop_front_segment(); !s) return s;
  }
  return {};
}

std::optional<std::uint64_t> Store::Impl::oldest_unacked_arrival() {
  if (!inflight.empty()) return inflight.front().arrival;
  if (retention_mode) {
    // The oldest record at or after the groups' floor.
    if (lookahead && lookahead->position < cursor) lookahead.reset();
    if (!lookahead) {
      if (read_pos < cursor) {
        read_pos = cursor;
        reset_reader();
      }
      auto r = read_raw();
      if (r && r.value()) lookahead = *r.value();
    }
    if (lookahead) return lookahead->meta.arrival_ns;
    return std::nullopt;
  }
  if (st.backlog_batches == 0) return std::nullopt;
  // Nothing in flight: every batch read so far was acknowledged, so the next unread one is oldest.
  if (!lookahead) {
    auto r = read_raw();
    if (r && r.value()) lookahead = *r.value();
  }
  if (lookahead && lookahead->position >= cursor) return lookahead->meta.arrival_ns;
  for (const auto& s : segments) {  // not readable yet: the segment's first arrival bounds it
    if (s.batches > acked_in(s)) return s.first_arrival;
  }
  return std::nullopt;
}

Status Store::Impl::enforce_age(std::uint64_t now) {
  if (opt.max_age.count() <= 0) return {};
  const auto max_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(opt.max_age).count());
  auto too_old = [&](const Segment& s) {
    return s.batches > acked_in(s) && s.last_arrival + max_ns < now;
  };
  if (segments.size() == 1 && too_old(segments.back())) {
    if (Status s = roll(); !s) return s;
  }
  while (segments.size() > 1 && too_old(segments.front())) {
    if (Status s = drop_front_segment(); !s) return s;
  }
  return {};
}

bool Store::Impl::over_age(std::uint64_t now) {
  if (opt.max_age.count() <= 0) return false;
  auto oldest = oldest_unacked_arrival();
  const auto max_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(opt.max_age).count());
  return oldest && *oldest + max_ns < now;
}

// ---- append / read / ack -------------------------------------------------------------------

Result<AppendResult> Store::Impl::append(std::span<const std::byte> frame, const RecordMeta& meta) {
  if (closed) throw std::invalid_argument("zkit::spool::Store used after close()");
  if (frame.size() > opt.max_frame_bytes) {
    return Status::limit_exceeded("batch frame of " + std::to_string(frame.size()) +
                                  " bytes is over the limit of " +
                                  std::to_string(opt.max_frame_bytes));
  }
  // A duplicate is a seq at most duplicate_window below the highest stored in its (scope,
  // producer): a resend. A seq further below restarts the producer's sequence, so that one forged
  // high seq cannot make the real producer's batches look like duplicates (docs/spool.md).
  const ProducerKey key{meta.scope, meta.producer_id};
  const bool dedupe = meta.scope != kNoDedupe;
  bool restart = false;
  if (const ProducerTable::Entry* e = dedupe ? producers.find(key) : nullptr;
      e && meta.seq <= e->seq) {
    if (e->seq - meta.seq < opt.duplicate_window) {
      ++st.duplicates;
      return AppendResult{AppendResult::Outcome::kDuplicate, appended, {}};
    }
    restart = true;
  }
  const std::uint64_t need = log::max_framed_size(frame.size() + format::kScopeSize);
  const std::uint64_t now = meta.arrival_ns;
  if (opt.max_age.count() > 0) {
    if (opt.when_full == WhenFull::kDropOldest) {
      if (Status s = enforce_age(now); !s) return s;
    } else if (over_age(now)) {
      full_flag = true;
      full_need = 0;
      ++st.rejected_full;
      return Status::limit_exceeded("spool full: oldest unforwarded batch is older than max-age");
    }
  }
  if (Status s = make_room(need); !s) return s;
  Segment* seg = &segments.back();
  if (seg->batches > 0 && seg->size + need > segment_bytes) {
    if (Status s = roll(); !s) return s;
    seg = &segments.back();
  }
  // Scope 0 keeps the version-0.1 record kind; any other scope is written before the frame.
  log::RecordHeader h{meta.scope == 0 ? format::kBatch : format::kScopedBatch, meta.message_count,
                      meta.producer_id, meta.seq, meta.arrival_ns};
  std::byte scope[format::kScopeSize];
  format::put_u64(scope, meta.scope);
  std::uint64_t before = writer.offset();
  writer.add(h, meta.scope == 0 ? std::span<const std::byte>() : std::span<const std::byte>(scope),
             frame, pending);
  std::uint64_t start = before;
  if (format::kBlockSize - before % format::kBlockSize < format::kFragmentHeaderSize) {
    start = before + (format::kBlockSize - before % format::kBlockSize);
  }
  seg->size = writer.offset();
  if (seg->batches == 0) seg->first_arrival = meta.arrival_ns;
  seg->last_arrival = meta.arrival_ns;
  ++seg->batches;
  seg->messages += meta.message_count;
  seg->bytes += frame.size();
  if (dedupe) producers.set(key, meta.seq, seg->number);
  if (restart) ++st.seq_restarts;
  ++st.stored;
  st.stored_messages += meta.message_count;
  ++st.backlog_batches;
  st.backlog_messages += meta.message_count;
  st.backlog_bytes += frame.size();
  return AppendResult{AppendResult::Outcome::kStored, ++appended, {seg->number, start}};
}

void Store::Impl::reset_reader() {
  if (lookahead) read_pos = std::min(read_pos, lookahead->position);  // read it again
  reader.reset();
  reader_file.reset();
  reader_at_end = false;
  lookahead.reset();
}

Result<std::optional<StoredRecord>> Store::Impl::read_next() {
  std::optional<StoredRecord> r;
  if (lookahead) {
    r = lookahead;
    lookahead.reset();
  } else {
    auto got = read_raw();
    if (!got) return got;
    r = got.value();
  }
  if (!r) return r;
  ++st.forwarded;
  // After rewind() records are read again; each is in flight once.
  if (inflight.empty() || inflight.back().next < r->next) {
    inflight.push_back({r->next, r->meta.message_count, r->frame.size(), r->meta.arrival_ns});
  }
  highest_read = std::max(highest_read, r->next);
  return r;
}

Result<std::optional<StoredRecord>> Store::Impl::read_raw() {
  while (true) {
    // The segment holding read_pos, or the next one after it.
    const Segment* seg = nullptr;
    for (const auto& s : segments) {
      if (s.number >= read_pos.segment) {
        seg = &s;
        break;
      }
    }
    if (seg == nullptr) return std::optional<StoredRecord>();
    if (seg->number != read_pos.segment) {
      read_pos = {seg->number, format::kSegmentHeaderSize};
      reader.reset();
    }
    const bool is_active = seg == &segments.back();
    const std::uint64_t limit = is_active ? written : seg->size;
    const std::string name = files::segment_name(seg->number);
    if (!reader || reader_segment != seg->number) {
      reader.reset();
      auto f = env->open_readable(path(seg->number));
      if (!f) return f.status();
      reader_file = std::move(f.value());
      reader_segment = seg->number;
      reader = std::make_unique<log::Reader>(
          *reader_file, read_pos.offset, limit, [name](const log::Corruption& c) {
            // Recovery counted what was corrupt on open; this is a re-read or new damage.
            spdlog::debug("spool: reader skips corrupt bytes in {} at {}: {}", name, c.offset,
                          c.reason);
          });
      reader_at_end = false;
      reader_limit = limit;
    } else if (reader_at_end && limit > reader_limit) {
      reader->seek(read_pos.offset, limit);  // the active segment grew since the reader ended
      reader_at_end = false;
      reader_limit = limit;
    }
    std::span<const std::byte> rec;
    auto got = reader->next(rec);
    if (!got) return got.status();
    if (!got.value()) {
      reader_at_end = true;
      if (is_active) {
        if (written > reader_limit) continue;
        return std::optional<StoredRecord>();
      }
      // A reader made while this segment was active stops at its end then; the re-seek above
      // reads what was appended after it before moving on.
      if (limit > reader_limit) continue;
      read_pos = {seg->number + 1, format::kSegmentHeaderSize};
      continue;
    }
    read_pos = {seg->number, reader->record_end()};
    auto v = log::decode_record(rec);
    if (!v || !v.value().is_batch()) continue;
    const auto& h = v.value().header;
    return std::optional<StoredRecord>(StoredRecord{
        {seg->number, reader->record_offset()},
        read_pos,
        {h.producer_id, h.seq, h.arrival_ns, h.count, v.value().scope},
        v.value().body});
  }
}

Status Store::Impl::advance(Position next) {
  if (next <= cursor) return {};
  if (next > highest_read) {
    throw std::invalid_argument("zkit::spool::Store::advance_cursor past what was read: " +
                                next.to_string() + " > " + highest_read.to_string());
  }
  while (!inflight.empty() && inflight.front().next <= next) {
    const InFlight& f = inflight.front();
    ++st.acked;
    st.acked_messages += f.messages;
    st.backlog_batches -= std::min<std::uint64_t>(st.backlog_batches, 1);
    st.backlog_messages -= std::min<std::uint64_t>(st.backlog_messages, f.messages);
    st.backlog_bytes -= std::min(st.backlog_bytes, f.bytes);
    if (f.next.segment != acked_segment) {
      acked_segment = f.next.segment;
      acked_in_segment = acked_messages_in_segment = acked_bytes_in_segment = 0;
    }
    ++acked_in_segment;
    acked_messages_in_segment += f.messages;
    acked_bytes_in_segment += f.bytes;
    inflight.pop_front();
  }
  cursor = next;
  if (read_pos < cursor) {
    read_pos = cursor;
    reset_reader();
  }
  Status s = delete_acked_segments();
  // At a byte limit or on a failing disk, with everything acknowledged, the active segment itself
  // must go (whatever segment_bytes and max_bytes are).
  if (full_flag || failing) (void)recycle_acked_active();
  if (Status w = maybe_write_cursor(); !w && s) s = w;
  return s;
}


// ---- many readers --------------------------------------------------------------------------

Result<std::optional<StoredRecord>> Store::Impl::read_at(Position p) {
  if (closed) throw std::invalid_argument("zkit::spool::Store used after close()");
  while (true) {
    const Segment* seg = segment_at_or_after(p.segment);
    if (seg == nullptr) return std::optional<StoredRecord>();
    if (seg->number != p.segment || p.offset < format::kSegmentHeaderSize) {
      p = {seg->number, std::max<std::uint64_t>(seg->number == p.segment ? p.offset : 0,
                                                format::kSegmentHeaderSize)};
    }
    const bool is_active = seg == &segments.back();
    const std::uint64_t limit = is_active ? written : seg->size;
    if (p.offset >= limit) {
      if (is_active) return std::optional<StoredRecord>();
      p = {seg->number + 1, format::kSegmentHeaderSize};
      continue;
    }
    // A reader that stopped where p is, else the least recently used slot gets a new one (taking
    // another group's reader on the same segment instead would make that group miss in turn).
    PositionedReader* r = nullptr;
    for (auto& c : preaders) {
      if (c.reader && c.segment == seg->number && c.next == p.offset) {
        r = &c;
        break;
      }
    }
    if (r == nullptr) {
      r = &*std::min_element(preaders.begin(), preaders.end(),
                             [](const PositionedReader& a, const PositionedReader& b) {
                               return a.used < b.used;
                             });
      r->reader.reset();
      auto f = env->open_readable(path(seg->number));
      if (!f) return f.status();
      r->file = std::move(f.value());
      const std::string name = files::segment_name(seg->number);
      r->reader = std::make_unique<log::Reader>(
          *r->file, p.offset, limit, [name](const log::Corruption& c) {
            // Recovery counted what was corrupt on open; this is a re-read or new damage.
            spdlog::debug("spool: reader skips corrupt bytes in {} at {}: {}", name, c.offset,
                          c.reason);
          });
      r->segment = seg->number;
      r->limit = limit;
      r->at_end = false;
    } else if (r->at_end || r->limit != limit || r->next != p.offset) {
      r->reader->seek(p.offset, limit, /*at_boundary=*/r->next == p.offset);
      r->limit = limit;
      r->at_end = false;
    }
    r->used = ++preader_clock;
    std::span<const std::byte> rec;
    std::uint64_t& done = verified[seg->number];
    r->reader->set_verified(std::max<std::uint64_t>(done, format::kSegmentHeaderSize));
    auto got = r->reader->next(rec);
    done = std::max(done, r->reader->verified());
    if (!got) {
      r->reader.reset();
      r->file.reset();
      return got.status();
    }
    if (!got.value()) {
      r->at_end = true;
      r->next = p.offset;
      if (is_active) return std::optional<StoredRecord>();
      p = {seg->number + 1, format::kSegmentHeaderSize};
      continue;
    }
    r->next = r->reader->record_end();
    auto v = log::decode_record(rec);
    if (!v || !v.value().is_batch()) {
      p = {seg->number, r->next};
      continue;
    }
    const auto& h = v.value().header;
    return std::optional<StoredRecord>(StoredRecord{
        {seg->number, r->reader->record_offset()},
        {seg->number, r->next},
        {h.producer_id, h.seq, h.arrival_ns, h.count, v.value().scope},
        v.value().body});
  }
}

template <class F>
Status Store::Impl::scan_segment(std::uint64_t number, std::uint64_t limit, F&& f) {
  auto file = env->open_readable(path(number));
  if (!file) return file.status();
  log::Reader scan(*file.value(), format::kSegmentHeaderSize, limit, {});
  std::span<const std::byte> rec;
  while (true) {
    auto got = scan.next(rec);
    if (!got) return got.status();
    if (!got.value()) return {};
    auto v = log::decode_record(rec);
    if (!v || !v.value().is_batch()) continue;
    if (!f(scan.record_offset(), v.value())) return {};
  }
}

Status Store::Impl::set_retention_floor(Position p) {
  if (closed) throw std::invalid_argument("zkit::spool::Store used after close()");
  retention_mode = true;
  p = std::min(p, end());
  if (p <= cursor) return {};
  cursor = p;
  while (!inflight.empty() && inflight.front().next <= cursor) inflight.pop_front();
  highest_read = std::max(highest_read, cursor);
  if (read_pos < cursor) {
    read_pos = cursor;
    reset_reader();
  }
  Status s = delete_acked_segments();
  if (full_flag || failing) (void)recycle_acked_active();
  if (Status w = maybe_write_cursor(); !w && s) s = w;
  return s;
}

// ---- Store ---------------------------------------------------------------------------------

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;
Store::~Store() {
  if (impl_) {
    if (Status s = close(); !s) spdlog::error("spool: closing {}: {}", impl_->opt.dir, s.to_string());
  }
}

Result<Store> Store::open(Options options) {
  if (options.dir.empty()) return Status::invalid_argument("spool directory not set");
  if (options.segment_bytes < 64 * 1024) {
    return Status::invalid_argument("segment-bytes must be at least 64 KiB");
  }
  if (options.fsync.mode == FsyncPolicy::Mode::kInterval && options.fsync.interval.count() <= 0) {
    return Status::invalid_argument("fsync interval must be positive");
  }
  if (options.max_producers == 0) return Status::invalid_argument("max-producers must be at least 1");
  if (options.duplicate_window == 0) {
    return Status::invalid_argument("duplicate-window must be at least 1");
  }
  auto impl = std::make_unique<Impl>();
  impl->opt = std::move(options);
  impl->env = impl->opt.env ? impl->opt.env : &Env::posix();
  impl->reporter = impl->opt.reporter;
  impl->producers.max = impl->opt.max_producers;
  impl->segment_bytes = impl->opt.segment_bytes;
  if (impl->opt.max_bytes > 0) {
    // Space comes back a segment at a time, so a segment must be small beside the limit.
    impl->segment_bytes = std::clamp<std::uint64_t>(impl->opt.max_bytes / 4, 64 * 1024,
                                                    impl->segment_bytes);
  }
  if (Status s = impl->open_dir(); !s) return s;
  return Store(std::move(impl));
}

Result<AppendResult> Store::append(std::span<const std::byte> frame) {
  auto h = envelope::peek(frame);
  if (!h) return h.status();
  RecordMeta meta{h.value().producer_id, h.value().seq, envelope::unix_now_ns(),
                  h.value().record_count, 0};
  if (h.value().compression() != envelope::Compression::kNone) {
    // peek cannot count the records of a compressed batch; decode does (and checks the header
    // again, which is O(1)). The node never comes here: it passes the meta it decoded.
    auto batch = envelope::decode(frame);
    if (!batch) return batch.status();
    meta.message_count = static_cast<std::uint32_t>(batch.value().size());
  }
  return impl_->append(frame, meta);
}

Result<AppendResult> Store::append(std::span<const std::byte> frame, const RecordMeta& meta) {
  return impl_->append(frame, meta);
}

Status Store::commit() {
  if (impl_->closed) throw std::invalid_argument("zkit::spool::Store used after close()");
  return impl_->commit();
}
std::uint64_t Store::appended_ticket() const noexcept { return impl_->appended; }
std::uint64_t Store::committed_ticket() const noexcept { return impl_->committed; }

std::optional<Clock::time_point> Store::next_sync_due() const {
  const Impl& i = *impl_;
  std::optional<Clock::time_point> due;
  if (i.opt.fsync.mode == FsyncPolicy::Mode::kInterval && i.synced < i.written) {
    due = i.last_sync + i.opt.fsync.interval;
  }
  if (i.cursor != i.persisted_cursor || i.pfile_stale) {  // a rate-limited or failed write
    // A failing disk is retried at most every 100 ms, whatever cursor_interval, not in a spin.
    const auto wait = i.failing ? std::max<std::chrono::milliseconds>(i.opt.cursor_interval,
                                                                      std::chrono::milliseconds(100))
                                : i.opt.cursor_interval;
    const auto at = i.last_cursor_write + wait;
    due = due ? std::min(*due, at) : at;
  }
  return due;
}

Result<std::optional<StoredRecord>> Store::read_next() { return impl_->read_next(); }

void Store::rewind() {
  impl_->read_pos = impl_->cursor;
  impl_->reset_reader();
}

Status Store::advance_cursor(Position next) { return impl_->advance(next); }
Position Store::cursor() const noexcept { return impl_->cursor; }
Status Store::persist_cursor() { return impl_->write_cursor(); }

Result<std::optional<StoredRecord>> Store::read_at(Position p) { return impl_->read_at(p); }

Result<Position> Store::resolve_start(StartKind kind, std::uint64_t a, std::uint64_t b) {
  Impl& i = *impl_;
  const Position first{i.segments.front().number, format::kSegmentHeaderSize};
  const Position last = i.end();
  auto limit_of = [&](const Segment& s) { return &s == &i.segments.back() ? i.written : s.size; };
  switch (kind) {
    case StartKind::kEarliest: return first;
    case StartKind::kLatest: return last;
    case StartKind::kPosition: {
      const Position want{a, b};
      if (want < first || want > last) {
        return Status::invalid_argument("start position " + want.to_string() +
                                        " is outside the log (" + first.to_string() + " to " +
                                        last.to_string() + ")");
      }
      const Segment* seg = i.segment_at_or_after(a);
      if (seg == nullptr) return last;
      if (seg->number != a) return Position{seg->number, format::kSegmentHeaderSize};
      std::optional<Position> found;
      Status s = i.scan_segment(seg->number, limit_of(*seg), [&](std::uint64_t off, const auto&) {
        if (off < b) return true;
        found = Position{seg->number, off};
        return false;
      });
      if (!s) return s;
      if (found) return *found;
      // Nothing at or after b in that segment: the next segment's first record (or the end).
      if (seg == &i.segments.back()) return last;
      return Position{seg->number + 1, format::kSegmentHeaderSize};
    }
    case StartKind::kTime: {
      for (const Segment& seg : i.segments) {
        if (seg.batches == 0 || seg.last_arrival < a) continue;
        std::optional<Position> found;
        Status s = i.scan_segment(seg.number, limit_of(seg), [&](std::uint64_t off, const auto& v) {
          if (v.header.arrival_ns < a) return true;
          found = Position{seg.number, off};
          return false;
        });
        if (!s) return s;
        if (found) return *found;
      }
      return last;
    }
  }
  return Status::invalid_argument("unknown start kind " +
                                  std::to_string(static_cast<unsigned>(kind)) +
                                  " (expected 0 earliest, 1 latest, 2 position or 3 time)");
}

Status Store::set_retention_floor(Position p) { return impl_->set_retention_floor(p); }
Position Store::end() const noexcept { return impl_->end(); }

LogCount Store::count_from(std::uint64_t segment) const noexcept {
  LogCount c;
  for (const auto& s : impl_->segments) {
    if (s.number < segment) continue;
    c.batches += s.batches;
    c.messages += s.messages;
  }
  return c;
}

Result<LogCount> Store::count_before(Position p) {
  Impl& i = *impl_;
  LogCount c;
  const Segment* seg = i.find(p.segment);
  if (seg == nullptr) return c;
  const std::uint64_t limit =
      std::min(p.offset, seg == &i.segments.back() ? i.written : seg->size);
  if (limit <= format::kSegmentHeaderSize) return c;
  Status s = i.scan_segment(p.segment, limit, [&](std::uint64_t, const auto& v) {
    ++c.batches;
    c.messages += v.header.count;
    return true;
  });
  if (!s) return s;
  return c;
}

std::uint64_t Store::add_drop_listener(DropListener listener) {
  const std::uint64_t id = impl_->next_listener_id++;
  impl_->drop_listeners.emplace_back(id, std::move(listener));
  return id;
}
void Store::remove_drop_listener(std::uint64_t id) noexcept {
  if (!impl_) return;
  std::erase_if(impl_->drop_listeners, [id](const auto& l) { return l.first == id; });
}
const Options& Store::options() const noexcept { return impl_->opt; }
Env& Store::env() const noexcept { return *impl_->env; }

std::optional<std::uint64_t> Store::highest_seq(std::uint64_t producer_id,
                                                std::uint64_t scope) const {
  const ProducerTable::Entry* e = impl_->producers.find({scope, producer_id});
  if (e == nullptr) return std::nullopt;
  return e->seq;
}

bool Store::full() {
  Impl& i = *impl_;
  if (!i.full_flag) return false;
  bool bytes_ok = i.opt.max_bytes == 0 || i.reserved_bytes() + i.full_need <= i.opt.max_bytes;
  bool age_ok = !i.over_age(envelope::unix_now_ns());
  if (bytes_ok && age_ok) i.full_flag = false;
  return i.full_flag;
}

Status Store::enforce_limits() {
  if (impl_->opt.when_full != WhenFull::kDropOldest) return {};
  return impl_->enforce_age(envelope::unix_now_ns());
}

Stats Store::stats() {
  Impl& i = *impl_;
  Stats s = i.st;
  s.accepted = s.stored + s.duplicates;
  s.segments = i.segments.size();
  s.producers = i.producers.size();
  s.producers_forgotten = i.producers.forgotten;
  s.disk_bytes = i.disk_bytes();
  if (auto free = i.env->free_bytes(i.opt.dir)) s.disk_free_bytes = free.value();
  if (auto oldest = i.oldest_unacked_arrival()) {
    std::uint64_t now = envelope::unix_now_ns();
    s.oldest_age_ms = now > *oldest ? (now - *oldest) / 1000000 : 0;
  }
  s.full = i.full_flag;
  return s;
}

Status Store::close() {
  Impl& i = *impl_;
  if (i.closed) return {};
  Status s = i.commit();
  if (i.opt.fsync.mode != FsyncPolicy::Mode::kNever && i.synced < i.written && s) {
    s = i.sync_active();
  }
  if (i.cursor != i.persisted_cursor) {
    Status c = i.write_cursor();
    if (!c && i.recycle_acked_active()) {
      // The acknowledged segment is gone, so a restart resends nothing even without the file.
      (void)i.commit();
      c = i.write_cursor();
    }
    if (!c && s) s = c;
  }
  i.reset_reader();
  i.pfile.reset();
  if (i.active) {
    if (Status c = i.active->close(); !c && s) s = c;
    i.active.reset();
  }
  i.dir_lock.reset();
  i.closed = true;
  return s;
}

}  // namespace zkit::spool
