// test_util.h — helpers shared by the tests.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tunescribe::test {

// ../shared beside the checkout, or "" when it is absent (a user's clone).
std::string shared_dir();
// Skips the current test when ../shared is absent.
#define TS_REQUIRE_SHARED()                                               \
  do {                                                                    \
    if (::tunescribe::test::shared_dir().empty())                         \
      GTEST_SKIP() << "../shared is absent: skipping corpus-based test";  \
  } while (0)

// tests/data (committed fixtures).
std::string data_dir();
// Path of the built tunescribe executable.
std::string tunescribe_bin();
// A fresh empty temporary folder (removed at process exit is not guaranteed).
std::string temp_dir(const std::string& tag);

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// A path single-quoted for run_command's shell (test paths hold no single quote).
std::string q(const std::string& s);
// Non-overlapping occurrences of `what` in `s`.
size_t count(const std::string& s, const std::string& what);
// Run a shell command line; captures stdout and stderr separately.
CommandResult run_command(const std::string& cmdline);
// True when a program is on PATH.
bool have_program(const std::string& name);
// Writes interleaved float frames with libsndfile (format: SF_FORMAT_* flags); returns the path.
// Failures are reported as gtest failures.
std::string write_audio_file(const std::string& path, int format, int rate, int channels,
                             const std::vector<float>& interleaved);
// Minimal .npy reader for little-endian float32 C-order arrays (throws std::runtime_error).
std::vector<float> read_npy_f32(const std::string& path, std::vector<size_t>* shape);
// Debian's python3 (with python3-numpy, python3-mido, python3-mir-eval).
std::string python();

}  // namespace tunescribe::test
