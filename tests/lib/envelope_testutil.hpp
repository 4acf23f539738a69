// Helpers for the envelope tests: hex literals, a tiny MessagePack writer that can lie (wrong
// types, lying lengths, any width), zstd frames with or without a declared size, and error
// expectations.
#pragma once

#include <zstd.h>

#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "zkit/envelope.hpp"
#include "zkit/status.hpp"

namespace zkit::testing {

using Bytes = std::vector<std::byte>;

// "96 01 00" -> bytes; spaces and newlines are ignored.
inline Bytes from_hex(std::string_view hex) {
  Bytes out;
  int hi = -1;
  for (char ch : hex) {
    int v = ch >= '0' && ch <= '9'   ? ch - '0'
            : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
            : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                     : -1;
    if (v < 0) continue;
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<std::byte>(hi << 4 | v));
      hi = -1;
    }
  }
  if (hi >= 0) throw std::invalid_argument("odd number of hex digits");
  return out;
}

inline std::string to_hex(std::span<const std::byte> b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (i) s += ' ';
    auto v = static_cast<unsigned>(b[i]);
    s += kDigits[v >> 4];
    s += kDigits[v & 15];
  }
  return s;
}

inline Bytes to_bytes(std::string_view s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return Bytes(p, p + s.size());
}

inline std::string to_string(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

inline Bytes to_bytes(const zmq::message_t& m) {
  const auto* p = static_cast<const std::byte*>(m.data());
  return Bytes(p, p + m.size());
}

// Writes MessagePack by hand, in whatever form (or lie) the test asks for.
class Mp {
 public:
  Mp& raw(std::initializer_list<unsigned> bytes) {
    for (unsigned b : bytes) out_.push_back(static_cast<std::byte>(b));
    return *this;
  }
  Mp& raw(std::span<const std::byte> bytes) {
    out_.insert(out_.end(), bytes.begin(), bytes.end());
    return *this;
  }
  Mp& raw(std::string_view s) { return raw(std::as_bytes(std::span(s.data(), s.size()))); }
  Mp& be(std::uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) out_.push_back(static_cast<std::byte>(v >> (8 * i)));
    return *this;
  }
  // Unsigned int in the smallest form.
  Mp& u(std::uint64_t v) {
    if (v <= 0x7f) return raw({static_cast<unsigned>(v)});
    if (v <= 0xff) return raw({0xcc}).be(v, 1);
    if (v <= 0xffff) return raw({0xcd}).be(v, 2);
    if (v <= 0xffffffff) return raw({0xce}).be(v, 4);
    return raw({0xcf}).be(v, 8);
  }
  Mp& u64(std::uint64_t v) { return raw({0xcf}).be(v, 8); }
  Mp& array(std::uint64_t n) {
    if (n <= 15) return raw({0x90u | static_cast<unsigned>(n)});
    if (n <= 0xffff) return raw({0xdc}).be(n, 2);
    return raw({0xdd}).be(n, 4);
  }
  Mp& array32(std::uint64_t n) { return raw({0xdd}).be(n, 4); }
  Mp& bin_header(std::uint64_t len) {
    if (len <= 0xff) return raw({0xc4}).be(len, 1);
    if (len <= 0xffff) return raw({0xc5}).be(len, 2);
    return raw({0xc6}).be(len, 4);
  }
  Mp& bin(std::span<const std::byte> b) { return bin_header(b.size()).raw(b); }
  Mp& bin(std::string_view s) { return bin(std::as_bytes(std::span(s.data(), s.size()))); }
  Mp& bin32(std::span<const std::byte> b) { return raw({0xc6}).be(b.size(), 4).raw(b); }
  Mp& str(std::string_view s) { return raw({0xa0u | static_cast<unsigned>(s.size())}).raw(s); }

  // The 30 header bytes the zkit Encoder writes: version 1, flags, producer 42, seq 7, created
  // 1000.
  Mp& zkit_header(std::uint64_t flags = 0) {
    return raw({0x96, 0x01}).u(flags).u64(42).u64(7).u64(1000);
  }

  Bytes bytes() const { return out_; }
  operator Bytes() const { return out_; }  // NOLINT: implicit for table rows

 private:
  Bytes out_;
};

// One zstd frame of `content`; with_size=false leaves the content size out of the frame header.
inline Bytes zstd_frame(std::span<const std::byte> content, bool with_size = true) {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, with_size ? 1 : 0);
  Bytes out(ZSTD_compressBound(content.size()));
  ZSTD_outBuffer o{out.data(), out.size(), 0};
  ZSTD_inBuffer i{content.data(), content.size(), 0};
  // Streaming without a pledged size: the frame then declares its size only when asked to.
  if (with_size) ZSTD_CCtx_setPledgedSrcSize(c, content.size());
  std::size_t r = ZSTD_compressStream2(c, &o, &i, ZSTD_e_end);
  ZSTD_freeCCtx(c);
  if (ZSTD_isError(r) || r != 0) throw std::runtime_error("zstd_frame failed");
  out.resize(o.pos);
  return out;
}

inline Bytes concat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace zkit::testing

// Asserts that a Result/Status-returning call failed with `code` and a message containing `text`.
#define REQUIRE_ERROR(result, expected_code, text)                           \
  do {                                                                       \
    const auto& zkit_r_ = (result);                                          \
    REQUIRE_FALSE(zkit_r_.is_ok());                                          \
    INFO("status: " << zkit_r_.status().to_string());                        \
    CHECK(std::string(::zkit::code_name(zkit_r_.status().code())) ==         \
          ::zkit::code_name(expected_code));                                 \
    CHECK_THAT(zkit_r_.status().message(), Catch::Matchers::Contains(text)); \
  } while (false)
