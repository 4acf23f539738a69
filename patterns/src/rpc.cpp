// Client (DEALER) and Server (ROUTER): batched asynchronous request/reply with correlation ids
// (record layout in rpc_format.hpp), per-request timeouts, replies through a kept Responder.
#include "zkit/rpc.hpp"

#include <cstring>
#include <deque>
#include <map>
#include <queue>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "core.hpp"
#include "rpc_format.hpp"

namespace zkit {

using Clock = std::chrono::steady_clock;

const char* reply_status_name(ReplyStatus s) noexcept {
  switch (s) {
    case ReplyStatus::kOk:
      return "ok";
    case ReplyStatus::kTimeout:
      return "timeout";
    case ReplyStatus::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

namespace {

// Reads the rest of a message with parts zkit does not expect; returns how many it read.
std::size_t skip_rest(zmq::socket_t& socket, zmq::message_t& part) {
  std::size_t n = 0;
  while (part.more() && socket.recv(part, zmq::recv_flags::none)) ++n;
  return n;
}

// A batch record too short to hold its correlation id.
Status short_record(const char* kind, std::size_t size) {
  return Status::corruption(std::string(kind) + " record of " + std::to_string(size) +
                            " bytes is shorter than its " + std::to_string(rpc_format::kIdBytes) +
                            "-byte correlation id");
}

// Builds [id][payload] in a reused buffer (no allocation once it has grown).
std::span<const std::byte> with_id(std::vector<std::byte>& scratch, std::uint64_t id,
                                   std::span<const std::byte> payload) {
  scratch.resize(rpc_format::kIdBytes + payload.size());
  rpc_format::put_id(scratch.data(), id);
  if (!payload.empty()) {
    std::memcpy(scratch.data() + rpc_format::kIdBytes, payload.data(), payload.size());
  }
  return scratch;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
struct Client::Impl final : detail::Receiver {
  struct Pending {
    ReplyHandler handler;
    Clock::time_point deadline;
  };
  using Expiry = std::pair<Clock::time_point, std::uint64_t>;

  Impl(zmq::context_t& context, PatternOptions o)
      : Receiver(context, zmq::socket_type::dealer, std::move(o), "Client"),
        outbox(options.batch, {}, stats,
               [this](std::string_view, zmq::message_t& frame) { return send_frame(frame); }) {
    // No ZMQ_IMMEDIATE here (unlike Pusher): with libzmq 4.3.4 a connecting DEALER that has it set
    // sometimes never receives the replies (seen with a pyzmq REP peer, ~1 run in 3 under load).
    // close() still accounts for every request: whatever has no reply completes as kCancelled.
    detail::set_send_timeout(socket, options, -1);
  }

  // [batch], or [""][payload] in raw mode (the REQ shape).
  detail::Sent send_frame(zmq::message_t& frame) {
    if (options.raw && !socket.send(zmq::message_t(), zmq::send_flags::sndmore)) {
      return detail::Sent::kFull;
    }
    if (options.raw) {
      socket.send(frame, zmq::send_flags::none);  // later parts of a message always go
      return detail::Sent::kOk;
    }
    return socket.send(frame, zmq::send_flags::none) ? detail::Sent::kOk : detail::Sent::kFull;
  }

  std::optional<std::uint64_t> send(std::span<const std::byte> request, ReplyHandler on_reply,
                                    std::chrono::milliseconds timeout) {
    check_open();
    if (!on_reply) throw std::invalid_argument("zkit::Client::send without a reply handler");
    detail::check_size(request.size() + rpc_format::kIdBytes, options);
    std::uint64_t id = next_id;
    bool taken = options.raw ? outbox.send_now({}, zmq::message_t(request.data(), request.size()))
                             : outbox.add({}, with_id(scratch, id, request));
    if (!taken) return std::nullopt;
    ++next_id;
    if (options.raw) raw_order.push_back(id);
    Clock::time_point deadline = Clock::now() + timeout;
    pending.emplace(id, Pending{std::move(on_reply), deadline});
    expiries.emplace(deadline, id);
    return id;
  }

  bool take_ready() override {
    zmq::message_t frame;
    while (socket.recv(frame, zmq::recv_flags::dontwait)) {
      if (options.raw) {
        if (frame.more() && frame.size() == 0) {  // [""][payload] from a REP/ROUTER peer
          (void)socket.recv(frame, zmq::recv_flags::none);
        }
        if (frame.more()) {
          skip_rest(socket, frame);
          malformed(Status::corruption(
              "raw reply with more than one payload frame; a raw Client takes [payload] or "
              "[\"\"][payload]"));
          continue;
        }
        inbox.hold_raw(std::move(frame), stats);
        return true;
      }
      if (frame.more()) {
        malformed(Status::corruption("reply of " + std::to_string(skip_rest(socket, frame) + 1) +
                                     " frames; a Client takes one batch frame"));
        continue;
      }
      if (hold(std::move(frame)) && !inbox.empty()) return true;
      frame = zmq::message_t();
    }
    return false;
  }

  void complete(std::uint64_t id, ReplyStatus status, std::span<const std::byte> data) {
    auto it = pending.find(id);
    if (it == pending.end()) {
      ++stats.dropped_messages;  // its request already timed out (or an id we never sent)
      return;
    }
    ReplyHandler handler = std::move(it->second.handler);
    pending.erase(it);
    handler(Reply{id, status, data});
  }

  std::size_t expire(Clock::time_point now) {
    std::size_t n = 0;
    while (!expiries.empty() && expiries.top().first <= now && !waker.requested()) {
      auto [deadline, id] = expiries.top();
      expiries.pop();
      auto it = pending.find(id);
      if (it == pending.end() || it->second.deadline != deadline) continue;
      ++stats.timeouts;
      complete(id, ReplyStatus::kTimeout, {});
      ++n;
    }
    return n;
  }

  std::size_t dispatch_replies() {
    std::size_t n = 0;
    Message m;
    while (!waker.requested() && inbox.next(m, stats)) {
      if (options.raw) {
        if (raw_order.empty()) {
          ++stats.dropped_messages;
          continue;
        }
        std::uint64_t id = raw_order.front();
        raw_order.pop_front();
        n += pending.count(id);
        complete(id, ReplyStatus::kOk, m.data);
        continue;
      }
      if (m.data.size() < rpc_format::kIdBytes) {
        malformed(short_record("reply", m.data.size()));
        continue;
      }
      std::uint64_t id = rpc_format::get_id(m.data);
      n += pending.count(id);
      complete(id, ReplyStatus::kOk, m.data.subspan(rpc_format::kIdBytes));
    }
    return n;
  }

  // When the step must run: a batch or a request timeout is due, or replies are held.
  std::optional<Clock::time_point> next_deadline() const noexcept {
    std::optional<Clock::time_point> d = detail::earliest(outbox.deadline(), held_deadline());
    if (!expiries.empty()) d = detail::earliest(d, expiries.top().first);
    return d;
  }

  std::size_t step(std::optional<Clock::time_point> until) {
    outbox.poll();
    std::size_t n = expire(Clock::now());
    std::optional<Clock::time_point> wake = detail::earliest(until, outbox.deadline());
    if (!expiries.empty()) wake = detail::earliest(wake, expiries.top().first);
    if (fill(wake)) n += dispatch_replies();
    n += expire(Clock::now());
    outbox.poll();
    drop_answered_expiries();
    return n;
  }

  // Expiries are dropped lazily; those of answered requests on top are dropped here, so that
  // next_deadline() never wakes a poll loop for a request that has its reply.
  void drop_answered_expiries() {
    while (!expiries.empty()) {
      auto it = pending.find(expiries.top().second);
      if (it != pending.end() && it->second.deadline == expiries.top().first) break;
      expiries.pop();
    }
  }

  CloseReport close() {
    if (closed) return report;
    report = outbox.close(socket, options.socket.linger);
    Receiver::close();
    auto outstanding = std::move(pending);
    pending.clear();
    for (auto& [id, p] : outstanding) p.handler(Reply{id, ReplyStatus::kCancelled, {}});
    return report;
  }

  detail::Outbox outbox;
  std::vector<std::byte> scratch;
  std::unordered_map<std::uint64_t, Pending> pending;
  std::priority_queue<Expiry, std::vector<Expiry>, std::greater<>> expiries;
  std::deque<std::uint64_t> raw_order;  // raw mode: requests in send order
  std::uint64_t next_id = 1;
};

Client::Client(zmq::context_t& context, PatternOptions options)
    : impl_(std::make_unique<Impl>(context, std::move(options))) {}
Client::~Client() { detail::replace(impl_, nullptr); }
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&& o) noexcept {
  detail::replace(impl_, std::move(o.impl_));
  return *this;
}
Client::Impl& Client::impl() const { return detail::live(impl_, "Client"); }
std::string Client::bind(const std::string& ep) { return detail::attach(impl().socket, ep, true); }
std::string Client::connect(const std::string& ep) {
  return detail::attach(impl().socket, ep, false);
}
std::optional<std::uint64_t> Client::send(std::span<const std::byte> request, ReplyHandler on_reply,
                                          std::chrono::milliseconds timeout) {
  return impl().send(request, std::move(on_reply), timeout);
}
bool Client::flush() {
  impl().check_open();
  return impl_->outbox.flush();
}
std::optional<Clock::time_point> Client::pump() {
  impl().check_open();
  impl_->outbox.poll();
  if (impl_->outbox.blocked()) return Clock::now();
  return impl_->outbox.deadline();
}
std::size_t Client::poll_once(std::chrono::milliseconds timeout) {
  impl().check_open();
  std::size_t n = impl_->step(detail::Receiver::deadline_of(timeout));
  if (impl_->waker.requested()) impl_->waker.clear();
  return n;
}
void Client::run() {
  impl().check_open();
  try {
    while (!impl_->waker.requested()) impl_->step(std::nullopt);
  } catch (const zmq::error_t& e) {
    if (e.num() != ETERM) throw;
  }
  impl_->waker.clear();
}
void Client::stop() { impl().waker.wake(); }
void Client::on_error(ErrorCallback callback) { impl().on_error = std::move(callback); }
zmq_pollitem_t Client::poll_item() noexcept {
  return impl_ ? impl_->poll_item(impl_->outbox.poll_events()) : detail::inert_poll_item();
}
std::optional<Clock::time_point> Client::next_deadline() const noexcept {
  if (!impl_ || impl_->closed) return std::nullopt;
  return impl_->next_deadline();
}
std::size_t Client::in_flight() const { return impl().pending.size(); }
CloseReport Client::close() { return impl_ ? impl_->close() : CloseReport{}; }
const SocketStats& Client::stats() const { return impl().stats; }
zmq::socket_ref Client::socket() { return impl().socket; }

// ---------------------------------------------------------------------------------------------
struct Responder::Target {
  virtual void reply(const std::string& route, std::uint64_t id,
                     std::span<const std::byte> payload) = 0;

 protected:
  ~Target() = default;
};

void Responder::reply(std::span<const std::byte> payload) {
  if (replied_) throw std::invalid_argument("zkit::Responder: request already answered");
  if (target_ == nullptr) throw std::invalid_argument("zkit::Responder: empty responder");
  target_->reply(route_, id_, payload);
  replied_ = true;
}

namespace {
constexpr std::size_t kIdlePeersKept =
    1024;  // peer batchers kept beyond this are pruned when empty

// A routing envelope (every frame before the batch: ROUTER identities, any REQ delimiter) kept in
// one string, each frame as [length: LEB128][bytes], so it can key the per-client reply batches.
// ZeroMQ identities are 5 bytes: one or two frames stay within std::string's inline buffer.
void append_frame(std::string& route, const zmq::message_t& frame) {
  std::size_t n = frame.size();
  do {
    auto b = static_cast<unsigned char>(n & 0x7f);
    n >>= 7;
    if (n != 0) b |= 0x80;
    route.push_back(static_cast<char>(b));
  } while (n != 0);
  route.append(static_cast<const char*>(frame.data()), frame.size());
}

// The frame of route at pos (advanced past it); false at the end. route comes from append_frame.
bool next_frame(std::string_view route, std::size_t& pos, std::string_view& frame) {
  if (pos >= route.size()) return false;
  std::size_t n = 0;
  for (int shift = 0;; shift += 7) {
    auto b = static_cast<unsigned char>(route[pos++]);
    n |= static_cast<std::size_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) break;
  }
  frame = route.substr(pos, n);
  pos += n;
  return true;
}
}  // namespace

struct Server::Impl final : detail::Receiver, Responder::Target {
  Impl(zmq::context_t& context, PatternOptions o)
      : Receiver(context, zmq::socket_type::router, std::move(o), "Server"),
        outbox(options.batch, {detail::AtFull::kDrop, false, kIdlePeersKept}, stats,
               [this](std::string_view to, zmq::message_t& frame) { return send_to(to, frame); }) {
    socket.set(zmq::sockopt::router_mandatory, 1);  // a reply to a gone peer fails, and counts
    detail::set_send_timeout(socket, options, -1);
  }

  // Reads [envelope...][batch]: every frame before the last is the routing envelope (this
  // ROUTER's identity of the sender, those of any ROUTERs on the way, a REQ peer's empty
  // delimiter), kept whole in route to be sent back before the reply batch.
  bool take_ready() override {
    zmq::message_t part;
    while (socket.recv(part, zmq::recv_flags::dontwait)) {
      route.clear();
      client.clear();
      while (part.more()) {
        append_frame(route, part);
        if (part.size() != 0) client.assign(static_cast<const char*>(part.data()), part.size());
        (void)socket.recv(part, zmq::recv_flags::none);  // parts arrive together
      }
      if (route.empty()) {  // a ROUTER always prepends an identity; kept as a guard
        malformed(Status::corruption("request without a routing envelope"));
        continue;
      }
      if (options.raw) {
        inbox.hold_raw(std::move(part), stats);
      } else if (!hold(std::move(part))) {
        continue;
      }
      if (!inbox.empty()) return true;
      part = zmq::message_t();
    }
    return false;
  }

  std::size_t dispatch(const RequestHandler& handler) {
    std::size_t n = 0;
    Message m;
    while (!waker.requested() && inbox.next(m, stats)) {
      if (options.raw) {
        handler(m, Responder(this, route, client, 0));
      } else {
        if (m.data.size() < rpc_format::kIdBytes) {
          malformed(short_record("request", m.data.size()));
          continue;
        }
        std::uint64_t rid = rpc_format::get_id(m.data);
        m.data = m.data.subspan(rpc_format::kIdBytes);
        handler(m, Responder(this, route, client, rid));
      }
      ++n;
    }
    return n;
  }

  // Sends [envelope...][frame]. A peer that is full (kFull) or gone (kGone) loses the frame; the
  // Outbox counts it.
  detail::Sent send_to(std::string_view to, zmq::message_t& frame) {
    std::size_t pos = 0;
    std::string_view part;
    next_frame(to, pos, part);  // the first frame picks the peer: only it can fail
    try {
      if (!socket.send(zmq::buffer(part.data(), part.size()), zmq::send_flags::sndmore)) {
        return detail::Sent::kFull;
      }
    } catch (const zmq::error_t& e) {
      if (e.num() != EHOSTUNREACH) throw;
      return detail::Sent::kGone;
    }
    while (next_frame(to, pos, part)) {
      socket.send(zmq::buffer(part.data(), part.size()), zmq::send_flags::sndmore);
    }
    socket.send(frame, zmq::send_flags::none);
    return detail::Sent::kOk;
  }

  void reply(const std::string& to, std::uint64_t rid,
             std::span<const std::byte> payload) override {
    check_open();
    if (options.raw) {
      detail::check_size(payload.size(), options);
      (void)outbox.send_now(to, zmq::message_t(payload.data(), payload.size()));
      return;
    }
    detail::check_size(payload.size() + rpc_format::kIdBytes, options);
    (void)outbox.add(to, with_id(scratch, rid, payload));  // no room: dropped and counted
  }

  std::optional<Clock::time_point> pump() {
    outbox.poll();
    return outbox.deadline();
  }

  std::size_t step(const RequestHandler& handler, std::optional<Clock::time_point> until) {
    std::size_t n = 0;
    if (fill(detail::earliest(until, pump()))) n = dispatch(handler);
    pump();
    return n;
  }

  CloseReport close() {
    if (closed) return report;
    report = outbox.close(socket, options.socket.linger);
    return Receiver::close();
  }

  std::string route;      // envelope of the batch being handed out (append_frame encoding)
  std::string client;     // its last non-empty envelope frame: the client's identity
  detail::Outbox outbox;  // reply batches per envelope
  std::vector<std::byte> scratch;
};

Server::Server(zmq::context_t& context, PatternOptions options)
    : impl_(std::make_unique<Impl>(context, std::move(options))) {}
Server::~Server() { detail::replace(impl_, nullptr); }
Server::Server(Server&&) noexcept = default;
Server& Server::operator=(Server&& o) noexcept {
  detail::replace(impl_, std::move(o.impl_));
  return *this;
}
Server::Impl& Server::impl() const { return detail::live(impl_, "Server"); }
std::string Server::bind(const std::string& ep) { return detail::attach(impl().socket, ep, true); }
std::string Server::connect(const std::string& ep) {
  return detail::attach(impl().socket, ep, false);
}
std::size_t Server::poll_once(const RequestHandler& handler, std::chrono::milliseconds timeout) {
  impl().check_open();
  std::size_t n = impl_->step(handler, detail::Receiver::deadline_of(timeout));
  if (impl_->waker.requested()) impl_->waker.clear();
  return n;
}
void Server::run(const RequestHandler& handler) {
  impl().check_open();
  try {
    while (!impl_->waker.requested()) impl_->step(handler, std::nullopt);
  } catch (const zmq::error_t& e) {
    if (e.num() != ETERM) throw;
  }
  impl_->waker.clear();
}
void Server::stop() { impl().waker.wake(); }
void Server::on_error(ErrorCallback callback) { impl().on_error = std::move(callback); }
bool Server::flush() {
  impl().check_open();
  return impl_->outbox.flush();
}
std::optional<Clock::time_point> Server::pump() {
  impl().check_open();
  return impl_->pump();
}
zmq_pollitem_t Server::poll_item() noexcept {
  return impl_ ? impl_->poll_item(impl_->outbox.poll_events()) : detail::inert_poll_item();
}
std::optional<Clock::time_point> Server::next_deadline() const noexcept {
  if (!impl_ || impl_->closed) return std::nullopt;
  return detail::earliest(impl_->outbox.deadline(), impl_->held_deadline());
}
CloseReport Server::close() { return impl_ ? impl_->close() : CloseReport{}; }
const SocketStats& Server::stats() const { return impl().stats; }
zmq::socket_ref Server::socket() { return impl().socket; }

}  // namespace zkit
