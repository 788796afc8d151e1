// Tests of the outputs to see and hear a result: piano roll, sheet music (abcm2ps), audio
// (view_outputs.h, piano_roll.h, engrave.h) and `transcribe --format svg,roll,wav`.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "test_util.h"
#include "tunescribe/abc_writer.h"
#include "tunescribe/audio.h"
#include "tunescribe/engrave.h"
#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/midi.h"
#include "tunescribe/piano_roll.h"
#include "tunescribe/render.h"
#include "tunescribe/view_outputs.h"
#include "tunescribe/xml_text.h"

namespace fs = std::filesystem;
using namespace tunescribe;
using tunescribe::test::run_command;
using tunescribe::test::tunescribe_bin;

namespace {

using tunescribe::test::q;
std::string example_mid() { return std::string(TUNESCRIBE_SOURCE_DIR) + "/examples/tunescribe-waltz.mid"; }

using tunescribe::test::count;

std::string attr(const std::string& svg, const std::string& name) {
  std::smatch m;
  if (std::regex_search(svg, m, std::regex(" " + name + "=\"([^\"]*)\""))) return m[1];
  return "";
}

// A piece of `seconds` with `per_s` notes a second over two octaves, piano and violin, plus drums.
NoteSequence busy_piece(double seconds, double per_s, bool drums) {
  NoteSequence seq;
  const int n = static_cast<int>(seconds * per_s);
  for (int i = 0; i < n; ++i) {
    Note a;
    a.onset_s = i / per_s;
    a.offset_s = a.onset_s + 0.3;
    a.pitch = 48 + (i * 7) % 24;
    a.velocity = 20 + (i * 13) % 100;
    a.program = (i % 3 == 0) ? 40 : 0;
    seq.notes.push_back(a);
    if (drums && i % 2 == 0) {
      Note d = a;
      d.is_drum = true;
      d.program = 0;
      d.pitch = (i % 4 == 0) ? 36 : 42;
      d.offset_s = d.onset_s + 0.05;
      seq.notes.push_back(d);
    }
  }
  seq.sort();
  return seq;
}

}  // namespace

TEST(PianoRoll, DrawsEveryNoteInstrumentLegendVelocityAndDrumLane) {
  NoteSequence seq;
  seq.notes = {Note{0.0, 1.0, 60, 20, 0, false}, Note{1.0, 2.0, 64, 120, 0, false}, Note{0.5, 1.5, 67, 90, 40, false},
               Note{0.0, 0.1, 36, 100, 0, true}};
  const std::string svg = render_piano_roll_svg(seq, {0.0, 1.0, 2.0});
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_EQ(attr(svg, "data-notes"), "4");
  EXPECT_EQ(attr(svg, "data-rows"), "1");
  EXPECT_EQ(attr(svg, "data-bars"), "3");
  EXPECT_NE(svg.find("Acoustic Grand Piano (0): 2 notes"), std::string::npos);
  EXPECT_NE(svg.find("Violin (40): 1 note"), std::string::npos);
  EXPECT_NE(svg.find("Drums: 1 note"), std::string::npos);
  EXPECT_NE(svg.find(">Drums</text>"), std::string::npos) << "drums get their own lane";
  EXPECT_NE(svg.find(">C4</text>"), std::string::npos);
  // Three instruments, three colours; quiet and loud piano notes differ in opacity.
  std::set<std::string> fills, opacities;
  std::regex note_path("<path d=\"[^\"]*\" fill=\"(#[0-9a-f]{6})\" fill-opacity=\"([0-9.]+)\"/>");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), note_path); it != std::sregex_iterator(); ++it) {
    fills.insert((*it)[1]);
    opacities.insert((*it)[2]);
  }
  EXPECT_EQ(fills.size(), 3u);
  EXPECT_GE(opacities.size(), 3u);
  EXPECT_EQ(fills.count(instrument_colour(0)), 1u);
  // One closed rectangle ("z") per note in the note paths: 4 notes.
  size_t hs = 0;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), note_path); it != std::sregex_iterator(); ++it) {
    const std::string d = it->str();
    hs += count(d.substr(0, d.find("fill=")), "z");
  }
  EXPECT_EQ(hs, 4u);
  // Titles are escaped.
  PianoRollConfig cfg;
  cfg.title = "a <b> & c";
  EXPECT_NE(render_piano_roll_svg(seq, {}, cfg).find("a &lt;b&gt; &amp; c"), std::string::npos);
}

TEST(PianoRoll, TenMinutePieceWrapsIntoRowsWithoutLabelPileUp) {
  NoteSequence seq = busy_piece(600.0, 8.0, true);
  for (auto& n : seq.notes) n.offset_s = std::min(n.offset_s, 600.0);  // exactly 10 min
  std::vector<double> bars;
  for (double t = 0; t <= 600.0; t += 2.0) bars.push_back(t);  // 301 bars
  const std::string svg = render_piano_roll_svg(seq, bars);
  EXPECT_EQ(attr(svg, "data-rows"), "15");  // 40 s rows
  EXPECT_EQ(attr(svg, "data-bars"), "301");
  EXPECT_LT(std::stod(attr(svg, "width")), 1700.0) << "rows keep the width readable";
  // Bar numbers: at 40 px/s a 2 s bar is 80 px, every bar is labelled; the time axis has one
  // label per 2 s (>= 48 px apart). Labels on one row never come closer than 26 px.
  std::regex label("<text x=\"([0-9.]+)\" y=\"([0-9.]+)\" font-size=\"9\" fill=\"#555\">");
  std::map<std::string, std::vector<double>> by_row;
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), label); it != std::sregex_iterator(); ++it)
    by_row[(*it)[2]].push_back(std::stod((*it)[1]));
  EXPECT_EQ(by_row.size(), 15u);
  for (auto& kv : by_row) {
    std::sort(kv.second.begin(), kv.second.end());
    for (size_t i = 1; i < kv.second.size(); ++i) EXPECT_GE(kv.second[i] - kv.second[i - 1], 26.0);
  }
  EXPECT_LT(count(svg, "<text"), 1000u);
  EXPECT_LT(svg.size(), 400u * 1024) << "about 25 bytes a note: " << svg.size();
  // Zoomed out (5 px/s), bar labels thin out to every 4th bar (2 s x 5 px = 10 px per bar).
  PianoRollConfig small;
  small.px_per_s = 5;
  small.row_s = 600;
  const std::string s2 = render_piano_roll_svg(seq, bars, small);
  std::vector<double> xs;
  for (auto it = std::sregex_iterator(s2.begin(), s2.end(), label); it != std::sregex_iterator(); ++it)
    xs.push_back(std::stod((*it)[1]));
  EXPECT_EQ(xs.size(), 76u);  // bars 1, 5, 9 … 301
  EXPECT_EQ(attr(s2, "data-rows"), "1");
}

TEST(PianoRoll, ConfigIsValidatedAndEmptySequenceSaysSo) {
  PianoRollConfig c;
  c.px_per_s = 1;
  EXPECT_THROW(render_piano_roll_svg(NoteSequence{}, {}, c), ConfigError);
  c = {};
  c.note_height_px = 50;
  EXPECT_THROW(c.validate(), ConfigError);
  const std::string svg = render_piano_roll_svg(NoteSequence{}, {});
  EXPECT_EQ(attr(svg, "data-notes"), "0");
  EXPECT_NE(svg.find("no notes"), std::string::npos);
}

TEST(PianoRoll, BarTimesFollowTheAbcAnalysis) {
  // 3/4 at 120 quarter notes per minute from MIDI metadata: a bar every 1.5 s.
  NoteSequence seq;
  for (int i = 0; i < 24; ++i) seq.notes.push_back(Note{i * 0.5, i * 0.5 + 0.45, 60 + (i % 3 == 0 ? 7 : 0), 90, 0, false});
  seq.tempos = {TempoChange{0.0, 120.0}};
  seq.time_signatures = {TimeSignature{0.0, 3, 4}};
  AbcWriterConfig ac;
  const Analysis an = analyse_for_abc(seq, ac);
  const auto bars = bar_times(an, seq.end_time());
  ASSERT_GE(bars.size(), 8u);
  EXPECT_GE(bars[0], 0.0);
  EXPECT_LT(bars[0], 1.5);
  for (size_t i = 1; i < bars.size(); ++i) EXPECT_NEAR(bars[i] - bars[i - 1], 1.5, 1e-6);
  EXPECT_LE(bars.back(), seq.end_time() + 1e-9);
}

TEST(Engrave, PagePathsAndMissingProgram) {
  EXPECT_EQ(engraved_page_path("out/song.svg", 1), "out/song.svg");
  EXPECT_EQ(engraved_page_path("out/song.svg", 2), "out/song-2.svg");
  EXPECT_EQ(engraved_page_path("song.roll.svg", 3), "song.roll-3.svg");
  EngraveConfig cfg;
  cfg.program = "/nonexistent/abcm2ps";
  EXPECT_EQ(find_abcm2ps(cfg), "");
  try {
    engrave_abc_svg("X:1\nK:C\nCDEF|\n", "t", cfg);
    FAIL() << "expected NotAvailableError";
  } catch (const NotAvailableError& e) {
    EXPECT_NE(std::string(e.what()).find("Debian package abcm2ps"), std::string::npos) << e.what();
  }
}

TEST(Engrave, AbcToSvgPagesWithAbcm2ps) {
  if (find_abcm2ps().empty()) GTEST_SKIP() << "abcm2ps is not installed";
  const auto pages = engrave_abc_svg("X:1\nT:Scale\nM:4/4\nL:1/4\nK:C\nCDEF|GABc|\n", "My <Tune>");
  ASSERT_EQ(pages.size(), 1u);
  EXPECT_NE(pages[0].find("<svg"), std::string::npos);
  EXPECT_NE(pages[0].find("<title>My &lt;Tune&gt; page 1</title>"), std::string::npos);
  EXPECT_EQ(pages[0].find("CreationDate"), std::string::npos) << "pages are reproducible";
  EXPECT_EQ(pages[0].find("/tmp/"), std::string::npos) << "no temporary path inside";
  // A long tune fills more than one page.
  NoteSequence seq = busy_piece(240.0, 4.0, false);
  const AbcTune tune = write_abc(seq, AbcWriterConfig{});
  const auto many = engrave_abc_svg(tune.text, "long");
  EXPECT_GE(many.size(), 2u);
  EXPECT_NE(many[1].find("<title>long page 2</title>"), std::string::npos);
}

TEST(ViewOutputs, FormatsExtensionsAndWavBytes) {
  EXPECT_TRUE(is_view_format("svg"));
  EXPECT_TRUE(is_view_format("roll"));
  EXPECT_TRUE(is_view_format("wav"));
  EXPECT_FALSE(is_view_format("mid"));
  EXPECT_EQ(view_output_extension("roll"), "roll.svg");
  EXPECT_EQ(view_output_extension("wav"), "synth.wav");
  EXPECT_EQ(view_output_extension("abc"), "abc");
  EXPECT_EQ(remove_formats("abc,svg,,roll", {"svg"}), "abc,roll");
  EXPECT_EQ(remove_formats("svg", {"svg"}), "");
  EXPECT_EQ(parse_view_formats("roll,svg,roll", "generate"), (std::vector<std::string>{"roll", "svg"}));
  EXPECT_THROW(parse_view_formats("roll,pdf", "generate"), ConfigError);
  // 16-bit PCM WAV that libsndfile reads back.
  std::vector<float> s(8000);
  for (size_t i = 0; i < s.size(); ++i) s[i] = 0.5f * std::sin(2 * M_PI * 440.0 * double(i) / 8000.0);
  s[10] = 3.0f;  // clipped
  const std::string b = wav_pcm16_bytes(s, 8000);
  EXPECT_EQ(b.size(), 44u + 2 * s.size());
  const std::string dir = tunescribe::test::temp_dir("views_wav");
  write_file_atomic(dir + "/x.wav", b);
  const AudioInfo info = probe_audio(dir + "/x.wav");
  EXPECT_EQ(info.input_rate_hz, 8000);
  EXPECT_EQ(info.channels, 1);
  EXPECT_EQ(info.input_frames, 8000);
  AudioConfig ac;
  ac.target_rate_hz = 8000;
  const Audio a = load_audio(dir + "/x.wav", ac);
  ASSERT_EQ(a.samples.size(), s.size());
  EXPECT_NEAR(a.samples[3], s[3], 1e-4);
  EXPECT_NEAR(a.samples[10], 1.0, 1e-3);
  // write_view_files refuses an existing page before writing any.
  write_file_atomic(dir + "/p-2.svg", "old");
  EXPECT_THROW(write_view_files(dir + "/p.svg", {"one", "two"}, false, "generate"), OutputError);
  EXPECT_FALSE(fs::exists(dir + "/p.svg"));
  EXPECT_EQ(write_view_files(dir + "/p.svg", {"one", "two"}, true, "generate").size(), 2u);
  EXPECT_EQ(read_file_text(dir + "/p-2.svg"), "two");
  // --force and a shorter engraving: the earlier run's later pages go.
  write_file_atomic(dir + "/p-3.svg", "old three");
  write_file_atomic(dir + "/p-4.svg", "old four");
  EXPECT_EQ(later_pages(dir + "/p.svg", 2), (std::vector<std::string>{dir + "/p-3.svg", dir + "/p-4.svg"}));
  EXPECT_EQ(write_view_files(dir + "/p.svg", {"only"}, true, "generate").size(), 1u);
  EXPECT_FALSE(fs::exists(dir + "/p-2.svg"));
  EXPECT_FALSE(fs::exists(dir + "/p-3.svg"));
  EXPECT_FALSE(fs::exists(dir + "/p-4.svg"));
  EXPECT_TRUE(later_pages(dir + "/p.svg", 1).empty());
}

TEST(ViewOutputs, CheckViewFormatsSoundfontAndAbcm2ps) {
  ViewOutputConfig vc;
  vc.soundfont = "/nonexistent.sf2";
  if (have_fluidsynth()) {
    try {
      check_view_formats({"abc", "wav"}, &vc, "transcribe");
      FAIL() << "expected ConfigError";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("--soundfont /nonexistent.sf2"), std::string::npos) << e.what();
    }
  } else {
    EXPECT_THROW(check_view_formats({"wav"}, &vc, "transcribe"), NotAvailableError);
  }
  ViewOutputConfig v2;
  v2.engrave.program = "/nonexistent/abcm2ps";
  EXPECT_EQ(check_view_formats({"abc", "svg", "roll"}, &v2, "transcribe"), std::vector<std::string>{"svg"});
}

TEST(ViewOutputsCli, TranscribeMidiToSheetRollAndAudio) {
  const std::string dir = tunescribe::test::temp_dir("views_cli");
  const bool have_abcm2ps = !find_abcm2ps().empty();
  const bool can_wav = have_fluidsynth() && !default_soundfont().empty();
  std::string formats = std::string("abc,roll") + (have_abcm2ps ? ",svg" : "") + (can_wav ? ",wav" : "");
  auto r = run_command(q(tunescribe_bin()) + " transcribe " + q(example_mid()) + " -o " + q(dir) + " -f " + formats + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string stem = dir + "/tunescribe-waltz";
  ASSERT_TRUE(fs::exists(stem + ".abc"));
  const std::string roll = read_file_text(stem + ".roll.svg");
  const NoteSequence mid = read_midi_file(example_mid());
  EXPECT_EQ(attr(roll, "data-notes"), std::to_string(mid.notes.size()));
  EXPECT_NE(roll.find("Acoustic Grand Piano"), std::string::npos);
  // The waltz has 16 bars + a pickup in 3/4: bar lines from the ABC analysis.
  const int bars = std::stoi(attr(roll, "data-bars"));
  EXPECT_GE(bars, 15);
  EXPECT_LE(bars, 18);
  if (have_abcm2ps) {
    const std::string svg = read_file_text(stem + ".svg");
    EXPECT_NE(svg.find("<svg"), std::string::npos);
    EXPECT_NE(svg.find("<title>tunescribe-waltz page 1</title>"), std::string::npos);
  }
  if (can_wav) {
    const AudioInfo info = probe_audio(stem + ".synth.wav");
    EXPECT_EQ(info.input_rate_hz, 44100);
    EXPECT_NEAR(info.duration_s(), mid.end_time() + 1.0, 0.5);
    AudioConfig ac;
    ac.target_rate_hz = 44100;
    const Audio a = load_audio(stem + ".synth.wav", ac);
    double peak = 0;
    for (float x : a.samples) peak = std::max(peak, double(std::fabs(x)));
    EXPECT_GT(peak, 0.01) << "the notes are audible";
  }
  EXPECT_NE(r.out.find("roll.svg"), std::string::npos) << r.out;
  // No silent overwrite: the second run fails the input and leaves the files as they were.
  const auto before = fs::last_write_time(stem + ".roll.svg");
  auto again = run_command(q(tunescribe_bin()) + " transcribe " + q(example_mid()) + " -o " + q(dir) + " -f " + formats);
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("exists"), std::string::npos) << again.err;
  EXPECT_EQ(fs::last_write_time(stem + ".roll.svg"), before);
  auto forced = run_command(q(tunescribe_bin()) + " transcribe " + q(example_mid()) + " -o " + q(dir) + " -f " + formats + " --force");
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
}

TEST(ViewOutputsCli, MissingAbcm2psIsExit2AndTheOtherFormatsAreWritten) {
  const std::string dir = tunescribe::test::temp_dir("views_noabcm2ps");
  auto r = run_command("TUNESCRIBE_ABCM2PS=/nonexistent/abcm2ps " + q(tunescribe_bin()) + " transcribe " +
                       q(example_mid()) + " -o " + q(dir) + " -f abc,svg,roll");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("needs abcm2ps, which is not installed (Debian package abcm2ps"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(dir + "/tunescribe-waltz.abc"));
  EXPECT_TRUE(fs::exists(dir + "/tunescribe-waltz.roll.svg"));
  EXPECT_FALSE(fs::exists(dir + "/tunescribe-waltz.svg"));
  // svg alone: nothing to do, the same error at once.
  auto only = run_command("TUNESCRIBE_ABCM2PS=/nonexistent/abcm2ps " + q(tunescribe_bin()) + " transcribe " +
                          q(example_mid()) + " -o " + q(dir) + " -f svg");
  EXPECT_EQ(only.exit_code, 2);
  EXPECT_NE(only.err.find("Debian package abcm2ps"), std::string::npos) << only.err;
  // An unknown format names the new ones.
  auto bad = run_command(q(tunescribe_bin()) + " transcribe " + q(example_mid()) + " -o " + q(dir) + " -f pdf");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("svg, roll, wav"), std::string::npos) << bad.err;
}

TEST(ViewOutputsCli, LongPieceGivesNumberedSvgPages) {
  if (find_abcm2ps().empty()) GTEST_SKIP() << "abcm2ps is not installed";
  const std::string dir = tunescribe::test::temp_dir("views_pages");
  NoteSequence seq = busy_piece(240.0, 4.0, false);
  seq.tempos = {TempoChange{0.0, 120.0}};
  seq.time_signatures = {TimeSignature{0.0, 4, 4}};
  write_midi_file(dir + "/long.mid", seq);
  auto r = run_command(q(tunescribe_bin()) + " transcribe " + q(dir + "/long.mid") + " -o " + q(dir + "/out") +
                       " -f svg --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir + "/out/long.svg"));
  EXPECT_TRUE(fs::exists(dir + "/out/long-2.svg"));
  EXPECT_NE(r.out.find("long-2.svg"), std::string::npos) << "the record lists every page: " << r.out;
  // Page 2 exists: a rerun is refused before page 1 is replaced.
  fs::remove(dir + "/out/long.svg");
  auto again = run_command(q(tunescribe_bin()) + " transcribe " + q(dir + "/long.mid") + " -o " + q(dir + "/out") + " -f svg");
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("long-2.svg: exists"), std::string::npos) << again.err;
  EXPECT_FALSE(fs::exists(dir + "/out/long.svg"));
  // --force with a tune of fewer pages: the earlier run's later pages are removed, not left stale.
  int missing = 2;  // the first page number the long run did not write
  while (fs::exists(dir + "/out/long-" + std::to_string(missing) + ".svg")) ++missing;
  ASSERT_GT(missing, 3);
  const std::string beyond = dir + "/out/long-" + std::to_string(missing + 1) + ".svg";
  write_file_atomic(beyond, "not a page of a run: left alone (the page before it is missing)");
  NoteSequence short_seq = busy_piece(8.0, 4.0, false);
  short_seq.tempos = seq.tempos;
  short_seq.time_signatures = seq.time_signatures;
  write_midi_file(dir + "/long.mid", short_seq);
  auto forced = run_command(q(tunescribe_bin()) + " transcribe " + q(dir + "/long.mid") + " -o " + q(dir + "/out") +
                            " -f svg --force");
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_TRUE(fs::exists(dir + "/out/long.svg"));
  for (int k = 2; k < missing; ++k) EXPECT_FALSE(fs::exists(dir + "/out/long-" + std::to_string(k) + ".svg")) << k;
  EXPECT_TRUE(fs::exists(beyond));
}

TEST(ViewOutputsCli, GenerateWritesSheetAndRoll) {
  const std::string dir = tunescribe::test::temp_dir("views_generate");
  const bool have_abcm2ps = !find_abcm2ps().empty();
  const std::string base = q(tunescribe_bin()) + " generate -o " + q(dir) + " --seconds 3 --seed 2 --max-segment-tokens 256";
  auto r = run_command(base + " -f roll" + (have_abcm2ps ? ",svg" : "") + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string roll = read_file_text(dir + "/generated-2.roll.svg");
  EXPECT_EQ(roll.rfind("<svg", 0), 0u);
  EXPECT_NE(r.out.find("generated-2.roll.svg"), std::string::npos) << "listed in files: " << r.out;
  const NoteSequence mid = read_midi_file(dir + "/generated-2.mid");
  EXPECT_GE(std::stoul(attr(roll, "data-notes")), mid.notes.size());  // MIDI may merge shared-channel notes
  if (have_abcm2ps) EXPECT_NE(read_file_text(dir + "/generated-2.svg").find("<svg"), std::string::npos);
  // Not over existing files without --force (checked before the model runs).
  auto again = run_command(base + " -f roll");
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("generated-2"), std::string::npos) << again.err;
  // Without abcm2ps: the other files, then exit 2 naming the package.
  const std::string d2 = tunescribe::test::temp_dir("views_generate_noabc");
  auto no = run_command("TUNESCRIBE_ABCM2PS=/nonexistent " + q(tunescribe_bin()) + " generate -o " + q(d2) +
                        " --seconds 2 --seed 3 --max-segment-tokens 256 -f svg,roll");
  EXPECT_EQ(no.exit_code, 2) << no.err;
  EXPECT_NE(no.err.find("Debian package abcm2ps"), std::string::npos) << no.err;
  EXPECT_TRUE(fs::exists(d2 + "/generated-3.abc"));
  EXPECT_TRUE(fs::exists(d2 + "/generated-3.roll.svg"));
  EXPECT_FALSE(fs::exists(d2 + "/generated-3.svg"));
  auto bad = run_command(q(tunescribe_bin()) + " generate -o " + q(d2) + " -f pdf");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--format"), std::string::npos) << bad.err;
}

// One escaping for MusicXML, SVG and the HTML report (xml_text.h).
TEST(XmlText, EscapesMarkupAndDropsForbiddenControlCharacters) {
  EXPECT_EQ(xml_escape("Tom & Jerry's <\"duet\">"), "Tom &amp; Jerry&#39;s &lt;&quot;duet&quot;&gt;");
  EXPECT_EQ(xml_escape(std::string("a\x01" "b\tc\nd\re\x1f", 11)), "ab\tc\nd\re");
  EXPECT_EQ(xml_escape("Für Elise ♪"), "Für Elise ♪");  // UTF-8 passes through
}
