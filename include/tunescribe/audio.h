// audio.h — decode audio files to mono float samples at the model rate.
//
// What it does: reads WAV (16/24/32-bit int, float), FLAC, OGG/Vorbis, AIFF
// through libsndfile in blocks, averages channels to mono and resamples with
// a band-limited resampler (libsamplerate, SRC_SINC_BEST_QUALITY by default)
// to `target_rate_hz`. Memory stays near the size of the output signal.
// What it does not: normalise gain, trim silence or compute features.
// Errors: InputError naming the file and the cause (missing, not audio,
// truncated/corrupt, zero samples, NaN/Inf samples, absurd sample rate).
// Thread-safety: free functions, safe to call concurrently on different files.
#pragma once

#include <string>
#include <vector>

namespace tunescribe {

struct AudioConfig {
  int target_rate_hz = 16000;       // output sample rate, Hz
  int min_input_rate_hz = 1000;     // inputs below this are rejected, Hz
  int max_input_rate_hz = 768000;   // inputs above this are rejected, Hz
  int block_frames = 65536;         // frames read per block
  // libsamplerate converter: 0 = SRC_SINC_BEST_QUALITY (passband to 96% of
  // Nyquist, covers the 7.6 kHz top mel band at 16 kHz), 1 = SINC_MEDIUM,
  // 2 = SINC_FASTEST. Non-band-limited converters are rejected.
  int resample_quality = 0;
  void validate() const;            // throws ConfigError
};

struct AudioInfo {
  std::string path;
  int input_rate_hz = 0;
  int channels = 0;
  long long input_frames = 0;
  std::string format;  // e.g. "WAV (PCM_16)"
  double duration_s() const { return input_rate_hz > 0 ? double(input_frames) / input_rate_hz : 0.0; }
};

struct Audio {
  std::vector<float> samples;  // mono, in [-1, 1] nominal, at rate_hz
  int rate_hz = 16000;
  AudioInfo info;
  double duration_s() const { return rate_hz > 0 ? double(samples.size()) / rate_hz : 0.0; }
};

// Probe a file without decoding the samples (throws InputError).
AudioInfo probe_audio(const std::string& path);
// Decode, downmix, resample (throws InputError / ConfigError).
Audio load_audio(const std::string& path, const AudioConfig& cfg = {});
// Resample a mono signal (band-limited). Throws ConfigError on bad rates.
std::vector<float> resample(const std::vector<float>& in, int from_hz, int to_hz);
// Write mono float samples as a WAV (float or PCM16) file, atomically.
void write_wav(const std::string& path, const std::vector<float>& samples, int rate_hz, bool pcm16 = true);
// True when the file extension is one we decode as audio (.wav .flac .ogg .aif .aiff .oga).
bool is_audio_path(const std::string& path);

}  // namespace tunescribe
