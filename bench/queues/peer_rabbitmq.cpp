// The queue benchmark's RabbitMQ peer, driven by its C client (librabbitmq / rabbitmq-c): one
// quorum queue (durable, replicated log, fsynced before a confirm), `publishers` publishers with
// persistent messages and publisher confirms, each keeping up to `window` publishes unconfirmed,
// and `consumers` competing consumers, each with basic.qos prefetch `prefetch` and multiple acks
// (one ack covers everything received so far: sent at half the prefetch, or as soon as the socket
// has nothing more buffered). Every publisher and consumer has its own connection, as separate
// processes would.
//   peer_rabbitmq --url amqp://user:password@127.0.0.1:PORT/vhost [--messages N --size B ...]
// Prints one JSON line (peer_common.hpp). Exit 1 when the broker misbehaves or a message is lost.
#include <amqp.h>
#include <amqp_tcp_socket.h>

#include <sys/time.h>
#include <unistd.h>

#include <thread>

#include "peer_common.hpp"

using namespace zkit::qbench;

namespace {

// A queue of its own per run (deleted at the end): with one name deleted and declared again, the
// next run received 3 messages of the previous one, flagged redelivered.
const std::string kQueueName = "zkit-qbench-" + std::to_string(::getpid());
const char* const kQueue = kQueueName.c_str();
constexpr amqp_channel_t kChannel = 1;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "peer_rabbitmq: %s\n", what.c_str());
  std::_Exit(1);  // not exit(): other threads still use their connections
}

void check_reply(amqp_rpc_reply_t r, const char* what) {
  switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return;
    case AMQP_RESPONSE_NONE:
      fail(std::string(what) + ": no reply");
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      fail(std::string(what) + ": " + amqp_error_string2(r.library_error));
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD || r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const auto* m = static_cast<amqp_channel_close_t*>(r.reply.decoded);
        fail(std::string(what) + ": broker closed: " + std::to_string(m->reply_code) + " " +
             std::string(static_cast<const char*>(m->reply_text.bytes), m->reply_text.len));
      }
      fail(std::string(what) + ": broker error");
  }
}

struct Url {
  std::string host, user, password, vhost;
  int port = 5672;
};

Url parse_url(const std::string& url) {
  std::string copy = url;
  amqp_connection_info info;
  amqp_default_connection_info(&info);
  if (amqp_parse_url(copy.data(), &info) != AMQP_STATUS_OK) fail("bad --url " + url);
  return {info.host, info.user, info.password, info.vhost, info.port};
}

// One connection with channel 1 open.
class Conn {
 public:
  explicit Conn(const Url& u) : c_(amqp_new_connection()) {
    amqp_socket_t* sock = amqp_tcp_socket_new(c_);
    if (sock == nullptr) fail("socket");
    if (int s = amqp_socket_open(sock, u.host.c_str(), u.port); s != AMQP_STATUS_OK) {
      fail("connect " + u.host + ":" + std::to_string(u.port) + ": " + amqp_error_string2(s));
    }
    check_reply(amqp_login(c_, u.vhost.c_str(), 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
                           u.user.c_str(), u.password.c_str()),
                "login");
    amqp_channel_open(c_, kChannel);
    check_reply(amqp_get_rpc_reply(c_), "channel.open");
  }
  ~Conn() {
    amqp_channel_close(c_, kChannel, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c_, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c_);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  amqp_connection_state_t get() const { return c_; }

 private:
  amqp_connection_state_t c_;
};

// Publisher confirms: which delivery tags (1, 2, ...) the broker has confirmed.
class Confirms {
 public:
  explicit Confirms(std::uint64_t n) : done_(n + 1, false) {}
  void ack(std::uint64_t tag, bool multiple) {
    if (tag >= done_.size()) fail("confirm for a tag never published");
    if (multiple) {
      for (std::uint64_t t = floor_ + 1; t <= tag; ++t) mark(t);
    } else {
      mark(tag);
    }
    while (floor_ + 1 < done_.size() && done_[floor_ + 1]) ++floor_;
  }
  std::uint64_t confirmed() const { return confirmed_; }

 private:
  void mark(std::uint64_t t) {
    if (!done_[t]) {
      done_[t] = true;
      ++confirmed_;
    }
  }
  std::vector<bool> done_;
  std::uint64_t floor_ = 0, confirmed_ = 0;
};

std::atomic<std::uint64_t> nacked{0};
std::atomic<std::uint64_t> redelivered{0};  // deliveries the broker flagged as redelivered

// Reads one frame (blocking up to `timeout_us`, 0: only what is buffered) and applies a confirm.
// False when nothing came.
bool read_confirm(amqp_connection_state_t c, Confirms& confirms, long timeout_us) {
  amqp_frame_t f;
  timeval tv{0, timeout_us};
  const int s = amqp_simple_wait_frame_noblock(c, &f, &tv);
  if (s == AMQP_STATUS_TIMEOUT) return false;
  if (s != AMQP_STATUS_OK) fail(std::string("waiting for confirms: ") + amqp_error_string2(s));
  if (f.frame_type != AMQP_FRAME_METHOD) return true;
  if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
    const auto* m = static_cast<amqp_basic_ack_t*>(f.payload.method.decoded);
    confirms.ack(m->delivery_tag, m->multiple != 0);
  } else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
    const auto* m = static_cast<amqp_basic_nack_t*>(f.payload.method.decoded);
    nacked.fetch_add(1);
    confirms.ack(m->delivery_tag, m->multiple != 0);
  } else if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
             f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
    fail("the broker closed the publisher's channel");
  }
  return true;
}

void publish(const Url& u, const Args& a, int p, Clock::time_point deadline) {
  Conn conn(u);
  amqp_connection_state_t c = conn.get();
  amqp_confirm_select(c, kChannel);
  check_reply(amqp_get_rpc_reply(c), "confirm.select");
  const std::uint64_t mine =
      (a.messages - static_cast<std::uint64_t>(p) + static_cast<std::uint64_t>(a.publishers) - 1) /
      static_cast<std::uint64_t>(a.publishers);
  Confirms confirms(mine);
  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
  props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
  std::uint64_t sent = 0;
  for (std::uint64_t k = static_cast<std::uint64_t>(p); k < a.messages;
       k += static_cast<std::uint64_t>(a.publishers)) {
    while (sent - confirms.confirmed() >= static_cast<std::uint64_t>(a.window)) {
      if (Clock::now() > deadline) fail("publisher: no confirms before the timeout");
      read_confirm(c, confirms, 100000);
    }
    const std::string body = payload(k, a.size);
    const int s = amqp_basic_publish(c, kChannel, amqp_empty_bytes, amqp_cstring_bytes(kQueue), 0,
                                     0, &props, amqp_bytes_t{body.size(), const_cast<char*>(body.data())});
    if (s != AMQP_STATUS_OK) fail(std::string("publish: ") + amqp_error_string2(s));
    ++sent;
    while (read_confirm(c, confirms, 0)) {
    }
  }
  while (confirms.confirmed() < sent) {
    if (Clock::now() > deadline) fail("publisher: not every publish confirmed before the timeout");
    read_confirm(c, confirms, 100000);
  }
}

void consume(const Url& u, const Args& a, Tally& tally, std::atomic<int>& ready,
             Clock::time_point deadline) {
  Conn conn(u);
  amqp_connection_state_t c = conn.get();
  amqp_basic_qos(c, kChannel, 0, static_cast<std::uint16_t>(a.prefetch), 0);
  check_reply(amqp_get_rpc_reply(c), "basic.qos");
  amqp_basic_consume(c, kChannel, amqp_cstring_bytes(kQueue), amqp_empty_bytes, 0, 0, 0,
                     amqp_empty_table);
  check_reply(amqp_get_rpc_reply(c), "basic.consume");
  ready.fetch_add(1);
  std::uint64_t last_tag = 0;
  int unacked = 0;
  auto ack = [&] {
    if (unacked == 0) return;
    if (int s = amqp_basic_ack(c, kChannel, last_tag, 1); s != AMQP_STATUS_OK) {
      fail(std::string("ack: ") + amqp_error_string2(s));
    }
    unacked = 0;
  };
  while (!tally.done() && Clock::now() < deadline) {
    amqp_maybe_release_buffers(c);
    amqp_envelope_t env;
    timeval tv{0, 100000};
    amqp_rpc_reply_t r = amqp_consume_message(c, &env, &tv, 0);
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) {
      ack();
      continue;
    }
    check_reply(r, "consume");
    tally.record(env.message.body.bytes, env.message.body.len);
    if (env.redelivered) redelivered.fetch_add(1, std::memory_order_relaxed);
    last_tag = env.delivery_tag;
    ++unacked;
    amqp_destroy_envelope(&env);
    // Multiple acks: one covers all received so far. Ack at half the prefetch, so the broker
    // never waits for credit, or when nothing more is buffered (the end of a burst).
    if (unacked >= a.prefetch / 2 || (!amqp_data_in_buffer(c) && !amqp_frames_enqueued(c))) ack();
  }
  ack();
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse_args(argc, argv);
  if (a.url.empty()) usage_error(argv[0], "--url is required");
  if (a.prefetch > 65535) usage_error(argv[0], "--prefetch must be at most 65535 (basic.qos)");
  const Url u = parse_url(a.url);
  Tally tally(a.messages);
  const Clock::time_point deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(a.timeout_s));

  {  // A fresh quorum queue for this run.
    Conn admin(u);
    amqp_table_entry_t type{amqp_cstring_bytes("x-queue-type"), {}};
    type.value.kind = AMQP_FIELD_KIND_UTF8;
    type.value.value.bytes = amqp_cstring_bytes("quorum");
    amqp_table_t args{1, &type};
    amqp_queue_declare(admin.get(), kChannel, amqp_cstring_bytes(kQueue), 0, 1, 0, 0, args);
    check_reply(amqp_get_rpc_reply(admin.get()), "queue.declare (quorum)");
  }

  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < a.consumers; ++i) {
    threads.emplace_back([&] { consume(u, a, tally, ready, deadline); });
  }
  while (ready.load() < a.consumers && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // setup only, before timing
  }
  const auto t0 = Clock::now();
  for (int p = 0; p < a.publishers; ++p) {
    threads.emplace_back([&, p] { publish(u, a, p, deadline); });
  }
  for (auto& t : threads) t.join();
  const double seconds =
      std::chrono::duration<double>((tally.done() ? tally.done_at() : Clock::now()) - t0).count();
  {
    Conn admin(u);
    amqp_queue_delete(admin.get(), kChannel, amqp_cstring_bytes(kQueue), 0, 0);
    check_reply(amqp_get_rpc_reply(admin.get()), "queue.delete");
  }
  print_result("rabbitmq", a, seconds, tally,
               "\"nacked\":" + std::to_string(nacked.load()) +
                   ",\"redelivered\":" + std::to_string(redelivered.load()));
  return tally.lost() == 0 && nacked.load() == 0 ? 0 : 1;
}
