// CURVE through a proxy with the ZAP allow-list handler, in-process: a listed client key passes, an
// unknown key and a plain-text peer get nothing through, and the good peer keeps being served.
#include <catch2/catch.hpp>

#include "test_util.hpp"
#include "zkit/keys.hpp"
#include "zkit/proxy.hpp"
#include "zkit/zap.hpp"

using namespace zkit;
using namespace zkit::test;
using namespace std::chrono_literals;

namespace {

zmq::socket_t client(zmq::context_t& ctx, const std::string& ep, const CurveKeyPair* keys,
                     const std::string& server_key) {
  zmq::socket_t s(ctx, zmq::socket_type::push);
  SocketOptions o;
  o.linger = 0ms;
  if (keys) {
    o.curve.public_key = keys->public_key;
    o.curve.secret_key = keys->secret_key;
    o.curve.server_key = server_key;
  }
  apply(s, o);
  s.connect(ep);
  return s;
}

}  // namespace

TEST_CASE("Only allow-listed CURVE clients get through and the good peer keeps being served",
          "[devices][curve]") {
  const CurveKeyPair server = generate_curve_keypair();
  const CurveKeyPair good = generate_curve_keypair();
  const CurveKeyPair stranger = generate_curve_keypair();

  zmq::context_t ctx;
  ZapHandler zap(ctx, {good.public_key});
  ProxyOptions o;
  o.type = ProxyType::kStreamer;
  o.frontend = "@tcp://127.0.0.1:*";
  o.backend = unique_inproc("backend");
  o.frontend_options.curve.server = true;
  o.frontend_options.curve.secret_key = server.secret_key;
  o.frontend_options.curve.zap_domain = "zkit";
  Proxy proxy(ctx, o);
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  pull.connect(proxy.backend_endpoint());

  zmq::context_t peers;  // the clients live elsewhere
  auto bad = client(peers, proxy.frontend_endpoint(), &stranger, server.public_key);
  auto plain = client(peers, proxy.frontend_endpoint(), nullptr, "");
  auto ok = client(peers, proxy.frontend_endpoint(), &good, server.public_key);
  for (int i = 0; i < 10; ++i) {
    (void)bad.send(zmq::buffer("bad" + std::to_string(i)), zmq::send_flags::dontwait);
    (void)plain.send(zmq::buffer("plain" + std::to_string(i)), zmq::send_flags::dontwait);
    ok.send(zmq::buffer("good" + std::to_string(i)), zmq::send_flags::none);
  }
  for (int i = 0; i < 10; ++i) {
    auto m = recv_within(pull);
    REQUIRE(m);
    CHECK((*m)[0].to_string() == "good" + std::to_string(i));
  }
  CHECK_FALSE(recv_within(pull, 300ms));
  // Still serving the good peer after the others were turned away.
  for (int i = 10; i < 20; ++i)
    ok.send(zmq::buffer("good" + std::to_string(i)), zmq::send_flags::none);
  for (int i = 10; i < 20; ++i) {
    auto m = recv_within(pull);
    REQUIRE(m);
    CHECK((*m)[0].to_string() == "good" + std::to_string(i));
  }
  CHECK(proxy.stats().frontend_recv.messages == 20);
  CHECK(zap.stats().allowed >= 1);
  CHECK(zap.stats().denied >= 1);
}

TEST_CASE("A second ZAP handler on one context is refused", "[devices][curve]") {
  zmq::context_t ctx;
  ZapHandler first(ctx, {});
  CHECK_THROWS_AS(ZapHandler(ctx, {}), zmq::error_t);
  zmq::context_t other;
  CHECK_THROWS_AS(ZapHandler(other, {"short"}), std::invalid_argument);
}
