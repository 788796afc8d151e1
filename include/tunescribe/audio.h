// audio.h — decode audio files to mono float samples at the model rate.
//
// What it does: reads every format the linked libsndfile decodes (WAV 16/24/32-bit
// int and float, FLAC, OGG/Vorbis, AIFF; Ogg/Opus and MP3 with libsndfile >= 1.1 built
// with them — audio_formats.h asks libsndfile at run time) in blocks, averages channels to mono and resamples with
// a band-limited resampler (tunescribe's polyphase filter, resampler.h, by default; libsamplerate on request)
// to `target_rate_hz`. AudioStream hands the result out in chunks with memory
// of O(block_frames x channels), independent of the file's length;
// load_audio reads a whole AudioStream into one vector (same samples), so its
// memory stays near the size of the output signal (10 min of 44.1 kHz
// stereo: +39 MiB peak for a 36.6 MiB result).
// SINC_BEST passes 7.4 kHz at 0.0 dB and 7.6 kHz at -0.3 dB (the top mel band
// ends at 7.6 kHz; SINC_MEDIUM loses 8 dB at 7.4 kHz) but costs ~25x real time
// per core at 44.1 kHz; SINC_MEDIUM is ~4x faster.
// Rejected (InputError): integer/float data the decoder reports as corrupt, a
// WAV/AIFF data chunk shorter than its header declares, any NaN/Inf sample.
// What it does not: normalise gain, trim silence or compute features.
// Errors: InputError naming the file and the cause (missing, not audio,
// truncated/corrupt, zero samples, NaN/Inf samples, absurd sample rate).
// Thread-safety: free functions, safe to call concurrently on different files;
// one AudioStream per thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace tunescribe {

constexpr int kResamplePolyphase = -1;  // AudioConfig::resample_quality: resampler.h

struct AudioConfig {
  int target_rate_hz = 16000;       // output sample rate, Hz
  int min_input_rate_hz = 1000;     // inputs below this are rejected, Hz
  int max_input_rate_hz = 768000;   // inputs above this are rejected, Hz
  int block_frames = 65536;         // frames read per block
  // Converter: kResamplePolyphase (-1) = tunescribe's polyphase windowed sinc (resampler.h:
  // passband to 95 % of Nyquist, 100 dB; ~20x faster than SINC_BEST at 44.1 kHz; a ratio it does
  // not take falls back to SINC_BEST); libsamplerate: 0 = SRC_SINC_BEST_QUALITY (passband to 96%
  // of Nyquist, covers the 7.6 kHz top mel band at 16 kHz), 1 = SINC_MEDIUM, 2 = SINC_FASTEST.
  // Non-band-limited converters are rejected.
  int resample_quality = kResamplePolyphase;
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

// A file decoded, downmixed and resampled incrementally: exactly the samples
// load_audio returns (load_audio is built on it), handed out by read() in
// chunks of any size. Holds one block of input (block_frames x channels, at
// most 4 MiB) and its resampled output, whatever the file's length.
// The constructor checks the file and header like load_audio (missing, not
// audio, absurd rate, zero frames, data chunk shorter than declared). Errors
// inside the data (corrupt block, NaN/Inf sample, fewer frames than the header
// declares) are thrown by read() when the decoder reaches them, so a caller may
// already have consumed earlier samples. All errors are InputError naming the
// file (ConfigError for a bad AudioConfig).
class AudioStream {
 public:
  explicit AudioStream(const std::string& path, const AudioConfig& cfg = {});
  ~AudioStream();
  AudioStream(AudioStream&&) noexcept;
  AudioStream& operator=(AudioStream&&) noexcept;
  AudioStream(const AudioStream&) = delete;
  AudioStream& operator=(const AudioStream&) = delete;

  // Copies up to max_samples mono samples at rate_hz() to out; returns how many
  // (fewer only at the end; 0 once the signal is exhausted).
  size_t read(float* out, size_t max_samples);
  int rate_hz() const;
  const std::string& path() const;
  // input_frames: the header's count until the end is reached, then the decoded count.
  const AudioInfo& info() const;
  // Output length implied by the header's frame count (what read() delivers in
  // total unless it throws); for progress estimates.
  long long expected_samples() const;
  long long samples_read() const;  // samples handed out so far
  bool at_end() const;             // true once every sample has been handed out
  double duration_s() const;       // samples_read() / rate_hz()

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Probe a file without decoding the samples (throws InputError).
AudioInfo probe_audio(const std::string& path);
// Decode, downmix, resample the whole file (throws InputError / ConfigError).
Audio load_audio(const std::string& path, const AudioConfig& cfg = {});
// Resample a mono signal (band-limited). Throws ConfigError on bad rates.
std::vector<float> resample(const std::vector<float>& in, int from_hz, int to_hz);
// Write mono float samples as a WAV (float or PCM16) file, atomically.
void write_wav(const std::string& path, const std::vector<float>& samples, int rate_hz, bool pcm16 = true);
// True when the file extension is one the linked libsndfile decodes (audio_formats.h: .wav .flac
// .ogg .opus .mp3 .aiff … as this build's libsndfile reports them).
bool is_audio_path(const std::string& path);

}  // namespace tunescribe
