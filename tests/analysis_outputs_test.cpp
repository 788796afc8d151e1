// One analysis, three outputs: the tempo, meter and key the ABC writes (Q:, M:, K:) reach the
// .mid (tempo, time- and key-signature meta events at 0 s) and the .json (tempo_bpm, tempo_beat,
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
#include "tunescribe/music.h"
#include "tunescribe/notes.h"

namespace fs = std::filesystem;
using namespace tunescribe;
using tunescribe::test::run_command;
using tunescribe::test::tunescribe_bin;

namespace {

std::string q(const std::string& s) { return "'" + s + "'"; }

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

}  // namespace

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

TEST(AnalysisOutputs, FittedTempoKeepsTheDefaultTick) {
  MidiWriteOptions o;
  EXPECT_DOUBLE_EQ(fit_tempo_to_default_tick(96, &o), 96.0);
  EXPECT_EQ(o.ticks_per_quarter, 600);
  EXPECT_DOUBLE_EQ(fit_tempo_to_default_tick(120, &o), 120.0);
  EXPECT_EQ(o.ticks_per_quarter, 480);
  for (double bpm : {40.0, 72.0, 101.0, 137.0, 190.0, 400.0}) {
    const double got = fit_tempo_to_default_tick(bpm, &o);
    EXPECT_LE(std::abs(got - bpm) / bpm, bpm / 38400 + 1e-12) << bpm;
    EXPECT_EQ(o.ticks_per_quarter % 3, 0);
  }
  // Notes read back at exactly the seconds they have in a file written with the defaults.
  NoteSequence seq = synthetic_waltz();
  for (size_t i = 0; i < seq.notes.size(); ++i) seq.notes[i].onset_s += 0.000123 * static_cast<double>(i);
  seq.sort();
  const NoteSequence plain = read_midi_bytes(write_midi_bytes(seq), "plain");
  for (double bpm : {57.0, 72.0, 96.0, 137.0}) {
    NoteSequence with = seq;
    MidiWriteOptions mo;
    with.tempos = {TempoChange{0.0, fit_tempo_to_default_tick(bpm, &mo)}};
    const NoteSequence back = read_midi_bytes(write_midi_bytes(with, mo), "with");
    ASSERT_EQ(back.notes.size(), plain.notes.size());
    for (size_t i = 0; i < back.notes.size(); ++i) {
      EXPECT_EQ(back.notes[i].onset_s, plain.notes[i].onset_s) << bpm << " note " << i;
      EXPECT_EQ(back.notes[i].offset_s, plain.notes[i].offset_s) << bpm << " note " << i;
    }
    EXPECT_NEAR(back.tempos.at(0).bpm, with.tempos[0].bpm, 1e-6);
  }
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
  // MIDI: one tempo, time and key signature at 0 s.
  ASSERT_EQ(mid.tempos.size(), 1u);
  const double quarter = bpm * beat.value() * 4;
  EXPECT_LE(std::abs(mid.tempos[0].bpm - quarter), quarter * quarter / 38400 + 1e-6);
  ASSERT_EQ(mid.time_signatures.size(), 1u);
  EXPECT_EQ(mid.time_signatures[0].time_s, 0.0);
  EXPECT_EQ(std::to_string(mid.time_signatures[0].numerator) + "/" + std::to_string(mid.time_signatures[0].denominator),
            header(abc, "M"));
  ASSERT_EQ(mid.key_signatures.size(), 1u);
  EXPECT_EQ(mid.key_signatures[0].time_s, 0.0);
  EXPECT_EQ(key_from_signature(mid.key_signatures[0].fifths, mid.key_signatures[0].minor).text(),
            j["key"].get<std::string>());
  // The notes keep the seconds a file without the tempo event gives them.
  const NoteSequence notes = notes_from_json(j, "json");
  const NoteSequence plain = read_midi_bytes(write_midi_bytes(notes), "plain");
  ASSERT_EQ(mid.notes.size(), plain.notes.size());
  for (size_t i = 0; i < mid.notes.size(); ++i) {
    EXPECT_EQ(mid.notes[i].onset_s, plain.notes[i].onset_s) << i;
    EXPECT_EQ(mid.notes[i].offset_s, plain.notes[i].offset_s) << i;
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
