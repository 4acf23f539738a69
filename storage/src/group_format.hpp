// Private: the byte layout of a group file, DIR/groups/NAME.group (docs/spool.md, "Groups").
// Written whole to NAME.group.tmp, synced, renamed over NAME.group, directory synced.
//
//   +----------+---------+---------+-------------------+-------------------+-------------------+
//   | magic 8  | ver u32 | flags   | floor seg,off u64 | replay floor u64x2| replay end u64x2  |
//   +----------+---------+---------+-------------------+-------------------+-------------------+
//   | counters kCounters x u64 | entries u32 | delivered-to seg,off u64 | entry x entries | crc u32 |
//   +--------------------------+-------------+--------------------------+-----------------+---------+
//   entry: | segment u64 | offset u64 | delivery count u32 | done u8 |     (kEntrySize bytes)
//
// - flags (version 2; 0 in version 1): bit 0 (kClosed) when the file was written as the group was
//   closed (nothing was handed out after it).
// - floor: every batch of the main log before it is done for the group.
// - replay floor / replay end: the part of the dead-letter log (DIR/dead/NAME) being replayed
//   into the group; everything before the replay floor is done. Equal when no replay runs.
// - counters, in this order: delivered, redelivered, acked, acked_messages, nacked, dead_lettered,
//   dead_lettered_messages, dead_letter_refused, dropped_batches, dropped_messages, replayed.
// - delivered-to (version 2; a version 1 file has none and is read as if it were the floor): H,
//   the group's read position in the main log when the file was written. Every batch of the main
//   log handed out before then is before H; after H the group hands out at most
//   GroupOptions::max_unpersisted batches before it writes the file again. On open, unless
//   kClosed, that many batches after H count as possibly delivered.
// - entries: batches above a floor the group knows about: done (acked or dead-lettered, done = 1)
//   or delivered and not done (done = 0, with how often they were delivered). A segment with bit
//   63 set (kReplaySegmentBit) names a record of the dead-letter log. Any order.
// - crc: CRC-32 (zlib) of every byte before it. All integers little-endian.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace zkit::spool::group_format {

inline constexpr std::array<char, 8> kMagic = {'Z', 'K', 'S', 'P', 'O', 'O', 'L', 'G'};
inline constexpr std::uint32_t kVersion = 2;
inline constexpr std::uint32_t kVersion1 = 1;  // read: no delivered-to
inline constexpr std::size_t kCounters = 11;
inline constexpr std::size_t kFlagsOffset = 12;
inline constexpr std::uint32_t kClosed = 1;
inline constexpr std::size_t kFloorOffset = 16;
inline constexpr std::size_t kReplayFloorOffset = 32;
inline constexpr std::size_t kReplayEndOffset = 48;
inline constexpr std::size_t kCountersOffset = 64;
inline constexpr std::size_t kEntryCountOffset = kCountersOffset + 8 * kCounters;  // 152
inline constexpr std::size_t kHeaderSizeV1 = kEntryCountOffset + 4;                // 156
inline constexpr std::size_t kDeliveredToOffset = kHeaderSizeV1;
inline constexpr std::size_t kHeaderSize = kDeliveredToOffset + 16;                // 172
inline constexpr std::size_t kEntrySize = 21;
inline constexpr std::size_t kCrcSize = 4;

inline constexpr const char* kGroupsDir = "groups";
inline constexpr const char* kDeadDir = "dead";
inline constexpr const char* kSuffix = ".group";
inline constexpr const char* kTempSuffix = ".group.tmp";

}  // namespace zkit::spool::group_format
