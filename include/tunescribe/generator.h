// generator.h — new music from the model's decoder ("continue without audio").
//
// What it does: samples token segments from the decoder (temperature, top-k,
// top-p with a seeded std::mt19937_64), segment after segment on the
// 2.048 s segment grid (frontend.segment_frames / frames per second). Each
// segment is decoded with the learned null memory as encoder output and the
// decoder sequence of docs/training.md §5: BOS, the previous segment's tokens
// (without EOS; empty when longer than max_prefix_tokens), PREFIX_END, then
// the new segment's tokens. With an audio recording the segment's encoder
// output is used instead (plain MT3 sequence BOS t_1 …, sampled, not greedy).
// One NoteDecoder (codec.h) turns all segments into notes.
// Grammar (masks applied before sampling, cheap, always on):
//  * never PAD/BOS, UNK, extra ids (PREFIX_END included), padding rows, or a
//    tie token in the body of a segment;
//  * the tie section of every sampled segment is forced: exactly the notes
//    still active in the decoding state (sorted by program, pitch, program
//    tokens only where the program changes, as the codec encodes them), minus
//    notes held longer than max_note_s (those end at the segment boundary);
//  * shifts are absolute within the segment: strictly increasing, never past
//    the next segment's origin (nor past the requested end), never two in a
//    row, and EOS never right after a shift, program or velocity token;
//  * a velocity token before the first pitch of each segment (as encoded),
//    no redundant velocity/program token within a segment, note-offs only for
//    active notes and not after an onset in the same step, onsets only for
//    inactive notes, drum hits only with a non-zero velocity;
//  * at most max_programs distinct programs (8: piano hands split into two
//    voices and drums stay within abc2midi's 16 channels and
//    ABC readers' voice limits), max_polyphony sounding notes per program
//    and drum hits per step (8: abcm2ps refuses chords of more than 8 notes).
// Controls: instrument >= 0 forces the program: the probability of every
// program token is given to that program's token (so "whenever the sampler
// would emit a program token, it emits the chosen one"), pitch/velocity
// tokens are masked until that program is current, drums are masked.
// Range: pitch-onset tokens outside [min_pitch, max_pitch] are masked (the prompt is kept as is).
// onset_at_start: shift and EOS tokens are masked until the first onset (a prompt's onsets count).
// monophonic: velocity-on and pitch-onset tokens are masked while any note is
// active (no post-processing), drums are masked; the prompt is kept as is.
// Prompt: its notes are encoded with the codec on the same segment grid; the
// prompt's segments are forced token for token (the last one without its
// EOS, so sampling continues inside it), so the prompt reappears unchanged at
// the start of the output at the codec's 10 ms resolution.
// What it does not: write files (the CLI does), choose tempo/meter for
// output metadata, or guarantee musical quality (that is the model's job).
// Determinism: the same model, config, seed and inputs give the same notes
// (batch-1 decoding on the CPU; sampling uses only the seeded engine).
// Units: seconds; token ids are model ids (codec.h).
// Thread-safety: a Generator only reads its Model; generate() may run from
// several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tunescribe/audio.h"
#include "tunescribe/codec.h"
#include "tunescribe/notes.h"

namespace tunescribe {

class Model;

struct SamplingConfig {
  double temperature = 1.0;  // logits / temperature; (0, 100]
  int top_k = 0;             // keep the k most likely tokens; 0 = off
  double top_p = 1.0;        // nucleus: smallest set with this much mass; (0, 1]
  void validate() const;     // throws ConfigError naming the field
};

// Samples one index from `logits` (entries that are -inf or NaN are never
// chosen). Candidates are ordered by (logit desc, index asc), cut to top_k,
// softmax in double, cut to the nucleus top_p, then one uniform draw
// ((rng() >> 11) * 2^-53) picks by cumulative mass. top_k = 1 is argmax.
// Returns -1 when no entry is allowed.
int sample_from_logits(const std::vector<float>& logits, const SamplingConfig& cfg, std::mt19937_64& rng);

struct GeneratorConfig {
  SamplingConfig sampling;
  uint64_t seed = 0;
  double seconds = 30.0;         // length generated after the prompt (audio: at most this much); (0, 36000]
  int instrument = -1;           // GM program 0..127 forced; -1 = the model chooses
  bool monophonic = false;       // no new onset while a note is sounding
  double max_note_s = 10.0;      // a note held longer is not tied into the next segment; (0, 3600]
  int max_segment_tokens = 1024; // tokens per segment, tie section and EOS included; 8..4096
  int max_prefix_tokens = 511;   // longer previous segments are not used as a prefix; 0..2047
  int max_programs = 8;          // distinct programs (then only those; abc2midi channels, ABC voices); 1..128
  int max_polyphony = 8;         // no new onset of a program while this many of its notes sound,
                                 // and at most this many drum hits in one 10 ms step; 1..1024
  int min_pitch = 0;             // sampled onsets (not drums) only in [min_pitch, max_pitch]: an
  int max_pitch = 127;           // instrument's range (instruments.h); 0 <= min <= max <= 127
  bool onset_at_start = false;   // the music starts with an onset at its first step (no leading
                                 // silence: shifts and EOS are masked until the first onset)
  void validate() const;         // throws ConfigError naming the field
};

struct GenerationResult {
  NoteSequence notes;                          // sorted; no metadata
  std::vector<std::vector<int>> segment_tokens;  // per segment, tie section first, ending with EOS
  std::vector<double> segment_starts_s;
  double prompt_s = 0.0;        // end of the prompt (0 without one)
  double seconds = 0.0;         // end of the output (prompt + generated)
  int64_t tokens_sampled = 0;   // tokens drawn by the sampler (EOS included)
  int64_t tokens_forced = 0;    // tie sections and prompt tokens
  int64_t decoder_steps = 0;    // tokens fed to the decoder (prefixes included)
  double decode_s = 0.0;        // wall time in the model (prefill + sampling)
  int invalid_tokens = 0;       // tokens the NoteDecoder rejected (0 when the grammar holds)
};

class Generator {
 public:
  // Reads the frontend and codec sections of the model's config.json
  // (ModelError when inconsistent). PREFIX_END = config training.prefix_end_id
  // when present, else the codec's first extra id.
  explicit Generator(const Model& model);
  ~Generator();

  // prompt: notes to continue (nullptr or empty: none). audio: a recording at
  // sample_rate_hz() to condition on instead of the null memory (nullptr: none).
  // Throws ConfigError (bad config, prompt and audio together), ModelError
  // (no null memory in the model when it is needed).
  GenerationResult generate(const GeneratorConfig& cfg, const NoteSequence* prompt = nullptr,
                            const Audio* audio = nullptr) const;

  double segment_seconds() const;
  int prefix_end_id() const;
  int sample_rate_hz() const;
  const Codec& codec() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Seconds of `bars` bars of `meter` ("4/4", "6/8", "C", "C|", n/d) at `bpm`
// quarter notes per minute: bars × (4·n/d quarters) × 60 / bpm. ConfigError on bad values.
double bars_to_seconds(int bars, const std::string& meter, double bpm);
// Parses a meter as the ABC writer accepts it into numerator/denominator ("C" = 4/4,
// "C|" = 2/2). ConfigError naming the value.
void parse_meter_fraction(const std::string& meter, int* numerator, int* denominator);

struct KeyName {
  int fifths = 0;       // signature: sharps > 0, flats < 0 (-7..7)
  bool minor = false;   // aeolian (minor) mode
  int tonic_pc = 0;     // 0 = C
};
// "G", "Em", "Bb", "F#m", "Ddor", "Amix", "Cmaj", "Aminor" … ConfigError naming the value.
KeyName parse_key_name(const std::string& key);
// Transposes the non-drum notes by the smallest interval (-6..+5 semitones)
// that moves the signature of the estimated key (analysis.h's estimate_key on the notes the
// ABC writer keeps, i.e. the writer's estimate)
// onto the signature of `key`; pitches leaving 0..127 move by octaves.
// Returns the interval; *estimated (if given) receives the estimated key as written.
int transpose_to_key(NoteSequence& seq, const std::string& key, std::string* estimated = nullptr);

// Share of non-drum note duration whose pitch class is in the scale of the
// signature `fifths` (major scale of the signature). 1.0 for no notes.
double in_key_ratio(const NoteSequence& seq, int fifths);

}  // namespace tunescribe
