// `zkit recv`: prints every message a Puller, Subscriber, Server or ReliableReceiver receives, one
// per line (text, hex or JSON), until --count messages, --timeout-ms of silence, or a signal.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "cli.hpp"
#include "io_util.hpp"
#include "zkit/consumer.hpp"
#include "zkit/pipeline.hpp"
#include "zkit/pubsub.hpp"
#include "zkit/reliable.hpp"
#include "zkit/rpc.hpp"
#include "zkit/spool_node.hpp"

namespace {

using namespace zkit;
using namespace zkit::cli;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Longest wait inside one receive call: signals and the silence timeout are checked this often.
constexpr milliseconds kSlice{100};

std::size_t limit_flag(const po::variables_map& vm, const char* name) {
  return static_cast<std::size_t>(number_flag(vm, name, 1, 1 << 26));
}

void declare(po::options_description& flags) {
  // clang-format off
  flags.add_options()
      ("socket", po::value<std::string>()->value_name("TYPE"),
       "pull, sub or router (with --reliable: router, the default)")
      ("topic", po::value<std::string>()->value_name("T"),
       "sub: receive only topics that start with T (default: every topic)")
      ("raw", "one frame = one message, no batch envelope (from plain ZeroMQ peers)")
      ("reliable", "use the reliable link (ReliableReceiver): each batch is acknowledged after it "
       "was printed")
      ("count", po::value<long long>()->value_name("N"),
       "stop after N messages (with --reliable: after the batch holding the Nth); exit 1 if "
       "fewer came")
      ("timeout-ms", po::value<long long>()->value_name("MS"),
       "stop after MS without traffic (default: wait for ever)")
      ("format", po::value<std::string>()->default_value("text")->value_name("F"),
       "text (the bytes, then a newline), hex, or json ({\"topic\",\"producer\",\"seq\","
       "\"data\" or \"hex\"})")
      ("check", "the messages are `zkit send --count` ones: check their numbers arrive in order, "
       "once, without gaps, per producer; exit 1 if not")
      ("quiet", "print nothing on stdout (count, check and summarise only)")
      ("max-sessions", po::value<long long>()->value_name("N"),
       "--reliable: sender sessions kept (default 1024); beyond, dead idle ones go, else refused")
      ("max-producers", po::value<long long>()->value_name("N"),
       "producers tracked for duplicates (--reliable, default 65536) or gaps (sub, default 4096)")
      ("from", po::value<std::string>()->value_name("EP"),
       "with --group: the spool's --serve endpoint (plain EP connects)")
      ("group", po::value<std::string>()->value_name("NAME"),
       "join consumer group NAME on the spool at --from (zkit::Consumer; docs/queues.md)")
      ("prefetch", po::value<long long>()->value_name("N"),
       "--group: batches held unacknowledged at most (default 64)")
      ("prefetch-messages", po::value<long long>()->value_name("N"),
       "--group: messages held unacknowledged at most (default: no limit)")
      ("manual-ack", "--group: acknowledge each batch explicitly once it is printed and flushed "
       "(default: when the handler returns)")
      ("start", po::value<std::string>()->value_name("START"),
       "--group, for a new group: earliest (default) | latest | pos=SEGMENT:OFFSET | "
       "time=UNIX_NS")
      ("ack-wait-ms", po::value<long long>()->value_name("MS"),
       "--group: ask the spool to redeliver a batch unacknowledged this long (default: its "
       "--ack-wait)");
  // clang-format on
  io::add_endpoint_flags(flags, "binds");
  add_curve_flags(flags);
}

enum class Format { kText, kHex, kJson };

// Writes messages to stdout and keeps the figures for the summary.
class Printer {
 public:
  Printer(Format format, bool quiet, bool check) : format_(format), quiet_(quiet), check_(check) {}

  void print(std::span<const std::byte> data, std::string_view topic, std::uint64_t producer,
             std::uint64_t seq) {
    if (messages_ == 0) first_ = Clock::now();
    ++messages_;
    bytes_ += data.size();
    if (check_) sequence_.add(producer, data);
    if (quiet_) return;
    line_.clear();
    const std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
    switch (format_) {
      case Format::kText:
        line_.append(text);
        break;
      case Format::kHex:
        for (const std::byte b : data) fmt::format_to(std::back_inserter(line_), "{:02x}", b);
        break;
      case Format::kJson:
        line_ = json_line(text, topic, producer, seq);
        break;
    }
    line_.push_back('\n');
    std::fwrite(line_.data(), 1, line_.size(), stdout);
  }
  void flush() { std::fflush(stdout); }

  std::uint64_t messages() const noexcept { return messages_; }
  std::uint64_t bytes() const noexcept { return bytes_; }
  double active_seconds() const { return messages_ ? io::seconds_since(first_) : 0.0; }
  const io::SequenceCheck& sequence() const noexcept { return sequence_; }

 private:
  static std::string json_line(std::string_view text, std::string_view topic,
                               std::uint64_t producer, std::uint64_t seq) {
    nlohmann::json j = nlohmann::json::object();
    if (!topic.empty()) j["topic"] = topic;
    if (producer != 0) j["producer"] = producer;
    if (seq != 0) j["seq"] = seq;
    j["data"] = text;
    try {
      return j.dump();
    } catch (const nlohmann::json::type_error&) {  // not UTF-8: give the bytes as hex instead
      j.erase("data");
      std::string hex;
      for (const char c : text) fmt::format_to(std::back_inserter(hex), "{:02x}", (unsigned char)c);
      j["hex"] = hex;
      return j.dump();
    }
  }

  Format format_;
  bool quiet_;
  bool check_;
  std::string line_;
  std::uint64_t messages_ = 0;
  std::uint64_t bytes_ = 0;
  Clock::time_point first_{};
  io::SequenceCheck sequence_;
};

// What the codec said about the frames a socket dropped: the first error always reaches the
// operator (a warning, and the summary line), and at --log-level debug one line per kind of error
// (its code and message with the numbers taken out: "truncated at byte # (records)"). Sockets
// without an error callback (on_error) give only their count.
class DropReport {
 public:
  void operator()(const Status& s) {
    if (first_.empty()) {
      first_ = s.to_string();
      spdlog::warn("dropped a malformed frame: {}", first_);
    }
    if (kinds_.size() >= kMaxKinds) return;  // a hostile peer can vary its errors; bounded
    std::string kind = std::string(code_name(s.code())) + ": ";
    const std::string& m = s.message();
    for (std::size_t i = 0; i < m.size(); ++i) {
      const bool hex = m.compare(i, 2, "0x") == 0;
      if (!hex && !std::isdigit(static_cast<unsigned char>(m[i]))) {
        kind.push_back(m[i]);
        continue;
      }
      if (hex) i += 2;
      while (i + 1 < m.size() && std::isxdigit(static_cast<unsigned char>(m[i + 1]))) ++i;
      kind.push_back('#');
    }
    if (kinds_.insert(kind).second && kinds_.size() > 1) {
      spdlog::debug("dropped a malformed frame of another kind: {}", s.to_string());
    }
  }
  const std::string& first() const noexcept { return first_; }

 private:
  static constexpr std::size_t kMaxKinds = 64;
  std::string first_;
  std::set<std::string> kinds_;
};

// Sockets that report why they dropped a frame get `report` as their error callback.
template <class Socket>
void report_drops(Socket& s, DropReport& report) {
  if constexpr (requires { s.on_error([](const Status&) {}); }) {
    s.on_error([&report](const Status& st) { report(st); });
  }
}

// When to stop: --count, --timeout-ms of silence, a signal.
class Stop {
 public:
  Stop(std::optional<long long> count, std::optional<milliseconds> silence, SignalWaiter& signals)
      : count_(count), silence_(silence), signals_(signals) {}
  bool count_reached(std::uint64_t messages) const {
    return count_ && messages >= static_cast<std::uint64_t>(*count_);
  }
  void traffic() { last_traffic_ = Clock::now(); }
  // How long the next receive may wait.
  milliseconds slice() const {
    if (!silence_) return kSlice;
    const auto left =
        std::chrono::duration_cast<milliseconds>(last_traffic_ + *silence_ - Clock::now());
    return std::clamp(left, milliseconds{0}, kSlice);
  }
  // Checked between receives: why to stop, or empty.
  std::optional<std::string> reason(std::uint64_t messages) {
    if (count_reached(messages)) return "count reached";
    const auto now = Clock::now();
    if (silence_ && now - last_traffic_ >= *silence_) return "timeout";
    if (now - last_signal_check_ >= kSlice) {
      last_signal_check_ = now;
      if (signals_.wait(milliseconds{0})) return "signal";
    }
    return std::nullopt;
  }

 private:
  std::optional<long long> count_;
  std::optional<milliseconds> silence_;
  SignalWaiter& signals_;
  Clock::time_point last_traffic_ = Clock::now();
  Clock::time_point last_signal_check_ = Clock::now();
};

// Pull-style loop for Puller and Subscriber.
template <class Socket>
std::string receive_loop(Socket& s, Printer& printer, Stop& stop) {
  for (;;) {
    if (auto why = stop.reason(printer.messages())) return *why;
    if (auto m = s.receive(stop.slice())) {
      printer.print(m->data, m->topic, m->producer_id, m->seq);
      stop.traffic();
    } else {
      printer.flush();
    }
  }
}

struct Outcome {
  std::string reason;
  std::uint64_t batches = 0;
  std::string extra;  // appended to the summary line
};

Outcome run_server(Server& s, Printer& printer, Stop& stop) {
  Outcome o;
  const auto handler = [&](const Message& m, Responder r) {
    printer.print(m.data, m.topic, m.producer_id, m.seq);
    r.reply(std::string_view{});
    if (stop.count_reached(printer.messages())) s.stop();
  };
  for (;;) {
    if (auto why = stop.reason(printer.messages())) {
      o.reason = *why;
      break;
    }
    if (s.poll_once(handler, stop.slice()) > 0) {
      stop.traffic();
    } else {
      printer.flush();
    }
  }
  printer.flush();
  (void)s.flush();
  const CloseReport r = s.close();
  o.batches = s.stats().batches_in;
  if (!r.clean()) o.extra = fmt::format(", {} replies not delivered", r.unsent_messages);
  return o;
}

// Thrown from the handler once --count was reached: the batch is neither printed nor
// acknowledged, so the sender will offer it to the next receiver.
struct CountReached {};

Outcome run_reliable(ReliableReceiver& r, Printer& printer, Stop& stop) {
  Outcome o;
  const auto handler = [&](Delivery& d) {
    if (stop.count_reached(printer.messages())) throw CountReached{};
    for (const auto record : d.batch) printer.print(record, {}, d.producer_id, d.seq);
    printer.flush();  // printed before the receiver acknowledges it
  };
  for (;;) {
    if (auto why = stop.reason(printer.messages())) {
      o.reason = *why;
      break;
    }
    try {
      if (r.poll_once(handler, stop.slice()) > 0) stop.traffic();
    } catch (const CountReached&) {
    }
  }
  r.close();  // sends the acknowledgements due
  const auto st = r.stats();
  o.batches = st.batches_delivered;
  o.extra = fmt::format(", {} duplicates suppressed", st.duplicates);
  return o;
}

// Consumer groups: every batch of the group that this member gets, acknowledged once printed.
Outcome run_group(Consumer& c, Printer& printer, Stop& stop, bool manual) {
  Outcome o;
  const auto handler = [&](const ConsumedBatch& b) {
    if (stop.count_reached(printer.messages())) throw CountReached{};  // nacked: back to the group
    for (const auto record : b) printer.print(record, {}, b.info.producer_id, b.info.seq);
    printer.flush();
    if (manual) c.ack();
  };
  for (;;) {
    if (auto why = stop.reason(printer.messages())) {
      o.reason = *why;
      break;
    }
    try {
      if (c.poll_once(handler, stop.slice()) > 0) stop.traffic();
    } catch (const CountReached&) {
    }
  }
  (void)c.close();  // sends the acks due, then LEAVE: what is unacked goes back at once
  const ConsumerStats st = c.stats();
  o.batches = st.batches_delivered;
  o.extra = fmt::format(", {} redelivered, {} duplicates dropped", st.redelivered,
                        st.duplicates_dropped);
  return o;
}

ConsumerOptions group_options(const po::variables_map& vm) {
  ConsumerOptions o;
  o.group = vm["group"].as<std::string>();
  if (!spool::valid_group_name(o.group)) {
    throw UsageError("--group: '" + o.group + "' is not 1..64 of [A-Za-z0-9._-]");
  }
  if (vm.count("prefetch")) {
    o.prefetch_batches = static_cast<std::uint64_t>(number_flag(vm, "prefetch", 1, 1 << 20));
  }
  if (vm.count("prefetch-messages")) {
    o.prefetch_messages =
        static_cast<std::uint64_t>(number_flag(vm, "prefetch-messages", 1, 1LL << 40));
  }
  o.manual_ack = vm.count("manual-ack") != 0;
  if (vm.count("start")) {
    auto s = parse_group_start(vm["start"].as<std::string>());
    if (!s) throw UsageError("--start: " + s.status().message());
    o.start.kind = static_cast<ConsumerStart::Kind>(s.value().kind);
    o.start.segment = s.value().a;
    o.start.offset = s.value().b;
    o.start.unix_ns = s.value().a;
  }
  if (vm.count("ack-wait-ms")) {
    o.ack_wait = milliseconds(number_flag(vm, "ack-wait-ms", 1, 24LL * 3600 * 1000));
  }
  return o;
}

int run(const po::variables_map& vm) {
  SignalWaiter signals;
  const bool group = vm.count("group") != 0;
  if (group || vm.count("from")) {
    if (!group || !vm.count("from")) throw UsageError("--group and --from go together");
    for (const char* f : {"socket", "reliable", "raw", "topic", "bind", "connect", "endpoint"}) {
      if (vm.count(f)) throw UsageError(fmt::format("--group takes no --{}", f));
    }
  } else {
    for (const char* f : {"prefetch", "prefetch-messages", "manual-ack", "start", "ack-wait-ms"}) {
      if (vm.count(f)) throw UsageError(fmt::format("--{} needs --group", f));
    }
  }
  const bool reliable = vm.count("reliable") != 0;
  const bool raw = vm.count("raw") != 0;
  const std::string type =
      group ? std::string("group") : io::socket_type_from_flags(vm, {"pull", "sub", "router"});
  const Endpoint ep = group ? endpoint_flag(vm, "from", false) : io::endpoint_from_flags(vm, true);
  const std::string format = choice_flag(vm, "format", {"text", "hex", "json"});
  std::optional<long long> count;
  if (vm.count("count")) count = number_flag(vm, "count", 1, 1LL << 40);
  std::optional<milliseconds> silence;
  if (vm.count("timeout-ms")) {
    silence = milliseconds(number_flag(vm, "timeout-ms", 1, 24LL * 3600 * 1000));
  }
  const Curve curve = curve_flags(vm);
  SocketOptions socket;
  socket.curve = curve.for_socket(ep.bind);

  Printer printer(format == "hex"    ? Format::kHex
                  : format == "json" ? Format::kJson
                                     : Format::kText,
                  vm.count("quiet") != 0, vm.count("check") != 0);
  static char stdout_buffer[1 << 16];
  std::setvbuf(stdout, stdout_buffer, _IOFBF, sizeof stdout_buffer);

  zmq::context_t context;
  const auto zap = curve.start_zap(context);
  std::string bound;
  const auto attach_to = [&](auto& s) {
    io::attach_endpoint(vm, [&] {
      if (ep.bind) {
        bound = s.bind(ep.address);
      } else {
        s.connect(ep.address);
      }
    });
    if (!bound.empty()) std::cerr << "zkit recv: bound " << bound << std::endl;
  };
  Stop stop(count, silence, signals);
  Outcome outcome;
  std::uint64_t decode_errors = 0;
  DropReport drops;
  if (group) {
    ConsumerOptions o = group_options(vm);
    o.socket = socket;
    Consumer c(context, o);
    report_drops(c, drops);
    attach_to(c);
    outcome = run_group(c, printer, stop, o.manual_ack);
    decode_errors = c.stats().bad_batches + c.stats().decode_errors;
  } else if (reliable) {
    ReliableReceiverOptions o;
    o.socket = socket;
    if (vm.count("max-sessions")) o.max_sessions = limit_flag(vm, "max-sessions");
    if (vm.count("max-producers")) o.max_producers = limit_flag(vm, "max-producers");
    ReliableReceiver r(context, o);
    report_drops(r, drops);
    attach_to(r);
    outcome = run_reliable(r, printer, stop);
    decode_errors = r.stats().bad_batches + r.stats().decode_errors;
  } else {
    PatternOptions o;
    o.socket = socket;
    if (vm.count("max-producers")) o.max_producers = limit_flag(vm, "max-producers");
    o.raw = raw;
    if (type == "pull") {
      Puller s(context, o);
      report_drops(s, drops);
      attach_to(s);
      outcome.reason = receive_loop(s, printer, stop);
      outcome.batches = s.stats().batches_in;
      decode_errors = s.stats().decode_errors;
    } else if (type == "sub") {
      Subscriber s(context, o);
      report_drops(s, drops);
      s.subscribe(vm.count("topic") ? vm["topic"].as<std::string>() : "");
      attach_to(s);
      outcome.reason = receive_loop(s, printer, stop);
      outcome.batches = s.stats().batches_in;
      decode_errors = s.stats().decode_errors;
      if (s.stats().missed_batches > 0) {
        outcome.extra = fmt::format(", {} batches missed", s.stats().missed_batches);
      }
    } else {
      Server s(context, o);
      report_drops(s, drops);
      attach_to(s);
      outcome = run_server(s, printer, stop);
      decode_errors = s.stats().decode_errors;
    }
  }
  printer.flush();

  const double t = printer.active_seconds();
  std::string summary = fmt::format(
      "zkit recv: {} messages in {} batches, {} bytes, {:.3f} s, {:.0f} msg/s{}{}; stopped: {}",
      printer.messages(), outcome.batches, printer.bytes(), t,
      io::per_second(printer.messages(), t), outcome.extra,
      decode_errors ? fmt::format(", {} malformed frames dropped{}", decode_errors,
                                  drops.first().empty() ? "" : " (first: " + drops.first() + ")")
                    : "",
      outcome.reason);
  if (vm.count("check")) summary += "; check: " + printer.sequence().summary();
  std::cerr << summary << std::endl;
  if (count && printer.messages() < static_cast<std::uint64_t>(*count)) {
    std::cerr << fmt::format("zkit recv: {} of {} messages received", printer.messages(), *count)
              << std::endl;
    return kExitFailure;
  }
  if (vm.count("check") && !printer.sequence().clean()) return kExitFailure;
  return kExitOk;
}

}  // namespace

extern const zkit::cli::Subcommand recv_subcommand = {
    "recv", "print received messages, one per line (text, hex or JSON), with a summary on stderr",
    "Sockets: pull (from push), sub (from pub, --topic filters), router (from dealer: every\n"
    "message is answered with an empty reply), or --reliable (the reliable link: from\n"
    "`zkit send --reliable` or a spool). A plain --endpoint EP binds; --connect connects.\n"
    "A bound endpoint is printed on stderr as 'zkit recv: bound EP' (tcp://127.0.0.1:* resolved).\n"
    "Stops after --count messages, after --timeout-ms of silence, or on SIGINT/SIGTERM; prints a\n"
    "summary line on stderr. Exit 1 if fewer than --count messages came, or --check failed.\n"
    "--group NAME --from EP: a member of a consumer group on `zkit spool --serve EP`; each\n"
    "batch is acknowledged once printed (--manual-ack: explicitly, after stdout is flushed);\n"
    "batches past --count go back to the group. --check fits a group of one member (with\n"
    "more, each gets a share: gaps are expected).",
    declare, run};
