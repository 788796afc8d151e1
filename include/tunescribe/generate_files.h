// generate_files.h — new pieces written as files, as `tunescribe generate` does it.
// What it does: checks the controls given as text (tempo, meter, key, instrument, polyphony) before
// any work, reads the prompt (its tempo/meter fill in what was not given), turns bars into seconds,
// names N pieces from their seeds, samples each (generator.h), transposes it into the requested key,
// keeps a forced instrument in its practical range and clef (instruments.h) and writes NAME.abc,
// NAME.mid and, with wav, NAME.wav (render.h); never over a file without force.
// What it does not: sample tokens (generator.h), parse flags or print.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "tunescribe/audio.h"
#include "tunescribe/generator.h"
#include "tunescribe/notes.h"

namespace tunescribe {

class Model;

struct GenerateFilesConfig {
  // Sampling, max_note_s, max_segment_tokens; seed, seconds, instrument and monophonic are set from
  // the fields below.
  GeneratorConfig generator;
  std::string out_dir = ".";
  std::string model_dir;        // "" = default_generate_model_dir()
  int threads = 2;              // libtorch threads (process-wide)
  double seconds = 30.0;        // length after the prompt
  bool seconds_given = false;   // false with from_audio: the whole recording
  int bars = 0;                 // > 0: length in bars of the meter at the tempo (default 4/4 at 120)
  long long seed = 0;           // >= 0; piece i uses seed + i
  int num = 1;                  // pieces
  std::string name;             // "" = generated-SEED; with num > 1, NAME-SEED
  std::string prompt;           // .abc, .mid/.midi, .json or .csv notes to continue
  std::string from_audio;       // a recording to condition on
  std::string tempo, meter, key, instrument;  // "" = free (tempo/meter: from the prompt if any)
  std::string polyphony = "poly";  // mono | poly
  bool wav = false;             // also render NAME.wav with FluidSynth
  // More outputs, comma-separated: NAME.abc and NAME.mid are always written; musicxml adds
  // NAME.musicxml (the same score layout as the ABC, musicxml_writer.h); svg (NAME.svg, NAME-2.svg …),
  // roll (NAME.roll.svg), wav (= wav above): view_outputs.h.
  std::string formats = "abc,mid";
  std::string soundfont;        // "" = default_soundfont()
  bool force = false;           // overwrite existing outputs
};

struct GeneratedPiece {
  std::string name;
  std::vector<std::string> files;  // abc, mid[, wav][, musicxml]
  uint64_t seed = 0;
  GenerationResult result;
  NoteSequence notes;              // as written (transposed, with metadata)
  int transpose = 0;               // semitones moved into the requested key
  std::string estimated_key;       // the key before transposing ("" without a requested key)
  std::string abc_meter, abc_key;  // as the ABC writer wrote them
  double abc_tempo_bpm = 0.0;
  int abc_bars = 0;
  double wall_s = 0.0;
  std::string model;               // the model's name
  // One JSON object: name, files, seed, notes, seconds, tokens, timings, abc, model …
  nlohmann::json to_json() const;
};

class FileGenerator {
 public:
  // Checks every value (ConfigError naming the flag, NotAvailableError for wav without
  // FluidSynth), reads the prompt, creates the output folder and refuses existing outputs
  // (OutputError) — all before the model is loaded.
  explicit FileGenerator(const GenerateFilesConfig& cfg);
  ~FileGenerator();
  size_t size() const { return pieces_.size(); }
  // Loads the model (and the recording) on first use, samples piece i and writes its files.
  GeneratedPiece generate(size_t i);
  // "" or the one-line error for a --format left out because its program is missing (svg without
  // abcm2ps): the caller reports it after the pieces are written.
  const std::string& unavailable() const { return unavailable_; }

 private:
  struct Piece {
    uint64_t seed;
    std::string name;
    std::vector<std::string> outs;  // abc, mid, [wav], [musicxml]
    std::vector<std::string> view_outs;  // first file of each of view_formats_
  };
  void check_controls();
  void plan_pieces();
  void load_model();

  GenerateFilesConfig cfg_;
  double tempo_bpm_ = 0.0;
  bool musicxml_ = false;  // formats includes "musicxml"
  int meter_num_ = 0, meter_den_ = 0;
  KeyName key_name_;
  std::string soundfont_;
  NoteSequence prompt_;
  std::vector<Piece> pieces_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Generator> gen_;
  Audio audio_;
  bool have_audio_ = false;
  std::vector<std::string> view_formats_;  // svg, roll (--format)
  std::string unavailable_;
};

}  // namespace tunescribe
