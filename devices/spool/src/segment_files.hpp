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
// The number of a segment file name, nullopt for any other name.
std::optional<std::uint64_t> parse_segment_name(const std::string& name);
// Segment numbers in dir, ascending.
Result<std::vector<std::uint64_t>> list_segments(Env& env, const std::string& dir);
// The cursor in dir/CURSOR: NotFound when there is none, Corruption when it is damaged.
Result<Position> read_cursor(Env& env, const std::string& dir);
std::vector<std::byte> encode_cursor(Position p);

}  // namespace zkit::spool::files
