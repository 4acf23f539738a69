// Group state under power loss at every sync point (FaultInjectionEnv): after recovery no
// committed batch is lost (each was acked before the crash, is in the dead-letter log, or is
// delivered again), none acked before the last group-file write is delivered again, every batch
// handed out before the crash comes back with a count of at least 2, and at most max_unpersisted
// batches never handed out come back with one.
#include <spdlog/spdlog.h>

#include <map>
#include <random>
#include <set>

#include "fault_env.hpp"
#include "spool_test_util.hpp"
#include "zkit/spool/group.hpp"

using namespace spool_test;
using zkit::Result;
using zkit::Status;
using zkit::spool::Env;
using zkit::spool::FaultInjectionEnv;
using zkit::spool::Group;
using zkit::spool::GroupOptions;
using zkit::spool::Position;
using zkit::spool::StartKind;
using zkit::spool::Store;
using Clock = std::chrono::steady_clock;

namespace {

// Passes everything to a FaultInjectionEnv; the crash_at-th sync (a file's or a directory's) cuts
// the power instead of syncing, so a test can crash at each sync point in turn.
class CrashAtSync final : public Env {
 public:
  CrashAtSync(FaultInjectionEnv& fault, std::uint64_t crash_at)
      : fault_(fault), crash_at_(crash_at) {}
  bool crashed() const noexcept { return crashed_; }
  std::uint64_t syncs() const noexcept { return syncs_; }

  Result<std::unique_ptr<zkit::spool::WritableFile>> new_writable(const std::string& p) override {
    return wrap(fault_.new_writable(p));
  }
  Result<std::unique_ptr<zkit::spool::WritableFile>> reopen_writable(
      const std::string& p) override {
    return wrap(fault_.reopen_writable(p));
  }
  Result<std::unique_ptr<zkit::spool::RandomAccessFile>> open_readable(
      const std::string& p) override {
    return fault_.open_readable(p);
  }
  Status remove(const std::string& p) override { return fault_.remove(p); }
  Status rename(const std::string& a, const std::string& b) override { return fault_.rename(a, b); }
  Status sync_dir(const std::string& d) override {
    if (hit()) return Status::io_error("power lost at sync of " + d);
    return fault_.sync_dir(d);
  }
  Status create_dir(const std::string& d) override { return fault_.create_dir(d); }
  Status remove_dir(const std::string& d) override { return fault_.remove_dir(d); }
  bool exists(const std::string& p) override { return fault_.exists(p); }
  Result<std::vector<std::string>> list_dir(const std::string& d) override {
    return fault_.list_dir(d);
  }
  Result<std::uint64_t> file_size(const std::string& p) override { return fault_.file_size(p); }
  Result<std::uint64_t> free_bytes(const std::string& p) override { return fault_.free_bytes(p); }
  Result<std::unique_ptr<zkit::spool::FileLock>> lock(const std::string& p) override {
    return fault_.lock(p);
  }

 private:
  class File final : public zkit::spool::WritableFile {
   public:
    File(std::unique_ptr<zkit::spool::WritableFile> f, CrashAtSync& env)
        : f_(std::move(f)), env_(env) {}
    Status append(std::span<const std::byte> d) override { return f_->append(d); }
    Status sync() override {
      if (env_.hit()) return Status::io_error("power lost at a file sync");
      return f_->sync();
    }
    Status truncate(std::uint64_t n) override { return f_->truncate(n); }
    std::uint64_t size() const override { return f_->size(); }
    Status close() override { return f_->close(); }

   private:
    std::unique_ptr<zkit::spool::WritableFile> f_;
    CrashAtSync& env_;
  };

  Result<std::unique_ptr<zkit::spool::WritableFile>> wrap(
      Result<std::unique_ptr<zkit::spool::WritableFile>> f) {
    if (!f) return f.status();
    return std::unique_ptr<zkit::spool::WritableFile>(
        std::make_unique<File>(std::move(f.value()), *this));
  }
  bool hit() {
    if (crashed_) return true;
    if (++syncs_ != crash_at_) return false;
    crashed_ = true;
    (void)fault_.simulate_power_loss();
    return true;
  }

  FaultInjectionEnv& fault_;
  std::uint64_t crash_at_;
  std::uint64_t syncs_ = 0;
  bool crashed_ = false;
};

struct Model {
  std::set<std::uint64_t> committed, acked, dead, acked_at_persist, dead_at_persist;
  std::set<std::uint64_t> delivered;  // handed out at least once
};

GroupOptions group_options() {
  GroupOptions o;
  o.max_deliver = 2;
  o.persist_interval = std::chrono::milliseconds(0);  // persist_if_due writes whenever called
  o.max_unpersisted = 5;  // next() writes too, more often than every third step at times
  return o;
}

// A fixed random workload (the same whatever crash_at) until the crash or the end.
void run_workload(const std::string& dir, CrashAtSync& env, Model& m) {
  auto opt = options(dir);
  opt.env = &env;
  opt.cursor_interval = std::chrono::milliseconds(0);
  auto store_r = Store::open(opt);
  if (!store_r) return;  // crashed while opening
  Store store = std::move(store_r).value();
  auto g_r =
      Group::open(store, "g", group_options(), store.resolve_start(StartKind::kEarliest).value());
  if (!g_r) return;
  Group g = std::move(g_r).value();
  std::mt19937_64 rng(7);
  std::uint64_t seq = 0;
  std::map<std::uint64_t, Position> out;  // seq -> position
  for (int step = 0; step < 40 && !env.crashed(); ++step) {
    const int n = 1 + static_cast<int>(rng() % 4);
    std::vector<std::uint64_t> appended;
    for (int i = 0; i < n; ++i) {
      if (store.append(frame(1, ++seq, 2, 50 + rng() % 4000)).is_ok()) appended.push_back(seq);
    }
    if (!store.commit()) break;
    m.committed.insert(appended.begin(), appended.end());
    const int take = static_cast<int>(rng() % 6);
    for (int i = 0; i < take; ++i) {
      auto d = g.next(Clock::now());
      if (!d) return;
      if (!d.value()) break;
      out[d.value()->record.meta.seq] = d.value()->record.position;
      m.delivered.insert(d.value()->record.meta.seq);
    }
    std::vector<std::uint64_t> held;
    for (const auto& [s, p] : out) held.push_back(s);
    for (std::uint64_t s : held) {
      const unsigned what = rng() % 4;
      if (what == 0) {
        if (!g.ack(out[s])) return;
        m.acked.insert(s);
        out.erase(s);
      } else if (what == 1) {
        auto r = g.release(out[s], Clock::now());
        if (!r) return;
        if (env.crashed()) return;  // the dead-letter sync may be where the power went
        if (r.value()) m.dead.insert(s);
        out.erase(s);
      }
    }
    if (step % 3 == 2) {
      if (g.persist_if_due(Clock::now())) {
        m.acked_at_persist = m.acked;
        m.dead_at_persist = m.dead;
      }
    }
    if (env.crashed()) return;
    (void)store.set_retention_floor(g.floor());
  }
}

}  // namespace

TEST_CASE("Power loss at every sync point: no batch lost, at most the persist window redelivered",
          "[spool][group][fault]") {
  spdlog::set_level(spdlog::level::off);  // the crashed stores and groups log their failures
  std::uint64_t total = 0;
  {
    TempDir dir("zkit-group", memory_base());
    FaultInjectionEnv fault;
    CrashAtSync env(fault, 0);  // never crashes: counts the sync points
    Model m;
    run_workload(dir.path(), env, m);
    total = env.syncs();
    REQUIRE(m.committed.size() > 50);
    REQUIRE(!m.acked.empty());
    REQUIRE(!m.dead.empty());
  }
  REQUIRE(total > 100);
  for (std::uint64_t crash_at = 1; crash_at <= total + 1; ++crash_at) {
    INFO("crash at sync " << crash_at << " of " << total);
    TempDir dir("zkit-group", memory_base());
    FaultInjectionEnv fault;
    Model m;
    {
      CrashAtSync env(fault, crash_at);
      run_workload(dir.path(), env, m);
      if (!env.crashed()) require_ok(fault.simulate_power_loss());  // past the end: crash there
    }
    fault.power_on();
    auto opt = options(dir.path());
    opt.env = &fault;
    std::map<std::uint64_t, std::uint32_t> again;  // seq -> delivery count
    std::uint64_t flagged = 0;
    {
      Store store = open_store(opt);
      auto g_r = Group::open(store, "g", group_options(), Position{});
      INFO(g_r.status().to_string());
      REQUIRE(g_r.is_ok());
      Group g = std::move(g_r).value();
      for (int guard = 0; guard < 100000; ++guard) {
        auto d = g.next(Clock::now());
        REQUIRE(d.is_ok());
        if (!d.value()) break;
        again[d.value()->record.meta.seq] = d.value()->delivery_count;
        flagged += d.value()->delivery_count > 1 &&
                   m.delivered.count(d.value()->record.meta.seq) == 0;
        require_ok(g.ack(d.value()->record.position));
      }
    }
    std::set<std::uint64_t> in_dead;
    const std::string dead_dir = zkit::spool::dead_letter_dir(dir.path(), "g");
    if (fault.exists(dead_dir)) {
      auto dopt = options(dead_dir);
      dopt.env = &fault;
      Store dead = open_store(dopt);
      for (const auto& r : read_all(dead)) in_dead.insert(r.seq);
    }
    for (std::uint64_t s : m.committed) {
      INFO("batch " << s);
      CHECK((m.acked.count(s) + again.count(s) + in_dead.count(s)) > 0);
    }
    CHECK(flagged <= group_options().max_unpersisted);  // never handed out, counted as if
    for (std::uint64_t s : m.dead) {
      INFO("dead letter " << s);
      CHECK(in_dead.count(s) == 1);
    }
    for (const auto& [s, c] : again) {
      INFO("redelivered " << s << " with count " << c);
      // Handed out before the crash: its count says so.
      if (m.delivered.count(s) != 0) CHECK(c >= 2);
      CHECK(m.acked_at_persist.count(s) == 0);
      CHECK(m.dead_at_persist.count(s) == 0);
    }
  }
}

TEST_CASE("A floor past the log's end after power loss (unsynced log) moves to the end: new "
          "batches at those offsets are delivered",
          "[spool][group][fault]") {
  TempDir dir("zkit-group", memory_base());
  FaultInjectionEnv fault;
  auto opt = options(dir.path());
  opt.env = &fault;
  opt.fsync = zkit::spool::FsyncPolicy::every(std::chrono::hours(1));  // the log is not synced
  {
    Store store = open_store(opt);
    Group g = std::move(Group::open(store, "g", group_options(),
                                    store.resolve_start(StartKind::kEarliest).value()))
                  .value();
    for (std::uint64_t s = 1; s <= 10; ++s) REQUIRE(store.append(frame(1, s)).is_ok());
    require_ok(store.commit());
    for (int i = 0; i < 10; ++i) {
      auto d = g.next(Clock::now());
      REQUIRE(d.is_ok());
      REQUIRE(d.value());
      require_ok(g.ack(d.value()->record.position));
    }
    require_ok(g.persist());  // the group file is synced; the records it passed are not
    require_ok(fault.simulate_power_loss());
  }
  fault.power_on();
  Store store = open_store(opt);
  auto g = Group::open(store, "g", group_options(), Position{});
  REQUIRE(g.is_ok());
  CHECK(g.value().floor() == store.end());
  for (std::uint64_t s = 1; s <= 5; ++s) REQUIRE(store.append(frame(2, s)).is_ok());
  require_ok(store.commit());
  std::vector<std::uint64_t> seqs;
  for (int guard = 0; guard < 100; ++guard) {
    auto d = g.value().next(Clock::now());
    REQUIRE(d.is_ok());
    if (!d.value()) break;
    CHECK(d.value()->record.meta.producer_id == 2);
    seqs.push_back(d.value()->record.meta.seq);
  }
  CHECK(seqs == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
}

// Bug: batches handed out after the last group-file write came back after a crash with count 1.
TEST_CASE("After power loss every batch handed out before it comes back with a count of at least "
          "2, and at most max_unpersisted batches never handed out are flagged so",
          "[spool][group][fault]") {
  TempDir dir("zkit-group", memory_base());
  FaultInjectionEnv fault;
  auto opt = options(dir.path());
  opt.env = &fault;
  GroupOptions o;
  o.persist_interval = std::chrono::hours(1);  // only max_unpersisted makes next() write
  o.max_unpersisted = 8;
  constexpr std::uint64_t kBatches = 100, kHanded = 20;
  {
    Store store = open_store(opt);
    for (std::uint64_t s = 1; s <= kBatches; ++s) REQUIRE(store.append(frame(1, s)).is_ok());
    require_ok(store.commit());
    Group g = std::move(Group::open(store, "g", o, store.resolve_start(StartKind::kEarliest).value()))
                  .value();
    std::map<std::uint64_t, Position> at;
    for (std::uint64_t i = 0; i < kHanded; ++i) {
      auto d = g.next(Clock::now());
      REQUIRE(d.is_ok());
      REQUIRE(d.value());
      CHECK(d.value()->delivery_count == 1);
      at[d.value()->record.meta.seq] = d.value()->record.position;
    }
    CHECK(g.stats().persists == 3);  // created, then before the 9th and the 17th
    // One redelivered after the last write, one acked before it.
    REQUIRE(!g.release(at[3], Clock::now()).value());
    auto d = g.next(Clock::now());
    REQUIRE(d.is_ok());
    REQUIRE(d.value());
    CHECK(d.value()->delivery_count == 2);
    require_ok(g.ack(at[1]));
    require_ok(fault.simulate_power_loss());
  }
  fault.power_on();
  Store store = open_store(opt);
  auto g = Group::open(store, "g", o, Position{});
  REQUIRE(g.is_ok());
  std::map<std::uint64_t, std::uint32_t> count;
  for (int guard = 0; guard < 1000; ++guard) {
    auto d = g.value().next(Clock::now());
    REQUIRE(d.is_ok());
    if (!d.value()) break;
    count[d.value()->record.meta.seq] = d.value()->delivery_count;
    require_ok(g.value().ack(d.value()->record.position));
  }
  REQUIRE(count.size() == kBatches);  // acked after the last write: delivered again
  std::uint64_t flagged = 0;
  for (const auto& [seq, c] : count) {
    INFO("batch " << seq << " count " << c);
    if (seq <= kHanded) {
      CHECK(c >= 2);
    } else {
      flagged += c > 1;
      CHECK(c <= 2);
      if (seq > 16 + o.max_unpersisted) CHECK(c == 1);  // H was after batch 16
    }
  }
  CHECK(flagged <= o.max_unpersisted);
  CHECK(flagged == 4);  // 21..24: within the 8 after H that may have gone out
}

TEST_CASE("A group closed cleanly flags nothing on reopen", "[spool][group][fault]") {
  TempDir dir("zkit-group", memory_base());
  auto opt = options(dir.path());
  GroupOptions o;
  o.max_unpersisted = 8;
  {
    Store store = open_store(opt);
    for (std::uint64_t s = 1; s <= 30; ++s) REQUIRE(store.append(frame(1, s)).is_ok());
    require_ok(store.commit());
    Group g = std::move(Group::open(store, "g", o, store.resolve_start(StartKind::kEarliest).value()))
                  .value();
    for (int i = 0; i < 10; ++i) {
      auto d = g.next(Clock::now());
      REQUIRE(d.is_ok());
      REQUIRE(d.value());
      require_ok(g.ack(d.value()->record.position));
    }
    auto held = g.next(Clock::now());  // batch 11 is out at the close
    REQUIRE(held.is_ok());
    REQUIRE(held.value());
  }
  Store store = open_store(opt);
  auto g = Group::open(store, "g", o, Position{});
  REQUIRE(g.is_ok());
  for (std::uint64_t seq = 11; seq <= 30; ++seq) {
    auto d = g.value().next(Clock::now());
    REQUIRE(d.is_ok());
    REQUIRE(d.value());
    CHECK(d.value()->record.meta.seq == seq);
    CHECK(d.value()->delivery_count == (seq == 11 ? 2u : 1u));
  }
}

TEST_CASE("After power loss, batches appended after the reopen are first deliveries",
          "[spool][group][fault]") {
  TempDir dir("zkit-group", memory_base());
  FaultInjectionEnv fault;
  auto opt = options(dir.path());
  opt.env = &fault;
  GroupOptions o;
  o.persist_interval = std::chrono::hours(1);
  o.max_unpersisted = 8;
  {
    Store store = open_store(opt);
    for (std::uint64_t s = 1; s <= 4; ++s) REQUIRE(store.append(frame(1, s)).is_ok());
    require_ok(store.commit());
    Group g = std::move(Group::open(store, "g", o, store.resolve_start(StartKind::kEarliest).value()))
                  .value();
    for (int i = 0; i < 4; ++i) REQUIRE(g.next(Clock::now()).value());
    require_ok(fault.simulate_power_loss());
  }
  fault.power_on();
  Store store = open_store(opt);
  auto g = Group::open(store, "g", o, Position{});
  REQUIRE(g.is_ok());
  for (std::uint64_t s = 1; s <= 6; ++s) REQUIRE(store.append(frame(2, s)).is_ok());
  require_ok(store.commit());
  std::vector<std::pair<std::uint64_t, std::uint32_t>> got;  // producer, count
  for (int guard = 0; guard < 100; ++guard) {
    auto d = g.value().next(Clock::now());
    REQUIRE(d.is_ok());
    if (!d.value()) break;
    got.emplace_back(d.value()->record.meta.producer_id, d.value()->delivery_count);
  }
  REQUIRE(got.size() == 10);
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO(i);
    CHECK(got[i].first == (i < 4 ? 1u : 2u));
    CHECK(got[i].second == (i < 4 ? 2u : 1u));
  }
}
