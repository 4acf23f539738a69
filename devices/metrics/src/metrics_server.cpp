// The metrics endpoint's HTTP side (libmicrohttpd) and the ask/answer exchange with the loop.
//
// libmicrohttpd, not civetweb or cpp-httplib: it serves every connection from one thread with
// non-blocking I/O (epoll), so a slow or stalled client holds a connection slot but never the
// thread, and it bounds what a peer can grow (connections, per-connection memory, idle timeout)
// with options of its own. civetweb and cpp-httplib give each connection a worker thread of a
// pool, which a handful of slow clients can fill. We create and bind the listening socket
// ourselves so that "address in use" is reported exactly and port 0 can be read back.
#include "zkit/metrics_server.hpp"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <system_error>

namespace zkit {
namespace {

// "HOST:PORT" -> sockaddr_in. Throws std::invalid_argument naming the text.
sockaddr_in parse_host_port(const std::string& text) {
  const auto bad = [&text](const std::string& why) {
    return std::invalid_argument("'" + text + "' is not HOST:PORT (" + why +
                                 "; e.g. 127.0.0.1:9464, *:9464, localhost:0)");
  };
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) throw bad("no ':PORT'");
  const std::string host = text.substr(0, colon);
  const std::string port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) > 65535) {
    throw bad("the port must be a number in [0, 65535]");
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(std::stoul(port)));
  if (host == "*" || host == "0.0.0.0") {
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
  } else if (host == "localhost") {
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  } else if (inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) {
    throw bad("the host must be an IPv4 address, localhost or *");
  }
  return sa;
}

std::string to_text(const sockaddr_in& sa) {
  char host[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &sa.sin_addr, host, sizeof host);
  return std::string(host) + ":" + std::to_string(ntohs(sa.sin_port));
}

void mhd_log(void*, const char* fmt, va_list ap) {
  char line[512];
  std::vsnprintf(line, sizeof line, fmt, ap);
  std::string text(line);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  spdlog::debug("metrics http: {}", text);
}

// A listening socket on `text`; throws std::invalid_argument or MetricsBindError.
int listen_on(const std::string& text, sockaddr_in& sa) {
  sa = parse_host_port(text);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 64) != 0) {
    const int e = errno;
    ::close(fd);
    throw MetricsBindError("'" + text + "': " + std::strerror(e));
  }
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return fd;
}

}  // namespace

void check_metrics_endpoint(const std::string& endpoint) {
  sockaddr_in sa{};
  ::close(listen_on(endpoint, sa));
}

struct HttpServer::Impl {
  std::vector<std::pair<std::string, Handler>> routes;
  std::string endpoint;
  int listen_fd = -1;
  MHD_Daemon* daemon = nullptr;

  static MHD_Result answer(void* cls, MHD_Connection* connection, const char* url,
                           const char* method, const char*, const char*, size_t* upload_size,
                           void** request) {
    auto* self = static_cast<Impl*>(cls);
    // The first call only announces the request (headers read); answering on the second lets
    // libmicrohttpd keep the connection alive for the next scrape.
    static int announced;
    if (*request == nullptr) {
      *request = &announced;
      return MHD_YES;
    }
    if (*upload_size != 0) {  // a request body (no route takes one): read and discarded
      *upload_size = 0;
      return MHD_YES;
    }
    HttpReply reply;
    const bool get = std::strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    const bool head = std::strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    const Handler* handler = nullptr;
    for (const auto& [path, h] : self->routes) {
      if (path == url) handler = &h;
    }
    if (!get && !head) {
      reply = {405, "text/plain; charset=utf-8", "method not allowed: GET or HEAD\n"};
    } else if (handler == nullptr) {
      reply = {404, "text/plain; charset=utf-8", "not found: /metrics, /healthz, /readyz\n"};
    } else {
      try {
        reply = (*handler)();
      } catch (const std::exception& e) {
        reply = {500, "text/plain; charset=utf-8", std::string("error: ") + e.what() + "\n"};
      }
    }
    MHD_Response* response = MHD_create_response_from_buffer(reply.body.size(), reply.body.data(),
                                                             MHD_RESPMEM_MUST_COPY);
    if (response == nullptr) return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, reply.content_type.c_str());
    if (reply.status == 405) MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    const MHD_Result r =
        MHD_queue_response(connection, static_cast<unsigned>(reply.status), response);
    MHD_destroy_response(response);
    return r;
  }

  ~Impl() {
    if (daemon != nullptr) MHD_stop_daemon(daemon);
    if (listen_fd >= 0) ::close(listen_fd);
  }
};

HttpServer::HttpServer(const MetricsServerOptions& o,
                       std::vector<std::pair<std::string, Handler>> routes)
    : impl_(std::make_unique<Impl>()) {
  if (o.max_connections < 1) throw std::invalid_argument("metrics: max_connections must be >= 1");
  sockaddr_in sa{};
  impl_->listen_fd = listen_on(o.endpoint, sa);
  impl_->routes = std::move(routes);
  impl_->endpoint = to_text(sa);
  impl_->daemon = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG, 0, nullptr, nullptr,
      &Impl::answer, impl_.get(), MHD_OPTION_EXTERNAL_LOGGER, &mhd_log, nullptr,
      MHD_OPTION_LISTEN_SOCKET, impl_->listen_fd, MHD_OPTION_CONNECTION_LIMIT,
      static_cast<unsigned>(o.max_connections), MHD_OPTION_CONNECTION_TIMEOUT,
      static_cast<unsigned>(o.connection_timeout.count()), MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      o.connection_memory, MHD_OPTION_END);
  if (impl_->daemon == nullptr) {
    throw std::runtime_error("metrics: the HTTP server (libmicrohttpd) did not start on " +
                             impl_->endpoint);
  }
}

HttpServer::~HttpServer() = default;
const std::string& HttpServer::endpoint() const noexcept { return impl_->endpoint; }

// ---- the exchange ---------------------------------------------------------------------------

SnapshotExchange::SnapshotExchange() {
  ask_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  answer_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (ask_fd_ < 0 || answer_fd_ < 0) {
    const int e = errno;
    if (ask_fd_ >= 0) ::close(ask_fd_);
    if (answer_fd_ >= 0) ::close(answer_fd_);
    throw std::system_error(e, std::generic_category(), "metrics: eventfd");
  }
}

SnapshotExchange::~SnapshotExchange() {
  ::close(ask_fd_);
  ::close(answer_fd_);
}

bool SnapshotExchange::take_ask() noexcept {
  // The reader writes ask_fd_ before it sets pending_: once pending_ is seen, the read below
  // drains that write, so ask_fd_ never stays readable (the loop never spins) for an ask taken.
  if (!pending_.load(std::memory_order_relaxed)) return false;
  if (!pending_.exchange(false, std::memory_order_acquire)) return false;
  std::uint64_t n = 0;
  (void)!::read(ask_fd_, &n, sizeof n);
  // Every ask made before this point is answered by the copy the caller now takes.
  serving_ = asked_.load(std::memory_order_acquire);
  return true;
}

void SnapshotExchange::answered() noexcept {
  // Also after a publish nobody asked for (serving_ unchanged): a harmless extra wake-up.
  answered_.store(serving_, std::memory_order_release);
  answers_.fetch_add(1, std::memory_order_acq_rel);
  const std::uint64_t one = 1;
  (void)!::write(answer_fd_, &one, sizeof one);
}

bool SnapshotExchange::ask(std::chrono::milliseconds wait) {
  const std::uint64_t mine = asked_.fetch_add(1, std::memory_order_acq_rel) + 1;
  const std::uint64_t one = 1;
  (void)!::write(ask_fd_, &one, sizeof one);
  pending_.store(true, std::memory_order_release);
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    if (answered_.load(std::memory_order_acquire) >= mine) return true;
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{answer_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) > 0) {
      std::uint64_t n = 0;
      (void)!::read(answer_fd_, &n, sizeof n);
    }
  }
}

// ---- the policy -----------------------------------------------------------------------------

ScrapePolicy::ScrapePolicy(const MetricsServerOptions& o, SnapshotExchange& exchange)
    : o_(o), exchange_(exchange), last_answer_(Clock::now()) {}

void ScrapePolicy::refresh() {
  const auto now = Clock::now();
  if (now - last_answer_ < o_.min_interval) return;
  const bool fresh = exchange_.ask(o_.fresh_wait);
  const std::uint64_t answers = exchange_.answers();
  if (fresh) {
    last_answer_ = Clock::now();
    unanswered_since_.reset();
  } else if (!unanswered_since_ || answers != answers_seen_) {
    // Busy, not stuck, while it publishes at all: the stall is measured from its last sign.
    unanswered_since_ = now;
  }
  answers_seen_ = answers;
}

double ScrapePolicy::age_seconds() const {
  return std::chrono::duration<double>(Clock::now() - last_answer_).count();
}

std::optional<std::chrono::milliseconds> ScrapePolicy::stalled() const {
  if (!unanswered_since_) return std::nullopt;
  const auto waited =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - *unanswered_since_);
  if (waited < o_.stall_after) return std::nullopt;
  return waited;
}

}  // namespace zkit
