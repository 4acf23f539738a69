// Log writer and reader over the block format of log_format.hpp (LevelDB's log format, with zlib's
// CRC-32 and a 32-byte logical record header).
#include "log.hpp"

#include <algorithm>
#include <cstring>

#include "log_format.hpp"

namespace zkit::spool::log {

using namespace format;

std::byte* Buffer::grow(std::size_t n) {
  if (size_ + n > capacity_) {
    std::size_t cap = std::max<std::size_t>({capacity_ * 2, size_ + n, 64 * 1024});
    auto fresh = std::make_unique_for_overwrite<std::byte[]>(cap);
    if (size_ > 0) std::memcpy(fresh.get(), data_.get(), size_);
    data_ = std::move(fresh);
    capacity_ = cap;
  }
  std::byte* p = data_.get() + size_;
  size_ += n;
  return p;
}

void Buffer::release() {
  data_.reset();
  size_ = capacity_ = 0;
}

void Writer::add(const RecordHeader& h, std::span<const std::byte> prefix,
                 std::span<const std::byte> body, Buffer& out) {
  std::byte head[kRecordHeaderSize] = {};
  head[kKindOffset] = static_cast<std::byte>(h.kind);
  put_u32(head + kCountOffset, h.count);
  put_u64(head + kProducerOffset, h.producer_id);
  put_u64(head + kSeqOffset, h.seq);
  put_u64(head + kArrivalOffset, h.arrival_ns);

  // The payload is head + prefix + body; copy(dst, from, n) takes n bytes of it from `from`.
  const std::size_t total = kRecordHeaderSize + prefix.size() + body.size();
  auto copy = [&](std::byte* dst, std::size_t from, std::size_t n) {
    for (std::span<const std::byte> part : {std::span<const std::byte>(head), prefix, body}) {
      if (n == 0) return;
      if (from >= part.size()) {
        from -= part.size();
        continue;
      }
      const std::size_t k = std::min(n, part.size() - from);
      std::memcpy(dst, part.data() + from, k);
      dst += k;
      n -= k;
      from = 0;
    }
  };
  std::size_t done = 0;
  bool begin = true;
  do {
    std::size_t leftover = kBlockSize - static_cast<std::size_t>(offset_ % kBlockSize);
    if (leftover < kFragmentHeaderSize) {
      std::memset(out.grow(leftover), 0, leftover);  // the trailer
      offset_ += leftover;
      leftover = kBlockSize;
    }
    const std::size_t avail = leftover - kFragmentHeaderSize;
    const std::size_t len = std::min(total - done, avail);
    const bool end = done + len == total;
    const std::uint8_t type = begin && end ? kFull : begin ? kFirst : end ? kLast : kMiddle;

    std::byte* p = out.grow(kFragmentHeaderSize + len);
    std::byte* payload = p + kFragmentHeaderSize;
    copy(payload, done, len);
    p[6] = static_cast<std::byte>(type);
    std::uint32_t crc = crc32({p + 6, 1 + len});
    put_u32(p, mask(crc));
    put_u16(p + 4, static_cast<std::uint16_t>(len));

    offset_ += kFragmentHeaderSize + len;
    done += len;
    begin = false;
  } while (done < total);
}

std::uint64_t max_framed_size(std::size_t n) {
  const std::uint64_t total = kRecordHeaderSize + n;
  const std::uint64_t fragments = total / (kBlockSize - kFragmentHeaderSize) + 2;
  return total + fragments * kFragmentHeaderSize + kFragmentHeaderSize;
}

std::vector<std::byte> encode_segment_header(std::uint64_t number) {
  std::vector<std::byte> h(kSegmentHeaderSize);
  std::memcpy(h.data(), kSegmentMagic.data(), kSegmentMagic.size());
  put_u32(h.data() + 8, kSegmentVersion);
  put_u64(h.data() + kSegmentNumberOffset, number);
  put_u32(h.data() + kSegmentHeaderCrcOffset,
          crc32(std::span<const std::byte>(h).first(kSegmentHeaderCrcOffset)));
  return h;
}

Result<std::vector<std::byte>> read_segment_header(RandomAccessFile& file) {
  std::vector<std::byte> h(kSegmentHeaderSize);
  auto n = file.read(0, h);
  if (!n) return n.status();
  h.resize(n.value());
  return h;
}

Result<std::uint64_t> decode_segment_header(std::span<const std::byte> h) {
  if (h.size() < kSegmentHeaderSize) return Status::corruption("segment header truncated");
  if (std::memcmp(h.data(), kSegmentMagic.data(), kSegmentMagic.size()) != 0) {
    return Status::corruption("not a spool segment (bad magic)");
  }
  if (get_u32(h.data() + kSegmentHeaderCrcOffset) != crc32(h.first(kSegmentHeaderCrcOffset))) {
    return Status::corruption("segment header checksum mismatch");
  }
  if (std::uint32_t v = get_u32(h.data() + 8); v != kSegmentVersion) {
    return Status::unsupported("unsupported segment version " + std::to_string(v));
  }
  return get_u64(h.data() + kSegmentNumberOffset);
}

Result<RecordView> decode_record(std::span<const std::byte> r) {
  if (r.size() < kRecordHeaderSize) {
    return Status::corruption("record of " + std::to_string(r.size()) +
                              " bytes is shorter than its header");
  }
  RecordView v;
  v.header.kind = std::to_integer<std::uint8_t>(r[kKindOffset]);
  v.header.count = get_u32(r.data() + kCountOffset);
  v.header.producer_id = get_u64(r.data() + kProducerOffset);
  v.header.seq = get_u64(r.data() + kSeqOffset);
  v.header.arrival_ns = get_u64(r.data() + kArrivalOffset);
  v.body = r.subspan(kRecordHeaderSize);
  switch (v.header.kind) {
    case kBatch:
      return v;
    case kScopedBatch:
      if (v.body.size() < kScopeSize) return Status::corruption("scoped batch record without a scope");
      v.scope = get_u64(v.body.data());
      v.body = v.body.subspan(kScopeSize);
      return v;
    case kProducers:
    case kScopedProducers: {
      const std::size_t entry = v.header.kind == kProducers ? kProducerEntrySize
                                                            : kScopedProducerEntrySize;
      if (v.body.size() != std::uint64_t{v.header.count} * entry) {
        return Status::corruption("producers record body of " + std::to_string(v.body.size()) +
                                  " bytes for " + std::to_string(v.header.count) + " entries");
      }
      return v;
    }
    default:
      return Status::corruption("unknown record kind " + std::to_string(v.header.kind));
  }
}

bool RecordView::is_batch() const noexcept {
  return header.kind == kBatch || header.kind == kScopedBatch;
}
bool RecordView::is_producers() const noexcept {
  return header.kind == kProducers || header.kind == kScopedProducers;
}

ProducerEntry producer_entry(const RecordView& v, std::uint32_t i) {
  if (v.header.kind == kProducers) {
    const std::byte* e = v.body.data() + std::size_t{i} * kProducerEntrySize;
    return {0, get_u64(e), get_u64(e + 8)};
  }
  const std::byte* e = v.body.data() + std::size_t{i} * kScopedProducerEntrySize;
  return {get_u64(e), get_u64(e + 8), get_u64(e + 16)};
}

void add_producers(Writer& w, std::span<const ProducerEntry> entries, std::uint64_t arrival_ns,
                   Buffer& out) {
  std::vector<std::byte> body(entries.size() * kScopedProducerEntrySize);
  std::byte* p = body.data();
  for (const ProducerEntry& e : entries) {
    put_u64(p, e.scope);
    put_u64(p + 8, e.producer);
    put_u64(p + 16, e.seq);
    p += kScopedProducerEntrySize;
  }
  RecordHeader h;
  h.kind = kScopedProducers;
  h.count = static_cast<std::uint32_t>(entries.size());
  h.arrival_ns = arrival_ns;
  w.add(h, body, out);
}

Reader::Reader(RandomAccessFile& file, std::uint64_t start, std::uint64_t limit, Reporter reporter)
    : file_(file), limit_(limit), reporter_(std::move(reporter)),
      block_(std::make_unique_for_overwrite<std::byte[]>(kBlockSize)) {
  seek(start, limit);
}

void Reader::seek(std::uint64_t offset, std::uint64_t limit, bool at_boundary) {
  limit_ = limit;
  // Every block starts with a fragment; any other offset may be inside a record (a position a
  // peer named), where only a checksum tells a fragment header from payload.
  on_chain_ = at_boundary || offset % kBlockSize == 0;
  block_start_ = offset - offset % kBlockSize;
  pos_ = static_cast<std::size_t>(offset % kBlockSize);
  loaded_ = false;
  block_len_ = 0;
  record_offset_ = record_end_ = offset;
}

Status Reader::load_block(std::uint64_t block_start) {
  block_start_ = block_start;
  block_len_ = 0;
  loaded_ = true;
  if (block_start >= limit_) return {};
  std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(kBlockSize, limit_ - block_start));
  auto n = file_.read(block_start, {block_.get(), want});
  if (!n) return n.status();
  block_len_ = n.value();
  return {};
}

void Reader::report(std::uint64_t offset, std::uint64_t bytes, std::string reason) {
  if (reporter_) reporter_(Corruption{offset, bytes, std::move(reason)});
}

Result<int> Reader::read_physical(std::span<const std::byte>& fragment, std::uint64_t& offset) {
  while (true) {
    if (!loaded_) {
      if (Status s = load_block(block_start_); !s) return s;
    }
    if (pos_ > block_len_ || block_len_ - pos_ < kFragmentHeaderSize) {
      // A partial block means the file or the limit ends inside it: at most a torn header remains.
      if (block_len_ < kBlockSize) return int{kEof};
      // The trailer left by the writer: the next block's first fragment follows the verified
      // prefix without a gap.
      if (on_chain_ && block_start_ + pos_ == verified_) verified_ = block_start_ + kBlockSize;
      on_chain_ = true;
      if (block_start_ + kBlockSize >= limit_) {
        block_start_ += kBlockSize;
        pos_ = 0;
        loaded_ = false;
        return int{kEof};
      }
      if (Status s = load_block(block_start_ + kBlockSize); !s) return s;
      pos_ = 0;
      continue;
    }
    const std::byte* h = block_.get() + pos_;
    const std::uint32_t stored = unmask(get_u32(h));
    const std::size_t len = get_u16(h + 4);
    const std::uint8_t type = std::to_integer<std::uint8_t>(h[6]);
    const std::uint64_t at = block_start_ + pos_;
    const std::size_t rest = block_len_ - pos_;

    if (type == kZeroType && len == 0 && get_u32(h) == 0) {
      const bool all_zero = std::all_of(h, h + rest, [](std::byte b) { return b == std::byte{0}; });
      pos_ = block_len_;
      if (all_zero && block_start_ + block_len_ >= limit_) return int{kEof};  // zero-filled tail
      report(at, rest, "zero-filled block");
      return int{kBad};
    }
    if (kFragmentHeaderSize + len > rest) {
      pos_ = block_len_;
      if (block_len_ < kBlockSize) return int{kEof};  // cut by the end of the file: a torn tail
      report(at, rest, "bad fragment length " + std::to_string(len));
      return int{kBad};
    }
    const std::uint64_t end = at + kFragmentHeaderSize + len;
    if (!on_chain_ || end > verified_) {
      if (crc32({h + 6, 1 + len}) != stored) {
        // The length may be what is corrupt, so nothing after it in this block can be trusted.
        pos_ = block_len_;
        report(at, rest, "checksum mismatch");
        return int{kBad};
      }
      // `verified_` is a fragment boundary (set_verified's contract), so a fragment that starts
      // there extends the prefix even when this reader did not reach it along the chain: a reader
      // opened at a segment's first record (on no block start) must still share what it checked.
      if (at == verified_) verified_ = end;
      on_chain_ = true;
    }
    pos_ += kFragmentHeaderSize + len;
    if (type == kZeroType || type > kMaxFragmentType) {
      report(at, kFragmentHeaderSize + len, "unknown fragment type " + std::to_string(type));
      return int{kBad};
    }
    fragment = {h + kFragmentHeaderSize, len};
    offset = at;
    return int{type};
  }
}

Result<bool> Reader::next(std::span<const std::byte>& out) {
  scratch_.clear();
  bool in_fragmented = false;
  std::uint64_t first_offset = 0;
  while (true) {
    std::span<const std::byte> fragment;
    std::uint64_t offset = 0;
    auto t = read_physical(fragment, offset);
    if (!t) return t.status();
    switch (t.value()) {
      case kFull:
        if (in_fragmented) {
          report(first_offset, scratch_.size(), "partial record without end");
        }
        record_offset_ = offset;
        record_end_ = block_start_ + pos_;
        out = fragment;
        return true;
      case kFirst:
        if (in_fragmented) {
          report(first_offset, scratch_.size(), "partial record without end");
        }
        first_offset = offset;
        scratch_.assign(fragment.begin(), fragment.end());
        in_fragmented = true;
        break;
      case kMiddle:
        if (!in_fragmented) {
          report(offset, kFragmentHeaderSize + fragment.size(),
                 "missing start of fragmented record");
        } else {
          scratch_.insert(scratch_.end(), fragment.begin(), fragment.end());
        }
        break;
      case kLast:
        if (!in_fragmented) {
          report(offset, kFragmentHeaderSize + fragment.size(),
                 "missing start of fragmented record");
        } else {
          scratch_.insert(scratch_.end(), fragment.begin(), fragment.end());
          record_offset_ = first_offset;
          record_end_ = block_start_ + pos_;
          out = scratch_;
          return true;
        }
        break;
      case kEof:
        // A record cut by the end is a torn tail, not a corruption.
        return false;
      case kBad:
        if (in_fragmented) {
          report(first_offset, scratch_.size(), "error in middle of record");
          in_fragmented = false;
          scratch_.clear();
        }
        break;
    }
  }
}

}  // namespace zkit::spool::log
