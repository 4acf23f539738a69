// rabbitmq-c behind amqp::Connection: replies become values, failures AmqpError (see amqp.hpp).
#include "amqp.hpp"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <fmt/format.h>
#include <sys/time.h>

#include <cstring>

namespace zkit::amqp {
namespace {

constexpr amqp_channel_t kChannel = 1;

std::string text(amqp_bytes_t b) { return {static_cast<const char*>(b.bytes), b.len}; }
amqp_bytes_t bytes(std::string_view s) { return {s.size(), const_cast<char*>(s.data())}; }

timeval to_timeval(std::chrono::milliseconds ms) {
  if (ms.count() < 0) ms = std::chrono::milliseconds{0};
  return {static_cast<time_t>(ms.count() / 1000), static_cast<suseconds_t>(ms.count() % 1000 * 1000)};
}

// Reply codes after which trying again cannot help.
bool fatal_code(int code) {
  return code == AMQP_ACCESS_REFUSED || code == AMQP_NOT_FOUND || code == AMQP_NOT_ALLOWED ||
         code == AMQP_PRECONDITION_FAILED || code == AMQP_RESOURCE_LOCKED ||
         code == AMQP_COMMAND_INVALID || code == AMQP_NOT_IMPLEMENTED;
}

[[noreturn]] void throw_close(const std::string& where, const char* what, const std::string& scope,
                              int code, const std::string& reply) {
  throw AmqpError(fmt::format("{}: {}: the broker closed the {}: {} {}", where, what, scope, code,
                              reply),
                  fatal_code(code));
}

// Throws for anything but a normal reply. `what` names the operation ("login", "consume ...").
void check(const amqp_rpc_reply_t& r, const std::string& where, const std::string& what) {
  switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return;
    case AMQP_RESPONSE_NONE:
      throw AmqpError(fmt::format("{}: {}: no reply from the broker", where, what), false);
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      throw AmqpError(
          fmt::format("{}: {}: {}", where, what, amqp_error_string2(r.library_error)), false);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const auto* m = static_cast<amqp_connection_close_t*>(r.reply.decoded);
        throw_close(where, what.c_str(), "connection", m->reply_code, text(m->reply_text));
      }
      if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const auto* m = static_cast<amqp_channel_close_t*>(r.reply.decoded);
        throw_close(where, what.c_str(), "channel", m->reply_code, text(m->reply_text));
      }
      throw AmqpError(fmt::format("{}: {}: unexpected method {}", where, what,
                                  amqp_method_name(r.reply.id)),
                      false);
  }
  throw AmqpError(where + ": " + what + ": unknown reply", false);
}

void check_status(int status, const std::string& where, const std::string& what) {
  if (status != AMQP_STATUS_OK) {
    throw AmqpError(fmt::format("{}: {}: {}", where, what, amqp_error_string2(status)), false);
  }
}

}  // namespace

Connection::Connection(const AmqpSettings& s)
    : where_(fmt::format("amqp://{}:{}/{}", s.host, s.port, s.vhost == "/" ? "" : s.vhost)) {
  conn_ = amqp_new_connection();
  if (conn_ == nullptr) throw std::bad_alloc();
  try {
    amqp_socket_t* socket = amqp_tcp_socket_new(conn_);
    if (socket == nullptr) throw AmqpError(where_ + ": cannot create a socket", false);
    timeval tv = to_timeval(s.timeout);
    const int st = amqp_socket_open_noblock(socket, s.host.c_str(), s.port, &tv);
    if (st != AMQP_STATUS_OK) {
      throw AmqpError(fmt::format("{}: cannot connect: {} (is RabbitMQ listening there?)", where_,
                                  amqp_error_string2(st)),
                      false);
    }
    amqp_set_handshake_timeout(conn_, &tv);
    amqp_set_rpc_timeout(conn_, &tv);
    const int heartbeat = static_cast<int>(s.heartbeat.count());
    const amqp_rpc_reply_t r =
        amqp_login(conn_, s.vhost.c_str(), 0, 131072, heartbeat, AMQP_SASL_METHOD_PLAIN,
                   s.user.c_str(), s.password.c_str());
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        (r.library_error == AMQP_STATUS_CONNECTION_CLOSED ||
         r.library_error == AMQP_STATUS_SOCKET_CLOSED)) {
      // RabbitMQ closes the socket without a reason when the login is refused (rabbitmq-c
      // does not announce authentication_failure_close).
      throw AmqpError(fmt::format("{}: login refused for user '{}' on vhost '{}' (wrong "
                                  "credentials, or the user may not use this vhost)",
                                  where_, s.user, s.vhost),
                      true);
    }
    try {
      check(r, where_, "login");
    } catch (const AmqpError& e) {
      if (!e.fatal()) throw;
      throw AmqpError(fmt::format("login refused for user '{}' on vhost '{}' (wrong credentials, "
                                  "or no access to the vhost): {}",
                                  s.user, s.vhost, e.what()),
                      true);
    }
    amqp_channel_open(conn_, kChannel);
    check(amqp_get_rpc_reply(conn_), where_, "channel.open");
  } catch (...) {
    amqp_destroy_connection(conn_);
    conn_ = nullptr;
    throw;
  }
}

Connection::~Connection() {
  if (conn_) amqp_destroy_connection(conn_);
}

void Connection::close() noexcept {
  if (!conn_) return;
  amqp_channel_close(conn_, kChannel, AMQP_REPLY_SUCCESS);
  amqp_connection_close(conn_, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(conn_);
  conn_ = nullptr;
}

int Connection::fd() const noexcept { return amqp_get_sockfd(conn_); }

bool Connection::buffered() const noexcept {
  return amqp_frames_enqueued(conn_) || amqp_data_in_buffer(conn_);
}

void Connection::confirm_select() {
  amqp_confirm_select(conn_, kChannel);
  check(amqp_get_rpc_reply(conn_), where_, "confirm.select");
}

void Connection::qos(std::uint16_t prefetch) {
  prefetch_ = prefetch;
  amqp_basic_qos(conn_, kChannel, 0, prefetch, 0);
  check(amqp_get_rpc_reply(conn_), where_, fmt::format("basic.qos prefetch {}", prefetch));
}

void Connection::sync() {
  amqp_basic_qos(conn_, kChannel, 0, prefetch_, 0);
  check(amqp_get_rpc_reply(conn_), where_, "basic.qos (sync)");
}

void Connection::declare_queue(const std::string& queue, const std::string& type) {
  amqp_table_entry_t entry;
  entry.key = amqp_cstring_bytes("x-queue-type");
  entry.value.kind = AMQP_FIELD_KIND_UTF8;
  entry.value.value.bytes = bytes(type);
  amqp_table_t args{1, &entry};
  amqp_queue_declare(conn_, kChannel, bytes(queue), 0, 1, 0, 0, args);
  check(amqp_get_rpc_reply(conn_), where_,
        fmt::format("declare durable {} queue '{}'", type, queue));
}

void Connection::bind_queue(const std::string& queue, const std::string& exchange,
                            const std::string& key) {
  amqp_queue_bind(conn_, kChannel, bytes(queue), bytes(exchange), bytes(key), amqp_empty_table);
  check(amqp_get_rpc_reply(conn_), where_,
        fmt::format("bind queue '{}' to exchange '{}' with key '{}'", queue, exchange, key));
}

void Connection::check_queue(const std::string& queue) {
  amqp_queue_declare(conn_, kChannel, bytes(queue), 1, 0, 0, 0, amqp_empty_table);
  const amqp_rpc_reply_t r = amqp_get_rpc_reply(conn_);
  if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
      static_cast<amqp_channel_close_t*>(r.reply.decoded)->reply_code == AMQP_NOT_FOUND) {
    throw AmqpError(fmt::format("{}: queue '{}' does not exist (declare it, or give "
                                "--queue-type to let the bridge declare it)",
                                where_, queue),
                    true);
  }
  check(r, where_, fmt::format("check queue '{}'", queue));
}

void Connection::consume(const std::string& queue) {
  amqp_basic_consume(conn_, kChannel, bytes(queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
  check(amqp_get_rpc_reply(conn_), where_, fmt::format("consume from queue '{}'", queue));
}

void Connection::publish(const std::string& exchange, const std::string& key,
                         std::span<const std::byte> body, const Publish& p) {
  amqp_basic_properties_t props;
  std::memset(&props, 0, sizeof props);
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
  props.delivery_mode = 2;  // persistent
  if (!p.message_id.empty()) {
    props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
    props.message_id = bytes(p.message_id);
  }
  if (!p.content_type.empty()) {
    props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
    props.content_type = bytes(p.content_type);
  }
  amqp_table_entry_t entries[4];
  if (p.has_ids) {
    const char* names[4] = {"x-zkit-producer", "x-zkit-seq", "x-zkit-index", "x-zkit-copy"};
    const std::uint64_t values[4] = {p.producer_id, p.seq, p.index, p.copy};
    for (int i = 0; i < 4; ++i) {
      entries[i].key = amqp_cstring_bytes(names[i]);
      entries[i].value.kind = AMQP_FIELD_KIND_U64;
      entries[i].value.value.u64 = values[i];
    }
    props._flags |= AMQP_BASIC_HEADERS_FLAG;
    props.headers = amqp_table_t{4, entries};
  }
  const amqp_bytes_t b{body.size(), const_cast<std::byte*>(body.data())};
  const int st = amqp_basic_publish(conn_, kChannel, bytes(exchange), bytes(key), 1, 0, &props, b);
  check_status(st, where_, fmt::format("publish to exchange '{}'", exchange));
}

void Connection::ack(std::uint64_t tag, bool multiple) {
  check_status(amqp_basic_ack(conn_, kChannel, tag, multiple ? 1 : 0), where_, "basic.ack");
}

void Connection::reject(std::uint64_t tag) {
  check_status(amqp_basic_reject(conn_, kChannel, tag, 0), where_, "basic.reject");
}

Event Connection::next(std::chrono::milliseconds timeout) {
  amqp_maybe_release_buffers(conn_);
  amqp_frame_t frame;
  timeval tv = to_timeval(timeout);
  const int st = amqp_simple_wait_frame_noblock(conn_, &frame, &tv);
  if (st == AMQP_STATUS_TIMEOUT) return std::monostate{};
  check_status(st, where_, "read");
  if (frame.frame_type != AMQP_FRAME_METHOD) {
    throw AmqpError(where_ + ": read: a content frame outside a message", false);
  }
  switch (frame.payload.method.id) {
    case AMQP_BASIC_DELIVER_METHOD: {
      const auto* d = static_cast<amqp_basic_deliver_t*>(frame.payload.method.decoded);
      Delivery out;
      out.tag = d->delivery_tag;
      out.redelivered = d->redelivered != 0;
      amqp_message_t m;
      check(amqp_read_message(conn_, frame.channel, &m, 0), where_, "read a delivery");
      if (m.properties._flags & AMQP_BASIC_CONTENT_TYPE_FLAG) {
        out.content_type = text(m.properties.content_type);
      }
      if (m.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
        out.message_id = text(m.properties.message_id);
      }
      if (m.properties._flags & AMQP_BASIC_HEADERS_FLAG) {
        const amqp_table_t& h = m.properties.headers;
        for (int i = 0; i < h.num_entries; ++i) {
          // RabbitMQ may re-encode the headers (a quorum queue adds x-delivery-count).
          const amqp_field_value_t& v = h.entries[i].value;
          const amqp_bytes_t& k = h.entries[i].key;
          if (std::string_view(static_cast<const char*>(k.bytes), k.len) != "x-zkit-copy") {
            continue;
          }
          if (v.kind == AMQP_FIELD_KIND_U64) out.copy = v.value.u64;
          if (v.kind == AMQP_FIELD_KIND_I64) out.copy = static_cast<std::uint64_t>(v.value.i64);
        }
      }
      out.body = zmq::message_t(m.body.bytes, m.body.len);
      amqp_destroy_message(&m);
      return out;
    }
    case AMQP_BASIC_ACK_METHOD: {
      const auto* a = static_cast<amqp_basic_ack_t*>(frame.payload.method.decoded);
      return Confirm{a->delivery_tag, a->multiple != 0, true};
    }
    case AMQP_BASIC_NACK_METHOD: {
      const auto* n = static_cast<amqp_basic_nack_t*>(frame.payload.method.decoded);
      return Confirm{n->delivery_tag, n->multiple != 0, false};
    }
    case AMQP_BASIC_RETURN_METHOD: {
      const auto* r = static_cast<amqp_basic_return_t*>(frame.payload.method.decoded);
      Returned out{r->reply_code, text(r->reply_text)};
      amqp_message_t m;
      check(amqp_read_message(conn_, frame.channel, &m, 0), where_, "read a returned message");
      amqp_destroy_message(&m);
      return out;
    }
    case AMQP_CHANNEL_CLOSE_METHOD: {
      const auto* m = static_cast<amqp_channel_close_t*>(frame.payload.method.decoded);
      throw_close(where_, "read", "channel", m->reply_code, text(m->reply_text));
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
      const auto* m = static_cast<amqp_connection_close_t*>(frame.payload.method.decoded);
      throw_close(where_, "read", "connection", m->reply_code, text(m->reply_text));
    }
    case AMQP_BASIC_CANCEL_METHOD:
      throw AmqpError(where_ + ": the broker cancelled the consumer (queue deleted?)", false);
    default:
      return std::monostate{};  // e.g. basic.qos-ok of a sync that timed out: nothing to do
  }
}

}  // namespace zkit::amqp
