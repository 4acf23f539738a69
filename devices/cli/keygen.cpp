// `zkit keygen`: makes a CURVE key pair in the key-file format the --curve-* flags read.
#include <fmt/format.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>

#include "cli.hpp"

namespace {

using namespace zkit;
using namespace zkit::cli;

void declare(po::options_description& flags) {
  // clang-format off
  flags.add_options()
      ("out", po::value<std::string>()->value_name("FILE"),
       "write the pair to FILE (mode 0600) and the public key alone to FILE.pub, and print the "
       "public key; without it the pair is printed")
      ("force", "overwrite existing files");
  // clang-format on
}

// Writes `text` to `path` with `mode`; a path that cannot be written is a configuration error.
void write_file(const std::string& path, const std::string& text, mode_t mode, bool force) {
  struct stat st {};
  if (!force && ::stat(path.c_str(), &st) == 0) {
    throw UsageError(fmt::format("--out: '{}' exists (--force overwrites it)", path));
  }
  std::ofstream out(path, std::ios::trunc);
  if (!out) throw UsageError(fmt::format("--out: cannot write '{}': {}", path, strerror(errno)));
  ::chmod(path.c_str(), mode);
  out << text;
  out.close();
  if (!out) throw std::runtime_error(fmt::format("writing '{}' failed", path));
}

int run(const po::variables_map& vm) {
  const CurveKeyPair pair = generate_curve_keypair();
  if (!vm.count("out")) {
    std::cout << format_key_file(pair);
    return kExitOk;
  }
  const auto path = vm["out"].as<std::string>();
  const bool force = vm.count("force") != 0;
  write_file(path, format_key_file(pair), 0600, force);
  write_file(path + ".pub", format_key_file({pair.public_key, ""}), 0644, force);
  std::cout << pair.public_key << "\n";
  return kExitOk;
}

}  // namespace

extern const zkit::cli::Subcommand keygen_subcommand = {
    "keygen", "make a CURVE key pair for the --curve-* flags",
    "Key file: lines 'public = KEY' and 'secret = KEY' (40 Z85 characters each), '#' comments.\n"
    "--curve-secret FILE reads it; --curve-server-key takes FILE.pub (or the key itself);\n"
    "an allow-list (--curve-allow) is one public key per line: zkit keygen --out c.key >> "
    "allow.txt",
    declare, run};
