// transcriber.h — audio → notes with a model directory (the engine).
//
// What it does: loads a model directory (config.json + model.safetensors),
// builds the front end from the model's config, and turns decoded audio (a
// whole signal or an AudioStream read segment by segment) into a NoteSequence.
// Two decoding paths: "tokens" (segments → encoder → batched greedy decoding →
// codec; every model) and "frames" (hconv models: segments → the harmonic conv
// front's dense heads → frames_decoder.h; no T5). The last segment's frames past
// the signal's end are not decoded.
// What it does not: read files of notes, write outputs, or choose exit codes.
// Thread-safety: one Transcriber per thread; weights are read-only after load.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tunescribe/audio.h"
#include "tunescribe/frames_decoder.h"
#include "tunescribe/notes.h"

namespace tunescribe {

struct TranscriberConfig {
  std::string model_dir;    // empty = default_model_dir()
  int n_threads = 2;        // libtorch intra-op threads (set once per process)
  // Segments decoded together; 0 = the decoding path's default: 16 for tokens (each decoding step
  // streams the whole decoder's weights, so more rows per step pay: MT3 30 s clip RTF 0.12 -> 0.08
  // from 8 to 16), 8 for frames (16 is slower there and doubles the memory). docs/performance.md.
  int batch_size = 0;
  int max_decode_steps = 1024;
  // "auto" (the model's decoding.default; "tokens" for models without dense heads),
  // "tokens" or "frames" (hconv models only: ConfigError otherwise).
  std::string decoder = "auto";
  // Frames decoder settings the caller set; the others come from the model's
  // "decoding" section (then FramesDecoderConfig's defaults).
  FramesDecoderOverrides frames;
  // T5 arithmetic: "fp32", "int8" (Model::quantize_int8: dynamic int8 matrices, faster token
  // decoding) or "auto" (the model's inference.precision, else fp32).
  std::string precision = "auto";
  // Token decoding: a tie declaration under a changed program continues the held note of that
  // pitch (NoteDecoder::set_merge_relabelled_ties). Off: the reference MT3 decoding.
  bool merge_relabelled_ties = false;
  void validate() const;    // throws ConfigError
};

// Progress: segments done / total.
using ProgressFn = std::function<void(int done, int total)>;

// Where transcribe() spends its time (benchmarks): wall seconds and process
// CPU seconds (all threads) per stage, accumulated over calls. Stages: front
// end (log-mel of every segment), encoder, greedy decoding, codec stitching.
// Frames path: encoder = the hconv front (dense heads), decoder = the frames
// decoder, codec = 0, tokens = 0.
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
  std::string decoder() const;      // the decoding path in use: "tokens" or "frames"
  int batch_size() const;           // segments per batch in use (batch_size 0 resolved)
  std::string precision() const;    // the T5 arithmetic in use: "fp32" or "int8"
  // The frames decoder's effective settings (model defaults + overrides).
  const FramesDecoderConfig& frames_config() const;
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
  // padding rows included) and decoded token ids (empty on the frames path).
  // Empty function detaches.
  using SegmentObserver =
      std::function<void(int index, double start_s, const float* mel, size_t mel_size, const std::vector<int>& ids)>;
  void set_segment_observer(SegmentObserver observer);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A shipped model: <exe dir>/../share/tunescribe/models/<name>, else
// <source dir>/models/<name>. Empty string when none is found. "default" is the
// transcription model.
std::string default_model_dir(const std::string& name = "default");
// The model `generate` uses without --model: models/generate (a token model
// trained for continuation without audio), else models/default.
std::string default_generate_model_dir();

}  // namespace tunescribe
