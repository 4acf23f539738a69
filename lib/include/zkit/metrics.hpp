// Prometheus text exposition (format 0.0.4) of a device's figures. A device describes each figure
// in one line while it renders a snapshot of its own stats struct:
//
//   metrics::Exposition x({{"device", "spool"}, {"name", "a"}});
//   x.counter("zkit_spool_stored_batches_total", "Batches appended to the log", s.store.stored);
//   x.gauge("zkit_spool_backlog_bytes", "Frame bytes not yet acknowledged downstream",
//           s.store.backlog_bytes);
//   x.histogram("zkit_spool_fsync_seconds", "Time of each fsync", s.store.fsync_latency);
//   std::string body = x.text();
//
// text() groups the samples of one name under a single # HELP and # TYPE (in the order names were
// first used), escapes help text and label values, and writes integer values exactly. It keeps no
// figures of its own: an Exposition lives for one scrape.
//
// Misuse throws std::invalid_argument naming the metric: an invalid metric or label name, a
// counter whose name does not end in _total (or a histogram's not in _seconds), one name used with
// two types or two help texts, the same label set twice for one name, or a reserved label ("le"
// on a histogram, names starting with "__").
//
// Thread: an Exposition belongs to one thread; nothing here blocks or allocates beyond the text.
#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include "zkit/stats.hpp"

namespace zkit::metrics {

// Content-Type of Exposition::text().
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

struct Label {
  std::string name;
  std::string value;
};
using Labels = std::vector<Label>;

// A sample's value: an unsigned integer (written exactly, all 64 bits) or a double (NaN and
// infinities as Prometheus spells them). bool is 1 or 0; a negative integer becomes a double.
class Value {
 public:
  template <class T>
  requires std::is_arithmetic_v<T> Value(T v)
  noexcept {  // NOLINT: implicit on purpose, values come straight from stats fields
    if constexpr (std::is_same_v<T, bool>) {
      u_ = v ? 1 : 0;
    } else if constexpr (std::is_floating_point_v<T>) {
      exact_ = false;
      d_ = static_cast<double>(v);
    } else if constexpr (std::is_signed_v<T>) {
      if (v < 0) {
        exact_ = false;
        d_ = static_cast<double>(v);
      } else {
        u_ = static_cast<std::uint64_t>(v);
      }
    } else {
      u_ = static_cast<std::uint64_t>(v);
    }
  }
  std::string to_string() const;

 private:
  bool exact_ = true;
  std::uint64_t u_ = 0;
  double d_ = 0;
};

// Upper bounds (seconds) of every *_seconds histogram: 50 us to 5 min, roughly 1-2.5-5 per decade.
std::span<const double> seconds_buckets() noexcept;

class Exposition {
 public:
  // `constant` labels go on every sample, before the sample's own (device kind, device name).
  explicit Exposition(Labels constant = {});
  explicit Exposition(std::initializer_list<Label> constant) : Exposition(Labels(constant)) {}

  // A count since the device started. `name` ends in _total.
  Exposition& counter(std::string_view name, std::string_view help, std::uint64_t value,
                      const Labels& labels = {});
  // A figure that goes up and down (now: backlog, peers, free disk; 0/1 for a state).
  Exposition& gauge(std::string_view name, std::string_view help, Value value,
                    const Labels& labels = {});
  // Nanosecond samples exposed in seconds at seconds_buckets(): cumulative _bucket{le=...} lines
  // (LatencyHistogram::count_at_most: never over-counted), +Inf, _sum and _count. `name` ends in
  // _seconds.
  Exposition& histogram(std::string_view name, std::string_view help, const LatencyHistogram& ns,
                        const Labels& labels = {});

  // The exposition: every family, each line ending in '\n'.
  std::string text() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Sample {
    std::string labels;  // rendered: name="value",... (without braces), constant ones first
    std::string value;   // counter/gauge; a histogram's lines are in `lines`
    std::vector<std::pair<std::string, std::string>> lines;  // histogram: suffix+labels, value
  };
  struct Family {
    std::string name;
    std::string help;
    Type type;
    std::vector<Sample> samples;
    std::unordered_set<std::string> seen;  // rendered label sets, to refuse one twice
  };
  Family& family(std::string_view name, std::string_view help, Type type);
  std::string render_labels(const Labels& labels, std::string_view family_name, Type type) const;
  void add(Family& f, Sample s);

  Labels constant_;
  std::vector<Family> families_;
};

// `text` with \, " and newline escaped as a label value; as help text, " is left alone.
std::string escape_label_value(std::string_view text);
std::string escape_help(std::string_view text);

}  // namespace zkit::metrics
