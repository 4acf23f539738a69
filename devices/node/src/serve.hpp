// The spool node's serving side (`--serve`): a ROUTER where consumers join named groups and get
// the log in batches under credit, with acks, nacks, ack_wait, heartbeats and redelivery
// (docs/protocol.md, "The consumer protocol (v1)"; docs/queues.md). The groups' durable state is
// zkit::spool::Group; this file keeps what is not durable: members, their tags and their timers.
//
// Thread: the node's loop thread only. No call blocks on the network; calls that touch a group
// may block on disk I/O (a log read, a group file write).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "zkit/options.hpp"
#include "zkit/spool/group.hpp"
#include "zkit/spool/store.hpp"
#include "zkit/spool_node.hpp"

namespace zkit::detail {

class ConsumerServer {
 public:
  using Clock = std::chrono::steady_clock;

  // Creates the ROUTER (not yet bound) and opens every group found in the store's directory.
  // Throws std::runtime_error naming the group when one cannot be opened, zmq::error_t from
  // setup.
  ConsumerServer(zmq::context_t& context, spool::Store& store, const SpoolNodeOptions& options);
  ~ConsumerServer();
  ConsumerServer(const ConsumerServer&) = delete;
  ConsumerServer& operator=(const ConsumerServer&) = delete;

  // Binds or connects (as parse_endpoint says); returns the endpoint as bound.
  std::string attach(const Endpoint& endpoint);

  // Appends this server's poll items (the ROUTER, its disconnect monitor) to `items`.
  void add_poll_items(std::vector<zmq_pollitem_t>& items);
  // After the poll: reads what arrived (up to a burst), runs the timers that are due, hands
  // batches to members with credit, persists group state that is due. `items` points at the
  // entries add_poll_items() appended.
  void step(const zmq_pollitem_t* items);
  // The earliest time step() must run without a socket event.
  std::optional<Clock::time_point> next_deadline() const;
  // New records were committed to the log: groups waiting at its end look again.
  void on_committed();

  // The lowest floor of all groups (none: no group); the node applies it to the store.
  std::optional<spool::Position> retention_floor() const;

  // Figures for STATS: one entry per group (without `forward`, which the node adds) and the
  // serving counters.
  void fill(SpoolNodeStats& stats) const;

  // Group management (the control socket's GROUP commands). Errors name the group.
  Status reset(std::string_view group, std::string_view start);
  Status remove(std::string_view group);
  Result<std::uint64_t> replay_dead(std::string_view group);  // batches made deliverable again

  // Every member's deliveries are forgotten (they are redelivered by the next run), group state
  // is persisted, the socket closed. Idempotent; the first error.
  Status shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zkit::detail
