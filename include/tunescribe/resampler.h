// resampler.h — tunescribe's band-limited sample-rate converter (polyphase windowed sinc).
//
// What it does: converts mono float audio between two integer rates whose ratio reduces to L/M
// with at most kMaxPhases phases (L), streaming: blocks in, every output that the input so far
// determines out. Output sample n is the band-limited signal at input time n·M/L exactly (no
// delay: the filter is centred, the audio before the start and after the end is silence).
// The filter is a Kaiser-windowed sinc: passband to 95 % of the lower rate's Nyquist (16 kHz
// output: 7.6 kHz, the top of the MT3 log-mel), stopband from that Nyquist on, 100 dB stopband
// attenuation; each phase sums to 1 (DC gain exact). 44.1 → 16 kHz: 160 phases × 736 taps.
// Measured against libsamplerate's SINC_BEST: docs/performance.md ("Resampler").
// What it does not: arbitrary ratios (a rate pair like 44 056 → 16 000 Hz needs 2 000 phases:
// use libsamplerate, as audio.cpp does), several channels, or rate changes mid-stream.
// Thread-safety: one object per stream; distinct objects are independent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tunescribe {

class PolyphaseResampler {
 public:
  static constexpr int kMaxPhases = 1024;
  // Whether the ratio reduces to at most kMaxPhases phases (and both rates are positive).
  static bool supports(int from_hz, int to_hz);
  // Throws ConfigError when !supports(from_hz, to_hz).
  PolyphaseResampler(int from_hz, int to_hz);

  // Feeds n more input samples; appends to `out` every output sample they complete. With
  // last = true the input ends there: the outputs up to the end of the input (n·M/L < input
  // length) are appended and later calls add nothing.
  void process(const float* in, size_t n, bool last, std::vector<float>* out);

  int phases() const { return L_; }
  int taps() const { return K_; }

 private:
  int L_ = 1, M_ = 1, K_ = 2;     // phases, input step per L outputs, taps per phase (even)
  std::vector<float> table_;      // [L][K]: taps of phase p, for inputs i0-K/2+1 .. i0+K/2
  std::vector<float> buf_;        // input samples from index buf_start_ on (zeros before 0)
  int64_t buf_start_ = 0;         // input index of buf_[0]
  int64_t n_in_ = 0;              // input samples received
  int64_t next_out_ = 0;          // index of the next output sample
  bool ended_ = false;
};

}  // namespace tunescribe
