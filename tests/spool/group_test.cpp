// Consumer group state: floor and sparse acks, put-back timers, max_deliver and the dead-letter
// log, max_pending, reset, the group file across reopen, retention by the groups' floors,
// drop-oldest per group, replay, start positions, listing and deleting, bad input.
#include "zkit/spool/group.hpp"

#include <zlib.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "spool_test_util.hpp"
#include "zkit/spool/inspect.hpp"

using namespace spool_test;
using zkit::Code;
using zkit::spool::Delivery;
using zkit::spool::Group;
using zkit::spool::GroupOptions;
using zkit::spool::Position;
using zkit::spool::StartKind;
using zkit::spool::Store;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// Appends batches seq first..last of producer 1 and commits them.
void fill(Store& store, std::uint64_t first, std::uint64_t last, std::size_t size = 16,
          std::size_t count = 3) {
  for (std::uint64_t s = first; s <= last; ++s) {
    REQUIRE(store.append(frame(1, s, count, size)).is_ok());
  }
  require_ok(store.commit());
}

Group open_group(Store& store, const std::string& name, GroupOptions o = {},
                 std::optional<Position> start = std::nullopt) {
  Position p = start ? *start : store.resolve_start(StartKind::kEarliest).value();
  auto g = Group::open(store, name, o, p);
  INFO(g.status().to_string());
  REQUIRE(g.is_ok());
  return std::move(g).value();
}

struct Got {
  std::uint64_t seq;
  Position pos;
  std::uint32_t count;
};

std::optional<Got> take(Group& g, Clock::time_point now = Clock::now()) {
  auto d = g.next(now);
  INFO(d.status().to_string());
  REQUIRE(d.is_ok());
  if (!d.value()) return std::nullopt;
  return Got{d.value()->record.meta.seq, d.value()->record.position, d.value()->delivery_count};
}

// Takes everything the group hands out now.
std::vector<Got> take_all(Group& g, Clock::time_point now = Clock::now()) {
  std::vector<Got> out;
  for (int guard = 0; guard < 1000000; ++guard) {
    auto got = take(g, now);
    if (!got) break;
    out.push_back(*got);
  }
  return out;
}

std::uint64_t segment_files(const std::string& dir) {
  std::uint64_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".seg") ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("A new group delivers every committed batch once in log order, then nothing",
          "[spool][group]") {
  TempDir dir;
  Store store = open_store(options(dir.path()));
  fill(store, 1, 50);
  Group g = open_group(store, "workers");
  CHECK(g.created());
  auto got = take_all(g);
  REQUIRE(got.size() == 50);
  for (std::size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].seq == i + 1);
    CHECK(got[i].count == 1);
  }
  auto s = g.stats();
  CHECK(s.delivered == 50);
  CHECK(s.pending == 50);
  CHECK(s.lag_batches == 50);
  // Appended but not committed: not visible; committed: handed out next.
  REQUIRE(store.append(frame(1, 51)).is_ok());
  CHECK(!take(g));
  require_ok(store.commit());
  auto more = take(g);
  REQUIRE(more);
  CHECK(more->seq == 51);
}

TEST_CASE("The floor moves only over a done front: sparse and out-of-order acks",
          "[spool][group]") {
  TempDir dir;
  Store store = open_store(options(dir.path()));
  fill(store, 1, 10);
  Group g = open_group(store, "g");
  auto got = take_all(g);
  REQUIRE(got.size() == 10);
  const Position start = g.floor();
  CHECK(start == got[0].pos);
  // Acks of 2, 4, 3 leave the floor at 1.
  require_ok(g.ack(got[1].pos));
  require_ok(g.ack(got[3].pos));
  require_ok(g.ack(got[2].pos));
  CHECK(g.floor() == got[0].pos);
  CHECK(g.stats().acked_above_floor == 3);
  // Ack of 1: the floor passes 1..4 and stops at 5.
  require_ok(g.ack(got[0].pos));
  CHECK(g.floor() == got[4].pos);
  CHECK(g.stats().acked_above_floor == 0);
  for (int i = 9; i >= 4; --i) require_ok(g.ack(got[i].pos));
  CHECK(g.floor() == store.end());
  auto s = g.stats();
  CHECK(s.acked == 10);
  CHECK(s.acked_messages == 30);
  CHECK(s.pending == 0);
  CHECK(s.lag_batches == 0);
}

TEST_CASE("Ack or release of a position not out is InvalidArgument and changes nothing",
          "[spool][group]") {
  TempDir dir;
  Store store = open_store(options(dir.path()));
  fill(store, 1, 5);
  Group g = open_group(store, "g");
  auto a = take(g);
  auto b = take(g);
  REQUIRE(a);
  REQUIRE(b);
  // Never delivered (the third batch), a made-up position, acked twice, released then acked.
  auto never = store.read_at(b->pos);
  REQUIRE(never.is_ok());
  const Position third = never.value()->next;
  CHECK(g.ack(third).code() == Code::kInvalidArgument);
  CHECK(g.ack({b->pos.segment, b->pos.offset + 1}).code() == Code::kInvalidArgument);
  require_ok(g.ack(b->pos));
  CHECK(g.ack(b->pos).code() == Code::kInvalidArgument);
  auto r = g.release(a->pos, Clock::now());
  REQUIRE(r.is_ok());
  CHECK(!r.value());
  CHECK(g.ack(a->pos).code() == Code::kInvalidArgument);  // put back: not out
  CHECK(g.release(a->pos, Clock::now()).status().code() == Code::kInvalidArgument);
  auto s = g.stats();
  CHECK(s.acked == 1);
  CHECK(s.pending == 1);
  CHECK(s.returned == 1);
  // Before the floor: a stale position is ignored.
  auto again = take(g);
  REQUIRE(again);
  require_ok(g.ack(again->pos));
  require_ok(g.ack(a->pos));
  CHECK(g.stats().acked == 2);
}

TEST_CASE("A batch put back goes out again once its not-before time has come, count raised",
          "[spool][group]") {
  TempDir dir;
  Store store = open_store(options(dir.path()));
  fill(store, 1, 3);
  Group g = open_group(store, "g");
  auto t0 = Clock::now();
  auto got = take_all(g, t0);
  REQUIRE(got.size() == 3);
  CHECK(!g.next_due());
  // 3 back at t0+50ms, 2 back at t0+10ms.
  REQUIRE(g.release(got[2].pos, t0 + milliseconds(50)).is_ok());
  REQUIRE(g.release(got[1].pos, t0 + milliseconds(10)).is_ok());
  REQUIRE(g.next_due());
  CHECK(*g.next_due() == t0 + milliseconds(10));
  CHECK(!take(g, t0 + milliseconds(9)));
  auto r1 = take(g, t0 + milliseconds(10));
  REQUIRE(r1);
  CHECK(r1->seq == 2);
  CHECK(r1->count == 2);
  CHECK(*g.next_due() == t0 + milliseconds(50));
  CHECK(!take(g, t0 + milliseconds(49)));
  // Both due: the lowest position first.
  REQUIRE(g.release(r1->pos, t0 + milliseconds(20)).is_ok());
  auto a = take(g, t0 + milliseconds(60));
  auto b = take(g, t0 + milliseconds(60));
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->seq == 2);
  CHECK(a->count == 3);
  CHECK(b->seq == 3);
  CHECK(b->count == 2);
  CHECK(!g.next_due());
  auto s = g.stats();
  CHECK(s.nacked == 3);
  CHECK(s.redelivered == 3);
  CHECK(s.delivered == 6);
}

TEST_CASE(
    "After max_deliver deliveries a batch put back goes to the dead-letter log, readable "
    "as a spool",
    "[spool][group]") {
  TempDir dir;
  const auto dead_dir = zkit::spool::dead_letter_dir(dir.path(), "g");
  {
    Store store = open_store(options(dir.path()));
    fill(store, 1, 3);
    GroupOptions o;
    o.max_deliver = 2;
    Group g = open_group(store, "g", o);
    auto first = take_all(g);
    REQUIRE(first.size() == 3);
    require_ok(g.ack(first[0].pos));
    require_ok(g.ack(first[2].pos));
    auto r = g.release(first[1].pos, Clock::now());
    REQUIRE(r.is_ok());
    CHECK(!r.value());  // delivered once: back
    auto second = take(g);
    REQUIRE(second);
    CHECK(second->count == 2);
    r = g.release(second->pos, Clock::now());
    REQUIRE(r.is_ok());
    CHECK(r.value());  // delivered twice: dead
    CHECK(!take(g));
    CHECK(g.floor() == store.end());  // counts as done
    auto s = g.stats();
    CHECK(s.dead_lettered == 1);
    CHECK(s.dead_lettered_messages == 3);
    CHECK(s.dead_bytes > 0);
    // spool-inspect reads it while the group has it open.
    auto v = zkit::spool::verify(dead_dir);
    REQUIRE(v.is_ok());
    CHECK(v.value().batches == 1);
    CHECK(v.value().clean());
  }
  // The frame exactly as stored.
  Store dead = open_store(options(dead_dir));
  auto all = read_all(dead);
  REQUIRE(all.size() == 1);
  CHECK(all[0].seq == 2);
  CHECK(all[0].frame == frame(1, 2, 3, 16));
}

TEST_CASE("max_pending stops new batches, not batches put back; acks make room", "[spool][group]") {
  TempDir dir;
  Store store = open_store(options(dir.path()));
  fill(store, 1, 10);
  GroupOptions o;
  o.max_pending = 4;
  Group g = open_group(store, "g", o);
  auto got = take_all(g);
  REQUIRE(got.size() == 4);
  // Acked above the floor still counts.
  require_ok(g.ack(got[3].pos));
  CHECK(!take(g));
  REQUIRE(g.release(got[1].pos, Clock::now()).is_ok());
  auto back = take(g);
  REQUIRE(back);
  CHECK(back->seq == 2);
  CHECK(!take(g));
  require_ok(g.ack(got[0].pos));  // the floor moves: one more fits
  auto next = take(g);
  REQUIRE(next);
  CHECK(next->seq == 5);
  CHECK(!take(g));
}

TEST_CASE("Reset forgets everything out and acked and starts at the given position",
          "[spool][group]") {
  TempDir dir;
  Store store = open_store(options(dir.path()));
  fill(store, 1, 10);
  Group g = open_group(store, "g");
  auto got = take_all(g);
  REQUIRE(got.size() == 10);
  for (int i = 0; i < 5; ++i) require_ok(g.ack(got[i].pos));
  REQUIRE(g.release(got[7].pos, Clock::now()).is_ok());
  // Back to the third batch.
  auto start = store.resolve_start(StartKind::kPosition, got[2].pos.segment, got[2].pos.offset);
  REQUIRE(start.is_ok());
  require_ok(g.reset(start.value()));
  CHECK(g.floor() == got[2].pos);
  CHECK(g.stats().pending == 0);
  auto again = take_all(g);
  REQUIRE(again.size() == 8);
  CHECK(again.front().seq == 3);
  CHECK(again.front().count == 1);
  CHECK(g.ack(got[0].pos).is_ok());  // before the floor: stale, ignored
  // To the end: nothing to hand out.
  require_ok(g.reset(store.resolve_start(StartKind::kLatest).value()));
  CHECK(!take(g));
  CHECK(g.stats().lag_batches == 0);
}

TEST_CASE("Reopened, a group redelivers what it had not done, with the counts it had",
          "[spool][group]") {
  TempDir dir;
  std::vector<Got> got;
  Position floor;
  {
    Store store = open_store(options(dir.path()));
    fill(store, 1, 20);
    Group g = open_group(store, "g");
    got = take_all(g);
    REQUIRE(got.size() == 10 + 10);
    // Done: 1..5 and 8; out: 6, 7 (7 delivered twice), 9..20.
    for (int i : {0, 1, 2, 3, 4, 7}) require_ok(g.ack(got[i].pos));
    REQUIRE(g.release(got[6].pos, Clock::now()).is_ok());
    auto again = take(g);
    REQUIRE(again);
    CHECK(again->count == 2);
    floor = g.floor();
    require_ok(g.persist());
  }
  Store store = open_store(options(dir.path()));
  Group g = open_group(store, "g", {}, Position{});  // start ignored: the file exists
  CHECK(!g.created());
  CHECK(g.floor() == floor);
  auto s = g.stats();
  CHECK(s.acked == 6);
  CHECK(s.delivered == 21);
  auto re = take_all(g);
  std::vector<std::uint64_t> seqs;
  for (const auto& r : re) seqs.push_back(r.seq);
  std::vector<std::uint64_t> want{6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};
  CHECK(seqs == want);
  CHECK(re[0].count == 2);
  CHECK(re[1].count == 3);
  CHECK(re[2].count == 2);
}

TEST_CASE("A damaged group file is an error naming the file", "[spool][group]") {
  TempDir dir;
  {
    Store store = open_store(options(dir.path()));
    fill(store, 1, 5);
    Group g = open_group(store, "g");
    auto got = take_all(g);
    require_ok(g.ack(got[1].pos));
  }
  const std::string path = dir.path() + "/groups/g.group";
  REQUIRE(std::filesystem::exists(path));
  const Bytes good = read_file(path);
  auto check_bad = [&](const Bytes& bytes, const std::string& why, Code code = Code::kCorruption) {
    write_file(path, bytes);
    Store store = open_store(options(dir.path()));
    auto g = Group::open(store, "g", {}, Position{});
    REQUIRE(!g.is_ok());
    CHECK(g.status().code() == code);
    CHECK_THAT(g.status().message(), Catch::Contains(path));
    CHECK_THAT(g.status().message(), Catch::Contains(why));
    auto listed = zkit::spool::list_groups(dir.path());
    CHECK(!listed.is_ok());
  };
  Bytes flipped = good;
  flipped[20] ^= std::byte{1};
  check_bad(flipped, "checksum");
  check_bad(Bytes(good.begin(), good.begin() + 10), "less than a header");
  Bytes magic = good;
  magic[0] = std::byte{'X'};
  check_bad(magic, "bad magic");
  // One entry short, with a good checksum (zlib's CRC-32 of what precedes it).
  Bytes cut(good.begin(), good.end() - 4 - 21);
  const auto crc = static_cast<std::uint32_t>(
      ::crc32(0, reinterpret_cast<const Bytef*>(cut.data()), static_cast<uInt>(cut.size())));
  for (int i = 0; i < 4; ++i) cut.push_back(static_cast<std::byte>(crc >> (8 * i)));
  check_bad(cut, "entry count");
  write_file(path, good);
  Store store = open_store(options(dir.path()));
  CHECK(Group::open(store, "g", {}, Position{}).is_ok());
}

TEST_CASE("Bad group names and options are refused", "[spool][group]") {
  TempDir dir;
  Store store = open_store(options(dir.path()));
  for (const std::string& bad :
       std::vector<std::string>{"", ".", "..", "a/b", "with space", std::string(65, 'x'), "é"}) {
    INFO(bad);
    auto g = Group::open(store, bad, {}, Position{});
    REQUIRE(!g.is_ok());
    CHECK(g.status().code() == Code::kInvalidArgument);
  }
  CHECK(zkit::spool::valid_group_name(std::string(64, 'x')));
  CHECK(zkit::spool::valid_group_name("a.b-c_D9"));
  GroupOptions o;
  o.max_pending = 0;
  CHECK(Group::open(store, "g", o, Position{}).status().code() == Code::kInvalidArgument);
}

TEST_CASE("Retention: a segment goes once every group's floor passed it (3 groups)",
          "[spool][group]") {
  TempDir dir;
  auto opt = options(dir.path());
  opt.cursor_interval = milliseconds(0);
  Store store = open_store(opt);
  fill(store, 1, 200, 1000);  // ~200 KB: several 64 KiB segments
  const std::uint64_t segments = segment_files(dir.path());
  REQUIRE(segments >= 3);
  Group a = open_group(store, "a");
  Group b = open_group(store, "b");
  Group c = open_group(store, "c");
  auto a_got = take_all(a), b_got = take_all(b), c_got = take_all(c);
  REQUIRE(c_got.size() == 200);
  auto retain = [&] {
    require_ok(store.set_retention_floor(std::min({a.floor(), b.floor(), c.floor()})));
  };
  for (const auto& d : a_got) require_ok(a.ack(d.pos));
  for (std::size_t i = 0; i < 100; ++i) require_ok(b.ack(b_got[i].pos));
  retain();
  CHECK(segment_files(dir.path()) == segments);  // c holds everything
  const std::uint64_t b_segment = b.floor().segment;
  REQUIRE(b_segment >= 2);
  for (const auto& d : c_got) require_ok(c.ack(d.pos));
  retain();
  // c acked everything; b's floor is the minimum: the segments before its floor's are gone.
  CHECK(store.cursor() == b.floor());
  CHECK(segment_files(dir.path()) < segments);
  CHECK(!std::filesystem::exists(dir.path() + "/" + segment(b_segment - 1)));
  CHECK(std::filesystem::exists(dir.path() + "/" + segment(b_segment)));
  // Readers still read from their floors.
  auto rest = take_all(b);
  CHECK(rest.empty());  // b holds 101..200 out already
  CHECK(b.stats().pending == 100);
  // A restart keeps the retention floor: the CURSOR file records it.
  const Position cur = store.cursor();
  require_ok(store.close());
  auto again = zkit::spool::Store::open(opt);
  REQUIRE(again.is_ok());
  CHECK(again.value().cursor() == cur);
}

TEST_CASE("Drop-oldest: each group counts exactly what it lost", "[spool][group]") {
  TempDir dir;
  auto opt = options(dir.path());
  opt.max_bytes = 300 * 1024;
  opt.when_full = zkit::spool::WhenFull::kDropOldest;
  Store store = open_store(opt);
  fill(store, 1, 10, 1000);
  Group fast = open_group(store, "fast");
  Group slow = open_group(store, "slow");
  Group idle = open_group(store, "idle");
  // fast acks everything; slow holds the first 5 out and acked 6..10; idle took nothing.
  for (const auto& g : take_all(fast)) require_ok(fast.ack(g.pos));
  auto s_got = take_all(slow);
  for (std::size_t i = 5; i < s_got.size(); ++i) require_ok(slow.ack(s_got[i].pos));
  // Append until the first segment is dropped.
  const std::uint64_t first_segment = store.resolve_start(StartKind::kEarliest).value().segment;
  std::uint64_t seq = 10;
  for (int guard = 0;
       guard < 10000 && store.resolve_start(StartKind::kEarliest).value().segment == first_segment;
       ++guard) {
    REQUIRE(store.append(frame(1, ++seq, 3, 1000)).is_ok());
    require_ok(store.commit());
    for (const auto& g : take_all(fast)) require_ok(fast.ack(g.pos));
  }
  REQUIRE(store.resolve_start(StartKind::kEarliest).value().segment > first_segment);
  // How many batches the dropped segment held: the first segment is the one with seq 1.
  const std::uint64_t dropped = store.stats().dropped_batches;
  REQUIRE(dropped > 10);  // the whole first segment: it holds more than the first 10
  // fast had done it all; slow lost its 5 out batches and what it never read; idle lost all.
  CHECK(fast.stats().dropped_batches == 0);
  CHECK(slow.stats().dropped_batches == dropped - 5);
  CHECK(slow.stats().dropped_messages == 3 * (dropped - 5));
  CHECK(idle.stats().dropped_batches == dropped);
  CHECK(idle.stats().dropped_messages == 3 * dropped);
  // Acks of what was dropped while out are stale: ignored. The groups go on after the gap.
  require_ok(slow.ack(s_got[0].pos));
  auto next = take(idle);
  REQUIRE(next);
  CHECK(next->seq == dropped + 1);
  CHECK(idle.floor().segment > first_segment);
}

TEST_CASE("Replay of dead letters goes to that group only, with counts starting over",
          "[spool][group]") {
  TempDir dir;
  Store store = open_store(options(dir.path()));
  fill(store, 1, 6);
  GroupOptions o;
  o.max_deliver = 1;
  Group g = open_group(store, "g", o);
  Group other = open_group(store, "other", o);
  for (const auto& d : take_all(other)) require_ok(other.ack(d.pos));
  auto got = take_all(g);
  REQUIRE(got.size() == 6);
  for (const auto& d : got) {
    if (d.seq % 2 == 0) {
      auto r = g.release(d.pos, Clock::now());
      REQUIRE(r.is_ok());
      CHECK(r.value());
    } else {
      require_ok(g.ack(d.pos));
    }
  }
  CHECK(g.stats().dead_lettered == 3);
  CHECK(!take(g));
  auto n = g.replay_dead_letters();
  REQUIRE(n.is_ok());
  CHECK(n.value() == 3);
  CHECK(!take(other));  // other groups are not affected
  auto replayed = take_all(g);
  REQUIRE(replayed.size() == 3);
  std::vector<std::uint64_t> seqs;
  for (const auto& r : replayed) {
    seqs.push_back(r.seq);
    CHECK(r.count == 1);
    CHECK(zkit::spool::is_replay(r.pos));
  }
  CHECK(seqs == std::vector<std::uint64_t>{2, 4, 6});
  // One fails again (dead again), two are acked; a second replay brings back only the one.
  require_ok(g.ack(replayed[0].pos));
  auto r = g.release(replayed[1].pos, Clock::now());
  REQUIRE(r.is_ok());
  CHECK(r.value());
  require_ok(g.ack(replayed[2].pos));
  CHECK(g.stats().pending == 0);
  auto n2 = g.replay_dead_letters();
  REQUIRE(n2.is_ok());
  CHECK(n2.value() == 1);
  auto again = take_all(g);
  REQUIRE(again.size() == 1);
  CHECK(again[0].seq == 4);
  require_ok(g.ack(again[0].pos));
  CHECK(g.replay_dead_letters().value() == 0);
  CHECK(g.stats().replayed == 4);
}

TEST_CASE("A replay in progress survives reopening", "[spool][group]") {
  TempDir dir;
  GroupOptions o;
  o.max_deliver = 1;
  {
    Store store = open_store(options(dir.path()));
    fill(store, 1, 4);
    Group g = open_group(store, "g", o);
    for (const auto& d : take_all(g)) REQUIRE(g.release(d.pos, Clock::now()).value());
    REQUIRE(g.replay_dead_letters().value() == 4);
    auto r = take_all(g);
    REQUIRE(r.size() == 4);
    require_ok(g.ack(r[1].pos));  // sparse: 2 done, 1, 3, 4 out
    require_ok(g.persist());
  }
  Store store = open_store(options(dir.path()));
  Group g = open_group(store, "g", o);
  auto r = take_all(g);
  std::vector<std::uint64_t> seqs;
  for (const auto& d : r) seqs.push_back(d.seq);
  CHECK(seqs == std::vector<std::uint64_t>{1, 3, 4});
  for (const auto& d : r) require_ok(g.ack(d.pos));
  CHECK(g.replay_dead_letters().value() == 0);
}

TEST_CASE("Start positions: earliest, latest, a position, a time; bad ones refused",
          "[spool][group]") {
  TempDir dir;
  Store store = open_store(options(dir.path()));
  fill(store, 1, 5);
  const auto t_mid = zkit::envelope::unix_now_ns();
  fill(store, 6, 10);
  auto earliest = store.resolve_start(StartKind::kEarliest);
  auto latest = store.resolve_start(StartKind::kLatest);
  REQUIRE(earliest.is_ok());
  REQUIRE(latest.is_ok());
  CHECK(latest.value() == store.end());
  auto first = store.read_at(earliest.value());
  REQUIRE(first.is_ok());
  CHECK(first.value()->meta.seq == 1);
  CHECK(!store.read_at(latest.value()).value());
  // A position in the middle of a record moves to the next record start.
  auto second = store.read_at(first.value()->next).value();
  auto mid = store.resolve_start(StartKind::kPosition, second->position.segment,
                                 second->position.offset - 1);
  REQUIRE(mid.is_ok());
  CHECK(mid.value() == second->position);
  auto t = store.resolve_start(StartKind::kTime, t_mid);
  REQUIRE(t.is_ok());
  CHECK(store.read_at(t.value()).value()->meta.seq == 6);
  CHECK(store.resolve_start(StartKind::kTime, t_mid + 3600'000'000'000ull).value() ==
        latest.value());
  CHECK(store.resolve_start(StartKind::kPosition, 99, 0).status().code() == Code::kInvalidArgument);
  CHECK(store.resolve_start(StartKind::kPosition, 0, 0).status().code() == Code::kInvalidArgument);
  CHECK(store.resolve_start(static_cast<StartKind>(9)).status().code() == Code::kInvalidArgument);
  // A group created at latest sees only what comes next.
  Group g = open_group(store, "late", {}, latest.value());
  CHECK(!take(g));
  fill(store, 11, 11);
  auto d = take(g);
  REQUIRE(d);
  CHECK(d->seq == 11);
}

TEST_CASE("Groups are listed with their persisted state and deleted with their dead letters",
          "[spool][group]") {
  TempDir dir;
  Store store = open_store(options(dir.path()));
  fill(store, 1, 4);
  GroupOptions o;
  o.max_deliver = 1;
  {
    Group b = open_group(store, "b", o);
    Group a = open_group(store, "a", o);
    auto got = take_all(a);
    require_ok(a.ack(got[1].pos));
    REQUIRE(a.release(got[0].pos, Clock::now()).value());
    require_ok(a.persist());
    auto list = zkit::spool::list_groups(dir.path());
    REQUIRE(list.is_ok());
    REQUIRE(list.value().size() == 2);
    CHECK(list.value()[0].name == "a");
    CHECK(list.value()[1].name == "b");
    CHECK(list.value()[0].floor == got[2].pos);
    CHECK(list.value()[0].pending == 2);
    CHECK(list.value()[0].stats.dead_lettered == 1);
    auto j = nlohmann::json::parse(a.stats().to_json());
    CHECK(j["dead_lettered"] == 1);
    CHECK(j["acked"] == 1);
    CHECK(j["floor"] == got[2].pos.to_string());
    // verify lists the groups; their files are not foreign.
    auto v = zkit::spool::verify(dir.path());
    REQUIRE(v.is_ok());
    CHECK(v.value().foreign.empty());
    REQUIRE(v.value().groups.size() == 2);
    CHECK(v.value().groups[0].name == "a");
    std::ostringstream printed;
    zkit::spool::print(v.value(), printed);
    CHECK_THAT(printed.str(), Catch::Contains("groups: 2"));
    // In use: the dead-letter log is locked by the open group.
    CHECK(!zkit::spool::delete_group(dir.path(), "a").is_ok());
  }
  require_ok(zkit::spool::delete_group(dir.path(), "a"));
  CHECK(!std::filesystem::exists(dir.path() + "/groups/a.group"));
  CHECK(!std::filesystem::exists(zkit::spool::dead_letter_dir(dir.path(), "a")));
  CHECK(zkit::spool::delete_group(dir.path(), "a").code() == Code::kNotFound);
  auto list = zkit::spool::list_groups(dir.path());
  REQUIRE(list.value().size() == 1);
  CHECK(list.value()[0].name == "b");
  // Created again, it starts afresh.
  Group a = open_group(store, "a", o);
  CHECK(a.created());
  CHECK(take_all(a).size() == 4);
}

TEST_CASE("The forward group of an existing spool directory starts at its CURSOR",
          "[spool][group]") {
  TempDir dir;
  auto opt = options(dir.path());
  opt.cursor_interval = milliseconds(0);
  {
    Store store = open_store(opt);  // today's single-reader use
    fill(store, 1, 10);
    auto all = read_all(store);
    require_ok(store.advance_cursor(all[3].next));
  }
  Store store = open_store(opt);
  Group fwd = open_group(store, "forward", {}, store.cursor());
  auto got = take_all(fwd);
  REQUIRE(got.size() == 6);
  CHECK(got[0].seq == 5);
}

TEST_CASE("A full dead-letter log refuses, counted, and the batch stays in the group",
          "[spool][group]") {
  TempDir dir;
  Store store = open_store(options(dir.path()));
  fill(store, 1, 3, 30000, 1);
  GroupOptions o;
  o.max_deliver = 1;
  o.max_dead_bytes = 70 * 1024;  // room for two of these
  Group g = open_group(store, "g", o);
  auto got = take_all(g);
  REQUIRE(got.size() == 3);
  CHECK(g.release(got[0].pos, Clock::now()).value());
  CHECK(g.release(got[1].pos, Clock::now()).value());
  auto r = g.release(got[2].pos, Clock::now());
  REQUIRE(r.is_ok());
  CHECK(!r.value());
  auto s = g.stats();
  CHECK(s.dead_lettered == 2);
  CHECK(s.dead_letter_refused == 1);
  CHECK(s.pending == 1);
  auto back = take(g);
  REQUIRE(back);
  CHECK(back->seq == 3);
  CHECK(back->count == 2);
}

TEST_CASE("The group file is written only by persist calls, at most every persist_interval",
          "[spool][group]") {
  TempDir dir;
  Store store = open_store(options(dir.path()));
  fill(store, 1, 5);
  GroupOptions o;
  o.persist_interval = std::chrono::hours(1);
  Group g = open_group(store, "g", o);
  CHECK(g.stats().persists == 1);  // created
  CHECK(!g.persist_due());
  const Bytes at_creation = read_file(dir.path() + "/groups/g.group");
  for (const auto& d : take_all(g)) require_ok(g.ack(d.pos));
  CHECK(read_file(dir.path() + "/groups/g.group") == at_creation);  // acks never write
  REQUIRE(g.persist_due());
  require_ok(g.persist_if_due(Clock::now()));
  CHECK(g.stats().persists == 1);  // the interval has not passed
  require_ok(g.persist_if_due(*g.persist_due()));
  CHECK(g.stats().persists == 2);
  CHECK(!g.persist_due());
  CHECK(read_file(dir.path() + "/groups/g.group") != at_creation);
}

TEST_CASE("More groups than cached readers, reading in turns, each get every batch in order",
          "[spool][group]") {
  TempDir dir;
  Store store = open_store(options(dir.path()));
  fill(store, 1, 300, 500);  // several segments
  std::vector<Group> groups;
  for (int i = 0; i < 12; ++i) groups.push_back(open_group(store, "g" + std::to_string(i)));
  std::vector<std::uint64_t> last(groups.size(), 0);
  for (int round = 0; round < 400; ++round) {
    for (std::size_t i = 0; i < groups.size(); ++i) {
      // Group i takes i % 3 + 1 batches per round: they drift apart.
      for (std::size_t k = 0; k <= i % 3; ++k) {
        auto d = take(groups[i]);
        if (!d) break;
        REQUIRE(d->seq == last[i] + 1);
        last[i] = d->seq;
        require_ok(groups[i].ack(d->pos));
      }
    }
  }
  for (std::size_t i = 0; i < groups.size(); ++i) CHECK(last[i] == 300);
}
