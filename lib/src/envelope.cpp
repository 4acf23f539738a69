#include "zkit/envelope.hpp"

#include <zstd.h>

#include <chrono>
#include <cstring>
#include <new>
#include <string>

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

// Reads the five leading fields and the records element's position.
Status read_header(Cursor& c, Header& h) noexcept {
  std::uint64_t fields = 0;
  if (Status s = c.read_array("batch", fields); !s) return s;
  if (fields == 0) return Status::corruption("batch is an empty array, expected 6 fields");
  if (Status s = c.read_uint("version", h.version); !s) return s;
  if (h.version != kVersion) {
    return Status::unsupported("unsupported batch version " + std::to_string(h.version));
  }
  if (fields != fmt::kTopFields) {
    return Status::corruption("batch is an array of " + std::to_string(fields) +
                              " fields, expected 6");
  }
  if (Status s = c.read_uint("flags", h.flags); !s) return s;
  if (h.flags & ~fmt::kCompressionMask) {
    return Status::unsupported("unknown flag bits " + detail::hex_byte(static_cast<std::uint8_t>(
                                   std::min<std::uint64_t>(h.flags & ~fmt::kCompressionMask, 0xff))) +
                               (h.flags > 0xff ? "+" : "") + " in flags " +
                               std::to_string(h.flags));
  }
  if (h.compression() != Compression::kNone && h.compression() != Compression::kZstd) {
    return Status::unsupported("compression " + std::to_string(h.flags & fmt::kCompressionMask) +
                               " unsupported");
  }
  if (Status s = c.read_uint("producer_id", h.producer_id); !s) return s;
  if (Status s = c.read_uint("seq", h.seq); !s) return s;
  if (Status s = c.read_uint("created_ns", h.created_ns); !s) return s;
  h.records_offset = c.offset();
  return {};
}

// Reads the records array header and checks the declared count against limits and bytes left.
Status read_records_header(Cursor& c, const Limits& limits, std::uint64_t& count) {
  if (Status s = c.read_array("records", count); !s) return s;
  if (count > limits.max_records) {
    return Status::limit_exceeded("batch claims " + std::to_string(count) + " records, limit " +
                                  std::to_string(limits.max_records));
  }
  // Each record takes at least two bytes (bin8 header): a lying count fails here, before any loop.
  if (count > c.remaining() / 2) {
    return Status::corruption("records claims " + std::to_string(count) + " records but " +
                              std::to_string(c.remaining()) + " bytes remain at byte " +
                              std::to_string(c.offset()));
  }
  return {};
}

// Walks every record once: each must be bin, inside the buffer and the limits.
Status validate_records(const std::byte* data, std::size_t size, std::size_t base,
                        std::uint64_t count, const Limits& limits, std::size_t& payload,
                        const char* where) {
  Cursor c(data, size, base);
  payload = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    std::string field = "record " + std::to_string(i);
    if (c.at_end()) return c.truncated(field.c_str());
    std::uint8_t t = byte_at(c.position());
    if (t != detail::kBin8 && t != detail::kBin16 && t != detail::kBin32) {
      return Status::corruption(field + " at byte " + std::to_string(c.offset()) + where +
                                " is not bin (type byte " + detail::hex_byte(t) + ")");
    }
    std::span<const std::byte> rec;
    if (Status s = c.read_bin(field.c_str(), rec); !s) return s;
    if (rec.size() > limits.max_record_bytes) {
      return Status::limit_exceeded(field + " is " + std::to_string(rec.size()) +
                                    " bytes, limit " + std::to_string(limits.max_record_bytes));
    }
    payload += rec.size();
  }
  if (!c.at_end()) {
    return Status::corruption(std::to_string(c.remaining()) + " trailing bytes after the batch at byte " +
                              std::to_string(c.offset()) + where);
  }
  return {};
}

}  // namespace

const char* compression_name(Compression c) noexcept {
  switch (c) {
    case Compression::kNone: return "none";
    case Compression::kZstd: return "zstd";
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
      if (count > UINT32_MAX) return Status::corruption("records count over 2^32");
      h.record_count = static_cast<std::uint32_t>(count);
    }
    return h;
  } catch (const std::bad_alloc&) {
    return Status::io_error("out of memory while peeking a batch header");
  }
}

// ---- Batch --------------------------------------------------------------------------------------

Batch::Iterator::Iterator(const std::byte* pos, const std::byte* end) noexcept
    : pos_(pos), end_(end) {
  load();
}

// Records were validated by decode(): the bin header and payload are known to fit.
void Batch::Iterator::load() noexcept {
  if (pos_ == end_) {
    current_ = {};
    return;
  }
  std::uint8_t t = byte_at(pos_);
  std::size_t hdr = t == detail::kBin8 ? 2 : t == detail::kBin16 ? 3 : 5;
  std::size_t len = 0;
  for (std::size_t i = 1; i < hdr; ++i) len = (len << 8) | byte_at(pos_ + i);
  current_ = {pos_ + hdr, len};
}

Batch::Iterator& Batch::Iterator::operator++() noexcept {
  pos_ = current_.data() + current_.size();
  load();
  return *this;
}

const std::byte* Batch::base() const noexcept {
  if (!inflated_.empty()) return inflated_.data();
  if (external_) return external_;
  return static_cast<const std::byte*>(frame_.data());
}

Batch::Iterator Batch::begin() const noexcept {
  return {base() + records_begin_, base() + records_end_};
}
Batch::Iterator Batch::end() const noexcept {
  return {base() + records_end_, base() + records_end_};
}

namespace {

Status decode_into(const std::byte* data, std::size_t size, const Limits& limits, Header& h, std::vector<std::byte>& inflated, std::size_t& begin,
                   std::size_t& end, std::size_t& payload) {
  if (size > limits.max_batch_bytes) {
    return Status::limit_exceeded("frame is " + std::to_string(size) + " bytes, limit " +
                                  std::to_string(limits.max_batch_bytes));
  }
  Cursor c(data, size);
  if (Status s = read_header(c, h); !s) return s;
  std::uint64_t count = 0;
  if (h.compression() == Compression::kNone) {
    if (Status s = read_records_header(c, limits, count); !s) return s;
    begin = c.offset();
    end = size;
    if (Status s = validate_records(c.position(), c.remaining(), begin, count, limits, payload, "");
        !s)
      return s;
  } else {
    std::span<const std::byte> packed;
    if (Status s = c.read_bin("compressed records", packed); !s) return s;
    if (!c.at_end()) {
      return Status::corruption(std::to_string(c.remaining()) +
                                " trailing bytes after the batch at byte " +
                                std::to_string(c.offset()));
    }
    unsigned long long declared = ZSTD_getFrameContentSize(packed.data(), packed.size());
    if (declared == ZSTD_CONTENTSIZE_ERROR) {
      return Status::corruption("compressed records at byte " + std::to_string(h.records_offset) +
                                " are not a zstd frame");
    }
    if (declared == ZSTD_CONTENTSIZE_UNKNOWN) {
      return Status::corruption("compressed records do not declare their size");
    }
    if (declared > limits.max_batch_bytes) {
      return Status::limit_exceeded("compressed records declare " + std::to_string(declared) +
                                    " bytes, limit " + std::to_string(limits.max_batch_bytes));
    }
    std::size_t frame_size = ZSTD_findFrameCompressedSize(packed.data(), packed.size());
    if (ZSTD_isError(frame_size) || frame_size != packed.size()) {
      return Status::corruption("compressed records are not exactly one zstd frame");
    }
    inflated.resize(static_cast<std::size_t>(declared));
    std::size_t got = ZSTD_decompress(inflated.data(), inflated.size(), packed.data(), packed.size());
    if (ZSTD_isError(got) || got != declared) {
      return Status::corruption(std::string("compressed records do not decompress: ") +
                                (ZSTD_isError(got) ? ZSTD_getErrorName(got) : "size differs"));
    }
    if (inflated.empty()) return Status::corruption("compressed records are empty");
    Cursor in(inflated.data(), inflated.size());
    if (Status s = read_records_header(in, limits, count); !s) return s;
    begin = in.offset();
    end = inflated.size();
    if (Status s = validate_records(in.position(), in.remaining(), begin, count, limits, payload,
                                    " of the decompressed records");
        !s)
      return s;
  }
  h.record_count = static_cast<std::uint32_t>(count);
  return {};
}

}  // namespace

Result<Batch> decode(std::span<const std::byte> frame, const Limits& limits) {
  Batch b;
  try {
    if (Status s = decode_into(frame.data(), frame.size(), limits, b.header_, b.inflated_,
                               b.records_begin_, b.records_end_, b.payload_bytes_);
        !s)
      return s;
  } catch (const std::bad_alloc&) {
    return Status::limit_exceeded("out of memory decoding a batch");
  }
  b.external_ = frame.data();
  return b;
}

Result<Batch> decode(zmq::message_t&& frame, const Limits& limits) {
  Batch b;
  try {
    if (Status s = decode_into(static_cast<const std::byte*>(frame.data()), frame.size(), limits,
                               b.header_, b.inflated_, b.records_begin_, b.records_end_,
                               b.payload_bytes_);
        !s)
      return s;
  } catch (const std::bad_alloc&) {
    return Status::limit_exceeded("out of memory decoding a batch");
  }
  b.frame_ = std::move(frame);
  return b;
}

// ---- Encoder ------------------------------------------------------------------------------------

struct Encoder::Compressor {
  ZSTD_CCtx* ctx = ZSTD_createCCtx();
  ~Compressor() { ZSTD_freeCCtx(ctx); }
};

Encoder::Encoder(EncoderOptions options) : options_(options) {
  if (options_.compression != Compression::kNone && options_.compression != Compression::kZstd) {
    throw std::invalid_argument("zkit::envelope::Encoder: unknown compression");
  }
  if (options_.compression == Compression::kZstd) {
    compressor_ = std::make_unique<Compressor>();
    if (!compressor_->ctx) throw std::bad_alloc();
  }
}
Encoder::~Encoder() = default;
Encoder::Encoder(Encoder&&) noexcept = default;
Encoder& Encoder::operator=(Encoder&&) noexcept = default;

void Encoder::reserve(std::size_t extra) {
  if (buf_ && size_ + extra <= capacity_) return;
  std::size_t cap = buf_ ? std::max(capacity_ * 2, size_ + extra)
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
  if (record.size() > UINT32_MAX) throw std::invalid_argument("record over 4 GiB");
  std::size_t n = record.size();
  std::size_t hdr = record_overhead(n);
  reserve(hdr + n);
  std::byte* p = buf_.get() + size_;
  if (hdr == 2) {
    p[0] = std::byte{detail::kBin8};
  } else if (hdr == 3) {
    p[0] = std::byte{detail::kBin16};
  } else {
    p[0] = std::byte{detail::kBin32};
  }
  put_be(p + 1, n, static_cast<int>(hdr - 1));
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

zmq::message_t Encoder::finish(std::uint64_t seq, std::uint64_t created_ns) {
  if (!buf_ || size_ < fmt::kFirstRecordOffset) {
    throw std::logic_error("zkit::envelope::Encoder::finish before begin()");
  }
  seal_header(seq, created_ns);
  auto deleter = [](void* data, void*) { delete[] static_cast<std::byte*>(data); };
  std::size_t section = size_ - fmt::kRecordsOffset;
  if (compressor_ && section >= options_.compress_min_bytes) {
    std::size_t bound = ZSTD_compressBound(section);
    std::size_t out_cap = fmt::kRecordsOffset + 5 + bound;
    auto out = std::make_unique_for_overwrite<std::byte[]>(out_cap);
    std::memcpy(out.get(), buf_.get(), fmt::kRecordsOffset);
    std::size_t z = ZSTD_compressCCtx(compressor_->ctx, out.get() + fmt::kRecordsOffset + 5, bound,
                                      buf_.get() + fmt::kRecordsOffset, section,
                                      options_.zstd_level);
    if (ZSTD_isError(z)) {
      throw std::runtime_error(std::string("zstd compression failed: ") + ZSTD_getErrorName(z));
    }
    out[fmt::kFlagsOffset] = std::byte{static_cast<std::uint8_t>(Compression::kZstd)};
    out[fmt::kRecordsOffset] = std::byte{detail::kBin32};
    put_be(out.get() + fmt::kRecordsOffset + 1, z, 4);
    std::size_t total = fmt::kRecordsOffset + 5 + z;
    size_ = 0;
    count_ = 0;
    return zmq::message_t(out.release(), total, deleter, nullptr);
  }
  // Hand the buffer itself to ZeroMQ; the next begin() allocates a fresh one of the same size.
  std::size_t total = size_;
  size_ = 0;
  count_ = 0;
  auto* data = buf_.release();
  return zmq::message_t(data, total, deleter, nullptr);
}

}  // namespace zkit::envelope
