// The bridge's shared parts: the AMQP URL, the credentials file, the statistics document.
#include "zkit/bridge.hpp"

#include <fmt/format.h>

#include <charconv>
#include <fstream>

#include "zkit/json.hpp"

namespace zkit {
namespace {

// Percent-decoding of the vhost ("%2F" -> "/"); empty on a malformed escape.
std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    unsigned v = 0;
    if (i + 2 >= s.size()) return std::nullopt;
    const auto r = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
    if (r.ec != std::errc() || r.ptr != s.data() + i + 3) return std::nullopt;
    out += static_cast<char>(v);
    i += 2;
  }
  return out;
}

}  // namespace

Result<AmqpSettings> parse_amqp_url(std::string_view url) {
  AmqpSettings s;
  constexpr std::string_view kScheme = "amqp://";
  if (!url.starts_with(kScheme)) {
    return Status::invalid_argument(
        fmt::format("'{}' is not an amqp:// URL (amqps is not supported)", url));
  }
  std::string_view rest = url.substr(kScheme.size());
  std::string_view authority = rest.substr(0, rest.find('/'));
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view user = authority.substr(0, at);
    if (user.find(':') != std::string_view::npos) {
      return Status::invalid_argument(
          "the URL holds a password: give it in --credentials FILE, never on the command line");
    }
    s.user = std::string(user);
    authority = authority.substr(at + 1);
  }
  std::string_view host = authority;
  if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    const std::string_view port = authority.substr(colon + 1);
    int p = 0;
    const auto r = std::from_chars(port.data(), port.data() + port.size(), p);
    if (r.ec != std::errc() || r.ptr != port.data() + port.size() || p < 1 || p > 65535) {
      return Status::invalid_argument(fmt::format("port '{}' in '{}' is not 1..65535", port, url));
    }
    s.port = p;
  }
  if (host.empty()) return Status::invalid_argument(fmt::format("no host in '{}'", url));
  s.host = std::string(host);
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    const std::string_view vhost = rest.substr(slash + 1);
    if (!vhost.empty()) {
      auto v = percent_decode(vhost);
      if (!v) return Status::invalid_argument(fmt::format("bad %-escape in vhost of '{}'", url));
      s.vhost = *v;
    }
  }
  return s;
}

Status read_credentials(const std::filesystem::path& file, AmqpSettings& settings) {
  std::ifstream in(file);
  if (!in) return Status::not_found(fmt::format("cannot open credentials file '{}'", file.string()));
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const auto colon = line.find(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::invalid_argument(fmt::format(
        "credentials file '{}': the first line must be 'user:password'", file.string()));
  }
  settings.user = line.substr(0, colon);
  settings.password = line.substr(colon + 1);
  return Status::ok();
}

std::string BridgeStats::to_json() const {
  JsonWriter w;
  w.begin_object();
  w.field("device", "bridge").field("direction", direction).field("state", state);
  w.field("uptime_s", static_cast<double>(uptime_ms) / 1000.0);
  w.key("amqp").begin_object();
  w.field("connects", connects).field("connection_losses", connection_losses);
  w.field("connect_failures", connect_failures);
  w.end_object();
  if (direction == "to-amqp") {
    w.field("batches_received", batches_received).field("messages_received", messages_received);
    w.field("published", published).field("republished", republished);
    w.field("confirmed", confirmed).field("nacked", nacked).field("returned", returned);
    w.field("batches_acked_upstream", batches_acked_upstream);
    w.field("messages_acked_upstream", messages_acked_upstream);
    w.field("pending_batches", pending_batches);
  } else {
    w.field("deliveries", deliveries).field("redelivered", redelivered);
    w.field("suppressed", suppressed).field("rejected", rejected);
    w.field("too_large", too_large).field("not_batch", not_batch);
    w.field("batches_sent", batches_sent).field("messages_sent", messages_sent);
    w.field("resent_from_journal", resent_from_journal);
    w.field("batches_acked_downstream", batches_acked_downstream);
    w.field("messages_acked_downstream", messages_acked_downstream);
    w.field("amqp_acks", amqp_acks).field("messages_acked_amqp", messages_acked_amqp);
    w.field("unacked", unacked).field("journal_errors", journal_errors);
    w.field("downstream_connected", downstream_connected);
  }
  w.field("control_commands", control_commands);
  w.end_object();
  return std::move(w).str();
}

}  // namespace zkit
