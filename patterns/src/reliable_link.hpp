// What both ends of the reliable link share beyond core.hpp: the codec's messages on a socket (one
// way to send a control message, one way to read a whole ZeroMQ message), the one way to wait,
// peer liveness, and the JSON of the stats structs.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <zmq.hpp>

#include "core.hpp"
#include "zkit/envelope.hpp"
#include "zkit/reliable_codec.hpp"

namespace zkit::detail::link {

using Clock = std::chrono::steady_clock;
using LinkMessage = reliable::Message;
using reliable::MessageType;

// The pollitem of a closed or moved-from end: no socket, no fd, nothing to wait for.
inline constexpr zmq_pollitem_t kNoPollItem{nullptr, -1, 0, 0};

inline std::span<const std::byte> bytes_of(const zmq::message_t& m) noexcept {
  return {static_cast<const std::byte*>(m.data()), m.size()};
}

// Records in a batch frame by its header (0 when it does not peek, or is compressed).
inline std::uint64_t records_of(const zmq::message_t& frame) {
  Result<envelope::Header> h = envelope::peek(bytes_of(frame));
  return h ? h->record_count : 0;
}

// The ZAP User-Id a message carries (zkit's ZapHandler: the peer's Z85 CURVE key); empty when
// there is none. Valid while `m` lives.
inline std::string_view user_id(zmq::message_t& m) noexcept {
  const char* v = zmq_msg_gets(m.handle(), "User-Id");
  return v ? std::string_view(v) : std::string_view();
}

// Sends one control message without waiting, after `routing_id` when a ROUTER addresses a peer.
// False when there was no room (no peer yet, or the high-water mark); nothing was sent then.
inline bool send_control(zmq::socket_t& socket, const LinkMessage& m,
                         const std::string* routing_id = nullptr) {
  if (routing_id) {
    zmq::message_t id(routing_id->data(), routing_id->size());
    if (!socket.send(id, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return false;
  }
  zmq::message_t body = reliable::encode(m);
  // Parts after the first of a multipart message are not subject to the high-water mark.
  return socket.send(body, routing_id ? zmq::send_flags::none : zmq::send_flags::dontwait)
      .has_value();
}

// Reads one whole ZeroMQ message without waiting: its first `N` frames into `parts`, the rest
// discarded. Returns the number of frames the message had (0: none was waiting).
template <std::size_t N>
std::size_t recv_message(zmq::socket_t& socket, zmq::message_t (&parts)[N]) {
  if (!socket.recv(parts[0], zmq::recv_flags::dontwait)) return 0;
  std::size_t n = 1;
  bool more = parts[0].more();
  zmq::message_t extra;
  while (more) {
    zmq::message_t& into = n < N ? parts[n] : extra;
    if (!socket.recv(into, zmq::recv_flags::none)) break;
    more = into.more();
    ++n;
  }
  return n;
}

// The one way either end waits: core's wait_until (sub-millisecond deadlines, a stop through the
// waker). Returns false when a stop was requested.
inline bool wait(zmq::socket_t& socket, Waker& waker, std::optional<Clock::time_point> deadline) {
  return wait_until(socket, waker, deadline) != Wait::kStopped;
}

inline std::optional<Clock::time_point> deadline_of(std::chrono::milliseconds timeout,
                                                    Clock::time_point now) {
  if (timeout.count() < 0) return std::nullopt;
  return now + timeout;
}

// When a peer was last heard and whether it counts as alive: the same rule on both ends.
struct Liveness {
  Clock::time_point last_heard{};
  void heard(Clock::time_point now) noexcept { last_heard = now; }
  bool alive(Clock::time_point now, std::chrono::milliseconds timeout) const noexcept {
    return now - last_heard < timeout;
  }
};

}  // namespace zkit::detail::link
