// The queue benchmark's NATS JetStream peer, driven by its C client (libnats): a WorkQueue stream
// on file storage, one durable pull consumer with explicit acks shared by `consumers` pull
// subscribers (each on its own connection, as separate worker processes would be), `publishers`
// asynchronous publishers each keeping up to `window` publishes awaiting their PubAck.
//   peer_jetstream --url nats://127.0.0.1:PORT [--messages N --size B --consumers C ...]
// Prints one JSON line (peer_common.hpp). Exit 1 when the server misbehaves or a message is lost.
// Durability: file storage with one replica is the strongest a single server offers; nats-server
// 2.9 has no sync option and acknowledges a publish before any fsync (docs/benchmarks.md).
#include <nats/nats.h>

#include <thread>

#include "peer_common.hpp"

using namespace zkit::qbench;

namespace {

constexpr const char* kStream = "ZKITQ";
constexpr const char* kSubject = "zkitq.work";
constexpr const char* kDurable = "workers";

[[noreturn]] void fail(const char* what, natsStatus s, jsErrCode jerr = static_cast<jsErrCode>(0)) {
  std::fprintf(stderr, "peer_jetstream: %s: %s (jetstream error %d) %s\n", what,
               natsStatus_GetText(s), static_cast<int>(jerr), nats_GetLastError(nullptr));
  std::_Exit(1);  // not exit(): the other threads still use the client's objects
}

std::atomic<std::uint64_t> publish_errors{0};

void on_publish_error(jsCtx*, jsPubAckErr* pae, void*) {
  publish_errors.fetch_add(1, std::memory_order_relaxed);
  std::fprintf(stderr, "peer_jetstream: publish failed: %s\n", pae->ErrText ? pae->ErrText : "?");
}

struct Conn {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  Conn(const std::string& url, int max_pending) {
    if (natsStatus s = natsConnection_ConnectTo(&nc, url.c_str()); s != NATS_OK) fail("connect", s);
    jsOptions o;
    jsOptions_Init(&o);
    o.PublishAsync.MaxPending = max_pending;
    o.PublishAsync.ErrHandler = on_publish_error;
    if (natsStatus s = natsConnection_JetStream(&js, nc, &o); s != NATS_OK) fail("jetstream", s);
  }
  ~Conn() {
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
  }
};

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse_args(argc, argv);
  if (a.url.empty()) usage_error(argv[0], "--url is required");
  Tally tally(a.messages);
  const Clock::time_point deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(a.timeout_s));

  {  // A fresh stream and consumer for this run.
    Conn admin(a.url, a.window);
    jsErrCode jerr{};
    (void)js_DeleteStream(admin.js, kStream, nullptr, &jerr);  // absent the first time
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char* subjects[] = {kSubject};
    sc.Name = kStream;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Retention = js_WorkQueuePolicy;
    sc.Storage = js_FileStorage;
    sc.Replicas = 1;
    jsStreamInfo* si = nullptr;
    if (natsStatus s = js_AddStream(&si, admin.js, &sc, nullptr, &jerr); s != NATS_OK) {
      fail("add stream", s, jerr);
    }
    jsStreamInfo_Destroy(si);
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = kDurable;
    cc.FilterSubject = kSubject;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = static_cast<int64_t>(30e9);  // ns: no redelivery of a slow batch in the run
    cc.MaxAckPending = static_cast<int64_t>(a.prefetch) * a.consumers;
    jsConsumerInfo* ci = nullptr;
    if (natsStatus s = js_AddConsumer(&ci, admin.js, kStream, &cc, nullptr, &jerr); s != NATS_OK) {
      fail("add consumer", s, jerr);
    }
    jsConsumerInfo_Destroy(ci);
  }

  // Connections are made before the clock starts and destroyed after every thread is done.
  std::vector<std::unique_ptr<Conn>> conns;
  for (int i = 0; i < a.consumers + a.publishers; ++i) {
    conns.push_back(std::make_unique<Conn>(a.url, a.window));
  }
  std::vector<natsSubscription*> subs(static_cast<std::size_t>(a.consumers), nullptr);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < a.consumers; ++c) {
    threads.emplace_back([&, c] {
      Conn& conn = *conns[static_cast<std::size_t>(c)];
      jsSubOptions so;
      jsSubOptions_Init(&so);
      so.Stream = kStream;
      so.Consumer = kDurable;
      natsSubscription*& sub = subs[static_cast<std::size_t>(c)];
      jsErrCode jerr{};
      if (natsStatus s = js_PullSubscribe(&sub, conn.js, kSubject, kDurable, nullptr, &so, &jerr);
          s != NATS_OK) {
        fail("pull subscribe", s, jerr);
      }
      ready.fetch_add(1);
      while (!tally.done() && Clock::now() < deadline) {
        natsMsgList list{};
        // A long wait: when a Fetch returns on its timeout while the server still answers that
        // pull request, libnats 3.4.1 puts the late messages into the next Fetch's list beyond the
        // batch it allocated (a heap overflow, then a double free; seen with ASan at 200 ms).
        const natsStatus s = natsSubscription_Fetch(&list, sub, a.prefetch, 5000, &jerr);
        if (list.Count > a.prefetch) fail("fetch: more messages than the batch", NATS_ERR);
        if (s == NATS_TIMEOUT) continue;
        if (s != NATS_OK) fail("fetch", s, jerr);
        for (int i = 0; i < list.Count; ++i) {
          natsMsg* m = list.Msgs[i];
          tally.record(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
          if (natsStatus as = natsMsg_Ack(m, nullptr); as != NATS_OK) fail("ack", as);
        }
        natsMsgList_Destroy(&list);
      }
    });
  }
  while (ready.load() < a.consumers && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // setup only, before timing
  }

  const auto t0 = Clock::now();
  for (int p = 0; p < a.publishers; ++p) {
    threads.emplace_back([&, p] {
      Conn& conn = *conns[static_cast<std::size_t>(a.consumers + p)];
      for (std::uint64_t k = static_cast<std::uint64_t>(p); k < a.messages;
           k += static_cast<std::uint64_t>(a.publishers)) {
        const std::string body = payload(k, a.size);
        natsStatus s;
        do {  // NATS_TIMEOUT: `window` publishes await their PubAck after StallWait; try again
          s = js_PublishAsync(conn.js, kSubject, body.data(), static_cast<int>(body.size()),
                              nullptr);
        } while (s == NATS_TIMEOUT && Clock::now() < deadline);
        if (s != NATS_OK) fail("publish", s);
      }
      jsPubOptions po;
      jsPubOptions_Init(&po);
      po.MaxWait = static_cast<int64_t>(a.timeout_s * 1000);
      if (natsStatus s = js_PublishAsyncComplete(conn.js, &po); s != NATS_OK) {
        fail("publish complete", s);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (natsSubscription* sub : subs) natsSubscription_Destroy(sub);
  conns.clear();
  const double seconds =
      std::chrono::duration<double>((tally.done() ? tally.done_at() : Clock::now()) - t0).count();
  print_result("jetstream", a, seconds, tally,
               "\"publish_errors\":" + std::to_string(publish_errors.load()));
  nats_Close();
  return tally.lost() == 0 && publish_errors.load() == 0 ? 0 : 1;
}
