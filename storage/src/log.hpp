// Private: the log writer (frames logical records into block fragments) and the log reader (reads
// them back from one segment file, reporting corrupt stretches and treating a torn tail as the end).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "zkit/spool/env.hpp"
#include "zkit/status.hpp"

namespace zkit::spool::log {

// A growable byte buffer that does not zero what it hands out.
class Buffer {
 public:
  std::byte* grow(std::size_t n);  // n uninitialized bytes at the end
  void clear() noexcept { size_ = 0; }
  void release();  // clear and give the memory back
  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  std::span<const std::byte> bytes() const noexcept { return {data_.get(), size_}; }

 private:
  std::unique_ptr<std::byte[]> data_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

// The fields of a logical record's header.
struct RecordHeader {
  std::uint8_t kind = 0;
  std::uint32_t count = 0;
  std::uint64_t producer_id = 0;
  std::uint64_t seq = 0;
  std::uint64_t arrival_ns = 0;
};

// Frames records for a file whose next byte is at `offset`.
class Writer {
 public:
  explicit Writer(std::uint64_t offset) : offset_(offset) {}
  // Appends the fragments of one logical record (header + prefix + body) to out.
  void add(const RecordHeader& header, std::span<const std::byte> body, Buffer& out) {
    add(header, {}, body, out);
  }
  void add(const RecordHeader& header, std::span<const std::byte> prefix,
           std::span<const std::byte> body, Buffer& out);
  std::uint64_t offset() const noexcept { return offset_; }
  void reset(std::uint64_t offset) noexcept { offset_ = offset; }

 private:
  std::uint64_t offset_;
};

// An upper bound of the bytes a record with n payload bytes adds to a file.
std::uint64_t max_framed_size(std::size_t n);

// 32 bytes naming segment `number`.
std::vector<std::byte> encode_segment_header(std::uint64_t number);
// The segment number, or Corruption("bad magic" / "bad checksum" / "unsupported version").
Result<std::uint64_t> decode_segment_header(std::span<const std::byte> header);
// The first kSegmentHeaderSize bytes of a log file (a segment or the PRODUCERS file); fewer when
// the file is shorter (a torn start).
Result<std::vector<std::byte>> read_segment_header(RandomAccessFile& file);

struct Corruption {
  std::uint64_t offset = 0;  // where the dropped bytes start in the file
  std::uint64_t bytes = 0;   // how many were dropped
  std::string reason;
};

struct RecordView {
  RecordHeader header;
  std::uint64_t scope = 0;          // a batch's duplicate-suppression scope
  std::span<const std::byte> body;  // a batch: the frame (after the scope of a kScopedBatch)
  bool is_batch() const noexcept;
  bool is_producers() const noexcept;
};
// One entry of a producers record.
struct ProducerEntry {
  std::uint64_t scope, producer, seq;
};
// The i-th entry (i < header.count) of a kProducers or kScopedProducers record.
ProducerEntry producer_entry(const RecordView& v, std::uint32_t i);
// A kScopedProducers record of entries.
void add_producers(Writer& w, std::span<const ProducerEntry> entries, std::uint64_t arrival_ns,
                   Buffer& out);
// Splits a logical record; Corruption when it is shorter than its header, of an unknown kind, or
// its body does not match its kind.
Result<RecordView> decode_record(std::span<const std::byte> record);

// Reads logical records from one segment file between `start` and `limit`. A record cut by the
// limit (a torn tail) ends the read without a report; a checksum mismatch, a bad length or type, or
// a fragment out of order is reported and skipped, and reading resumes at the next block.
class Reader {
 public:
  using Reporter = std::function<void(const Corruption&)>;
  Reader(RandomAccessFile& file, std::uint64_t start, std::uint64_t limit, Reporter reporter);

  // True with the record in `out` (valid until the next call), false at the end. IOError when the
  // file cannot be read.
  Result<bool> next(std::span<const std::byte>& out);
  // Offset of the first fragment of the record last returned, and the offset after its last one.
  std::uint64_t record_offset() const noexcept { return record_offset_; }
  std::uint64_t record_end() const noexcept { return record_end_; }
  // Continue from `offset` with a new limit (the file grew). at_boundary: offset is where this
  // reader's last record ended (else it is taken as unknown until a fragment there checks out).
  void seek(std::uint64_t offset, std::uint64_t limit, bool at_boundary = false);
  // Verified-prefix sharing between readers of one file: the bytes from the first fragment up to
  // `end` were read and their checksums checked in this process, by this or another reader of the
  // same file. A fragment wholly before it is not checked again once this reader is on the chain
  // of fragments (after a fragment it checked itself, at a block start, or a seek at_boundary);
  // verified() is `end` moved past the fragments this reader checked that follow it without a gap.
  void set_verified(std::uint64_t end) noexcept { verified_ = std::max(verified_, end); }
  std::uint64_t verified() const noexcept { return verified_; }

 private:
  enum : int { kEof = 256, kBad = 257 };
  Result<int> read_physical(std::span<const std::byte>& fragment, std::uint64_t& offset);
  Status load_block(std::uint64_t block_start);
  void report(std::uint64_t offset, std::uint64_t bytes, std::string reason);

  RandomAccessFile& file_;
  std::uint64_t limit_;
  Reporter reporter_;
  std::unique_ptr<std::byte[]> block_;
  std::uint64_t block_start_ = 0;
  std::size_t block_len_ = 0;  // bytes of the block loaded
  std::size_t pos_ = 0;        // next fragment within the block
  bool loaded_ = false;
  std::vector<std::byte> scratch_;
  std::uint64_t record_offset_ = 0;
  std::uint64_t record_end_ = 0;
  std::uint64_t verified_ = 0;
  bool on_chain_ = false;  // pos_ is a fragment boundary known from a checked fragment
};

}  // namespace zkit::spool::log
