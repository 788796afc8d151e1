// frames_decoder.cpp — the frames decoder: a streaming port of
// tools/train/tunescribe_train/hconv.py decode_frames (see frames_decoder.h). Frames are processed one step behind the
// input: deciding about frame j needs frame j + 1 (peak test, refinement, the end of
// a note), so the decoder keeps the frames j - 1, j and j + 1 and the open notes.
#include "tunescribe/frames_decoder.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <tuple>

#include "tunescribe/errors.h"
#include "tunescribe/frontend.h"
#include "util/json_fields.h"

namespace tunescribe {

const int kFamilyPrograms[16] = {0, 11, 16, 24, 32, 40, 48, 56, 65, 73, 80, 88, 96, 104, 112, 118};

namespace {

constexpr int kKeys = 88;
constexpr int kMinPitch = 21;

void check_range(const char* field, double v, double lo, double hi) {
  if (!std::isfinite(v) || v < lo || v > hi) {
    std::ostringstream os;
    os << "frames decoder: " << field << " = " << v << " is not within [" << lo << ", " << hi << "]";
    throw ConfigError(os.str());
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// Config

void FramesDecoderConfig::validate() const {
  check_range("onset_threshold", onset_threshold, 0.0, 1.0);
  check_range("frame_threshold", frame_threshold, 0.0, 1.0);
  check_range("min_note_ms", min_note_ms, 0.0, 10000.0);
  check_range("min_freq_hz", min_freq_hz, 0.0, 100000.0);
  check_range("max_freq_hz", max_freq_hz, 0.0, 100000.0);
  check_range("velocity_loudness", velocity_loudness, 0.0, 1.0);
  if (min_freq_hz > 0.0 && max_freq_hz > 0.0 && min_freq_hz > max_freq_hz) {
    std::ostringstream os;
    os << "frames decoder: min_freq_hz = " << min_freq_hz << " is above max_freq_hz = " << max_freq_hz;
    throw ConfigError(os.str());
  }
}

nlohmann::json FramesDecoderConfig::to_json() const {
  return {{"onset_threshold", onset_threshold}, {"frame_threshold", frame_threshold}, {"min_note_ms", min_note_ms},
          {"min_freq_hz", min_freq_hz},         {"max_freq_hz", max_freq_hz},
          {"velocity_loudness", velocity_loudness}};
}

FramesDecoderConfig FramesDecoderConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw ConfigError("frames decoder: the \"decoding\" section is not an object");
  FramesDecoderConfig c;
  const std::string where = "frames decoder: decoding.";
  json_fields::read_number(j, "onset_threshold", where, c.onset_threshold);
  json_fields::read_number(j, "frame_threshold", where, c.frame_threshold);
  json_fields::read_number(j, "min_note_ms", where, c.min_note_ms);
  json_fields::read_number(j, "min_freq_hz", where, c.min_freq_hz);
  json_fields::read_number(j, "max_freq_hz", where, c.max_freq_hz);
  json_fields::read_number(j, "velocity_loudness", where, c.velocity_loudness);
  c.validate();
  return c;
}

FramesDecoderConfig FramesDecoderOverrides::apply(FramesDecoderConfig c) const {
  if (onset_threshold) c.onset_threshold = *onset_threshold;
  if (frame_threshold) c.frame_threshold = *frame_threshold;
  if (min_note_ms) c.min_note_ms = *min_note_ms;
  if (min_freq_hz) c.min_freq_hz = *min_freq_hz;
  if (max_freq_hz) c.max_freq_hz = *max_freq_hz;
  if (velocity_loudness) c.velocity_loudness = *velocity_loudness;
  return c;
}

// ---------------------------------------------------------------------------
// Geometry

FrameGeometry FrameGeometry::from_frontend(const LogMelConfig& fe) {
  FrameGeometry g;
  g.sample_rate_hz = fe.sample_rate_hz;
  g.hop_length = fe.hop_length;
  g.n_fft = fe.n_fft;
  g.segment_frames = fe.segment_frames;
  // hconv.frame_geometry: ceil((T * hop - n_fft / 2) / hop)
  const double v = std::ceil((double(fe.segment_frames) * fe.hop_length - double(fe.n_fft) / 2.0) / fe.hop_length);
  g.valid_frames = int(std::min<double>(fe.segment_frames, std::max(1.0, v)));
  if (fe.is_logfreq()) {
    g.min_midi = fe.min_midi;
    g.bins_per_semitone = fe.bins_per_semitone;
    g.n_bins = fe.n_bins;
  }
  return g;
}

int FrameGeometry::real_frames(size_t n_samples) const {
  if (n_samples == 0) return 0;
  if (n_samples >= size_t(segment_frames) * size_t(hop_length)) return valid_frames;
  // frames whose centre j * hop + n_fft / 2 lies before the signal's end
  const double v = std::ceil((double(n_samples) - double(n_fft) / 2.0) / hop_length);
  return int(std::min<double>(valid_frames, std::max(1.0, v)));
}

// ---------------------------------------------------------------------------
// Decoder

struct FramesDecoder::Impl {
  FramesDecoderConfig cfg;
  FrameGeometry geo;
  int families = 0;
  double period = 0, c0 = 0;

  struct Frame {
    std::vector<float> on, fr, ve;  // [88]
    std::vector<float> fam;         // [families, 88]
    std::vector<float> loud;        // [88] feature peak around each key's bin (empty: none)
    double time = 0;                // centre (s)
    double seg_start = 0;           // its segment's start (s)
    bool first = false;             // frame 0 of its segment
  };
  struct OpenNote {
    double t_on = 0;
    float conf = 0;
    int velocity = 1;
    double head_velocity = 0;  // velocity head x 127, unrounded
    double loud = -INFINITY;   // feature peak over the note's first 3 frames
    std::vector<double> fam_sum;  // [families]
    int frames = 0;
  };
  struct NoteExtra {
    double head_velocity = 0, loud = -INFINITY;
  };
  std::vector<NoteExtra> extras;  // parallel to notes
  std::deque<Frame> window;  // at most: previous, current, next
  bool have_prev = false;    // window.front() is the frame before the one to process
  std::vector<std::vector<OpenNote>> open{size_t(kKeys)};
  std::vector<Note> notes;
  bool finished = false;

  void close(OpenNote& n, int p, double t_off) {
    Note out;
    out.onset_s = n.t_on;
    out.offset_s = t_off;
    out.pitch = p + kMinPitch;
    out.velocity = n.velocity;
    int best = 0;
    double best_v = -INFINITY;
    for (int f = 0; f < families; ++f) {
      const double m = n.fam_sum[size_t(f)] / double(n.frames);
      if (m > best_v) {  // first maximum, as np.argmax
        best_v = m;
        best = f;
      }
    }
    out.program = kFamilyPrograms[best];
    out.is_drum = false;
    out.confidence = n.conf;
    notes.push_back(out);
    extras.push_back({n.head_velocity, n.loud});
  }

  void add_fam(OpenNote& n, const Frame& f, int p) const {
    for (int k = 0; k < families; ++k) n.fam_sum[size_t(k)] += double(f.fam[size_t(k) * kKeys + size_t(p)]);
    if (n.frames < 3 && !f.loud.empty()) n.loud = std::max(n.loud, double(f.loud[size_t(p)]));
    n.frames++;
  }

  // Decides about frame `cur` (prev / next may be null: the sequence's ends).
  void process(const Frame& cur, const Frame* prev, const Frame* next) {
    // Threshold comparisons as numpy does them in the reference: the onset candidates
    // on the float32 array (threshold rounded to float32), the note continuation on
    // float32 scalars against Python floats (in double).
    const float othr_f = float(cfg.onset_threshold);
    const double othr = cfg.onset_threshold, fthr = cfg.frame_threshold;
    for (int p = 0; p < kKeys; ++p) {
      const float o = cur.on[size_t(p)];
      // Notes started before `cur` go on while the frame head holds, until a new onset peak.
      auto& list = open[size_t(p)];
      if (!list.empty()) {
        const bool new_peak = double(o) >= othr && (!next || o >= next->on[size_t(p)]) && o >= prev->on[size_t(p)];
        const bool goes_on = double(cur.fr[size_t(p)]) >= fthr && !new_peak;
        if (goes_on) {
          for (auto& n : list) add_fam(n, cur, p);
        } else {
          for (auto& n : list) close(n, p, prev->time + 0.5 * period);
          list.clear();
        }
      }
      // An onset peak at `cur` starts a note.
      if (!(o >= othr_f)) continue;
      if (prev && prev->on[size_t(p)] > o) continue;
      if (next && next->on[size_t(p)] >= o && !next->first) continue;
      double d = 0.0;
      if (prev && next && !cur.first && !next->first) {
        const float a = prev->on[size_t(p)], b = next->on[size_t(p)];
        const double den = double(a) - 2.0 * double(o) + double(b);
        if (den < 0) d = std::max(-0.5, std::min(0.5, 0.5 * double(a - b) / den));
      }
      OpenNote n;
      // Frame 0 holds every onset of [0, c0 + period/2): placed mid-range.
      n.t_on = cur.first ? cur.seg_start + 0.5 * (c0 + 0.5 * period) : cur.time + d * period;
      n.conf = o;
      const float v = cur.ve[size_t(p)];
      const double vc = v != v ? 0.0 : double(std::min(1.0f, std::max(0.0f, v)));
      n.velocity = std::max(1, int(std::nearbyint(vc * 127.0)));  // ties to even, as Python's round
      n.head_velocity = vc * 127.0;
      n.fam_sum.assign(size_t(families), 0.0);
      add_fam(n, cur, p);
      list.push_back(std::move(n));
    }
  }

  static void blend_loudness(std::vector<Note>& out, const std::vector<NoteExtra>& extra, double w);

  void push(Frame&& f) {
    window.push_back(std::move(f));
    // window: [prev], cur, next — process cur once next is known.
    const size_t need = have_prev ? 3 : 2;
    if (window.size() < need) return;
    const Frame* prev = have_prev ? &window[0] : nullptr;
    const Frame& cur = window[have_prev ? 1 : 0];
    const Frame& next = window[have_prev ? 2 : 1];
    process(cur, prev, &next);
    if (have_prev) window.pop_front();
    have_prev = true;
  }
};

FramesDecoder::FramesDecoder(const FramesDecoderConfig& cfg, const FrameGeometry& geometry, int num_families)
    : impl_(std::make_unique<Impl>()) {
  cfg.validate();
  if (num_families < 1 || num_families > 16)
    throw ConfigError("frames decoder: num_families = " + std::to_string(num_families) + " is not within [1, 16]");
  if (geometry.valid_frames < 1 || geometry.valid_frames > geometry.segment_frames)
    throw ConfigError("frames decoder: valid_frames = " + std::to_string(geometry.valid_frames) +
                      " is not within [1, segment_frames]");
  impl_->cfg = cfg;
  impl_->geo = geometry;
  impl_->families = num_families;
  impl_->period = geometry.period_s();
  impl_->c0 = geometry.centre0_s();
}

FramesDecoder::~FramesDecoder() = default;

// velocity_loudness: per-recording z-scores of the head's velocities and of the loudness,
// blended, mapped back onto the head's mean and spread (hconv.decode_frames does the same).
void FramesDecoder::Impl::blend_loudness(std::vector<Note>& out, const std::vector<NoteExtra>& extra, double w) {
  if (w <= 0.0 || out.size() < 3) return;
  for (const NoteExtra& e : extra)
    if (!std::isfinite(e.loud)) return;  // no features were given
  const size_t n = out.size();
  auto stats = [&](auto get, double& mean, double& sd) {
    double s = 0, s2 = 0;
    for (const NoteExtra& e : extra) s += get(e);
    mean = s / double(n);
    for (const NoteExtra& e : extra) s2 += (get(e) - mean) * (get(e) - mean);
    sd = std::sqrt(s2 / double(n));  // population std, as numpy's
  };
  double mh, sh, ml, sl;
  stats([](const NoteExtra& e) { return e.head_velocity; }, mh, sh);
  stats([](const NoteExtra& e) { return e.loud; }, ml, sl);
  for (size_t i = 0; i < n; ++i) {
    const double z = (1.0 - w) * (extra[i].head_velocity - mh) / (sh + 1e-6) + w * (extra[i].loud - ml) / (sl + 1e-6);
    const double v = mh + sh * z;
    out[i].velocity = int(std::min(127.0, std::max(1.0, std::nearbyint(v))));
  }
}

void FramesDecoder::add_segment(const float* heads, double start_s, int n_frames, const float* features) {
  Impl& I = *impl_;
  if (I.finished) throw ConfigError("frames decoder: add_segment after finish");
  if (n_frames < 0 || n_frames > I.geo.valid_frames)
    throw ConfigError("frames decoder: segment with " + std::to_string(n_frames) + " frames (at most " +
                      std::to_string(I.geo.valid_frames) + ")");
  const size_t T = size_t(I.geo.segment_frames);
  auto row = [&](int channel, int k) { return heads + (size_t(channel) * T + size_t(k)) * kKeys; };
  for (int k = 0; k < n_frames; ++k) {
    Impl::Frame f;
    f.on.assign(row(0, k), row(0, k) + kKeys);
    f.fr.assign(row(1, k), row(1, k) + kKeys);
    f.ve.assign(row(3, k), row(3, k) + kKeys);
    f.fam.resize(size_t(I.families) * kKeys);
    for (int c = 0; c < I.families; ++c) std::copy(row(4 + c, k), row(4 + c, k) + kKeys, f.fam.begin() + c * kKeys);
    if (features && I.cfg.velocity_loudness > 0.0 && I.geo.n_bins > 0) {
      const float* row_f = features + size_t(k) * size_t(I.geo.n_bins);
      f.loud.resize(kKeys);
      for (int p = 0; p < kKeys; ++p) {
        const long b = std::lround((double(p + kMinPitch) - I.geo.min_midi) * I.geo.bins_per_semitone);
        float m = -INFINITY;
        for (long q = std::max(0L, b - 1); q <= std::min<long>(I.geo.n_bins - 1, b + 1); ++q) m = std::max(m, row_f[q]);
        f.loud[size_t(p)] = m;
      }
    }
    f.time = start_s + I.c0 + I.period * double(k);
    f.seg_start = start_s;
    f.first = k == 0;
    I.push(std::move(f));
  }
}

std::vector<Note> FramesDecoder::finish() {
  Impl& I = *impl_;
  if (I.finished) throw ConfigError("frames decoder: finish called twice");
  I.finished = true;
  if (!I.window.empty()) {
    const Impl::Frame* prev = I.have_prev ? &I.window[0] : nullptr;
    const Impl::Frame& last = I.window.back();
    I.process(last, prev, nullptr);
    for (int p = 0; p < kKeys; ++p) {
      for (auto& n : I.open[size_t(p)]) I.close(n, p, last.time + 0.5 * I.period);
      I.open[size_t(p)].clear();
    }
  }
  std::vector<Note> out;
  std::vector<Impl::NoteExtra> extra;
  const double min_s = I.cfg.min_note_ms / 1000.0;
  for (size_t i = 0; i < I.notes.size(); ++i) {
    const Note& n = I.notes[i];
    if (n.offset_s - n.onset_s < min_s) continue;
    const double hz = midi_to_hz(n.pitch);
    if (I.cfg.min_freq_hz > 0.0 && hz < I.cfg.min_freq_hz) continue;
    if (I.cfg.max_freq_hz > 0.0 && hz > I.cfg.max_freq_hz) continue;
    out.push_back(n);
    extra.push_back(I.extras[i]);
  }
  Impl::blend_loudness(out, extra, I.cfg.velocity_loudness);
  std::sort(out.begin(), out.end(), [](const Note& a, const Note& b) {
    return std::make_tuple(a.onset_s, a.offset_s, a.pitch, a.velocity, a.program, a.confidence) <
           std::make_tuple(b.onset_s, b.offset_s, b.pitch, b.velocity, b.program, b.confidence);
  });
  I.notes.clear();
  I.extras.clear();
  return out;
}

std::vector<Note> decode_frames(const std::vector<HeadsSegment>& segments, int num_families,
                                const FrameGeometry& geometry, const FramesDecoderConfig& cfg) {
  FramesDecoder dec(cfg, geometry, num_families);
  for (const auto& s : segments) dec.add_segment(s.heads, s.start_s, s.n_frames, s.features);
  return dec.finish();
}

}  // namespace tunescribe
