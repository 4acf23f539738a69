// `zkit proxy`: runs one proxy device (streamer, forwarder or queue) until SIGINT, SIGTERM or
// TERMINATE on its control socket, logging statistics as it goes and printing them at the end.
#include "zkit/proxy.hpp"

#include <spdlog/spdlog.h>
#include <string.h>

#include <array>
#include <iostream>

#include "cli.hpp"
#include "metrics_flags.hpp"

namespace {

using namespace zkit;
using namespace zkit::cli;

void declare(po::options_description& flags) {
  // clang-format off
  flags.add_options()
      ("type", po::value<std::string>()->required()->value_name("TYPE"),
       "streamer (PULL->PUSH), forwarder (XSUB->XPUB) or queue (ROUTER->DEALER)")
      ("frontend", po::value<std::string>()->required()->value_name("EP"),
       "where producers/clients/publishers meet the device (plain EP binds)")
      ("backend", po::value<std::string>()->required()->value_name("EP"),
       "where consumers/workers/subscribers meet the device (plain EP binds)")
      ("control", po::value<std::string>()->value_name("EP"),
       "REP control socket: PAUSE, RESUME, TERMINATE, STATISTICS, STATS (plain EP binds)")
      ("capture", po::value<std::string>()->value_name("EP"),
       "copy every frame to this socket (plain EP binds)")
      ("capture-type", po::value<std::string>()->default_value("pub")->value_name("pub|push"),
       "socket type of --capture")
      ("sndhwm", po::value<long long>()->value_name("N"),
       "send high-water mark of frontend and backend, in messages (ZeroMQ default 1000)")
      ("rcvhwm", po::value<long long>()->value_name("N"),
       "receive high-water mark of frontend and backend, in messages (ZeroMQ default 1000)")
      ("max-subscriptions", po::value<long long>()->default_value(10000)->value_name("N"),
       "forwarder: distinct topics held; beyond N, new subscriptions are refused and counted")
      ("linger-ms", po::value<long long>()->default_value(1000)->value_name("MS"),
       "at stop: forward what is queued for up to MS, then let sockets deliver for up to MS")
      ("stats-interval", po::value<double>()->default_value(5.0)->value_name("SEC"),
       "log a statistics line every SEC seconds to stderr (0: never)");
  // clang-format on
  add_curve_flags(flags);
  add_metrics_flags(flags, "proxy");
}

std::string opt_string(const po::variables_map& vm, const char* name) {
  return vm.count(name) ? vm[name].as<std::string>() : std::string();
}

int run(const po::variables_map& vm) {
  SignalWaiter signals;  // before any thread exists

  ProxyOptions o;
  try {
    o.type = parse_proxy_type(vm["type"].as<std::string>());
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--type: ") + e.what());
  }
  const Endpoint fe = endpoint_flag(vm, "frontend", true);
  const Endpoint be = endpoint_flag(vm, "backend", true);
  const bool has_control = vm.count("control") != 0;
  const bool has_capture = vm.count("capture") != 0;
  const Endpoint ce = has_control ? endpoint_flag(vm, "control", true) : Endpoint{};
  const Endpoint pe = has_capture ? endpoint_flag(vm, "capture", true) : Endpoint{};
  o.frontend = vm["frontend"].as<std::string>();
  o.backend = vm["backend"].as<std::string>();
  o.control = opt_string(vm, "control");
  o.capture = opt_string(vm, "capture");
  o.capture_push = choice_flag(vm, "capture-type", {"pub", "push"}) == "push";

  SocketOptions data;
  if (vm.count("sndhwm")) data.sndhwm = static_cast<int>(number_flag(vm, "sndhwm", 0, 1 << 30));
  if (vm.count("rcvhwm")) data.rcvhwm = static_cast<int>(number_flag(vm, "rcvhwm", 0, 1 << 30));
  data.linger = std::chrono::milliseconds(number_flag(vm, "linger-ms", 0, 3600 * 1000));
  o.max_subscriptions =
      static_cast<std::size_t>(number_flag(vm, "max-subscriptions", 1, 100'000'000));
  const double interval = seconds_flag(vm, "stats-interval", 0.0);
  const Curve curve = curve_flags(vm);
  const auto metrics_options = metrics_flag(vm);

  o.frontend_options = data;
  o.frontend_options.curve = curve.for_socket(fe.bind);
  o.backend_options = data;
  o.backend_options.curve = curve.for_socket(be.bind);
  o.control_options.linger = data.linger;
  o.control_options.curve = curve.for_socket(ce.bind);
  o.capture_options.linger = std::chrono::milliseconds{0};
  o.capture_options.curve = curve.for_socket(pe.bind);

  zmq::context_t context;
  const auto zap = curve.start_zap(context);
  Proxy proxy(context, o);
  // Machine-readable: the endpoints as bound (a "*" port resolved), one per line.
  std::cout << "frontend " << proxy.frontend_endpoint() << "\nbackend " << proxy.backend_endpoint()
            << "\n";
  if (has_control) std::cout << "control " << proxy.control_endpoint() << "\n";
  if (has_capture) std::cout << "capture " << proxy.capture_endpoint() << "\n";
  // The HTTP thread reads copies this thread takes from the device (its STATS) when a scrape asks.
  const auto http = start_metrics(
      metrics_options, vm, "proxy", proxy.stats(),
      [](metrics::Exposition& x, const ProxyStats& s) { write_metrics(x, s); },
      [](const ProxyStats& s) { return not_ready(s); });
  if (http) std::cout << "metrics " << http->endpoint() << "\n";
  std::cout << std::flush;
  spdlog::info("proxy {}: frontend {} {}, backend {} {}{}{}", proxy_type_name(o.type),
               fe.bind ? "bound at" : "connected to", proxy.frontend_endpoint(),
               be.bind ? "bound at" : "connected to", proxy.backend_endpoint(),
               has_control ? ", control " + proxy.control_endpoint() : "",
               curve.own ? ", CURVE" : "");

  using Clock = std::chrono::steady_clock;
  const auto period =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(interval));
  auto next_report = Clock::now() + period;
  // One wait for a signal, the device's end (TERMINATE) and the next statistics line: an idle
  // `zkit proxy` does not wake on a timer.
  std::array<zmq_pollitem_t, 3> items{zmq_pollitem_t{nullptr, signals.fd(), ZMQ_POLLIN, 0},
                                      proxy.terminated_item(),
                                      http ? http->asked_item() : zmq_pollitem_t{}};
  while (!proxy.terminated()) {
    const auto timeout =
        interval > 0 ? std::max(std::chrono::milliseconds(0),
                                std::chrono::ceil<std::chrono::milliseconds>(next_report -
                                                                             Clock::now()))
                     : std::chrono::milliseconds(-1);
    zmq::poll(items.data(), http ? 3 : 2, timeout);
    if (http) http->serve([&proxy] { return proxy.stats(); });
    if (items[0].revents != 0) {
      if (auto sig = signals.wait(std::chrono::milliseconds(0))) {
        spdlog::info("{}: stopping (flushing for up to {} ms)", strsignal(*sig),
                     data.linger.count());
        if (http) http->stopping();
        proxy.stop();
        break;
      }
    }
    if (interval > 0 && Clock::now() >= next_report) {
      spdlog::info("{}", stats_line(proxy.stats().to_json()));
      next_report += period;
    }
  }
  if (http) {
    http->stopping();
    http->publish(proxy.stats());  // the final figures, for a last scrape
  }
  const std::string failure = proxy.failure();
  if (failure.empty()) spdlog::info("proxy stopped");
  std::cerr << "final statistics:\n" << stats_table(proxy.stats().to_json());
  if (zap) {
    const ZapStats z = zap->stats();
    std::cerr << "CURVE clients allowed " << z.allowed << ", denied " << z.denied << "\n";
  }
  if (!failure.empty()) {
    spdlog::error("proxy failed: {}", failure);
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

extern const zkit::cli::Subcommand proxy_subcommand = {
    "proxy",
    "run a proxy device: streamer, forwarder or queue, with control, capture and statistics",
    "Frames pass through untouched (zkit batches or plain ZeroMQ messages).\n"
    "  streamer   frontend PULL  -> backend PUSH\n"
    "  forwarder  frontend XSUB  -> backend XPUB   (subscriptions travel upstream)\n"
    "  queue      frontend ROUTER <-> backend DEALER  (requests down, replies up)\n"
    "Endpoints: '@EP' binds, '>EP' connects; a plain EP binds (every socket of the device).\n"
    "The endpoints as bound are printed on stdout ('frontend tcp://127.0.0.1:5555').\n"
    "SIGINT/SIGTERM or TERMINATE on --control: forward what is queued (up to --linger-ms), print\n"
    "the final statistics on stderr, exit 0.",
    declare, run};
