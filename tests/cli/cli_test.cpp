// `zkit send | zkit recv` round trips over every socket pairing, the output formats, the exit
// statuses of bad flags, and `zkit demo` end to end; every test runs the built zkit binary.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "child.hpp"

namespace {

using zkit::test::TempDir;
using zkit::test::write_file;
using zkit::test::Zkit;

const std::string kAnyPort = "tcp://127.0.0.1:*";

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::string::size_type at = 0;
  while (at < text.size()) {
    const auto nl = text.find('\n', at);
    if (nl == std::string::npos) {
      lines.push_back(text.substr(at));
      break;
    }
    lines.push_back(text.substr(at, nl - at));
    at = nl + 1;
  }
  return lines;
}

// Starts `zkit recv recv_args --bind tcp://127.0.0.1:*`, then `zkit send send_args --connect EP`
// with `input` on its stdin; waits for both.
struct RoundTrip {
  TempDir dir;
  std::optional<Zkit> recv, send;
  std::optional<int> recv_status, send_status;

  RoundTrip(std::vector<std::string> recv_args, std::vector<std::string> send_args,
            const std::string& input = "") {
    recv_args.insert(recv_args.begin(), "recv");
    recv_args.insert(recv_args.end(), {"--bind", kAnyPort});
    recv.emplace(dir, "recv", recv_args);
    const std::string ep = recv->bound_endpoint();
    write_file(dir.file("input"), input);
    send_args.insert(send_args.begin(), "send");
    send_args.insert(send_args.end(), {"--connect", ep});
    send.emplace(dir, "send", send_args, dir.file("input"));
    send_status = send->wait();
    recv_status = recv->wait();
  }
};

}  // namespace

TEST_CASE("send turns each stdin line into one message and recv prints them as text", "[cli]") {
  RoundTrip t({"--socket", "pull", "--count", "3", "--timeout-ms", "10000"}, {"--socket", "push"},
              "hello\n\nlast line without newline");
  CHECK(t.send_status == 0);
  CHECK(t.recv_status == 0);
  CHECK(t.recv->out() == "hello\n\nlast line without newline\n");
  CHECK(t.recv->err().find("3 messages") != std::string::npos);
  CHECK(t.send->err().find("zkit send: 3 messages") != std::string::npos);
}

TEST_CASE("recv --format hex prints each message's bytes as hex", "[cli]") {
  RoundTrip t({"--socket", "pull", "--count", "2", "--format", "hex", "--timeout-ms", "10000"},
              {"--socket", "push"}, "AB\n\x01\xff\n");
  CHECK(t.send_status == 0);
  CHECK(t.recv_status == 0);
  CHECK(t.recv->out() == "4142\n01ff\n");
}

TEST_CASE("pub/sub: recv --topic prints only that topic, json carries topic, producer and seq",
          "[cli]") {
  TempDir dir;
  Zkit recv(dir, "recv",
            {"recv", "--socket", "sub", "--topic", "news", "--format", "json", "--count", "3",
             "--timeout-ms", "10000", "--bind", kAnyPort});
  const std::string ep = recv.bound_endpoint();
  write_file(dir.file("sports"), "goal\n");
  write_file(dir.file("news"), "one\ntwo\nthree\n");
  Zkit other(dir, "send-sports", {"send", "--socket", "pub", "--topic", "sports", "--connect", ep},
             dir.file("sports"));
  Zkit news(dir, "send-news", {"send", "--socket", "pub", "--topic", "news", "--connect", ep},
            dir.file("news"));
  CHECK(other.wait() == 0);
  CHECK(news.wait() == 0);
  REQUIRE(recv.wait() == 0);
  const auto lines = lines_of(recv.out());
  REQUIRE(lines.size() == 3);
  const std::vector<std::string> words = {"one", "two", "three"};
  for (std::size_t i = 0; i < 3; ++i) {
    INFO(lines[i]);
    CHECK(lines[i].find("\"topic\":\"news\"") != std::string::npos);
    CHECK(lines[i].find("\"data\":\"" + words[i] + "\"") != std::string::npos);
    CHECK(lines[i].find("\"producer\":") != std::string::npos);
    CHECK(lines[i].find("\"seq\":") != std::string::npos);
  }
}

TEST_CASE("generated messages (--count/--size) arrive complete and in order (recv --check)",
          "[cli]") {
  RoundTrip t(
      {"--socket", "pull", "--count", "50000", "--check", "--quiet", "--timeout-ms", "10000"},
      {"--socket", "push", "--count", "50000", "--size", "100", "--batch-max", "500"});
  CHECK(t.send_status == 0);
  CHECK(t.recv_status == 0);
  CHECK(t.recv->out().empty());
  CHECK(t.recv->err().find("50000 messages") != std::string::npos);
  CHECK(t.recv->err().find("50000 in order from 1 producer(s), 0 missing, 0 repeated") !=
        std::string::npos);
  CHECK(t.recv->err().find("5000000 bytes") != std::string::npos);
}

TEST_CASE("dealer to router: every message is answered and send counts the replies", "[cli]") {
  RoundTrip t(
      {"--socket", "router", "--count", "1000", "--check", "--quiet", "--timeout-ms", "10000"},
      {"--socket", "dealer", "--count", "1000"});
  CHECK(t.send_status == 0);
  CHECK(t.recv_status == 0);
  CHECK(t.send->err().find("1000 replies") != std::string::npos);
}

TEST_CASE("raw mode on both sides sends one frame per line", "[cli]") {
  RoundTrip t(
      {"--socket", "pull", "--raw", "--count", "2", "--format", "json", "--timeout-ms", "10000"},
      {"--socket", "push", "--raw"}, "x\ny\n");
  CHECK(t.send_status == 0);
  CHECK(t.recv_status == 0);
  // Raw frames carry no producer or sequence number.
  CHECK(t.recv->out() == "{\"data\":\"x\"}\n{\"data\":\"y\"}\n");
}

TEST_CASE("reliable round trip (--reliable): every batch acknowledged, every message once in order",
          "[cli]") {
  RoundTrip t({"--reliable", "--count", "20000", "--check", "--quiet", "--timeout-ms", "10000"},
              {"--reliable", "--count", "20000", "--size", "32"});
  CHECK(t.send_status == 0);
  CHECK(t.recv_status == 0);
  CHECK(t.send->err().find("batches acknowledged") != std::string::npos);
  CHECK(t.recv->err().find("20000 in order from 1 producer(s), 0 missing, 0 repeated") !=
        std::string::npos);
}

TEST_CASE("send --reliable with no receiver exits 1 saying how many batches were not acknowledged",
          "[cli]") {
  TempDir dir;
  // A port nobody listens on: bind one, note it, let recv exit, then send there.
  Zkit probe(dir, "probe", {"recv", "--socket", "pull", "--timeout-ms", "1", "--bind", kAnyPort});
  const std::string ep = probe.bound_endpoint();
  REQUIRE(probe.wait() == 0);
  Zkit send(dir, "send",
            {"send", "--reliable", "--count", "10", "--ack-timeout-ms", "300", "--linger-ms", "0",
             "--connect", ep});
  CHECK(send.wait() == 1);
  CHECK(send.err().find("batches not acknowledged within --ack-timeout-ms") != std::string::npos);
  CHECK(send.err().find("zkit send: 10 messages") != std::string::npos);
}

TEST_CASE("recv --count exits 1 when fewer messages came before --timeout-ms", "[cli]") {
  TempDir dir;
  Zkit recv(
      dir, "recv",
      {"recv", "--socket", "pull", "--count", "5", "--timeout-ms", "200", "--bind", kAnyPort});
  CHECK(recv.wait() == 1);
  CHECK(recv.err().find("0 of 5 messages received") != std::string::npos);
  CHECK(recv.err().find("stopped: timeout") != std::string::npos);
}

TEST_CASE("bad flags exit 2 with one line naming the flag or value", "[cli]") {
  struct Case {
    std::vector<std::string> args;
    std::string names;
  };
  const std::vector<Case> cases = {
      {{"send", "--socket", "push", "--connect", "nowhere"}, "--connect"},
      {{"recv", "--socket", "pull", "--bind", "tcp://127.0.0.1:notaport"}, "--bind"},
      {{"send", "--socket", "push", "--endpoint", "bogus://x"}, "bogus"},
      {{"send", "--socket", "push", "--connect", "tcp://127.0.0.1:1", "--count", "many"},
       "--count"},
      {{"recv", "--socket", "pull", "--bind", kAnyPort, "--timeout-ms", "-5"}, "--timeout-ms"},
      {{"send", "--socket", "push", "--connect", "tcp://127.0.0.1:1", "--frobnicate"},
       "--frobnicate"},
      {{"recv", "--socket", "pull"}, "--connect, --bind or --endpoint"},
      {{"send", "--socket", "push"}, "--connect, --bind or --endpoint"},
      {{"send", "--socket", "pull", "--connect", "tcp://127.0.0.1:1"}, "--socket"},
      {{"recv", "--socket", "pull", "--topic", "t", "--bind", kAnyPort}, "--topic"},
      {{"send", "--socket", "push", "--reliable", "--connect", "tcp://127.0.0.1:1"}, "--reliable"},
      {{"demo", "--count", "0"}, "--count"},
      {{"recv", "--reliable", "--bind", kAnyPort, "--max-sessions", "0"}, "--max-sessions"},
      {{"recv", "--socket", "sub", "--bind", kAnyPort, "--max-producers", "0"}, "--max-producers"},
  };
  TempDir dir;
  for (const auto& c : cases) {
    Zkit z(dir, "bad", c.args);
    const auto status = z.wait();
    const std::string err = z.err();
    INFO(c.args[0] << " ... expecting '" << c.names << "' in: " << err);
    CHECK(status == 2);
    CHECK(err.find(c.names) != std::string::npos);
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  }
}

TEST_CASE("demo runs producer, proxy, spool and consumer and ends exactly once", "[cli]") {
  TempDir dir;
  Zkit demo(dir, "demo", {"demo", "--count", "20000", "--interval", "0.2", "--timeout", "30"});
  REQUIRE(demo.wait(std::chrono::milliseconds(40000)) == 0);
  const std::string err = demo.err();
  INFO(err);
  CHECK(err.find("exactly once: yes (20000 of 20000 distinct, 0 missing, 0 duplicates") !=
        std::string::npos);
  CHECK(err.find("zkit spool pid") != std::string::npos);
  CHECK(err.find("20000 acknowledged by the consumer") != std::string::npos);
  for (const char* stage : {"sent", "forwarded", "stored", "received"}) {
    CHECK(err.find(std::string("  ") + stage + " ") != std::string::npos);
  }
}

TEST_CASE("CURVE: an allowed client key gets through, a stranger's gets nothing and send exits 1",
          "[cli]") {
  TempDir dir;
  for (const char* name : {"server", "client", "stranger"}) {
    Zkit keygen(dir, name, {"keygen", "--out", dir.file(std::string(name) + ".key")});
    REQUIRE(keygen.wait() == 0);
  }
  // keygen prints the public key: client.out is an allow-list with the client alone.
  Zkit recv(dir, "recv",
            {"recv", "--socket", "pull", "--count", "1", "--timeout-ms", "10000", "--curve-secret",
             dir.file("server.key"), "--curve-allow", dir.file("client.out"), "--bind", kAnyPort});
  const std::string ep = recv.bound_endpoint();
  write_file(dir.file("stranger-input"), "from the stranger\n");
  Zkit stranger(dir, "send-stranger",
                {"send", "--socket", "push", "--connect", ep, "--curve-server-key",
                 dir.file("server.key.pub"), "--curve-secret", dir.file("stranger.key"),
                 "--linger-ms", "300"},
                dir.file("stranger-input"));
  CHECK(stranger.wait() == 1);
  CHECK(stranger.err().find("could not be handed to ZeroMQ") != std::string::npos);
  write_file(dir.file("client-input"), "from the client\n");
  Zkit client(dir, "send-client",
              {"send", "--socket", "push", "--connect", ep, "--curve-server-key",
               dir.file("server.key.pub"), "--curve-secret", dir.file("client.key")},
              dir.file("client-input"));
  CHECK(client.wait() == 0);
  CHECK(recv.wait() == 0);
  CHECK(recv.out() == "from the client\n");
}

TEST_CASE("recv stopped by SIGINT prints its summary and exits 0", "[cli]") {
  TempDir dir;
  Zkit recv(dir, "recv", {"recv", "--socket", "pull", "--bind", kAnyPort});
  const std::string ep = recv.bound_endpoint();
  write_file(dir.file("input"), "a\nb\n");
  Zkit send(dir, "send", {"send", "--socket", "push", "--connect", ep}, dir.file("input"));
  REQUIRE(send.wait() == 0);
  for (int i = 0; i < 500 && recv.out() != "a\nb\n"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(recv.out() == "a\nb\n");  // printed (and flushed) before any stop
  recv.signal(SIGINT);
  CHECK(recv.wait() == 0);
  CHECK(recv.err().find("2 messages in") != std::string::npos);
  CHECK(recv.err().find("stopped: signal") != std::string::npos);
}

namespace {

// A plain pyzmq peer: `pull N` binds a PULL, says where on stderr, prints N messages;
// `push EP MSG...` connects a PUSH and sends each MSG as one frame ('#N': N bytes of 'x');
// `dealer EP MSG...` does the same from a DEALER. The context is terminated
// after close: pyzmq skips termination at interpreter exit, and without it the process may exit
// before the PUSH's frames are written (issue 8, #10: 14 failures in 100 runs).
constexpr const char* kPlainPeer = R"(
import sys, zmq
c = zmq.Context()
if sys.argv[1] == 'pull':
    s = c.socket(zmq.PULL)
    port = s.bind_to_random_port('tcp://127.0.0.1')
    sys.stderr.write('py: bound tcp://127.0.0.1:%d\n' % port)
    sys.stderr.flush()
    s.RCVTIMEO = 10000
    for _ in range(int(sys.argv[2])):
        print(s.recv().decode(), flush=True)
    s.close(linger=0)
elif sys.argv[1] == 'dealer':
    s = c.socket(zmq.DEALER)
    s.connect(sys.argv[2])
    for m in sys.argv[3:]:
        s.send(m.encode())
    s.close(linger=5000)
else:
    s = c.socket(zmq.PUSH)
    s.connect(sys.argv[2])
    for m in sys.argv[3:]:
        if m.startswith('#'):
            s.send(b'x' * int(m[1:]))
        elif m.startswith('hex:'):
            s.send(bytes.fromhex(m[4:]))
        else:
            s.send(m.encode())
    s.close(linger=5000)
c.term()
)";

// A valid batch of 2 records, "hello" and "zkit" (docs/wire-format.md, msgpack-python's form).
// Sent after bad frames on the same connection, it arrives after them, so `recv --count 2` ends
// once the bad frames have been counted: an event, not a silence timer racing the peer's start.
constexpr const char* kValidBatch =
    "hex:9601002a07cf187b3796dc210d1592c40568656c6c6fc4047a6b6974";
constexpr const char* kSafetyTimeoutMs = "30000";  // bound only: the peer ends the run

}  // namespace

TEST_CASE("raw mode talks to plain pyzmq peers in both directions", "[cli]") {
  TempDir dir;
  write_file(dir.file("peer.py"), kPlainPeer);
  SECTION("zkit send --raw to a pyzmq PULL") {
    Zkit pull(dir, "py-pull", {dir.file("peer.py"), "pull", "2"}, "/dev/null", ZKIT_PYTHON);
    const std::string ep = pull.bound_endpoint();
    write_file(dir.file("input"), "plain\nframes\n");
    Zkit send(dir, "send", {"send", "--socket", "push", "--raw", "--connect", ep},
              dir.file("input"));
    CHECK(send.wait() == 0);
    CHECK(pull.wait() == 0);
    CHECK(pull.out() == "plain\nframes\n");
  }
  SECTION("a pyzmq PUSH to zkit recv --raw") {
    Zkit recv(dir, "recv",
              {"recv", "--socket", "pull", "--raw", "--count", "2", "--timeout-ms", "10000",
               "--bind", kAnyPort});
    const std::string ep = recv.bound_endpoint();
    Zkit push(dir, "py-push", {dir.file("peer.py"), "push", ep, "from", "python"}, "/dev/null",
              ZKIT_PYTHON);
    CHECK(push.wait() == 0);
    CHECK(recv.wait() == 0);
    CHECK(recv.out() == "from\npython\n");
  }
}

TEST_CASE("a frame over the receive limit disconnects its sender; recv serves the next peer",
          "[cli]") {
  TempDir dir;
  write_file(dir.file("peer.py"), kPlainPeer);
  Zkit recv(dir, "recv",
            {"recv", "--socket", "pull", "--raw", "--count", "1", "--timeout-ms", "20000",
             "--quiet", "--bind", kAnyPort});
  const std::string ep = recv.bound_endpoint();
  // 64 MiB (the batch limit) + 64 KiB (framing slack) + 1: one byte over the socket's limit.
  Zkit big(dir, "py-big", {dir.file("peer.py"), "push", ep, "#67174401"}, "/dev/null", ZKIT_PYTHON);
  REQUIRE(big.wait() == 0);  // written out (close with linger, then term)
  Zkit small(dir, "py-small", {dir.file("peer.py"), "push", ep, "ok"}, "/dev/null", ZKIT_PYTHON);
  CHECK(small.wait() == 0);
  CHECK(recv.wait() == 0);
  INFO(recv.err());
  // The one message is "ok" (before: the 64 MiB frame was received whole).
  CHECK(recv.err().find("zkit recv: 1 messages in ") != std::string::npos);
  CHECK(recv.err().find(" batches, 2 bytes,") != std::string::npos);
}

TEST_CASE("recv names the codec's first error for dropped frames, and each kind at debug level",
          "[cli]") {
  TempDir dir;
  write_file(dir.file("peer.py"), kPlainPeer);
  Zkit recv(dir, "recv",
            {"recv", "--reliable", "--count", "1", "--timeout-ms", kSafetyTimeoutMs, "--log-level",
             "debug", "--bind", kAnyPort});
  const std::string ep = recv.bound_endpoint();
  Zkit peer(dir, "py-dealer", {dir.file("peer.py"), "dealer", ep, "garbage", "more garbage"},
            "/dev/null", ZKIT_PYTHON);
  CHECK(peer.wait() == 0);  // its frames are written out before it exits (linger, then term)
  // Then one valid message ends recv by --count: its session needs a HELLO/WELCOME round trip
  // after the bad frames were in recv's socket. Before: --timeout-ms 1000 of silence from recv's
  // start, which a slow python start under load outlasted.
  Zkit send(dir, "send", {"send", "--reliable", "--count", "1", "--endpoint", ep});
  CHECK(send.wait() == 0);
  CHECK(recv.wait() == 0);
  const std::string err = recv.err();
  INFO(err);
  CHECK(recv.out() != "");
  CHECK(err.find("2 malformed frames dropped (first: Corruption: message at byte 0 is not an "
                 "array (type byte 0x67))") != std::string::npos);
  CHECK(err.find("warning: dropped a malformed frame: Corruption: message at byte 0") !=
        std::string::npos);
  // "more garbage" fails the same way (another type byte): the same kind, not logged again.
  CHECK(err.find("of another kind") == std::string::npos);
}

TEST_CASE("recv over a pull socket names the codec's first error for dropped frames", "[cli]") {
  TempDir dir;
  write_file(dir.file("peer.py"), kPlainPeer);
  Zkit recv(dir, "recv",
            {"recv", "--socket", "pull", "--count", "2", "--timeout-ms", kSafetyTimeoutMs,
             "--log-level", "debug", "--bind", kAnyPort});
  const std::string ep = recv.bound_endpoint();
  // Before: --timeout-ms 1000 of silence from recv's start, which a slow python start under load
  // outlasted, so recv ended before the bad frames came.
  Zkit peer(dir, "py-push",
            {dir.file("peer.py"), "push", ep, "garbage", "more garbage", kValidBatch},
            "/dev/null", ZKIT_PYTHON);
  CHECK(peer.wait() == 0);
  CHECK(recv.wait() == 0);
  const std::string err = recv.err();
  INFO(err);
  CHECK(recv.out() == "hello\nzkit\n");  // ended by --count, after the bad frames
  // Before: "2 malformed frames dropped" and nothing about why.
  CHECK(err.find("2 malformed frames dropped (first: Corruption: batch at byte 0 is not an "
                 "array (type byte 0x67))") != std::string::npos);
  CHECK(err.find("warning: dropped a malformed frame: Corruption: batch at byte 0") !=
        std::string::npos);
}

TEST_CASE("send with no peer ends after --linger-ms, from --count and from stdin alike", "[cli]") {
  TempDir dir;
  Zkit probe(dir, "probe", {"recv", "--socket", "pull", "--timeout-ms", "1", "--bind", kAnyPort});
  const std::string ep = probe.bound_endpoint();
  REQUIRE(probe.wait() == 0);
  write_file(dir.file("input"), "1\n2\n3\n4\n5\n");
  for (const bool from_stdin : {false, true}) {
    std::vector<std::string> args = {"send", "--socket",  "push", "--linger-ms",
                                     "300",  "--connect", ep};
    if (!from_stdin) args.insert(args.end(), {"--count", "5"});
    Zkit send(dir, "send", args, from_stdin ? dir.file("input") : "/dev/null");
    const auto status = send.wait();  // before: --count waited for a signal
    INFO("stdin " << from_stdin << ": " << send.err());
    CHECK(status == 1);
    CHECK(send.err().find("not sent: the socket took nothing for 300 ms (--linger-ms") !=
          std::string::npos);
  }
}

TEST_CASE("send --reliable exits when it prints its summary, whatever --linger-ms says", "[cli]") {
  TempDir dir;
  Zkit probe(dir, "probe", {"recv", "--socket", "pull", "--timeout-ms", "1", "--bind", kAnyPort});
  const std::string ep = probe.bound_endpoint();
  REQUIRE(probe.wait() == 0);
  // An hour of linger: before, the context's termination waited that long after the summary.
  Zkit send(dir, "send",
            {"send", "--reliable", "--count", "10", "--ack-timeout-ms", "300", "--linger-ms",
             "3600000", "--connect", ep});
  CHECK(send.wait() == 1);
  CHECK(send.err().find("batches not acknowledged within --ack-timeout-ms") != std::string::npos);
}

TEST_CASE("send --reliable progress lines say how many batches were acknowledged", "[cli]") {
  TempDir dir;
  const std::string fifo = dir.file("input");
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  Zkit recv(dir, "recv",
            {"recv", "--reliable", "--count", "2", "--timeout-ms", "20000", "--bind", kAnyPort});
  const std::string ep = recv.bound_endpoint();
  // Held open for writing before send starts (so that its open does not block), not inherited.
  const int in = ::open(fifo.c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(in >= 0);
  const auto write_line = [in](const std::string& line) {
    REQUIRE(::write(in, line.data(), line.size()) == static_cast<ssize_t>(line.size()));
  };
  Zkit send(dir, "send", {"send", "--reliable", "--progress", "0.05", "--connect", ep}, fifo);
  write_line("first\n");
  // The progress line comes while standard input is still open, after the ack.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (send.err().find("1 of 1 batches acknowledged") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  INFO(send.err());
  CHECK(send.err().find("info: sent 1 messages in 1 batches") != std::string::npos);
  CHECK(send.err().find("1 of 1 batches acknowledged") != std::string::npos);
  write_line("second\n");
  ::close(in);
  CHECK(send.wait() == 0);
  CHECK(recv.wait() == 0);
  CHECK(recv.out() == "first\nsecond\n");
}

TEST_CASE("scripts/crash-test.sh --help prints its usage, not a line of code", "[cli]") {
  TempDir dir;
  Zkit help(dir, "help", {std::string(ZKIT_SOURCE_DIR) + "/scripts/crash-test.sh", "--help"},
            "/dev/null", "/bin/bash");
  CHECK(help.wait() == 0);
  const std::string out = help.out();
  CHECK(out.rfind("Crash test for the spool node", 0) == 0);
  CHECK(out.find("--build DIR defaults to build/ in the source tree") != std::string::npos);
  CHECK(out.find("set -euo") == std::string::npos);  // before: the script's first line of code
  CHECK(out.find("# ") == std::string::npos);
}

TEST_CASE("send --reliable waiting for acknowledgements ends on SIGINT, not at --ack-timeout-ms",
          "[cli]") {
  TempDir dir;
  Zkit send(
      dir, "send",
      {"send", "--reliable", "--count", "10", "--ack-timeout-ms", "3600000", "--bind", kAnyPort});
  REQUIRE(!send.bound_endpoint().empty());  // printed once the signals are in its hands
  send.signal(SIGINT);
  const auto status = send.wait();  // before: an hour in wait_all_acked
  INFO(send.err());
  CHECK(status == 1);
  CHECK(send.err().find("interrupted by a signal") != std::string::npos);
}
