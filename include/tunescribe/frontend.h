// frontend.h — the MT3 log-mel spectrogram and the hconv log-frequency spectrogram (FFTW).
//
// What it does: exactly the front end of ../shared/specs/mt3.md §1: periodic
// Hann window of n_fft samples, hop `hop_length`, no centering, end zero-padded,
// magnitude spectrum, HTK mel triangles in mel units (no area normalisation,
// DC row zero), natural log with values <= 0 replaced by log_floor. Audio is
// cut into segments of `segment_frames` frames and each segment's log-mel is
// computed on its own samples only (§1.3).
// kind "logfreq" (the hconv models, tools/train/tunescribe_train/hconv.py LogFreq): the same
// STFT, segmenting and streaming, but a triangular filterbank with
// bins_per_semitone bins per semitone from MIDI min_midi up (each side at least
// one FFT bin wide, columns normalised to sum 1, built in double and cast to
// float, hconv.logfreq_matrix_np) and ln(max(v, log_floor)); a segment's
// frames are all computed, the samples past the signal's end being zeros.
// What it does not: read files or resample (audio.h), run the model.
// Units: Hz, samples, frames (one frame = hop_length samples).
// Numerics: float32 like MT3 (fftwf r2c with an FFTW_ESTIMATE plan, so the
// output is bit-identical from run to run on one machine); the mel matrix is
// built in float32 exactly like tf.signal.linear_to_mel_weight_matrix (the
// float32 log there is the correctly rounded one); the final ln is a
// vectorised polynomial within 3 float ulps of std::log. Against a float64
// reference (tools/fixtures/logmel_ref.py) entries agree to < 1e-4 except
// bands that sit at float32 FFT rounding noise (~1e-6 x the frame's norm,
// e.g. the theoretically-zero bins of a DC-only frame), which no float32 FFT
// can reproduce; see tests/frontend_test.cpp for the error model.
// Speed: ~7 us of CPU per frame on one core (~1100x real time at 16 kHz).
// Thread-safety: a LogMel object is immutable after construction and may be
// shared; FFTW plan creation is guarded by fftw_planner_mutex(), plans are
// cached for the life of the process and executed on per-call buffers.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace tunescribe {

struct LogMelConfig {
  std::string kind = "mel";    // "mel" (MT3 log-mel) or "logfreq" (hconv log-frequency)
  int sample_rate_hz = 16000;
  int n_fft = 2048;            // window and FFT length, samples
  int hop_length = 128;        // samples
  int n_mels = 512;
  double f_min_hz = 20.0;
  double f_max_hz = 7600.0;
  double log_floor = 1e-5;     // values <= 0 are replaced by this before ln
  int segment_frames = 256;    // frames per model input segment (256 or 512)
  // kind "logfreq" only (ignored, and not written by to_json, for "mel"):
  double min_midi = 20.0;      // MIDI pitch of bin 0's centre
  int bins_per_semitone = 3;
  int n_bins = 300;            // filterbank columns (features per frame)

  bool is_logfreq() const { return kind == "logfreq"; }
  int n_features() const { return is_logfreq() ? n_bins : n_mels; }  // values per frame
  double frames_per_second() const { return double(sample_rate_hz) / hop_length; }
  int segment_samples() const { return segment_frames * hop_length; }
  void validate() const;  // throws ConfigError naming field, value and range
  nlohmann::json to_json() const;
  static LogMelConfig from_json(const nlohmann::json& j);  // missing keys keep defaults
};

// One model input: `n_frames` computed rows, padded with 0.0 rows to segment_frames
// (mel); logfreq segments have every row computed (n_frames = segment_frames).
struct MelSegment {
  std::vector<float> data;  // [segment_frames, n_features] row-major
  int n_frames = 0;         // computed frames (the rest are zero padding)
  size_t n_samples = 0;     // samples of the signal inside this segment (< segment_samples: the last one)
  double start_s = 0.0;     // segment start, rounded down to 10 ms (§1.3.5)
  double start_exact_s = 0.0;  // first frame time (frame index / frames_per_second)
};

// The FFTW planner is not thread-safe: any code in the process that creates or
// destroys FFTW plans must hold this mutex while doing so.
std::mutex& fftw_planner_mutex();

class LogMel {
 public:
  explicit LogMel(const LogMelConfig& cfg);
  ~LogMel();
  LogMel(const LogMel&) = delete;
  LogMel& operator=(const LogMel&) = delete;

  const LogMelConfig& config() const { return cfg_; }
  // Filterbank [n_fft/2+1, n_features] row-major (mel or log-frequency).
  const std::vector<float>& mel_matrix() const { return mel_; }

  // Features of a whole signal: ceil(N / hop) frames, [frames, n_features] row-major.
  std::vector<float> compute(const float* samples, size_t n, int* n_frames_out) const;

  // Number of segments for a signal of n samples (after the §1.3 end padding).
  int num_segments(size_t n_samples) const;
  // Segment k of a signal (§1.3): padded audio cut into segment_samples
  // chunks, log-mel per chunk, short last chunk zero-padded to full rows.
  MelSegment segment(const float* samples, size_t n, int k) const;
  // Segment k from its own samples only (streaming): `chunk` holds samples
  // [k * segment_samples, k * segment_samples + n_chunk) of the signal, with
  // n_chunk <= segment_samples; n_chunk < segment_samples means the signal ends
  // inside this segment (then it is the last one). Equal to segment(x, n, k)
  // for any signal x of n samples that has these samples there; segment k
  // exists iff n >= k * segment_samples, so after a full chunk there is always
  // another segment (possibly of n_chunk = 0: one zero frame).
  MelSegment segment_from_chunk(const float* chunk, size_t n_chunk, int k) const;
  // All segments.
  std::vector<MelSegment> segments(const std::vector<float>& samples) const;

 private:
  struct Impl;
  LogMelConfig cfg_;
  std::vector<float> mel_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tunescribe
