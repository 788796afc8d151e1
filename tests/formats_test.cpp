// Tests of issue #18's input/output formats and CLI behaviour: MP3/Opus input (formats asked of
// libsndfile), M4A conversion hint, CSV/TXT note tables, -o FILE, progress within a long input, one
// failure line, help texts, generate's instrument range/clef and --bars.
#include <gtest/gtest.h>
#include <sndfile.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"
#include "tunescribe/audio.h"
#include "tunescribe/audio_formats.h"
#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/instruments.h"
#include "tunescribe/score_layout.h"
#include "tunescribe/midi.h"
#include "tunescribe/note_files.h"
#include "tunescribe/note_tables.h"
#include "tunescribe/output_target.h"
#include "tunescribe/progress_meter.h"
#include "tunescribe/score.h"

namespace fs = std::filesystem;
using namespace tunescribe;
using tunescribe::test::run_command;
using tunescribe::test::tunescribe_bin;

namespace {

std::string src(const std::string& rel) { return std::string(TUNESCRIBE_SOURCE_DIR) + "/" + rel; }
using tunescribe::test::q;
std::string cli() { return q(tunescribe_bin()); }
std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
void put(const std::string& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }
size_t count_of(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + needle.size())) ++n;
  return n;
}

// The bundled FLAC as 16-bit WAV at its own rate (lame and opusenc read WAV).
std::string example_as_wav(const std::string& dir) {
  SF_INFO info{};
  SNDFILE* f = sf_open(src("examples/tunescribe-waltz.flac").c_str(), SFM_READ, &info);
  EXPECT_NE(f, nullptr);
  if (!f) return "";
  std::vector<float> x(size_t(info.frames) * size_t(info.channels));
  sf_readf_float(f, x.data(), info.frames);
  sf_close(f);
  return test::write_audio_file(dir + "/waltz.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, info.samplerate,
                                info.channels, x);
}

// Lag (in samples at `a`'s rate) that best aligns b with a: b[i + lag] ~ a[i].
int best_lag(const std::vector<float>& a, const std::vector<float>& b, int max_lag) {
  int best = 0;
  double best_v = -1e300;
  const long n = long(std::min(a.size(), b.size()));
  for (int lag = -max_lag; lag <= max_lag; ++lag) {
    double s = 0;
    for (long i = max_lag; i < n - max_lag; i += 2) s += double(a[size_t(i)]) * double(b[size_t(i + lag)]);
    if (s > best_v) best_v = s, best = lag;
  }
  return best;
}

NoteSequence transcribe_json(const std::string& input, const std::string& dir, std::string* err) {
  auto r = run_command(cli() + " transcribe " + q(input) + " -o " + q(dir) + " --format json --force");
  *err = r.err;
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::ifstream jf(dir + "/" + path_stem(input) + ".json");
  if (!jf) return {};
  return notes_from_json(nlohmann::json::parse(jf), input);
}

// Every note of `b` has a note of `a` with the same pitch whose onset is within `tol` after shifting by
// `delay_s`, and the counts agree within `slack`.
void expect_same_notes(const NoteSequence& a, const NoteSequence& b, double delay_s, double tol, size_t slack) {
  ASSERT_GT(a.notes.size(), 50u);
  EXPECT_LE(std::max(a.notes.size(), b.notes.size()) - std::min(a.notes.size(), b.notes.size()), slack);
  size_t matched = 0;
  for (const Note& n : b.notes)
    for (const Note& m : a.notes)
      if (m.pitch == n.pitch && std::abs(n.onset_s - delay_s - m.onset_s) <= tol) {
        ++matched;
        break;
      }
  EXPECT_GE(matched + slack, b.notes.size()) << matched << " of " << b.notes.size();
}

void lossy_matches_flac(const std::string& ext, const std::string& encode_cmd) {
  const std::string dir = test::temp_dir("fmt_" + ext.substr(1));
  const std::string wav = example_as_wav(dir);
  const std::string enc = dir + "/waltz" + ext;
  auto e = run_command(encode_cmd + " " + q(wav) + " " + q(enc));
  ASSERT_EQ(e.exit_code, 0) << e.err;
  ASSERT_TRUE(is_audio_path(enc));
  // The codec's delay as libsndfile decodes it: cross-correlation at 16 kHz against the FLAC.
  AudioConfig ac;
  const Audio ref = load_audio(src("examples/tunescribe-waltz.flac"), ac);
  const Audio dec = load_audio(enc, ac);
  const int lag = best_lag(ref.samples, dec.samples, 800);
  std::printf("[formats] %s: decoded %zu samples at 16 kHz (FLAC %zu), delay %d samples = %.2f ms\n", ext.c_str(),
              dec.samples.size(), ref.samples.size(), lag, 1000.0 * lag / 16000.0);
  EXPECT_LE(std::abs(lag), 2) << "libsndfile removes the encoder delay (LAME tag / Opus pre-skip)";
  EXPECT_NEAR(double(dec.samples.size()), double(ref.samples.size()), 16.0);
  std::string err;
  const NoteSequence from_flac = transcribe_json(src("examples/tunescribe-waltz.flac"), dir + "/flac", &err);
  const NoteSequence from_enc = transcribe_json(enc, dir + "/enc", &err);
  expect_same_notes(from_flac, from_enc, lag / 16000.0, 0.021, 2);
  fs::remove_all(dir);
}

}  // namespace

// ---------------------------------------------------------------------------------- audio input

TEST(AudioFormats, ExtensionsComeFromLibsndfile) {
  const AudioFormatTable& t = audio_format_table();
  EXPECT_NE(t.libsndfile_version.find("libsndfile"), std::string::npos);
  for (const char* e : {".wav", ".flac", ".aiff", ".oga"}) EXPECT_TRUE(is_decodable_audio_extension(std::string("x") + e)) << e;
  EXPECT_TRUE(is_audio_path("SONG.WAV"));
  EXPECT_FALSE(is_audio_path("notes.txt"));
  EXPECT_FALSE(is_audio_path("x.raw")) << "RAW needs its format from the caller";
  EXPECT_FALSE(is_audio_path("x.mat")) << "Matlab files are mostly data";
  // MP3 and Opus exactly where the linked libsndfile has the codec (SFC_GET_FORMAT_SUBTYPE).
  EXPECT_EQ(is_audio_path("a.mp3"), t.mp3);
  EXPECT_EQ(is_audio_path("a.opus"), t.opus);
  EXPECT_EQ(audio_conversion_hint("a.mp3").empty(), t.mp3);
  EXPECT_NE(audio_extensions_text().find(".wav .flac"), std::string::npos) << audio_extensions_text();
}

TEST(AudioFormats, M4aFailsWithHowToConvert) {
  const std::string dir = test::temp_dir("fmt_m4a");
  put(dir + "/tune.m4a", std::string("\0\0\0\x20" "ftypM4A \0\0\0\0M4A mp42isom", 28) + std::string(4000, '\x11'));
  const std::string hint = audio_conversion_hint(dir + "/tune.m4a");
  EXPECT_NE(hint.find("AAC/M4A"), std::string::npos) << hint;
  EXPECT_NE(hint.find("ffmpeg -i " + dir + "/tune.m4a " + dir + "/tune.flac"), std::string::npos) << hint;
  try {
    load_audio(dir + "/tune.m4a");
    ADD_FAILURE() << "an M4A must not decode";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("ffmpeg -i"), std::string::npos) << e.what();
  }
  // The CLI: the folder scan takes it, and it fails with one line naming the file once.
  auto r = run_command(cli() + " transcribe " + q(dir) + " -o " + q(dir + "/out"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(count_of(r.err, "failed: "), 1u) << r.err;
  EXPECT_EQ(count_of(r.err, "tune.m4a"), 2u) << "the file once, then in the ffmpeg example:\n" << r.err;
  EXPECT_NE(r.err.find("ffmpeg -i"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

TEST(AudioFormats, Mp3TranscribesLikeTheFlac) {
  if (!audio_format_table().mp3) GTEST_SKIP() << "this libsndfile decodes no MP3";
  if (!test::have_program("lame")) GTEST_SKIP() << "lame is not installed";
  lossy_matches_flac(".mp3", "lame --quiet -b 192");
}

TEST(AudioFormats, OpusTranscribesLikeTheFlac) {
  if (!audio_format_table().opus) GTEST_SKIP() << "this libsndfile decodes no Opus";
  if (!test::have_program("opusenc")) GTEST_SKIP() << "opusenc (opus-tools) is not installed";
  lossy_matches_flac(".opus", "opusenc --quiet --bitrate 128");
}

TEST(AudioFormats, Mp3WithoutLameTagIsReadToItsEnd) {
  if (!audio_format_table().mp3) GTEST_SKIP() << "this libsndfile decodes no MP3";
  if (!test::have_program("lame")) GTEST_SKIP() << "lame is not installed";
  // lame -t writes no Xing/LAME header: libsndfile estimates the length from the bit rate (longer
  // than what decodes) and cannot remove the encoder delay (576 + 529 samples at 44.1 kHz).
  const std::string dir = test::temp_dir("fmt_mp3t");
  const std::string wav = example_as_wav(dir);
  auto e = run_command("lame --quiet -t -b 128 " + q(wav) + " " + q(dir + "/t.mp3"));
  ASSERT_EQ(e.exit_code, 0) << e.err;
  AudioConfig ac;
  const Audio ref = load_audio(src("examples/tunescribe-waltz.flac"), ac);
  const Audio dec = load_audio(dir + "/t.mp3", ac);  // not "truncated"
  const int lag = best_lag(ref.samples, dec.samples, 800);
  std::printf("[formats] .mp3 without LAME tag: delay %d samples at 16 kHz = %.2f ms\n", lag, 1000.0 * lag / 16000.0);
  EXPECT_NEAR(lag, 1105.0 * 16000.0 / 44100.0, 2.0);
  EXPECT_GE(dec.samples.size(), ref.samples.size());
  fs::remove_all(dir);
}

// ---------------------------------------------------------------------------------- note tables

TEST(NoteTables, CsvAndTxtReadBackEqual) {
  NoteSequence seq;
  seq.notes = {{0.1, 0.35, 60, 90, 0, false}, {1.0 / 3.0, 2.0 / 3.0, 69, 127, 40, false},
               {0.5, 0.6, 36, 100, 0, true}, {2.25, 2.250001, 127, 1, 73, false}};
  const std::string csv = notes_to_csv(seq);
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "onset_s,offset_s,pitch,velocity,program,instrument");
  EXPECT_NE(csv.find("0.1,0.35,60,90,0,Acoustic Grand Piano\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find("0.3333333333333333,0.6666666666666666,69,127,40,Violin\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",Drums\n"), std::string::npos) << csv;
  const NoteSequence back = parse_notes_csv(csv, "x.csv");
  ASSERT_EQ(back.notes.size(), seq.notes.size());
  for (size_t i = 0; i < seq.notes.size(); ++i) EXPECT_TRUE(back.notes[i] == seq.notes[i]) << i;
  const std::string txt = notes_to_mir_eval_txt(seq);
  EXPECT_NE(txt.find("0.1\t0.35\t261.6255653005986\n"), std::string::npos) << txt;
  EXPECT_NE(txt.find("\t440\n"), std::string::npos) << txt;
  const ScoreNotes sn = parse_mir_eval_txt(txt, "x.txt");
  ASSERT_EQ(sn.notes.size(), seq.notes.size());
  for (size_t i = 0; i < seq.notes.size(); ++i) {
    EXPECT_EQ(sn.notes[i].onset_s, seq.notes[i].onset_s);
    EXPECT_EQ(sn.notes[i].offset_s, seq.notes[i].offset_s);
    EXPECT_EQ(std::lround(hz_to_midi(sn.notes[i].pitch_hz)), seq.notes[i].pitch);
  }
  EXPECT_THROW(parse_notes_csv("a,b\n1,2\n", "bad.csv"), InputError);
  EXPECT_THROW(parse_notes_csv(std::string(kNoteCsvHeader) + "\n0.1,x,60,1,0,Violin\n", "bad.csv"), InputError);
}

TEST(NoteTables, TranscribeWritesCsvAndTxtThatScoreReads) {
  const std::string dir = test::temp_dir("fmt_tables");
  const std::string mid = src("examples/tunescribe-waltz.mid");
  auto r = run_command(cli() + " transcribe " + q(mid) + " -o " + q(dir) + " --format mid,csv,txt");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const NoteSequence written = read_midi_file(dir + "/tunescribe-waltz.mid");
  const NoteSequence csv = read_notes(dir + "/tunescribe-waltz.csv").sequence;
  ASSERT_GT(written.notes.size(), 50u);
  ASSERT_EQ(csv.notes.size(), written.notes.size());
  const ScoreNotes txt = read_mir_eval_txt(dir + "/tunescribe-waltz.txt");
  ASSERT_EQ(txt.notes.size(), written.notes.size());
  for (size_t i = 0; i < written.notes.size(); ++i) {
    EXPECT_EQ(csv.notes[i].pitch, written.notes[i].pitch);
    EXPECT_EQ(csv.notes[i].program, written.notes[i].program);
    EXPECT_NEAR(csv.notes[i].onset_s, written.notes[i].onset_s, 2e-3);
    EXPECT_NEAR(txt.notes[i].onset_s, written.notes[i].onset_s, 2e-3);
    EXPECT_EQ(std::lround(hz_to_midi(txt.notes[i].pitch_hz)), written.notes[i].pitch);
  }
  // score reads both back: the same notes score F = 1.
  for (const char* est : {"tunescribe-waltz.txt", "tunescribe-waltz.csv"}) {
    auto s = run_command(cli() + " score " + q(mid) + " " + q(dir + "/" + est) + " --json");
    ASSERT_EQ(s.exit_code, 0) << s.err;
    auto j = nlohmann::json::parse(s.out);
    EXPECT_NEAR(j["files"][0]["transcription"]["Onset_F-measure"].get<double>(), 1.0, 1e-9) << est;
  }
  fs::remove_all(dir);
}

// ---------------------------------------------------------------------------------- -o FILE

TEST(OutputTarget, FileOrFolder) {
  const std::string dir = test::temp_dir("fmt_target");
  put(dir + "/a.mid", "x");
  put(dir + "/existing.txt", "x");
  OutputTargetRequest req;
  req.inputs = {dir + "/a.mid"};
  req.formats = {"abc", "mid", "json"};
  req.is_format = [](const std::string& f) { return f == "mid" || f == "abc" || f == "json" || f == "csv"; };
  auto target = [&](const std::string& o) {
    req.output = o;
    return resolve_output_target(req);
  };
  EXPECT_EQ(target(dir + "/out.mid").file, dir + "/out.mid");
  EXPECT_EQ(target(dir + "/out.mid").format, "mid");
  EXPECT_EQ(target(dir + "/out.MIDI").format, "mid");
  EXPECT_EQ(target(dir + "/newdir").dir, dir + "/newdir");
  EXPECT_EQ(target(dir + "/folder.mid/").dir, dir + "/folder.mid/") << "a trailing / is always a folder";
  EXPECT_EQ(target(dir).dir, dir);
  EXPECT_THROW(target(dir + "/existing.txt"), ConfigError) << "no format from .txt here, no --format";
  req.format_given = true;
  EXPECT_THROW(target(dir + "/out.mid"), ConfigError) << "three formats into one file";
  req.formats = {"csv"};
  EXPECT_EQ(target(dir + "/out.mid").format, "csv") << "--format wins over the extension";
  req.format_given = false;
  req.formats = {"mid"};
  req.inputs = {dir + "/a.mid", dir + "/b.mid"};
  EXPECT_THROW(target(dir + "/existing.txt"), ConfigError);
  EXPECT_THROW(target(dir + "/new.mid"), ConfigError);
  EXPECT_EQ(target(dir + "/newdir").dir, dir + "/newdir");
  req.inputs = {dir};
  EXPECT_THROW(target(dir + "/new.json"), ConfigError) << "a folder input";
  fs::remove_all(dir);
}

TEST(OutputTarget, CliWritesExactlyThatFile) {
  const std::string dir = test::temp_dir("fmt_ofile");
  const std::string mid = src("examples/tunescribe-waltz.mid");
  auto r = run_command(cli() + " transcribe " + q(mid) + " -o " + q(dir + "/sub/out.mid"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(fs::is_regular_file(dir + "/sub/out.mid")) << "a file, not a folder named out.mid";
  EXPECT_EQ(read_midi_file(dir + "/sub/out.mid").notes.size(), read_midi_file(mid).notes.size());
  EXPECT_EQ(std::distance(fs::directory_iterator(dir + "/sub"), fs::directory_iterator{}), 1);
  // Again without --force: refused; --format overrides the extension.
  EXPECT_EQ(run_command(cli() + " transcribe " + q(mid) + " -o " + q(dir + "/sub/out.mid")).exit_code, 1);
  auto c = run_command(cli() + " transcribe " + q(mid) + " -o " + q(dir + "/notes.json") + " --format csv");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(slurp(dir + "/notes.json").rfind(kNoteCsvHeader, 0), 0u);
  // A name without an output format's extension stays a folder, as before.
  auto d = run_command(cli() + " transcribe " + q(mid) + " -o " + q(dir + "/v1.0") + " --format csv");
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_TRUE(fs::is_regular_file(dir + "/v1.0/tunescribe-waltz.csv"));
  // Several inputs: -o must be a folder.
  fs::copy_file(mid, dir + "/b.mid");
  auto many = run_command(cli() + " transcribe " + q(mid) + " " + q(dir + "/b.mid") + " -o " + q(dir + "/sub/out.mid"));
  EXPECT_EQ(many.exit_code, 2) << many.err;
  EXPECT_NE(many.err.find("-o " + dir + "/sub/out.mid is a file"), std::string::npos) << many.err;
  auto many_new = run_command(cli() + " transcribe " + q(mid) + " " + q(dir + "/b.mid") + " -o " + q(dir + "/x.mid"));
  EXPECT_EQ(many_new.exit_code, 2) << many_new.err;
  EXPECT_FALSE(fs::exists(dir + "/x.mid"));
  auto folder = run_command(cli() + " transcribe " + q(mid) + " " + q(dir + "/b.mid") + " -o " + q(dir + "/o") +
                            " --format json");
  EXPECT_EQ(folder.exit_code, 0) << folder.err;
  EXPECT_TRUE(fs::exists(dir + "/o/b.json"));
  fs::remove_all(dir);
}

// ---------------------------------------------------------------------------------- progress

TEST(Progress, MeterLinesForLogsAndTerminals) {
  ProgressMeterConfig c;
  ProgressMeter log(c);
  EXPECT_EQ(log.update("short.wav", 10, 59, 1.0), "") << "under a minute: nothing";
  EXPECT_EQ(log.update("a.wav", 0, 120, 0.0), "");
  EXPECT_EQ(log.update("a.wav", 30, 120, 2.0), "[transcribe] a.wav: 25% of 2:00 audio, 0:02 elapsed, ETA 0:06\n");
  EXPECT_EQ(log.update("a.wav", 33, 120, 2.1), "") << "under 10 points more";
  EXPECT_EQ(log.update("a.wav", 120, 120, 8.0), "[transcribe] a.wav: 100% of 2:00 audio, 0:08 elapsed, done\n");
  EXPECT_EQ(log.update("a.wav", 120, 120, 9.0), "");
  c.terminal = true;
  ProgressMeter term(c);
  const std::string t = term.update("b.wav", 60, 3600, 1.0);
  EXPECT_EQ(t.rfind("\r[transcribe] b.wav: 1% of 1:00:00 audio", 0), 0u) << t;
  EXPECT_EQ(t.find('\n'), std::string::npos);
  EXPECT_EQ(term.update("b.wav", 61, 3600, 1.1), "") << "at most 4 rewrites a second";
  EXPECT_EQ(term.finish("b.wav"), "\n");
  EXPECT_EQ(format_clock(59.6), "1:00");
  EXPECT_EQ(format_clock(3725), "1:02:05");
}

TEST(Progress, LongInputLogsPercentAndEtaWithoutCarriageReturns) {
  const std::string dir = test::temp_dir("fmt_progress");
  std::vector<float> x(size_t(16000 * 65));
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.2f * float(std::sin(2 * M_PI * 440.0 * double(i) / 16000.0));
  test::write_audio_file(dir + "/long.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, x);
  put(dir + "/notes.txt", "0 1 440\n");
  auto r = run_command(cli() + " transcribe " + q(dir + "/long.wav") + " " + q(dir + "/notes.txt") + " -o " +
                       q(dir + "/out") + " --format json --model " + q(src("models/tiny")) + " 2>&1 < /dev/null");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  const std::string& log = r.out;  // stderr, not a terminal
  EXPECT_EQ(log.find('\r'), std::string::npos) << log;
  EXPECT_GE(count_of(log, "long.wav: "), 2u) << log;
  EXPECT_NE(log.find("% of 1:05 audio"), std::string::npos) << log;
  EXPECT_NE(log.find("ETA "), std::string::npos) << log;
  EXPECT_NE(log.find("long.wav: 100% of 1:05 audio"), std::string::npos) << log;
  // The failing input: one line, naming the file once.
  std::istringstream lines(log);
  std::string line;
  int failed = 0;
  while (std::getline(lines, line))
    if (line.find("notes.txt") != std::string::npos) {
      ++failed;
      EXPECT_EQ(line.rfind("failed: ", 0), 0u) << line;
      EXPECT_EQ(count_of(line, "notes.txt"), 1u) << line;
    }
  EXPECT_EQ(failed, 1) << log;
  fs::remove_all(dir);
}

TEST(Progress, TerminalGetsOneLineRewrittenInPlace) {
  if (!test::have_program("script")) GTEST_SKIP() << "script (util-linux) is not installed";
  const std::string dir = test::temp_dir("fmt_progress_tty");
  std::vector<float> x(size_t(16000 * 70));
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.2f * float(std::sin(2 * M_PI * 330.0 * double(i) / 16000.0));
  test::write_audio_file(dir + "/long.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, x);
  // script runs the command on a pseudo-terminal: stderr is a terminal there.
  const std::string cmd = cli() + " transcribe " + q(dir + "/long.wav") + " -o " + q(dir + "/out") +
                          " --format json --model " + q(src("models/tiny"));
  auto r = run_command("script -qec " + q(cmd) + " /dev/null < /dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const size_t first = r.out.find("\r[transcribe] " + dir + "/long.wav: ");
  ASSERT_NE(first, std::string::npos) << r.out;
  const size_t done = r.out.find("long.wav: 100% of 1:10 audio", first);
  ASSERT_NE(done, std::string::npos) << r.out;
  // Rewritten in place: no newline between the first update and 100 %.
  EXPECT_EQ(r.out.substr(first, done - first).find('\n'), std::string::npos) << r.out;
  EXPECT_GE(count_of(r.out.substr(first, done - first), "\r[transcribe]"), 2u) << r.out;
  fs::remove_all(dir);
}

// ---------------------------------------------------------------------------------- help texts

TEST(HelpTexts, NameTheProgramListFormatsAndGiveExamples) {
  auto top = run_command(cli() + " --help");
  EXPECT_EQ(top.exit_code, 0);
  for (const char* f : {"abc", "mid", "json", "csv", "txt"}) EXPECT_NE(top.out.find(f), std::string::npos) << f;
  EXPECT_NE(top.out.find("Usage: tunescribe "), std::string::npos) << top.out;
  for (const char* sub : {"transcribe", "score", "generate"}) {
    auto h = run_command(cli() + " " + sub + " --help");
    EXPECT_EQ(h.exit_code, 0);
    EXPECT_NE(h.out.find(std::string("Usage: tunescribe ") + sub), std::string::npos) << h.out;
    EXPECT_EQ(h.out.find(tunescribe_bin()), std::string::npos) << "no build path:\n" << h.out;
    EXPECT_NE(h.out.find("Examples:"), std::string::npos) << sub;
  }
  auto t = run_command(cli() + " transcribe --help");
  for (const char* e : {"song.mp3 -o song.mid", "--format csv", "--format txt", ".opus"})
    EXPECT_NE(t.out.find(e), std::string::npos) << e;
  auto s = run_command(cli() + " score --help");
  EXPECT_NE(s.out.find("losses (lower is better)"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find(".csv"), std::string::npos);
  auto tempo = run_command(cli() + " transcribe " + q(src("examples/tunescribe-waltz.mid")) + " --tempo fast");
  EXPECT_EQ(tempo.exit_code, 2);
  EXPECT_NE(tempo.err.find("\"fast\" is not a number: expected beats per minute"), std::string::npos) << tempo.err;
}

TEST(HelpTexts, ScoreTableMarksLosses) {
  auto r = run_command(cli() + " score " + q(src("examples/tunescribe-waltz.mid")) + " " +
                       q(src("examples/tunescribe-waltz.abc")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("pitch"), std::string::npos);
  std::istringstream lines(r.out);
  std::string line;
  int losses = 0;
  while (std::getline(lines, line)) {
    for (const char* k : {"  pitch ", "  metre ", "  tempo ", "  instrument ", "  total "})
      if (line.rfind(k, 0) == 0) {
        ++losses;
        EXPECT_NE(line.find("(loss: lower is better)"), std::string::npos) << line;
      }
    if (line.rfind("  reward ", 0) == 0) EXPECT_NE(line.find("(higher is better)"), std::string::npos) << line;
  }
  EXPECT_EQ(losses, 5) << r.out;
}

// ---------------------------------------------------------------------------------- instruments

TEST(Instruments, RangesClefsAndFolding) {
  EXPECT_EQ(instrument_range(40).low, 55);
  EXPECT_STREQ(instrument_range(40).clef, "treble");
  EXPECT_STREQ(instrument_range(41).clef, "alto");
  EXPECT_STREQ(instrument_range(42).clef, "bass");
  EXPECT_THROW(instrument_range(128), ConfigError);
  NoteSequence s;
  s.notes = {{0, 1, 40, 100, 40, false}, {0, 1, 110, 100, 40, false}, {0, 1, 30, 100, 0, true}};
  EXPECT_EQ(fold_into_range(s, 55, 100), 2);
  EXPECT_EQ(s.notes[0].pitch, 64);
  EXPECT_EQ(s.notes[1].pitch, 98);
  EXPECT_EQ(s.notes[2].pitch, 30) << "drums stay";
  // The clef goes on the layout's pitched voices (not drums, not a piano's hands), and the ABC
  // writer writes it.
  ScoreLayout L;
  for (const char* id : {"P1", "D", "P2R", "P2L"}) {
    ScoreVoice v;
    v.info = {id, "", std::string(id) == "D" ? "perc" : "bass", 41, std::string(id) == "D"};
    L.voices.push_back(v);
  }
  set_voice_clef(&L, "alto");
  EXPECT_EQ(L.voices[0].info.clef, "alto");
  EXPECT_EQ(L.voices[1].info.clef, "perc");
  EXPECT_EQ(L.voices[2].info.clef, "bass");
  EXPECT_EQ(L.voices[3].info.clef, "bass");
  set_voice_clef(&L, "");
  EXPECT_EQ(L.voices[0].info.clef, "alto");
}

TEST(Instruments, GenerateKeepsToTheRangeAndClef) {
  const std::string dir = test::temp_dir("fmt_instr");
  for (const auto& [name, program] : std::vector<std::pair<std::string, int>>{{"violin", 40}, {"viola", 41}, {"cello", 42}}) {
    auto r = run_command(cli() + " generate -q -m " + q(src("models/tiny")) + " -o " + q(dir) + " --name " + name +
                         " --instrument " + name + " --seconds 6 --seed 3 --max-segment-tokens 256");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const NoteSequence seq = read_midi_file(dir + "/" + name + ".mid");
    ASSERT_FALSE(seq.notes.empty()) << name;
    const InstrumentRange& range = instrument_range(program);
    for (const Note& n : seq.notes) {
      EXPECT_GE(n.pitch, range.low) << name;
      EXPECT_LE(n.pitch, range.high) << name;
    }
    const std::string abc = slurp(dir + "/" + name + ".abc");
    EXPECT_NE(abc.find(std::string(" clef=") + range.clef), std::string::npos) << abc;
  }
  fs::remove_all(dir);
}

TEST(Instruments, BarsGivesThatManyBars) {
  const std::string dir = test::temp_dir("fmt_bars");
  for (int seed : {1, 2, 3, 4, 5, 6}) {
    const std::string meter = seed % 2 ? " --meter 3/4 --tempo 90" : " --instrument flute";
    auto r = run_command(cli() + " generate -q -m " + q(src("models/tiny")) + " -o " + q(dir) + " --bars 8 --seed " +
                         std::to_string(seed) + " --json --max-segment-tokens 200" + meter);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out.substr(0, r.out.find('\n')));
    EXPECT_EQ(j["abc"]["bars"], 8) << "seed " << seed << ": " << j.dump();
  }
  fs::remove_all(dir);
}
