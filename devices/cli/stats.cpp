// `zkit stats`: asks a device's control socket for STATS and prints it as a table or JSON, once
// or every --watch seconds.
#include <fmt/format.h>

#include <iostream>

#include "cli.hpp"
#include "io_util.hpp"

namespace {

using namespace zkit;
using namespace zkit::cli;

void declare(po::options_description& flags) {
  // clang-format off
  flags.add_options()
      ("control", po::value<std::string>()->required()->value_name("EP"),
       "the device's control endpoint (plain EP connects)")
      ("json", "print the raw JSON document instead of a table")
      ("watch", po::value<double>()->default_value(0.0)->value_name("SEC"),
       "ask again every SEC seconds until SIGINT/SIGTERM (0: once)")
      ("count", po::value<long long>()->default_value(0)->value_name("N"),
       "with --watch: stop after N reports (0: no limit)")
      ("timeout-ms", po::value<long long>()->default_value(2000)->value_name("MS"),
       "give up (exit 1) when the device does not answer within MS");
  // clang-format on
  add_curve_flags(flags);
}

// Waits until `socket` shows `events` or a stop signal is pending, at most until `deadline`.
// Returns kReady, kSignal or kTimeout.
enum class Wait { kReady, kSignal, kTimeout };
Wait wait_for(zmq::socket_ref socket, short events, SignalWaiter& signals,
              std::chrono::steady_clock::time_point deadline) {
  zmq_pollitem_t items[] = {{socket.handle(), 0, events, 0},
                            {nullptr, signals.fd(), ZMQ_POLLIN, 0}};
  for (;;) {
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Wait::kTimeout;
    zmq::poll(items, 2, left);
    if (items[1].revents & ZMQ_POLLIN) return Wait::kSignal;
    if (items[0].revents & events) return Wait::kReady;
  }
}

// One STATS round trip on a fresh REQ socket (a REQ that timed out cannot ask again), within
// `timeout` for the whole of it: a REQ with no peer cannot even send, so the send waits too.
// Empty when a signal came first. Throws std::runtime_error when the time runs out. A bound
// --control is announced on stderr ('zkit stats: bound EP') the `first` time.
std::optional<std::string> ask(zmq::context_t& context, const po::variables_map& vm,
                               const Endpoint& ep, const CurveOptions& curve,
                               std::chrono::milliseconds timeout, SignalWaiter& signals,
                               bool first) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  zmq::socket_t req(context, zmq::socket_type::req);
  SocketOptions o;
  o.linger = std::chrono::milliseconds{0};
  o.max_message_bytes = receive_limit(envelope::Limits{});
  o.curve = curve;
  apply(req, o);
  const std::string where = io::attach_endpoint(vm, "control", [&] { return attach(req, ep); });
  if (ep.bind && first) std::cerr << "zkit stats: bound " << where << std::endl;
  Wait w = wait_for(req, ZMQ_POLLOUT, signals, deadline);
  if (w == Wait::kTimeout) {
    throw std::runtime_error(fmt::format("no device {} {} within {} ms",
                                         ep.bind ? "connected to" : "reachable at", ep.address,
                                         timeout.count()));
  }
  if (w == Wait::kSignal) return std::nullopt;
  if (!req.send(zmq::str_buffer("STATS"), zmq::send_flags::dontwait)) {
    throw std::runtime_error("the request to " + ep.address + " could not be sent");
  }
  w = wait_for(req, ZMQ_POLLIN, signals, deadline);
  if (w == Wait::kTimeout) {
    throw std::runtime_error(
        fmt::format("no answer from {} within {} ms", ep.address, timeout.count()));
  }
  if (w == Wait::kSignal) return std::nullopt;
  zmq::message_t reply;
  (void)req.recv(reply, zmq::recv_flags::none);
  return reply.to_string();
}

int run(const po::variables_map& vm) {
  SignalWaiter signals;
  const Endpoint ep = endpoint_flag(vm, "control", false);
  const double watch = seconds_flag(vm, "watch", 0.0);
  const long long count = number_flag(vm, "count", 0, 1LL << 40);
  const auto timeout = std::chrono::milliseconds(number_flag(vm, "timeout-ms", 1, 3600 * 1000));
  const bool json = vm.count("json") != 0;
  const Curve curve = curve_flags(vm);
  const CurveOptions curve_options = curve.for_socket(ep.bind);

  zmq::context_t context;
  const auto zap = curve.start_zap(context);
  for (long long n = 1;; ++n) {
    const auto reply = ask(context, vm, ep, curve_options, timeout, signals, n == 1);
    if (!reply) {
      // Watching ends on a signal by design; a single question it interrupts went unanswered.
      if (watch > 0) break;
      std::cerr << "zkit stats: interrupted by a signal before " << ep.address << " answered\n";
      return kExitFailure;
    }
    std::cout << (json ? *reply + "\n" : stats_table(*reply));
    if (watch > 0 && !json) std::cout << "\n";
    std::cout << std::flush;
    if (watch <= 0 || (count > 0 && n >= count)) break;
    if (signals.wait(std::chrono::milliseconds(static_cast<long long>(watch * 1000)))) break;
  }
  return kExitOk;
}

}  // namespace

extern const zkit::cli::Subcommand stats_subcommand = {
    "stats", "print a device's statistics (its control socket's STATS) as a table or JSON",
    "The device must run with --control. A plain --control EP connects; '@EP' binds (the device\n"
    "then connects to it) and is printed on stderr as 'zkit stats: bound EP'.\n"
    "Exit 1 when the device does not answer within --timeout-ms (the whole round trip, sending\n"
    "included), or when SIGINT/SIGTERM comes first; with --watch a signal ends it with exit 0.",
    declare, run};
