// Writes the seed corpus for decode_fuzz into a directory: valid batches from the real Encoder
// (with and without zstd, records of edge sizes) and hand-written ones in other MessagePack widths.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "zkit/envelope.hpp"

namespace {

void write(const std::filesystem::path& dir, const std::string& name, const void* data,
           std::size_t size) {
  std::ofstream(dir / name, std::ios::binary)
      .write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds DIR\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  int n = 0;
  for (auto comp : {zkit::envelope::Compression::kNone, zkit::envelope::Compression::kZstd}) {
    zkit::envelope::EncoderOptions opts;
    opts.compression = comp;
    opts.compress_min_bytes = 0;
    zkit::envelope::Encoder enc(opts);
    const std::vector<std::vector<std::size_t>> shapes{
        {}, {0}, {5, 0, 3}, {255, 256}, {1000}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}};
    for (const auto& sizes : shapes) {
      enc.begin(42);
      for (std::size_t s : sizes) {
        std::string r(s, 'a');
        for (std::size_t k = 0; k < s; ++k) r[k] = static_cast<char>('a' + k % 5);
        enc.add(r);
      }
      zmq::message_t f = enc.finish(7, 1764064800123456789ULL);
      write(dir, "encoder-" + std::to_string(n++), f.data(), f.size());
    }
  }
  // Other writers' forms: fixints, array16 at the top, bin16/bin32 for small records.
  const unsigned char smallest[] = {0x96, 0x01, 0x00, 0x2a, 0x07, 0xcd, 0x03, 0xe8,
                                    0x92, 0xc4, 0x02, 'a',  'b',  0xc4, 0x00};
  write(dir, "smallest", smallest, sizeof smallest);
  const unsigned char wide[] = {0xdc, 0x00, 0x06, 0xcc, 0x01, 0xcd, 0x00, 0x00, 0xce, 0x00,
                                0x00, 0x00, 0x01, 0x02, 0x03, 0xdc, 0x00, 0x02, 0xc5, 0x00,
                                0x01, 'x',  0xc6, 0x00, 0x00, 0x00, 0x02, 'y',  'z'};
  write(dir, "wide", wide, sizeof wide);
  std::printf("make_seeds: %d seeds in %s\n", n + 2, dir.c_str());
  return 0;
}
