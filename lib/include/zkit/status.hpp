// Status and Result: how zkit reports what went wrong with untrusted input (peer frames, files on
// disk) and with I/O. Misuse of the API by the program throws instead (std::invalid_argument).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace zkit {

enum class Code {
  kOk = 0,
  kCorruption,       // untrusted bytes do not follow the format (names the field and offset)
  kUnsupported,      // well-formed but asks for what this build does not do (a version, a codec)
  kLimitExceeded,    // well-formed but over a configured limit (records, bytes)
  kInvalidArgument,  // a caller-supplied value is out of range
  kIOError,          // the operating system refused (EIO, ENOSPC, ...)
  kNotFound,         // a file or record that should be there is not
};

const char* code_name(Code code) noexcept;

// A cheap value: ok, or a code with a message that says what was wrong and where.
class [[nodiscard]] Status {
 public:
  Status() noexcept = default;  // ok
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() noexcept { return {}; }
  static Status corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status unsupported(std::string m) { return {Code::kUnsupported, std::move(m)}; }
  static Status limit_exceeded(std::string m) { return {Code::kLimitExceeded, std::move(m)}; }
  static Status invalid_argument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status io_error(std::string m) { return {Code::kIOError, std::move(m)}; }
  static Status not_found(std::string m) { return {Code::kNotFound, std::move(m)}; }

  bool is_ok() const noexcept { return code_ == Code::kOk; }
  explicit operator bool() const noexcept { return is_ok(); }
  Code code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  // "Corruption: truncated at byte 12 (records)"; "OK" when ok.
  std::string to_string() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.is_ok()) throw std::invalid_argument("zkit::Result built from an ok Status");
  }

  bool is_ok() const noexcept { return value_.has_value(); }
  explicit operator bool() const noexcept { return is_ok(); }
  const Status& status() const noexcept { return status_; }

  // Throws std::logic_error when there is no value (reading a failed Result is a program bug).
  T& value() & { check(); return *value_; }
  const T& value() const& { check(); return *value_; }
  T&& value() && { check(); return std::move(*value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

 private:
  void check() const {
    if (!value_) throw std::logic_error("zkit::Result has no value: " + status_.to_string());
  }
  std::optional<T> value_;
  Status status_;
};

}  // namespace zkit
