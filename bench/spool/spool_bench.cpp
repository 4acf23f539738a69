// spool_bench: durable append throughput of the spool store per fsync mode, beside a raw baseline
// (plain write + fdatasync of the same frames, same grouping, same directory) measured in the same
// run; then peak RSS while a 1 GB backlog is written, recovered and read. JSON + a table.
#include <fcntl.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "zkit/envelope.hpp"
#include "zkit/spool/store.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kSlices = 4;

struct Shape {
  std::string name;
  std::size_t message_bytes;
  std::size_t messages_per_frame;
};

struct Row {
  std::string shape, mode;
  int group = 1;  // frames per fdatasync / commit
  double seconds = 0;
  std::uint64_t frames = 0, messages = 0, bytes = 0;
  std::uint64_t syncs = 0;
  void add(const Row& o) {
    seconds += o.seconds;
    frames += o.frames;
    messages += o.messages;
    bytes += o.bytes;
    syncs += o.syncs;
  }
  double msgs_per_s() const { return messages / seconds; }
  double mb_per_s() const { return bytes / seconds / 1e6; }
};

std::vector<std::byte> make_frame(const Shape& s) {
  zkit::envelope::Encoder enc;
  enc.begin(1);
  std::string m(s.message_bytes, 'x');
  for (std::size_t i = 0; i < s.messages_per_frame; ++i) {
    m[0] = static_cast<char>('a' + i % 26);
    enc.add(m);
  }
  zmq::message_t f = enc.finish(1, zkit::envelope::unix_now_ns());
  auto* p = static_cast<const std::byte*>(f.data());
  return {p, p + f.size()};
}

void die(const std::string& what) {
  std::cerr << "spool_bench: " << what << "\n";
  std::exit(1);
}

Row raw_baseline(const std::string& dir, const Shape& shape, const std::vector<std::byte>& frame,
                 int group, double seconds) {
  const std::string path = dir + "/raw-baseline.dat";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) die("open " + path);
  Row r{shape.name, "raw write+fdatasync", group};
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::duration<double>(seconds);
  std::uint64_t written = 0;
  while (Clock::now() < end) {
    for (int g = 0; g < group; ++g) {
      if (::write(fd, frame.data(), frame.size()) != static_cast<ssize_t>(frame.size())) die("write");
      ++r.frames;
      written += frame.size();
    }
    if (::fdatasync(fd) != 0) die("fdatasync");
    ++r.syncs;
    if (written > (std::uint64_t{512} << 20)) {  // keep the file small; a new extent each time
      if (::ftruncate(fd, 0) != 0 || ::lseek(fd, 0, SEEK_SET) != 0) die("ftruncate");
      written = 0;
    }
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  r.messages = r.frames * shape.messages_per_frame;
  r.bytes = r.frames * frame.size();
  ::close(fd);
  fs::remove(path);
  return r;
}

Row store_run(const std::string& dir, const Shape& shape, const std::vector<std::byte>& frame,
              zkit::spool::FsyncPolicy policy, int group, double seconds) {
  const std::string sdir = dir + "/store";
  fs::remove_all(sdir);
  zkit::spool::Options o;
  o.dir = sdir;
  o.fsync = policy;
  auto opened = zkit::spool::Store::open(o);
  if (!opened) die(opened.status().to_string());
  auto& store = opened.value();
  Row r{shape.name, "spool fsync=" + policy.to_string(), group};
  zkit::spool::RecordMeta meta{1, 0, 0, static_cast<std::uint32_t>(shape.messages_per_frame)};
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    for (int g = 0; g < group; ++g) {
      ++meta.seq;
      meta.arrival_ns = zkit::envelope::unix_now_ns();
      auto a = store.append(frame, meta);
      if (!a) die(a.status().to_string());
      ++r.frames;
    }
    if (auto s = store.commit(); !s) die(s.to_string());
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  r.messages = r.frames * shape.messages_per_frame;
  r.bytes = r.frames * frame.size();
  r.syncs = store.stats().fsyncs;
  (void)store.close();
  fs::remove_all(sdir);
  return r;
}

std::uint64_t proc_status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::stoull(line.substr(std::string(key).size()));
  }
  return 0;
}

void reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";  // resets VmHWM to the current RSS (Linux >= 4.0)
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 3.0;
  std::uint64_t backlog_mb = 1024;
  std::string dir, json_path = std::string(ZKIT_SOURCE_DIR) + "/bench/results/spool.json";
  po::options_description desc("spool_bench options");
  desc.add_options()("help", "this help")(
      "dir", po::value(&dir), "directory to write in (default: a fresh one under the temp dir)")(
      "seconds", po::value(&seconds)->default_value(3.0), "seconds per row (raw and spool rows alternate in slices)")(
      "backlog-mb", po::value(&backlog_mb)->default_value(1024),
      "backlog written, recovered and read for the peak RSS figure (0: skip)")(
      "json", po::value(&json_path), "where the JSON goes (default bench/results/spool.json)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "spool_bench: " << e.what() << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  bool own_dir = dir.empty();
  if (own_dir) {
    std::string tmpl = (fs::temp_directory_path() / "zkit-spool-bench-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) die("mkdtemp");
    dir = tmpl;
  }
  fs::create_directories(dir);

  const std::vector<Shape> shapes = {{"16B x 1000/frame", 16, 1000}, {"1KiB x 100/frame", 1024, 100}};
  using zkit::spool::FsyncPolicy;
  std::vector<Row> rows;
  nlohmann::json out;
  out["dir"] = dir;
  out["seconds_per_row"] = seconds;
  nlohmann::json jrows = nlohmann::json::array();
  for (const auto& shape : shapes) {
    auto frame = make_frame(shape);
    for (int group : {1, 8, 32}) {
      // Disk sync latency drifts on a shared machine: alternate short slices of the two so both
      // see the same disk, and add them up.
      Row raw{shape.name, "raw write+fdatasync", group};
      Row spool{shape.name, "spool fsync=always", group};
      for (int slice = 0; slice < kSlices; ++slice) {
        raw.add(raw_baseline(dir, shape, frame, group, seconds / kSlices));
        spool.add(store_run(dir, shape, frame, FsyncPolicy::always(), group, seconds / kSlices));
      }
      rows.push_back(raw);
      rows.push_back(spool);
      for (const Row* r : {&raw, &spool}) {
        jrows.push_back({{"shape", r->shape}, {"mode", r->mode}, {"frames_per_sync", r->group},
                         {"frame_bytes", frame.size()}, {"seconds", r->seconds},
                         {"frames", r->frames}, {"messages", r->messages}, {"bytes", r->bytes},
                         {"syncs", r->syncs}, {"messages_per_s", r->msgs_per_s()},
                         {"mb_per_s", r->mb_per_s()},
                         {"ratio_to_raw_bytes", r->mb_per_s() / raw.mb_per_s()}});
      }
    }
    for (auto policy : {FsyncPolicy::every(std::chrono::milliseconds(100)), FsyncPolicy::never()}) {
      Row r = store_run(dir, shape, frame, policy, 1, seconds);
      rows.push_back(r);
      // No raw row syncs as rarely, so these rows carry no ratio.
      jrows.push_back({{"shape", r.shape}, {"mode", r.mode}, {"frames_per_sync", 1},
                       {"frame_bytes", frame.size()}, {"seconds", r.seconds}, {"frames", r.frames},
                       {"messages", r.messages}, {"bytes", r.bytes}, {"syncs", r.syncs},
                       {"messages_per_s", r.msgs_per_s()}, {"mb_per_s", r.mb_per_s()}});
    }
  }
  out["rows"] = jrows;

  std::printf("%-18s %-30s %6s %14s %10s %8s %9s\n", "shape", "mode", "group", "messages/s", "MB/s",
              "syncs", "vs raw");
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    std::string ratio = "";
    const nlohmann::json& j = jrows[i];
    if (j.contains("ratio_to_raw_bytes") && r.mode.rfind("spool", 0) == 0) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.0f%%", 100.0 * j["ratio_to_raw_bytes"].get<double>());
      ratio = buf;
    }
    std::printf("%-18s %-30s %6d %14.0f %10.1f %8llu %9s\n", r.shape.c_str(), r.mode.c_str(),
                r.group, r.msgs_per_s(), r.mb_per_s(), static_cast<unsigned long long>(r.syncs),
                ratio.c_str());
  }

  if (backlog_mb > 0) {
    // Peak RSS while a backlog of backlog_mb lives on disk: written (fsync always, groups of 8
    // frames of 1 KiB messages), closed, recovered by a reopen, then read through and acked.
    const std::string sdir = dir + "/backlog";
    fs::remove_all(sdir);
    reset_peak_rss();
    const std::uint64_t rss_before = proc_status_kb("VmHWM:");
    Shape shape{"1KiB x 100/frame", 1024, 100};
    auto frame = make_frame(shape);
    zkit::spool::Options o;
    o.dir = sdir;
    std::uint64_t frames = 0;
    const auto t0 = Clock::now();
    {
      auto s = zkit::spool::Store::open(o);
      if (!s) die(s.status().to_string());
      zkit::spool::RecordMeta meta{1, 0, 0, 100};
      while (frames * frame.size() < backlog_mb << 20) {
        for (int g = 0; g < 8; ++g, ++frames) {
          ++meta.seq;
          meta.arrival_ns = zkit::envelope::unix_now_ns();
          if (auto a = s.value().append(frame, meta); !a) die(a.status().to_string());
        }
        if (auto c = s.value().commit(); !c) die(c.to_string());
      }
    }
    const double write_s = std::chrono::duration<double>(Clock::now() - t0).count();
    const std::uint64_t rss_after_write = proc_status_kb("VmHWM:");
    const auto t1 = Clock::now();
    auto s = zkit::spool::Store::open(o);
    if (!s) die(s.status().to_string());
    const double recover_s = std::chrono::duration<double>(Clock::now() - t1).count();
    auto st = s.value().stats();
    const std::uint64_t backlog_bytes = st.backlog_bytes;
    const std::uint64_t rss_after_recover = proc_status_kb("VmHWM:");
    const auto t2 = Clock::now();
    std::uint64_t read = 0;
    while (true) {
      auto rec = s.value().read_next();
      if (!rec) die(rec.status().to_string());
      if (!rec.value()) break;
      ++read;
      if (read % 1024 == 0) (void)s.value().advance_cursor(rec.value()->next);
    }
    const double read_s = std::chrono::duration<double>(Clock::now() - t2).count();
    const std::uint64_t rss_peak = proc_status_kb("VmHWM:");
    (void)s.value().close();
    fs::remove_all(sdir);
    out["backlog"] = {{"backlog_bytes", backlog_bytes}, {"batches", st.backlog_batches},
                      {"messages", st.backlog_messages}, {"write_seconds", write_s},
                      {"recover_seconds", recover_s}, {"read_seconds", read_s},
                      {"batches_read", read}, {"vm_hwm_kb_before", rss_before},
                      {"vm_hwm_kb_after_write", rss_after_write},
                      {"vm_hwm_kb_after_recover", rss_after_recover},
                      {"vm_hwm_kb_peak", rss_peak}};
    std::printf(
        "\nbacklog %.0f MB (%llu batches): write %.1f s, recover on open %.2f s, read %.1f s; "
        "peak RSS (VmHWM) %.1f MB (%.1f MB before)\n",
        backlog_bytes / 1e6, static_cast<unsigned long long>(st.backlog_batches), write_s,
        recover_s, read_s, rss_peak / 1024.0, rss_before / 1024.0);
  }

  std::ofstream(json_path) << out.dump(2) << "\n";
  std::printf("JSON: %s\n", json_path.c_str());
  if (own_dir) fs::remove_all(dir);
  return 0;
}
