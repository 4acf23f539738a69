// One options struct for every zkit socket: what ZeroMQ exposes that zkit users set most, applied
// to a cppzmq socket in one call. Every field documents its default; unset fields keep ZeroMQ's.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <zmq.hpp>

namespace zkit {

// CURVE keys are Z85 text (40 characters), as zmq_curve_keypair() and `zkit keygen` print them.
struct CurveOptions {
  bool server = false;          // true: this socket is the CURVE server (needs secret_key)
  std::string public_key;       // our public key (clients; servers may leave empty)
  std::string secret_key;       // our secret key
  std::string server_key;       // clients: the server's public key
  std::string zap_domain;       // servers: ZAP domain (an allow-list handler must run)
  bool enabled() const noexcept { return !secret_key.empty(); }
};

struct SocketOptions {
  std::optional<int> sndhwm;                              // ZeroMQ default 1000 frames
  std::optional<int> rcvhwm;                              // ZeroMQ default 1000 frames
  std::chrono::milliseconds linger{1000};                 // close(): wait this long to send
  std::optional<std::chrono::milliseconds> reconnect_ivl;     // ZeroMQ default 100 ms
  std::optional<std::chrono::milliseconds> reconnect_ivl_max; // ZeroMQ default 0 (no backoff)
  std::optional<std::chrono::milliseconds> heartbeat_ivl;     // ZMTP heartbeats; off by default
  std::optional<std::chrono::milliseconds> heartbeat_timeout; // default: heartbeat_ivl
  std::optional<std::string> routing_id;                  // DEALER/ROUTER identity
  std::optional<int> sndbuf;                              // kernel buffer sizes (bytes)
  std::optional<int> rcvbuf;
  bool immediate = false;  // ZMQ_IMMEDIATE: queue only to completed connections
  CurveOptions curve;
};

// Applies every set field. Throws zmq::error_t for an option ZeroMQ refuses and
// std::invalid_argument for a malformed CURVE key (naming the field).
void apply(zmq::socket_ref socket, const SocketOptions& options);

// Endpoint spelling shared by every zkit command: "@ep" binds, ">ep" connects, a plain "ep" uses
// the caller's default. Throws std::invalid_argument naming the endpoint when it cannot parse
// (no transport, an unknown transport, an empty address).
struct Endpoint {
  std::string address;  // "tcp://127.0.0.1:5555"
  bool bind = false;
};
Endpoint parse_endpoint(const std::string& spec, bool bind_by_default);
// Binds or connects as the endpoint says; returns the endpoint actually bound (resolving "*").
std::string attach(zmq::socket_ref socket, const Endpoint& endpoint);

}  // namespace zkit
