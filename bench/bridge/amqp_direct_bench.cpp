// amqp_direct_bench: the baseline for bench/bridge. Publishes --count persistent messages of --size
// bytes with rabbitmq-c straight into a durable queue (quorum by default) with publisher confirms,
// keeping at most --window messages unconfirmed (1: wait for each confirm), and prints one JSON
// line with the rate of confirmed messages. The queue is declared first and deleted at the end.
//
//   amqp_direct_bench --host H --port P --user U --password W --vhost V --queue Q
//                     [--count N] [--size B] [--window W] [--queue-type quorum|classic]
#include <amqp.h>
#include <amqp_tcp_socket.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Args {
  std::string host = "127.0.0.1";
  int port = 5672;
  std::string user = "guest", password = "guest", vhost = "/", queue = "zkit-bench-direct";
  std::string queue_type = "quorum";
  std::uint64_t count = 20000;
  std::size_t size = 16;
  std::uint64_t window = 1000;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "amqp_direct_bench: %s\n", why.c_str());
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) usage(flag + " needs a value");
    const std::string v = argv[++i];
    auto number = [&](std::uint64_t min) {
      char* end = nullptr;
      const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < min) usage(flag + ": '" + v + "' is not a number >= " +
                                                      std::to_string(min));
      return static_cast<std::uint64_t>(n);
    };
    if (flag == "--host") a.host = v;
    else if (flag == "--port") a.port = static_cast<int>(number(1));
    else if (flag == "--user") a.user = v;
    else if (flag == "--password") a.password = v;
    else if (flag == "--vhost") a.vhost = v;
    else if (flag == "--queue") a.queue = v;
    else if (flag == "--queue-type") a.queue_type = v;
    else if (flag == "--count") a.count = number(1);
    else if (flag == "--size") a.size = number(1);
    else if (flag == "--window") a.window = number(1);
    else usage("unknown flag " + flag);
  }
  if (a.queue_type != "quorum" && a.queue_type != "classic") usage("--queue-type: quorum|classic");
  return a;
}

void check(amqp_rpc_reply_t r, const char* what) {
  if (r.reply_type == AMQP_RESPONSE_NORMAL) return;
  std::string why = "error";
  if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) why = amqp_error_string2(r.library_error);
  if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) why = "server exception (method " +
                                                            std::to_string(r.reply.id) + ")";
  throw std::runtime_error(std::string(what) + ": " + why);
}

void check(int status, const char* what) {
  if (status < 0) throw std::runtime_error(std::string(what) + ": " + amqp_error_string2(status));
}

// Confirms so far: which delivery tags are settled, and how many. RabbitMQ usually confirms in
// order, possibly several at once (`multiple`), but does not promise the order: track each tag.
struct Confirms {
  std::vector<bool> done;
  std::uint64_t floor = 0;  // every tag <= floor is settled
  std::uint64_t count = 0;
  void settle(std::uint64_t tag) {
    if (tag < done.size() && !done[tag]) done[tag] = true, ++count;
  }
};

// Reads frames until one basic.ack arrives and settles what it confirms.
void wait_confirm(amqp_connection_state_t conn, Confirms& c) {
  for (;;) {
    amqp_frame_t frame;
    check(amqp_simple_wait_frame(conn, &frame), "waiting for a confirm");
    if (frame.frame_type != AMQP_FRAME_METHOD) continue;
    const auto id = frame.payload.method.id;
    if (id == AMQP_BASIC_ACK_METHOD) {
      const auto* ack = static_cast<amqp_basic_ack_t*>(frame.payload.method.decoded);
      if (ack->multiple) {
        for (std::uint64_t t = c.floor + 1; t <= ack->delivery_tag; ++t) c.settle(t);
        c.floor = std::max(c.floor, ack->delivery_tag);
      } else {
        c.settle(ack->delivery_tag);
      }
      return;
    }
    if (id == AMQP_BASIC_NACK_METHOD) throw std::runtime_error("RabbitMQ nacked a message");
    if (id == AMQP_CHANNEL_CLOSE_METHOD || id == AMQP_CONNECTION_CLOSE_METHOD) {
      throw std::runtime_error("RabbitMQ closed the channel while publishing");
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  try {
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t* sock = amqp_tcp_socket_new(conn);
    if (!sock) throw std::runtime_error("amqp_tcp_socket_new failed");
    check(amqp_socket_open(sock, a.host.c_str(), a.port), "connecting");
    check(amqp_login(conn, a.vhost.c_str(), 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, a.user.c_str(),
                     a.password.c_str()),
          "login");
    amqp_channel_open(conn, 1);
    check(amqp_get_rpc_reply(conn), "channel.open");

    amqp_table_entry_t entry;
    entry.key = amqp_cstring_bytes("x-queue-type");
    entry.value.kind = AMQP_FIELD_KIND_UTF8;
    entry.value.value.bytes = amqp_cstring_bytes(a.queue_type.c_str());
    amqp_table_t arguments{1, &entry};
    const amqp_bytes_t queue = amqp_cstring_bytes(a.queue.c_str());
    amqp_queue_declare(conn, 1, queue, 0, /*durable=*/1, 0, /*auto_delete=*/0, arguments);
    check(amqp_get_rpc_reply(conn), "queue.declare");
    amqp_confirm_select(conn, 1);
    check(amqp_get_rpc_reply(conn), "confirm.select");

    std::vector<char> body(a.size, '.');
    amqp_basic_properties_t props;
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.delivery_mode = 2;  // persistent, as the bridge publishes
    std::uint64_t published = 0;
    Confirms confirms;
    confirms.done.assign(a.count + 1, false);
    const auto t0 = std::chrono::steady_clock::now();
    while (published < a.count) {
      // The message number in front, so the bytes differ as the bridge's generated messages do.
      const std::string number = std::to_string(published + 1);
      std::memcpy(body.data(), number.data(), std::min(number.size(), body.size()));
      check(amqp_basic_publish(conn, 1, amqp_cstring_bytes(""), queue, 0, 0, &props,
                               amqp_bytes_t{body.size(), body.data()}),
            "basic.publish");
      ++published;
      while (published - confirms.count >= a.window) wait_confirm(conn, confirms);
    }
    while (confirms.count < published) wait_confirm(conn, confirms);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    amqp_queue_delete(conn, 1, queue, 0, 0);
    check(amqp_get_rpc_reply(conn), "queue.delete");
    amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    std::printf(
        "{\"side\":\"rabbitmq-c\",\"queue_type\":\"%s\",\"count\":%llu,\"size\":%zu,"
        "\"window\":%llu,\"seconds\":%.6f,\"msg_per_s\":%.1f}\n",
        a.queue_type.c_str(), static_cast<unsigned long long>(a.count), a.size,
        static_cast<unsigned long long>(a.window), seconds, static_cast<double>(a.count) / seconds);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "amqp_direct_bench: %s\n", e.what());
    return 1;
  }
}
