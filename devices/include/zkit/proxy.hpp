// The proxy device: moves frames between a frontend and a backend socket, untouched, and counts
// them. An actor in the CZMQ zactor/zproxy style: a Proxy object owns one thread; its constructor
// returns once every socket is bound or connected and the thread is polling, its destructor once
// the thread has flushed and stopped.
//
//   streamer   PULL   -> PUSH     one way
//   forwarder  XSUB   -> XPUB     messages down, subscriptions up
//   queue      ROUTER <-> DEALER  requests down, replies up
//
// The optional control socket (zkit/control.hpp) answers what zmq_proxy_steerable (libzmq 4.3.5)
// answers: PAUSE, RESUME, TERMINATE -> one empty frame; STATISTICS -> 8 frames of uint64 in host
// byte order (frontend recv count, bytes, frontend sent count, bytes, backend recv count, bytes,
// backend sent count, bytes; counts are frames). It also answers STATS with one JSON document
// (ProxyStats::to_json). Any other command gets an empty frame and changes nothing.
//
// The forwarder decides every subscription itself (ZMQ_XPUB_MANUAL): it holds at most
// max_subscriptions distinct topics; a subscription to a new topic beyond that is refused (not
// applied, not passed upstream) and counted. Its XSUB's send high-water mark is sized from that
// bound, so that a publisher connecting later receives every held subscription (libzmq replays
// them at connect and drops those past the high-water mark). Its XPUB reports a subscriber at its
// high-water mark (ZMQ_XPUB_NODROP), so a message that cannot reach every matching subscriber is
// dropped by the proxy and counted: such a message reaches none of them.
//
// The optional capture socket (PUB or PUSH) receives a copy of every frame, both directions, as
// zmq_proxy does; a capture that would block loses that message (counted), never stalls traffic.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <zmq.hpp>

#include "zkit/envelope.hpp"
#include "zkit/options.hpp"

namespace zkit {

enum class ProxyType : std::uint8_t { kStreamer, kForwarder, kQueue };
const char* proxy_type_name(ProxyType t) noexcept;
// "streamer", "forwarder", "queue"; throws std::invalid_argument naming the value otherwise.
ProxyType parse_proxy_type(std::string_view name);

struct ProxyOptions {
  ProxyType type = ProxyType::kStreamer;
  // Endpoints as parse_endpoint() reads them ("@ep" binds, ">ep" connects). A plain endpoint
  // binds on every socket of the proxy: the device is the fixed point peers connect to.
  std::string frontend;
  std::string backend;
  std::string control;        // empty: no control socket
  std::string capture;        // empty: no capture socket
  bool capture_push = false;  // capture socket type: PUB (default) or PUSH
  // Applied to frontend and backend (HWMs, CURVE...). `linger` also bounds the flush at stop:
  // queued input is forwarded for at most this long, then sockets close with this linger.
  SocketOptions frontend_options;
  SocketOptions backend_options;
  // Frontend and backend refuse frames over receive_limit(limits) (ZMQ_MAXMSGSIZE: the peer is
  // disconnected before the frame is allocated), unless their options set max_message_bytes.
  envelope::Limits limits;
  // Applied to the control and the capture socket (CURVE, usually).
  SocketOptions control_options;
  SocketOptions capture_options;
  // Messages forwarded per direction before the loop polls again (fairness with control).
  int burst = 1000;
  // Forwarder: distinct topics subscribed through the proxy, at most (at least 1). `zkit proxy
  // --max-subscriptions`.
  std::size_t max_subscriptions = 10000;
};

// Counters of one side in one direction. A message is one multipart ZeroMQ message; its payload
// frame is the last frame (the 2nd of [topic][batch] on the forwarder) and is classified by
// envelope::peek: a batch adds its record count to `records` (compressed batches do not declare
// one and are counted in `compressed_batches`), anything else is `raw` (not judged, forwarded).
struct FlowStats {
  std::uint64_t frames = 0;
  std::uint64_t bytes = 0;
  std::uint64_t messages = 0;
  std::uint64_t batches = 0;
  std::uint64_t records = 0;             // application messages inside uncompressed batches
  std::uint64_t compressed_batches = 0;  // batches whose record count a peek cannot see
  std::uint64_t raw = 0;                 // messages whose payload frame is not a batch
  std::uint64_t malformed = 0;           // of raw: looked like a batch (array of 6) but peek failed
  // Sent side only. `messages` counts what ZeroMQ accepted for the destination: queued there, not
  // proof that a peer read it (messages queued for a consumer that never reads are lost when the
  // proxy closes after its linger, uncounted; the reliable link is the way to know).
  std::uint64_t dropped = 0;  // messages the proxy read and could not hand to the destination
  std::uint64_t held = 0;     // now: a message read and waiting for the destination's room (0/1)
};

struct ProxyStats {
  ProxyType type = ProxyType::kStreamer;
  FlowStats frontend_recv, frontend_sent, backend_recv, backend_sent;
  std::uint64_t capture_frames = 0;   // frames copied to the capture socket
  std::uint64_t capture_dropped = 0;  // messages not copied because the capture would block
  // Forwarder: subscription messages from subscribers, topics held now, and subscriptions to a new
  // topic refused at max_subscriptions. A topic is passed upstream when it is first subscribed and
  // its unsubscription when its last subscription goes (a subscriber leaving unsubscribes).
  std::uint64_t subscribes = 0;
  std::uint64_t unsubscribes = 0;
  std::uint64_t topics = 0;
  std::uint64_t subscriptions_refused = 0;
  std::uint64_t control_commands = 0;  // commands received on the control socket
  std::uint64_t uptime_ms = 0;
  bool paused = false;
  bool terminated = false;  // stopped by TERMINATE (or stop()); sockets are closed

  // One JSON document (what STATS answers): {"device":"proxy","type","state","uptime_s",
  // "frontend":{"recv":{...},"sent":{...}},"backend":{...},"capture":{...},"subscriptions":{...},
  // "drops","control_commands"} with FlowStats fields by their names above. docs/devices.md
  // describes every field.
  std::string to_json() const;
};

class Proxy {
 public:
  // Creates, configures and binds/connects every socket on the calling thread, then starts the
  // device thread. Throws std::invalid_argument for a bad endpoint or options, zmq::error_t when
  // ZeroMQ refuses (address in use...); nothing is left running then. `context` must outlive the
  // Proxy.
  Proxy(zmq::context_t& context, ProxyOptions options);
  // stop(), then joins the thread.
  ~Proxy();
  Proxy(Proxy&&) noexcept;
  Proxy& operator=(Proxy&&) noexcept;
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // The methods below are for the thread that owns the Proxy; each is a round trip with the device
  // thread and blocks for at most the flush (stop) or one burst (the others).
  void pause();
  void resume();
  ProxyStats stats();
  // Flushes and closes the sockets (see ProxyOptions::linger); idempotent. After it, stats() keeps
  // answering the final figures.
  void stop();
  // True once the device stopped, by stop() or by TERMINATE on the control socket, or failed.
  // Any thread.
  bool terminated() const noexcept;
  // A poll item (a descriptor) that turns readable once terminated(), so that an owner waiting for
  // signals and the end of the device in one zmq::poll needs no timer. Valid for the Proxy's life.
  zmq_pollitem_t terminated_item() const noexcept;
  // Why the device thread stopped on its own with an error (a ZeroMQ failure in the loop); empty
  // when it did not. Meaningful once terminated().
  std::string failure() const;

  ProxyType type() const noexcept;
  // Endpoints as bound ("tcp://127.0.0.1:41234" for "@tcp://127.0.0.1:*") or connected; empty
  // for an absent socket.
  const std::string& frontend_endpoint() const noexcept;
  const std::string& backend_endpoint() const noexcept;
  const std::string& control_endpoint() const noexcept;
  const std::string& capture_endpoint() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zkit
