// PolyphaseResampler (resampler.h): passband gain, stopband rejection (aliases), time alignment,
// streaming equal to one call, agreement with libsamplerate's SINC_BEST below the transition band,
// and the fallback of AudioStream for a ratio it does not take.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "test_util.h"
#include "tunescribe/audio.h"
#include "tunescribe/errors.h"
#include "tunescribe/resampler.h"

namespace ts = tunescribe;

namespace {

constexpr double kPi = 3.14159265358979323846;

std::vector<float> sine(double hz, int rate, double seconds, double amp = 0.5) {
  std::vector<float> x(static_cast<size_t>(seconds * rate));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(amp * std::sin(2 * kPi * hz * double(i) / rate));
  return x;
}

std::vector<float> convert(const std::vector<float>& x, int from, int to) {
  ts::PolyphaseResampler r(from, to);
  std::vector<float> y;
  r.process(x.data(), x.size(), true, &y);
  return y;
}

// Amplitude of the component at `hz` over the middle half of y (away from the edges).
double amplitude(const std::vector<float>& y, double hz, int rate) {
  const size_t a = y.size() / 4, b = 3 * y.size() / 4;
  double s = 0, c = 0;
  for (size_t i = a; i < b; ++i) {
    s += y[i] * std::sin(2 * kPi * hz * double(i) / rate);
    c += y[i] * std::cos(2 * kPi * hz * double(i) / rate);
  }
  return 2.0 * std::sqrt(s * s + c * c) / double(b - a);
}

double db(double ratio) { return 20.0 * std::log10(std::max(ratio, 1e-30)); }

}  // namespace

TEST(Resampler, PassbandIsFlatAndTheStopbandHolds) {
  for (int from : {44100, 48000, 22050}) {
    SCOPED_TRACE(from);
    for (double hz : {100.0, 1000.0, 5000.0, 7400.0, 7600.0}) {
      if (hz > 0.45 * from) continue;
      const auto y = convert(sine(hz, from, 1.0), from, 16000);
      EXPECT_NEAR(db(amplitude(y, hz, 16000) / 0.5), 0.0, 0.01) << hz << " Hz";
    }
    // Above the output Nyquist: aliases at 16 kHz - f must be >= 100 dB down (stopband from 8 kHz).
    for (double hz : {8000.0, 8400.0, 9000.0, 10000.0}) {
      if (hz > 0.45 * from) continue;
      const auto y = convert(sine(hz, from, 1.0), from, 16000);
      EXPECT_LT(db(amplitude(y, 16000.0 - hz, 16000) / 0.5), -95.0) << hz << " Hz aliasing to " << 16000 - hz;
    }
  }
  // Upsampling keeps the signal and adds no image.
  const auto up = convert(sine(3000.0, 8000, 1.0), 8000, 16000);
  EXPECT_NEAR(db(amplitude(up, 3000.0, 16000) / 0.5), 0.0, 0.01);
  EXPECT_LT(db(amplitude(up, 5000.0, 16000) / 0.5), -95.0);
}

TEST(Resampler, NoDelayAndTheRightLength) {
  // An impulse at input 4410 (0.1 s) peaks at output 1600, symmetric around it.
  std::vector<float> x(44100, 0.0f);
  x[4410] = 1.0f;
  const auto y = convert(x, 44100, 16000);
  EXPECT_EQ(y.size(), 16000u);
  size_t peak = 0;
  for (size_t i = 0; i < y.size(); ++i)
    if (std::abs(y[i]) > std::abs(y[peak])) peak = i;
  EXPECT_EQ(peak, 1600u);
  EXPECT_NEAR(y[1599], y[1601], 1e-6);
  // A constant comes through exactly (each phase sums to 1), edges included up to the filter.
  const auto dc = convert(std::vector<float>(44100, 0.25f), 44100, 16000);
  ASSERT_EQ(dc.size(), 16000u);
  for (size_t i = 400; i + 400 < dc.size(); ++i) ASSERT_NEAR(dc[i], 0.25f, 1e-6) << i;
}

TEST(Resampler, StreamingEqualsOneCall) {
  std::mt19937 rng(7);
  std::normal_distribution<float> g(0.f, 0.3f);
  std::vector<float> x(100000);
  for (auto& v : x) v = g(rng);
  const auto whole = convert(x, 44100, 16000);
  ts::PolyphaseResampler r(44100, 16000);
  std::vector<float> parts;
  std::uniform_int_distribution<size_t> len(0, 9000);
  size_t pos = 0;
  while (pos < x.size()) {
    const size_t n = std::min(len(rng), x.size() - pos);
    r.process(x.data() + pos, n, pos + n == x.size(), &parts);
    pos += n;
  }
  ASSERT_EQ(parts.size(), whole.size());
  for (size_t i = 0; i < whole.size(); ++i) ASSERT_EQ(parts[i], whole[i]) << i;
  r.process(x.data(), 10, true, &parts);  // after the end: nothing
  EXPECT_EQ(parts.size(), whole.size());
}

TEST(Resampler, AgreesWithSincBestBelowTheTransitionBand) {
  // Twenty partials below 7.2 kHz, as music has: the two converters agree to better than 80 dB.
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> f(30.0, 7200.0), ph(0.0, 2 * kPi);
  std::vector<double> hz(20), phase(20);
  for (int k = 0; k < 20; ++k) { hz[k] = f(rng); phase[k] = ph(rng); }
  std::vector<float> x(44100 * 2);
  for (size_t i = 0; i < x.size(); ++i) {
    double v = 0;
    for (int k = 0; k < 20; ++k) v += 0.04 * std::sin(2 * kPi * hz[k] * double(i) / 44100 + phase[k]);
    x[i] = float(v);
  }
  const auto ours = convert(x, 44100, 16000);
  const auto best = ts::resample(x, 44100, 16000);
  ASSERT_EQ(ours.size(), best.size());
  double err = 0, sig = 0;
  for (size_t i = 2000; i + 2000 < ours.size(); ++i) {
    err += (ours[i] - best[i]) * (ours[i] - best[i]);
    sig += best[i] * best[i];
  }
  EXPECT_GT(10 * std::log10(sig / err), 80.0);
}

TEST(Resampler, RatiosItDoesNotTake) {
  EXPECT_TRUE(ts::PolyphaseResampler::supports(44100, 16000));
  EXPECT_TRUE(ts::PolyphaseResampler::supports(11025, 16000));
  EXPECT_FALSE(ts::PolyphaseResampler::supports(44056, 16000));  // 2000 phases
  EXPECT_FALSE(ts::PolyphaseResampler::supports(0, 16000));
  EXPECT_THROW(ts::PolyphaseResampler(44056, 16000), ts::ConfigError);
  EXPECT_EQ(ts::PolyphaseResampler(44100, 16000).phases(), 160);
  // AudioStream falls back to libsamplerate for such a rate: the same samples as asking for it.
  const std::string dir = tunescribe::test::temp_dir("resampler_fallback");
  const std::string path = dir + "/odd.wav";
  ts::write_wav(path, sine(440.0, 44056, 0.5), 44056, false);
  ts::AudioConfig best;
  best.resample_quality = 0;
  const auto a = ts::load_audio(path, ts::AudioConfig{});
  const auto b = ts::load_audio(path, best);
  EXPECT_EQ(a.samples, b.samples);
  EXPECT_EQ(a.samples.size(), 8000u);
}
