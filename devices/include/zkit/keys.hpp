// CURVE keys for zkit devices: generating a key pair and the two small text files that hold keys.
//
// Key file (`zkit keygen --out FILE`, mode 0600; FILE.pub gets the public line only):
//     # comment lines start with '#'
//     public = <40 Z85 characters>
//     secret = <40 Z85 characters>
// Allow-list file (client public keys a CURVE server lets in): one key per line, the key first,
// then optionally whitespace and a free-text label; blank lines and lines starting with '#' that
// are not a key are comments. A key file's "public = KEY" line is accepted too, so
// `cat client.key.pub >> allow.txt` works.
// Z85 keys can contain '#' and '=', so neither file is a Boost.Program_options config file.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "zkit/status.hpp"

namespace zkit {

struct CurveKeyPair {
  std::string public_key;  // 40 Z85 characters
  std::string secret_key;  // 40 Z85 characters
};

// A fresh pair from zmq_curve_keypair(). Throws zmq::error_t when libzmq was built without CURVE.
CurveKeyPair generate_curve_keypair();
// The public key that belongs to a secret key (zmq_curve_public). Throws std::invalid_argument
// for a malformed secret key.
std::string curve_public_key(const std::string& secret_key);

// True for 40 characters that decode as Z85.
bool is_curve_key(std::string_view text) noexcept;

// The key-file text for a pair (or, with secret_key empty, a public-only file).
std::string format_key_file(const CurveKeyPair& pair);

// Reads a key file. NotFound when it cannot be opened; Corruption naming the line when a line is
// not "public = KEY" / "secret = KEY" / comment, or a key is malformed; InvalidArgument when
// require_secret and there is no secret line, or the public line does not match the secret.
// A file with only a secret line gets its public key computed.
Result<CurveKeyPair> read_key_file(const std::string& path, bool require_secret);

// A server's public key given as the key itself or as the path of a key file (its public line).
Result<std::string> read_public_key(const std::string& key_or_path);

// Reads an allow-list (format above). NotFound / Corruption naming the line.
Result<std::vector<std::string>> read_allow_list(const std::string& path);

}  // namespace zkit
