// Tests of the Standard MIDI File reader and writer (src/notation/midi.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "test_util.h"
#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/midi.h"

using namespace tunescribe;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<uint8_t>;

// ---- hand-built SMF helpers ------------------------------------------------
Bytes vlq(uint32_t v) {
  Bytes out;
  uint8_t buf[5];
  int n = 0;
  buf[n++] = v & 0x7F;
  while (v >>= 7) buf[n++] = uint8_t(0x80 | (v & 0x7F));
  while (n) out.push_back(buf[--n]);
  return out;
}

// An event: delta ticks then raw bytes (status may be omitted for running status).
struct Ev {
  uint32_t delta;
  Bytes bytes;
};

Bytes be32(uint32_t v) { return {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)}; }

Bytes track(const std::vector<Ev>& events, bool add_eot = true) {
  Bytes data;
  for (const auto& e : events) {
    Bytes d = vlq(e.delta);
    data.insert(data.end(), d.begin(), d.end());
    data.insert(data.end(), e.bytes.begin(), e.bytes.end());
  }
  if (add_eot) data.insert(data.end(), {0x00, 0xFF, 0x2F, 0x00});
  Bytes chunk = {'M', 'T', 'r', 'k'};
  Bytes len = be32(uint32_t(data.size()));
  chunk.insert(chunk.end(), len.begin(), len.end());
  chunk.insert(chunk.end(), data.begin(), data.end());
  return chunk;
}

Bytes smf(int format, uint16_t division, const std::vector<Bytes>& tracks) {
  Bytes out = {'M', 'T', 'h', 'd', 0, 0, 0, 6, 0, uint8_t(format), uint8_t(tracks.size() >> 8),
               uint8_t(tracks.size()), uint8_t(division >> 8), uint8_t(division)};
  for (const auto& t : tracks) out.insert(out.end(), t.begin(), t.end());
  return out;
}

Bytes tempo(uint32_t uspq) { return {0xFF, 0x51, 0x03, uint8_t(uspq >> 16), uint8_t(uspq >> 8), uint8_t(uspq)}; }
Bytes on(int ch, int pitch, int vel) { return {uint8_t(0x90 | ch), uint8_t(pitch), uint8_t(vel)}; }
Bytes off(int ch, int pitch) { return {uint8_t(0x80 | ch), uint8_t(pitch), 0x40}; }
Bytes pc(int ch, int program) { return {uint8_t(0xC0 | ch), uint8_t(program)}; }
Bytes cc(int ch, int num, int value) { return {uint8_t(0xB0 | ch), uint8_t(num), uint8_t(value)}; }

NoteSequence read(const Bytes& b, bool sustain = false) {
  MidiReadOptions o;
  o.apply_sustain = sustain;
  return read_midi_bytes(b, "test.mid", o);
}

void expect_note(const Note& n, double on_s, double off_s, int pitch, int vel = -1, int program = -1) {
  EXPECT_NEAR(n.onset_s, on_s, 1e-12) << "pitch " << n.pitch;
  EXPECT_NEAR(n.offset_s, off_s, 1e-12) << "pitch " << n.pitch;
  EXPECT_EQ(n.pitch, pitch);
  if (vel >= 0) EXPECT_EQ(n.velocity, vel);
  if (program >= 0) EXPECT_EQ(n.program, program);
}

std::string expect_input_error(const Bytes& b) {
  try {
    read(b);
  } catch (const InputError& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.rfind("midi: test.mid: ", 0), 0u) << msg;
    return msg;
  }
  ADD_FAILURE() << "expected InputError";
  return "";
}

bool contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

std::vector<std::string> corpus_midi_files() {
  std::vector<std::string> files;
  fs::path root = fs::path(test::shared_dir()) / "corpora";
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    if (!it->is_regular_file()) continue;
    std::string e = lower_extension(it->path().string());
    if (e == ".mid" || e == ".midi") files.push_back(it->path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string tools_dir() { return std::string(TUNESCRIBE_SOURCE_DIR) + "/tools/fixtures"; }

bool have_mido() {
  return test::run_command(test::python() + " -c 'import mido'").exit_code == 0;
}

}  // namespace

// ---- reader: hand-built files ------------------------------------------------

TEST(MidiRead, RunningStatusAndVelocityZeroNoteOff) {
  // 96 ticks per quarter at the default 120 bpm: 1 tick = 1/192 s.
  Bytes b = smf(0, 96,
                {track({{0, on(0, 60, 100)},
                        {96, {60, 0}},        // running status, velocity 0 = note-off
                        {0, {62, 80}},        // running status note-on
                        {48, off(0, 62)},
                        {0, {64, 0}}})});     // running status after 0x80: a note-off of a pitch never on
  auto s = read(b);
  ASSERT_EQ(s.notes.size(), 2u);
  expect_note(s.notes[0], 0.0, 0.5, 60, 100, 0);
  expect_note(s.notes[1], 0.5, 0.75, 62, 80, 0);
  EXPECT_DOUBLE_EQ(s.duration_s, 0.75);
  ASSERT_EQ(s.tempos.size(), 1u);  // the implicit 120 bpm
  EXPECT_DOUBLE_EQ(s.tempos[0].bpm, 120.0);
}

TEST(MidiRead, TempoChangesGiveExactSeconds) {
  // Format 1: tempo map in track 0, notes in track 1.
  // tpq 480; 500000 µs/q until tick 960, then 250000 until tick 1920, then 333333.
  Bytes t0 = track({{0, tempo(500000)}, {960, tempo(250000)}, {960, tempo(333333)}});
  Bytes t1 = track({{480, on(0, 60, 90)},    // 0.5 s
                    {960, off(0, 60)},       // tick 1440: 1.0 + 480*0.25/480 = 1.25 s
                    {0, on(0, 61, 90)},      // 1.25 s
                    {1000, off(0, 61)}});    // tick 2440: 1.5 + 520*0.333333/480 s
  auto s = read(smf(1, 480, {t0, t1}));
  ASSERT_EQ(s.notes.size(), 2u);
  EXPECT_DOUBLE_EQ(s.notes[0].onset_s, 0.5);
  EXPECT_DOUBLE_EQ(s.notes[0].offset_s, 1.25);
  EXPECT_DOUBLE_EQ(s.notes[1].onset_s, 1.25);
  // Exact: (960*500000 + 960*250000 + 520*333333) µs·tick / (1e6 * 480)
  EXPECT_DOUBLE_EQ(s.notes[1].offset_s, (960.0 * 500000 + 960.0 * 250000 + 520.0 * 333333) / 480e6);
  ASSERT_EQ(s.tempos.size(), 3u);
  EXPECT_DOUBLE_EQ(s.tempos[0].time_s, 0.0);
  EXPECT_DOUBLE_EQ(s.tempos[0].bpm, 120.0);
  EXPECT_DOUBLE_EQ(s.tempos[1].time_s, 1.0);
  EXPECT_DOUBLE_EQ(s.tempos[1].bpm, 240.0);
  EXPECT_DOUBLE_EQ(s.tempos[2].time_s, 1.5);
  EXPECT_NEAR(s.tempos[2].bpm, 6e7 / 333333, 1e-9);
}

TEST(MidiRead, TempoFromALaterTrackAppliesToEarlierTracksAndLastTempoAtATickWins) {
  Bytes t0 = track({{0, on(0, 60, 90)}, {200, off(0, 60)}});
  Bytes t1 = track({{0, tempo(1000000)}, {0, tempo(250000)}, {100, tempo(1000000)}});
  auto s = read(smf(1, 100, {t0, t1}));
  ASSERT_EQ(s.notes.size(), 1u);
  // 100 ticks at 0.25 s/q (tpq 100) = 0.25 s, then 100 ticks at 1 s/q = 1 s.
  EXPECT_DOUBLE_EQ(s.notes[0].offset_s, 1.25);
  ASSERT_EQ(s.tempos.size(), 2u);
  EXPECT_DOUBLE_EQ(s.tempos[0].bpm, 240.0);
}

TEST(MidiRead, SysexAndMetaEventsAreSkipped) {
  std::string text(200, 'x');  // a meta length needing a 2-byte VLQ
  Bytes text_meta = {0xFF, 0x01};
  Bytes len = vlq(200);
  text_meta.insert(text_meta.end(), len.begin(), len.end());
  text_meta.insert(text_meta.end(), text.begin(), text.end());
  Bytes sysex = {0xF0, 0x05, 0x7E, 0x7F, 0x09, 0x01, 0xF7};
  Bytes escape = {0xF7, 0x02, 0xF3, 0x01};                 // F7 escape with a status byte inside
  Bytes seq_specific = {0xFF, 0x7F, 0x03, 0x90, 0x3C, 0x64};  // looks like a note-on: must be skipped
  Bytes b = smf(0, 96,
                {track({{0, sysex},
                        {0, on(0, 60, 100)},
                        {0, text_meta},
                        {0, {64, 100}},  // running status survives a meta event (as in mido)
                        {10, escape},
                        {0, seq_specific},
                        {86, off(0, 60)},
                        {0, off(0, 64)},
                        {0, {0xFF, 0x06, 0x00}}})});  // empty marker
  auto s = read(b);
  ASSERT_EQ(s.notes.size(), 2u);
  expect_note(s.notes[0], 0.0, 0.5, 60, 100);
  expect_note(s.notes[1], 0.0, 0.5, 64, 100);
  // Running status after a sysex is an error (sysex cancels it).
  Bytes bad = smf(0, 96, {track({{0, on(0, 60, 100)}, {0, sysex}, {10, {60, 0}}})});
  EXPECT_TRUE(contains(expect_input_error(bad), "running status"));
}

TEST(MidiRead, ProgramChangesPerChannelAtTheNoteOn) {
  Bytes t0 = track({{0, pc(0, 40)}, {0, pc(2, 73)}});  // programs set in another track
  Bytes t1 = track({{0, on(0, 60, 100)},
                    {0, on(1, 62, 100)},  // channel 1: no program change -> 0
                    {0, on(2, 64, 100)},
                    {100, off(0, 60)},
                    {0, pc(0, 41)},       // applies to the next note only
                    {0, on(0, 65, 100)},
                    {50, pc(0, 42)},      // while 65 sounds: 65 keeps program 41
                    {50, off(0, 65)},
                    {0, off(1, 62)},
                    {0, off(2, 64)}});
  auto s = read(smf(1, 100, {t0, t1}));
  std::map<int, int> program_of;
  for (const auto& n : s.notes) program_of[n.pitch] = n.program;
  ASSERT_EQ(s.notes.size(), 4u);
  EXPECT_EQ(program_of[60], 40);
  EXPECT_EQ(program_of[62], 0);
  EXPECT_EQ(program_of[64], 73);
  EXPECT_EQ(program_of[65], 41);
}

TEST(MidiRead, Channel10IsDrums) {
  Bytes b = smf(0, 100, {track({{0, pc(9, 25)}, {0, on(9, 36, 120)}, {0, on(0, 36, 50)}, {10, off(9, 36)}, {10, off(0, 36)}})});
  auto s = read(b);
  ASSERT_EQ(s.notes.size(), 2u);
  const Note& drum = s.notes[0].is_drum ? s.notes[0] : s.notes[1];
  const Note& melodic = s.notes[0].is_drum ? s.notes[1] : s.notes[0];
  EXPECT_TRUE(drum.is_drum);
  EXPECT_EQ(drum.program, 0);
  EXPECT_EQ(drum.velocity, 120);
  EXPECT_NEAR(drum.offset_s, 0.05, 1e-12);
  EXPECT_FALSE(melodic.is_drum);
  EXPECT_NEAR(melodic.offset_s, 0.1, 1e-12);
}

TEST(MidiRead, OverlappingSamePitchNotesFollowPrettyMidi) {
  // on@0, on@10, off@20, off@30: the first note-off ends both; the second is ignored.
  auto s = read(smf(0, 100, {track({{0, on(0, 60, 100)}, {10, on(0, 60, 90)}, {10, off(0, 60)}, {10, off(0, 60)}})}));
  ASSERT_EQ(s.notes.size(), 2u);
  expect_note(s.notes[0], 0.0, 0.1, 60, 100);
  expect_note(s.notes[1], 0.05, 0.1, 60, 90);
  // A note-off at the tick of a re-strike ends only the older note (file order on, off).
  s = read(smf(0, 100, {track({{0, on(0, 60, 100)}, {10, on(0, 60, 90)}, {0, off(0, 60)}, {10, off(0, 60)}})}));
  ASSERT_EQ(s.notes.size(), 2u);
  expect_note(s.notes[0], 0.0, 0.05, 60, 100);
  expect_note(s.notes[1], 0.05, 0.1, 60, 90);
  // The usual order off, on at the same tick gives the same.
  s = read(smf(0, 100, {track({{0, on(0, 60, 100)}, {10, off(0, 60)}, {0, on(0, 60, 90)}, {10, off(0, 60)}})}));
  ASSERT_EQ(s.notes.size(), 2u);
  expect_note(s.notes[0], 0.0, 0.05, 60, 100);
  expect_note(s.notes[1], 0.05, 0.1, 60, 90);
  // Same pitch on another channel or in another track is independent.
  s = read(smf(1, 100, {track({{0, on(0, 60, 100)}, {30, off(0, 60)}}), track({{10, on(0, 60, 80)}, {10, off(0, 60)}})}));
  ASSERT_EQ(s.notes.size(), 2u);
  expect_note(s.notes[0], 0.0, 0.15, 60, 100);
  expect_note(s.notes[1], 0.05, 0.1, 60, 80);
}

TEST(MidiRead, SustainPedalExtendsNotesLikeMaestro) {
  // tpq 100 at 120 bpm: 1 tick = 5 ms.
  Bytes t = track({{0, cc(0, 64, 127)},   // pedal down
                   {10, on(0, 60, 100)},  // tick 10
                   {10, off(0, 60)},      // released at 20 while the pedal is down
                   {0, on(0, 62, 100)},   // tick 20
                   {10, off(0, 62)},      // 30
                   {10, on(0, 62, 90)},   // tick 40: re-strike of 62 while sustained
                   {10, off(0, 62)},      // 50
                   {50, cc(0, 64, 0)},    // pedal up at 100
                   {0, on(0, 64, 100)},   // 100
                   {10, cc(0, 64, 100)},  // pedal down at 110 while 64 held
                   {10, cc(0, 64, 10)},   // up at 120, 64 still held
                   {30, off(0, 64)},      // 150: not extended
                   {0, on(1, 67, 100)},   // channel 1: no pedal there
                   {10, off(1, 67)},      // 160
                   {0, on(9, 36, 100)},   // drums: never sustained
                   {10, off(9, 36)},      // 170
                   {0, cc(9, 64, 127)}});
  Bytes b = smf(0, 100, {t});
  auto raw = read(b, false);
  ASSERT_EQ(raw.notes.size(), 6u);
  auto s = read(b, true);
  ASSERT_EQ(s.notes.size(), 6u);
  std::multimap<int, Note> by_pitch;
  for (const auto& n : s.notes) by_pitch.insert({n.pitch, n});
  expect_note(by_pitch.find(60)->second, 0.05, 0.5, 60);  // extended to the pedal-up at tick 100
  auto r = by_pitch.equal_range(62);
  std::vector<Note> n62;
  for (auto it = r.first; it != r.second; ++it) n62.push_back(it->second);
  std::sort(n62.begin(), n62.end(), [](const Note& a, const Note& b) { return a.onset_s < b.onset_s; });
  ASSERT_EQ(n62.size(), 2u);
  expect_note(n62[0], 0.1, 0.2, 62);   // ended by the re-strike at tick 40
  expect_note(n62[1], 0.2, 0.5, 62);   // extended to the pedal-up
  expect_note(by_pitch.find(64)->second, 0.5, 0.75, 64);
  expect_note(by_pitch.find(67)->second, 0.75, 0.8, 67);
  expect_note(by_pitch.find(36)->second, 0.8, 0.85, 36);
}

TEST(MidiRead, SustainWithoutPedalUpEndsAtTheLastEventAndZeroLengthRestrikeIsRemoved) {
  Bytes t = track({{0, cc(0, 64, 64)},
                   {0, on(0, 60, 100)},
                   {0, on(0, 60, 100)},  // same tick, same pitch, pedal down: one note survives
                   {10, off(0, 60)},
                   {0, off(0, 60)},
                   {30, on(0, 72, 100)},
                   {20, off(0, 72)}});   // tick 60 = last event
  auto s = read(smf(0, 100, {t}), true);
  ASSERT_EQ(s.notes.size(), 2u);
  expect_note(s.notes[0], 0.0, 0.3, 60);
  expect_note(s.notes[1], 0.2, 0.3, 72);
  EXPECT_EQ(read(smf(0, 100, {t}), false).notes.size(), 3u);
}

TEST(MidiRead, OpenNotesEndAtTheEndOfTheirTrack) {
  Bytes t1 = track({{0, on(0, 60, 100)}, {10, on(0, 62, 100)}, {90, {0xFF, 0x2F, 0x00}}}, false);  // ends at 100
  Bytes t2 = track({{0, on(1, 64, 100)}, {300, off(1, 64)}});
  auto s = read(smf(1, 100, {track({}), t1, t2}));
  ASSERT_EQ(s.notes.size(), 3u);
  expect_note(s.notes[0], 0.0, 0.5, 60);
  expect_note(s.notes[1], 0.0, 1.5, 64);
  expect_note(s.notes[2], 0.05, 0.5, 62);
  EXPECT_DOUBLE_EQ(s.duration_s, 1.5);
}

TEST(MidiRead, Format0AndFormat1GiveTheSameNotes) {
  Bytes f0 = smf(0, 240,
                 {track({{0, tempo(400000)}, {0, pc(0, 40)}, {0, pc(1, 42)}, {0, on(0, 76, 90)}, {0, on(1, 48, 70)},
                         {240, off(0, 76)}, {0, on(0, 79, 91)}, {240, off(0, 79)}, {0, off(1, 48)}})});
  Bytes f1 = smf(1, 240,
                 {track({{0, tempo(400000)}}), track({{0, pc(0, 40)}, {0, on(0, 76, 90)}, {240, off(0, 76)},
                                                      {0, on(0, 79, 91)}, {240, off(0, 79)}}),
                  track({{0, pc(1, 42)}, {0, on(1, 48, 70)}, {480, off(1, 48)}})});
  auto a = read(f0), b = read(f1);
  ASSERT_EQ(a.notes.size(), 3u);
  ASSERT_EQ(b.notes.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(a.notes[i], b.notes[i]) << i;
  // Sorted by (onset, is_drum, program, pitch).
  expect_note(a.notes[0], 0.0, 0.4, 76, 90, 40);
  expect_note(a.notes[1], 0.0, 0.8, 48, 70, 42);
  expect_note(a.notes[2], 0.4, 0.8, 79, 91, 40);
}

TEST(MidiRead, Format2TracksPlayOneAfterAnother) {
  auto s = read(smf(2, 100, {track({{0, on(0, 60, 100)}, {100, off(0, 60)}}), track({{0, on(0, 62, 100)}, {50, off(0, 62)}})}));
  ASSERT_EQ(s.notes.size(), 2u);
  expect_note(s.notes[0], 0.0, 0.5, 60);
  expect_note(s.notes[1], 0.5, 0.75, 62);
}

TEST(MidiRead, SmpteDivision) {
  // -25 fps x 40 ticks/frame = 1000 ticks per second; tempo events do not change timing.
  Bytes b = smf(0, 0xE728, {track({{0, tempo(1000000)}, {500, on(0, 60, 100)}, {250, off(0, 60)}})});
  auto s = read(b);
  ASSERT_EQ(s.notes.size(), 1u);
  expect_note(s.notes[0], 0.5, 0.75, 60);
  // 29.97 drop-frame: 30 ticks/frame
  s = read(smf(0, uint16_t((uint8_t(-29) << 8) | 30), {track({{0, on(0, 60, 100)}, {2997, off(0, 60)}})}));
  EXPECT_NEAR(s.notes[0].offset_s, 2997.0 / (29.97 * 30), 1e-12);
  EXPECT_TRUE(contains(expect_input_error(smf(0, 0xEC00 | 10, {track({})})), "SMPTE"));  // -20 fps: invalid
}

TEST(MidiRead, TimeAndKeySignaturesAreKeptInSeconds) {
  Bytes t0 = track({{0, {0xFF, 0x58, 0x04, 3, 2, 24, 8}},     // 3/4
                    {0, {0xFF, 0x59, 0x02, 0xFD, 0x01}},      // 3 flats, minor (C minor)
                    {0, tempo(1000000)},
                    {300, {0xFF, 0x58, 0x04, 6, 3, 36, 8}},   // 6/8 at tick 300 = 3 s
                    {0, {0xFF, 0x59, 0x02, 0x02, 0x00}},      // D major
                    {0, {0xFF, 0x59, 0x02, 0x09, 0x00}}});    // invalid key: ignored
  auto s = read(smf(1, 100, {t0}));
  ASSERT_EQ(s.time_signatures.size(), 2u);
  EXPECT_EQ(s.time_signatures[0].numerator, 3);
  EXPECT_EQ(s.time_signatures[0].denominator, 4);
  EXPECT_DOUBLE_EQ(s.time_signatures[1].time_s, 3.0);
  EXPECT_EQ(s.time_signatures[1].numerator, 6);
  EXPECT_EQ(s.time_signatures[1].denominator, 8);
  ASSERT_EQ(s.key_signatures.size(), 2u);
  EXPECT_EQ(s.key_signatures[0].fifths, -3);
  EXPECT_TRUE(s.key_signatures[0].minor);
  EXPECT_EQ(s.key_signatures[1].fifths, 2);
  EXPECT_FALSE(s.key_signatures[1].minor);
  EXPECT_DOUBLE_EQ(s.key_signatures[1].time_s, 3.0);
  EXPECT_DOUBLE_EQ(s.duration_s, 3.0);
}

TEST(MidiRead, BadFilesGiveInputErrorsNamingTheProblem) {
  Bytes good = smf(0, 96, {track({{0, on(0, 60, 100)}, {96, off(0, 60)}})});
  EXPECT_NO_THROW(read(good));
  EXPECT_TRUE(contains(expect_input_error({}), "empty"));
  EXPECT_TRUE(contains(expect_input_error({'R', 'I', 'F', 'F', 0, 0, 0, 0, 1, 2, 3}), "MThd"));
  Bytes truncated(good.begin(), good.end() - 3);
  EXPECT_TRUE(contains(expect_input_error(truncated), "truncated track chunk"));
  Bytes huge = good;
  huge[18] = 0xFF, huge[19] = 0xFF, huge[20] = 0xFF, huge[21] = 0xF0;  // MTrk length 4 GB
  EXPECT_TRUE(contains(expect_input_error(huge), "declares 4294967280 bytes"));
  Bytes short_header = good;
  short_header[7] = 4;
  EXPECT_TRUE(contains(expect_input_error(short_header), "header chunk too short"));
  Bytes missing_track = smf(1, 96, {track({})});
  missing_track[11] = 2;  // declares 2 tracks, has 1
  EXPECT_TRUE(contains(expect_input_error(missing_track), "declares 2 tracks"));
  Bytes bad_vlq = smf(0, 96, {track({{0, on(0, 60, 100)}, {0, {0xFF, 0x01, 0x81, 0x81, 0x81, 0x81, 0x01}}})});
  EXPECT_TRUE(contains(expect_input_error(bad_vlq), "variable-length"));
  Bytes meta_too_long = smf(0, 96, {track({{0, {0xFF, 0x01, 0x7F, 'a'}}}, false)});
  EXPECT_TRUE(contains(expect_input_error(meta_too_long), "meta event declares 127 bytes"));
  Bytes no_status = smf(0, 96, {track({{0, {0x3C, 0x40}}})});
  EXPECT_TRUE(contains(expect_input_error(no_status), "running status"));
  Bytes bad_data = smf(0, 96, {track({{0, {0x90, 0x3C, 0xC0}}})});
  EXPECT_TRUE(contains(expect_input_error(bad_data), "data byte"));
  Bytes undefined = smf(0, 96, {track({{0, {0xF4}}})});
  EXPECT_TRUE(contains(expect_input_error(undefined), "undefined status"));
  Bytes zero_division = smf(0, 0, {track({})});
  EXPECT_TRUE(contains(expect_input_error(zero_division), "division"));
  Bytes format3 = smf(3, 96, {track({})});
  EXPECT_TRUE(contains(expect_input_error(format3), "format 3"));
  Bytes cut_event(good.begin(), good.end());
  cut_event[21] = 2;  // track chunk of 2 bytes: the first event is cut in the middle
  cut_event.resize(22 + 2);
  EXPECT_TRUE(contains(expect_input_error(cut_event), "truncated"));
  // A missing file names the file.
  try {
    read_midi_file("/nonexistent/dir/x.mid");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_TRUE(contains(e.what(), "midi: /nonexistent/dir/x.mid"));
  }
}

TEST(MidiRead, UnknownChunksAndTrailingDataAreSkipped) {
  Bytes b = smf(1, 96, {track({{0, on(0, 60, 100)}, {96, off(0, 60)}})});
  Bytes unknown = {'X', 'Y', 'Z', 'W', 0, 0, 0, 3, 1, 2, 3};
  b.insert(b.begin() + 14, unknown.begin(), unknown.end());
  b.insert(b.end(), {'j', 'u', 'n', 'k'});
  auto s = read(b);
  ASSERT_EQ(s.notes.size(), 1u);
  expect_note(s.notes[0], 0.0, 0.5, 60);
}

// ---- writer ------------------------------------------------------------------

namespace {

NoteSequence random_sequence(std::mt19937& rng, int n_programs, bool drums, bool tempo_map) {
  NoteSequence s;
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<int> programs;
  std::vector<int> all(128);
  for (int i = 0; i < 128; ++i) all[i] = i;
  std::shuffle(all.begin(), all.end(), rng);
  programs.assign(all.begin(), all.begin() + n_programs);
  if (tempo_map) {
    s.tempos = {{0.0, 96.0}, {3.1, 140.5}, {7.25, 61.0}};
    s.time_signatures = {{0.0, 3, 4}, {5.0, 7, 8}};
    s.key_signatures = {{0.0, -2, false}, {4.0, 3, true}};
  }
  // Per (instrument, pitch) the notes never overlap (the writer would trim them).
  std::map<std::tuple<bool, int, int>, double> busy_until;
  int count = 300;
  for (int i = 0; i < count; ++i) {
    Note n;
    n.is_drum = drums && u(rng) < 0.2;
    n.program = n.is_drum ? 0 : programs[size_t(u(rng) * n_programs) % programs.size()];
    n.pitch = n.is_drum ? 35 + int(u(rng) * 46) : 21 + int(u(rng) * 88);
    n.velocity = 1 + int(u(rng) * 127);
    n.onset_s = u(rng) * 12.0;
    n.offset_s = n.onset_s + 0.02 + u(rng) * 1.5;
    auto key = std::make_tuple(n.is_drum, n.program, n.pitch);
    bool clash = false;
    for (const auto& o : s.notes)
      if (std::make_tuple(o.is_drum, o.program, o.pitch) == key && o.onset_s < n.offset_s + 0.01 &&
          n.onset_s < o.offset_s + 0.01)
        clash = true;
    if (!clash) s.notes.push_back(n);
  }
  s.sort();
  return s;
}

// Seconds of half a tick at the fastest tempo used (with margin).
double tick_tolerance(const NoteSequence& s, int tpq) {
  double max_bpm = 120.0;
  for (const auto& t : s.tempos) max_bpm = std::max(max_bpm, t.bpm);
  double slowest_spt = 60.0 / (std::min(max_bpm, 61.0) * tpq);  // seconds per tick at the slowest tempo
  return 0.5 * slowest_spt + 1e-9;
}

void expect_same_notes(const NoteSequence& want, const NoteSequence& got, double tol) {
  ASSERT_EQ(want.notes.size(), got.notes.size());
  // Match by (is_drum, program, pitch, onset order).
  auto key = [](const Note& n) { return std::make_tuple(n.is_drum, n.program, n.pitch, n.onset_s); };
  std::vector<Note> a = want.notes, b = got.notes;
  std::sort(a.begin(), a.end(), [&](const Note& x, const Note& y) { return key(x) < key(y); });
  std::sort(b.begin(), b.end(), [&](const Note& x, const Note& y) { return key(x) < key(y); });
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].pitch, b[i].pitch) << i;
    EXPECT_EQ(a[i].program, b[i].program) << i;
    EXPECT_EQ(a[i].is_drum, b[i].is_drum) << i;
    EXPECT_EQ(a[i].velocity, b[i].velocity) << i;
    EXPECT_NEAR(a[i].onset_s, b[i].onset_s, tol) << i;
    EXPECT_NEAR(a[i].offset_s, b[i].offset_s, tol) << i;
  }
}

}  // namespace

TEST(MidiWrite, RoundTripRandomSequences) {
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 12; ++trial) {
    int n_programs = 1 + trial % 6;
    bool tempo_map = trial % 2 == 1;
    NoteSequence s = random_sequence(rng, n_programs, true, tempo_map);
    MidiWriteOptions opt;
    opt.ticks_per_quarter = trial % 3 == 0 ? 96 : (trial % 3 == 1 ? 480 : 960);
    opt.bpm = 100.0 + trial;
    auto bytes = write_midi_bytes(s, opt);
    auto back = read_midi_bytes(bytes, "roundtrip.mid");
    expect_same_notes(s, back, tick_tolerance(s, opt.ticks_per_quarter));
    if (tempo_map) {
      ASSERT_EQ(back.tempos.size(), 3u);
      EXPECT_NEAR(back.tempos[1].time_s, 3.1, tick_tolerance(s, opt.ticks_per_quarter));
      EXPECT_NEAR(back.tempos[1].bpm, 140.5, 1e-3);
      ASSERT_EQ(back.time_signatures.size(), 2u);
      EXPECT_EQ(back.time_signatures[1].numerator, 7);
      EXPECT_EQ(back.time_signatures[1].denominator, 8);
      ASSERT_EQ(back.key_signatures.size(), 2u);
      EXPECT_EQ(back.key_signatures[0].fifths, -2);
      EXPECT_TRUE(back.key_signatures[1].minor);
    } else {
      ASSERT_EQ(back.tempos.size(), 1u);
      EXPECT_NEAR(back.tempos[0].bpm, opt.bpm, 1e-3);
    }
    EXPECT_NEAR(back.duration_s, s.end_time(), tick_tolerance(s, opt.ticks_per_quarter));
  }
}

TEST(MidiWrite, MoreThan15InstrumentsShareChannelsButKeepPrograms) {
  std::mt19937 rng(99);
  NoteSequence s = random_sequence(rng, 22, true, false);
  auto back = read_midi_bytes(write_midi_bytes(s), "many.mid");
  expect_same_notes(s, back, tick_tolerance(s, 480));
}

TEST(MidiWrite, TrackLayoutChannelsAndEventOrder) {
  NoteSequence s;
  s.notes = {{0.0, 0.5, 60, 100, 40, false},
             {0.5, 1.0, 60, 90, 40, false},   // same pitch: off must come before on at tick 480
             {0.0, 1.0, 36, 110, 0, true},
             {0.25, 0.75, 48, 80, 0, false}};
  auto b = write_midi_bytes(s);
  ASSERT_GE(b.size(), 14u);
  EXPECT_EQ(std::string(b.begin(), b.begin() + 4), "MThd");
  EXPECT_EQ(b[9], 1);   // format 1
  EXPECT_EQ(b[11], 4);  // tempo track + piano + violin + drums
  EXPECT_EQ((b[12] << 8) | b[13], 480);
  // Channels used by note-ons: drums on 9 only, melodic never on 9.
  std::string text(b.begin(), b.end());
  EXPECT_TRUE(contains(text, "Violin"));
  EXPECT_TRUE(contains(text, "Acoustic Grand Piano"));
  EXPECT_TRUE(contains(text, "Drums"));
  // Violin (program 40) is the second melodic instrument: channel 2 (index 1). At tick 480
  // its note-off comes before the new note-on: delta 480 (0x83 0x60), 81 3C 40, delta 0, 91 3C 5A.
  const Bytes order = {0x83, 0x60, 0x81, 0x3C, 0x40, 0x00, 0x91, 0x3C, 90};
  EXPECT_NE(std::search(b.begin(), b.end(), order.begin(), order.end()), b.end());
  // The drum note is on channel 10 (index 9): 99 24 6E.
  const Bytes drum_on = {0x99, 36, 110};
  EXPECT_NE(std::search(b.begin(), b.end(), drum_on.begin(), drum_on.end()), b.end());
  auto back = read(b);
  ASSERT_EQ(back.notes.size(), 4u);
  expect_same_notes(s, back, 1e-9);
  // Overlapping same-pitch notes of one instrument are cut at the next onset.
  NoteSequence o;
  o.notes = {{0.0, 1.0, 60, 100, 0, false}, {0.5, 0.75, 60, 100, 0, false}, {0.5, 0.6, 60, 50, 0, false}};
  back = read(write_midi_bytes(o));
  ASSERT_EQ(back.notes.size(), 2u);
  expect_note(back.notes[0], 0.0, 0.5, 60, 100);
  expect_note(back.notes[1], 0.5, 0.75, 60, 100);
  // Bad input is refused.
  NoteSequence bad;
  bad.notes = {{0.0, 1.0, 128, 100, 0, false}};
  EXPECT_THROW(write_midi_bytes(bad), InputError);
  bad.notes = {{0.0, 1e15, 60, 100, 0, false}};
  EXPECT_THROW(write_midi_bytes(bad), InputError);
  bad.notes = {{0.0, std::nan(""), 60, 100, 0, false}};
  EXPECT_THROW(write_midi_bytes(bad), InputError);
  MidiWriteOptions opt;
  opt.ticks_per_quarter = 0;
  EXPECT_THROW(write_midi_bytes(s, opt), ConfigError);
}

TEST(MidiWrite, FileIsWrittenAtomicallyAndReadBack) {
  std::string dir = test::temp_dir("midi_write");
  std::mt19937 rng(5);
  NoteSequence s = random_sequence(rng, 3, true, true);
  std::string path = dir + "/out.mid";
  write_midi_file(path, s);
  auto back = read_midi_file(path);
  expect_same_notes(s, back, tick_tolerance(s, 480));
  EXPECT_EQ(back.source, path);
  EXPECT_THROW(write_midi_file(dir + "/no/such/dir/x.mid", s), OutputError);
  fs::remove_all(dir);
}

TEST(MidiWrite, IndependentReaderMidoReadsTheSameNotes) {
  if (!have_mido()) GTEST_SKIP() << "python3-mido is not installed";
  std::string dir = test::temp_dir("midi_mido");
  std::mt19937 rng(77);
  NoteSequence s = random_sequence(rng, 5, true, true);
  std::string path = dir + "/x.mid";
  write_midi_file(path, s);
  auto r = test::run_command(test::python() + " " + tools_dir() + "/midi_mido_notes.py " + path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream in(r.out);
  NoteSequence m;
  double on_s, off_s;
  int pitch, vel, ch, prog;
  std::map<int, int> channel_of_program;
  while (in >> on_s >> off_s >> pitch >> vel >> ch >> prog) {
    bool drum = ch == 9;
    if (!drum) {
      // Each melodic program has its own channel, never channel 10.
      auto it = channel_of_program.find(prog);
      if (it == channel_of_program.end()) channel_of_program[prog] = ch;
      else EXPECT_EQ(it->second, ch);
    }
    m.notes.push_back({on_s, off_s, pitch, vel, drum ? 0 : prog, drum});
  }
  expect_same_notes(s, m, tick_tolerance(s, 480));
  fs::remove_all(dir);
}

// ---- corpus and robustness ------------------------------------------------------

TEST(MidiCorpus, EveryCorpusFileReadsAndNoteCountsMatchMido) {
  TS_REQUIRE_SHARED();
  auto files = corpus_midi_files();
  ASSERT_GT(files.size(), 1000u);
  MidiReadOptions no_sustain;
  no_sustain.apply_sustain = false;
  std::map<std::string, size_t> ours;
  size_t total = 0, failures = 0, sustained_total = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (const auto& f : files) {
    try {
      auto s = read_midi_file(f, no_sustain);
      ours[f] = s.notes.size();
      total += s.notes.size();
      sustained_total += read_midi_file(f).notes.size();
      for (const auto& n : s.notes) ASSERT_LE(n.onset_s, n.offset_s) << f;
    } catch (const Error& e) {
      ++failures;
      ADD_FAILURE() << e.what();
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[midi corpus] %zu files, %zu notes (%zu with sustain), %zu failures, %.2f s (twice each)\n",
              files.size(), total, sustained_total, failures, secs);
  EXPECT_EQ(failures, 0u);

  if (!have_mido()) GTEST_SKIP() << "python3-mido is not installed: counts not compared";
  std::string cache = (fs::temp_directory_path() / "tunescribe_midi_mido_counts.tsv").string();
  auto r = test::run_command(test::python() + " " + tools_dir() + "/midi_mido_counts.py '" + test::shared_dir() +
                             "/corpora' --cache '" + cache + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream in(r.out);
  std::string line;
  size_t mido_files = 0, mido_total = 0, mismatches = 0, mido_errors = 0;
  while (std::getline(in, line)) {
    auto tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    std::string count = line.substr(0, tab);
    std::string path = line.substr(tab + 1);
    ++mido_files;
    if (count == "ERROR") {
      ++mido_errors;
      continue;
    }
    size_t n = std::stoul(count);
    mido_total += n;
    auto it = ours.find(path);
    if (it == ours.end() || it->second != n) {
      ++mismatches;
      if (mismatches <= 10)
        ADD_FAILURE() << path << ": mido " << n << " notes, tunescribe "
                      << (it == ours.end() ? std::string("(not read)") : std::to_string(it->second));
    }
  }
  std::printf("[midi corpus] mido: %zu files, %zu notes, %zu mido errors; %zu per-file count mismatches\n",
              mido_files, mido_total, mido_errors, mismatches);
  EXPECT_EQ(mido_files, files.size());
  EXPECT_EQ(mismatches, 0u);
  EXPECT_EQ(mido_total, total);
}

TEST(MidiCorpus, RandomMutationsNeverCrashTheReader) {
  std::vector<Bytes> seeds;
  std::string origin;
  if (!test::shared_dir().empty()) {
    auto files = corpus_midi_files();
    // A spread of small-to-medium files from every corpus folder.
    for (size_t i = 0; i < files.size() && seeds.size() < 24; i += files.size() / 24 + 1) {
      auto b = read_file_bytes(files[i]);
      if (b.size() > 60000) b.resize(60000);  // a truncated file is a mutant too
      seeds.push_back(b);
    }
    origin = "corpus";
  }
  for (const auto& e : fs::directory_iterator(test::data_dir() + "/midi")) {
    if (is_midi_path(e.path().string())) seeds.push_back(read_file_bytes(e.path().string()));
  }
  ASSERT_FALSE(seeds.empty());
  std::mt19937 rng(20261121);
  size_t mutants = 0, accepted = 0, rejected = 0;
  auto t0 = std::chrono::steady_clock::now();
  // TUNESCRIBE_MIDI_MUTANTS=N runs a longer campaign by hand (e.g. under the ASan build).
  int rounds = 3000;
  if (const char* env = std::getenv("TUNESCRIBE_MIDI_MUTANTS")) rounds = std::max(1, std::atoi(env));
  for (int round = 0; round < rounds; ++round) {
    Bytes b = seeds[rng() % seeds.size()];
    int kind = int(rng() % 5);
    int edits = 1 + int(rng() % 8);
    for (int e = 0; e < edits && !b.empty(); ++e) {
      size_t at = rng() % b.size();
      // Mutations near the start hit headers and lengths more often.
      if (rng() % 2) at = at % std::min<size_t>(b.size(), 64);
      switch (kind) {
        case 0: b[at] = uint8_t(rng()); break;                          // random byte
        case 1: b[at] ^= uint8_t(1u << (rng() % 8)); break;             // bit flip
        case 2: b.resize(at); break;                                    // truncation
        case 3: b.insert(b.begin() + long(at), uint8_t(rng())); break;  // insertion
        default: b.erase(b.begin() + long(at)); break;                  // deletion
      }
    }
    ++mutants;
    try {
      auto s = read_midi_bytes(b, "mutant.mid");
      ++accepted;
      ASSERT_LE(s.notes.size(), b.size());  // never more notes than bytes
    } catch (const InputError&) {
      ++rejected;
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[midi mutation] %zu mutants of %zu %s seed files: %zu read, %zu InputError, %.2f s\n", mutants,
              seeds.size(), origin.c_str(), accepted, rejected, secs);
  EXPECT_GT(rejected, 0u);
  EXPECT_GT(accepted, 0u);
}

TEST(MidiCorpus, SustainMatchesAnEventByEventReference) {
  TS_REQUIRE_SHARED();
  if (!have_mido()) GTEST_SKIP() << "python3-mido is not installed";
  // Performance MIDI with pedalling (ASAP) plus some POP909 songs.
  std::vector<std::string> picked;
  auto files = corpus_midi_files();
  std::vector<std::string> asap, pop;
  for (const auto& f : files) {
    if (contains(f, "/asap/") && !contains(f, "midi_score")) asap.push_back(f);
    if (contains(f, "/pop909/")) pop.push_back(f);
  }
  for (size_t i = 0; i < asap.size() && picked.size() < 12; i += asap.size() / 12 + 1) picked.push_back(asap[i]);
  for (size_t i = 0; i < pop.size() && picked.size() < 16; i += pop.size() / 4 + 1) picked.push_back(pop[i]);
  ASSERT_GE(picked.size(), 12u);
  std::string cmd = test::python() + " " + tools_dir() + "/midi_sustain_reference.py";
  for (const auto& f : picked) cmd += " '" + f + "'";
  auto r = test::run_command(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.err;

  struct Row {
    double on, off;
    int pitch;
  };
  std::map<std::string, std::vector<Row>> ref;
  std::istringstream in(r.out);
  std::string line, current;
  while (std::getline(in, line)) {
    if (line.rfind("# ", 0) == 0) {
      current = line.substr(2);
      ref[current];
      continue;
    }
    std::istringstream ls(line);
    Row row;
    int ch;
    ls >> row.on >> row.off >> row.pitch >> ch;
    ref[current].push_back(row);
  }
  auto key = [](const Row& x) { return std::make_tuple(std::llround(x.on * 1e6), x.pitch, x.off); };
  size_t compared = 0, extended = 0;
  for (const auto& f : picked) {
    ASSERT_TRUE(ref.count(f)) << f;
    auto s = read_midi_file(f);
    auto raw = read_midi_file(f, MidiReadOptions{false});
    std::vector<Row> ours;
    for (const auto& n : s.notes) ours.push_back({n.onset_s, n.offset_s, n.pitch});
    std::vector<Row> want = ref[f];
    ASSERT_EQ(ours.size(), want.size()) << f;
    std::sort(ours.begin(), ours.end(), [&](const Row& a, const Row& b) { return key(a) < key(b); });
    std::sort(want.begin(), want.end(), [&](const Row& a, const Row& b) { return key(a) < key(b); });
    for (size_t i = 0; i < ours.size(); ++i) {
      ASSERT_NEAR(ours[i].on, want[i].on, 2e-9) << f << " note " << i;
      ASSERT_NEAR(ours[i].off, want[i].off, 2e-9) << f << " note " << i << " pitch " << ours[i].pitch;
      ASSERT_EQ(ours[i].pitch, want[i].pitch) << f << " note " << i;
    }
    compared += ours.size();
    double sum_raw = 0, sum_sus = 0;
    for (const auto& n : raw.notes) sum_raw += n.duration_s();
    for (const auto& n : s.notes) sum_sus += n.duration_s();
    extended += sum_sus > sum_raw + 1e-6;
  }
  std::printf("[midi sustain] %zu files, %zu notes identical to the reference; pedal lengthened notes in %zu files\n",
              picked.size(), compared, extended);
  EXPECT_GE(extended, 6u);  // the check really exercised the pedal
}
