// The flags every long-running device shares for its HTTP metrics endpoint (--metrics, --name,
// --metrics-connections) and the one call that starts it. Private to the zkit executable.
#pragma once

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

#include "cli.hpp"
#include "zkit/device_metrics.hpp"
#include "zkit/metrics_server.hpp"

namespace zkit::cli {

inline void add_metrics_flags(po::options_description& flags, const char* device) {
  // clang-format off
  flags.add_options()
      ("metrics", po::value<std::string>()->value_name("HOST:PORT"),
       "serve GET /metrics (Prometheus), /healthz and /readyz over HTTP here, e.g. "
       "127.0.0.1:9464 (port 0: any free port, printed on stdout); off by default")
      ("metrics-connections", po::value<long long>()->default_value(64)->value_name("N"),
       "with --metrics: HTTP connections open at once, at most (more are refused)")
      ("name", po::value<std::string>()->default_value(device)->value_name("NAME"),
       "this device's name: the `name` label of its metrics");
  // clang-format on
}

// Runs `f`, turning a bad or busy endpoint into a usage error (exit 2) naming the flag.
template <class F>
auto metrics_flag_errors(F&& f) {
  try {
    return f();
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--metrics: ") + e.what());
  } catch (const MetricsBindError& e) {
    throw UsageError(std::string("--metrics: ") + e.what());
  }
}

// The endpoint's options from the flags, checked (syntax, port free) before the device starts;
// empty without --metrics. Usage errors name the flag and the endpoint.
inline std::optional<MetricsServerOptions> metrics_flag(const po::variables_map& vm) {
  if (!vm.count("metrics")) return std::nullopt;
  MetricsServerOptions o;
  o.endpoint = vm["metrics"].as<std::string>();
  o.max_connections = static_cast<std::size_t>(number_flag(vm, "metrics-connections", 1, 100000));
  metrics_flag_errors([&o] {
    check_metrics_endpoint(o.endpoint);
    return 0;
  });
  return o;
}

// Starts the endpoint when --metrics was given (null otherwise), once the device runs.
template <class Stats, class Render, class NotReady>
std::unique_ptr<MetricsEndpoint<Stats>> start_metrics(const std::optional<MetricsServerOptions>& o,
                                                      const po::variables_map& vm,
                                                      const char* device, const Stats& first,
                                                      Render render, NotReady not_ready) {
  if (!o) return nullptr;
  const std::string name = vm["name"].as<std::string>();
  return metrics_flag_errors([&] {
    return std::make_unique<MetricsEndpoint<Stats>>(
        *o, metrics::Labels{{"device", device}, {"name", name}}, first, std::move(render),
        std::move(not_ready));
  });
}

// One descriptor readable while any of `fds` is (an epoll set; negative fds are left out), for a
// loop that can wait on one extra item only (SpoolNode::poll_once): the signals and a scrape's ask.
class WakeSet {
 public:
  explicit WakeSet(std::initializer_list<int> fds) : fd_(::epoll_create1(EPOLL_CLOEXEC)) {
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
    for (int fd : fds) {
      if (fd < 0) continue;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      if (::epoll_ctl(fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        const int e = errno;
        ::close(fd_);
        throw std::system_error(e, std::generic_category(), "epoll_ctl");
      }
    }
  }
  ~WakeSet() { ::close(fd_); }
  WakeSet(const WakeSet&) = delete;
  WakeSet& operator=(const WakeSet&) = delete;
  int fd() const noexcept { return fd_; }

 private:
  int fd_;
};

}  // namespace zkit::cli
