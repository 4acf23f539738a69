// What every zkit typed socket shares: one options struct, the Message a receiver hands out, the
// report close() gives, and the vocabulary (documented here once):
//
//   bind(ep) / connect(ep)   any libzmq endpoint (inproc://, ipc://, tcp://); return the endpoint
//                            actually bound (tcp://127.0.0.1:* resolved). zmq::error_t propagates.
//   send(...)                buffered by the socket's Batcher; a sealed batch goes to ZeroMQ at
//                            once. Messages held in an unsealed batch leave on the next send(),
//                            pump() or flush(), or when close() flushes: a sender that goes quiet
//                            must call pump() by its next_deadline() (or flush()), nothing else
//                            will. A send that cannot complete within send_timeout (socket full
//                            at the high-water mark) returns false (Client: an empty optional)
//                            and counts stats().send_would_block; it never throws for that.
//   flush()                  seals what is held and hands every sealed batch to ZeroMQ.
//   pump()                   seals a batch whose linger/adaptive deadline has passed and sends it;
//                            returns the next deadline (empty when nothing is held; now when a
//                            sealed batch still waits for room at the high-water mark).
//   poll_item()              what a poll loop owning several sockets waits on: {handle, 0,
//                            ZMQ_POLLIN, 0}, plus ZMQ_POLLOUT while a sealed batch waits for room.
//   next_deadline()          the latest time by which the socket's non-blocking step must run even
//                            if poll_item() shows no event (batch deadline, request timeout, held
//                            messages: now); empty when nothing timed is pending. The step is
//                            pump() for Pusher/Publisher, poll_once(..., 0ms) for the others. A
//                            loop: zmq::poll the items with timeout = earliest next_deadline()
//                            (none: -1), then run the step of every socket whose item fired or
//                            whose deadline passed. Set send_timeout (0 is fine) on a sender
//                            driven so, or its step may block at the high-water mark.
//   receive(timeout)         pull-style: one message at a time.
//   run(handler)             calls handler for every message until stop().
//   poll_once(handler, t)    waits up to t for messages and handles those that arrived.
//   stop()                   makes run() return; callable from the handler or from any thread.
//   close()                  senders flush, wait up to the linger and report what could not be
//                            sent; receive-only sockets (SUB, PULL) close with linger 0.
//   stats()                  counters and latency (zkit/stats.hpp), to_json() for a snapshot.
//   on_error(callback)       receivers (Puller, Subscriber, Client, Server): called on the
//                            socket's thread for every frame or record counted in
//                            stats().decode_errors, with why (the codec's Status for a batch).
//
// Timeouts are std::chrono::milliseconds; a negative timeout waits for ever. Each socket object
// belongs to one thread (stop() is the one exception). Sockets are move-only; the application owns
// the zmq::context_t, which must outlive every socket made from it. A moved-from socket throws
// std::logic_error("zkit::<Type>: used after move") from every member but the destructor,
// move-assignment, close() (a no-op), poll_item() (an item that never fires) and next_deadline()
// (empty); those two are noexcept for poll loops.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>

#include "zkit/batcher.hpp"
#include "zkit/envelope.hpp"
#include "zkit/options.hpp"
#include "zkit/stats.hpp"
#include "zkit/status.hpp"

namespace zkit {

struct PatternOptions {
  SocketOptions socket;     // high-water marks, linger (also close()'s wait), reconnect, CURVE...
  BatcherOptions batch;     // when a batch is sealed (zkit/batcher.hpp)
  envelope::Limits limits;  // what a receiver accepts; send() refuses a message over
                            // limits.max_record_bytes (or too big for batch.max_bytes)
  bool raw = false;         // one frame = one message, no envelope: talk to plain ZeroMQ peers
  // How long a send may wait at the high-water mark. Unset (default): Pusher, Client and Server
  // block as ZeroMQ does; a Publisher never waits (it drops and counts, see zkit/pubsub.hpp).
  std::optional<std::chrono::milliseconds> send_timeout;
  // Subscriber: how many producers' sequence series it tracks for gap counting (peers can make
  // new producer ids at will, so this is bounded). Beyond it the producer seen longest ago is
  // forgotten, counted in stats().producers_forgotten; should it come back it counts as new.
  // Must be at least 1 (std::invalid_argument).
  std::size_t max_producers = 4096;
  // Subscriber: a sequence jump, forward or back, of more than this many batches is taken as a
  // reset of that producer's series (a restart under the same id, or a forged seq): counted in
  // stats().sequence_resets, not in missed_batches, and counting goes on from the new seq.
  std::uint64_t max_sequence_gap = std::uint64_t{1} << 20;
};

// One received message. The views stay valid until the next receive/poll_once/run call on the
// same socket, or its destruction; copy what must live longer.
struct Message {
  std::span<const std::byte> data;
  std::string_view topic;         // Subscriber: the batch's topic (raw: the first of two frames)
  std::uint64_t producer_id = 0;  // the sending producer (0 in raw mode)
  std::uint64_t seq = 0;          // the batch's sequence number (0 in raw mode)

  std::string_view text() const noexcept {
    return {reinterpret_cast<const char*>(data.data()), data.size()};
  }
};

using MessageHandler = std::function<void(const Message&)>;
// Why a receiver dropped a frame (see on_error in the vocabulary above).
using ErrorCallback = std::function<void(const Status&)>;

// What close() could not do. Nothing zkit held is dropped without appearing here.
struct CloseReport {
  std::uint64_t unsent_messages = 0;  // buffered messages not handed to ZeroMQ within the linger
  std::uint64_t unsent_batches = 0;
  bool clean() const noexcept { return unsent_messages == 0; }
};

inline std::span<const std::byte> as_bytes(std::string_view s) noexcept {
  return std::as_bytes(std::span(s.data(), s.size()));
}

}  // namespace zkit
