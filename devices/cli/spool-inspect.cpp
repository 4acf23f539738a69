// `zkit spool-inspect`: offline, read-only look at a spool directory: verify (segments, backlog per
// producer, every corrupt record; exit 1 if any) or dump (every record). Thin over spool/inspect.
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "zkit/spool/inspect.hpp"

namespace {

using namespace zkit;
using namespace zkit::cli;

void declare(po::options_description& flags) {
  flags.add_options()
      ("action", po::value<std::string>()->required()->value_name("verify|dump"),
       "also the first bare word. verify: report segments, cursor, backlog per producer, corrupt records (exit 1 if any); "
       "dump: print every record")
      ("dir", po::value<std::string>()->required()->value_name("DIR"), "the spool directory")
      ("format", po::value<std::string>()->default_value("text")->value_name("FMT"),
       "verify: text|json; dump: payloads as text|hex|json (JSON Lines) or none (headers only)")
      ("producer", po::value<unsigned long long>()->value_name("ID"),
       "dump: only this producer's batches")
      ("max-payload-bytes", po::value<long long>()->default_value(256)->value_name("N"),
       "dump: show at most N bytes of each message (0: all)");
}

std::string verify_json(const spool::VerifyReport& r) {
  nlohmann::json j;
  j["clean"] = r.clean();
  j["batches"] = r.batches;
  j["messages"] = r.messages;
  j["cursor"] = r.cursor ? nlohmann::json(r.cursor->to_string()) : nlohmann::json(nullptr);
  j["segments"] = nlohmann::json::array();
  for (const auto& s : r.segments) {
    j["segments"].push_back({{"file", s.file}, {"bytes", s.bytes}, {"batches", s.batches},
                             {"messages", s.messages}, {"tail_bytes", s.tail_bytes}});
  }
  j["backlog"] = nlohmann::json::array();
  for (const auto& b : r.backlog) {
    j["backlog"].push_back({{"producer_id", b.producer_id}, {"batches", b.batches},
                            {"messages", b.messages}, {"bytes", b.bytes},
                            {"first_seq", b.first_seq}, {"last_seq", b.last_seq}});
  }
  j["corrupt"] = nlohmann::json::array();
  for (const auto& c : r.corrupt) {
    j["corrupt"].push_back(
        {{"file", c.file}, {"offset", c.offset}, {"bytes", c.bytes}, {"reason", c.reason}});
  }
  j["foreign"] = r.foreign;
  return j.dump(2);
}

int run(const po::variables_map& vm) {
  const std::string action = choice_flag(vm, "action", {"verify", "dump"});
  const std::string dir = vm["dir"].as<std::string>();
  if (action == "verify") {
    const std::string format = choice_flag(vm, "format", {"text", "json"});
    auto report = spool::verify(dir);
    if (!report) throw UsageError("--dir: " + report.status().to_string());
    if (format == "json") {
      std::cout << verify_json(report.value()) << "\n";
    } else {
      spool::print(report.value(), std::cout);
    }
    return report.value().clean() ? kExitOk : kExitFailure;
  }
  const std::string format = choice_flag(vm, "format", {"text", "hex", "json", "none"});
  spool::DumpOptions o;
  o.payloads = format == "text"  ? spool::DumpOptions::Payloads::kText
               : format == "hex" ? spool::DumpOptions::Payloads::kHex
               : format == "json" ? spool::DumpOptions::Payloads::kJson
                                  : spool::DumpOptions::Payloads::kNone;
  o.max_payload_bytes =
      static_cast<std::size_t>(number_flag(vm, "max-payload-bytes", 0, 1LL << 40));
  if (vm.count("producer")) o.producer_id = vm["producer"].as<unsigned long long>();
  const Status s = spool::dump(dir, std::cout, o);
  if (!s) throw UsageError("--dir: " + s.to_string());
  return kExitOk;
}

}  // namespace

extern const zkit::cli::Subcommand spool_inspect_subcommand = {
    "spool-inspect",
    "read a spool directory offline: verify it or dump its records (never changes it)",
    "  zkit spool-inspect verify --dir DIR [--format text|json]\n"
    "  zkit spool-inspect dump --dir DIR [--format text|hex|json|none]\n"
    "verify exits 1 when any record is corrupt (each is listed with file, offset and reason).\n"
    "A --dir that is not a spool (no segment file, CURSOR, PRODUCERS or LOCK) exits 2.\n"
    "Nothing in DIR changes: a torn tail is reported, not cut; the cursor is not written.",
    declare, run, "action"};
