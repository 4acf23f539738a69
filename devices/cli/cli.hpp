// The `zkit` command framework: subcommands, their flags (Boost.Program_options, also read from
// --config FILE), exit statuses, and helpers every subcommand shares (endpoints, numbers, CURVE,
// signals, logging). Private to the zkit executable.
//
// Adding a subcommand is one file and one registration line:
//   1. devices/cli/<name>.cpp defines, at namespace scope,
//        extern const zkit::cli::Subcommand <name>_subcommand = {"<name>", "summary", "details",
//                                                                declare_flags, run};
//      ('-' in <name> becomes '_' in the variable: spool-inspect -> spool_inspect_subcommand;
//      a sixth member names the flag a bare word maps to, see Subcommand::positional);
//   2. <name> is added to ZKIT_SUBCOMMANDS in devices/cli/CMakeLists.txt (the registration line;
//      its order is the order of `zkit --help`).
//
// Exit statuses: 0 success; 2 usage or configuration error (a UsageError or a Boost.PO error:
// one line on stderr naming the flag or value); 1 runtime failure (anything else thrown, or what
// run() returns).
#pragma once

#include <boost/program_options.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "zkit/keys.hpp"
#include "zkit/options.hpp"
#include "zkit/zap.hpp"

namespace zkit::cli {

namespace po = boost::program_options;

// Exit status 2. The message names the flag or value ("--frontend: endpoint 'x' does not parse").
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

struct Subcommand {
  const char* name;
  const char* summary;  // one line for `zkit --help`
  const char* details;  // printed by `zkit <name> --help` above the flags (endpoint defaults...)
  // Declares the subcommand's own flags; --help, --config and --log-level are added for it.
  void (*declare)(po::options_description& flags);
  // Runs with the parsed flags; returns the exit status. Throw UsageError for a bad value found
  // while running (exit 2); any other exception is a runtime failure (exit 1).
  int (*run)(const po::variables_map& flags);
  // When set, the flag (declared by `declare`) that one bare word on the command line stands
  // for: with "action", `zkit spool-inspect verify` is `zkit spool-inspect --action verify`.
  // Giving both is a usage error, as is a second bare word. Null: no bare words.
  const char* positional = nullptr;
};

// Parses argv, dispatches to the named subcommand and maps exceptions to exit statuses.
int run_main(int argc, char** argv, const std::vector<const Subcommand*>& commands);

// --- flag helpers: each throws UsageError naming the flag --------------------------------------

// The endpoint in flag `name`, parsed with zkit::parse_endpoint; a host to connect to must
// resolve (zkit::resolve_check), a tcp port to bind must be free ("Address already in use").
Endpoint endpoint_flag(const po::variables_map& vm, const std::string& name, bool bind_by_default);
// The number in flag `name`, checked against [min, max].
long long number_flag(const po::variables_map& vm, const std::string& name, long long min,
                      long long max);
double seconds_flag(const po::variables_map& vm, const std::string& name, double min);
// The value of flag `name`, which must be one of `choices`.
std::string choice_flag(const po::variables_map& vm, const std::string& name,
                        const std::vector<std::string>& choices);

// --- CURVE ---------------------------------------------------------------------------------------

// Declares --curve-secret FILE, --curve-server-key KEY|FILE, --curve-allow FILE.
void add_curve_flags(po::options_description& flags);

// What the CURVE flags say. A socket that binds is a CURVE server when this process has a key pair
// (--curve-secret); a socket that connects is a CURVE client when --curve-server-key is given (with
// this process's pair, or a fresh one when there is none).
struct Curve {
  std::optional<CurveKeyPair> own;
  std::string server_key;
  std::optional<std::vector<std::string>> allow;

  CurveOptions for_socket(bool binds) const;
  // A ZapHandler over `allow` when --curve-allow was given (create it before any socket), else
  // null.
  std::unique_ptr<ZapHandler> start_zap(zmq::context_t& context) const;
};
Curve curve_flags(const po::variables_map& vm);

// --- signals -------------------------------------------------------------------------------------

// Blocks SIGINT and SIGTERM in the calling thread and every thread it starts afterwards, so that
// only wait() sees them: construct it before the zmq::context_t. On destruction, discards signals
// still pending (a second Ctrl-C during shutdown) and restores the mask. Subcommands that do not
// make one are ended by the signals as usual.
class SignalWaiter {
 public:
  SignalWaiter();
  ~SignalWaiter();
  SignalWaiter(const SignalWaiter&) = delete;
  SignalWaiter& operator=(const SignalWaiter&) = delete;
  // Waits up to `timeout` for SIGINT or SIGTERM; returns the signal number, or empty on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  // A descriptor (signalfd) readable while SIGINT or SIGTERM is pending, for a zmq::poll item
  // ({nullptr, fd(), ZMQ_POLLIN, 0}); wait() then takes the signal.
  int fd() const noexcept { return fd_; }

 private:
  struct Mask;
  std::unique_ptr<Mask> old_;
  int fd_ = -1;
};

// --- output --------------------------------------------------------------------------------------

// A device's STATS JSON (see docs/devices.md) as a human-readable table (columns as wide as
// their content), or as one short line. Text that is not JSON comes back as it is. Throws
// std::runtime_error for JSON nested deeper than 64 levels (no device writes that).
std::string stats_table(const std::string& json);
std::string stats_line(const std::string& json);

}  // namespace zkit::cli
