// The record layout of zkit request/reply traffic, inside a batch envelope record (the envelope is
// lib/include/zkit/envelope.hpp). Client and Server include this and nothing else knows it.
//
//   +----------------------------+---------------------+
//   | correlation id (8 bytes)   | payload (n bytes)   |
//   | uint64, little-endian      |                     |
//   +----------------------------+---------------------+
//
// A reply carries its request's correlation id. Frames: a Client (DEALER) sends [batch]; the
// Server (ROUTER) receives [envelope...][batch], the envelope being one identity per ROUTER on the
// way (one when connected directly), and answers [envelope...][batch] of replies to that client.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace zkit::rpc_format {

inline constexpr std::size_t kIdBytes = 8;

inline void put_id(std::byte* out, std::uint64_t id) noexcept {
  for (std::size_t i = 0; i < kIdBytes; ++i) out[i] = static_cast<std::byte>(id >> (8 * i));
}

inline std::uint64_t get_id(std::span<const std::byte> record) noexcept {
  std::uint64_t id = 0;
  for (std::size_t i = 0; i < kIdBytes; ++i)
    id |= std::to_integer<std::uint64_t>(record[i]) << (8 * i);
  return id;
}

}  // namespace zkit::rpc_format
