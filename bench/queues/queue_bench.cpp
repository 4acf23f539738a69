// queue_bench: zkit's consumer groups end to end, and the baselines run beside them (issue 9).
// One mode per run, one JSON line on stdout (peer_common.hpp); bench/queues/run.sh runs them all
// interleaved with the RabbitMQ and JetStream peers and takes the ratios.
//   --mode raw-zmq     `publishers` raw PUSH sockets, one zmq_send per message, to `consumers`
//                      PULL sockets (round robin, no acks, nothing stored): the transport's rate
//   --mode raw-disk    the zkit batch frames of the same messages written with write() and an
//                      fdatasync every 8 frames to --dir: the disk's rate for the same bytes
//   --mode group       `publishers` ReliableSenders -> an in-process SpoolNode (--serve, default
//                      options: fsync always, group commit) -> `groups` groups of `consumers`
//                      zkit::Consumers each (automatic ack), every group reading the whole log;
//                      the time runs from the first send to the last group's last distinct message
//   --mode redelivery  a member in a child process holds its prefetch unacked and is SIGKILLed;
//                      the figure is the time from the kill until another member (default
//                      options) has acked every batch it held
// Flags: peer_common.hpp's, plus --mode, --groups G and --dir DIR (where the spool directories
// go; default the temp dir). Exit 1 when a message was lost or a run did not finish in time.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include <zmq.hpp>

#include "peer_common.hpp"
#include "zkit/batcher.hpp"
#include "zkit/envelope.hpp"

using namespace zkit::qbench;
namespace fs = std::filesystem;

namespace {

struct Flags {
  Args args;
  std::string mode;
  int groups = 1;
  std::string dir;
};

// peer_common.hpp's flags plus this program's own.
Flags parse(int argc, char** argv) {
  Flags f;
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if ((flag == "--mode" || flag == "--groups" || flag == "--dir") && i + 1 >= argc) {
      usage_error(argv[0], flag + " needs a value");
    }
    if (flag == "--mode") {
      f.mode = argv[++i];
    } else if (flag == "--groups") {
      f.groups = std::atoi(argv[++i]);
    } else if (flag == "--dir") {
      f.dir = argv[++i];
    } else {
      rest.push_back(argv[i]);
    }
  }
  f.args = parse_args(static_cast<int>(rest.size()), rest.data());
  if (f.mode != "raw-zmq" && f.mode != "raw-disk" && f.mode != "group" &&
      f.mode != "redelivery" && f.mode != "victim") {
    usage_error(argv[0], "--mode must be raw-zmq, raw-disk, group or redelivery");
  }
  if (f.groups < 1 || f.groups > 64) usage_error(argv[0], "--groups must be 1..64");
  if (f.dir.empty()) f.dir = fs::temp_directory_path().string();
  return f;
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "queue_bench: %s\n", what.c_str());
  std::_Exit(1);  // not exit(): other threads still hold sockets
}

Clock::time_point deadline_of(const Args& a) {
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(a.timeout_s));
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// A fresh directory under `parent`, removed by the destructor.
struct ScratchDir {
  std::string path;
  explicit ScratchDir(const std::string& parent) {
    std::string t = parent + "/queue-bench-XXXXXX";
    if (::mkdtemp(t.data()) == nullptr) fail("mkdtemp under " + parent);
    path = t;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// ---- raw-zmq ------------------------------------------------------------------------------------

int raw_zmq(const Flags& f) {
  const Args& a = f.args;
  Tally tally(a.messages);
  const auto deadline = deadline_of(a);
  std::vector<std::string> endpoints(static_cast<std::size_t>(a.consumers));
  std::atomic<int> bound{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < a.consumers; ++c) {
    threads.emplace_back([&, c] {
      zmq::context_t ctx(1);
      zmq::socket_t pull(ctx, zmq::socket_type::pull);
      pull.set(zmq::sockopt::linger, 0);
      pull.bind("tcp://127.0.0.1:*");
      endpoints[static_cast<std::size_t>(c)] = pull.get(zmq::sockopt::last_endpoint);
      bound.fetch_add(1);
      pull.set(zmq::sockopt::rcvtimeo, 100);
      zmq::message_t m;
      while (!tally.done() && Clock::now() < deadline) {
        if (pull.recv(m)) tally.record(m.data(), m.size());
      }
    });
  }
  while (bound.load() < a.consumers) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // Join first: each PUSH connects to every PULL and waits until all are connected, so that
  // round robin spreads over all of them from the first message.
  const auto t0 = Clock::now();
  for (int p = 0; p < a.publishers; ++p) {
    threads.emplace_back([&, p] {
      zmq::context_t ctx(1);
      zmq::socket_t push(ctx, zmq::socket_type::push);
      for (const auto& ep : endpoints) push.connect(ep);
      std::string body(a.size, 'x');
      for (std::uint64_t k = static_cast<std::uint64_t>(p); k < a.messages;
           k += static_cast<std::uint64_t>(a.publishers)) {
        std::memcpy(body.data(), &k, 8);
        (void)push.send(zmq::buffer(body), zmq::send_flags::none);
      }
    });
  }
  for (auto& t : threads) t.join();
  const double s = seconds_between(t0, tally.done() ? tally.done_at() : Clock::now());
  print_result("raw-zmq", a, s, tally, "\"groups\":1");
  return tally.lost() == 0 ? 0 : 1;
}

// ---- raw-disk -----------------------------------------------------------------------------------

int raw_disk(const Flags& f) {
  Args a = f.args;
  a.publishers = 1;
  a.consumers = 1;
  // The frames zkit's default Batcher makes of these messages, encoded before the clock starts.
  std::vector<zmq::message_t> frames;
  zkit::Batcher batcher;
  std::string body(a.size, 'x');
  for (std::uint64_t k = 0; k < a.messages; ++k) {
    std::memcpy(body.data(), &k, 8);
    if (batcher.add(std::as_bytes(std::span(body.data(), body.size())))) {
      while (auto b = batcher.take()) frames.push_back(std::move(b->frame));
    }
  }
  batcher.flush();
  while (auto b = batcher.take()) frames.push_back(std::move(b->frame));
  ScratchDir dir(f.dir);
  const std::string path = dir.path + "/raw.dat";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("open " + path);
  Tally tally(a.messages);
  const auto t0 = Clock::now();
  std::size_t i = 0;
  for (auto& fr : frames) {
    if (::write(fd, fr.data(), fr.size()) != static_cast<ssize_t>(fr.size())) fail("write " + path);
    if (++i % 8 == 0 && ::fdatasync(fd) != 0) fail("fdatasync " + path);
  }
  if (::fdatasync(fd) != 0) fail("fdatasync " + path);
  const double s = seconds_between(t0, Clock::now());
  ::close(fd);
  // Every message is in the file: count them as the Tally of this row (nothing is read back).
  for (std::uint64_t k = 0; k < a.messages; ++k) tally.record(&k, 8);
  print_result("raw-disk", a, s, tally,
               "\"groups\":1,\"frames\":" + std::to_string(frames.size()));
  return 0;
}


}  // namespace

int main(int argc, char** argv) {
  const Flags f = parse(argc, argv);
  if (f.mode == "raw-zmq") return raw_zmq(f);
  if (f.mode == "raw-disk") return raw_disk(f);
  fail("mode " + f.mode + ": needs zkit::Consumer and SpoolNode --serve (issue 9), not merged yet");
}
