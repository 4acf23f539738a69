// Pub/sub fan-out with topic filters: one publisher, a weather subscriber ("weather." prefix) and
// a news subscriber ("news"). Subscriptions reach a publisher asynchronously (the slow joiner), so
// the publisher first sends on "sync" until every subscriber has heard it, then publishes for real.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <zkit/pubsub.hpp>

using namespace std::chrono_literals;

namespace {

struct Listener {
  std::string name;
  std::string prefix;
  std::map<std::string, int> per_topic;
  std::atomic<bool> synced{false};
  std::uint64_t missed = 0;
};

void listen(zmq::context_t& context, Listener& l) {
  zkit::Subscriber sub(context);
  sub.connect("inproc://feed");
  sub.subscribe("sync");
  sub.subscribe("end");
  sub.subscribe(l.prefix);
  sub.run([&](const zkit::Message& m) {
    if (m.topic == "sync") {
      l.synced = true;
    } else if (m.topic == "end") {
      sub.stop();
    } else {
      ++l.per_topic[std::string(m.topic)];
    }
  });
  l.missed = sub.stats().missed_batches;
}

}  // namespace

int main() {
  zmq::context_t context;
  zkit::Publisher pub(context);
  pub.bind("inproc://feed");

  Listener weather{"weather", "weather.", {}, {}, 0};
  Listener news{"news", "news", {}, {}, 0};
  std::thread tw([&] { listen(context, weather); });
  std::thread tn([&] { listen(context, news); });

  for (int i = 0; i < 500 && !(weather.synced && news.synced); ++i) {
    pub.send("sync", "hello?");
    pub.flush();
    std::this_thread::sleep_for(10ms);
  }

  for (int i = 0; i < 100; ++i) {
    pub.send("weather.paris", "sunny " + std::to_string(i));
    pub.send("weather.oslo", "snow " + std::to_string(i));
    pub.send("news", "headline " + std::to_string(i));
    pub.send("sports", "score " + std::to_string(i));  // nobody subscribes: filtered at the source
  }
  // Order holds within a topic, not across topics (each topic has its own batch): flush the data
  // before the "end" marker so that it cannot overtake them.
  pub.flush();
  pub.send("end", "");
  pub.flush();
  tw.join();
  tn.join();

  bool ok = true;
  for (Listener* l : {&weather, &news}) {
    std::printf("%s subscriber:", l->name.c_str());
    for (auto& [topic, n] : l->per_topic) std::printf(" %s=%d", topic.c_str(), n);
    std::printf(" (sync batches missed before joining: %llu)\n",
                static_cast<unsigned long long>(l->missed));
  }
  ok = weather.per_topic["weather.paris"] == 100 && weather.per_topic["weather.oslo"] == 100 &&
       weather.per_topic.size() == 2 && news.per_topic["news"] == 100 && news.per_topic.size() == 1;
  std::printf("publisher stats: %s\n", pub.stats().to_json().c_str());
  std::printf(ok ? "fan-out ok\n" : "fan-out WRONG\n");
  return ok ? 0 : 1;
}
