// CURVE key pairs and the key-file and allow-list formats described in keys.hpp.
#include "zkit/keys.hpp"

#include <array>
#include <fstream>
#include <stdexcept>
#include <zmq.hpp>

namespace zkit {
namespace {

constexpr std::size_t kKeyChars = 40;

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r");
  return s.substr(first, last - first + 1);
}

// "name = value" -> {name, value}; empty name when the line has no '=' (keys may hold '=', so
// the first one separates).
std::pair<std::string_view, std::string_view> split_assignment(std::string_view line) {
  const auto eq = line.find('=');
  if (eq == std::string_view::npos) return {};
  return {trim(line.substr(0, eq)), trim(line.substr(eq + 1))};
}

std::string where(const std::string& path, int line) {
  return path + " line " + std::to_string(line);
}

}  // namespace

bool is_curve_key(std::string_view text) noexcept {
  if (text.size() != kKeyChars) return false;
  std::array<std::uint8_t, 32> out{};
  const std::string copy(text);
  return zmq_z85_decode(out.data(), copy.c_str()) != nullptr;
}

CurveKeyPair generate_curve_keypair() {
  std::array<char, kKeyChars + 1> pub{}, sec{};
  if (zmq_curve_keypair(pub.data(), sec.data()) != 0) throw zmq::error_t();
  return {pub.data(), sec.data()};
}

std::string curve_public_key(const std::string& secret_key) {
  if (!is_curve_key(secret_key)) throw std::invalid_argument("malformed CURVE secret key");
  std::array<char, kKeyChars + 1> pub{};
  if (zmq_curve_public(pub.data(), secret_key.c_str()) != 0) throw zmq::error_t();
  return pub.data();
}

std::string format_key_file(const CurveKeyPair& pair) {
  std::string text;
  if (pair.secret_key.empty()) {
    text += "# zkit CURVE public key\n";
  } else {
    text += "# zkit CURVE key pair (zkit keygen): keep this file secret\n";
  }
  text += "public = " + pair.public_key + "\n";
  if (!pair.secret_key.empty()) text += "secret = " + pair.secret_key + "\n";
  return text;
}

Result<CurveKeyPair> read_key_file(const std::string& path, bool require_secret) {
  std::ifstream in(path);
  if (!in) return Status::not_found("cannot open key file '" + path + "'");
  CurveKeyPair pair;
  std::string raw;
  for (int n = 1; std::getline(in, raw); ++n) {
    const std::string_view line = trim(raw);
    if (line.empty() || line[0] == '#') continue;
    auto [name, value] = split_assignment(line);
    std::string* slot = name == "public"   ? &pair.public_key
                        : name == "secret" ? &pair.secret_key
                                           : nullptr;
    if (slot == nullptr) {
      return Status::corruption(where(path, n) + ": expected 'public = KEY' or 'secret = KEY'");
    }
    if (!is_curve_key(value)) {
      return Status::corruption(where(path, n) + ": " + std::string(name) +
                                " key is not 40 Z85 characters");
    }
    *slot = value;
  }
  if (!pair.secret_key.empty()) {
    const std::string derived = curve_public_key(pair.secret_key);
    if (pair.public_key.empty()) pair.public_key = derived;
    if (pair.public_key != derived) {
      return Status::invalid_argument("key file '" + path +
                                      "': the public key does not belong to the secret key");
    }
  }
  if (require_secret && pair.secret_key.empty()) {
    return Status::invalid_argument("key file '" + path + "' has no secret key");
  }
  if (pair.public_key.empty())
    return Status::invalid_argument("key file '" + path + "' has no key");
  return pair;
}

Result<std::string> read_public_key(const std::string& key_or_path) {
  if (is_curve_key(key_or_path)) return key_or_path;
  auto pair = read_key_file(key_or_path, false);
  if (!pair) return pair.status();
  return pair->public_key;
}

Result<std::vector<std::string>> read_allow_list(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::not_found("cannot open allow-list '" + path + "'");
  std::vector<std::string> keys;
  std::string raw;
  for (int n = 1; std::getline(in, raw); ++n) {
    const std::string_view line = trim(raw);
    if (line.empty()) continue;
    std::string_view first = line.substr(0, line.find_first_of(" \t"));
    if (is_curve_key(first)) {
      keys.emplace_back(first);
      continue;
    }
    if (auto [name, value] = split_assignment(line); name == "public" && is_curve_key(value)) {
      keys.emplace_back(value);
      continue;
    }
    if (line[0] == '#') continue;
    return Status::corruption(where(path, n) + ": not a 40-character Z85 public key");
  }
  return keys;
}

}  // namespace zkit
