// CURVE key files and allow-lists: what `zkit keygen` writes reads back, and bad files are
// reported with the line that is wrong.
#include "zkit/keys.hpp"

#include <catch2/catch.hpp>

#include "process.hpp"

using namespace zkit;
using namespace zkit::test;

TEST_CASE("A key file written by format_key_file reads back as the same pair", "[devices][keys]") {
  TempDir dir;
  const CurveKeyPair pair = generate_curve_keypair();
  write_file(dir.file("k"), format_key_file(pair));
  auto back = read_key_file(dir.file("k"), true);
  REQUIRE(back.is_ok());
  CHECK(back->public_key == pair.public_key);
  CHECK(back->secret_key == pair.secret_key);
  CHECK(curve_public_key(pair.secret_key) == pair.public_key);

  write_file(dir.file("k.pub"), format_key_file({pair.public_key, ""}));
  auto pub = read_public_key(dir.file("k.pub"));
  REQUIRE(pub.is_ok());
  CHECK(*pub == pair.public_key);
  CHECK(read_key_file(dir.file("k.pub"), true).status().code() == Code::kInvalidArgument);
  auto literal = read_public_key(pair.public_key);
  REQUIRE(literal.is_ok());
  CHECK(*literal == pair.public_key);
}

TEST_CASE("A key file whose public key does not match its secret key is refused",
          "[devices][keys]") {
  TempDir dir;
  const CurveKeyPair a = generate_curve_keypair(), b = generate_curve_keypair();
  write_file(dir.file("k"), format_key_file({a.public_key, b.secret_key}));
  auto r = read_key_file(dir.file("k"), true);
  CHECK(r.status().code() == Code::kInvalidArgument);
}

TEST_CASE("A malformed key file line is reported with its number", "[devices][keys]") {
  TempDir dir;
  write_file(dir.file("k"), "# comment\npublic = tooshort\n");
  auto r = read_key_file(dir.file("k"), false);
  CHECK(r.status().code() == Code::kCorruption);
  CHECK_THAT(r.status().message(), Catch::Contains("line 2"));
  CHECK(read_key_file(dir.file("missing"), false).status().code() == Code::kNotFound);
}

TEST_CASE("An allow-list takes keys with labels, public lines and comments", "[devices][keys]") {
  TempDir dir;
  const CurveKeyPair a = generate_curve_keypair(), b = generate_curve_keypair();
  write_file(dir.file("allow"), "# clients\n\n" + a.public_key + "  producer-1\n" +
                                    format_key_file({b.public_key, ""}));
  auto keys = read_allow_list(dir.file("allow"));
  REQUIRE(keys.is_ok());
  CHECK(*keys == std::vector<std::string>{a.public_key, b.public_key});

  write_file(dir.file("bad"), a.public_key + "\nnot-a-key\n");
  auto bad = read_allow_list(dir.file("bad"));
  CHECK(bad.status().code() == Code::kCorruption);
  CHECK_THAT(bad.status().message(), Catch::Contains("line 2"));
  CHECK(read_allow_list(dir.file("missing")).status().code() == Code::kNotFound);
}
