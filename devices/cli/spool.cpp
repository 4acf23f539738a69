// `zkit spool`: runs the store-and-forward node until SIGINT, SIGTERM or TERMINATE on its control
// socket, logging statistics (and draining progress) as it goes and printing them at the end.
#include <string.h>

#include <cctype>
#include <cmath>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cli.hpp"
#include "metrics_flags.hpp"
#include "zkit/spool_node.hpp"

namespace {

using namespace zkit;
using namespace zkit::cli;
using Clock = std::chrono::steady_clock;

void declare(po::options_description& flags) {
  flags.add_options()
      ("dir", po::value<std::string>()->required()->value_name("DIR"),
       "the spool directory (created when missing)")
      ("listen", po::value<std::string>()->required()->value_name("EP"),
       "where reliable senders connect (plain EP binds)")
      ("forward", po::value<std::string>()->value_name("EP"),
       "the downstream reliable receiver (plain EP connects); the group 'forward'")
      ("serve", po::value<std::string>()->value_name("EP"),
       "consumers join groups here (`zkit recv --group`, zkit::Consumer; plain EP binds)")
      ("pull", po::value<std::string>()->value_name("EP"),
       "also accept plain PUSH peers here (no acknowledgement: see docs; plain EP binds)")
      ("control", po::value<std::string>()->value_name("EP"),
       "REP control socket: STATS (JSON), TERMINATE (plain EP binds)")
      ("fsync", po::value<std::string>()->default_value("always")->value_name("MODE"),
       "always | interval=MS | never: when an acknowledged batch is on stable storage")
      ("max-bytes", po::value<std::string>()->default_value("0")->value_name("SIZE"),
       "bound on the segment files, e.g. 64MiB, 1G (0: none)")
      ("max-age", po::value<std::string>()->default_value("0")->value_name("DURATION"),
       "bound on the age of the oldest unforwarded batch, e.g. 10m, 1h (0: none)")
      ("when-full", po::value<std::string>()->default_value("block")->value_name("POLICY"),
       "block (withhold credit upstream) | drop-oldest (delete oldest unforwarded, counted)")
      ("segment-bytes", po::value<std::string>()->default_value("64MiB")->value_name("SIZE"),
       "roll to a new segment file past this size (at least 64KiB)")
      ("window", po::value<long long>()->default_value(64)->value_name("N"),
       "batches unacknowledged per sender upstream, and in flight downstream")
      ("max-sessions", po::value<long long>()->default_value(1024)->value_name("N"),
       "upstream sender sessions kept; beyond, dead idle ones are forgotten, else refused")
      ("max-producers", po::value<long long>()->default_value(65536)->value_name("N"),
       "producers the duplicate table keeps; beyond, the longest-unseen are forgotten (counted)")
      ("duplicate-window", po::value<long long>()->default_value(65536)->value_name("N"),
       "a batch at most N seqs below its producer's highest is a resend; further below, a restart")
      ("linger-ms", po::value<long long>()->default_value(1000)->value_name("MS"),
       "at stop: wait up to MS for the downstream to acknowledge what is in flight")
      ("max-groups", po::value<long long>()->default_value(64)->value_name("N"),
       "--serve: consumer groups kept (durable); a JOIN naming one more is refused")
      ("max-members", po::value<long long>()->default_value(64)->value_name("N"),
       "--serve: members per group; one more is refused")
      ("max-prefetch", po::value<long long>()->default_value(1024)->value_name("N"),
       "--serve: the largest prefetch (batches pending per member) a consumer may ask for")
      ("bundle-bytes", po::value<std::string>()->default_value("256KiB")->value_name("SIZE"),
       "--serve: batches for a consumer that takes BUNDLEs go out in bundles of up to SIZE "
       "(0: one DELIVER per batch)")
      ("max-pending", po::value<long long>()->default_value(65536)->value_name("N"),
       "--serve: batches per group out or acked above its floor; beyond, only redeliveries")
      ("max-dead-bytes", po::value<std::string>()->default_value("1GiB")->value_name("SIZE"),
       "--serve: bound on each group's dead-letter log (0: none)")
      ("ack-wait", po::value<std::string>()->default_value("30s")->value_name("DURATION"),
       "--serve: a delivery not acked within this goes to another member (a JOIN may ask less)")
      ("max-deliver", po::value<long long>()->default_value(5)->value_name("N"),
       "--serve: deliveries of a batch before it goes to the dead-letter log (0: unlimited)")
      ("consumer-heartbeat", po::value<std::string>()->default_value("5s")->value_name("DURATION"),
       "--serve: a member silent this long is dead; what it holds is redelivered")
      ("stats-interval", po::value<double>()->default_value(5.0)->value_name("SEC"),
       "log a statistics line every SEC seconds to stderr (0: never)");
  add_curve_flags(flags);
  add_metrics_flags(flags, "spool");
}

// "64MiB", "1G", "512k", "4096": bytes. Binary multiples for both spellings (K=KiB).
std::uint64_t size_flag(const po::variables_map& vm, const std::string& name) {
  const std::string text = vm[name].as<std::string>();
  std::size_t pos = 0;
  unsigned long long n = 0;
  try {
    n = std::stoull(text, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  std::string unit = text.substr(pos);
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  int shift = -1;
  if (unit.empty() || unit == "b") shift = 0;
  if (unit == "k" || unit == "kb" || unit == "kib") shift = 10;
  if (unit == "m" || unit == "mb" || unit == "mib") shift = 20;
  if (unit == "g" || unit == "gb" || unit == "gib") shift = 30;
  if (unit == "t" || unit == "tb" || unit == "tib") shift = 40;
  if (pos == 0 || text[0] == '-' || shift < 0 || (shift > 0 && n > (~0ULL >> shift))) {
    throw UsageError(fmt::format("--{}: '{}' is not a size (e.g. 4096, 512KiB, 64MiB, 1G)",
                                 name, text));
  }
  return static_cast<std::uint64_t>(n) << shift;
}

// "500ms", "30s", "10m", "1h", "2d", "0": milliseconds.
std::chrono::milliseconds duration_flag(const po::variables_map& vm, const std::string& name) {
  const std::string text = vm[name].as<std::string>();
  std::size_t pos = 0;
  unsigned long long n = 0;
  try {
    n = std::stoull(text, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  const std::string unit = text.substr(pos);
  unsigned long long ms = 0;
  if (unit == "ms") ms = 1;
  if (unit == "s" || (unit.empty() && n == 0)) ms = 1000;
  if (unit == "m") ms = 60'000;
  if (unit == "h") ms = 3'600'000;
  if (unit == "d") ms = 86'400'000;
  if (pos == 0 || text[0] == '-' || ms == 0 || n > (1ULL << 40)) {
    throw UsageError(
        fmt::format("--{}: '{}' is not a duration (e.g. 500ms, 30s, 10m, 1h, 2d)", name, text));
  }
  return std::chrono::milliseconds(static_cast<long long>(n * ms));
}

std::string opt_string(const po::variables_map& vm, const char* name) {
  return vm.count(name) ? vm[name].as<std::string>() : std::string();
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", b) : fmt::format("{:.1f} {}", b, units[u]);
}

std::string groups_summary(const SpoolNodeStats& s) {
  std::string out;
  for (const GroupFigures& g : s.groups) {
    fmt::format_to(std::back_inserter(out),
                   "; group {}: {} members, acked {} ({} msgs), lag {}, pending {}, redelivered {}, "
                   "dead-lettered {}",
                   g.name, g.members, g.state.acked, g.state.acked_messages, g.state.lag_batches,
                   g.state.pending, g.state.redelivered, g.state.dead_lettered);
  }
  return out;
}

std::string stats_summary(const SpoolNodeStats& s) {
  const spool::Stats& d = s.store;
  return fmt::format(
      "in {} batches ({} msgs) + pull {}, stored {} ({} msgs), dups {}, acked up {}, fwd {}, "
      "acked down {} ({} msgs), backlog {} msgs / {} (oldest {:.1f} s), fsyncs {} (avg {} us), "
      "dropped {} msgs, corrupt {}, write errors {}, disk free {}",
      s.accepted_batches, s.accepted_messages, s.pull_batches, d.stored, d.stored_messages,
      s.duplicates, s.acknowledged_upstream, s.forwarded_batches, s.acknowledged_batches,
      s.acknowledged_messages, d.backlog_messages, human_bytes(static_cast<double>(d.backlog_bytes)),
      static_cast<double>(d.oldest_age_ms) / 1000.0, d.fsyncs,
      d.fsyncs ? d.fsync_ns_total / d.fsyncs / 1000 : 0, d.dropped_messages, d.corrupt_skipped,
      s.write_errors, human_bytes(static_cast<double>(d.disk_free_bytes))) +
         groups_summary(s);
}

int run(const po::variables_map& vm) {
  SignalWaiter signals;  // before any thread exists

  SpoolNodeOptions o;
  o.store.dir = vm["dir"].as<std::string>();
  auto fsync = spool::FsyncPolicy::parse(vm["fsync"].as<std::string>());
  if (!fsync) throw UsageError("--fsync: " + fsync.status().message());
  o.store.fsync = fsync.value();
  o.store.max_bytes = size_flag(vm, "max-bytes");
  o.store.max_age = duration_flag(vm, "max-age");
  auto when_full = spool::parse_when_full(vm["when-full"].as<std::string>());
  if (!when_full) throw UsageError("--when-full: " + when_full.status().message());
  o.store.when_full = when_full.value();
  o.store.segment_bytes = size_flag(vm, "segment-bytes");
  if (o.store.segment_bytes < 64 * 1024) {
    throw UsageError("--segment-bytes: must be at least 64KiB");
  }
  const Endpoint le = endpoint_flag(vm, "listen", true);
  const bool has_forward = vm.count("forward") != 0;
  const bool has_serve = vm.count("serve") != 0;
  if (!has_forward && !has_serve) {
    throw UsageError("--forward or --serve is required (where the log goes)");
  }
  const Endpoint fe = has_forward ? endpoint_flag(vm, "forward", false) : Endpoint{};
  const Endpoint se = has_serve ? endpoint_flag(vm, "serve", true) : Endpoint{};
  const bool has_pull = vm.count("pull") != 0;
  const bool has_control = vm.count("control") != 0;
  const Endpoint pe = has_pull ? endpoint_flag(vm, "pull", true) : Endpoint{};
  const Endpoint ce = has_control ? endpoint_flag(vm, "control", true) : Endpoint{};
  o.listen = vm["listen"].as<std::string>();
  o.forward = opt_string(vm, "forward");
  o.serve = opt_string(vm, "serve");
  o.max_groups = static_cast<std::size_t>(number_flag(vm, "max-groups", 1, 1 << 20));
  o.max_members = static_cast<std::size_t>(number_flag(vm, "max-members", 1, 1 << 20));
  o.max_prefetch = static_cast<std::size_t>(number_flag(vm, "max-prefetch", 1, 1 << 20));
  o.max_pending = static_cast<std::size_t>(number_flag(vm, "max-pending", 1, 1 << 26));
  o.max_dead_bytes = size_flag(vm, "max-dead-bytes");
  o.bundle_bytes = static_cast<std::size_t>(size_flag(vm, "bundle-bytes"));
  if (o.bundle_bytes > (std::size_t{64} << 20)) throw UsageError("--bundle-bytes: at most 64MiB");
  o.ack_wait = duration_flag(vm, "ack-wait");
  if (o.ack_wait.count() <= 0) throw UsageError("--ack-wait: must be more than 0");
  o.max_deliver = static_cast<std::uint32_t>(number_flag(vm, "max-deliver", 0, 1 << 30));
  o.consumer_heartbeat = duration_flag(vm, "consumer-heartbeat");
  if (o.consumer_heartbeat.count() < 3) throw UsageError("--consumer-heartbeat: at least 3ms");
  o.pull = opt_string(vm, "pull");
  o.control = opt_string(vm, "control");
  const auto window = static_cast<std::size_t>(number_flag(vm, "window", 1, 1 << 20));
  o.upstream_window = window;
  o.forward_window = window;
  o.linger = std::chrono::milliseconds(number_flag(vm, "linger-ms", 0, 3600 * 1000));
  o.max_sessions = static_cast<std::size_t>(number_flag(vm, "max-sessions", 1, 1 << 24));
  o.store.max_producers = static_cast<std::size_t>(number_flag(vm, "max-producers", 1, 1 << 26));
  o.store.duplicate_window =
      static_cast<std::uint64_t>(number_flag(vm, "duplicate-window", 1, 1LL << 40));
  const double interval = seconds_flag(vm, "stats-interval", 0.0);
  const Curve curve = curve_flags(vm);
  const auto metrics_options = metrics_flag(vm);
  o.listen_socket.curve = curve.for_socket(le.bind);
  o.forward_socket.curve = curve.for_socket(fe.bind);
  o.pull_socket.curve = curve.for_socket(pe.bind);
  o.control_socket.curve = curve.for_socket(ce.bind);
  o.serve_socket.curve = curve.for_socket(se.bind);
  o.serve_socket.linger = std::chrono::milliseconds{0};
  o.control_socket.linger = std::chrono::milliseconds{0};
  // Every receiving socket refuses frames over its decoder's limits (ZMQ_MAXMSGSIZE) by itself.

  zmq::context_t context;
  const auto zap = curve.start_zap(context);
  std::optional<SpoolNode> node;
  try {
    node.emplace(context, o);
  } catch (const std::runtime_error& e) {  // the store could not be opened
    throw UsageError(std::string("--dir: ") + e.what());
  }
  // Machine-readable: the endpoints as bound (a "*" port resolved), one per line.
  std::cout << "listen " << node->listen_endpoint() << "\n";
  if (has_forward) std::cout << "forward " << node->forward_endpoint() << "\n";
  if (has_serve) std::cout << "serve " << node->serve_endpoint() << "\n";
  if (has_pull) std::cout << "pull " << node->pull_endpoint() << "\n";
  if (has_control) std::cout << "control " << node->control_endpoint() << "\n";
  // The HTTP thread reads copies of the node's stats this loop takes when a scrape asks.
  const auto http = start_metrics(
      metrics_options, vm, "spool", node->stats(),
      [](metrics::Exposition& x, const SpoolNodeStats& s) { write_metrics(x, s); },
      [has_forward = vm.count("forward") != 0](const SpoolNodeStats& s) {
        return not_ready(s, has_forward);
      });
  if (http) std::cout << "metrics " << http->endpoint() << "\n";
  std::cout << std::flush;
  spdlog::info("spool {}: listening {} {}{}{}, fsync {}{}", o.store.dir, le.bind ? "at" : "via",
               node->listen_endpoint(),
               has_forward ? fmt::format(", forwarding {} {}", fe.bind ? "at" : "to",
                                         node->forward_endpoint())
                           : "",
               has_serve ? ", serving consumers at " + node->serve_endpoint() : "",
               o.store.fsync.to_string(),
               has_control ? ", control " + node->control_endpoint() : "");

  const auto period = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(interval));
  auto next_report = Clock::now() + period;
  std::uint64_t last_acked = node->stats().acknowledged_messages;
  auto last_time = Clock::now();
  int sig = 0;
  // One wait for the node's sockets, its timers, the signals and the next statistics line: an idle
  // spool does not wake on a timer of its own.
  // With --metrics a scrape's ask shares the signals' item (poll_once takes one extra item).
  const WakeSet wake({signals.fd(), http ? http->asked_item().fd : -1});
  zmq_pollitem_t signal_item{nullptr, wake.fd(), ZMQ_POLLIN, 0};
  auto until_report = [&] {
    if (interval <= 0) return std::chrono::milliseconds(-1);
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::ceil<std::chrono::milliseconds>(next_report - Clock::now()));
  };
  while (node->poll_once(until_report(), &signal_item)) {
    if (http) http->serve([&node] { return node->stats(); });
    if (signal_item.revents != 0) {
      if (auto s = signals.wait(std::chrono::milliseconds(0))) {
        sig = *s;
        break;
      }
    }
    if (interval > 0 && Clock::now() >= next_report) {
      const SpoolNodeStats s = node->stats();
      spdlog::info("{}", stats_summary(s));
      const double secs = std::chrono::duration<double>(Clock::now() - last_time).count();
      const double rate = static_cast<double>(s.acknowledged_messages - last_acked) / secs;
      const std::uint64_t left = s.store.backlog_messages;
      if (left > 0 && rate > 0) {
        spdlog::info("draining backlog: {} msgs ({}) left at {:.0f} msg/s, about {:.0f} s to go",
                     left, human_bytes(static_cast<double>(s.store.backlog_bytes)), rate,
                     std::ceil(static_cast<double>(left) / rate));
      }
      last_acked = s.acknowledged_messages;
      last_time = Clock::now();
      next_report += period;
    }
  }
  if (sig) {
    spdlog::info("{}: stopping (acknowledging what is stored, waiting up to {} ms downstream)",
                 strsignal(sig), o.linger.count());
  } else {
    spdlog::info("TERMINATE: stopping");
  }
  if (http) http->stopping();
  const Status st = node->shutdown();
  if (http) http->publish(node->stats());  // the final figures, for a last scrape
  if (!st) spdlog::error("spool: shutdown: {}", st.to_string());
  const SpoolNodeStats s = node->stats();
  std::cerr << "final statistics: " << stats_summary(s) << "\n"
            << nlohmann::json::parse(node->stats().to_json()).dump(2) << "\n";
  return st ? kExitOk : kExitFailure;
}

}  // namespace

extern const zkit::cli::Subcommand spool_subcommand = {
    "spool",
    "store-and-forward node: reliable senders -> on-disk log -> reliable receiver / consumer groups",
    "Accepts batches from `zkit send --reliable` peers on --listen (and plain PUSH peers on\n"
    "--pull), appends them to a log in --dir, acknowledges each once it is as durable as --fsync\n"
    "promises, and forwards the log to --forward (e.g. `zkit recv --reliable`), advancing its\n"
    "cursor only on the downstream's acknowledgement. Chains: spool -> spool -> consumer.\n"
    "With --serve EP, consumers (`zkit recv --from EP --group NAME`) join named groups: each\n"
    "group gets every batch, each batch goes to one member of it, with acks, redelivery and a\n"
    "dead-letter log (docs/queues.md; `zkit groups` manages them over --control).\n"
    "Endpoints: '@EP' binds, '>EP' connects; plain --listen/--pull/--control bind, plain\n"
    "--forward connects. The endpoints as bound are printed on stdout ('listen tcp://...').\n"
    "SIGINT/SIGTERM or TERMINATE on --control: stop accepting, acknowledge what is stored,\n"
    "persist the cursor, print the final statistics on stderr, exit 0. docs/spool-node.md has\n"
    "the guarantees per --fsync mode and what happens at each limit.",
    declare, run};
