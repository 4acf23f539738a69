// What both directions share: the AMQP connection with its reconnect backoff, and the poll set.
#pragma once

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>

#include "amqp.hpp"
#include "zkit/control.hpp"
#include "zkit/bridge.hpp"

namespace zkit::bridge_detail {

using Clock = std::chrono::steady_clock;

// Owns the connection; connect() is attempted when due, with a doubling backoff after each
// failure or loss. The first connection must come within connect_timeout (else BridgeError);
// after that, losses are retried for ever. A fatal AmqpError (credentials, a missing queue)
// becomes a BridgeError at once.
class AmqpLink {
 public:
  AmqpLink(const AmqpSettings& settings, BridgeStats& stats)
      : settings_(settings), stats_(stats), first_deadline_(Clock::now() + settings.connect_timeout),
        backoff_(settings.retry_min) {}

  amqp::Connection* get() noexcept { return conn_.get(); }
  bool due(Clock::time_point now) const noexcept { return !conn_ && now >= next_attempt_; }
  std::optional<Clock::time_point> deadline() const noexcept {
    if (conn_) return std::nullopt;
    return next_attempt_;
  }

  // Connects and runs `setup` on the new connection. Returns true when connected.
  bool connect(const std::function<void(amqp::Connection&)>& setup) {
    try {
      auto c = std::make_unique<amqp::Connection>(settings_);
      setup(*c);
      conn_ = std::move(c);
      ever_connected_ = true;
      backoff_ = settings_.retry_min;
      ++stats_.connects;
      spdlog::info("bridge: connected to amqp://{}:{} vhost '{}'", settings_.host, settings_.port,
                   settings_.vhost);
      return true;
    } catch (const amqp::AmqpError& e) {
      if (e.fatal()) throw BridgeError(e.what());
      ++stats_.connect_failures;
      if (!ever_connected_ && Clock::now() >= first_deadline_) {
        throw BridgeError(fmt::format("{} (gave up after {} ms; --connect-timeout-ms)", e.what(),
                                      settings_.connect_timeout.count()));
      }
      spdlog::warn("bridge: {}; retrying in {} ms", e.what(), backoff_.count());
      schedule();
      return false;
    }
  }

  // The connection failed: drop it and schedule a reconnect. Fatal errors become BridgeError.
  void lost(const amqp::AmqpError& e) {
    if (e.fatal()) throw BridgeError(e.what());
    ++stats_.connection_losses;
    spdlog::warn("bridge: connection lost: {}; reconnecting in {} ms", e.what(), backoff_.count());
    conn_.reset();
    schedule();
  }

  void close() noexcept {
    if (conn_) conn_->close();
    conn_.reset();
  }

 private:
  void schedule() {
    next_attempt_ = Clock::now() + backoff_;
    backoff_ = std::min(backoff_ * 2, settings_.retry_max);
  }

  AmqpSettings settings_;
  BridgeStats& stats_;
  std::unique_ptr<amqp::Connection> conn_;
  Clock::time_point first_deadline_;
  Clock::time_point next_attempt_{};
  std::chrono::milliseconds backoff_;
  bool ever_connected_ = false;
};

inline void earliest(std::optional<Clock::time_point>& d, std::optional<Clock::time_point> t) {
  if (t && (!d || *t < *d)) d = t;
}

// The poll timeout: `timeout` capped by the earliest deadline (0 when one has passed).
inline std::chrono::milliseconds wait_for(std::chrono::milliseconds timeout,
                                          std::optional<Clock::time_point> d) {
  if (!d) return timeout;
  const auto left = std::max(std::chrono::milliseconds(0),
                             std::chrono::ceil<std::chrono::milliseconds>(*d - Clock::now()));
  return timeout.count() < 0 ? left : std::min(timeout, left);
}

// Answers one control request (STATS, TERMINATE). Returns false after TERMINATE.
inline bool serve_control(ControlSocket& control, BridgeStats& stats,
                          const std::function<std::string()>& json) {
  const auto command = control.serve(json, [](std::string_view c) {
    return c == "TERMINATE" ? std::optional<ControlSocket::Reply>(ControlSocket::Reply{})
                            : std::nullopt;
  });
  if (command) ++stats.control_commands;
  return !(command && *command == "TERMINATE");
}

}  // namespace zkit::bridge_detail
