// Queue chaos: 4 reliable senders feed a real `zkit spool --serve`; one group of 4 consumers and
// 2 groups of 1 consume it. Consumers are SIGKILLed and restarted at random moments, and so is the
// spool (on the same endpoints). At the end every group must have handled every batch (0 lost),
// and every duplicate must be explained by its delivery count (> 1) and a cause: its earlier copy
// was held by a consumer that was then SIGKILLed, or a spool SIGKILL came between the copies (the
// group file's window: the spool counts those as delivered, docs/spool.md "Groups"). A duplicate
// with count 1 is a failure.
//
//   queue_chaos --zkit PATH [--messages N] [--rate MSG_PER_S] [--seed S] [--spool-kills K]
//   queue_chaos consumer EP GROUP LOG     (what the driver starts)
//
// Each consumer appends one 32-byte record per batch to LOG before acknowledging it (one write(2),
// so a SIGKILL never loses a handled batch's record). Prints the figures; exit 0 when all holds.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "process.hpp"
#include "zkit/consumer.hpp"
#include "zkit/envelope.hpp"
#include "zkit/reliable.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using zkit::test::Process;
using zkit::test::TempDir;

namespace {

struct Record {
  std::uint64_t producer = 0;
  std::uint64_t seq = 0;
  std::uint32_t messages = 0;
  std::uint32_t delivery_count = 0;
  std::uint64_t time_ns = 0;  // steady clock (CLOCK_MONOTONIC: the same in every process)
};
static_assert(sizeof(Record) == 32);

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
          .count());
}

int consumer_main(const std::string& ep, const std::string& group, const std::string& log) {
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return 1;
  zmq::context_t ctx;
  zkit::ConsumerOptions o;
  o.group = group;
  o.prefetch_batches = 16;
  o.socket.linger = 0ms;
  zkit::Consumer c(ctx, o);
  c.connect(ep);
  c.run([&](const zkit::ConsumedBatch& b) {
    Record r{b.info.producer_id, b.info.seq, static_cast<std::uint32_t>(b.size()),
             static_cast<std::uint32_t>(b.info.delivery_count), now_ns()};
    if (::write(fd, &r, sizeof r) != sizeof r) std::abort();
  });
  return 0;
}

struct Args {
  std::string zkit;
  long long messages = 50000;
  long long rate = 10000;  // messages/s offered; 0: as fast as the spool takes them
  unsigned seed = 1;
  int spool_kills = 2;
};

constexpr int kSenders = 4;
constexpr int kPerBatch = 20;
const std::vector<std::pair<std::string, int>> kGroups = {
    {"work", 4}, {"audit", 1}, {"billing", 1}};

struct ConsumerSlot {
  std::string group;
  int instance = 0;
  std::string log;
  std::unique_ptr<Process> process;
};

class Driver {
 public:
  explicit Driver(Args a) : args_(std::move(a)), rng_(args_.seed) {}

  int run() {
    start_spool("tcp://127.0.0.1:0", "tcp://127.0.0.1:0", "tcp://127.0.0.1:0");
    for (const auto& [group, n] : kGroups) {
      for (int i = 0; i < n; ++i) {
        slots_.push_back({group, 0, "", nullptr});
        restart(slots_.back());
      }
    }
    zmq::context_t ctx;
    std::vector<std::unique_ptr<zkit::ReliableSender>> senders;
    for (int i = 0; i < kSenders; ++i) {
      zkit::ReliableSenderOptions o;
      o.window = 64;
      o.max_queued = 128;
      o.socket.linger = 0ms;
      o.socket.reconnect_ivl = 20ms;
      senders.push_back(std::make_unique<zkit::ReliableSender>(ctx, o));
      senders.back()->connect(listen_);
    }
    const std::uint64_t batches_each = static_cast<std::uint64_t>(
        (args_.messages + kSenders * kPerBatch - 1) / (kSenders * kPerBatch));
    std::vector<std::uint64_t> next_seq(kSenders, 1);
    const auto begin = Clock::now();
    auto next_consumer_kill = begin + random_ms(100, 500);
    const auto sending_span =
        args_.rate > 0 ? std::chrono::milliseconds(args_.messages * 1000 / args_.rate) : 3000ms;
    std::vector<Clock::time_point> spool_kill_at;
    for (int k = 0; k < args_.spool_kills; ++k) {
      spool_kill_at.push_back(begin +
                              std::chrono::milliseconds(std::uniform_int_distribution<long long>(
                                  300, std::max<long long>(400, sending_span.count()))(rng_)));
    }
    std::sort(spool_kill_at.begin(), spool_kill_at.end());
    std::uint64_t sent_messages = 0;
    const auto deadline = begin + std::chrono::seconds(60 + args_.messages / 5000);
    bool chaos = true;
    Clock::time_point chaos_end{};
    for (;;) {
      if (Clock::now() > deadline) return fail("out of time before every group was done");
      // Offer batches as the rate allows.
      const double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
      const auto allowed =
          args_.rate > 0 ? static_cast<std::uint64_t>(elapsed * args_.rate) : ~std::uint64_t{0};
      for (int i = 0; i < kSenders; ++i) {
        auto& s = *senders[i];
        while (next_seq[i] <= batches_each && sent_messages < allowed) {
          zkit::envelope::Encoder enc;
          enc.begin(s.producer_id());
          for (int m = 0; m < kPerBatch; ++m) enc.add("m" + std::to_string(m) + "-payload-16B");
          zmq::message_t frame = enc.finish(next_seq[i], zkit::envelope::unix_now_ns());
          if (!s.send_batch(std::move(frame), next_seq[i])) break;  // backlog full
          ++next_seq[i];
          sent_messages += kPerBatch;
        }
        (void)s.poll_once(0ms);
      }
      bool all_acked = true;
      for (int i = 0; i < kSenders; ++i) {
        if (next_seq[i] <= batches_each || senders[i]->unacked() > 0 ||
            senders[i]->stats().batches_acked < batches_each) {
          all_acked = false;
        }
      }
      const auto now = Clock::now();
      if (chaos) {
        if (now >= next_consumer_kill) {
          ConsumerSlot& s =
              slots_[std::uniform_int_distribution<std::size_t>(0, slots_.size() - 1)(rng_)];
          s.process->signal(SIGKILL);
          (void)s.process->wait(5000ms);
          killed_logs_.insert(s.log);
          ++consumer_kills_;
          restart(s);
          next_consumer_kill = now + random_ms(100, 700);
        }
        if (!spool_kill_at.empty() && now >= spool_kill_at.front()) {
          spool_kill_at.erase(spool_kill_at.begin());
          spool_->signal(SIGKILL);
          (void)spool_->wait(5000ms);
          spool_kill_times_.push_back(now_ns());
          ++spool_kills_done_;
          start_spool(listen_, serve_, control_);
        }
        if (all_acked && spool_kill_at.empty()) {
          if (chaos_end == Clock::time_point{}) chaos_end = now + random_ms(200, 800);
          if (now >= chaos_end) chaos = false;
        }
      } else if (all_acked && drained()) {
        break;
      }
      std::this_thread::sleep_for(1ms);
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - begin).count();
    for (auto& s : slots_) s.process->signal(SIGKILL);
    for (auto& s : slots_) (void)s.process->wait(5000ms);
    spool_->signal(SIGTERM);
    (void)spool_->wait(10000ms);
    std::vector<std::pair<std::uint64_t, std::uint64_t>> producers;  // id, batches
    for (auto& s : senders) producers.emplace_back(s->producer_id(), batches_each);
    return verify(producers, seconds);
  }

 private:
  std::chrono::milliseconds random_ms(int lo, int hi) {
    return std::chrono::milliseconds(std::uniform_int_distribution<int>(lo, hi)(rng_));
  }

  void start_spool(const std::string& listen, const std::string& serve,
                   const std::string& control) {
    ++spool_lives_;
    const std::string out = dir_.file("spool-" + std::to_string(spool_lives_) + ".out");
    spool_ = std::make_unique<Process>(
        std::vector<std::string>{args_.zkit, "spool", "--dir", dir_.file("spool"), "--listen",
                                 listen, "--serve", serve, "--control", control, "--stats-interval",
                                 "0", "--log-level", "warn"},
        out, dir_.file("spool-" + std::to_string(spool_lives_) + ".err"));
    auto l = spool_->wait_line("listen ", 20000ms);
    auto s = spool_->wait_line("serve ", 1000ms);
    auto c = spool_->wait_line("control ", 1000ms);
    if (!l || !s || !c) {
      std::fprintf(stderr, "spool did not start: %s\n", spool_->err().c_str());
      std::exit(1);
    }
    listen_ = *l;
    serve_ = *s;
    control_ = *c;
  }

  void restart(ConsumerSlot& s) {
    s.log = dir_.file(s.group + "-" + std::to_string(&s - slots_.data()) + "-" +
                      std::to_string(s.instance++) + ".log");
    logs_[s.log] = s.group;
    s.process = std::make_unique<Process>(
        std::vector<std::string>{"/proc/self/exe", "consumer", serve_, s.group, s.log},
        s.log + ".out", s.log + ".err");
  }

  // Every group has acked everything: lag 0 and nothing pending.
  bool drained() {
    if (Clock::now() < next_ask_) return false;
    next_ask_ = Clock::now() + 200ms;
    zmq::context_t ctx;
    zmq::socket_t req(ctx, zmq::socket_type::req);
    req.set(zmq::sockopt::linger, 0);
    req.connect(control_);
    req.send(zmq::str_buffer("GROUPS"), zmq::send_flags::none);
    zmq::pollitem_t item{req.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, 2000ms) <= 0) return false;
    zmq::message_t reply;
    (void)req.recv(reply);
    auto j = nlohmann::json::parse(reply.to_string(), nullptr, false);
    if (j.is_discarded()) return false;
    int done = 0;
    for (const auto& g : j["groups"]) {
      const auto& st = g["state"];
      if (st["lag_batches"] == 0 && st["pending"] == 0) ++done;
    }
    return done == static_cast<int>(kGroups.size());
  }

  int fail(const std::string& why) {
    std::printf("queue chaos FAILED: %s\n", why.c_str());
    return 1;
  }

  int verify(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& producers,
             double seconds) {
    struct Copy {
      std::uint64_t time_ns;
      std::uint32_t delivery_count;
      bool killed;
    };
    std::map<std::string, std::map<std::pair<std::uint64_t, std::uint64_t>, std::vector<Copy>>>
        seen;
    for (const auto& [log, group] : logs_) {
      const std::string bytes = zkit::test::read_file(log);
      for (std::size_t at = 0; at + sizeof(Record) <= bytes.size(); at += sizeof(Record)) {
        Record r;
        std::memcpy(&r, bytes.data() + at, sizeof r);
        seen[group][{r.producer, r.seq}].push_back(
            {r.time_ns, r.delivery_count, killed_logs_.count(log) != 0});
      }
    }
    bool ok = true;
    std::uint64_t expected = 0;
    for (const auto& [id, n] : producers) expected += n;
    std::printf(
        "queue chaos: %llu messages in %llu batches from %d senders, %.1f s, %d consumer "
        "kills, %d spool kills\n",
        static_cast<unsigned long long>(expected * kPerBatch),
        static_cast<unsigned long long>(expected), kSenders, seconds, consumer_kills_,
        spool_kills_done_);
    for (const auto& [group, members] : kGroups) {
      auto& batches = seen[group];
      std::uint64_t lost = 0, copies = 0, redelivered = 0, dup_member = 0, dup_spool = 0,
                    unexplained = 0;
      for (const auto& [id, n] : producers) {
        for (std::uint64_t seq = 1; seq <= n; ++seq) {
          auto it = batches.find({id, seq});
          if (it == batches.end()) {
            ++lost;
            continue;
          }
          auto v = it->second;
          std::sort(v.begin(), v.end(),
                    [](const Copy& a, const Copy& b) { return a.time_ns < b.time_ns; });
          copies += v.size();
          for (std::size_t i = 0; i < v.size(); ++i) {
            if (v[i].delivery_count > 1) ++redelivered;
            if (i == 0) continue;
            // Explained when this copy says it is a redelivery and an earlier copy was held by a
            // consumer SIGKILLed later (a member death) or a spool SIGKILL came between them.
            bool member = false, spool = false;
            for (std::size_t k = 0; k < i && v[i].delivery_count > 1; ++k) {
              if (v[k].killed) member = true;
              for (std::uint64_t t : spool_kill_times_) {
                if (v[k].time_ns < t && t < v[i].time_ns) spool = true;
              }
            }
            if (member) {
              ++dup_member;
            } else if (spool) {
              ++dup_spool;
            } else {
              ++unexplained;
            }
          }
        }
      }
      std::printf(
          "  group %-8s (%d members): %llu batches handled, %llu lost, %llu duplicates "
          "(%llu where a member died holding them, %llu across a spool kill, %llu "
          "unexplained), %llu deliveries with count > 1\n",
          group.c_str(), members, static_cast<unsigned long long>(copies),
          static_cast<unsigned long long>(lost),
          static_cast<unsigned long long>(dup_member + dup_spool + unexplained),
          static_cast<unsigned long long>(dup_member), static_cast<unsigned long long>(dup_spool),
          static_cast<unsigned long long>(unexplained),
          static_cast<unsigned long long>(redelivered));
      if (lost > 0 || unexplained > 0) ok = false;
    }
    std::printf(
        ok ? "queue chaos: every group handled every batch, 0 lost, every duplicate explained\n"
           : "queue chaos FAILED\n");
    return ok ? 0 : 1;
  }

  Args args_;
  std::mt19937 rng_;
  TempDir dir_;
  std::unique_ptr<Process> spool_;
  std::string listen_, serve_, control_;
  int spool_lives_ = 0;
  std::vector<ConsumerSlot> slots_;
  std::map<std::string, std::string> logs_;  // log -> group
  std::set<std::string> killed_logs_;
  std::vector<std::uint64_t> spool_kill_times_;
  int consumer_kills_ = 0;
  int spool_kills_done_ = 0;
  Clock::time_point next_ask_{};
};

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "consumer")
    return consumer_main(argv[2], argv[3], argv[4]);
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string f = argv[i], v = argv[i + 1];
    if (f == "--zkit")
      a.zkit = v;
    else if (f == "--messages")
      a.messages = std::stoll(v);
    else if (f == "--rate")
      a.rate = std::stoll(v);
    else if (f == "--seed")
      a.seed = static_cast<unsigned>(std::stoul(v));
    else if (f == "--spool-kills")
      a.spool_kills = std::stoi(v);
    else {
      std::fprintf(stderr, "queue_chaos: unknown flag %s\n", f.c_str());
      return 2;
    }
  }
  if (a.zkit.empty() || a.messages <= 0) {
    std::fprintf(
        stderr,
        "usage: queue_chaos --zkit PATH [--messages N] [--rate R] [--seed S] [--spool-kills K]\n");
    return 2;
  }
  if (const char* seed = std::getenv("ZKIT_CHAOS_SEED"))
    a.seed = static_cast<unsigned>(std::atoi(seed));
  std::printf("queue chaos: seed %u\n", a.seed);
  return Driver(std::move(a)).run();
}
