// The Prometheus text exposition: name and label checks, escaping, exact integers, histograms
// in seconds from LatencyHistogram's nanosecond buckets.
#include "zkit/metrics.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace zkit::metrics {
namespace {

constexpr std::array<double, 21> kSecondsBuckets = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25,    0.5,    1,       2.5,    5,     10,     30,    60,   120,   300};

bool name_char(char c, bool first, bool colon) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (colon && c == ':') return true;
  return !first && c >= '0' && c <= '9';
}

bool valid_name(std::string_view n, bool colon) {
  if (n.empty()) return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    if (!name_char(n[i], i == 0, colon)) return false;
  }
  return true;
}

std::string format_double(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "+Inf" : "-Inf";
  // The shortest text that reads back as the same double.
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, r.ptr);
}

[[noreturn]] void misuse(std::string_view name, const std::string& what) {
  throw std::invalid_argument("metric '" + std::string(name) + "': " + what);
}

std::string in_quotes(std::string_view s) { return "'" + std::string(s) + "'"; }

}  // namespace

std::string Value::to_string() const { return exact_ ? std::to_string(u_) : format_double(d_); }

std::span<const double> seconds_buckets() noexcept { return kSecondsBuckets; }

std::string escape_label_value(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_help(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

Exposition::Exposition(Labels constant) : constant_(std::move(constant)) {
  for (const Label& l : constant_) {
    if (!valid_name(l.name, false) || l.name.starts_with("__")) {
      misuse("(constant labels)", "invalid label name " + in_quotes(l.name));
    }
  }
}

Exposition::Family& Exposition::family(std::string_view name, std::string_view help, Type type) {
  if (!valid_name(name, true)) misuse(name, "invalid metric name");
  if (type == Type::kCounter && !name.ends_with("_total")) misuse(name, "a counter ends in _total");
  if (type == Type::kHistogram && !name.ends_with("_seconds")) {
    misuse(name, "a histogram ends in _seconds");
  }
  if (type != Type::kCounter && name.ends_with("_total")) {
    misuse(name, "only a counter ends in _total");
  }
  for (Family& f : families_) {
    if (f.name != name) continue;
    if (f.type != type) misuse(name, "used with two types");
    if (f.help != help) misuse(name, "used with two help texts");
    return f;
  }
  families_.push_back(Family{std::string(name), std::string(help), type, {}, {}});
  return families_.back();
}

std::string Exposition::render_labels(const Labels& labels, std::string_view family_name,
                                      Type type) const {
  std::string out;
  auto append = [&](const Label& l) {
    if (!valid_name(l.name, false) || l.name.starts_with("__")) {
      misuse(family_name, "invalid label name " + in_quotes(l.name));
    }
    if (type == Type::kHistogram && l.name == "le") misuse(family_name, "label 'le' is reserved");
    if (!out.empty()) out += ',';
    out += l.name;
    out += "=\"";
    out += escape_label_value(l.value);
    out += '"';
  };
  for (const Label& l : constant_) append(l);
  for (const Label& l : labels) {
    for (const Label& c : constant_) {
      if (c.name == l.name) misuse(family_name, "label " + in_quotes(l.name) + " given twice");
    }
    append(l);
  }
  return out;
}

void Exposition::add(Family& f, Sample s) {
  if (!f.seen.insert(s.labels).second) misuse(f.name, "labels {" + s.labels + "} twice");
  f.samples.push_back(std::move(s));
}

Exposition& Exposition::counter(std::string_view name, std::string_view help, std::uint64_t value,
                                const Labels& labels) {
  Family& f = family(name, help, Type::kCounter);
  add(f, Sample{render_labels(labels, name, Type::kCounter), std::to_string(value), {}});
  return *this;
}

Exposition& Exposition::gauge(std::string_view name, std::string_view help, Value value,
                              const Labels& labels) {
  Family& f = family(name, help, Type::kGauge);
  add(f, Sample{render_labels(labels, name, Type::kGauge), value.to_string(), {}});
  return *this;
}

Exposition& Exposition::histogram(std::string_view name, std::string_view help,
                                  const LatencyHistogram& ns, const Labels& labels) {
  Family& f = family(name, help, Type::kHistogram);
  Sample s{render_labels(labels, name, Type::kHistogram), {}, {}};
  const std::string sep = s.labels.empty() ? "" : ",";
  std::uint64_t previous = 0;
  for (double bound : kSecondsBuckets) {
    // Cumulative by construction; max() keeps it monotonic whatever the rounding of the bound.
    const auto bound_ns = static_cast<std::uint64_t>(std::llround(bound * 1e9));
    previous = std::max(previous, ns.count_at_most(bound_ns));
    s.lines.emplace_back("_bucket{" + s.labels + sep + "le=\"" + format_double(bound) + "\"}",
                         std::to_string(previous));
  }
  s.lines.emplace_back("_bucket{" + s.labels + sep + "le=\"+Inf\"}", std::to_string(ns.count()));
  const std::string braces = s.labels.empty() ? "" : "{" + s.labels + "}";
  s.lines.emplace_back("_sum" + braces, format_double(static_cast<double>(ns.sum()) / 1e9));
  s.lines.emplace_back("_count" + braces, std::to_string(ns.count()));
  add(f, std::move(s));
  return *this;
}

std::string Exposition::text() const {
  std::string out;
  for (const Family& f : families_) {
    const char* type = f.type == Type::kCounter ? "counter"
                       : f.type == Type::kGauge ? "gauge"
                                                : "histogram";
    out += "# HELP " + f.name + " " + escape_help(f.help) + "\n";
    out += "# TYPE " + f.name + " " + type + "\n";
    for (const Sample& s : f.samples) {
      if (f.type == Type::kHistogram) {
        for (const auto& [suffix, value] : s.lines) out += f.name + suffix + " " + value + "\n";
      } else if (s.labels.empty()) {
        out += f.name + " " + s.value + "\n";
      } else {
        out += f.name + "{" + s.labels + "} " + s.value + "\n";
      }
    }
  }
  return out;
}

}  // namespace zkit::metrics
