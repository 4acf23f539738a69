// Each device's figures as Prometheus metrics, and its readiness, from the same stats struct its
// STATS document is written from (ProxyStats::to_json, SpoolNodeStats::to_json): nothing here
// keeps a figure of its own. docs/devices.md "Metrics" lists every name.
//
// Adding a device is one write_metrics overload (a line per figure) and one not_ready overload;
// adding a figure is one line. Per-socket figures carry a `socket` label, per-group figures a
// `group` label; the endpoint adds `device` and `name` to every sample.
#pragma once

#include <string>

#include "zkit/bridge.hpp"
#include "zkit/metrics.hpp"
#include "zkit/proxy.hpp"
#include "zkit/spool_node.hpp"

namespace zkit {

void write_metrics(metrics::Exposition& x, const ProxyStats& s);
void write_metrics(metrics::Exposition& x, const SpoolNodeStats& s);
// Bridge: the AMQP connection's figures, then the direction's own (to-amqp: socket="listen" and
// "amqp"; from-amqp: socket="amqp" and "to"); every sample carries direction=to-amqp|from-amqp.
void write_metrics(metrics::Exposition& x, const BridgeStats& s);

// One queue group's figures, labelled group=NAME (docs/alerts.yml's group alerts use these names);
// write_metrics(SpoolNodeStats) calls it once per group.
void write_group_metrics(metrics::Exposition& x, const GroupFigures& g);

// Empty when ready, else why not (one line). Proxy: its sockets are bound (it has not stopped).
std::string not_ready(const ProxyStats& s);
// Spool: the store is open and accepting (state "running"), and the downstream link is connected
// when `has_downstream`.
std::string not_ready(const SpoolNodeStats& s, bool has_downstream);
// Bridge: connected to RabbitMQ (state "connected") and, from-amqp, the downstream link connected.
std::string not_ready(const BridgeStats& s);

}  // namespace zkit
