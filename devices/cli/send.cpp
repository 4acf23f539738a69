// `zkit send`: sends each line of standard input (or --count generated messages) as one message
// through a Pusher, Publisher, Client or ReliableSender, and exits once everything was sent (and,
// where the socket has a way back, answered or acknowledged).
#include <fmt/format.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <thread>

#include "cli.hpp"
#include "io_util.hpp"
#include "zkit/pipeline.hpp"
#include "zkit/pubsub.hpp"
#include "zkit/reliable.hpp"
#include "zkit/rpc.hpp"

namespace {

using namespace zkit;
using namespace zkit::cli;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long one attempt to hand a message over may block before we look at signals and progress.
constexpr milliseconds kSendSlice{100};
constexpr std::size_t kMaxSize = std::size_t{16} << 20;
// ZeroMQ's linger timer has millisecond resolution and may fire this much before the deadline
// computed here; a termination that ended closer to the deadline is taken as the linger's end.
constexpr milliseconds kLingerSlack{5};

void declare(po::options_description& flags) {
  // clang-format off
  flags.add_options()
      ("socket", po::value<std::string>()->value_name("TYPE"),
       "push, pub or dealer (with --reliable: dealer, the default)")
      ("topic", po::value<std::string>()->value_name("T"), "pub: the topic of every message")
      ("raw", "one frame = one message, no batch envelope (to plain ZeroMQ peers)")
      ("reliable", "use the reliable link (ReliableSender): exit 0 only when every batch was "
       "acknowledged")
      ("batch-max", po::value<long long>()->value_name("N"),
       "at most N messages per batch (default 4096)")
      ("linger-ms", po::value<long long>()->default_value(5000)->value_name("MS"),
       "at the end: how long ZeroMQ may take to deliver what is queued")
      ("ack-timeout-ms", po::value<long long>()->default_value(10000)->value_name("MS"),
       "--reliable: wait this long at the end for acknowledgements; dealer: for replies")
      ("delay-ms", po::value<long long>()->value_name("MS"),
       "wait MS after binding/connecting before the first message (default 500 for pub, so that "
       "subscribers can join: the slow joiner; 0 otherwise)")
      ("count", po::value<long long>()->value_name("N"),
       "send N generated messages instead of reading standard input")
      ("size", po::value<long long>()->default_value(16)->value_name("B"),
       "with --count: bytes per message (each starts with its number 1..N, as recv --check reads)")
      ("progress", po::value<double>()->default_value(1.0)->value_name("SEC"),
       "a progress line on stderr every SEC seconds (0: none)");
  // clang-format on
  io::add_endpoint_flags(flags, "connects");
  add_curve_flags(flags);
}

// What went out, for the progress and summary lines.
struct Counts {
  std::uint64_t messages = 0;
  std::uint64_t batches = 0;
  std::uint64_t bytes = 0;  // frame bytes handed to ZeroMQ (payload bytes for the reliable link)
};

// One of the four senders behind one small interface.
class Output {
 public:
  virtual ~Output() = default;
  // Hands one message over; false when it was not taken within kSendSlice (try again).
  virtual bool send(std::string_view message) = 0;
  // Sends what is due (linger deadlines, replies, acknowledgements); never blocks long.
  virtual void service() = 0;
  // Flushes, waits for what the socket promises (delivery, replies, acks) until ack_timeout or
  // until `stop` (checked every kSendSlice) says a signal came, closes. Returns an empty string on
  // success, else what went wrong.
  virtual std::string finish(milliseconds ack_timeout, const std::function<bool()>& stop) = 0;
  virtual Counts counts() const = 0;
  virtual std::string extra() const { return ""; }  // appended to the summary line
  // Appended to each progress line: what the peer confirmed so far.
  virtual std::string progress_extra() const { return ""; }
};

Counts from_stats(const SocketStats& s) { return {s.messages_out, s.batches_out, s.bytes_out}; }

std::string close_failure(const CloseReport& r) {
  if (r.clean()) return "";
  return fmt::format("{} messages ({} batches) could not be handed to ZeroMQ within --linger-ms",
                     r.unsent_messages, r.unsent_batches);
}

class PushOutput : public Output {
 public:
  PushOutput(zmq::context_t& c, const PatternOptions& o) : s_(c, o) {}
  Pusher& socket() { return s_; }
  bool send(std::string_view m) override { return s_.send(m); }
  void service() override { (void)s_.pump(); }
  std::string finish(milliseconds, const std::function<bool()>&) override {
    return close_failure(s_.close());  // bounded by --linger-ms
  }
  Counts counts() const override { return from_stats(s_.stats()); }

 private:
  Pusher s_;
};

class PubOutput : public Output {
 public:
  PubOutput(zmq::context_t& c, const PatternOptions& o, std::string topic)
      : s_(c, o), topic_(std::move(topic)) {}
  Publisher& socket() { return s_; }
  bool send(std::string_view m) override {
    (void)s_.send(topic_, m);  // a batch without room is dropped and counted; finish() reports it
    return true;
  }
  void service() override { (void)s_.pump(); }
  std::string finish(milliseconds, const std::function<bool()>&) override {
    std::string failure = close_failure(s_.close());
    const auto& st = s_.stats();
    if (failure.empty() && st.dropped_messages > 0) {
      failure = fmt::format("{} messages ({} batches) dropped at a subscriber's high-water mark",
                            st.dropped_messages, st.dropped_batches);
    }
    return failure;
  }
  Counts counts() const override { return from_stats(s_.stats()); }

 private:
  Publisher s_;
  std::string topic_;
};

// DEALER: each message is a request; `zkit recv --socket router` answers every one, so the end
// of the run can say how many were answered.
class DealerOutput : public Output {
 public:
  DealerOutput(zmq::context_t& c, const PatternOptions& o, milliseconds reply_timeout)
      : s_(c, o), reply_timeout_(reply_timeout) {}
  Client& socket() { return s_; }
  bool send(std::string_view m) override {
    if (!s_.send(
            m, [this](const Reply& r) { ++(r.ok() ? answered_ : unanswered_); }, reply_timeout_)) {
      (void)s_.poll_once(milliseconds{0});  // not taken within send_timeout: the caller retries
      return false;
    }
    if (++since_poll_ >= 256) service();
    return true;
  }
  void service() override {
    since_poll_ = 0;
    (void)s_.pump();
    (void)s_.poll_once(milliseconds{0});
  }
  std::string finish(milliseconds ack_timeout, const std::function<bool()>& stop) override {
    (void)s_.flush();
    const auto deadline = Clock::now() + ack_timeout;
    while (s_.in_flight() > 0 && Clock::now() < deadline && !stop()) {
      (void)s_.poll_once(kSendSlice);
    }
    const CloseReport r = s_.close();  // completes what is left with kCancelled
    if (!r.clean()) return close_failure(r);
    if (unanswered_ > 0) {
      return fmt::format("{} of {} requests got no reply within --ack-timeout-ms", unanswered_,
                         answered_ + unanswered_);
    }
    return "";
  }
  Counts counts() const override { return from_stats(s_.stats()); }
  std::string extra() const override { return fmt::format(", {} replies", answered_); }

 private:
  Client s_;
  milliseconds reply_timeout_;
  std::uint64_t answered_ = 0;
  std::uint64_t unanswered_ = 0;
  int since_poll_ = 0;
};

class ReliableOutput : public Output {
 public:
  ReliableOutput(zmq::context_t& c, const ReliableSenderOptions& o) : s_(c, o) {}
  ReliableSender& socket() { return s_; }
  bool send(std::string_view m) override {
    if (!s_.send(m, kSendSlice)) return false;
    bytes_ += m.size();
    return true;
  }
  void service() override { (void)s_.poll_once(milliseconds{0}); }
  std::string finish(milliseconds ack_timeout, const std::function<bool()>& stop) override {
    const auto deadline = Clock::now() + ack_timeout;
    bool all = false;
    for (;;) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      all = s_.wait_all_acked(std::clamp(left, milliseconds{0}, kSendSlice));
      if (all || left <= kSendSlice || stop()) break;
    }
    const std::size_t unacked = s_.unacked();
    const auto st = s_.stats();
    final_ = Counts{st.messages, st.batches_queued, bytes_};
    acked_ = st.batches_acked;
    (void)s_.close();
    if (!all) {
      return fmt::format("{} of {} batches not acknowledged within --ack-timeout-ms", unacked,
                         st.batches_queued);
    }
    return "";
  }
  Counts counts() const override {
    if (final_) return *final_;
    const auto st = s_.stats();
    return {st.messages, st.batches_queued, bytes_};
  }
  std::string extra() const override { return fmt::format(", {} batches acknowledged", acked_); }
  // Acknowledgements come in send order, so "N acknowledged" means batches 1..N are safe: after a
  // SIGKILL the last progress line says how much the receiver has.
  std::string progress_extra() const override {
    const auto st = s_.stats();
    return fmt::format(", {} of {} batches acknowledged", st.batches_acked, st.batches_queued);
  }

 private:
  ReliableSender s_;
  std::uint64_t bytes_ = 0;
  std::uint64_t acked_ = 0;
  std::optional<Counts> final_;
};

// Standard input split into lines, read with poll() so that the sender keeps its batches moving
// (and sees signals) while the input is quiet.
class LineReader {
 public:
  // The next line without its '\n', waiting up to `timeout`; empty on timeout. eof() says when
  // the input has ended (a last line without '\n' still counts as a line).
  std::optional<std::string> next(milliseconds timeout) {
    for (;;) {
      if (auto line = take_line()) return line;
      if (eof_) {
        if (buffer_.empty()) return std::nullopt;
        std::string last = std::move(buffer_);
        buffer_.clear();
        return last;
      }
      pollfd p{STDIN_FILENO, POLLIN, 0};
      const int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
      if (n < 0 && errno == EINTR) return std::nullopt;
      if (n < 0) throw std::runtime_error(std::string("standard input: ") + std::strerror(errno));
      if (n == 0) return std::nullopt;
      char chunk[65536];
      const ssize_t got = ::read(STDIN_FILENO, chunk, sizeof chunk);
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (got < 0) throw std::runtime_error(std::string("standard input: ") + std::strerror(errno));
      if (got == 0) {
        eof_ = true;
      } else {
        buffer_.append(chunk, static_cast<std::size_t>(got));
      }
      timeout = milliseconds{0};  // drain what is there, then hand back control
    }
  }
  bool eof() const noexcept { return eof_ && buffer_.empty(); }

 private:
  std::optional<std::string> take_line() {
    const auto nl = buffer_.find('\n', scanned_);
    if (nl == std::string::npos) {
      scanned_ = buffer_.size();
      return std::nullopt;
    }
    std::string line = buffer_.substr(0, nl);
    buffer_.erase(0, nl + 1);
    scanned_ = 0;
    return line;
  }
  std::string buffer_;
  std::size_t scanned_ = 0;
  bool eof_ = false;
};

class Progress {
 public:
  explicit Progress(double interval) : interval_(interval) {}
  void maybe_report(const Output& out) {
    if (interval_ <= 0) return;
    const double t = io::seconds_since(start_);
    if (t < next_) return;
    next_ = t + interval_;
    const Counts c = out.counts();
    spdlog::info("sent {} messages in {} batches, {:.0f} msg/s{}", c.messages, c.batches,
                 io::per_second(c.messages, t), out.progress_extra());
  }
  Clock::time_point start() const { return start_; }

 private:
  double interval_;
  Clock::time_point start_ = Clock::now();
  double next_ = interval_;
};

int run(const po::variables_map& vm) {
  SignalWaiter signals;
  const bool reliable = vm.count("reliable") != 0;
  const bool raw = vm.count("raw") != 0;
  const std::string type = io::socket_type_from_flags(vm, {"push", "pub", "dealer"});
  const Endpoint ep = io::endpoint_from_flags(vm, false);
  const Curve curve = curve_flags(vm);

  SocketOptions socket;
  socket.linger = milliseconds(number_flag(vm, "linger-ms", 0, 3600 * 1000));
  socket.curve = curve.for_socket(ep.bind);
  const milliseconds ack_timeout(number_flag(vm, "ack-timeout-ms", 1, 24 * 3600 * 1000));
  const milliseconds delay(vm.count("delay-ms") ? number_flag(vm, "delay-ms", 0, 3600 * 1000)
                           : type == "pub"      ? 500
                                                : 0);
  const double progress_interval = seconds_flag(vm, "progress", 0.0);

  std::optional<long long> count;
  std::size_t size = 0;
  if (vm.count("count")) {
    count = number_flag(vm, "count", 0, 1LL << 40);
    size = static_cast<std::size_t>(number_flag(vm, "size", 1, kMaxSize));
    if (io::decimal_digits(static_cast<std::uint64_t>(*count)) > size) {
      throw UsageError(fmt::format("--size: {} bytes cannot hold the numbers up to {} (need {})",
                                   size, *count,
                                   io::decimal_digits(static_cast<std::uint64_t>(*count))));
    }
  } else if (!vm["size"].defaulted()) {
    throw UsageError("--size needs --count");
  }

  BatcherOptions batch;
  if (vm.count("batch-max")) {
    batch.max_records = static_cast<std::size_t>(number_flag(vm, "batch-max", 1, 1 << 20));
  }
  // Room for the largest message we will send (a line of standard input may be up to kMaxSize).
  batch.max_bytes = std::max(batch.max_bytes, (count ? size : kMaxSize) + 64);

  zmq::context_t context;
  auto zap = curve.start_zap(context);
  std::unique_ptr<Output> out;
  std::string bound;
  const auto attach_to = [&](auto& s) {
    io::attach_endpoint(vm, [&] {
      if (ep.bind) {
        bound = s.bind(ep.address);
      } else {
        s.connect(ep.address);
      }
    });
  };
  if (reliable) {
    ReliableSenderOptions o;
    o.socket = socket;
    // Acknowledgements are the reliable link's delivery promise (--ack-timeout-ms bounds the wait
    // for them); a ZeroMQ linger would only keep the process alive after its summary.
    o.socket.linger = milliseconds{0};
    o.batch = batch;
    auto r = std::make_unique<ReliableOutput>(context, o);
    attach_to(r->socket());
    out = std::move(r);
  } else {
    PatternOptions o;
    o.socket = socket;
    o.batch = batch;
    o.raw = raw;
    o.send_timeout = kSendSlice;
    if (type == "push") {
      auto p = std::make_unique<PushOutput>(context, o);
      attach_to(p->socket());
      out = std::move(p);
    } else if (type == "pub") {
      o.send_timeout = milliseconds{1000};  // back-pressure first; a batch that waits longer drops
      auto p = std::make_unique<PubOutput>(context, o,
                                           vm.count("topic") ? vm["topic"].as<std::string>() : "");
      attach_to(p->socket());
      out = std::move(p);
    } else {
      auto d = std::make_unique<DealerOutput>(context, o, ack_timeout);
      attach_to(d->socket());
      out = std::move(d);
    }
  }
  if (!bound.empty()) std::cerr << "zkit send: bound " << bound << std::endl;
  if (delay.count() > 0 && signals.wait(delay)) return kExitFailure;

  Progress progress(progress_interval);
  bool interrupted = false;
  bool stalled = false;
  const auto check_signal = [&] {
    if (signals.wait(milliseconds{0})) interrupted = true;
    return interrupted;
  };
  // How long one message may wait for the socket to take it: with no peer (or one that stopped
  // reading) the run ends after this, whether the messages come from --count or standard input.
  const milliseconds stall_limit = reliable ? ack_timeout : socket.linger;
  // Hands one message over, retrying while the peer is slow or absent; false when interrupted
  // or when the socket took nothing for stall_limit.
  const auto deliver = [&](std::string_view m) {
    const auto give_up = Clock::now() + stall_limit;
    while (!out->send(m)) {
      if (check_signal()) return false;
      if (Clock::now() >= give_up) {
        stalled = true;
        return false;
      }
      progress.maybe_report(*out);
    }
    return true;
  };

  auto last_check = Clock::now();
  const auto periodic = [&] {
    const auto now = Clock::now();
    if (now - last_check < kSendSlice) return true;
    last_check = now;
    out->service();
    progress.maybe_report(*out);
    return !check_signal();
  };

  std::uint64_t taken = 0;  // messages the socket took
  if (count) {
    std::string m;
    for (long long i = 1; i <= *count; ++i) {
      io::generate_message(m, static_cast<std::uint64_t>(i), size);
      if (!deliver(m)) break;
      ++taken;
      if (!periodic()) break;
    }
  } else {
    LineReader in;
    while (!in.eof()) {
      auto line = in.next(milliseconds{10});
      if (line && !deliver(*line)) break;
      if (line) ++taken;
      if (!line) out->service();
      if (!periodic()) break;
    }
  }

  std::string failure;
  const auto finish_started = Clock::now();
  if (interrupted) {
    failure = "interrupted by a signal before everything was sent";
    (void)out->finish(milliseconds{0}, [] { return true; });
  } else {
    failure = out->finish(ack_timeout, check_signal);
    if (interrupted && !failure.empty()) {
      failure = "interrupted by a signal while waiting for the peer; " + failure;
    }
    if (stalled) {
      const std::string what =
          count
              ? fmt::format("{} of {} messages", static_cast<std::uint64_t>(*count) - taken, *count)
              : fmt::format("message {} and the rest of standard input", taken + 1);
      const std::string stall =
          fmt::format("{} not sent: the socket took nothing for {} ms (--{}; no peer?)", what,
                      stall_limit.count(), reliable ? "ack-timeout-ms" : "linger-ms");
      failure = failure.empty() ? stall : stall + "; " + failure;
    }
  }
  const Counts c = out->counts();
  const std::string extra = out->extra();
  const double t = io::seconds_since(progress.start());
  // push and pub promise that what they queued was written to the connection within --linger-ms.
  // It leaves during the context's termination, which ZeroMQ ends at the linger by discarding
  // what is still queued (a peer that reads nothing or too slowly), without saying so or how much:
  // a termination that lasted the whole linger is the only sign of it. Sockets and the ZAP
  // handler go first: the termination waits for every socket.
  out.reset();
  zap.reset();
  context.close();
  // --linger-ms 0 asks ZeroMQ to discard at once whatever is queued: nothing to measure.
  const bool lingering =
      !reliable && (type == "push" || type == "pub") && socket.linger > milliseconds{0};
  if (lingering && !interrupted && Clock::now() + kLingerSlack >= finish_started + socket.linger) {
    const std::string lost = fmt::format(
        "ZeroMQ's linger ran out after {} ms (--linger-ms) with frames still queued "
        "for the peer: they were discarded (ZeroMQ does not say how many)",
        socket.linger.count());
    failure = failure.empty() ? lost : failure + "; " + lost;
  }
  std::cerr << fmt::format(
                   "zkit send: {} messages in {} batches, {} bytes, {:.3f} s, {:.0f} msg/s{}",
                   c.messages, c.batches, c.bytes, t, io::per_second(c.messages, t), extra)
            << std::endl;
  if (!failure.empty()) {
    std::cerr << "zkit send: " << failure << std::endl;
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

extern const zkit::cli::Subcommand send_subcommand = {
    "send", "send standard input's lines (or --count generated messages) as messages",
    "Sockets: push (to pull), pub (to sub, with --topic), dealer (to router: every message is a\n"
    "request that `zkit recv --socket router` answers), or --reliable (the reliable link, to\n"
    "`zkit recv --reliable` or a spool). A plain --endpoint EP connects; --bind binds.\n"
    "Exit 0 once everything was handed to ZeroMQ and delivered within --linger-ms (dealer: every\n"
    "request answered; --reliable: every batch acknowledged), 1 otherwise, saying how many were "
    "not.\n"
    "A summary line goes to stderr; a bound endpoint is printed there as 'zkit send: bound EP'.",
    declare, run};
