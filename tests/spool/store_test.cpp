// Store behaviour: tickets and group commit, cursor recovery, duplicates after reopen, limits,
// rewind, bad frames, option parsing.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "spool_test_util.hpp"

using namespace spool_test;
using zkit::spool::AppendResult;
using zkit::spool::Store;

namespace {

std::uint64_t segment_files(const std::string& dir) {
  std::uint64_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".seg") ++n;
  }
  return n;
}

std::uint64_t segment_bytes_on_disk(const std::string& dir) {
  std::uint64_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".seg") n += e.file_size();
  }
  return n;
}

}  // namespace

TEST_CASE("Acknowledgements are released in order by the commit that covers them",
          "[spool][store]") {
  TempDir dir;
  Store store = open_store(options(dir.path()));
  auto a = store.append(frame(1, 1));
  auto b = store.append(frame(1, 2));
  REQUIRE(a.is_ok());
  REQUIRE(b.is_ok());
  CHECK(a.value().ticket == 1);
  CHECK(b.value().ticket == 2);
  CHECK(store.committed_ticket() == 0);
  CHECK(read_all(store).empty());  // nothing committed is visible to the forward reader
  require_ok(store.commit());
  CHECK(store.committed_ticket() == 2);
  auto fsyncs = store.stats().fsyncs;
  // A resend of a stored batch is a duplicate whose ticket is already covered.
  auto d = store.append(frame(1, 2));
  REQUIRE(d.is_ok());
  CHECK(d.value().outcome == AppendResult::Outcome::kDuplicate);
  CHECK(d.value().ticket <= store.committed_ticket());
  for (std::uint64_t seq = 3; seq < 103; ++seq) REQUIRE(store.append(frame(1, seq)).is_ok());
  require_ok(store.commit());
  CHECK(store.stats().fsyncs == fsyncs + 1);  // one sync for the hundred
  CHECK(store.committed_ticket() == 102);
  CHECK(read_all(store).size() == 102);
}

TEST_CASE("The cursor survives reopening: reading resumes after the last acknowledged batch",
          "[spool][store]") {
  TempDir dir;
  auto opt = options(dir.path());
  std::vector<Read> got;
  {
    Store store = open_store(opt);
    for (std::uint64_t seq = 1; seq <= 40; ++seq) REQUIRE(store.append(frame(3, seq, 10, 300)).is_ok());
    require_ok(store.commit());
    got = read_all(store);
    REQUIRE(got.size() == 40);
    require_ok(store.advance_cursor(got[24].next));  // 25 acknowledged
    CHECK(store.stats().backlog_batches == 15);
    CHECK(store.stats().acked == 25);
  }
  CHECK(segment_files(dir.path()) < 6);  // acknowledged segments were deleted
  Store store = open_store(opt);
  CHECK(store.cursor() == got[24].next);
  auto st = store.stats();
  CHECK(st.backlog_batches == 15);
  CHECK(st.backlog_messages == 150);
  auto rest = read_all(store);
  REQUIRE(rest.size() == 15);
  CHECK(rest.front().seq == 26);
  CHECK(rest.back().seq == 40);
  // rewind resends from the cursor, once each in the backlog count
  require_ok(store.advance_cursor(rest[4].next));
  store.rewind();
  auto again = read_all(store);
  REQUIRE(again.size() == 10);
  CHECK(again.front().seq == 31);
  require_ok(store.advance_cursor(again.back().next));
  CHECK(store.stats().backlog_batches == 0);
  CHECK(store.stats().oldest_age_ms == 0);
}

TEST_CASE("A resent batch is a duplicate after reopen, even once its segment was deleted",
          "[spool][store]") {
  TempDir dir;
  auto opt = options(dir.path());
  {
    Store store = open_store(opt);
    for (std::uint64_t seq = 1; seq <= 5; ++seq) REQUIRE(store.append(frame(11, seq)).is_ok());
    REQUIRE(store.append(frame(12, 100)).is_ok());
    require_ok(store.commit());
  }
  {
    Store store = open_store(opt);
    CHECK(store.highest_seq(11) == 5u);
    CHECK(store.highest_seq(12) == 100u);
    auto dup = store.append(frame(11, 3));
    REQUIRE(dup.is_ok());
    CHECK(dup.value().outcome == AppendResult::Outcome::kDuplicate);
    auto fresh = store.append(frame(11, 6));
    REQUIRE(fresh.is_ok());
    CHECK(fresh.value().outcome == AppendResult::Outcome::kStored);
    // Fill more segments from another producer and acknowledge everything.
    for (std::uint64_t seq = 1; seq <= 30; ++seq) REQUIRE(store.append(frame(13, seq, 4, 1000)).is_ok());
    require_ok(store.commit());
    auto got = read_all(store);
    CHECK(got.size() == 37);  // 6 from before the reopen, 1 + 30 since
    require_ok(store.advance_cursor(got.back().next));
    CHECK(store.stats().duplicates == 1);
  }
  CHECK_FALSE(std::filesystem::exists(dir.file(segment(1))));  // producer 11's records are gone
  Store store = open_store(opt);
  CHECK(store.highest_seq(11) == 6u);  // kept by the producers snapshot of later segments
  CHECK(store.highest_seq(12) == 100u);
  auto dup = store.append(frame(12, 100));
  REQUIRE(dup.is_ok());
  CHECK(dup.value().outcome == AppendResult::Outcome::kDuplicate);
  CHECK(store.stats().backlog_batches == 0);
}

TEST_CASE("Block policy: full at max-bytes, not full again once acknowledgements free space",
          "[spool][store]") {
  TempDir dir;
  auto opt = options(dir.path());
  opt.max_bytes = 256 * 1024;
  Store store = open_store(opt);
  std::uint64_t seq = 0;
  zkit::Status refused;
  for (int i = 0; i < 100; ++i) {
    auto r = store.append(frame(5, seq + 1, 8, 1000));
    if (!r.is_ok()) {
      refused = r.status();
      break;
    }
    ++seq;
    require_ok(store.commit());
  }
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.code() == zkit::Code::kLimitExceeded);
  CHECK(store.full());
  CHECK(store.stats().full);
  CHECK(store.stats().rejected_full == 1);
  CHECK(segment_bytes_on_disk(dir.path()) <= opt.max_bytes);
  CHECK(store.highest_seq(5) == seq);  // the refused batch was not stored

  auto got = read_all(store);
  REQUIRE(got.size() == seq);
  require_ok(store.advance_cursor(got[0].next));
  CHECK(store.full());  // one batch does not free a segment
  require_ok(store.advance_cursor(got.back().next));
  CHECK_FALSE(store.full());
  auto r = store.append(frame(5, seq + 1, 8, 1000));
  INFO(r.status().to_string());
  CHECK(r.is_ok());
  require_ok(store.commit());
  CHECK(read_all(store).size() == 1);
}

TEST_CASE("Drop-oldest deletes the oldest unforwarded segments and counts every dropped message",
          "[spool][store]") {
  TempDir dir;
  auto opt = options(dir.path());
  opt.max_bytes = 256 * 1024;
  opt.when_full = zkit::spool::WhenFull::kDropOldest;
  Store store = open_store(opt);
  const std::uint64_t total = 120;
  for (std::uint64_t seq = 1; seq <= total; ++seq) {
    auto r = store.append(frame(6, seq, 8, 1000));
    INFO(r.status().to_string());
    REQUIRE(r.is_ok());
    require_ok(store.commit());
  }
  auto st = store.stats();
  CHECK(st.dropped_batches > 0);
  CHECK(st.dropped_messages == st.dropped_batches * 8);
  CHECK(st.backlog_batches + st.dropped_batches == total);
  CHECK(segment_bytes_on_disk(dir.path()) <= opt.max_bytes);
  auto got = read_all(store);
  CHECK(got.size() + st.dropped_batches == total);
  // What is left is the newest part of the log, in order.
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i].seq == st.dropped_batches + i + 1);
  CHECK(st.backlog_batches == got.size());
  CHECK(st.backlog_messages == got.size() * 8);
}

TEST_CASE("Max-age: drop-oldest drops batches older than it, block refuses new ones",
          "[spool][store]") {
  TempDir dir;
  auto old_ns = zkit::envelope::unix_now_ns() - 3'600'000'000'000ull;  // an hour ago
  auto meta = [&](std::uint64_t seq, std::uint64_t at) {
    return zkit::spool::RecordMeta{21, seq, at, 3};
  };
  SECTION("drop-oldest") {
    auto opt = options(dir.path());
    opt.max_age = std::chrono::minutes(1);
    opt.when_full = zkit::spool::WhenFull::kDropOldest;
    Store store = open_store(opt);
    for (std::uint64_t seq = 1; seq <= 5; ++seq) REQUIRE(store.append(frame(21, seq), meta(seq, old_ns)).is_ok());
    require_ok(store.commit());
    require_ok(store.enforce_limits());
    auto st = store.stats();
    CHECK(st.dropped_batches == 5);
    CHECK(st.dropped_messages == 15);
    REQUIRE(store.append(frame(21, 6), meta(6, zkit::envelope::unix_now_ns())).is_ok());
    require_ok(store.commit());
    auto got = read_all(store);
    REQUIRE(got.size() == 1);
    CHECK(got[0].seq == 6);
  }
  SECTION("block") {
    auto opt = options(dir.path());
    opt.max_age = std::chrono::minutes(1);
    Store store = open_store(opt);
    REQUIRE(store.append(frame(21, 1), meta(1, old_ns)).is_ok());
    require_ok(store.commit());
    auto r = store.append(frame(21, 2), meta(2, zkit::envelope::unix_now_ns()));
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == zkit::Code::kLimitExceeded);
    CHECK(store.full());
    CHECK(store.stats().oldest_age_ms >= 3'599'000);
    auto got = read_all(store);
    REQUIRE(got.size() == 1);
    require_ok(store.advance_cursor(got[0].next));
    CHECK_FALSE(store.full());
    CHECK(store.append(frame(21, 2), meta(2, zkit::envelope::unix_now_ns())).is_ok());
  }
}

TEST_CASE("Bad frames are refused with a clear status and nothing is stored", "[spool][store]") {
  TempDir dir;
  auto opt = options(dir.path());
  opt.max_frame_bytes = 4096;
  Store store = open_store(opt);
  Bytes junk = {std::byte{0x96}, std::byte{0x01}};  // a v1 header cut after the version
  auto r = store.append(junk);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == zkit::Code::kCorruption);
  auto big = store.append(frame(1, 1, 1, 5000));
  REQUIRE_FALSE(big.is_ok());
  CHECK(big.status().code() == zkit::Code::kLimitExceeded);
  require_ok(store.commit());
  CHECK(read_all(store).empty());
  CHECK(store.stats().stored == 0);
  CHECK_THROWS_AS(store.advance_cursor({99, 0}), std::invalid_argument);
}

TEST_CASE("Fsync and when-full policies parse from their flag values", "[spool][store]") {
  using zkit::spool::FsyncPolicy;
  auto a = FsyncPolicy::parse("always");
  REQUIRE(a.is_ok());
  CHECK(a.value().mode == FsyncPolicy::Mode::kAlways);
  auto i = FsyncPolicy::parse("interval=250");
  REQUIRE(i.is_ok());
  CHECK(i.value().mode == FsyncPolicy::Mode::kInterval);
  CHECK(i.value().interval == std::chrono::milliseconds(250));
  CHECK(i.value().to_string() == "interval=250");
  CHECK(FsyncPolicy::parse("never").value().mode == FsyncPolicy::Mode::kNever);
  for (const char* bad : {"", "sometimes", "interval=", "interval=0", "interval=-5", "interval=5x"}) {
    auto p = FsyncPolicy::parse(bad);
    CHECK_FALSE(p.is_ok());
    CHECK(p.status().code() == zkit::Code::kInvalidArgument);
  }
  CHECK(zkit::spool::parse_when_full("block").value() == zkit::spool::WhenFull::kBlock);
  CHECK(zkit::spool::parse_when_full("drop-oldest").value() == zkit::spool::WhenFull::kDropOldest);
  CHECK_FALSE(zkit::spool::parse_when_full("drop").is_ok());
}

TEST_CASE("A second store on the same directory is refused while the first is open",
          "[spool][store]") {
  TempDir dir;
  auto opt = options(dir.path());
  {
    Store first = open_store(opt);
    auto second = Store::open(opt);
    REQUIRE_FALSE(second.is_ok());
    CHECK(second.status().code() == zkit::Code::kIOError);
    CHECK(second.status().message().find("another process") != std::string::npos);
  }
  Store again = open_store(opt);  // released on close
}

TEST_CASE("Interval policy: commit writes at once and syncs when the interval has passed",
          "[spool][store]") {
  TempDir dir;
  auto opt = options(dir.path());
  opt.fsync = zkit::spool::FsyncPolicy::every(std::chrono::milliseconds(20));
  Store store = open_store(opt);
  require_ok(store.commit());
  const auto syncs = store.stats().fsyncs;
  REQUIRE(store.append(frame(1, 1)).is_ok());
  require_ok(store.commit());
  CHECK(store.committed_ticket() == 1);  // acknowledged after the write
  CHECK(read_all(store).size() == 1);
  auto due = store.next_sync_due();
  REQUIRE(due.has_value());
  // Bounded wait until the sync is due, then commit() performs it.
  for (int i = 0; i < 100 && std::chrono::steady_clock::now() < *due; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  require_ok(store.commit());
  CHECK(store.stats().fsyncs > syncs);
  CHECK_FALSE(store.next_sync_due().has_value());
}

TEST_CASE("A batch of about 60 MiB round-trips through its own segment", "[spool][store]") {
  TempDir dir("zkit-spool", memory_base());
  auto opt = options(dir.path());
  opt.fsync = zkit::spool::FsyncPolicy::never();
  Bytes small = frame(77, 1);
  Bytes big = frame(77, 2, 4, 15 << 20);
  {
    Store store = open_store(opt);
    REQUIRE(store.append(small).is_ok());
    auto r = store.append(big);
    REQUIRE(r.is_ok());
    CHECK(r.value().position.segment == 2);  // it does not fit the 64 KiB segment: a new one
    require_ok(store.close());
  }
  Store store = open_store(opt);
  auto got = read_all(store);
  REQUIRE(got.size() == 2);
  CHECK(got[0].frame == small);
  CHECK(got[1].frame.size() == big.size());
  CHECK(got[1].frame == big);
  CHECK(store.stats().backlog_bytes == big.size() + small.size());
}

TEST_CASE("Drop-oldest counts exactly the unacknowledged messages of a partly acknowledged segment",
          "[spool][store]") {
  TempDir dir;
  auto opt = options(dir.path());
  opt.max_bytes = 256 * 1024;
  opt.when_full = zkit::spool::WhenFull::kDropOldest;
  Store store = open_store(opt);
  // Batches of varying message counts, so a proportional estimate would be wrong.
  std::uint64_t seq = 0, messages = 0;
  auto add = [&](std::size_t count) {
    auto r = store.append(frame(6, ++seq, count, 2000));
    REQUIRE(r.is_ok());
    messages += count;
    require_ok(store.commit());
  };
  for (std::size_t i = 0; i < 6; ++i) add(i % 2 == 0 ? 1 : 7);  // about 48 KB: segment 1
  auto got = read_all(store);
  REQUIRE(got.size() == 6);
  require_ok(store.advance_cursor(got[1].next));  // 1 + 7 messages acknowledged
  const std::uint64_t acked_messages = 8;
  for (int i = 0; i < 40; ++i) add(3);
  auto st = store.stats();
  REQUIRE(st.dropped_batches > 0);
  CHECK(st.acked_messages == acked_messages);
  CHECK(st.backlog_messages + st.dropped_messages + acked_messages == messages);
}

TEST_CASE("A reader stopped mid-segment reads the rest of it after the segment rolls",
          "[spool][store]") {
  TempDir dir;
  Store store = open_store(options(dir.path()));
  std::uint64_t seq = 0;
  // Part of the active segment is committed and half of it is read, as a full window leaves it.
  for (int i = 0; i < 20; ++i) REQUIRE(store.append(frame(1, ++seq, 3, 200)).is_ok());
  require_ok(store.commit());
  std::vector<std::uint64_t> got;
  zkit::spool::Position last;
  for (int i = 0; i < 10; ++i) {
    auto r = store.read_next();
    REQUIRE(r.is_ok());
    REQUIRE(r.value());
    got.push_back(r.value()->meta.seq);
    last = r.value()->next;
  }
  // More is committed in the same segment, then appends go on until it rolls over.
  const std::uint64_t first_segment = last.segment;
  for (int i = 0; i < 20; ++i) REQUIRE(store.append(frame(1, ++seq, 3, 200)).is_ok());
  require_ok(store.commit());
  std::uint64_t guard = 0;
  while (store.stats().segments < 2 && ++guard < 10000) {
    REQUIRE(store.append(frame(1, ++seq, 3, 200)).is_ok());
  }
  REQUIRE(store.stats().segments >= 2);
  for (int i = 0; i < 5; ++i) REQUIRE(store.append(frame(1, ++seq, 3, 200)).is_ok());
  require_ok(store.commit());
  for (const Read& r : read_all(store)) {
    got.push_back(r.seq);
    last = r.next;
  }
  CHECK(last.segment > first_segment);
  // Every record once, in order; acknowledging all of it leaves nothing behind.
  std::vector<std::uint64_t> want(seq);
  for (std::uint64_t i = 0; i < seq; ++i) want[i] = i + 1;
  CHECK(got == want);
  require_ok(store.advance_cursor(last));
  CHECK(store.stats().backlog_batches == 0);
}

TEST_CASE("append(frame, meta) trusts the meta and never reads the frame", "[spool][store]") {
  TempDir dir;
  Store store = open_store(options(dir.path()));
  // Not an envelope at all: the two-argument path stores it as given (the node validated it).
  Bytes opaque = {std::byte{0xff}, std::byte{0x00}, std::byte{0x42}};
  zkit::spool::RecordMeta meta{77, 9, 123456789, 5, 42};
  auto r = store.append(opaque, meta);
  INFO(r.status().to_string());
  REQUIRE(r.is_ok());
  CHECK(r.value().outcome == AppendResult::Outcome::kStored);
  require_ok(store.commit());
  auto rec = store.read_next();
  REQUIRE(rec.is_ok());
  REQUIRE(rec.value());
  CHECK(rec.value()->meta.producer_id == 77);
  CHECK(rec.value()->meta.seq == 9);
  CHECK(rec.value()->meta.arrival_ns == 123456789);
  CHECK(rec.value()->meta.message_count == 5);
  CHECK(rec.value()->meta.scope == 42);
  CHECK(Bytes(rec.value()->frame.begin(), rec.value()->frame.end()) == opaque);
  CHECK(store.stats().stored_messages == 5);
}

TEST_CASE("append(frame) counts the messages of a zstd batch and refuses a frame that is not one",
          "[spool][store]") {
  TempDir dir;
  Store store = open_store(options(dir.path()));
  zkit::envelope::Encoder enc({zkit::envelope::Compression::kZstd, 1, 0});
  enc.begin(5);
  for (int i = 0; i < 40; ++i) enc.add(std::string(100, 'a'));
  zmq::message_t msg = enc.finish(1, 1);
  std::span<const std::byte> z(static_cast<const std::byte*>(msg.data()), msg.size());
  REQUIRE(zkit::envelope::peek(z).value().compression() == zkit::envelope::Compression::kZstd);
  REQUIRE(store.append(z).is_ok());
  CHECK(store.stats().stored_messages == 40);
  Bytes cut(z.begin(), z.end() - 3);  // a zstd batch whose records section is cut short
  auto bad = store.append(cut);
  REQUIRE_FALSE(bad.is_ok());
  CHECK(store.stats().stored == 1);
}

TEST_CASE("Stats::to_json gives every counter under its field name", "[spool][store]") {
  TempDir dir;
  Store store = open_store(options(dir.path()));
  REQUIRE(store.append(frame(1, 1, 3)).is_ok());
  REQUIRE(store.append(frame(1, 1, 3)).is_ok());  // a duplicate
  require_ok(store.commit());
  const auto st = store.stats();
  const nlohmann::json j = nlohmann::json::parse(st.to_json());
  CHECK(j.size() == 26);  // every field of Stats
  CHECK(j["stored"] == 1);
  CHECK(j["stored_messages"] == 3);
  CHECK(j["duplicates"] == 1);
  CHECK(j["accepted"] == 2);
  CHECK(j["producers"] == 1);
  CHECK(j["disk_bytes"] == st.disk_bytes);
  CHECK(j["full"] == false);
}

namespace {

// `n` records of 500 bytes (seqs 1..n, producer 1), committed; their positions.
std::vector<zkit::spool::Position> append_records(Store& store, std::uint64_t n) {
  std::vector<zkit::spool::Position> at;
  for (std::uint64_t s = 1; s <= n; ++s) {
    auto r = store.append(frame(1, s, 3, 500));
    REQUIRE(r.is_ok());
    at.push_back(r.value().position);
  }
  require_ok(store.commit());
  return at;
}

// The first record from `k` on that lies well inside a 32 KiB block (its first fragment holds its
// header and more).
std::size_t inside_a_block(const std::vector<zkit::spool::Position>& at, std::size_t k) {
  while (at[k].offset % 32768 > 30000) ++k;
  return k;
}

// Changes the byte `skip` bytes into the record at `p`, on disk, behind the store's back.
void damage(const std::string& dir, const zkit::spool::Position& p, std::uint64_t skip) {
  std::fstream f(dir + "/" + segment(p.segment), std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f);
  f.seekp(static_cast<std::streamoff>(p.offset + skip));
  const char x = 0x5a;
  f.write(&x, 1);
}

// A new reader from the earliest record to the end: `take` of each record read.
template <class T, class Take>
std::vector<T> read_from_start(Store& store, Take take) {
  std::vector<T> out;
  auto p = store.resolve_start(zkit::spool::StartKind::kEarliest).value();
  for (int guard = 0; guard < 1000; ++guard) {
    auto r = store.read_at(p);
    REQUIRE(r.is_ok());
    if (!r.value()) break;
    out.push_back(take(*r.value()));
    p = r.value()->next;
  }
  return out;
}

}  // namespace

TEST_CASE("read_at: a record's checksum is computed once per open store: a reader opened at the "
          "first record shares the prefix it verified with later readers",
          "[spool][store]") {
  TempDir dir;
  auto opt = options(dir.path());
  opt.segment_bytes = 1 << 20;  // one segment
  Store store = open_store(opt);
  const auto at = append_records(store, 100);
  auto frames = [&] {
    return read_from_start<Bytes>(store, [](const auto& rec) {
      return Bytes(rec.frame.begin(), rec.frame.end());
    });
  };
  const auto first = frames();  // starts at the segment's first record, not a block start
  REQUIRE(first.size() == 100);
  // A payload byte of a record in the middle of a block changes on disk after it was checked. The
  // store never rewrites such bytes itself; the change only shows whether a later reader checks
  // the record again (it must not: the first reader verified it).
  const std::size_t k = inside_a_block(at, 50);
  damage(dir.path(), at[k], 1000);
  const auto second = frames();  // a new reader
  REQUIRE(second.size() == 100);  // record k was not checked (and skipped) again
  for (std::size_t i = 0; i < 100; ++i) CHECK((second[i] == first[i]) == (i != k));
}

TEST_CASE("read_at: corruption not yet read is found by every reader, and a position inside a "
          "verified record is not taken for a record start",
          "[spool][store]") {
  TempDir dir;
  auto opt = options(dir.path());
  opt.segment_bytes = 1 << 20;  // one segment
  Store store = open_store(opt);
  const auto at = append_records(store, 300);
  // A record well inside a block, damaged on disk before anything read it.
  const std::size_t bad = inside_a_block(at, 99);
  damage(dir.path(), at[bad], 40);
  auto seqs = [&] {
    return read_from_start<std::uint64_t>(store, [](const auto& rec) { return rec.meta.seq; });
  };
  const auto first = seqs();   // verifies up to the damage, and after it
  const auto second = seqs();  // a new reader: trusts what was verified only
  CHECK(std::find(first.begin(), first.end(), bad + 1) == first.end());
  CHECK(first.size() < 300);
  CHECK(first.size() > 250);
  CHECK(second == first);
  // Inside the verified record 11: the next record start at or after it, never bytes inside it.
  std::set<std::uint64_t> starts;
  for (const auto& p : at) starts.insert(p.offset);
  for (std::uint64_t delta : {1, 7, 13, 100}) {
    auto r = store.read_at({at[10].segment, at[10].offset + delta});
    REQUIRE(r.is_ok());
    REQUIRE(r.value());
    CHECK(starts.count(r.value()->position.offset) == 1);
    CHECK(r.value()->position.offset > at[10].offset);
  }
}
