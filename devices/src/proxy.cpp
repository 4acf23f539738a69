// The proxy device thread: one zmq::poll on the owner's pipe, the control socket and the data
// sockets (not zmq_proxy_steerable), so that every frame can be counted, every batch header peeked
// on its way through and every subscription decided. It waits without a timeout: an idle proxy
// uses no CPU.
#include "zkit/proxy.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "zkit/control.hpp"
#include "zkit/envelope.hpp"

namespace zkit {
namespace {

using Clock = std::chrono::steady_clock;

// Directions: kDown is frontend -> backend, kUp backend -> frontend (replies, subscriptions).
enum Direction : int { kDown = 0, kUp = 1 };

// Commands on the owner <-> device pipe (PAIR over inproc).
constexpr std::string_view kCmdPause = "PAUSE";
constexpr std::string_view kCmdResume = "RESUME";
constexpr std::string_view kCmdStats = "STATS";
constexpr std::string_view kCmdStop = "STOP";
constexpr std::string_view kCmdTerm = "$TERM";

// After a stop, queued input is forwarded until the sockets have been idle this long (or the
// linger has passed).
constexpr std::chrono::milliseconds kFlushQuiet{50};

// What the payload frame of one message is.
struct Classified {
  enum Kind { kBatch, kCompressed, kRaw, kMalformed, kSubscription } kind = kRaw;
  std::uint64_t records = 0;
};

Classified classify(const zmq::message_t& frame) {
  auto bytes = std::span(static_cast<const std::byte*>(frame.data()), frame.size());
  auto header = envelope::peek(bytes);
  if (header.is_ok()) {
    if (header->compression() != envelope::Compression::kNone) return {Classified::kCompressed, 0};
    return {Classified::kBatch, header->record_count};
  }
  // 0x96: a MessagePack array of 6 elements, the shape of a batch.
  if (!bytes.empty() && bytes[0] == std::byte{0x96}) return {Classified::kMalformed, 0};
  return {Classified::kRaw, 0};
}

void count(FlowStats& f, const Classified& c) {
  f.messages++;
  switch (c.kind) {
    case Classified::kBatch:
      f.batches++;
      f.records += c.records;
      break;
    case Classified::kCompressed:
      f.batches++;
      f.compressed_batches++;
      break;
    case Classified::kMalformed:
      f.malformed++;
      f.raw++;
      break;
    case Classified::kRaw:
      f.raw++;
      break;
    case Classified::kSubscription:
      break;
  }
}

bool command_is(const zmq::message_t& m, std::string_view name) {
  return m.size() == name.size() && std::memcmp(m.data(), name.data(), name.size()) == 0;
}

// Room in the forwarder's XSUB send queue: every held subscription (replayed to a publisher when
// it connects) and as many changes again.
int xsub_sndhwm(const ProxyOptions& o) {
  const int asked = o.frontend_options.sndhwm.value_or(1000);
  if (asked == 0) return 0;  // unbounded already
  const std::size_t needed = std::min<std::size_t>(o.max_subscriptions, (1u << 29)) * 2;
  return std::max(asked, static_cast<int>(needed));
}

std::string pipe_address() {
  static std::atomic<unsigned> next{0};
  return "inproc://zkit-proxy-" + std::to_string(next.fetch_add(1));
}

struct SocketTypes {
  zmq::socket_type front, back;
};
SocketTypes socket_types(ProxyType t) {
  switch (t) {
    case ProxyType::kStreamer:
      return {zmq::socket_type::pull, zmq::socket_type::push};
    case ProxyType::kForwarder:
      return {zmq::socket_type::xsub, zmq::socket_type::xpub};
    case ProxyType::kQueue:
      return {zmq::socket_type::router, zmq::socket_type::dealer};
  }
  throw std::invalid_argument("unknown proxy type");
}

// State shared between the owner and the device thread.
struct Shared {
  Shared() : done_fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (done_fd < 0) throw std::system_error(errno, std::generic_category(), "proxy: eventfd");
  }
  ~Shared() { ::close(done_fd); }
  Shared(const Shared&) = delete;
  Shared& operator=(const Shared&) = delete;

  std::atomic<bool> terminated{false};
  int done_fd;  // readable once terminated: the owner can wait on it instead of polling
  std::mutex mutex;
  std::string failure;  // guarded by mutex
};

// Owns the device's sockets; lives on the device thread once started.
class Device {
 public:
  Device(const ProxyOptions& o, zmq::socket_t front, zmq::socket_t back, ControlSocket control,
         zmq::socket_t capture, zmq::socket_t pipe, std::shared_ptr<Shared> shared)
      : type_(o.type),
        burst_(o.burst),
        max_subscriptions_(o.max_subscriptions),
        linger_(o.frontend_options.linger),
        front_(std::move(front)),
        back_(std::move(back)),
        control_(std::move(control)),
        capture_(std::move(capture)),
        pipe_(std::move(pipe)),
        shared_(std::move(shared)),
        started_(Clock::now()) {
    // Only PUSH and DEALER hold a message back when no peer can take it. The others never wait:
    // XPUB (ZMQ_XPUB_NODROP) refuses a message a full subscriber cannot take and the proxy drops
    // it, counted (XPUB polls always writable, so waiting would spin); XSUB takes subscriptions
    // any time; the ROUTER reports unroutable replies.
    may_block_[kDown] = type_ != ProxyType::kForwarder;
    may_block_[kUp] = false;
  }

  // Returns on $TERM from the owner. A failure in the loop closes the device's sockets and is
  // recorded; the pipe keeps answering (final statistics) until $TERM.
  void run() {
    for (;;) {
      try {
        loop();
        break;
      } catch (const zmq::error_t& e) {
        if (e.num() == ETERM) break;
        fail(e.what());
      } catch (const std::exception& e) {
        fail(e.what());
      }
      close_all();
    }
    close_all();
  }

 private:
  bool two_way() const { return type_ != ProxyType::kStreamer; }

  void loop() {
    std::vector<zmq_pollitem_t>& items = poll_items_;
    for (;;) {
      items.clear();
      items.push_back({pipe_.handle(), 0, ZMQ_POLLIN, 0});
      if (control_) items.push_back(control_.poll_item());
      const std::size_t socket_items = items.size();
      if (front_) add_data_items(items);
      try {
        zmq::poll(items);
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        throw;
      }
      if (items[0].revents & ZMQ_POLLIN) {
        if (!handle_pipe()) return;
      }
      if (control_ && (items[1].revents & ZMQ_POLLIN)) handle_control();
      if (front_ && items.size() > socket_items) handle_data(items, socket_items);
    }
  }

  // Frontend and backend: POLLIN on a source whose destination can take a message, POLLOUT on a
  // destination that could not (then its source is left alone until it can).
  void add_data_items(std::vector<zmq_pollitem_t>& items) {
    if (paused_) return;
    short fe = blocked_[kDown] ? 0 : ZMQ_POLLIN;
    short be = 0;
    if (blocked_[kDown]) be |= ZMQ_POLLOUT;
    if (two_way()) {
      if (!blocked_[kUp]) be |= ZMQ_POLLIN;
      if (blocked_[kUp]) fe |= ZMQ_POLLOUT;
    }
    items.push_back({front_.handle(), 0, fe, 0});
    items.push_back({back_.handle(), 0, be, 0});
  }

  void handle_data(const std::vector<zmq_pollitem_t>& items, std::size_t first) {
    const short fr = items[first].revents;
    const short br = items[first + 1].revents;
    if (br & ZMQ_POLLOUT) blocked_[kDown] = false;
    if (fr & ZMQ_POLLOUT) blocked_[kUp] = false;
    if (!blocked_[kDown] && ((fr & ZMQ_POLLIN) || pending_[kDown].valid)) forward_burst(kDown);
    if (two_way() && !blocked_[kUp] && ((br & ZMQ_POLLIN) || pending_[kUp].valid)) {
      forward_burst(kUp);
    }
  }

  // Forwards up to burst_ messages, until the source is empty or the destination is full.
  void forward_burst(Direction d) {
    zmq::socket_t& from = d == kDown ? front_ : back_;
    zmq::socket_t& to = d == kDown ? back_ : front_;
    for (int n = 0; n < burst_ && !blocked_[d]; ++n) {
      if (!forward_message(d, from, to)) break;
    }
  }

  // Counts a received frame, classifies the last one, copies it to the capture.
  void received(Direction d, zmq::message_t& frame, std::size_t index, bool& capture_ok,
                Classified& what) {
    FlowStats& in = d == kDown ? stats_.frontend_recv : stats_.backend_recv;
    in.frames++;
    in.bytes += frame.size();
    if (!frame.more()) what = classify_payload(d, frame, index);
    if (capture_ok) capture_ok = copy_to_capture(frame, frame.more(), index);
  }

  // Moves one whole message; false when none was waiting or the destination could not take it
  // (a PUSH or DEALER without room: its first frame is held in pending_ and the direction is
  // blocked until the destination polls writable; the rest stays queued in the source).
  bool forward_message(Direction d, zmq::socket_t& from, zmq::socket_t& to) {
    FlowStats& in = d == kDown ? stats_.frontend_recv : stats_.backend_recv;
    FlowStats& out = d == kDown ? stats_.backend_sent : stats_.frontend_sent;
    Pending& held = pending_[d];
    zmq::message_t frame;
    bool capture_ok = static_cast<bool>(capture_);
    Classified what;
    const bool was_held = held.valid;
    if (was_held) {
      frame = std::move(held.frame);
      capture_ok = held.capture_ok;
      what = held.what;
      held.valid = false;
    } else {
      if (!from.recv(frame, zmq::recv_flags::dontwait)) return false;
      received(d, frame, 0, capture_ok, what);
      if (what.kind == Classified::kSubscription) {
        count(in, what);
        subscription(frame);
        return true;
      }
      // Counted as received at once, so that received = sent + dropped + held at any time (a
      // single-frame message; a multipart one is counted once all its frames are read).
      if (!frame.more()) count(in, what);
    }
    bool dropped = false;
    const bool multipart = frame.more();
    bool more = multipart;
    std::size_t size = frame.size();
    if (send(to, frame, more)) {
      out.frames++;
      out.bytes += size;
    } else if (may_block_[d]) {
      held = {std::move(frame), capture_ok, what, true};
      blocked_[d] = true;
      return false;
    } else {
      dropped = true;  // the rest of the message is read and discarded
    }
    for (std::size_t index = 1; more; ++index) {
      zmq::message_t next;
      if (!from.recv(next, zmq::recv_flags::dontwait)) {
        throw std::logic_error("proxy: a multipart message arrived incomplete");
      }
      more = next.more();
      size = next.size();
      received(d, next, index, capture_ok, what);
      if (dropped) continue;
      if (send(to, next, more)) {
        out.frames++;
        out.bytes += size;
      } else {
        dropped = true;
      }
    }
    if (multipart) count(in, what);
    if (dropped) {
      out.dropped++;
    } else {
      count(out, what);
    }
    return true;
  }

  Classified classify_payload(Direction d, const zmq::message_t& last, std::size_t index) {
    if (type_ == ProxyType::kForwarder) {
      if (d == kUp) {
        // XPUB delivers (un)subscriptions as one frame: 1 or 0, then the topic prefix. Anything
        // else a subscriber sends upstream is passed on as it is.
        if (index == 0 && last.size() >= 1) {
          const auto first = static_cast<const unsigned char*>(last.data())[0];
          if (first == 0 || first == 1) return {Classified::kSubscription, 0};
        }
        return {Classified::kRaw, 0};
      }
      // Pub/sub batches travel as [topic][batch].
      if (index != 1) return {Classified::kRaw, 0};
    }
    return classify(last);
  }

  // One (un)subscription from the XPUB (manual mode: nothing is applied until the proxy says so).
  // Topics are counted by subscription messages; the first subscription to a topic and its last
  // unsubscription travel upstream, so the XSUB holds each topic once.
  void subscription(zmq::message_t& frame) {
    const auto* data = static_cast<const char*>(frame.data());
    const bool subscribe = data[0] == 1;
    std::string topic(data + 1, frame.size() - 1);
    if (subscribe) {
      stats_.subscribes++;
      auto it = topics_.find(topic);
      if (it == topics_.end()) {
        if (topics_.size() >= max_subscriptions_) {
          // The subscriber's XPUB pipe keeps it in libzmq's own table until it disconnects; it
          // never matches a message and never reaches the publishers.
          stats_.subscriptions_refused++;
          return;
        }
        it = topics_.emplace(topic, 0).first;
        upstream(frame);
      }
      it->second++;
      back_.set(zmq::sockopt::subscribe, topic);
      return;
    }
    stats_.unsubscribes++;
    // Applied even for a topic not held: after a subscriber left, libzmq has already removed it
    // and ignores this; otherwise it removes the subscriber's entry.
    back_.set(zmq::sockopt::unsubscribe, topic);
    auto it = topics_.find(topic);
    if (it == topics_.end()) return;  // one that was refused
    if (--it->second == 0) {
      topics_.erase(it);
      upstream(frame);
    }
  }

  void upstream(zmq::message_t& frame) {
    zmq::message_t copy;
    copy.copy(frame);
    const std::size_t size = copy.size();
    // XSUB takes subscriptions at any time (its send queue is sized from max_subscriptions).
    if (send(front_, copy, false)) {
      stats_.frontend_sent.frames++;
      stats_.frontend_sent.bytes += size;
      stats_.frontend_sent.messages++;
    } else {
      stats_.frontend_sent.dropped++;
    }
  }

  bool send(zmq::socket_t& to, zmq::message_t& frame, bool more) {
    const auto flags =
        more ? zmq::send_flags::dontwait | zmq::send_flags::sndmore : zmq::send_flags::dontwait;
    try {
      return to.send(frame, flags).has_value();
    } catch (const zmq::error_t& e) {
      if (e.num() == EHOSTUNREACH) return false;  // ROUTER: the requester is gone
      throw;
    }
  }

  // Returns false when the capture could not take this message (the rest of it is not copied).
  bool copy_to_capture(zmq::message_t& frame, bool more, std::size_t index) {
    zmq::message_t copy;
    copy.copy(frame);
    const auto flags =
        more ? zmq::send_flags::dontwait | zmq::send_flags::sndmore : zmq::send_flags::dontwait;
    if (capture_.send(copy, flags)) {
      stats_.capture_frames++;
      return true;
    }
    if (index == 0) stats_.capture_dropped++;
    return false;
  }

  ProxyStats snapshot() const {
    ProxyStats s = stats_;
    s.uptime_ms = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_).count());
    s.type = type_;
    s.paused = paused_;
    s.terminated = !front_;
    s.topics = topics_.size();
    s.backend_sent.held = pending_[kDown].valid ? 1 : 0;
    s.frontend_sent.held = pending_[kUp].valid ? 1 : 0;
    s.control_commands = control_.commands() + control_commands_closed_;
    return s;
  }

  // Returns false on $TERM: the thread ends.
  bool handle_pipe() {
    zmq::message_t cmd;
    if (!pipe_.recv(cmd, zmq::recv_flags::dontwait)) return true;
    if (command_is(cmd, kCmdStats)) {
      ProxyStats s = snapshot();
      pipe_.send(zmq::message_t(&s, sizeof s), zmq::send_flags::none);
      return true;
    }
    bool keep_running = true;
    if (command_is(cmd, kCmdPause)) {
      paused_ = true;
    } else if (command_is(cmd, kCmdResume)) {
      paused_ = false;
    } else if (command_is(cmd, kCmdStop)) {
      shutdown();
    } else if (command_is(cmd, kCmdTerm)) {
      shutdown();
      keep_running = false;
    }
    pipe_.send(zmq::message_t(), zmq::send_flags::none);
    return keep_running;
  }

  // As zmq_proxy_steerable: STATISTICS -> 8 uint64 frames, PAUSE, RESUME, TERMINATE -> one empty
  // frame; STATS and the rest as every device (zkit/control.hpp).
  void handle_control() {
    auto command = control_.serve([this] { return snapshot().to_json(); },
                                  [this](std::string_view cmd) -> std::optional<ControlSocket::Reply> {
                                    return steer(cmd);
                                  });
    if (command && *command == "TERMINATE") shutdown();
  }

  std::optional<ControlSocket::Reply> steer(std::string_view cmd) {
    if (cmd == "STATISTICS") {
      const std::array<std::uint64_t, 8> v = {
          stats_.frontend_recv.frames, stats_.frontend_recv.bytes, stats_.frontend_sent.frames,
          stats_.frontend_sent.bytes,  stats_.backend_recv.frames, stats_.backend_recv.bytes,
          stats_.backend_sent.frames,  stats_.backend_sent.bytes};
      ControlSocket::Reply reply;
      for (std::uint64_t x : v) reply.emplace_back(&x, sizeof x);
      return reply;
    }
    if (cmd == "PAUSE") {
      paused_ = true;
    } else if (cmd == "RESUME") {
      paused_ = false;
    } else if (cmd != "TERMINATE") {
      return std::nullopt;
    }
    return ControlSocket::Reply{};
  }

  // Stops taking new work: forwards what is already queued (unless paused) until the sockets go
  // quiet or the linger has passed, then closes every socket but the pipe. Idempotent.
  void shutdown() {
    if (!front_) return;
    if (!paused_) {
      const auto deadline = Clock::now() + linger_;
      while (Clock::now() < deadline) {
        std::vector<zmq_pollitem_t> items;
        add_data_items(items);
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (zmq::poll(items, std::min(left, kFlushQuiet)) == 0) break;
        handle_data(items, 0);
      }
    }
    // A message still held for a destination that never made room is lost.
    if (pending_[kDown].valid) stats_.backend_sent.dropped++;
    if (pending_[kUp].valid) stats_.frontend_sent.dropped++;
    pending_[kDown].valid = pending_[kUp].valid = false;
    close_all();
  }

  void close_all() {
    front_.close();
    back_.close();
    capture_.close();
    control_commands_closed_ += control_.commands();
    control_ = ControlSocket();
    shared_->terminated.store(true, std::memory_order_release);
    const std::uint64_t one = 1;
    (void)!::write(shared_->done_fd, &one, sizeof one);
  }

  void fail(const std::string& what) {
    std::lock_guard lock(shared_->mutex);
    shared_->failure = what;
  }

  ProxyType type_;
  int burst_;
  std::size_t max_subscriptions_;
  std::chrono::milliseconds linger_;
  zmq::socket_t front_, back_;
  ControlSocket control_;
  std::uint64_t control_commands_closed_ = 0;  // answered before the control socket closed
  zmq::socket_t capture_, pipe_;
  std::unordered_map<std::string, std::uint64_t> topics_;  // forwarder: subscriptions per topic
  std::shared_ptr<Shared> shared_;
  Clock::time_point started_;
  ProxyStats stats_;
  bool paused_ = false;
  bool blocked_[2] = {false, false};
  struct Pending {
    zmq::message_t frame;
    bool capture_ok = false;
    Classified what;
    bool valid = false;
  };
  Pending pending_[2];
  std::vector<zmq_pollitem_t> poll_items_;  // reused by loop() (shutdown() polls its own)
  bool may_block_[2] = {false, false};
};

}  // namespace

const char* proxy_type_name(ProxyType t) noexcept {
  switch (t) {
    case ProxyType::kStreamer:
      return "streamer";
    case ProxyType::kForwarder:
      return "forwarder";
    case ProxyType::kQueue:
      return "queue";
  }
  return "unknown";
}

ProxyType parse_proxy_type(std::string_view name) {
  if (name == "streamer") return ProxyType::kStreamer;
  if (name == "forwarder") return ProxyType::kForwarder;
  if (name == "queue") return ProxyType::kQueue;
  throw std::invalid_argument("proxy type '" + std::string(name) +
                              "' is not one of streamer, forwarder, queue");
}

struct Proxy::Impl {
  ProxyType type;
  std::string frontend, backend, control, capture;
  zmq::socket_t pipe;
  std::thread thread;
  std::shared_ptr<Shared> shared = std::make_shared<Shared>();
  bool stopped = false;  // owner side: STOP already sent
  ProxyStats final_stats;

  zmq::message_t call(std::string_view cmd) {
    pipe.send(zmq::buffer(cmd), zmq::send_flags::none);
    zmq::message_t reply;
    (void)pipe.recv(reply, zmq::recv_flags::none);
    return reply;
  }

  ~Impl() {
    if (thread.joinable()) {
      (void)call(kCmdTerm);
      thread.join();
    }
  }
};

Proxy::Proxy(zmq::context_t& context, ProxyOptions o) : impl_(std::make_unique<Impl>()) {
  if (o.burst < 1) throw std::invalid_argument("ProxyOptions::burst must be at least 1");
  if (o.max_subscriptions < 1) {
    throw std::invalid_argument("ProxyOptions::max_subscriptions must be at least 1");
  }
  if (o.frontend.empty()) throw std::invalid_argument("proxy frontend endpoint is empty");
  if (o.backend.empty()) throw std::invalid_argument("proxy backend endpoint is empty");
  impl_->type = o.type;
  const SocketTypes types = socket_types(o.type);
  // Parse every endpoint before creating anything, so a typo fails without side effects.
  const Endpoint fe = parse_endpoint(o.frontend, true);
  const Endpoint be = parse_endpoint(o.backend, true);
  std::optional<Endpoint> pe;
  if (!o.control.empty()) (void)parse_endpoint(o.control, true);
  if (!o.capture.empty()) pe = parse_endpoint(o.capture, true);

  zmq::socket_t front(context, types.front);
  zmq::socket_t back(context, types.back);
  apply(front, o.frontend_options, o.limits);
  apply(back, o.backend_options, o.limits);
  if (o.type == ProxyType::kQueue) front.set(zmq::sockopt::router_mandatory, 1);
  if (o.type == ProxyType::kForwarder) {
    front.set(zmq::sockopt::sndhwm, xsub_sndhwm(o));
    back.set(zmq::sockopt::xpub_manual, 1);
    back.set(zmq::sockopt::xpub_nodrop, 1);
  }
  zmq::socket_t capture;
  if (pe) {
    capture =
        zmq::socket_t(context, o.capture_push ? zmq::socket_type::push : zmq::socket_type::pub);
    apply(capture, o.capture_options);
  }
  impl_->frontend = attach(front, fe);
  impl_->backend = attach(back, be);
  ControlSocket control;
  if (!o.control.empty()) {
    control = ControlSocket(context, o.control, o.control_options);
    impl_->control = control.endpoint();
  }
  if (pe) impl_->capture = attach(capture, *pe);

  const std::string address = pipe_address();
  impl_->pipe = zmq::socket_t(context, zmq::socket_type::pair);
  impl_->pipe.set(zmq::sockopt::linger, 0);
  impl_->pipe.bind(address);
  zmq::socket_t device_pipe(context, zmq::socket_type::pair);
  device_pipe.set(zmq::sockopt::linger, 0);
  device_pipe.connect(address);

  // Sockets made here move to the device thread; starting the thread is the memory barrier
  // ZeroMQ asks for when a socket changes threads.
  auto device = std::make_unique<Device>(o, std::move(front), std::move(back), std::move(control),
                                         std::move(capture), std::move(device_pipe), impl_->shared);
  impl_->thread = std::thread([d = std::move(device)] { d->run(); });
}

Proxy::~Proxy() = default;
Proxy::Proxy(Proxy&&) noexcept = default;
Proxy& Proxy::operator=(Proxy&&) noexcept = default;

void Proxy::pause() { (void)impl_->call(kCmdPause); }
void Proxy::resume() { (void)impl_->call(kCmdResume); }

ProxyStats Proxy::stats() {
  zmq::message_t reply = impl_->call(kCmdStats);
  ProxyStats s;
  static_assert(std::is_trivially_copyable_v<ProxyStats>);
  if (reply.size() != sizeof s) throw std::logic_error("proxy: malformed STATS reply on the pipe");
  std::memcpy(&s, reply.data(), sizeof s);
  return s;
}

void Proxy::stop() {
  if (impl_->stopped) return;
  (void)impl_->call(kCmdStop);
  impl_->stopped = true;
}

bool Proxy::terminated() const noexcept {
  return impl_->shared->terminated.load(std::memory_order_acquire);
}

zmq_pollitem_t Proxy::terminated_item() const noexcept {
  return {nullptr, impl_->shared->done_fd, ZMQ_POLLIN, 0};
}

std::string Proxy::failure() const {
  std::lock_guard lock(impl_->shared->mutex);
  return impl_->shared->failure;
}

ProxyType Proxy::type() const noexcept { return impl_->type; }
const std::string& Proxy::frontend_endpoint() const noexcept { return impl_->frontend; }
const std::string& Proxy::backend_endpoint() const noexcept { return impl_->backend; }
const std::string& Proxy::control_endpoint() const noexcept { return impl_->control; }
const std::string& Proxy::capture_endpoint() const noexcept { return impl_->capture; }

}  // namespace zkit
