// A minimal blocking HTTP/1.0 client for tests: one request per connection to 127.0.0.1.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace zkit::test {

struct HttpAnswer {
  int status = 0;
  std::string body;
};

// A connected TCP socket to "HOST:PORT" (IPv4); throws std::runtime_error. The caller closes it.
inline int http_connect(const std::string& host_port) {
  const auto colon = host_port.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(std::stoul(host_port.substr(colon + 1))));
  inet_pton(AF_INET, host_port.substr(0, colon).c_str(), &sa.sin_addr);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot connect to " + host_port);
  }
  return fd;
}

// `method` `path` on `host_port`; waits at most timeout_ms for each read. Throws on failure.
inline HttpAnswer http_request(const std::string& host_port, const std::string& path,
                               const std::string& method = "GET", int timeout_ms = 10000) {
  const int fd = http_connect(host_port);
  const std::string req = method + " " + path + " HTTP/1.0\r\nHost: x\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    throw std::runtime_error("send failed");
  }
  std::string raw;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) {
      ::close(fd);
      throw std::runtime_error("no answer from " + host_port + path);
    }
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  HttpAnswer a;
  if (raw.rfind("HTTP/1.", 0) != 0 || raw.size() < 12) {
    throw std::runtime_error("not an HTTP answer: " + raw.substr(0, 40));
  }
  a.status = std::stoi(raw.substr(9, 3));
  const auto end = raw.find("\r\n\r\n");
  if (end != std::string::npos) a.body = raw.substr(end + 4);
  return a;
}

inline HttpAnswer http_get(const std::string& host_port, const std::string& path) {
  return http_request(host_port, path);
}

}  // namespace zkit::test
