// Shared by `zkit send`, `zkit recv` and `zkit demo`: the endpoint flags, the generated messages of
// --count/--size (each starts with its sequence number) and the receiver's sequence check.
#pragma once

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>

#include "cli.hpp"

namespace zkit::cli::io {

// --bind EP, --connect EP, --endpoint EP ('@' binds, '>' connects, plain: `plain_side`).
inline void add_endpoint_flags(po::options_description& flags, const char* plain_side) {
  // clang-format off
  flags.add_options()
      ("bind", po::value<std::string>()->value_name("EP"), "bind the socket to EP")
      ("connect", po::value<std::string>()->value_name("EP"), "connect the socket to EP")
      ("endpoint", po::value<std::string>()->value_name("EP"),
       fmt::format("'@EP' binds, '>EP' connects, a plain EP {}", plain_side).c_str());
  // clang-format on
}

// The --socket type of send or recv, checked against --reliable, --raw and --topic. `types` lists
// the plain, pub/sub and DEALER/ROUTER choices in that order: the last one is the only socket
// --reliable runs over (and its default), the middle one the only one --topic fits.
inline std::string socket_type_from_flags(const po::variables_map& vm,
                                          const std::vector<std::string>& types) {
  const std::string& topic_type = types.at(1);
  const std::string& reliable_type = types.at(2);
  const bool reliable = vm.count("reliable") != 0;
  std::string type;
  if (vm.count("socket")) {
    type = choice_flag(vm, "socket", types);
  } else if (reliable) {
    type = reliable_type;
  } else {
    throw UsageError(fmt::format("--socket is required ({}, {} or {})", types[0], topic_type,
                                 reliable_type));
  }
  if (reliable && type != reliable_type) {
    throw UsageError("--reliable runs over --socket " + reliable_type + ", not '" + type + "'");
  }
  if (reliable && vm.count("raw")) throw UsageError("--reliable and --raw exclude each other");
  if (vm.count("topic") && type != topic_type) {
    throw UsageError("--topic needs --socket " + topic_type);
  }
  return type;
}

// The one endpoint the flags name. Throws UsageError when none, or more than one, is given, or
// when it does not parse.
inline Endpoint endpoint_from_flags(const po::variables_map& vm, bool bind_by_default) {
  const int given = static_cast<int>(vm.count("bind") + vm.count("connect") + vm.count("endpoint"));
  if (given == 0) throw UsageError("one of --connect, --bind or --endpoint is required");
  if (given > 1) throw UsageError("give only one of --connect, --bind and --endpoint");
  if (vm.count("endpoint")) return endpoint_flag(vm, "endpoint", bind_by_default);
  const bool bind = vm.count("bind") != 0;
  const char* name = bind ? "bind" : "connect";
  const Endpoint ep = endpoint_flag(vm, name, bind);
  if (ep.bind != bind) {
    throw UsageError(fmt::format("--{}: '{}' says {}", name, vm[name].as<std::string>(),
                                 ep.bind ? "bind ('@')" : "connect ('>')"));
  }
  return ep;
}

// Runs `attach` (a bind or connect of the endpoint in flag `name`); an endpoint ZeroMQ refuses as
// malformed, unusable here, or already in use becomes a UsageError naming the flag and the
// endpoint, other failures propagate.
template <class Attach>
auto attach_endpoint(const po::variables_map& vm, const char* name, Attach&& attach) {
  try {
    return attach();
  } catch (const zmq::error_t& e) {
    switch (e.num()) {
      case EINVAL:
      case EPROTONOSUPPORT:
      case ENOCOMPATPROTO:
      case ENODEV:
      case EADDRNOTAVAIL:
      case EADDRINUSE:
        throw UsageError(fmt::format("--{}: ZeroMQ refuses '{}': {}", name,
                                     vm[name].as<std::string>(), e.what()));
      default:
        throw;
    }
  }
}

// The same for the endpoint of --bind, --connect or --endpoint (whichever was given).
template <class Attach>
auto attach_endpoint(const po::variables_map& vm, Attach&& attach) {
  const char* name = vm.count("bind") ? "bind" : vm.count("connect") ? "connect" : "endpoint";
  return attach_endpoint(vm, name, std::forward<Attach>(attach));
}

// Generated messages: the sequence number in decimal (1, 2, ...), then filler ("42 ....") up to
// the size, so that any receiver can check order and completeness and a human can read them.
inline std::size_t decimal_digits(std::uint64_t n) {
  std::size_t d = 1;
  while (n >= 10) {
    n /= 10;
    ++d;
  }
  return d;
}

inline void generate_message(std::string& out, std::uint64_t seq, std::size_t size) {
  out = fmt::format("{}", seq);
  if (out.size() < size) {
    out.push_back(' ');
    out.resize(size, '.');
  }
}

// The leading decimal number of a message, if it starts with one.
inline std::optional<std::uint64_t> generated_seq(std::span<const std::byte> data) {
  std::uint64_t v = 0;
  std::size_t i = 0;
  for (; i < data.size() && i < 20; ++i) {
    const auto c = static_cast<unsigned char>(data[i]);
    if (c < '0' || c > '9') break;
    v = v * 10 + (c - '0');
  }
  if (i == 0) return std::nullopt;
  return v;
}

// Checks that generated messages arrive in order, once, without gaps, per producer (producer 0
// stands for "unknown", raw mode). The first message of a producer is expected to be number 1.
class SequenceCheck {
 public:
  void add(std::uint64_t producer, std::span<const std::byte> data) {
    const auto seq = generated_seq(data);
    if (!seq) {
      ++unnumbered_;
      return;
    }
    std::uint64_t& last = last_[producer];
    if (*seq == last + 1) {
      ++in_order_;
    } else if (*seq > last + 1) {
      missing_ += *seq - last - 1;
      ++in_order_;
    } else {
      ++repeated_;  // a duplicate or a message that overtook others
      return;
    }
    last = *seq;
  }
  bool clean() const noexcept { return missing_ == 0 && repeated_ == 0 && unnumbered_ == 0; }
  std::uint64_t missing() const noexcept { return missing_; }
  std::uint64_t repeated() const noexcept { return repeated_; }
  std::size_t producers() const noexcept { return last_.size(); }
  std::string summary() const {
    return fmt::format("{} in order from {} producer(s), {} missing, {} repeated or reordered{}",
                       in_order_, last_.size(), missing_, repeated_,
                       unnumbered_ ? fmt::format(", {} not numbered", unnumbered_) : "");
  }

 private:
  std::unordered_map<std::uint64_t, std::uint64_t> last_;
  std::uint64_t in_order_ = 0;
  std::uint64_t missing_ = 0;
  std::uint64_t repeated_ = 0;
  std::uint64_t unnumbered_ = 0;
};

inline double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

inline double per_second(std::uint64_t n, double seconds) {
  return seconds > 0 ? static_cast<double>(n) / seconds : 0.0;
}

}  // namespace zkit::cli::io
