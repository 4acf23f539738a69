// Helpers for the pattern tests: endpoints per transport, a temp dir, and pyzmq peers run as child
// processes with /usr/bin/python3 (ZKIT_PYTHON).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "temp_dir.hpp"

namespace zkit::test {

// A bindable endpoint for a transport ("inproc", "ipc", "tcp"); bind() resolves tcp's port.
inline std::string endpoint_for(const std::string& transport, const TempDir& dir,
                                const std::string& name = "s") {
  if (transport == "inproc") return "inproc://" + name + "-" + dir.path().substr(dir.path().size() - 6);
  if (transport == "ipc") return "ipc://" + dir.path() + "/" + name + ".sock";
  return "tcp://127.0.0.1:*";
}

// A python3 child running script with args; its stdout is read line by line. Scripts must end with
// close() and ctx.term(): pyzmq skips term() at interpreter exit and would lose what it queued.
class PyPeer {
 public:
  PyPeer(const TempDir& dir, const std::string& script, const std::string& args) {
    std::string file = dir.path() + "/peer" + std::to_string(++serial_) + ".py";
    std::ofstream(file) << script;
    std::string cmd = std::string(ZKIT_PYTHON) + " " + file + " " + args;
    pipe_ = popen(cmd.c_str(), "r");
  }
  ~PyPeer() { wait(); }
  // The next stdout line without its newline; empty at end of output.
  std::string line() {
    char buf[4096];
    if (!pipe_ || !fgets(buf, sizeof buf, pipe_)) return {};
    std::string s(buf);
    if (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  }
  // Exit status of the child.
  int wait() {
    if (!pipe_) return status_;
    status_ = pclose(pipe_);
    pipe_ = nullptr;
    return status_;
  }

 private:
  FILE* pipe_ = nullptr;
  int status_ = -1;
  static inline int serial_ = 0;
};

// One socket as a poll loop sees it (pattern.hpp's poll contract): its item, its deadline, its
// non-blocking step.
struct Polled {
  std::function<zmq_pollitem_t()> item;
  std::function<std::optional<std::chrono::steady_clock::time_point>()> deadline;
  std::function<void()> step;
};

// One turn of a device's loop: one zmq::poll over every item, timeout the earliest deadline (none:
// wait for ever, so a socket that forgets a deadline hangs the test, which then times out), then
// the step of each socket whose item fired or whose deadline has passed. Returns how many steps
// ran.
inline int poll_turn(std::vector<Polled>& sockets) {
  using Clock = std::chrono::steady_clock;
  std::vector<zmq_pollitem_t> items;
  std::optional<Clock::time_point> due;
  for (auto& s : sockets) {
    items.push_back(s.item());
    if (auto d = s.deadline(); d && (!due || *d < *due)) due = d;
  }
  std::chrono::milliseconds timeout(-1);
  if (due) {
    timeout = std::max(std::chrono::milliseconds(0),
                       std::chrono::ceil<std::chrono::milliseconds>(*due - Clock::now()));
  }
  zmq::poll(items, timeout);
  int ran = 0;
  Clock::time_point now = Clock::now();
  for (std::size_t i = 0; i < sockets.size(); ++i) {
    auto d = sockets[i].deadline();
    if (items[i].revents != 0 || (d && *d <= now)) {
      sockets[i].step();
      ++ran;
    }
  }
  return ran;
}

}  // namespace zkit::test
