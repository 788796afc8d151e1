// abc_test.cpp — ABC emitter and reader, checked against the real tools
// (abc2midi, abc2abc, abcm2ps from Debian's abcmidi/abcm2ps; skipped when missing).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>

#include "test_util.h"
#include "tunescribe/abc_reader.h"
#include "tunescribe/abc_writer.h"
#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/midi.h"

namespace fs = std::filesystem;
using namespace tunescribe;
using tunescribe::test::run_command;

namespace {

// ------------------------------------------------------------------ tiny SMF reader (ticks)
struct TickNote {
  int track = 0;
  long on = 0, off = 0;
  int pitch = 0, channel = 0;
};
struct Smf {
  int format = 0, ntracks = 0, ppq = 480;
  std::vector<TickNote> notes;
  bool ok = false;
};

Smf read_smf(const std::string& path) {
  Smf smf;
  std::ifstream f(path, std::ios::binary);
  if (!f) return smf;
  std::vector<unsigned char> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t p = 0;
  auto u32 = [&](size_t at) { return (b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]; };
  auto u16 = [&](size_t at) { return (b[at] << 8) | b[at + 1]; };
  if (b.size() < 14 || std::string(b.begin(), b.begin() + 4) != "MThd") return smf;
  smf.format = u16(8);
  smf.ntracks = u16(10);
  smf.ppq = u16(12);
  p = 8 + u32(4);
  for (int t = 0; t < smf.ntracks && p + 8 <= b.size(); ++t) {
    size_t len = u32(p + 4), q = p + 8, end = std::min(b.size(), q + len);
    long tick = 0;
    int status = 0;
    std::map<std::pair<int, int>, std::vector<size_t>> open;
    auto vlq = [&]() { long v = 0; while (q < end) { int c = b[q++]; v = (v << 7) | (c & 0x7f); if (!(c & 0x80)) break; } return v; };
    while (q < end) {
      tick += vlq();
      if (q >= end) break;
      int c = b[q];
      if (c & 0x80) { status = c; ++q; }
      if (status == 0xff) { ++q; long l = vlq(); q += l; status = 0; continue; }
      if (status == 0xf0 || status == 0xf7) { long l = vlq(); q += l; status = 0; continue; }
      int type = status & 0xf0, ch = status & 0x0f;
      int d1 = q < end ? b[q] : 0;
      int nd = (type == 0xc0 || type == 0xd0) ? 1 : 2;
      int d2 = nd == 2 && q + 1 < end ? b[q + 1] : 0;
      q += nd;
      if (type == 0x90 && d2 > 0) {
        smf.notes.push_back({t, tick, -1, d1, ch});
        open[{ch, d1}].push_back(smf.notes.size() - 1);
      } else if (type == 0x80 || (type == 0x90 && d2 == 0)) {
        auto& v = open[{ch, d1}];
        if (!v.empty()) { smf.notes[v.front()].off = tick; v.erase(v.begin()); }
      }
    }
    p = p + 8 + len;
  }
  smf.ok = true;
  return smf;
}

bool have_tools() {
  return test::have_program("abc2midi") && test::have_program("abc2abc") && test::have_program("abcm2ps");
}

std::string write_temp(const std::string& dir, const std::string& name, const std::string& text) {
  std::string p = dir + "/" + name;
  std::ofstream(p) << text;
  return p;
}

// Problems reported by the three tools (empty = clean).
std::vector<std::string> validate_with_tools(const std::string& abc) {
  std::vector<std::string> probs;
  std::string dir = test::temp_dir("abcval");
  std::string f = write_temp(dir, "t.abc", abc);
  auto r1 = run_command("abc2midi " + f + " -c");
  std::istringstream s1(r1.out + r1.err);
  for (std::string l; std::getline(s1, l);)
    if (l.rfind("Warning", 0) == 0 || l.rfind("Error", 0) == 0) probs.push_back("abc2midi: " + l);
  auto r2 = run_command("abc2abc " + f);
  std::istringstream s2(r2.out + r2.err);
  for (std::string l; std::getline(s2, l);)
    if (l.find("%Error") != std::string::npos || l.find("%Warning") != std::string::npos) probs.push_back("abc2abc: " + l);
  auto r3 = run_command("abcm2ps -q " + f + " -O " + dir + "/out.ps");
  if (r3.exit_code != 0) probs.push_back("abcm2ps: exit " + std::to_string(r3.exit_code) + ": " + r3.err);
  std::istringstream s3(r3.err);
  for (std::string l; std::getline(s3, l);)
    if (l.find("error") != std::string::npos) probs.push_back("abcm2ps: " + l);
  return probs;
}

// Notes abc2midi plays for tune text (chordattack 0), per voice: (start_tick, pitch, len_tick) at 480 ppq.
using TickList = std::vector<std::tuple<long, int, long>>;
std::vector<TickList> abc2midi_notes(const std::string& abc, int nvoices) {
  std::string text = abc;
  auto nl = text.find('\n');
  text.insert(nl + 1, "%%MIDI chordattack 0\n");
  std::string dir = test::temp_dir("abcrt");
  std::string f = write_temp(dir, "t.abc", text);
  run_command("abc2midi " + f + " -o " + dir + "/t.mid");
  Smf smf = read_smf(dir + "/t.mid");
  std::vector<TickList> out(static_cast<size_t>(nvoices));
  for (const auto& n : smf.notes) {
    int v = smf.format == 0 ? 0 : n.track - 1;
    if (v < 0 || v >= nvoices) continue;
    out[static_cast<size_t>(v)].emplace_back(n.on, n.pitch, n.off - n.on);
  }
  for (auto& l : out) std::sort(l.begin(), l.end());
  return out;
}

// ------------------------------------------------------------------ synthetic performances
struct N {
  int pitch;
  double start_beats, len_beats;
  int program = 0;
  bool drum = false;
};

NoteSequence perform(const std::vector<N>& ns, double bpm, double jitter_s, unsigned seed, double t0 = 0.7) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-jitter_s, jitter_s);
  NoteSequence s;
  for (const auto& n : ns) {
    Note x;
    x.pitch = n.pitch;
    x.program = n.program;
    x.is_drum = n.drum;
    x.onset_s = t0 + n.start_beats * 60.0 / bpm + u(rng);
    x.offset_s = t0 + (n.start_beats + n.len_beats) * 60.0 / bpm - 0.03 + u(rng);
    if (x.offset_s <= x.onset_s + 0.04) x.offset_s = x.onset_s + 0.05;
    s.notes.push_back(x);
  }
  s.sort();
  return s;
}

// A melody from (pitch, length in beats) pairs; pitch < 0 = rest.
std::vector<N> melody(const std::vector<std::pair<int, double>>& pl, double start = 0, int program = 0) {
  std::vector<N> out;
  double t = start;
  for (const auto& x : pl) {
    if (x.first >= 0) out.push_back({x.first, t, x.second, program, false});
    t += x.second;
  }
  return out;
}

// (voice, start, pitch, length) of every note, sorted by voice, start and pitch: the emitter's
// notes and a reader's notes compare equal when they are the same music.
template <class Notes>
std::vector<std::tuple<int, Fraction, int, Fraction>> sorted_note_keys(const Notes& notes) {
  std::vector<std::tuple<int, Fraction, int, Fraction>> keys;
  for (const auto& n : notes) keys.emplace_back(n.voice, n.start, n.pitch, n.length);
  std::sort(keys.begin(), keys.end(), [](const auto& x, const auto& y) {
    if (std::get<0>(x) != std::get<0>(y)) return std::get<0>(x) < std::get<0>(y);
    if (std::get<1>(x) != std::get<1>(y)) return std::get<1>(x) < std::get<1>(y);
    return std::get<2>(x) < std::get<2>(y);
  });
  return keys;
}

// Expected notes in whole notes from a beat list (beat = quarter unless given).
void check_tools_and_roundtrip(const AbcTune& tune) {
  // Our reader must read back exactly the emitter's notes.
  auto read = read_abc_text(tune.text, "emitted.abc");
  ASSERT_EQ(read.size(), 1u);
  const auto& rt = read[0];
  EXPECT_TRUE(rt.warnings.empty()) << rt.warnings.front();
  ASSERT_EQ(rt.voice_ids.size(), tune.voices.size()) << tune.text;
  const auto a = sorted_note_keys(tune.notes), b = sorted_note_keys(rt.notes);
  ASSERT_EQ(a.size(), b.size()) << tune.text;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(std::get<0>(a[i]), std::get<0>(b[i]));
    EXPECT_EQ(std::get<1>(a[i]), std::get<1>(b[i])) << "note " << i << "\n" << tune.text;
    EXPECT_EQ(std::get<2>(a[i]), std::get<2>(b[i])) << "note " << i << "\n" << tune.text;
    EXPECT_EQ(std::get<3>(a[i]), std::get<3>(b[i])) << "note " << i << "\n" << tune.text;
  }
  if (!have_tools()) return;
  auto probs = validate_with_tools(tune.text);
  for (const auto& p : probs) ADD_FAILURE() << p << "\n" << tune.text;
  // abc2midi plays the emitter's quantised notes.
  auto got = abc2midi_notes(tune.text, static_cast<int>(tune.voices.size()));
  for (size_t v = 0; v < tune.voices.size(); ++v) {
    TickList want;
    for (const auto& n : tune.notes)
      if (n.voice == static_cast<int>(v)) {
        Fraction s = n.start * Fraction(1920), l = n.length * Fraction(1920);
        want.emplace_back(static_cast<long>(std::llround(s.value())), n.pitch, static_cast<long>(std::llround(l.value())));
      }
    std::sort(want.begin(), want.end());
    ASSERT_EQ(want.size(), got[v].size()) << "voice " << v << "\n" << tune.text;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_LE(std::abs(std::get<0>(want[i]) - std::get<0>(got[v][i])), 2) << "voice " << v << " note " << i << "\n" << tune.text;
      EXPECT_EQ(std::get<1>(want[i]), std::get<1>(got[v][i])) << "voice " << v << " note " << i << "\n" << tune.text;
      EXPECT_LE(std::abs(std::get<2>(want[i]) - std::get<2>(got[v][i])), 2) << "voice " << v << " note " << i << "\n" << tune.text;
    }
  }
}

std::string header_value(const std::string& text, const std::string& field) {
  std::istringstream s(text);
  for (std::string l; std::getline(s, l);)
    if (l.rfind(field + ":", 0) == 0) return l.substr(field.size() + 1);
  return "";
}

// G major waltz, 8 bars, melody + bass.
std::vector<N> waltz() {
  std::vector<N> w;
  int mel[8][3] = {{67, 71, 74}, {72, 71, 69}, {67, 66, 67}, {69, -1, -1}, {71, 74, 79}, {78, 76, 74}, {72, 71, 69}, {67, -1, -1}};
  for (int b = 0; b < 8; ++b) {
    for (int i = 0; i < 3; ++i) {
      int p = mel[b][i];
      if (p < 0) continue;
      double len = (i == 0 && mel[b][1] < 0) ? 3 : 1;
      w.push_back({p, b * 3.0 + i, len * 0.95});
    }
    w.push_back({mel[b][0] - 24, b * 3.0, 2.9});
  }
  return w;
}

}  // namespace

// ------------------------------------------------------------------ emitter
TEST(AbcWriter, FractionArithmetic) {
  EXPECT_EQ(Fraction(2, 4), Fraction(1, 2));
  EXPECT_EQ(Fraction(1, 3) + Fraction(1, 6), Fraction(1, 2));
  EXPECT_EQ(Fraction(-3, 4).str(), "-3/4");
  EXPECT_EQ(floor_int(Fraction(-1, 4)), -1);
  EXPECT_TRUE(Fraction(1, 3) < Fraction(1, 2));
}

TEST(AbcWriter, ConfigValidation) {
  AbcWriterConfig c;
  c.tempo_bpm = 5;
  EXPECT_THROW(c.validate(), ConfigError);
  c = {};
  c.meter = "5/3";
  EXPECT_THROW(c.validate(), ConfigError);
  c = {};
  c.key = "H";
  EXPECT_THROW(c.validate(), ConfigError);
  c = {};
  c.bars_per_line = 0;
  EXPECT_THROW(c.validate(), ConfigError);
  c = {};
  c.grid_denominator = 12;
  EXPECT_THROW(c.validate(), ConfigError);
  c = {};
  c.key = "F#m";
  c.meter = "6/8";
  EXPECT_NO_THROW(c.validate());
}

TEST(AbcWriter, WaltzMeterKeyAndPianoSplit) {
  auto seq = perform(waltz(), 100, 0.02, 1);
  AbcWriterConfig cfg;
  cfg.title = "waltz";
  auto t = write_abc(seq, cfg);
  EXPECT_EQ(t.meter, "3/4") << t.text;
  EXPECT_EQ(t.key_fifths, 1) << t.text;
  EXPECT_NEAR(t.tempo_bpm, 100, 3);
  ASSERT_EQ(t.voices.size(), 2u);
  EXPECT_EQ(t.voices[0].clef, "treble");
  EXPECT_EQ(t.voices[1].clef, "bass");
  EXPECT_NE(t.text.find("%%score {P1R | P1L}"), std::string::npos);
  EXPECT_EQ(header_value(t.text, "T"), "waltz");
  EXPECT_EQ(t.pickup, Fraction(0));
  // F#4 in G major is written without an accidental.
  EXPECT_EQ(t.text.find("^F"), std::string::npos) << t.text;
  check_tools_and_roundtrip(t);
}

TEST(AbcWriter, JigIsSixEight) {
  // D major jig: eighth-note triplets of the compound beat, dotted-quarter bass.
  std::vector<N> ns;
  int mel[] = {62, 66, 69, 74, 69, 66, 67, 71, 74, 71, 67, 64, 66, 69, 74, 76, 74, 69, 62, 66, 69, 62, -1, -1};
  for (int bar = 0; bar < 4; ++bar)
    for (int rep = 0; rep < 2; ++rep)
      for (int i = 0; i < 6; ++i) {
        int p = mel[(bar * 6 + i) % 24];
        double t = (bar * 2 + rep) * 3.0 + i * 0.5;
        if (p > 0) ns.push_back({p + 12, t, i % 3 == 0 ? 0.5 : 0.45});
        if (i % 3 == 0) ns.push_back({50, t, 1.4});
      }
  auto seq = perform(ns, 180, 0.015, 2);
  auto t = write_abc(seq, {});
  EXPECT_EQ(t.meter, "6/8") << t.text;
  EXPECT_EQ(t.beat, Fraction(3, 8));
  check_tools_and_roundtrip(t);
}

TEST(AbcWriter, FourFourWithPickupAndTies) {
  // F major, one-beat pickup, whole notes tied over the bar in the bass.
  // pickup | f e d | c(3) B(2, over the bar) | A G F | G(3) A | B c | d c B A | F(4)
  std::vector<std::pair<int, double>> m = {{72, 1}, {77, 2}, {76, 1}, {74, 1}, {72, 3}, {70, 2}, {69, 1}, {67, 1},
                                           {65, 1}, {67, 3}, {69, 1}, {70, 2}, {72, 2}, {74, 1}, {72, 1}, {70, 1},
                                           {69, 1}, {65, 4}};
  auto ns = melody(m);
  auto seq = perform(ns, 96, 0.02, 3);
  auto t = write_abc(seq, {});
  EXPECT_EQ(t.meter_denominator, 4) << t.text;
  EXPECT_EQ(t.meter, "4/4") << t.text;
  EXPECT_EQ(t.pickup, Fraction(1, 4)) << t.text;
  EXPECT_EQ(t.key_fifths, -1) << t.text;
  EXPECT_NE(t.text.find("- |"), std::string::npos) << "a note tied over the bar line\n" << t.text;
  EXPECT_EQ(t.text.find("_B"), std::string::npos) << "Bb is in the signature\n" << t.text;
  check_tools_and_roundtrip(t);
}

TEST(AbcWriter, TripletsAndJitter) {
  // 2/4-ish march in C: straight eighths and quarter-note triplets of eighths.
  std::vector<N> ns;
  double t = 0;
  for (int bar = 0; bar < 8; ++bar) {
    if (bar % 2 == 0) {
      for (int i = 0; i < 3; ++i) ns.push_back({60 + 2 * i, t + i / 3.0, 0.3});
      ns.push_back({67, t + 1, 0.5});
      ns.push_back({65, t + 1.5, 0.5});
    } else {
      ns.push_back({64, t, 1});
      ns.push_back({60, t + 1, 1});
    }
    t += 2;
  }
  AbcWriterConfig cfg;
  cfg.meter = "2/4";
  auto seq = perform(ns, 110, 0.02, 4);
  auto tune = write_abc(seq, cfg);
  EXPECT_EQ(tune.meter, "2/4");
  EXPECT_NE(tune.text.find("(3"), std::string::npos) << tune.text;
  int triplet_notes = 0;
  for (const auto& n : tune.notes)
    if (n.length == Fraction(1, 12)) ++triplet_notes;
  EXPECT_EQ(triplet_notes, 12) << tune.text;
  check_tools_and_roundtrip(tune);
}

TEST(AbcWriter, SpellingAccidentalsAndChords) {
  // C major with chromatic notes across octaves in one bar and chords.
  std::vector<N> ns = {{73, 0, 1}, {61, 1, 1}, {72, 2, 1}, {60, 3, 1},  // ^c ^C =c =C
                       {70, 4, 1}, {82, 5, 1}, {58, 6, 1}, {71, 7, 1}};
  for (int i = 0; i < 8; ++i) ns.push_back({48, i * 1.0, 0.9});
  for (int i = 0; i < 4; ++i) {
    ns.push_back({60, 8.0 + i, 0.9});
    ns.push_back({64, 8.0 + i, 0.9});
    ns.push_back({67, 8.0 + i, 0.9});
  }
  AbcWriterConfig cfg;
  cfg.key = "C";
  cfg.meter = "4/4";
  cfg.tempo_bpm = 120;
  cfg.split_piano = false;
  auto t = write_abc(perform(ns, 120, 0.01, 5), cfg);
  EXPECT_EQ(t.key, "C");
  EXPECT_EQ(t.tempo_bpm, 120);
  EXPECT_NE(t.text.find("[CEG]"), std::string::npos) << t.text;
  check_tools_and_roundtrip(t);
}

TEST(AbcWriter, OctaveAccidentalRule) {
  // C major spells C#/Db as Db. Under pitch propagation _d then D would be Db: the writer must write =D.
  std::vector<N> ns = {{73, 0, 1}, {62, 1, 1}, {74, 2, 1}, {61, 3, 1}};
  AbcWriterConfig cfg;
  cfg.key = "C";
  cfg.meter = "4/4";
  cfg.tempo_bpm = 100;
  auto t = write_abc(perform(ns, 100, 0, 6), cfg);
  EXPECT_NE(t.text.find("_d2 =D2 =d2 _D2"), std::string::npos) << t.text;
  // Both readings of our own reader agree.
  AbcReaderConfig oct;
  oct.pitch_propagation = false;
  auto a = read_abc_text(t.text, "x")[0].notes, b = read_abc_text(t.text, "x", oct)[0].notes;
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].pitch, b[i].pitch);
  check_tools_and_roundtrip(t);
}

TEST(AbcWriter, KeyOverridesSpelling) {
  std::vector<N> ns = melody({{65, 1}, {67, 1}, {69, 1}, {70, 1}, {72, 1}, {74, 1}, {76, 1}, {77, 1}});
  AbcWriterConfig cfg;
  cfg.key = "F";
  auto t = write_abc(perform(ns, 100, 0.01, 7), cfg);
  EXPECT_EQ(t.key_fifths, -1);
  EXPECT_EQ(t.text.find("^A"), std::string::npos) << t.text;
  EXPECT_EQ(t.text.find("_B"), std::string::npos) << t.text;
  cfg.key = "G";
  std::vector<N> g = melody({{67, 1}, {69, 1}, {71, 1}, {72, 1}, {74, 1}, {76, 1}, {78, 1}, {79, 1}});
  auto t2 = write_abc(perform(g, 100, 0.01, 7), cfg);
  EXPECT_EQ(t2.text.find("^f"), std::string::npos) << t2.text;
  EXPECT_EQ(t2.text.find("_g"), std::string::npos) << t2.text;
  check_tools_and_roundtrip(t2);
}

TEST(AbcWriter, MultiInstrumentAndDrums) {
  std::vector<N> ns;
  for (int i = 0; i < 16; ++i) {
    ns.push_back({72 + (i % 5), i * 1.0, 0.9, 40, false});        // violin
    ns.push_back({i % 4 == 0 ? 36 : 42, i * 1.0, 0.1, 0, true});  // kick / hi-hat
    if (i % 2 == 0) ns.push_back({48, i * 1.0, 1.9, 32, false});   // bass
  }
  auto t = write_abc(perform(ns, 120, 0.01, 8), {});
  ASSERT_EQ(t.voices.size(), 3u);
  EXPECT_NE(t.text.find("name=\"Violin\""), std::string::npos) << t.text;
  EXPECT_NE(t.text.find("%%MIDI program 40"), std::string::npos);
  EXPECT_NE(t.text.find("%%MIDI channel 10"), std::string::npos);
  EXPECT_NE(t.text.find("clef=perc"), std::string::npos);
  // V: definitions after K:
  EXPECT_LT(t.text.find("\nK:"), t.text.find("\nV:"));
  // every system has every voice, covering the same bars
  std::istringstream s(t.text);
  int systems = 0;
  std::vector<int> bars_per_voice_line;
  for (std::string l; std::getline(s, l);) {
    if (l.rfind("% bars", 0) == 0) ++systems;
    if (l.rfind("[V:", 0) == 0) bars_per_voice_line.push_back(static_cast<int>(std::count(l.begin(), l.end(), '|')));
  }
  EXPECT_EQ(bars_per_voice_line.size(), static_cast<size_t>(systems) * 3);
  for (size_t i = 0; i + 2 < bars_per_voice_line.size(); i += 3) {
    EXPECT_EQ(bars_per_voice_line[i], bars_per_voice_line[i + 1]);
    EXPECT_EQ(bars_per_voice_line[i], bars_per_voice_line[i + 2]);
  }
  check_tools_and_roundtrip(t);
}

TEST(AbcWriter, MidiMetadataIsUsed) {
  auto seq = perform(waltz(), 90, 0.0, 9, 0.0);
  seq.tempos.push_back({0.0, 90});
  seq.time_signatures.push_back({0.0, 3, 4});
  seq.key_signatures.push_back({0.0, -2, false});  // Bb (deliberately "wrong" for the notes)
  auto t = write_abc(seq, {});
  EXPECT_EQ(t.meter, "3/4");
  EXPECT_EQ(t.tempo_bpm, 90);
  EXPECT_EQ(t.key, "Bb");
  AbcWriterConfig off;
  off.use_midi_metadata = false;
  auto t2 = write_abc(seq, off);
  EXPECT_EQ(t2.key_fifths, 1);
  check_tools_and_roundtrip(t);
}

TEST(AbcWriter, MidiFileMetadataRoundTrip) {
  // The same through a real MIDI file (midi.h writer and reader).
  auto seq = perform(waltz(), 90, 0.0, 9, 0.0);
  seq.tempos.push_back({0.0, 90});
  seq.time_signatures.push_back({0.0, 3, 4});
  seq.key_signatures.push_back({0.0, 1, false});
  NoteSequence back = read_midi_bytes(write_midi_bytes(seq), "waltz.mid");
  ASSERT_FALSE(back.time_signatures.empty());
  auto t = write_abc(back, {});
  EXPECT_EQ(t.meter, "3/4");
  EXPECT_EQ(t.tempo_bpm, 90);
  EXPECT_EQ(t.key, "G");
  EXPECT_EQ(t.pickup, Fraction(0));
  // every melody note lands on a quarter-note position
  for (const auto& n : t.notes) EXPECT_EQ((n.start / Fraction(1, 4)).den, 1) << n.start.str();
  check_tools_and_roundtrip(t);
}

TEST(AbcWriter, Deterministic) {
  auto seq = perform(waltz(), 100, 0.02, 10);
  auto a = write_abc(seq, {}), b = write_abc(seq, {});
  EXPECT_EQ(a.text, b.text);
  // Input order does not matter.
  NoteSequence rev = seq;
  std::reverse(rev.notes.begin(), rev.notes.end());
  EXPECT_EQ(write_abc(rev, {}).text, a.text);
}

TEST(AbcWriter, EmptyInputWritesValidTune) {
  NoteSequence empty;
  auto t = write_abc(empty, {});
  EXPECT_TRUE(t.notes.empty());
  if (have_tools()) {
    auto probs = validate_with_tools(t.text);
    EXPECT_TRUE(probs.empty()) << probs.front() << "\n" << t.text;
  }
}

namespace {
// A random tune: meter, key, rhythm per beat (straight or triplet), chords, a second part.
struct RandomTune {
  std::vector<N> notes;
  std::string meter;
  double bpm;
};
RandomTune random_tune(unsigned seed, bool allow_triplets, bool second_part) {
  std::mt19937 rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const char* meters[] = {"2/4", "3/4", "4/4", "6/8"};
  RandomTune r;
  r.meter = meters[pick(4)];
  r.bpm = 70 + pick(70);
  bool compound = r.meter == "6/8";
  int beats_per_bar = r.meter == "2/4" || compound ? 2 : r.meter == "3/4" ? 3 : 4;
  const int scale[] = {0, 2, 4, 5, 7, 9, 11};
  int tonic = 55 + pick(12);
  int degree = 7;
  // beat length in quarters
  double beat_q = compound ? 1.5 : 1.0;
  double t = 0;
  int bars = 6 + pick(4);
  for (int b = 0; b < bars; ++b) {
    for (int k = 0; k < beats_per_bar; ++k) {
      std::vector<double> cuts;  // fractions of the beat
      int kind = pick(allow_triplets && !compound ? 6 : 5);
      if (compound) {
        if (kind == 0) cuts = {0};
        else if (kind == 1) cuts = {0, 2.0 / 3};
        else cuts = {0, 1.0 / 3, 2.0 / 3};
      } else if (kind == 0) cuts = {0};
      else if (kind <= 2) cuts = {0, 0.5};
      else if (kind == 3) cuts = {0, 0.25, 0.5, 0.75};
      else if (kind == 4) cuts = {0, 0.5, 0.75};
      else cuts = {0, 1.0 / 3, 2.0 / 3};
      for (size_t c = 0; c < cuts.size(); ++c) {
        double on = t + cuts[c] * beat_q;
        double off = t + (c + 1 < cuts.size() ? cuts[c + 1] : 1.0) * beat_q;
        bool triplet = !compound && cuts.size() == 3 && cuts[1] < 0.4;
        if (pick(8) == 0 && !triplet) continue;  // a rest (not inside a triplet: that would be ambiguous)
        degree = std::max(0, std::min(20, degree + pick(5) - 2));
        int p = tonic + 12 * (degree / 7) + scale[degree % 7] - 12;
        if (pick(12) == 0) p += 1;  // chromatic
        r.notes.push_back({p, on, (off - on) * 0.9});
        if (pick(6) == 0) r.notes.push_back({p - 5, on, (off - on) * 0.9});  // a two-note chord
      }
      t += beat_q;
    }
  }
  if (second_part) {
    double bar_q = beats_per_bar * beat_q;
    for (int b = 0; b < bars; ++b) r.notes.push_back({tonic - 12 - (b % 2) * 5, b * bar_q, bar_q * 0.95, 32, false});
  }
  return r;
}
}  // namespace

TEST(AbcWriter, RandomPerformancesValidateAndRoundTrip) {
  // Each emitted tune must pass the tools and read back as the quantised notes,
  // whatever the estimator decided.
  for (unsigned seed = 1; seed <= 16; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    auto rt = random_tune(seed, true, seed % 2 == 0);
    auto seq = perform(rt.notes, rt.bpm, 0.015, seed);
    AbcWriterConfig cfg;
    if (seed % 3 == 0) cfg.grid_denominator = 32;
    if (seed % 4 == 0) cfg.bars_per_line = 3;
    check_tools_and_roundtrip(write_abc(seq, cfg));
  }
}

TEST(AbcWriter, JitterQuantisesToTheTrueGrid) {
  // With meter and tempo given, +-20 ms of jitter must not move any onset.
  int checked = 0;
  for (unsigned seed = 101; seed <= 112; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    auto rt = random_tune(seed, true, false);
    // At <= 100 bpm, +-20 ms is <= 0.033 beat: well inside half the 0.083-beat gap
    // between a sixteenth and a triplet eighth.
    if (rt.bpm > 100) rt.bpm = 100;
    auto seq = perform(rt.notes, rt.bpm, 0.02, seed);
    AbcWriterConfig cfg;
    cfg.meter = rt.meter;
    bool compound = rt.meter == "6/8";
    cfg.tempo_bpm = compound ? rt.bpm / 1.5 : rt.bpm;
    cfg.split_piano = false;
    auto tune = write_abc(seq, cfg);
    // true onsets in whole notes, relative to the first one
    std::vector<Fraction> want, got;
    std::set<std::pair<int64_t, int>> seen;
    for (const auto& n : rt.notes) {
      Fraction w(std::llround(n.start_beats * 12), 48);  // quarters -> whole notes (grid of 1/12 quarter)
      if (seen.insert({w.num * 1000000 / w.den, n.pitch}).second) want.push_back(w);
    }
    std::sort(want.begin(), want.end());
    want.erase(std::unique(want.begin(), want.end()), want.end());
    for (const auto& n : tune.notes) got.push_back(n.start);
    std::sort(got.begin(), got.end());
    got.erase(std::unique(got.begin(), got.end()), got.end());
    if (std::getenv("TS_ABC_DEBUG")) {
      for (size_t i = 0; i < std::max(want.size(), got.size()); ++i)
        std::printf("%zu want %s got %s\n", i, i < want.size() ? (want[i] - want[0]).str().c_str() : "-",
                    i < got.size() ? (got[i] - got[0]).str().c_str() : "-");
    }
    ASSERT_EQ(want.size(), got.size()) << tune.text;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(want[i] - want[0], got[i] - got[0]) << "onset " << i << "\n" << tune.text;
      ++checked;
    }
    check_tools_and_roundtrip(tune);
  }
  EXPECT_GT(checked, 200);
}

// ------------------------------------------------------------------ reader units
namespace {
std::vector<std::pair<int, Fraction>> ps(const AbcTuneNotes& t, int voice = 0) {
  std::vector<std::pair<int, Fraction>> v;
  for (const auto& n : t.notes)
    if (n.voice == voice) v.emplace_back(n.pitch, n.start);
  return v;
}
AbcTuneNotes one(const std::string& body, const std::string& hdr = "M:4/4\nL:1/8\n", AbcReaderConfig cfg = {}) {
  auto t = read_abc_text("X:1\nT:t\n" + hdr + "K:C\n" + body + "\n", "unit.abc", cfg);
  return t.at(0);
}
}  // namespace

TEST(AbcReader, PitchesOctavesAccidentals) {
  auto t = one("C c c' C, ^c c C =c _B b |");
  std::vector<int> want = {60, 72, 84, 48, 73, 73, 61, 72, 70, 82};
  ASSERT_EQ(t.notes.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(t.notes[i].pitch, want[i]) << i;
  AbcReaderConfig oct;
  oct.pitch_propagation = false;
  auto o = one("^c C c | c", "M:4/4\nL:1/8\n", oct);
  EXPECT_EQ(o.notes[1].pitch, 60);
  EXPECT_EQ(o.notes[2].pitch, 73);
  EXPECT_EQ(o.notes[3].pitch, 72);  // bar line resets
}

TEST(AbcReader, KeysAndModes) {
  auto k = [](const std::string& key, const std::string& body) {
    return read_abc_text("X:1\nK:" + key + "\n" + body + "\n", "k.abc")[0];
  };
  EXPECT_EQ(k("G", "F").notes[0].pitch, 66);
  EXPECT_EQ(k("Dm", "B").notes[0].pitch, 70);
  EXPECT_EQ(k("D dor", "F").notes[0].pitch, 65);
  EXPECT_EQ(k("A mix", "G").notes[0].pitch, 67);
  EXPECT_EQ(k("D exp _b _e ^f", "B E F").notes[0].pitch, 70);
  EXPECT_EQ(k("none", "F").notes[0].pitch, 65);
}

TEST(AbcReader, LengthsRestsChordsTies) {
  auto t = one("A/ A// A3/2 A2 z x/ | Z2 | [CEG]2 [C2E2] [CE]/ | ^c4- | c4 c4|");
  std::vector<Fraction> starts;
  for (const auto& n : t.notes) starts.push_back(n.start);
  const Fraction e(1, 8);
  EXPECT_EQ(t.notes[0].length, e / Fraction(2));
  EXPECT_EQ(t.notes[1].length, e / Fraction(4));
  EXPECT_EQ(t.notes[2].length, e * Fraction(3, 2));
  EXPECT_EQ(t.notes[3].start, e * Fraction(1, 2) + e * Fraction(1, 4) + e * Fraction(3, 2));
  // after A2 z x/ and Z2 (two 4/4 bars)
  Fraction chord = t.notes[3].start + e * Fraction(2) + e + e / Fraction(2) + Fraction(2);
  EXPECT_EQ(t.notes[4].start, chord);
  EXPECT_EQ(t.notes[4].length, e * Fraction(2));
  EXPECT_EQ(t.notes[4 + 3].length, e * Fraction(2));  // [C2E2]: first note's length
  // tie over the bar: c takes the tied C#, then c is natural again
  const auto& last = t.notes[t.notes.size() - 2];
  EXPECT_EQ(last.pitch, 73);
  EXPECT_EQ(last.length, Fraction(1));
  EXPECT_EQ(t.notes.back().pitch, 72);
}

TEST(AbcReader, TupletsBrokenRhythmGracesDecorations) {
  auto t = one("(3ABc (3:2:2A2B A>B A<B {g}A !trill!B ~c \"Am\"d \"^text\"e .f |");
  std::vector<Fraction> lens;
  for (const auto& n : t.notes) lens.push_back(n.length);
  const Fraction e(1, 8);
  EXPECT_EQ(lens[0], e * Fraction(2, 3));
  EXPECT_EQ(lens[3], e * Fraction(4, 3));
  EXPECT_EQ(lens[4], e * Fraction(2, 3));
  EXPECT_EQ(lens[5], e * Fraction(3, 2));
  EXPECT_EQ(lens[6], e / Fraction(2));
  EXPECT_EQ(lens[7], e / Fraction(2));
  EXPECT_EQ(lens[8], e * Fraction(3, 2));
  EXPECT_EQ(t.notes.size(), 15u);  // the grace note takes no time and is not played
  EXPECT_EQ(t.notes.back().start, Fraction(13, 8));
  AbcReaderConfig play;
  play.play_grace_notes = true;
  auto g = one("{g}A2", "M:4/4\nL:1/8\n", play);
  ASSERT_EQ(g.notes.size(), 2u);
  EXPECT_EQ(g.notes[0].pitch, 79);
  EXPECT_EQ(g.notes[0].length, Fraction(1, 32));
  EXPECT_EQ(g.notes[1].start, Fraction(1, 32));
  // (5 in 6/8 and in 4/4
  auto five68 = one("(5ABcde", "M:6/8\nL:1/8\n");
  EXPECT_EQ(five68.notes[0].length, Fraction(3, 40));
  auto five44 = one("(5ABcde");
  EXPECT_EQ(five44.notes[0].length, Fraction(1, 20));
}

TEST(AbcReader, RepeatsAndEndings) {
  auto seq = [](const AbcTuneNotes& t) {
    std::string s;
    for (const auto& n : t.notes) s += std::to_string(n.pitch) + " ";
    return s;
  };
  EXPECT_EQ(seq(one("C D |: E F :| G")), "60 62 64 65 64 65 67 ");
  EXPECT_EQ(seq(one("C D || E F :| G")), "60 62 64 65 60 62 64 65 67 ");
  EXPECT_EQ(seq(one("C |: D |1 E :|2 F |]")), "60 62 64 62 65 ");
  EXPECT_EQ(seq(one("C |: D [1 E :| [2 F |]")), "60 62 64 62 65 ");
  EXPECT_EQ(seq(one("C |: D :: E :| F")), "60 62 62 64 64 65 ");
  AbcReaderConfig no;
  no.expand_repeats = false;
  EXPECT_EQ(seq(one("C |: D :| E", "M:4/4\nL:1/8\n", no)), "60 62 64 ");
  // starts advance in time
  auto t = one("|: C D :|");
  EXPECT_EQ(t.notes[2].start, Fraction(2, 8));
}

TEST(AbcReader, PartsVoicesFieldsAndTempo) {
  auto t = read_abc_text("X:1\nT:p\nM:2/4\nL:1/8\nQ:1/4=60\nP:BA\nK:G\nP:A\nF2 G2|\nP:B\nA2 B2|\n", "p.abc")[0];
  ASSERT_EQ(t.notes.size(), 4u);
  EXPECT_EQ(t.notes[0].pitch, 69);
  EXPECT_EQ(t.notes[2].pitch, 66);
  EXPECT_DOUBLE_EQ(t.sequence.notes[1].onset_s, 1.0);  // quarter at 60 bpm
  auto v = read_abc_text(
      "X:2\nT:v\nM:4/4\nL:1/4\nK:C\nV:1 name=\"a\"\n%%MIDI program 40\nV:2 clef=bass\n%%MIDI program 32\n"
      "[V:1] c d [K:G] f [L:1/8] f2 |\n[V:2] C,4 |\n",
      "v.abc")[0];
  ASSERT_EQ(v.voice_ids.size(), 2u);
  auto v1 = ps(v, 0), v2 = ps(v, 1);
  ASSERT_EQ(v1.size(), 4u);
  EXPECT_EQ(v1[2].first, 78);
  EXPECT_EQ(v1[3].second, Fraction(3, 4));
  ASSERT_EQ(v2.size(), 1u);
  EXPECT_EQ(v2[0].first, 48);
  for (const auto& n : v.notes) EXPECT_EQ(n.program, n.voice == 0 ? 40 : 32);
  auto d = read_abc_text("X:3\nK:C\nV:D clef=perc\n%%MIDI channel 10\nC,,2 ^F,,2\n", "d.abc")[0];
  ASSERT_EQ(d.notes.size(), 2u);
  EXPECT_TRUE(d.notes[0].is_drum);
  EXPECT_EQ(d.notes[1].pitch, 42);
}

TEST(AbcReader, SeveralTunesAndErrors) {
  auto ts = read_abc_text("%abc-2.1\n\nX:1\nT:a\nK:C\nC\n\nX:2\nT:b\nK:D\nF\n", "two.abc");
  ASSERT_EQ(ts.size(), 2u);
  EXPECT_EQ(ts[1].title, "b");
  EXPECT_EQ(ts[1].notes[0].pitch, 66);
  EXPECT_THROW(read_abc_text("no tune here\n", "none.abc"), InputError);
  AbcReaderConfig strict;
  strict.strict = true;
  try {
    read_abc_text("X:1\nK:C\nC D # E\n", "bad.abc", strict);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.abc:3:5"), std::string::npos) << e.what();
  }
  auto lax = read_abc_text("X:1\nK:C\nC D # E\n", "bad.abc");
  EXPECT_EQ(lax[0].notes.size(), 3u);
  EXPECT_EQ(lax[0].warnings.size(), 1u);
  EXPECT_THROW(read_abc_file("/nonexistent/x.abc"), InputError);
}

// ------------------------------------------------------------------ reader vs abc2midi on the corpora
namespace {
// Copy for both players: X: renumbered 1..N (abc2midi names its files by X:),
// chordattack 0, ornament decorations removed (abc2midi expands ~ T H !trill!
// into extra notes; our reader plays the written note) and R: fields blanked
// (abc2midi swings the eighths of an R:hornpipe).
std::string prepare_corpus_copy(const std::string& text) {
  std::istringstream in(text);
  std::ostringstream out;
  int x = 0;
  bool body = false;
  for (std::string l; std::getline(in, l);) {
    if (!l.empty() && l.back() == '\r') l.pop_back();
    if (l.rfind("X:", 0) == 0) {
      out << "X:" << ++x << "\n%%MIDI chordattack 0\n";
      body = false;
      continue;
    }
    if (l.size() >= 2 && std::isalpha(static_cast<unsigned char>(l[0])) && l[1] == ':') {
      if (l[0] == 'K') body = true;
      if (l[0] == 'R') { out << "%\n"; continue; }  // R:hornpipe makes abc2midi swing the eighths
      out << l << "\n";
      continue;
    }
    if (!body || l.empty() || l[0] == '%') { out << l << "\n"; continue; }
    std::string o;
    bool quote = false, field = false;
    for (size_t i = 0; i < l.size(); ++i) {
      char c = l[i];
      if (c == '%' && !quote) { o += l.substr(i); break; }
      if (c == '"') quote = !quote;
      if (quote) { o += c; continue; }
      if (c == '[' && i + 2 < l.size() && std::isalpha(static_cast<unsigned char>(l[i + 1])) && l[i + 2] == ':') field = true;
      if (field) { o += c; if (c == ']') field = false; continue; }
      if (c == '!') {
        size_t j = i + 1;
        while (j < l.size() && l[j] != '!' && l[j] != '|' && !std::isspace(static_cast<unsigned char>(l[j]))) ++j;
        if (j < l.size() && l[j] == '!' && j > i + 1) { i = j; continue; }
      }
      if (std::string("~THLMOPSRJuv").find(c) != std::string::npos) continue;
      o += c;
    }
    out << o << "\n";
  }
  return out.str();
}
}  // namespace

TEST(AbcCorpus, ReaderAgreesWithAbc2midi) {
  TS_REQUIRE_SHARED();
  if (!test::have_program("abc2midi")) GTEST_SKIP() << "abc2midi missing";
  std::vector<std::string> files;
  for (const char* sub : {"corpora/nottingham/ABC_cleaned", "corpora/abc"}) {
    fs::path root = fs::path(test::shared_dir()) / sub;
    if (!fs::exists(root)) continue;
    for (const auto& e : fs::recursive_directory_iterator(root))
      if (e.is_regular_file() && e.path().extension() == ".abc") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty());
  std::string dir = test::temp_dir("abccorpus");
  AbcReaderConfig cfg;
  cfg.play_grace_notes = true;
  long compared = 0, agreed = 0, only_ours = 0, skipped = 0;
  std::vector<std::string> disagreements;
  for (const auto& path : files) {
    std::string copy = prepare_corpus_copy(read_file_text(path));
    std::string rel = path.substr(test::shared_dir().size());
    std::string base = dir + "/c";
    std::ofstream(base + ".abc") << copy;
    for (const auto& e : fs::directory_iterator(dir)) if (e.path().extension() == ".mid") fs::remove(e.path());
    run_command("cd " + dir + " && abc2midi c.abc -NGUI > log.txt 2>&1");
    std::vector<AbcTuneNotes> tunes;
    try {
      tunes = read_abc_text(copy, rel, cfg);
    } catch (const InputError& e) {
      disagreements.push_back(rel + ": reader error " + e.what());
      continue;
    }
    for (const auto& t : tunes) {
      std::string mid = base + std::to_string(t.reference_number) + ".mid";
      if (!fs::exists(mid)) { ++only_ours; continue; }
      Smf smf = read_smf(mid);
      if (!smf.ok) { ++skipped; continue; }
      // abc2midi: format 0 = one voice; format 1: track 0 is the tempo track, voices follow.
      std::map<int, std::vector<std::pair<long, int>>> theirs;
      for (const auto& n : smf.notes) theirs[smf.format == 0 ? 0 : n.track - 1].emplace_back(n.on, n.pitch);
      std::map<int, std::vector<std::pair<long, int>>> ours;
      for (const auto& n : t.notes) {
        Fraction tk = n.start * Fraction(4 * smf.ppq);
        ours[n.voice].emplace_back(static_cast<long>(std::floor(tk.value() + 0.5)), n.pitch);
      }
      // Voices without notes have no track of notes in abc2midi: compare non-empty voices in order.
      std::vector<std::vector<std::pair<long, int>>> a, b;
      for (auto& kv : ours) { if (!kv.second.empty()) a.push_back(kv.second); }
      for (auto& kv : theirs) { if (!kv.second.empty()) b.push_back(kv.second); }
      ++compared;
      std::string why;
      if (a.size() != b.size()) why = "voices " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
      for (size_t v = 0; v < a.size() && why.empty(); ++v) {
        auto& x = a[v];
        auto& y = b[v];
        auto cmp = [](const std::pair<long, int>& p, const std::pair<long, int>& q) {
          return p.first != q.first ? p.first < q.first : p.second < q.second;
        };
        std::sort(x.begin(), x.end(), cmp);
        std::sort(y.begin(), y.end(), cmp);
        if (x.size() != y.size()) why = "voice " + std::to_string(v) + ": " + std::to_string(x.size()) + " notes vs " + std::to_string(y.size());
        for (size_t i = 0; i < std::min(x.size(), y.size()) && why.empty(); ++i)
          if (std::abs(x[i].first - y[i].first) > 2 || x[i].second != y[i].second)
            why = "voice " + std::to_string(v) + " note " + std::to_string(i) + ": ours (tick " + std::to_string(x[i].first) +
                  ", pitch " + std::to_string(x[i].second) + ") abc2midi (tick " + std::to_string(y[i].first) + ", pitch " +
                  std::to_string(y[i].second) + ")";
        if (why.empty() && x.size() != y.size()) why = "length";
      }
      if (why.empty()) ++agreed;
      else disagreements.push_back(rel + " tune #" + std::to_string(t.reference_number) + " (line " + std::to_string(t.line) + " of the renumbered copy) \"" + t.title + "\": " + why);
    }
  }
  double rate = compared ? static_cast<double>(agreed) / compared : 0;
  std::printf("[abc corpus] files %zu, tunes compared %ld, agree %ld (%.2f%%), ours-only (abc2midi wrote no MIDI) %ld, unreadable MIDI %ld\n",
              files.size(), compared, agreed, 100 * rate, only_ours, skipped);
  const size_t show = std::getenv("TS_ABC_SHOW_ALL") ? disagreements.size() : 200;
  for (size_t i = 0; i < disagreements.size() && i < show; ++i) std::printf("[abc corpus] disagree: %s\n", disagreements[i].c_str());
  if (disagreements.size() > show) std::printf("[abc corpus] ... %zu more (TS_ABC_SHOW_ALL=1 lists all)\n", disagreements.size() - show);
  EXPECT_GE(rate, 0.99);
}

// ------------------------------------------------------------------ estimation quality (numbers for docs/abc.md)
namespace {
std::string meter_norm(std::string m) {
  m.erase(std::remove(m.begin(), m.end(), ' '), m.end());
  if (m == "C") return "4/4";
  if (m == "C|") return "2/2";
  return m;
}
// duple/triple x simple/compound
std::string meter_class(const std::string& m) {
  auto s = m.find('/');
  if (s == std::string::npos) return "?";
  int n = std::atoi(m.substr(0, s).c_str()), d = std::atoi(m.substr(s + 1).c_str());
  bool compound = d >= 8 && n % 3 == 0 && n > 3;
  int beats = compound ? n / 3 : n;
  return std::string(compound ? "compound-" : "simple-") + (beats % 3 == 0 ? "triple" : "duple");
}
double quarters_at(const std::vector<TempoChange>& tempos, double t) {
  double q = 0, last_t = 0, bpm = tempos.empty() ? 120.0 : tempos[0].bpm;
  for (const auto& tc : tempos) {
    if (tc.time_s > t) break;
    q += (tc.time_s - last_t) * bpm / 60.0;
    last_t = tc.time_s;
    bpm = tc.bpm;
  }
  return q + (t - last_t) * bpm / 60.0;
}
// Play quarter positions back at a random tempo (60-160 bpm), +-5% sinusoidal drift, 15 ms jitter.
NoteSequence replay(const NoteSequence& in, std::mt19937& rng) {
  std::uniform_real_distribution<double> bpm_d(60, 160), phase_d(0, 6.283);
  std::normal_distribution<double> jit(0, 0.015);
  const double bpm0 = bpm_d(rng), phase = phase_d(rng);
  std::vector<double> table(1, 0.0);  // time at q = k/64 quarters
  const double h = 1.0 / 64;
  auto time_of = [&](double q) {  // integral of 60 / bpm(x) dx over [0, q]
    size_t k = static_cast<size_t>(std::max(0.0, q) / h);
    while (table.size() <= k + 1) {
      double x = (table.size() - 1) * h;
      table.push_back(table.back() + h * 60.0 / (bpm0 * (1 + 0.05 * std::sin(6.283 * x / 32 + phase))));
    }
    return table[k] + (std::max(0.0, q) - k * h) * (table[k + 1] - table[k]) / h;
  };
  NoteSequence out;
  for (Note n : in.notes) {
    double q0 = quarters_at(in.tempos, n.onset_s), q1 = quarters_at(in.tempos, n.offset_s);
    n.onset_s = 0.5 + time_of(q0) + std::max(-0.04, std::min(0.04, jit(rng)));
    n.offset_s = 0.5 + time_of(q1) + std::max(-0.04, std::min(0.04, jit(rng)));
    if (n.offset_s < n.onset_s + 0.03) n.offset_s = n.onset_s + 0.03;
    out.notes.push_back(n);
  }
  out.sort();
  return out;
}
}  // namespace

TEST(AbcEstimation, NottinghamAndAsapKeyAndMeter) {
  TS_REQUIRE_SHARED();
  const std::string root = test::shared_dir() + "/corpora";
  // Nottingham: every 3rd MIDI file (deterministic sample), truth from the ABC header.
  std::map<std::string, std::map<int, std::pair<std::string, int>>> truth;  // file -> X -> (meter, fifths)
  std::vector<std::string> mids;
  for (const auto& e : fs::directory_iterator(root + "/nottingham/MIDI"))
    if (e.path().extension() == ".mid") mids.push_back(e.path().string());
  std::sort(mids.begin(), mids.end());
  if (mids.empty()) GTEST_SKIP() << "no Nottingham MIDI";
  int n = 0, key_ok = 0, meter_ok = 0, class_ok = 0;
  std::mt19937 rng(2026);
  for (size_t i = 0; i < mids.size(); i += 3) {
    std::string stem = fs::path(mids[i]).stem().string();
    size_t d = stem.find_last_not_of("0123456789");
    if (d == std::string::npos || d + 1 >= stem.size()) continue;
    std::string base = stem.substr(0, d + 1);
    int x = std::atoi(stem.c_str() + d + 1);
    if (!truth.count(base)) {
      std::string abc = root + "/nottingham/ABC_cleaned/" + base + ".abc";
      if (!fs::exists(abc)) { truth[base]; continue; }
      for (const auto& t : read_abc_file(abc))
        truth[base][t.reference_number] = {meter_norm(t.meter), t.sequence.key_signatures.empty() ? 0 : t.sequence.key_signatures[0].fifths};
    }
    auto it = truth[base].find(x);
    if (it == truth[base].end()) continue;
    NoteSequence seq = read_midi_file(mids[i]);
    auto tune = write_abc(replay(seq, rng), {});
    ++n;
    key_ok += tune.key_fifths == it->second.second;
    meter_ok += meter_norm(tune.meter) == it->second.first;
    class_ok += meter_class(tune.meter) == meter_class(it->second.first);
    if (std::getenv("TS_ABC_DEBUG")) std::printf("NOTT %s -> %s\n", it->second.first.c_str(), tune.meter.c_str());
  }
  ASSERT_GT(n, 100);
  std::printf("[abc estimation] Nottingham (every 3rd MIDI file, random tempo 60-160, +-5%% drift, 15 ms jitter): "
              "%d tunes, key signature %.1f%%, meter exact %.1f%%, meter class %.1f%%\n",
              n, 100.0 * key_ok / n, 100.0 * meter_ok / n, 100.0 * class_ok / n);
  // ASAP performances (every 10th), truth from the first downbeat annotation "db,M,K".
  std::vector<std::string> anns;
  for (const auto& e : fs::recursive_directory_iterator(root + "/asap")) {
    std::string p = e.path().string();
    if (p.size() > 16 && p.rfind("_annotations.txt") == p.size() - 16 && p.find("midi_score") == std::string::npos)
      anns.push_back(p);
  }
  std::sort(anns.begin(), anns.end());
  int an = 0, akey = 0, akey_enh = 0, ameter = 0, an_nz = 0, akey_nz = 0;
  for (size_t i = 0; i < anns.size(); i += 10) {
    std::string mid = anns[i].substr(0, anns[i].size() - 16) + ".mid";
    if (!fs::exists(mid)) continue;
    std::ifstream f(anns[i]);
    std::string line, meter;
    int fifths = 99;
    while (std::getline(f, line)) {
      auto c = line.find("db,");
      if (c == std::string::npos) continue;
      std::istringstream ss(line.substr(c + 3));
      std::string m, k;
      std::getline(ss, m, ',');
      std::getline(ss, k, ',');
      meter = m;
      fifths = std::atoi(k.c_str());
      break;
    }
    if (fifths == 99) continue;
    MidiReadOptions no_pedal;
    no_pedal.apply_sustain = false;
    NoteSequence seq = read_midi_file(mid, no_pedal);
    seq.tempos.clear();
    seq.time_signatures.clear();
    seq.key_signatures.clear();
    auto tune = write_abc(seq, {});
    ++an;
    akey += tune.key_fifths == fifths;
    akey_enh += ((tune.key_fifths - fifths) % 12 + 12) % 12 == 0;  // C# = Db etc.
    if (fifths != 0) {  // many ASAP annotations carry 0 for pieces in other keys
      ++an_nz;
      akey_nz += ((tune.key_fifths - fifths) % 12 + 12) % 12 == 0;
    }
    if (std::getenv("TS_ABC_DEBUG")) std::printf("ASAP %s: key %d vs %d, meter %s vs %s\n", mid.c_str(), tune.key_fifths, fifths, tune.meter.c_str(), meter.c_str());
    ameter += meter_class(tune.meter) == meter_class(meter);
  }
  if (an > 0)
    std::printf("[abc estimation] ASAP (every 10th performance, no pedal): %d performances, key signature %.1f%% "
                "(%.1f%% counting enharmonic signatures equal; %.1f%% of the %d whose annotated key is not 0), meter class %.1f%%\n",
                an, 100.0 * akey / an, 100.0 * akey_enh / an, an_nz ? 100.0 * akey_nz / an_nz : 0.0, an_nz, 100.0 * ameter / an);
  // Floors a little below the measured values (95.7 % key, 86.7 % meter exact, 91.0 % meter class
  // on Nottingham; 88 % ASAP key on the non-zero annotations; see docs/abc.md): the sample is fixed
  // and the replay seeded, the margin covers other standard libraries' random distributions.
  EXPECT_GE(static_cast<double>(key_ok) / n, 0.94);
  EXPECT_GE(static_cast<double>(meter_ok) / n, 0.84);
  EXPECT_GE(static_cast<double>(class_ok) / n, 0.88);
  if (an_nz >= 20) EXPECT_GE(static_cast<double>(akey_nz) / an_nz, 0.85);
}

// abcm2ps refuses chords of more than 8 notes: the writer keeps the outer 4 + 4.
TEST(AbcWriter, ChordsNeverExceedEightNotes) {
  tunescribe::NoteSequence seq;
  for (int bar = 0; bar < 4; ++bar)
    for (int p = 48; p < 48 + 24; p += 2)  // 12 notes struck together, within two octaves
      seq.notes.push_back({bar * 2.0, bar * 2.0 + 1.9, p, 90, 40, false});  // violin: no piano split
  tunescribe::AbcWriterConfig cfg;
  cfg.tempo_bpm = 120;
  cfg.meter = "4/4";
  auto tune = tunescribe::write_abc(seq, cfg);
  std::map<std::pair<int64_t, int64_t>, int> per_start;
  for (const auto& n : tune.notes) per_start[{n.start.num, n.start.den}]++;
  ASSERT_EQ(per_start.size(), 4u);
  for (const auto& kv : per_start) EXPECT_EQ(kv.second, 8);
  // Highest and lowest pitches survive.
  int lo = 127, hi = 0;
  for (const auto& n : tune.notes) lo = std::min(lo, n.pitch), hi = std::max(hi, n.pitch);
  EXPECT_EQ(lo, 48);
  EXPECT_EQ(hi, 70);
  if (tunescribe::test::have_program("abcm2ps")) {
    std::string dir = tunescribe::test::temp_dir("abc_chord8");
    { std::ofstream(dir + "/c.abc") << tune.text; }
    auto r = tunescribe::test::run_command("cd '" + dir + "' && abcm2ps c.abc -O c.ps");
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ((r.out + r.err).find("Too many notes"), std::string::npos) << r.out << r.err;
  }
}

// ------------------------------------------------------------------ robustness on nasty input
// Property test: whatever notes come in (model output can be messy, generated music is
// random), every tune the emitter writes must be read by abc2midi and abcm2ps without
// errors, played by abc2midi as the emitter's quantised notes, and read back by our reader.
namespace {

struct NastyCase {
  NoteSequence seq;
  AbcWriterConfig cfg;
  std::string what;  // a short description for failure messages
};

// A deliberately nasty performance: dense chords of 10-40 notes, notes from 5 ms to 20 s,
// overlapping same-pitch notes, several programs and drums, pitches 0-127, onsets off any
// grid, long silences; tempo/meter/key given, taken from MIDI metadata or estimated.
NastyCase nasty_case(unsigned seed) {
  std::mt19937 rng(seed * 7919u + 17u);
  auto uni = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  auto log_uni = [&](double a, double b) { return std::exp(uni(std::log(a), std::log(b))); };
  NastyCase c;
  std::ostringstream what;
  // Instruments: 1-4 programs (pianos split into hands), drums in 40 % of the cases.
  const int pool[] = {0, 1, 5, 24, 33, 40, 48, 56, 73, 80};
  std::vector<std::pair<int, bool>> inst;
  int ninst = 1 + pick(4);
  for (int i = 0; i < ninst; ++i) inst.emplace_back(pool[pick(10)], false);
  if (pick(10) < 4) inst.emplace_back(0, true);
  const bool wild_pitch = pick(2) == 0;  // uniform 0..127 instead of around middle C
  auto pitch = [&]() {
    if (wild_pitch) return pick(128);
    return std::max(0, std::min(127, static_cast<int>(std::lround(std::normal_distribution<double>(62, 14)(rng)))));
  };
  auto add = [&](double on, double dur, int p, std::pair<int, bool> in) {
    Note n;
    n.onset_s = on;
    n.offset_s = on + dur;
    n.pitch = p;
    n.velocity = 1 + pick(127);
    n.program = in.second ? 0 : in.first;
    n.is_drum = in.second;
    c.seq.notes.push_back(n);
  };
  double t = uni(0, 3);
  const double length_s = uni(2, 25);
  size_t budget = 150 + static_cast<size_t>(pick(250));  // notes (keeps the tools fast)
  while (t < length_s && c.seq.notes.size() < budget) {
    auto in = inst[static_cast<size_t>(pick(static_cast<int>(inst.size())))];
    switch (pick(7)) {
      case 0: case 1: {  // a dense chord, its onsets spread by up to 0-80 ms
        int n = 10 + pick(31);
        double spread = std::vector<double>{0, 0.005, 0.03, 0.08}[static_cast<size_t>(pick(4))];
        double dur = log_uni(0.05, 8);
        for (int k = 0; k < n; ++k) add(t + uni(0, spread), dur * uni(0.5, 1.5), pitch(), in);
        break;
      }
      case 2: {  // a run of notes, any lengths from 5 ms to 20 s
        int n = 2 + pick(12);
        double tt = t;
        for (int k = 0; k < n; ++k) {
          add(tt, log_uni(0.005, 20), pitch(), in);
          tt += log_uni(0.01, 1.0);
        }
        break;
      }
      case 3: {  // overlapping notes of the same pitch
        int p = pitch();
        double d = log_uni(0.05, 4);
        add(t, d, p, in);
        add(t + d * uni(0.05, 0.95), log_uni(0.02, 4), p, in);
        if (pick(2)) add(t + uni(0, 0.02), d * uni(0.2, 2), p, in);
        break;
      }
      case 4: {  // very short notes (5-40 ms), drums not filtered by length
        int n = 1 + pick(8);
        for (int k = 0; k < n; ++k) add(t + uni(0, 0.3), log_uni(0.005, 0.04), pitch(), in);
        break;
      }
      case 5: {  // notes sounding while others change: a held bass under a run
        int p = pitch();
        add(t, log_uni(1, 20), p, in);
        for (int k = 0; k < 6; ++k) add(t + k * uni(0.05, 0.4), log_uni(0.05, 1), pitch(), in);
        break;
      }
      default:  // silence, sometimes very long
        if (pick(3) == 0) t += uni(10, 60);
        break;
    }
    t += log_uni(0.005, 2.0);
  }
  // Metadata as a MIDI file would carry it.
  if (pick(3) == 0) {
    c.seq.tempos.push_back({0.0, uni(30, 250)});
    if (pick(2)) c.seq.tempos.push_back({uni(1, 10), uni(30, 250)});
    const int tsn[] = {2, 3, 4, 5, 6, 7, 9, 12, 1, 15};
    const int tsd[] = {2, 4, 8, 16, 32};
    c.seq.time_signatures.push_back({0.0, tsn[pick(10)], tsd[pick(5)]});
    c.seq.key_signatures.push_back({0.0, pick(15) - 7, pick(2) == 0});
    what << "midi metadata " << c.seq.tempos[0].bpm << " bpm " << c.seq.time_signatures[0].numerator << "/"
         << c.seq.time_signatures[0].denominator << " key " << c.seq.key_signatures[0].fifths << "; ";
  }
  c.seq.sort();
  AbcWriterConfig& cfg = c.cfg;
  cfg.title = "nasty " + std::to_string(seed);
  if (pick(3) == 0) cfg.tempo_bpm = std::round(uni(20, 400));
  const char* meters[] = {"2/4", "3/4", "4/4", "6/8", "9/8", "12/8", "2/2", "3/8", "C", "C|", "5/4", "7/8", "11/16", "1/4", "16/16"};
  if (pick(3) == 0) cfg.meter = meters[pick(15)];
  const char* keys[] = {"C", "G", "Em", "Bb", "F#m", "Ddor", "Amix", "C#", "Cb", "Ebm", "G#m", "Bloc", "Flyd", "Abm", "D#m"};
  if (pick(3) == 0) cfg.key = keys[pick(15)];
  cfg.unit_denominator = std::vector<int>{0, 4, 8, 16, 32}[static_cast<size_t>(pick(5))];
  cfg.grid_denominator = pick(2) ? 16 : 32;
  cfg.triplets = pick(4) != 0;
  cfg.bars_per_line = 1 + pick(8);
  // Line-length control on (max_line_chars = 0 hands the layout to the user: abcm2ps then
  // fails on crowded lines by design).
  cfg.max_line_chars = 30 + pick(71);
  cfg.use_midi_metadata = pick(4) != 0;
  cfg.split_piano = pick(4) != 0;
  cfg.chord_cluster_s = uni(0, 0.2);
  cfg.min_note_s = pick(3) == 0 ? 0.0 : uni(0, 0.1);
  what << "tempo " << cfg.tempo_bpm << " meter '" << cfg.meter << "' key '" << cfg.key << "' L:1/" << cfg.unit_denominator
       << " grid 1/" << cfg.grid_denominator << " bars/line " << cfg.bars_per_line << " max chars " << cfg.max_line_chars
       << " notes " << c.seq.notes.size();
  c.what = what.str();
  return c;
}

}  // namespace

TEST(AbcRobust, NastyRandomInputIsReadCleanly) {
  const bool tools = test::have_program("abc2midi") && test::have_program("abcm2ps");
  if (!tools) std::printf("[abc robust] abc2midi/abcm2ps missing: only our reader is checked\n");
  const unsigned ncases = std::getenv("TS_ABC_ROBUST_CASES") ? static_cast<unsigned>(std::atoi(std::getenv("TS_ABC_ROBUST_CASES"))) : 150;
  const unsigned first = std::getenv("TS_ABC_ROBUST_FIRST") ? static_cast<unsigned>(std::atoi(std::getenv("TS_ABC_ROBUST_FIRST"))) : 1;
  std::string dir = test::temp_dir("abcrobust");
  int failed_cases = 0;
  size_t notes_total = 0, voices_total = 0;
  for (unsigned seed = first; seed < first + ncases; ++seed) {
    NastyCase c = nasty_case(seed);
    SCOPED_TRACE("seed " + std::to_string(seed) + ": " + c.what);
    AbcTune tune;
    ASSERT_NO_THROW(tune = write_abc(c.seq, c.cfg));
    notes_total += tune.notes.size();
    voices_total += tune.voices.size();
    if (std::getenv("TS_ABC_ROBUST_SHOW")) std::printf("%s\n", tune.text.c_str());
    std::vector<std::string> probs;
    // At most 8 notes per written chord (per voice and start), the limit abcm2ps draws.
    std::map<std::pair<int, Fraction>, int> chord_size;
    for (const auto& n : tune.notes) chord_size[{n.voice, n.start}]++;
    for (const auto& kv : chord_size)
      if (kv.second > 8) probs.push_back("writer: chord of " + std::to_string(kv.second) + " notes at " + kv.first.second.str());
    // Our reader reads back exactly the quantised notes, without warnings.
    auto read = read_abc_text(tune.text, "nasty.abc");
    if (read.size() != 1) {
      probs.push_back("reader: " + std::to_string(read.size()) + " tunes");
    } else {
      for (const auto& w : read[0].warnings) probs.push_back("reader: " + w);
      const auto a = sorted_note_keys(tune.notes), b = sorted_note_keys(read[0].notes);
      if (a != b) {
        std::string d = "reader: notes differ from the quantised notes (" + std::to_string(b.size()) + " read, " +
                        std::to_string(a.size()) + " written)";
        for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
          if (a[i] != b[i]) {
            auto txt = [](const std::tuple<int, Fraction, int, Fraction>& x) {
              return "(voice " + std::to_string(std::get<0>(x)) + ", " + std::get<1>(x).str() + ", pitch " +
                     std::to_string(std::get<2>(x)) + ", " + std::get<3>(x).str() + ")";
            };
            d += "; first difference: read " + txt(b[i]) + ", written " + txt(a[i]);
            break;
          }
        probs.push_back(d);
      }
    }
    if (tools) {
      // abc2midi: any "Error" or "Warning" line is a failure. Its warnings are real problems
      // for our output (bar lengths that do not add up, unequal notes in a chord or tuplet,
      // voices of different length): abc2midi then plays something other than what we wrote.
      // %%MIDI chordattack 0 (inserted after X:) makes chord notes start together so that the
      // MIDI can be compared with the quantised notes.
      std::string text = tune.text;
      text.insert(text.find('\n') + 1, "%%MIDI chordattack 0\n");
      std::string f = write_temp(dir, "t.abc", text);
      auto r1 = run_command("abc2midi " + f + " -o " + dir + "/t.mid");
      std::istringstream s1(r1.out + r1.err);
      for (std::string l; std::getline(s1, l);)
        if (l.find("Error") != std::string::npos || l.find("Warning") != std::string::npos) probs.push_back("abc2midi: " + l);
      // abc2midi plays the quantised notes (pitch, start, length per voice; +-2 ticks at 480 ppq).
      Smf smf = read_smf(dir + "/t.mid");
      std::map<int, TickList> got, want;
      for (const auto& n : smf.notes) got[smf.format == 0 ? 0 : n.track - 1].emplace_back(n.on, n.pitch, n.off - n.on);
      for (const auto& n : tune.notes) {
        Fraction s = n.start * Fraction(1920), l = n.length * Fraction(1920);
        want[n.voice].emplace_back(std::llround(s.value()), n.pitch, std::llround(l.value()));
      }
      // Sorted by (pitch, start): abc2midi rounds tuplet positions by a tick, which could
      // reorder notes of different pitches sorted by start, never notes of one pitch.
      auto by_pitch = [](const std::tuple<long, int, long>& x, const std::tuple<long, int, long>& y) {
        return std::make_pair(std::get<1>(x), std::get<0>(x)) < std::make_pair(std::get<1>(y), std::get<0>(y));
      };
      for (auto& kv : got) std::sort(kv.second.begin(), kv.second.end(), by_pitch);
      for (auto& kv : want) {
        std::sort(kv.second.begin(), kv.second.end(), by_pitch);
        const TickList& g = got[kv.first];
        bool same = g.size() == kv.second.size();
        for (size_t i = 0; same && i < g.size(); ++i)
          same = std::abs(std::get<0>(g[i]) - std::get<0>(kv.second[i])) <= 2 && std::get<1>(g[i]) == std::get<1>(kv.second[i]) &&
                 std::abs(std::get<2>(g[i]) - std::get<2>(kv.second[i])) <= 2;
        if (!same) {
          std::string d = "abc2midi: voice " + std::to_string(kv.first) + " plays " + std::to_string(g.size()) +
                          " notes, the writer quantised " + std::to_string(kv.second.size());
          // The notes each side has that the other lacks (the first three).
          auto tick_txt = [](const std::tuple<long, int, long>& x) {
            return "(" + std::to_string(std::get<0>(x)) + ", " + std::to_string(std::get<1>(x)) + ", " +
                   std::to_string(std::get<2>(x)) + ")";
          };
          auto missing = [&](const TickList& from, const TickList& in) {
            std::string m;
            int shown = 0;
            for (const auto& x : from) {
              bool found = false;
              for (const auto& y : in)
                found = found || (std::get<1>(x) == std::get<1>(y) && std::abs(std::get<0>(x) - std::get<0>(y)) <= 2 &&
                                  std::abs(std::get<2>(x) - std::get<2>(y)) <= 2);
              if (!found && shown++ < 3) m += " " + tick_txt(x);
            }
            return m;
          };
          d += "; (tick, pitch, ticks) only abc2midi:" + missing(g, kv.second) + "; only the writer:" + missing(kv.second, g);
          probs.push_back(d);
        }
      }
      // abcm2ps: exit status 0 and no "error" line. "warning: Line underfull" is allowed: it
      // only says that a system is not filled to the page width (sparse bars, such as those of
      // a long silence, written bars_per_line to a line), which is a layout choice, not a
      // misreading; any other warning fails.
      auto r2 = run_command("abcm2ps -q " + f + " -O " + dir + "/t.ps");
      if (r2.exit_code != 0) probs.push_back("abcm2ps: exit " + std::to_string(r2.exit_code));
      std::istringstream s2(r2.out + r2.err);
      for (std::string l; std::getline(s2, l);) {
        if (l.find("rror") != std::string::npos) probs.push_back("abcm2ps: " + l);
        else if (l.find("arning") != std::string::npos && l.find("Line underfull") == std::string::npos)
          probs.push_back("abcm2ps: " + l);
      }
    }
    if (!probs.empty()) {
      ++failed_cases;
      std::string msg;
      for (size_t i = 0; i < std::min<size_t>(probs.size(), 6); ++i) msg += probs[i] + "\n";
      ADD_FAILURE() << msg;
    }
  }
  std::printf("[abc robust] %u cases, %zu quantised notes in %zu voices, %d cases with problems\n", ncases, notes_total,
              voices_total, failed_cases);
}

// Tie continuations are written without accidentals, except where a tool would read the bare
// letter as another pitch: abc2midi reads a continuation inside the bar with the bar's accidental
// state (`[_D=d]2- [Dd]2` ties D♭ to D), a chord with the same letter twice in one octave
// (`[_E=E]`) cannot be told apart without accidentals, and abc2midi 4.84 looks up the lowest
// octave (MIDI 0-11) under the previous letter (after `_D`, `E,,,,,` plays E♭).
TEST(AbcWriter, TieContinuationsKeepTheirPitchInEveryTool) {
  NoteSequence seq;
  auto add = [&](double on, double off, int pitch) { seq.notes.push_back({on, off, pitch, 90, 40, false}); };
  add(0.25, 1.5, 61);  // D♭4 + D5 from the second eighth across beat 2: tied inside bar 1
  add(0.25, 1.5, 74);
  add(3.0, 5.0, 63);   // E♭4 + E4 from beat 3 of bar 2 across the bar line
  add(3.0, 5.0, 64);
  add(6.0, 6.5, 61);   // bar 4: D♭4, then E-1 (MIDI 4)
  add(6.5, 7.9, 4);
  seq.sort();
  AbcWriterConfig cfg;
  cfg.tempo_bpm = 120;
  cfg.meter = "4/4";
  cfg.key = "C";
  auto tune = write_abc(seq, cfg);
  ASSERT_EQ(tune.notes.size(), 6u) << tune.text;
  check_tools_and_roundtrip(tune);
}
