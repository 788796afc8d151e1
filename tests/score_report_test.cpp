// Tests of the HTML score report (score_report.h) and `score --report` (the browser test is
// tests/report_browser_test.py).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "test_util.h"
#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/score_report.h"

namespace fs = std::filesystem;
using namespace tunescribe;
using tunescribe::test::run_command;
using tunescribe::test::tunescribe_bin;

namespace {

using tunescribe::test::q;

using tunescribe::test::count;

// Notes drawn per class ("m", "x", "e") in the section of `stem`: one "h" per note.
size_t drawn(const std::string& html, const std::string& stem, const std::string& k) {
  const size_t a = html.find("<section class=\"file\" id=\"f");
  size_t s = html.find("data-stem=\"" + stem + "\"", a);
  if (s == std::string::npos) return 999;
  const size_t e = html.find("</section>", s);
  const std::string sec = html.substr(s, e - s);
  std::smatch m;
  if (!std::regex_search(sec, m, std::regex("data-k=\"" + k + "\" d=\"([^\"]*)\""))) return 0;
  return count(m[1], "h");
}

std::string write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
  return path;
}

// ref: 4 notes; est: 2 hit (onset within 50 ms, same pitch), 1 at a wrong pitch, 1 extra.
void make_pair(const std::string& dir) {
  write(dir + "/ref/a.txt",
        "0.00 0.50 440\n0.50 1.00 493.88\n1.00 1.50 523.25\n1.50 2.00 587.33\n");
  write(dir + "/est/a.txt", "0.02 0.40 440\n0.51 1.20 493.88\n1.00 1.50 554.37\n3.00 3.50 659.26\n");
}

}  // namespace

TEST(ScoreReport, CountsAndOverlayMatchTheMetrics) {
  const std::string dir = tunescribe::test::temp_dir("report_unit");
  make_pair(dir);
  ScoreFilesConfig cfg;
  const ScorePairing pairing = pair_score_inputs({}, dir + "/ref", dir + "/est");
  const ScoreRun run = score_pairs(pairing.pairs, cfg);
  ASSERT_EQ(run.results.size(), 1u);
  const std::string html = build_score_report(pairing, run, cfg);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("data-matched=\"2\" data-missed=\"2\" data-extra=\"2\""), std::string::npos);
  EXPECT_EQ(drawn(html, "a", "m"), 2u);
  EXPECT_EQ(drawn(html, "a", "x"), 2u);
  EXPECT_EQ(drawn(html, "a", "e"), 2u);
  // Aggregate keys and the sortable table.
  EXPECT_NE(html.find("<tr data-key=\"F-measure_no_offset\"><td>F-measure_no_offset</td><td>0.5000</td>"),
            std::string::npos);
  EXPECT_NE(html.find("<th data-key=\"Onset_F-measure\" data-type=\"num\">"), std::string::npos);
  // Errors by pitch: A4 matched, C5 missed, C#5 extra, E5 extra.
  EXPECT_NE(html.find("<tr><td>C5 (72)</td><td>1</td><td>0</td><td>1</td><td>0</td>"), std::string::npos);
  EXPECT_NE(html.find("<tr><td>C#5 (73)</td><td>0</td><td>0</td><td>0</td><td>1</td>"), std::string::npos);
  EXPECT_NE(html.find("(no instrument in the file)"), std::string::npos);
  // Self-contained: no external resources.
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
}

TEST(ScoreReport, RefusesToOverwriteWithoutForce) {
  const std::string dir = tunescribe::test::temp_dir("report_force");
  EXPECT_THROW(check_report_path("", false), ConfigError);
  EXPECT_THROW(check_report_path(dir, true), OutputError);  // a folder
  write(dir + "/r.html", "old");
  EXPECT_THROW(check_report_path(dir + "/r.html", false), OutputError);
  EXPECT_NO_THROW(check_report_path(dir + "/r.html", true));
  EXPECT_NO_THROW(check_report_path(dir + "/new.html", false));
}

TEST(ScoreReportCli, BatchWithABrokenPairStillWritesTheReport) {
  const std::string dir = tunescribe::test::temp_dir("report_cli");
  make_pair(dir);
  write(dir + "/ref/b.json",
        R"({"notes":[{"onset_s":0.0,"offset_s":0.5,"pitch":60,"velocity":80,"program":40,"is_drum":false},
                     {"onset_s":0.5,"offset_s":0.6,"pitch":36,"velocity":100,"program":0,"is_drum":true}]})");
  write(dir + "/est/b.json",
        R"({"notes":[{"onset_s":0.01,"offset_s":0.5,"pitch":60,"velocity":80,"program":40,"is_drum":false}]})");
  write(dir + "/ref/broken.txt", "0.0 0.5 440\n");
  write(dir + "/est/broken.txt", "this is not a note file\n");
  const std::string report = dir + "/out/report.html";
  fs::create_directories(dir + "/out");
  auto r = run_command(q(tunescribe_bin()) + " score --ref-dir " + q(dir + "/ref") + " --est-dir " + q(dir + "/est") +
                       " --json --report " + q(report));
  EXPECT_EQ(r.exit_code, 2) << "a pair failed: " << r.err;
  ASSERT_TRUE(fs::exists(report)) << r.err;
  const std::string html = read_file_text(report);
  EXPECT_NE(html.find("data-files=\"2\" data-failures=\"1\""), std::string::npos);
  EXPECT_NE(html.find("broken.txt"), std::string::npos);
  EXPECT_NE(html.find("<ul id=\"failures\" data-count=\"1\">"), std::string::npos);
  EXPECT_NE(html.find("Violin (40)"), std::string::npos);
  EXPECT_NE(html.find("Drums"), std::string::npos);
  EXPECT_NE(html.find("multi_instrument.F-measure"), std::string::npos);
  EXPECT_EQ(drawn(html, "b", "m"), 1u);
  EXPECT_EQ(drawn(html, "b", "x"), 1u);
  EXPECT_EQ(drawn(html, "b", "e"), 0u);
  // No temporary file left beside it; a second run without --force is refused before scoring.
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir + "/out")) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);
  auto again = run_command(q(tunescribe_bin()) + " score --ref-dir " + q(dir + "/ref") + " --est-dir " +
                           q(dir + "/est") + " --report " + q(report));
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("exists (use --force to overwrite)"), std::string::npos) << again.err;
  auto forced = run_command(q(tunescribe_bin()) + " score " + q(dir + "/ref/a.txt") + " " + q(dir + "/est/a.txt") +
                            " --report " + q(report) + " --force");
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_NE(read_file_text(report).find("data-files=\"1\" data-failures=\"0\""), std::string::npos);
}
