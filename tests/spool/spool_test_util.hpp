// Helpers for the spool storage tests: a temporary directory, batch frames, reading a whole store.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "zkit/envelope.hpp"
#include "temp_dir.hpp"
#include "zkit/spool/store.hpp"

namespace spool_test {

using Bytes = std::vector<std::byte>;

using zkit::test::TempDir;

// For loops over many reopen/truncate cycles, which ext4 makes wait on writeback: /dev/shm when it
// exists, else the temp directory. Use as TempDir dir("zkit-spool", memory_base()).
inline std::filesystem::path memory_base() {
  return std::filesystem::is_directory("/dev/shm") ? std::filesystem::path("/dev/shm")
                                                   : std::filesystem::temp_directory_path();
}

// A batch frame from `producer` with `count` messages of `size` bytes each; message i of the
// batch reads "p<producer>s<seq>m<i>" padded with '.'.
inline Bytes frame(std::uint64_t producer, std::uint64_t seq, std::size_t count = 3,
                   std::size_t size = 16) {
  zkit::envelope::Encoder enc;
  enc.begin(producer);
  for (std::size_t i = 0; i < count; ++i) {
    std::string m = "p" + std::to_string(producer) + "s" + std::to_string(seq) + "m" + std::to_string(i);
    m.resize(std::max(size, m.size()), '.');
    enc.add(m);
  }
  zmq::message_t msg = enc.finish(seq, 1);
  auto* p = static_cast<const std::byte*>(msg.data());
  return Bytes(p, p + msg.size());
}

inline zkit::spool::Options options(const std::string& dir) {
  zkit::spool::Options o;
  o.dir = dir;
  o.segment_bytes = 64 * 1024;
  return o;
}

inline zkit::spool::Store open_store(const zkit::spool::Options& o) {
  auto s = zkit::spool::Store::open(o);
  INFO(s.status().to_string());
  REQUIRE(s.is_ok());
  return std::move(s).value();
}

struct Read {
  std::uint64_t producer, seq;
  Bytes frame;
  zkit::spool::Position position, next;
};

// Reads every committed batch from the store's reader onward.
inline std::vector<Read> read_all(zkit::spool::Store& store) {
  std::vector<Read> out;
  for (int guard = 0; guard < 1000000; ++guard) {
    auto r = store.read_next();
    INFO(r.status().to_string());
    REQUIRE(r.is_ok());
    if (!r.value()) break;
    const auto& rec = *r.value();
    out.push_back({rec.meta.producer_id, rec.meta.seq, Bytes(rec.frame.begin(), rec.frame.end()),
                   rec.position, rec.next});
  }
  return out;
}

inline void require_ok(const zkit::Status& s) {
  INFO(s.to_string());
  REQUIRE(s.is_ok());
}

inline Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Bytes b(c.size());
  if (!c.empty()) std::memcpy(b.data(), c.data(), c.size());
  return b;
}

inline void write_file(const std::string& path, std::span<const std::byte> bytes) {
  // Unlink first: ext4 flushes a file truncated to zero and rewritten when it is closed.
  std::filesystem::remove(path);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline std::string segment(std::uint64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020llu.seg", static_cast<unsigned long long>(n));
  return buf;
}

}  // namespace spool_test
