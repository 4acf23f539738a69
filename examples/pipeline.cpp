// Pipeline over push/pull: a ventilator hands out tasks, workers square the numbers, a sink adds
// up the results. Each stage is a thread with its own sockets; they meet over inproc endpoints in
// one context (swap them for tcp:// to spread the stages over machines).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>
#include <zkit/pipeline.hpp>

namespace {
constexpr int kWorkers = 3;
constexpr std::uint64_t kTasks = 10000;
}  // namespace

int main() {
  zmq::context_t context;

  // The sink binds first so that no result finds nobody listening.
  zkit::Puller sink(context);
  sink.bind("inproc://results");
  zkit::Pusher ventilator(context);
  ventilator.bind("inproc://tasks");

  std::vector<zkit::Puller*> worker_inputs(kWorkers, nullptr);
  std::atomic<int> ready{0};
  std::atomic<bool> quit{false};
  std::vector<std::uint64_t> done_by(kWorkers, 0);
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      zkit::Puller tasks(context);
      tasks.connect("inproc://tasks");
      zkit::Pusher results(context);
      results.connect("inproc://results");
      worker_inputs[w] = &tasks;
      ready.fetch_add(1);
      auto handler = [&](const zkit::Message& m) {
        std::uint64_t n = std::stoull(std::string(m.text()));
        results.send(std::to_string(n * n));
        ++done_by[w];
      };
      // A relay's loop: wait for tasks no longer than the results' batch deadline, then pump() so
      // that the last results of a burst leave too (run() alone would leave them in the batch).
      while (!quit.load()) {
        auto deadline = results.pump();
        auto wait = deadline ? std::chrono::ceil<std::chrono::milliseconds>(
                                   *deadline - std::chrono::steady_clock::now())
                             : std::chrono::milliseconds(100);
        tasks.poll_once(handler, std::max(wait, std::chrono::milliseconds(0)));
      }
      results.close();  // hands over what is still buffered
    });
  }
  while (ready.load() < kWorkers) std::this_thread::yield();

  for (std::uint64_t i = 1; i <= kTasks; ++i) ventilator.send(std::to_string(i));
  ventilator.flush();

  std::uint64_t sum = 0, results = 0;
  sink.run([&](const zkit::Message& m) {
    sum += std::stoull(std::string(m.text()));
    if (++results == kTasks) sink.stop();
  });
  quit = true;
  for (zkit::Puller* p : worker_inputs) p->stop();  // wakes a waiting poll_once() at once
  for (auto& t : workers) t.join();

  const std::uint64_t expected = kTasks * (kTasks + 1) * (2 * kTasks + 1) / 6;
  for (int w = 0; w < kWorkers; ++w) {
    std::printf("worker %d: %llu tasks\n", w, static_cast<unsigned long long>(done_by[w]));
  }
  std::printf("sink: %llu results, sum of squares %llu (expected %llu)\n",
              static_cast<unsigned long long>(results), static_cast<unsigned long long>(sum),
              static_cast<unsigned long long>(expected));
  std::printf("sink stats: %s\n", sink.stats().to_json().c_str());
  return sum == expected ? 0 : 1;
}
