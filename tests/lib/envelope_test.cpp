// Tests of the batch envelope codec: round trips, the docs' exact bytes, msgpack-c agreement, O(1)
// peek, moves, and a table of malformed frames each refused with its typed error.
#include <zstd.h>

#include <map>
#include <msgpack.hpp>
#include <random>
#include <string>
#include <vector>

#include "alloc_watch.hpp"
#include "envelope_testutil.hpp"

using namespace zkit;
using namespace zkit::testing;
using envelope::Compression;

namespace {

struct Encoded {
  Bytes frame;
  std::vector<Bytes> records;
  std::uint64_t producer = 0, seq = 0, created = 0;
};

Encoded encode(envelope::Encoder& enc, const std::vector<Bytes>& records, std::uint64_t producer,
               std::uint64_t seq, std::uint64_t created) {
  enc.begin(producer);
  for (const Bytes& r : records) enc.add(std::span<const std::byte>(r));
  zmq::message_t m = enc.finish(seq, created);
  return {to_bytes(m), records, producer, seq, created};
}

void check_batch(const envelope::Batch& b, const Encoded& e) {
  CHECK(b.header().version == 1);
  CHECK(b.header().producer_id == e.producer);
  CHECK(b.header().seq == e.seq);
  CHECK(b.header().created_ns == e.created);
  REQUIRE(b.size() == e.records.size());
  std::size_t i = 0, payload = 0;
  for (std::span<const std::byte> r : b) {
    REQUIRE(i < e.records.size());
    CHECK(Bytes(r.begin(), r.end()) == e.records[i]);
    payload += r.size();
    ++i;
  }
  CHECK(i == e.records.size());
  CHECK(b.payload_bytes() == payload);
}

// The two-message batch of docs/wire-format.md.
constexpr const char* kDocsExampleHex =
    "96 01 00 cf 00 00 00 00 00 00 00 2a cf 00 00 00 00 00 00 00 07 cf 18 7b 37 96 dc 21 0d 15"
    " dd 00 00 00 02 c4 05 68 65 6c 6c 6f c4 04 7a 6b 69 74";

// The same batch as msgpack-python writes it, in the smallest forms (also in the docs).
constexpr const char* kDocsSmallestHex =
    "96 01 00 2a 07 cf 18 7b 37 96 dc 21 0d 15 92 c4 05 68 65 6c 6c 6f c4 04 7a 6b 69 74";

}  // namespace

TEST_CASE("Randomized batches round-trip, compressed and not, from a message and from a span",
          "[envelope]") {
  std::mt19937_64 rng(0x5eed2026);
  const std::size_t kSizes[] = {0, 1, 15, 16, 255, 256, 1000, 65535, 65536};
  std::map<std::uint64_t, int> flags_seen;
  for (Compression comp : {Compression::kNone, Compression::kZstd}) {
    envelope::EncoderOptions opts;
    opts.compression = comp;
    envelope::Encoder enc(opts);  // reused across batches
    for (int round = 0; round < 60; ++round) {
      const std::size_t counts[] = {0, 1, 2, 17, 1000};
      std::size_t count = counts[rng() % 5];
      std::vector<Bytes> records(count);
      std::size_t big = 0;
      for (Bytes& r : records) {
        std::size_t n = rng() % 3 == 0 ? kSizes[rng() % 9] : rng() % 300;
        if (n > 1000 && ++big > 4) n = rng() % 300;  // a few 64 KiB records per batch, not 1000
        r.resize(n);
        const bool compressible = rng() % 2 == 0;
        for (std::size_t k = 0; k < n; ++k) {
          r[k] = static_cast<std::byte>(compressible ? k % 7 : rng());
        }
      }
      INFO("round " << round << ", " << count << " records, compression "
                    << envelope::compression_name(comp));
      Encoded e = encode(enc, records, rng(), rng(), rng());
      auto h = envelope::peek(e.frame);
      REQUIRE(h.is_ok());
      ++flags_seen[h->flags];
      if (comp == Compression::kNone) CHECK(h->flags == 0);

      auto from_span = envelope::decode(std::span<const std::byte>(e.frame));
      REQUIRE(from_span.is_ok());
      check_batch(*from_span, e);
      CHECK(from_span->header().flags == h->flags);

      zmq::message_t msg(e.frame.data(), e.frame.size());
      auto from_msg = envelope::decode(std::move(msg));
      REQUIRE(from_msg.is_ok());
      check_batch(*from_msg, e);
      CHECK(from_msg->frame().size() == e.frame.size());
    }
  }
  CHECK(flags_seen[1] > 0);  // compression really happened
  CHECK(flags_seen[0] > 0);
}

TEST_CASE("A batch of zero records round-trips", "[envelope]") {
  envelope::Encoder enc;
  Encoded e = encode(enc, {}, 9, 1, 2);
  CHECK(e.frame.size() == envelope::kEncodedHeaderBytes);
  auto b = envelope::decode(std::span<const std::byte>(e.frame));
  REQUIRE(b.is_ok());
  CHECK(b->empty());
  CHECK(b->begin() == b->end());
  check_batch(*b, e);
}

TEST_CASE("The encoder writes the docs' two-message example byte for byte", "[envelope][docs]") {
  envelope::Encoder enc;
  enc.begin(42);
  enc.add(std::string_view("hello"));
  enc.add(std::string_view("zkit"));
  CHECK(enc.record_count() == 2);
  CHECK(enc.encoded_bytes() == 35 + 7 + 6);
  zmq::message_t frame = enc.finish(7, 1764064800123456789ULL);
  CHECK(to_hex(to_bytes(frame)) == to_hex(from_hex(kDocsExampleHex)));

  auto b = envelope::decode(std::move(frame));
  REQUIRE(b.is_ok());
  CHECK(b->header().producer_id == 42);
  CHECK(b->header().seq == 7);
  CHECK(b->header().created_ns == 1764064800123456789ULL);
  std::vector<std::string> got;
  for (auto r : *b) got.push_back(to_string(r));
  CHECK(got == std::vector<std::string>{"hello", "zkit"});
}

TEST_CASE("The docs' smallest-form example decodes to the same batch", "[envelope][docs]") {
  const Bytes f = from_hex(kDocsSmallestHex);
  REQUIRE(f.size() == 28);
  auto b = envelope::decode(std::span<const std::byte>(f));
  REQUIRE(b.is_ok());
  check_batch(*b, Encoded{{}, {to_bytes("hello"), to_bytes("zkit")}, 42, 7,
                          1764064800123456789ULL});
}

TEST_CASE("Records use the smallest bin form and encoded_bytes() predicts the frame size",
          "[envelope]") {
  envelope::Encoder enc;
  enc.begin(1);
  std::size_t expect = envelope::kEncodedHeaderBytes;
  for (std::size_t n : {0, 255, 256, 65535, 65536}) {
    enc.add(std::span<const std::byte>(Bytes(n, std::byte{'x'})));
    expect += envelope::record_overhead(n) + n;
    CHECK(enc.encoded_bytes() == expect);
  }
  Bytes f = to_bytes(enc.finish(1, 1));
  REQUIRE(f.size() == expect);
  std::size_t at = 35;
  for (unsigned type : {0xc4u, 0xc4u, 0xc5u, 0xc5u, 0xc6u}) {
    CHECK(static_cast<unsigned>(f[at]) == type);
    std::size_t hdr = type == 0xc4 ? 2 : type == 0xc5 ? 3 : 5;
    std::size_t len = 0;
    for (std::size_t k = 1; k < hdr; ++k) len = len << 8 | static_cast<unsigned>(f[at + k]);
    at += hdr + len;
  }
  CHECK(at == f.size());
}

TEST_CASE("msgpack-c reads an encoded batch as the same fields", "[envelope][msgpack]") {
  const msgpack::unpack_limit limit(/*array=*/1 << 20, /*map=*/0, /*str=*/0, /*bin=*/1 << 24,
                                    /*ext=*/0, /*depth=*/2);
  std::vector<Bytes> records{to_bytes("hello"), Bytes{}, Bytes(300, std::byte{7}),
                             Bytes(70000, std::byte{1})};
  for (Compression comp : {Compression::kNone, Compression::kZstd}) {
    envelope::EncoderOptions opts;
    opts.compression = comp;
    envelope::Encoder enc(opts);
    Encoded e = encode(enc, records, 0xfeedfacecafebeefULL, 12345, 1764064800123456789ULL);
    msgpack::object_handle oh = msgpack::unpack(reinterpret_cast<const char*>(e.frame.data()),
                                                e.frame.size(), nullptr, nullptr, limit);
    const msgpack::object& o = oh.get();
    REQUIRE(o.type == msgpack::type::ARRAY);
    REQUIRE(o.via.array.size == 6);
    const msgpack::object* f = o.via.array.ptr;
    CHECK(f[0].as<std::uint64_t>() == 1);
    CHECK(f[1].as<std::uint64_t>() == static_cast<std::uint64_t>(comp));
    CHECK(f[2].as<std::uint64_t>() == 0xfeedfacecafebeefULL);
    CHECK(f[3].as<std::uint64_t>() == 12345);
    CHECK(f[4].as<std::uint64_t>() == 1764064800123456789ULL);

    msgpack::object_handle inner;
    const msgpack::object* recs = &f[4] + 1;
    std::vector<char> inflated;
    if (comp == Compression::kZstd) {
      REQUIRE(recs->type == msgpack::type::BIN);
      unsigned long long n = ZSTD_getFrameContentSize(recs->via.bin.ptr, recs->via.bin.size);
      REQUIRE(n < (1u << 24));
      inflated.resize(n);
      REQUIRE(ZSTD_decompress(inflated.data(), n, recs->via.bin.ptr, recs->via.bin.size) == n);
      inner = msgpack::unpack(inflated.data(), inflated.size(), nullptr, nullptr, limit);
      recs = &inner.get();
    }
    REQUIRE(recs->type == msgpack::type::ARRAY);
    REQUIRE(recs->via.array.size == records.size());
    for (std::size_t i = 0; i < records.size(); ++i) {
      const msgpack::object& r = recs->via.array.ptr[i];
      REQUIRE(r.type == msgpack::type::BIN);
      CHECK(Bytes(reinterpret_cast<const std::byte*>(r.via.bin.ptr),
                  reinterpret_cast<const std::byte*>(r.via.bin.ptr) + r.via.bin.size) ==
            records[i]);
    }
  }
  // What zkit refuses with no allocation, msgpack-c refuses too, but only when given a limit.
  const char bomb[] = {'\xdd', '\xff', '\xff', '\xff', '\xff'};
  CHECK_THROWS_AS(msgpack::unpack(bomb, sizeof bomb, nullptr, nullptr, limit),
                  msgpack::array_size_overflow);
}

TEST_CASE("zkit decodes what msgpack-c packs in its smallest forms", "[envelope][msgpack]") {
  std::vector<Bytes> records;
  for (std::size_t n : {0, 5, 300, 70000}) records.push_back(Bytes(n, std::byte{'r'}));
  for (int i = 0; i < 16; ++i) records.push_back(to_bytes(std::to_string(i)));  // array16
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(6);
  pk.pack(std::uint64_t{1});
  pk.pack(std::uint64_t{0});
  pk.pack(std::uint64_t{3});        // positive fixint
  pk.pack(std::uint64_t{300});      // uint16
  pk.pack(std::uint64_t{1} << 40);  // uint64
  pk.pack_array(static_cast<std::uint32_t>(records.size()));
  for (const Bytes& r : records) {
    pk.pack_bin(static_cast<std::uint32_t>(r.size()));
    pk.pack_bin_body(reinterpret_cast<const char*>(r.data()), static_cast<std::uint32_t>(r.size()));
  }
  auto data = std::as_bytes(std::span(buf.data(), buf.size()));
  CHECK(static_cast<unsigned>(data[0]) == 0x96);
  auto h = envelope::peek(data);
  REQUIRE(h.is_ok());
  CHECK(h->record_count == records.size());
  CHECK(h->records_offset == 1 + 1 + 1 + 1 + 3 + 9);
  auto b = envelope::decode(data);
  REQUIRE(b.is_ok());
  check_batch(*b, Encoded{{}, records, 3, 300, std::uint64_t{1} << 40});
}

TEST_CASE("A moved Batch iterates its records, also over a frame ZeroMQ stores inline",
          "[envelope]") {
  // 15 bytes: ZeroMQ keeps frames of up to 33 bytes inside the message object itself.
  Bytes small = Mp().raw({0x96, 0x01, 0x00}).u(42).u(7).u(1000).array(2).bin("ab").bin("");
  REQUIRE(small.size() <= 33);
  zmq::message_t msg(small.data(), small.size());
  auto r = envelope::decode(std::move(msg));
  REQUIRE(r.is_ok());
  envelope::Batch a = std::move(r).value();
  envelope::Batch b = std::move(a);
  CHECK(a.empty());  // NOLINT(bugprone-use-after-move): a moved-from Batch is empty
  CHECK(a.begin() == a.end());
  auto expect = [](const envelope::Batch& x) {
    std::vector<std::string> got;
    for (auto rec : x) got.push_back(to_string(rec));
    CHECK(got == std::vector<std::string>{"ab", ""});
    CHECK(x.header().producer_id == 42);
  };
  expect(b);
  Bytes other = Mp().raw({0x96, 0x01, 0x00}).u(1).u(1).u(1).array(0);
  auto c = envelope::decode(zmq::message_t(other.data(), other.size()));
  REQUIRE(c.is_ok());
  *c = std::move(b);
  expect(*c);
  envelope::Batch d = std::move(*c);
  expect(d);
  CHECK(d.frame().size() == small.size());

  // Over 33 bytes the frame is on the heap: record spans taken before a move stay valid.
  envelope::Encoder enc;
  Encoded e = encode(enc, {to_bytes("record zero"), to_bytes("record one")}, 1, 1, 1);
  auto big = envelope::decode(zmq::message_t(e.frame.data(), e.frame.size()));
  REQUIRE(big.is_ok());
  std::span<const std::byte> first = *big->begin();
  envelope::Batch moved = std::move(*big);
  CHECK((*moved.begin()).data() == first.data());
  check_batch(moved, e);
}

TEST_CASE("peek reads the header alone, never the records", "[envelope]") {
  Bytes f = Mp().zkit_header().array32(5).raw("garbage, not records at all");
  auto h = envelope::peek(f);
  REQUIRE(h.is_ok());
  CHECK(h->version == 1);
  CHECK(h->producer_id == 42);
  CHECK(h->seq == 7);
  CHECK(h->created_ns == 1000);
  CHECK(h->record_count == 5);
  CHECK(h->records_offset == 30);
  CHECK(h->compression() == Compression::kNone);
  REQUIRE_FALSE(envelope::decode(std::span<const std::byte>(f)).is_ok());

  // A batch of 1000 records: its records' content is not read, only its size is weighed.
  envelope::Encoder enc;
  std::vector<Bytes> recs(1000, Bytes(100, std::byte{1}));
  Encoded e = encode(enc, recs, 5, 6, 7);
  auto hp = envelope::peek(e.frame);
  REQUIRE(hp.is_ok());
  CHECK(hp->record_count == 1000);
  CHECK(hp->seq == 6);
  REQUIRE_ERROR(envelope::peek(std::span<const std::byte>(e.frame).first(34)), Code::kCorruption,
                "truncated at byte 34 (records)");

  // A compressed batch: the records bin header is checked, its content is not.
  Bytes z = Mp().zkit_header(1).bin32(to_bytes("not even zstd"));
  auto hz = envelope::peek(z);
  REQUIRE(hz.is_ok());
  CHECK(hz->compression() == Compression::kZstd);
  CHECK(hz->record_count == 0);
}

TEST_CASE("Compression is skipped for small or incompressible batches, and flags say so",
          "[envelope]") {
  envelope::EncoderOptions opts;
  opts.compression = Compression::kZstd;
  envelope::Encoder enc(opts);
  Encoded small = encode(enc, {Bytes(100, std::byte{0})}, 1, 1, 1);  // under compress_min_bytes
  CHECK(static_cast<unsigned>(small.frame[2]) == 0);
  std::mt19937 rng(1);
  Bytes noise(4096);
  for (auto& x : noise) x = static_cast<std::byte>(rng());
  Encoded random = encode(enc, {noise}, 1, 2, 1);
  CHECK(static_cast<unsigned>(random.frame[2]) == 0);
  Encoded zeros = encode(enc, {Bytes(4096, std::byte{0})}, 1, 3, 1);
  CHECK(static_cast<unsigned>(zeros.frame[2]) == 1);
  CHECK(zeros.frame.size() < 200);
  for (const Encoded* e : {&small, &random, &zeros}) {
    auto b = envelope::decode(std::span<const std::byte>(e->frame));
    REQUIRE(b.is_ok());
    check_batch(*b, *e);
  }
}

TEST_CASE("Misuse of the Encoder throws", "[envelope]") {
  envelope::Encoder enc;
  CHECK_THROWS_AS(enc.add(std::string_view("x")), std::logic_error);
  CHECK_THROWS_AS(enc.finish(1, 1), std::logic_error);
  enc.begin(1);
  enc.add(std::string_view("x"));
  (void)enc.finish(1, 1);
  CHECK_THROWS_AS(enc.add(std::string_view("x")), std::logic_error);  // finish needs begin again
  envelope::EncoderOptions bad;
  bad.compression = Compression::kZstd;
  bad.zstd_level = 1000;
  CHECK_THROWS_AS(envelope::Encoder(bad), std::invalid_argument);
  bad.zstd_level = 1;
  bad.compression = static_cast<Compression>(5);
  CHECK_THROWS_AS(envelope::Encoder(bad), std::invalid_argument);
}

TEST_CASE("Every truncation of a valid frame is refused as corruption", "[envelope][malformed]") {
  envelope::Encoder plain;
  envelope::EncoderOptions zo;
  zo.compression = Compression::kZstd;
  zo.compress_min_bytes = 0;
  envelope::Encoder packed(zo);
  std::vector<Bytes> recs{to_bytes("hello"), Bytes(300, std::byte{'a'}), Bytes{}, to_bytes("z")};
  for (envelope::Encoder* enc : {&plain, &packed}) {
    Encoded e = encode(*enc, recs, 42, 7, 1000);
    REQUIRE(envelope::decode(std::span<const std::byte>(e.frame)).is_ok());
    for (std::size_t cut = 0; cut < e.frame.size(); ++cut) {
      INFO("frame of " << e.frame.size() << " bytes cut to " << cut << ", flags "
                       << static_cast<unsigned>(e.frame[2]));
      auto r = envelope::decode(std::span<const std::byte>(e.frame).first(cut));
      REQUIRE_FALSE(r.is_ok());
      CHECK(r.status().code() == Code::kCorruption);
      const std::string& m = r.status().message();
      if (cut < envelope::kEncodedHeaderBytes) {
        CHECK_THAT(m, Catch::Matchers::Contains("truncated at byte " + std::to_string(cut)));
        REQUIRE_ERROR(envelope::peek(std::span<const std::byte>(e.frame).first(cut)),
                      Code::kCorruption, "truncated at byte " + std::to_string(cut));
      } else {
        CHECK_THAT(m, Catch::Matchers::Contains("truncated at byte " + std::to_string(cut)) ||
                          Catch::Matchers::Contains("bytes follow at byte") ||
                          Catch::Matchers::Contains("remain"));
      }
    }
  }
}

namespace {

// A zstd frame built by hand: single segment, a 4-byte content size saying `declared`, and one last
// block of `type` (0 raw, 1 RLE, 2 compressed, 3 reserved) carrying `content`.
Bytes zstd_by_hand(const Bytes& content, std::uint32_t declared, unsigned type = 0) {
  Mp m;
  m.raw({0x28, 0xb5, 0x2f, 0xfd, 0xa0});
  for (int i = 0; i < 4; ++i) m.raw({(declared >> (8 * i)) & 0xffu});
  const std::uint32_t bh = static_cast<std::uint32_t>(content.size()) << 3 | type << 1 | 1;
  m.raw({bh & 0xff, (bh >> 8) & 0xff, (bh >> 16) & 0xff});
  return m.raw(content);
}

Bytes compressed_batch(const Bytes& zstd) { return Mp().zkit_header(1).bin32(zstd); }

struct Malformed {
  std::string name;
  Bytes frame;
  Code code;
  std::string text;
  envelope::Limits limits{};
  std::size_t max_alloc = 1024;  // largest allocation decode() may make
};

std::vector<Malformed> malformed_frames() {
  const Bytes one = Mp().array32(1).bin("a");  // a records section of one record
  Bytes five = Mp().array32(5).bytes();
  for (int i = 0; i < 5; ++i) five = concat(five, Mp().bin("r"));
  const Bytes mib_of_zeros = concat(Mp().array32(1).raw({0xc6, 0x00, 0x10, 0x00, 0x00}),
                                    Bytes(std::size_t{1} << 20, std::byte{0}));
  Bytes hundred(100, std::byte{'h'});
  // A real zstd frame of compressible records with bytes of its compressed block overwritten.
  Bytes text;
  for (int i = 0; i < 400; ++i) text = concat(text, to_bytes("record " + std::to_string(i % 37)));
  Bytes corrupt = zstd_frame(concat(Mp().array32(1).raw({0xc5}).be(text.size(), 2), text));
  for (std::size_t i = corrupt.size() / 2; i < corrupt.size() / 2 + 8; ++i)
    corrupt[i] ^= std::byte{0x5a};
  const std::uint64_t kHigh = std::uint64_t{1} << 63;
  Bytes cut_header = Mp().zkit_header();
  cut_header.resize(16);

  using L = envelope::Limits;
  return {
      {"an empty frame", {}, Code::kCorruption, "truncated at byte 0 (batch)"},
      {"an array claiming 4 billion fields", from_hex("dd ff ff ff ff"), Code::kCorruption,
       "truncated at byte 5 (version)"},
      {"a map instead of an array", Mp().raw({0x86}).u(1), Code::kCorruption,
       "batch at byte 0 is not an array (type byte 0x86)"},
      {"nil", from_hex("c0"), Code::kCorruption,
       "batch at byte 0 is not an array (type byte 0xc0)"},
      {"an empty array", from_hex("90"), Code::kCorruption, "batch is an empty array"},
      {"version 7", Mp().raw({0x96}).u(7).u(0).u64(42).u64(7).u64(1000).array32(0),
       Code::kUnsupported, "unsupported batch version 7"},
      {"version 2 in another shape", Mp().raw({0x92}).u(2).str("x"), Code::kUnsupported,
       "unsupported batch version 2"},
      {"version 2^64-1 in a uint64", Mp().raw({0x96}).u64(~std::uint64_t{0}), Code::kUnsupported,
       "unsupported batch version 18446744073709551615"},
      {"version as a str", Mp().raw({0x96}).str("1"), Code::kCorruption,
       "version at byte 1 is not an unsigned integer (type byte 0xa1)"},
      {"a negative version", from_hex("96 ff"), Code::kCorruption,
       "version at byte 1 is not an unsigned integer (type byte 0xff)"},
      {"five fields", Mp().raw({0x95, 0x01, 0x00}).u64(42).u64(7).u64(1000), Code::kCorruption,
       "batch is an array of 5 fields, expected 6"},
      {"seven fields in an array16", Mp().raw({0xdc, 0x00, 0x07, 0x01}).u(0), Code::kCorruption,
       "batch is an array of 7 fields, expected 6"},
      {"flags as bin", from_hex("96 01 c4 00"), Code::kCorruption,
       "flags at byte 2 is not an unsigned integer (type byte 0xc4)"},
      {"unknown flag bit 3", Mp().zkit_header(8).array32(0), Code::kUnsupported,
       "unknown flag bits 0x8 in flags 0x8"},
      {"unknown flag bit 63 beside zstd", Mp().zkit_header(kHigh | 1).array32(0),
       Code::kUnsupported, "unknown flag bits 0x8000000000000000 in flags 0x8000000000000001"},
      {"compression 2", Mp().zkit_header(2).array32(0), Code::kUnsupported,
       "unsupported compression 2"},
      {"compression 7", Mp().zkit_header(7).array32(0), Code::kUnsupported,
       "unsupported compression 7"},
      {"producer_id as float64", Mp().raw({0x96, 0x01, 0x00, 0xcb}).be(0, 8), Code::kCorruption,
       "producer_id at byte 3 is not an unsigned integer (type byte 0xcb)"},
      {"seq as int8", Mp().raw({0x96, 0x01, 0x00}).u64(42).raw({0xd0, 0x05}), Code::kCorruption,
       "seq at byte 12 is not an unsigned integer (type byte 0xd0)"},
      {"created_ns as nil", Mp().raw({0x96, 0x01, 0x00}).u64(42).u64(7).raw({0xc0}),
       Code::kCorruption, "created_ns at byte 21 is not an unsigned integer (type byte 0xc0)"},
      {"a header cut inside seq", cut_header, Code::kCorruption, "truncated at byte 16 (seq)"},
      {"records as a map", Mp().zkit_header().raw({0x80}), Code::kCorruption,
       "records at byte 30 is not an array (type byte 0x80)"},
      {"records as bin in an uncompressed batch", Mp().zkit_header().bin("x"), Code::kCorruption,
       "records at byte 30 is not an array (type byte 0xc4)"},
      {"a records count that lies", Mp().zkit_header().array32(1000).bin("a").bin("b"),
       Code::kCorruption, "records declares 1000 records but only 6 bytes follow at byte 35"},
      {"a records array32 claiming 4 billion",
       Mp().zkit_header().raw({0xdd, 0xff, 0xff, 0xff, 0xff}), Code::kLimitExceeded,
       "batch has 4294967295 records, limit 1048576"},
      {"more records than max_records", concat(Mp().zkit_header(), five), Code::kLimitExceeded,
       "batch has 5 records, limit 4", L{}.records(4)},
      {"record 3 is a str", Mp().zkit_header().array32(4).bin("a").bin("b").bin("c").str("dd"),
       Code::kCorruption, "record 3 at byte 44 is not bin (type byte 0xa2)"},
      {"record 1 is nil", Mp().zkit_header().array32(2).bin("a").raw({0xc0, 0xc0}),
       Code::kCorruption, "record 1 at byte 38 is not bin (type byte 0xc0)"},
      {"a bin8 length that lies",
       Mp().zkit_header().array32(2).bin("a").raw({0xc4, 200}).raw("xyz"), Code::kCorruption,
       "record 1 at byte 38 claims 200 bytes but 3 remain"},
      {"a bin32 claiming 4 GiB",
       Mp().zkit_header().array32(1).raw({0xc6, 0xff, 0xff, 0xff, 0xff}).raw("abc"),
       Code::kCorruption, "record 0 at byte 35 claims 4294967295 bytes but 3 remain"},
      {"a record cut inside its length", Mp().zkit_header().array32(1).raw({0xc5, 0x01}),
       Code::kCorruption, "truncated at byte 37 (record 0)"},
      {"a record over max_record_bytes", Mp().zkit_header().array32(2).bin("a").bin(hundred),
       Code::kLimitExceeded, "record 1 at byte 38 is 100 bytes, limit 10", L{}.record_bytes(10)},
      {"a frame over max_batch_bytes", Mp().zkit_header().array32(1).bin(hundred),
       Code::kLimitExceeded, "frame is 137 bytes, limit 100", L{}.batch_bytes(100)},
      {"trailing bytes after the records", Mp().zkit_header().array32(1).bin("a").raw({0, 0}),
       Code::kCorruption, "2 trailing bytes after the records at byte 38"},
      {"fewer records declared than present", Mp().zkit_header().array32(1).bin("a").bin("b"),
       Code::kCorruption, "3 trailing bytes after the records at byte 38"},
      // Compressed batches.
      {"compressed records as an array", Mp().zkit_header(1).array32(0), Code::kCorruption,
       "compressed records at byte 30 is not bin (type byte 0xdd)"},
      {"a compressed bin length that lies", Mp().zkit_header(1).raw({0xc6, 0, 0, 1, 0}).raw("abc"),
       Code::kCorruption, "compressed records claims 256 bytes but 3 remain at byte 35"},
      {"compressed records that are not zstd", compressed_batch(to_bytes("not zstd at all")),
       Code::kCorruption, "compressed records at byte 30 are not a zstd frame"},
      {"a zstd bomb: 1 MiB declared, limit 64 KiB", compressed_batch(zstd_frame(mib_of_zeros)),
       Code::kLimitExceeded,
       "compressed records at byte 30 declare 1048586 bytes decompressed, limit 65536",
       L{}.batch_bytes(65536)},
      {"a zstd frame without its content size", compressed_batch(zstd_frame(one, false)),
       Code::kCorruption, "do not declare their decompressed size"},
      {"a zstd frame declaring more than its blocks hold",
       compressed_batch(zstd_by_hand(one, 1000000)), Code::kCorruption,
       "declare 1000000 bytes decompressed but their blocks hold at most 8"},
      {"a zstd frame declaring less than it holds", compressed_batch(zstd_by_hand(one, 4)),
       Code::kCorruption, "compressed records at byte 30 are corrupt"},
      {"a zstd block of the reserved type", compressed_batch(zstd_by_hand(one, 8, 3)),
       Code::kCorruption, "not exactly one well-formed zstd frame"},
      {"a corrupt compressed zstd block", compressed_batch(corrupt), Code::kCorruption,
       "compressed records at byte 30 are corrupt", L{}, 8192},
      {"two zstd frames in one bin", compressed_batch(concat(zstd_frame(one), zstd_frame(one))),
       Code::kCorruption, "not exactly one well-formed zstd frame"},
      {"trailing bytes after the compressed records",
       concat(compressed_batch(zstd_frame(one)), Bytes{std::byte{0}}), Code::kCorruption,
       "1 trailing bytes after the batch at byte"},
      {"trailing bytes inside the decompressed records",
       compressed_batch(zstd_frame(concat(one, Bytes(3, std::byte{0})))), Code::kCorruption,
       "3 trailing bytes after the records at byte 8 of the decompressed records"},
      {"decompressed records over max_records", compressed_batch(zstd_frame(five)),
       Code::kLimitExceeded, "batch has 5 records, limit 4", L{}.records(4)},
      {"decompressed records that are not an array", compressed_batch(zstd_frame(Mp().bin("x").bytes())),
       Code::kCorruption, "decompressed records at byte 0 is not an array (type byte 0xc4)"},
      {"decompressed record 1 is a str",
       compressed_batch(zstd_frame(Mp().array32(2).bin("a").str("b").bytes())), Code::kCorruption,
       "record 1 at byte 8 of the decompressed records is not bin (type byte 0xa1)"},
      {"a decompressed record over max_record_bytes",
       compressed_batch(zstd_frame(Mp().array32(1).bin(hundred).bytes())), Code::kLimitExceeded,
       "record 0 at byte 5 of the decompressed records is 100 bytes, limit 10",
       L{}.record_bytes(10)},
      {"a skippable zstd frame", compressed_batch(from_hex("50 2a 4d 18 02 00 00 00 ab cd")),
       Code::kCorruption, "compressed records at byte 30"},
  };
}

}  // namespace

TEST_CASE("Malformed frames are refused with a typed error naming the fault",
          "[envelope][malformed]") {
  const std::vector<Malformed> table = malformed_frames();
  CHECK(table.size() >= 25);
  for (const Malformed& m : table) {
    SECTION(m.name) {
      INFO("frame: " << to_hex(std::span<const std::byte>(m.frame).first(
               std::min<std::size_t>(m.frame.size(), 64))));
      AllocationWatch watch;
      auto r = envelope::decode(std::span<const std::byte>(m.frame), m.limits);
      const std::size_t largest = watch.largest();
      REQUIRE_ERROR(r, m.code, m.text);
      if (AllocationWatch::available()) CHECK(largest <= m.max_alloc);

      zmq::message_t msg(m.frame.data(), m.frame.size());
      REQUIRE_ERROR(envelope::decode(std::move(msg), m.limits), m.code, m.text);
      CHECK(msg.size() == m.frame.size());  // NOLINT(bugprone-use-after-move): left as it was

      // peek stops at the header: where it fails, it fails the same way as decode.
      auto h = envelope::peek(m.frame);
      if (!h.is_ok() && m.code != Code::kLimitExceeded) {
        CHECK(h.status().to_string() == r.status().to_string());
      }
    }
  }
}

TEST_CASE("peek refuses a record count the frame's bytes cannot hold, naming the field",
          "[envelope][malformed]") {
  // 4 billion records declared, 3 bytes follow: the count would poison statistics (issue 8, #8).
  Bytes lying = Mp().zkit_header().array32(0xffffffffu).raw("abc");
  REQUIRE_ERROR(envelope::peek(lying), Code::kCorruption,
                "records declares 4294967295 records but only 3 bytes follow at byte 35");
  // The boundary: 2 records need at least 4 bytes.
  Bytes two = Mp().zkit_header().array32(2).raw("abc");
  REQUIRE_ERROR(envelope::peek(two), Code::kCorruption,
                "records declares 2 records but only 3 bytes follow at byte 35");
  Bytes one = Mp().zkit_header().array32(1).raw("abc");
  REQUIRE(envelope::peek(one).is_ok());
  CHECK(envelope::peek(one)->record_count == 1);
}

TEST_CASE("An array claiming 4 billion items is refused at once, allocating nothing",
          "[envelope][malformed]") {
  const Bytes bad = from_hex("dd ff ff ff ff");
  AllocationWatch watch;
  auto r = envelope::decode(std::span<const std::byte>(bad));
  auto h = envelope::peek(bad);
  const std::size_t largest = watch.largest();
  REQUIRE_ERROR(r, Code::kCorruption, "truncated at byte 5 (version)");
  REQUIRE_ERROR(h, Code::kCorruption, "truncated at byte 5 (version)");
  if (AllocationWatch::available()) CHECK(largest <= 64);  // only the error message's string
}

TEST_CASE("Randomly mutated frames never crash the decoder and decode consistently",
          "[envelope][malformed]") {
  std::mt19937_64 rng(77);
  envelope::Encoder plain;
  envelope::EncoderOptions zo;
  zo.compression = Compression::kZstd;
  zo.compress_min_bytes = 0;
  envelope::Encoder packed(zo);
  std::vector<Bytes> seeds;
  for (envelope::Encoder* enc : {&plain, &packed}) {
    seeds.push_back(encode(*enc, {to_bytes("a"), Bytes(300, std::byte{3}), {}}, 1, 2, 3).frame);
    seeds.push_back(encode(*enc, {Bytes(40, std::byte{9}), to_bytes("zz")}, 9, 9, 9).frame);
  }
  const envelope::Limits small =
      envelope::Limits{}.records(64).record_bytes(1024).batch_bytes(8192);
  int ok = 0, refused = 0;
  for (int i = 0; i < 20000; ++i) {
    Bytes f = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < edits; ++k) {
      switch (rng() % 4) {
        case 0:
          f[rng() % f.size()] = static_cast<std::byte>(rng());
          break;
        case 1:
          f[rng() % f.size()] ^= static_cast<std::byte>(1u << (rng() % 8));
          break;
        case 2:
          f.resize(rng() % (f.size() + 1));
          break;
        default:
          f.push_back(static_cast<std::byte>(rng()));
          break;
      }
      if (f.empty()) f.push_back(std::byte{0x96});
    }
    auto r = envelope::decode(std::span<const std::byte>(f), small);
    if (!r.is_ok()) {
      ++refused;
      REQUIRE_FALSE(r.status().message().empty());
      continue;
    }
    ++ok;
    std::size_t n = 0, bytes = 0;
    for (auto rec : *r) {
      ++n;
      bytes += rec.size();
      REQUIRE(rec.size() <= small.max_record_bytes);
    }
    REQUIRE(n == r->size());
    REQUIRE(bytes == r->payload_bytes());
  }
  CHECK(ok > 0);
  CHECK(refused > 0);
}
