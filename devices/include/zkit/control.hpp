// A device's control socket: one REP socket that the device's poll loop waits on beside its data
// sockets, answering one command per request. The proxy and the spool node share it, so every
// device speaks the same way:
//   STATS          -> one frame: the device's statistics as one JSON document (docs/devices.md);
//   a command the device knows (PAUSE, TERMINATE...) -> the reply the device gives;
//   anything else  -> one empty frame, nothing changes.
// A command is the first frame of a request; further frames are read and ignored. Over tcp and ipc,
// requests larger than kMaxCommandBytes are refused by ZeroMQ (ZMQ_MAXMSGSIZE: the peer is
// disconnected), so a peer cannot make the device allocate a large frame.
//
// Thread: belongs to the thread that polls it (move it to the device thread before the first use).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "zkit/options.hpp"

namespace zkit {

class ControlSocket {
 public:
  static constexpr std::int64_t kMaxCommandBytes = 4096;
  // The frames of one reply; an empty vector sends one empty frame.
  using Reply = std::vector<zmq::message_t>;
  // The device's reply to `command`, or std::nullopt for a command it does not know.
  using Handler = std::function<std::optional<Reply>(std::string_view command)>;

  // Absent: false in a boolean context, poll_item() names no socket.
  ControlSocket() noexcept = default;
  // Creates the REP socket, applies `options`, then binds or connects `endpoint` as
  // parse_endpoint() reads it (a plain endpoint binds). Throws std::invalid_argument for a bad
  // endpoint, zmq::error_t when ZeroMQ refuses.
  ControlSocket(zmq::context_t& context, const std::string& endpoint,
                const SocketOptions& options);
  ControlSocket(ControlSocket&&) noexcept = default;
  ControlSocket& operator=(ControlSocket&&) noexcept = default;

  explicit operator bool() const noexcept { return static_cast<bool>(socket_); }
  // As bound ("*" port resolved) or connected; empty when absent.
  const std::string& endpoint() const noexcept { return endpoint_; }
  // {handle, 0, ZMQ_POLLIN, 0} for the device's poll set (do not add an absent socket).
  zmq_pollitem_t poll_item() noexcept;

  // Answers the request waiting on the socket, if any, without blocking: STATS with stats(),
  // any other command with handler(command) or one empty frame. Returns the command answered
  // (its first frame as text), or std::nullopt when no request was waiting or the socket is
  // absent. The reply is sent before serve() returns, so a caller that stops on TERMINATE has
  // already answered it.
  std::optional<std::string> serve(const std::function<std::string()>& stats,
                                   const Handler& handler = {});

  std::uint64_t commands() const noexcept { return commands_; }  // requests answered
  void close() noexcept;

 private:
  zmq::socket_t socket_;
  std::string endpoint_;
  std::uint64_t commands_ = 0;
};

}  // namespace zkit
