// Tests of score.h (mir_eval re-implementation) and the `tunescribe score` CLI.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "test_util.h"
#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/log.h"
#include "tunescribe/score.h"

using namespace tunescribe;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

ScoreNotes make_notes(const std::vector<std::array<double, 3>>& v, const std::string& src = "mem") {
  ScoreNotes s;
  s.source = src;
  for (const auto& a : v) {
    ScoreNote n;
    n.onset_s = a[0];
    n.offset_s = a[1];
    n.pitch_hz = a[2];
    s.notes.push_back(n);
  }
  return s;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// The tie-break example of mir_eval's tests/test_transcription.py (scoring.md §1.5).
ScoreNotes example_ref() {
  return make_notes({{0.100, 0.300, 220.000}, {0.300, 0.400, 246.942}, {0.500, 0.600, 277.183},
                     {0.550, 0.650, 293.665}});
}
ScoreNotes example_est() {
  return make_notes({{0.120, 0.290, 225.000}, {0.300, 0.340, 246.942}, {0.500, 0.600, 500.000},
                     {0.550, 0.600, 293.665}, {0.560, 0.650, 293.665}});
}

Matching M(std::initializer_list<std::pair<size_t, size_t>> l) { return Matching(l); }

std::vector<std::string> sorted_files(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------
// Worked examples from mir_eval's own unit tests (scoring.md §1.5, §1.7).

TEST(ScoreMatching, TieBreakFollowsMirEvalOrder) {
  const auto ref = example_ref().notes, est = example_est().notes;
  TranscriptionOptions opt;
  EXPECT_EQ(match_notes(ref, est, opt, MatchKind::Note), M({{0, 0}, {3, 3}}));
  EXPECT_EQ(match_notes(ref, est, opt, MatchKind::NoteNoOffset), M({{0, 0}, {1, 1}, {3, 3}}));
  EXPECT_EQ(match_notes(ref, est, opt, MatchKind::Onset), M({{0, 0}, {1, 1}, {2, 2}, {3, 3}}));
  EXPECT_EQ(match_notes(ref, est, opt, MatchKind::Offset), M({{0, 0}, {2, 2}, {3, 3}}));
  opt.strict = true;
  EXPECT_EQ(match_notes(ref, est, opt, MatchKind::Note), M({{0, 0}, {3, 4}}));
  EXPECT_EQ(match_notes(ref, est, opt, MatchKind::Offset), M({{0, 0}, {2, 2}, {3, 4}}));
}

TEST(ScoreMatching, EvaluateGivesMirEvalValuesAndKeyOrder) {
  const auto s = evaluate_transcription(example_ref(), example_est());
  const std::vector<std::pair<std::string, double>> expected = {
      {"Precision", 0.4},
      {"Recall", 0.5},
      {"F-measure", 0.4444444444444445},
      {"Average_Overlap_Ratio", 0.675},
      {"Precision_no_offset", 0.6},
      {"Recall_no_offset", 0.75},
      {"F-measure_no_offset", 0.6666666666666665},
      {"Average_Overlap_Ratio_no_offset", 0.5833333333333333},
      {"Onset_Precision", 0.8},
      {"Onset_Recall", 1.0},
      {"Onset_F-measure", 0.8888888888888889},
      {"Offset_Precision", 0.6},
      {"Offset_Recall", 0.75},
      {"Offset_F-measure", 0.6666666666666665}};
  ASSERT_EQ(s.metrics.values.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(s.metrics.values[i].first, expected[i].first);
    EXPECT_NEAR(s.metrics.values[i].second, expected[i].second, 1e-12) << expected[i].first;
  }
  TranscriptionOptions strict;
  strict.strict = true;
  EXPECT_NEAR(evaluate_transcription(example_ref(), example_est(), strict).metrics.get("Average_Overlap_Ratio"),
              0.875, 1e-12);
}

TEST(ScoreMatching, AugmentingPathBeatsGreedy) {
  // est 0 hits refs 0 and 1, est 1 hits ref 0 only: the greedy pass takes
  // (0,0); augmentation must move it so both are matched.
  const std::vector<std::vector<size_t>> hits = {{0, 1}, {0}};
  EXPECT_EQ(bipartite_match(2, hits), M({{0, 1}, {1, 0}}));
  // A longer chain.
  const std::vector<std::vector<size_t>> chain = {{0, 1}, {1, 2}, {2}};
  EXPECT_EQ(bipartite_match(3, chain).size(), 3u);
}

TEST(ScoreMatching, NoOffsetOverlapCanBeNegative) {
  auto ref = make_notes({{0.0, 0.01, 440.0}});
  auto est = make_notes({{0.04, 0.1, 440.0}});
  const auto s = evaluate_transcription(ref, est);
  EXPECT_NEAR(s.metrics.get("Average_Overlap_Ratio_no_offset"), -0.3, 1e-12);
}

TEST(ScoreMatching, ExactToleranceEdgesNeedRounding) {
  // 0.35 - 0.30 is 0.04999999999999993 and 0.40 - 0.35 is 0.05000000000000004
  // in float64; mir_eval rounds to 4 decimals, so both are hits.
  auto ref = make_notes({{0.30, 1.0, 440.0}, {0.40, 2.0, 880.0}});
  auto est = make_notes({{0.35, 1.0, 440.0}, {0.35, 2.0, 880.0}});
  const auto s = evaluate_transcription(ref, est);
  EXPECT_DOUBLE_EQ(s.metrics.get("F-measure"), 1.0);
  TranscriptionOptions strict;
  strict.strict = true;
  EXPECT_DOUBLE_EQ(evaluate_transcription(ref, est, strict).metrics.get("F-measure"), 0.0);
}

TEST(ScoreVelocity, UnitExampleFromMirEval) {
  ScoreNotes ref = make_notes({{0, 1, 100}, {0.5, 0.7, 110}, {1, 2, 80}});
  ScoreNotes est = ref;
  const double rv[] = {10, 90, 110}, ev[] = {10, 70, 110};
  for (int i = 0; i < 3; ++i) {
    ref.notes[i].velocity = rv[i];
    est.notes[i].velocity = ev[i];
  }
  ref.has_velocity = est.has_velocity = true;
  auto s = evaluate_transcription_velocity(ref, est);
  ASSERT_EQ(s.metrics.values.size(), 8u);
  EXPECT_NEAR(s.metrics.get("Precision"), 2.0 / 3, 1e-12);
  EXPECT_NEAR(s.metrics.get("Recall"), 2.0 / 3, 1e-12);
  EXPECT_NEAR(s.metrics.get("F-measure"), 2.0 / 3, 1e-12);
  EXPECT_NEAR(s.metrics.get("Average_Overlap_Ratio"), 1.0, 1e-12);
  TranscriptionOptions o;
  o.velocity_tolerance = 0.3;
  s = evaluate_transcription_velocity(ref, est, o);
  for (const auto& kv : s.metrics.values) EXPECT_NEAR(kv.second, 1.0, 1e-12) << kv.first;
}

TEST(ScoreVelocity, RankDeficientFitUsesMeanOfReference) {
  ScoreNotes ref = make_notes({{0, 1, 100}, {2, 3, 200}, {4, 5, 300}});
  ScoreNotes est = ref;
  const double rv[] = {10, 60, 110};
  for (int i = 0; i < 3; ++i) {
    ref.notes[i].velocity = rv[i];
    est.notes[i].velocity = 64;
  }
  ref.has_velocity = est.has_velocity = true;
  auto s = evaluate_transcription_velocity(ref, est);
  EXPECT_NEAR(s.metrics.get("F-measure"), 1.0 / 3, 1e-12);
  EXPECT_EQ(match_notes_velocity(ref.notes, est.notes, {}, true), M({{1, 1}}));
}

TEST(ScoreEmpty, EveryMetricIsZeroAndKeysAreComplete) {
  auto ref = example_ref();
  ScoreNotes empty;
  empty.source = "empty";
  for (int side = 0; side < 2; ++side) {
    const auto s = side ? evaluate_transcription(ref, empty) : evaluate_transcription(empty, ref);
    EXPECT_EQ(s.metrics.values.size(), 14u);
    for (const auto& kv : s.metrics.values) EXPECT_EQ(kv.second, 0.0) << kv.first;
  }
  TranscriptionOptions o;
  o.use_offset = false;
  EXPECT_EQ(evaluate_transcription(ref, ref, o).metrics.values.size(), 7u);
}

TEST(ScoreValidation, MirEvalErrorsInMirEvalOrder) {
  auto good = example_ref();
  auto neg = make_notes({{-0.1, 0.3, 440}}, "neg.txt");
  auto zero = make_notes({{0.5, 0.5, 440}}, "zero.txt");
  auto badp = make_notes({{0.1, 0.3, 0}}, "badp.txt");
  auto expect_error = [](const ScoreNotes& r, const ScoreNotes& e, const std::string& what) {
    try {
      evaluate_transcription(r, e);
      ADD_FAILURE() << "expected InputError containing " << what;
    } catch (const InputError& ex) {
      EXPECT_NE(std::string(ex.what()).find(what), std::string::npos) << ex.what();
    }
  };
  expect_error(neg, good, "Negative interval times found");
  expect_error(good, neg, "neg.txt");
  expect_error(zero, good, "All interval durations must be strictly positive");
  expect_error(badp, good, "Reference contains at least one non-positive pitch value");
  expect_error(good, badp, "Estimate contains at least one non-positive pitch value");
  // Intervals are checked (ref, est) before pitches.
  expect_error(badp, zero, "strictly positive");
  // Velocity checks come last; 0 and 200 pass.
  ScoreNotes rv = good, ev = good;
  rv.has_velocity = ev.has_velocity = true;
  for (auto& n : rv.notes) n.velocity = 0;
  for (auto& n : ev.notes) n.velocity = 200;
  EXPECT_NO_THROW(evaluate_transcription_velocity(rv, ev));
  ev.notes[1].velocity = -1;
  EXPECT_THROW(evaluate_transcription_velocity(rv, ev), InputError);
  TranscriptionOptions bad;
  bad.onset_tolerance_s = -1;
  try {
    evaluate_transcription(good, good, bad);
    ADD_FAILURE();
  } catch (const ConfigError& ex) {
    EXPECT_NE(std::string(ex.what()).find("onset_tolerance_s"), std::string::npos);
  }
}

TEST(ScoreTxt, ParsesMirEvalFormatWithCommasCrlfAndComments) {
  const auto s = parse_mir_eval_txt("# a comment\r\n0.5\t1.0\t440\r\n1.0, 2.0, 220.5\n\n", "x.txt");
  ASSERT_EQ(s.notes.size(), 2u);
  EXPECT_FALSE(s.has_velocity);
  EXPECT_DOUBLE_EQ(s.notes[1].pitch_hz, 220.5);
  EXPECT_DOUBLE_EQ(s.notes[1].offset_s, 2.0);
  const auto v = parse_mir_eval_txt("0 1 60 100\n1 2 62 90\n", "v.txt");
  EXPECT_TRUE(v.has_velocity);
  EXPECT_DOUBLE_EQ(v.notes[0].pitch_hz, 60.0);  // the pitch column is fed as Hz unchanged
  EXPECT_DOUBLE_EQ(v.notes[1].velocity, 90.0);
  const auto m = parse_mir_eval_txt("0 1 69\n", "m.txt", /*pitch_is_midi=*/true);
  EXPECT_DOUBLE_EQ(m.notes[0].pitch_hz, 440.0);
  try {
    parse_mir_eval_txt("0 1 440\n0 1 abc\n", "bad.txt");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.txt:2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_mir_eval_txt("0 1\n", "two.txt"), InputError);
  EXPECT_THROW(parse_mir_eval_txt("0 1 2\n0 1 2 3\n", "mixed.txt"), InputError);
}

TEST(ScoreMultiInstrument, ProgramAwareAndDrumsOnsetOnly) {
  auto note = [](double on, double off, int pitch, int program, bool drum) {
    ScoreNote n;
    n.onset_s = on;
    n.offset_s = off;
    n.pitch_hz = midi_to_hz(pitch);
    n.program = program;
    n.is_drum = drum;
    return n;
  };
  ScoreNotes ref, est;
  ref.notes = {note(0, 1, 60, 0, false), note(1, 2, 62, 0, false), note(0, 1, 48, 40, false),
               note(0.5, 0.6, 36, 0, true)};
  // Right piano note; a violin note transcribed as piano (wrong program);
  // drum with a very different offset (drums ignore offsets); a wrong offset.
  est.notes = {note(0, 1, 60, 0, false), note(0, 1, 48, 0, false), note(0.51, 3.0, 36, 0, true),
               note(1, 1.5, 62, 0, false)};
  const auto s = evaluate_multi_instrument(ref, est);
  EXPECT_EQ(s.matched, 2u);  // piano C4 + drum
  EXPECT_NEAR(s.metrics.get("Precision"), 0.5, 1e-12);
  EXPECT_NEAR(s.metrics.get("Recall"), 0.5, 1e-12);
  EXPECT_NEAR(s.metrics.get("F-measure"), 0.5, 1e-12);
  EXPECT_NEAR(s.metrics.get("Drum_F-measure"), 1.0, 1e-12);
  EXPECT_NEAR(s.metrics.get("Nondrum_Precision"), 1.0 / 3, 1e-12);
  EXPECT_NEAR(s.metrics.get("Nondrum_Recall"), 1.0 / 3, 1e-12);
  // GM family granularity: violin (40) and piano (0) still differ; flat: they match.
  EXPECT_EQ(evaluate_multi_instrument(ref, est, {}, ProgramGranularity::MidiClass).matched, 2u);
  EXPECT_EQ(evaluate_multi_instrument(ref, est, {}, ProgramGranularity::Flat).matched, 3u);
  EXPECT_THROW(program_granularity_from_string("coarse"), ConfigError);
  // Program-agnostic mir_eval (with offsets) would match 2 notes as well but
  // different ones (violin note counted via the piano guess; not the drum).
  const auto flat = evaluate_transcription(ref, est);
  EXPECT_NEAR(flat.metrics.get("Precision"), 0.5, 1e-12);
}

// ---------------------------------------------------------------------------
// Conformance suite copied from mir_eval (scoring.md §1.9).

TEST(ScoreConformance, TranscriptionCasesMatchExpectedJson) {
  TS_REQUIRE_SHARED();
  const std::string dir = test::shared_dir() + "/conformance/mir_eval/transcription";
  const auto refs = sorted_files(dir, "ref"), ests = sorted_files(dir, "est"), outs = sorted_files(dir, "output");
  ASSERT_EQ(refs.size(), 10u);
  ASSERT_EQ(ests.size(), refs.size());
  ASSERT_EQ(outs.size(), refs.size());
  for (size_t c = 0; c < refs.size(); ++c) {
    const auto ref = read_mir_eval_txt(refs[c]);
    const auto est = read_mir_eval_txt(ests[c]);
    const auto expected = nlohmann::ordered_json::parse(slurp(outs[c]));
    const auto got = evaluate_transcription(ref, est);
    ASSERT_EQ(got.metrics.values.size(), expected.size()) << outs[c];
    size_t k = 0;
    for (auto it = expected.begin(); it != expected.end(); ++it, ++k) {
      EXPECT_EQ(got.metrics.values[k].first, it.key()) << outs[c];
      EXPECT_NEAR(got.metrics.values[k].second, it.value().get<double>(), 1e-9) << outs[c] << " " << it.key();
    }
  }
}

TEST(ScoreConformance, TranscriptionVelocityCasesMatchExpectedJson) {
  TS_REQUIRE_SHARED();
  const std::string dir = test::shared_dir() + "/conformance/mir_eval/transcription_velocity";
  const auto refs = sorted_files(dir, "ref"), ests = sorted_files(dir, "est"), outs = sorted_files(dir, "output");
  ASSERT_EQ(refs.size(), 10u);
  ASSERT_EQ(ests.size(), refs.size());
  ASSERT_EQ(outs.size(), refs.size());
  for (size_t c = 0; c < refs.size(); ++c) {
    const auto ref = read_mir_eval_txt(refs[c]);
    const auto est = read_mir_eval_txt(ests[c]);
    ASSERT_TRUE(ref.has_velocity && est.has_velocity);
    const auto expected = nlohmann::ordered_json::parse(slurp(outs[c]));
    const auto got = evaluate_transcription_velocity(ref, est);
    ASSERT_EQ(got.metrics.values.size(), expected.size()) << outs[c];
    size_t k = 0;
    for (auto it = expected.begin(); it != expected.end(); ++it, ++k) {
      EXPECT_EQ(got.metrics.values[k].first, it.key()) << outs[c];
      EXPECT_NEAR(got.metrics.values[k].second, it.value().get<double>(), 1e-9) << outs[c] << " " << it.key();
    }
  }
}

// ---------------------------------------------------------------------------
// Randomised differential test against Debian's python3-mir-eval.

namespace {

struct Case {
  std::vector<std::array<double, 4>> ref, est;
  json kw = json::object();
  bool expect_error = false;
};

double hz_of_quarter_tone(int q) { return 440.0 * std::pow(2.0, (q - 138) / 24.0); }

Case random_case(std::mt19937_64& rng, int index) {
  Case c;
  auto U = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto R = [&]() { return std::uniform_real_distribution<double>(0, 1)(rng); };
  const int kind = index % 10;
  const int n_ref = kind == 0 ? U(0, 3) : U(1, kind < 8 ? 25 : 60);
  const double span_s = 0.05 * U(2, 40);
  // Times on a 10 ms grid (exact 50 ms distances are common), pitches on a
  // quarter-tone grid (exactly 50 cents apart), random float velocities.
  for (int i = 0; i < n_ref; ++i) {
    const double on = U(0, static_cast<int>(span_s * 100)) / 100.0;
    const int dur_cs = U(1, 80);
    const double off2 = on + dur_cs / 100.0;
    const int q = U(100, 180);
    c.ref.push_back({on, off2, hz_of_quarter_tone(q), std::round(R() * 127000) / 1000.0});
  }
  const int n_est = kind == 1 ? U(0, 3) : U(1, kind < 8 ? 25 : 60);
  for (int j = 0; j < n_est; ++j) {
    std::array<double, 4> n;
    if (!c.ref.empty() && U(0, 3) != 0) {
      // Perturb a reference note, often by exactly a tolerance.
      const auto& r = c.ref[U(0, static_cast<int>(c.ref.size()) - 1)];
      const double dur = r[1] - r[0];
      const int mode = U(0, 7);
      double on = r[0] + (U(-6, 6)) / 100.0;
      if (mode == 0) on = r[0] + 0.05;
      if (mode == 1) on = r[0] - 0.05;
      if (on < 0) on = 0;
      double off = r[1] + U(-6, 6) / 100.0;
      if (mode == 2) off = r[1] + 0.2 * dur;      // exactly at the offset ratio
      if (mode == 3) off = r[1] - std::max(0.2 * dur, 0.05);
      if (mode == 4) off = r[1];
      if (off <= on) off = on + 0.01 * U(1, 30);
      double hz = r[2];
      const int pm = U(0, 4);
      if (pm == 0) hz = r[2] * std::pow(2.0, 50.0 / 1200.0);  // exactly 50 cents
      if (pm == 1) hz = r[2] / std::pow(2.0, 1.0 / 24.0);
      if (pm == 2) hz = hz_of_quarter_tone(U(100, 180));
      n = {on, off, hz, std::round(R() * 127000) / 1000.0};
      if (mode == 5 && U(0, 1)) n = r;  // duplicate of a reference note
    } else {
      const double on = U(0, static_cast<int>(span_s * 100)) / 100.0;
      n = {on, on + U(1, 80) / 100.0, hz_of_quarter_tone(U(100, 180)), std::round(R() * 127000) / 1000.0};
    }
    c.est.push_back(n);
    if (U(0, 9) == 0) c.est.push_back(n);  // duplicate estimate
  }
  // Velocities: sometimes integers (ties in the regression are then likelier
  // but the decisions stay far from 0.1 for full-rank fits).
  switch (index % 7) {
    case 1: c.kw["strict"] = true; break;
    case 2: c.kw["onset_tolerance"] = 0.1; c.kw["pitch_tolerance"] = 100.0; break;
    case 3: c.kw["offset_ratio"] = 0.5; c.kw["offset_min_tolerance"] = 0.1; break;
    case 4: c.kw["beta"] = 0.5; c.kw["velocity_tolerance"] = 0.25; break;
    case 5: c.kw["beta"] = 2.0; c.kw["onset_tolerance"] = 0.03; break;
    case 6: {
      // Octave grid with a 1200-cent tolerance: exact pitch edges on which
      // every log2 implementation agrees (log2 of a power of two is exact).
      c.kw["pitch_tolerance"] = 1200.0;
      for (auto* v : {&c.ref, &c.est})
        for (auto& n : *v) n[2] = std::ldexp(1.0, U(6, 11));
      break;
    }
    default: break;
  }
  // A few invalid inputs: both implementations must reject them.
  if (index % 97 == 13 && !c.ref.empty()) {
    c.ref[0][1] = c.ref[0][0];
    c.expect_error = true;
  }
  if (index % 97 == 42 && !c.est.empty()) {
    c.est[0][2] = 0;
    c.expect_error = true;
  }
  return c;
}

ScoreNotes to_notes(const std::vector<std::array<double, 4>>& v, const char* name) {
  ScoreNotes s;
  s.source = name;
  s.has_velocity = true;
  for (const auto& a : v) {
    ScoreNote n;
    n.onset_s = a[0];
    n.offset_s = a[1];
    n.pitch_hz = a[2];
    n.velocity = a[3];
    s.notes.push_back(n);
  }
  return s;
}

TranscriptionOptions options_from_kw(const json& kw) {
  TranscriptionOptions o;
  o.onset_tolerance_s = kw.value("onset_tolerance", 0.05);
  o.pitch_tolerance_cents = kw.value("pitch_tolerance", 50.0);
  o.offset_ratio = kw.value("offset_ratio", 0.2);
  o.offset_min_tolerance_s = kw.value("offset_min_tolerance", 0.05);
  o.strict = kw.value("strict", false);
  o.beta = kw.value("beta", 1.0);
  o.velocity_tolerance = kw.value("velocity_tolerance", 0.1);
  return o;
}

json pairs_json(const Matching& m) {
  json a = json::array();
  for (const auto& p : m) a.push_back({p.first, p.second});
  return a;
}

}  // namespace

TEST(ScoreDifferential, RandomCasesMatchPythonMirEval) {
  if (test::run_command(test::python() + " -c 'import mir_eval'").exit_code != 0)
    GTEST_SKIP() << "Debian python3-mir-eval is not installed";
  const int n_cases = 3000;
  const LogLevel saved_level = log_level();
  set_log_level(LogLevel::Error);  // mir_eval's "notes are empty" warnings
  std::mt19937_64 rng(20261121);
  std::vector<Case> cases;
  json doc = {{"cases", json::array()}};
  for (int i = 0; i < n_cases; ++i) {
    cases.push_back(random_case(rng, i));
    doc["cases"].push_back({{"ref", cases.back().ref}, {"est", cases.back().est}, {"kw", cases.back().kw}});
  }
  const std::string dir = test::temp_dir("score_diff");
  write_text(dir + "/cases.json", doc.dump());
  const std::string script = std::string(TUNESCRIBE_SOURCE_DIR) + "/tools/fixtures/score_mir_eval_ref.py";
  const auto r = test::run_command(test::python() + " '" + script + "' '" + dir + "/cases.json'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::ordered_json results = nlohmann::ordered_json::parse(r.out)["results"];
  ASSERT_EQ(results.size(), cases.size());
  int n_matched_pairs = 0, n_errors = 0, failures = 0, n_log2_sensitive = 0;
  for (int i = 0; i < n_cases && failures < 10; ++i) {
    const Case& c = cases[i];
    // Where numpy's SIMD log2 and the C library's log2 disagree on a pitch
    // edge, compare with mir_eval run on the C library's log2 (see the script).
    const bool sensitive = results[i].contains("libm");
    n_log2_sensitive += sensitive;
    const nlohmann::ordered_json& exp = sensitive ? results[i]["libm"] : results[i];
    const auto ref = to_notes(c.ref, "ref"), est = to_notes(c.est, "est");
    const TranscriptionOptions o = options_from_kw(c.kw);
    const std::string label = "case " + std::to_string(i) + " " + json({{"ref", c.ref}, {"est", c.est}, {"kw", c.kw}}).dump();
    if (exp.contains("error")) {
      ++n_errors;
      EXPECT_TRUE(c.expect_error) << label << " python: " << exp["error"];
      EXPECT_THROW(evaluate_transcription_velocity(ref, est, o), InputError) << label;
      continue;
    }
    EXPECT_FALSE(c.expect_error) << label;
    const auto t = evaluate_transcription(ref, est, o);
    const auto v = evaluate_transcription_velocity(ref, est, o);
    bool ok = true;
    auto cmp = [&](const Metrics& got, const nlohmann::ordered_json& want, const char* what) {
      if (got.values.size() != want.size()) {
        ok = false;
        ADD_FAILURE() << what << " key count " << label;
        return;
      }
      size_t k = 0;
      for (auto it = want.begin(); it != want.end(); ++it, ++k) {
        if (got.values[k].first != it.key() || !(std::fabs(got.values[k].second - it.value().get<double>()) <= 1e-9)) {
          ok = false;
          ADD_FAILURE() << what << " " << it.key() << " got " << got.values[k].second << " want " << it.value()
                        << " " << label;
        }
      }
    };
    cmp(t.metrics, exp["transcription"], "transcription");
    cmp(v.metrics, exp["transcription_velocity"], "transcription_velocity");
    const nlohmann::ordered_json& m = exp["matches"];
    if (!m.empty()) {
      const std::pair<const char*, Matching> got[] = {
          {"note", match_notes(ref.notes, est.notes, o, MatchKind::Note)},
          {"no_offset", match_notes(ref.notes, est.notes, o, MatchKind::NoteNoOffset)},
          {"onset", match_notes(ref.notes, est.notes, o, MatchKind::Onset)},
          {"offset", match_notes(ref.notes, est.notes, o, MatchKind::Offset)},
          {"velocity", match_notes_velocity(ref.notes, est.notes, o, true)},
          {"velocity_no_offset", match_notes_velocity(ref.notes, est.notes, o, false)}};
      for (const auto& g : got) {
        n_matched_pairs += static_cast<int>(g.second.size());
        if (pairs_json(g.second) != json(m[g.first])) {
          ok = false;
          ADD_FAILURE() << "matching " << g.first << " got " << pairs_json(g.second) << " want " << m[g.first] << " "
                        << label;
        }
      }
    }
    if (!ok) ++failures;
  }
  std::printf("[differential] %d cases, %d matched pairs compared, %d invalid inputs, %d cases decided by "
              "log2 rounding (compared with mir_eval on libm log2)\n",
              n_cases, n_matched_pairs, n_errors, n_log2_sensitive);
  EXPECT_GT(n_matched_pairs, 10000);  // the cases really exercise the matcher
  EXPECT_LT(n_log2_sensitive, n_cases / 4);
  EXPECT_GT(n_errors, 0);
  set_log_level(saved_level);
}

// ---------------------------------------------------------------------------
// Scale: candidate pairs come from a window scan (no n_ref × n_est matrix).

TEST(ScoreScale, TwentyThousandNotesAreMatchedExactly) {
  std::mt19937 rng(7);
  ScoreNotes ref, est;
  ref.source = "ref";
  est.source = "est";
  for (int i = 0; i < 20000; ++i) {
    ScoreNote n;
    n.onset_s = i * 0.05 + (rng() % 10) * 0.001;
    n.offset_s = n.onset_s + 0.1 + (rng() % 50) * 0.01;
    n.pitch_hz = midi_to_hz(40 + rng() % 40);
    ref.notes.push_back(n);
    if (i % 10 != 0) est.notes.push_back(n);  // 90 % recall, 100 % precision
  }
  const auto s = evaluate_transcription(ref, est);
  EXPECT_DOUBLE_EQ(s.metrics.get("Precision"), 1.0);
  EXPECT_DOUBLE_EQ(s.metrics.get("Recall"), 0.9);
}

// ---------------------------------------------------------------------------
// The `tunescribe score` command.

namespace {

using tunescribe::test::q;

test::CommandResult score_cmd(const std::string& args) {
  return test::run_command(q(test::tunescribe_bin()) + " score " + args);
}

// Two small note sets in mir_eval .txt format (Hz), with velocities.
const char* kRefTxt = "0.10 0.50 440.0 80\n0.60 1.00 493.88 90\n1.10 1.50 523.25 100\n1.60 2.00 587.33 70\n";
const char* kEstTxt = "0.11 0.52 440.0 82\n0.62 0.90 493.88 91\n1.30 1.50 523.25 99\n";

struct CliFiles {
  std::string dir, ref, est;
};

CliFiles write_pair() {
  CliFiles f;
  f.dir = test::temp_dir("score_cli");
  f.ref = f.dir + "/ref.txt";
  f.est = f.dir + "/est.txt";
  write_text(f.ref, kRefTxt);
  write_text(f.est, kEstTxt);
  return f;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

}  // namespace

TEST(ScoreCli, TableShowsEveryMirEvalKeyWithLibraryValues) {
  const auto f = write_pair();
  const auto r = score_cmd(q(f.ref) + " " + q(f.est));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lib = evaluate_transcription(parse_mir_eval_txt(kRefTxt, "r"), parse_mir_eval_txt(kEstTxt, "e"));
  const auto vel = evaluate_transcription_velocity(parse_mir_eval_txt(kRefTxt, "r"), parse_mir_eval_txt(kEstTxt, "e"));
  for (const auto& kv : lib.metrics.values) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6f", kv.second);
    const std::string line_start = "  " + kv.first + " ";
    const size_t p = r.out.find(line_start);
    ASSERT_NE(p, std::string::npos) << kv.first << "\n" << r.out;
    const std::string line = r.out.substr(p, r.out.find('\n', p) - p);
    EXPECT_NE(line.find(buf), std::string::npos) << line;
  }
  EXPECT_NE(r.out.find("transcription_velocity"), std::string::npos);
  EXPECT_GT(vel.metrics.values.size(), 0u);
}

TEST(ScoreCli, JsonUsesMirEvalNamesAndMatchesConformance) {
  TS_REQUIRE_SHARED();
  const std::string d = test::shared_dir() + "/conformance/mir_eval/transcription_velocity";
  const auto r = score_cmd("--json " + q(d + "/ref3.txt") + " " + q(d + "/est3.txt"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::ordered_json::parse(r.out);
  const auto expected = nlohmann::ordered_json::parse(slurp(d + "/output3.json"));
  const auto& got = j["files"][0]["transcription_velocity"];
  ASSERT_EQ(got.size(), expected.size());
  auto it = got.begin();
  for (auto e = expected.begin(); e != expected.end(); ++e, ++it) {
    EXPECT_EQ(it.key(), e.key());
    EXPECT_NEAR(it.value().get<double>(), e.value().get<double>(), 1e-9) << e.key();
  }
  EXPECT_EQ(j["files"][0]["transcription"].size(), 14u);
  EXPECT_EQ(j["aggregate"]["mean"]["transcription"].size(), 14u);
  EXPECT_EQ(j["aggregate"]["pooled"]["transcription_velocity"].size(), 8u);
  EXPECT_EQ(j["options"]["onset_tolerance"].get<double>(), 0.05);
}

TEST(ScoreCli, CsvHasOneRowPerFilePlusAggregates) {
  const auto f = write_pair();
  const auto r = score_cmd("--csv " + q(f.ref) + " " + q(f.est));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = split(r.out, '\n');
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  ASSERT_EQ(lines.size(), 4u) << r.out;  // header, file, mean, pooled
  const auto header = split(lines[0], ',');
  EXPECT_EQ(header[0], "file");
  EXPECT_NE(std::find(header.begin(), header.end(), "F-measure_no_offset"), header.end());
  EXPECT_NE(std::find(header.begin(), header.end(), "velocity.F-measure"), header.end());
  for (const auto& l : lines) EXPECT_EQ(split(l, ',').size(), header.size()) << l;
  EXPECT_EQ(split(lines[2], ',')[0], "mean");
  EXPECT_EQ(split(lines[3], ',')[0], "pooled");
  // Numbers are written in their shortest round-trip form (0.9474738, not 0.94747380000000025).
  size_t numbers = 0;
  for (size_t i = 1; i < lines.size(); ++i)
    for (const auto& field : split(lines[i], ',')) {
      if (field.empty() || !(std::isdigit(static_cast<unsigned char>(field[0])) || field[0] == '-')) continue;
      const double d = std::stod(field);
      char buf[40];
      const auto res = std::to_chars(buf, buf + sizeof buf, d);
      EXPECT_EQ(field, std::string(buf, res.ptr)) << lines[i];
      ++numbers;
    }
  EXPECT_GT(numbers, 30u);
  // Options reach the metrics: a 300 ms onset window matches every estimate.
  const auto wide = score_cmd("--json --onset-tolerance 0.3 " + q(f.ref) + " " + q(f.est));
  ASSERT_EQ(wide.exit_code, 0) << wide.err;
  EXPECT_DOUBLE_EQ(json::parse(wide.out)["files"][0]["transcription"]["Onset_Precision"].get<double>(), 1.0);
  // --no-offset is mir_eval's offset_ratio=None: 7 transcription keys, 4 velocity keys.
  const auto no_off = score_cmd("--json --no-offset " + q(f.ref) + " " + q(f.est));
  ASSERT_EQ(no_off.exit_code, 0) << no_off.err;
  const auto jf = json::parse(no_off.out)["files"][0];
  EXPECT_EQ(jf["transcription"].size(), 7u);
  EXPECT_FALSE(jf["transcription"].contains("F-measure"));
  EXPECT_EQ(jf["transcription_velocity"].size(), 4u);
}

TEST(ScoreCli, FailUnderGatesExitCodes) {
  const auto f = write_pair();
  const std::string files = " " + q(f.ref) + " " + q(f.est);
  // Onset P = 2/3 (est 3 starts 200 ms late), R = 2/4.
  EXPECT_EQ(score_cmd("--fail-under Onset_Precision=0.6" + files).exit_code, 0);
  const auto tripped = score_cmd("--fail-under Onset_Precision=0.6 --fail-under Onset_Recall=0.6" + files);
  EXPECT_EQ(tripped.exit_code, 1);
  EXPECT_NE(tripped.err.find("Onset_Recall"), std::string::npos) << tripped.err;
  EXPECT_EQ(score_cmd("--fail-under pooled:velocity.F-measure_no_offset=0.1" + files).exit_code, 0);
  EXPECT_EQ(score_cmd("--fail-under transcription.Onset_Recall=0.6" + files).exit_code, 1);
  EXPECT_EQ(score_cmd("--fail-under No_Such_Metric=0.5" + files).exit_code, 2);
  EXPECT_EQ(score_cmd("--fail-under F-measure" + files).exit_code, 2);
  EXPECT_EQ(score_cmd("--fail-under F-measure=abc" + files).exit_code, 2);
}

TEST(ScoreCli, DirectoriesPairByStemAndReportUnpaired) {
  const std::string d = test::temp_dir("score_dirs");
  fs::create_directories(d + "/ref");
  fs::create_directories(d + "/est");
  write_text(d + "/ref/a.txt", kRefTxt);
  write_text(d + "/est/a.txt", kEstTxt);
  write_text(d + "/ref/b.txt", kEstTxt);
  write_text(d + "/est/b.txt", kEstTxt);
  write_text(d + "/ref/only_ref.txt", kRefTxt);
  write_text(d + "/est/only_est.txt", kRefTxt);
  write_text(d + "/est/notes.md", "not a score input");
  const auto r = score_cmd("--json --ref-dir " + q(d + "/ref") + " --est-dir " + q(d + "/est"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = json::parse(r.out);
  ASSERT_EQ(j["files"].size(), 2u);
  EXPECT_EQ(j["unpaired"]["reference_only"].size(), 1u);
  EXPECT_NE(j["unpaired"]["reference_only"][0].get<std::string>().find("only_ref.txt"), std::string::npos);
  EXPECT_NE(j["unpaired"]["estimate_only"][0].get<std::string>().find("only_est.txt"), std::string::npos);
  EXPECT_NE(r.err.find("only_ref.txt"), std::string::npos);
  // Mean over files and pooled over notes, from the library's own per-file results.
  const auto a = evaluate_transcription(parse_mir_eval_txt(kRefTxt, "r"), parse_mir_eval_txt(kEstTxt, "e"));
  const auto b = evaluate_transcription(parse_mir_eval_txt(kEstTxt, "r"), parse_mir_eval_txt(kEstTxt, "e"));
  const auto& mean = j["aggregate"]["mean"]["transcription"];
  EXPECT_NEAR(mean["F-measure"].get<double>(), (a.metrics.get("F-measure") + b.metrics.get("F-measure")) / 2, 1e-12);
  const double pooled_p = double(a.note.matched + b.note.matched) / double(a.note.n_est + b.note.n_est);
  EXPECT_NEAR(j["aggregate"]["pooled"]["transcription"]["Precision"].get<double>(), pooled_p, 1e-12);
  // Table mode lists the unpaired files too.
  const auto t = score_cmd("--ref-dir " + q(d + "/ref") + " --est-dir " + q(d + "/est"));
  EXPECT_EQ(t.exit_code, 0);
  EXPECT_NE(t.out.find("pooled"), std::string::npos);
  EXPECT_NE(t.out.find("only_est.txt"), std::string::npos);
}

TEST(ScoreCli, BadInputsExitTwoNamingTheFile) {
  const auto f = write_pair();
  const std::string bad = f.dir + "/broken.txt";
  write_text(bad, "0.1 0.5 440\n0.2 oops 440\n");
  auto r = score_cmd(q(f.ref) + " " + q(bad));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("broken.txt:2"), std::string::npos) << r.err;
  const std::string neg = f.dir + "/negative.txt";
  write_text(neg, "0.5 0.4 440\n");
  r = score_cmd(q(f.ref) + " " + q(neg));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("negative.txt"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("strictly positive"), std::string::npos) << r.err;
  r = score_cmd(q(f.ref) + " " + q(f.dir + "/missing.mid"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("missing.mid"), std::string::npos) << r.err;
  const std::string wav = f.dir + "/x.wav";
  write_text(wav, "RIFF");
  r = score_cmd(q(f.ref) + " " + q(wav));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("x.wav"), std::string::npos) << r.err;
  EXPECT_EQ(score_cmd(q(f.ref)).exit_code, 2);                         // one file
  EXPECT_EQ(score_cmd("--onset-tolerance -1 " + q(f.ref) + " " + q(f.est)).exit_code, 2);
  EXPECT_EQ(score_cmd("--reward-mode nope " + q(f.ref) + " " + q(f.est)).exit_code, 2);
  EXPECT_EQ(score_cmd("--bogus-flag " + q(f.ref) + " " + q(f.est)).exit_code, 2);
  // In folder mode a bad file is reported, the others are still scored, exit 2.
  const std::string d = test::temp_dir("score_dirs_bad");
  fs::create_directories(d + "/ref");
  fs::create_directories(d + "/est");
  write_text(d + "/ref/a.txt", kRefTxt);
  write_text(d + "/est/a.txt", kEstTxt);
  write_text(d + "/ref/b.txt", kRefTxt);
  write_text(d + "/est/b.txt", "1 2\n");
  r = score_cmd("--csv --ref-dir " + q(d + "/ref") + " --est-dir " + q(d + "/est"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("b.txt"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("\na,"), std::string::npos) << r.out;
}

TEST(ScoreCli, JsonNoteListsGetProgramAwareAndVelocityMetrics) {
  const std::string d = test::temp_dir("score_json");
  const json ref = {{"notes",
                     {{{"onset_s", 0.0}, {"offset_s", 0.5}, {"pitch", 60}, {"velocity", 80}, {"program", 0}},
                      {{"onset_s", 0.5}, {"offset_s", 1.0}, {"pitch", 64}, {"velocity", 90}, {"program", 40}},
                      {{"onset_s", 1.0}, {"offset_s", 1.1}, {"pitch", 36}, {"velocity", 100}, {"is_drum", true}}}}};
  json est = ref;
  est["notes"][1]["program"] = 0;         // right notes, wrong instrument
  est["notes"][2]["offset_s"] = 1.5;      // drums: offsets ignored by the multi-instrument F1
  write_text(d + "/ref.json", ref.dump());
  write_text(d + "/est.json", est.dump());
  const auto r = score_cmd("--json " + q(d + "/ref.json") + " " + q(d + "/est.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = json::parse(r.out)["files"][0];
  EXPECT_NEAR(j["transcription"]["F-measure_no_offset"].get<double>(), 1.0, 1e-12);
  EXPECT_NEAR(j["transcription"]["F-measure"].get<double>(), 2.0 / 3, 1e-12);
  EXPECT_NEAR(j["multi_instrument"]["Precision"].get<double>(), 2.0 / 3, 1e-12);  // piano C4 + drum
  EXPECT_TRUE(j.contains("transcription_velocity"));
}

TEST(ScoreCli, AbcPairsGetTheReward) {
  const std::string d = test::temp_dir("score_abc");
  const std::string e2 = "X:1\nM:4/4\nL:1/16\nK:C\nQ:120\nV:1 name=\"Piano\"\nCDEF|\n";
  write_text(d + "/ref.abc", e2);
  write_text(d + "/est.abc", e2);
  write_text(d + "/est_cut.abc", "X:1\nM:4/4\nL:1/16\nK:C\nQ:120\nV:1 name=\"Piano\"\nCDEF|");  // E1
  for (const char* mode : {"flynn2024", "corrected"}) {
    const auto r = score_cmd(std::string("--json --reward-mode ") + mode + " " + q(d + "/ref.abc") + " " + q(d + "/est.abc"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NEAR(json::parse(r.out)["files"][0]["reward"]["reward"].get<double>(), 1.0, 1e-6) << mode;
  }
  // E1 (no final newline): 0.5 with the article's code, 1.0 corrected.
  auto r = score_cmd("--json --reward-mode flynn2024 " + q(d + "/est_cut.abc") + " " + q(d + "/est_cut.abc"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NEAR(json::parse(r.out)["files"][0]["reward"]["reward"].get<double>(), 0.5, 1e-6);
  r = score_cmd("--json " + q(d + "/est_cut.abc") + " " + q(d + "/est_cut.abc"));
  EXPECT_NEAR(json::parse(r.out)["files"][0]["reward"]["reward"].get<double>(), 1.0, 1e-6);
  EXPECT_EQ(score_cmd("--fail-under reward.reward=0.9 --reward-mode flynn2024 " + q(d + "/est_cut.abc") + " " +
                      q(d + "/est_cut.abc")).exit_code, 1);
}

TEST(ScoreCli, AbcAgainstItsAbc2midiRendering) {
  if (!test::have_program("abc2midi")) GTEST_SKIP() << "abc2midi is not installed";
  const std::string d = test::temp_dir("score_abc_midi");
  // Repeats, an ending, a key signature with accidentals and a tie.
  const std::string abc =
      "X:1\nT:t\nM:3/4\nL:1/8\nQ:1/4=100\nK:G\nV:1 name=\"Violin\"\n%%MIDI program 40\n"
      "|:G2 A2 B2-|B2 c2 A2|1 F2 D2 E2:|2 =F2 G2 G2|]\n";
  write_text(d + "/t.abc", abc);
  const auto r0 = test::run_command("abc2midi " + q(d + "/t.abc") + " -o " + q(d + "/t.mid") + " -quiet -silent");
  ASSERT_EQ(r0.exit_code, 0) << r0.err;
  const auto r = score_cmd("--json " + q(d + "/t.mid") + " " + q(d + "/t.abc"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = json::parse(r.out)["files"][0];
  EXPECT_GT(j["n_ref"].get<int>(), 12);  // the repeat is played
  EXPECT_EQ(j["n_ref"], j["n_est"]);
  EXPECT_NEAR(j["transcription"]["F-measure_no_offset"].get<double>(), 1.0, 1e-12);
  EXPECT_NEAR(j["multi_instrument"]["F-measure"].get<double>(), 1.0, 1e-12);
  EXPECT_NEAR(j["reward"]["pitch"].get<double>(), 0.0, 1e-12);  // the MIDI side through the ABC emitter
}
