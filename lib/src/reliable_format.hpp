// The byte layout of the reliable link's control messages (protocol v1). The codec in
// reliable_codec.cpp is the only writer and reader; docs/protocol.md describes the same layout.
//
// Every control message is one MessagePack array in one ZeroMQ frame:
//
//   [ version, type, session, seq, value ]      HELLO, WELCOME, ACK          (5 elements)
//   [ version, type, session, seq ]             DATA, NACK, PING             (4 elements)
//   [ version, type, session ]                  RESET                        (3 elements)
//
// Readers accept any MessagePack encoding of unsigned integers and arrays. The writer always uses
// this fixed-width form:
//
//  offset  bytes  content
//  0       1      0x93 | 0x94 | 0x95       fixarray of 3, 4 or 5 elements
//  1       1      0x01                     version (positive fixint)
//  2       1      0x01..0x07               type (positive fixint)
//  3       9      0xcf + u64 big-endian    session (never 0)
//  12      9      0xcf + u64 big-endian    seq           (4 and 5 elements)
//  21      9      0xcf + u64 big-endian    value         (5 elements)
//
// A DATA message is a two-frame ZeroMQ message: this control frame (4 elements), then the batch
// frame exactly as the envelope encoder wrote it. Over the ROUTER the receiver sees the peer's
// routing-id frame first, as ZeroMQ adds it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace zkit::reliable::format {

inline constexpr std::uint8_t kFixArray = 0x90;  // | element count
inline constexpr std::size_t kVersionOffset = 1;
inline constexpr std::size_t kTypeOffset = 2;
inline constexpr std::size_t kSessionOffset = 3;
inline constexpr std::size_t kSeqOffset = 12;
inline constexpr std::size_t kValueOffset = 21;
inline constexpr std::size_t kUintBytes = 9;  // 0xcf + 8 bytes
inline constexpr std::size_t kMaxFrameBytes = 30;
inline constexpr std::uint8_t kMinType = 1;
inline constexpr std::uint8_t kMaxType = 7;

}  // namespace zkit::reliable::format
