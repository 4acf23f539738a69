// spool_tmpfs_check DIR: the full-disk case of spool_full_disk_test on a real file system (run by
// scripts/spool-tmpfs-check.sh on a 4 MiB tmpfs). With the default 64 MiB segments, 8 MB of
// batches go through DIR while a reader acknowledges what is committed whenever a commit fails for
// space; every batch must come out once and in order, and a commit must succeed within 3 retries.
// Exit 0 on PASS, 1 on FAIL, 2 on bad usage.
#include <cstdio>
#include <string>
#include <vector>

#include "zkit/envelope.hpp"
#include "zkit/spool/store.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: spool_tmpfs_check DIR (an empty directory on a small file system)\n");
    return 2;
  }
  auto fail = [](const std::string& why) {
    std::printf("FAIL: %s\n", why.c_str());
    return 1;
  };
  zkit::spool::Options opt;
  opt.dir = argv[1];
  opt.cursor_interval = std::chrono::milliseconds(0);
  auto open = zkit::spool::Store::open(opt);
  if (!open) return fail("open: " + open.status().to_string());
  zkit::spool::Store store = std::move(open).value();
  std::uint64_t received = 0, full = 0;
  auto drain = [&]() -> std::string {
    for (int guard = 0; guard < 100000; ++guard) {
      auto r = store.read_next();
      if (!r) return "read: " + r.status().to_string();
      if (!r.value()) return {};
      if (r.value()->meta.seq != received + 1) {
        return "read seq " + std::to_string(r.value()->meta.seq) + ", expected " +
               std::to_string(received + 1);
      }
      ++received;
      (void)store.advance_cursor(r.value()->next);  // may fail on the full disk
    }
    return "reader did not catch up";
  };
  constexpr std::uint64_t kBatches = 1000;
  for (std::uint64_t seq = 1; seq <= kBatches; ++seq) {
    zkit::envelope::Encoder enc;
    enc.begin(9);
    for (int i = 0; i < 4; ++i) enc.add(std::string(2000, static_cast<char>('a' + seq % 26)));
    zmq::message_t m = enc.finish(seq, 1);
    auto a = store.append({static_cast<const std::byte*>(m.data()), m.size()});
    if (!a) return fail("append " + std::to_string(seq) + ": " + a.status().to_string());
    zkit::Status s = store.commit();
    for (int retry = 0; !s && retry < 3; ++retry) {
      ++full;
      if (auto e = drain(); !e.empty()) return fail(e);
      s = store.commit();
    }
    if (!s) return fail("batch " + std::to_string(seq) + " never written: " + s.to_string());
    if (auto e = drain(); !e.empty()) return fail(e);
  }
  auto st = store.stats();
  if (zkit::Status c = store.close(); !c) return fail("close: " + c.to_string());
  if (received != kBatches) return fail("received " + std::to_string(received));
  std::printf("PASS: %llu batches (8 MB) through %s; %llu commits failed for space and were "
              "retried; io_errors %llu; disk_bytes at the end %llu\n",
              static_cast<unsigned long long>(received), argv[1],
              static_cast<unsigned long long>(full), static_cast<unsigned long long>(st.io_errors),
              static_cast<unsigned long long>(st.disk_bytes));
  return 0;
}
