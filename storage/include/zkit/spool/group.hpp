// A consumer group's durable state on the spool's log: which batches are done (acknowledged or
// dead-lettered), which are out, how often each was delivered, which were put back and when they
// may go out again. It knows no sockets and no members: the node keeps members, tags and timers
// and tells the group what happened to a batch, named by its log Position. docs/spool.md
// ("Groups") describes the group file and the guarantees.
//
// Typical use by the spool node (one thread owns the Store and its Groups):
//   auto start = store.resolve_start(StartKind::kEarliest);      // used only for a new group
//   auto g = Group::open(store, "workers", {}, start.value());
//   while (a member has credit) {
//     auto d = g->next(now);                   // nullopt: nothing due, or max_pending reached
//     send d->record.frame with d->delivery_count; remember (tag -> d->record.position)
//   }
//   g->ack(position);                          // the member acked the tag
//   g->release(position, now + delay);         // nack, ack_wait expiry, member death
//   g->persist_if_due(now);                    // at least every persist_interval
//   store.set_retention_floor(min over all groups of g.floor());
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "zkit/spool/env.hpp"
#include "zkit/spool/store.hpp"
#include "zkit/status.hpp"

namespace zkit::spool {

// Every field documents its default.
struct GroupOptions {
  // Deliveries after which a batch that goes back once more is moved to the dead-letter log
  // (5; 0: never dead-letter).
  std::uint32_t max_deliver = 5;
  // Batches the group holds above its floor: out (delivered, unacked), put back, and acked above
  // the floor (65536). At the limit next() hands out only batches that were put back.
  std::size_t max_pending = 65536;
  // The group file is rewritten at most this often by persist_if_due (200 ms): a crash
  // redelivers at most the batches acknowledged in the last interval.
  std::chrono::milliseconds persist_interval{200};
  // Batches of the main log handed out past the read position last written to the group file
  // before next() writes the file again, whatever persist_interval says (1024; at least 1). After
  // a crash up to this many batches after that position (of those in the log at open) count as
  // delivered once (their next delivery_count is at least 2), whether they went out or not: this
  // bounds how many first deliveries may be flagged as redeliveries, and no redelivery says 1.
  std::size_t max_unpersisted = 1024;
  // Bytes of the dead-letter log (its segment files) (1 GiB; 0: no limit). At the limit a batch
  // that should be dead-lettered stays in the group, goes back for redelivery, and is counted
  // (GroupStats::dead_letter_refused).
  std::uint64_t max_dead_bytes = std::uint64_t{1} << 30;
};

struct GroupStats {
  // Counters since the group was created (persisted with the group file).
  std::uint64_t delivered = 0;    // deliveries handed out by next(), redeliveries too
  std::uint64_t redelivered = 0;  // of which delivery_count > 1
  std::uint64_t acked = 0;        // batches acknowledged
  std::uint64_t acked_messages = 0;
  std::uint64_t nacked = 0;         // release() calls that put a batch back
  std::uint64_t dead_lettered = 0;  // batches moved to the dead-letter log
  std::uint64_t dead_lettered_messages = 0;
  std::uint64_t dead_letter_refused = 0;  // dead-letterings refused (max_dead_bytes, I/O)
  std::uint64_t dropped_batches = 0;      // deleted by drop-oldest before the group was done
  std::uint64_t dropped_messages = 0;
  std::uint64_t replayed = 0;  // dead letters scheduled by replay_dead_letters()
  std::uint64_t persists = 0;  // group file writes (this process)
  std::uint64_t persist_errors = 0;
  // Now.
  std::uint64_t pending = 0;   // delivered and not acked (out, or put back and waiting)
  std::uint64_t returned = 0;  // of which put back, waiting to go out again
  std::uint64_t acked_above_floor = 0;
  std::uint64_t lag_batches = 0;  // committed batches at or after the floor not yet done
  std::uint64_t dead_bytes = 0;   // bytes of the dead-letter log's segment files
  Position floor;

  // One flat JSON object, a member per field under the field's name (floor as "floor":
  // "SEG.seg@OFFSET") (zkit::JsonWriter).
  std::string to_json() const;
};

// A batch handed out by Group::next(). record.frame stays valid until the next call on the Group
// or its Store.
struct Delivery {
  StoredRecord record;
  std::uint32_t delivery_count = 0;  // 1 on the first delivery
};

// A group name is 1..64 characters of [A-Za-z0-9._-], and not "." or "..".
bool valid_group_name(std::string_view name) noexcept;

// Positions whose segment has this bit set name a record in the group's own dead-letter log,
// handed out again by replay_dead_letters(). They are opaque to the caller: pass them back to
// ack()/release() like any other. They sort after every position of the main log.
inline constexpr std::uint64_t kReplaySegmentBit = std::uint64_t{1} << 63;
inline bool is_replay(Position p) noexcept { return (p.segment & kReplaySegmentBit) != 0; }

// Move-only; one thread; the Store must outlive it and stay where it is (not be moved) while the
// group is open: the group keeps a pointer to it and registers with it for drop-oldest
// notifications until it is destroyed. Methods block on disk I/O (persist on
// fsync, next on a read). Errors: IOError from the file system (the group stays usable: retry),
// Corruption for a damaged group file (open), InvalidArgument for positions the group does not
// know in that state.
class Group {
 public:
  // Opens DIR/groups/NAME.group (DIR: the store's directory), or creates the group with floor
  // `start` when the file does not exist (start then comes from Store::resolve_start; for the
  // `forward` group of an existing spool directory pass store.cursor(), what CURSOR records).
  // Recovery: every batch from the floor to the log end that the file does not record as done is
  // delivered again, with the delivery count the file recorded + 1; a batch the file does not
  // name counts 1 (so it goes out as 2) when it is before the read position the file recorded or
  // among the max_unpersisted batches after it present in the log at open, else 0 (no such
  // batches when the file was written by the destructor: a clean close). A floor before
  // the first segment still present (deleted while the group was closed) moves to it.
  // Errors: InvalidArgument for a bad name or options (max_pending 0), Corruption naming the file
  // when it is damaged, Unsupported for a newer format version, IOError.
  static Result<Group> open(Store& store, std::string name, GroupOptions options, Position start);

  Group(Group&&) noexcept;
  Group& operator=(Group&&) noexcept;
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;
  ~Group();  // persists when changed since the last persist (errors logged)

  const std::string& name() const noexcept;
  bool created() const noexcept;  // open() made a new group (no file existed)

  // The next batch to hand out: a batch put back whose not-before time has come (lowest position
  // first), else a dead letter being replayed, else the next committed record after those
  // already handed out (batches recorded done are skipped). nullopt when there is none; new
  // batches (not put back) also wait while max_pending batches are held. The returned
  // delivery_count is already incremented. O(log n); no fsync. IOError when the log cannot be
  // read (nothing changes).
  Result<std::optional<Delivery>> next(std::chrono::steady_clock::time_point now);

  // The batch at p was acknowledged: it is done, and the floor moves past every done batch at the
  // front. InvalidArgument when p is at or after the floor and not out (never delivered, acked
  // already, put back); a position before the floor is a batch dropped (drop-oldest) or forgotten
  // (reset) while out: ok, nothing changes. O(log n); no fsync.
  Status ack(Position p);

  // Puts an out batch back (nack with a delay, ack_wait expiry, member death): it goes out again
  // once not_before has come, with its delivery count. Returns true when it had already been
  // delivered max_deliver times: it was then appended to the dead-letter log (DIR/dead/NAME/, a
  // spool directory of its own, readable with `zkit spool-inspect`) and synced, and it counts as
  // done. When the dead-letter log refuses it (max_dead_bytes, I/O) it goes back instead (false,
  // counted in dead_letter_refused). A position before the floor: false, nothing changes.
  // InvalidArgument when p is at or after the floor and not out.
  Result<bool> release(Position p, std::chrono::steady_clock::time_point not_before);

  // The earliest not-before time of the batches put back and not handed out again (a time at or
  // before now means next() has one now); nullopt when there are none.
  std::optional<std::chrono::steady_clock::time_point> next_due() const;

  // Forgets every batch out, put back and acked above the floor and sets floor = start (a
  // Store::resolve_start result); the caller drops the tags it gave out. Replayed dead letters
  // that were out go back (due now). Persists at once.
  Status reset(Position start);

  // Schedules every dead letter of this group present now for delivery to this group again, with
  // its delivery count starting over (other groups never see them). Returns how many. A replayed
  // batch that reaches max_deliver again is appended to the dead-letter log again. Persists at
  // once.
  Result<std::uint64_t> replay_dead_letters();

  // Writes the group file when something changed and persist_interval has passed since the last
  // write (temp file, sync, rename, directory sync). Call at least every persist_interval.
  Status persist_if_due(std::chrono::steady_clock::time_point now);
  Status persist();  // now, when something changed
  // When persist_if_due should next be called; nullopt when nothing changed.
  std::optional<std::chrono::steady_clock::time_point> persist_due() const;

  // Every batch before the floor is done (a main-log position; replayed dead letters are not in
  // it).
  Position floor() const noexcept;
  GroupStats stats() const;

  struct Impl;

 private:
  explicit Group(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// What a directory holds about groups, for listing without opening them.
struct GroupInfo {
  std::string name;
  Position floor;
  std::uint64_t pending = 0;  // delivered, not acked, as last persisted
  std::uint64_t acked_above_floor = 0;
  GroupStats stats;  // the counters as last persisted (no "now" figures)
};

// The groups of the spool directory dir (from DIR/groups/*.group), sorted by name. A damaged file
// is an error naming it (Corruption). env: nullptr for Env::posix().
Result<std::vector<GroupInfo>> list_groups(const std::string& dir, Env* env = nullptr);
// Removes DIR/groups/NAME.group and the dead-letter log DIR/dead/NAME/ (the caller has closed the
// group). NotFound when the group has no file. env: nullptr for Env::posix().
Status delete_group(const std::string& dir, const std::string& name, Env* env = nullptr);
// The dead-letter directory of a group: DIR/dead/NAME.
std::string dead_letter_dir(const std::string& dir, const std::string& name);

}  // namespace zkit::spool
