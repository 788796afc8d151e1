// transcriber.h — audio → notes with a model directory (the engine).
//
// What it does: loads a model directory (config.json + model.safetensors),
// builds the front end from the model's config, and turns decoded audio into
// a NoteSequence (segments → encoder → batched greedy decoding → codec).
// What it does not: read files of notes, write outputs, or choose exit codes.
// Thread-safety: one Transcriber per thread; weights are read-only after load.
#pragma once

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

class Transcriber {
 public:
  explicit Transcriber(const TranscriberConfig& cfg);  // throws ModelError/ConfigError
  ~Transcriber();
  Transcriber(const Transcriber&) = delete;
  Transcriber& operator=(const Transcriber&) = delete;

  int sample_rate_hz() const;
  std::string model_name() const;   // from config.json
  NoteSequence transcribe(const Audio& audio, const ProgressFn& progress = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The shipped default model: <exe dir>/../share/tunescribe/models/default,
// else <source dir>/models/default. Empty string when none is found.
std::string default_model_dir();

}  // namespace tunescribe
