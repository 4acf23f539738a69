// A disk smaller than a segment (defect 2): once the reader has acknowledged what is on disk the
// store frees it and writes again, whatever segment_bytes and max_bytes; disk_bytes counts what is
// on disk; a cursor write that failed for space is retried and a restart resends nothing that was
// acknowledged. The disk is FaultInjectionEnv's disk_bytes model (ENOSPC past N bytes, removing or
// truncating frees); scripts/spool-tmpfs-check.sh runs the first case on a real 4 MiB tmpfs.
#include "fault_env.hpp"
#include "spool_test_util.hpp"

using namespace spool_test;
using zkit::spool::FaultInjectionEnv;
using zkit::spool::Store;

namespace {

constexpr std::uint64_t kDisk = std::uint64_t{3} << 20;  // 3 MiB

zkit::spool::Options small_disk(const std::string& dir, FaultInjectionEnv& env) {
  zkit::spool::Options o;
  o.dir = dir;  // default segment_bytes (64 MiB), no max_bytes
  o.env = &env;
  o.cursor_interval = std::chrono::milliseconds(0);
  FaultInjectionEnv::Faults f;
  f.disk_bytes = kDisk;
  env.set_faults(f);
  return o;
}

}  // namespace

TEST_CASE("A disk smaller than one segment is left once the reader acknowledged what it holds",
          "[spool][full]") {
  TempDir dir(true);
  FaultInjectionEnv env;
  Store store = open_store(small_disk(dir.path(), env));
  std::vector<Bytes> frames;
  std::size_t received = 0;
  auto drain = [&] {
    auto got = read_all(store);
    for (const auto& r : got) {
      REQUIRE(received < frames.size());
      REQUIRE(r.frame == frames[received]);  // in order, each once
      ++received;
    }
    if (!got.empty()) (void)store.advance_cursor(got.back().next);  // may fail on the full disk
  };
  for (std::uint64_t seq = 1; seq <= 1000; ++seq) {  // 8 MB through a 3 MiB disk
    frames.push_back(frame(9, seq, 4, 2000));
    REQUIRE(store.append(frames.back()).is_ok());
    zkit::Status s = store.commit();
    // Full: the reader takes and acknowledges what is committed, and the store must then write.
    for (int retry = 0; !s && retry < 3; ++retry) {
      INFO(s.to_string());
      CHECK(store.stats().disk_bytes <= kDisk);  // before: the unwritten buffer counted too
      drain();
      s = store.commit();
    }
    INFO("batch " << seq << ": " << s.to_string());
    REQUIRE(s.is_ok());  // before the fix: "No space left on device" for good
    drain();
  }
  CHECK(received == frames.size());
  CHECK(store.stats().io_errors > 0);  // the disk was full at times
  CHECK(store.stats().disk_bytes <= kDisk);
  CHECK(store.stats().backlog_batches == 0);
}

TEST_CASE("A cursor write that failed on a full disk is retried; a restart resends nothing acked",
          "[spool][full]") {
  TempDir dir(true);
  FaultInjectionEnv env;
  auto opt = small_disk(dir.path(), env);
  std::vector<Bytes> frames;
  std::size_t committed = 0;
  {
    Store store = open_store(opt);
    while (true) {  // fill the disk: the last commit fails, with the disk full to the byte
      REQUIRE(frames.size() < 2000);
      frames.push_back(frame(3, frames.size() + 1, 4, 2000));
      REQUIRE(store.append(frames.back()).is_ok());
      if (!store.commit()) break;
      committed = frames.size();
    }
    auto got = read_all(store);
    REQUIRE(got.size() == committed);
    // All but the last committed batch acknowledged: their segment cannot go, and the cursor file
    // cannot be written now.
    auto adv = store.advance_cursor(got[got.size() - 2].next);
    INFO(adv.to_string());
    CHECK_FALSE(adv.is_ok());
    CHECK(store.next_sync_due().has_value());  // so the node calls commit() again (before: none)
    // Someone frees space: the next commit writes the waiting batch and the cursor.
    FaultInjectionEnv::Faults f;
    f.disk_bytes = kDisk + (std::uint64_t{64} << 10);
    env.set_faults(f);
    require_ok(store.commit());
    CHECK_FALSE(store.next_sync_due().has_value());
    CHECK(store.stats().disk_bytes <= kDisk + (std::uint64_t{64} << 10));
    // A crash now (no close): what the restart sees is on disk already.
    require_ok(env.simulate_power_loss());
    { Store crashed = std::move(store); }
    env.power_on();
  }
  env.clear_faults();
  Store store = open_store(opt);
  auto got = read_all(store);  // the last committed batch and the one that waited, no others
  REQUIRE(got.size() == 2);
  CHECK(got[0].frame == frames[committed - 1]);
  CHECK(got[1].frame == frames.back());
}

TEST_CASE("With max_bytes over the disk size, the full disk is left the same way", "[spool][full]") {
  TempDir dir(true);
  FaultInjectionEnv env;
  auto opt = small_disk(dir.path(), env);
  opt.max_bytes = std::uint64_t{1} << 30;  // far beyond the disk: segments of 64 MiB still
  Store store = open_store(opt);
  std::size_t received = 0;
  for (std::uint64_t seq = 1; seq <= 600; ++seq) {
    REQUIRE(store.append(frame(2, seq, 4, 2000)).is_ok());
    zkit::Status s = store.commit();
    for (int retry = 0; !s && retry < 3; ++retry) {
      auto got = read_all(store);
      received += got.size();
      if (!got.empty()) (void)store.advance_cursor(got.back().next);
      s = store.commit();
    }
    INFO("batch " << seq << ": " << s.to_string());
    REQUIRE(s.is_ok());
  }
  received += read_all(store).size();
  CHECK(received == 600);
}
