// libFuzzer target for the batch envelope reader: peek, decode under small limits (from a span and
// from a zmq::message_t), iterate every record, and re-encode what decoded. Any disagreement traps.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "zkit/envelope.hpp"

namespace {

using zkit::envelope::Batch;

void require(bool ok) {
  if (!ok) __builtin_trap();
}

// Walks every record: the count, the payload total and each span's bounds must agree with the batch.
std::vector<std::span<const std::byte>> walk(const Batch& b, std::span<const std::byte> frame,
                                             const zkit::envelope::Limits& limits) {
  std::vector<std::span<const std::byte>> out;
  std::size_t total = 0;
  for (std::span<const std::byte> r : b) {
    require(r.size() <= limits.max_record_bytes);
    if (b.header().compression() == zkit::envelope::Compression::kNone && !frame.empty()) {
      require(r.data() >= frame.data() && r.data() + r.size() <= frame.data() + frame.size());
    }
    total += r.size();
    out.push_back(r);
  }
  require(out.size() == b.size());
  require(total == b.payload_bytes());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto frame = std::as_bytes(std::span(data, size));
  const auto limits = zkit::envelope::Limits{}.records(256).record_bytes(4096).batch_bytes(1 << 16);

  auto header = zkit::envelope::peek(frame);
  auto batch = zkit::envelope::decode(frame, limits);
  auto from_message = zkit::envelope::decode(zmq::message_t(data, size), limits);
  require(batch.is_ok() == from_message.is_ok());
  if (!batch.is_ok()) {
    require(!batch.status().message().empty());
    require(batch.status().to_string() == from_message.status().to_string());
    return 0;
  }
  require(header.is_ok());  // whatever decodes, peeks
  const auto& h = batch->header();
  require(header->producer_id == h.producer_id && header->seq == h.seq && header->flags == h.flags &&
          header->created_ns == h.created_ns && header->records_offset == h.records_offset);
  if (h.compression() == zkit::envelope::Compression::kNone) {
    require(header->record_count == h.record_count);
  }
  const auto records = walk(*batch, frame, limits);
  Batch moved = std::move(*from_message);  // a frame of <= 33 bytes lives inside the message
  const auto again = walk(moved, {}, limits);
  require(again.size() == records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    require(again[i].size() == records[i].size());
  }

  // What decoded re-encodes (in the zkit layout) to a batch with the same records.
  zkit::envelope::Encoder enc;
  enc.begin(h.producer_id);
  for (auto r : records) enc.add(r);
  auto round = zkit::envelope::decode(enc.finish(h.seq, h.created_ns), limits);
  require(round.is_ok() && round->size() == records.size());
  std::size_t i = 0;
  for (auto r : *round) {
    require(r.size() == records[i].size() &&
            std::equal(r.begin(), r.end(), records[i].begin()));
    ++i;
  }
  return 0;
}
