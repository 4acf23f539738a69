// One options struct for every zkit socket: what ZeroMQ exposes that zkit users set most, applied
// to a cppzmq socket in one call. Every field documents its default; unset fields keep ZeroMQ's.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <zmq.hpp>

#include "zkit/envelope.hpp"

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
  // ZMQ_MAXMSGSIZE: a peer that sends a larger frame is disconnected before the frame is
  // allocated. Unset: ZeroMQ's -1 (no limit) on senders; zkit's receiving sockets use
  // receive_limit() of their decode limits (see the three-argument apply() below).
  std::optional<std::int64_t> max_message_bytes;
  CurveOptions curve;
};

// The ZMQ_MAXMSGSIZE that matches what a decoder accepts: limits.max_batch_bytes plus slack for
// the small frames beside a batch (topic, reliable-link header). Frames past it could only be
// refused after being received whole, so ZeroMQ refuses them first.
inline constexpr std::int64_t kReceiveLimitSlack = 64 * 1024;
std::int64_t receive_limit(const envelope::Limits& limits) noexcept;
// Sets ZMQ_MAXMSGSIZE to receive_limit(limits) on a socket zkit receives on (before bind/connect:
// ZeroMQ applies it to connections made afterwards). Throws zmq::error_t as setsockopt does.
void apply_receive_limit(zmq::socket_ref socket, const envelope::Limits& limits);

// Applies every set field. Throws zmq::error_t for an option ZeroMQ refuses and
// std::invalid_argument for a malformed CURVE key (naming the field).
void apply(zmq::socket_ref socket, const SocketOptions& options);
// What every socket zkit receives on does: apply(socket, options), then ZMQ_MAXMSGSIZE =
// receive_limit(limits) unless options.max_message_bytes is set (then that wins). Call it before
// bind/connect. Throws as apply() does.
void apply(zmq::socket_ref socket, const SocketOptions& options, const envelope::Limits& limits);

// Endpoint spelling shared by every zkit command: "@ep" binds, ">ep" connects, a plain "ep" uses
// the caller's default. Throws std::invalid_argument naming the endpoint when it cannot parse
// (no transport, an unknown transport, an empty address), when a tcp:// endpoint cannot work (no
// port, a port over 65535, a numeric IPv4 address with a part over 255, "*" to connect to), or
// for a CZMQ-style list ("@a,@b": one endpoint per flag in zkit). Host names are not resolved
// here (see resolve_check).
struct Endpoint {
  std::string address;  // "tcp://127.0.0.1:5555"
  bool bind = false;
};
Endpoint parse_endpoint(const std::string& spec, bool bind_by_default);
// For a tcp:// endpoint that connects to a host name: resolves it once (getaddrinfo) and returns
// an empty string when it resolves, else why not ("host 'x' does not resolve: ..."). Other
// endpoints: empty. Blocks for as long as the resolver takes.
std::string resolve_check(const Endpoint& endpoint);
// Binds or connects as the endpoint says; returns the endpoint actually bound (resolving "*").
std::string attach(zmq::socket_ref socket, const Endpoint& endpoint);

}  // namespace zkit
