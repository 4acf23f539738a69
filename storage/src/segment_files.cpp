// Segment file names and the cursor file's encoding (layout in log_format.hpp).
#include "segment_files.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "log_format.hpp"

namespace zkit::spool::files {

using namespace format;

std::string segment_name(std::uint64_t number) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(number));
  return std::string(buf) + kSegmentSuffix;
}

std::optional<std::uint64_t> parse_segment_name(const std::string& name) {
  const std::string suffix = kSegmentSuffix;
  if (name.size() != 20 + suffix.size() || !name.ends_with(suffix)) return std::nullopt;
  const char* first = name.data();
  const char* last = first + 20;
  if (!std::all_of(first, last, [](char c) { return c >= '0' && c <= '9'; })) return std::nullopt;
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(first, last, n);  // out of range past 2^64 - 1
  if (ec != std::errc{} || end != last || n < 1 || n > kMaxSegmentNumber) return std::nullopt;
  return n;
}

Result<std::vector<std::uint64_t>> list_segments(Env& env, const std::string& dir) {
  auto names = env.list_dir(dir);
  if (!names) return names.status();
  std::vector<std::uint64_t> numbers;
  for (const auto& n : names.value()) {
    if (auto number = parse_segment_name(n)) numbers.push_back(*number);
  }
  std::sort(numbers.begin(), numbers.end());
  return numbers;
}

std::vector<std::byte> encode_cursor(Position p) {
  std::vector<std::byte> b(kCursorFileSize);
  std::memcpy(b.data(), kCursorMagic.data(), kCursorMagic.size());
  put_u32(b.data() + 8, kCursorVersion);
  put_u64(b.data() + 16, p.segment);
  put_u64(b.data() + 24, p.offset);
  put_u32(b.data() + kCursorCrcOffset, crc32(std::span<const std::byte>(b).first(kCursorCrcOffset)));
  return b;
}

Result<Position> read_cursor(Env& env, const std::string& dir) {
  const std::string path = dir + "/" + kCursorName;
  if (!env.exists(path)) return Status::not_found("no cursor file " + path);
  auto f = env.open_readable(path);
  if (!f) return f.status();
  std::vector<std::byte> b(kCursorFileSize + 1);
  auto n = f.value()->read(0, b);
  if (!n) return n.status();
  if (n.value() != kCursorFileSize) {
    return Status::corruption("cursor file " + path + " has " + std::to_string(n.value()) +
                              " bytes, expected " + std::to_string(kCursorFileSize));
  }
  if (std::memcmp(b.data(), kCursorMagic.data(), kCursorMagic.size()) != 0) {
    return Status::corruption("cursor file " + path + ": bad magic");
  }
  if (get_u32(b.data() + kCursorCrcOffset) !=
      crc32(std::span<const std::byte>(b).first(kCursorCrcOffset))) {
    return Status::corruption("cursor file " + path + ": checksum mismatch");
  }
  if (get_u32(b.data() + 8) != kCursorVersion) {
    return Status::unsupported("cursor file " + path + ": unsupported version");
  }
  return Position{get_u64(b.data() + 16), get_u64(b.data() + 24)};
}

}  // namespace zkit::spool::files
