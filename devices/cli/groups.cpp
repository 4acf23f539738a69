// `zkit groups`: manages a spool's consumer groups over its control socket: list them (lag,
// pending, redelivered, dead-lettered, members), reset one to a start, delete one, or replay its
// dead letters. One request per run; the spool answers with JSON (docs/queues.md).
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "zkit/spool_node.hpp"

namespace {

using namespace zkit;
using namespace zkit::cli;

void declare(po::options_description& flags) {
  // clang-format off
  flags.add_options()
      ("action", po::value<std::string>()->required()->value_name("ACTION"),
       "also the first bare word: list | reset | delete | replay-dead")
      ("control", po::value<std::string>()->required()->value_name("EP"),
       "the spool's --control endpoint (plain EP connects)")
      ("group", po::value<std::string>()->value_name("NAME"),
       "reset, delete, replay-dead: the group")
      ("to", po::value<std::string>()->value_name("START"),
       "reset: earliest | latest | pos=SEGMENT:OFFSET | time=UNIX_NS")
      ("json", "print the spool's JSON answer as it is")
      ("timeout-ms", po::value<long long>()->default_value(2000)->value_name("MS"),
       "give up (exit 1) when the spool does not answer within MS");
  // clang-format on
  add_curve_flags(flags);
}

// One request/reply on a fresh REQ socket within `timeout`. Throws std::runtime_error on timeout.
std::string ask(const Endpoint& ep, const CurveOptions& curve, const std::string& command,
                std::chrono::milliseconds timeout) {
  zmq::context_t context;
  zmq::socket_t req(context, zmq::socket_type::req);
  SocketOptions o;
  o.linger = std::chrono::milliseconds{0};
  o.curve = curve;
  apply(req, o);
  (void)attach(req, ep);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto wait = [&](short events) {
    zmq_pollitem_t item{req.handle(), 0, events, 0};
    for (;;) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        throw std::runtime_error(fmt::format("no answer from the spool at {} within {} ms",
                                             ep.address, timeout.count()));
      }
      zmq::poll(&item, 1, left);
      if (item.revents & events) return;
    }
  };
  wait(ZMQ_POLLOUT);
  (void)req.send(zmq::buffer(command), zmq::send_flags::dontwait);
  wait(ZMQ_POLLIN);
  zmq::message_t reply;
  (void)req.recv(reply, zmq::recv_flags::none);
  return reply.to_string();
}

void print_list(const nlohmann::json& j) {
  const auto& groups = j.at("groups");
  if (groups.empty()) {
    std::cout << "no groups\n";
    return;
  }
  std::cout << fmt::format("{:<24} {:>7} {:>10} {:>8} {:>11} {:>13} {:>12}  {}\n", "GROUP",
                           "MEMBERS", "LAG", "PENDING", "REDELIVERED", "DEAD-LETTERED", "ACKED",
                           "FLOOR");
  for (const auto& g : groups) {
    const auto& s = g.at("state");
    std::cout << fmt::format("{:<24} {:>7} {:>10} {:>8} {:>11} {:>13} {:>12}  {}\n",
                             g.at("name").get<std::string>(), g.at("members").get<std::uint64_t>(),
                             s.value("lag_batches", 0ULL), s.value("pending", 0ULL),
                             s.value("redelivered", 0ULL), s.value("dead_lettered", 0ULL),
                             s.value("acked", 0ULL), s.value("floor", std::string()));
  }
}

int run(const po::variables_map& vm) {
  const std::string action = choice_flag(vm, "action", {"list", "reset", "delete", "replay-dead"});
  const Endpoint ep = endpoint_flag(vm, "control", false);
  const auto timeout = std::chrono::milliseconds(number_flag(vm, "timeout-ms", 1, 3600 * 1000));
  std::string command = "GROUPS";
  if (action != "list") {
    if (!vm.count("group")) throw UsageError("--group is required for " + action);
    const std::string group = vm["group"].as<std::string>();
    if (group.empty() || group.find(' ') != std::string::npos) {
      throw UsageError("--group: '" + group + "' is not a group name");
    }
    if (action == "reset") {
      if (!vm.count("to")) throw UsageError("--to is required for reset");
      if (auto s = parse_group_start(vm["to"].as<std::string>()); !s) {
        throw UsageError("--to: " + s.status().message());
      }
      command = "GROUP-RESET " + group + " " + vm["to"].as<std::string>();
    } else {
      command = (action == "delete" ? "GROUP-DELETE " : "GROUP-REPLAY-DEAD ") + group;
    }
  } else if (vm.count("group") || vm.count("to")) {
    throw UsageError("list takes neither --group nor --to");
  }
  const Curve curve = curve_flags(vm);
  const std::string reply = ask(ep, curve.for_socket(ep.bind), command, timeout);
  nlohmann::json j = nlohmann::json::parse(reply, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    std::cerr << "zkit groups: the device at " << ep.address
              << " did not answer a group command (is it a spool?)\n";
    return kExitFailure;
  }
  if (vm.count("json")) std::cout << reply << "\n";
  if (action == "list") {
    if (!j.contains("groups")) return kExitFailure;
    if (!vm.count("json")) print_list(j);
    return kExitOk;
  }
  if (!j.value("ok", false)) {
    std::cerr << "zkit groups: " << action << " " << j.value("group", std::string()) << ": "
              << j.value("error", std::string("refused")) << "\n";
    return kExitFailure;
  }
  if (!vm.count("json")) {
    std::cout << action << " " << j.value("group", std::string()) << ": done";
    if (j.contains("replayed")) std::cout << ", " << j["replayed"] << " batches replayed";
    std::cout << "\n";
  }
  return kExitOk;
}

}  // namespace

extern const zkit::cli::Subcommand groups_subcommand = {
    "groups",
    "manage a spool's consumer groups: list, reset, delete, replay dead letters",
    "  zkit groups list --control EP\n"
    "  zkit groups reset --control EP --group NAME --to earliest|latest|pos=SEG:OFF|time=NS\n"
    "  zkit groups delete --control EP --group NAME\n"
    "  zkit groups replay-dead --control EP --group NAME\n"
    "The spool must run with --control (and --serve). list shows, per group, its members, lag\n"
    "(batches not yet acked), pending (out, unacked), redelivered, dead-lettered and its floor.\n"
    "reset forgets what the group holds above the new start (members keep their membership);\n"
    "delete removes its state and dead-letter log; replay-dead makes its dead letters\n"
    "deliverable again to that group only. Exit 1 when the spool refuses or does not answer.",
    declare,
    run,
    "action"};
