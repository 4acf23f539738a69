// JsonWriter: the documents it writes parse back to what was written, and misuse is refused.
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "zkit/json.hpp"

using zkit::JsonWriter;

TEST_CASE("nested objects and arrays parse back with exact integers", "[json]") {
  JsonWriter w;
  w.begin_object();
  w.field("device", "spool").field("max", std::numeric_limits<std::uint64_t>::max());
  w.field("neg", std::int64_t{-5}).field("ok", true).field("ratio", 0.25);
  w.key("none").value(nullptr);
  w.key("sub").begin_object().field("n", 3).end_object();
  w.key("list").begin_array().value(1).value("two").begin_array().end_array().end_array();
  w.key("spliced").raw(R"({"a":[1,2]})");
  w.end_object();
  const auto j = nlohmann::json::parse(std::move(w).str());
  CHECK(j["device"] == "spool");
  CHECK(j["max"].get<std::uint64_t>() == std::numeric_limits<std::uint64_t>::max());
  CHECK(j["neg"] == -5);
  CHECK(j["ok"] == true);
  CHECK(j["ratio"] == 0.25);
  CHECK(j["none"].is_null());
  CHECK(j["sub"]["n"] == 3);
  CHECK(j["list"] == nlohmann::json::parse(R"([1,"two",[]])"));
  CHECK(j["spliced"]["a"][1] == 2);
}

TEST_CASE("strings are escaped and invalid UTF-8 becomes U+FFFD", "[json]") {
  JsonWriter w;
  w.begin_array().value(std::string("q\"\\\n\x01", 5)).value(std::string("\xc0\xaf", 2)).end_array();
  const auto j = nlohmann::json::parse(std::move(w).str());
  CHECK(j[0] == std::string("q\"\\\n\x01", 5));
  CHECK(j[1].get<std::string>().find("\xef\xbf\xbd") != std::string::npos);
}

TEST_CASE("non-finite doubles are written as null", "[json]") {
  JsonWriter w;
  w.begin_array().value(std::numeric_limits<double>::infinity()).value(std::nan("")).end_array();
  CHECK(std::move(w).str() == "[null,null]");
}

TEST_CASE("misuse throws logic_error", "[json]") {
  SECTION("a value in an object without a key") {
    JsonWriter w;
    w.begin_object();
    CHECK_THROWS_AS(w.value(1), std::logic_error);
  }
  SECTION("a key in an array") {
    JsonWriter w;
    w.begin_array();
    CHECK_THROWS_AS(w.key("k"), std::logic_error);
  }
  SECTION("unbalanced close") {
    JsonWriter w;
    w.begin_object();
    CHECK_THROWS_AS(w.end_array(), std::logic_error);
  }
  SECTION("an open document") {
    JsonWriter w;
    w.begin_object();
    CHECK_THROWS_AS(std::move(w).str(), std::logic_error);
  }
  SECTION("two top-level values") {
    JsonWriter w;
    w.value(1);
    CHECK_THROWS_AS(w.value(2), std::logic_error);
  }
}
