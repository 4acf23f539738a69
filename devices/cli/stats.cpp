// `zkit stats`: asks a device's control socket for STATS and prints it as a table or JSON, once
// or every --watch seconds (redrawn in place on a terminal).
#include <fmt/format.h>
#include <unistd.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "io_util.hpp"

namespace {

using namespace zkit;
using namespace zkit::cli;
using Json = nlohmann::json;

// ---- tables, one per device kind ------------------------------------------------------------
// A device kind gets a table function here (the proxy's is cli.cpp's stats_table, which `zkit
// proxy` prints at exit too); a kind without one gets the generic table: every figure by its path.

using Rows = std::vector<std::vector<std::string>>;

// Columns as wide as their widest cell; the first left-aligned, the others right-aligned.
std::string columns(const Rows& rows) {
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += c == 0 ? fmt::format("{:<{}}", row[c], width[c])
                     : fmt::format("  {:>{}}", row[c], width[c]);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string cell(const Json& v) {
  if (v.is_null()) return "";
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return fmt::format("{:.3f}", v.get<double>());
  return v.dump();
}

// A member of an object, or null (a field a device of another version does not have).
const Json& at(const Json& j, std::initializer_list<const char*> path) {
  static const Json kNull;
  const Json* p = &j;
  for (const char* k : path) {
    if (!p->is_object() || !p->contains(k)) return kNull;
    p = &(*p)[k];
  }
  return *p;
}

std::string human_bytes(const Json& v) {
  if (!v.is_number()) return cell(v);
  double b = v.get<double>();
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", b) : fmt::format("{:.1f} {}", b, units[u]);
}

// One row per group, a column per figure the groups report (whatever the spool's version has).
void groups_table(const Json& groups, std::string& out) {
  std::vector<std::pair<std::string, const Json*>> list;
  if (groups.is_object()) {
    for (auto it = groups.begin(); it != groups.end(); ++it) list.emplace_back(it.key(), &*it);
  } else if (groups.is_array()) {
    for (const Json& g : groups) list.emplace_back(cell(at(g, {"name"})), &g);
  }
  if (list.empty()) return;
  std::vector<std::string> keys;
  for (const auto& [name, g] : list) {
    if (!g->is_object()) continue;
    for (auto it = g->begin(); it != g->end(); ++it) {
      if (it.key() != "name" && !it->is_structured() &&
          std::find(keys.begin(), keys.end(), it.key()) == keys.end()) {
        keys.push_back(it.key());
      }
    }
  }
  Rows rows{{"group"}};
  for (const auto& k : keys) rows[0].push_back(k);
  for (const auto& [name, g] : list) {
    rows.push_back({name});
    for (const auto& k : keys) rows.back().push_back(cell(at(*g, {k.c_str()})));
  }
  out += columns(rows);
}

std::string spool_table(const Json& j) {
  std::string out =
      fmt::format("zkit spool ({}), up {:.1f} s\n", cell(at(j, {"state"})),
                  at(j, {"uptime_s"}).is_number() ? j["uptime_s"].get<double>() : 0.0);
  Rows rows{{"", "batches", "messages", "bytes"}};
  auto row = [&](const char* label, const Json& o, bool bytes = false) {
    rows.push_back({label, cell(at(o, {"batches"})), cell(at(o, {"messages"})),
                    bytes ? cell(at(o, {"bytes"})) : ""});
  };
  row("received (listen)", at(j, {"accepted"}));
  row("received (pull)", at(j, {"pull"}));
  row("stored", at(j, {"stored"}));
  row("forwarded", at(j, {"forwarded"}));
  row("acknowledged", at(j, {"acknowledged"}));
  row("backlog", at(j, {"backlog"}), true);
  row("dropped (drop-oldest)", at(j, {"dropped"}));
  out += columns(rows);
  const Json& backlog = at(j, {"backlog"});
  out += fmt::format(
      "backlog oldest {:.1f} s; duplicates {}, acknowledged upstream {}, in flight {}, parked {}\n",
      at(backlog, {"oldest_age_ms"}).is_number() ? backlog["oldest_age_ms"].get<double>() / 1000
                                                 : 0.0,
      cell(at(j, {"duplicates"})), cell(at(j, {"acknowledged_upstream"})),
      cell(at(j, {"downstream", "in_flight"})), cell(at(j, {"upstream", "parked"})));
  out += fmt::format(
      "fsync {} (avg {} us, p99 {} us, max {} us); batch age p50 {} ms, p99 {} ms, "
      "max {} ms\n",
      cell(at(j, {"fsync", "count"})), cell(at(j, {"fsync", "avg_us"})),
      cell(at(j, {"fsync", "p99_us"})), cell(at(j, {"fsync", "max_us"})),
      cell(at(j, {"batch_age_ms", "p50"})), cell(at(j, {"batch_age_ms", "p99"})),
      cell(at(j, {"batch_age_ms", "max"})));
  const Json& disk = at(j, {"disk"});
  out += fmt::format(
      "disk {} in {} segments, {} free, full {}, failing {}, write errors {}, "
      "io errors {}, corrupt skipped {}\n",
      human_bytes(at(disk, {"bytes"})), cell(at(disk, {"segments"})),
      human_bytes(at(disk, {"free_bytes"})), cell(at(disk, {"full"})), cell(at(disk, {"failing"})),
      cell(at(disk, {"write_errors"})), cell(at(disk, {"io_errors"})),
      cell(at(j, {"corrupt_skipped"})));
  out += fmt::format("upstream {} peers, credit paused {}; downstream connected {}\n",
                     cell(at(j, {"upstream", "peers"})), cell(at(j, {"upstream", "credit_paused"})),
                     cell(at(j, {"downstream", "connected"})));
  out += fmt::format(
      "refused: full {}, bad batches {}, link decode errors {}, pull malformed {}, "
      "unforwardable {}; loop errors {}, control commands {}\n",
      cell(at(j, {"rejected_full"})), cell(at(j, {"bad_batches"})),
      cell(at(j, {"link_decode_errors"})), cell(at(j, {"pull", "malformed"})),
      cell(at(j, {"unforwardable"})), cell(at(j, {"loop_errors"})),
      cell(at(j, {"control_commands"})));
  groups_table(at(j, {"groups"}), out);
  return out;
}

// A bridge's STATS (docs/bridge.md): the AMQP connection, then its direction's figures.
std::string bridge_table(const Json& j) {
  const std::string direction = cell(at(j, {"direction"}));
  std::string out =
      fmt::format("zkit bridge {} ({}), up {:.1f} s\n", direction, cell(at(j, {"state"})),
                  at(j, {"uptime_s"}).is_number() ? j["uptime_s"].get<double>() : 0.0);
  out += fmt::format("amqp: connects {}, connection losses {}, connect failures {}\n",
                     cell(at(j, {"amqp", "connects"})), cell(at(j, {"amqp", "connection_losses"})),
                     cell(at(j, {"amqp", "connect_failures"})));
  Rows rows{{"", "batches", "messages"}};
  auto row = [&](const char* label, const char* batches, const char* messages) {
    rows.push_back({label, batches ? cell(at(j, {batches})) : "",
                    messages ? cell(at(j, {messages})) : ""});
  };
  if (direction == "to-amqp") {
    row("received", "batches_received", "messages_received");
    row("published", nullptr, "published");
    row("republished", nullptr, "republished");
    row("confirmed", nullptr, "confirmed");
    row("nacked", nullptr, "nacked");
    row("returned", nullptr, "returned");
    row("acked upstream", "batches_acked_upstream", "messages_acked_upstream");
    row("pending", "pending_batches", nullptr);
    out += columns(rows);
  } else {
    row("deliveries", nullptr, "deliveries");
    row("redelivered", nullptr, "redelivered");
    row("suppressed", nullptr, "suppressed");
    row("rejected", nullptr, "rejected");
    row("sent", "batches_sent", "messages_sent");
    row("resent from journal", "resent_from_journal", nullptr);
    row("acked downstream", "batches_acked_downstream", "messages_acked_downstream");
    row("acked to RabbitMQ", nullptr, "messages_acked_amqp");
    row("unacked", nullptr, "unacked");
    out += columns(rows);
    out += fmt::format(
        "downstream connected {}; rejected: too large {}, not a batch {}; amqp acks {}, "
        "journal errors {}\n",
        cell(at(j, {"downstream_connected"})), cell(at(j, {"too_large"})),
        cell(at(j, {"not_batch"})), cell(at(j, {"amqp_acks"})), cell(at(j, {"journal_errors"})));
  }
  out += fmt::format("control commands {}\n", cell(at(j, {"control_commands"})));
  return out;
}

void flatten(const Json& j, const std::string& path, Rows& rows) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      flatten(*it, path.empty() ? it.key() : path + "." + it.key(), rows);
    }
  } else {
    rows.push_back({path, cell(j)});
  }
}

// Every figure by its path ("backlog.messages  12"), for a device kind without a table of its own.
std::string generic_table(const Json& j) {
  Rows rows;
  flatten(j, "", rows);
  return fmt::format("zkit {}\n", cell(at(j, {"device"}))) + columns(rows);
}

// A reply nested deeper than this is refused (cli.cpp's stats_table applies the same bound).
constexpr int kMaxDepth = 64;

std::string device_table(const std::string& reply) {
  const Json::parser_callback_t depth = [](int d, Json::parse_event_t, Json&) {
    if (d > kMaxDepth) {
      throw std::runtime_error(
          fmt::format("the device's reply nests deeper than {} levels", kMaxDepth));
    }
    return true;
  };
  const Json j = Json::parse(reply, depth, false);
  if (j.is_discarded() || !j.is_object()) return reply + "\n";
  const std::string device = cell(at(j, {"device"}));
  if (device == "proxy") return stats_table(reply);
  if (device == "spool") return spool_table(j);
  if (device == "bridge") return bridge_table(j);
  return generic_table(j);
}

void declare(po::options_description& flags) {
  // clang-format off
  flags.add_options()
      ("control", po::value<std::string>()->required()->value_name("EP"),
       "the device's control endpoint (plain EP connects)")
      ("json", "print the raw JSON document instead of a table")
      ("watch", po::value<double>()->default_value(0.0)->value_name("SEC"),
       "ask again every SEC seconds until SIGINT/SIGTERM (0: once); on a terminal the table is "
       "redrawn in place")
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
  const bool redraw = watch > 0 && !json && ::isatty(STDOUT_FILENO) == 1;
  if (redraw) std::cout << "\033[2J";
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
    if (json) {
      std::cout << *reply << "\n";
    } else if (redraw) {
      // Home, the table, then clear what an earlier, longer table left below it.
      std::cout << "\033[H" << device_table(*reply) << "\033[J";
    } else {
      std::cout << device_table(*reply);
      if (watch > 0) std::cout << "\n";
    }
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
