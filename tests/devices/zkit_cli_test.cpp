// The `zkit` executable as operators run it: proxies between plain pyzmq peers, signals, the
// control socket and `zkit stats`, CURVE with keys from `zkit keygen`, and exit status 2 with a
// message naming the bad flag for every subcommand.
#include <algorithm>
#include <catch2/catch.hpp>
#include <memory>
#include <sstream>
#include <thread>

#include "process.hpp"
#include "test_util.hpp"
#include "zkit/keys.hpp"

using namespace zkit;
using namespace zkit::test;
using namespace std::chrono_literals;

namespace {

const std::string kZkit = ZKIT_BIN;
const std::string kPeers = std::string(ZKIT_SOURCE_DIR) + "/tests/devices/peers.py";
constexpr auto kLong = std::chrono::milliseconds(30000);

int spawned = 0;

std::unique_ptr<Process> zkit_process(const TempDir& dir, std::vector<std::string> args) {
  args.insert(args.begin(), kZkit);
  const std::string tag = "zkit" + std::to_string(++spawned);
  return std::make_unique<Process>(std::move(args), dir.file(tag + ".out"), dir.file(tag + ".err"));
}

std::unique_ptr<Process> peer(const TempDir& dir, std::vector<std::string> args) {
  args.insert(args.begin(), {ZKIT_PYTHON, kPeers});
  const std::string tag = "peer" + std::to_string(++spawned);
  return std::make_unique<Process>(std::move(args), dir.file(tag + ".out"), dir.file(tag + ".err"));
}

void require_ok(Process& p, const char* what) {
  const auto st = p.wait(kLong);
  INFO(what << " stdout: " << p.out() << " stderr: " << p.err());
  REQUIRE(st);
  REQUIRE(*st == 0);
}

// Starts `zkit proxy` on ipc endpoints in `dir` and waits until it printed its endpoints.
std::unique_ptr<Process> start_proxy(const TempDir& dir, const std::string& type,
                                     std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"proxy",         "--type",         type,
                                   "--frontend",    dir.ipc("front"), "--backend",
                                   dir.ipc("back"), "--control",      dir.ipc("control")};
  args.insert(args.end(), extra.begin(), extra.end());
  auto p = zkit_process(dir, args);
  INFO("zkit proxy stderr: " << p->err());
  REQUIRE(p->wait_line("control ", 10000ms));
  return p;
}

// SIGTERM, then exit status 0 and the final statistics on stderr.
std::string stop_proxy(Process& p) {
  p.signal(SIGTERM);
  const auto st = p.wait(kLong);
  INFO("stderr: " << p.err());
  REQUIRE(st);
  CHECK(*st == 0);
  CHECK_THAT(p.err(), Catch::Contains("final statistics"));
  return p.err();
}

}  // namespace

TEST_CASE("zkit proxy streamer carries two pyzmq PUSH producers to a PULL, in order per producer",
          "[devices][cli]") {
  TempDir dir;
  auto proxy = start_proxy(dir, "streamer");
  auto pull = peer(dir, {"pull", ">" + dir.ipc("back"), "--count", "2000", "--producers", "a,b"});
  auto a = peer(dir, {"push", ">" + dir.ipc("front"), "--count", "1000", "--prefix", "a"});
  auto b = peer(dir, {"push", ">" + dir.ipc("front"), "--count", "1000", "--prefix", "b"});
  require_ok(*a, "producer a");
  require_ok(*b, "producer b");
  require_ok(*pull, "consumer");
  zmq::context_t ctx;
  const auto j = stats_json(ctx, dir.ipc("control"));
  CHECK(j["frontend"]["recv"]["messages"] == 2000);
  CHECK(j["backend"]["sent"]["messages"] == 2000);
  CHECK(j["backend"]["sent"]["raw"] == 2000);
  const std::string err = stop_proxy(*proxy);
  CHECK_THAT(err, Catch::Contains("2000"));
}

TEST_CASE("zkit proxy forwarder passes the subscription upstream and only subscribed topics down",
          "[devices][cli]") {
  TempDir dir;
  auto proxy = start_proxy(dir, "forwarder");
  auto sub = peer(dir, {"sub", ">" + dir.ipc("back"), "--topic", "A", "--count", "500"});
  auto pub = peer(
      dir, {"pub", ">" + dir.ipc("front"), "--topic", "A", "--other-topic", "B", "--count", "500"});
  require_ok(*pub, "publisher");
  require_ok(*sub, "subscriber");
  zmq::context_t ctx;
  const auto j = stats_json(ctx, dir.ipc("control"));
  CHECK(j["subscriptions"]["subscribe"] == 1);
  CHECK(j["backend"]["sent"]["messages"] == 500);  // B was filtered at the publisher
  stop_proxy(*proxy);
}

TEST_CASE("zkit proxy queue answers two pyzmq REQ clients from a REP worker", "[devices][cli]") {
  TempDir dir;
  auto proxy = start_proxy(dir, "queue");
  auto rep = peer(dir, {"rep", ">" + dir.ipc("back"), "--count", "400"});
  auto c1 = peer(dir, {"req", ">" + dir.ipc("front"), "--count", "200", "--prefix", "x"});
  auto c2 = peer(dir, {"req", ">" + dir.ipc("front"), "--count", "200", "--prefix", "y"});
  require_ok(*c1, "client 1");
  require_ok(*c2, "client 2");
  require_ok(*rep, "worker");
  zmq::context_t ctx;
  const auto v = statistics(ctx, dir.ipc("control"));
  REQUIRE(v.size() == 8);
  CHECK(v[0] == 400 * 3);  // frontend received [identity][][request]
  CHECK(v[6] == 400 * 3);  // backend sent them
  CHECK(v[4] == 400 * 3);  // backend received the replies
  stop_proxy(*proxy);
}

TEST_CASE("zkit stats prints a running device's STATS as JSON, as a table, and with --watch",
          "[devices][cli]") {
  TempDir dir;
  auto proxy = start_proxy(dir, "streamer");
  auto json = run({kZkit, "stats", "--control", dir.ipc("control"), "--json"}, dir);
  INFO(json.err);
  REQUIRE(json.status == 0);
  const auto j = nlohmann::json::parse(json.out);
  CHECK(j["type"] == "streamer");
  CHECK(j["state"] == "active");

  auto table = run({kZkit, "stats", "--control", dir.ipc("control")}, dir);
  REQUIRE(table.status == 0);
  CHECK_THAT(table.out, Catch::Contains("zkit proxy (streamer)"));
  CHECK_THAT(table.out, Catch::Contains("frontend recv"));

  auto watch =
      run({kZkit, "stats", "--control", dir.ipc("control"), "--watch", "0.1", "--count", "3"}, dir);
  REQUIRE(watch.status == 0);
  std::size_t reports = 0;
  for (auto pos = watch.out.find("zkit proxy ("); pos != std::string::npos;
       pos = watch.out.find("zkit proxy (", pos + 1)) {
    ++reports;
  }
  CHECK(reports == 3);
  stop_proxy(*proxy);

  // Nobody answers any more: a runtime failure.
  auto gone = run({kZkit, "stats", "--control", dir.ipc("control"), "--timeout-ms", "200"}, dir);
  CHECK(gone.status == 1);
  CHECK_THAT(gone.err, Catch::Contains("no answer"));
}

TEST_CASE("TERMINATE on the control socket ends zkit proxy with exit 0 and final statistics",
          "[devices][cli]") {
  TempDir dir;
  auto proxy = start_proxy(dir, "queue");
  zmq::context_t ctx;
  auto reply = control(ctx, dir.ipc("control"), "TERMINATE");
  CHECK(reply.size() == 1);
  const auto st = proxy->wait(kLong);
  REQUIRE(st);
  CHECK(*st == 0);
  CHECK_THAT(proxy->err(), Catch::Contains("final statistics"));
}

TEST_CASE("SIGINT stops zkit proxy with exit 0 and final statistics, periodic stats before",
          "[devices][cli]") {
  TempDir dir;
  auto proxy = start_proxy(dir, "streamer", {"--stats-interval", "0.1"});
  for (int i = 0; i < 300 && proxy->err().find("streamer active: in") == std::string::npos; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK_THAT(proxy->err(), Catch::Contains("streamer active: in 0 msgs"));
  proxy->signal(SIGINT);
  proxy->signal(SIGINT);  // an impatient second Ctrl-C still ends in a clean exit
  const auto st = proxy->wait(kLong);
  REQUIRE(st);
  CHECK(*st == 0);
  CHECK_THAT(proxy->err(), Catch::Contains("final statistics"));
}

TEST_CASE("zkit proxy reads its flags from --config, command-line flags winning",
          "[devices][cli]") {
  TempDir dir;
  write_file(dir.file("proxy.conf"),
             "# a streamer\ntype = streamer\nfrontend = " + dir.ipc("front") +
                 "\nbackend = " + dir.ipc("back") + "\ncontrol = " + dir.ipc("nowhere") + "\n");
  auto proxy = zkit_process(
      dir, {"proxy", "--config", dir.file("proxy.conf"), "--control", dir.ipc("control")});
  REQUIRE(proxy->wait_line("control ", 10000ms) == dir.ipc("control").substr(0));
  stop_proxy(*proxy);

  write_file(dir.file("bad.conf"),
             "type = streamer\nfrontend = nonsense\nbackend = " + dir.ipc("back") + "\n");
  auto bad = run({kZkit, "proxy", "--config", dir.file("bad.conf")}, dir);
  CHECK(bad.status == 2);
  CHECK_THAT(bad.err, Catch::Contains("--frontend"));
}

TEST_CASE("zkit keygen writes a key pair the --curve flags read", "[devices][cli][curve]") {
  TempDir dir;
  auto r = run({kZkit, "keygen", "--out", dir.file("k")}, dir);
  REQUIRE(r.status == 0);
  auto pair = read_key_file(dir.file("k"), true);
  REQUIRE(pair.is_ok());
  CHECK(r.out == pair->public_key + "\n");
  auto pub = read_public_key(dir.file("k.pub"));
  REQUIRE(pub.is_ok());
  CHECK(*pub == pair->public_key);
  CHECK((std::filesystem::status(dir.file("k")).permissions() &
         std::filesystem::perms::others_read) == std::filesystem::perms::none);

  auto again = run({kZkit, "keygen", "--out", dir.file("k")}, dir);
  CHECK(again.status == 2);
  CHECK_THAT(again.err, Catch::Contains("--out"));

  auto printed = run({kZkit, "keygen"}, dir);
  REQUIRE(printed.status == 0);
  write_file(dir.file("printed"), printed.out);
  CHECK(read_key_file(dir.file("printed"), true).is_ok());
}

TEST_CASE("zkit proxy with CURVE and an allow-list serves a listed pyzmq client only",
          "[devices][cli][curve]") {
  TempDir dir;
  for (const char* name : {"server", "good", "stranger"}) {
    REQUIRE(run({kZkit, "keygen", "--out", dir.file(name)}, dir).status == 0);
  }
  const auto server = read_key_file(dir.file("server"), true).value();
  const auto good = read_key_file(dir.file("good"), true).value();
  const auto stranger = read_key_file(dir.file("stranger"), true).value();
  write_file(dir.file("allow"), good.public_key + " the good producer and the consumer\n");

  auto proxy = start_proxy(
      dir, "streamer", {"--curve-secret", dir.file("server"), "--curve-allow", dir.file("allow")});
  auto curve_args = [&](const CurveKeyPair& k) {
    // '=' form: a Z85 key may start with '-', which argparse would take for a flag.
    return std::vector<std::string>{"--curve-server-key=" + server.public_key,
                                    "--curve-public=" + k.public_key,
                                    "--curve-secret=" + k.secret_key};
  };
  auto with = [](std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  // The consumer is a CURVE client of the backend too (every bound socket is a CURVE server).
  auto pull = peer(dir, with({"pull", ">" + dir.ipc("back"), "--count", "200", "--producers", "g"},
                             curve_args(good)));
  auto bad = peer(dir, with({"push", ">" + dir.ipc("front"), "--count", "200", "--prefix", "s"},
                            curve_args(stranger)));
  auto plain = peer(dir, {"push", ">" + dir.ipc("front"), "--count", "200", "--prefix", "p"});
  // The stranger is turned away (bounded wait for the handler's log line) before the good
  // producer starts, so the device is seen serving it afterwards.
  for (int i = 0; i < 1000 && proxy->err().find("ZAP: denied") == std::string::npos; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK_THAT(proxy->err(), Catch::Contains("ZAP: denied"));
  auto ok = peer(dir, with({"push", ">" + dir.ipc("front"), "--count", "200", "--prefix", "g"},
                           curve_args(good)));
  require_ok(*ok, "good producer");
  require_ok(*pull, "consumer");

  // zkit stats as a CURVE client of the control socket, with the listed key.
  auto stats = run({kZkit, "stats", "--json", "--control", dir.ipc("control"), "--curve-server-key",
                    dir.file("server.pub"), "--curve-secret", dir.file("good")},
                   dir);
  INFO(stats.err);
  REQUIRE(stats.status == 0);
  const auto j = nlohmann::json::parse(stats.out);
  CHECK(j["frontend"]["recv"]["messages"] == 200);  // nothing from the stranger or the plain peer
  bad->signal(SIGKILL);
  plain->signal(SIGKILL);
  CHECK_THAT(stop_proxy(*proxy), Catch::Contains("CURVE clients allowed"));
}

TEST_CASE("Every subcommand exits 2 naming a bad endpoint, number, flag or missing file",
          "[devices][cli][usage]") {
  TempDir dir;
  const std::string ep = dir.ipc("x");
  const std::vector<std::string> proxy = {"proxy", "--type",    "streamer",  "--frontend",
                                          ep,      "--backend", dir.ipc("y")};
  auto with = [](std::vector<std::string> a, std::vector<std::string> b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"nosuch"}, "nosuch"},
      {{"proxy", "--type", "broker", "--frontend", ep, "--backend", ep}, "--type"},
      {{"proxy", "--type", "queue", "--frontend", "localhost:5555", "--backend", ep}, "--frontend"},
      {{"proxy", "--type", "queue", "--frontend", ep, "--backend", "tcpx://a"}, "--backend"},
      {{"proxy", "--type", "queue", "--frontend", ep}, "--backend"},
      {with(proxy, {"--control", "nowhere"}), "--control"},
      {with(proxy, {"--capture", "ipc://"}), "--capture"},
      {with(proxy, {"--sndhwm", "many"}), "--sndhwm"},
      {with(proxy, {"--rcvhwm", "-1"}), "--rcvhwm"},
      {with(proxy, {"--linger-ms", "1.5"}), "--linger-ms"},
      {with(proxy, {"--stats-interval", "-2"}), "--stats-interval"},
      {with(proxy, {"--capture-type", "pair"}), "--capture-type"},
      {with(proxy, {"--frobnicate"}), "--frobnicate"},
      {with(proxy, {"--config", dir.file("missing.conf")}), "--config"},
      {with(proxy, {"--curve-secret", dir.file("missing.key")}), "--curve-secret"},
      {with(proxy, {"--curve-server-key", dir.file("missing.key")}), "--curve-server-key"},
      {with(proxy, {"--curve-allow", dir.file("missing.txt")}), "--curve-allow"},
      {with(proxy, {"--log-level", "loud"}), "--log-level"},
      {{"stats", "--control", "127.0.0.1:5555"}, "--control"},
      {{"stats", "--control", ep, "--watch", "often"}, "--watch"},
      {{"stats", "--control", ep, "--count", "-3"}, "--count"},
      {{"stats", "--control", ep, "--timeout-ms", "0"}, "--timeout-ms"},
      {{"stats", "--control", ep, "--verbose"}, "--verbose"},
      {{"stats", "--control", ep, "--config", dir.file("missing.conf")}, "--config"},
      {{"stats", "--control", ep, "--curve-server-key", dir.file("nokey")}, "--curve-server-key"},
      {{"keygen", "--out", dir.file("no/such/dir/k")}, "--out"},
      {{"keygen", "--bits", "256"}, "--bits"},
      {{"keygen", "--config", dir.file("missing.conf")}, "--config"},
  };
  for (const auto& [args, name] : cases) {
    std::vector<std::string> argv = {kZkit};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run(argv, dir);
    std::ostringstream cmd;
    for (const auto& a : args) cmd << a << ' ';
    INFO("zkit " << cmd.str() << "-> " << r.status << ": " << r.err);
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains(name));
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  }
}

TEST_CASE("zkit and every subcommand answer --help with exit 0", "[devices][cli][usage]") {
  TempDir dir;
  auto top = run({kZkit, "--help"}, dir);
  CHECK(top.status == 0);
  for (const char* sub : {"proxy", "stats", "keygen"}) {
    CHECK_THAT(top.out, Catch::Contains(sub));
    auto r = run({kZkit, sub, "--help"}, dir);
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains("--config"));
  }
  CHECK(run({kZkit}, dir).status == 2);
}

TEST_CASE("zkit proxy streamer counts the records of batches built by python msgpack exactly",
          "[devices][cli]") {
  TempDir dir;
  auto proxy = start_proxy(dir, "streamer");
  auto pull = peer(dir, {"pull", ">" + dir.ipc("back"), "--count", "2000", "--producers", "a,b",
                         "--batch", "1"});
  auto a = peer(
      dir, {"push", ">" + dir.ipc("front"), "--count", "1000", "--prefix", "a", "--batch", "10"});
  auto b = peer(
      dir, {"push", ">" + dir.ipc("front"), "--count", "1000", "--prefix", "b", "--batch", "7"});
  require_ok(*a, "producer a");
  require_ok(*b, "producer b");
  require_ok(*pull, "consumer");
  zmq::context_t ctx;
  const auto j = stats_json(ctx, dir.ipc("control"));
  CHECK(j["frontend"]["recv"]["batches"] == 100 + 143);
  CHECK(j["frontend"]["recv"]["records"] == 2000);
  CHECK(j["backend"]["sent"]["records"] == 2000);
  CHECK(j["frontend"]["recv"]["raw"] == 0);
  stop_proxy(*proxy);
}

namespace {

// A fake device: a REP socket on `endpoint` that answers every request with `reply`, on its own
// thread, until the object is destroyed.
class FakeDevice {
 public:
  FakeDevice(const std::string& endpoint, std::string reply)
      : rep_(ctx_, zmq::socket_type::rep), reply_(std::move(reply)) {
    rep_.set(zmq::sockopt::linger, 0);
    rep_.bind(endpoint);
    thread_ = std::thread([this] {
      try {
        for (;;) {
          zmq::message_t request;
          if (!rep_.recv(request)) continue;
          rep_.send(zmq::buffer(reply_), zmq::send_flags::none);
        }
      } catch (const zmq::error_t&) {  // ETERM: the test is over
      }
    });
  }
  ~FakeDevice() {
    ctx_.shutdown();
    thread_.join();
  }

 private:
  zmq::context_t ctx_;
  zmq::socket_t rep_;
  std::string reply_;
  std::thread thread_;
};

// A proxy's STATS document with every counter set to `n`.
std::string proxy_stats(std::uint64_t n) {
  nlohmann::json flow = {{"frames", n},  {"bytes", n}, {"messages", n}, {"batches", n},
                         {"records", n}, {"raw", n},   {"dropped", n}};
  nlohmann::json side = {{"recv", flow}, {"sent", flow}};
  nlohmann::json j = {{"device", "proxy"}, {"type", "streamer"},   {"state", "active"},
                      {"uptime_s", 1.5},   {"frontend", side},     {"backend", side},
                      {"drops", 0},        {"control_commands", 1}};
  j["capture"] = {{"frames", 0}, {"dropped", 0}};
  j["subscriptions"] = {{"subscribe", 0}, {"unsubscribe", 0}};
  return j.dump();
}

}  // namespace

TEST_CASE("zkit stats refuses a reply nested 100,000 levels deep instead of overflowing the stack",
          "[devices][cli]") {
  TempDir dir;
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "{\"a\":";
  deep += "1";
  deep += std::string(100000, '}');
  FakeDevice device(dir.ipc("control"), deep);
  auto r = run({kZkit, "stats", "--control", dir.ipc("control")}, dir);
  INFO(r.err);
  CHECK(r.status == 1);  // was 139: SIGSEGV in the recursive dump
  CHECK_THAT(r.err, Catch::Contains("nests deeper than 64 levels"));
  // --json prints the reply as it came, without parsing it.
  auto raw = run({kZkit, "stats", "--control", dir.ipc("control"), "--json"}, dir);
  CHECK(raw.status == 0);
  CHECK(raw.out == deep + "\n");
}

TEST_CASE("zkit stats sizes the table's columns to the largest numbers", "[devices][cli]") {
  TempDir dir;
  FakeDevice device(dir.ipc("control"), proxy_stats(18446744073709551615ULL));
  auto r = run({kZkit, "stats", "--control", dir.ipc("control")}, dir);
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  std::istringstream lines(r.out);
  std::string line;
  int rows = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("frontend ", 0) != 0 && line.rfind("backend ", 0) != 0) continue;
    ++rows;
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string x; words >> x;) w.push_back(x);
    REQUIRE(w.size() == 9);  // "frontend recv" and 7 numbers, none run together
    for (std::size_t i = 2; i < w.size(); ++i) CHECK(w[i] == "18446744073709551615");
  }
  CHECK(rows == 4);
}

TEST_CASE("zkit stats on a bound --control with no device honours --timeout-ms and SIGINT",
          "[devices][cli]") {
  TempDir dir;
  // A bound REQ with no peer cannot send: the send must wait no longer than --timeout-ms.
  auto r = run({kZkit, "stats", "--control", "@" + dir.ipc("lonely"), "--timeout-ms", "300"}, dir);
  INFO(r.err);
  CHECK(r.status == 1);  // was: blocked for ever in send (run() gives -1 after 20 s)
  CHECK_THAT(r.err, Catch::Contains("no device connected to"));

  for (int sig : {SIGINT, SIGTERM}) {
    auto p =
        zkit_process(dir, {"stats", "--control", "@tcp://127.0.0.1:*", "--timeout-ms", "3600000"});
    REQUIRE(!p->bound_endpoint().empty());
    p->signal(sig);
    const auto st = p->wait(kLong);
    INFO(p->err());
    REQUIRE(st);
    CHECK(*st == 1);
    CHECK_THAT(p->err(), Catch::Contains("interrupted by a signal"));
  }
}

TEST_CASE("Endpoints that cannot work exit 2 at parse time naming the flag and the endpoint",
          "[devices][cli][usage]") {
  TempDir dir;
  zmq::context_t ctx;
  zmq::socket_t taken(ctx, zmq::socket_type::pull);
  taken.set(zmq::sockopt::linger, 0);
  taken.bind("tcp://127.0.0.1:*");
  const std::string busy = taken.get(zmq::sockopt::last_endpoint);
  const std::string ep = dir.ipc("x");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"stats", "--control", "tcp://127.0.0.1:99999"},
       "--control: endpoint 'tcp://127.0.0.1:99999' has port '99999'"},
      {{"stats", "--control", "tcp://999.1.1.1:5555"},
       "--control: endpoint 'tcp://999.1.1.1:5555' has host '999.1.1.1', which is not an IPv4"},
      {{"stats", "--control", "tcp://no-such-host.invalid:5555"},
       "--control: host 'no-such-host.invalid' in 'tcp://no-such-host.invalid:5555' does not "
       "resolve"},
      {{"stats", "--control", "@" + busy}, "--control: '@" + busy + "': Address already in use"},
      {{"proxy", "--type", "streamer", "--frontend", busy, "--backend", ep},
       "--frontend: '" + busy + "': Address already in use"},
      {{"proxy", "--type", "streamer", "--frontend", ep, "--backend", busy},
       "--backend: '" + busy + "': Address already in use"},
      {{"proxy", "--type", "streamer", "--frontend", "@" + ep + ",@" + dir.ipc("y"), "--backend",
        dir.ipc("z")},
       "is a list; zkit takes one endpoint per flag"},
  };
  for (const auto& [args, text] : cases) {
    std::vector<std::string> argv = {kZkit};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run(argv, dir);
    INFO(r.err);
    CHECK(r.status == 2);
    CHECK_THAT(r.err, Catch::Contains(text));
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  }
}

TEST_CASE("zkit send exits 1 when ZeroMQ's linger discards frames a peer did not read",
          "[devices][cli]") {
  TempDir dir;
  zmq::context_t ctx;
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  pull.set(zmq::sockopt::rcvhwm, 1);
  pull.set(zmq::sockopt::rcvbuf, 4096);  // the kernel keeps a few of the 32 MB, not all
  pull.set(zmq::sockopt::linger, 0);
  pull.bind("tcp://127.0.0.1:*");
  const std::string ep = pull.get(zmq::sockopt::last_endpoint);
  const auto send = [&](const std::string& linger_ms) {
    return std::vector<std::string>{"send",        "--socket", "push",      "--raw",
                                    "--count",     "32",       "--size",    "1000000",
                                    "--linger-ms", linger_ms,  "--connect", ep};
  };

  SECTION("a peer that reads nothing: the frames still queued at the linger are lost, and said") {
    // Every message is taken at once (the send high-water mark is 1000), so nothing stalls: before,
    // send exited 0, as if all 32 had been delivered.
    auto p = zkit_process(dir, send("300"));
    const auto st = p->wait(kLong);
    INFO("stderr: " << p->err());
    REQUIRE(st);
    CHECK(*st == 1);
    CHECK_THAT(p->err(), Catch::Contains("ZeroMQ's linger ran out after 300 ms (--linger-ms)"));
  }
  SECTION("a peer that reads everything within the linger: exit 0, no such line") {
    auto p = zkit_process(dir, send("20000"));
    int got = 0;
    const auto deadline = std::chrono::steady_clock::now() + kLong;
    while (std::chrono::steady_clock::now() < deadline) {
      zmq::message_t m;
      while (pull.recv(m, zmq::recv_flags::dontwait)) ++got;
      if (p->wait(0ms) && got == 32) break;
      zmq::pollitem_t item{pull.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, 10ms);
    }
    const auto st = p->wait(0ms);
    INFO("stderr: " << p->err());
    REQUIRE(st);
    CHECK(*st == 0);
    CHECK(got == 32);
    CHECK_THAT(p->err(), !Catch::Contains("linger ran out"));
  }
}
