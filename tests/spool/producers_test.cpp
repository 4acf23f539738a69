// Duplicate suppression: the per-(scope, producer) table is bounded and does not grow the segments
// (defect 3), and a forged (producer, seq) cannot make the store discard other batches (defect 4).
#include <filesystem>

#include "spool_test_util.hpp"

using namespace spool_test;
using zkit::spool::AppendResult;
using zkit::spool::Store;

namespace {

struct DirUse {
  std::uint64_t files = 0;
  std::uint64_t bytes = 0;
};
DirUse dir_use(const std::string& dir) {
  DirUse u;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    ++u.files;
    u.bytes += e.file_size();
  }
  return u;
}

bool stored(Store& store, const Bytes& f, std::uint64_t scope = 0) {
  auto h = zkit::envelope::peek(f).value();
  auto r = store.append(f, {h.producer_id, h.seq, 1, h.record_count, scope});
  INFO(r.status().to_string());
  REQUIRE(r.is_ok());
  return r.value().outcome == AppendResult::Outcome::kStored;
}

}  // namespace

TEST_CASE("100000 distinct producers: files and bytes follow the data, the table its bound",
          "[spool][producers]") {
  TempDir dir(true);
  auto opt = options(dir.path());  // 64 KiB segments
  opt.max_producers = 1000;
  std::uint64_t data = 0;
  {
    Store store = open_store(opt);
    // Half of them unacknowledged (all kept), then the reader catches up and every segment but
    // the active one goes: the producers last seen there move to the PRODUCERS file.
    for (std::uint64_t p = 1; p <= 100000; ++p) {
      Bytes f = frame(p, 1, 1, 8);
      data += f.size();
      REQUIRE(stored(store, f));
      if (p % 100 == 0) require_ok(store.commit());
      if (p == 50000) {
        DirUse u = dir_use(dir.path());
        INFO("files " << u.files << " bytes " << u.bytes << " data " << data);
        // ~39 bytes of framing per record; before the fix: a snapshot of every producer so far in
        // every segment (7,951 files and 1 GB for 12,000 producers).
        CHECK(u.bytes < 2 * data + 2 * opt.segment_bytes);
        CHECK(u.files < 2 * data / opt.segment_bytes + 4);
      }
      if (p > 50000 && p % 1000 == 0) {
        auto got = read_all(store);
        REQUIRE_FALSE(got.empty());
        require_ok(store.advance_cursor(got.back().next));
      }
    }
    require_ok(store.commit());
    auto st = store.stats();
    CHECK(st.producers == 1000);
    CHECK(st.producers_forgotten == 99000);
    CHECK(st.stored == 100000);
    DirUse u = dir_use(dir.path());
    INFO("files " << u.files << " bytes " << u.bytes);
    // What is left: the unacknowledged tail, at most the table in PRODUCERS (24 bytes a pair).
    CHECK(u.bytes < 3 * opt.segment_bytes + 2 * 1000 * 24 + 64 * 1024);
    CHECK(u.files <= 8);
    // A recent producer is suppressed, a forgotten one is not.
    CHECK_FALSE(stored(store, frame(100000, 1, 1, 8)));
    CHECK(store.highest_seq(1) == std::nullopt);
  }
  Store store = open_store(opt);
  CHECK(store.stats().producers == 1000);
  CHECK(store.highest_seq(99999) == 1u);  // its segment was deleted: kept by PRODUCERS
  CHECK_FALSE(stored(store, frame(99999, 1, 1, 8)));
  CHECK_FALSE(stored(store, frame(100000, 1, 1, 8)));
}

TEST_CASE("A forged seq 2^63 does not make the real producer's batches duplicates",
          "[spool][producers]") {
  TempDir dir;
  auto opt = options(dir.path());
  Store store = open_store(opt);
  REQUIRE(stored(store, frame(777, std::uint64_t{1} << 63)));
  int kept = 0;
  for (std::uint64_t seq = 1; seq <= 100; ++seq) kept += stored(store, frame(777, seq));
  CHECK(kept == 100);  // before the fix: 0 (all acknowledged as duplicates, none stored)
  CHECK(store.stats().seq_restarts == 1);
  // The real producer's resends are still suppressed.
  CHECK_FALSE(stored(store, frame(777, 100)));
  CHECK_FALSE(stored(store, frame(777, 37)));
  require_ok(store.commit());
  CHECK(read_all(store).size() == 101);
}

TEST_CASE("Duplicates are suppressed only within the window below the highest seq",
          "[spool][producers]") {
  TempDir dir;
  auto opt = options(dir.path());
  opt.duplicate_window = 10;
  Store store = open_store(opt);
  REQUIRE(stored(store, frame(1, 100)));
  CHECK_FALSE(stored(store, frame(1, 100)));
  CHECK_FALSE(stored(store, frame(1, 91)));  // 100 - 10 < 91
  CHECK(stored(store, frame(1, 90)));        // outside: a restarted sequence, stored
  CHECK(store.highest_seq(1) == 90u);
  CHECK(stored(store, frame(1, 91)));
}

TEST_CASE("Scopes are separate and kNoDedupe is never suppressed nor remembered",
          "[spool][producers]") {
  TempDir dir;
  auto opt = options(dir.path());
  {
    Store store = open_store(opt);
    // A --pull frame (kNoDedupe) with the producer id and a high seq of a real sender.
    REQUIRE(stored(store, frame(777, 5000), zkit::spool::kNoDedupe));
    REQUIRE(stored(store, frame(777, 5000), zkit::spool::kNoDedupe));  // not suppressed either
    CHECK(store.highest_seq(777, zkit::spool::kNoDedupe) == std::nullopt);
    CHECK(store.highest_seq(777) == std::nullopt);
    // A peer with another CURVE key (scope 42) does not shadow the unauthenticated one (0).
    REQUIRE(stored(store, frame(777, 10), 42));
    CHECK(stored(store, frame(777, 1)));
    CHECK(stored(store, frame(777, 2)));
    CHECK_FALSE(stored(store, frame(777, 9), 42));
    CHECK(store.highest_seq(777, 42) == 10u);
    CHECK(store.highest_seq(777) == 2u);
    require_ok(store.commit());
  }
  Store store = open_store(opt);  // the scopes are stored with the records
  CHECK(store.highest_seq(777, 42) == 10u);
  CHECK(store.highest_seq(777) == 2u);
  CHECK(store.highest_seq(777, zkit::spool::kNoDedupe) == std::nullopt);
  CHECK_FALSE(stored(store, frame(777, 10), 42));
  CHECK(stored(store, frame(777, 5000), zkit::spool::kNoDedupe));
}

TEST_CASE("Bad duplicate options are refused", "[spool][producers]") {
  TempDir dir;
  auto opt = options(dir.path());
  opt.max_producers = 0;
  CHECK(Store::open(opt).status().code() == zkit::Code::kInvalidArgument);
  opt.max_producers = 1;
  opt.duplicate_window = 0;
  CHECK(Store::open(opt).status().code() == zkit::Code::kInvalidArgument);
}
