// A ZAP handler (ZeroMQ RFC 27, ZAP 1.0) that lets in CURVE clients whose public key is on an
// allow-list and nobody else. One per context, on inproc://zeromq.zap.01: every socket of the
// context that is a CURVE server (or has a ZAP domain) asks it about each new peer.
//
// RAII like a CZMQ actor: the constructor returns once the handler is bound and answering, the
// destructor once its thread has stopped. Create it before the sockets it guards accept peers:
// libzmq lets a CURVE client in without asking when no handler is bound.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>
#include <zmq.hpp>

namespace zkit {

struct ZapStats {
  std::uint64_t allowed = 0;
  std::uint64_t denied = 0;
};

class ZapHandler {
 public:
  // allowed_keys: Z85 public keys (40 characters). Throws std::invalid_argument naming a malformed
  // key, zmq::error_t (EADDRINUSE) when the context already has a ZAP handler. `context` must
  // outlive the handler.
  ZapHandler(zmq::context_t& context, const std::vector<std::string>& allowed_keys);
  ~ZapHandler();
  ZapHandler(ZapHandler&&) noexcept;
  ZapHandler& operator=(ZapHandler&&) noexcept;
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  // Requests answered so far. Any thread.
  ZapStats stats() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zkit
