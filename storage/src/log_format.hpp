// The spool's on-disk byte layout: segment file header, block framing of fragments, the logical
// record header and the cursor file. The log writer and reader include this; nothing else knows it.
//
// A segment file is a sequence of 32 KiB blocks. The first kSegmentHeaderSize bytes of block 0 hold
// the segment header; after that every block holds fragments, and a fragment never crosses a block:
//
//   segment header (32 bytes, once, at offset 0)
//   +----------+---------+---------+---------+---------+---------+
//   | magic 8  | ver u32 | 0 u32   | seg u64 | 0 u32   | crc u32 |   crc = CRC-32 of bytes [0, 28)
//   +----------+---------+---------+---------+---------+---------+
//
//   fragment (kFragmentHeaderSize = 7 bytes + payload)
//   +---------+-----------+---------+-------------------+
//   | crc u32 | len u16   | type u8 | payload (len)     |   crc = mask(CRC-32 of type byte + payload)
//   +---------+-----------+---------+-------------------+
//   type: kFull (whole logical record), kFirst / kMiddle / kLast (a record cut at block ends).
//   Fewer than 7 bytes left in a block are zero-filled (the trailer); the next fragment starts the
//   next block. A zero header (type 0, length 0) also ends the block (zero-filled space).
//
//   logical record (the concatenated fragment payloads)
//   +---------+---------+-----------+---------------+---------+---------------+----------------+
//   | kind u8 | 0 u8 x3 | count u32 | producer u64  | seq u64 | arrival_ns u64| body           |
//   +---------+---------+-----------+---------------+---------+---------------+----------------+
//   kind kBatch: body = the batch frame exactly as received; count = messages in it (scope 0).
//   kind kScopedBatch: body = scope u64 + the batch frame; for a duplicate-suppression scope
//   other than 0 (kNoDedupe = 2^64-1 included).
//   kind kProducers: body = count x (producer u64, highest seq u64), scope 0. Written by version
//   0.1 at the start of every segment; still read, no longer written.
//   kind kScopedProducers: body = count x (scope u64, producer u64, highest seq u64). The records
//   of the PRODUCERS file (below).
//
//   producers file PRODUCERS: a segment header naming segment 0, then kScopedProducers records in
//   the block framing above. It holds the highest seq of producers whose last batch was in a
//   segment since deleted; a later record overrides an earlier one. Appended to (and synced)
//   before segment files are removed; rewritten whole (PRODUCERS.tmp, sync, rename, directory
//   sync) on open and when it has grown to twice what it must hold.
//
//   cursor file CURSOR (written to CURSOR.tmp, synced, renamed over CURSOR, directory synced)
//   +----------+---------+---------+---------+------------+---------+
//   | magic 8  | ver u32 | 0 u32   | seg u64 | offset u64 | crc u32 |   crc = CRC-32 of bytes [0, 32)
//   +----------+---------+---------+---------+------------+---------+
//
// All integers are little-endian. CRC-32 is zlib's (polynomial 0xEDB88320).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include <zlib.h>

namespace zkit::spool::format {

inline constexpr std::size_t kBlockSize = 32768;
inline constexpr std::size_t kFragmentHeaderSize = 7;  // crc 4, length 2, type 1

enum FragmentType : std::uint8_t { kZeroType = 0, kFull = 1, kFirst = 2, kMiddle = 3, kLast = 4 };
inline constexpr std::uint8_t kMaxFragmentType = kLast;

inline constexpr std::array<char, 8> kSegmentMagic = {'Z', 'K', 'S', 'P', 'O', 'O', 'L', 'S'};
inline constexpr std::uint32_t kSegmentVersion = 1;
inline constexpr std::size_t kSegmentHeaderSize = 32;
inline constexpr std::size_t kSegmentHeaderCrcOffset = 28;
inline constexpr std::size_t kSegmentNumberOffset = 16;

enum RecordKind : std::uint8_t { kBatch = 1, kProducers = 2, kScopedBatch = 3, kScopedProducers = 4 };
inline constexpr std::size_t kRecordHeaderSize = 32;
inline constexpr std::size_t kKindOffset = 0;
inline constexpr std::size_t kCountOffset = 4;
inline constexpr std::size_t kProducerOffset = 8;
inline constexpr std::size_t kSeqOffset = 16;
inline constexpr std::size_t kArrivalOffset = 24;
inline constexpr std::size_t kProducerEntrySize = 16;  // in a kProducers body
inline constexpr std::size_t kScopedProducerEntrySize = 24;  // in a kScopedProducers body
inline constexpr std::size_t kScopeSize = 8;  // the scope before the frame of a kScopedBatch

inline constexpr std::array<char, 8> kCursorMagic = {'Z', 'K', 'S', 'P', 'O', 'O', 'L', 'C'};
inline constexpr std::uint32_t kCursorVersion = 1;
inline constexpr std::size_t kCursorFileSize = 36;
inline constexpr std::size_t kCursorCrcOffset = 32;

inline constexpr const char* kSegmentSuffix = ".seg";
inline constexpr const char* kCursorName = "CURSOR";
inline constexpr const char* kCursorTempName = "CURSOR.tmp";
inline constexpr const char* kProducersName = "PRODUCERS";
inline constexpr const char* kProducersTempName = "PRODUCERS.tmp";
inline constexpr const char* kLockName = "LOCK";  // flock'ed by the Store that has the directory

inline void put_u16(std::byte* p, std::uint16_t v) {
  for (int i = 0; i < 2; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
inline void put_u32(std::byte* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
inline void put_u64(std::byte* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
inline std::uint16_t get_u16(const std::byte* p) {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) |
                                    (std::to_integer<unsigned>(p[1]) << 8));
}
inline std::uint32_t get_u32(const std::byte* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint32_t>(p[i]);
  return v;
}
inline std::uint64_t get_u64(const std::byte* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint64_t>(p[i]);
  return v;
}

inline std::uint32_t crc32(std::span<const std::byte> data, std::uint32_t crc = 0) {
  return static_cast<std::uint32_t>(
      ::crc32_z(crc, reinterpret_cast<const Bytef*>(data.data()), data.size()));
}

// Fragment checksums are stored masked, as LevelDB does, so that a record holding the bytes of
// another record (a spool storing a spool's file) does not carry a valid embedded checksum.
inline constexpr std::uint32_t kMaskDelta = 0xa282ead8u;
inline std::uint32_t mask(std::uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }
inline std::uint32_t unmask(std::uint32_t m) {
  std::uint32_t rot = m - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace zkit::spool::format
