// spool-inspect's library half: verify and dump read a directory without changing it.
#include <filesystem>
#include <map>
#include <set>
#include <nlohmann/json.hpp>
#include <sstream>

#include "spool_test_util.hpp"
#include "zkit/spool/inspect.hpp"

using namespace spool_test;
using zkit::spool::Store;

namespace {

std::map<std::string, Bytes> snapshot(const std::string& dir) {
  std::map<std::string, Bytes> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    files[e.path().filename().string()] = read_file(e.path().string());
  }
  return files;
}

}  // namespace

TEST_CASE("Verify reports segments, cursor, backlog per producer and changes nothing",
          "[spool][inspect]") {
  TempDir dir;
  {
    Store store = open_store(options(dir.path()));
    for (std::uint64_t seq = 1; seq <= 4; ++seq) REQUIRE(store.append(frame(100, seq, 2)).is_ok());
    for (std::uint64_t seq = 1; seq <= 3; ++seq) REQUIRE(store.append(frame(200, seq, 5)).is_ok());
    require_ok(store.commit());
    auto got = read_all(store);
    require_ok(store.advance_cursor(got[1].next));  // producer 100's seq 1 and 2 acknowledged
    require_ok(store.close());
  }
  // A torn tail: verify notes it, recovery would cut it, verify must not.
  Bytes seg = read_file(dir.file(segment(1)));
  seg.push_back(std::byte{0x12});
  seg.push_back(std::byte{0x34});
  write_file(dir.file(segment(1)), seg);
  auto before = snapshot(dir.path());

  auto r = zkit::spool::verify(dir.path());
  REQUIRE(r.is_ok());
  const auto& v = r.value();
  CHECK(v.clean());
  REQUIRE(v.segments.size() == 1);
  CHECK(v.segments[0].batches == 7);
  CHECK(v.segments[0].messages == 23);
  CHECK(v.segments[0].tail_bytes == 2);
  REQUIRE(v.cursor.has_value());
  REQUIRE(v.backlog.size() == 2);
  CHECK(v.backlog[0].producer_id == 100);
  CHECK(v.backlog[0].batches == 2);
  CHECK(v.backlog[0].first_seq == 3);
  CHECK(v.backlog[0].last_seq == 4);
  CHECK(v.backlog[1].producer_id == 200);
  CHECK(v.backlog[1].messages == 15);
  std::ostringstream text;
  zkit::spool::print(v, text);
  CHECK(text.str().find("producer 200: 3 batches, 15 messages") != std::string::npos);
  CHECK(text.str().find("corrupt: 0") != std::string::npos);
  CHECK(snapshot(dir.path()) == before);

  CHECK(zkit::spool::verify(dir.file("missing")).status().code() == zkit::Code::kNotFound);
}

TEST_CASE("Dump prints header fields and payloads as text, hex or JSON", "[spool][inspect]") {
  TempDir dir;
  {
    Store store = open_store(options(dir.path()));
    REQUIRE(store.append(frame(5, 1, 2, 4)).is_ok());
    REQUIRE(store.append(frame(5, 2, 1, 4)).is_ok());
    require_ok(store.close());
  }
  auto before = snapshot(dir.path());
  using P = zkit::spool::DumpOptions::Payloads;

  std::ostringstream plain;
  require_ok(zkit::spool::dump(dir.path(), plain));
  CHECK(plain.str().find("batch producer=5 seq=1") != std::string::npos);
  CHECK(plain.str().find("messages=2") != std::string::npos);
  CHECK(plain.str().find("producers-snapshot") == std::string::npos);  // segments carry none now

  std::ostringstream text;
  zkit::spool::DumpOptions o;
  o.payloads = P::kText;
  require_ok(zkit::spool::dump(dir.path(), text, o));
  CHECK(text.str().find("p5s1m1") != std::string::npos);

  std::ostringstream hex;
  o.payloads = P::kHex;
  require_ok(zkit::spool::dump(dir.path(), hex, o));
  CHECK(hex.str().find("703573326d") != std::string::npos);  // "p5s2m"

  std::ostringstream json;
  o.payloads = P::kJson;
  o.producer_id = 5;
  require_ok(zkit::spool::dump(dir.path(), json, o));
  std::istringstream lines(json.str());
  std::string line;
  std::vector<nlohmann::json> records;
  while (std::getline(lines, line)) records.push_back(nlohmann::json::parse(line));
  REQUIRE(records.size() == 2);
  CHECK(records[0]["seq"] == 1);
  CHECK(records[0]["payloads"][1] == "p5s1m1");
  CHECK(records[1]["messages"] == 1);
  CHECK(snapshot(dir.path()) == before);
}

TEST_CASE("Dump and verify name every corrupt stretch of a damaged directory", "[spool][inspect]") {
  TempDir dir;
  {
    Store store = open_store(options(dir.path()));
    for (std::uint64_t seq = 1; seq <= 12; ++seq) REQUIRE(store.append(frame(1, seq, 4, 2000)).is_ok());
    require_ok(store.close());
  }
  Bytes seg = read_file(dir.file(segment(1)));
  seg[100] ^= std::byte{1};
  seg[40000] ^= std::byte{1};
  write_file(dir.file(segment(1)), seg);
  Bytes junk(100, std::byte{0x5a});
  write_file(dir.file(segment(7)), junk);
  write_file(dir.file("CURSOR"), junk);

  auto r = zkit::spool::verify(dir.path());
  REQUIRE(r.is_ok());
  CHECK_FALSE(r.value().clean());
  std::set<std::string> files;
  for (const auto& c : r.value().corrupt) files.insert(c.file);
  // Segments 1 and 2 were written; 3..6 are reported missing before the garbage segment 7.
  CHECK(files == std::set<std::string>{"CURSOR", segment(1), segment(3), segment(7)});
  std::size_t in_seg1 = 0;
  for (const auto& c : r.value().corrupt) in_seg1 += c.file == segment(1);
  CHECK(in_seg1 >= 2);

  std::ostringstream out;
  require_ok(zkit::spool::dump(dir.path(), out));
  CHECK(out.str().find("CORRUPT") != std::string::npos);
  CHECK(out.str().find("bad magic") != std::string::npos);
}

TEST_CASE("A stray file named like an out-of-range segment is ignored by open and foreign to verify",
          "[spool][inspect]") {
  TempDir dir;
  {
    Store store = open_store(options(dir.path()));
    for (std::uint64_t seq = 1; seq <= 3; ++seq) REQUIRE(store.append(frame(1, seq)).is_ok());
    require_ok(store.commit());
    require_ok(store.close());
  }
  // Past 2^64, the largest number, zero, and a short name: none is a segment of this spool.
  const std::vector<std::string> strays = {"99999999999999999999.seg", "18446744073709551615.seg",
                                           segment(0), "123.seg", "notes.txt"};
  for (const auto& name : strays) write_file(dir.file(name), Bytes(100, std::byte{0x41}));

  auto r = zkit::spool::verify(dir.path());
  REQUIRE(r.is_ok());
  const auto& v = r.value();
  CHECK(v.clean());
  REQUIRE(v.segments.size() == 1);
  CHECK(v.segments[0].file == segment(1));
  CHECK(v.batches == 3);
  std::set<std::string> foreign(v.foreign.begin(), v.foreign.end());
  CHECK(foreign == std::set<std::string>(strays.begin(), strays.end()));
  std::ostringstream text;
  zkit::spool::print(v, text);
  CHECK(text.str().find("99999999999999999999.seg") != std::string::npos);

  {
    Store store = open_store(options(dir.path()));
    auto got = read_all(store);
    REQUIRE(got.size() == 3);
    CHECK(got[2].seq == 3);
    REQUIRE(store.append(frame(1, 4)).is_ok());
    require_ok(store.commit());
    require_ok(store.close());
  }
  for (const auto& name : strays) CHECK(std::filesystem::exists(dir.file(name)));  // not ours to delete
}

TEST_CASE("Dump as JSON gives invalid UTF-8 (overlong forms, surrogates) as hex, never stops",
          "[spool][inspect]") {
  TempDir dir;
  const std::string overlong = "\xc0\xaf";    // '/' in two bytes: not UTF-8
  const std::string surrogate = "\xed\xa0\x80";  // U+D800: not UTF-8
  const std::string text = "caf\xc3\xa9\n";   // valid, with a control character
  {
    Store store = open_store(options(dir.path()));
    zkit::envelope::Encoder enc;
    enc.begin(8);
    enc.add(overlong);
    enc.add(surrogate);
    enc.add(text);
    zmq::message_t m = enc.finish(1, 1);
    REQUIRE(store.append({static_cast<const std::byte*>(m.data()), m.size()}).is_ok());
    REQUIRE(store.append(frame(8, 2, 1, 4)).is_ok());  // a record after it must be printed too
    require_ok(store.close());
  }
  zkit::spool::DumpOptions o;
  o.payloads = zkit::spool::DumpOptions::Payloads::kJson;
  std::ostringstream json;
  // Before: nlohmann's type_error 316 escaped from dump() mid-output (is_utf8_text let them by).
  REQUIRE_NOTHROW(require_ok(zkit::spool::dump(dir.path(), json, o)));
  std::istringstream lines(json.str());
  std::string line;
  std::vector<nlohmann::json> records;
  while (std::getline(lines, line)) records.push_back(nlohmann::json::parse(line));
  REQUIRE(records.size() == 2);
  const auto& p = records[0]["payloads"];
  REQUIRE(p.size() == 3);
  CHECK(p[0]["hex"] == "c0af");
  CHECK(p[1]["hex"] == "eda080");
  CHECK(p[2] == text);
  CHECK(records[1]["seq"] == 2);
}

TEST_CASE("A directory that is not a spool is reported as not a spool", "[spool][inspect]") {
  // Before: verify("/proc/self") returned a clean report of an empty spool.
  auto proc = zkit::spool::verify("/proc/self");
  REQUIRE_FALSE(proc.is_ok());
  CHECK(proc.status().code() == zkit::Code::kInvalidArgument);
  CHECK(proc.status().message().find("not a spool directory") != std::string::npos);
  TempDir dir;
  write_file(dir.file("notes.txt"), Bytes(3, std::byte{'x'}));
  CHECK(zkit::spool::verify(dir.path()).status().code() == zkit::Code::kInvalidArgument);
  std::ostringstream out;
  CHECK(zkit::spool::dump(dir.path(), out).code() == zkit::Code::kInvalidArgument);
  // A spool that holds nothing yet is one: open() made its LOCK and first segment.
  { Store store = open_store(options(dir.path())); }
  auto empty = zkit::spool::verify(dir.path());
  REQUIRE(empty.is_ok());
  CHECK(empty.value().clean());
  CHECK(empty.value().foreign == std::vector<std::string>{"notes.txt"});
}

TEST_CASE("Verify checks the PRODUCERS file too", "[spool][inspect]") {
  TempDir dir;
  {
    Store store = open_store(options(dir.path()));
    for (std::uint64_t p = 1; p <= 9; ++p) REQUIRE(store.append(frame(p, 1, 1, 20000)).is_ok());
    require_ok(store.commit());
    auto got = read_all(store);
    require_ok(store.advance_cursor(got.back().next));  // deletes segments: PRODUCERS written
    require_ok(store.close());
  }
  REQUIRE(std::filesystem::exists(dir.file("PRODUCERS")));
  auto ok = zkit::spool::verify(dir.path());
  REQUIRE(ok.is_ok());
  CHECK(ok.value().clean());
  CHECK(ok.value().foreign.empty());
  Bytes b = read_file(dir.file("PRODUCERS"));
  REQUIRE(b.size() > 60);
  b[50] ^= std::byte{0x40};  // inside the first record
  write_file(dir.file("PRODUCERS"), b);
  auto bad = zkit::spool::verify(dir.path());
  REQUIRE(bad.is_ok());
  REQUIRE_FALSE(bad.value().clean());
  CHECK(bad.value().corrupt[0].file == "PRODUCERS");
}
