// A bounded reader for the few MessagePack types zkit's formats use (unsigned ints, arrays, bin,
// str). It never reads past its end, never allocates, and reports what it expected and the byte
// offset where it failed. The envelope and the reliable-link codec use it instead of building a
// msgpack::object tree, so that peeking a header is O(1) and records stay spans into the frame.
// The success path allocates nothing; an error builds its message (which may throw std::bad_alloc,
// hence no noexcept on the readers).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

#include "zkit/status.hpp"

namespace zkit::detail {

// MessagePack type bytes (https://github.com/msgpack/msgpack/blob/master/spec.md).
inline constexpr std::uint8_t kFixArrayMask = 0x90;  // 1001xxxx
inline constexpr std::uint8_t kFixStrMask = 0xa0;    // 101xxxxx
inline constexpr std::uint8_t kBin8 = 0xc4, kBin16 = 0xc5, kBin32 = 0xc6;
inline constexpr std::uint8_t kUint8 = 0xcc, kUint16 = 0xcd, kUint32 = 0xce, kUint64 = 0xcf;
inline constexpr std::uint8_t kStr8 = 0xd9, kStr16 = 0xda, kStr32 = 0xdb;
inline constexpr std::uint8_t kArray16 = 0xdc, kArray32 = 0xdd;

inline std::string hex_byte(std::uint8_t b) {
  char s[8];
  std::snprintf(s, sizeof s, "0x%02x", b);
  return s;
}

class Cursor {
 public:
  Cursor(const std::byte* data, std::size_t size, std::size_t base_offset = 0) noexcept
      : p_(data), end_(data + size), base_(base_offset), begin_(data) {}

  std::size_t offset() const noexcept { return base_ + static_cast<std::size_t>(p_ - begin_); }
  std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - p_); }
  const std::byte* position() const noexcept { return p_; }
  bool at_end() const noexcept { return p_ == end_; }
  // Moves past n bytes the caller has already checked are there (n <= remaining()).
  void skip(std::size_t n) noexcept { p_ += n; }

  Status read_uint(const char* field, std::uint64_t& out) {
    std::uint8_t t = 0;
    if (Status s = type_byte(field, t); !s) return s;
    if (t <= 0x7f) {
      out = t;
      return {};
    }
    int n = t == kUint8 ? 1 : t == kUint16 ? 2 : t == kUint32 ? 4 : t == kUint64 ? 8 : 0;
    if (n == 0) return wrong_type(field, "an unsigned integer", t);
    return big_endian(field, n, out);
  }

  Status read_array(const char* field, std::uint64_t& count) {
    std::uint8_t t = 0;
    if (Status s = type_byte(field, t); !s) return s;
    if ((t & 0xf0) == kFixArrayMask) {
      count = t & 0x0f;
      return {};
    }
    if (t == kArray16) return big_endian(field, 2, count);
    if (t == kArray32) return big_endian(field, 4, count);
    return wrong_type(field, "an array", t);
  }

  // bin8/16/32: returns the payload as a span into the buffer, after checking it fits.
  Status read_bin(const char* field, std::span<const std::byte>& out) {
    std::uint8_t t = 0;
    if (Status s = type_byte(field, t); !s) return s;
    int n = t == kBin8 ? 1 : t == kBin16 ? 2 : t == kBin32 ? 4 : 0;
    if (n == 0) return wrong_type(field, "bin", t);
    return payload(field, n, out);
  }

  Status read_str(const char* field, std::span<const std::byte>& out) {
    std::uint8_t t = 0;
    if (Status s = type_byte(field, t); !s) return s;
    if ((t & 0xe0) == kFixStrMask) {
      std::uint64_t len = t & 0x1f;
      return take(field, len, out);
    }
    int n = t == kStr8 ? 1 : t == kStr16 ? 2 : t == kStr32 ? 4 : 0;
    if (n == 0) return wrong_type(field, "str", t);
    return payload(field, n, out);
  }

  // "truncated at byte N (field)": the data ends at byte N while `field` needs more.
  Status truncated(const char* field) const {
    return Status::corruption("truncated at byte " + std::to_string(end_offset()) + " (" + field +
                              ")");
  }
  std::size_t end_offset() const noexcept {
    return base_ + static_cast<std::size_t>(end_ - begin_);
  }

 private:
  Status type_byte(const char* field, std::uint8_t& t) {
    if (p_ == end_) return truncated(field);
    t = static_cast<std::uint8_t>(*p_++);
    return {};
  }
  Status big_endian(const char* field, int n, std::uint64_t& out) {
    if (remaining() < static_cast<std::size_t>(n)) return truncated(field);
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<std::uint8_t>(p_[i]);
    p_ += n;
    out = v;
    return {};
  }
  Status payload(const char* field, int len_bytes, std::span<const std::byte>& out) {
    std::uint64_t len = 0;
    if (Status s = big_endian(field, len_bytes, len); !s) return s;
    return take(field, len, out);
  }
  Status take(const char* field, std::uint64_t len, std::span<const std::byte>& out) {
    if (len > remaining()) {
      return Status::corruption(std::string(field) + " claims " + std::to_string(len) +
                                " bytes but " + std::to_string(remaining()) + " remain at byte " +
                                std::to_string(offset()));
    }
    out = {p_, static_cast<std::size_t>(len)};
    p_ += len;
    return {};
  }
  Status wrong_type(const char* field, const char* expected, std::uint8_t t) const {
    return Status::corruption(std::string(field) + " at byte " + std::to_string(offset() - 1) +
                              " is not " + expected + " (type byte " + hex_byte(t) + ")");
  }

  const std::byte* p_;
  const std::byte* end_;
  std::size_t base_;
  const std::byte* begin_;
};

}  // namespace zkit::detail
