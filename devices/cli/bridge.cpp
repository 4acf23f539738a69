// `zkit bridge`: runs a bridge to or from RabbitMQ until SIGINT, SIGTERM or TERMINATE, logging
// statistics as it goes and printing them at the end (docs/bridge.md).
#include <string.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "metrics_flags.hpp"
#include "zkit/bridge.hpp"

namespace {

using namespace zkit;
using namespace zkit::cli;
using Clock = std::chrono::steady_clock;

void declare(po::options_description& flags) {
  // clang-format off
  flags.add_options()
      ("to-amqp", po::value<std::string>()->value_name("URL"),
       "publish into RabbitMQ: amqp://[user@]host[:port][/vhost] (no password: --credentials)")
      ("from-amqp", po::value<std::string>()->value_name("URL"),
       "consume from RabbitMQ (same URL form)")
      ("credentials", po::value<std::string>()->value_name("FILE"),
       "file whose first line is 'user:password' (required)")
      ("vhost", po::value<std::string>()->value_name("V"), "the vhost (default: the URL's, or /)")
      ("listen", po::value<std::string>()->value_name("EP"),
       "to-amqp: where reliable senders connect (plain EP binds)")
      ("exchange", po::value<std::string>()->default_value("")->value_name("X"),
       "to-amqp: the exchange ('' is the default exchange)")
      ("routing-key", po::value<std::string>()->value_name("K"), "to-amqp: the routing key")
      ("declare-queue", po::value<std::string>()->value_name("Q"),
       "to-amqp: declare durable queue Q (bound to --exchange with --routing-key unless the "
       "exchange is '')")
      ("queue", po::value<std::string>()->value_name("Q"), "from-amqp: the queue to consume")
      ("queue-type", po::value<std::string>()->value_name("TYPE"),
       "quorum | classic: of --declare-queue (default quorum); from-amqp: declare --queue "
       "durable of TYPE (without it the queue must exist)")
      ("to", po::value<std::string>()->value_name("EP"),
       "from-amqp: the downstream reliable receiver, e.g. a zkit spool (plain EP connects)")
      ("mode", po::value<std::string>()->default_value("message")->value_name("MODE"),
       "message: one AMQP message per zkit message | batch: one per zkit batch (content type "
       "application/vnd.zkit.batch.v1+msgpack)")
      ("prefetch", po::value<long long>()->default_value(2000)->value_name("N"),
       "from-amqp: unacknowledged deliveries RabbitMQ may send")
      ("journal", po::value<std::string>()->value_name("DIR"),
       "from-amqp, message mode: journal batches here before sending, so that RabbitMQ's "
       "redeliveries after a crash are not forwarded twice")
      ("redelivery-window-ms", po::value<long long>()->default_value(30000)->value_name("MS"),
       "from-amqp: after a (re)connection, match redeliveries against what the bridge holds for "
       "up to MS")
      ("on-bad-message", po::value<std::string>()->default_value("reject")->value_name("POLICY"),
       "from-amqp: reject (dead-letter, counted) | stop (leave it queued, exit 1)")
      ("max-record-bytes", po::value<long long>()->default_value(16 << 20)->value_name("N"),
       "largest zkit message (from-amqp: larger AMQP bodies are bad messages)")
      ("batch-bytes", po::value<long long>()->default_value(256 * 1024)->value_name("N"),
       "from-amqp, message mode: seal a batch at this many bytes")
      ("batch-records", po::value<long long>()->default_value(4096)->value_name("N"),
       "from-amqp, message mode: seal a batch at this many messages")
      ("window", po::value<long long>()->default_value(64)->value_name("N"),
       "batches unacknowledged per sender upstream (to-amqp) or in flight downstream (from-amqp)")
      ("heartbeat", po::value<long long>()->default_value(10)->value_name("SEC"),
       "AMQP heartbeat (0: off)")
      ("connect-timeout-ms", po::value<long long>()->default_value(30000)->value_name("MS"),
       "the first connection must succeed within MS (exit 1); later losses are retried for ever")
      ("control", po::value<std::string>()->value_name("EP"),
       "REP control socket: STATS (JSON), TERMINATE (plain EP binds)")
      ("linger-ms", po::value<long long>()->default_value(2000)->value_name("MS"),
       "at stop: wait up to MS for what is in flight to be acknowledged on the far side")
      ("stats-interval", po::value<double>()->default_value(5.0)->value_name("SEC"),
       "log a statistics line every SEC seconds to stderr (0: never)");
  // clang-format on
  add_curve_flags(flags);
  add_metrics_flags(flags, "bridge");
}

std::string opt(const po::variables_map& vm, const char* name) {
  return vm.count(name) ? vm[name].as<std::string>() : std::string();
}

std::string summary(const BridgeStats& s) {
  if (s.direction == "to-amqp") {
    return fmt::format(
        "to-amqp {}: received {} batches ({} msgs), published {} (again {}), confirmed {}, "
        "acked upstream {} batches ({} msgs), pending {}, returned {}, nacked {}, "
        "connection losses {}",
        s.state, s.batches_received, s.messages_received, s.published, s.republished,
        s.confirmed, s.batches_acked_upstream, s.messages_acked_upstream, s.pending_batches,
        s.returned, s.nacked, s.connection_losses);
  }
  return fmt::format(
      "from-amqp {}: deliveries {} (redelivered {}, suppressed {}), sent {} batches ({} msgs), "
      "acked downstream {} msgs, acked to RabbitMQ {} msgs, unacked {}, rejected {} (too large {}, "
      "not a batch {}), connection losses {}",
      s.state, s.deliveries, s.redelivered, s.suppressed, s.batches_sent, s.messages_sent,
      s.messages_acked_downstream, s.messages_acked_amqp, s.unacked, s.rejected, s.too_large,
      s.not_batch, s.connection_losses);
}

AmqpSettings amqp_settings(const po::variables_map& vm, const std::string& flag) {
  auto parsed = parse_amqp_url(vm[flag].as<std::string>());
  if (!parsed) throw UsageError("--" + flag + ": " + parsed.status().message());
  AmqpSettings a = *parsed;
  const std::string url_user = a.user;
  if (!vm.count("credentials")) {
    throw UsageError("--credentials FILE is required (passwords never go on the command line)");
  }
  if (const Status st = read_credentials(vm["credentials"].as<std::string>(), a); !st) {
    throw UsageError("--credentials: " + st.message());
  }
  if (url_user != "guest" && url_user != a.user) {
    throw UsageError(fmt::format("--{}: user '{}' differs from the credentials file's '{}'", flag,
                                 url_user, a.user));
  }
  if (vm.count("vhost")) a.vhost = vm["vhost"].as<std::string>();
  a.heartbeat = std::chrono::seconds(number_flag(vm, "heartbeat", 0, 3600));
  a.connect_timeout = std::chrono::milliseconds(number_flag(vm, "connect-timeout-ms", 0, 86400000));
  return a;
}

BridgeMode mode_flag(const po::variables_map& vm) {
  return choice_flag(vm, "mode", {"message", "batch"}) == "batch" ? BridgeMode::kBatch
                                                                 : BridgeMode::kMessage;
}

void refuse(const po::variables_map& vm, const std::vector<const char*>& names,
            const char* direction) {
  for (const char* n : names) {
    if (vm.count(n) && !vm[n].defaulted()) {
      throw UsageError(fmt::format("--{} does not apply to --{}", n, direction));
    }
  }
}

std::unique_ptr<Bridge> make_bridge(zmq::context_t& context, const po::variables_map& vm,
                                    const Curve& curve) {
  const bool to = vm.count("to-amqp") != 0;
  const bool from = vm.count("from-amqp") != 0;
  if (to == from) throw UsageError("give exactly one of --to-amqp URL and --from-amqp URL");
  const auto window = static_cast<std::size_t>(number_flag(vm, "window", 1, 1 << 16));
  envelope::Limits limits;
  limits.max_record_bytes =
      static_cast<std::size_t>(number_flag(vm, "max-record-bytes", 1, 1LL << 30));
  const std::string control = opt(vm, "control");
  const Endpoint ce = control.empty() ? Endpoint{} : endpoint_flag(vm, "control", true);
  SocketOptions control_socket;
  control_socket.linger = std::chrono::milliseconds{0};
  control_socket.curve = curve.for_socket(ce.bind);
  if (to) {
    refuse(vm, {"queue", "to", "prefetch", "journal", "on-bad-message", "batch-bytes",
                "batch-records", "redelivery-window-ms"}, "to-amqp");
    ToAmqpOptions o;
    o.amqp = amqp_settings(vm, "to-amqp");
    if (!vm.count("listen")) throw UsageError("--to-amqp needs --listen EP");
    const Endpoint le = endpoint_flag(vm, "listen", true);
    o.listen = vm["listen"].as<std::string>();
    o.listen_socket.curve = curve.for_socket(le.bind);
    o.exchange = vm["exchange"].as<std::string>();
    o.routing_key = opt(vm, "routing-key");
    if (!vm.count("routing-key")) throw UsageError("--to-amqp needs --routing-key K");
    o.declare_queue = opt(vm, "declare-queue");
    if (vm.count("queue-type")) {
      if (o.declare_queue.empty()) throw UsageError("--queue-type needs --declare-queue Q");
      o.queue_type = choice_flag(vm, "queue-type", {"quorum", "classic"});
    }
    o.mode = mode_flag(vm);
    o.limits = limits;
    o.window = window;
    o.control = control;
    o.control_socket = control_socket;
    return Bridge::to_amqp(context, std::move(o));
  }
  refuse(vm, {"listen", "routing-key", "declare-queue"}, "from-amqp");
  if (vm["exchange"].as<std::string>() != "") {
    throw UsageError("--exchange does not apply to --from-amqp (bind the queue in RabbitMQ)");
  }
  FromAmqpOptions o;
  o.amqp = amqp_settings(vm, "from-amqp");
  if (!vm.count("queue")) throw UsageError("--from-amqp needs --queue Q");
  o.queue = vm["queue"].as<std::string>();
  if (vm.count("queue-type")) o.queue_type = choice_flag(vm, "queue-type", {"quorum", "classic"});
  if (!vm.count("to")) throw UsageError("--from-amqp needs --to EP");
  const Endpoint te = endpoint_flag(vm, "to", false);
  o.to = vm["to"].as<std::string>();
  o.to_socket.curve = curve.for_socket(te.bind);
  o.mode = mode_flag(vm);
  o.prefetch = static_cast<std::uint16_t>(number_flag(vm, "prefetch", 1, 65535));
  o.batch.max_bytes = static_cast<std::size_t>(number_flag(vm, "batch-bytes", 1024, 64 << 20));
  o.batch.max_records = static_cast<std::size_t>(number_flag(vm, "batch-records", 1, 1 << 20));
  o.redelivery_window =
      std::chrono::milliseconds(number_flag(vm, "redelivery-window-ms", 0, 3600 * 1000));
  o.limits = limits;
  o.window = window;
  o.on_bad = choice_flag(vm, "on-bad-message", {"reject", "stop"}) == "stop"
                 ? BadMessagePolicy::kStop
                 : BadMessagePolicy::kReject;
  if (vm.count("journal")) {
    if (o.mode == BridgeMode::kBatch) {
      throw UsageError("--journal is for --mode message (batches carry their own ids)");
    }
    o.journal_dir = vm["journal"].as<std::string>();
  }
  o.control = control;
  o.control_socket = control_socket;
  try {
    return Bridge::from_amqp(context, std::move(o));
  } catch (const std::runtime_error& e) {
    if (dynamic_cast<const zmq::error_t*>(&e)) throw;
    throw UsageError(std::string("--journal: ") + e.what());
  }
}

int run(const po::variables_map& vm) {
  SignalWaiter signals;  // before any thread exists
  const double interval = seconds_flag(vm, "stats-interval", 0.0);
  const auto linger = std::chrono::milliseconds(number_flag(vm, "linger-ms", 0, 3600 * 1000));
  const Curve curve = curve_flags(vm);
  const auto metrics_options = metrics_flag(vm);
  zmq::context_t context;
  const auto zap = curve.start_zap(context);
  std::unique_ptr<Bridge> bridge;
  try {
    bridge = make_bridge(context, vm, curve);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  const bool to = vm.count("to-amqp") != 0;
  std::cout << (to ? "listen " : "to ") << bridge->endpoint() << "\n";
  if (!bridge->control_endpoint().empty()) {
    std::cout << "control " << bridge->control_endpoint() << "\n";
  }
  // The HTTP thread reads copies of the bridge's stats this loop takes when a scrape asks.
  const auto http = start_metrics(
      metrics_options, vm, "bridge", bridge->stats(),
      [](metrics::Exposition& x, const BridgeStats& s) { write_metrics(x, s); },
      [](const BridgeStats& s) { return not_ready(s); });
  if (http) std::cout << "metrics " << http->endpoint() << "\n";
  std::cout << std::flush;

  const auto period =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(interval));
  auto next_report = Clock::now() + period;
  // With --metrics a scrape's ask shares the signals' item (poll_once takes one extra item).
  const WakeSet wake({signals.fd(), http ? http->asked_item().fd : -1});
  zmq_pollitem_t signal_item{nullptr, wake.fd(), ZMQ_POLLIN, 0};
  int sig = 0;
  for (;;) {
    const auto wait =
        interval <= 0 ? std::chrono::milliseconds(-1)
                      : std::max(std::chrono::milliseconds(0),
                                 std::chrono::ceil<std::chrono::milliseconds>(next_report -
                                                                             Clock::now()));
    if (!bridge->poll_once(wait, &signal_item)) break;
    if (http) http->serve([&bridge] { return bridge->stats(); });
    if (signal_item.revents != 0) {
      if (auto s = signals.wait(std::chrono::milliseconds(0))) {
        sig = *s;
        break;
      }
    }
    if (interval > 0 && Clock::now() >= next_report) {
      spdlog::info("{}", summary(bridge->stats()));
      next_report += period;
    }
  }
  spdlog::info("{}: stopping (waiting up to {} ms for what is in flight)",
               sig ? strsignal(sig) : "TERMINATE", linger.count());
  if (http) http->stopping();
  bridge->shutdown(linger);
  if (http) http->publish(bridge->stats());  // the final figures, for a last scrape
  const BridgeStats s = bridge->stats();
  std::cerr << "final statistics: " << summary(s) << "\n"
            << nlohmann::json::parse(s.to_json()).dump(2) << "\n";
  return kExitOk;
}

}  // namespace

extern const zkit::cli::Subcommand bridge_subcommand = {
    "bridge",
    "bridge to or from RabbitMQ: reliable link <-> AMQP with confirms and manual acks",
    "--to-amqp URL --listen EP --routing-key K: batches from `zkit send --reliable` peers are\n"
    "published (persistent, mandatory, publisher confirms) and acknowledged upstream only when\n"
    "RabbitMQ confirmed every message of them.\n"
    "--from-amqp URL --queue Q --to EP: deliveries (manual acks, --prefetch) are batched and sent\n"
    "over the reliable link to --to (a `zkit spool` or `zkit recv --reliable`); RabbitMQ is\n"
    "acked only after the downstream acknowledged.\n"
    "Credentials come from --credentials FILE only. A lost connection or broker restart is\n"
    "retried with backoff. Exit 1 on refused credentials, a missing queue or exchange, or no\n"
    "first connection within --connect-timeout-ms. docs/bridge.md has the details.",
    declare, run};
