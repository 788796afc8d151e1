// The shipped default model end to end (issue: train and ship the default model): audio of music the
// model never trained on → `tunescribe transcribe` with no --model → `tunescribe score` against the
// notes that were rendered. The floors are below what the shipped model measures on these clips
// (docs/model-card.md), with margin; a broken front end, model file, decoder or codec lands far
// below them (random weights score 0).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "test_util.h"
#include "tunescribe/transcriber.h"

namespace fs = std::filesystem;
using tunescribe::test::run_command;
using tunescribe::test::tunescribe_bin;

namespace {
// Measured with the shipped model (tunescribe-d128-step6500): waltz onset F1 0.242, onset+offset F1
// 0.022; held-out clip onset F1 0.178 (docs/model-card.md). Onset floors at about half of that; the
// waltz's onset+offset F1 is low (this model's offsets are poor) and its floor only says "not zero":
// random weights score 0.
constexpr double kWaltzOnsetFloor = 0.12;
constexpr double kWaltzOnsetOffsetFloor = 0.01;
constexpr double kHeldOutOnsetFloor = 0.10;

std::string q(const std::string& s) { return "'" + s + "'"; }

struct Scores {
  double onset_f1 = -1;
  double onset_offset_f1 = -1;
  size_t n_est = 0;
};

// Transcribes `audio` with the default model and scores it against `ref`.
Scores transcribe_and_score(const std::string& audio, const std::string& ref, const std::string& tag) {
  std::string dir = tunescribe::test::temp_dir(tag);
  auto t = run_command(q(tunescribe_bin()) + " transcribe " + q(audio) + " -o " + q(dir) + " --format mid,abc");
  EXPECT_EQ(t.exit_code, 0) << t.err;
  std::string est = dir + "/" + fs::path(audio).stem().string() + ".mid";
  EXPECT_TRUE(fs::exists(est));
  EXPECT_TRUE(fs::exists(dir + "/" + fs::path(audio).stem().string() + ".abc"));
  auto s = run_command(q(tunescribe_bin()) + " score " + q(ref) + " " + q(est) + " --json");
  EXPECT_EQ(s.exit_code, 0) << s.err;
  Scores r;
  if (s.exit_code != 0) return r;
  auto j = nlohmann::json::parse(s.out);
  const auto& f = j["files"][0];
  r.onset_f1 = f["transcription"]["F-measure_no_offset"].get<double>();
  r.onset_offset_f1 = f["transcription"]["F-measure"].get<double>();
  r.n_est = f["n_est"].get<size_t>();
  fs::remove_all(dir);
  return r;
}
}  // namespace

TEST(DefaultModel, IsShippedAndDescribesItself) {
  std::string dir = tunescribe::default_model_dir();
  ASSERT_FALSE(dir.empty()) << "models/default is missing";
  std::ifstream in(dir + "/config.json");
  auto cfg = nlohmann::json::parse(in);
  // provenance written by tools/train/train.py --export
  ASSERT_TRUE(cfg.contains("training"));
  EXPECT_GT(cfg["training"]["steps"].get<int>(), 0);
  EXPECT_TRUE(cfg["training"].contains("git_commit"));
  EXPECT_TRUE(cfg["training"].contains("data"));
  EXPECT_LE(fs::file_size(dir + "/model.safetensors"), 40u * 1000 * 1000);
}

// The bundled example: an original waltz (never in any corpus), two piano voices, FluidR3_GM.
TEST(DefaultModel, TranscribesTheBundledExample) {
  std::string ex = std::string(TUNESCRIBE_SOURCE_DIR) + "/examples/tunescribe-waltz";
  Scores s = transcribe_and_score(ex + ".flac", ex + ".mid", "default_waltz");
  EXPECT_GE(s.onset_f1, kWaltzOnsetFloor) << "onset F1 " << s.onset_f1;
  EXPECT_GE(s.onset_offset_f1, kWaltzOnsetOffsetFloor) << "onset+offset F1 " << s.onset_offset_f1;
}

// A held-out POP909 song (validation split) on piano, rendered with MuseScore General, the soundfont
// reserved for validation (tools/train/make_e2e_clip.py).
TEST(DefaultModel, TranscribesHeldOutMusicWithAnUnseenSoundfont) {
  std::string clip = tunescribe::test::data_dir() + "/e2e/heldout-pop909-piano";
  Scores s = transcribe_and_score(clip + ".flac", clip + ".mid", "default_heldout");
  EXPECT_GE(s.onset_f1, kHeldOutOnsetFloor) << "onset F1 " << s.onset_f1;
}
