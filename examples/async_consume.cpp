// The seed's RabbitMQ consumer (pika basic_consume with on_message_callback) on zkit: run() calls
// the callback for every message; the callback stops the loop after the tenth. A watchdog thread
// stops it from outside after --timeout-s, so the program always ends.
//
//   async_consume [--endpoint tcp://127.0.0.1:5673] [--count 10] [--timeout-s 30]
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <zkit/pipeline.hpp>

int main(int argc, char** argv) {
  std::string endpoint = "tcp://127.0.0.1:5673";
  int count = 10;
  int timeout_s = 30;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--endpoint") == 0) {
      endpoint = argv[i + 1];
    } else if (std::strcmp(argv[i], "--count") == 0) {
      count = std::stoi(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--timeout-s") == 0) {
      timeout_s = std::stoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: async_consume [--endpoint EP] [--count N] [--timeout-s S]\n");
      return 2;
    }
  }

  zmq::context_t context;
  zkit::Puller consumer(context);
  consumer.bind(endpoint);

  int received = 0;
  auto callback = [&](const zkit::Message& message) {
    std::printf(" [x] Received '%.*s'\n", static_cast<int>(message.data.size()),
                message.text().data());
    std::fflush(stdout);
    if (++received == count) consumer.stop();
  };

  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(mutex);
    if (!done_cv.wait_for(lock, std::chrono::seconds(timeout_s), [&] { return done; })) {
      consumer.stop();  // stop() is the one member another thread may call
    }
  });

  consumer.run(callback);
  {
    std::lock_guard<std::mutex> lock(mutex);
    done = true;
  }
  done_cv.notify_one();
  watchdog.join();
  if (received < count) {
    std::fprintf(stderr, "async_consume: got %d of %d messages in %d s\n", received, count,
                 timeout_s);
    return 1;
  }
  return 0;
}
