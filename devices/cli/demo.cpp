// `zkit demo`: the project's main job in one command, with no setup. Starts a producer -> proxy ->
// spool -> consumer topology on loopback (ipc endpoints in a temporary directory), streams
// numbered messages through it, prints live progress, and ends with a table of what was sent,
// forwarded, stored and received, checking that every message arrived exactly once.
//
// The devices run as child processes of this same binary (/proc/self/exe proxy ...), as an
// operator would start them: they show in `ps`, answer `zkit stats --control EP` while the demo
// runs, and nothing is shared with the demo but ZeroMQ endpoints. The producer and the consumer are
// threads of the demo, because the demo must see every message to count it live and check that it
// arrived exactly once. Statistics of the devices come from their control sockets (STATS JSON).
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "cli.hpp"
#include "io_util.hpp"
#include "zkit/pipeline.hpp"
#include "zkit/reliable.hpp"

namespace {

using namespace zkit;
using namespace zkit::cli;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
namespace fs = std::filesystem;

constexpr milliseconds kStatsTimeout{1000};
constexpr milliseconds kStartTimeout{5000};
constexpr milliseconds kStopGrace{5000};
constexpr double kStallSeconds = 10;  // no message moved this long: give up

void declare(po::options_description& flags) {
  // clang-format off
  flags.add_options()
      ("count", po::value<long long>()->default_value(2000000)->value_name("N"),
       "messages to send")
      ("size", po::value<long long>()->default_value(32)->value_name("B"),
       "bytes per message (each starts with its number)")
      ("rate", po::value<long long>()->default_value(500000)->value_name("MSG/S"),
       "pace the producer to about this many messages per second, so that the progress lines show\n"
       "the stream moving (0: as fast as it goes)")
      ("interval", po::value<double>()->default_value(0.5)->value_name("SEC"),
       "a progress line every SEC seconds")
      ("timeout", po::value<double>()->default_value(120.0)->value_name("SEC"),
       "give up (exit 1) when the run takes longer than SEC")
      ("keep", "keep the temporary directory (device logs) and print its path");
  // clang-format on
}

// ---- child processes ----------------------------------------------------------------------------

// A device started as `zkit <args...>` with stdout and stderr in a log file. The destructor stops
// it (SIGTERM, then SIGKILL after kStopGrace) and reaps it; only this pid is ever signalled.
class Child {
 public:
  Child(std::string name, const std::vector<std::string>& args, const fs::path& log)
      : name_(std::move(name)), log_(log) {
    std::vector<std::string> all = {"zkit"};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out < 0 || in < 0) throw std::runtime_error("cannot open " + log.string());
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {  // only async-signal-safe calls until exec
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);  // the demo blocks SIGINT/SIGTERM; the device not
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);        // the device ends with the demo
      if (::getppid() != parent) ::_exit(127);
      ::dup2(in, STDIN_FILENO);
      ::dup2(out, STDOUT_FILENO);
      ::dup2(out, STDERR_FILENO);
      ::execv("/proc/self/exe", argv.data());
      ::_exit(127);
    }
    ::close(out);
    ::close(in);
    if (pid_ < 0) throw std::runtime_error("fork failed");
  }
  ~Child() { (void)stop(); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  const std::string& name() const noexcept { return name_; }
  pid_t pid() const noexcept { return pid_; }
  bool running() {
    if (status_) return false;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) status_ = st;
    return !status_;
  }
  // Stops the device (it flushes and exits 0 on SIGTERM); returns a description of how it ended.
  std::string stop() {
    if (running()) {
      ::kill(pid_, SIGTERM);
      const auto deadline = Clock::now() + kStopGrace;
      while (running() && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds{10});
      if (running()) {
        ::kill(pid_, SIGKILL);
        int st = 0;
        if (::waitpid(pid_, &st, 0) == pid_) status_ = st;
      }
    }
    if (!status_) return "not reaped";
    if (WIFEXITED(*status_)) return fmt::format("exit {}", WEXITSTATUS(*status_));
    return fmt::format("killed by signal {}", WTERMSIG(*status_));
  }
  std::string log_tail() const {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    std::string text = s.str();
    return text.size() > 2000 ? text.substr(text.size() - 2000) : text;
  }

 private:
  std::string name_;
  fs::path log_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// One STATS round trip on a fresh REQ socket; empty when the device does not answer in time.
std::optional<nlohmann::json> ask_stats(zmq::context_t& context, const std::string& control) {
  zmq::socket_t req(context, zmq::socket_type::req);
  req.set(zmq::sockopt::linger, 0);
  req.connect(control);
  req.send(zmq::str_buffer("STATS"), zmq::send_flags::none);
  zmq_pollitem_t item{req.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, kStatsTimeout) == 0) return std::nullopt;
  zmq::message_t reply;
  if (!req.recv(reply, zmq::recv_flags::none)) return std::nullopt;
  auto j = nlohmann::json::parse(reply.to_string(), nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

// ---- the topology -------------------------------------------------------------------------------

// A device stage: its child process, its control endpoint, and where its counts are in STATS.
struct Stage {
  std::string role;  // "forwarded", "stored"
  std::string control;
  std::string args0;  // the subcommand: "proxy", "spool"
  std::unique_ptr<Child> child;
  nlohmann::json last;  // the latest STATS answer
};

// What a stage's STATS says it passed on (application messages, batches, frame bytes): for a
// proxy what left its backend, for the spool what it stored (its STATS has no byte count for that).
struct Flow {
  std::uint64_t messages = 0, batches = 0;
  std::optional<std::uint64_t> bytes;
};
Flow stage_flow(const nlohmann::json& j) {
  if (!j.is_object()) return {};
  if (j.value("device", "") == "spool") {
    const auto& s = j["stored"];
    return {s.value("messages", 0ULL), s.value("batches", 0ULL), std::nullopt};
  }
  if (!j.contains("backend")) return {};
  const auto& f = j["backend"]["sent"];
  return {f.value("records", 0ULL), f.value("batches", 0ULL), f.value("bytes", 0ULL)};
}

// The store stage: a spool that takes the proxy's output as a plain PUSH peer (--pull), appends
// every batch to its log in `dir` (fsync always), and forwards the log over the reliable link to
// the consumer. Its --listen endpoint is where reliable senders (`zkit send --reliable`) could
// join.
std::vector<std::string> spool_args(const fs::path& dir, const std::string& in,
                                    const std::string& listen, const std::string& out,
                                    const std::string& control) {
  return {"spool",      "--dir",       dir.string(), "--pull",    ">" + in,      "--listen",
          "@" + listen, "--forward",   ">" + out,    "--control", "@" + control, "--stats-interval",
          "0",          "--log-level", "warn"};
}

// Consumer: receives, counts, and marks every number seen so that "exactly once" is checked.
class Consumer {
 public:
  Consumer(zmq::context_t& context, const std::string& endpoint, std::uint64_t count)
      : seen_(count + 1, false), count_(count) {
    ReliableReceiverOptions o;
    o.socket.linger = milliseconds{1000};
    receiver_ = std::make_unique<ReliableReceiver>(context, o);
    (void)receiver_->bind(endpoint);
  }
  // The consumer thread's body: returns when every message came or stop() was called. Each batch
  // is acknowledged to the spool once this handler has counted it.
  void run() {
    const auto handler = [this](Delivery& d) {
      bytes_ += d.batch.frame().size();
      for (const auto record : d.batch) this->record(record);
    };
    while (received_.load(std::memory_order_relaxed) < count_ && !stop_.load()) {
      (void)receiver_->poll_once(handler, milliseconds{100});
    }
    batches_ = receiver_->stats().batches_delivered;
    receiver_->close();
  }
  void stop() { stop_ = true; }
  std::uint64_t received() const { return received_.load(std::memory_order_relaxed); }
  std::uint64_t distinct() const { return distinct_; }
  std::uint64_t duplicates() const { return duplicates_; }
  std::uint64_t out_of_order() const { return out_of_order_; }
  std::uint64_t foreign() const { return foreign_; }
  std::uint64_t batches() const { return batches_; }
  std::uint64_t bytes() const { return bytes_; }

 private:
  void record(std::span<const std::byte> data) {
    received_.fetch_add(1, std::memory_order_relaxed);
    const auto seq = io::generated_seq(data);
    if (!seq || *seq == 0 || *seq > count_) {
      ++foreign_;
      return;
    }
    if (seen_[*seq]) {
      ++duplicates_;
      return;
    }
    seen_[*seq] = true;
    ++distinct_;
    if (*seq < highest_) ++out_of_order_;
    highest_ = std::max(highest_, *seq);
  }

  std::unique_ptr<ReliableReceiver> receiver_;
  std::vector<bool> seen_;
  std::uint64_t count_;
  std::atomic<std::uint64_t> received_{0};
  std::atomic<bool> stop_{false};
  std::uint64_t distinct_ = 0, duplicates_ = 0, out_of_order_ = 0, foreign_ = 0, highest_ = 0;
  std::uint64_t batches_ = 0, bytes_ = 0;
};

// Producer: sends messages 1..count, paced to `rate` per second when rate > 0.
class Producer {
 public:
  Producer(zmq::context_t& context, const std::string& endpoint, std::uint64_t count,
           std::size_t size, std::uint64_t rate)
      : count_(count), size_(size), rate_(rate) {
    PatternOptions o;
    o.send_timeout = milliseconds{100};  // so that stop() is noticed while the pipe is full
    o.socket.linger = milliseconds{5000};
    pusher_ = std::make_unique<Pusher>(context, o);
    pusher_->connect(endpoint);
  }
  void run() {
    const auto start = Clock::now();
    std::string m;
    for (std::uint64_t i = 1; i <= count_ && !stop_.load(); ++i) {
      io::generate_message(m, i, size_);
      while (!pusher_->send(m)) {
        if (stop_.load()) break;
      }
      if (stop_.load()) break;
      sent_.store(i, std::memory_order_relaxed);
      if (rate_ > 0 && i % 1000 == 0) {
        const auto due = start + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(static_cast<double>(i) / rate_));
        while (Clock::now() < due && !stop_.load()) {
          (void)pusher_->pump();
          std::this_thread::sleep_for(milliseconds{1});
        }
      }
    }
    report_ = pusher_->close();
    batches_ = pusher_->stats().batches_out;
    bytes_ = pusher_->stats().bytes_out;
    done_ = true;
  }
  void stop() { stop_ = true; }
  bool done() const { return done_.load(); }
  std::uint64_t sent() const { return sent_.load(std::memory_order_relaxed); }
  const CloseReport& report() const { return report_; }
  std::uint64_t batches() const { return batches_; }
  std::uint64_t bytes() const { return bytes_; }

 private:
  std::unique_ptr<Pusher> pusher_;
  std::uint64_t count_;
  std::size_t size_;
  std::uint64_t rate_;
  std::atomic<std::uint64_t> sent_{0};
  std::atomic<bool> stop_{false};
  std::atomic<bool> done_{false};
  CloseReport report_;
  std::uint64_t batches_ = 0, bytes_ = 0;
};

// A temporary directory removed on destruction unless kept.
class TempDir {
 public:
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "zkit-demo-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = templ;
  }
  ~TempDir() {
    if (keep_) return;
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const noexcept { return path_; }
  std::string ipc(const std::string& name) const { return "ipc://" + (path_ / name).string(); }
  void keep() { keep_ = true; }

 private:
  fs::path path_;
  bool keep_ = false;
};

std::string table_row(const std::string& stage, const std::string& who, std::uint64_t messages,
                      std::uint64_t batches, std::optional<std::uint64_t> bytes) {
  return fmt::format("  {:<10} {:<24} {:>12} {:>9} {:>14}\n", stage, who, messages, batches,
                     bytes ? fmt::format("{}", *bytes) : "-");
}

int run(const po::variables_map& vm) {
  SignalWaiter signals;
  const auto count = static_cast<std::uint64_t>(number_flag(vm, "count", 1, 1LL << 32));
  const auto size = static_cast<std::size_t>(number_flag(vm, "size", 1, 1 << 20));
  if (io::decimal_digits(count) > size) {
    throw UsageError(fmt::format("--size: {} bytes cannot hold the numbers up to {}", size, count));
  }
  const auto rate = static_cast<std::uint64_t>(number_flag(vm, "rate", 0, 1LL << 32));
  const double interval = seconds_flag(vm, "interval", 0.05);
  const double timeout = seconds_flag(vm, "timeout", 1.0);

  TempDir dir;
  if (vm.count("keep")) dir.keep();
  const std::string producer_ep = dir.ipc("producer");
  const std::string store_in = dir.ipc("spool-in");
  const std::string consumer_ep = dir.ipc("consumer");

  // The devices, started downstream first so that each one's peer is there when it connects.
  std::vector<Stage> stages;
  stages.push_back({"stored", dir.ipc("spool.ctl"), "spool", nullptr, {}});
  stages.back().child =
      std::make_unique<Child>("spool",
                              spool_args(dir.path() / "spool", store_in, dir.ipc("spool-listen"),
                                         consumer_ep, stages.back().control),
                              dir.path() / "spool.log");
  stages.insert(stages.begin(), Stage{"forwarded", dir.ipc("proxy.ctl"), "proxy", nullptr, {}});
  stages.front().child = std::make_unique<Child>(
      "proxy (streamer)",
      std::vector<std::string>{"proxy", "--type", "streamer", "--frontend", "@" + producer_ep,
                               "--backend", "@" + store_in, "--control",
                               "@" + stages.front().control, "--stats-interval", "0", "--log-level",
                               "warn"},
      dir.path() / "proxy.log");

  zmq::context_t context;
  for (auto& s : stages) {
    const auto deadline = Clock::now() + kStartTimeout;
    while (!(s.last = ask_stats(context, s.control).value_or(nlohmann::json())).is_object()) {
      if (!s.child->running() || Clock::now() >= deadline) {
        std::cerr << "zkit demo: " << s.child->name() << " did not start:\n" << s.child->log_tail();
        return kExitFailure;
      }
    }
  }
  std::cerr << fmt::format("zkit demo: {} messages of {} bytes: producer -> {} -> {} -> consumer\n",
                           count, size, stages[0].child->name(), stages[1].child->name());
  for (const auto& s : stages) {
    std::cerr << fmt::format("  {:<26} pid {:<8} zkit stats --control {}\n", s.child->name(),
                             s.child->pid(), s.control);
  }

  Consumer consumer(context, consumer_ep, count);
  Producer producer(context, producer_ep, count, size, rate);
  std::thread consumer_thread([&] { consumer.run(); });
  std::thread producer_thread([&] { producer.run(); });

  const auto start = Clock::now();
  const auto period =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(interval));
  auto next = start + period;
  std::uint64_t last_received = 0, last_sent = 0;
  double last_t = 0, last_progress = 0;
  std::string outcome;
  while (outcome.empty()) {
    const bool finished = producer.done() && consumer.received() >= count;
    if (!finished) {
      const auto wait =
          std::max(milliseconds{0}, std::chrono::duration_cast<milliseconds>(next - Clock::now()));
      if (signals.wait(std::min(wait, milliseconds{20}))) outcome = "interrupted";
      if (Clock::now() < next && outcome.empty()) continue;
    }
    const double t = io::seconds_since(start);
    for (auto& s : stages) {
      if (auto j = ask_stats(context, s.control)) s.last = std::move(*j);
    }
    const std::uint64_t received = consumer.received();
    const std::uint64_t sent = producer.sent();
    if (received != last_received || sent != last_sent) last_progress = t;
    if (!finished || received != last_received || last_t == 0) {
      std::cerr << fmt::format(
          "  {:6.1f} s  sent {:>10}  forwarded {:>10}  stored {:>10}  received {:>10}  "
          "{:>9.0f} msg/s\n",
          t, sent, stage_flow(stages[0].last).messages, stage_flow(stages[1].last).messages,
          received, (received - last_received) / std::max(t - last_t, 1e-9));
    }
    last_received = received;
    last_sent = sent;
    last_t = t;
    next += period;
    if (finished) outcome = "done";
    if (outcome.empty() && t - last_progress > kStallSeconds) {
      outcome = fmt::format("no message moved for {:.0f} s", kStallSeconds);
    }
    if (outcome.empty() && t > timeout) outcome = fmt::format("timed out after {:.0f} s", timeout);
    for (auto& s : stages) {
      if (outcome.empty() && !s.child->running()) outcome = s.child->name() + " ended early";
    }
  }
  const double elapsed = io::seconds_since(start);
  producer.stop();
  consumer.stop();
  producer_thread.join();
  consumer_thread.join();

  std::vector<std::string> endings;
  for (auto& s : stages) endings.push_back(s.child->name() + ": " + s.child->stop());

  std::string table = fmt::format("\n  {:<10} {:<24} {:>12} {:>9} {:>14}\n", "stage", "by",
                                  "messages", "batches", "bytes");
  table +=
      table_row("sent", "producer (Pusher)", producer.sent(), producer.batches(), producer.bytes());
  for (const auto& s : stages) {
    const Flow f = stage_flow(s.last);
    table += table_row(s.role, fmt::format("zkit {} pid {}", s.args0, s.child->pid()), f.messages,
                       f.batches, f.bytes);
  }
  table += table_row("received", "consumer (reliable)", consumer.received(), consumer.batches(),
                     consumer.bytes());
  std::cerr << table;
  if (const auto& j = stages[1].last; j.value("device", "") == "spool") {
    std::cerr << fmt::format(
        "  spool: {} messages stored ({} fsyncs; segment files now {} bytes), {} forwarded, {} "
        "acknowledged by the consumer, {} duplicates suppressed\n",
        j["stored"].value("messages", 0ULL), j["fsync"].value("count", 0ULL),
        j["disk"].value("bytes", 0ULL), j["forwarded"].value("messages", 0ULL),
        j["acknowledged"].value("messages", 0ULL), j.value("duplicates", 0ULL));
  }
  std::cerr << fmt::format("  {:.2f} s, {:.0f} msg/s end to end; devices: {}\n", elapsed,
                           io::per_second(consumer.received(), elapsed), fmt::join(endings, ", "));

  const bool exactly_once = outcome == "done" && consumer.distinct() == count &&
                            consumer.duplicates() == 0 && consumer.foreign() == 0 &&
                            producer.report().clean();
  std::cerr << fmt::format(
      "  exactly once: {} ({} of {} distinct, {} missing, {} duplicates, {} out of order{})\n",
      exactly_once ? "yes" : "NO", consumer.distinct(), count, count - consumer.distinct(),
      consumer.duplicates(), consumer.out_of_order(), outcome == "done" ? "" : "; " + outcome);
  if (vm.count("keep")) std::cerr << "  device logs kept in " << dir.path().string() << "\n";
  if (!exactly_once && outcome != "interrupted") {
    for (const auto& s : stages) {
      const std::string tail = s.child->log_tail();
      if (!tail.empty()) std::cerr << "--- " << s.child->name() << " log:\n" << tail;
    }
  }
  return exactly_once ? kExitOk : kExitFailure;
}

}  // namespace

extern const zkit::cli::Subcommand demo_subcommand = {
    "demo", "run producer -> proxy -> spool -> consumer locally and show what got through",
    "Everything runs on this machine, on ipc endpoints in a temporary directory (removed at the\n"
    "end unless --keep): the proxy (streamer) and the spool (fsync always, forwarding over the\n"
    "reliable link) are child processes of this zkit binary (see their pids and\n"
    "control endpoints, try `zkit stats --control EP` while it runs); the producer and the\n"
    "consumer are threads that number and check every message. Progress goes to stderr every\n"
    "--interval; the final table shows what each stage sent, forwarded, stored and received.\n"
    "Exit 0 if every message arrived exactly once, 1 otherwise.",
    declare, run};
