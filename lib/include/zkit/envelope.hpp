// The batch envelope: many application messages in one ZeroMQ frame, readable by any MessagePack
// library. Wire format v1 (docs/wire-format.md has the byte-level description):
//
//   [ 1, flags, producer_id, seq, created_ns, records ]      records: array of bin, or (compressed)
//                                                            one bin holding that array,
//                                                            zstd-framed
//
// Encoding copies each message once, into the buffer that becomes the frame. Decoding validates the
// whole frame once against Limits, then iterates records as spans into the frame without
// allocating. Every malformed frame yields a Status that names what was wrong and at which byte; no
// length read from the frame is trusted before it has been checked against the bytes present and
// the Limits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <span>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "zkit/status.hpp"

namespace zkit::envelope {

inline constexpr std::uint64_t kVersion = 1;

// flags bits 0-2.
enum class Compression : std::uint8_t { kNone = 0, kZstd = 1 };
const char* compression_name(Compression c) noexcept;

// Bounds on what a decoder accepts from an untrusted peer. Every field documents its default.
// Nesting needs no limit: the reader knows the two levels of the format and never recurses.
struct Limits {
  std::size_t max_records = std::size_t{1} << 20;        // records in one batch (1 Mi)
  std::size_t max_record_bytes = std::size_t{16} << 20;  // bytes in one record (16 MiB)
  std::size_t max_batch_bytes = std::size_t{64} << 20;   // frame size, and records section after
                                                         // decompression (64 MiB)
  Limits& records(std::size_t n) {
    max_records = n;
    return *this;
  }
  Limits& record_bytes(std::size_t n) {
    max_record_bytes = n;
    return *this;
  }
  Limits& batch_bytes(std::size_t n) {
    max_batch_bytes = n;
    return *this;
  }
};

// The fields before the records. Reading it never touches the records.
struct Header {
  std::uint64_t version = 0;
  std::uint64_t flags = 0;
  std::uint64_t producer_id = 0;
  std::uint64_t seq = 0;
  std::uint64_t created_ns = 0;
  // Records in the batch; for a compressed batch this is unknown (0) until decode().
  std::uint32_t record_count = 0;
  std::size_t records_offset = 0;  // byte offset of the records element in the frame

  Compression compression() const noexcept { return static_cast<Compression>(flags & 0x7); }
};

// O(1): reads and checks the header fields and the records element's own header (an array, or for a
// compressed batch a bin that fits the frame), never the records. For an uncompressed batch
// record_count is the array length as declared, checked only against the bytes left (each record
// takes at least 2), so it never exceeds what the frame could hold; decode() checks the records
// themselves and the Limits. Errors: kCorruption (malformed, truncated, or a record count the
// frame cannot hold), kUnsupported (version, flag bits, compression).
Result<Header> peek(std::span<const std::byte> frame) noexcept;

// A decoded batch: the header and an iterable range of records, each a span of bytes that stays
// valid as long as the Batch lives (it owns the frame, or the decompressed copy of a compressed
// batch). Spans stay valid across a move of the Batch, except into a frame of 33 bytes or less,
// which ZeroMQ stores inside the message object; iterators are for one Batch object (take begin()
// again after a move). Move-only; a moved-from Batch is empty.
class Batch {
 public:
  // A forward iterator over the records; each is a span into the frame (or decompressed copy).
  class Iterator {
   public:
    using value_type = std::span<const std::byte>;
    using difference_type = std::ptrdiff_t;
    using iterator_concept = std::forward_iterator_tag;
    using iterator_category = std::input_iterator_tag;  // * yields a value, not a reference
    Iterator() = default;
    value_type operator*() const noexcept { return current_; }
    Iterator& operator++() noexcept {
      pos_ = current_.data() + current_.size();
      load();
      return *this;
    }
    Iterator operator++(int) noexcept {
      auto t = *this;
      ++*this;
      return t;
    }
    bool operator==(const Iterator& o) const noexcept { return pos_ == o.pos_; }

   private:
    friend class Batch;
    Iterator(const std::byte* pos, const std::byte* end) noexcept : pos_(pos), end_(end) { load(); }
    // Inline so that iterating costs no call per record. decode() has checked that every record is
    // a bin8 (0xc4), bin16 (0xc5) or bin32 (0xc6) whose payload lies inside the buffer.
    void load() noexcept {
      if (pos_ == end_) {
        current_ = {};
        return;
      }
      const auto* p = reinterpret_cast<const unsigned char*>(pos_);
      std::size_t hdr = 2, len = p[1];
      if (p[0] == 0xc5) {
        hdr = 3;
        len = len << 8 | p[2];
      } else if (p[0] == 0xc6) {
        hdr = 5;
        len = len << 24 | std::size_t{p[2]} << 16 | std::size_t{p[3]} << 8 | p[4];
      }
      current_ = {pos_ + hdr, len};
    }
    const std::byte* pos_ = nullptr;
    const std::byte* end_ = nullptr;
    value_type current_;
  };

  Batch(Batch&& other) noexcept;
  Batch& operator=(Batch&& other) noexcept;
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  const Header& header() const noexcept { return header_; }
  std::size_t size() const noexcept { return header_.record_count; }
  bool empty() const noexcept { return size() == 0; }
  Iterator begin() const noexcept;
  Iterator end() const noexcept;
  // Total payload bytes of all records.
  std::size_t payload_bytes() const noexcept { return payload_bytes_; }
  // The frame the batch was decoded from (an empty message when decoded from a span).
  const zmq::message_t& frame() const noexcept { return frame_; }
  zmq::message_t release_frame() && noexcept { return std::move(frame_); }

 private:
  friend Result<Batch> decode(zmq::message_t&&, const Limits&);
  friend Result<Batch> decode(std::span<const std::byte>, const Limits&);
  Batch() = default;
  const std::byte* base() const noexcept;

  Header header_;
  zmq::message_t frame_;
  const std::byte* external_ = nullptr;    // decoded from a span the caller keeps alive
  std::unique_ptr<std::byte[]> inflated_;  // decompressed records of a compressed batch
  std::size_t records_begin_ = 0;          // offsets into base(); offsets survive moving frame_
  std::size_t records_end_ = 0;
  std::size_t payload_bytes_ = 0;
};

// Validates the whole frame against the limits: O(records), allocating only for a compressed batch
// (one buffer of its declared, checked, decompressed size). The Batch takes the frame; on error the
// frame is left as it was. Errors: kCorruption (malformed, truncated, trailing bytes, corrupt
// zstd), kUnsupported (version, flag bits, compression), kLimitExceeded (a Limits bound).
Result<Batch> decode(zmq::message_t&& frame, const Limits& limits = {});
// As above over bytes the caller keeps alive for the life of the Batch (a spool record, a file).
Result<Batch> decode(std::span<const std::byte> frame, const Limits& limits = {});

struct EncoderOptions {
  Compression compression = Compression::kNone;  // kZstd compresses the records section
  int zstd_level = 1;                            // 1 (fast) .. 19 (small); negative: faster still
  std::size_t compress_min_bytes = 512;  // smaller batches go uncompressed (flags say which);
                                         // so does a batch that zstd does not make smaller
};

// Builds one batch at a time into a buffer that is handed to ZeroMQ without another copy (an
// uncompressed batch), or compresses it into a reused scratch buffer and copies the compressed
// bytes into the frame. Not thread-safe; move-only. Misuse (add/finish before begin, a record over
// 4 GiB, more than 2^32-1 records, a zstd_level out of range) throws
// std::logic_error/std::invalid_argument.
class Encoder {
 public:
  explicit Encoder(EncoderOptions options = {});
  ~Encoder();
  Encoder(Encoder&&) noexcept;
  Encoder& operator=(Encoder&&) noexcept;
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  // Starts a new, empty batch (discarding one not finished).
  void begin(std::uint64_t producer_id);
  // Appends one record: its bytes are copied once, into the frame buffer.
  void add(std::span<const std::byte> record);
  void add(std::string_view record) { add(std::as_bytes(std::span(record.data(), record.size()))); }
  std::size_t record_count() const noexcept { return count_; }
  // Size of the uncompressed frame so far.
  std::size_t encoded_bytes() const noexcept { return size_; }
  // Seals the batch and returns it as a frame; the encoder then needs begin() again.
  zmq::message_t finish(std::uint64_t seq, std::uint64_t created_ns);

 private:
  void reserve(std::size_t extra);
  void seal_header(std::uint64_t seq, std::uint64_t created_ns);
  zmq::message_t compress();
  struct Compressor;
  EncoderOptions options_;
  std::unique_ptr<std::byte[]> buf_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;  // of buf_, or when buf_ was handed off, the size to allocate next
  std::size_t count_ = 0;
  std::unique_ptr<Compressor> compressor_;  // context and scratch buffer, when compressing
};

// Bytes a record of n payload bytes adds to an uncompressed batch.
constexpr std::size_t record_overhead(std::size_t n) noexcept {
  return n <= 0xff ? 2 : n <= 0xffff ? 3 : 5;
}
// Size of the header the Encoder writes, before the first record.
inline constexpr std::size_t kEncodedHeaderBytes = 35;

// Wall-clock nanoseconds since the Unix epoch (the created_ns clock).
std::uint64_t unix_now_ns() noexcept;

}  // namespace zkit::envelope
