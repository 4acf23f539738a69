// Offline inspection of a spool directory, for `zkit spool-inspect verify|dump --dir DIR`. Both
// only read: nothing in the directory changes (no truncation, no cursor write).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "zkit/spool/env.hpp"
#include "zkit/spool/group.hpp"
#include "zkit/spool/store.hpp"

namespace zkit::spool {

struct VerifyReport {
  struct SegmentInfo {
    std::string file;
    std::uint64_t bytes = 0;
    std::uint64_t batches = 0;
    std::uint64_t messages = 0;
    std::uint64_t tail_bytes = 0;  // bytes after the last good record (a torn tail, cut on open)
  };
  struct ProducerBacklog {
    std::uint64_t producer_id = 0;
    std::uint64_t batches = 0;  // at or after the cursor
    std::uint64_t messages = 0;
    std::uint64_t bytes = 0;
    std::uint64_t first_seq = 0;
    std::uint64_t last_seq = 0;
  };
  std::vector<SegmentInfo> segments;
  std::optional<Position> cursor;  // nullopt: no cursor file (or a damaged one, in corrupt)
  std::vector<ProducerBacklog> backlog;  // by producer id
  std::vector<CorruptRecord> corrupt;    // every corrupt stretch, in file order
  // The consumer groups (groups/*.group, as last persisted); a damaged group file is in corrupt.
  std::vector<GroupInfo> groups;
  // Other entries in the directory (not a segment name in range, CURSOR, CURSOR.tmp, PRODUCERS,
  // PRODUCERS.tmp, LOCK, or the groups and dead directories),
  // sorted; the store ignores them and never deletes them. Not damage: clean() ignores them.
  std::vector<std::string> foreign;
  std::uint64_t batches = 0;
  std::uint64_t messages = 0;

  bool clean() const noexcept { return corrupt.empty(); }
};

// Reads every segment, the cursor and the PRODUCERS file. Fails when dir cannot be listed (NotFound, IOError) or is
// not a spool directory: none of a segment file, CURSOR, PRODUCERS or LOCK in it (InvalidArgument
// "... is not a spool directory ..."); damage inside is reported in the result. env: nullptr for
// Env::posix().
Result<VerifyReport> verify(const std::string& dir, Env* env = nullptr);
// A human-readable report: segments, cursor, backlog per producer, corrupt records, foreign files.
void print(const VerifyReport& report, std::ostream& out);

struct DumpOptions {
  enum class Payloads { kNone, kText, kHex, kJson };
  Payloads payloads = Payloads::kNone;  // kJson: one JSON object per record (JSON Lines)
  std::size_t max_payload_bytes = 256;  // per message shown (text/hex); 0: all
  std::optional<std::uint64_t> producer_id;  // only this producer's batches
};
// Prints every record: position, kind, producer, seq, arrival, message count, frame size and,
// per options, the messages decoded from the batch envelope (JSON: a message that is not UTF-8
// is given as {"hex": ...}). Corrupt stretches are printed as they are met. Returns
// IOError/NotFound when the directory cannot be read, InvalidArgument when it is not a spool.
Status dump(const std::string& dir, std::ostream& out, const DumpOptions& options = {},
            Env* env = nullptr);

}  // namespace zkit::spool
