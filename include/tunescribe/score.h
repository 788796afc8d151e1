// score.h — note-level transcription metrics, identical to mir_eval.
//
// What it does: re-implements mir_eval.transcription (evaluate(): 14 keys)
// and mir_eval.transcription_velocity (evaluate(): 8 keys) exactly as
// ../shared/specs/scoring.md §1 specifies: onset/offset distances rounded to 4
// decimals (round-half-even), pitch distance in cents unrounded, <= or <
// (strict), mir_eval's maximum bipartite matching (Hopcroft–Karp as in
// mir_eval.util._bipartite_match, same traversal order so ties resolve the
// same way), P/R/F(beta), average overlap ratio, the velocity regression, the
// empty-input rules and the validation errors. Candidate pairs are found by
// sorting by onset (or offset) and scanning the tolerance window, so memory is
// proportional to the number of hits, not n_ref × n_est. Also: MT3's
// program-aware multi-instrument F1 (mt3.md §5.2), readers for mir_eval .txt
// note files, and conversion from NoteSequence.
// What it does not: frame-level metrics, the ABC reward (reward.h), printing.
// Units: seconds for times, Hz for pitch (mir_eval's convention), cents for
// the pitch tolerance, raw velocities (MIDI 0..127 nominally).
// Thread-safety: all functions are pure; safe to call concurrently.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "tunescribe/notes.h"

namespace tunescribe {

// One note as mir_eval sees it.
struct ScoreNote {
  double onset_s = 0.0;
  double offset_s = 0.0;
  double pitch_hz = 440.0;
  double velocity = 0.0;   // only used when the set has velocities
  int program = 0;         // only used by the multi-instrument F1
  bool is_drum = false;
};

struct ScoreNotes {
  std::vector<ScoreNote> notes;
  bool has_velocity = false;   // velocities are meaningful (MIDI, JSON, 4-column .txt)
  bool has_program = false;    // programs are meaningful (MIDI, JSON)
  std::string source;          // file name for messages
};

// Options of mir_eval's metric functions (same names, same defaults).
struct TranscriptionOptions {
  double onset_tolerance_s = 0.05;      // onset window, seconds
  double pitch_tolerance_cents = 50.0;  // pitch window, cents
  bool use_offset = true;               // false = mir_eval's offset_ratio=None
  double offset_ratio = 0.2;            // offset window = max(ratio·ref duration, min tolerance)
  double offset_min_tolerance_s = 0.05; // seconds
  bool strict = false;                  // < instead of <=
  double beta = 1.0;                    // F-measure beta
  double velocity_tolerance = 0.1;      // velocity variant (always strict <)
  // Throws ConfigError naming the field, value and allowed range.
  void validate() const;
};

// Which criterion a matching uses (mir_eval's match_notes with/without
// offset_ratio, match_note_onsets, match_note_offsets).
enum class MatchKind { Note, NoteNoOffset, Onset, Offset };

using Matching = std::vector<std::pair<size_t, size_t>>;  // (ref index, est index), sorted by ref

// Maximum bipartite matching over the hit graph, identical to mir_eval's
// (including which pairs are chosen). No validation.
Matching match_notes(const std::vector<ScoreNote>& ref, const std::vector<ScoreNote>& est,
                     const TranscriptionOptions& opt, MatchKind kind);

// mir_eval.transcription_velocity.match_notes: the note matching (with or
// without offsets) filtered by the velocity regression.
Matching match_notes_velocity(const std::vector<ScoreNote>& ref, const std::vector<ScoreNote>& est,
                              const TranscriptionOptions& opt, bool use_offset);

// The raw mir_eval hit graph as mir_eval's util._bipartite_match receives it:
// est indices in order of first appearance, each with its ref list. Exposed
// for tests; match_notes() uses it internally.
Matching bipartite_match(size_t n_ref, const std::vector<std::vector<size_t>>& hits_per_ref);

// Counts behind one P/R/F/AOR group; summing them over files gives the
// pooled ("all notes") aggregate.
struct MatchCounts {
  size_t n_ref = 0, n_est = 0, matched = 0;
  double overlap_sum = 0.0;  // sum of overlap ratios of the matched pairs
};

// An ordered list of named metric values (mir_eval's key names and order).
struct Metrics {
  std::vector<std::pair<std::string, double>> values;
  bool has(const std::string& key) const;
  double get(const std::string& key) const;  // throws std::out_of_range
  void set(const std::string& key, double v);
};

struct TranscriptionScores {
  Metrics metrics;  // mir_eval.transcription.evaluate keys (14, or 7 without offsets)
  MatchCounts note, note_no_offset, onset, offset;
};

struct VelocityScores {
  Metrics metrics;  // mir_eval.transcription_velocity.evaluate keys (8, or 4)
  MatchCounts note, note_no_offset;
};

// MT3's program granularities (vocabularies.PROGRAM_GRANULARITIES).
enum class ProgramGranularity {
  Full,       // the exact GM program (the "Full" column of MT3's tables)
  MidiClass,  // program // 8 (GM family)
  Flat,       // every non-drum program the same
};
// "full" | "midi_class" | "flat"; throws ConfigError.
ProgramGranularity program_granularity_from_string(const std::string& s);

struct MultiInstrumentScores {
  // "Precision", "Recall", "F-measure" (all notes: MT3's "Onset + offset +
  // program"), "Drum_Precision", "Drum_Recall", "Drum_F-measure" (MT3's "Drum
  // onset"), "Nondrum_Precision", "Nondrum_Recall", "Nondrum_F-measure".
  Metrics metrics;
  MatchCounts drum, nondrum;  // n_ref, n_est, matched (overlap_sum unused)
  size_t n_ref = 0, n_est = 0, matched = 0;  // drum + nondrum
};

// mir_eval validation (scoring.md §1.3) in mir_eval's order; throws InputError
// "score: <source>: <mir_eval message> (note i)". NaN/inf are rejected too
// (an extension: mir_eval lets NaN through).
void validate_transcription(const ScoreNotes& ref, const ScoreNotes& est, bool check_velocity);

// mir_eval.transcription.evaluate (validates first).
TranscriptionScores evaluate_transcription(const ScoreNotes& ref, const ScoreNotes& est,
                                           const TranscriptionOptions& opt = {});
// mir_eval.transcription_velocity.evaluate (validates first; needs velocities).
VelocityScores evaluate_transcription_velocity(const ScoreNotes& ref, const ScoreNotes& est,
                                               const TranscriptionOptions& opt = {});
// MT3's program-aware note F1 (metrics._program_aware_note_scores): non-drum
// programs mapped by the granularity, notes grouped by (program, is_drum)
// (drum notes all count as program 0, tunescribe's drum convention), each
// group matched with mir_eval's match_notes (drums: onset+pitch only, no
// offset), precision = Σ matches / Σ est, recall = Σ matches / Σ ref (0 when
// the sum is 0), pooled over all groups, and separately over drum and
// non-drum groups.
MultiInstrumentScores evaluate_multi_instrument(const ScoreNotes& ref, const ScoreNotes& est,
                                                const TranscriptionOptions& opt = {},
                                                ProgramGranularity granularity = ProgramGranularity::Full);
// The same metrics from summed counts (for pooling over files).
Metrics multi_instrument_metrics(const MatchCounts& drum, const MatchCounts& nondrum, double beta);

// mir_eval's F-measure: (1+β²)PR/(β²P+R), 0 when P = R = 0.
double f_measure(double precision, double recall, double beta = 1.0);
// numpy.around(x, 4): rint(x·1e4)/1e4 (half to even).
double round4(double x);

// Metrics from counts (used for pooled aggregates). The prefix selects the
// key names: "" (with offsets), "_no_offset"; onset/offset groups have no AOR.
void add_prf_metrics(Metrics& m, const MatchCounts& c, const std::string& p_key,
                     const std::string& r_key, const std::string& f_key, const std::string& aor_key,
                     double beta);

// Readers -------------------------------------------------------------------
// mir_eval .txt: one note per line "onset offset pitch [velocity]", fields
// separated by whitespace and/or commas, lines starting with '#' and blank
// lines skipped, CRLF accepted. Pitch is taken as Hz unchanged (mir_eval's
// convention; the velocity conformance files hold MIDI numbers there and are
// fed as-is), unless pitch_is_midi. Throws InputError "score: file:line: why".
ScoreNotes read_mir_eval_txt(const std::string& path, bool pitch_is_midi = false);
ScoreNotes parse_mir_eval_txt(const std::string& text, const std::string& what,
                              bool pitch_is_midi = false);
// NoteSequence → ScoreNotes: pitch via midi_to_hz, velocities and programs
// kept. Notes with offset <= onset are dropped (as note_seq's
// sequence_to_valued_intervals does for MT3 evaluation); the count dropped is
// returned through `dropped` when given.
ScoreNotes score_notes_from_sequence(const NoteSequence& seq, size_t* dropped = nullptr);

}  // namespace tunescribe
