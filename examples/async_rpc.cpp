// Asynchronous RPC: a client puts 2,000 requests in flight at once, each with a timeout; the server
// answers most at once and keeps every tenth Responder to answer on its next turn. Replies come
// back batched and are matched to their requests by correlation id.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>
#include <zkit/rpc.hpp>

using namespace std::chrono_literals;

int main() {
  zmq::context_t context;
  zkit::Server server(context);
  std::string endpoint = server.bind("tcp://127.0.0.1:*");

  std::thread server_thread([&] {
    std::vector<zkit::Responder> later;
    auto handler = [&](const zkit::Message& m, zkit::Responder r) {
      std::string upper(m.text());
      std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
      if (r.id() % 10 == 0) {
        later.push_back(std::move(r));  // answered on the next turn, out of order
      } else {
        r.reply(upper);
      }
    };
    auto answer_later = [&] {
      for (auto& r : later) r.reply("LATE " + std::to_string(r.id()));
      later.clear();
    };
    // run() would do; a poll_once() loop lets the server answer its deferred requests between
    // turns.
    zkit::Server& s = server;
    for (;;) {
      std::size_t n = s.poll_once(handler, 20ms);
      answer_later();
      if (n == 0 && s.stats().messages_in >= 2000) break;
    }
    s.flush();
  });

  zkit::Client client(context);
  client.connect(endpoint);
  constexpr int kRequests = 2000;
  int ok = 0, late = 0, failed = 0;
  for (int i = 0; i < kRequests; ++i) {
    client.send(
        "request " + std::to_string(i),
        [&](const zkit::Reply& r) {
          if (!r.ok()) {
            ++failed;
          } else if (r.text().rfind("LATE ", 0) == 0) {
            ++late;
          } else {
            ++ok;
          }
          if (ok + late + failed == kRequests) client.stop();
        },
        5s);
  }
  std::size_t peak = client.in_flight();
  client.run();  // until the last handler calls stop()
  server_thread.join();

  std::printf("requests %d, in flight at once %zu, replies %d, deferred replies %d, failed %d\n",
              kRequests, peak, ok, late, failed);
  std::printf("client stats: %s\n", client.stats().to_json().c_str());
  return ok + late == kRequests && failed == 0 ? 0 : 1;
}
