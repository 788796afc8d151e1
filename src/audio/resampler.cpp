// resampler.cpp — polyphase windowed-sinc sample-rate conversion (resampler.h).
#include "tunescribe/resampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "tunescribe/errors.h"

namespace tunescribe {

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kStopbandDb = 100.0;
constexpr double kPassband = 0.95;  // passband edge, fraction of the lower Nyquist

// Modified Bessel function of the first kind, order 0 (power series; converges for the
// Kaiser window's arguments, at most ~11 here).
double bessel_i0(double x) {
  double sum = 1.0, term = 1.0;
  const double q = x * x / 4.0;
  for (int k = 1; k < 200; ++k) {
    term *= q / (double(k) * double(k));
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

// Dot product of k floats (k a multiple of 32), built for the widest vector unit present; 32
// partial sums so that the additions do not wait on each other.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
float dot(const float* a, const float* b, int k) {
  float acc[32] = {};
  for (int i = 0; i < k; i += 32)
    for (int j = 0; j < 32; ++j) acc[j] += a[i + j] * b[i + j];
  for (int w = 16; w >= 1; w /= 2)
    for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
  return acc[0];
}

}  // namespace

bool PolyphaseResampler::supports(int from_hz, int to_hz) {
  if (from_hz <= 0 || to_hz <= 0) return false;
  return to_hz / std::gcd(from_hz, to_hz) <= kMaxPhases;
}

PolyphaseResampler::PolyphaseResampler(int from_hz, int to_hz) {
  if (!supports(from_hz, to_hz))
    throw ConfigError("resampler: " + std::to_string(from_hz) + " Hz to " + std::to_string(to_hz) +
                      " Hz needs more than " + std::to_string(kMaxPhases) + " filter phases");
  const int g = std::gcd(from_hz, to_hz);
  L_ = to_hz / g;
  M_ = from_hz / g;
  // Frequencies in cycles per input sample.
  const double nyq = 0.5 * std::min(1.0, double(L_) / double(M_));
  const double transition = (1.0 - kPassband) * nyq;
  const double fc = nyq - transition / 2.0;
  const double beta = 0.1102 * (kStopbandDb - 8.7);
  const int k_min = int(std::ceil((kStopbandDb - 7.95) / (2.285 * 2.0 * kPi * transition)));
  K_ = (k_min + 31) / 32 * 32;
  const double half = double(K_) / 2.0;
  const double i0_beta = bessel_i0(beta);
  table_.resize(size_t(L_) * size_t(K_));
  for (int p = 0; p < L_; ++p) {
    double sum = 0.0;
    std::vector<double> taps(static_cast<size_t>(K_), 0.0);
    for (int m = 0; m < K_; ++m) {
      const double t = double(p) / double(L_) + half - 1.0 - double(m);  // output time - input index
      const double x = 2.0 * fc * t;
      const double sinc = std::abs(x) < 1e-12 ? 1.0 : std::sin(kPi * x) / (kPi * x);
      const double r = t / half;
      const double w = std::abs(r) >= 1.0 ? 0.0 : bessel_i0(beta * std::sqrt(1.0 - r * r)) / i0_beta;
      taps[size_t(m)] = 2.0 * fc * sinc * w;
      sum += taps[size_t(m)];
    }
    for (int m = 0; m < K_; ++m) table_[size_t(p) * size_t(K_) + size_t(m)] = float(taps[size_t(m)] / sum);
  }
  // Silence before the start: inputs -K/2 .. -1.
  buf_.assign(size_t(K_ / 2), 0.0f);
  buf_start_ = -int64_t(K_ / 2);
}

void PolyphaseResampler::process(const float* in, size_t n, bool last, std::vector<float>* out) {
  if (ended_) return;
  buf_.insert(buf_.end(), in, in + n);
  n_in_ += int64_t(n);
  if (last) {
    buf_.insert(buf_.end(), size_t(K_ / 2), 0.0f);  // silence after the end
    ended_ = true;
  }
  const int64_t half = K_ / 2;
  for (;;) {
    const int64_t num = next_out_ * M_;
    const int64_t i0 = num / L_;
    if (ended_ ? i0 >= n_in_ : i0 + half >= n_in_) break;
    const int p = int(num % L_);
    const float* x = buf_.data() + (i0 - half + 1 - buf_start_);
    out->push_back(dot(table_.data() + size_t(p) * size_t(K_), x, K_));
    ++next_out_;
  }
  // Drop the inputs no later output reads.
  const int64_t keep_from = (next_out_ * M_) / L_ - half + 1;
  if (keep_from - buf_start_ > (int64_t(1) << 16)) {
    buf_.erase(buf_.begin(), buf_.begin() + (keep_from - buf_start_));
    buf_start_ = keep_from;
  }
}

}  // namespace tunescribe
