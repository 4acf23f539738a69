// ProxyStats as the JSON document the control socket's STATS command answers.
#include <nlohmann/json.hpp>

#include "zkit/proxy.hpp"

namespace zkit {
namespace {

nlohmann::ordered_json flow(const FlowStats& f) {
  return {{"frames", f.frames},     {"bytes", f.bytes},
          {"messages", f.messages}, {"batches", f.batches},
          {"records", f.records},   {"compressed_batches", f.compressed_batches},
          {"raw", f.raw},           {"malformed", f.malformed},
          {"dropped", f.dropped},   {"held", f.held}};
}

}  // namespace

std::string ProxyStats::to_json() const {
  const ProxyStats& s = *this;
  nlohmann::ordered_json j = {
      {"device", "proxy"},
      {"type", proxy_type_name(s.type)},
      {"state", s.terminated ? "terminated"
                : s.paused   ? "paused"
                             : "active"},
      {"uptime_s", static_cast<double>(s.uptime_ms) / 1000.0},
      {"frontend", {{"recv", flow(s.frontend_recv)}, {"sent", flow(s.frontend_sent)}}},
      {"backend", {{"recv", flow(s.backend_recv)}, {"sent", flow(s.backend_sent)}}},
      {"capture", {{"frames", s.capture_frames}, {"dropped", s.capture_dropped}}},
      {"subscriptions",
       {{"subscribe", s.subscribes},
        {"unsubscribe", s.unsubscribes},
        {"topics", s.topics},
        {"refused", s.subscriptions_refused}}},
      {"drops", s.frontend_sent.dropped + s.backend_sent.dropped + s.capture_dropped},
      {"control_commands", s.control_commands},
  };
  return j.dump();
}

}  // namespace zkit
