// The batch envelope codec: the Encoder writes the layout of envelope_format.hpp, the reader
// accepts any MessagePack encoding of the v1 array, checking every length before it is used.
#include "zkit/envelope.hpp"

#include <zstd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include "envelope_format.hpp"
#include "msgpack_cursor.hpp"

namespace zkit::envelope {
namespace {

using detail::Cursor;
namespace fmt = format;

inline std::uint8_t byte_at(const std::byte* p) noexcept { return static_cast<std::uint8_t>(*p); }

void put_be(std::byte* p, std::uint64_t v, int n) noexcept {
  for (int i = n - 1; i >= 0; --i) {
    p[i] = static_cast<std::byte>(v & 0xff);
    v >>= 8;
  }
}

std::string hex(std::uint64_t v) {
  char s[24];
  std::snprintf(s, sizeof s, "0x%" PRIx64, v);
  return s;
}

std::string num(std::uint64_t v) { return std::to_string(v); }

std::uint64_t load_be64(const unsigned char* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | p[i];
  return v;
}

// The zkit writer's fixed layout (envelope_format.hpp), read without the general path: devices
// peek every frame they pass, so this is the common case worth a shortcut.
bool read_fixed_header(Cursor& c, Header& h) noexcept {
  if (c.remaining() < fmt::kRecordsOffset) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(c.position());
  if (p[0] != fmt::kTopArray || p[1] != kVersion || p[fmt::kFlagsOffset] > 0x7f ||
      p[fmt::kProducerOffset] != detail::kUint64 || p[fmt::kSeqOffset] != detail::kUint64 ||
      p[fmt::kCreatedOffset] != detail::kUint64) {
    return false;
  }
  h.version = kVersion;
  h.flags = p[fmt::kFlagsOffset];
  h.producer_id = load_be64(p + fmt::kProducerOffset + 1);
  h.seq = load_be64(p + fmt::kSeqOffset + 1);
  h.created_ns = load_be64(p + fmt::kCreatedOffset + 1);
  c.skip(fmt::kRecordsOffset);
  return true;
}

Status check_flags(const Header& h) {
  if (std::uint64_t unknown = h.flags & ~fmt::kCompressionMask; unknown != 0) {
    return Status::unsupported("unknown flag bits " + hex(unknown) + " in flags " + hex(h.flags));
  }
  if (h.compression() != Compression::kNone && h.compression() != Compression::kZstd) {
    return Status::unsupported("unsupported compression " + num(h.flags & fmt::kCompressionMask) +
                               " in flags " + hex(h.flags));
  }
  return {};
}

// Reads the five leading fields and leaves the cursor on the records element.
Status read_header(Cursor& c, Header& h) {
  if (read_fixed_header(c, h)) {
    h.records_offset = c.offset();
    return check_flags(h);
  }
  std::uint64_t fields = 0;
  if (Status s = c.read_array("batch", fields); !s) return s;
  if (fields == 0) return Status::corruption("batch is an empty array, expected 6 fields");
  // The version comes before the field count so that a later version may change the shape and
  // still be told apart from a malformed v1 batch.
  if (Status s = c.read_uint("version", h.version); !s) return s;
  if (h.version != kVersion) {
    return Status::unsupported("unsupported batch version " + num(h.version));
  }
  if (fields != fmt::kTopFields) {
    return Status::corruption("batch is an array of " + num(fields) + " fields, expected 6");
  }
  if (Status s = c.read_uint("flags", h.flags); !s) return s;
  if (Status s = check_flags(h); !s) return s;
  if (Status s = c.read_uint("producer_id", h.producer_id); !s) return s;
  if (Status s = c.read_uint("seq", h.seq); !s) return s;
  if (Status s = c.read_uint("created_ns", h.created_ns); !s) return s;
  h.records_offset = c.offset();
  return {};
}

// Reads the records array header and checks the declared count against limits and bytes left, so
// that a lying count fails here, before any loop. `field` and `where` name the section in errors.
Status read_records_header(Cursor& c, const Limits& limits, std::uint64_t& count,
                           const char* field, const char* where) {
  if (Status s = c.read_array(field, count); !s) return s;
  if (count > limits.max_records) {
    return Status::limit_exceeded("batch has " + num(count) + " records, limit " +
                                  num(limits.max_records));
  }
  if (count > c.remaining() / fmt::kMinRecordBytes) {
    return Status::corruption(std::string(field) + " declares " + num(count) + " records but only " +
                              num(c.remaining()) + " bytes follow at byte " + num(c.offset()) +
                              where);
  }
  return {};
}

enum class RecordFault { kTruncated, kNotBin, kLength, kLimit, kTrailing };

// Error messages of validate_records, built off its loop.
[[gnu::cold, gnu::noinline]] Status record_error(RecordFault fault, std::uint64_t index,
                                                 std::size_t offset, std::uint64_t a,
                                                 std::uint64_t b, const char* where) {
  const std::string rec = "record " + num(index);
  const std::string at = " at byte " + num(offset) + where;
  switch (fault) {
    case RecordFault::kTruncated:
      return Status::corruption("truncated at byte " + num(offset) + where + " (" + rec + ")");
    case RecordFault::kNotBin:
      return Status::corruption(rec + at + " is not bin (type byte " +
                                detail::hex_byte(static_cast<std::uint8_t>(a)) + ")");
    case RecordFault::kLength:
      return Status::corruption(rec + at + " claims " + num(a) + " bytes but " + num(b) +
                                " remain");
    case RecordFault::kLimit:
      return Status::limit_exceeded(rec + at + " is " + num(a) + " bytes, limit " + num(b));
    case RecordFault::kTrailing:
      break;
  }
  return Status::corruption(num(a) + " trailing bytes after the records at byte " + num(offset) +
                            where);
}

// Walks every record once: each must be a bin inside the buffer and within the limits, and the
// records must end the buffer. The success path is a plain pointer walk that allocates nothing.
Status validate_records(const std::byte* data, std::size_t size, std::size_t base,
                        std::uint64_t count, const Limits& limits, std::size_t& payload,
                        const char* where) {
  const std::byte* p = data;
  const std::byte* const end = data + size;
  auto at = [&](const std::byte* q) { return base + static_cast<std::size_t>(q - data); };
  const std::size_t max_record = limits.max_record_bytes;  // a local: no reload per record
  std::size_t total = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::size_t left = static_cast<std::size_t>(end - p);
    if (left == 0) return record_error(RecordFault::kTruncated, i, at(p), 0, 0, where);
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    std::size_t hdr = 0;
    std::size_t len = 0;
    switch (u[0]) {
      case detail::kBin8:
        hdr = 2;
        if (left >= hdr) len = u[1];
        break;
      case detail::kBin16:
        hdr = 3;
        if (left >= hdr) len = std::size_t{u[1]} << 8 | u[2];
        break;
      case detail::kBin32:
        hdr = 5;
        if (left >= hdr) {
          len = std::size_t{u[1]} << 24 | std::size_t{u[2]} << 16 | std::size_t{u[3]} << 8 | u[4];
        }
        break;
      default:
        return record_error(RecordFault::kNotBin, i, at(p), u[0], 0, where);
    }
    if (left < hdr) return record_error(RecordFault::kTruncated, i, at(end), 0, 0, where);
    if (len > left - hdr) {
      return record_error(RecordFault::kLength, i, at(p), len, left - hdr, where);
    }
    if (len > max_record) {
      return record_error(RecordFault::kLimit, i, at(p), len, max_record, where);
    }
    total += len;
    p += hdr + len;
  }
  if (p != end) {
    return record_error(RecordFault::kTrailing, 0, at(p), static_cast<std::uint64_t>(end - p), 0,
                        where);
  }
  payload = total;
  return {};
}

// The shape of one zstd frame (RFC 8878, section 3.1.1), read from its headers alone.
struct ZstdShape {
  bool ok = false;
  std::uint64_t max_output = 0;  // the most bytes its blocks can produce
};

// Walks the frame and block headers without decompressing: the frame must be exactly `z`, and the
// sum of what its blocks can produce bounds the content size it may honestly declare, so that a
// lying declaration is refused before anything is allocated for it.
ZstdShape zstd_shape(std::span<const std::byte> z) noexcept {
  constexpr std::uint32_t kMagic = 0xFD2FB528;
  constexpr std::uint64_t kBlockMax = 128 * 1024;
  const std::byte* p = z.data();
  const std::size_t n = z.size();
  if (n < 5) return {};
  const std::uint32_t magic = byte_at(p) | byte_at(p + 1) << 8 | byte_at(p + 2) << 16 |
                              static_cast<std::uint32_t>(byte_at(p + 3)) << 24;
  if (magic != kMagic) return {};
  const std::uint8_t fhd = byte_at(p + 4);
  const unsigned fcs_flag = fhd >> 6;
  const bool single_segment = fhd & 0x20;
  const bool checksum = fhd & 0x04;
  if (fhd & 0x08) return {};  // reserved bit
  constexpr std::size_t kDictIdBytes[] = {0, 1, 2, 4};
  const std::size_t fcs_bytes =
      fcs_flag == 0 ? (single_segment ? 1 : 0) : std::size_t{1} << fcs_flag;
  std::size_t pos = 5 + (single_segment ? 0 : 1) + kDictIdBytes[fhd & 3] + fcs_bytes;
  std::uint64_t out = 0;
  for (;;) {
    if (pos > n || n - pos < 3) return {};
    const std::uint32_t bh = byte_at(p + pos) | byte_at(p + pos + 1) << 8 |
                             static_cast<std::uint32_t>(byte_at(p + pos + 2)) << 16;
    pos += 3;
    const bool last = bh & 1;
    const unsigned type = (bh >> 1) & 3;
    const std::uint64_t size = bh >> 3;
    if (size > kBlockMax) return {};
    std::uint64_t in = 0;
    switch (type) {
      case 0:
        in = size;
        out += size;
        break;  // raw
      case 1:
        in = 1;
        out += size;
        break;  // RLE
      case 2:
        in = size;
        out += kBlockMax;
        break;  // compressed
      default:
        return {};  // reserved
    }
    if (n - pos < in) return {};
    pos += static_cast<std::size_t>(in);
    if (last) break;
  }
  if (checksum) {
    if (n - pos < 4) return {};
    pos += 4;
  }
  if (pos != n) return {};
  return {true, out};
}

ZSTD_DCtx* thread_dctx() {
  thread_local std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> ctx(ZSTD_createDCtx(),
                                                                        ZSTD_freeDCtx);
  if (!ctx) throw std::bad_alloc();
  return ctx.get();
}

// Checks the compressed records' zstd frame against the limits and decompresses it into `out`.
Status inflate(std::span<const std::byte> packed, std::size_t at, const Limits& limits,
               std::unique_ptr<std::byte[]>& out, std::size_t& out_size) {
  auto where = [at] { return "compressed records at byte " + num(at); };
  const unsigned long long declared = ZSTD_getFrameContentSize(packed.data(), packed.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR)
    return Status::corruption(where() + " are not a zstd frame");
  if (declared == ZSTD_CONTENTSIZE_UNKNOWN) {
    return Status::corruption(where() + " do not declare their decompressed size");
  }
  if (declared > limits.max_batch_bytes) {
    return Status::limit_exceeded(where() + " declare " + num(declared) +
                                  " bytes decompressed, limit " + num(limits.max_batch_bytes));
  }
  const ZstdShape shape = zstd_shape(packed);
  if (!shape.ok) return Status::corruption(where() + " are not exactly one well-formed zstd frame");
  if (declared > shape.max_output) {
    return Status::corruption(where() + " declare " + num(declared) +
                              " bytes decompressed but their blocks hold at most " +
                              num(shape.max_output));
  }
  if (declared == 0) return Status::corruption(where() + " decompress to nothing");
  out = std::make_unique_for_overwrite<std::byte[]>(static_cast<std::size_t>(declared));
  const std::size_t got =
      ZSTD_decompressDCtx(thread_dctx(), out.get(), declared, packed.data(), packed.size());
  if (ZSTD_isError(got)) {
    return Status::corruption(where() + " are corrupt: " + ZSTD_getErrorName(got));
  }
  if (got != declared) {
    return Status::corruption(where() + " decompress to " + num(got) + " bytes, not the " +
                              num(declared) + " declared");
  }
  out_size = got;
  return {};
}

}  // namespace

const char* compression_name(Compression c) noexcept {
  switch (c) {
    case Compression::kNone:
      return "none";
    case Compression::kZstd:
      return "zstd";
  }
  return "unknown";
}

std::uint64_t unix_now_ns() noexcept {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

Result<Header> peek(std::span<const std::byte> frame) noexcept {
  try {
    Cursor c(frame.data(), frame.size());
    Header h;
    if (Status s = read_header(c, h); !s) return s;
    if (h.compression() == Compression::kNone) {
      std::uint64_t count = 0;
      if (Status s = c.read_array("records", count); !s) return s;
      // Every record takes at least kMinRecordBytes, so a count the bytes left cannot hold is a
      // lie; callers add record_count to statistics, so it must not reach them unchecked.
      if (count > c.remaining() / fmt::kMinRecordBytes) {
        return Status::corruption("records declares " + num(count) + " records but only " +
                                  num(c.remaining()) + " bytes follow at byte " + num(c.offset()));
      }
      h.record_count = static_cast<std::uint32_t>(count);  // array32 at most: always fits
    } else {
      std::span<const std::byte> packed;
      if (Status s = c.read_bin("compressed records", packed); !s) return s;
    }
    return h;
  } catch (const std::bad_alloc&) {
    return Status::io_error("out of memory while peeking a batch header");
  }
}

// ---- Batch --------------------------------------------------------------------------------------

Batch::Batch(Batch&& other) noexcept
    : header_(other.header_),
      frame_(std::move(other.frame_)),
      external_(std::exchange(other.external_, nullptr)),
      inflated_(std::move(other.inflated_)),
      records_begin_(std::exchange(other.records_begin_, 0)),
      records_end_(std::exchange(other.records_end_, 0)),
      payload_bytes_(std::exchange(other.payload_bytes_, 0)) {
  other.header_ = Header{};
}

Batch& Batch::operator=(Batch&& other) noexcept {
  if (this != &other) {
    header_ = std::exchange(other.header_, Header{});
    frame_ = std::move(other.frame_);
    external_ = std::exchange(other.external_, nullptr);
    inflated_ = std::move(other.inflated_);
    records_begin_ = std::exchange(other.records_begin_, 0);
    records_end_ = std::exchange(other.records_end_, 0);
    payload_bytes_ = std::exchange(other.payload_bytes_, 0);
  }
  return *this;
}

const std::byte* Batch::base() const noexcept {
  if (inflated_) return inflated_.get();
  if (external_) return external_;
  return static_cast<const std::byte*>(frame_.data());
}

Batch::Iterator Batch::begin() const noexcept {
  const std::byte* b = base();
  return {b + records_begin_, b + records_end_};
}
Batch::Iterator Batch::end() const noexcept {
  const std::byte* e = base() + records_end_;
  return {e, e};
}

namespace {

struct Decoded {
  Header header;
  std::unique_ptr<std::byte[]> inflated;
  std::size_t begin = 0;  // records span [begin, end) of the frame, or of `inflated`
  std::size_t end = 0;
  std::size_t payload = 0;
};

Status decode_into(const std::byte* data, std::size_t size, const Limits& limits, Decoded& d) {
  if (size > limits.max_batch_bytes) {
    return Status::limit_exceeded("frame is " + num(size) + " bytes, limit " +
                                  num(limits.max_batch_bytes));
  }
  Cursor c(data, size);
  Header& h = d.header;
  if (Status s = read_header(c, h); !s) return s;
  std::uint64_t count = 0;
  if (h.compression() == Compression::kNone) {
    if (Status s = read_records_header(c, limits, count, "records", ""); !s) return s;
    d.begin = c.offset();
    d.end = size;
    if (Status s =
            validate_records(c.position(), c.remaining(), d.begin, count, limits, d.payload, "");
        !s)
      return s;
  } else {
    std::span<const std::byte> packed;
    if (Status s = c.read_bin("compressed records", packed); !s) return s;
    if (!c.at_end()) {
      return Status::corruption(num(c.remaining()) + " trailing bytes after the batch at byte " +
                                num(c.offset()));
    }
    std::size_t inflated_size = 0;
    if (Status s = inflate(packed, h.records_offset, limits, d.inflated, inflated_size); !s) {
      return s;
    }
    constexpr const char* kWhere = " of the decompressed records";
    Cursor in(d.inflated.get(), inflated_size);
    if (Status s = read_records_header(in, limits, count, "decompressed records", kWhere); !s) return s;
    d.begin = in.offset();
    d.end = inflated_size;
    if (Status s = validate_records(in.position(), in.remaining(), d.begin, count, limits,
                                    d.payload, kWhere);
        !s)
      return s;
  }
  h.record_count = static_cast<std::uint32_t>(count);  // read from an array32 at most
  return {};
}

}  // namespace

Result<Batch> decode(std::span<const std::byte> frame, const Limits& limits) {
  Decoded d;
  try {
    if (Status s = decode_into(frame.data(), frame.size(), limits, d); !s) return s;
  } catch (const std::bad_alloc&) {
    return Status::limit_exceeded("out of memory decoding a batch of " + num(frame.size()) +
                                  " bytes");
  }
  Batch b;
  b.header_ = d.header;
  b.external_ = frame.data();
  b.inflated_ = std::move(d.inflated);
  b.records_begin_ = d.begin;
  b.records_end_ = d.end;
  b.payload_bytes_ = d.payload;
  return b;
}

Result<Batch> decode(zmq::message_t&& frame, const Limits& limits) {
  Decoded d;
  try {
    if (Status s =
            decode_into(static_cast<const std::byte*>(frame.data()), frame.size(), limits, d);
        !s)
      return s;
  } catch (const std::bad_alloc&) {
    return Status::limit_exceeded("out of memory decoding a batch of " + num(frame.size()) +
                                  " bytes");
  }
  Batch b;
  b.header_ = d.header;
  b.frame_ = std::move(frame);
  b.inflated_ = std::move(d.inflated);
  b.records_begin_ = d.begin;
  b.records_end_ = d.end;
  b.payload_bytes_ = d.payload;
  return b;
}

// ---- Encoder ------------------------------------------------------------------------------------

struct Encoder::Compressor {
  ZSTD_CCtx* ctx = ZSTD_createCCtx();
  std::unique_ptr<std::byte[]> scratch;
  std::size_t scratch_capacity = 0;
  ~Compressor() { ZSTD_freeCCtx(ctx); }
};

Encoder::Encoder(EncoderOptions options) : options_(options) {
  if (options_.compression != Compression::kNone && options_.compression != Compression::kZstd) {
    throw std::invalid_argument("zkit::envelope::Encoder: unknown compression");
  }
  if (options_.compression == Compression::kZstd) {
    if (options_.zstd_level < ZSTD_minCLevel() || options_.zstd_level > ZSTD_maxCLevel()) {
      throw std::invalid_argument("zkit::envelope::Encoder: zstd_level " +
                                  std::to_string(options_.zstd_level) + " out of range");
    }
    compressor_ = std::make_unique<Compressor>();
    if (!compressor_->ctx) throw std::bad_alloc();
  }
}
Encoder::~Encoder() = default;
Encoder::Encoder(Encoder&&) noexcept = default;
Encoder& Encoder::operator=(Encoder&&) noexcept = default;

void Encoder::reserve(std::size_t extra) {
  if (buf_ && size_ + extra <= capacity_) return;
  // Grow geometrically; a fresh buffer after a hand-off starts at the size of the last batch.
  const std::size_t cap = buf_ ? std::max(capacity_ * 2, size_ + extra)
                               : std::max<std::size_t>({capacity_, size_ + extra, 4096});
  auto bigger = std::make_unique_for_overwrite<std::byte[]>(cap);
  if (size_) std::memcpy(bigger.get(), buf_.get(), size_);
  buf_ = std::move(bigger);
  capacity_ = cap;
}

void Encoder::begin(std::uint64_t producer_id) {
  size_ = 0;
  count_ = 0;
  reserve(fmt::kFirstRecordOffset);
  std::byte* p = buf_.get();
  p[0] = std::byte{fmt::kTopArray};
  p[1] = std::byte{static_cast<std::uint8_t>(kVersion)};
  p[fmt::kFlagsOffset] = std::byte{0};
  p[fmt::kProducerOffset] = std::byte{detail::kUint64};
  put_be(p + fmt::kProducerOffset + 1, producer_id, 8);
  p[fmt::kSeqOffset] = std::byte{detail::kUint64};
  p[fmt::kCreatedOffset] = std::byte{detail::kUint64};
  p[fmt::kRecordsOffset] = std::byte{detail::kArray32};
  size_ = fmt::kFirstRecordOffset;
}

void Encoder::add(std::span<const std::byte> record) {
  if (!buf_ || size_ < fmt::kFirstRecordOffset) {
    throw std::logic_error("zkit::envelope::Encoder::add before begin()");
  }
  const std::size_t n = record.size();
  if (n > UINT32_MAX) throw std::invalid_argument("zkit::envelope::Encoder: record over 4 GiB");
  if (count_ == UINT32_MAX) {
    throw std::invalid_argument("zkit::envelope::Encoder: more than 2^32-1 records in a batch");
  }
  const std::size_t hdr = record_overhead(n);
  if (size_ + hdr + n > capacity_) reserve(hdr + n);
  std::byte* p = buf_.get() + size_;
  if (hdr == 2) {
    p[0] = std::byte{detail::kBin8};
    p[1] = static_cast<std::byte>(n);
  } else if (hdr == 3) {
    p[0] = std::byte{detail::kBin16};
    put_be(p + 1, n, 2);
  } else {
    p[0] = std::byte{detail::kBin32};
    put_be(p + 1, n, 4);
  }
  if (n) std::memcpy(p + hdr, record.data(), n);
  size_ += hdr + n;
  ++count_;
}

void Encoder::seal_header(std::uint64_t seq, std::uint64_t created_ns) {
  std::byte* p = buf_.get();
  put_be(p + fmt::kSeqOffset + 1, seq, 8);
  put_be(p + fmt::kCreatedOffset + 1, created_ns, 8);
  put_be(p + fmt::kRecordsOffset + 1, count_, 4);
}

// Compresses the records section into the scratch buffer and copies the result into a frame;
// returns an empty message when zstd does not make the batch smaller.
zmq::message_t Encoder::compress() {
  Compressor& z = *compressor_;
  const std::size_t section = size_ - fmt::kRecordsOffset;
  const std::size_t bound = ZSTD_compressBound(section);
  if (z.scratch_capacity < bound) {
    z.scratch = std::make_unique_for_overwrite<std::byte[]>(bound);
    z.scratch_capacity = bound;
  }
  // Declares its content size (the decoder requires it) and carries no checksum: the records are
  // checked by the decoder's walk anyway, and TCP/ZeroMQ frames are not corrupted in flight.
  const std::size_t packed =
      ZSTD_compressCCtx(z.ctx, z.scratch.get(), bound, buf_.get() + fmt::kRecordsOffset, section,
                        options_.zstd_level);
  if (ZSTD_isError(packed)) {
    throw std::runtime_error(std::string("zstd compression failed: ") + ZSTD_getErrorName(packed));
  }
  if (packed + fmt::kRecordsHeaderBytes >= section || packed > UINT32_MAX) return {};
  zmq::message_t frame(fmt::kRecordsOffset + fmt::kRecordsHeaderBytes + packed);
  auto* out = static_cast<std::byte*>(frame.data());
  std::memcpy(out, buf_.get(), fmt::kRecordsOffset);
  out[fmt::kFlagsOffset] = std::byte{static_cast<std::uint8_t>(Compression::kZstd)};
  out[fmt::kRecordsOffset] = std::byte{detail::kBin32};
  put_be(out + fmt::kRecordsOffset + 1, packed, 4);
  std::memcpy(out + fmt::kRecordsOffset + fmt::kRecordsHeaderBytes, z.scratch.get(), packed);
  return frame;
}

zmq::message_t Encoder::finish(std::uint64_t seq, std::uint64_t created_ns) {
  if (!buf_ || size_ < fmt::kFirstRecordOffset) {
    throw std::logic_error("zkit::envelope::Encoder::finish before begin()");
  }
  seal_header(seq, created_ns);
  if (compressor_ && size_ - fmt::kRecordsOffset >= options_.compress_min_bytes) {
    if (zmq::message_t frame = compress(); frame.size() != 0) {
      size_ = 0;
      count_ = 0;
      return frame;  // buf_ stays for the next batch
    }
  }
  // Hand the buffer itself to ZeroMQ, which frees it once sent. The next begin() allocates a fresh
  // one sized for a batch like this one, so steady traffic does not grow it record by record, and
  // a single large batch does not make every later small one allocate as much.
  const std::size_t total = size_;
  auto deleter = [](void* data, void*) { delete[] static_cast<std::byte*>(data); };
  zmq::message_t frame(buf_.get(), total, deleter, nullptr);
  static_cast<void>(buf_.release());
  capacity_ = std::bit_ceil(total);
  size_ = 0;
  count_ = 0;
  return frame;
}

}  // namespace zkit::envelope
