// Production hardening of `tunescribe transcribe`: interruption (SIGINT /
// SIGTERM), --shard, --summary, --jobs, and a batch of bad inputs through the CLI.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "test_util.h"
#include "tunescribe/abc_reader.h"
#include "tunescribe/audio.h"
#include "tunescribe/errors.h"
#include "tunescribe/midi.h"

namespace fs = std::filesystem;
using tunescribe::test::run_command;
using tunescribe::test::tunescribe_bin;

namespace {

std::string example_mid() { return std::string(TUNESCRIBE_SOURCE_DIR) + "/examples/tunescribe-waltz.mid"; }
std::string tiny_model() { return std::string(TUNESCRIBE_SOURCE_DIR) + "/models/tiny"; }
std::string clip() { return tunescribe::test::data_dir() + "/e2e/waltz-start.flac"; }
using tunescribe::test::q;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A folder of n copies of the example MIDI file: in/000.mid ...
std::string midi_folder(const std::string& dir, int n) {
  std::string in = dir + "/in";
  fs::create_directories(in);
  for (int i = 0; i < n; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "/%03d.mid", i);
    fs::copy_file(example_mid(), in + name);
  }
  return in;
}

std::vector<std::string> temp_leftovers(const std::string& dir) {
  std::vector<std::string> out;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.path().filename().string().find(".tmp") != std::string::npos) out.push_back(e.path().string());
  return out;
}

// Starts the binary with argv, stdout/stderr to files; returns the pid.
pid_t spawn(const std::vector<std::string>& args, const std::string& out_file, const std::string& err_file) {
  pid_t pid = fork();
  if (pid == 0) {
    int o = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(o, 1);
    ::dup2(e, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

int wait_exit_code(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Waits (up to 60 s) until a file with the extension appears in dir.
bool wait_for_output(const std::string& dir, const std::string& ext) {
  for (int i = 0; i < 6000; ++i) {
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
      if (it->path().extension() == ext) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// Interrupts a batch after its first output and checks the aftermath.
void check_interrupted_batch(const std::vector<std::string>& extra_args, const std::string& in, int n_inputs,
                             const std::string& dir, int sig, const std::string& ext) {
  const std::string out = dir + "/out";
  fs::create_directories(out);
  std::vector<std::string> args = {tunescribe_bin(), "transcribe", in, "-o", out, "--format", "mid,json",
                                   "--summary", dir + "/summary.json", "--json"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  pid_t pid = spawn(args, dir + "/stdout.txt", dir + "/stderr.txt");
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(wait_for_output(out, ext)) << slurp(dir + "/stderr.txt");
  ::kill(pid, sig);
  const int rc = wait_exit_code(pid);
  const std::string err = slurp(dir + "/stderr.txt");
  EXPECT_EQ(rc, 128 + sig) << err;
  EXPECT_NE(err.find(sig == SIGINT ? "interrupted by SIGINT" : "interrupted by SIGTERM"), std::string::npos) << err;
  EXPECT_TRUE(temp_leftovers(dir).empty()) << temp_leftovers(dir)[0];
  // Every output present is complete: JSON parses, MIDI reads, and they come in pairs.
  int n_json = 0;
  for (auto& e : fs::directory_iterator(out)) {
    if (e.path().extension() == ".json") {
      ++n_json;
      auto j = nlohmann::json::parse(slurp(e.path().string()));
      EXPECT_TRUE(j["notes"].is_array());
      fs::path mid = e.path();
      mid.replace_extension(".mid");
      ASSERT_TRUE(fs::exists(mid)) << mid;
      EXPECT_EQ(tunescribe::read_midi_file(mid.string()).notes.size(), j["notes"].size());
    }
  }
  EXPECT_GE(n_json, 1);
  EXPECT_LT(n_json, n_inputs) << "the batch finished before the signal: make it longer";
  // The summary file was written and agrees with the outputs.
  auto s = nlohmann::json::parse(slurp(dir + "/summary.json"));
  EXPECT_EQ(s["interrupted"], sig == SIGINT ? "SIGINT" : "SIGTERM");
  EXPECT_EQ(s["ok"].get<int>(), n_json);
  EXPECT_EQ(s["succeeded"].size(), size_t(n_json));
  EXPECT_EQ(s["ok"].get<int>() + s["not_done"].get<int>(), n_inputs);
  EXPECT_EQ(s["not_done_inputs"].size(), s["not_done"].get<size_t>());
  // stdout has one JSON line per finished input and the summary line.
  std::istringstream lines(slurp(dir + "/stdout.txt"));
  std::string line, last;
  int n_lines = 0;
  while (std::getline(lines, line)) {
    last = line;
    ++n_lines;
  }
  EXPECT_EQ(n_lines, n_json + 1);
  auto summary_line = nlohmann::json::parse(last);
  EXPECT_EQ(summary_line["summary"]["ok"].get<int>(), n_json);
  // Resume: --skip-existing finishes the rest.
  auto r = run_command(q(tunescribe_bin()) + " transcribe " + q(in) + " -o " + q(out) + " --format mid,json --skip-existing " +
                       (extra_args.empty() ? "" : extra_args[0] + " " + extra_args[1]) + " --summary " + q(dir + "/summary2.json"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto s2 = nlohmann::json::parse(slurp(dir + "/summary2.json"));
  EXPECT_EQ(s2["skipped"].get<int>(), n_json);
  EXPECT_EQ(s2["ok"].get<int>(), n_inputs - n_json);
}

}  // namespace

TEST(Harden, SigintStopsAMidiBatchCleanly) {
  std::string dir = tunescribe::test::temp_dir("harden_sigint");
  const int n = 300;  // ~10 ms each (fsync); the signal comes after the first
  std::string in = midi_folder(dir, n);
  check_interrupted_batch({}, in, n, dir, SIGINT, ".json");
  fs::remove_all(dir);
}

TEST(Harden, SigtermStopsAnAudioBatchCleanly) {
  std::string dir = tunescribe::test::temp_dir("harden_sigterm");
  std::string in = dir + "/in";
  fs::create_directories(in);
  const int n = 6;
  for (int i = 0; i < n; ++i) fs::copy_file(clip(), in + "/clip" + std::to_string(10 + i) + ".flac");
  check_interrupted_batch({"--model", tiny_model()}, in, n, dir, SIGTERM, ".json");
  fs::remove_all(dir);
}

TEST(Harden, ShardsPartitionTheInputsDeterministically) {
  std::string dir = tunescribe::test::temp_dir("harden_shard");
  std::string in = midi_folder(dir, 10);
  std::multiset<std::string> all;
  for (int k = 1; k <= 3; ++k) {
    auto r = run_command(q(tunescribe_bin()) + " transcribe " + q(in) + " -o " + q(dir + "/out") +
                         " --format json --json --shard " + std::to_string(k) + "/3");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::istringstream lines(r.out);
    std::string line;
    std::vector<std::string> mine;
    while (std::getline(lines, line)) {
      auto j = nlohmann::json::parse(line);
      if (j.contains("input")) mine.push_back(fs::path(j["input"].get<std::string>()).filename().string());
    }
    // Rank % 3 == k - 1 over the sorted names 000 .. 009.
    std::vector<std::string> want;
    for (int i = k - 1; i < 10; i += 3) {
      char name[16];
      std::snprintf(name, sizeof name, "%03d.mid", i);
      want.push_back(name);
    }
    EXPECT_EQ(mine, want) << "shard " << k;
    all.insert(mine.begin(), mine.end());
  }
  EXPECT_EQ(all.size(), 10u);
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), 10u);
  // The same shard from inputs listed in another order selects the same files.
  std::string listed;
  for (int i = 9; i >= 0; --i) listed += " " + q(in + "/00" + std::to_string(i) + ".mid");
  auto r = run_command(q(tunescribe_bin()) + " transcribe" + listed + " -o " + q(dir + "/out2") +
                       " --format json --json --shard 2/3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> got;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("input")) got.insert(fs::path(j["input"].get<std::string>()).filename().string());
  }
  EXPECT_EQ(got, (std::set<std::string>{"001.mid", "004.mid", "007.mid"}));
  for (const char* bad : {"0/3", "4/3", "1/0", "a/b", "3", "/3", "1/", "-1/3", "1/3/4"}) {
    auto b = run_command(q(tunescribe_bin()) + " transcribe " + q(in) + " -o " + q(dir + "/out3") + " --shard " + q(bad));
    EXPECT_EQ(b.exit_code, 2) << bad << ": " << b.err;
    EXPECT_NE(b.err.find("--shard"), std::string::npos) << b.err;
  }
  EXPECT_FALSE(fs::exists(dir + "/out3/000.abc"));
  fs::remove_all(dir);
}

TEST(Harden, ParallelJobsGiveTheSameOutputsAndASummary) {
  std::string dir = tunescribe::test::temp_dir("harden_jobs");
  std::string in = midi_folder(dir, 8);
  { std::ofstream(in + "/zz_corrupt.mid", std::ios::binary) << std::string("MThd\0\0\0\6garbage", 15); }
  auto one = run_command(q(tunescribe_bin()) + " transcribe " + q(in) + " -o " + q(dir + "/one") + " --jobs 1");
  EXPECT_EQ(one.exit_code, 1) << one.err;
  auto four = run_command(q(tunescribe_bin()) + " transcribe " + q(in) + " -o " + q(dir + "/four") +
                          " --jobs 4 --json --summary " + q(dir + "/s.json"));
  EXPECT_EQ(four.exit_code, 1) << four.err;
  for (auto& e : fs::directory_iterator(dir + "/one"))
    EXPECT_EQ(slurp(e.path().string()), slurp(dir + "/four/" + e.path().filename().string())) << e.path();
  EXPECT_EQ(std::distance(fs::directory_iterator(dir + "/one"), fs::directory_iterator()), 8 * 3);
  auto s = nlohmann::json::parse(slurp(dir + "/s.json"));
  EXPECT_EQ(s["ok"], 8);
  EXPECT_EQ(s["failed"], 1);
  EXPECT_EQ(s["not_done"], 0);
  EXPECT_TRUE(s["interrupted"].is_null());
  ASSERT_EQ(s["failures"].size(), 1u);
  const std::string reason = s["failures"][0]["error"];
  EXPECT_NE(reason.find("zz_corrupt.mid"), std::string::npos) << reason;
  EXPECT_EQ(s["succeeded"].size(), 8u);
  EXPECT_EQ(s["succeeded"][0]["outputs"].size(), 3u);
  // One --json line per input plus the summary, whatever the completion order.
  EXPECT_EQ(std::count(four.out.begin(), four.out.end(), '\n'), 10);
  auto bad = run_command(q(tunescribe_bin()) + " transcribe " + q(in) + " -o " + q(dir + "/x") + " --jobs 0");
  EXPECT_EQ(bad.exit_code, 2);
  fs::remove_all(dir);
}

namespace {

// A PCM16 WAV image; riff_size / data_size override the header fields when >= 0.
std::string wav_bytes(int channels, int rate_hz, const std::vector<int16_t>& interleaved, int64_t riff_size = -1,
                      int64_t data_size = -1) {
  auto u32 = [](std::string& s, uint32_t v) {
    for (int i = 0; i < 4; ++i) s.push_back(char((v >> (8 * i)) & 0xff));
  };
  auto u16 = [](std::string& s, uint16_t v) {
    s.push_back(char(v & 0xff));
    s.push_back(char(v >> 8));
  };
  const uint32_t data_n = uint32_t(interleaved.size() * 2);
  std::string s = "RIFF";
  u32(s, riff_size >= 0 ? uint32_t(riff_size) : 36 + data_n);
  s += "WAVEfmt ";
  u32(s, 16);
  u16(s, 1);
  u16(s, uint16_t(channels));
  u32(s, uint32_t(rate_hz));
  u32(s, uint32_t(rate_hz * channels * 2));
  u16(s, uint16_t(channels * 2));
  u16(s, 16);
  s += "data";
  u32(s, data_size >= 0 ? uint32_t(data_size) : data_n);
  for (int16_t v : interleaved) u16(s, uint16_t(v));
  return s;
}

std::vector<int16_t> tone(int channels, int rate_hz, double seconds) {
  std::vector<int16_t> x;
  const int n = int(seconds * rate_hz);
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < channels; ++c) x.push_back(int16_t(8000 * std::sin(2 * M_PI * (220.0 * (c + 1)) * i / rate_hz)));
  return x;
}

void put(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

}  // namespace

// Every kind of bad input in one batch: each fails alone with one line naming
// the file and the cause, the good inputs complete, exit code 1, no partial outputs.
TEST(Harden, BadInputsFailAloneInABatch) {
  std::string dir = tunescribe::test::temp_dir("harden_bad");
  std::string in = dir + "/in";
  fs::create_directories(in + "/sub");
  fs::copy_file(example_mid(), in + "/good_midi.mid");
  put(in + "/good_8ch_96k.wav", wav_bytes(8, 96000, tone(8, 96000, 1.0)));
  put(in + "/trunc_header.wav", wav_bytes(1, 16000, tone(1, 16000, 0.5)).substr(0, 30));
  const auto t = tone(1, 16000, 0.5);
  put(in + "/data_too_long.wav", wav_bytes(1, 16000, t, -1, int64_t(t.size()) * 2 * 10));
  put(in + "/zero_samples.wav", wav_bytes(1, 16000, {}));
  {
    // float WAV with a NaN: write a 32-bit float file by hand.
    std::string s = wav_bytes(1, 16000, std::vector<int16_t>(2000, 0));
    s[20] = 3;            // format tag IEEE float
    s[34] = 32;           // bits per sample
    s[32] = 4;            // block align
    uint32_t br = 16000 * 4;
    std::memcpy(&s[28], &br, 4);
    float nan = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(&s[44 + 400], &nan, 4);  // 4000 data bytes = 1000 float samples
    put(in + "/nan_samples.wav", s);
  }
  put(in + "/not_audio.wav", "This is a text file named .wav\n");
  put(in + "/corrupt.mid", std::string("MThd\0\0\0\6\0\1\0\2\1\xe0MTrk\0\0\0\x40\0\x90", 24));  // track cut short
  fs::create_directory_symlink("..", in + "/sub/loop");  // a directory symlink loop
  const std::string out = dir + "/out";
  auto r = run_command(q(tunescribe_bin()) + " transcribe " + q(in) + " -r -o " + q(out) + " --model " + q(tiny_model()) +
                       " --format mid,json --summary " + q(dir + "/s.json"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(fs::exists(out + "/good_midi.json")) << r.err;
  EXPECT_TRUE(fs::exists(out + "/good_8ch_96k.json")) << r.err;
  for (const char* bad : {"trunc_header", "data_too_long", "zero_samples", "nan_samples", "not_audio", "corrupt"}) {
    EXPECT_FALSE(fs::exists(out + "/" + bad + ".json")) << bad;
    EXPECT_FALSE(fs::exists(out + "/" + bad + ".mid")) << bad;
    // One "failed: <path>: <cause>" line naming the file.
    std::istringstream lines(r.err);
    std::string line;
    int n = 0;
    while (std::getline(lines, line))
      if (line.rfind("failed: ", 0) == 0 && line.find(std::string(bad) + ".") != std::string::npos) {
        ++n;
        EXPECT_GT(line.size(), std::string(bad).size() + 30) << "a cause must follow the name: " << line;
      }
    EXPECT_EQ(n, 1) << bad << "\n" << r.err;
  }
  EXPECT_TRUE(temp_leftovers(dir).empty());
  auto s = nlohmann::json::parse(slurp(dir + "/s.json"));
  EXPECT_EQ(s["failed"], 6) << s.dump(1);
  // The symlink loop terminates: each real file is processed once, looped copies are not.
  EXPECT_EQ(s["ok"], 2) << s.dump(1);
  fs::remove_all(dir);
}

TEST(Harden, UnreadableInputFailsAlone) {
  std::string dir = tunescribe::test::temp_dir("harden_unreadable");
  fs::copy_file(example_mid(), dir + "/good.mid");
  fs::copy_file(example_mid(), dir + "/locked.mid");
  fs::permissions(dir + "/locked.mid", fs::perms::none);
  fs::create_symlink(dir + "/nowhere.mid", dir + "/dangling.mid");
  const bool root = ::geteuid() == 0;         // root reads mode-000 files anyway
  auto r = run_command(q(tunescribe_bin()) + " transcribe " + q(dir + "/good.mid") + " " + q(dir + "/locked.mid") + " " +
                       q(dir + "/dangling.mid") + " -o " + q(dir + "/out") + " --format json");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(fs::exists(dir + "/out/good.json"));
  EXPECT_NE(r.err.find("dangling.mid: no such file"), std::string::npos) << r.err;
  if (!root) {
    EXPECT_NE(r.err.find("locked.mid"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir + "/out/locked.json"));
  }
  fs::permissions(dir + "/locked.mid", fs::perms::owner_all);
  fs::remove_all(dir);
}

TEST(Harden, MismatchedModelConfigIsExit3NamingTheFile) {
  std::string dir = tunescribe::test::temp_dir("harden_model");
  std::string model = dir + "/model";
  fs::create_directories(model);
  fs::copy_file(tiny_model() + "/model.safetensors", model + "/model.safetensors");
  auto cfg = nlohmann::json::parse(slurp(tiny_model() + "/config.json"));
  cfg["model"]["d_model"] = cfg["model"]["d_model"].get<int>() * 2;  // the weights no longer fit
  put(model + "/config.json", cfg.dump());
  fs::copy_file(clip(), dir + "/a.flac");
  fs::copy_file(example_mid(), dir + "/b.mid");
  auto r = run_command(q(tunescribe_bin()) + " transcribe " + q(dir + "/a.flac") + " -o " + q(dir + "/out") + " --model " +
                       q(model) + " --format json --summary " + q(dir + "/s.json"));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("model"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(model), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/out/a.json"));
  auto s = nlohmann::json::parse(slurp(dir + "/s.json"));
  EXPECT_FALSE(s["fatal_error"].is_null());
  fs::remove_all(dir);
}

// The ABC reader is lenient by design (model output is often fragmentary:
// unknown symbols become warnings), so a "broken" ABC here is one with no tune
// at all: an empty file, or an X: header without its K: body.
TEST(Harden, ScoreNamesABrokenAbcFile) {
  std::string dir = tunescribe::test::temp_dir("harden_abc");
  put(dir + "/empty.abc", "");
  put(dir + "/headless.abc", "X:1\nT:a title and nothing else\n");
  fs::copy_file(example_mid(), dir + "/ref.mid");
  for (const char* f : {"empty.abc", "headless.abc"}) {
    auto r = run_command(q(tunescribe_bin()) + " score " + q(dir + "/ref.mid") + " " + q(dir + "/" + f));
    EXPECT_NE(r.exit_code, 0) << f;
    EXPECT_NE(r.err.find(std::string(f) + ": no tune"), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  // Binary junk named .abc does not crash the reader.
  put(dir + "/junk.abc", std::string("X:1\nK:C\n\x00\x01\x02\xff\xfe|]\n", 16));
  auto r = run_command(q(tunescribe_bin()) + " score " + q(dir + "/ref.mid") + " " + q(dir + "/junk.abc"));
  EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 1 || r.exit_code == 2) << r.exit_code << r.err;
  fs::remove_all(dir);
}

// Regressions for fuzzer findings (inputs kept in tests/fuzz/<target>/regress-*).
TEST(HardenFuzzRegressions, LongBrokenRhythmRunIsAWarningNotUndefinedShift) {
  const std::string text = "X:1\nL:1/8\nK:C\nA" + std::string(150, '>') + "B c<<<<<<<<d|\n";
  auto tunes = tunescribe::read_abc_text(text, "long.abc");
  ASSERT_EQ(tunes.size(), 1u);
  ASSERT_EQ(tunes[0].notes.size(), 4u);
  bool warned = false;
  for (const auto& w : tunes[0].warnings) warned |= w.find("broken rhythm longer than 3") != std::string::npos;
  EXPECT_TRUE(warned);
  // Clamped to '>>>': A lasts 15/16 of the pair, B 1/16.
  auto seq = tunes[0].sequence;
  seq.sort();
  ASSERT_EQ(seq.notes.size(), 4u);
  const double a = seq.notes[0].offset_s - seq.notes[0].onset_s, b = seq.notes[1].offset_s - seq.notes[1].onset_s;
  EXPECT_NEAR(a / b, 15.0, 0.5);
}

TEST(HardenFuzzRegressions, AbsurdFrameCountInAHeaderDoesNotAllocateIt) {
  std::string dir = tunescribe::test::temp_dir("harden_frames");
  // A WAV whose data chunk claims 4 GB in a 1 kB file: rejected as truncated.
  const auto t = tone(1, 16000, 0.03);
  put(dir + "/huge.wav", wav_bytes(1, 16000, t, -1, 0xFFFFFFF0LL));
  try {
    auto a = tunescribe::load_audio(dir + "/huge.wav");
    EXPECT_LE(a.samples.size(), t.size());
  } catch (const tunescribe::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("huge.wav"), std::string::npos) << e.what();
  }
  const std::string regress = std::string(TUNESCRIBE_SOURCE_DIR) + "/tests/fuzz/audio/regress-huge-frame-count.wav";
  try {
    (void)tunescribe::load_audio(regress);
  } catch (const tunescribe::InputError&) {
  }
  fs::remove_all(dir);
}
