// Sees, from a test's own peer socket, that the remote end dropped the connection: how a test
// checks that a zkit socket refused a peer (ZMQ_MAXMSGSIZE) without reaching inside it.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <zmq.hpp>

namespace zkit::test {

class DisconnectWatch {
 public:
  // Monitors peer for ZMQ_EVENT_DISCONNECTED. peer must outlive the watch (declare it first).
  DisconnectWatch(zmq::context_t& context, zmq::socket_t& peer)
      : peer_(peer.handle()), monitor_(context, zmq::socket_type::pair) {
    const std::string address = "inproc://disconnect-watch-" + std::to_string(++serial_);
    if (zmq_socket_monitor(peer_, address.c_str(), ZMQ_EVENT_DISCONNECTED) != 0) {
      throw zmq::error_t();
    }
    monitor_.set(zmq::sockopt::linger, 0);
    monitor_.connect(address);
  }
  ~DisconnectWatch() { zmq_socket_monitor(peer_, nullptr, 0); }
  DisconnectWatch(const DisconnectWatch&) = delete;
  DisconnectWatch& operator=(const DisconnectWatch&) = delete;

  // True once a disconnect was seen within timeout.
  bool wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      zmq_pollitem_t item{monitor_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, left) == 0) return false;
      zmq::message_t event, address;
      (void)monitor_.recv(event);
      (void)monitor_.recv(address);
      std::uint16_t id = 0;
      std::memcpy(&id, event.data(), sizeof id);
      if (id & ZMQ_EVENT_DISCONNECTED) return true;
    }
  }

 private:
  void* peer_;
  zmq::socket_t monitor_;
  static inline int serial_ = 0;
};

}  // namespace zkit::test
