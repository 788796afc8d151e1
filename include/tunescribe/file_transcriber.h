// file_transcriber.h — one input file to the output formats, as `tunescribe transcribe` does it.
// What it does: reads a MIDI file or transcribes an audio file (streamed, one Transcriber per batch
// worker, created on its first audio input), sorts the notes and renders every requested output
// (MIDI bytes, ABC text, JSON note list, CSV note events, mir_eval .txt) for the Batch to write, from one music analysis per file
// (for audio its tempo, meter and key also go into the MIDI meta events and the JSON fields; a
// MIDI input's .mid and .json carry only what was read); fits model threads to the workers.
// What it does not: choose or write files (batch.h), parse flags or print.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tunescribe/abc_writer.h"
#include "tunescribe/batch.h"
#include "tunescribe/transcriber.h"
#include "tunescribe/view_outputs.h"

namespace tunescribe {

struct FileTranscriberConfig {
  FileTranscriberConfig() { abc.title.clear(); }
  TranscriberConfig transcriber;      // model, threads per worker, batch size, decoder settings
  std::string resample = "auto";      // auto (the model's choice) | best | medium | fast
  AbcWriterConfig abc;                // abc.title "" (the default here) = from the input file name
  bool apply_sustain = true;          // MIDI inputs: extend notes by the sustain pedal (CC64)
  // Audio inputs: called on the worker's thread once before the transcription (done_s = 0) and after
  // every segment batch: seconds of audio done and the input's length (the header's until the end).
  // Empty = none. It may throw to abandon the input.
  std::function<void(const std::string& input, double done_s, double total_s)> on_progress;
  std::string formats = "abc,mid,json";  // comma-separated: abc, mid, json, csv (note events), txt (mir_eval),
                                         // svg, roll, wav (view_outputs.h)
  ViewOutputConfig views;             // svg / roll / wav settings (--soundfont)
  // The formats in order, without repeats (BatchConfig::output_exts); ConfigError naming --format.
  std::vector<std::string> format_list() const;
  // Throws ConfigError: the decoder settings, then the formats, then the ABC values.
  void validate() const;
};

// Audio (audio.h) or MIDI (midi.h) by extension; also audio libsndfile cannot decode (.m4a …), which
// then fails with how to convert it.
bool is_transcribable_path(const std::string& path);
// True when --format takes `format` ("mid", "csv" …).
bool is_transcribe_format(const std::string& format);

class FileTranscriber {
 public:
  // One Transcriber slot per batch worker. When audio is among the jobs and workers x threads
  // exceeds the hardware threads, the model threads are lowered (with a warning).
  FileTranscriber(const FileTranscriberConfig& cfg, const Batch& batch);
  ~FileTranscriber();
  int model_threads() const { return cfg_.transcriber.n_threads; }
  // The job of a Batch: outputs in the order of cfg.format_list(); details {notes, duration_s}; the ABC
  // tune's meter/key/tempo/bars in the record. Throws BatchStopped when the batch stops during a
  // transcription, NotAvailableError when the model cannot use the decoder settings.
  JobResult run(const BatchJob& job, int worker);

 private:
  NoteSequence read(const std::string& input, int worker, double* duration_s);
  FileTranscriberConfig cfg_;
  std::vector<std::string> formats_;
  const Batch& batch_;
  std::vector<std::unique_ptr<Transcriber>> transcribers_;
};

}  // namespace tunescribe
