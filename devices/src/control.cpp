// The control socket shared by every device (see zkit/control.hpp).
#include "zkit/control.hpp"

namespace zkit {

ControlSocket::ControlSocket(zmq::context_t& context, const std::string& endpoint,
                             const SocketOptions& options) {
  const Endpoint ep = parse_endpoint(endpoint, true);
  zmq::socket_t s(context, zmq::socket_type::rep);
  apply(s, options);
  s.set(zmq::sockopt::maxmsgsize, kMaxCommandBytes);
  endpoint_ = attach(s, ep);
  socket_ = std::move(s);
}

zmq_pollitem_t ControlSocket::poll_item() noexcept {
  return {socket_.handle(), 0, ZMQ_POLLIN, 0};
}

std::optional<std::string> ControlSocket::serve(const std::function<std::string()>& stats,
                                                const Handler& handler) {
  if (!socket_) return std::nullopt;
  zmq::message_t first;
  if (!socket_.recv(first, zmq::recv_flags::dontwait)) return std::nullopt;
  // ZeroMQ delivers a message whole, so the rest of a multipart request is already here.
  for (bool more = first.more(); more;) {
    zmq::message_t rest;
    if (!socket_.recv(rest, zmq::recv_flags::dontwait)) break;
    more = rest.more();
  }
  ++commands_;
  std::string command = first.to_string();
  Reply reply;
  if (command == "STATS") {
    const std::string json = stats();
    reply.emplace_back(json.data(), json.size());
  } else if (handler) {
    if (auto r = handler(command)) reply = std::move(*r);
  }
  if (reply.empty()) reply.emplace_back();
  for (std::size_t i = 0; i < reply.size(); ++i) {
    // REP never blocks on send: a requester that went away loses its reply.
    (void)socket_.send(reply[i],
                       i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
  return command;
}

void ControlSocket::close() noexcept { socket_.close(); }

}  // namespace zkit
