// Tests of AudioStream (src/audio/audio.cpp): the streamed samples are exactly
// load_audio's whatever the read sizes, and errors inside the data surface
// from read() as InputError naming the file. Inputs are generated here.
#include <gtest/gtest.h>
#include <sndfile.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "test_util.h"
#include "tunescribe/audio.h"
#include "tunescribe/errors.h"

namespace ts = tunescribe;
namespace fs = std::filesystem;

namespace {
using tunescribe::test::write_audio_file;


// Interleaved test signal: a chirp on the left, a different tone plus noise-ish
// harmonics on the right, so downmix and resampling both matter.
std::vector<float> test_signal(size_t frames, int channels, int rate) {
  std::vector<float> v(frames * size_t(channels));
  for (size_t i = 0; i < frames; ++i) {
    const double t = double(i) / rate;
    for (int c = 0; c < channels; ++c) {
      const double f = 220.0 * (c + 1) + 400.0 * t;
      v[i * size_t(channels) + size_t(c)] =
          float(0.4 * std::sin(2.0 * M_PI * f * t) + 0.1 * std::sin(2.0 * M_PI * 3001.0 * (c + 1) * t));
    }
  }
  return v;
}

// Reads a whole stream with a cycle of read sizes.
std::vector<float> drain(ts::AudioStream& s, const std::vector<size_t>& sizes) {
  std::vector<float> out, buf(70000);
  size_t i = 0;
  for (;;) {
    const size_t want = sizes[i++ % sizes.size()];
    const size_t got = s.read(buf.data(), want);
    EXPECT_LE(got, want);
    if (got == 0) break;
    out.insert(out.end(), buf.begin(), buf.begin() + std::ptrdiff_t(got));
  }
  return out;
}

}  // namespace

TEST(AudioStream, SamplesAreExactlyLoadAudiosForAnyReadSizes) {
  const std::string dir = ts::test::temp_dir("audio_stream_same");
  struct Case {
    const char* name;
    int format, rate, channels;
    size_t frames;
    int block_frames;
  };
  const Case cases[] = {
      {"stereo44k.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 44100, 2, 44100 * 3 + 17, 65536},
      {"stereo44k_small_blocks.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 44100, 2, 44100 * 3 + 17, 1000},
      {"mono48k.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 48000, 1, 48000 * 2, 4096},
      {"mono16k.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 16000 * 2 + 5, 3000},  // no resampling
      {"six22k.aiff", SF_FORMAT_AIFF | SF_FORMAT_PCM_16, 22050, 6, 22050 + 1, 65536},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = write_audio_file(dir + "/" + c.name, c.format, c.rate, c.channels,
                                        test_signal(c.frames, c.channels, c.rate));
    ts::AudioConfig cfg;
    cfg.block_frames = c.block_frames;
    const ts::Audio whole = ts::load_audio(path, cfg);
    ASSERT_EQ(whole.samples.size(), size_t(std::llround(double(c.frames) * 16000.0 / c.rate)));
    for (const std::vector<size_t>& sizes :
         {std::vector<size_t>{1, 7, 32768}, std::vector<size_t>{65536}, std::vector<size_t>{1000, 333, 4096 * 3}}) {
      ts::AudioStream s(path, cfg);
      EXPECT_EQ(s.rate_hz(), 16000);
      EXPECT_EQ(s.expected_samples(), (long long)whole.samples.size());
      EXPECT_EQ(s.info().channels, c.channels);
      EXPECT_EQ(s.info().input_rate_hz, c.rate);
      EXPECT_FALSE(s.at_end());
      const std::vector<float> got = drain(s, sizes);
      ASSERT_EQ(got.size(), whole.samples.size());
      for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], whole.samples[i]) << "sample " << i;  // bit-identical
      EXPECT_TRUE(s.at_end());
      EXPECT_EQ(s.samples_read(), (long long)got.size());
      EXPECT_EQ(s.info().input_frames, (long long)c.frames);
      EXPECT_DOUBLE_EQ(s.duration_s(), whole.duration_s());
      float dummy = 0.0f;
      EXPECT_EQ(s.read(&dummy, 1), 0u);  // stays at the end
    }
  }
  fs::remove_all(dir);
}

TEST(AudioStream, HeaderErrorsFromConstructorDataErrorsFromRead) {
  const std::string dir = ts::test::temp_dir("audio_stream_errors");
  auto expect_msg = [](const ts::InputError& e, const std::string& file, const std::string& cause) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("audio: ", 0), 0u) << msg;
    EXPECT_NE(msg.find(file), std::string::npos) << msg;
    EXPECT_NE(msg.find(cause), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  };
  // Missing file and non-audio file: the constructor throws.
  try {
    ts::AudioStream s(dir + "/missing.wav");
    ADD_FAILURE() << "no error for a missing file";
  } catch (const ts::InputError& e) {
    expect_msg(e, "missing.wav", "not found");
  }
  { std::ofstream(dir + "/text.wav") << "this is not audio at all, just text\n"; }
  try {
    ts::AudioStream s(dir + "/text.wav");
    ADD_FAILURE() << "no error for a text file";
  } catch (const ts::InputError& e) {
    expect_msg(e, "text.wav", "not an audio file");
  }
  // A NaN late in a long-ish file: the constructor succeeds, samples before it
  // are delivered, read() throws when the decoder reaches it.
  const size_t frames = 200000, bad = 150000;
  std::vector<float> x = test_signal(frames, 2, 44100);
  x[2 * bad + 1] = std::numeric_limits<float>::quiet_NaN();
  const std::string nan_path = write_audio_file(dir + "/nan.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 44100, 2, x);
  ts::AudioStream s(nan_path);
  std::vector<float> buf(4096);
  long long before = 0;
  try {
    for (;;) {
      const size_t got = s.read(buf.data(), buf.size());
      if (got == 0) break;
      before += (long long)got;
    }
    ADD_FAILURE() << "no error for a NaN sample";
  } catch (const ts::InputError& e) {
    expect_msg(e, "nan.wav", "non-finite sample (NaN or Inf) at frame 150000, channel 1");
  }
  EXPECT_GT(before, 0);
  EXPECT_LT(before, (long long)(bad * 16000 / 44100));
  fs::remove_all(dir);
}

TEST(AudioStream, TruncatedDataIsReportedAtTheEnd) {
  // A float WAV whose data chunk loses its tail after the header was written:
  // libsndfile may flag the header (constructor) or deliver fewer frames
  // (read); either way an InputError naming the file, never silent success.
  const std::string dir = ts::test::temp_dir("audio_stream_trunc");
  const std::string path =
      write_audio_file(dir + "/cut.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, test_signal(50000, 1, 16000));
  fs::resize_file(path, fs::file_size(path) - 4000);
  try {
    ts::AudioStream s(path);
    std::vector<float> buf(10000);
    while (s.read(buf.data(), buf.size()) > 0) {
    }
    ADD_FAILURE() << "no error for a truncated file";
  } catch (const ts::InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cut.wav"), std::string::npos) << msg;
    EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  }
  fs::remove_all(dir);
}
