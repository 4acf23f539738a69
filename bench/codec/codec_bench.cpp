// Encode and decode rates of the batch envelope: batches of 1000 records of 16 B, 256 B and 1 KiB,
// with and without zstd. items/s are messages per second; bytes/s count payload bytes.
// Payloads are letters from a 16-letter alphabet: zstd gets them to about 60% (a fair middle
// between random bytes, which it cannot shrink, and repeated text, which it shrinks to nothing).
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "zkit/envelope.hpp"

namespace {

constexpr std::size_t kRecords = 1000;

std::vector<std::string> payloads(std::size_t size) {
  std::mt19937 rng(42);
  std::vector<std::string> out(kRecords, std::string(size, ' '));
  for (auto& p : out) {
    for (auto& c : p) c = static_cast<char>('a' + rng() % 16);
  }
  return out;
}

zkit::envelope::EncoderOptions options(bool zstd) {
  zkit::envelope::EncoderOptions o;
  if (zstd) o.compression = zkit::envelope::Compression::kZstd;
  return o;
}

void set_rates(benchmark::State& state, std::size_t payload, std::size_t frame_bytes) {
  const auto n = static_cast<std::int64_t>(state.iterations());
  state.SetItemsProcessed(n * static_cast<std::int64_t>(kRecords));
  state.SetBytesProcessed(n * static_cast<std::int64_t>(kRecords * payload));
  state.counters["frame_bytes"] = static_cast<double>(frame_bytes);
}

void BM_Encode(benchmark::State& state) {
  const auto payload = static_cast<std::size_t>(state.range(0));
  const auto msgs = payloads(payload);
  zkit::envelope::Encoder enc(options(state.range(1) != 0));
  std::uint64_t seq = 0;
  std::size_t frame_bytes = 0;
  for (auto _ : state) {
    enc.begin(42);
    for (const auto& m : msgs) enc.add(m);
    zmq::message_t frame = enc.finish(++seq, 1);
    frame_bytes = frame.size();
    benchmark::DoNotOptimize(frame.data());
  }
  set_rates(state, payload, frame_bytes);
}

void BM_Decode(benchmark::State& state) {
  const auto payload = static_cast<std::size_t>(state.range(0));
  const auto msgs = payloads(payload);
  zkit::envelope::Encoder enc(options(state.range(1) != 0));
  enc.begin(42);
  for (const auto& m : msgs) enc.add(m);
  zmq::message_t frame = enc.finish(1, 1);
  const std::span bytes(static_cast<const std::byte*>(frame.data()), frame.size());
  for (auto _ : state) {
    auto batch = zkit::envelope::decode(bytes);
    std::size_t total = 0;
    for (auto r : *batch) total += r.size();
    benchmark::DoNotOptimize(total);
  }
  set_rates(state, payload, frame.size());
}

void BM_Peek(benchmark::State& state) {
  const auto msgs = payloads(256);
  zkit::envelope::Encoder enc;
  enc.begin(42);
  for (const auto& m : msgs) enc.add(m);
  zmq::message_t frame = enc.finish(1, 1);
  const std::span bytes(static_cast<const std::byte*>(frame.data()), frame.size());
  for (auto _ : state) {
    auto h = zkit::envelope::peek(bytes);
    benchmark::DoNotOptimize(h->record_count);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

}  // namespace

BENCHMARK(BM_Encode)->ArgsProduct({{16, 256, 1024}, {0, 1}})->ArgNames({"payload", "zstd"});
BENCHMARK(BM_Decode)->ArgsProduct({{16, 256, 1024}, {0, 1}})->ArgNames({"payload", "zstd"});
BENCHMARK(BM_Peek);

BENCHMARK_MAIN();
