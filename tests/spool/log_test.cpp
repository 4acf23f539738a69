// The spool's log format seen through the Store: round trips across blocks and segments, torn
// tails at every byte, flipped bytes, empty, missing and garbage files.
#include <filesystem>

#include "spool_test_util.hpp"
#include "zkit/spool/inspect.hpp"

using namespace spool_test;
using zkit::spool::Store;

TEST_CASE("Records round-trip across block and segment boundaries", "[spool][log]") {
  TempDir dir;
  auto opt = options(dir.path());
  std::vector<Bytes> frames;
  // Sizes from tiny to several blocks, so records are FULL and FIRST/MIDDLE/LAST fragmented.
  const std::size_t sizes[] = {1, 16, 100, 1000, 20000, 40000, 70000, 5, 33000};
  {
    Store store = open_store(opt);
    std::uint64_t seq = 0;
    for (int round = 0; round < 4; ++round) {
      for (std::size_t size : sizes) {
        frames.push_back(frame(7, ++seq, 1, size));
        auto r = store.append(frames.back());
        INFO(r.status().to_string());
        REQUIRE(r.is_ok());
        CHECK(r.value().outcome == zkit::spool::AppendResult::Outcome::kStored);
        CHECK(r.value().ticket == seq);
      }
      require_ok(store.commit());
    }
    CHECK(store.committed_ticket() == frames.size());
    auto got = read_all(store);
    REQUIRE(got.size() == frames.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      CHECK(got[i].seq == i + 1);
      CHECK(got[i].frame == frames[i]);
      if (i > 0) CHECK(got[i - 1].next <= got[i].position);
    }
    CHECK(store.stats().segments > 3);
  }
  Store again = open_store(opt);
  auto got = read_all(again);
  REQUIRE(got.size() == frames.size());
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i].frame == frames[i]);
  auto st = again.stats();
  CHECK(st.corrupt_skipped == 0);
  CHECK(st.backlog_batches == frames.size());
}

TEST_CASE("A torn tail at every byte of the last record reads as end of log and is cut on open",
          "[spool][log]") {
  TempDir dir("zkit-spool", memory_base());
  auto opt = options(dir.path());
  zkit::spool::Position last_start;
  Bytes original;
  std::vector<Bytes> frames;
  {
    Store store = open_store(opt);
    // The first record fills most of block 0 so that the last one crosses into block 1 (FIRST +
    // LAST fragments, a trailer in between is possible).
    frames.push_back(frame(1, 1, 1, 32000));
    frames.push_back(frame(1, 2, 2, 200));
    REQUIRE(store.append(frames[0]).is_ok());
    REQUIRE(store.append(frames[1]).is_ok());
    frames.push_back(frame(1, 3, 4, 300));
    auto r = store.append(frames[2]);
    REQUIRE(r.is_ok());
    last_start = r.value().position;
    require_ok(store.close());
  }
  const std::string seg = dir.file(segment(1));
  original = read_file(seg);
  REQUIRE(last_start.offset < 32768);
  REQUIRE(original.size() > 32768);  // the last record crosses a block boundary

  for (std::uint64_t cut = last_start.offset; cut < original.size(); ++cut) {
    INFO("cut at " << cut);
    write_file(seg, std::span(original).first(cut));
    std::filesystem::remove(dir.file("CURSOR"));
    int reports = 0;
    auto o = opt;
    o.reporter = [&](const zkit::spool::CorruptRecord&) { ++reports; };
    {
      Store store = open_store(o);
      CHECK(std::filesystem::file_size(seg) == last_start.offset);
      auto got = read_all(store);
      REQUIRE(got.size() == 2);
      CHECK(got[1].frame == frames[1]);
      CHECK(store.highest_seq(1) == 2u);
      // The log continues cleanly after the cut.
      auto again = store.append(frames[2]);
      REQUIRE(again.is_ok());
      CHECK(again.value().outcome == zkit::spool::AppendResult::Outcome::kStored);
      require_ok(store.commit());
      auto rest = read_all(store);
      REQUIRE(rest.size() == 1);
      CHECK(rest[0].frame == frames[2]);
    }
    CHECK(reports == 0);
  }
}

TEST_CASE("Flipped bytes in the middle are skipped and reported with file and offset",
          "[spool][log]") {
  TempDir dir;
  auto opt = options(dir.path());
  opt.segment_bytes = 1 << 20;
  std::vector<Bytes> frames;
  std::vector<zkit::spool::Position> pos;
  {
    Store store = open_store(opt);
    for (std::uint64_t seq = 1; seq <= 30; ++seq) {
      frames.push_back(frame(9, seq, 4, 2500));  // ~10 KB: about three records per block
      auto r = store.append(frames.back());
      REQUIRE(r.is_ok());
      pos.push_back(r.value().position);
    }
    require_ok(store.close());
  }
  const std::string seg = dir.file(segment(1));
  Bytes bytes = read_file(seg);
  const std::size_t victim = 10;
  const std::uint64_t flip_at = pos[victim].offset + 200;
  bytes[flip_at] ^= std::byte{0x40};
  write_file(seg, bytes);

  auto report = zkit::spool::verify(dir.path());
  REQUIRE(report.is_ok());
  CHECK_FALSE(report.value().clean());
  REQUIRE(report.value().corrupt.size() >= 1);
  CHECK(report.value().corrupt[0].file == segment(1));
  CHECK(report.value().corrupt[0].offset <= flip_at);
  CHECK(read_file(seg) == bytes);  // verify changed nothing

  std::vector<zkit::spool::CorruptRecord> seen;
  auto o = opt;
  o.reporter = [&](const zkit::spool::CorruptRecord& c) { seen.push_back(c); };
  Store store = open_store(o);
  REQUIRE_FALSE(seen.empty());
  CHECK(seen[0].file == segment(1));
  CHECK(seen[0].offset <= flip_at);
  CHECK(seen[0].reason == "checksum mismatch");
  CHECK(store.stats().corrupt_skipped == seen.size());
  auto got = read_all(store);
  // The damaged record is gone; what follows its block is intact and in order.
  const std::uint64_t next_block = (flip_at / 32768 + 1) * 32768;
  std::vector<std::uint64_t> seqs;
  for (const auto& r : got) seqs.push_back(r.seq);
  CHECK(std::is_sorted(seqs.begin(), seqs.end()));
  CHECK(std::find(seqs.begin(), seqs.end(), victim + 1) == seqs.end());
  for (std::size_t i = 0; i < frames.size(); ++i) {
    if (pos[i].offset < pos[victim].offset || pos[i].offset >= next_block) {
      CHECK(std::find(seqs.begin(), seqs.end(), i + 1) != seqs.end());
    }
  }
  for (const auto& r : got) CHECK(r.frame == frames[r.seq - 1]);
  CHECK(store.highest_seq(9) == 30u);  // the good records after the damage still count
}

TEST_CASE("An empty directory, a missing directory and an empty segment open cleanly",
          "[spool][log]") {
  TempDir dir;
  SECTION("missing directory is created") {
    auto opt = options(dir.file("sub"));
    Store store = open_store(opt);
    CHECK(read_all(store).empty());
    CHECK(std::filesystem::exists(dir.file("sub/" + segment(1))));
  }
  SECTION("missing directory without create_if_missing is NotFound") {
    auto opt = options(dir.file("nope"));
    opt.create_if_missing = false;
    auto s = Store::open(opt);
    REQUIRE_FALSE(s.is_ok());
    CHECK(s.status().code() == zkit::Code::kNotFound);
  }
  SECTION("a zero-length last segment (crash right after create) is replaced") {
    write_file(dir.file(segment(4)), {});
    Store store = open_store(options(dir.path()));
    CHECK(read_all(store).empty());
    REQUIRE(store.append(frame(1, 1)).is_ok());
    require_ok(store.commit());
    CHECK(read_all(store).size() == 1);
  }
  SECTION("an empty directory reads nothing and stats are zero") {
    Store store = open_store(options(dir.path()));
    auto st = store.stats();
    CHECK(st.backlog_batches == 0);
    CHECK(st.segments == 1);
    CHECK_FALSE(store.highest_seq(1).has_value());
  }
}

TEST_CASE("Garbage segment files are reported clearly and skipped without a crash",
          "[spool][log]") {
  TempDir dir;
  auto opt = options(dir.path());
  {
    Store store = open_store(opt);
    REQUIRE(store.append(frame(2, 1)).is_ok());
    require_ok(store.close());
  }
  // A garbage file numbered between real ones, and garbage after a good header.
  Bytes junk(5000);
  for (std::size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<std::byte>(i * 31 + 7);
  write_file(dir.file(segment(2)), junk);
  Bytes good = read_file(dir.file(segment(1)));
  Bytes tailed = good;
  tailed.insert(tailed.end(), junk.begin(), junk.end());
  write_file(dir.file(segment(1)), tailed);
  {
    // Segment 3 gets a valid record after recovery; segment 2 stays garbage in the middle.
    std::vector<zkit::spool::CorruptRecord> seen;
    auto o = opt;
    o.reporter = [&](const zkit::spool::CorruptRecord& c) { seen.push_back(c); };
    Store store = open_store(o);
    bool named_bad_magic = false;
    for (const auto& c : seen) {
      if (c.file == segment(2) && c.reason.find("bad magic") != std::string::npos) named_bad_magic = true;
    }
    CHECK(named_bad_magic);
    auto got = read_all(store);
    REQUIRE(got.size() == 1);
    CHECK(got[0].seq == 1);
    REQUIRE(store.append(frame(2, 2)).is_ok());
    require_ok(store.commit());
    got = read_all(store);
    REQUIRE(got.size() == 1);
    CHECK(got[0].seq == 2);
    require_ok(store.advance_cursor(got[0].next));
  }
  auto report = zkit::spool::verify(dir.path());
  REQUIRE(report.is_ok());
  std::ostringstream text;
  zkit::spool::print(report.value(), text);
  INFO(text.str());
  // Everything was acknowledged, so the damaged segments are gone.
  CHECK(report.value().clean());
  CHECK(report.value().backlog.empty());
}

TEST_CASE("A segment file missing from the middle is reported and the rest still reads",
          "[spool][log]") {
  TempDir dir;
  auto opt = options(dir.path());
  std::uint64_t stored = 0;
  {
    Store store = open_store(opt);
    for (std::uint64_t seq = 1; seq <= 40; ++seq) {
      REQUIRE(store.append(frame(3, seq, 4, 1000)).is_ok());
      ++stored;
    }
    require_ok(store.close());
  }
  REQUIRE(std::filesystem::exists(dir.file(segment(3))));
  std::filesystem::remove(dir.file(segment(2)));
  auto report = zkit::spool::verify(dir.path());
  REQUIRE(report.is_ok());
  REQUIRE(report.value().corrupt.size() == 1);
  CHECK(report.value().corrupt[0].file == segment(2));
  CHECK(report.value().corrupt[0].reason.find("missing") != std::string::npos);

  std::vector<zkit::spool::CorruptRecord> seen;
  auto o = opt;
  o.reporter = [&](const zkit::spool::CorruptRecord& c) { seen.push_back(c); };
  Store store = open_store(o);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].file == segment(2));
  auto got = read_all(store);
  CHECK(got.size() < stored);
  CHECK(std::is_sorted(got.begin(), got.end(), [](const Read& a, const Read& b) { return a.seq < b.seq; }));
  CHECK(store.highest_seq(3) == 40u);
}
