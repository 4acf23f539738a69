// The one JSON writer behind every stats struct's to_json(): a small streaming builder that writes
// compact JSON into a string. It keeps nlohmann out of the public headers and gives every figure
// the same shape (integers exact, doubles shortest round-trip, non-finite doubles as null).
//
// Contract: calls must form a valid document (a value after each key, keys only inside objects,
// balanced begin/end); misuse throws std::logic_error naming the mistake. Strings are escaped per
// RFC 8259; invalid UTF-8 is replaced by U+FFFD. Not thread-safe; one writer per document.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace zkit {

class JsonWriter {
 public:
  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view name);

  JsonWriter& value(std::string_view s);
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(const std::string& s) { return value(std::string_view(s)); }
  JsonWriter& value(bool b);
  JsonWriter& value(std::nullptr_t);
  JsonWriter& value(double d);
  JsonWriter& value(std::int64_t n);
  JsonWriter& value(std::uint64_t n);
  JsonWriter& value(int n) { return value(static_cast<std::int64_t>(n)); }
  JsonWriter& value(long long n) { return value(static_cast<std::int64_t>(n)); }
  JsonWriter& value(unsigned n) { return value(static_cast<std::uint64_t>(n)); }
  JsonWriter& value(unsigned long long n) { return value(static_cast<std::uint64_t>(n)); }
  // Splices json_text, which must already be one complete JSON value (for example another stats
  // struct's to_json()), where a value goes. It is not re-parsed.
  JsonWriter& raw(std::string_view json_text);

  // key(name) followed by value(v): the common case of an object member.
  template <typename T>
  JsonWriter& field(std::string_view name, const T& v) {
    key(name);
    return value(v);
  }

  // The document. Throws std::logic_error when an object or array is still open.
  std::string str() &&;

 private:
  enum class Frame : char { kObject, kArray };
  void before_value();
  void write_number(std::string_view digits);

  std::string out_;
  std::vector<Frame> open_;
  bool need_comma_ = false;
  bool after_key_ = false;
  bool done_ = false;
};

}  // namespace zkit
