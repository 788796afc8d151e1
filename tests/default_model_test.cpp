// The shipped default model end to end (issue: train and ship the default model): audio of music the
// model never trained on → `tunescribe transcribe` with no --model → `tunescribe score` against the
// notes that were rendered. The floors are below what the shipped model measures on these clips
// (docs/model-card.md), with margin; a broken front end, model file, decoder or codec lands far
// below them (random weights score 0).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <sndfile.h>

#include <cmath>

#include "test_util.h"
#include "tunescribe/midi.h"
#include "tunescribe/score.h"
#include "tunescribe/transcriber.h"

namespace fs = std::filesystem;
using tunescribe::test::run_command;
using tunescribe::test::tunescribe_bin;

namespace {
// Measured with the shipped model, tunescribe-hconv-k64-step21600 on its default (frames) path:
// waltz onset F1 0.904, onset+offset F1 0.667; held-out clip onset F1 0.903 (docs/model-card.md;
// session 6's hconv-k64-step18525 measured 0.885 / 0.611 and 0.887). The floors sit well
// below (random weights score 0; the token-only model of session 3 measured 0.24 / 0.02 and 0.18).
constexpr double kWaltzOnsetFloor = 0.75;
constexpr double kWaltzOnsetOffsetFloor = 0.50;
constexpr double kHeldOutOnsetFloor = 0.75;
// Median onset error (estimate - reference) of matched notes, and median duration ratio.
constexpr double kMaxMedianOnsetShiftS = 0.020;

using tunescribe::test::q;

struct Scores {
  double onset_f1 = -1;
  double onset_offset_f1 = -1;
  size_t n_est = 0;
  double median_onset_shift_s = 1e9;  // over notes matched by onset and pitch (mir_eval rules)
  size_t matched = 0;
};

double median(std::vector<double> v) {
  if (v.empty()) return 1e9;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Median (estimate - reference) onset over the onset+pitch matching of mir_eval.
void timing(const std::string& ref_mid, const std::string& est_mid, Scores& r) {
  auto ref = tunescribe::score_notes_from_sequence(tunescribe::read_midi_file(ref_mid));
  auto est = tunescribe::score_notes_from_sequence(tunescribe::read_midi_file(est_mid));
  tunescribe::TranscriptionOptions opt;
  auto m = tunescribe::match_notes(ref.notes, est.notes, opt, tunescribe::MatchKind::NoteNoOffset);
  std::vector<double> d;
  for (auto [i, j] : m) d.push_back(est.notes[j].onset_s - ref.notes[i].onset_s);
  r.median_onset_shift_s = median(d);
  r.matched = m.size();
}

// Transcribes `audio` with the default model and scores it against `ref`.
Scores transcribe_and_score(const std::string& audio, const std::string& ref, const std::string& tag,
                            const std::string& extra = "") {
  std::string dir = tunescribe::test::temp_dir(tag);
  auto t = run_command(q(tunescribe_bin()) + " transcribe " + q(audio) + " -o " + q(dir) + " --format mid,abc" +
                       extra);
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
  timing(ref, est, r);
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
  // audio and notes line up: no systematic shift of the onsets (an earlier model's were a median
  // 34 ms early on rendered piano)
  EXPECT_GT(s.matched, 20u);
  EXPECT_LE(std::abs(s.median_onset_shift_s), kMaxMedianOnsetShiftS) << "median onset shift " << s.median_onset_shift_s;
}

// A held-out POP909 song (validation split) on piano, rendered with MuseScore General, the soundfont
// reserved for validation (tools/train/make_e2e_clip.py).
TEST(DefaultModel, TranscribesHeldOutMusicWithAnUnseenSoundfont) {
  std::string clip = tunescribe::test::data_dir() + "/e2e/heldout-pop909-piano";
  Scores s = transcribe_and_score(clip + ".flac", clip + ".mid", "default_heldout");
  EXPECT_GE(s.onset_f1, kHeldOutOnsetFloor) << "onset F1 " << s.onset_f1;
  EXPECT_LE(std::abs(s.median_onset_shift_s), kMaxMedianOnsetShiftS) << "median onset shift " << s.median_onset_shift_s;
}

// The same clip through the autoregressive token decoder of the same model (the other path). This
// model's token decoder is still far behind its heads (onset F1 ~0.01 on validation,
// docs/model-card.md), so this only checks that the path runs end to end and is scored.
TEST(DefaultModel, TokenDecoderRunsOnTheShippedModel) {
  std::string clip = tunescribe::test::data_dir() + "/e2e/heldout-pop909-piano";
  Scores s = transcribe_and_score(clip + ".flac", clip + ".mid", "default_heldout_tokens", " --decoder tokens");
  EXPECT_GE(s.onset_f1, 0.0) << "not scored";
}

// Onset timing on sharp attacks. Rendered training audio starts each note 5-10 ms after its MIDI
// time (FluidSynth's block and the samples' attacks), so a model can learn onsets that lead the
// sound; the token-only model before this one put the onsets of these tones a median 40 ms early
// (and was 34 ms early on rendered real piano performances). Harmonic tones with instant attacks
// every 0.5 s at 44.1 kHz (so the resampler is in the path too) must come out within 20 ms.
TEST(DefaultModel, OnsetsOfSharpAttacksAreNotEarly) {
  const int sr = 44100;
  std::vector<float> x(static_cast<size_t>(sr * 12), 0.0f);
  std::vector<double> ref;
  for (int k = 0; k < 21; ++k) {
    double on = 0.5 + 0.5 * k, f0 = 220.0 * std::pow(2.0, (k % 12) / 12.0);
    ref.push_back(on);
    for (size_t i = static_cast<size_t>(std::ceil(on * sr)); i < x.size(); ++i) {
      double t = i / double(sr) - on, v = 0;
      for (int h = 1; h <= 5; ++h) v += 0.2 / h * std::sin(2 * M_PI * f0 * h * t);
      x[i] += static_cast<float>(v * std::exp(-3.0 * t));
    }
  }
  std::string dir = tunescribe::test::temp_dir("default_tones");
  std::string wav = tunescribe::test::write_audio_file(dir + "/tones.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, sr, 1, x);
  auto t = run_command(q(tunescribe_bin()) + " transcribe " + q(wav) + " -o " + q(dir) + " --format mid");
  ASSERT_EQ(t.exit_code, 0) << t.err;
  auto est = tunescribe::read_midi_file(dir + "/tones.mid");
  std::vector<double> dev;
  for (double r : ref) {
    double best = 1e9;
    for (const auto& n : est.notes)
      if (std::abs(n.onset_s - r) < std::abs(best)) best = n.onset_s - r;
    if (std::abs(best) < 0.1) dev.push_back(best);
  }
  EXPECT_GE(dev.size(), 18u) << "tones found: " << dev.size() << " of 21";
  EXPECT_LE(std::abs(median(dev)), kMaxMedianOnsetShiftS) << "median onset shift " << median(dev);
  fs::remove_all(dir);
}
