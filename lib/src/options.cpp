#include "zkit/options.hpp"

#include <stdexcept>

namespace zkit {
namespace {

void check_key(const std::string& key, const char* field) {
  if (!key.empty() && key.size() != 40) {
    throw std::invalid_argument(std::string("CURVE ") + field + " must be 40 Z85 characters, got " +
                                std::to_string(key.size()));
  }
}

}  // namespace

void apply(zmq::socket_ref s, const SocketOptions& o) {
  if (o.sndhwm) s.set(zmq::sockopt::sndhwm, *o.sndhwm);
  if (o.rcvhwm) s.set(zmq::sockopt::rcvhwm, *o.rcvhwm);
  s.set(zmq::sockopt::linger, static_cast<int>(o.linger.count()));
  if (o.reconnect_ivl) s.set(zmq::sockopt::reconnect_ivl, static_cast<int>(o.reconnect_ivl->count()));
  if (o.reconnect_ivl_max) {
    s.set(zmq::sockopt::reconnect_ivl_max, static_cast<int>(o.reconnect_ivl_max->count()));
  }
  if (o.heartbeat_ivl) {
    s.set(zmq::sockopt::heartbeat_ivl, static_cast<int>(o.heartbeat_ivl->count()));
    auto timeout = o.heartbeat_timeout.value_or(*o.heartbeat_ivl);
    s.set(zmq::sockopt::heartbeat_timeout, static_cast<int>(timeout.count()));
  }
  if (o.routing_id) s.set(zmq::sockopt::routing_id, *o.routing_id);
  if (o.sndbuf) s.set(zmq::sockopt::sndbuf, *o.sndbuf);
  if (o.rcvbuf) s.set(zmq::sockopt::rcvbuf, *o.rcvbuf);
  if (o.immediate) s.set(zmq::sockopt::immediate, 1);
  const CurveOptions& c = o.curve;
  if (c.enabled()) {
    check_key(c.public_key, "public_key");
    check_key(c.secret_key, "secret_key");
    check_key(c.server_key, "server_key");
    if (!c.zap_domain.empty()) s.set(zmq::sockopt::zap_domain, c.zap_domain);
    if (c.server) {
      s.set(zmq::sockopt::curve_server, 1);
      s.set(zmq::sockopt::curve_secretkey, c.secret_key);
    } else {
      if (c.server_key.empty() || c.public_key.empty()) {
        throw std::invalid_argument("CURVE client needs public_key and server_key");
      }
      s.set(zmq::sockopt::curve_serverkey, c.server_key);
      s.set(zmq::sockopt::curve_publickey, c.public_key);
      s.set(zmq::sockopt::curve_secretkey, c.secret_key);
    }
  }
}

Endpoint parse_endpoint(const std::string& spec, bool bind_by_default) {
  Endpoint e;
  e.bind = bind_by_default;
  std::string rest = spec;
  if (!rest.empty() && (rest[0] == '@' || rest[0] == '>')) {
    e.bind = rest[0] == '@';
    rest.erase(0, 1);
  }
  auto sep = rest.find("://");
  if (sep == std::string::npos || sep == 0 || sep + 3 >= rest.size()) {
    throw std::invalid_argument("endpoint '" + spec + "' does not parse (want transport://address)");
  }
  std::string transport = rest.substr(0, sep);
  if (transport != "tcp" && transport != "ipc" && transport != "inproc" && transport != "ws" &&
      transport != "pgm" && transport != "epgm" && transport != "vmci" && transport != "udp") {
    throw std::invalid_argument("endpoint '" + spec + "' has unknown transport '" + transport + "'");
  }
  e.address = rest;
  return e;
}

std::string attach(zmq::socket_ref s, const Endpoint& e) {
  if (e.bind) {
    s.bind(e.address);
    return s.get(zmq::sockopt::last_endpoint);
  }
  s.connect(e.address);
  return e.address;
}

}  // namespace zkit
