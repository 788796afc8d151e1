// analysis_test.cpp — the music vocabulary (music.h) and the analysis component (analysis.h)
// on their own: parsing, beat maps, onset clusters, meter, per-beat grids and key.
#include <gtest/gtest.h>

#include <vector>

#include "tunescribe/analysis.h"
#include "tunescribe/errors.h"
#include "tunescribe/music.h"

using namespace tunescribe;

namespace {

Note note(double on, double off, int pitch, int program = 0, bool drum = false) {
  return Note{on, off, pitch, 100, program, drum};
}

// `bars` bars of `beats` quarter notes at `bpm`, the downbeat stressed by a long low chord.
std::vector<Note> metric_pattern(int beats, int bars, double bpm, double t0 = 0.5) {
  std::vector<Note> out;
  const double q = 60.0 / bpm;
  for (int b = 0; b < bars; ++b)
    for (int k = 0; k < beats; ++k) {
      const double t = t0 + (b * beats + k) * q;
      out.push_back(note(t, t + 0.9 * q, 72));
      if (k == 0)
        for (int p : {48, 55, 60}) out.push_back(note(t, t + beats * q * 0.95, p));
    }
  return out;
}

}  // namespace

// ------------------------------------------------------------------ music.h
TEST(Music, FractionArithmeticIsExactAndReduced) {
  Fraction a(2, 8), b(1, 3);
  EXPECT_EQ((a + b).str(), "7/12");
  EXPECT_EQ((a - b).str(), "-1/12");
  EXPECT_EQ((a * b).str(), "1/12");
  EXPECT_EQ((a / b).str(), "3/4");
  EXPECT_EQ(Fraction(4, -2).str(), "-2");
  EXPECT_EQ(floor_int(Fraction(-1, 3)), -1);
  EXPECT_EQ(floor_int(Fraction(7, 3)), 2);
  EXPECT_TRUE(Fraction(1, 3) < Fraction(1, 2));
  EXPECT_THROW(Fraction(1, 0), std::invalid_argument);
}

TEST(Music, MetersParseStrictly) {
  Meter m;
  ASSERT_TRUE(parse_meter("6/8", &m));
  EXPECT_EQ(m.sub, 3);
  EXPECT_EQ(m.beats_per_bar, 2);
  EXPECT_EQ(m.beat, Fraction(3, 8));
  EXPECT_EQ(m.bar(), Fraction(3, 4));
  ASSERT_TRUE(parse_meter("C|", &m));
  EXPECT_EQ(m.num, 2);
  EXPECT_EQ(m.den, 2);
  EXPECT_EQ(m.text, "C|");
  ASSERT_TRUE(parse_meter("3/4", &m));
  EXPECT_EQ(m.sub, 2);
  EXPECT_EQ(m.beats_per_bar, 3);
  for (const char* bad : {"", "3", "/4", "3/", "3/5", "17/8", "0/4", " 3/4", "3/4 ", "2+3/8"})
    EXPECT_FALSE(parse_meter(bad, &m)) << bad;
  int n = 0, d = 0;
  EXPECT_TRUE(meter_symbol("C", &n, &d));
  EXPECT_EQ(n * 10 + d, 44);
  EXPECT_FALSE(meter_symbol("4/4", &n, &d));
}

TEST(Music, KeysParseAndSpell) {
  Key k;
  ASSERT_TRUE(parse_key("F#m", &k));
  EXPECT_EQ(k.fifths, 3);
  EXPECT_TRUE(k.minor);
  EXPECT_EQ(k.text(), "F#m");
  EXPECT_EQ(k.tonic_pc(), 6);
  ASSERT_TRUE(parse_key("d dor", &k));
  EXPECT_EQ(k.fifths, 0);
  EXPECT_EQ(k.text(), "DDor");
  ASSERT_TRUE(parse_key("Bbmaj", &k));
  EXPECT_EQ(k.fifths, -2);
  EXPECT_EQ(k.text(), "Bb");
  for (const char* bad : {"", "H", "Gx", "G#", "Fbm"}) EXPECT_FALSE(parse_key(bad, &k)) << bad;
  EXPECT_EQ(key_from_signature(-3, true).text(), "Cm");
  EXPECT_EQ(mode_fifths_offset("lyd"), 1);
  EXPECT_EQ(mode_fifths_offset("xyz"), kUnknownMode);
  size_t i = 1;
  int q = 0;
  EXPECT_TRUE(parse_tonic("[Eb", &i, &q));
  EXPECT_EQ(q, -3);
  EXPECT_EQ(i, 3u);
  EXPECT_EQ(signature_alter(2, 'C'), 1);
  EXPECT_EQ(signature_alter(2, 'G'), 0);
  EXPECT_EQ(signature_alter(-1, 'B'), -1);
}

// ------------------------------------------------------------------ analysis.h
TEST(Analysis, PrepareNotesFiltersMergesAndSorts) {
  std::vector<Note> in = {note(1.0, 2.0, 60), note(0.5, 1.5, 60), note(0.2, 0.21, 64), note(0.3, 0.2, 65),
                          note(0.4, 0.41, 36, 0, true), note(0.1, 0.5, 128)};
  auto out = prepare_notes(in, 0.03);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].is_drum);  // a drum hit is kept however short
  EXPECT_DOUBLE_EQ(out[1].onset_s, 0.5);  // the two overlapping C4s are one note
  EXPECT_DOUBLE_EQ(out[1].offset_s, 2.0);
}

TEST(Analysis, OnsetClustersJoinChords) {
  std::vector<Note> notes = {note(1.0, 2.0, 60), note(1.02, 2.0, 64), note(1.03, 1.5, 67), note(2.0, 2.5, 60)};
  auto c = onset_clusters(notes, 0.04);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_DOUBLE_EQ(c[0].time_s, 1.02);
  EXPECT_NEAR(c[0].salience, 3 * 0.3 + 1.0 + 0.98 + 0.47, 1e-12);  // durations count up to 1 s
  EXPECT_DOUBLE_EQ(c[1].time_s, 2.0);
}

TEST(Analysis, BeatMapsAreInvertible) {
  BeatMap m = fixed_beat_map(0.5, 1.0, 3.0);
  EXPECT_DOUBLE_EQ(m.beta(1.0), 0.0);
  EXPECT_DOUBLE_EQ(m.beta(2.25), 2.5);
  EXPECT_DOUBLE_EQ(m.time_of(2.5), 2.25);
  EXPECT_DOUBLE_EQ(m.beta(0.5), -1.0);  // extrapolated before the first unit
  // 120 bpm for 2 s, then 60 bpm: quarter 4 at 2 s, quarter 5 at 3 s.
  BeatMap t = midi_tempo_map({TempoChange{0.0, 120.0}, TempoChange{2.0, 60.0}}, 6.0);
  EXPECT_NEAR(t.beta(2.0), 4.0, 1e-9);
  EXPECT_NEAR(t.beta(3.0), 5.0, 1e-9);
  EXPECT_NEAR(t.time_of(4.5), 2.5, 1e-9);
}

TEST(Analysis, TrackedBeatsFollowASteadyPulse) {
  auto notes = prepare_notes(metric_pattern(4, 12, 100.0), 0.03);
  auto clusters = onset_clusters(notes, 0.04);
  BeatEstimate b = estimate_beats(clusters, notes.back().offset_s, 0.0, {});
  EXPECT_EQ(b.unit, BeatUnit::kTracked);
  // One tracked unit is one quarter (0.6 s), or a simple multiple of it.
  const double ratio = b.sec_per_unit / 0.6;
  EXPECT_TRUE(std::abs(ratio - 1.0) < 0.03 || std::abs(ratio - 2.0) < 0.06 || std::abs(ratio - 0.5) < 0.02) << ratio;
}

TEST(Analysis, MeterAndTempoFromAGivenTempo) {
  for (int beats : {3, 4}) {
    auto notes = prepare_notes(metric_pattern(beats, 8, 90.0), 0.03);
    AnalysisOptions o;
    o.tempo_bpm = 90;
    Analysis a = analyse(notes, NoteSequence{}, o);
    EXPECT_EQ(a.beats.unit, BeatUnit::kWrittenBeat);
    EXPECT_FALSE(a.meter.given);
    EXPECT_EQ(a.meter.meter.text, beats == 3 ? "3/4" : "4/4") << beats;
    EXPECT_DOUBLE_EQ(a.tempo_bpm, 90.0);
    // The first note is on a downbeat.
    EXPECT_NEAR(a.at.onset[0], 0.0, 1e-6);
  }
}

TEST(Analysis, GivenMeterAndMidiMetadataWin) {
  auto notes = prepare_notes(metric_pattern(4, 4, 120.0, 0.0), 0.03);
  NoteSequence meta;
  meta.tempos = {TempoChange{0.0, 120.0}};
  meta.time_signatures = {TimeSignature{0.0, 3, 4}};
  meta.key_signatures = {KeySignature{0.0, -1, true}};
  Analysis a = analyse(notes, meta, AnalysisOptions{});
  EXPECT_TRUE(a.meter.given);
  EXPECT_EQ(a.meter.meter.text, "3/4");
  EXPECT_EQ(a.beats.unit, BeatUnit::kQuarter);
  EXPECT_DOUBLE_EQ(a.tempo_bpm, 120.0);
  EXPECT_TRUE(a.key.given);
  EXPECT_EQ(a.key.key.text(), "Dm");
  AnalysisOptions o;
  o.meter = "6/8";
  o.key = "A";
  o.use_midi_metadata = false;
  Analysis b = analyse(notes, meta, o);
  EXPECT_EQ(b.meter.meter.text, "6/8");
  EXPECT_EQ(b.key.key.text(), "A");
}

TEST(Analysis, TripletBeatsGetATripletGrid) {
  // Quarter beats at 60 bpm, each split into three equal notes: 2/4 becomes 6/8.
  std::vector<Note> notes;
  for (int k = 0; k < 16; ++k)
    for (int j = 0; j < 3; ++j) notes.push_back(note(1.0 + k + j / 3.0, 1.0 + k + (j + 1) / 3.0 - 0.02, 67 + j));
  notes = prepare_notes(notes, 0.03);
  AnalysisOptions o;
  o.tempo_bpm = 60;
  o.meter = "2/4";
  Analysis given = analyse(notes, NoteSequence{}, o);
  ASSERT_FALSE(given.grids.per_beat.empty());
  EXPECT_EQ(given.grids.triplet_beats().size(), 16u);  // not the beat after them, with offsets only
  EXPECT_EQ(given.grids.at(given.grids.per_beat.begin()->first).G, 3);
  EXPECT_EQ(given.meter.meter.text, "2/4");  // a given meter stays
  MeterEstimate m = given.meter;
  m.given = false;
  BeatGrids g = given.grids;
  EXPECT_TRUE(prefer_compound_meter(notes, given.at, 16, true, &m, &g));
  EXPECT_EQ(m.meter.text, "6/8");
  EXPECT_TRUE(g.triplet_beats().empty());
}

TEST(Analysis, KeyOfScalesAndProfiles) {
  auto scale = [](const std::vector<int>& pitches) {
    std::vector<Note> out;
    double t = 0;
    for (int rep = 0; rep < 3; ++rep)
      for (int p : pitches) {
        out.push_back(note(t, t + (p == pitches.front() ? 0.8 : 0.4), p));
        t += 0.5;
      }
    return out;
  };
  EXPECT_EQ(estimate_key(scale({67, 69, 71, 72, 74, 76, 78, 79, 74, 71, 67}), KeyProfile::kAlbrechtShanahan).key.text(), "G");
  EXPECT_EQ(estimate_key(scale({57, 59, 60, 62, 64, 65, 68, 69, 64, 60, 57}), KeyProfile::kKrumhanslKessler).key.text(), "Am");
  const KeyEstimate none = estimate_key({note(0, 1, 38, 0, true)}, KeyProfile::kTemperley);
  EXPECT_EQ(none.key.text(), "C");
  EXPECT_FALSE(none.given);
  EXPECT_EQ(key_profile_from_string("aarden_essen"), KeyProfile::kAardenEssen);
  EXPECT_THROW(key_profile_from_string("bach"), ConfigError);
}
