// transcriber.h — audio → notes with a model directory (the engine).
//
// What it does: loads a model directory (config.json + model.safetensors),
// builds the front end from the model's config, and turns decoded audio into
// a NoteSequence (segments → encoder → batched greedy decoding → codec).
// What it does not: read files of notes, write outputs, or choose exit codes.
// Thread-safety: one Transcriber per thread; weights are read-only after load.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

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
  // Attach a profile that later transcribe() calls add to (nullptr detaches).
  void set_profile(TranscribeProfile* profile);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The shipped default model: <exe dir>/../share/tunescribe/models/default,
// else <source dir>/models/default. Empty string when none is found.
std::string default_model_dir();

}  // namespace tunescribe
