// End-to-end tests of the tunescribe executable (exit codes, outputs, batches).
#include <gtest/gtest.h>
#include <sndfile.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/midi.h"

namespace fs = std::filesystem;
using tunescribe::test::run_command;
using tunescribe::test::tunescribe_bin;

namespace {
std::string example_mid() { return std::string(TUNESCRIBE_SOURCE_DIR) + "/examples/tunescribe-waltz.mid"; }
using tunescribe::test::q;
}  // namespace

TEST(Cli, VersionNamesVersionAndCommit) {
  auto r = run_command(q(tunescribe_bin()) + " --version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("tunescribe 0."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("commit"), std::string::npos) << r.out;
}

TEST(Cli, HelpShowsDefaultsAndUnknownFlagIsUsageError) {
  auto r = run_command(q(tunescribe_bin()) + " transcribe --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--batch-size"), std::string::npos);
  EXPECT_NE(r.out.find("--batch-size INT:INT in [0 - 1024]=0"), std::string::npos) << "defaults must be shown\n" << r.out;
  EXPECT_NE(r.out.find("--onset-threshold"), std::string::npos);
  auto bad = run_command(q(tunescribe_bin()) + " transcribe --no-such-flag x.mid");
  EXPECT_EQ(bad.exit_code, 2);
  auto none = run_command(q(tunescribe_bin()));
  EXPECT_EQ(none.exit_code, 2);
}

TEST(Cli, TranscribeMidiWritesMidiAndJsonAndRefusesOverwrite) {
  std::string dir = tunescribe::test::temp_dir("cli_mid");
  auto r = run_command(q(tunescribe_bin()) + " transcribe " + q(example_mid()) + " -o " + q(dir) +
                       " --format mid,json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.empty()) << "stdout must stay empty without --json: " << r.out;
  ASSERT_TRUE(fs::exists(dir + "/tunescribe-waltz.mid"));
  ASSERT_TRUE(fs::exists(dir + "/tunescribe-waltz.json"));
  // The normalised MIDI re-reads to the same notes as the input.
  auto in = tunescribe::read_midi_file(example_mid());
  auto out = tunescribe::read_midi_file(dir + "/tunescribe-waltz.mid");
  ASSERT_EQ(in.notes.size(), out.notes.size());
  ASSERT_GT(in.notes.size(), 50u);
  for (size_t i = 0; i < in.notes.size(); ++i) {
    EXPECT_EQ(in.notes[i].pitch, out.notes[i].pitch);
    EXPECT_NEAR(in.notes[i].onset_s, out.notes[i].onset_s, 2e-3);
    // One MIDI channel cannot hold overlapping notes of one pitch: the writer
    // ends the earlier at the later onset. Elsewhere offsets are kept.
    double next_same = 1e9;
    for (size_t k = 0; k < in.notes.size(); ++k)
      if (k != i && in.notes[k].pitch == in.notes[i].pitch && in.notes[k].onset_s > in.notes[i].onset_s)
        next_same = std::min(next_same, in.notes[k].onset_s);
    EXPECT_NEAR(std::min(in.notes[i].offset_s, next_same), out.notes[i].offset_s, 2e-3) << i;
  }
  std::ifstream jf(dir + "/tunescribe-waltz.json");
  auto j = nlohmann::json::parse(jf);
  ASSERT_EQ(j["notes"].size(), in.notes.size());
  for (const auto& n : j["notes"]) {
    for (const char* k : {"onset_s", "offset_s", "pitch", "velocity", "program", "instrument"})
      EXPECT_TRUE(n.contains(k)) << k;
  }
  // Second run without --force: refused, exit 1, file untouched.
  auto before = fs::last_write_time(dir + "/tunescribe-waltz.mid");
  auto again = run_command(q(tunescribe_bin()) + " transcribe " + q(example_mid()) + " -o " + q(dir) +
                           " --format mid,json");
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("exists"), std::string::npos) << again.err;
  EXPECT_EQ(before, fs::last_write_time(dir + "/tunescribe-waltz.mid"));
  // --skip-existing: success, nothing rewritten.
  auto skip = run_command(q(tunescribe_bin()) + " transcribe " + q(example_mid()) + " -o " + q(dir) +
                          " --format mid,json --skip-existing --json");
  EXPECT_EQ(skip.exit_code, 0) << skip.err;
  EXPECT_NE(skip.out.find("\"skipped\""), std::string::npos) << skip.out;
  // --force: rewritten.
  auto force = run_command(q(tunescribe_bin()) + " transcribe " + q(example_mid()) + " -o " + q(dir) +
                           " --format mid,json --force");
  EXPECT_EQ(force.exit_code, 0) << force.err;
  fs::remove_all(dir);
}

TEST(Cli, BatchKeepsGoingPastBadInputsAndReportsThem) {
  std::string dir = tunescribe::test::temp_dir("cli_batch");
  std::string in = dir + "/in", out = dir + "/out";
  fs::create_directories(in + "/sub");
  fs::copy_file(example_mid(), in + "/a.mid");
  fs::copy_file(example_mid(), in + "/sub/b.mid");
  { std::ofstream(in + "/broken.mid") << "this is not a MIDI file"; }
  auto r = run_command(q(tunescribe_bin()) + " transcribe " + q(in) + " -r -o " + q(out) + " --json --format json");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(fs::exists(out + "/a.json"));
  EXPECT_TRUE(fs::exists(out + "/b.json"));
  EXPECT_FALSE(fs::exists(out + "/broken.json"));
  EXPECT_NE(r.err.find("broken.mid"), std::string::npos) << r.err;
  // stdout: one JSON object per input, then a summary.
  std::istringstream lines(r.out);
  std::string line, last;
  int objects = 0;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);  // every line is JSON
    (void)j;
    ++objects;
    last = line;
  }
  EXPECT_EQ(objects, 4);
  auto summary = nlohmann::json::parse(last)["summary"];
  EXPECT_EQ(summary["ok"], 2);
  EXPECT_EQ(summary["failed"], 1);
  // No temporary files left behind.
  for (auto& e : fs::directory_iterator(out)) EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Cli, PathsFromStdinAndMissingFile) {
  std::string dir = tunescribe::test::temp_dir("cli_stdin");
  auto r = run_command("printf '%s\\n%s\\n' " + q(example_mid()) + " /nonexistent/x.mid | " + q(tunescribe_bin()) +
                       " transcribe - -o " + q(dir) + " --format json");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(fs::exists(dir + "/tunescribe-waltz.json"));
  EXPECT_NE(r.err.find("/nonexistent/x.mid"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

TEST(Cli, UnknownFormatIsUsageError) {
  auto r = run_command(q(tunescribe_bin()) + " transcribe " + q(example_mid()) + " --format pdf");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("pdf"), std::string::npos) << r.err;
}

TEST(Cli, DefaultFormatsIncludeValidAbc) {
  std::string dir = tunescribe::test::temp_dir("cli_abc");
  auto r = run_command(q(tunescribe_bin()) + " transcribe " + q(example_mid()) + " -o " + q(dir));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* ext : {".abc", ".mid", ".json"}) EXPECT_TRUE(fs::exists(dir + "/tunescribe-waltz" + ext)) << ext;
  std::ifstream in(dir + "/tunescribe-waltz.abc");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string abc = ss.str();
  EXPECT_EQ(abc.rfind("X:1\n", 0), 0u) << abc.substr(0, 40);
  EXPECT_NE(abc.find("T:tunescribe-waltz"), std::string::npos);
  EXPECT_NE(abc.find("M:3/4"), std::string::npos) << "the MIDI's time signature is used";
  EXPECT_NE(abc.find("K:G"), std::string::npos) << "the MIDI's key signature is used";
  if (tunescribe::test::have_program("abc2midi")) {
    auto v = run_command("cd " + q(dir) + " && abc2midi tunescribe-waltz.abc -c");
    EXPECT_EQ(v.exit_code, 0);
    EXPECT_EQ(v.out.find("Error"), std::string::npos) << v.out;
    EXPECT_EQ(v.out.find("Warning"), std::string::npos) << v.out;
  }
  // Overrides change the header.
  auto o = run_command(q(tunescribe_bin()) + " transcribe " + q(example_mid()) + " -o " + q(dir) +
                       " --format abc --force --meter 6/8 --key D --tempo 90 --title 'My Waltz'");
  ASSERT_EQ(o.exit_code, 0) << o.err;
  std::ifstream in2(dir + "/tunescribe-waltz.abc");
  std::stringstream ss2;
  ss2 << in2.rdbuf();
  EXPECT_NE(ss2.str().find("M:6/8"), std::string::npos);
  EXPECT_NE(ss2.str().find("K:D"), std::string::npos);
  EXPECT_NE(ss2.str().find("T:My Waltz"), std::string::npos);
  auto bad = run_command(q(tunescribe_bin()) + " transcribe " + q(example_mid()) + " -o " + q(dir) +
                         " --format abc --force --meter 7/3");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("meter"), std::string::npos) << bad.err;
  fs::remove_all(dir);
}

namespace {
std::string tiny_model() { return std::string(TUNESCRIBE_SOURCE_DIR) + "/models/tiny"; }
std::string clip() { return tunescribe::test::data_dir() + "/e2e/waltz-start.flac"; }
}  // namespace

// Audio → notes end to end on the tiny random-weights model: real structure
// (valid MIDI, JSON schema, notes inside the audio), not accuracy.
TEST(CliAudio, TinyModelTranscribesAudioToValidOutputs) {
  std::string dir = tunescribe::test::temp_dir("cli_audio");
  auto r = run_command(q(tunescribe_bin()) + " transcribe " + q(clip()) + " -o " + q(dir) + " --model " +
                       q(tiny_model()) + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto first = nlohmann::json::parse(r.out.substr(0, r.out.find('\n')));
  EXPECT_EQ(first["status"], "ok");
  EXPECT_NEAR(first["duration_s"].get<double>(), 2.5, 0.01);
  std::ifstream jf(dir + "/waltz-start.json");
  auto j = nlohmann::json::parse(jf);
  ASSERT_TRUE(j["notes"].is_array());
  for (const auto& n : j["notes"]) {
    EXPECT_GE(n["onset_s"].get<double>(), 0.0);
    EXPECT_LE(n["offset_s"].get<double>(), 2.5 + 1e-9);
    EXPECT_LT(n["onset_s"].get<double>(), n["offset_s"].get<double>());
    EXPECT_GE(n["pitch"].get<int>(), 0);
    EXPECT_LE(n["pitch"].get<int>(), 127);
  }
  auto seq = tunescribe::read_midi_file(dir + "/waltz-start.mid");  // valid MIDI
  EXPECT_EQ(seq.notes.size(), j["notes"].size());
  EXPECT_TRUE(fs::exists(dir + "/waltz-start.abc"));
  fs::remove_all(dir);
}

TEST(CliAudio, CorruptAudioFailsAloneAndBadModelIsExit3) {
  std::string dir = tunescribe::test::temp_dir("cli_badaudio");
  std::string in = dir + "/in";
  fs::create_directories(in);
  fs::copy_file(clip(), in + "/good.flac");
  { std::ofstream(in + "/fake.wav") << "RIFF....WAVEnot really audio"; }
  { std::ofstream(in + "/empty.wav"); }
  auto r = run_command(q(tunescribe_bin()) + " transcribe " + q(in) + " -o " + q(dir + "/out") + " --model " +
                       q(tiny_model()) + " --format json");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(fs::exists(dir + "/out/good.json"));
  EXPECT_FALSE(fs::exists(dir + "/out/fake.json"));
  EXPECT_NE(r.err.find("fake.wav"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("empty.wav"), std::string::npos) << r.err;
  // A model directory with a truncated weights file: exit 3, the file named.
  std::string model = dir + "/model";
  fs::create_directories(model);
  fs::copy_file(tiny_model() + "/config.json", model + "/config.json");
  {
    std::ifstream src(tiny_model() + "/model.safetensors", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(src)), std::istreambuf_iterator<char>());
    std::ofstream(model + "/model.safetensors", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  auto m = run_command(q(tunescribe_bin()) + " transcribe " + q(in + "/good.flac") + " -o " + q(dir + "/out2") +
                       " --model " + q(model));
  EXPECT_EQ(m.exit_code, 3) << m.err;
  EXPECT_NE(m.err.find("model.safetensors"), std::string::npos) << m.err;
  EXPECT_FALSE(fs::exists(dir + "/out2/good.json"));
  fs::remove_all(dir);
}

// The hconv model family (tests/data/hconv): both decoding paths from the command
// line, the frames decoder's flags, and their validation.
namespace {
std::string hconv_model() { return tunescribe::test::data_dir() + "/hconv/model"; }
nlohmann::json read_json_file(const std::string& path) {
  std::ifstream f(path);
  return nlohmann::json::parse(f);
}
}  // namespace

TEST(CliHconv, BothDecodersWriteOutputsAndFramesFlagsApply) {
  std::string dir = tunescribe::test::temp_dir("cli_hconv");
  std::vector<float> x(24000);
  for (size_t i = 0; i < x.size(); ++i) {
    const double t = double(i) / 16000.0;
    x[i] = float(0.3 * std::sin(2 * M_PI * 220.0 * t) + 0.2 * std::sin(2 * M_PI * 659.26 * t));
  }
  const std::string wav =
      tunescribe::test::write_audio_file(dir + "/tones.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, x);
  auto run = [&](const std::string& out, const std::string& flags) {
    return run_command(q(tunescribe_bin()) + " transcribe " + q(wav) + " -o " + q(dir + "/" + out) + " --model " +
                       q(hconv_model()) + " --format json,mid,abc " + flags);
  };
  for (const std::string decoder : {"frames", "tokens", "auto"}) {
    auto r = run(decoder, "--decoder " + decoder);
    ASSERT_EQ(r.exit_code, 0) << decoder << ": " << r.err;
    EXPECT_TRUE(fs::exists(dir + "/" + decoder + "/tones.mid"));
    EXPECT_TRUE(fs::exists(dir + "/" + decoder + "/tones.abc"));
    const auto j = read_json_file(dir + "/" + decoder + "/tones.json");
    ASSERT_TRUE(j["notes"].is_array());
    for (const auto& n : j["notes"]) {
      EXPECT_EQ(n.contains("confidence"), decoder != "tokens") << n.dump();
      if (n.contains("confidence")) {
        EXPECT_GE(n["confidence"].get<double>(), 0.0);
        EXPECT_LE(n["confidence"].get<double>(), 1.0);
      }
      EXPECT_LE(n["offset_s"].get<double>(), 1.5 + 1e-9);
    }
    if (decoder == "frames") EXPECT_FALSE(j["notes"].empty()) << "the tiny model's biased heads fire";
  }
  // auto = the model's default, frames: the same bytes.
  EXPECT_EQ(tunescribe::read_file_text(dir + "/auto/tones.json"), tunescribe::read_file_text(dir + "/frames/tones.json"));
  const size_t n_default = read_json_file(dir + "/frames/tones.json")["notes"].size();
  // Each knob changes the output in the expected direction.
  ASSERT_EQ(run("hi", "--onset-threshold 0.99").exit_code, 0);
  EXPECT_LT(read_json_file(dir + "/hi/tones.json")["notes"].size(), n_default);
  ASSERT_EQ(run("long", "--min-note-ms 100").exit_code, 0);
  const auto lj = read_json_file(dir + "/long/tones.json");
  EXPECT_LT(lj["notes"].size(), n_default);
  for (const auto& n : lj["notes"])
    EXPECT_GE(n["offset_s"].get<double>() - n["onset_s"].get<double>(), 0.1 - 1e-9) << n.dump();
  ASSERT_EQ(run("band", "--min-freq 200 --max-freq 1000").exit_code, 0);
  const auto bj = read_json_file(dir + "/band/tones.json");
  EXPECT_LT(bj["notes"].size(), n_default);
  for (const auto& n : bj["notes"]) {
    EXPECT_GE(n["pitch"].get<int>(), 55);  // 196 Hz < 200 Hz <= G#3 207.7 Hz
    EXPECT_LE(n["pitch"].get<int>(), 83);  // B5 987.8 Hz <= 1000 Hz < C6
  }
  auto total_s = [](const nlohmann::json& j) {
    double s = 0;
    for (const auto& n : j["notes"]) s += n["offset_s"].get<double>() - n["onset_s"].get<double>();
    return s;
  };
  ASSERT_EQ(run("hiframe", "--frame-threshold 0.95").exit_code, 0);  // above the biased frame head: shorter notes
  EXPECT_LT(total_s(read_json_file(dir + "/hiframe/tones.json")), 0.5 * total_s(read_json_file(dir + "/frames/tones.json")));
  fs::remove_all(dir);
}

TEST(CliHconv, BadDecoderFlagsAreRejectedWithOneLine) {
  std::string dir = tunescribe::test::temp_dir("cli_hconv_bad");
  const std::string wav = tunescribe::test::write_audio_file(dir + "/s.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000,
                                                             1, std::vector<float>(4000, 0.0f));
  auto run = [&](const std::string& flags, const std::string& model) {
    return run_command(q(tunescribe_bin()) + " transcribe " + q(wav) + " -o " + q(dir + "/out") + " --model " +
                       q(model) + " " + flags);
  };
  for (const std::string flags : {"--onset-threshold 1.5", "--frame-threshold -0.2", "--min-note-ms -5",
                                  "--min-note-ms abc", "--decoder beam", "--min-freq -1"}) {
    auto r = run(flags, hconv_model());
    EXPECT_EQ(r.exit_code, 2) << flags << ": " << r.err;
    EXPECT_FALSE(r.err.empty()) << flags;
  }
  auto r = run("--min-freq 500 --max-freq 100", hconv_model());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("min_freq_hz = 500 is above max_freq_hz = 100"), std::string::npos) << r.err;
  const std::string tiny = std::string(TUNESCRIBE_SOURCE_DIR) + "/models/tiny";
  r = run("--decoder frames", tiny);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("error: transcriber: decoder \"frames\" needs a model with dense heads"), std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(dir + "/out/s.json"));
  auto help = run_command(q(tunescribe_bin()) + " transcribe --help");
  for (const char* s : {"--decoder", "--onset-threshold", "--frame-threshold", "--min-note-ms", "--min-freq",
                        "--max-freq", "milliseconds", "Hz"})
    EXPECT_NE(help.out.find(s), std::string::npos) << s;
  fs::remove_all(dir);
}
