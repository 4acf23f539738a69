// The ZAP handler thread: a REP socket on inproc://zeromq.zap.01 answering ZAP 1.0 requests from
// an allow-list, and a pipe from the owner that stops it.
#include "zkit/zap.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <set>
#include <stdexcept>
#include <thread>
#include <unordered_set>

#include "zkit/keys.hpp"

namespace zkit {
namespace {

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
constexpr std::size_t kMaxLoggedDenials = 1000;  // distinct (key, address) pairs warned about

std::string pipe_address() {
  static std::atomic<unsigned> next{0};
  return "inproc://zkit-zap-" + std::to_string(next.fetch_add(1));
}

std::string text(const zmq::message_t& m) { return m.to_string(); }

}  // namespace

struct ZapHandler::Impl {
  zmq::socket_t pipe;
  std::thread thread;
  std::atomic<std::uint64_t> allowed{0}, denied{0};

  ~Impl() {
    if (thread.joinable()) {
      (void)pipe.send(zmq::str_buffer("$TERM"), zmq::send_flags::dontwait);  // none: it ended
      thread.join();
    }
  }
};

namespace {

// Reads one ZAP request (all its frames) and answers it.
void answer(zmq::socket_t& rep, const std::unordered_set<std::string>& keys,
            std::atomic<std::uint64_t>& allowed, std::atomic<std::uint64_t>& denied,
            std::set<std::string>& logged) {
  std::vector<zmq::message_t> frames;
  do {
    zmq::message_t m;
    if (!rep.recv(m, zmq::recv_flags::dontwait)) break;
    frames.push_back(std::move(m));
  } while (frames.back().more());
  if (frames.empty()) return;

  // Request: version, request id, domain, address, routing id, mechanism, credentials...
  std::string request_id = frames.size() > 1 ? text(frames[1]) : std::string();
  std::string status = "400", reason = "denied", user;
  if (frames.size() < 6 || text(frames[0]) != "1.0") {
    status = "500";
    reason = "malformed ZAP request";
  } else {
    const std::string address = text(frames[3]);
    const std::string mechanism = text(frames[5]);
    std::string key;
    if (mechanism == "CURVE" && frames.size() == 7 && frames[6].size() == 32) {
      std::array<char, 41> z85{};
      zmq_z85_encode(z85.data(), frames[6].data<std::uint8_t>(), 32);
      key = z85.data();
    }
    if (!key.empty() && keys.count(key) != 0) {
      status = "200";
      reason = "OK";
      user = key;
    } else {
      reason = key.empty() ? "mechanism " + mechanism + " not allowed" : "client key not allowed";
      const std::string who = (key.empty() ? mechanism : key) + " from " + address;
      if (logged.size() < kMaxLoggedDenials && logged.insert(who).second) {
        spdlog::warn("ZAP: denied {} ({})", who, reason);
      }
    }
  }
  (status == "200" ? allowed : denied).fetch_add(1, std::memory_order_relaxed);
  rep.send(zmq::str_buffer("1.0"), zmq::send_flags::sndmore);
  rep.send(zmq::buffer(request_id), zmq::send_flags::sndmore);
  rep.send(zmq::buffer(status), zmq::send_flags::sndmore);
  rep.send(zmq::buffer(reason), zmq::send_flags::sndmore);
  rep.send(zmq::buffer(user), zmq::send_flags::sndmore);
  rep.send(zmq::message_t(), zmq::send_flags::none);  // metadata: none
}

}  // namespace

ZapHandler::ZapHandler(zmq::context_t& context, const std::vector<std::string>& allowed_keys)
    : impl_(std::make_unique<Impl>()) {
  std::unordered_set<std::string> keys;
  for (const auto& k : allowed_keys) {
    if (!is_curve_key(k)) {
      throw std::invalid_argument("allow-list key '" + k + "' is not 40 Z85 characters");
    }
    keys.insert(k);
  }
  zmq::socket_t rep(context, zmq::socket_type::rep);
  rep.set(zmq::sockopt::linger, 0);
  rep.bind(kZapEndpoint);
  const std::string address = pipe_address();
  impl_->pipe = zmq::socket_t(context, zmq::socket_type::pair);
  impl_->pipe.set(zmq::sockopt::linger, 0);
  impl_->pipe.bind(address);
  zmq::socket_t inner(context, zmq::socket_type::pair);
  inner.set(zmq::sockopt::linger, 0);
  inner.connect(address);

  Impl* impl = impl_.get();
  impl_->thread = std::thread(
      [rep = std::move(rep), inner = std::move(inner), keys = std::move(keys), impl]() mutable {
        std::set<std::string> logged;
        try {
          for (;;) {
            std::array<zmq_pollitem_t, 2> items = {
                {{inner.handle(), 0, ZMQ_POLLIN, 0}, {rep.handle(), 0, ZMQ_POLLIN, 0}}};
            try {
              zmq::poll(items);
            } catch (const zmq::error_t& e) {
              if (e.num() == EINTR) continue;
              throw;
            }
            if (items[0].revents & ZMQ_POLLIN) return;  // $TERM
            if (items[1].revents & ZMQ_POLLIN)
              answer(rep, keys, impl->allowed, impl->denied, logged);
          }
        } catch (const zmq::error_t& e) {
          if (e.num() != ETERM) spdlog::error("ZAP handler stopped: {}", e.what());
        }
      });
}

ZapHandler::~ZapHandler() = default;
ZapHandler::ZapHandler(ZapHandler&&) noexcept = default;
ZapHandler& ZapHandler::operator=(ZapHandler&&) noexcept = default;

ZapStats ZapHandler::stats() const noexcept {
  return {impl_->allowed.load(std::memory_order_relaxed),
          impl_->denied.load(std::memory_order_relaxed)};
}

}  // namespace zkit
