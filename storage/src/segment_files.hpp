// Private: naming of segment files and reading of the cursor file, shared by the store and the
// offline inspector.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "zkit/spool/env.hpp"
#include "zkit/spool/store.hpp"

namespace zkit::spool::files {

std::string segment_name(std::uint64_t number);  // "00000000000000000001.seg"
// Segments are numbered from 1; the last number leaves room for the next one.
inline constexpr std::uint64_t kMaxSegmentNumber = UINT64_MAX - 1;
// The number of a segment file name (20 digits, 1..kMaxSegmentNumber, ".seg"), nullopt for any
// other name, such as one whose digits overflow 64 bits.
std::optional<std::uint64_t> parse_segment_name(const std::string& name);
// Segment numbers in dir, ascending.
Result<std::vector<std::uint64_t>> list_segments(Env& env, const std::string& dir);
// The cursor in dir/CURSOR: NotFound when there is none, Corruption when it is damaged.
Result<Position> read_cursor(Env& env, const std::string& dir);
std::vector<std::byte> encode_cursor(Position p);

}  // namespace zkit::spool::files
