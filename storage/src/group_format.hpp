// Private: the byte layout of a group file, DIR/groups/NAME.group (docs/spool.md, "Groups").
// Written whole to NAME.group.tmp, synced, renamed over NAME.group, directory synced.
//
//   +----------+---------+---------+-------------------+-------------------+-------------------+
//   | magic 8  | ver u32 | 0 u32   | floor seg,off u64 | replay floor u64x2| replay end u64x2  |
//   +----------+---------+---------+-------------------+-------------------+-------------------+
//   | counters kCounters x u64 | entries u32 | entry x entries | crc u32 |
//   +--------------------------+-------------+-----------------+---------+
//   entry: | segment u64 | offset u64 | delivery count u32 | done u8 |     (kEntrySize bytes)
//
// - floor: every batch of the main log before it is done for the group.
// - replay floor / replay end: the part of the dead-letter log (DIR/dead/NAME) being replayed
//   into the group; everything before the replay floor is done. Equal when no replay runs.
// - counters, in this order: delivered, redelivered, acked, acked_messages, nacked, dead_lettered,
//   dead_lettered_messages, dead_letter_refused, dropped_batches, dropped_messages, replayed.
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
inline constexpr std::uint32_t kVersion = 1;
inline constexpr std::size_t kCounters = 11;
inline constexpr std::size_t kFloorOffset = 16;
inline constexpr std::size_t kReplayFloorOffset = 32;
inline constexpr std::size_t kReplayEndOffset = 48;
inline constexpr std::size_t kCountersOffset = 64;
inline constexpr std::size_t kEntryCountOffset = kCountersOffset + 8 * kCounters;  // 152
inline constexpr std::size_t kHeaderSize = kEntryCountOffset + 4;                  // 156
inline constexpr std::size_t kEntrySize = 21;
inline constexpr std::size_t kCrcSize = 4;

inline constexpr const char* kGroupsDir = "groups";
inline constexpr const char* kDeadDir = "dead";
inline constexpr const char* kSuffix = ".group";
inline constexpr const char* kTempSuffix = ".group.tmp";

}  // namespace zkit::spool::group_format
