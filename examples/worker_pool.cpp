// A worker pool on the spool (the article's task-scheduling scene): one producer sends N tasks over
// the reliable link to a spool, which hands them to a consumer group of three worker processes,
// one task at a time each (prefetch 1), least loaded first. Mid-run one worker is SIGKILLed while
// it works on a task; a replacement joins. The killed worker's task goes to another worker with
// delivery count 2, every task is done, and the redelivered ones are named.
//
//   worker_pool [tasks=60]
//
// The spool runs in-process (a zkit::SpoolNode on its own thread, in a temporary directory); the
// workers are this program again (`worker_pool --worker EP NAME FD`), reporting on a pipe.
// Exits 0 when every task was done.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "zkit/consumer.hpp"
#include "zkit/reliable.hpp"
#include "zkit/spool_node.hpp"

extern char** environ;
using namespace std::chrono_literals;

namespace {

// A worker: takes tasks from group "tasks", "works" 20 ms on each, reports start and done.
int worker(const std::string& endpoint, const std::string& name, int fd) {
  auto say = [fd](const std::string& line) { (void)!::write(fd, line.data(), line.size()); };
  zmq::context_t ctx;
  zkit::ConsumerOptions o;
  o.group = "tasks";
  o.prefetch_batches = 1;
  zkit::Consumer c(ctx, o);
  c.connect(endpoint);
  c.run([&](const zkit::ConsumedBatch& b) {
    for (auto m : b) {
      const std::string task(reinterpret_cast<const char*>(m.data()), m.size());
      say("start " + task + " " + name + "\n");
      std::this_thread::sleep_for(20ms);  // the work
      say("done " + task + " " + name + " " + std::to_string(b.info.delivery_count) + "\n");
    }
  });  // the handler returned: acknowledged
  return 0;
}

pid_t spawn_worker(const char* self, const std::string& endpoint, const std::string& name, int fd) {
  std::vector<std::string> argv{self, "--worker", endpoint, name, std::to_string(fd)};
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, args.data(), environ) != 0) {
    std::perror("posix_spawn");
    std::exit(1);
  }
  std::printf("worker %s started (pid %d)\n", name.c_str(), pid);
  return pid;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "--worker") {
    return worker(argv[2], argv[3], std::atoi(argv[4]));
  }
  const int tasks = argc > 1 ? std::atoi(argv[1]) : 60;
  if (tasks < 3) return 2;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  int pipefd[2];
  if (::pipe(pipefd) != 0) return 1;

  // The spool: its own thread, its own temporary directory.
  const auto dir =
      std::filesystem::temp_directory_path() / ("zkit-worker-pool-" + std::to_string(::getpid()));
  zmq::context_t ctx;
  std::promise<std::pair<std::string, std::string>> endpoints;  // listen, serve
  std::promise<std::string> control;
  zkit::SpoolNodeStats final_stats;
  std::thread spool([&] {
    zkit::SpoolNodeOptions o;
    o.store.dir = dir.string();
    o.listen = "tcp://127.0.0.1:*";
    o.serve = "tcp://127.0.0.1:*";
    o.control = "inproc://worker-pool-control";
    zkit::SpoolNode node(ctx, o);
    endpoints.set_value({node.listen_endpoint(), node.serve_endpoint()});
    node.run();
    final_stats = node.stats();
  });
  const auto [listen, serve] = endpoints.get_future().get();

  std::map<std::string, pid_t> workers;
  for (const char* name : {"w1", "w2", "w3"})
    workers[name] = spawn_worker(argv[0], serve, name, pipefd[1]);

  // The producer: one task per batch, so that each can go to a different worker.
  zkit::ReliableSender producer(ctx, {});
  producer.connect(listen);
  for (int t = 1; t <= tasks; ++t) {
    if (!producer.send("task-" + std::to_string(t), 10s)) return 1;
    producer.flush();
  }

  std::map<std::string, std::string> done_by;      // task -> worker
  std::map<std::string, std::string> redelivered;  // task -> "worker (delivery N)"
  std::string killed, pending;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (static_cast<int>(done_by.size()) < tasks && std::chrono::steady_clock::now() < deadline) {
    (void)producer.poll_once(0ms);
    pollfd p{pipefd[0], POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(pipefd[0], buf, sizeof buf);
    if (n <= 0) continue;
    pending.append(buf, static_cast<std::size_t>(n));
    for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos; pending.erase(0, nl + 1)) {
      std::istringstream line(pending.substr(0, nl));
      std::string what, task, name;
      int count = 0;
      line >> what >> task >> name >> count;
      // Once a third of the tasks is done, the next worker to start one dies with it in hand.
      if (what == "start" && killed.empty() && static_cast<int>(done_by.size()) >= tasks / 3 &&
          workers.count(name)) {
        killed = name;
        ::kill(workers[name], SIGKILL);
        (void)::waitpid(workers[name], nullptr, 0);
        std::printf("worker %s SIGKILLed while working on %s\n", name.c_str(), task.c_str());
        workers.erase(name);
        workers["w4"] = spawn_worker(argv[0], serve, "w4", pipefd[1]);
      }
      if (what != "done") continue;
      done_by[task] = name;
      if (count > 1) redelivered[task] = name + " (delivery " + std::to_string(count) + ")";
    }
  }

  for (auto& [name, pid] : workers) {
    ::kill(pid, SIGTERM);
    (void)::waitpid(pid, nullptr, 0);
  }
  {
    zmq::socket_t req(ctx, zmq::socket_type::req);
    req.connect("inproc://worker-pool-control");
    req.send(zmq::str_buffer("TERMINATE"), zmq::send_flags::none);
    zmq::message_t reply;
    (void)req.recv(reply);
  }
  spool.join();
  producer.close();
  std::filesystem::remove_all(dir);

  std::map<std::string, int> per_worker;
  for (const auto& [task, name] : done_by) ++per_worker[name];
  for (const auto& [name, n] : per_worker) std::printf("%s did %d tasks\n", name.c_str(), n);
  for (const auto& [task, who] : redelivered) {
    std::printf("redelivered: %s, done by %s\n", task.c_str(), who.c_str());
  }
  for (const auto& g : final_stats.groups) {
    std::printf("group %s: %llu delivered, %llu redelivered, %llu acked\n", g.name.c_str(),
                static_cast<unsigned long long>(g.state.delivered),
                static_cast<unsigned long long>(g.state.redelivered),
                static_cast<unsigned long long>(g.state.acked));
  }
  const bool ok = static_cast<int>(done_by.size()) == tasks;
  std::printf("%d of %d tasks done, %zu redelivered%s\n", static_cast<int>(done_by.size()), tasks,
              redelivered.size(), ok ? ": every task done" : "");
  return ok ? 0 : 1;
}
