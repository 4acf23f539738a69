// Tests of zkit/options.hpp: the receive limit (ZMQ_MAXMSGSIZE from the decode limits) and the
// endpoint checks of parse_endpoint / resolve_check.
#include "zkit/options.hpp"

#include <catch2/catch.hpp>
#include <cstring>
#include <string>

using namespace zkit;

namespace {

// Waits up to `timeout` for one event of `mask` on the monitor pair; true when it came.
bool wait_event(zmq::socket_t& monitor, int mask, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    zmq_pollitem_t item{monitor.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, left) == 0) return false;
    zmq::message_t event, address;
    (void)monitor.recv(event);
    (void)monitor.recv(address);
    std::uint16_t id = 0;
    std::memcpy(&id, event.data(), sizeof id);
    if (id & mask) return true;
  }
}

}  // namespace

TEST_CASE("receive_limit is the batch limit plus framing slack", "[options]") {
  CHECK(receive_limit(envelope::Limits{}) == (std::int64_t{64} << 20) + kReceiveLimitSlack);
  CHECK(receive_limit(envelope::Limits().batch_bytes(1000)) == 1000 + kReceiveLimitSlack);
  CHECK(receive_limit(envelope::Limits().batch_bytes(SIZE_MAX)) == INT64_MAX);
}

TEST_CASE("A frame over the receive limit disconnects its peer; the socket serves the others",
          "[options]") {
  zmq::context_t ctx;
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  const envelope::Limits limits = envelope::Limits().batch_bytes(1024);
  apply_receive_limit(pull, limits);
  REQUIRE(pull.get(zmq::sockopt::maxmsgsize) == receive_limit(limits));
  pull.set(zmq::sockopt::linger, 0);
  pull.bind("tcp://127.0.0.1:*");
  const std::string ep = pull.get(zmq::sockopt::last_endpoint);
  REQUIRE(zmq_socket_monitor(pull.handle(), "inproc://options-test-monitor",
                             ZMQ_EVENT_DISCONNECTED) == 0);
  zmq::socket_t monitor(ctx, zmq::socket_type::pair);
  monitor.connect("inproc://options-test-monitor");

  zmq::socket_t hostile(ctx, zmq::socket_type::push);
  hostile.set(zmq::sockopt::linger, 0);
  hostile.set(zmq::sockopt::reconnect_ivl, 60000);  // stay away once dropped
  hostile.connect(ep);
  const std::string big(static_cast<std::size_t>(receive_limit(limits)) + 1, 'x');
  REQUIRE(hostile.send(zmq::buffer(big), zmq::send_flags::none));
  // ZeroMQ drops the connection on the frame's length header, before allocating the frame.
  REQUIRE(wait_event(monitor, ZMQ_EVENT_DISCONNECTED, std::chrono::milliseconds{10000}));

  zmq::socket_t polite(ctx, zmq::socket_type::push);
  polite.set(zmq::sockopt::linger, 0);
  polite.connect(ep);
  const std::string fits(static_cast<std::size_t>(receive_limit(limits)), 'y');
  REQUIRE(polite.send(zmq::buffer(fits), zmq::send_flags::none));
  zmq::message_t got;
  pull.set(zmq::sockopt::rcvtimeo, 10000);
  REQUIRE(pull.recv(got));
  CHECK(got.to_string() == fits);
  CHECK_FALSE(pull.recv(got, zmq::recv_flags::dontwait));  // the big frame never arrived
  zmq_socket_monitor(pull.handle(), nullptr, 0);
}

TEST_CASE("SocketOptions::max_message_bytes sets ZMQ_MAXMSGSIZE; unset keeps ZeroMQ's",
          "[options]") {
  zmq::context_t ctx;
  zmq::socket_t s(ctx, zmq::socket_type::pull);
  apply(s, SocketOptions{});
  CHECK(s.get(zmq::sockopt::maxmsgsize) == -1);
  SocketOptions o;
  o.max_message_bytes = 4096;
  apply(s, o);
  CHECK(s.get(zmq::sockopt::maxmsgsize) == 4096);
}

TEST_CASE("parse_endpoint refuses tcp endpoints that cannot work, naming the endpoint",
          "[options]") {
  const auto refused = [](const std::string& spec, bool bind, const std::string& text) {
    INFO(spec);
    try {
      (void)parse_endpoint(spec, bind);
      FAIL("accepted");
    } catch (const std::invalid_argument& e) {
      CHECK_THAT(e.what(), Catch::Contains(text) && Catch::Contains(spec));
    }
  };
  refused("tcp://127.0.0.1:99999", false, "has port '99999', want 1..65535");
  refused("tcp://127.0.0.1:0", false, "has port '0'");
  refused("tcp://127.0.0.1:", false, "has port ''");
  refused("tcp://127.0.0.1:5x", false, "has port '5x'");
  refused("tcp://127.0.0.1", false, "has no port");
  refused("tcp://[::1]", false, "has no port");
  refused("tcp://:5555", false, "has no host");
  refused("tcp://999.1.1.1:5555", false, "host '999.1.1.1', which is not an IPv4 address");
  refused("@tcp://999.1.1.1:5555", false, "not an IPv4 address");
  refused("tcp://1.2.3:5555", false, "not an IPv4 address");
  refused(">tcp://*:5555", true, "connects to host '*'");
  refused(">tcp://127.0.0.1:*", true, "has port '*', want 1..65535");
  refused("@tcp://127.0.0.1:70000", false, "want 0..65535 or *");
  refused("@tcp://127.0.0.1:5555,@tcp://127.0.0.1:5556", false, "is a list");
  refused("@tcp://127.0.0.1:5555,tcp://127.0.0.1:5556", false, "is a list");
}

TEST_CASE("parse_endpoint accepts the forms ZeroMQ takes", "[options]") {
  for (const std::string spec :
       {"tcp://127.0.0.1:5555", "tcp://localhost:1", "tcp://[::1]:65535", "tcp://example.org:80",
        "tcp://127.0.0.1:4000;127.0.0.1:5555", "ipc:///tmp/a,b", "inproc://x"}) {
    INFO(spec);
    CHECK_NOTHROW(parse_endpoint(spec, false));
  }
  for (const std::string spec :
       {"tcp://*:*", "tcp://127.0.0.1:*", "tcp://127.0.0.1:0", "tcp://lo:5555", "tcp://[::1]:*"}) {
    INFO(spec);
    CHECK(parse_endpoint(spec, true).bind);
  }
}

TEST_CASE("resolve_check names a host to connect to that does not resolve", "[options]") {
  CHECK(resolve_check(parse_endpoint("tcp://127.0.0.1:5555", false)).empty());
  CHECK(resolve_check(parse_endpoint("tcp://localhost:5555", false)).empty());
  CHECK(resolve_check(parse_endpoint("tcp://[::1]:5555", false)).empty());
  CHECK(resolve_check(parse_endpoint("tcp://eth-nothing:5555", true)).empty());  // binds: a NIC
  const std::string why = resolve_check(parse_endpoint("tcp://no-such-host.invalid:5555", false));
  CHECK_THAT(why, Catch::Contains("host 'no-such-host.invalid' in "
                                  "'tcp://no-such-host.invalid:5555' does not resolve"));
}
