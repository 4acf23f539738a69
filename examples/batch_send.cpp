// The seed's RabbitMQ producer (pika basic_publish of 'Hello World 0'..'Hello World 9') on zkit:
// the ten messages travel as one batch. Start it before or after async_consume; close() waits up
// to --linger-ms for the consumer and says how many messages it could not deliver.
//
//   batch_send [--endpoint tcp://127.0.0.1:5673] [--linger-ms 10000]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <zkit/pipeline.hpp>

int main(int argc, char** argv) {
  std::string endpoint = "tcp://127.0.0.1:5673";
  long linger_ms = 10000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--endpoint") == 0) {
      endpoint = argv[i + 1];
    } else if (std::strcmp(argv[i], "--linger-ms") == 0) {
      linger_ms = std::stol(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: batch_send [--endpoint EP] [--linger-ms MS]\n");
      return 2;
    }
  }

  zmq::context_t context;
  zkit::PatternOptions options;
  options.batch.mode = zkit::FlushMode::kLinger;  // hold the ten until flush(): one batch
  options.batch.linger = std::chrono::seconds(60);
  options.socket.linger = std::chrono::milliseconds(linger_ms);
  zkit::Pusher sender(context, options);
  sender.connect(endpoint);  // the consumer binds; ZeroMQ connects whenever it is there

  for (int i = 0; i < 10; ++i) {
    std::string message = "Hello World " + std::to_string(i);
    sender.send(message);
    std::printf(" [x] Sent '%s'\n", message.c_str());
  }
  std::fflush(stdout);

  zkit::CloseReport report = sender.close();  // flush, wait up to the linger for the consumer
  if (!report.clean()) {
    std::fprintf(stderr, "batch_send: %llu messages could not be sent within %ld ms\n",
                 static_cast<unsigned long long>(report.unsent_messages), linger_ms);
    return 1;
  }
  return 0;
}
