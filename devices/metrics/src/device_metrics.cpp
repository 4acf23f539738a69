// The proxy's, the spool's and the bridge's figures as metrics: one line per figure, read from the stats struct.
#include "zkit/device_metrics.hpp"

namespace zkit {
namespace {

using metrics::Exposition;
using metrics::Labels;

void flow(Exposition& x, const char* dir, const char* socket, const FlowStats& f) {
  const Labels l{{"socket", socket}};
  const std::string p = std::string("zkit_proxy_") + dir + "_";
  const std::string what = dir[0] == 'r' ? "received on the socket" : "sent through the socket";
  x.counter(p + "frames_total", "ZeroMQ frames " + what + ".", f.frames, l);
  x.counter(p + "bytes_total", "Frame bytes " + what + ".", f.bytes, l);
  x.counter(p + "messages_total", "Whole (multipart) messages " + what + ".", f.messages, l);
  x.counter(p + "batches_total", "Messages " + what + " whose payload is a zkit batch.", f.batches,
            l);
  x.counter(p + "records_total", "Application messages inside uncompressed batches " + what + ".",
            f.records, l);
  x.counter(p + "compressed_batches_total",
            "Compressed batches " + what + " (their records are not counted).",
            f.compressed_batches, l);
  x.counter(p + "raw_messages_total", "Messages " + what + " whose payload is not a batch.", f.raw,
            l);
  x.counter(p + "malformed_total",
            "Of the raw messages " + what + ": shaped like a batch but not valid.", f.malformed, l);
}

}  // namespace

void write_metrics(Exposition& x, const ProxyStats& s) {
  x.gauge("zkit_proxy_uptime_seconds", "Seconds since the proxy started.",
          static_cast<double>(s.uptime_ms) / 1000.0);
  x.gauge("zkit_proxy_paused", "1 while the proxy is paused (PAUSE on its control socket).",
          s.paused);
  flow(x, "received", "frontend", s.frontend_recv);
  flow(x, "received", "backend", s.backend_recv);
  flow(x, "sent", "backend", s.backend_sent);
  flow(x, "sent", "frontend", s.frontend_sent);
  for (const auto& [socket, f] :
       {std::pair{"backend", &s.backend_sent}, std::pair{"frontend", &s.frontend_sent}}) {
    x.counter("zkit_proxy_dropped_messages_total",
              "Messages read that could not be handed to this socket (lost, counted).", f->dropped,
              {{"socket", socket}});
    x.gauge("zkit_proxy_held_messages", "Messages read and waiting for room on this socket (0/1).",
            f->held, {{"socket", socket}});
  }
  x.counter("zkit_proxy_capture_frames_total", "Frames copied to the capture socket.",
            s.capture_frames);
  x.counter("zkit_proxy_capture_dropped_messages_total",
            "Messages not copied because the capture socket would block.", s.capture_dropped);
  x.counter("zkit_proxy_subscribes_total", "Forwarder: subscription messages from subscribers.",
            s.subscribes);
  x.counter("zkit_proxy_unsubscribes_total", "Forwarder: unsubscription messages from subscribers.",
            s.unsubscribes);
  x.gauge("zkit_proxy_topics", "Forwarder: distinct topics subscribed now.", s.topics);
  x.counter("zkit_proxy_subscriptions_refused_total",
            "Forwarder: subscriptions to a new topic refused at --max-subscriptions.",
            s.subscriptions_refused);
  x.counter("zkit_proxy_control_commands_total", "Commands received on the control socket.",
            s.control_commands);
}

void write_metrics(Exposition& x, const SpoolNodeStats& s) {
  const spool::Stats& d = s.store;
  const Labels listen{{"socket", "listen"}}, pull{{"socket", "pull"}}, fwd{{"socket", "forward"}};
  x.gauge("zkit_spool_uptime_seconds", "Seconds since the spool started.",
          static_cast<double>(s.uptime_ms) / 1000.0);
  for (const char* state : {"running", "blocked: full", "blocked: write error", "stopped"}) {
    x.gauge("zkit_spool_state", "1 for the spool's state now, 0 for the others.", s.state == state,
            {{"state", state}});
  }
  // Upstream.
  const char* rb = "Batches received (--listen: from reliable senders; --pull: plain PUSH peers).";
  const char* rm = "Messages in the batches received.";
  x.counter("zkit_spool_received_batches_total", rb, s.accepted_batches, listen);
  x.counter("zkit_spool_received_batches_total", rb, s.pull_batches, pull);
  x.counter("zkit_spool_received_messages_total", rm, s.accepted_messages, listen);
  x.counter("zkit_spool_received_messages_total", rm, s.pull_messages, pull);
  const char* mal = "Frames dropped as malformed (--listen: link messages; --pull: batches).";
  x.counter("zkit_spool_malformed_total", mal, s.link_decode_errors, listen);
  x.counter("zkit_spool_malformed_total", mal, s.pull_malformed, pull);
  x.counter("zkit_spool_bad_batches_total",
            "Reliable DATA whose batch did not decode (acknowledged, not stored).", s.bad_batches,
            listen);
  x.counter("zkit_spool_acknowledged_upstream_batches_total",
            "Batches acknowledged to senders once committed.", s.acknowledged_upstream, listen);
  x.counter("zkit_spool_duplicate_batches_total",
            "Batches already stored: acknowledged, not stored again.", s.duplicates);
  x.gauge("zkit_spool_parked_batches", "Batches received and waiting for room or the disk.",
          s.parked);
  x.gauge("zkit_spool_upstream_peers", "Reliable senders heard within the heartbeat timeout.",
          s.upstream_peers, listen);
  x.gauge("zkit_spool_credit_paused", "1 while credit is withheld from senders (backpressure).",
          s.credit_paused, listen);
  // Store.
  x.counter("zkit_spool_stored_batches_total", "Batches appended to the log.", d.stored);
  x.counter("zkit_spool_stored_messages_total", "Messages in the batches appended to the log.",
            d.stored_messages);
  x.gauge("zkit_spool_backlog_batches", "Batches stored and not yet acknowledged downstream.",
          d.backlog_batches);
  x.gauge("zkit_spool_backlog_messages", "Messages stored and not yet acknowledged downstream.",
          d.backlog_messages);
  x.gauge("zkit_spool_backlog_bytes", "Frame bytes stored and not yet acknowledged downstream.",
          d.backlog_bytes);
  x.gauge("zkit_spool_backlog_oldest_age_seconds",
          "Age of the oldest batch not yet acknowledged downstream (0: none).",
          static_cast<double>(d.oldest_age_ms) / 1000.0);
  x.gauge("zkit_spool_segments", "Segment files of the log.", d.segments);
  x.gauge("zkit_spool_disk_bytes", "Bytes of the segment files on disk.", d.disk_bytes);
  x.gauge("zkit_spool_disk_free_bytes", "Free bytes of the spool directory's file system.",
          d.disk_free_bytes);
  x.gauge("zkit_spool_full", "1 while the block policy refuses appends (--max-bytes/--max-age).",
          d.full);
  x.counter("zkit_spool_rejected_full_total", "Appends refused by the block policy.",
            d.rejected_full);
  x.counter("zkit_spool_fsyncs_total", "fsyncs of the log.", d.fsyncs);
  x.histogram("zkit_spool_fsync_seconds", "Time of each fsync of the log (with its directory).",
              d.fsync_latency);
  x.counter("zkit_spool_write_errors_total", "Failed appends or commits (each retried).",
            s.write_errors);
  x.gauge("zkit_spool_disk_failing", "1 while a write error is being retried.", s.disk_failing);
  x.counter("zkit_spool_io_errors_total", "Failed writes, syncs and creates in the store.",
            d.io_errors);
  x.counter("zkit_spool_corrupt_records_total", "Corrupt stretches of the log skipped.",
            d.corrupt_skipped);
  x.counter("zkit_spool_dropped_batches_total",
            "Batches deleted unforwarded by --when-full drop-oldest.", d.dropped_batches);
  x.counter("zkit_spool_dropped_messages_total",
            "Messages deleted unforwarded by --when-full drop-oldest.", d.dropped_messages);
  x.gauge("zkit_spool_producers", "Producers in the duplicate table.", d.producers);
  x.counter("zkit_spool_producers_forgotten_total",
            "Producers forgotten at --max-producers (longest unseen first).",
            d.producers_forgotten);
  x.counter("zkit_spool_seq_restarts_total",
            "Batches stored with a seq far below the producer's highest (a restart).",
            d.seq_restarts);
  // Downstream.
  x.counter("zkit_spool_forwarded_batches_total", "Batches handed to the downstream link.",
            s.forwarded_batches, fwd);
  x.counter("zkit_spool_forwarded_messages_total", "Messages handed to the downstream link.",
            s.forwarded_messages, fwd);
  x.counter("zkit_spool_acknowledged_batches_total", "Batches acknowledged by the downstream.",
            s.acknowledged_batches, fwd);
  x.counter("zkit_spool_acknowledged_messages_total", "Messages acknowledged by the downstream.",
            s.acknowledged_messages, fwd);
  x.histogram("zkit_spool_batch_age_seconds",
              "From a batch's creation by its producer to the downstream's acknowledgement.",
              s.batch_age, fwd);
  x.counter("zkit_spool_unforwardable_total",
            "Stored records whose frame no longer reads as a batch (skipped).", s.unforwardable,
            fwd);
  x.gauge("zkit_spool_in_flight_batches", "Batches sent downstream and not yet acknowledged.",
          s.in_flight, fwd);
  x.gauge("zkit_spool_downstream_connected", "1 while the downstream receiver answers.",
          s.downstream_connected, fwd);
  x.counter("zkit_spool_control_commands_total", "Commands received on the control socket.",
            s.control_commands);
  x.counter("zkit_spool_loop_errors_total", "Exceptions caught in the loop (logged, carried on).",
            s.loop_errors);
  // Consumers (--serve) and their groups.
  const ServeFigures& v = s.serve;
  const Labels serve{{"socket", "serve"}};
  x.gauge("zkit_spool_members", "Consumers joined to a group now.", v.members, serve);
  x.counter("zkit_spool_joins_total", "JOINs accepted.", v.joins, serve);
  x.counter("zkit_spool_refused_joins_total", "JOINs answered with an ERROR.", v.refused_joins,
            serve);
  x.counter("zkit_spool_members_timed_out_total", "Members silent past the consumer heartbeat.",
            v.timed_out, serve);
  x.counter("zkit_spool_members_disconnected_total", "Members whose connection went away.",
            v.disconnected, serve);
  x.counter("zkit_spool_members_dropped_total", "Members dropped for misbehaving.", v.dropped,
            serve);
  x.counter("zkit_spool_ack_wait_expired_total", "Deliveries taken back unacked after ack_wait.",
            v.ack_wait_expired, serve);
  x.counter("zkit_spool_consumer_malformed_total",
            "Consumer messages that did not decode or broke the protocol.", v.malformed, serve);
  for (const GroupFigures& g : s.groups) write_group_metrics(x, g);
}

void write_group_metrics(Exposition& x, const GroupFigures& f) {
  const spool::GroupStats& g = f.state;
  const Labels l{{"group", f.name}};
  x.gauge("zkit_spool_group_members", "Consumers joined to the group now.", f.members, l);
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
  x.gauge("zkit_spool_group_dead_letter_bytes", "Bytes in the group's dead-letter log.",
          g.dead_bytes, l);
}

void write_metrics(Exposition& x, const BridgeStats& s) {
  const bool to = s.direction == "to-amqp";
  // Every sample names the direction, so that one alert rule can cover both kinds of bridge.
  auto l = [&s](std::initializer_list<std::pair<const char*, const char*>> more) {
    Labels r{{"direction", s.direction}};
    for (const auto& [k, v] : more) r.push_back(metrics::Label{k, v});
    return r;
  };
  const Labels d = l({}), amqp = l({{"socket", "amqp"}});
  x.gauge("zkit_bridge_uptime_seconds", "Seconds since the bridge started.",
          static_cast<double>(s.uptime_ms) / 1000.0, d);
  for (const char* state : {"connected", "connecting", "stopped"}) {
    x.gauge("zkit_bridge_state", "1 for the bridge's state now, 0 for the others.",
            s.state == state, l({{"state", state}}));
  }
  x.gauge("zkit_bridge_amqp_connected", "1 while the bridge is connected to RabbitMQ.",
          s.state == "connected", amqp);
  x.counter("zkit_bridge_amqp_connects_total", "Successful connections to RabbitMQ.", s.connects,
            amqp);
  x.counter("zkit_bridge_amqp_connection_losses_total", "Connections to RabbitMQ lost.",
            s.connection_losses, amqp);
  x.counter("zkit_bridge_amqp_connect_failures_total",
            "Connection attempts that failed (each followed by a backoff).", s.connect_failures,
            amqp);
  if (to) {
    const Labels listen = l({{"socket", "listen"}});
    x.counter("zkit_bridge_received_batches_total", "New batches from reliable senders.",
              s.batches_received, listen);
    x.counter("zkit_bridge_received_messages_total", "Messages in the batches received.",
              s.messages_received, listen);
    x.counter("zkit_bridge_published_total", "AMQP messages published, republished ones included.",
              s.published, amqp);
    x.counter("zkit_bridge_republished_total",
              "AMQP messages published again after a loss, nack or return.", s.republished, amqp);
    x.counter("zkit_bridge_confirmed_total", "AMQP messages RabbitMQ confirmed.", s.confirmed,
              amqp);
    x.counter("zkit_bridge_nacked_total", "basic.nack from RabbitMQ (published again).", s.nacked,
              amqp);
    x.counter("zkit_bridge_returned_total", "Mandatory messages no queue took (published again).",
              s.returned, amqp);
    x.counter("zkit_bridge_acked_upstream_batches_total",
              "Batches acknowledged to senders once RabbitMQ confirmed them.",
              s.batches_acked_upstream, listen);
    x.counter("zkit_bridge_acked_upstream_messages_total",
              "Messages in the batches acknowledged to senders.", s.messages_acked_upstream,
              listen);
    x.gauge("zkit_bridge_pending_batches", "Batches received and not yet fully confirmed.",
            s.pending_batches, listen);
  } else {
    const Labels down = l({{"socket", "to"}});
    x.counter("zkit_bridge_deliveries_total", "AMQP messages received, redeliveries included.",
              s.deliveries, amqp);
    x.counter("zkit_bridge_redelivered_total", "Deliveries flagged redelivered by RabbitMQ.",
              s.redelivered, amqp);
    x.counter("zkit_bridge_suppressed_total",
              "Redeliveries already in a batch sent downstream (not forwarded again).",
              s.suppressed, amqp);
    x.counter("zkit_bridge_rejected_total", "Bad messages rejected (too large or not a batch).",
              s.rejected, amqp);
    x.counter("zkit_bridge_too_large_total", "Messages over the batch or record limits.",
              s.too_large, amqp);
    x.counter("zkit_bridge_not_batch_total", "Batch mode: bodies that are not a valid zkit batch.",
              s.not_batch, amqp);
    x.counter("zkit_bridge_amqp_acks_total", "basic.ack calls (multiple).", s.amqp_acks, amqp);
    x.counter("zkit_bridge_acked_amqp_messages_total", "Messages acknowledged to RabbitMQ.",
              s.messages_acked_amqp, amqp);
    x.gauge("zkit_bridge_unacked_messages", "Messages taken from RabbitMQ and not yet acked.",
            s.unacked, amqp);
    x.counter("zkit_bridge_sent_batches_total", "Batches handed to the downstream link.",
              s.batches_sent, down);
    x.counter("zkit_bridge_sent_messages_total", "Messages in the batches sent downstream.",
              s.messages_sent, down);
    x.counter("zkit_bridge_resent_from_journal_batches_total",
              "Batches of an earlier run sent again at start.", s.resent_from_journal, down);
    x.counter("zkit_bridge_acked_downstream_batches_total",
              "Batches acknowledged by the downstream.", s.batches_acked_downstream, down);
    x.counter("zkit_bridge_acked_downstream_messages_total",
              "Messages acknowledged by the downstream.", s.messages_acked_downstream, down);
    x.gauge("zkit_bridge_downstream_connected", "1 while the downstream receiver answers.",
            s.downstream_connected, down);
    x.counter("zkit_bridge_journal_errors_total", "Failed journal writes (each retried).",
              s.journal_errors, d);
  }
  x.counter("zkit_bridge_control_commands_total", "Commands received on the control socket.",
            s.control_commands, d);
}

std::string not_ready(const ProxyStats& s) {
  return s.terminated ? "the proxy has stopped; its sockets are closed" : "";
}

std::string not_ready(const SpoolNodeStats& s, bool has_downstream) {
  if (s.state != "running") return "spool " + s.state;
  if (has_downstream && !s.downstream_connected) return "downstream not connected";
  return "";
}

std::string not_ready(const BridgeStats& s) {
  if (s.state != "connected") return "RabbitMQ " + s.state;
  if (s.direction == "from-amqp" && !s.downstream_connected) return "downstream not connected";
  return "";
}

}  // namespace zkit
