// The zkit command framework: dispatch, flag parsing with config files, exit statuses, and the
// helpers shared by subcommands (see cli.hpp).
#include "cli.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace zkit::cli {
namespace {

void print_usage(std::ostream& out, const std::vector<const Subcommand*>& commands) {
  out << "usage: zkit <subcommand> [flags]      (zkit <subcommand> --help for its flags)\n"
         "       zkit --version                 (version and git description)\n\n"
         "Brokerless batched messaging on ZeroMQ: devices and tools.\n\nsubcommands:\n";
  for (const Subcommand* c : commands) out << fmt::format("  {:<14} {}\n", c->name, c->summary);
  out << "\nEndpoints: '@tcp://host:port' binds, '>tcp://host:port' connects; a plain endpoint\n"
         "uses the side's default, given in each subcommand's --help.\n"
         "Exit status: 0 success, 1 runtime failure, 2 usage or configuration error.\n";
}

void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_logger_mt("zkit");
  logger->set_pattern("[%H:%M:%S.%e] %l: %v");
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(std::move(logger));
}

int run_command(const Subcommand& cmd, int argc, char** argv) {
  po::options_description flags(fmt::format("zkit {} flags", cmd.name));
  // clang-format off
  flags.add_options()
      ("help,h", "print this help and exit")
      ("config", po::value<std::string>()->value_name("FILE"),
       "read flags from FILE: one 'flag = value' per line, '#' starts a comment; flags given on "
       "the command line win")
      ("log-level", po::value<std::string>()->default_value("info")->value_name("LEVEL"),
       "trace, debug, info, warn, error or off (logs go to stderr)");
  // clang-format on
  cmd.declare(flags);

  po::positional_options_description bare;
  if (cmd.positional) bare.add(cmd.positional, 1);

  po::variables_map vm;
  // argv[0] is the subcommand's name here: Boost skips it as the program name.
  po::store(po::command_line_parser(argc, argv).options(flags).positional(bare).run(), vm);
  if (vm.count("help")) {
    std::cout << "usage: zkit " << cmd.name;
    if (cmd.positional) std::cout << " [<" << cmd.positional << ">]";
    std::cout << " [flags]\n\n" << cmd.summary << "\n";
    if (cmd.positional) {
      std::cout << "\n<" << cmd.positional << "> is the same as --" << cmd.positional << ".\n";
    }
    if (cmd.details && *cmd.details) std::cout << "\n" << cmd.details << "\n";
    std::cout << "\n" << flags << "\n";
    return kExitOk;
  }
  if (vm.count("config")) {
    const auto path = vm["config"].as<std::string>();
    std::ifstream in(path);
    if (!in) throw UsageError(fmt::format("--config: cannot open '{}'", path));
    po::store(po::parse_config_file(in, flags), vm);
  }
  po::notify(vm);
  setup_logging(choice_flag(vm, "log-level", {"trace", "debug", "info", "warn", "error", "off"}));
  return cmd.run(vm);
}

// True when a tcp:// endpoint to bind names a port that is taken (a listener is on it), probed
// with a plain socket as ZeroMQ binds (SO_REUSEADDR) and closed at once. Devices bind several
// sockets inside their constructors, and libzmq's EADDRINUSE would not say which flag it was.
// Only IPv4 literals and '*' with a fixed port are probed; anything else is left to ZeroMQ.
bool address_in_use(const std::string& address) {
  if (!address.starts_with("tcp://")) return false;
  const std::string hp = address.substr(6);
  const auto colon = hp.rfind(':');
  if (colon == std::string::npos || hp.find(';') != std::string::npos) return false;
  const std::string host = hp.substr(0, colon);
  const std::string port = hp.substr(colon + 1);
  if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos) return false;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(std::stoul(port)));
  if (sa.sin_port == 0) return false;
  if (host == "*") {
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
  } else if (inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) {
    return false;
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const bool in_use =
      ::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 && errno == EADDRINUSE;
  ::close(fd);
  return in_use;
}

}  // namespace

int run_main(int argc, char** argv, const std::vector<const Subcommand*>& commands) {
  if (argc < 2) {
    print_usage(std::cerr, commands);
    return kExitUsage;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage(std::cout, commands);
    return kExitOk;
  }
  const Subcommand* cmd = nullptr;
  for (const Subcommand* c : commands) {
    if (name == c->name) cmd = c;
  }
  if (cmd == nullptr) {
    std::cerr << "zkit: unknown subcommand '" << name << "' (zkit --help lists them)\n";
    return kExitUsage;
  }
  try {
    return run_command(*cmd, argc - 1, argv + 1);
  } catch (const UsageError& e) {
    std::cerr << "zkit " << name << ": " << e.what() << "\n";
    return kExitUsage;
  } catch (const po::error& e) {
    std::cerr << "zkit " << name << ": " << e.what() << "\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "zkit " << name << ": error: " << e.what() << "\n";
    return kExitFailure;
  }
}

Endpoint endpoint_flag(const po::variables_map& vm, const std::string& name, bool bind_by_default) {
  const auto& spec = vm[name].as<std::string>();
  Endpoint ep;
  try {
    ep = parse_endpoint(spec, bind_by_default);
  } catch (const std::invalid_argument& e) {
    throw UsageError("--" + name + ": " + e.what());
  }
  // ZeroMQ would retry an unresolvable host for ever in the background: refuse it now instead.
  if (const std::string why = resolve_check(ep); !why.empty()) {
    throw UsageError("--" + name + ": " + why);
  }
  if (ep.bind && address_in_use(ep.address)) {
    throw UsageError("--" + name + ": '" + spec + "': Address already in use");
  }
  return ep;
}

long long number_flag(const po::variables_map& vm, const std::string& name, long long min,
                      long long max) {
  const long long v = vm[name].as<long long>();
  if (v < min || v > max) {
    throw UsageError(fmt::format("--{}: {} is out of range [{}, {}]", name, v, min, max));
  }
  return v;
}

double seconds_flag(const po::variables_map& vm, const std::string& name, double min) {
  const double v = vm[name].as<double>();
  if (!(v >= min) || v > 1e6) {
    throw UsageError(fmt::format("--{}: {} is out of range [{}, 1e6] seconds", name, v, min));
  }
  return v;
}

std::string choice_flag(const po::variables_map& vm, const std::string& name,
                        const std::vector<std::string>& choices) {
  const auto& v = vm[name].as<std::string>();
  for (const auto& c : choices) {
    if (v == c) return v;
  }
  throw UsageError(fmt::format("--{}: '{}' is not one of {}", name, v, fmt::join(choices, ", ")));
}

void add_curve_flags(po::options_description& flags) {
  // clang-format off
  flags.add_options()
      ("curve-secret", po::value<std::string>()->value_name("FILE"),
       "this process's CURVE key pair (a `zkit keygen` file); sockets that bind become CURVE "
       "servers")
      ("curve-server-key", po::value<std::string>()->value_name("KEY|FILE"),
       "the server's public key (40 Z85 characters, or a key file); sockets that connect become "
       "CURVE clients (with --curve-secret's pair, or a fresh one)")
      ("curve-allow", po::value<std::string>()->value_name("FILE"),
       "allow-list of client public keys, one per line: only these clients get through "
       "(needs --curve-secret)");
  // clang-format on
}

Curve curve_flags(const po::variables_map& vm) {
  Curve c;
  if (vm.count("curve-secret")) {
    auto pair = read_key_file(vm["curve-secret"].as<std::string>(), true);
    if (!pair) throw UsageError("--curve-secret: " + pair.status().message());
    c.own = *pair;
  }
  if (vm.count("curve-server-key")) {
    const auto& v = vm["curve-server-key"].as<std::string>();
    auto key = read_public_key(v);
    if (!key) {
      throw UsageError("--curve-server-key: '" + v +
                       "' is neither a 40-character Z85 key nor a key file (" +
                       key.status().message() + ")");
    }
    c.server_key = *key;
  }
  if (vm.count("curve-allow")) {
    if (!c.own) throw UsageError("--curve-allow needs --curve-secret (this server's key pair)");
    auto keys = read_allow_list(vm["curve-allow"].as<std::string>());
    if (!keys) throw UsageError("--curve-allow: " + keys.status().message());
    c.allow = std::move(*keys);
  }
  return c;
}

CurveOptions Curve::for_socket(bool binds) const {
  CurveOptions o;
  if (binds && own) {
    o.server = true;
    o.public_key = own->public_key;
    o.secret_key = own->secret_key;
    if (allow) o.zap_domain = "zkit";
  } else if (!binds && !server_key.empty()) {
    const CurveKeyPair pair = own ? *own : generate_curve_keypair();
    o.public_key = pair.public_key;
    o.secret_key = pair.secret_key;
    o.server_key = server_key;
  }
  return o;
}

std::unique_ptr<ZapHandler> Curve::start_zap(zmq::context_t& context) const {
  if (!allow) return nullptr;
  return std::make_unique<ZapHandler>(context, *allow);
}

struct SignalWaiter::Mask {
  sigset_t old;
};

namespace {
sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}
}  // namespace

SignalWaiter::SignalWaiter() : old_(std::make_unique<Mask>()) {
  const sigset_t set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, &old_->old);
  fd_ = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd_ < 0) throw std::runtime_error(std::string("signalfd: ") + std::strerror(errno));
}

SignalWaiter::~SignalWaiter() {
  // A second Ctrl-C during the shutdown is consumed here rather than killing the process on the
  // way out (it would turn a clean exit 0 into death by signal).
  while (wait(std::chrono::milliseconds{0})) {
  }
  ::close(fd_);
  pthread_sigmask(SIG_SETMASK, &old_->old, nullptr);
}

std::optional<int> SignalWaiter::wait(std::chrono::milliseconds timeout) {
  const sigset_t set = stop_signals();
  if (timeout.count() < 0) timeout = std::chrono::milliseconds{0};
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  ts.tv_nsec = static_cast<long>((timeout.count() % 1000) * 1000000);
  const int sig = sigtimedwait(&set, nullptr, &ts);
  if (sig > 0) return sig;
  return std::nullopt;  // EAGAIN (timeout) or EINTR
}

namespace {

// A reply nested deeper than this is refused: no device writes more than a few levels, and the
// recursive dump() would overflow the stack on a hostile one (100,000 levels).
constexpr int kMaxJsonDepth = 64;

// Parses a device's reply; a discarded value when it is not JSON. Throws std::runtime_error when
// it nests deeper than kMaxJsonDepth (the parser itself does not recurse; the callback stops it
// before a deep value is built).
nlohmann::json parse_reply(const std::string& json) {
  const nlohmann::json::parser_callback_t depth_check = [](int depth, nlohmann::json::parse_event_t,
                                                           nlohmann::json&) {
    if (depth > kMaxJsonDepth) {
      throw std::runtime_error(
          fmt::format("the device's reply nests deeper than {} levels", kMaxJsonDepth));
    }
    return true;
  };
  return nlohmann::json::parse(json, depth_check, false);
}

// A table whose every column is as wide as its widest cell (numbers of any size stay apart).
std::string format_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c) {
      // The first column (labels) is left-aligned, the numbers right-aligned two spaces apart.
      out += c == 0 ? fmt::format("{:<{}}", row[c], width[c])
                    : fmt::format("  {:>{}}", row[c], width[c]);
    }
    out += "\n";
  }
  return out;
}

}  // namespace

std::string stats_table(const std::string& json) {
  const auto j = parse_reply(json);
  if (j.is_discarded() || !j.is_object()) return json + "\n";
  if (j.value("device", "") != "proxy") return j.dump(2) + "\n";
  std::string out = fmt::format("zkit proxy ({}), {}, up {:.1f} s\n", j.value("type", "?"),
                                j.value("state", "?"), j.value("uptime_s", 0.0));
  const char* columns[] = {"frames", "bytes", "messages", "batches", "records", "raw", "dropped"};
  std::vector<std::vector<std::string>> rows;
  rows.emplace_back(1, "");
  for (const char* c : columns) rows.back().emplace_back(c);
  for (const char* side : {"frontend", "backend"}) {
    for (const char* dir : {"recv", "sent"}) {
      rows.push_back({fmt::format("{} {}", side, dir)});
      for (const char* c : columns) {
        rows.back().push_back(fmt::format("{}", j[side][dir].value(c, 0ULL)));
      }
    }
  }
  out += format_table(rows);
  out +=
      fmt::format("capture {} frames ({} dropped), subscriptions +{} -{}, control commands {}\n",
                  j["capture"].value("frames", 0ULL), j["capture"].value("dropped", 0ULL),
                  j["subscriptions"].value("subscribe", 0ULL),
                  j["subscriptions"].value("unsubscribe", 0ULL), j.value("control_commands", 0ULL));
  return out;
}

std::string stats_line(const std::string& json) {
  const auto j = parse_reply(json);
  if (j.is_discarded() || j.value("device", "") != "proxy") return json;
  const auto& in = j["frontend"]["recv"];
  const auto& out = j["backend"]["sent"];
  return fmt::format("{} {}: in {} msgs ({} records, {} B), out {} msgs, replies {}, drops {}",
                     j.value("type", "?"), j.value("state", "?"), in.value("messages", 0ULL),
                     in.value("records", 0ULL), in.value("bytes", 0ULL),
                     out.value("messages", 0ULL), j["frontend"]["sent"].value("messages", 0ULL),
                     j.value("drops", 0ULL));
}

}  // namespace zkit::cli
