// The spool's on-disk store: an append-only log of segment files holding received batch frames,
// with group commit, a forward reader from the acknowledged cursor, cursor advance on downstream
// acknowledgement, disk limits, duplicate suppression per producer and recovery on open.
// docs/spool.md describes the byte layout and the guarantees of each fsync mode.
//
// Typical use by the spool node (one thread owns the Store):
//   auto store = Store::open(options);           // recovers: torn tail cut, corrupt records skipped
//   // upstream: for every batch frame received in one poll round
//   auto r = store->append(frame, meta);         // kStored or kDuplicate, with a ticket
//   //   LimitExceeded: full (block), stop granting credit until full() is false again
//   //   IOError: not stored, nothing acked; retry later (commit() repairs the segment)
//   store->commit();                             // one fsync covers every append before it
//   //   then send every pending ack whose ticket <= store->committed_ticket(), in order
//   // downstream: while credit remains
//   auto rec = store->read_next();               // next record after the last one read
//   //   send rec->frame; on the downstream's ack of it:
//   store->advance_cursor(rec->next);            // deletes fully acknowledged segments
#pragma once

#include <chrono>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "zkit/spool/env.hpp"
#include "zkit/stats.hpp"
#include "zkit/status.hpp"

namespace zkit::spool {

// A place in the log: segment number and byte offset in that segment file. Ordered like the log.
struct Position {
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;
  auto operator<=>(const Position&) const = default;
  std::string to_string() const;  // "00000000000000000003.seg@4096"
};

// Where a new reader (a consumer group) starts; the values are the consumer protocol's start_kind.
enum class StartKind : std::uint8_t {
  kEarliest = 0,  // the oldest record still in the log
  kLatest = 1,    // after the last committed record: only batches appended from now on
  kPosition = 2,  // a = segment, b = offset: the first record at or after that position
  kTime = 3,      // a = unix ns: the first record that arrived at or after that time
};

// Segment drop-oldest deleted, as reported to drop listeners (Store::add_drop_listener).
struct DroppedSegment {
  std::uint64_t segment = 0;   // its number
  std::uint64_t batches = 0;   // batch records it held
  std::uint64_t messages = 0;
  Position next;               // where the log now starts
};

// Batch records counted in part of the log (Store::count_from, Store::count_before).
struct LogCount {
  std::uint64_t batches = 0;
  std::uint64_t messages = 0;
};

// When appended records become durable (docs/spool.md: what each survives).
struct FsyncPolicy {
  enum class Mode { kAlways, kInterval, kNever };
  Mode mode = Mode::kAlways;
  std::chrono::milliseconds interval{0};  // kInterval only

  static FsyncPolicy always() { return {}; }
  static FsyncPolicy every(std::chrono::milliseconds ms) { return {Mode::kInterval, ms}; }
  static FsyncPolicy never() { return {Mode::kNever, {}}; }
  // "always", "interval=MS" (MS > 0) or "never"; InvalidArgument naming the value otherwise.
  static Result<FsyncPolicy> parse(std::string_view text);
  std::string to_string() const;
};

// What happens when max_bytes or max_age is reached.
enum class WhenFull {
  kBlock,       // append refuses with LimitExceeded until acknowledgements free space
  kDropOldest,  // the oldest unforwarded segments are deleted; their messages are counted dropped
};
// "block" or "drop-oldest" (also "drop_oldest").
Result<WhenFull> parse_when_full(std::string_view text);

// A corrupt stretch found while reading: file name (in the spool directory), where, and why.
struct CorruptRecord {
  std::string file;
  std::uint64_t offset = 0;
  std::uint64_t bytes = 0;
  std::string reason;
};
using Reporter = std::function<void(const CorruptRecord&)>;

// Every field documents its default.
struct Options {
  std::string dir;                                 // the spool directory (required)
  std::uint64_t segment_bytes = std::uint64_t{64} << 20;  // roll to a new segment past this (64 MiB)
  FsyncPolicy fsync;                               // always
  std::uint64_t max_bytes = 0;                     // bytes of segment files; 0: no limit
  std::chrono::milliseconds max_age{0};            // age of the oldest unforwarded record; 0: none
  WhenFull when_full = WhenFull::kBlock;
  std::size_t max_frame_bytes = std::size_t{64} << 20;  // larger frames are refused (64 MiB)
  // The cursor file is rewritten at most this often (each rewrite costs two syncs); a crash
  // may then resend up to this much already-acknowledged data downstream, where (producer, seq)
  // suppresses it. close() always writes it.
  std::chrono::milliseconds cursor_interval{200};
  // Duplicate suppression (docs/spool.md, "Duplicates"): the highest seq stored per (scope,
  // producer) is kept for at most max_producers pairs; a new pair beyond that makes the store
  // forget the longest-unseen one (Stats::producers_forgotten). A batch is a duplicate only if
  // highest - duplicate_window < seq <= highest; a seq further below restarts the producer's
  // sequence (stored, Stats::seq_restarts). A sender's resends after its restart are at most its
  // backlog, so the window need not be larger than that.
  std::size_t max_producers = 65536;
  std::uint64_t duplicate_window = 65536;  // batches
  bool create_if_missing = true;  // create dir when missing (else NotFound)
  Env* env = nullptr;             // nullptr: Env::posix(); must outlive the Store
  Reporter reporter;              // corrupt records found on open or while reading;
                                  // empty: logged with spdlog at warning level
};

// RecordMeta::scope of frames that are never suppressed as duplicates and never update the
// producer table (the node's --pull frames: unauthenticated and unacknowledged).
inline constexpr std::uint64_t kNoDedupe = ~std::uint64_t{0};

// What recovery needs about a batch besides its frame. append(frame) fills it from the envelope.
struct RecordMeta {
  std::uint64_t producer_id = 0;
  std::uint64_t seq = 0;
  std::uint64_t arrival_ns = 0;      // unix ns when the spool received the batch
  std::uint32_t message_count = 0;  // messages in the batch
  // Duplicate suppression is per (scope, producer_id): 0 for unauthenticated peers, a hash of
  // the peer's CURVE key otherwise, kNoDedupe for frames never suppressed. Stored with the record.
  std::uint64_t scope = 0;
};

struct AppendResult {
  enum class Outcome {
    kStored,     // appended; acknowledge once committed_ticket() >= ticket
    kDuplicate,  // highest - duplicate_window < seq <= highest_seq(producer, scope): not stored
                 // again; acknowledge (again) once committed_ticket() >= ticket, which covers
                 // the earlier copy
  };
  Outcome outcome = Outcome::kStored;
  std::uint64_t ticket = 0;  // rises by one per stored record; a duplicate gets the latest one
  Position position;         // where the record starts (kStored only)
};

// A record handed out by read_next(). frame stays valid until the next call on the Store.
struct StoredRecord {
  Position position;  // where it starts
  Position next;      // pass to advance_cursor() once the downstream acknowledged it
  RecordMeta meta;
  std::span<const std::byte> frame;  // the batch frame exactly as received
};

struct Stats {
  std::uint64_t accepted = 0;          // frames offered to append (stored + duplicates)
  std::uint64_t stored = 0;            // batches stored
  std::uint64_t stored_messages = 0;
  std::uint64_t duplicates = 0;        // batches not stored again
  std::uint64_t seq_restarts = 0;      // stored with a seq more than duplicate_window below the
                                       // producer's highest (a restarted or forged sequence)
  std::uint64_t producers = 0;         // (scope, producer) pairs in the duplicate table
  std::uint64_t producers_forgotten = 0;  // pairs forgotten at max_producers (longest unseen)
  std::uint64_t rejected_full = 0;     // appends refused by the block policy
  std::uint64_t forwarded = 0;         // batches handed out by read_next (resends included)
  std::uint64_t acked = 0;             // batches acknowledged downstream (advance_cursor)
  std::uint64_t acked_messages = 0;
  std::uint64_t backlog_batches = 0;   // stored and not yet acknowledged downstream
  std::uint64_t backlog_messages = 0;
  std::uint64_t backlog_bytes = 0;     // frame bytes
  std::uint64_t oldest_age_ms = 0;     // age of the oldest unacknowledged batch; 0 when none
  std::uint64_t segments = 0;
  std::uint64_t disk_bytes = 0;        // bytes of the segment files on disk (not the write buffer)
  std::uint64_t disk_free_bytes = 0;   // statvfs of the directory
  std::uint64_t fsyncs = 0;
  std::uint64_t fsync_ns_total = 0;
  std::uint64_t fsync_ns_max = 0;
  LatencyHistogram fsync_latency;      // ns of each fsync (with its directory sync)
  std::uint64_t corrupt_skipped = 0;   // corrupt stretches skipped (on open and while reading)
  std::uint64_t dropped_batches = 0;   // deleted unforwarded by drop-oldest
  std::uint64_t dropped_messages = 0;
  std::uint64_t io_errors = 0;         // failed writes, syncs, creates
  bool full = false;                   // the block policy refuses appends

  // One flat JSON object, a member per field under the field's name (zkit::JsonWriter).
  std::string to_json() const;
};

// Move-only handle; one thread at a time. Methods block on disk I/O (commit() on fsync).
// Errors: IOError when the OS refuses (the Store stays usable; retry later), LimitExceeded when
// full or a frame is over max_frame_bytes, Corruption for a frame whose envelope header is
// malformed; misuse (acknowledging records never read) throws std::invalid_argument.
class Store {
 public:
  // Opens or creates the spool in options.dir and recovers it: a torn tail of the last segment
  // is cut, corrupt records are skipped and reported, the cursor, each producer's highest
  // stored seq (from the segments and the PRODUCERS file) and the backlog counts are rebuilt. The directory is locked
  // (dir/LOCK, flock) until close(): a second Store on it fails with IOError. Fails (NotFound,
  // IOError, InvalidArgument) only when the directory cannot be used at all.
  static Result<Store> open(Options options);

  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  ~Store();  // close(), errors logged

  // Appends a received batch frame. The bytes are copied; the record is durable only after
  // commit(). Errors besides IOError/LimitExceeded: none; the frame itself is not examined.
  //
  // append(frame, meta) is the node's path: it trusts meta (the caller validated the frame when
  // it decoded it) and never reads the frame. append(frame) is for tools and tests: it parses
  // the frame once — envelope::peek for an uncompressed batch, envelope::decode for a compressed
  // one, whose message count is known only after decompression — with arrival_ns now, scope 0,
  // and returns the codec's Corruption/Unsupported/LimitExceeded for a frame that is not a batch.
  Result<AppendResult> append(std::span<const std::byte> frame);
  Result<AppendResult> append(std::span<const std::byte> frame, const RecordMeta& meta);

  // Group commit: writes everything appended since the last commit and, per the fsync policy,
  // syncs it (always: fdatasync every commit; interval: when the interval has passed since the
  // last sync; never: not at all). On success committed_ticket() == appended_ticket(). On
  // IOError nothing new is committed and the appended records stay pending: call again later.
  // When a write fails and the active segment holds committed records, the pending records move
  // to a new segment, so that acknowledging the old one frees its space (a disk smaller than a
  // segment is left once the reader caught up); AppendResult::position of a moved record is then
  // stale (its ticket is not).
  Status commit();
  std::uint64_t appended_ticket() const noexcept;
  std::uint64_t committed_ticket() const noexcept;
  // When commit() should next be called even without new appends: the interval policy's sync, a
  // cursor write that was rate-limited or failed, a PRODUCERS file write that failed.
  std::optional<std::chrono::steady_clock::time_point> next_sync_due() const;

  // The next committed batch after the last one read (starting at the cursor), or nullopt when
  // the reader has caught up. Skips corrupt stretches (reported).
  Result<std::optional<StoredRecord>> read_next();
  // Reads again from the cursor (the downstream lost what it was sent).
  void rewind();

  // The downstream acknowledged every record before `next` (a StoredRecord::next). Moves the
  // cursor, deletes fully acknowledged segment files, and persists the cursor (rate-limited by
  // cursor_interval). When the store is full or the disk failing and everything is acknowledged,
  // the active segment itself is rolled and deleted. Stale positions are ignored; a position beyond what was read throws
  // std::invalid_argument.
  Status advance_cursor(Position next);
  Position cursor() const noexcept;
  // Writes the cursor file now (temp file, sync, rename, directory sync).
  Status persist_cursor();

  // ---- many readers (consumer groups, docs/spool.md "Groups") ----
  // A node with groups reads with read_at and frees space with set_retention_floor; it does not
  // use read_next/rewind/advance_cursor (the two ways are not mixed on one Store).

  // The committed record at or after p (the next one when p is not a record start; the first of
  // the next segment when p is at or past its segment's end; the first of the log when p is before
  // it), or nullopt when there is none yet. Skips corrupt stretches. Reading on from the
  // previous result's `next` is sequential I/O (a few readers are kept open, one per recent
  // position), so several groups each reading at their own pace do not reopen files. A record's
  // checksum is computed once while the store is open, by whichever reader reaches it first
  // (docs/spool.md, "Groups"). The frame stays valid until the next call on the Store. IOError
  // when a file cannot be read.
  Result<std::optional<StoredRecord>> read_at(Position p);

  // The position a new reader starts at (a record start, or the end of the committed log).
  // kPosition: the first record at or after (a, b), InvalidArgument when that is before the log's
  // first record or after its end. kTime: the first record with arrival_ns >= a (the end of the
  // log when none). b is ignored except for kPosition; an unknown kind is InvalidArgument.
  Result<Position> resolve_start(StartKind kind, std::uint64_t a = 0, std::uint64_t b = 0);

  // Everything before p is done for every reader (the minimum floor of all groups, the open ones
  // and those on disk): segments wholly before p are deleted, and p becomes the cursor that the
  // CURSOR file records (rate-limited by cursor_interval, like advance_cursor). Positions at or
  // before the current cursor are ignored; p past the committed end is clamped to it.
  Status set_retention_floor(Position p);

  // The end of the committed log (where the next committed record will start or the segment
  // after it); read_at(end()) is nullopt until something more is committed.
  Position end() const noexcept;

  // Batch records in segments numbered `segment` and later (appended ones included). O(segments).
  LogCount count_from(std::uint64_t segment) const noexcept;
  // Batch records in p's segment before p.offset (reads that part of the segment; call rarely).
  Result<LogCount> count_before(Position p);

  // Called inside the Store call that made drop-oldest delete a segment, before the next segment
  // is read (Group registers one per group). Returns an id for remove_drop_listener. Listeners
  // must not call the Store.
  using DropListener = std::function<void(const DroppedSegment&)>;
  std::uint64_t add_drop_listener(DropListener listener);
  void remove_drop_listener(std::uint64_t id) noexcept;

  const Options& options() const noexcept;  // as given to open (dir, env: nullptr means posix)
  Env& env() const noexcept;

  // The highest seq stored from producer in scope (nullopt: none known, or forgotten).
  std::optional<std::uint64_t> highest_seq(std::uint64_t producer_id, std::uint64_t scope = 0) const;

  // True while the block policy refuses appends; re-evaluated on each call, so it turns false
  // once acknowledgements (or time, for drop-oldest) made room for the refused batch.
  bool full();
  // Applies max_age now (drop-oldest: deletes segments older than max_age). Call periodically.
  Status enforce_limits();

  // A snapshot of the counters. May read one record from disk (the oldest unacknowledged batch's
  // arrival time when none is in flight) and calls statvfs.
  Stats stats();
  // Commits, persists the cursor and closes the files. Idempotent.
  Status close();

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace zkit::spool
