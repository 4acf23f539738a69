// Power loss and I/O failures through FaultInjectionEnv: what was committed survives, what was
// not is lost only as a suffix, and ENOSPC/EIO are errors the store recovers from.
#include <filesystem>
#include <random>
#include <thread>

#include "spool_test_util.hpp"
#include "fault_env.hpp"

using namespace spool_test;
using zkit::spool::FaultInjectionEnv;
using zkit::spool::Store;

namespace {

zkit::spool::Options fault_options(const std::string& dir, FaultInjectionEnv& env) {
  auto o = options(dir);
  o.env = &env;
  o.cursor_interval = std::chrono::milliseconds(0);
  return o;
}

// The recovered log must be exactly frames[0..n) for some n in [at_least, frames.size()].
std::size_t check_prefix(Store& store, const std::vector<Bytes>& frames, std::size_t at_least) {
  auto got = read_all(store);
  REQUIRE(got.size() >= at_least);
  REQUIRE(got.size() <= frames.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("record " << i);
    REQUIRE(got[i].frame == frames[i]);
  }
  return got.size();
}

}  // namespace

TEST_CASE("Power loss with fsync always loses no committed batch", "[spool][fault]") {
  TempDir dir;
  FaultInjectionEnv env;
  std::mt19937_64 rng(42);
  std::vector<Bytes> frames;
  std::uint64_t seq = 0;
  for (int crash = 0; crash < 20; ++crash) {
    int corrupt = 0;
    auto opt = fault_options(dir.path(), env);
    opt.reporter = [&](const zkit::spool::CorruptRecord&) { ++corrupt; };
    std::size_t committed = frames.size();
    {
      Store store = open_store(opt);
      CHECK(corrupt == 0);
      CHECK(store.highest_seq(1).value_or(0) == committed);
      store.rewind();
      check_prefix(store, frames, committed);
      const int rounds = static_cast<int>(rng() % 6);
      for (int r = 0; r < rounds; ++r) {
        const int group = 1 + static_cast<int>(rng() % 8);
        for (int g = 0; g < group; ++g) {
          frames.push_back(frame(1, ++seq, 1 + rng() % 20, 1 + rng() % 3000));
          REQUIRE(store.append(frames.back()).is_ok());
        }
        require_ok(store.commit());
        committed = frames.size();
      }
      // Appended but never committed: may be lost.
      for (int g = static_cast<int>(rng() % 4); g > 0; --g) {
        frames.push_back(frame(1, ++seq, 3, 100));
        REQUIRE(store.append(frames.back()).is_ok());
      }
      require_ok(env.simulate_power_loss());
    }  // the crashed store goes away without changing anything: the power is off
    env.power_on();
    Store store = open_store(opt);
    CHECK(corrupt == 0);
    std::size_t n = check_prefix(store, frames, committed);
    CHECK(n == committed);  // the uncommitted tail never reached the file
    frames.resize(n);
    seq = n;
  }
  CHECK(frames.size() > 20);
}

TEST_CASE("Power loss without fsync loses exactly an unsynced suffix, never a middle",
          "[spool][fault]") {
  TempDir dir;
  FaultInjectionEnv env;
  std::mt19937_64 rng(7);
  std::vector<Bytes> frames;
  std::uint64_t seq = 0;
  for (int crash = 0; crash < 15; ++crash) {
    int corrupt = 0;
    auto opt = fault_options(dir.path(), env);
    opt.fsync = zkit::spool::FsyncPolicy::every(std::chrono::milliseconds(2));
    if (crash % 3 == 2) opt.fsync = zkit::spool::FsyncPolicy::never();
    opt.reporter = [&](const zkit::spool::CorruptRecord&) { ++corrupt; };
    std::size_t synced = frames.size();
    {
      Store store = open_store(opt);
      const int batches = 20 + static_cast<int>(rng() % 40);
      for (int b = 0; b < batches; ++b) {
        frames.push_back(frame(1, ++seq, 1 + rng() % 10, 1 + rng() % 5000));
        auto before = store.stats().fsyncs;
        REQUIRE(store.append(frames.back()).is_ok());
        // A segment roll syncs the end of the old segment first.
        if (store.stats().fsyncs != before) synced = frames.size() - 1;
        before = store.stats().fsyncs;
        require_ok(store.commit());  // written (acknowledged), synced only when the interval passed
        if (store.stats().fsyncs != before) synced = frames.size();
        if (rng() % 8 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(3));
      }
      require_ok(env.simulate_power_loss());
    }  // the crashed store goes away without changing anything: the power is off
    env.power_on();
    Store store = open_store(opt);
    CHECK(corrupt == 0);
    std::size_t n = check_prefix(store, frames, synced);
    CHECK(n == synced);  // this Env drops every unsynced byte: exactly the suffix after the sync
    frames.resize(n);
    seq = n;
  }
}

TEST_CASE("ENOSPC on write: commit fails, nothing acknowledged is lost, the retry succeeds",
          "[spool][fault]") {
  TempDir dir;
  FaultInjectionEnv env;
  auto opt = fault_options(dir.path(), env);
  std::vector<Bytes> frames;
  Store store = open_store(opt);
  for (std::uint64_t seq = 1; seq <= 10; ++seq) {
    frames.push_back(frame(4, seq, 5, 500));
    REQUIRE(store.append(frames.back()).is_ok());
  }
  require_ok(store.commit());
  const auto acked = store.committed_ticket();

  FaultInjectionEnv::Faults faults;
  faults.write_budget = 3000;  // the next commit writes part of its bytes, then the disk is full
  faults.write_errno = ENOSPC;
  env.set_faults(faults);
  for (std::uint64_t seq = 11; seq <= 20; ++seq) {
    frames.push_back(frame(4, seq, 5, 500));
    REQUIRE(store.append(frames.back()).is_ok());
  }
  auto s = store.commit();
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.code() == zkit::Code::kIOError);
  CHECK(s.message().find("No space left on device") != std::string::npos);
  CHECK(store.committed_ticket() == acked);
  CHECK(store.commit().code() == zkit::Code::kIOError);  // still full: still an error
  CHECK(store.stats().io_errors >= 2);
  CHECK(read_all(store).size() == 10);  // the reader sees only what is committed

  env.clear_faults();
  require_ok(store.commit());  // cuts the partial write and writes again
  CHECK(store.committed_ticket() == 20);
  auto more = read_all(store);
  REQUIRE(more.size() == 10);
  CHECK(more.front().seq == 11);

  require_ok(env.simulate_power_loss());
  { Store crashed = std::move(store); }
  env.power_on();
  int corrupt = 0;
  opt.reporter = [&](const zkit::spool::CorruptRecord&) { ++corrupt; };
  Store again = open_store(opt);
  check_prefix(again, frames, frames.size());
  CHECK(corrupt == 0);
}

TEST_CASE("EIO on fsync: the batches stay unacknowledged and are rewritten when the disk recovers",
          "[spool][fault]") {
  TempDir dir;
  FaultInjectionEnv env;
  auto opt = fault_options(dir.path(), env);
  std::vector<Bytes> frames;
  {
    Store store = open_store(opt);
    frames.push_back(frame(8, 1));
    REQUIRE(store.append(frames.back()).is_ok());
    require_ok(store.commit());

    FaultInjectionEnv::Faults faults;
    faults.fail_sync = true;
    faults.sync_errno = EIO;
    env.set_faults(faults);
    frames.push_back(frame(8, 2));
    REQUIRE(store.append(frames.back()).is_ok());
    auto s = store.commit();
    REQUIRE_FALSE(s.is_ok());
    CHECK(s.message().find("Input/output error") != std::string::npos);
    CHECK(store.committed_ticket() == 1);

    SECTION("power lost while failing: the acknowledged batch survives") {
      require_ok(env.simulate_power_loss());
      { Store crashed = std::move(store); }
      env.power_on();
      Store again = open_store(opt);
      check_prefix(again, frames, 1);
    }
    SECTION("the disk recovers") {
      env.clear_faults();
      require_ok(store.commit());
      CHECK(store.committed_ticket() == 2);
      require_ok(env.simulate_power_loss());
      { Store crashed = std::move(store); }
      env.power_on();
      Store again = open_store(opt);
      CHECK(check_prefix(again, frames, 2) == 2);
    }
  }
}

TEST_CASE("A failed segment create refuses the append and the next one succeeds", "[spool][fault]") {
  TempDir dir;
  FaultInjectionEnv env;
  auto opt = fault_options(dir.path(), env);
  Store store = open_store(opt);
  std::vector<Bytes> frames;
  std::uint64_t seq = 0;
  FaultInjectionEnv::Faults faults;
  faults.fail_create = true;
  zkit::Status refused;
  env.set_faults(faults);
  for (int i = 0; i < 50 && refused.is_ok(); ++i) {  // until a roll needs a new file
    Bytes f = frame(2, seq + 1, 4, 1000);
    auto r = store.append(f);
    if (!r.is_ok()) {
      refused = r.status();
      break;
    }
    frames.push_back(f);
    ++seq;
    require_ok(store.commit());
  }
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.code() == zkit::Code::kIOError);
  env.clear_faults();
  frames.push_back(frame(2, seq + 1, 4, 1000));
  REQUIRE(store.append(frames.back()).is_ok());
  require_ok(store.commit());
  check_prefix(store, frames, frames.size());
}

TEST_CASE("Random faults and power losses never lose a committed batch nor reorder the log",
          "[spool][fault]") {
  TempDir dir;
  FaultInjectionEnv env;
  std::mt19937_64 rng(1234);
  std::vector<Bytes> frames;  // every batch the store may hold, in append order
  std::size_t committed = 0;
  std::uint64_t seq = 0;
  for (int life = 0; life < 12; ++life) {
    env.power_on();  // the store of the previous life was destroyed with the power off
    auto opt = fault_options(dir.path(), env);
    int corrupt = 0;
    opt.reporter = [&](const zkit::spool::CorruptRecord&) { ++corrupt; };
    Store store = open_store(opt);
    CHECK(corrupt == 0);
    std::size_t n = check_prefix(store, frames, committed);
    frames.resize(n);
    committed = n;
    seq = n;
    for (int op = 0; op < 40; ++op) {
      switch (rng() % 6) {
        case 0: {
          FaultInjectionEnv::Faults f;
          f.write_budget = rng() % 20000;
          env.set_faults(f);
          break;
        }
        case 1: {
          FaultInjectionEnv::Faults f;
          f.fail_sync = true;
          env.set_faults(f);
          break;
        }
        case 2:
          env.clear_faults();
          break;
        default: {
          Bytes fr = frame(1, seq + 1, 1 + rng() % 8, 1 + rng() % 4000);
          auto r = store.append(fr);
          if (r.is_ok()) {
            frames.resize(seq);
            frames.push_back(fr);
            ++seq;
          }
          if (store.commit().is_ok()) committed = frames.size();
          CHECK(store.committed_ticket() <= store.appended_ticket());
        }
      }
    }
    env.clear_faults();
    require_ok(env.simulate_power_loss());
  }
  CHECK(committed > 0);
}

TEST_CASE("A cursor that outlived the unsynced end of its segment is cut back and rewritten on open",
          "[spool][fault]") {
  TempDir dir;
  FaultInjectionEnv env;
  auto o = fault_options(dir.path(), env);
  o.fsync = zkit::spool::FsyncPolicy::every(std::chrono::hours(1));
  {
    // Batches written, forwarded and acknowledged, never synced; the cursor file is synced.
    Store store = open_store(o);
    std::uint64_t seq = 0;
    for (int i = 0; i < 50; ++i) REQUIRE(store.append(frame(1, ++seq, 3, 40)).is_ok());
    require_ok(store.commit());
    auto got = read_all(store);
    REQUIRE(got.size() == 50);
    require_ok(store.advance_cursor(got.back().next));
    require_ok(store.persist_cursor());
    require_ok(env.simulate_power_loss());
  }
  env.power_on();
  // The log is shorter than the cursor now; new batches of another size fill the same offsets.
  std::vector<std::uint64_t> want;
  {
    Store store = open_store(o);
    for (std::uint64_t seq = 100; seq < 130; ++seq) {
      REQUIRE(store.append(frame(2, seq, 1, 7)).is_ok());
      want.push_back(seq);
    }
    require_ok(store.commit());
    require_ok(store.close());  // synced; nothing acknowledged
  }
  Store store = open_store(o);
  std::vector<std::uint64_t> seqs;
  for (const Read& r : read_all(store)) seqs.push_back(r.seq);
  CHECK(seqs == want);
  CHECK(store.stats().backlog_batches == want.size());
}

TEST_CASE("Power loss after acknowledged segments were deleted keeps their producers' highest seq",
          "[spool][fault]") {
  TempDir dir;
  FaultInjectionEnv env;
  auto opt = fault_options(dir.path(), env);
  Store store = open_store(opt);
  // Producer p sends one 20 KB batch with seq 100 + p: three to a 64 KiB segment.
  for (std::uint64_t p = 1; p <= 30; ++p) REQUIRE(store.append(frame(p, 100 + p, 1, 20000)).is_ok());
  require_ok(store.commit());
  auto got = read_all(store);
  REQUIRE(got.size() == 30);
  require_ok(store.advance_cursor(got.back().next));  // every segment but the active one goes
  CHECK_FALSE(std::filesystem::exists(dir.file(segment(1))));
  require_ok(env.simulate_power_loss());  // nothing unsynced survives: the PRODUCERS file must be
  { Store crashed = std::move(store); }
  env.power_on();
  Store again = open_store(opt);
  for (std::uint64_t p = 1; p <= 30; ++p) {
    INFO("producer " << p);
    CHECK(again.highest_seq(p) == 100 + p);
    auto dup = again.append(frame(p, 100 + p, 1, 20000));
    REQUIRE(dup.is_ok());
    CHECK(dup.value().outcome == zkit::spool::AppendResult::Outcome::kDuplicate);
  }
  CHECK(read_all(again).empty());
}
