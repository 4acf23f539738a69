// throughput_bench: zkit's batched links beside raw libzmq in the same process run. Prints tables
// of msgs/s, MB/s and ratios (throughput) and one-way latency percentiles, and writes them as JSON.
// Runs bounded with no arguments (about 70 s on 2 cores); --quick takes about 10 s.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <boost/program_options.hpp>

#include "bench_util.hpp"
#include "links.hpp"
#include "sections.hpp"

namespace po = boost::program_options;
using namespace zkit::bench;

namespace {

std::vector<std::size_t> parse_sizes(const std::string& text) {
  std::vector<std::size_t> sizes;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::size_t pos = 0;
    unsigned long v = std::stoul(item, &pos);
    if (pos != item.size() || v == 0) throw std::invalid_argument("--sizes: bad size '" + item + "'");
    sizes.push_back(v);
  }
  if (sizes.empty()) throw std::invalid_argument("--sizes: empty list");
  return sizes;
}

bool wants(const std::string& sections, const std::string& name) {
  std::stringstream in(sections);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item == name || item == "all") return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows line by line, also through a pipe
  Config config;
  std::string sizes = "16,64,256,1024";
  std::string sections = "throughput,latency,patterns,devices";
  std::string json_path = ZKIT_BINARY_DIR "/bench/results/throughput.json";
  int duration_ms = 200, warmup_ms = 80, saturation_ms = 500;
  po::options_description flags(
      "throughput_bench: zkit batched links beside raw libzmq in the same run\n"
      "Usage: throughput_bench [options]   (no options: the full default run, about 70 s)\n"
      "Options");
  flags.add_options()
      ("help,h", "this text")
      ("quick", "about 10 s: 1 repeat, 60 ms runs, 300 latency messages")
      ("repeats", po::value(&config.repeats)->default_value(3), "runs per row (median shown)")
      ("duration-ms", po::value(&duration_ms)->default_value(200), "measured time per run")
      ("warmup-ms", po::value(&warmup_ms)->default_value(80), "warm-up before each measurement")
      ("sizes", po::value(&sizes)->default_value(sizes), "message sizes in bytes, comma-separated")
      ("sections", po::value(&sections)->default_value(sections),
       "comma-separated: throughput, latency, patterns, devices, tune, all (tune is off by default)")
      ("tune", "add the BatcherOptions variations (about 40 s more)")
      ("latency-count", po::value(&config.latency_count)->default_value(2000),
       "messages per paced latency run")
      ("latency-rate", po::value(&config.latency_rate)->default_value(1000),
       "msg/s of the paced latency run")
      ("saturation-ms", po::value(&saturation_ms)->default_value(500),
       "length of the saturation latency run")
      ("shared-context", "one zmq context (one I/O thread) for both ends instead of one each")
      ("json", po::value(&json_path)->default_value(json_path), "where to write the figures");
  try {
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, flags), vm);
    po::notify(vm);
    if (vm.count("help")) {
      std::cout << flags << "\n";
      return 0;
    }
    if (vm.count("quick")) {
      if (vm["repeats"].defaulted()) config.repeats = 1;
      if (vm["duration-ms"].defaulted()) duration_ms = 60;
      if (vm["warmup-ms"].defaulted()) warmup_ms = 20;
      if (vm["latency-count"].defaulted()) config.latency_count = 300;
      if (vm["saturation-ms"].defaulted()) saturation_ms = 150;
    }
    if (vm.count("tune")) sections += ",tune";
    if (config.repeats < 1 || duration_ms < 1 || warmup_ms < 0 || config.latency_count < 1 ||
        config.latency_rate < 1 || saturation_ms < 1) {
      throw std::invalid_argument("--repeats, --duration-ms, --latency-count, --latency-rate and "
                                  "--saturation-ms must be positive");
    }
    config.sizes = parse_sizes(sizes);
    config.shared_context = vm.count("shared-context") > 0;
  } catch (const std::exception& e) {
    std::cerr << "throughput_bench: " << e.what() << "\n";
    return 2;
  }
  config.duration = std::chrono::milliseconds(duration_ms);
  config.warmup = std::chrono::milliseconds(warmup_ms);
  config.saturation = std::chrono::milliseconds(saturation_ms);

  Report report;
  report.json["benchmark"] = "throughput";
  report.json["machine"] = machine_description();
  report.json["config"] = {
      {"transport", "tcp://127.0.0.1"},
      {"contexts", config.shared_context ? "shared (1 I/O thread)" : "one per end (1 I/O thread each)"},
      {"duration_ms", duration_ms},
      {"warmup_ms", warmup_ms},
      {"repeats", config.repeats},
      {"latency_count", config.latency_count},
      {"latency_rate", config.latency_rate},
      {"saturation_ms", saturation_ms}};
  const Json& machine = report.json["machine"];
  std::printf("zkit throughput benchmark: raw libzmq beside zkit batched, same process run\n");
  std::printf("machine: %s x %s, %s, libzmq %s, load %s, commit %s\n",
              machine["nproc"].dump().c_str(), machine["cpu"].get<std::string>().c_str(),
              machine["kernel"].get<std::string>().c_str(),
              machine["libzmq"].get<std::string>().c_str(),
              machine["load_average_at_start"].get<std::string>().c_str(),
              machine["git_commit"].get<std::string>().c_str());
  std::printf("runs: %d ms measured after %d ms warm-up, median of %d; contexts: %s\n\n",
              duration_ms, warmup_ms, config.repeats,
              config.shared_context ? "shared" : "one per end");

  bool ok = true;
  Clock::time_point started = Clock::now();
  Json seconds = Json::object();
  auto run = [&](const char* name, bool (*section)(const Config&, Report&)) {
    if (!wants(sections, name)) return;
    Clock::time_point t = Clock::now();
    ok &= section(config, report);
    seconds[name] = std::chrono::duration<double>(Clock::now() - t).count();
  };
  run("throughput", section_throughput);
  run("latency", section_latency);
  run("patterns", section_patterns);
  run("devices", section_devices);
  run("tune", section_tune);
  print_targets(report);
  double total = std::chrono::duration<double>(Clock::now() - started).count();
  seconds["total"] = total;
  report.json["seconds"] = seconds;
  std::printf("\nsections took %s\n", seconds.dump().c_str());

  try {
    std::filesystem::path path(json_path);
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
    std::ofstream out(path);
    out << report.json.dump(2) << "\n";
    if (!out) throw std::runtime_error("cannot write " + json_path);
    std::printf("\nfigures written to %s\n", json_path.c_str());
  } catch (const std::exception& e) {
    std::cerr << "throughput_bench: " << e.what() << "\n";
    return 1;
  }
  if (!ok) {
    std::fprintf(stderr, "throughput_bench: some runs failed (their rows show the error, so does the "
                         "JSON); exit status 1\n");
  }
  return ok ? 0 : 1;
}
