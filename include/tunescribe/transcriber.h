// transcriber.h — audio → notes with a model directory (the engine).
//
// What it does: loads a model directory (config.json + model.safetensors),
// builds the front end from the model's config, and turns decoded audio (a
// whole signal or an AudioStream read segment by segment) into a NoteSequence
// (segments → encoder → batched greedy decoding → codec).
// What it does not: read files of notes, write outputs, or choose exit codes.
// Thread-safety: one Transcriber per thread; weights are read-only after load.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tunescribe/audio.h"
#include "tunescribe/notes.h"

namespace tunescribe {

struct TranscriberConfig {
  std::string model_dir;    // empty = default_model_dir()
  int n_threads = 2;        // libtorch intra-op threads (set once per process)
  int batch_size = 8;       // segments decoded together
  int max_decode_steps = 1024;
  void validate() const;    // throws ConfigError
};

// Progress: segments done / total.
using ProgressFn = std::function<void(int done, int total)>;

// Where transcribe() spends its time (benchmarks): wall seconds and process
// CPU seconds (all threads) per stage, accumulated over calls. Stages: front
// end (log-mel of every segment), encoder, greedy decoding, codec stitching.
struct TranscribeProfile {
  double frontend_s = 0, encoder_s = 0, decoder_s = 0, codec_s = 0;
  double frontend_cpu_s = 0, encoder_cpu_s = 0, decoder_cpu_s = 0, codec_cpu_s = 0;
  int64_t segments = 0;  // segments transcribed
  int64_t tokens = 0;    // decoded tokens (EOS included)
};

class Transcriber {
 public:
  explicit Transcriber(const TranscriberConfig& cfg);  // throws ModelError/ConfigError
  ~Transcriber();
  Transcriber(const Transcriber&) = delete;
  Transcriber& operator=(const Transcriber&) = delete;

  int sample_rate_hz() const;
  std::string model_name() const;   // from config.json
  NoteSequence transcribe(const Audio& audio, const ProgressFn& progress = {});
  // The same from a stream (its rate must be sample_rate_hz()): samples are
  // pulled one segment at a time, so memory does not grow with the length of
  // the recording. The notes are identical to transcribe(load_audio(...)).
  // Transcribes what is left of the stream (times count from there). Progress
  // totals are estimated from the header's frame count until the stream ends. Errors in the audio data (AudioStream::read) surface here.
  NoteSequence transcribe(AudioStream& stream, const ProgressFn& progress = {});
  // Attach a profile that later transcribe() calls add to (nullptr detaches).
  void set_profile(TranscribeProfile* profile);
  // Diagnostics and tests: called for every segment, in time order, with its
  // index, start time (s), model input (segment_frames x n_mels log-mel values,
  // padding rows included) and decoded token ids. Empty function detaches.
  using SegmentObserver =
      std::function<void(int index, double start_s, const float* mel, size_t mel_size, const std::vector<int>& ids)>;
  void set_segment_observer(SegmentObserver observer);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The shipped default model: <exe dir>/../share/tunescribe/models/default,
// else <source dir>/models/default. Empty string when none is found.
std::string default_model_dir();

}  // namespace tunescribe
