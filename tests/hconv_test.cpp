// hconv_test.cpp — the "hconv" model family: the log-frequency front end, the
// harmonic conv front in libtorch and the T5 over its memory, all against the
// PyTorch reference fixture (tests/data/hconv, tools/train/make_tiny_hconv.py);
// the frames decoder on crafted posteriors and against hconv.decode_frames; and
// the transcriber's two decoding paths.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sndfile.h>
#include <string>
#include <vector>

#include "test_util.h"
#include "tunescribe/audio.h"
#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/frames_decoder.h"
#include "tunescribe/frontend.h"
#include "tunescribe/model.h"
#include "tunescribe/safetensors.h"
#include "tunescribe/transcriber.h"

namespace ts = tunescribe;
namespace fs = std::filesystem;

namespace {

std::string hconv_dir() { return ts::test::data_dir() + "/hconv/model"; }

const ts::SafetensorsFile& fixture() {
  static ts::SafetensorsFile f = ts::read_safetensors(ts::test::data_dir() + "/hconv/parity.safetensors");
  return f;
}
const ts::SafetensorsTensor& fx(const std::string& name) { return fixture().tensors.at(name); }
const nlohmann::json& parity_json() {
  static nlohmann::json j = nlohmann::json::parse(ts::read_file_text(ts::test::data_dir() + "/hconv/parity.json"));
  return j;
}
nlohmann::json model_config_json() {
  return nlohmann::json::parse(ts::read_file_text(hconv_dir() + "/config.json"));
}
ts::LogMelConfig frontend_config() { return ts::LogMelConfig::from_json(model_config_json().at("frontend")); }

const ts::Model& model() {
  static std::unique_ptr<ts::Model> m = [] {
    ts::set_model_threads(2);
    return ts::Model::load(hconv_dir());
  }();
  return *m;
}

float max_abs(const std::vector<float>& v) {
  float m = 0;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}
float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

}  // namespace

// ---------------------------------------------------------------- front end
TEST(HconvFrontend, LogfreqConfigReadsValidatesAndRoundTrips) {
  const ts::LogMelConfig c = frontend_config();
  EXPECT_TRUE(c.is_logfreq());
  EXPECT_EQ(c.n_features(), 300);
  EXPECT_EQ(c.hop_length, 256);
  EXPECT_EQ(c.segment_frames, 128);
  EXPECT_EQ(c.segment_samples(), 32768);
  EXPECT_EQ(c.bins_per_semitone, 3);
  EXPECT_DOUBLE_EQ(c.min_midi, 20.0);
  const ts::LogMelConfig back = ts::LogMelConfig::from_json(c.to_json());
  EXPECT_EQ(back.to_json(), c.to_json());
  // The mel config's JSON is unchanged (no logfreq keys).
  EXPECT_FALSE(ts::LogMelConfig().to_json().contains("kind"));
  EXPECT_FALSE(ts::LogMelConfig().to_json().contains("n_bins"));
  auto bad = [&](auto edit) {
    ts::LogMelConfig b = c;
    edit(b);
    EXPECT_THROW(b.validate(), ts::ConfigError);
  };
  bad([](ts::LogMelConfig& b) { b.kind = "cqt"; });
  bad([](ts::LogMelConfig& b) { b.n_bins = 0; });
  bad([](ts::LogMelConfig& b) { b.bins_per_semitone = 0; });
  bad([](ts::LogMelConfig& b) { b.min_midi = NAN; });
  try {
    ts::LogMelConfig b = c;
    b.kind = "cqt";
    b.validate();
  } catch (const ts::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("kind"), std::string::npos) << e.what();
  }
}

TEST(HconvFrontend, LogfreqMatrixMatchesReference) {
  ts::LogMel lm(frontend_config());
  const auto& want = fx("logfreq_matrix");
  ASSERT_EQ(want.shape, (std::vector<int64_t>{1025, 300}));
  EXPECT_LE(max_abs_diff(lm.mel_matrix(), want.data), 1e-6f);
}

TEST(HconvFrontend, FeaturesMatchReference) {
  // Error model (as the log-mel tests): entries within 1e-4 of their frame's
  // largest value (linear) are held to 1e-3 in ln; smaller ones sit at the
  // float32 FFT's rounding noise (~1e-7 x the frame's peak, torch and FFTW round
  // differently), so only their linear difference is bounded, by 5e-7 x the peak.
  ts::LogMel lm(frontend_config());
  const auto& audio = fx("audio").data;
  const auto& want = fx("features");
  ASSERT_EQ(want.shape, (std::vector<int64_t>{2, 128, 300}));
  const auto segs = lm.segments(audio);
  ASSERT_EQ(segs.size(), 2u);
  const float ln_floor = std::log(1e-5f);
  double worst = 0, worst_noise = 0;
  size_t checked = 0, noise = 0;
  for (size_t k = 0; k < segs.size(); ++k) {
    EXPECT_EQ(segs[k].n_frames, 128);  // every row computed (zero samples past the end)
    EXPECT_EQ(segs[k].n_samples, k == 0 ? 32768u : audio.size() - 32768u);
    ASSERT_EQ(segs[k].data.size(), 128u * 300u);
    for (size_t f = 0; f < 128; ++f) {
      const float* got = segs[k].data.data() + f * 300;
      const float* ref = want.data.data() + (k * 128 + f) * 300;
      const float peak = *std::max_element(ref, ref + 300);
      for (size_t b = 0; b < 300; ++b) {
        ASSERT_GE(got[b], ln_floor - 1e-5f);
        if (ref[b] >= peak - std::log(1e4f)) {
          worst = std::max(worst, double(std::fabs(got[b] - ref[b])));
          ++checked;
        } else {
          const double lin = std::fabs(std::exp(double(got[b])) - std::exp(double(ref[b]))) / std::exp(double(peak));
          worst_noise = std::max(worst_noise, lin);
          ++noise;
        }
      }
    }
  }
  std::printf("[ hconv ] features: %zu entries held to 1e-3 (max |diff| %.3g), %zu noise-limited (max %.3g x peak)\n",
              checked, worst, noise, worst_noise);
  EXPECT_GT(checked, 20000u);  // the tones' bins and their neighbourhoods, every frame
  EXPECT_LE(worst, 1e-3) << "max |diff| of ln values within 1e-4 of the frame's peak";
  EXPECT_LE(worst_noise, 5e-7);
  // The whole-signal path computes the same frames for the first segment.
  int n = 0;
  const auto whole = lm.compute(audio.data(), 32768, &n);
  ASSERT_EQ(n, 128);
  for (size_t i = 0; i < whole.size(); ++i) ASSERT_EQ(whole[i], segs[0].data[i]);
  // Streaming: segment_from_chunk of the last chunk equals segment().
  const auto last = lm.segment_from_chunk(audio.data() + 32768, audio.size() - 32768, 1);
  EXPECT_TRUE(last.data == segs[1].data);
}

TEST(HconvFrontend, SilenceIsTheLogFloor) {
  ts::LogMel lm(frontend_config());
  std::vector<float> zeros(5000, 0.0f);
  const auto s = lm.segment(zeros.data(), zeros.size(), 0);
  for (float v : s.data) ASSERT_FLOAT_EQ(v, std::log(1e-5f));
}

// ---------------------------------------------------------------- model
TEST(HconvModel, LoadsWithHeadsAndFeatureDepth) {
  const ts::Model& m = model();
  EXPECT_TRUE(m.has_heads());
  EXPECT_EQ(m.feature_depth(), 300);
  EXPECT_EQ(m.config().input_depth, 1056);
  EXPECT_EQ(m.hconv_config().num_heads(), 20);
  EXPECT_EQ(m.hconv_config().shifts(), (std::vector<int>{-36, 0, 36, 57, 72, 84, 93, 101, 108}));
  EXPECT_EQ(m.decoding_json().at("default"), "frames");
}

TEST(HconvModel, HeadsMemoryEncodedLogitsAndTokensMatchReference) {
  const ts::Model& m = model();
  const auto& feats = fx("features").data;
  const std::vector<float> heads = m.front_heads(feats.data(), 2, 128);
  ASSERT_EQ(fx("heads").shape, (std::vector<int64_t>{2, 20, 128, 88}));
  EXPECT_LE(max_abs_diff(heads, fx("heads").data), 1e-4f * std::max(1.0f, max_abs(fx("heads").data)));
  // One worker and a split batch give the same heads.
  EXPECT_LE(max_abs_diff(m.front_heads(feats.data(), 2, 128, 1), m.front_heads(feats.data(), 2, 128, 2)), 1e-6f);

  const std::vector<float> mem = m.front_memory(feats.data(), 2, 128);
  EXPECT_LE(max_abs_diff(mem, fx("memory").data), 1e-4f * std::max(1.0f, max_abs(fx("memory").data)));

  ts::EncoderOutput enc = m.encode(feats.data(), 2, 128);
  EXPECT_EQ(enc.frames(), 128);
  EXPECT_LE(max_abs_diff(enc.to_vector(), fx("encoded").data), 1e-4f * std::max(1.0f, max_abs(fx("encoded").data)));

  ts::DecoderState st = m.start_decoding(enc, 4);
  const std::vector<float> l0 = m.step(st, {0, 0});
  EXPECT_LE(max_abs_diff(l0, fx("logits0").data), 1e-4f * std::max(1.0f, max_abs(fx("logits0").data)));

  const auto want = parity_json().at("greedy").get<std::vector<std::vector<int>>>();
  EXPECT_EQ(m.greedy_decode(enc, 32), want);
}

TEST(HconvModel, NamesMissingAndMisshapedTensorsAndBadConfigs) {
  const ts::SafetensorsFile f = ts::read_safetensors(hconv_dir() + "/model.safetensors");
  const nlohmann::json cfg = model_config_json();
  auto error_of = [](auto fn) -> std::string {
    try {
      fn();
    } catch (const ts::Error& e) {
      return e.what();
    }
    return "";
  };
  {
    auto t = f.tensors;
    t.erase("hconv/res1/kernel");
    const std::string e = error_of([&] { ts::Model::from_tensors(cfg, t, "x.safetensors"); });
    EXPECT_NE(e.find("missing tensor 'hconv/res1/kernel'"), std::string::npos) << e;
    EXPECT_NE(e.find("x.safetensors"), std::string::npos) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos);
  }
  {
    auto t = f.tensors;
    t["hconv/down/kernel"].shape = {8, 4, 3, 1};
    const std::string e = error_of([&] { ts::Model::from_tensors(cfg, t, "x.safetensors"); });
    EXPECT_NE(e.find("'hconv/down/kernel' has shape [8, 4, 3, 1], expected [8, 4, 1, 3]"), std::string::npos) << e;
  }
  {
    nlohmann::json c = cfg;
    c["format_version"] = 1;
    EXPECT_NE(error_of([&] { ts::Model::from_tensors(c, f.tensors); }).find("format_version 2"), std::string::npos);
    c = cfg;
    c["format_version"] = 3;
    EXPECT_NE(error_of([&] { ts::Model::from_tensors(c, f.tensors); }).find("format_version is 3"), std::string::npos);
    c = cfg;
    c.erase("hconv");
    EXPECT_NE(error_of([&] { ts::Model::from_tensors(c, f.tensors); }).find("no \"hconv\" section"),
              std::string::npos);
    c = cfg;
    c["frontend"]["kind"] = "mel";
    EXPECT_NE(error_of([&] { ts::Model::from_tensors(c, f.tensors); }).find("logfreq"), std::string::npos);
    c = cfg;
    c["model"]["input_depth"] = 1000;
    EXPECT_NE(error_of([&] { ts::Model::from_tensors(c, f.tensors); }).find("memory depth"), std::string::npos);
    c = cfg;
    c["hconv"]["key_channels"] = 9;  // memory depth and tensor shapes disagree
    EXPECT_FALSE(error_of([&] { ts::Model::from_tensors(c, f.tensors); }).empty());
  }
  // The T5-only model has no front.
  std::unique_ptr<ts::Model> tiny = ts::Model::load(std::string(TUNESCRIBE_SOURCE_DIR) + "/models/tiny");
  EXPECT_FALSE(tiny->has_heads());
  std::vector<float> x(512 * 4, 0.0f);
  EXPECT_THROW(tiny->front_heads(x.data(), 1, 4), ts::ModelError);
}

// ---------------------------------------------------------------- frames decoder
namespace {

constexpr int kF = 16;  // families
constexpr int kT = 128;

struct Heads {
  std::vector<float> v = std::vector<float>(size_t(4 + kF) * kT * 88, 0.0f);
  float& at(int ch, int frame, int key) { return v[(size_t(ch) * kT + size_t(frame)) * 88 + size_t(key)]; }
};

ts::FrameGeometry geometry() { return ts::FrameGeometry::from_frontend(frontend_config()); }

std::vector<ts::Note> decode(std::vector<Heads*> segs, const ts::FramesDecoderConfig& cfg = {},
                             std::vector<int> n_frames = {}) {
  const ts::FrameGeometry g = geometry();
  std::vector<ts::HeadsSegment> in;
  for (size_t s = 0; s < segs.size(); ++s)
    in.push_back({segs[s]->v.data(), 2.048 * double(s), n_frames.empty() ? g.valid_frames : n_frames[s]});
  return ts::decode_frames(in, kF, g, cfg);
}

// A note at key `p` from frame a to b (inclusive), onset peak `peak` at a.
void put_note(Heads& h, int p, int a, int b, float peak = 0.9f, float frame = 0.8f) {
  h.at(0, a, p) = peak;
  for (int j = a; j <= b; ++j) h.at(1, j, p) = frame;
  h.at(3, a, p) = 0.5f;
}

double t(int frame, int seg = 0) { return 2.048 * seg + 0.064 + 0.016 * frame; }

}  // namespace

TEST(FramesDecoder, GeometryFollowsTheReference) {
  const ts::FrameGeometry g = geometry();
  EXPECT_EQ(g.valid_frames, 124);  // ceil((128 * 256 - 1024) / 256)
  EXPECT_DOUBLE_EQ(g.period_s(), 0.016);
  EXPECT_DOUBLE_EQ(g.centre0_s(), 0.064);
  EXPECT_EQ(g.real_frames(32768), 124);
  EXPECT_EQ(g.real_frames(0), 0);
  EXPECT_EQ(g.real_frames(100), 1);       // inside the first half window: frame 0 only
  EXPECT_EQ(g.real_frames(1024 + 1), 1);  // frame 0's centre is inside
  EXPECT_EQ(g.real_frames(1024 + 257), 2);
  EXPECT_EQ(g.real_frames(19660), 73);
}

TEST(FramesDecoder, SingleNote) {
  Heads h;
  put_note(h, 39, 10, 19);
  h.at(0, 9, 39) = 0.2f;
  h.at(0, 11, 39) = 0.2f;  // symmetric neighbours: no sub-frame shift
  for (int j = 10; j <= 19; ++j) h.at(4 + 3, j, 39) = 2.0f;  // family 3 (guitar) -> program 24
  const auto notes = decode({&h});
  ASSERT_EQ(notes.size(), 1u);
  const ts::Note& n = notes[0];
  EXPECT_EQ(n.pitch, 60);
  EXPECT_NEAR(n.onset_s, t(10), 1e-12);
  EXPECT_NEAR(n.offset_s, t(19) + 0.008, 1e-12);
  EXPECT_EQ(n.velocity, 64);  // round(0.5 * 127 = 63.5) ties to even
  EXPECT_EQ(n.program, 24);
  EXPECT_FALSE(n.is_drum);
  EXPECT_FLOAT_EQ(n.confidence, 0.9f);
}

TEST(FramesDecoder, SubFrameRefinementAndFrameZeroRule) {
  Heads h;
  put_note(h, 10, 10, 12);
  h.at(0, 9, 10) = 0.3f;
  h.at(0, 11, 10) = 0.6f;
  put_note(h, 20, 0, 3);  // onset at frame 0: placed at segment start + (c0 + period / 2) / 2
  h.at(0, 1, 20) = 0.6f;
  const auto notes = decode({&h});
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_EQ(notes[0].pitch, 41);
  EXPECT_NEAR(notes[0].onset_s, 0.036, 1e-12);
  EXPECT_NEAR(notes[0].offset_s, t(3) + 0.008, 1e-12);
  const double d = 0.5 * double(0.3f - 0.6f) / (double(0.3f) - 2.0 * double(0.9f) + double(0.6f));
  EXPECT_NEAR(notes[1].onset_s, t(10) + d * 0.016, 1e-12);
  EXPECT_GT(d, 0.1);
}

TEST(FramesDecoder, RepeatedNoteAtOnePitch) {
  Heads h;
  put_note(h, 40, 10, 29);
  h.at(0, 20, 40) = 0.8f;  // a second onset peak while the frame head stays on
  h.at(3, 20, 40) = 1.0f;
  const auto notes = decode({&h});
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_NEAR(notes[0].onset_s, t(10), 1e-12);
  EXPECT_NEAR(notes[0].offset_s, t(19) + 0.008, 1e-12);
  EXPECT_NEAR(notes[1].onset_s, t(20), 1e-12);
  EXPECT_NEAR(notes[1].offset_s, t(29) + 0.008, 1e-12);
  EXPECT_EQ(notes[1].velocity, 127);
  EXPECT_FLOAT_EQ(notes[1].confidence, 0.8f);
}

TEST(FramesDecoder, NotesContinueAcrossSegmentJoins) {
  Heads a, b;
  put_note(a, 50, 119, 123);
  for (int j = 0; j <= 9; ++j) b.at(1, j, 50) = 0.7f;
  // An onset at a segment's last valid frame is a peak even when the next segment's frame 0 is higher.
  a.at(0, 123, 60) = 0.7f;
  a.at(1, 123, 60) = 0.7f;
  a.at(0, 124, 60) = 0.99f;  // past the valid frames: never read
  a.at(1, 124, 50) = 0.0f;
  b.at(0, 0, 60) = 0.95f;
  b.at(1, 0, 60) = 0.7f;
  const auto notes = decode({&a, &b});
  ASSERT_EQ(notes.size(), 3u);
  EXPECT_EQ(notes[0].pitch, 71);
  EXPECT_NEAR(notes[0].onset_s, t(119), 1e-12);
  EXPECT_NEAR(notes[0].offset_s, t(9, 1) + 0.008, 1e-12);
  // pitch 81: a note at frame 123 (no refinement across the join) ended by the new onset at frame 0
  EXPECT_EQ(notes[1].pitch, 81);
  EXPECT_NEAR(notes[1].onset_s, t(123), 1e-12);
  EXPECT_NEAR(notes[1].offset_s, t(123) + 0.008, 1e-12);
  EXPECT_EQ(notes[2].pitch, 81);
  EXPECT_NEAR(notes[2].onset_s, 2.048 + 0.036, 1e-12);
  // The streaming decoder (segment by segment) gives the same notes.
  ts::FramesDecoder dec({}, geometry(), kF);
  dec.add_segment(a.v.data(), 0.0, 124);
  dec.add_segment(b.v.data(), 2.048, 124);
  EXPECT_EQ(dec.finish(), notes);
}

TEST(FramesDecoder, ThresholdsMinNoteAndFrequencyLimits) {
  Heads h;
  put_note(h, 30, 10, 10, 0.45f);  // below the default onset threshold
  put_note(h, 31, 10, 14, 0.9f, 0.25f);  // frame head below the default frame threshold: one frame
  put_note(h, 0, 30, 40);   // A0, 27.5 Hz
  put_note(h, 87, 30, 40);  // C8, 4186 Hz
  auto pitches = [](const std::vector<ts::Note>& v) {
    std::vector<int> p;
    for (const auto& n : v) p.push_back(n.pitch);
    std::sort(p.begin(), p.end());
    return p;
  };
  auto notes = decode({&h});
  EXPECT_EQ(pitches(notes), (std::vector<int>{21, 52, 108}));
  for (const auto& n : notes)
    if (n.pitch == 52) EXPECT_NEAR(n.offset_s - n.onset_s, 0.008, 1e-12);  // one frame: to its frame's end
  ts::FramesDecoderConfig c;
  c.onset_threshold = 0.4;
  EXPECT_EQ(pitches(decode({&h}, c)), (std::vector<int>{21, 51, 52, 108}));
  c = {};
  c.frame_threshold = 0.2;
  for (const auto& n : decode({&h}, c))
    if (n.pitch == 52) EXPECT_NEAR(n.offset_s, t(14) + 0.008, 1e-12);
  c = {};
  c.min_note_ms = 10.0;  // drops the 8 ms note, keeps the others
  EXPECT_EQ(pitches(decode({&h}, c)), (std::vector<int>{21, 108}));
  c.min_note_ms = 8.0 - 1e-6;
  EXPECT_EQ(pitches(decode({&h}, c)), (std::vector<int>{21, 52, 108}));
  c = {};
  c.min_freq_hz = 30.0;
  c.max_freq_hz = 4000.0;
  EXPECT_EQ(pitches(decode({&h}, c)), (std::vector<int>{52}));
}

// velocity_loudness: equal head velocities, different feature peaks at the notes' starts -> the
// velocities follow the loudness (and stay the head's when the weight is 0 or no features come).
TEST(FramesDecoder, VelocityLoudnessBlendsTheFeaturePeak) {
  const ts::FrameGeometry g = geometry();
  ASSERT_GT(g.n_bins, 0);
  Heads h;
  const int keys[4] = {20, 30, 40, 50};
  const float level[4] = {-6.0f, -4.0f, -2.0f, 0.0f};  // log magnitudes at the onsets
  std::vector<float> feats(size_t(kT) * size_t(g.n_bins), -11.5f);
  for (int i = 0; i < 4; ++i) {
    put_note(h, keys[i], 10 + 20 * i, 20 + 20 * i);
    const long bin = std::lround((keys[i] + 21 - g.min_midi) * g.bins_per_semitone);
    feats[size_t(11 + 20 * i) * size_t(g.n_bins) + size_t(bin + 1)] = level[i];  // 2nd frame, bin + 1
  }
  h.at(3, 10, keys[0]) = 0.4f;  // head spread: 51, 64, 64, 64 (x 127)
  auto run = [&](double w, bool with_features) {
    ts::FramesDecoderConfig cfg;
    cfg.velocity_loudness = w;
    return ts::decode_frames({{h.v.data(), 0.0, g.valid_frames, with_features ? feats.data() : nullptr}}, kF, g, cfg);
  };
  const auto head = run(0.0, true), none = run(1.0, false), loud = run(1.0, true), half = run(0.5, true);
  ASSERT_EQ(loud.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(head[i].velocity, none[i].velocity);
    EXPECT_EQ(head[i].velocity, i == 0 ? 51 : 64);
  }
  for (size_t i = 1; i < 4; ++i) {
    EXPECT_GT(loud[i].velocity, loud[i - 1].velocity);  // ordered by loudness alone
    EXPECT_GE(half[i].velocity, half[i - 1].velocity);
  }
  // Mapped onto the head's mean and spread: the mean stays (up to rounding).
  double mh = 0, ml = 0;
  for (size_t i = 0; i < 4; ++i) {
    mh += head[i].velocity;
    ml += loud[i].velocity;
  }
  EXPECT_NEAR(mh / 4, ml / 4, 1.0);
  ts::FramesDecoderConfig bad;
  bad.velocity_loudness = 1.5;
  EXPECT_THROW(bad.validate(), ts::ConfigError);
}

TEST(FramesDecoder, FramesPastTheSignalAreIgnored) {
  Heads a;
  put_note(a, 45, 20, 60);
  put_note(a, 46, 50, 60);  // starts after the last real frame
  const auto notes = decode({&a}, {}, {40});
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].pitch, 66);
  EXPECT_NEAR(notes[0].offset_s, t(39) + 0.008, 1e-12);
  EXPECT_TRUE(decode({&a}, {}, {0}).empty());
}

TEST(FramesDecoder, ConfigValidation) {
  ts::FramesDecoderConfig c;
  EXPECT_NO_THROW(c.validate());
  auto bad = [](auto edit) {
    ts::FramesDecoderConfig b;
    edit(b);
    EXPECT_THROW(b.validate(), ts::ConfigError);
  };
  bad([](ts::FramesDecoderConfig& b) { b.onset_threshold = 1.5; });
  bad([](ts::FramesDecoderConfig& b) { b.frame_threshold = -0.1; });
  bad([](ts::FramesDecoderConfig& b) { b.min_note_ms = NAN; });
  bad([](ts::FramesDecoderConfig& b) { b.min_freq_hz = -1; });
  bad([](ts::FramesDecoderConfig& b) {
    b.min_freq_hz = 500;
    b.max_freq_hz = 100;
  });
  const auto j = ts::FramesDecoderConfig::from_json(model_config_json().at("decoding"));
  EXPECT_DOUBLE_EQ(j.onset_threshold, 0.5);
  EXPECT_DOUBLE_EQ(j.frame_threshold, 0.3);
  ts::FramesDecoderOverrides o;
  o.frame_threshold = 0.1;
  const auto applied = o.apply(j);
  EXPECT_DOUBLE_EQ(applied.frame_threshold, 0.1);
  EXPECT_DOUBLE_EQ(applied.onset_threshold, 0.5);
}

TEST(FramesDecoder, MatchesReferenceDecodeFrames) {
  const auto& heads = fx("heads");
  const ts::FrameGeometry g = geometry();
  const size_t per = size_t(20) * 128 * 88;
  const std::vector<ts::HeadsSegment> segs{{heads.data.data(), 0.0, g.valid_frames},
                                           {heads.data.data() + per, 2.048, g.valid_frames}};
  const auto got = ts::decode_frames(segs, 16, g, {});
  const auto& want = parity_json().at("frames_notes");
  ASSERT_EQ(got.size(), want.size());
  ASSERT_GT(got.size(), 100u);
  size_t shown = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const auto& w = want[i];
    const bool same = std::fabs(got[i].onset_s - w[0].get<double>()) < 1e-6 &&
                      std::fabs(got[i].offset_s - w[1].get<double>()) < 1e-6 && got[i].pitch == w[2].get<int>() &&
                      got[i].velocity == w[3].get<int>() && got[i].program == w[4].get<int>() &&
                      std::fabs(got[i].confidence - w[5].get<double>()) < 1e-6;
    if (!same && shown++ < 5)
      ADD_FAILURE() << "note " << i << ": got " << got[i].onset_s << " " << got[i].offset_s << " " << got[i].pitch
                    << " " << got[i].velocity << " " << got[i].program << " " << got[i].confidence << ", want "
                    << w.dump();
  }
}

// ---------------------------------------------------------------- notes JSON
TEST(NotesJson, ConfidenceOnlyWhenKnown) {
  ts::NoteSequence seq;
  ts::Note a;
  a.onset_s = 0.5;
  a.offset_s = 1.0;
  seq.notes.push_back(a);
  EXPECT_FALSE(ts::notes_to_json(seq)["notes"][0].contains("confidence"));
  seq.notes[0].confidence = 0.75f;
  const auto j = ts::notes_to_json(seq);
  EXPECT_DOUBLE_EQ(j["notes"][0]["confidence"].get<double>(), 0.75);
  const auto back = ts::notes_from_json(j, "x");
  EXPECT_FLOAT_EQ(back.notes[0].confidence, 0.75f);
}

// ---------------------------------------------------------------- transcriber
namespace {
ts::Transcriber& hconv_transcriber(const std::string& decoder) {
  static std::map<std::string, std::unique_ptr<ts::Transcriber>> cache;
  auto& t = cache[decoder];
  if (!t) {
    ts::TranscriberConfig cfg;
    cfg.model_dir = hconv_dir();
    cfg.n_threads = 2;
    cfg.batch_size = 1;
    cfg.max_decode_steps = 32;
    cfg.decoder = decoder;
    t = std::make_unique<ts::Transcriber>(cfg);
  }
  return *t;
}

ts::Audio parity_audio() {
  ts::Audio a;
  a.rate_hz = 16000;
  a.samples = fx("audio").data;
  return a;
}
}  // namespace

TEST(TranscriberFrames, DecoderChoice) {
  EXPECT_EQ(hconv_transcriber("auto").decoder(), "frames");  // the model's decoding.default
  EXPECT_EQ(hconv_transcriber("tokens").decoder(), "tokens");
  ts::TranscriberConfig cfg;
  cfg.model_dir = std::string(TUNESCRIBE_SOURCE_DIR) + "/models/tiny";
  cfg.decoder = "frames";
  try {
    ts::Transcriber t(cfg);
    ADD_FAILURE() << "no ConfigError";
  } catch (const ts::ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("frames"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos);
  }
  cfg.decoder = "auto";
  EXPECT_EQ(ts::Transcriber(cfg).decoder(), "tokens");
  cfg.decoder = "beam";
  EXPECT_THROW(cfg.validate(), ts::ConfigError);
  cfg.decoder = "frames";
  cfg.frames.onset_threshold = 2.0;
  EXPECT_THROW(cfg.validate(), ts::ConfigError);
}

TEST(TranscriberFrames, NotesEqualTheDecoderOnTheModelHeadsWithoutPaddingFrames) {
  ts::Transcriber& tr = hconv_transcriber("frames");
  ts::TranscribeProfile prof;
  tr.set_profile(&prof);
  const ts::Audio audio = parity_audio();
  const ts::NoteSequence seq = tr.transcribe(audio);
  tr.set_profile(nullptr);
  EXPECT_EQ(prof.segments, 2);
  EXPECT_EQ(prof.tokens, 0);
  EXPECT_GT(prof.encoder_s, 0.0);
  ASSERT_FALSE(seq.notes.empty());
  // Reference: the heads of each segment's features (batch 1, as the transcriber
  // here), the last segment cut at its real frames, clipped to the duration.
  const ts::FrameGeometry g = geometry();
  ts::LogMel lm(frontend_config());
  const auto segs = lm.segments(audio.samples);
  ASSERT_EQ(segs.size(), 2u);
  std::vector<float> heads;
  for (const auto& sg : segs) {
    const auto h = model().front_heads(sg.data.data(), 1, 128);
    heads.insert(heads.end(), h.begin(), h.end());
  }
  const size_t per = size_t(20) * 128 * 88;
  const int last = g.real_frames(audio.samples.size() - 32768);
  EXPECT_EQ(last, 73);
  auto want = ts::decode_frames({{heads.data(), 0.0, 124}, {heads.data() + per, 2.048, last}}, 16, g, {});
  const double dur = audio.duration_s();
  std::vector<ts::Note> kept;
  for (auto n : want) {
    if (n.onset_s >= dur) continue;
    n.offset_s = std::min(n.offset_s, dur);
    kept.push_back(n);
  }
  ASSERT_EQ(seq.notes.size(), kept.size());
  for (size_t i = 0; i < kept.size(); ++i) {
    EXPECT_NEAR(seq.notes[i].onset_s, kept[i].onset_s, 1e-9);
    EXPECT_NEAR(seq.notes[i].offset_s, kept[i].offset_s, 1e-9);
    EXPECT_EQ(seq.notes[i].pitch, kept[i].pitch);
    EXPECT_TRUE(seq.notes[i].has_confidence());
  }
  // With all 124 frames of the padded last segment, notes would run on into the padding.
  auto padded = ts::decode_frames({{heads.data(), 0.0, 124}, {heads.data() + per, 2.048, 124}}, 16, g, {});
  EXPECT_GT(padded.size(), want.size());
}

TEST(TranscriberFrames, StreamGivesTheSameNotesAsWholeSignal) {
  const std::string dir = ts::test::temp_dir("hconv_stream");
  for (const std::string decoder : {"frames", "tokens"}) {
    SCOPED_TRACE(decoder);
    ts::Transcriber& tr = hconv_transcriber(decoder);
    for (size_t n : {size_t(52428), size_t(32768), size_t(700)}) {
      std::vector<float> x(fx("audio").data.begin(), fx("audio").data.begin() + std::min<size_t>(n, 52428));
      const std::string path = ts::test::write_audio_file(dir + "/a" + std::to_string(n) + ".wav",
                                                          SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, x);
      const ts::NoteSequence whole = tr.transcribe(ts::load_audio(path));
      ts::AudioStream stream(path);
      const ts::NoteSequence streamed = tr.transcribe(stream);
      ASSERT_EQ(whole.notes.size(), streamed.notes.size()) << n;
      for (size_t i = 0; i < whole.notes.size(); ++i) {
        EXPECT_EQ(whole.notes[i], streamed.notes[i]);
        EXPECT_EQ(whole.notes[i].confidence, streamed.notes[i].confidence);
      }
      for (const auto& note : whole.notes) {
        EXPECT_LT(note.onset_s, note.offset_s);
        EXPECT_LE(note.offset_s, double(x.size()) / 16000.0 + 1e-9);
      }
    }
  }
  fs::remove_all(dir);
}
