// Tests of the MT3 log-mel front end (src/audio/frontend.cpp) against the spec
// (../shared/specs/mt3.md §1), the numpy reference fixtures made by
// tools/fixtures/logmel_ref.py, and the shared golden fixture.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"
#include "tunescribe/audio.h"
#include "tunescribe/errors.h"
#include "tunescribe/frontend.h"

namespace ts = tunescribe;

namespace {

const float kLnFloor = std::log(1e-5f);  // -11.5129

std::vector<float> read_f32(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path;
  f.seekg(0, std::ios::end);
  const std::streamoff bytes = f.tellg();
  f.seekg(0);
  std::vector<float> v(size_t(bytes) / sizeof(float));
  f.read(reinterpret_cast<char*>(v.data()), std::streamsize(v.size() * sizeof(float)));
  return v;
}

std::vector<float> noise(size_t n, unsigned seed, float amp = 0.3f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, amp);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

// Float32 FFT rounding model. fftwf's error on one bin is about
// c * eps32 * ||windowed frame||_2 with c a small multiple of sqrt(log2 N)
// (FFTW's published float accuracy for N = 2048 is ~2e-7 rms relative to the
// output norm); we allow kFftBinErr = 32 * eps32 ~ 1.9e-6 per unit frame norm.
// A band's absolute error is then at most that times the band's weight sum,
// i.e. a log-domain error of kFftBinErr * norm * weight_sum / exp(value).
// The reference is float64, so entries whose value lies near float32 rounding
// noise (bins that are ~80 dB below the frame's energy, or exactly-zero bins
// of a DC frame) cannot match to 1e-4 by any float32 FFT: there the allowance
// grows; everywhere else the plain tolerance applies. The tests report how
// many entries were noise-limited and require them to be a small minority.
constexpr double kFftBinErr = 8 * 5.96e-8;

// ||window * frame||_2 for every frame of segment k (chunk-local, §1.3).
std::vector<double> frame_norms(const std::vector<float>& x, const ts::LogMelConfig& cfg, int k, int n_frames) {
  std::vector<double> norms(size_t(n_frames), 0.0);
  const size_t seg = size_t(cfg.segment_samples()), begin = size_t(k) * seg;
  const size_t chunk_end = begin + size_t(n_frames) * size_t(cfg.hop_length);
  for (int f = 0; f < n_frames; ++f) {
    double acc = 0.0;
    for (int i = 0; i < cfg.n_fft; ++i) {
      const size_t idx = begin + size_t(f) * size_t(cfg.hop_length) + size_t(i);
      if (idx >= chunk_end || idx >= x.size()) break;
      const double w = 0.5 - 0.5 * std::cos(2.0 * M_PI * i / cfg.n_fft);
      acc += (w * x[idx]) * (w * x[idx]);
    }
    norms[size_t(f)] = std::sqrt(acc);
  }
  return norms;
}

std::vector<double> band_weight_sums(const ts::LogMel& lm) {
  const int n_mels = lm.config().n_mels;
  std::vector<double> s(size_t(n_mels), 0.0);
  const auto& w = lm.mel_matrix();
  for (size_t i = 0; i < w.size(); ++i) s[i % size_t(n_mels)] += w[i];
  return s;
}

struct Compare {
  double worst = 0.0;          // largest |diff| among entries held to the plain tolerance
  size_t checked = 0;          // entries compared
  size_t noise_limited = 0;    // entries whose float32-FFT allowance exceeded the plain tolerance
  double max_ratio = 0.0;      // largest |diff| / (tolerance + allowance): must stay <= 1
};

// Compares one segment's valid rows; returns false (with a message) on the first failure.
::testing::AssertionResult compare_rows(const float* got, const float* want, int n_frames, int n_mels,
                                        const std::vector<double>& norms, const std::vector<double>& wsum,
                                        double tol, Compare* st) {
  for (int f = 0; f < n_frames; ++f)
    for (int j = 0; j < n_mels; ++j) {
      const size_t i = size_t(f) * size_t(n_mels) + size_t(j);
      const double d = std::fabs(double(got[i]) - double(want[i]));
      const double allowance = kFftBinErr * norms[size_t(f)] * wsum[size_t(j)] / std::exp(double(want[i]));
      ++st->checked;
      st->max_ratio = std::max(st->max_ratio, d / (tol + allowance));
      if (allowance > tol) {
        ++st->noise_limited;
      } else {
        st->worst = std::max(st->worst, d);
      }
      if (d > tol + allowance)
        return ::testing::AssertionFailure() << "frame " << f << " band " << j << ": " << got[i] << " vs "
                                             << want[i] << " (|diff| " << d << " > " << tol << " + float32 FFT "
                                             << allowance << ")";
    }
  return ::testing::AssertionSuccess();
}

double htk_mel(double hz) { return 1127.0 * std::log(1.0 + hz / 700.0); }
double htk_hz(double mel) { return 700.0 * (std::exp(mel / 1127.0) - 1.0); }

}  // namespace

// Parity with the numpy reference (tools/fixtures/logmel_ref.py) on three clips.
TEST(Frontend, MatchesNumpyReferenceFixtures) {
  const std::string dir = ts::test::data_dir() + "/frontend";
  std::ifstream jf(dir + "/fixtures.json");
  ASSERT_TRUE(jf.good());
  const nlohmann::json meta = nlohmann::json::parse(jf);
  ASSERT_EQ(meta.at("clips").size(), 3u);
  for (const auto& clip : meta.at("clips")) {
    SCOPED_TRACE(clip.at("file").get<std::string>());
    const ts::Audio audio = ts::load_audio(dir + "/" + clip.at("file").get<std::string>());
    ASSERT_EQ(audio.samples.size(), clip.at("samples").get<size_t>());
    ts::LogMelConfig cfg;
    cfg.segment_frames = clip.at("segment_frames").get<int>();
    ts::LogMel lm(cfg);
    const std::vector<float> ref = read_f32(dir + "/" + clip.at("logmel").get<std::string>());
    const auto segs = lm.segments(audio.samples);
    ASSERT_EQ(segs.size(), clip.at("segments").size());
    Compare st;
    const auto wsum = band_weight_sums(lm);
    for (size_t k = 0; k < segs.size(); ++k) {
      const auto& want = clip.at("segments")[k];
      const int n_frames = want.at("n_frames").get<int>();
      const size_t off = want.at("row_offset").get<size_t>() * 512;
      ASSERT_EQ(segs[k].n_frames, n_frames);
      ASSERT_EQ(segs[k].data.size(), size_t(cfg.segment_frames) * 512);
      EXPECT_DOUBLE_EQ(segs[k].start_s, want.at("start_s").get<double>());
      EXPECT_DOUBLE_EQ(segs[k].start_exact_s, want.at("start_exact_s").get<double>());
      ASSERT_LE(off + size_t(n_frames) * 512, ref.size());
      const auto norms = frame_norms(audio.samples, cfg, int(k), n_frames);
      ASSERT_TRUE(compare_rows(segs[k].data.data(), ref.data() + off, n_frames, 512, norms, wsum, 1e-4, &st))
          << "segment " << k;
      for (size_t i = size_t(n_frames) * 512; i < segs[k].data.size(); ++i)
        ASSERT_EQ(segs[k].data[i], 0.0f) << "padding rows must be 0.0";
    }
    // Nearly every entry is held to the plain 1e-4.
    EXPECT_LT(double(st.noise_limited), 0.01 * double(st.checked));
    EXPECT_LE(st.worst, 1e-4);
    std::printf("[ frontend ] %s: %zu entries, max |diff| %.3g, %zu noise-limited (float32 FFT), worst |diff|/bound %.2f\n",
                clip.at("file").get<std::string>().c_str(), st.checked, st.worst, st.noise_limited, st.max_ratio);
    const double worst = st.worst;
    RecordProperty("max_abs_diff_" + clip.at("file").get<std::string>(), std::to_string(worst));
  }
}

// Parity with the golden per-segment log-mel of Magenta's pipeline port (shared/fixtures/mt3),
// at the tolerance its meta.json suggests (1e-3). clip.wav is 16 kHz already (no resampling).
// The golden used a float64 |STFT|; clip.wav's first 0.25 s is a constant -1 LSB, whose
// Hann-windowed spectrum is exactly zero above bin 1, so the golden holds float64 rounding
// noise there (ln ~ -43) where any float32 FFT gives ~1e-10 (ln ~ -23): those entries are
// covered by the float32 FFT allowance (about 1.6% of the entries), the rest by 1e-3.
TEST(Frontend, MatchesSharedMt3Golden) {
  TS_REQUIRE_SHARED();
  const std::string dir = ts::test::shared_dir() + "/fixtures/mt3";
  std::ifstream mf(dir + "/meta.json");
  ASSERT_TRUE(mf.good());
  const nlohmann::json meta = nlohmann::json::parse(mf);
  const double tol = meta.at("suggested_tolerance").at("logmel_abs").get<double>();
  std::vector<size_t> shape;
  const std::vector<float> golden = ts::test::read_npy_f32(dir + "/logmel.npy", &shape);
  ASSERT_EQ(shape.size(), 3u);
  ASSERT_EQ(shape[2], 512u);
  const ts::Audio audio = ts::load_audio(dir + "/clip.wav");
  ASSERT_EQ(audio.info.input_rate_hz, 16000);  // no resampling involved
  ASSERT_EQ(audio.samples.size(), meta.at("clip").at("samples").get<size_t>());
  ts::LogMelConfig cfg;
  cfg.segment_frames = int(shape[1]);
  ts::LogMel lm(cfg);
  const auto segs = lm.segments(audio.samples);
  ASSERT_EQ(segs.size(), shape[0]);
  ASSERT_EQ(int(segs.size()), meta.at("segments").get<int>());
  Compare st;
  const auto wsum = band_weight_sums(lm);
  for (size_t k = 0; k < segs.size(); ++k) {
    const int n_frames = meta.at("valid_frames_per_segment")[k].get<int>();
    EXPECT_EQ(segs[k].n_frames, n_frames);
    EXPECT_NEAR(segs[k].start_s, meta.at("start_times")[k].get<double>(), 1e-9);
    const float* g = golden.data() + k * shape[1] * shape[2];
    const auto norms = frame_norms(audio.samples, cfg, int(k), n_frames);
    ASSERT_TRUE(compare_rows(segs[k].data.data(), g, n_frames, 512, norms, wsum, tol, &st)) << "segment " << k;
    for (size_t i = size_t(n_frames) * 512; i < shape[1] * shape[2]; ++i) ASSERT_EQ(segs[k].data[i], g[i]);
  }
  EXPECT_LT(double(st.noise_limited), 0.05 * double(st.checked));
  std::printf("[ frontend ] mt3 golden: %zu entries, max |diff| %.3g, %zu noise-limited (float32 FFT), worst |diff|/bound %.2f\n",
              st.checked, st.worst, st.noise_limited, st.max_ratio);
  const double worst = st.worst;
  RecordProperty("max_abs_diff", std::to_string(worst));
}

TEST(Frontend, DigitalSilenceIsLogFloorEverywhere) {
  ts::LogMel lm(ts::LogMelConfig{});
  std::vector<float> zeros(16000, 0.0f);
  int n_frames = 0;
  const auto m = lm.compute(zeros.data(), zeros.size(), &n_frames);
  ASSERT_EQ(n_frames, 125);
  ASSERT_EQ(m.size(), size_t(125) * 512);
  for (float v : m) ASSERT_FLOAT_EQ(v, kLnFloor);
  EXPECT_NEAR(kLnFloor, -11.5129, 1e-4);
}

TEST(Frontend, Tone440PeaksInTheBandContaining440Hz) {
  ts::LogMelConfig cfg;
  ts::LogMel lm(cfg);
  std::vector<float> x(16000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.5f * float(std::sin(2.0 * M_PI * 440.0 * double(i) / 16000.0));
  int n_frames = 0;
  const auto m = lm.compute(x.data(), x.size(), &n_frames);
  // Band edges from the spec: 514 points equally spaced in HTK mel between 20 and 7600 Hz.
  const double m_lo = htk_mel(20.0), m_hi = htk_mel(7600.0);
  auto edge_hz = [&](int i) { return htk_hz(m_lo + (m_hi - m_lo) * i / 513.0); };
  for (int f = 20; f < 60; f += 13) {  // frames fully inside the tone
    const float* row = m.data() + size_t(f) * 512;
    int best = 0;
    for (int j = 1; j < 512; ++j)
      if (row[j] > row[best]) best = j;
    EXPECT_LT(edge_hz(best), 440.0) << "frame " << f << " band " << best;
    EXPECT_GT(edge_hz(best + 2), 440.0) << "frame " << f << " band " << best;
    // The peak band's centre is the nearest centre to 440 Hz (within one band spacing).
    EXPECT_NEAR(htk_mel(edge_hz(best + 1)), htk_mel(440.0), (m_hi - m_lo) / 513.0);
    // And it stands far above bands an octave away.
    const int far = best + 60;
    EXPECT_GT(row[best] - row[far], 4.0f);
  }
}

TEST(Frontend, MelMatrixFollowsTfConventions) {
  ts::LogMel lm(ts::LogMelConfig{});
  const auto& w = lm.mel_matrix();
  ASSERT_EQ(w.size(), size_t(1025) * 512);
  for (int j = 0; j < 512; ++j) EXPECT_EQ(w[size_t(j)], 0.0f) << "DC row must be zero";
  float peak = 0.0f;
  std::vector<double> col_sum(512, 0.0);
  for (size_t b = 0; b < 1025; ++b)
    for (size_t j = 0; j < 512; ++j) {
      ASSERT_GE(w[b * 512 + j], 0.0f);
      peak = std::max(peak, w[b * 512 + j]);
      col_sum[j] += w[b * 512 + j];
    }
  EXPECT_LE(peak, 1.0f);
  EXPECT_GT(peak, 0.99f);  // no area normalisation: triangles peak near 1
  // §1.2.3: with these settings filters 1 and 10 are narrower than a bin and all-zero.
  EXPECT_EQ(col_sum[1], 0.0);
  EXPECT_EQ(col_sum[10], 0.0);
  int zero_cols = 0;
  for (double s : col_sum) zero_cols += s == 0.0;
  EXPECT_EQ(zero_cols, 2);
}

TEST(Frontend, SegmentCountsAndPaddingFollowSection13) {
  ts::LogMelConfig cfg;  // 256 frames per segment
  ts::LogMel lm(cfg);
  // An exact multiple of 128 gets a full extra 128 zeros (one extra frame).
  EXPECT_EQ(lm.num_segments(128 * 10), 1);
  {
    std::vector<float> x = noise(128 * 10, 1);
    auto s = lm.segment(x.data(), x.size(), 0);
    EXPECT_EQ(s.n_frames, 11);
  }
  {
    std::vector<float> x = noise(128 * 10 + 5, 2);
    auto s = lm.segment(x.data(), x.size(), 0);
    EXPECT_EQ(s.n_frames, 11);
  }
  // 32767 samples pad to exactly 256 frames: one segment; 32768 samples spill one frame over.
  EXPECT_EQ(lm.num_segments(32767), 1);
  EXPECT_EQ(lm.num_segments(32768), 2);
  {
    std::vector<float> x = noise(32768, 3);
    auto segs = lm.segments(x);
    ASSERT_EQ(segs.size(), 2u);
    EXPECT_EQ(segs[0].n_frames, 256);
    EXPECT_EQ(segs[1].n_frames, 1);
    for (int j = 0; j < 512; ++j) EXPECT_FLOAT_EQ(segs[1].data[size_t(j)], kLnFloor);  // the pad frame is silence
    for (size_t i = 512; i < segs[1].data.size(); ++i) ASSERT_EQ(segs[1].data[i], 0.0f);
  }
  // Segments never see the next segment's audio: segment 0 of a long signal equals
  // the log-mel of its own 32768 samples alone.
  {
    std::vector<float> x = noise(50000, 4);
    auto s0 = lm.segment(x.data(), x.size(), 0);
    std::vector<float> head(x.begin(), x.begin() + 32768);
    int nf = 0;
    auto alone = lm.compute(head.data(), head.size(), &nf);
    ASSERT_EQ(nf, 256);
    ASSERT_EQ(alone.size(), s0.data.size());
    for (size_t i = 0; i < alone.size(); ++i) ASSERT_EQ(alone[i], s0.data[i]);
    // The last window of segment 0 differs from the whole-signal STFT (which sees segment 1).
    auto whole = lm.compute(x.data(), x.size(), &nf);
    EXPECT_EQ(nf, int((50000 + 127) / 128));
    EXPECT_NE(whole[size_t(255) * 512 + 300], s0.data[size_t(255) * 512 + 300]);
    EXPECT_EQ(whole[size_t(10) * 512 + 300], s0.data[size_t(10) * 512 + 300]);
  }
  EXPECT_THROW(lm.segment(nullptr, 100, 1), ts::ConfigError);
  EXPECT_THROW(lm.segment(nullptr, 100, -1), ts::ConfigError);
}

TEST(Frontend, SegmentStartTimesRoundDownTo10msWithTheColabQuirk) {
  ts::LogMelConfig cfg;
  ts::LogMel lm(cfg);
  std::vector<float> x(size_t(32768) * 16, 0.0f);
  auto s1 = lm.segment(x.data(), x.size(), 1);
  EXPECT_NEAR(s1.start_s, 2.04, 1e-12);
  EXPECT_NEAR(s1.start_exact_s, 2.048, 1e-12);
  auto s3 = lm.segment(x.data(), x.size(), 3);
  EXPECT_NEAR(s3.start_s, 6.14, 1e-12);
  // k = 15: t = 30.72 is an exact multiple of 10 ms but fmod gives ~0.00999 → 30.71 (spec §1.3.5).
  auto s15 = lm.segment(x.data(), x.size(), 15);
  EXPECT_NEAR(s15.start_s, 30.71, 1e-9);
  EXPECT_NEAR(s15.start_exact_s, 30.72, 1e-12);
  // 512-frame segments: k = 15 → 61.44 → 61.43.
  cfg.segment_frames = 512;
  ts::LogMel lm512(cfg);
  std::vector<float> y(size_t(65536) * 16, 0.0f);
  EXPECT_NEAR(lm512.segment(y.data(), y.size(), 1).start_s, 4.09, 1e-9);
  EXPECT_NEAR(lm512.segment(y.data(), y.size(), 15).start_s, 61.43, 1e-9);
}

TEST(Frontend, ComputeFrameCountIsCeilOfSamplesOverHop) {
  ts::LogMel lm(ts::LogMelConfig{});
  for (size_t n : {size_t(0), size_t(1), size_t(127), size_t(128), size_t(129), size_t(2048), size_t(5000)}) {
    std::vector<float> x = noise(n, 7);
    int nf = -1;
    auto m = lm.compute(x.data(), x.size(), &nf);
    EXPECT_EQ(nf, int((n + 127) / 128)) << n;
    EXPECT_EQ(m.size(), size_t(nf) * 512) << n;
  }
}

TEST(Frontend, ValidateRejectsBadConfigs) {
  EXPECT_NO_THROW(ts::LogMelConfig{}.validate());
  auto expect_bad = [](auto mutate, const std::string& field) {
    ts::LogMelConfig c;
    mutate(c);
    try {
      c.validate();
      ADD_FAILURE() << "accepted bad " << field;
    } catch (const ts::ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
    EXPECT_THROW(ts::LogMel{c}, ts::ConfigError);
  };
  expect_bad([](ts::LogMelConfig& c) { c.sample_rate_hz = 0; }, "sample_rate_hz");
  expect_bad([](ts::LogMelConfig& c) { c.n_fft = 0; }, "n_fft");
  expect_bad([](ts::LogMelConfig& c) { c.hop_length = 0; }, "hop_length");
  expect_bad([](ts::LogMelConfig& c) { c.hop_length = 4096; }, "hop_length");
  expect_bad([](ts::LogMelConfig& c) { c.n_mels = 0; }, "n_mels");
  expect_bad([](ts::LogMelConfig& c) { c.f_min_hz = -1.0; }, "f_min_hz");
  expect_bad([](ts::LogMelConfig& c) { c.f_min_hz = 8000.0; }, "f_min_hz");
  expect_bad([](ts::LogMelConfig& c) { c.f_max_hz = 9000.0; }, "f_max_hz");
  expect_bad([](ts::LogMelConfig& c) { c.f_max_hz = std::nan(""); }, "f_max_hz");
  expect_bad([](ts::LogMelConfig& c) { c.log_floor = 0.0; }, "log_floor");
  expect_bad([](ts::LogMelConfig& c) { c.segment_frames = 0; }, "segment_frames");
}

TEST(Frontend, ConfigJsonRoundTripAndDefaults) {
  ts::LogMelConfig c;
  c.segment_frames = 512;
  c.n_mels = 229;
  const nlohmann::json j = c.to_json();
  EXPECT_EQ(j.at("segment_frames").get<int>(), 512);
  EXPECT_EQ(j.at("n_mels").get<int>(), 229);
  EXPECT_EQ(j.at("hop_length").get<int>(), 128);
  EXPECT_DOUBLE_EQ(j.at("f_max_hz").get<double>(), 7600.0);
  const auto back = ts::LogMelConfig::from_json(j);
  EXPECT_EQ(back.to_json(), j);
  // Missing keys keep their defaults; unknown keys are ignored.
  const auto partial = ts::LogMelConfig::from_json(nlohmann::json{{"segment_frames", 512}, {"other", 1}});
  EXPECT_EQ(partial.segment_frames, 512);
  EXPECT_EQ(partial.n_fft, 2048);
  EXPECT_DOUBLE_EQ(partial.log_floor, 1e-5);
  EXPECT_THROW(ts::LogMelConfig::from_json(nlohmann::json{{"n_fft", "big"}}), ts::ConfigError);
  EXPECT_THROW(ts::LogMelConfig::from_json(nlohmann::json{{"hop_length", 1.5}}), ts::ConfigError);
  EXPECT_THROW(ts::LogMelConfig::from_json(nlohmann::json{{"hop_length", -3}}), ts::ConfigError);
  EXPECT_THROW(ts::LogMelConfig::from_json(nlohmann::json::array()), ts::ConfigError);
}

TEST(Frontend, SharedAcrossThreadsGivesIdenticalOutput) {
  ts::LogMelConfig cfg;
  ts::LogMel lm(cfg);
  const std::vector<float> x = noise(16000 * 6, 11);
  const auto ref = lm.segments(x);
  std::vector<std::vector<ts::MelSegment>> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      // Half of the threads also build their own LogMel (plan cache under the mutex).
      if (t % 2) {
        ts::LogMel own(cfg);
        got[size_t(t)] = own.segments(x);
      } else {
        got[size_t(t)] = lm.segments(x);
      }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) {
    ASSERT_EQ(got[size_t(t)].size(), ref.size());
    for (size_t k = 0; k < ref.size(); ++k) {
      ASSERT_EQ(got[size_t(t)][k].n_frames, ref[k].n_frames);
      ASSERT_EQ(0, std::memcmp(got[size_t(t)][k].data.data(), ref[k].data.data(), ref[k].data.size() * 4))
          << "thread " << t << " segment " << k;
    }
  }
}

TEST(Frontend, OtherSizesWork) {
  // A non-default configuration (e.g. a 229-band, 1024-point model) plans its own FFT size.
  ts::LogMelConfig cfg;
  cfg.n_fft = 1024;
  cfg.hop_length = 160;
  cfg.n_mels = 229;
  cfg.f_min_hz = 30.0;
  cfg.f_max_hz = 8000.0;
  ts::LogMel lm(cfg);
  std::vector<float> x = noise(4000, 5);
  int nf = 0;
  auto m = lm.compute(x.data(), x.size(), &nf);
  EXPECT_EQ(nf, 25);
  EXPECT_EQ(m.size(), size_t(25) * 229);
  for (float v : m) ASSERT_TRUE(std::isfinite(v));
}

TEST(Frontend, NonFiniteInputPropagatesLikeTf) {
  // load_audio rejects NaN/Inf, but the front end itself must not turn them into plausible numbers.
  ts::LogMel lm(ts::LogMelConfig{});
  std::vector<float> x = noise(4096, 9);
  x[1000] = std::nanf("");
  int nf = 0;
  const auto m = lm.compute(x.data(), x.size(), &nf);
  ASSERT_EQ(nf, 32);
  EXPECT_TRUE(std::isnan(m[size_t(0) * 512 + 200]));   // frame 0 covers sample 1000
  EXPECT_TRUE(std::isfinite(m[size_t(8) * 512 + 200]));  // frame 8 starts at 1024
  // Values > 0 but tiny are logged as-is (safe_log does not clamp them to 1e-5).
  std::vector<float> quiet(4096, 0.0f);
  quiet[2000] = 1e-30f;
  const auto q = lm.compute(quiet.data(), quiet.size(), &nf);
  EXPECT_LT(q[size_t(0) * 512 + 300], -60.0f);
  EXPECT_GT(q[size_t(0) * 512 + 300], -80.0f);
}

TEST(Frontend, CollapsingBandEdgesAreRejected) {
  ts::LogMelConfig c;
  c.f_min_hz = 1000.0;
  c.f_max_hz = 1000.001;
  c.n_mels = 4096;
  EXPECT_THROW(ts::LogMel{c}, ts::ConfigError);
}
