// Tests of audio input (src/audio/audio.cpp): formats, downmix, band-limited
// resampling, typed errors naming the file, atomic WAV writing.
// All input files are generated here with libsndfile.
#include <gtest/gtest.h>
#include <sndfile.h>

#include <cmath>
#include <complex>
#include <cstdint>
#include <cstdio>
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


std::vector<float> sine(size_t n, double hz, int rate, double amp = 0.5) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = float(amp * std::sin(2.0 * M_PI * hz * double(i) / rate));
  return v;
}

// Amplitude of frequency `hz` in x (single-bin DFT, Hann weighted), relative to a full-scale sine.
double tone_amplitude(const std::vector<float>& x, double hz, int rate) {
  std::complex<double> acc = 0.0;
  double wsum = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double w = 0.5 - 0.5 * std::cos(2.0 * M_PI * double(i) / double(x.size()));
    acc += w * double(x[i]) * std::polar(1.0, -2.0 * M_PI * hz * double(i) / rate);
    wsum += w;
  }
  return 2.0 * std::abs(acc) / wsum;
}

// Frequency estimated from the zero crossings of a clean sine.
double zero_crossing_hz(const std::vector<float>& x, int rate) {
  size_t first = 0, last = 0, count = 0;
  for (size_t i = 1; i < x.size(); ++i)
    if (x[i - 1] < 0.0f && x[i] >= 0.0f) {
      if (count == 0) first = i;
      last = i;
      ++count;
    }
  if (count < 2) return 0.0;
  return double(count - 1) * rate / double(last - first);
}

std::string expect_input_error(const std::string& path, const std::string& cause) {
  try {
    ts::load_audio(path);
    ADD_FAILURE() << path << ": no error (expected " << cause << ")";
  } catch (const ts::InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(fs::path(path).filename().string()), std::string::npos) << msg;
    EXPECT_EQ(msg.rfind("audio: ", 0), 0u) << msg;
    EXPECT_NE(msg.find(cause), std::string::npos) << "expected '" << cause << "' in: " << msg;
    return msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << path << ": wrong exception type: " << e.what();
  }
  return "";
}

}  // namespace

TEST(Audio, ReadsEveryFormatAt16kHz) {
  const std::string dir = ts::test::temp_dir("audio_formats");
  const std::vector<float> x = sine(8000, 440.0, 16000);
  struct Case {
    const char* name;
    int format;
    double max_err;  // per-sample error allowed (quantisation / lossy coding)
  };
  const Case cases[] = {
      {"pcm16.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1.0 / 32768},
      {"pcm24.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_24, 1.0 / 8388608},
      {"pcm32.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_32, 1e-7},
      {"float.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 0.0},
      {"double.wav", SF_FORMAT_WAV | SF_FORMAT_DOUBLE, 1e-7},
      {"pcm16.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 1.0 / 32768},
      {"pcm24.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 1.0 / 8388608},
      {"pcm16.aiff", SF_FORMAT_AIFF | SF_FORMAT_PCM_16, 1.0 / 32768},
      {"float.aiff", SF_FORMAT_AIFF | SF_FORMAT_FLOAT, 0.0},
      {"vorbis.ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, -1.0},  // lossy: checked by frequency
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = write_audio_file(dir + "/" + c.name, c.format, 16000, 1, x);
    EXPECT_TRUE(ts::is_audio_path(path));
    const ts::AudioInfo info = ts::probe_audio(path);
    EXPECT_EQ(info.input_rate_hz, 16000);
    EXPECT_EQ(info.channels, 1);
    EXPECT_EQ(info.input_frames, 8000);
    EXPECT_FALSE(info.format.empty());
    const ts::Audio a = ts::load_audio(path);
    EXPECT_EQ(a.rate_hz, 16000);
    ASSERT_EQ(a.samples.size(), x.size());
    EXPECT_DOUBLE_EQ(a.duration_s(), 0.5);
    if (c.max_err >= 0.0) {
      double worst = 0.0;
      for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::fabs(double(a.samples[i]) - x[i]));
      EXPECT_LE(worst, c.max_err + 1e-9);
    }
    EXPECT_NEAR(tone_amplitude(a.samples, 440.0, 16000), 0.5, 0.01);
    EXPECT_NEAR(zero_crossing_hz(a.samples, 16000), 440.0, 1.0);
  }
}

TEST(Audio, StereoIsAveragedToMono) {
  const std::string dir = ts::test::temp_dir("audio_stereo");
  const size_t n = 4000;
  const std::vector<float> l = sine(n, 300.0, 16000, 0.6);
  std::vector<float> inter(2 * n);
  for (size_t i = 0; i < n; ++i) {
    inter[2 * i] = l[i];
    inter[2 * i + 1] = 0.2f;  // DC on the right channel
  }
  const std::string path = write_audio_file(dir + "/stereo.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 2, inter);
  const ts::Audio a = ts::load_audio(path);
  EXPECT_EQ(a.info.channels, 2);
  ASSERT_EQ(a.samples.size(), n);
  for (size_t i = 0; i < n; ++i) ASSERT_NEAR(a.samples[i], 0.5f * (l[i] + 0.2f), 1e-6f) << i;
  // Opposite channels cancel.
  for (size_t i = 0; i < n; ++i) inter[2 * i + 1] = -l[i];
  const std::string p2 = write_audio_file(dir + "/cancel.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 16000, 2, inter);
  const ts::Audio b = ts::load_audio(p2);
  for (float v : b.samples) ASSERT_NEAR(v, 0.0f, 2e-7f);
  // Six channels.
  std::vector<float> six(6 * n, 0.0f);
  for (size_t i = 0; i < n; ++i) six[6 * i + 3] = l[i];
  const ts::Audio c = ts::load_audio(write_audio_file(dir + "/six.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 6, six));
  for (size_t i = 0; i < n; ++i) ASSERT_NEAR(c.samples[i], l[i] / 6.0f, 1e-6f);
}

TEST(Audio, ResamplesToModelRateBandLimited) {
  const std::string dir = ts::test::temp_dir("audio_resample");
  for (int rate : {44100, 48000, 22050, 8000}) {
    SCOPED_TRACE(rate);
    const size_t n = size_t(rate) * 3 / 2;  // 1.5 s
    // 1 kHz tone (kept), plus for high rates a 7.4 kHz tone (kept: the top mel band reaches 7.6 kHz,
    // SINC_BEST passes it at 0.0 dB where SINC_MEDIUM would lose 8 dB)
    // and a 10 kHz tone (must vanish: decimating by dropping samples would alias it to 6 kHz).
    std::vector<float> x = sine(n, 1000.0, rate, 0.4);
    if (rate > 20000) {
      const auto a7 = sine(n, 7400.0, rate, 0.2), a10 = sine(n, 10000.0, rate, 0.2);
      for (size_t i = 0; i < n; ++i) x[i] += a7[i] + a10[i];
    }
    const std::string path =
        write_audio_file(dir + "/r" + std::to_string(rate) + ".wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, rate, 1, x);
    const ts::Audio a = ts::load_audio(path);
    EXPECT_EQ(a.rate_hz, 16000);
    EXPECT_EQ(a.info.input_rate_hz, rate);
    EXPECT_EQ(a.samples.size(), size_t(24000));
    EXPECT_NEAR(a.duration_s(), 1.5, 1e-9);
    // Skip the filter's edges.
    std::vector<float> mid(a.samples.begin() + 2000, a.samples.end() - 2000);
    EXPECT_NEAR(tone_amplitude(mid, 1000.0, 16000), 0.4, 0.004);
    if (rate > 20000) {
      EXPECT_NEAR(tone_amplitude(mid, 7400.0, 16000), 0.2, 0.004);
      EXPECT_LT(tone_amplitude(mid, 6000.0, 16000), 1e-3);  // no alias of the 10 kHz tone
    } else {
      EXPECT_NEAR(zero_crossing_hz(mid, 16000), 1000.0, 0.5);
    }
  }
  // Small blocks (many libsamplerate calls) give the same result as the default.
  const std::vector<float> x = sine(44100, 523.25, 44100, 0.5);
  const std::string path = write_audio_file(dir + "/blocks.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 44100, 1, x);
  ts::AudioConfig small;
  small.block_frames = 1000;
  const ts::Audio a = ts::load_audio(path), b = ts::load_audio(path, small);
  ASSERT_EQ(a.samples.size(), b.samples.size());
  for (size_t i = 0; i < a.samples.size(); ++i) ASSERT_NEAR(a.samples[i], b.samples[i], 1e-6f) << i;
  EXPECT_NEAR(zero_crossing_hz(a.samples, 16000), 523.25, 0.5);
}

TEST(Audio, ResampleFunction) {
  const auto x = sine(48000, 440.0, 48000, 0.5);
  const auto y = ts::resample(x, 48000, 16000);
  EXPECT_EQ(y.size(), size_t(16000));
  EXPECT_NEAR(zero_crossing_hz(y, 16000), 440.0, 0.5);
  const auto z = ts::resample(x, 48000, 48000);
  EXPECT_EQ(z, x);
  EXPECT_THROW(ts::resample(x, 0, 16000), ts::ConfigError);
  EXPECT_THROW(ts::resample(x, 16000, -5), ts::ConfigError);
  EXPECT_THROW(ts::resample(x, 10000000, 16000), ts::ConfigError);  // ratio beyond 1/256
}

TEST(Audio, MissingFileIsInputError) {
  expect_input_error(ts::test::temp_dir("audio_missing") + "/nothere.wav", "not found");
}

TEST(Audio, TextFileIsNotAudio) {
  const std::string path = ts::test::temp_dir("audio_text") + "/notes.wav";
  std::ofstream(path) << "This is a text file, not a RIFF/WAVE file.\n";
  expect_input_error(path, "not an audio file");
  EXPECT_THROW(ts::probe_audio(path), ts::InputError);
  const std::string empty = ts::test::temp_dir("audio_text") + "/empty.flac";
  std::ofstream(empty).close();
  expect_input_error(empty, "empty file");
}

TEST(Audio, TruncatedFilesAreInputErrors) {
  const std::string dir = ts::test::temp_dir("audio_trunc");
  const auto x = sine(16000, 440.0, 16000);
  auto cut = [&](const std::string& src, const std::string& dst, double keep) {
    std::ifstream in(src, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(dst, std::ios::binary) << bytes.substr(0, size_t(double(bytes.size()) * keep));
    return dst;
  };
  const std::string wav = write_audio_file(dir + "/full.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, x);
  expect_input_error(cut(wav, dir + "/cut.wav", 0.5), "truncated");
  expect_input_error(cut(wav, dir + "/header_only.wav", 30.0 / 32044.0), "");  // fmt chunk cut
  const std::string aiff = write_audio_file(dir + "/full.aiff", SF_FORMAT_AIFF | SF_FORMAT_PCM_16, 16000, 1, x);
  expect_input_error(cut(aiff, dir + "/cut.aiff", 0.6), "truncated");
  const std::string flac = write_audio_file(dir + "/full.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 16000, 1, x);
  expect_input_error(cut(flac, dir + "/cut.flac", 0.5), "");
  // Corrupt: garbage in the middle of a FLAC stream.
  {
    std::ifstream in(flac, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (size_t i = bytes.size() / 3; i < bytes.size() / 3 + 2000; ++i) bytes[i] = char(i * 7919 % 251);
    std::ofstream(dir + "/garbled.flac", std::ios::binary) << bytes;
  }
  expect_input_error(dir + "/garbled.flac", "");
}

TEST(Audio, ZeroSamplesIsInputError) {
  const std::string dir = ts::test::temp_dir("audio_zero");
  const std::string path = write_audio_file(dir + "/zero.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, {});
  expect_input_error(path, "zero samples");
}

TEST(Audio, NonFiniteSamplesAreInputErrors) {
  const std::string dir = ts::test::temp_dir("audio_nan");
  auto x = sine(3000, 440.0, 16000);
  x[1234] = std::numeric_limits<float>::quiet_NaN();
  expect_input_error(write_audio_file(dir + "/nan.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, x), "NaN or Inf");
  x[1234] = std::numeric_limits<float>::infinity();
  expect_input_error(write_audio_file(dir + "/inf.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, x), "NaN or Inf");
  x[1234] = 0.0f;
  x[2999] = -std::numeric_limits<float>::infinity();  // the last sample, at a 44.1 kHz rate (resampling path)
  expect_input_error(write_audio_file(dir + "/inf2.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 44100, 1, x), "NaN or Inf");
}

TEST(Audio, AbsurdSampleRatesAreInputErrors) {
  const std::string dir = ts::test::temp_dir("audio_rate");
  const auto x = sine(2000, 100.0, 16000);
  expect_input_error(write_audio_file(dir + "/slow.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 200, 1, x), "sample rate");
  expect_input_error(write_audio_file(dir + "/fast.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 5000000, 1, x), "sample rate");
  // The limits come from AudioConfig.
  const std::string ok = write_audio_file(dir + "/r8k.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 8000, 1, x);
  ts::AudioConfig strict;
  strict.min_input_rate_hz = 11025;
  EXPECT_THROW(ts::load_audio(ok, strict), ts::InputError);
  EXPECT_NO_THROW(ts::load_audio(ok));
}

TEST(Audio, ConfigValidation) {
  EXPECT_NO_THROW(ts::AudioConfig{}.validate());
  ts::AudioConfig c;
  c.target_rate_hz = 0;
  EXPECT_THROW(c.validate(), ts::ConfigError);
  c = {};
  c.block_frames = 0;
  EXPECT_THROW(c.validate(), ts::ConfigError);
  c = {};
  c.max_input_rate_hz = 10;
  EXPECT_THROW(c.validate(), ts::ConfigError);
  c = {};
  c.resample_quality = 3;  // zero-order hold: not band-limited
  try {
    c.validate();
    ADD_FAILURE() << "accepted resample_quality 3";
  } catch (const ts::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("resample_quality"), std::string::npos);
  }
}

TEST(Audio, WriteWavRoundTripsAtomically) {
  const std::string dir = ts::test::temp_dir("audio_write");
  const auto x = sine(5000, 880.0, 16000, 0.7);
  const std::string p16 = dir + "/out16.wav", pf = dir + "/outf.wav";
  ts::write_wav(p16, x, 16000, true);
  ts::write_wav(pf, x, 16000, false);
  const ts::Audio a = ts::load_audio(p16), b = ts::load_audio(pf);
  EXPECT_NE(a.info.format.find("16"), std::string::npos) << a.info.format;
  ASSERT_EQ(a.samples.size(), x.size());
  ASSERT_EQ(b.samples.size(), x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_NEAR(a.samples[i], x[i], 1.0 / 32768 + 1e-7);
    ASSERT_EQ(b.samples[i], x[i]);
  }
  // Overwriting replaces the file; no temporary files are left behind.
  ts::write_wav(p16, sine(100, 100.0, 16000), 22050, true);
  EXPECT_EQ(ts::probe_audio(p16).input_frames, 100);
  EXPECT_EQ(ts::probe_audio(p16).input_rate_hz, 22050);
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 2);
  // Out-of-range floats clip instead of wrapping in PCM16.
  ts::write_wav(p16, {1.5f, -1.5f}, 16000, true);
  const ts::Audio c = ts::load_audio(p16);
  EXPECT_GT(c.samples[0], 0.99f);
  EXPECT_LT(c.samples[1], -0.99f);
  EXPECT_THROW(ts::write_wav(dir + "/no/such/dir/x.wav", x, 16000), ts::OutputError);
}

TEST(Audio, IsAudioPath) {
  EXPECT_TRUE(ts::is_audio_path("a/B.WAV"));
  EXPECT_TRUE(ts::is_audio_path("x.flac"));
  EXPECT_TRUE(ts::is_audio_path("x.ogg"));
  EXPECT_TRUE(ts::is_audio_path("x.aiff"));
  EXPECT_FALSE(ts::is_audio_path("x.mid"));
  EXPECT_FALSE(ts::is_audio_path("wav"));
}
