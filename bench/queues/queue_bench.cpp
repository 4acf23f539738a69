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
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/prctl.h>

#include <filesystem>
#include <future>
#include <thread>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "peer_common.hpp"
#include "zkit/batcher.hpp"
#include "zkit/consumer.hpp"
#include "zkit/envelope.hpp"
#include "zkit/reliable.hpp"
#include "zkit/spool_node.hpp"

extern char** environ;

using namespace zkit::qbench;
namespace fs = std::filesystem;

namespace {

struct Flags {
  Args args;
  std::string mode;
  int groups = 1;
  std::string dir;
  std::uint64_t hold = 0;  // victim: batches to hold before it says so (the log may hold fewer
                           // than its prefetch)
};

// peer_common.hpp's flags plus this program's own.
Flags parse(int argc, char** argv) {
  Flags f;
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if ((flag == "--mode" || flag == "--groups" || flag == "--dir" || flag == "--hold") &&
        i + 1 >= argc) {
      usage_error(argv[0], flag + " needs a value");
    }
    if (flag == "--mode") {
      f.mode = argv[++i];
    } else if (flag == "--groups") {
      f.groups = std::atoi(argv[++i]);
    } else if (flag == "--dir") {
      f.dir = argv[++i];
    } else if (flag == "--hold") {
      f.hold = std::strtoull(argv[++i], nullptr, 10);
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


// ---- zkit: the spool node and its clients --------------------------------------------------------

// A SpoolNode with default options but these endpoints (--listen and --serve on loopback, no
// --forward), driven by a thread of its own; stopped and joined by the destructor.
class Node {
 public:
  explicit Node(const std::string& dir) {
    std::promise<void> up;
    auto started = up.get_future();
    thread_ = std::thread([this, dir, &up] {
      try {
        zmq::context_t ctx(1);
        zkit::SpoolNodeOptions o;
        o.store.dir = dir;
        o.listen = "@tcp://127.0.0.1:*";
        o.serve = "@tcp://127.0.0.1:*";
        zkit::SpoolNode node(ctx, o);
        listen_ = node.listen_endpoint();
        serve_ = node.serve_endpoint();
        node_.store(&node);
        up.set_value();
        node.run();
        stats_ = node.stats();
      } catch (const std::exception& e) {
        fail(std::string("spool node: ") + e.what());
      }
    });
    started.wait();
  }
  ~Node() { finish(); }
  // Stops the node and joins its thread; returns its stats at the end. Idempotent.
  const zkit::SpoolNodeStats& finish() {
    if (thread_.joinable()) {
      node_.load()->stop();
      thread_.join();
    }
    return stats_;
  }
  const std::string& listen() const { return listen_; }
  const std::string& serve() const { return serve_; }

 private:
  std::thread thread_;
  std::atomic<zkit::SpoolNode*> node_{nullptr};
  std::string listen_, serve_;
  zkit::SpoolNodeStats stats_;
};

// One reliable sender (own context, default options) sending messages p, p + step, ... < n, then
// waiting until the spool acknowledged them all.
// Returns the batches acknowledged.
std::uint64_t send_all(const std::string& endpoint, const Args& a, std::uint64_t p,
                       std::uint64_t step, Clock::time_point deadline) {
  zmq::context_t ctx(1);
  zkit::ReliableSender sender(ctx);
  sender.connect(endpoint);
  std::string body(a.size, 'x');
  for (std::uint64_t k = p; k < a.messages; k += step) {
    std::memcpy(body.data(), &k, 8);
    while (!sender.send(body, std::chrono::milliseconds(1000))) {
      if (Clock::now() > deadline) fail("sender: the spool took nothing before the timeout");
    }
  }
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  if (!sender.wait_all_acked(left)) fail("sender: not everything acknowledged before the timeout");
  const std::uint64_t acked = sender.stats().batches_acked;
  (void)sender.close();
  return acked;
}

std::string spool_json(const zkit::SpoolNodeStats& st) {
  return "\"spool_fsyncs\":" + std::to_string(st.store.fsyncs) +
         ",\"spool_accepted_batches\":" + std::to_string(st.accepted_batches);
}

int group_run(const Flags& f) {
  Args a = f.args;
  a.prefetch = static_cast<int>(zkit::ConsumerOptions{}.prefetch_batches);  // defaults, in batches
  a.window = static_cast<int>(zkit::ReliableSenderOptions{}.window);
  const auto deadline = deadline_of(a);
  ScratchDir dir(f.dir);
  std::vector<std::unique_ptr<Tally>> tallies;
  for (int g = 0; g < f.groups; ++g) tallies.push_back(std::make_unique<Tally>(a.messages));
  std::vector<Clock::time_point> group_done(static_cast<std::size_t>(f.groups));
  std::atomic<std::uint64_t> redelivered{0};
  Clock::time_point t0;
  std::string spool;
  {
    Node node(dir.path + "/spool");
    std::atomic<int> joined{0};
    std::vector<std::thread> consumers;
    for (int g = 0; g < f.groups; ++g) {
      for (int c = 0; c < a.consumers; ++c) {
        consumers.emplace_back([&, g] {
          Tally& tally = *tallies[static_cast<std::size_t>(g)];
          zmq::context_t ctx(1);
          zkit::ConsumerOptions o;
          o.group = "g" + std::to_string(g);
          zkit::Consumer consumer(ctx, o);
          consumer.connect(node.serve());
          const zkit::Consumer::Handler handler = [&](const zkit::ConsumedBatch& b) {
            if (b.info.redelivered()) redelivered.fetch_add(1, std::memory_order_relaxed);
            tally.record_batch(b);
          };
          while (!consumer.joined() && Clock::now() < deadline) {
            consumer.poll_once(handler, std::chrono::milliseconds(10));
          }
          joined.fetch_add(1);
          while (!tally.done() && Clock::now() < deadline) {
            consumer.poll_once(handler, std::chrono::milliseconds(100));
          }
          (void)consumer.close();
        });
      }
    }
    while (joined.load() < f.groups * a.consumers && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // setup only, before timing
    }
    t0 = Clock::now();
    std::vector<std::thread> senders;
    for (int p = 0; p < a.publishers; ++p) {
      senders.emplace_back([&, p] {
        send_all(node.listen(), a, static_cast<std::uint64_t>(p),
                 static_cast<std::uint64_t>(a.publishers), deadline);
      });
    }
    for (auto& t : senders) t.join();
    for (auto& t : consumers) t.join();
    spool = spool_json(node.finish());
  }
  // The row's figure is the slowest group's: every group reads all `messages`.
  Outcome o;
  std::string rates = "[";
  double min_rate = 0;
  for (int g = 0; g < f.groups; ++g) {
    const Tally& t = *tallies[static_cast<std::size_t>(g)];
    const double s = seconds_between(t0, t.done() ? t.done_at() : Clock::now());
    const double rate = static_cast<double>(t.distinct()) / s;
    min_rate = g == 0 ? rate : std::min(min_rate, rate);
    rates += (g ? "," : "") + std::to_string(rate);
    o.seconds = std::max(o.seconds, s);
    o.distinct = g == 0 ? t.distinct() : std::min(o.distinct, t.distinct());
    o.lost += t.lost();
    o.duplicates += t.duplicates();
    o.malformed += t.malformed();
  }
  rates += "]";
  print_result("zkit", a, o,
               "\"groups\":" + std::to_string(f.groups) + ",\"group_msgs_per_s\":" + rates +
                   ",\"min_group_msgs_per_s\":" + std::to_string(min_rate) +
                   ",\"redelivered_batches\":" + std::to_string(redelivered.load()) + "," + spool +
                   ",\"prefetch_unit\":\"batches\"");
  return o.lost == 0 ? 0 : 1;
}

// ---- redelivery ---------------------------------------------------------------------------------

// The member that dies: joins the group with default options and manual ack, acks nothing, prints
// "held BATCHES MESSAGES" once it holds its whole prefetch (or --hold batches), then keeps its membership alive until
// it is killed (or its parent dies: PR_SET_PDEATHSIG).
int victim(const Flags& f) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  const auto deadline = deadline_of(f.args);
  zmq::context_t ctx(1);
  zkit::ConsumerOptions o;
  o.group = "work";
  o.manual_ack = true;
  zkit::Consumer consumer(ctx, o);
  consumer.connect(f.args.url);
  std::uint64_t batches = 0, messages = 0;
  bool said = false;
  const zkit::Consumer::Handler hold = [&](const zkit::ConsumedBatch& b) {
    ++batches;
    messages += b.size();
  };
  while (Clock::now() < deadline) {
    consumer.poll_once(hold, std::chrono::milliseconds(100));
    if (!said && batches >= std::min<std::uint64_t>(o.prefetch_batches, f.hold)) {
      std::printf("held %llu %llu\n", static_cast<unsigned long long>(batches),
                  static_cast<unsigned long long>(messages));
      std::fflush(stdout);
      said = true;
    }
  }
  return 1;  // killed before this, normally
}

// Reads "held B M" from the victim's stdout within the deadline.
std::pair<std::uint64_t, std::uint64_t> read_held(int fd, Clock::time_point deadline) {
  std::string line;
  char c;
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    if (::read(fd, &c, 1) != 1) fail("the victim consumer exited before it held its prefetch");
    if (c == '\n') break;
    line += c;
  }
  unsigned long long b = 0, m = 0;
  if (std::sscanf(line.c_str(), "held %llu %llu", &b, &m) != 2) {
    fail("the victim consumer said '" + line + "', not 'held B M' (too few batches stored?)");
  }
  return {b, m};
}

int redelivery(const Flags& f, const char* self) {
  Args a = f.args;
  a.publishers = 1;
  a.consumers = 2;
  const auto deadline = deadline_of(a);
  ScratchDir dir(f.dir);
  Tally tally(a.messages);
  double redelivery_s = 0;
  std::uint64_t held_batches = 0, held_messages = 0;
  std::atomic<std::uint64_t> redelivered{0};
  {
    Node node(dir.path + "/spool");
    const std::uint64_t stored = send_all(node.listen(), a, 0, 1, deadline);  // the log first

    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) fail("pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    std::vector<std::string> args = {self, "--mode", "victim", "--url", node.serve(),
                                      "--hold", std::to_string(stored / 2),
                                      "--timeout-s", std::to_string(static_cast<int>(a.timeout_s))};
    std::vector<char*> argv;
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    if (posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, argv.data(), environ) != 0) {
      fail("posix_spawn of the victim consumer");
    }
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    std::tie(held_batches, held_messages) = read_held(out[0], deadline);

    // The survivor: default options, automatic ack. It takes everything the victim does not hold.
    std::atomic<bool> stop{false};
    Clock::time_point acked_all{};
    std::thread survivor([&] {
      zmq::context_t ctx(1);
      zkit::ConsumerOptions o;
      o.group = "work";
      zkit::Consumer consumer(ctx, o);
      consumer.connect(node.serve());
      const zkit::Consumer::Handler handler = [&](const zkit::ConsumedBatch& b) {
        if (b.info.redelivered()) redelivered.fetch_add(1, std::memory_order_relaxed);
        for (std::span<const std::byte> m : b) tally.record(m.data(), m.size());
      };
      while (!stop.load() && Clock::now() < deadline) {
        consumer.poll_once(handler, std::chrono::milliseconds(20));
        // poll_once sent the acks of what it handled: the victim's batches are acked now.
        if (tally.done()) {
          acked_all = Clock::now();
          break;
        }
      }
      (void)consumer.close();
    });
    while (tally.distinct() < a.messages - held_messages && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // before the clock starts
    }
    const auto killed = Clock::now();
    ::kill(pid, SIGKILL);
    int st = 0;
    ::waitpid(pid, &st, 0);
    ::close(out[0]);
    survivor.join();
    if (!tally.done()) fail("the victim's batches were not redelivered before the timeout");
    redelivery_s = seconds_between(killed, acked_all);
  }
  print_result("redelivery", a, redelivery_s, tally,
               "\"groups\":1,\"redelivery_s\":" + std::to_string(redelivery_s) +
                   ",\"held_batches\":" + std::to_string(held_batches) +
                   ",\"held_messages\":" + std::to_string(held_messages) +
                   ",\"redelivered_batches\":" + std::to_string(redelivered.load()));
  return tally.lost() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const Flags f = parse(argc, argv);
  // The spool node logs each group and member: keep stdout for the result line, and the noise out.
  spdlog::set_default_logger(spdlog::stderr_logger_mt("queue_bench"));
  spdlog::set_level(spdlog::level::warn);
  if (f.mode == "raw-zmq") return raw_zmq(f);
  if (f.mode == "raw-disk") return raw_disk(f);
  if (f.mode == "group") return group_run(f);
  if (f.mode == "redelivery") return redelivery(f, argv[0]);
  return victim(f);
}
