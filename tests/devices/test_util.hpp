// Helpers shared by the device tests: batch frames built with the zkit encoder, control-socket
// round trips, bounded receives.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "zkit/envelope.hpp"

namespace zkit::test {

inline zmq::message_t make_batch(std::uint64_t producer, std::uint64_t seq, std::size_t records) {
  envelope::Encoder enc;
  enc.begin(producer);
  for (std::size_t i = 0; i < records; ++i) enc.add("record " + std::to_string(i));
  return enc.finish(seq, envelope::unix_now_ns());
}

// Receives one whole message within `timeout`; empty when none came.
inline std::optional<std::vector<zmq::message_t>> recv_within(
    zmq::socket_t& s, std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
  zmq_pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
  std::vector<zmq::message_t> parts;
  do {
    zmq::message_t m;
    (void)s.recv(m, zmq::recv_flags::none);
    parts.push_back(std::move(m));
  } while (parts.back().more());
  return parts;
}

// Sends `command` on a fresh REQ socket to the control endpoint; returns the reply frames.
inline std::vector<zmq::message_t> control(zmq::context_t& ctx, const std::string& endpoint,
                                           const std::string& command) {
  zmq::socket_t req(ctx, zmq::socket_type::req);
  req.set(zmq::sockopt::linger, 0);
  req.connect(endpoint);
  req.send(zmq::buffer(command), zmq::send_flags::none);
  auto reply = recv_within(req);
  if (!reply) throw std::runtime_error("no reply to " + command);
  return std::move(*reply);
}

inline nlohmann::json stats_json(zmq::context_t& ctx, const std::string& endpoint) {
  auto reply = control(ctx, endpoint, "STATS");
  return nlohmann::json::parse(reply.at(0).to_string());
}

inline std::vector<std::uint64_t> statistics(zmq::context_t& ctx, const std::string& endpoint) {
  std::vector<std::uint64_t> values;
  for (auto& f : control(ctx, endpoint, "STATISTICS")) {
    std::uint64_t v = 0;
    if (f.size() != sizeof v) throw std::runtime_error("STATISTICS frame of wrong size");
    std::memcpy(&v, f.data(), sizeof v);
    values.push_back(v);
  }
  return values;
}

inline std::string unique_inproc(const std::string& name) {
  static int n = 0;
  return "inproc://" + name + "-" + std::to_string(++n);
}

}  // namespace zkit::test
