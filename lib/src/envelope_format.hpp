// The byte layout of a batch frame (wire format v1), shared by the envelope's writer and reader;
// nothing else knows it. docs/wire-format.md is the description for peers in other languages.
//
// A batch is one MessagePack array  [ version, flags, producer_id, seq, created_ns, records ].
// Readers accept any valid MessagePack encoding of it (any unsigned int width, fixarray/array16/
// array32, bin8/16/32). The zkit Encoder always writes this fixed-width header, so that seq, time
// and record count can be patched in place when the batch is sealed:
//
//  offset  bytes  content
//  0       1      0x96                 fixarray, 6 elements
//  1       1      0x01                 version
//  2       1      0x00 | 0x01          flags (positive fixint; bits 0-2 compression)
//  3       9      0xcf + u64 BE        producer_id
//  12      9      0xcf + u64 BE        seq
//  21      9      0xcf + u64 BE        created_ns
//  30      5      0xdd + u32 BE        records: array32 of N elements, then N times:
//  35      ...    0xc4 len8 | 0xc5 len16 | 0xc6 len32, payload     (smallest bin form)
//
// Compressed (flags & 7 == 1, zstd): at offset 30 stands one bin32 (0xc6 + u32 BE length) whose
// payload is exactly one zstd frame that declares its content size; the content is the records
// array exactly as above (array32 header, then the bins).
#pragma once

#include <cstddef>
#include <cstdint>

namespace zkit::envelope::format {

inline constexpr std::uint8_t kTopArray = 0x96;
inline constexpr std::size_t kTopFields = 6;
inline constexpr std::size_t kFlagsOffset = 2;
inline constexpr std::size_t kProducerOffset = 3;
inline constexpr std::size_t kSeqOffset = 12;
inline constexpr std::size_t kCreatedOffset = 21;
inline constexpr std::size_t kRecordsOffset = 30;
inline constexpr std::size_t kFirstRecordOffset = 35;
inline constexpr std::size_t kRecordsHeaderBytes = 5;  // array32 or bin32 header at kRecordsOffset
inline constexpr std::uint64_t kCompressionMask = 0x7;
// Smallest MessagePack encoding of one record (bin8 with an empty payload); a declared record count
// larger than the bytes left over this is a lie, refused before any loop.
inline constexpr std::size_t kMinRecordBytes = 2;

}  // namespace zkit::envelope::format
