// JsonWriter: structure is checked here, string escaping is nlohmann's (with U+FFFD replacement),
// numbers go through std::to_chars so every figure is written exactly.
#include "zkit/json.hpp"

#include <charconv>
#include <cmath>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace zkit {

void JsonWriter::before_value() {
  if (done_) throw std::logic_error("JsonWriter: a value after the document was complete");
  if (!open_.empty() && open_.back() == Frame::kObject) {
    if (!after_key_) throw std::logic_error("JsonWriter: a value inside an object needs a key");
    after_key_ = false;
    return;
  }
  if (need_comma_) out_ += ',';
}

JsonWriter& JsonWriter::key(std::string_view name) {
  if (open_.empty() || open_.back() != Frame::kObject || after_key_) {
    throw std::logic_error("JsonWriter: key() outside an object or twice in a row");
  }
  if (need_comma_) out_ += ',';
  out_ += nlohmann::json(name).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  out_ += ':';
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::begin_object() {
  before_value();
  out_ += '{';
  open_.push_back(Frame::kObject);
  need_comma_ = false;
  return *this;
}

JsonWriter& JsonWriter::begin_array() {
  before_value();
  out_ += '[';
  open_.push_back(Frame::kArray);
  need_comma_ = false;
  return *this;
}

JsonWriter& JsonWriter::end_object() {
  if (open_.empty() || open_.back() != Frame::kObject || after_key_) {
    throw std::logic_error("JsonWriter: end_object() without an open object, or after a key");
  }
  open_.pop_back();
  out_ += '}';
  need_comma_ = true;
  done_ = open_.empty();
  return *this;
}

JsonWriter& JsonWriter::end_array() {
  if (open_.empty() || open_.back() != Frame::kArray) {
    throw std::logic_error("JsonWriter: end_array() without an open array");
  }
  open_.pop_back();
  out_ += ']';
  need_comma_ = true;
  done_ = open_.empty();
  return *this;
}

void JsonWriter::write_number(std::string_view digits) {
  before_value();
  out_ += digits;
  need_comma_ = true;
  done_ = open_.empty();
}

JsonWriter& JsonWriter::value(std::string_view s) {
  before_value();
  out_ += nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  need_comma_ = true;
  done_ = open_.empty();
  return *this;
}

JsonWriter& JsonWriter::value(bool b) {
  write_number(b ? "true" : "false");
  return *this;
}

JsonWriter& JsonWriter::value(std::nullptr_t) {
  write_number("null");
  return *this;
}

JsonWriter& JsonWriter::value(double d) {
  if (!std::isfinite(d)) {
    write_number("null");
    return *this;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, d);
  std::string_view text(buf, static_cast<std::size_t>(r.ptr - buf));
  // "1e+20" and "3" are valid JSON numbers; to_chars never writes inf/nan for finite values.
  write_number(text);
  return *this;
}

JsonWriter& JsonWriter::value(std::int64_t n) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, n);
  write_number(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
  return *this;
}

JsonWriter& JsonWriter::value(std::uint64_t n) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, n);
  write_number(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
  return *this;
}

JsonWriter& JsonWriter::raw(std::string_view json_text) {
  if (json_text.empty()) throw std::logic_error("JsonWriter: raw() with no text");
  write_number(json_text);
  return *this;
}

std::string JsonWriter::str() && {
  if (!open_.empty()) throw std::logic_error("JsonWriter: str() with an object or array open");
  return std::move(out_);
}

}  // namespace zkit
