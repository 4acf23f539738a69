// Each device's figures as Prometheus metrics, and its readiness, from the same stats struct its
// STATS document is written from (ProxyStats::to_json, SpoolNodeStats::to_json): nothing here
// keeps a figure of its own. docs/devices.md "Metrics" lists every name.
//
// Adding a device is one write_metrics overload (a line per figure) and one not_ready overload;
// adding a figure is one line. Per-socket figures carry a `socket` label, per-group figures a
// `group` label; the endpoint adds `device` and `name` to every sample.
#pragma once

#include <string>

#include "zkit/metrics.hpp"
#include "zkit/proxy.hpp"
#include "zkit/spool_node.hpp"

namespace zkit {

void write_metrics(metrics::Exposition& x, const ProxyStats& s);
void write_metrics(metrics::Exposition& x, const SpoolNodeStats& s);

// One queue group's figures, labelled group=NAME (docs/alerts.yml's group alerts use these names).
// G is spool::GroupStats (zkit/spool/group.hpp: delivered, redelivered, acked, acked_messages,
// nacked, dead_lettered, dead_lettered_messages, dropped_batches, dropped_messages, pending,
// lag_batches); write_metrics(SpoolNodeStats) calls it once per group.
template <class G>
void write_group_metrics(metrics::Exposition& x, const std::string& group, const G& g) {
  const metrics::Labels l{{"group", group}};
  x.counter("zkit_spool_group_delivered_batches_total",
            "Deliveries to the group's consumers, redeliveries included.", g.delivered, l);
  x.counter("zkit_spool_group_redelivered_batches_total",
            "Deliveries of a batch delivered before (ack wait expired, nack, member gone).",
            g.redelivered, l);
  x.counter("zkit_spool_group_acked_batches_total", "Batches the group acknowledged.", g.acked, l);
  x.counter("zkit_spool_group_acked_messages_total", "Messages in the batches acknowledged.",
            g.acked_messages, l);
  x.counter("zkit_spool_group_nacked_batches_total", "Negative acknowledgements.", g.nacked, l);
  x.counter("zkit_spool_group_dead_lettered_batches_total",
            "Batches moved to the group's dead-letter log at max_deliver.", g.dead_lettered, l);
  x.counter("zkit_spool_group_dead_lettered_messages_total",
            "Messages in the batches moved to the dead-letter log.", g.dead_lettered_messages, l);
  x.counter("zkit_spool_group_dropped_batches_total",
            "Batches the group lost to drop-oldest before acknowledging them.", g.dropped_batches,
            l);
  x.counter("zkit_spool_group_dropped_messages_total", "Messages the group lost to drop-oldest.",
            g.dropped_messages, l);
  x.gauge("zkit_spool_group_pending_batches", "Batches delivered and not yet acknowledged.",
          g.pending, l);
  x.gauge("zkit_spool_group_lag_batches", "Committed batches after the floor not yet acknowledged.",
          g.lag_batches, l);
}

// Empty when ready, else why not (one line). Proxy: its sockets are bound (it has not stopped).
std::string not_ready(const ProxyStats& s);
// Spool: the store is open and accepting (state "running"), and the downstream link is connected
// when `has_downstream`.
std::string not_ready(const SpoolNodeStats& s, bool has_downstream);

}  // namespace zkit
