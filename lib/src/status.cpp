#include "zkit/status.hpp"

namespace zkit {

const char* code_name(Code code) noexcept {
  switch (code) {
    case Code::kOk: return "OK";
    case Code::kCorruption: return "Corruption";
    case Code::kUnsupported: return "Unsupported";
    case Code::kLimitExceeded: return "LimitExceeded";
    case Code::kInvalidArgument: return "InvalidArgument";
    case Code::kIOError: return "IOError";
    case Code::kNotFound: return "NotFound";
  }
  return "Unknown";
}

std::string Status::to_string() const {
  if (is_ok()) return "OK";
  return std::string(code_name(code_)) + ": " + message_;
}

}  // namespace zkit
