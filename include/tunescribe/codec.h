// codec.h — the MT3 event vocabulary: notes ↔ model token ids.
//
// What it does: the event ranges and model id layout of specs/mt3.md §2
// (shift, pitch, velocity, tie, program, drum; PAD/BOS=0, EOS=1, UNK=2; model
// id = codec index + 3; extra ids; embedding rows rounded up to 128), encoding
// of notes into per-segment training targets (§2.3: tie sections, offsets
// before onsets, absolute shifts, redundant velocity/program removal, EOS) and
// decoding of per-segment token streams back to notes with MT3's persistent
// state machine (§4.2–4.3: ties, clipping at the next segment's start,
// dangling notes, minimum duration, counting invalid tokens).
// What it does not: run a model, read MIDI or audio, apply the sustain pedal
// (callers pass notes with sustain already applied).
// Units: seconds for times; internally everything is integer "steps"
// (1/steps_per_second s, 10 ms by default). Times are quantised with
// round(t·steps_per_second); segment origins with floor (see
// segment_origin_step). Decoded times are exactly step/steps_per_second.
// Thread-safety: Codec and TargetEncoder are immutable after construction and
// may be shared between threads; a NoteDecoder is one decoding state (one file)
// and must not be shared.
//
// Deviations from the MT3 Python code, all at sub-step resolution or for
// robustness (documented in codec.cpp as well):
//  * events are ordered by their quantised step (MT3 sorts by the float time
//    before quantising), so two events in the same 10 ms step always come as
//    offsets before onsets;
//  * decoding compares times in integer steps (no float drift at max_time);
//  * the segment origin is floor(t0·sps) computed with a 1e-6-step tolerance
//    (30.72 s → step 3072), not the colab's fmod quirk (§1.3.5).
//  * Segment membership follows MT3's encode_and_index_events: a segment whose
//    origin is step s0 holds the events of steps [s0, s1) where s1 is the next
//    segment's origin; events exactly on s0 are at time 0 of the NEW segment
//    (the tie section lists notes with onset < s0 <= offset).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <set>
#include <string>
#include <vector>

#include "tunescribe/notes.h"

namespace tunescribe {

// The six event types, in vocabulary order.
enum class EventType { Shift = 0, Pitch = 1, Velocity = 2, Tie = 3, Program = 4, Drum = 5 };
constexpr int kNumEventTypes = 6;
const char* event_type_name(EventType t);  // "shift", "pitch", ...

// The "codec" section of a model's config.json (keys = field names).
struct CodecConfig {
  int steps_per_second = 100;     // time resolution (10 ms)
  int max_shift_seconds = 10;     // largest single shift token (1000 steps)
  int num_velocity_bins = 1;      // 1 (on/off, mt3), 127 (ismir2021) or any N in [1, 127]
                                  // (N > 127 would make bin 1 decode to velocity 0 = note-off)
  bool use_ties = true;           // tie sections at every segment start (mt3)
  std::string program_granularity = "full";  // "full": program tokens; "flat": none (ismir2021)
  int num_extra_ids = 100;        // unused sentinel ids after the regular ids

  // Throws ConfigError naming the field, the value and the range.
  void validate() const;
  nlohmann::json to_json() const;
  // Missing keys keep their defaults; unknown keys or wrong types throw
  // ConfigError. The result is validated.
  static CodecConfig from_json(const nlohmann::json& j);

  bool flat_programs() const { return program_granularity == "flat"; }

  static CodecConfig mt3();        // V=1, ties, full programs (vocab 1491 / 1536 rows)
  static CodecConfig ismir2021();  // V=127, no ties, flat (vocab 1617 / 1664 rows)
};

// A model id decoded back to an event.
struct DecodedToken {
  enum class Kind { Event, Eos, Invalid };
  Kind kind = Kind::Invalid;
  EventType type = EventType::Shift;  // valid when kind == Event
  int value = 0;                      // event value (shift steps, pitch, bin, program...)
  bool is_event() const { return kind == Kind::Event; }
};

// The vocabulary of one CodecConfig.
class Codec {
 public:
  static constexpr int kPad = 0;  // also the decoder's BOS
  static constexpr int kBos = 0;
  static constexpr int kEos = 1;
  static constexpr int kUnk = 2;
  static constexpr int kNumSpecialIds = 3;

  // Inclusive model-id range of one event type.
  struct Range {
    int first_id = 0;   // model id of min_value
    int min_value = 0;
    int max_value = 0;
    int size() const { return max_value - min_value + 1; }
    int last_id() const { return first_id + size() - 1; }
    bool contains(int id) const { return id >= first_id && id <= last_id(); }
  };

  explicit Codec(const CodecConfig& config = CodecConfig());  // validates

  const CodecConfig& config() const { return config_; }
  int steps_per_second() const { return config_.steps_per_second; }
  int max_shift_steps() const { return max_shift_steps_; }
  int num_velocity_bins() const { return config_.num_velocity_bins; }

  int num_classes() const { return num_classes_; }                 // codec size (1388 for mt3)
  int first_extra_id() const { return kNumSpecialIds + num_classes_; }  // = vocab base
  int vocab_size() const { return first_extra_id() + config_.num_extra_ids; }  // 1491 for mt3
  int embedding_rows() const { return (vocab_size() + 127) / 128 * 128; }   // 1536 for mt3

  const Range& range(EventType t) const { return ranges_[static_cast<int>(t)]; }
  // Model id of an event; throws InputError when the value is outside the range.
  int token_for(EventType t, int value) const;
  // Model id → event; ids < 3, >= first_extra_id() (extra ids, padding rows)
  // and negative ids are Invalid, 1 is Eos.
  DecodedToken decode_id(int id) const;
  // "shift 50", "pitch 60", "velocity 1", "tie", "program 40", "drum 36",
  // "PAD", "EOS", "UNK", "extra 3", "invalid 2000".
  std::string token_to_string(int id) const;
  std::string tokens_to_string(const std::vector<int>& ids) const;  // space-separated

  // MT3's velocity quantisation: bin = ceil(V·v/127) (0 stays 0), and back
  // velocity = int(127·bin/V). Velocities are clamped to 0..127.
  int velocity_to_bin(int velocity) const;
  int bin_to_velocity(int bin) const;

  // Time ↔ steps. quantize: round(t·sps) with ties to even, like Python's
  // round() that MT3 uses (0.125 s → step 12, 0.135 s → step 14 when exact).
  int64_t quantize_step(double t_s) const;
  // floor(t0·sps) with a 1e-6-step tolerance: the origin of a segment whose
  // audio starts at t0 (the decoder's rounded-down start_time).
  int64_t segment_origin_step(double t0_s) const;
  double step_to_seconds(int64_t step) const { return double(step) / config_.steps_per_second; }

 private:
  CodecConfig config_;
  int max_shift_steps_ = 0;
  int num_classes_ = 0;
  Range ranges_[kNumEventTypes];
};

// ---------------------------------------------------------------------------
// Encoding (notes → per-segment targets)

// Largest target length of the released models, EOS included (decoder length).
constexpr int kMaxTargetTokens = 1024;

struct EncodedSegment {
  int64_t start_step = 0;   // segment origin (start_s = start_step / sps)
  double start_s = 0.0;
  std::vector<int> ids;     // model ids, ending with EOS (1)
  bool truncated = false;   // longer than max_tokens: cut to max_tokens-1 ids + EOS
};

// What canonicalize_notes changed (for reports).
struct CanonicalizeStats {
  int dropped = 0;            // notes with pitch/program outside 0..127 or NaN times
  int merged = 0;             // same key and same onset step as another note: the longer kept
  int trimmed = 0;            // ended at the next onset of the same key (overlap)
  int extended = 0;           // shorter than one step after quantisation: made one step long
};

// The notes exactly as encode→decode reproduces them: times quantised to the
// step grid (round, clamped at 0), non-drum notes at least one step long,
// velocity quantised through the bins (clamped to >= 1), flat mode: every
// non-drum program 0 (drums keep their drum tokens in every mode); drums:
// program 0, one step long (MT3 decodes drums as 10 ms notes); notes of the same key
// (pitch, program) never overlap: a note is cut at the next onset of its key,
// and of two notes starting in the same step only the longer is kept.
// Sorted with NoteSequence::sort's order.
std::vector<Note> canonicalize_notes(const Codec& codec, const std::vector<Note>& notes,
                                     CanonicalizeStats* stats = nullptr);

// Encodes one note list into segments. The notes are canonicalised once in
// the constructor; segments can then be encoded in any order.
class TargetEncoder {
 public:
  TargetEncoder(const Codec& codec, const std::vector<Note>& notes);

  // Segment covering steps [start_step, end_step); end_step < 0: open-ended.
  // Tie section (if use_ties): notes with onset < start_step <= offset.
  EncodedSegment encode_segment_steps(int64_t start_step, int64_t end_step,
                                      int max_tokens = kMaxTargetTokens) const;
  // Same with times: origins are segment_origin_step(start_s / end_s);
  // end_s < 0: open-ended.
  EncodedSegment encode_segment(double start_s, double end_s, int max_tokens = kMaxTargetTokens) const;

  const std::vector<Note>& canonical_notes() const { return canonical_; }
  const CanonicalizeStats& stats() const { return stats_; }
  const Codec& codec() const { return codec_; }

 private:
  struct Event {
    int64_t step;
    int kind;  // 0 offset, 1 non-drum onset, 2 drum onset
    int program;
    int pitch;
    int velocity_bin;
  };
  Codec codec_;
  std::vector<Note> canonical_;
  CanonicalizeStats stats_;
  struct Span {
    int64_t onset_step, offset_step;
    int program, pitch;
  };
  std::vector<Event> events_;  // sorted by (step, kind, program, pitch, bin)
  std::vector<Span> tonal_;    // non-drum notes sorted by onset (tie sections)
  int64_t max_duration_steps_ = 0;
};

// Convenience: one segment of a note list (canonicalised on every call).
EncodedSegment encode_segment(const Codec& codec, const std::vector<Note>& notes, double start_s,
                              double end_s, int max_tokens = kMaxTargetTokens);
// Every segment of a file: segment k covers [starts[k], starts[k+1]); the last
// one ends at end_s (< 0: open-ended, i.e. it takes every later event).
// segment_starts_s must be non-decreasing (throws InputError otherwise).
std::vector<EncodedSegment> encode_file(const Codec& codec, const NoteSequence& seq,
                                        const std::vector<double>& segment_starts_s, double end_s = -1.0,
                                        int max_tokens = kMaxTargetTokens);

// ---------------------------------------------------------------------------
// Decoding (tokens → notes)

// MT3's decoding state for one file (§4.2–4.3). Add the segments in start-time
// order; the state (velocity, program, active notes) persists across them.
class NoteDecoder {
 public:
  explicit NoteDecoder(const Codec& codec);

  // ids: the model's tokens for one segment (anything after the first EOS is
  // ignored; a missing EOS is fine). start_s: the segment origin (snapped down
  // to the step grid with segment_origin_step). max_time_s: the next segment's
  // start; tokens after a shift that lands strictly later are dropped
  // (< 0: no limit, the last segment).
  void add_segment(const std::vector<int>& ids, double start_s, double max_time_s = -1.0);
  // Same in steps (max_step < 0: no limit).
  void add_segment_steps(const std::vector<int>& ids, int64_t start_step, int64_t max_step = -1);

  // Ends every dangling note at one common time (max of the last event time and
  // every active onset + one step), returns the notes sorted, and resets the
  // decoder for a new file (counters are kept until reset()).
  NoteSequence finish();
  void reset();

  // MT3 relabels instruments between segments: a tie declaration of (program q, pitch p) that
  // matches no sounding note ends the note (q', p) that was held and is rejected. With merging on,
  // such a declaration continues the held note of another program instead: the segment's later
  // events for (q, p) (its note-off) apply to it, and it is written with its first program q'.
  // Off by default (the reference decoding); counted in merged_ties().
  void set_merge_relabelled_ties(bool on) { merge_relabelled_ties_ = on; }
  int merged_ties() const { return merged_; }

  int invalid_tokens() const { return invalid_; }  // invalid ids + events the state rejected
  int dropped_tokens() const { return dropped_; }  // tokens after a shift beyond max_time
  int segments() const { return segments_; }

 private:
  bool apply_event(int64_t step, EventType type, int value);  // false: invalid
  void clear_state();                                          // all but the counters
  void add_note(int64_t onset, int64_t offset, int pitch, int velocity, int program, bool is_drum);

  struct Active {
    int64_t onset_step;
    int velocity;
    int out_program = -1;  // the program the note is written with when merged (-1: its key's)
  };
  static int program_of(int key, const Active& a) { return a.out_program >= 0 ? a.out_program : key / 128; }
  Codec codec_;
  int64_t current_step_ = 0;
  int current_velocity_ = 100;
  int current_program_ = 0;
  bool in_tie_section_ = false;
  std::map<int, Active> active_;  // key program*128 + pitch
  std::set<int> tied_;
  std::vector<Note> notes_;
  int invalid_ = 0;
  int dropped_ = 0;
  int segments_ = 0;
  int merged_ = 0;
  bool merge_relabelled_ties_ = false;
};

// Decode a whole file in one call: segment k has origin start_s[k] and
// max_time start_s[k+1] (none for the last). Sizes must match (InputError).
NoteSequence decode_segments(const Codec& codec, const std::vector<std::vector<int>>& segment_ids,
                             const std::vector<double>& start_s, int* invalid_tokens = nullptr,
                             int* dropped_tokens = nullptr);

}  // namespace tunescribe
