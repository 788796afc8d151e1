// One analysis, three outputs: the tempo, meter and key the ABC writes (Q:, M:, K:) reach the
// .mid (tempo, time- and key-signature meta events, with the ABC's bars: midi_bar_grid.h) and the .json (tempo_bpm, tempo_beat,
// meter, key) of an audio transcription; a MIDI input's .mid keeps its own metadata, unchanged.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"
#include "tunescribe/abc_writer.h"
#include "tunescribe/analysis.h"
#include "tunescribe/midi.h"
#include "tunescribe/midi_bar_grid.h"
#include "tunescribe/score_layout.h"
#include "tunescribe/music.h"
#include "tunescribe/notes.h"

namespace fs = std::filesystem;
using namespace tunescribe;
using tunescribe::test::run_command;
using tunescribe::test::tunescribe_bin;

namespace {

using tunescribe::test::q;

std::string header(const std::string& text, const std::string& field) {
  std::istringstream s(text);
  for (std::string l; std::getline(s, l);)
    if (l.rfind(field + ":", 0) == 0) return l.substr(field.size() + 1);
  return "";
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Q:3/8=64 → {3/8, 64}.
void parse_q(const std::string& q_field, Fraction* beat, double* bpm) {
  const size_t eq = q_field.find('=');
  ASSERT_NE(eq, std::string::npos) << q_field;
  const std::string b = q_field.substr(0, eq);
  const size_t slash = b.find('/');
  ASSERT_NE(slash, std::string::npos) << q_field;
  *beat = Fraction(std::stoll(b.substr(0, slash)), std::stoll(b.substr(slash + 1)));
  *bpm = std::stod(q_field.substr(eq + 1));
}

// A G-major waltz performed at 150 bpm (0.4 s a beat), accented downbeats.
NoteSequence synthetic_waltz() {
  NoteSequence seq;
  const int melody[] = {67, 71, 74, 72, 71, 69, 67, 66, 67, 71, 69, 67, 62, 66, 69, 67, 71, 74, 79, 78, 76, 74, 72, 71};
  for (int i = 0; i < 24; ++i) {
    const double t = 0.4 * i;
    seq.notes.push_back(Note{t, t + 0.38, melody[i], i % 3 == 0 ? 110 : 70, 0, false});
    if (i % 3 == 0) seq.notes.push_back(Note{t, t + 1.15, (i / 3) % 2 ? 50 : 43, 90, 0, false});
  }
  seq.sort();
  return seq;
}

// A 3/4 tune at `beat_s` a beat (growing by `rit_s` each beat: a ritardando) after `lead_s`
// of silence, starting with a one-beat pickup; `bass`: a left hand on the downbeats (two voices,
// so the pickup is written as a full bar with rests).
NoteSequence pickup_waltz(double lead_s, double beat_s, double rit_s, bool bass) {
  NoteSequence seq;
  // The pickup, then eight bars of a half note and a quarter (the downbeat is the long note).
  const int melody[] = {62, 67, 71, 74, 72, 71, 69, 67, 66, 67, 71, 69, 67, 62, 66, 69, 67};
  const int beats[] = {1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1};
  std::vector<double> beat_t{lead_s};  // beat_t[k]: the start of beat k
  for (int k = 0; k < 30; ++k) beat_t.push_back(beat_t.back() + beat_s + rit_s * k);
  int k = 0;
  for (int i = 0; i < 17; ++i) {
    const double t = beat_t[static_cast<size_t>(k)], end = beat_t[static_cast<size_t>(k + beats[i])];
    seq.notes.push_back(Note{t, t + 0.95 * (end - t), melody[i], beats[i] == 2 ? 100 : 70, 0, false});
    if (bass && beats[i] == 2) seq.notes.push_back(Note{t, beat_t[static_cast<size_t>(k + 3)] - 0.02, (i / 2) % 2 ? 50 : 43, 90, 0, false});
    k += beats[i];
  }
  seq.sort();
  return seq;
}

// Quarter notes at `t_s` (to_q) and seconds at `q` quarters (to_s) of a tempo map, exactly.
struct TempoIntegral {
  std::vector<TempoChange> tc;  // sorted, tc[0] at 0 s
  double to_q(double t_s) const {
    double q = 0;
    for (size_t i = 0; i < tc.size(); ++i) {
      const double end = i + 1 < tc.size() ? std::min(t_s, tc[i + 1].time_s) : t_s;
      if (end <= tc[i].time_s) break;
      q += (end - tc[i].time_s) * tc[i].bpm / 60.0;
    }
    return q;
  }
  double to_s(double q) const {
    for (size_t i = 0; i < tc.size(); ++i) {
      const double len_q = i + 1 < tc.size() ? (tc[i + 1].time_s - tc[i].time_s) * tc[i].bpm / 60.0 : 1e18;
      if (q <= len_q) return tc[i].time_s + q * 60.0 / tc[i].bpm;
      q -= len_q;
    }
    return 0;
  }
};

// Bar lines (seconds) a MIDI reader counts from the file's time signatures and tempo map.
std::vector<double> midi_bar_lines(const NoteSequence& mid, double t_end) {
  TempoIntegral q{mid.tempos};
  EXPECT_EQ(q.tc.at(0).time_s, 0.0);
  std::vector<double> lines;
  for (size_t i = 0; i < mid.time_signatures.size(); ++i) {
    const auto& ts = mid.time_signatures[i];
    const double from = std::round(q.to_q(ts.time_s) * 1e6) / 1e6;
    const double to = i + 1 < mid.time_signatures.size() ? std::round(q.to_q(mid.time_signatures[i + 1].time_s) * 1e6) / 1e6
                                                         : q.to_q(t_end);
    const double bar_q = 4.0 * ts.numerator / ts.denominator;
    for (double b = from; b < to - 1e-6; b += bar_q) lines.push_back(q.to_s(b));
  }
  return lines;
}

struct GridCheck {
  ScoreLayout layout;
  NoteSequence mid;
};

// Writes seq's .mid as transcribe does for audio and checks the bars against the layout.
GridCheck check_bar_grid(const NoteSequence& seq, const AbcWriterConfig& cfg) {
  GridCheck g;
  const Analysis an = analyse_for_abc(seq, cfg);
  g.layout = lay_out_for_abc(seq, cfg, an);
  NoteSequence with = seq;
  set_bar_grid_metadata(g.layout, an, &with);
  MidiWriteOptions mo;
  mo.ticks_per_quarter = kBarGridTicksPerQuarter;
  g.mid = read_midi_bytes(write_midi_bytes(with, mo), "grid");
  const ScoreLayout& L = g.layout;
  const double tol = 60.0 / quarter_bpm(an) / 16.0 + 1e-6;  // a quarter of a sixteenth
  const std::vector<double> lines = midi_bar_lines(g.mid, written_time_s(L, an, L.total) - 1e-3);
  EXPECT_EQ(static_cast<int>(lines.size()), L.bars());
  EXPECT_EQ(lines.at(0), 0.0);
  for (int b = 1; b < std::min<int>(L.bars(), static_cast<int>(lines.size())); ++b)
    EXPECT_NEAR(lines[static_cast<size_t>(b)], written_time_s(L, an, L.bar_starts[static_cast<size_t>(b)]), tol) << "bar " << b + 1;
  // Every bar holds the onsets of the written bar (the written notes of all voices).
  for (int b = 0; b < L.bars() && b < static_cast<int>(lines.size()); ++b) {
    const double from = lines[static_cast<size_t>(b)];
    const double to = b + 1 < static_cast<int>(lines.size()) ? lines[static_cast<size_t>(b + 1)] : 1e9;
    size_t written = 0, in_midi = 0;
    for (const auto& v : L.voices)
      for (const auto& n : v.notes) written += n.start >= L.bar_starts[static_cast<size_t>(b)] && n.start < L.bar_end(b);
    for (const auto& n : g.mid.notes) in_midi += n.onset_s >= from - tol && n.onset_s < to - tol;
    EXPECT_EQ(in_midi, written) << "bar " << b + 1;
  }
  // The notes keep their seconds.
  EXPECT_EQ(g.mid.notes.size(), seq.notes.size());
  for (size_t i = 0; i < std::min(g.mid.notes.size(), seq.notes.size()); ++i)
    EXPECT_NEAR(g.mid.notes[i].onset_s, seq.notes[i].onset_s, 1e-3) << i;
  return g;
}

}  // namespace

// A pickup after a lead-in: MIDI bar 1 is the lead-in's rests plus the pickup (a short first
// bar), the meter starts at the ABC's bar 2, one tempo (the ABC's) after the lead-in.
TEST(AnalysisOutputs, MidiBarsAreTheAbcBars) {
  AbcWriterConfig cfg;
  cfg.meter = "3/4";
  cfg.tempo_bpm = 150;
  const GridCheck g = check_bar_grid(pickup_waltz(0.5, 0.4, 0.0, false), cfg);
  ASSERT_EQ(g.layout.pickup, Fraction(1, 4)) << "the premise: a one-beat pickup";
  ASSERT_EQ(g.mid.time_signatures.size(), 2u);
  // 0.5 s at 0.1 s a sixteenth: five sixteenths of rest, then the pickup quarter.
  EXPECT_EQ(g.mid.time_signatures[0].numerator, 9);
  EXPECT_EQ(g.mid.time_signatures[0].denominator, 16);
  EXPECT_EQ(g.mid.time_signatures[1].numerator, 3);
  EXPECT_EQ(g.mid.time_signatures[1].denominator, 4);
  EXPECT_NEAR(g.mid.time_signatures[1].time_s, 0.9, 1e-3);
  ASSERT_EQ(g.mid.tempos.size(), 2u);
  EXPECT_NEAR(g.mid.tempos[1].bpm, 150.0, 1e-3);
  EXPECT_NEAR(g.mid.tempos[1].time_s, 0.5, 1e-3);

  // No lead-in, no pickup: the meter and the tempo at 0 s, nothing else.
  NoteSequence plain = pickup_waltz(0.0, 0.4, 0.0, false);
  plain.notes.erase(plain.notes.begin());  // the pickup note
  for (auto& n : plain.notes) { n.onset_s -= 0.4; n.offset_s -= 0.4; }
  ASSERT_EQ(plain.notes.front().onset_s, 0.0);
  const GridCheck p = check_bar_grid(plain, cfg);
  ASSERT_EQ(p.layout.pickup, Fraction(0));
  ASSERT_EQ(p.mid.time_signatures.size(), 1u);
  EXPECT_EQ(p.mid.time_signatures[0].numerator, 3);
  ASSERT_EQ(p.mid.tempos.size(), 1u);
  EXPECT_NEAR(p.mid.tempos[0].bpm, 150.0, 1e-3);
}

// A ritardando with the analysis' own beat tracking, one voice (a pickup bar) and two (the
// pickup written as a full bar with rests): bar lines follow the written bars through tempo
// changes at bar lines (more than one tempo), the notes keep their seconds.
TEST(AnalysisOutputs, MidiBarsFollowARitardando) {
  AbcWriterConfig cfg;
  cfg.meter = "3/4";
  for (bool bass : {false, true}) {
    SCOPED_TRACE(bass ? "two voices" : "one voice");
    const GridCheck g = check_bar_grid(pickup_waltz(0.3, 0.35, 0.006, bass), cfg);
    EXPECT_GT(g.mid.tempos.size(), 2u);
    EXPECT_GE(g.layout.bars(), 4);
  }
}

TEST(AnalysisOutputs, MetadataIsTheAbcHeader) {
  const NoteSequence seq = synthetic_waltz();
  AbcWriterConfig cfg;
  const Analysis an = analyse_for_abc(seq, cfg);
  const AbcTune tune = write_abc(seq, cfg, an);
  EXPECT_EQ(tune.text, write_abc(seq, cfg).text);  // the shared analysis is the writer's own
  NoteSequence meta = seq;
  set_analysis_metadata(an, &meta);
  ASSERT_EQ(meta.tempos.size(), 1u);
  EXPECT_DOUBLE_EQ(meta.tempos[0].bpm, tune.tempo_bpm * tune.beat.value() * 4);
  EXPECT_DOUBLE_EQ(quarter_bpm(an), meta.tempos[0].bpm);
  ASSERT_EQ(meta.time_signatures.size(), 1u);
  EXPECT_EQ(meta.time_signatures[0].numerator, tune.meter_numerator);
  EXPECT_EQ(meta.time_signatures[0].denominator, tune.meter_denominator);
  EXPECT_EQ(header(tune.text, "M"), std::to_string(tune.meter_numerator) + "/" + std::to_string(tune.meter_denominator));
  ASSERT_EQ(meta.key_signatures.size(), 1u);
  EXPECT_EQ(meta.key_signatures[0].fifths, tune.key_fifths);
  EXPECT_EQ(meta.key_signatures[0].minor, tune.key_minor);
  EXPECT_EQ(key_from_signature(tune.key_fifths, tune.key_minor).text(), header(tune.text, "K"));
  EXPECT_EQ(tune.key, "G");
}

// Audio end to end on the tiny random-weights model: ABC header == JSON fields == MIDI meta events.
TEST(AnalysisOutputs, AudioOutputsAgreeWithTheAbcHeader) {
  const std::string dir = tunescribe::test::temp_dir("analysis_outputs");
  const std::string clip = tunescribe::test::data_dir() + "/e2e/waltz-start.flac";
  auto r = run_command(q(tunescribe_bin()) + " transcribe " + q(clip) + " -o " + q(dir) + " --model " +
                       q(std::string(TUNESCRIBE_SOURCE_DIR) + "/models/tiny"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string abc = slurp(dir + "/waltz-start.abc");
  const auto j = nlohmann::json::parse(slurp(dir + "/waltz-start.json"));
  const NoteSequence mid = read_midi_file(dir + "/waltz-start.mid");
  Fraction beat;
  double bpm = 0;
  parse_q(header(abc, "Q"), &beat, &bpm);
  ASSERT_TRUE(j.contains("tempo_bpm") && j.contains("tempo_beat") && j.contains("meter") && j.contains("key")) << j.dump();
  EXPECT_EQ(j["tempo_bpm"].get<double>(), bpm);
  EXPECT_EQ(j["tempo_beat"].get<std::string>(), beat.str());
  EXPECT_EQ(j["meter"].get<std::string>(), header(abc, "M"));
  EXPECT_EQ(j["key"].get<std::string>(), header(abc, "K").substr(0, header(abc, "K").find(' ')));
  // MIDI: the written tempo from bar 1, the meter from the first full bar, the key at 0 s
  // (AnalysisOutputs.MidiBarsAreTheAbcBars checks where the bars fall).
  ASSERT_GE(mid.tempos.size(), 1u);
  const double quarter = bpm * beat.value() * 4;
  const size_t first_bar_tempo = mid.tempos.size() > 1 && mid.tempos[0].time_s == 0.0 && mid.notes.at(0).onset_s > 0 ? 1 : 0;
  EXPECT_LE(std::abs(mid.tempos[first_bar_tempo].bpm - quarter), quarter * 0.2) << "the written tempo, or the first correction of it";
  ASSERT_GE(mid.time_signatures.size(), 1u);
  EXPECT_EQ(mid.time_signatures[0].time_s, 0.0);
  EXPECT_EQ(std::to_string(mid.time_signatures.back().numerator) + "/" + std::to_string(mid.time_signatures.back().denominator),
            header(abc, "M"));
  ASSERT_EQ(mid.key_signatures.size(), 1u);
  EXPECT_EQ(mid.key_signatures[0].time_s, 0.0);
  EXPECT_EQ(key_from_signature(mid.key_signatures[0].fifths, mid.key_signatures[0].minor).text(),
            j["key"].get<std::string>());
  // The notes keep their seconds (to a tick of the tempo map: under 1 ms).
  const NoteSequence notes = notes_from_json(j, "json");
  ASSERT_EQ(mid.notes.size(), notes.notes.size());
  for (size_t i = 0; i < mid.notes.size(); ++i) {
    EXPECT_NEAR(mid.notes[i].onset_s, notes.notes[i].onset_s, 1e-3) << i;
    EXPECT_NEAR(mid.notes[i].offset_s, notes.notes[i].offset_s, 1e-3) << i;
  }
  fs::remove_all(dir);
}

// A MIDI input: the .mid is what writing the read file gives (its own metadata), the .json has
// no analysis fields.
TEST(AnalysisOutputs, MidiInputOutputsUnchanged) {
  const std::string dir = tunescribe::test::temp_dir("analysis_outputs_mid");
  const std::string in = std::string(TUNESCRIBE_SOURCE_DIR) + "/examples/tunescribe-waltz.mid";
  auto r = run_command(q(tunescribe_bin()) + " transcribe " + q(in) + " -o " + q(dir));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  NoteSequence seq = read_midi_file(in);
  seq.sort();
  const auto want = write_midi_bytes(seq);
  EXPECT_EQ(slurp(dir + "/tunescribe-waltz.mid"), std::string(want.begin(), want.end()));
  const auto j = nlohmann::json::parse(slurp(dir + "/tunescribe-waltz.json"));
  EXPECT_FALSE(j.contains("tempo_bpm") || j.contains("meter") || j.contains("key") || j.contains("tempo_beat"));
  fs::remove_all(dir);
}

// The real program: MuseScore 3 imports the .mid with the ABC's bars — as many measures, the
// pickup (after any lead-in rests) as its short first measure, the meter from measure 2.
TEST(AnalysisOutputs, MuseScoreReadsTheMidiBars) {
  if (!tunescribe::test::have_program("musescore3")) GTEST_SKIP() << "musescore3 missing";
  const std::string dir = tunescribe::test::temp_dir("midi_bars_musescore");
  AbcWriterConfig cfg;
  cfg.meter = "3/4";
  cfg.tempo_bpm = 150;
  for (double lead : {0.0, 0.5}) {
    SCOPED_TRACE("lead-in " + std::to_string(lead) + " s");
    const NoteSequence seq = pickup_waltz(lead, 0.4, 0.0, false);
    const Analysis an = analyse_for_abc(seq, cfg);
    const ScoreLayout L = lay_out_for_abc(seq, cfg, an);
    ASSERT_EQ(L.pickup, Fraction(1, 4));
    NoteSequence with = seq;
    set_bar_grid_metadata(L, an, &with);
    MidiWriteOptions mo;
    mo.ticks_per_quarter = kBarGridTicksPerQuarter;
    const auto bytes = write_midi_bytes(with, mo);
    std::ofstream(dir + "/in.mid", std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                           static_cast<std::streamsize>(bytes.size()));
    fs::remove(dir + "/out.musicxml");
    const auto r = run_command("cd " + q(dir) + " && QT_QPA_PLATFORM=offscreen timeout 120 musescore3 in.mid -o out.musicxml");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string xml = slurp(dir + "/out.musicxml");
    size_t measures = 0;
    for (size_t p = xml.find("<measure "); p != std::string::npos; p = xml.find("<measure ", p + 1)) ++measures;
    EXPECT_EQ(static_cast<int>(measures), L.bars());
    const size_t first = xml.find("<measure ");
    ASSERT_NE(first, std::string::npos);
    EXPECT_NE(xml.substr(first, xml.find('>', first) - first).find("implicit=\"yes\""), std::string::npos)
        << "the short first bar is a pickup measure";
    EXPECT_NE(xml.find("<beats>3</beats>"), std::string::npos);
  }
  fs::remove_all(dir);
}
