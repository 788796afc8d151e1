// End-to-end tests of the tunescribe executable (exit codes, outputs, batches).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"
#include "tunescribe/midi.h"

namespace fs = std::filesystem;
using tunescribe::test::run_command;
using tunescribe::test::tunescribe_bin;

namespace {
std::string example_mid() { return std::string(TUNESCRIBE_SOURCE_DIR) + "/examples/tunescribe-waltz.mid"; }
std::string q(const std::string& s) { return "'" + s + "'"; }
}  // namespace

TEST(Cli, VersionNamesVersionAndCommit) {
  auto r = run_command(q(tunescribe_bin()) + " --version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("tunescribe 0."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("commit"), std::string::npos) << r.out;
}

TEST(Cli, HelpShowsDefaultsAndUnknownFlagIsUsageError) {
  auto r = run_command(q(tunescribe_bin()) + " transcribe --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--batch-size"), std::string::npos);
  EXPECT_NE(r.out.find("=8"), std::string::npos) << "defaults must be shown";
  auto bad = run_command(q(tunescribe_bin()) + " transcribe --no-such-flag x.mid");
  EXPECT_EQ(bad.exit_code, 2);
  auto none = run_command(q(tunescribe_bin()));
  EXPECT_EQ(none.exit_code, 2);
}

TEST(Cli, TranscribeMidiWritesMidiAndJsonAndRefusesOverwrite) {
  std::string dir = tunescribe::test::temp_dir("cli_mid");
  auto r = run_command(q(tunescribe_bin()) + " transcribe " + q(example_mid()) + " -o " + q(dir) +
                       " --format mid,json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.empty()) << "stdout must stay empty without --json: " << r.out;
  ASSERT_TRUE(fs::exists(dir + "/tunescribe-waltz.mid"));
  ASSERT_TRUE(fs::exists(dir + "/tunescribe-waltz.json"));
  // The normalised MIDI re-reads to the same notes as the input.
  auto in = tunescribe::read_midi_file(example_mid());
  auto out = tunescribe::read_midi_file(dir + "/tunescribe-waltz.mid");
  ASSERT_EQ(in.notes.size(), out.notes.size());
  ASSERT_GT(in.notes.size(), 50u);
  for (size_t i = 0; i < in.notes.size(); ++i) {
    EXPECT_EQ(in.notes[i].pitch, out.notes[i].pitch);
    EXPECT_NEAR(in.notes[i].onset_s, out.notes[i].onset_s, 2e-3);
    EXPECT_NEAR(in.notes[i].offset_s, out.notes[i].offset_s, 2e-3);
  }
  std::ifstream jf(dir + "/tunescribe-waltz.json");
  auto j = nlohmann::json::parse(jf);
  ASSERT_EQ(j["notes"].size(), in.notes.size());
  for (const auto& n : j["notes"]) {
    for (const char* k : {"onset_s", "offset_s", "pitch", "velocity", "program", "instrument"})
      EXPECT_TRUE(n.contains(k)) << k;
  }
  // Second run without --force: refused, exit 1, file untouched.
  auto before = fs::last_write_time(dir + "/tunescribe-waltz.mid");
  auto again = run_command(q(tunescribe_bin()) + " transcribe " + q(example_mid()) + " -o " + q(dir) +
                           " --format mid,json");
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("exists"), std::string::npos) << again.err;
  EXPECT_EQ(before, fs::last_write_time(dir + "/tunescribe-waltz.mid"));
  // --skip-existing: success, nothing rewritten.
  auto skip = run_command(q(tunescribe_bin()) + " transcribe " + q(example_mid()) + " -o " + q(dir) +
                          " --format mid,json --skip-existing --json");
  EXPECT_EQ(skip.exit_code, 0) << skip.err;
  EXPECT_NE(skip.out.find("\"skipped\""), std::string::npos) << skip.out;
  // --force: rewritten.
  auto force = run_command(q(tunescribe_bin()) + " transcribe " + q(example_mid()) + " -o " + q(dir) +
                           " --format mid,json --force");
  EXPECT_EQ(force.exit_code, 0) << force.err;
  fs::remove_all(dir);
}

TEST(Cli, BatchKeepsGoingPastBadInputsAndReportsThem) {
  std::string dir = tunescribe::test::temp_dir("cli_batch");
  std::string in = dir + "/in", out = dir + "/out";
  fs::create_directories(in + "/sub");
  fs::copy_file(example_mid(), in + "/a.mid");
  fs::copy_file(example_mid(), in + "/sub/b.mid");
  { std::ofstream(in + "/broken.mid") << "this is not a MIDI file"; }
  auto r = run_command(q(tunescribe_bin()) + " transcribe " + q(in) + " -r -o " + q(out) + " --json --format json");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(fs::exists(out + "/a.json"));
  EXPECT_TRUE(fs::exists(out + "/b.json"));
  EXPECT_FALSE(fs::exists(out + "/broken.json"));
  EXPECT_NE(r.err.find("broken.mid"), std::string::npos) << r.err;
  // stdout: one JSON object per input, then a summary.
  std::istringstream lines(r.out);
  std::string line, last;
  int objects = 0;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);  // every line is JSON
    (void)j;
    ++objects;
    last = line;
  }
  EXPECT_EQ(objects, 4);
  auto summary = nlohmann::json::parse(last)["summary"];
  EXPECT_EQ(summary["ok"], 2);
  EXPECT_EQ(summary["failed"], 1);
  // No temporary files left behind.
  for (auto& e : fs::directory_iterator(out)) EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Cli, PathsFromStdinAndMissingFile) {
  std::string dir = tunescribe::test::temp_dir("cli_stdin");
  auto r = run_command("printf '%s\\n%s\\n' " + q(example_mid()) + " /nonexistent/x.mid | " + q(tunescribe_bin()) +
                       " transcribe - -o " + q(dir) + " --format json");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(fs::exists(dir + "/tunescribe-waltz.json"));
  EXPECT_NE(r.err.find("/nonexistent/x.mid"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

TEST(Cli, UnknownFormatIsUsageError) {
  auto r = run_command(q(tunescribe_bin()) + " transcribe " + q(example_mid()) + " --format wav");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("wav"), std::string::npos) << r.err;
}
