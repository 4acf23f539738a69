// ProxyStats as the JSON document the control socket's STATS command answers.
#include "zkit/json.hpp"
#include "zkit/proxy.hpp"

namespace zkit {
namespace {

void flow(JsonWriter& w, std::string_view name, const FlowStats& f) {
  w.key(name).begin_object();
  w.field("frames", f.frames).field("bytes", f.bytes).field("messages", f.messages);
  w.field("batches", f.batches).field("records", f.records);
  w.field("compressed_batches", f.compressed_batches).field("raw", f.raw);
  w.field("malformed", f.malformed).field("dropped", f.dropped).field("held", f.held);
  w.end_object();
}

}  // namespace

std::string ProxyStats::to_json() const {
  JsonWriter w;
  w.begin_object();
  w.field("device", "proxy").field("type", proxy_type_name(type));
  w.field("state", terminated ? "terminated" : paused ? "paused" : "active");
  w.field("uptime_s", static_cast<double>(uptime_ms) / 1000.0);
  w.key("frontend").begin_object();
  flow(w, "recv", frontend_recv);
  flow(w, "sent", frontend_sent);
  w.end_object();
  w.key("backend").begin_object();
  flow(w, "recv", backend_recv);
  flow(w, "sent", backend_sent);
  w.end_object();
  w.key("capture").begin_object();
  w.field("frames", capture_frames).field("dropped", capture_dropped);
  w.end_object();
  w.key("subscriptions").begin_object();
  w.field("subscribe", subscribes).field("unsubscribe", unsubscribes);
  w.field("topics", topics).field("refused", subscriptions_refused);
  w.end_object();
  w.field("drops", frontend_sent.dropped + backend_sent.dropped + capture_dropped);
  w.field("control_commands", control_commands);
  w.end_object();
  return std::move(w).str();
}

}  // namespace zkit
