// The Prometheus exposition: families, escaping, exact integers, histograms, misuse.
#include "zkit/metrics.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

using zkit::LatencyHistogram;
using zkit::metrics::Exposition;

TEST_CASE("samples of one name share one HELP and TYPE, in first-use order", "[metrics]") {
  Exposition x({{"device", "spool"}, {"name", "a"}});
  x.counter("zkit_x_total", "Things.", 3, {{"socket", "listen"}});
  x.gauge("zkit_y", "Now.", 1.5);
  x.counter("zkit_x_total", "Things.", 4, {{"socket", "pull"}});
  CHECK(x.text() ==
        "# HELP zkit_x_total Things.\n"
        "# TYPE zkit_x_total counter\n"
        "zkit_x_total{device=\"spool\",name=\"a\",socket=\"listen\"} 3\n"
        "zkit_x_total{device=\"spool\",name=\"a\",socket=\"pull\"} 4\n"
        "# HELP zkit_y Now.\n"
        "# TYPE zkit_y gauge\n"
        "zkit_y{device=\"spool\",name=\"a\"} 1.5\n");
}

TEST_CASE("a sample without labels has no braces", "[metrics]") {
  Exposition x;
  x.gauge("zkit_up", "Up.", true);
  CHECK(x.text() == "# HELP zkit_up Up.\n# TYPE zkit_up gauge\nzkit_up 1\n");
}

TEST_CASE("label values and help text are escaped", "[metrics]") {
  Exposition x({{"name", "a\"b\\c\nd"}});
  x.gauge("zkit_g", "back\\slash\nnew \"quoted\"", 0);
  const std::string t = x.text();
  CHECK(t.find("# HELP zkit_g back\\\\slash\\nnew \"quoted\"\n") != std::string::npos);
  CHECK(t.find("zkit_g{name=\"a\\\"b\\\\c\\nd\"} 0\n") != std::string::npos);
}

TEST_CASE("integers are written exactly, doubles as Prometheus reads them", "[metrics]") {
  Exposition x;
  x.counter("zkit_big_total", "Big.", std::numeric_limits<std::uint64_t>::max());
  x.gauge("zkit_neg", "Negative.", -2);
  x.gauge("zkit_nan", "NaN.", std::numeric_limits<double>::quiet_NaN());
  x.gauge("zkit_inf", "Inf.", std::numeric_limits<double>::infinity());
  const std::string t = x.text();
  CHECK(t.find("zkit_big_total 18446744073709551615\n") != std::string::npos);
  CHECK(t.find("zkit_neg -2\n") != std::string::npos);
  CHECK(t.find("zkit_nan NaN\n") != std::string::npos);
  CHECK(t.find("zkit_inf +Inf\n") != std::string::npos);
}

TEST_CASE("a histogram is cumulative in seconds with +Inf, _sum and _count", "[metrics]") {
  LatencyHistogram h;
  h.record(20'000);     // 20 us: below the first bound (50 us)
  h.record(3'000'000);  // 3 ms
  h.record(3'000'000);
  h.record(400'000'000'000);  // 400 s: past the last bound (300 s)
  Exposition x({{"name", "a"}});
  x.histogram("zkit_fsync_seconds", "Fsync.", h);
  const std::string t = x.text();
  CHECK(t.find("# TYPE zkit_fsync_seconds histogram\n") != std::string::npos);
  CHECK(t.find("zkit_fsync_seconds_bucket{name=\"a\",le=\"5e-05\"} 1\n") != std::string::npos);
  CHECK(t.find("zkit_fsync_seconds_bucket{name=\"a\",le=\"0.0025\"} 1\n") != std::string::npos);
  CHECK(t.find("zkit_fsync_seconds_bucket{name=\"a\",le=\"0.005\"} 3\n") != std::string::npos);
  CHECK(t.find("zkit_fsync_seconds_bucket{name=\"a\",le=\"300\"} 3\n") != std::string::npos);
  CHECK(t.find("zkit_fsync_seconds_bucket{name=\"a\",le=\"+Inf\"} 4\n") != std::string::npos);
  CHECK(t.find("zkit_fsync_seconds_sum{name=\"a\"} 400.00602\n") != std::string::npos);
  CHECK(t.find("zkit_fsync_seconds_count{name=\"a\"} 4\n") != std::string::npos);
}

TEST_CASE("count_at_most leaves out a bucket that straddles the bound", "[metrics][stats]") {
  LatencyHistogram h;
  h.record(10);
  h.record(1000);  // bucket [992, 1023]
  CHECK(h.count_at_most(9) == 0);
  CHECK(h.count_at_most(10) == 1);
  CHECK(h.count_at_most(1000) == 1);  // its bucket reaches 1023
  CHECK(h.count_at_most(1023) == 2);
  CHECK(h.sum() == 1010);
}

TEST_CASE("misuse of names, types and labels throws naming the metric", "[metrics]") {
  Exposition x({{"device", "proxy"}});
  CHECK_THROWS_WITH(x.counter("zkit_frames", "F.", 1),
                    Catch::Contains("zkit_frames") && Catch::Contains("_total"));
  CHECK_THROWS_AS(x.gauge("zkit_frames_total", "F.", 1), std::invalid_argument);
  CHECK_THROWS_AS(x.histogram("zkit_age", "A.", LatencyHistogram{}), std::invalid_argument);
  CHECK_THROWS_AS(x.gauge("9zkit", "bad name", 1), std::invalid_argument);
  CHECK_THROWS_AS(x.gauge("zkit_g", "G.", 1, {{"bad-label", "x"}}), std::invalid_argument);
  CHECK_THROWS_AS(x.gauge("zkit_g", "G.", 1, {{"__reserved", "x"}}), std::invalid_argument);
  CHECK_THROWS_AS(x.gauge("zkit_g", "G.", 1, {{"device", "twice"}}), std::invalid_argument);
  CHECK_THROWS_AS(x.histogram("zkit_h_seconds", "H.", LatencyHistogram{}, {{"le", "1"}}),
                  std::invalid_argument);
  x.gauge("zkit_g", "G.", 1, {{"socket", "a"}});
  CHECK_THROWS_WITH(x.gauge("zkit_g", "G.", 2, {{"socket", "a"}}), Catch::Contains("twice"));
  CHECK_THROWS_WITH(x.gauge("zkit_g", "Other help.", 2), Catch::Contains("two help texts"));
  CHECK_THROWS_WITH(x.counter("zkit_g_total", "G.", 1).gauge("zkit_g_total", "G.", 1),
                    Catch::Contains("_total"));
  CHECK_THROWS_AS(Exposition({{"bad label", "x"}}), std::invalid_argument);
}
