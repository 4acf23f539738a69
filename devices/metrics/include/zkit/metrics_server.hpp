// A device's HTTP endpoint for Prometheus and orchestrators: GET /metrics (text format 0.0.4),
// /healthz (alive) and /readyz (ready), 404 for any other path, 405 for a method other than GET
// or HEAD. `--metrics HOST:PORT` on `zkit proxy` and `zkit spool` (docs/devices.md "Metrics").
//
// How the figures cross threads. The device's loop owns its stats struct; the HTTP server
// (libmicrohttpd, one thread of its own) never touches it. Instead:
//   - a scrape asks through an eventfd the loop has in its poll set (SnapshotExchange::ask_fd), and
//     waits at most `fresh_wait` for the answer;
//   - the loop, between two rounds, copies its stats struct into a triple buffer (StatsSlot) and
//     answers through a second eventfd. Neither side ever waits for the other: the writer swaps an
//     index with one atomic exchange, the reader another; a busy or stuck loop only makes the
//     scrape serve the previous copy (its age is exposed as zkit_stats_age_seconds).
//   - scrapes closer together than `min_interval` are served from the last copy without asking,
//     so a request flood costs the loop at most one copy per min_interval.
// The loop therefore pays nothing while nobody scrapes, and one struct copy per scrape when
// someone does; it takes no lock the HTTP side holds.
//
// Bounds: at most `max_connections` open connections (more are refused at accept), each closed
// after `connection_timeout` without progress (a slow client holds one slot, never the thread:
// connections are served by non-blocking I/O in one event loop), `connection_memory` bytes each.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>
#include <zmq.hpp>

#include "zkit/metrics.hpp"

namespace zkit {

// Every field documents its default.
struct MetricsServerOptions {
  std::string endpoint;  // "HOST:PORT": an IPv4 address, "localhost" or "*" (every address);
                         // port 0 picks a free one (see HttpServer::endpoint()). Required.
  std::size_t max_connections = 64;              // open connections at once
  std::chrono::seconds connection_timeout{10};   // idle connection closed after this
  std::size_t connection_memory = 64 * 1024;     // per connection (request buffer)
  std::chrono::milliseconds fresh_wait{250};     // a scrape waits this long for new figures
  std::chrono::milliseconds min_interval{20};    // scrapes closer than this share one copy
  std::chrono::milliseconds stall_after{10000};  // /healthz: 503 once an ask waited this long
};

// The endpoint could not be bound (the message is the OS's: "Address already in use").
class MetricsBindError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct HttpReply {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Throws as HttpServer's constructor would for `endpoint` (std::invalid_argument for bad syntax,
// MetricsBindError when the port is taken), keeping nothing bound: for a command to refuse the
// flag before it starts its device.
void check_metrics_endpoint(const std::string& endpoint);

// A plain HTTP/1.1 server on its own thread (libmicrohttpd), serving fixed paths.
class HttpServer {
 public:
  using Handler = std::function<HttpReply()>;  // runs on the server's thread
  // Binds and listens on options.endpoint, then starts the thread. Throws std::invalid_argument
  // for an endpoint that is not HOST:PORT, MetricsBindError when the bind fails,
  // std::runtime_error when libmicrohttpd cannot start.
  HttpServer(const MetricsServerOptions& options,
             std::vector<std::pair<std::string, Handler>> routes);
  ~HttpServer();  // stops the thread and closes every connection
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  // "127.0.0.1:41234": the address as bound, port resolved.
  const std::string& endpoint() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The ask/answer pair between a reader (HTTP thread) and a device loop; see the top of this file.
class SnapshotExchange {
 public:
  SnapshotExchange();  // throws std::system_error when the eventfds cannot be made
  ~SnapshotExchange();
  SnapshotExchange(const SnapshotExchange&) = delete;
  SnapshotExchange& operator=(const SnapshotExchange&) = delete;

  // Loop side. ask_item() is readable while a reader waits: add it to the loop's poll.
  zmq_pollitem_t ask_item() const noexcept { return {nullptr, ask_fd_, ZMQ_POLLIN, 0}; }
  int ask_fd() const noexcept { return ask_fd_; }
  // True when a reader asked since the last call; the caller then publishes and calls answered().
  // While nobody asks it is one relaxed atomic load (no system call): cheap to call every round.
  bool take_ask() noexcept;
  void answered() noexcept;

  // Reader side, one thread at a time: asks and waits up to `wait` for the answer. True when the
  // loop answered this ask (or a later one) in time.
  bool ask(std::chrono::milliseconds wait);
  // Publications so far (answered() calls), asked for or not: the loop's sign of life.
  std::uint64_t answers() const noexcept { return answers_.load(std::memory_order_acquire); }

 private:
  int ask_fd_ = -1;
  int answer_fd_ = -1;
  std::atomic<std::uint64_t> asked_{0};     // reader: asks made
  std::atomic<bool> pending_{false};        // reader sets it after writing ask_fd_
  std::uint64_t serving_ = 0;               // loop: the ask being answered
  std::atomic<std::uint64_t> answered_{0};  // loop: asks answered
  std::atomic<std::uint64_t> answers_{0};   // loop: answered() calls
};

// One writer, one reader at a time, neither waits: a triple buffer of a copyable stats struct.
template <class Stats>
class StatsSlot {
 public:
  explicit StatsSlot(const Stats& first) : buf_{first, first, first} {}
  // Writer (the device loop).
  void publish(const Stats& s) {
    buf_[back_] = s;
    back_ = middle_.exchange(back_ | kFresh, std::memory_order_acq_rel) & kIndex;
  }
  // Reader: the latest published copy; valid until the reader's next read().
  const Stats& read() {
    if (middle_.load(std::memory_order_acquire) & kFresh) {
      front_ = middle_.exchange(front_, std::memory_order_acq_rel) & kIndex;
    }
    return buf_[front_];
  }

 private:
  static constexpr unsigned kIndex = 3, kFresh = 4;
  Stats buf_[3];
  unsigned back_ = 0;                // writer's
  std::atomic<unsigned> middle_{1};  // shared: index | kFresh when not yet read
  unsigned front_ = 2;               // reader's
};

// The reader side's policy (min_interval, fresh_wait, stall_after), independent of the stats
// type. Reader thread only; used by MetricsEndpoint.
class ScrapePolicy {
 public:
  ScrapePolicy(const MetricsServerOptions& options, SnapshotExchange& exchange);
  // Asks for new figures unless the last answer is younger than min_interval. Reader thread.
  void refresh();
  // Seconds since the loop last answered an ask (the age of the figures the reader holds).
  double age_seconds() const;
  // How long the loop has published nothing while asked, once that is at least stall_after;
  // nullopt otherwise (then /healthz answers 503).
  std::optional<std::chrono::milliseconds> stalled() const;

 private:
  using Clock = std::chrono::steady_clock;
  MetricsServerOptions o_;
  SnapshotExchange& exchange_;
  Clock::time_point last_answer_;
  std::uint64_t answers_seen_ = 0;
  std::optional<Clock::time_point> unanswered_since_;  // no publication at all since then
};

// A device's /metrics, /healthz and /readyz over its stats struct. The device's loop calls
// serve(stats_fn) after each round (and polls asked_item()); the pages are rendered on the HTTP
// thread from the published copy by `render` (a write_metrics of zkit/device_metrics.hpp) and
// `not_ready` (empty: ready; else the reason, one line).
template <class Stats>
class MetricsEndpoint {
 public:
  using Render = std::function<void(metrics::Exposition&, const Stats&)>;
  using NotReady = std::function<std::string(const Stats&)>;

  // Throws as HttpServer's constructor does; `labels` go on every sample.
  MetricsEndpoint(const MetricsServerOptions& options, metrics::Labels labels, const Stats& first,
                  Render render, NotReady not_ready)
      : labels_(std::move(labels)),
        render_(std::move(render)),
        not_ready_(std::move(not_ready)),
        slot_(first),
        policy_(options, exchange_),
        server_(options, {{"/metrics", [this] { return metrics_page(); }},
                          {"/healthz", [this] { return health_page(); }},
                          {"/readyz", [this] { return ready_page(); }}}) {}

  // Loop side: add to the loop's poll; after each round call serve().
  zmq_pollitem_t asked_item() const noexcept { return exchange_.ask_item(); }
  template <class StatsFn>
  void serve(StatsFn&& stats) {
    if (exchange_.take_ask()) publish(stats());
  }
  void publish(const Stats& s) {
    slot_.publish(s);
    exchange_.answered();
  }
  // From now on /readyz answers 503 "stopping" (the device is shutting down). Any thread.
  void stopping() noexcept { stopping_.store(true, std::memory_order_release); }
  const std::string& endpoint() const noexcept { return server_.endpoint(); }

 private:
  // The caller holds page_: one reader of slot_ at a time.
  const Stats& current() {
    policy_.refresh();
    return slot_.read();
  }
  HttpReply metrics_page() {
    std::lock_guard lock(page_);
    const Stats& s = current();
    metrics::Exposition x(labels_);
    render_(x, s);
    x.gauge("zkit_stats_age_seconds",
            "How old the figures of this scrape are (taken by the "
            "device's loop when the scrape asked, or earlier when it was busy).",
            policy_.age_seconds());
    return {200, std::string(metrics::kContentType), x.text()};
  }
  HttpReply health_page() {
    std::lock_guard lock(page_);
    (void)current();
    if (auto stall = policy_.stalled()) {
      return {503, "text/plain; charset=utf-8",
              "stalled: the device loop has not answered for " + std::to_string(stall->count()) +
                  " ms\n"};
    }
    return {200, "text/plain; charset=utf-8", "alive\n"};
  }
  HttpReply ready_page() {
    std::lock_guard lock(page_);
    const Stats& s = current();
    std::string why;
    if (stopping_.load(std::memory_order_acquire)) {
      why = "stopping";
    } else if (policy_.stalled()) {
      why = "stalled: the device loop does not answer";
    } else {
      why = not_ready_(s);
    }
    if (why.empty()) return {200, "text/plain; charset=utf-8", "ready\n"};
    return {503, "text/plain; charset=utf-8", "not ready: " + why + "\n"};
  }

  metrics::Labels labels_;
  Render render_;
  NotReady not_ready_;
  SnapshotExchange exchange_;
  StatsSlot<Stats> slot_;
  std::mutex page_;  // HTTP side only (the loop never takes it): one page, one reader at a time
  ScrapePolicy policy_;
  std::atomic<bool> stopping_{false};
  HttpServer server_;  // last: its thread starts once everything above exists, stops first
};

}  // namespace zkit
