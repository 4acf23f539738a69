// The byte layout of the consumer protocol's control messages (v1). consumer_codec.cpp is the only
// writer and reader; docs/protocol.md ("The consumer protocol (v1)") describes the same layout.
//
// Every control message is one MessagePack array in one ZeroMQ frame, [ 1, type, member, ... ]:
//
//   type  name      elements  after [1, type, member]
//   20    JOIN      11 or 12  group, prefetch_batches, prefetch_messages, start_kind, start_a,
//                             start_b, ack_wait_ms, flags [, bundle_bytes (written when not 0)]
//   21    JOINED    7         group, ack_wait_ms, heartbeat_ms, max_deliver
//   22    DELIVER   7         tag, delivery_count, segment, offset   (+ a second frame: the batch)
//   23    ACK       4         ranges: [[first_tag, last_tag], ...]   (1..kMaxAckRanges)
//   24    NACK      5         tag, delay_ms
//   25    PROGRESS  4         tag
//   26    CREDIT    5         prefetch_batches, prefetch_messages
//   27    PING      3
//   28    PONG      3
//   29    LEAVE     3
//   30    ERROR     5         code, text
//   31    BUNDLE    4         entries: [[tag, delivery_count, segment, offset, bytes], ...]
//                             (1..kMaxBundleBatches; + a second frame: the batches back to back)
//
// Readers accept any MessagePack encoding of unsigned ints, strs and arrays. The writer uses:
//
//  offset  bytes  content
//  0       1      0x93..0x9c              fixarray of 3..12 elements
//  1       1      0x01                    version (positive fixint)
//  2       1      0x14..0x1f              type 20..31 (positive fixint)
//  3       9      0xcf + u64 big-endian   member (0 only in an ERROR that cannot name one)
//  12      ...    the fields in order:    numbers 0xcf + u64 big-endian (9 bytes);
//                                         strs the shortest header (fixstr, str8, str16);
//                                         the ACK ranges array a fixarray (<= 15) or array16,
//                                         each range a fixarray of 2 numbers (19 bytes);
//                                         the BUNDLE entries likewise, each a fixarray of 5
//                                         numbers (46 bytes).
#pragma once

#include <cstddef>
#include <cstdint>

namespace zkit::consumer::format {

inline constexpr std::uint8_t kFixArray = 0x90;  // | element count
inline constexpr std::size_t kVersionOffset = 1;
inline constexpr std::size_t kTypeOffset = 2;
inline constexpr std::size_t kMemberOffset = 3;
inline constexpr std::size_t kFieldsOffset = 12;
inline constexpr std::size_t kUintBytes = 9;          // 0xcf + 8 bytes
inline constexpr std::size_t kRangeBytes = 19;        // fixarray(2) + two numbers
inline constexpr std::size_t kBundleEntryBytes = 46;  // fixarray(5) + five numbers
inline constexpr std::uint8_t kMinType = 20;
inline constexpr std::uint8_t kMaxType = 31;
inline constexpr std::size_t kMaxAckRanges = 1024;
inline constexpr std::size_t kMaxGroupBytes = 64;
inline constexpr std::size_t kMaxErrorTextBytes = 1024;
inline constexpr std::size_t kMaxBundleBatches = 256;
// The longest frame the writer produces: an ACK of kMaxAckRanges ranges (19,471 bytes).
inline constexpr std::size_t kMaxWrittenFrameBytes =
    kFieldsOffset + 3 + kMaxAckRanges * kRangeBytes;
// A reader rejects longer frames before looking inside. The widest legal encoding of any valid
// message (array32 headers, 9-byte ints everywhere) stays under 24 KiB (a BUNDLE of
// kMaxBundleBatches entries: under 14 KiB).
inline constexpr std::size_t kMaxFrameBytes = 32 * 1024;

}  // namespace zkit::consumer::format
