// The spool node (store-and-forward): takes batches from reliable senders (and optionally plain
// PUSH peers), appends them to an on-disk zkit::spool::Store, acknowledges each upstream once it is
// as durable as the fsync policy promises, and forwards the log downstream over a ReliableSender,
// advancing the store's cursor only on the downstream's acknowledgement. With `serve`, consumers
// join named groups on a ROUTER and get the log under credit, with acks, redelivery and dead
// letters (docs/queues.md); --forward is then the group `forward`. docs/spool-node.md describes
// the guarantees per fsync mode and what happens at each limit.
//
// Thread: a SpoolNode belongs to the thread that drives it (poll_once/run); only stop() and
// stopping() may be called from another thread. Sockets are created in the constructor, so
// construct it on the thread that drives it (or hand it over before the first poll, with the
// memory barrier a thread start gives). Move-only is not offered: the ack callbacks point into it.
// Waiting: one zmq::poll on every socket the node owns (upstream receiver, downstream sender,
// --pull, control, --serve and its disconnect monitor) and a waker, with the earliest timer as its timeout (heartbeats, resends, the
// fsync interval, a disk retry, max_age, ack_wait and consumer heartbeats, a NACK's delay, a group
// file write); with nothing to do the node uses no CPU.
// Blocking: the constructor recovers the store (reads every segment); poll_once(timeout) blocks up
// to timeout plus the disk I/O of one round (one fsync with --fsync always); shutdown() up to
// linger. Errors: setup failures throw (std::invalid_argument for bad options, std::runtime_error
// naming the directory when the store cannot be opened, zmq::error_t from bind/connect); once
// running, nothing a peer or the disk does escapes the loop: errors are counted, logged and
// retried.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "zkit/options.hpp"
#include "zkit/spool/group.hpp"
#include "zkit/spool/store.hpp"
#include "zkit/stats.hpp"

namespace zkit {

// The group the --forward link reads as (docs/queues.md); no consumer may join it.
inline constexpr std::string_view kForwardGroup = "forward";

// Where a new group starts, as `zkit recv --start` and GROUP-RESET write it: "earliest",
// "latest", "pos=SEGMENT:OFFSET" or "time=UNIX_NS". InvalidArgument naming the text otherwise.
struct GroupStart {
  spool::StartKind kind = spool::StartKind::kEarliest;
  std::uint64_t a = 0;  // position: segment; time: unix ns
  std::uint64_t b = 0;  // position: offset
};
Result<GroupStart> parse_group_start(std::string_view text);

// Every field documents its default.
struct SpoolNodeOptions {
  spool::Options store;  // dir (required), fsync, limits, segment size, env (tests inject one)
  // Endpoints as parse_endpoint() reads them ("@ep" binds, ">ep" connects).
  std::string listen;   // reliable senders (ROUTER); plain binds. Required.
  std::string forward;  // the downstream reliable receiver (DEALER); plain connects. Empty: none
                        // (then serve is required).
  std::string pull;     // plain PUSH peers (PULL); plain binds. Empty: none.
  std::string control;  // control socket (REP: STATS, TERMINATE, GROUP...); plain binds. Empty: none.
  std::string serve;    // consumers (ROUTER, the consumer protocol); plain binds. Empty: none.
  SocketOptions listen_socket;   // CURVE, HWMs... of each socket (linger 1000 ms by default)
  SocketOptions forward_socket;
  SocketOptions pull_socket;
  SocketOptions control_socket;
  SocketOptions serve_socket;    // ZMQ_MAXMSGSIZE defaults to 64 KiB, SNDHWM to max_prefetch + 1024
  std::size_t upstream_window = 64;  // credit per sender session: batches not yet acknowledged
  std::size_t forward_window = 64;   // batches in flight downstream (each held in memory once)
  std::size_t max_sessions = 1024;   // upstream sender sessions kept (ReliableReceiverOptions);
                                     // the link's duplicate window is store.duplicate_window
  std::chrono::milliseconds heartbeat_interval{1000};  // downstream PING period
  std::chrono::milliseconds heartbeat_timeout{5000};   // both links: silence = peer dead
  std::chrono::milliseconds resend_timeout{2000};      // downstream: no ack progress -> resend
  std::chrono::milliseconds retry_min{50};     // after a write error, first retry after this;
  std::chrono::milliseconds retry_max{2000};   // doubling up to this
  std::chrono::milliseconds linger{1000};      // shutdown(): wait this long for downstream acks
  std::size_t pull_burst = 256;  // frames read from --pull per round
  // Consumer groups (--serve; docs/queues.md). Every table a consumer can grow has its bound.
  std::size_t max_groups = 64;      // groups (durable); a JOIN naming one more gets ERROR 3
  std::size_t max_members = 64;     // members per group; one more gets ERROR 4
  std::size_t max_prefetch = 1024;  // prefetch_batches allowed (pending per member); ERROR 2
  // A member that takes BUNDLEs (zkit::Consumer does) gets its batches in BUNDLEs of up to this
  // many bytes (filled while it has credit; a bigger batch goes alone). 0: DELIVERs only.
  std::size_t bundle_bytes = 256 * 1024;
  std::size_t max_pending = 65536;  // per group: out + acked above the floor (GroupOptions)
  std::uint64_t max_dead_bytes = std::uint64_t{1} << 30;  // per group's dead-letter log
  std::chrono::milliseconds ack_wait{30000};   // unacked this long: redelivered (JOIN may set)
  std::uint32_t max_deliver = 5;               // deliveries before dead letter; 0: unlimited
  std::chrono::milliseconds consumer_heartbeat{5000};  // a member silent this long is dead
};

// One consumer group now (STATS "groups"; helper metrics reads the same struct).
struct GroupFigures {
  std::string name;
  std::uint64_t members = 0;  // now
  spool::GroupStats state;    // delivered, redelivered, acked, dead-lettered, pending, lag, floor
};

// The --serve socket's counters since start.
struct ServeFigures {
  std::uint64_t members = 0;          // now, all groups
  std::uint64_t joins = 0;
  std::uint64_t refused_joins = 0;    // JOINs answered with an ERROR (2, 3, 4, 7)
  std::uint64_t replaced = 0;         // members replaced by a new JOIN on the same connection
  std::uint64_t leaves = 0;
  std::uint64_t timed_out = 0;        // silent past consumer_heartbeat
  std::uint64_t disconnected = 0;     // connection gone (a send to it refused)
  std::uint64_t dropped = 0;          // dropped for misbehaving (malformed frames, reading nothing)
  std::uint64_t deliveries = 0;       // batches delivered (by DELIVER or in a BUNDLE)
  std::uint64_t bundles = 0;          // BUNDLEs sent
  std::uint64_t ack_wait_expired = 0;  // deliveries taken back unacked after ack_wait
  std::uint64_t nacks = 0;
  std::uint64_t malformed = 0;        // messages that did not decode or break the protocol
  std::uint64_t unknown_member = 0;   // ERROR 1
  std::uint64_t unknown_tag = 0;      // ERROR 5
  std::uint64_t errors_sent = 0;
  std::uint64_t replies_dropped = 0;  // PONG/ERROR not sent: the peer reads nothing
};

struct SpoolNodeStats {
  // "running", "blocked: full", "blocked: write error" or "stopped".
  std::string state;
  std::uint64_t uptime_ms = 0;
  // Upstream.
  std::uint64_t accepted_batches = 0;   // from reliable senders, delivered by the link
  std::uint64_t accepted_messages = 0;
  std::uint64_t pull_batches = 0;       // from plain PUSH peers (no acknowledgement possible)
  std::uint64_t pull_messages = 0;
  std::uint64_t pull_malformed = 0;     // --pull frames that are not valid batches: dropped
  std::uint64_t bad_batches = 0;        // reliable DATA whose batch did not decode (link counts)
  std::uint64_t link_decode_errors = 0; // malformed link messages on --listen
  std::uint64_t acknowledged_upstream = 0;  // batches acknowledged to senders after commit
  std::uint64_t duplicates = 0;         // batches already stored: acknowledged, not stored again
  std::uint64_t parked = 0;             // now: batches received, waiting for room or the disk
  std::uint64_t upstream_peers = 0;     // now
  bool credit_paused = false;           // now: upstream backpressure
  // Store.
  spool::Stats store;                   // stored, backlog, fsyncs, disk, corrupt, dropped...
  std::uint64_t write_errors = 0;       // failed appends/commits (each retried)
  bool disk_failing = false;            // now: a write error is being retried
  // Downstream.
  std::uint64_t forwarded_batches = 0;  // handed to the downstream link (once each)
  std::uint64_t forwarded_messages = 0;
  std::uint64_t acknowledged_batches = 0;  // acknowledged by the downstream
  std::uint64_t acknowledged_messages = 0;
  // Unix-clock ns from each batch's created_ns (sealed by its producer) to the downstream's
  // acknowledgement: the end-to-end age of a batch through the spool (clock offsets between hosts
  // add in).
  LatencyHistogram batch_age;
  std::uint64_t unforwardable = 0;      // stored records whose frame no longer reads as a batch
  std::uint64_t in_flight = 0;          // now
  bool downstream_connected = false;    // now
  std::uint64_t control_commands = 0;
  std::uint64_t loop_errors = 0;  // exceptions caught in the loop: logged, counted; it carries on
  // Consumer groups: `forward` first when the node forwards, then every served group by name.
  std::vector<GroupFigures> groups;
  ServeFigures serve;

  // One JSON document (what STATS answers): {"device":"spool", "state", "uptime_s", "accepted",
  // "stored", "forwarded", "acknowledged", "duplicates", "backlog", "fsync", "disk", ...,
  // "serve", "groups"}. docs/spool-node.md describes every field.
  std::string to_json() const;
  // {"groups": [...]}: what GROUPS answers on the control socket.
  std::string groups_json() const;
};

class SpoolNode {
 public:
  // Opens (and recovers) the store, then creates, binds and connects every socket. Throws as the
  // header comment says; nothing is left open then.
  SpoolNode(zmq::context_t& context, SpoolNodeOptions options);
  ~SpoolNode();  // shutdown(), errors logged
  SpoolNode(const SpoolNode&) = delete;
  SpoolNode& operator=(const SpoolNode&) = delete;

  // One round: waits until traffic, the earliest timer, stop() or `timeout` (negative: no limit
  // but the timers), stores what arrived, commits (group commit), acknowledges what the commit
  // covers, forwards what the downstream window allows, answers the control socket, runs the
  // timers that are due (limits, retries). Returns true while the node should keep running
  // (false after stop() or TERMINATE).
  // `extra` (optional): one more item for the same wait, such as the driver's signal descriptor;
  // its revents are set on return, so a driver can wait on its own event without waking the node
  // on a timer.
  bool poll_once(std::chrono::milliseconds timeout, zmq_pollitem_t* extra = nullptr);
  // poll_once until stop() or TERMINATE, then shutdown().
  void run();
  // Wakes the poll and makes run() return at once (after the round in progress). Any thread;
  // async-signal-safe.
  void stop() noexcept;
  bool stopping() const noexcept { return stop_.load(std::memory_order_acquire); }

  // Stops accepting (credit withheld, sockets upstream closed), commits and acknowledges what is
  // stored, waits up to linger for the downstream to acknowledge what is in flight, persists the
  // cursor and closes the store. Idempotent; returns the first error met.
  Status shutdown();

  SpoolNodeStats stats();
  // Endpoints as bound or connected ("*" ports resolved); empty for an absent socket.
  const std::string& listen_endpoint() const noexcept;
  const std::string& forward_endpoint() const noexcept;
  const std::string& pull_endpoint() const noexcept;
  const std::string& control_endpoint() const noexcept;
  const std::string& serve_endpoint() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> stop_{false};
  int wake_fd_ = -1;  // eventfd: stop() writes, the poll wakes
};

}  // namespace zkit
