// TempDir: unique, under $TMPDIR, removed with its contents, moves transfer the removal.
#include "temp_dir.hpp"

#include <catch2/catch.hpp>
#include <fstream>

using zkit::test::TempDir;
namespace fs = std::filesystem;

TEST_CASE("a TempDir is a fresh directory removed with everything in it", "[support]") {
  std::string kept;
  {
    TempDir dir;
    TempDir other;
    kept = dir.path();
    REQUIRE(fs::is_directory(kept));
    CHECK(dir.path() != other.path());
    fs::create_directories(dir.file("a/b"));
    std::ofstream(dir.file("a/b/c.txt")) << "x";
    CHECK(dir.ipc("s") == "ipc://" + kept + "/s");
  }
  CHECK_FALSE(fs::exists(kept));
}

TEST_CASE("a TempDir is made under the base it is given, with its prefix", "[support]") {
  TempDir base;
  TempDir dir("zkit-prefix", base.path());
  CHECK(fs::path(dir.path()).parent_path() == fs::path(base.path()));
  CHECK(fs::path(dir.path()).filename().string().rfind("zkit-prefix-", 0) == 0);
  CHECK_THROWS_WITH(TempDir("x", base.file("missing")),
                    Catch::Contains("mkdtemp(") && Catch::Contains("missing"));
}

TEST_CASE("a moved TempDir is removed once, by its new owner", "[support]") {
  std::string path;
  {
    TempDir a;
    path = a.path();
    TempDir b(std::move(a));
    CHECK(a.path().empty());
    CHECK(fs::is_directory(path));
    TempDir c;
    std::string replaced = c.path();
    c = std::move(b);
    CHECK_FALSE(fs::exists(replaced));
    CHECK(fs::is_directory(path));
  }
  CHECK_FALSE(fs::exists(path));
}
