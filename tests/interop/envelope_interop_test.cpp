// Interop of the batch envelope with a peer zkit did not write: tests/interop/envelope_peer.py
// (python3-msgpack and python3-zstandard, written from docs/wire-format.md) builds batches that
// zkit decodes, and decodes the batches zkit encodes. Files go through a fresh temporary directory.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "temp_dir.hpp"
#include "zkit/envelope.hpp"

using namespace zkit;
namespace fs = std::filesystem;
using Bytes = std::vector<std::byte>;
using Json = nlohmann::json;

using zkit::test::TempDir;

namespace {

// Runs the python peer; returns its exit status (its output goes to the test log).
int run_peer(const std::string& command, const fs::path& dir) {
  const std::string cmd = std::string(ZKIT_PYTHON) + " '" + ZKIT_SOURCE_DIR +
                          "/tests/interop/envelope_peer.py' " + command + " '" + dir.string() + "'";
  INFO(cmd);
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Bytes read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto* b = reinterpret_cast<const std::byte*>(c.data());
  return Bytes(b, b + c.size());
}

std::string hex(std::span<const std::byte> b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(b.size() * 2);
  for (std::byte x : b) {
    s += kDigits[static_cast<unsigned>(x) >> 4];
    s += kDigits[static_cast<unsigned>(x) & 15];
  }
  return s;
}

Bytes text(const std::string& s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return Bytes(p, p + s.size());
}

}  // namespace

TEST_CASE("zkit decodes batches a python msgpack peer built from the docs", "[interop]") {
  TempDir dir;
  REQUIRE(run_peer("write", dir.path()) == 0);
  std::ifstream in(fs::path(dir.path()) / "py_manifest.json");
  const Json manifest = Json::parse(in);
  REQUIRE(manifest["batches"].size() >= 5);
  int compressed = 0;
  for (const Json& want : manifest["batches"]) {
    const std::string file = want["file"];
    INFO(file);
    Bytes frame = read_file(fs::path(dir.path()) / file);
    auto h = envelope::peek(frame);
    REQUIRE(h.is_ok());
    CHECK(h->seq == want["seq"].get<std::uint64_t>());
    // Through a zmq::message_t, the way a socket hands frames over.
    auto b = envelope::decode(zmq::message_t(frame.data(), frame.size()));
    if (!b.is_ok()) FAIL(b.status().to_string());
    CHECK(b->header().version == 1);
    CHECK(b->header().flags == want["flags"].get<std::uint64_t>());
    CHECK(b->header().producer_id == want["producer_id"].get<std::uint64_t>());
    CHECK(b->header().seq == want["seq"].get<std::uint64_t>());
    CHECK(b->header().created_ns == want["created_ns"].get<std::uint64_t>());
    REQUIRE(b->size() == want["records"].size());
    std::size_t i = 0;
    for (auto r : *b) CHECK(hex(r) == want["records"][i++].get<std::string>());
    if (b->header().compression() == envelope::Compression::kZstd) ++compressed;
  }
  CHECK(compressed >= 1);
}

TEST_CASE("A python msgpack peer decodes batches zkit encoded", "[interop]") {
  TempDir dir;
  struct Case {
    std::string file;
    envelope::EncoderOptions options;
    std::uint64_t producer, seq, created;
    std::vector<Bytes> records;
  };
  envelope::EncoderOptions zstd;
  zstd.compression = envelope::Compression::kZstd;
  std::vector<Bytes> many;
  for (int i = 0; i < 1000; ++i) many.push_back(text("message number " + std::to_string(i % 50)));
  std::vector<Bytes> sizes;
  for (std::size_t n : {0, 1, 255, 256, 65535, 65536}) {
    Bytes r(n);
    for (std::size_t k = 0; k < n; ++k) r[k] = static_cast<std::byte>(k * 7 + n);
    sizes.push_back(r);
  }
  const std::vector<Case> cases{
      {"zkit_plain.bin", {}, 42, 7, 1764064800123456789ULL, {text("hello"), text("zkit")}},
      {"zkit_empty.bin", {}, 1, 1, 0, {}},
      {"zkit_zstd.bin", zstd, 5, 99, 123, many},
      {"zkit_sizes.bin", {}, 6, 2, 3, sizes},
      {"zkit_max.bin", {}, ~0ULL, ~0ULL, ~0ULL, {text("edge values")}},
  };
  Json manifest = {{"batches", Json::array()}};
  for (const Case& c : cases) {
    envelope::Encoder enc(c.options);
    enc.begin(c.producer);
    for (const Bytes& r : c.records) enc.add(std::span<const std::byte>(r));
    zmq::message_t frame = enc.finish(c.seq, c.created);
    auto h = envelope::peek(std::span(static_cast<const std::byte*>(frame.data()), frame.size()));
    REQUIRE(h.is_ok());
    std::ofstream(fs::path(dir.path()) / c.file, std::ios::binary)
        .write(static_cast<const char*>(frame.data()), static_cast<std::streamsize>(frame.size()));
    Json recs = Json::array();
    for (const Bytes& r : c.records) recs.push_back(hex(r));
    manifest["batches"].push_back({{"file", c.file},
                                   {"producer_id", c.producer},
                                   {"seq", c.seq},
                                   {"created_ns", c.created},
                                   {"flags", h->flags},
                                   {"records", recs}});
  }
  CHECK(manifest["batches"][2]["flags"] == 1);  // the zstd case really compressed
  std::ofstream(fs::path(dir.path()) / "zkit_manifest.json") << manifest.dump();
  CHECK(run_peer("check", dir.path()) == 0);
}
