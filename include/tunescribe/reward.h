// reward.h — the ABC transcription reward (pitch / metre / tempo / instrument).
//
// What it does: the reward of Jon Flynn's "Exploring Music Transcription with
// Multi-Modal Language Models" (2024), formalised in
// ../shared/specs/scoring.md §2: total loss = 0.5·pitch + 0.15·metre +
// 0.15·tempo + 0.2·instrument, reward = 1 − total. Two modes:
//  - RewardMode::Corrected (default, scoring.md §2.6 "flynn2024-fixed"):
//    header fields parsed properly, missing ground-truth fields drop their
//    component (weights renormalised), continuous tempo loss, one-to-one
//    (Hungarian) voice assignment, real ABC pitches (see docs/scoring.md for
//    the exact rules, including the two extensions: key signatures / bar
//    accidentals applied and tied notes merged).
//  - RewardMode::Flynn2024: the article's code reproduced literally, quirks
//    B1–B8 included (regex field extraction, `Q:1/4=N` read as 1, last voice
//    dropped without a final newline, broken accidentals, difflib instrument
//    names, positional instrument pairing, float32 total).
// The reward works on parsed inputs (RewardInput: voices with pitch sequences
// and names, metre, tempo), built from ABC text by parse_reward_input() or
// from a NoteSequence (a MIDI file) by reward_input_from_sequence().
// What it does not: time-based note matching (score.h), ABC rendering.
// Units: MIDI numbers for pitch, quarter-note BPM for tempo.
// Thread-safety: pure functions, safe to call concurrently.
#pragma once

#include <string>
#include <vector>

#include "tunescribe/notes.h"

namespace tunescribe {

enum class RewardMode { Corrected, Flynn2024 };

// "corrected" (alias "flynn2024-fixed") or "flynn2024"; throws ConfigError.
RewardMode reward_mode_from_string(const std::string& s);
std::string reward_mode_name(RewardMode m);

struct RewardVoice {
  std::string id;            // V: id ("1", "RH"); empty for an implicit voice
  std::string name;          // name="…" of the voice header, "" when absent
  int program = -1;          // GM program when known exactly (%%MIDI program, MIDI track), else -1
  std::vector<int> pitches;  // MIDI numbers in written order
};

struct RewardInput {
  std::vector<RewardVoice> voices;
  // Flynn2024 only: names found by the article's V:…name= regex, independent
  // of the voice splitter (a dropped last voice still has its name here).
  std::vector<std::string> instrument_names;
  bool has_meter = false;     // a meter was found and parsed
  bool meter_present = false; // an M: field exists (Corrected: unparseable ≠ missing)
  long long meter_num = 0, meter_den = 0;
  bool has_tempo = false;
  bool tempo_present = false;
  double tempo_bpm = 0.0;     // Flynn2024: the first integer after Q:
  std::string source;         // for messages
};

struct RewardResult {
  double pitch = 0, metre = 0, tempo = 0, instrument = 0;  // component losses in [0,1]
  // Corrected mode: whether the component counted (ground truth has the field);
  // always true in Flynn2024 mode.
  bool use_metre = true, use_tempo = true, use_instrument = true;
  double total = 0;   // weighted loss in [0,1]
  double reward = 1;  // 1 − total
};

// Parse ABC text as the given mode reads it. Throws InputError only for
// inputs the original code would crash on (Flynn2024: M:N/0).
RewardInput parse_reward_input(const std::string& abc_text, RewardMode mode,
                               const std::string& what = "abc");
// Corrected-mode input from notes: one voice per (program, is_drum) track in
// order of first onset, pitches ordered by (onset, pitch), meter and tempo
// from the first time signature / tempo event when present. Drum tracks are
// left out (ABC has no standard drum spelling).
RewardInput reward_input_from_sequence(const NoteSequence& seq);

// Rewrites an ABC text (e.g. the ABC emitter's, with interleaved `[V:id]`
// lines) into the layout of the article's ground truth (scoring.md §2.2):
// header without `%` and `T:` lines, then per voice a `V:n name="…"` line
// (n = 1, 2, … in order of definition; the name from the voice's name=, else
// the GM name of its %%MIDI program) followed by that voice's music lines.
// Used for the MIDI side of an ABC/MIDI pair in flynn2024 mode, whose voice
// regex only understands that layout.
std::string flynn2024_layout(const std::string& abc_text);

// The reward of `est` against the ground truth `ref`. Flynn2024 evaluates
// ABCLoss()(first = ref, second = est), the argument order of the article's
// PPO loop (cell 47), and mirrors its asymmetries.
RewardResult compute_reward(const RewardInput& ref, const RewardInput& est, RewardMode mode);
// Convenience: parse both texts and compute.
RewardResult abc_reward(const std::string& ref_abc, const std::string& est_abc, RewardMode mode);

// Building blocks (exposed for tests) ----------------------------------------
namespace reward_detail {
double metre_component(double x, double threshold);          // 0.5·x/t or 0.5+0.5(1−e^{−(x−t)/t})
double metre_loss(long long num_a, long long den_a, long long num_b, long long den_b);
double flynn_tempo_loss(double delta_bpm);      // discontinuous at 10 BPM (B2)
double corrected_tempo_loss(double delta_bpm);  // 0.05·Δ up to 10 BPM
int flynn_note_to_number(const std::string& token);
std::vector<int> flynn_note_numbers(const std::string& voice_text);
std::vector<std::string> flynn_split_voices(const std::string& text);  // bodies, header line dropped
std::vector<std::string> flynn_instrument_names(const std::string& text);
double normalized_levenshtein(const std::vector<int>& a, const std::vector<int>& b);
double difflib_ratio(const std::string& a, const std::string& b);  // SequenceMatcher(None, a, b).ratio()
int flynn_gm_program(const std::string& name);      // difflib.get_close_matches, −1 if none
int corrected_gm_program(const std::string& name);  // exact, synonyms, then difflib; −1 if none
double flynn_instrument_pair_loss(int program_a, int program_b);
const std::vector<std::string>& pretty_midi_gm_names();  // scoring.md Appendix A
// Minimum-cost one-to-one assignment on a square cost matrix; returns col of each row.
std::vector<int> hungarian(const std::vector<std::vector<double>>& cost);
}  // namespace reward_detail

}  // namespace tunescribe
