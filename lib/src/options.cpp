#include "zkit/options.hpp"

#include <arpa/inet.h>
#include <netdb.h>

#include <charconv>
#include <stdexcept>

namespace zkit {
namespace {

void check_key(const std::string& key, const char* field) {
  if (!key.empty() && key.size() != 40) {
    throw std::invalid_argument(std::string("CURVE ") + field + " must be 40 Z85 characters, got " +
                                std::to_string(key.size()));
  }
}

bool all_digits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

// The host and port of a tcp:// address ("[source;]host:port", host "[v6]", a name or IPv4).
struct TcpAddress {
  std::string host;
  std::string port;
};

TcpAddress split_tcp(const std::string& spec, std::string_view address) {
  if (const auto semi = address.rfind(';'); semi != std::string_view::npos) {
    address.remove_prefix(semi + 1);  // a source address before ';' is ZeroMQ's to check
  }
  const auto colon = address.rfind(':');
  const auto bracket = address.rfind(']');
  if (colon == std::string_view::npos || (bracket != std::string_view::npos && colon < bracket)) {
    throw std::invalid_argument("endpoint '" + spec + "' has no port (want tcp://host:port)");
  }
  return {std::string(address.substr(0, colon)), std::string(address.substr(colon + 1))};
}

void check_tcp(const std::string& spec, const std::string& address, bool bind) {
  const TcpAddress a = split_tcp(spec, address);
  if (a.host.empty()) throw std::invalid_argument("endpoint '" + spec + "' has no host");
  if (!(bind && a.port == "*")) {
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(a.port.data(), a.port.data() + a.port.size(), port);
    const unsigned min = bind ? 0 : 1;
    if (!all_digits(a.port) || ec != std::errc{} || end != a.port.data() + a.port.size() ||
        port < min || port > 65535) {
      throw std::invalid_argument("endpoint '" + spec + "' has port '" + a.port + "', want " +
                                  std::to_string(min) + ".." + "65535" + (bind ? " or *" : ""));
    }
  }
  if (a.host == "*") {
    if (!bind) throw std::invalid_argument("endpoint '" + spec + "' connects to host '*'");
    return;
  }
  // A host of digits and dots is meant as an IPv4 address: it must be one (999.1.1.1 is not).
  if (a.host.find_first_not_of("0123456789.") == std::string::npos) {
    in_addr v4{};
    if (inet_pton(AF_INET, a.host.c_str(), &v4) != 1) {
      throw std::invalid_argument("endpoint '" + spec + "' has host '" + a.host +
                                  "', which is not an IPv4 address");
    }
  }
}

}  // namespace

std::int64_t receive_limit(const envelope::Limits& limits) noexcept {
  const auto max = static_cast<std::uint64_t>(INT64_MAX - kReceiveLimitSlack);
  const std::uint64_t batch = limits.max_batch_bytes;
  return static_cast<std::int64_t>(batch > max ? max : batch) + kReceiveLimitSlack;
}

void apply_receive_limit(zmq::socket_ref socket, const envelope::Limits& limits) {
  socket.set(zmq::sockopt::maxmsgsize, receive_limit(limits));
}

void apply(zmq::socket_ref s, const SocketOptions& o) {
  if (o.sndhwm) s.set(zmq::sockopt::sndhwm, *o.sndhwm);
  if (o.rcvhwm) s.set(zmq::sockopt::rcvhwm, *o.rcvhwm);
  s.set(zmq::sockopt::linger, static_cast<int>(o.linger.count()));
  if (o.reconnect_ivl)
    s.set(zmq::sockopt::reconnect_ivl, static_cast<int>(o.reconnect_ivl->count()));
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
  if (o.max_message_bytes) s.set(zmq::sockopt::maxmsgsize, *o.max_message_bytes);
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

void apply(zmq::socket_ref s, const SocketOptions& o, const envelope::Limits& limits) {
  apply(s, o);
  if (!o.max_message_bytes) apply_receive_limit(s, limits);
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
    throw std::invalid_argument("endpoint '" + spec +
                                "' does not parse (want transport://address)");
  }
  std::string transport = rest.substr(0, sep);
  if (transport != "tcp" && transport != "ipc" && transport != "inproc" && transport != "ws" &&
      transport != "pgm" && transport != "epgm" && transport != "vmci" && transport != "udp") {
    throw std::invalid_argument("endpoint '" + spec + "' has unknown transport '" + transport +
                                "'");
  }
  // CZMQ's "@a,@b" lists: refused rather than handed to ZeroMQ as one odd address (which fails
  // later with a misleading "No such device").
  for (auto comma = rest.find(','); comma != std::string::npos; comma = rest.find(',', comma + 1)) {
    const std::string next = rest.substr(comma + 1);
    if (next.starts_with('@') || next.starts_with('>') || next.find("://") != std::string::npos) {
      throw std::invalid_argument("endpoint '" + spec +
                                  "' is a list; zkit takes one endpoint per flag");
    }
  }
  if (transport == "tcp") check_tcp(spec, rest.substr(sep + 3), e.bind);
  e.address = rest;
  return e;
}

std::string resolve_check(const Endpoint& e) {
  if (e.bind || !e.address.starts_with("tcp://")) return "";
  const TcpAddress a = split_tcp(e.address, std::string_view(e.address).substr(6));
  if (a.host.starts_with('[')) return "";  // an IPv6 literal: nothing to resolve
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(a.host.c_str(), nullptr, &hints, &found);
  if (rc == 0) {
    freeaddrinfo(found);
    return "";
  }
  return "host '" + a.host + "' in '" + e.address + "' does not resolve: " + gai_strerror(rc);
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
