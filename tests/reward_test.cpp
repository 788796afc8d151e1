// Tests of reward.h: the flynn2024 mode against the worked values of
// scoring.md §2.4 (obtained by running the article's own code), and the
// corrected mode's rules (§2.6).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "test_util.h"
#include "tunescribe/errors.h"
#include "tunescribe/reward.h"

using namespace tunescribe;
using namespace tunescribe::reward_detail;

namespace {

const std::string kE1 = "X:1\nM:4/4\nL:1/16\nK:C\nQ:120\nV:1 name=\"Piano\"\nCDEF|";
const std::string kG2 =
    "X:1\nM:4/4\nL:1/16\nQ:1/4=100\nK: none\nV:1 name=\"Violin\"\nc2d2e2f2 | g4 a4 |\nV:2 name=\"Cello\"\nC,4 E,4 | "
    "G,8 |\n";
const std::string kP2 =
    "X:1\nM:3/4\nL:1/16\nQ:1/4=112\nK: none\nV:1 name=\"Viola\"\nc2d2e2 | g4 a4 b4 |\nV:2 "
    "name=\"Contrabass\"\nC,4 E,4 | G,8 |\n";
const std::string kP3 = "M:4/4\nQ:100\nV:1 name=\"Flute\"\n^c2d2e2f2 | g4 a4 |\n";
const std::string kG3 = "M:6/8\nQ:130\nV:1 name=\"Violin\"\n_d2d2e2f2 | g4 a4 |\nV:2 name=\"Cello\"\nC,4 E,4 | G,8 |\n";

// ABCLoss()(first, second) = compute_reward(ref = first, est = second).
RewardResult flynn(const std::string& first, const std::string& second) {
  return abc_reward(first, second, RewardMode::Flynn2024);
}

void expect_components(const RewardResult& r, double pitch, double metre, double tempo, double instr,
                       double total, double tol = 1e-5) {
  EXPECT_NEAR(r.pitch, pitch, tol);
  EXPECT_NEAR(r.metre, metre, tol);
  EXPECT_NEAR(r.tempo, tempo, tol);
  EXPECT_NEAR(r.instrument, instr, tol);
  EXPECT_NEAR(r.total, total, tol);
  EXPECT_NEAR(r.reward, 1.0 - total, tol);
}

}  // namespace

TEST(RewardFlynn, TempoTable) {
  const double delta[] = {0, 1, 5, 10, 11, 20, 50, 100, 300};
  const double loss[] = {0, 0.025, 0.125, 0.25, 0.509901, 0.590635, 0.775336, 0.917351, 0.998486};
  for (int i = 0; i < 9; ++i) EXPECT_NEAR(flynn_tempo_loss(delta[i]), loss[i], 1e-6) << delta[i];
  // Corrected: continuous at 10 BPM.
  EXPECT_NEAR(corrected_tempo_loss(10), 0.5, 1e-12);
  EXPECT_NEAR(corrected_tempo_loss(10.0001), 0.5, 1e-5);
}

TEST(RewardFlynn, MetreTable) {
  struct Row {
    int pn, pd, gn, gd;
    double loss;
  } rows[] = {{4, 4, 4, 4, 0},        {3, 4, 4, 4, 0.35},       {5, 4, 4, 4, 0.35},
              {2, 2, 4, 4, 0.394818}, {2, 4, 4, 4, 0.571242},   {7, 8, 3, 4, 0.63735},
              {6, 8, 4, 4, 0.689636}, {2, 4, 6, 8, 0.73735},    {12, 8, 4, 4, 0.871105}};
  for (const auto& r : rows) EXPECT_NEAR(metre_loss(r.pn, r.pd, r.gn, r.gd), r.loss, 1e-6) << r.pn << "/" << r.pd;
}

TEST(RewardFlynn, NoteTokens) {
  EXPECT_EQ(flynn_note_to_number("C"), 60);
  EXPECT_EQ(flynn_note_to_number("c"), 60);
  EXPECT_EQ(flynn_note_to_number("^C"), 60);
  EXPECT_EQ(flynn_note_to_number("_E"), 60);
  EXPECT_EQ(flynn_note_to_number("^^C"), 61);
  EXPECT_EQ(flynn_note_to_number("__B"), 59);
  EXPECT_EQ(flynn_note_to_number("C,"), 48);
  EXPECT_EQ(flynn_note_to_number("c'"), 72);
  EXPECT_EQ(flynn_note_to_number("B"), 71);
  EXPECT_EQ(flynn_note_to_number("b,"), 59);
  EXPECT_EQ(flynn_note_numbers("%%octave-default C4\nGAA^2E3A2<A^2 |"),
            (std::vector<int>{60, 69, 64, 62, 64, 65, 69, 60, 67, 69, 69, 64, 69, 69}));
}

TEST(RewardFlynn, VoiceSplitterQuirks) {
  // B3: the last voice is dropped without a final newline.
  EXPECT_EQ(flynn_split_voices("V:1\nabc\nV:2\ndef").size(), 1u);
  EXPECT_EQ(flynn_split_voices("V:1\nabc\nV:2\ndef\n").size(), 2u);
  // `V: 2` ends the previous voice but is not captured; [V:2] mid-line does not split.
  EXPECT_EQ(flynn_split_voices("V:1\nabc\nV: 2\ndef\n"), (std::vector<std::string>{"abc\n"}));
  EXPECT_EQ(flynn_split_voices("V:1\nab [V:2] c\n").size(), 1u);
  // Lines after a voice belong to it.
  EXPECT_EQ(flynn_split_voices("V:1 name=\"x\"\nabc\nw: la la\n"), (std::vector<std::string>{"abc\nw: la la\n"}));
}

TEST(RewardFlynn, InstrumentNames) {
  EXPECT_EQ(flynn_instrument_names("V:1 name=\"Violin\"\nV:2 clef=bass name=Cello clef=bass\nV:3\n"),
            (std::vector<std::string>{"Violin", "Cello clef=bass"}));
  EXPECT_EQ(flynn_instrument_names("V:1 name=\"A\" name=\"B\"\n"), (std::vector<std::string>{"B"}));
}

TEST(RewardFlynn, NameToGmProgram) {
  for (const char* exact : {"Violin", "Viola", "Cello", "Flute", "Oboe", "Clarinet", "Bassoon", "Trumpet",
                            "Trombone", "Tuba", "French Horn", "Alto Sax", "Acoustic Grand Piano"}) {
    const int p = flynn_gm_program(exact);
    ASSERT_GE(p, 0) << exact;
    EXPECT_EQ(pretty_midi_gm_names()[p], exact);
  }
  EXPECT_EQ(flynn_gm_program("Piano"), 105);
  EXPECT_EQ(flynn_gm_program("Guitar"), 104);
  EXPECT_EQ(flynn_gm_program("Saxophone"), 13);
  EXPECT_EQ(flynn_gm_program("Bass"), 70);
  EXPECT_EQ(flynn_gm_program("Drums"), 114);
  EXPECT_EQ(flynn_gm_program("Voice"), 53);
  EXPECT_EQ(flynn_gm_program("Strings"), 44);
  EXPECT_EQ(flynn_gm_program("Grand Piano"), 2);
  EXPECT_EQ(flynn_gm_program("Electric Piano"), 5);
  EXPECT_EQ(flynn_gm_program("Electric Guitar"), 26);
  EXPECT_EQ(flynn_gm_program("Trumpet in Bb"), 56);
  EXPECT_EQ(flynn_gm_program("Instrument 1"), 56);
  for (const char* none : {"Double Bass", "Horn", "Horn in F", "Harp", "Vocals", ""})
    EXPECT_EQ(flynn_gm_program(none), -1) << none;
  EXPECT_NEAR(difflib_ratio("banjo", "piano"), 0.6, 1e-12);
}

TEST(RewardFlynn, InstrumentPairLosses) {
  auto pair = [](const char* a, const char* b) { return flynn_instrument_pair_loss(flynn_gm_program(a), flynn_gm_program(b)); };
  for (auto ab : {std::make_pair("Violin", "Viola"), std::make_pair("Violin", "Cello"),
                  std::make_pair("Trumpet", "Trombone"), std::make_pair("Clarinet", "Bassoon"),
                  std::make_pair("Tuba", "French Horn"), std::make_pair("Cello", "Contrabass")})
    EXPECT_NEAR(pair(ab.first, ab.second), 0.5, 1e-6) << ab.first << "/" << ab.second;
  EXPECT_NEAR(pair("Violin", "Flute"), 0.818182, 1e-6);
  EXPECT_NEAR(pair("Flute", "Oboe"), 0.777778, 1e-6);
  EXPECT_NEAR(pair("Violin", "Trumpet"), 1.0, 1e-6);
  EXPECT_EQ(flynn_instrument_pair_loss(-1, -1), 0.0);  // B6: both unknown counts as a match
}

TEST(RewardFlynn, EndToEndWorkedValues) {
  expect_components(flynn(kE1, kE1), 1.0, 0, 0, 0, 0.5);        // E1 (B3)
  expect_components(flynn(kE1 + "\n", kE1 + "\n"), 0, 0, 0, 0, 0);  // E2
  expect_components(flynn(kP2, kG2), 0.166667, 0.35, 0, 0.5, 0.235833);                 // E3
  expect_components(flynn(kG2, kP2), 0.166667, 0.35, 0, 0.5, 0.235833);                 // E4
  expect_components(flynn(kP3, kG3), 0, 0.689636, 0.66484, 0.409091, 0.28499);          // E5
  expect_components(flynn(kG3, kP3), 0.5, 0.689636, 0.66484, 0.409091, 0.53499);        // E6
}

TEST(RewardFlynn, ZeroDenominatorIsAnInputError) {
  EXPECT_THROW(flynn("M:4/0\nV:1\nabc\n", "M:4/4\nV:1\nabc\n"), InputError);
}

// ---------------------------------------------------------------------------
// Corrected mode (scoring.md §2.6).

TEST(RewardCorrected, HeaderParsing) {
  auto in = parse_reward_input("X:1\nM:C|\nQ:\"Allegro\" 3/8=80\nK:G\n", RewardMode::Corrected);
  EXPECT_TRUE(in.has_meter);
  EXPECT_EQ(in.meter_num, 2);
  EXPECT_EQ(in.meter_den, 2);
  EXPECT_TRUE(in.has_tempo);
  EXPECT_NEAR(in.tempo_bpm, 120.0, 1e-12);  // 80 dotted quarters = 120 quarters
  in = parse_reward_input("M:C\nQ:1/4=96\n", RewardMode::Corrected);
  EXPECT_EQ(in.meter_num, 4);
  EXPECT_NEAR(in.tempo_bpm, 96.0, 1e-12);  // B1 fixed
  in = parse_reward_input("M:none\n", RewardMode::Corrected);
  EXPECT_TRUE(in.meter_present);
  EXPECT_FALSE(in.has_meter);
}

TEST(RewardCorrected, PitchesFollowAbc) {
  // Octaves, accidentals, key signature, bar-scoped accidentals (applied in
  // every octave, as abc2midi plays them: =f also makes the next F natural),
  // chords, ties merged, rests, strings/decorations/comments skipped.
  auto in = parse_reward_input(
      "X:1\nK:G\nV:1 name=\"Violin\"\n%%MIDI program 40\n"
      "\"Am\"!trill!C c c' C, ^c _B =f f F | F [CEG]2 z2 d2- | d2 e % comment c\n",
      RewardMode::Corrected);
  ASSERT_EQ(in.voices.size(), 1u);
  EXPECT_EQ(in.voices[0].name, "Violin");
  EXPECT_EQ(in.voices[0].program, 40);
  EXPECT_EQ(in.voices[0].pitches, (std::vector<int>{60, 72, 84, 48, 73, 70, 77, 77, 65, 66, 60, 64, 67, 74, 76}));
  // Repeats and endings are played as abc2midi plays them.
  in = parse_reward_input("X:1\nL:1/4\nK:C\n|:C D|1 E:|2 F|]\n", RewardMode::Corrected);
  ASSERT_EQ(in.voices.size(), 1u);
  EXPECT_EQ(in.voices[0].pitches, (std::vector<int>{60, 62, 64, 60, 62, 65}));
  // The last voice is kept without a final newline (B3 fixed); voices are merged by id.
  in = parse_reward_input("V:1\nCD\nV:2\nEF\nV:1\nG", RewardMode::Corrected);
  ASSERT_EQ(in.voices.size(), 2u);
  EXPECT_EQ(in.voices[0].pitches, (std::vector<int>{60, 62, 67}));
  in = parse_reward_input("K:C\nV:RH name=\"Piano RH\"\nV:LH\n[V:RH] c2 d2 |\n[V:LH] C,4 |\n", RewardMode::Corrected);
  ASSERT_EQ(in.voices.size(), 2u);
  EXPECT_EQ(in.voices[1].pitches, (std::vector<int>{48}));
}

TEST(RewardCorrected, IdenticalTextsScoreOne) {
  for (const auto& t : {kE1, kG2, kP2, kP3, kG3}) {
    const auto r = abc_reward(t, t, RewardMode::Corrected);
    EXPECT_NEAR(r.reward, 1.0, 1e-12) << t;
  }
}

TEST(RewardCorrected, MissingFieldsAndAssignment) {
  // GT without M:/Q: drops those components; a prediction without them costs 1.
  const std::string gt = "V:1 name=\"Violin\"\nCDEF|\n";
  const std::string pred_with = "M:4/4\nQ:120\nV:1 name=\"Violin\"\nCDEF|\n";
  auto r = abc_reward(gt, pred_with, RewardMode::Corrected);
  EXPECT_FALSE(r.use_metre);
  EXPECT_FALSE(r.use_tempo);
  EXPECT_NEAR(r.reward, 1.0, 1e-12);
  r = abc_reward(pred_with, gt, RewardMode::Corrected);  // now the GT has them, the prediction not
  EXPECT_NEAR(r.metre, 1.0, 1e-12);
  EXPECT_NEAR(r.tempo, 1.0, 1e-12);
  EXPECT_NEAR(r.total, (0.15 + 0.15) / 1.0, 1e-12);
  // One-to-one voices: a swapped voice order costs nothing; an extra voice costs 1/n.
  const std::string a = "V:1 name=\"Violin\"\nCDEF|\nV:2 name=\"Cello\"\nC,D,E,F,|\n";
  const std::string b = "V:1 name=\"Cello\"\nC,D,E,F,|\nV:2 name=\"Violin\"\nCDEF|\n";
  EXPECT_NEAR(abc_reward(a, b, RewardMode::Corrected).reward, 1.0, 1e-12);
  const std::string c = b + "V:3 name=\"Flute\"\ncdef|\n";
  r = abc_reward(a, c, RewardMode::Corrected);
  EXPECT_NEAR(r.pitch, 1.0 / 3, 1e-12);
  EXPECT_NEAR(r.instrument, 1.0 / 3, 1e-12);
  // Nothing predicted: pitch loss 1.
  EXPECT_NEAR(abc_reward(a, "X:1\n", RewardMode::Corrected).pitch, 1.0, 1e-12);
}

TEST(RewardCorrected, InstrumentNamesUseSynonyms) {
  EXPECT_EQ(corrected_gm_program("Piano"), 0);       // flynn2024: Banjo
  EXPECT_EQ(corrected_gm_program("Bass"), 32);       // flynn2024: Bassoon
  EXPECT_EQ(corrected_gm_program("Double Bass"), 43);
  EXPECT_EQ(corrected_gm_program("Saxophone"), 65);  // flynn2024: Xylophone
  EXPECT_EQ(corrected_gm_program("Horn"), 60);
  EXPECT_EQ(corrected_gm_program("violin"), 40);
  EXPECT_EQ(corrected_gm_program("Violin II"), 40);
  EXPECT_EQ(corrected_gm_program("Piano RH"), 0);
  EXPECT_EQ(corrected_gm_program("Qwertz"), -1);
}

TEST(RewardCorrected, FromNoteSequence) {
  NoteSequence s;
  s.notes = {{0.0, 0.5, 60, 90, 40, false}, {0.0, 0.5, 48, 90, 42, false}, {0.5, 1.0, 62, 90, 40, false},
             {0.5, 0.6, 36, 100, 0, true}};
  s.time_signatures.push_back({0.0, 3, 4});
  s.tempos.push_back({0.0, 100.0});
  const auto in = reward_input_from_sequence(s);
  ASSERT_EQ(in.voices.size(), 2u);  // drums left out
  EXPECT_EQ(in.voices[0].program, 42);  // first onset, lower pitch first
  EXPECT_EQ(in.voices[1].pitches, (std::vector<int>{60, 62}));
  EXPECT_EQ(in.meter_num, 3);
  EXPECT_NEAR(in.tempo_bpm, 100.0, 1e-12);
  const auto abc = parse_reward_input("M:3/4\nQ:1/4=100\nV:1 name=\"Violin\"\nCD|\nV:2 name=\"Cello\"\nC,|\n",
                                      RewardMode::Corrected);
  EXPECT_NEAR(compute_reward(in, abc, RewardMode::Corrected).reward, 1.0, 1e-12);
}

TEST(RewardMode, Names) {
  EXPECT_EQ(reward_mode_from_string("corrected"), RewardMode::Corrected);
  EXPECT_EQ(reward_mode_from_string("flynn2024-fixed"), RewardMode::Corrected);
  EXPECT_EQ(reward_mode_from_string("flynn2024"), RewardMode::Flynn2024);
  EXPECT_THROW(reward_mode_from_string("best"), ConfigError);
}

TEST(RewardMisc, HungarianFindsTheMinimum) {
  const std::vector<std::vector<double>> c = {{4, 1, 3}, {2, 0, 5}, {3, 2, 2}};
  const auto a = hungarian(c);
  double sum = 0;
  for (size_t i = 0; i < 3; ++i) sum += c[i][a[i]];
  EXPECT_DOUBLE_EQ(sum, 5.0);
  EXPECT_DOUBLE_EQ(normalized_levenshtein({1, 2, 3}, {1, 3}), 1.0 / 3);
  EXPECT_DOUBLE_EQ(normalized_levenshtein({}, {}), 0.0);
}

TEST(RewardFlynn, EmitterLayoutBecomesTheArticlesLayout) {
  const std::string emitted =
      "X:1\nT:Transcription\nM:3/4\nL:1/8\nQ:1/4=120\n%%score P1 P2\nK:G\nV:P1 clef=treble name=\"Violin\"\n"
      "%%MIDI program 40\nV:P2 clef=bass\n%%MIDI program 42\n% bars 1-2\n[V:P1] G2 A2 B2 | c2 d2 e2 |]\n"
      "[V:P2] G,,2 A,,2 B,,2 | C,2 D,2 E,2 |]\n";
  const std::string flynn = flynn2024_layout(emitted);
  EXPECT_EQ(flynn,
            "X:1\nM:3/4\nL:1/8\nQ:1/4=120\nK:G\nV:1 name=\"Violin\"\nG2 A2 B2 | c2 d2 e2 |]\nV:2 name=\"Cello\"\n"
            "G,,2 A,,2 B,,2 | C,2 D,2 E,2 |]\n");
  const auto in = parse_reward_input(flynn, RewardMode::Flynn2024);
  ASSERT_EQ(in.voices.size(), 2u);
  EXPECT_EQ(in.voices[0].pitches, (std::vector<int>{67, 69, 71, 60, 62, 64}));  // case ignored (B4)
  EXPECT_EQ(in.instrument_names, (std::vector<std::string>{"Violin", "Cello"}));
}

TEST(RewardMisc, DifflibMatchesPython) {
  if (test::run_command(test::python() + " -c 'import difflib'").exit_code != 0) GTEST_SKIP() << "no python3";
  std::mt19937 rng(11);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const char* alphabets[] = {"ab", "abc ", "abcdefgh ", "xyzab"};
  const int lengths_a[] = {0, 1, 3, 8, 20, 250}, lengths_b[] = {0, 1, 3, 8, 20, 210, 300};  // >= 200: autojunk
  nlohmann::json doc = {{"pairs", nlohmann::json::array()}, {"names", pretty_midi_gm_names()}};
  std::vector<std::pair<std::string, std::string>> pairs;
  for (int i = 0; i < 2000; ++i) {
    const std::string alpha = alphabets[pick(4)];
    std::string a, b;
    for (int k = lengths_a[pick(6)]; k > 0; --k) a += alpha[pick(static_cast<int>(alpha.size()))];
    for (int k = lengths_b[pick(7)]; k > 0; --k) b += alpha[pick(static_cast<int>(alpha.size()))];
    pairs.emplace_back(a, b);
  }
  for (const char* w : {"Piano", " Guitar ", "bass", "Drums", "violin 1", "Electric Piano", "Instrument 1", "horn",
                        "Grand Piano", "flute", "sax", "strings ii", "xylo", "Lead 4 chiff", ""})
    pairs.emplace_back("acoustic grand piano", w);
  for (const auto& p : pairs) doc["pairs"].push_back({p.first, p.second});
  const std::string dir = test::temp_dir("difflib");
  {
    std::ofstream out(dir + "/pairs.json");
    out << doc.dump();
  }
  const auto r = test::run_command(test::python() + " '" + std::string(TUNESCRIBE_SOURCE_DIR) +
                                   "/tools/fixtures/score_difflib_ref.py' '" + dir + "/pairs.json'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto want = nlohmann::json::parse(r.out);
  ASSERT_EQ(want["ratio"].size(), pairs.size());
  int bad = 0;
  for (size_t i = 0; i < pairs.size() && bad < 10; ++i) {
    const double got = difflib_ratio(pairs[i].first, pairs[i].second);
    if (std::fabs(got - want["ratio"][i].get<double>()) > 1e-15 ||
        flynn_gm_program(pairs[i].second) != want["close"][i].get<int>()) {
      ++bad;
      ADD_FAILURE() << "'" << pairs[i].first << "' / '" << pairs[i].second << "': ratio " << got << " vs "
                    << want["ratio"][i] << ", program " << flynn_gm_program(pairs[i].second) << " vs "
                    << want["close"][i];
    }
  }
}
