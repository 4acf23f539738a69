// Test helpers for tests that run programs: a child process started with posix_spawn (stdin from
// a file, stdout and stderr to files), stopped by its pid with bounded waits; TempDir comes from
// temp_dir.hpp.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "temp_dir.hpp"

extern char** environ;

namespace zkit::test {

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

// A child process; killed (SIGKILL) and reaped by the destructor if it is still running.
class Process {
 public:
  Process(std::vector<std::string> argv, const std::string& out_path, const std::string& err_path,
          const std::string& in_path = "/dev/null")
      : out_path_(out_path), err_path_(err_path) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, in_path.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    const int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("posix_spawn " + argv[0] + " failed");
  }
  ~Process() {
    if (!status_) {
      ::kill(pid_, SIGKILL);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int sig) {
    if (!status_) ::kill(pid_, sig);
  }

  // The exit status once the process has ended within `timeout` (128 + signal when killed by one).
  std::optional<int> wait(std::chrono::milliseconds timeout = std::chrono::milliseconds(20000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!status_) {
      int st = 0;
      const pid_t r = ::waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return status_;
  }

  std::string out() const { return read_file(out_path_); }
  std::string err() const { return read_file(err_path_); }

  // Waits (bounded) for a "zkit <cmd>: bound EP" line on stderr and returns EP.
  std::string bound_endpoint(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      const std::string e = err();
      const auto at = e.find(": bound ");
      const auto nl = at == std::string::npos ? at : e.find('\n', at);
      if (nl != std::string::npos) return e.substr(at + 8, nl - at - 8);
      if (wait(std::chrono::milliseconds(0))) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    throw std::runtime_error("no 'bound' line on stderr: " + err());
  }

  // Waits until stdout holds a line starting with `prefix`; returns the rest of that line.
  std::optional<std::string> wait_line(const std::string& prefix,
                                       std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      std::istringstream lines(out());
      std::string line;
      while (std::getline(lines, line)) {
        if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
      }
      if (std::chrono::steady_clock::now() >= deadline || wait(std::chrono::milliseconds(0))) {
        return std::nullopt;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

 private:
  pid_t pid_ = -1;
  std::string out_path_, err_path_;
  std::optional<int> status_;
};

// Runs a command to completion (bounded); returns {exit status, stdout, stderr}.
struct Run {
  int status = -1;
  std::string out, err;
};
inline Run run(std::vector<std::string> argv, const TempDir& dir,
               std::chrono::milliseconds timeout = std::chrono::milliseconds(20000)) {
  static int n = 0;
  const std::string tag = "run" + std::to_string(++n);
  Process p(std::move(argv), dir.file(tag + ".out"), dir.file(tag + ".err"));
  auto st = p.wait(timeout);
  return {st.value_or(-1), p.out(), p.err()};
}

}  // namespace zkit::test
