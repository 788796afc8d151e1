// frontend.cpp — the MT3 log-mel spectrogram (../shared/specs/mt3.md §1).
//
// Speed: per frame one fftwf r2c (cached plan, new-array execute), a
// vectorised magnitude, a sparse mel product (each band stores only its
// nonzero bin range) and a vectorised natural log. The hot loops are written
// so GCC can vectorise them (SSE2 intrinsics for the magnitude's sqrt).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif
#include "tunescribe/frontend.h"

#include <fftw3.h>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <cfloat>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tunescribe/errors.h"
#include "util/json_fields.h"

namespace tunescribe {

namespace {

// ---------------------------------------------------------------------------
// FFTW plans: created once per size under a global mutex (the FFTW planner is
// not thread-safe), cached for the life of the process and executed with the
// new-array interface on per-call buffers (fftwf_execute_dft_r2c is
// thread-safe). FFTW_ESTIMATE keeps the chosen algorithm — and therefore the
// float rounding — identical from run to run.
fftwf_plan r2c_plan(int n) {
  // Never destroyed: plans stay valid for static destructors, and stay reachable for leak checkers.
  static auto* cache = new std::map<int, fftwf_plan>();  // guarded by fftw_planner_mutex()
  std::lock_guard<std::mutex> lock(fftw_planner_mutex());
  auto it = cache->find(n);
  if (it != cache->end()) return it->second;
  float* in = fftwf_alloc_real(size_t(n));
  fftwf_complex* out = fftwf_alloc_complex(size_t(n) / 2 + 1);
  if (!in || !out) {
    fftwf_free(in);
    fftwf_free(out);
    throw std::bad_alloc();
  }
  fftwf_plan p = fftwf_plan_dft_r2c_1d(n, in, out, FFTW_ESTIMATE);
  fftwf_free(in);
  fftwf_free(out);
  if (!p) throw ConfigError("frontend: FFTW could not plan an r2c transform of size " + std::to_string(n));
  cache->emplace(n, p);
  return p;
}

// FFTW-aligned scratch buffers owned by one call.
struct FftBuffers {
  float* in = nullptr;
  fftwf_complex* out = nullptr;
  explicit FftBuffers(int n) {
    in = fftwf_alloc_real(size_t(n));
    out = fftwf_alloc_complex(size_t(n) / 2 + 1);
    if (!in || !out) {
      fftwf_free(in);
      fftwf_free(out);
      throw std::bad_alloc();
    }
  }
  ~FftBuffers() {
    fftwf_free(in);
    fftwf_free(out);
  }
  FftBuffers(const FftBuffers&) = delete;
  FftBuffers& operator=(const FftBuffers&) = delete;
};

// Natural log of n positive normal floats (each >= FLT_MIN), written without
// branches or table look-ups so the loop vectorises: x = 2^e * m with m in
// [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s) = 2 (s + s^3/3 + ... + s^9/9),
// s = (m - 1) / (m + 1), |s| <= 0.1716 (truncation error < 1e-9). Accurate to
// a few float ulps (checked against std::log in tests/frontend_test.cpp).
void log_normal_floats(const float* x, float* out, int n) {
  for (int i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &x[i], sizeof(bits));
    const uint32_t mant = (bits & 0x7fffffu) | 0x3f800000u;  // m in [1, 2)
    const uint32_t big = mant > 0x3fb504f3u ? 1u : 0u;     // m > sqrt(2): halve m, bump e
    const int32_t e = int32_t((bits >> 23) & 0xffu) - 127 + int32_t(big);
    const uint32_t mbits = mant - (big << 23);
    float m;
    std::memcpy(&m, &mbits, sizeof(m));
    const float s = (m - 1.0f) / (m + 1.0f);
    const float s2 = s * s;
    const float p = 1.0f + s2 * (1.0f / 3 + s2 * (1.0f / 5 + s2 * (1.0f / 7 + s2 * (1.0f / 9))));
    out[i] = float(e) * 0.693147180559945f + 2.0f * s * p;
  }
}

// out[b] = |spec[b]| for n interleaved complex values. re^2 + im^2 is formed
// in float32 for speed; where it could have underflowed (|X| < ~1e-15, e.g. a
// very quiet frame) or overflowed, the bin is redone exactly with hypot, as
// TF's complex abs does, so tiny magnitudes are not flushed to zero.
void magnitudes(const float* spec, float* out, int n) {
  constexpr float kLow = 1e-30f, kHigh = 1e30f;
  int b = 0;
  bool redo = false;
#if defined(__SSE2__)
  __m128 lo = _mm_set1_ps(kHigh), hi = _mm_setzero_ps();
  for (; b + 4 <= n; b += 4) {
    const __m128 a = _mm_loadu_ps(spec + 2 * b);      // re0 im0 re1 im1
    const __m128 c = _mm_loadu_ps(spec + 2 * b + 4);  // re2 im2 re3 im3
    const __m128 re = _mm_shuffle_ps(a, c, _MM_SHUFFLE(2, 0, 2, 0));
    const __m128 im = _mm_shuffle_ps(a, c, _MM_SHUFFLE(3, 1, 3, 1));
    const __m128 sq = _mm_add_ps(_mm_mul_ps(re, re), _mm_mul_ps(im, im));
    lo = _mm_min_ps(lo, sq);
    hi = _mm_max_ps(hi, sq);
    _mm_storeu_ps(out + b, _mm_sqrt_ps(sq));
  }
  alignas(16) float lo4[4], hi4[4];
  _mm_store_ps(lo4, lo);
  _mm_store_ps(hi4, hi);
  for (int i = 0; i < 4; ++i) redo |= !(lo4[i] >= kLow) || !(hi4[i] <= kHigh);
#endif
  for (; b < n; ++b) {
    const float re = spec[2 * b], im = spec[2 * b + 1];
    const float sq = re * re + im * im;
    redo |= !(sq >= kLow) || !(sq <= kHigh);
    out[b] = std::sqrt(sq);
  }
  if (redo)
    for (b = 0; b < n; ++b) {
      const float re = spec[2 * b], im = spec[2 * b + 1];
      const float sq = re * re + im * im;
      if (!(sq >= kLow && sq <= kHigh) && (re != 0.0f || im != 0.0f))
        out[b] = float(std::hypot(double(re), double(im)));
    }
}

// HTK mel scale in float32, as tf.signal's _hertz_to_mel: 1127 * ln(1 + f/700)
// with every operation rounded to float32. The logarithm is evaluated in double
// and rounded once, so it is the correctly rounded float32 value on every
// platform (TF's own float32 log may differ by an ulp; the reference script
// tools/fixtures/logmel_ref.py does the same, so both agree bit for bit).
float hz_to_mel_f(float hz) {
  const float q = 1.0f + hz / 700.0f;
  const float l = float(std::log(double(q)));
  return 1127.0f * l;
}

// tf.linspace in float32: start + delta * i, last element exactly `stop`.
std::vector<float> linspace_f(float start, float stop, int num) {
  std::vector<float> v(size_t(std::max(num, 0)));
  if (num <= 0) return v;
  if (num == 1) {
    v[0] = start;
    return v;
  }
  const float delta = (stop - start) / float(num - 1);
  for (int i = 0; i < num - 1; ++i) {
    volatile float prod = delta * float(i);  // no fused multiply-add: match TF rounding
    v[size_t(i)] = start + prod;
  }
  v[size_t(num - 1)] = stop;
  return v;
}

template <typename T>
void check_range(const char* field, T value, T lo, T hi) {
  if (!(value >= lo && value <= hi)) {
    std::ostringstream os;
    os << "frontend: LogMelConfig." << field << " = " << value << " is outside [" << lo << ", " << hi << "]";
    throw ConfigError(os.str());
  }
}

}  // namespace

std::mutex& fftw_planner_mutex() {
  static std::mutex m;
  return m;
}

// ---------------------------------------------------------------------------
// Config

void LogMelConfig::validate() const {
  if (kind != "mel" && kind != "logfreq")
    throw ConfigError("frontend: LogMelConfig.kind = \"" + kind + "\" is not \"mel\" or \"logfreq\"");
  check_range("sample_rate_hz", sample_rate_hz, 1000, 384000);
  check_range("n_fft", n_fft, 16, 65536);
  check_range("hop_length", hop_length, 1, n_fft);
  check_range("n_mels", n_mels, 1, 4096);
  check_range("f_max_hz", f_max_hz, 1.0, sample_rate_hz / 2.0);
  if (!std::isfinite(f_min_hz) || f_min_hz < 0.0 || f_min_hz >= f_max_hz) {
    std::ostringstream os;
    os << "frontend: LogMelConfig.f_min_hz = " << f_min_hz << " is outside [0, f_max_hz=" << f_max_hz << ")";
    throw ConfigError(os.str());
  }
  if (!std::isfinite(log_floor) || !(log_floor > 0.0) || log_floor > 1.0) {
    std::ostringstream os;
    os << "frontend: LogMelConfig.log_floor = " << log_floor << " is outside (0, 1]";
    throw ConfigError(os.str());
  }
  check_range("segment_frames", segment_frames, 1, 65536);
  if (is_logfreq()) {
    check_range("min_midi", min_midi, -48.0, 160.0);
    check_range("bins_per_semitone", bins_per_semitone, 1, 48);
    check_range("n_bins", n_bins, 1, 4096);
  }
}

nlohmann::json LogMelConfig::to_json() const {
  if (is_logfreq())
    return nlohmann::json{{"kind", kind},
                          {"sample_rate_hz", sample_rate_hz},
                          {"n_fft", n_fft},
                          {"hop_length", hop_length},
                          {"segment_frames", segment_frames},
                          {"min_midi", min_midi},
                          {"bins_per_semitone", bins_per_semitone},
                          {"n_bins", n_bins},
                          {"log_floor", log_floor}};
  return nlohmann::json{{"sample_rate_hz", sample_rate_hz}, {"n_fft", n_fft},
                        {"hop_length", hop_length},         {"n_mels", n_mels},
                        {"f_min_hz", f_min_hz},             {"f_max_hz", f_max_hz},
                        {"log_floor", log_floor},           {"segment_frames", segment_frames}};
}

LogMelConfig LogMelConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw ConfigError("frontend: LogMelConfig JSON must be an object");
  LogMelConfig c;  // missing keys keep their defaults; unknown keys are ignored
  const std::string where = "frontend: LogMelConfig.";
  json_fields::read_string(j, "kind", where, c.kind);
  json_fields::read_int(j, "sample_rate_hz", where, c.sample_rate_hz);
  json_fields::read_int(j, "n_fft", where, c.n_fft);
  json_fields::read_int(j, "hop_length", where, c.hop_length);
  json_fields::read_int(j, "n_mels", where, c.n_mels);
  json_fields::read_number(j, "f_min_hz", where, c.f_min_hz);
  json_fields::read_number(j, "f_max_hz", where, c.f_max_hz);
  json_fields::read_number(j, "log_floor", where, c.log_floor);
  json_fields::read_int(j, "segment_frames", where, c.segment_frames);
  json_fields::read_number(j, "min_midi", where, c.min_midi);
  json_fields::read_int(j, "bins_per_semitone", where, c.bins_per_semitone);
  json_fields::read_int(j, "n_bins", where, c.n_bins);
  c.validate();
  return c;
}

// ---------------------------------------------------------------------------
// LogMel

struct LogMel::Impl {
  int n_fft = 0;
  int n_bins = 0;
  fftwf_plan plan = nullptr;
  std::vector<float> window;  // periodic Hann, n_fft
  // Sparse mel matrix: band j uses bins [band_lo[j], band_lo[j] + band_len[j])
  // with weights band_w[band_off[j] ...].
  std::vector<int> band_lo, band_len, band_off;
  std::vector<float> band_w;
  float log_floor_ln = 0.0f;
  bool logfreq = false;
  float log_floor = 0.0f;  // logfreq: ln(max(v, log_floor))

  // Features of `chunk_len` samples whose first `n_avail` are `x` (zeros after),
  // pad_end framing: ceil(chunk_len / hop) frames written to `out` rows.
  void compute_rows(const float* x, size_t n_avail, size_t chunk_len, int hop, int n_mels, float log_floor,
                    float* out) const;
};

namespace {

// hconv.logfreq_matrix_np: [n_fft/2+1, n_bins], triangle per bin between its
// neighbours' centre frequencies (each side at least one FFT bin wide), bins at
// or above Nyquist zero, columns normalised to sum 1; float64, cast to float32.
std::vector<float> logfreq_matrix(const LogMelConfig& c) {
  const int n_fft_bins = c.n_fft / 2 + 1, n = c.n_bins, bps = c.bins_per_semitone;
  const double sr = c.sample_rate_hz, df = sr / double(c.n_fft);
  auto midi_hz = [](double m) { return 440.0 * std::pow(2.0, (m - 69.0) / 12.0); };
  std::vector<double> w(size_t(n_fft_bins) * size_t(n), 0.0);
  for (int b = 0; b < n; ++b) {
    const double bd = double(b);
    const double fc = midi_hz(c.min_midi + bd / bps);
    const double lo = midi_hz(c.min_midi + (bd - 1.0) / bps);
    const double hi = midi_hz(c.min_midi + (bd + 1.0) / bps);
    if (fc >= sr / 2.0) continue;
    const double lw = std::max(fc - lo, df), uw = std::max(hi - fc, df);
    for (int k = 0; k < n_fft_bins; ++k) {
      const double fk = double(k) * df;
      const double up = (fk - (fc - lw)) / lw;
      const double down = ((fc + uw) - fk) / uw;
      w[size_t(k) * size_t(n) + size_t(b)] = std::max(0.0, std::min(up, down));
    }
  }
  std::vector<float> out(w.size(), 0.0f);
  for (int b = 0; b < n; ++b) {
    double sum = 0.0;
    for (int k = 0; k < n_fft_bins; ++k) sum += w[size_t(k) * size_t(n) + size_t(b)];
    if (!(sum > 0.0)) continue;
    for (int k = 0; k < n_fft_bins; ++k)
      out[size_t(k) * size_t(n) + size_t(b)] = float(w[size_t(k) * size_t(n) + size_t(b)] / sum);
  }
  return out;
}

}  // namespace

LogMel::LogMel(const LogMelConfig& cfg) : cfg_(cfg), impl_(std::make_unique<Impl>()) {
  cfg_.validate();
  Impl& im = *impl_;
  im.n_fft = cfg_.n_fft;
  im.n_bins = cfg_.n_fft / 2 + 1;
  im.plan = r2c_plan(cfg_.n_fft);

  // Periodic Hann (tf.signal.hann_window(periodic=True)).
  im.window.resize(size_t(cfg_.n_fft));
  for (int n = 0; n < cfg_.n_fft; ++n)
    im.window[size_t(n)] = float(0.5 - 0.5 * std::cos(2.0 * M_PI * double(n) / double(cfg_.n_fft)));

  const int n_bins = im.n_bins, n_mels = cfg_.n_features();
  im.logfreq = cfg_.is_logfreq();
  im.log_floor = float(cfg_.log_floor);
  if (im.logfreq) {
    mel_ = logfreq_matrix(cfg_);
  } else {
  // Mel matrix as tf.signal.linear_to_mel_weight_matrix, in float32.
  mel_.assign(size_t(n_bins) * size_t(n_mels), 0.0f);
  const std::vector<float> lin_hz = linspace_f(0.0f, float(cfg_.sample_rate_hz) / 2.0f, n_bins);
  const std::vector<float> edges =
      linspace_f(hz_to_mel_f(float(cfg_.f_min_hz)), hz_to_mel_f(float(cfg_.f_max_hz)), n_mels + 2);
  for (size_t i = 0; i + 1 < edges.size(); ++i)
    if (!(edges[i + 1] > edges[i]))
      throw ConfigError("frontend: LogMelConfig n_mels = " + std::to_string(n_mels) + " is too many for " +
                        std::to_string(cfg_.f_min_hz) + " to " + std::to_string(cfg_.f_max_hz) +
                        " Hz: mel band edges collapse in float32");
  std::vector<float> bin_mel(static_cast<size_t>(n_bins));
  for (int b = 0; b < n_bins; ++b) bin_mel[size_t(b)] = hz_to_mel_f(lin_hz[size_t(b)]);
  for (int b = 1; b < n_bins; ++b) {  // b = 0 (DC) stays zero (HTK)
    const float m = bin_mel[size_t(b)];
    for (int j = 0; j < n_mels; ++j) {
      const float lo = edges[size_t(j)], c = edges[size_t(j) + 1], hi = edges[size_t(j) + 2];
      const float lower = (m - lo) / (c - lo);
      const float upper = (hi - m) / (hi - c);
      const float w = std::max(0.0f, std::min(lower, upper));
      mel_[size_t(b) * size_t(n_mels) + size_t(j)] = w;
    }
  }
  }  // mel
  im.band_lo.assign(size_t(n_mels), 0);
  im.band_len.assign(size_t(n_mels), 0);
  im.band_off.assign(size_t(n_mels), 0);
  for (int j = 0; j < n_mels; ++j) {
    int first = -1, last = -1;
    for (int b = 0; b < n_bins; ++b) {
      if (mel_[size_t(b) * size_t(n_mels) + size_t(j)] != 0.0f) {
        if (first < 0) first = b;
        last = b;
      }
    }
    im.band_off[size_t(j)] = int(im.band_w.size());
    if (first < 0) continue;  // an all-zero filter (narrower than a bin)
    im.band_lo[size_t(j)] = first;
    im.band_len[size_t(j)] = last - first + 1;
    for (int b = first; b <= last; ++b) im.band_w.push_back(mel_[size_t(b) * size_t(n_mels) + size_t(j)]);
  }
  im.log_floor_ln = std::log(float(cfg_.log_floor));
}

LogMel::~LogMel() = default;

void LogMel::Impl::compute_rows(const float* x, size_t n_avail, size_t chunk_len, int hop, int n_mels,
                                float log_floor, float* out) const {
  if (chunk_len == 0) return;
  n_avail = std::min(n_avail, chunk_len);
  const size_t n_frames = (chunk_len + size_t(hop) - 1) / size_t(hop);
  FftBuffers buf(n_fft);
  std::vector<float> mag(static_cast<size_t>(n_bins));
  std::vector<float> melv(static_cast<size_t>(n_mels)), clamped(static_cast<size_t>(n_mels));
  const float* win = window.data();
  const float* w = band_w.data();
  for (size_t f = 0; f < n_frames; ++f) {
    const size_t start = f * size_t(hop);
    // Samples of this frame that exist (the rest, past the chunk's data, are zero).
    const size_t avail = start < n_avail ? std::min(size_t(n_fft), n_avail - start) : 0;
    const float* src = x + start;
    for (size_t i = 0; i < avail; ++i) buf.in[i] = src[i] * win[i];
    std::fill(buf.in + avail, buf.in + n_fft, 0.0f);
    fftwf_execute_dft_r2c(plan, buf.in, buf.out);
    float* mg = mag.data();
    magnitudes(reinterpret_cast<const float*>(buf.out), mg, n_bins);
    float* mv = melv.data();
    for (int j = 0; j < n_mels; ++j) {
      const int len = band_len[size_t(j)];
      const float* m = mg + band_lo[size_t(j)];
      const float* wj = w + band_off[size_t(j)];
      float acc = 0.0f;
      for (int k = 0; k < len; ++k) acc += m[k] * wj[k];
      mv[j] = acc;
    }
    // safe_log: values <= 0 -> log_floor (= ln 1e-5), else ln. Values outside
    // the normal range (0, subnormal, Inf, NaN from NaN input) are rare and
    // take the exact path (NaN stays NaN as in TF's safe_log).
    int special = 0;
    float* row = out + f * size_t(n_mels);
    if (logfreq) {
      // ln(max(v, log_floor)) as torch.clamp + log (NaN stays NaN, +Inf stays +Inf).
      const float fl = this->log_floor;
      for (int j = 0; j < n_mels; ++j) {
        const float v = mv[j] >= fl ? mv[j] : fl;  // NaN compares false: handled below
        const bool normal = v <= FLT_MAX && mv[j] == mv[j];
        special += normal ? 0 : 1;
        clamped[size_t(j)] = normal ? v : 1.0f;
      }
      log_normal_floats(clamped.data(), row, n_mels);
      if (special)
        for (int j = 0; j < n_mels; ++j)
          if (!(mv[j] == mv[j]) || mv[j] > FLT_MAX) row[j] = std::log(mv[j]);
      continue;
    }
    for (int j = 0; j < n_mels; ++j) {
      const bool normal = mv[j] >= FLT_MIN && mv[j] <= FLT_MAX;
      special += normal ? 0 : 1;
      clamped[size_t(j)] = normal ? mv[j] : 1.0f;
    }
    log_normal_floats(clamped.data(), row, n_mels);
    if (special)
      for (int j = 0; j < n_mels; ++j)
        if (!(mv[j] >= FLT_MIN && mv[j] <= FLT_MAX)) row[j] = mv[j] <= 0.0f ? log_floor : std::log(mv[j]);
  }
}

std::vector<float> LogMel::compute(const float* samples, size_t n, int* n_frames_out) const {
  const size_t hop = size_t(cfg_.hop_length);
  const size_t n_frames = (n + hop - 1) / hop;
  std::vector<float> out(n_frames * size_t(cfg_.n_features()));
  impl_->compute_rows(samples, n, n, cfg_.hop_length, cfg_.n_features(), impl_->log_floor_ln, out.data());
  if (n_frames_out) *n_frames_out = int(n_frames);
  return out;
}

int LogMel::num_segments(size_t n_samples) const {
  const size_t hop = size_t(cfg_.hop_length);
  const size_t padded = n_samples + (hop - n_samples % hop);  // §1.3.1: always adds 1..hop zeros
  const size_t seg = size_t(cfg_.segment_samples());
  return int((padded + seg - 1) / seg);
}

MelSegment LogMel::segment(const float* samples, size_t n, int k) const {
  const int count = num_segments(n);
  if (k < 0 || k >= count)
    throw ConfigError("frontend: segment index " + std::to_string(k) + " is outside [0, " + std::to_string(count) + ")");
  const size_t seg = size_t(cfg_.segment_samples());
  const size_t begin = size_t(k) * seg;  // <= n: segment k exists iff n >= k * seg
  return segment_from_chunk(samples + begin, std::min(seg, n - begin), k);
}

MelSegment LogMel::segment_from_chunk(const float* chunk, size_t n_chunk, int k) const {
  const size_t hop = size_t(cfg_.hop_length);
  const size_t seg = size_t(cfg_.segment_samples());
  if (k < 0 || n_chunk > seg)
    throw ConfigError("frontend: segment_from_chunk: segment " + std::to_string(k) + " with " +
                      std::to_string(n_chunk) + " samples (at most " + std::to_string(seg) + ")");
  // §1.3.1: the signal is padded with 1..hop zeros to a multiple of hop; a full
  // chunk is cut at the segment's end, a short one (the signal's end) keeps its padding.
  // logfreq (hconv.LogFreq per segment): every frame of the segment, from its
  // samples zero-padded to the full segment.
  const size_t chunk_len = n_chunk == seg || cfg_.is_logfreq() ? seg : n_chunk + (hop - n_chunk % hop);
  const int depth = cfg_.n_features();

  MelSegment s;
  s.n_frames = int(chunk_len / hop);  // chunk_len is a multiple of hop
  s.n_samples = n_chunk;
  s.data.assign(size_t(cfg_.segment_frames) * size_t(depth), 0.0f);  // padding rows are 0.0 (§1.3.4)
  impl_->compute_rows(chunk, n_chunk, chunk_len, cfg_.hop_length, depth, impl_->log_floor_ln, s.data.data());
  const double first_frame = double(k) * double(cfg_.segment_frames);
  s.start_exact_s = first_frame / cfg_.frames_per_second();
  // §1.3.5: the colab's float64 `t - t % 0.01` (lands 10 ms early when t is an exact multiple).
  double t = first_frame / cfg_.frames_per_second();
  t -= std::fmod(t, 0.01);
  s.start_s = t;
  return s;
}

std::vector<MelSegment> LogMel::segments(const std::vector<float>& samples) const {
  const int count = num_segments(samples.size());
  std::vector<MelSegment> out;
  out.reserve(size_t(count));
  for (int k = 0; k < count; ++k) out.push_back(segment(samples.data(), samples.size(), k));
  return out;
}

}  // namespace tunescribe
