// score_layout.h — the written score that every notation emitter reads.
//
// What it does: from prepared notes (analysis.h prepare_notes) and their Analysis, quantises
// onsets/offsets to the per-beat grids, groups notes into one part per instrument and one
// voice per part (a wide-range piano part split into right and left hand), clips each voice to
// a chord stream (at most 8 notes per chord), places the origin and a pickup bar, cuts the
// music into bars with rests filling every bar, and splits each chord/rest into written pieces
// (2^k or dotted 2^k values, cut at beat boundaries when off the beat, tied; triplet beats as
// 3:2 tuplet groups). It also spells pitches for a key. The ABC writer (abc_writer.h) and the
// MusicXML writer (musicxml_writer.h) both write this one structure, so the two never
// disagree on notes, voices, bars, ties, pickup, key, meter or tempo.
// What it does not: write any text, choose ABC's unit length or line breaks, or MusicXML's
// clefs, divisions and accidental display (the emitters do).
// Units: exact fractions of a whole note for all musical time; position 0 is the start of the
// written music (the pickup bar included).
// Thread-safety: plain values and pure functions.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "tunescribe/analysis.h"
#include "tunescribe/music.h"
#include "tunescribe/notes.h"

namespace tunescribe {

// One written note (after quantisation, clipping to chord streams and merging).
struct WrittenNote {
  int voice = 0;   // index into ScoreLayout::voices
  int pitch = 60;
  Fraction start;  // whole notes from the start of the written music (the pickup bar included)
  Fraction length; // whole notes (> 0); the sum of tied pieces
  int velocity = 100;
  int program = 0;
  bool is_drum = false;
};

struct WrittenVoiceInfo {
  std::string id;    // "P1", "P1R", "P1L", "D": part "P<n>" (or "D"), hand suffix R/L
  std::string name;  // GM instrument name ("" for a piano left hand)
  std::string clef;  // the ABC clef: "treble" | "bass" | "perc" (median pitch below or above C4)
  int program = 0;
  bool is_drum = false;
};

// A written piece: one note, chord or rest glyph.
struct ScorePiece {
  Fraction start;            // from the start of the written music
  Fraction length;           // sounding length (whole notes)
  Fraction written;          // notated value (2^k or 3 * 2^k): length, or length * 3/2 in a triplet
  std::vector<int> pitches;  // ascending MIDI pitches; empty = rest
  bool tie_in = false;       // continues a tie from the previous piece (same pitches)
  bool tie_out = false;      // tied to the next piece
};

// An event of a bar: a chord/rest segment cut into tied pieces, or one triplet beat (a 3:2
// tuplet group of pieces).
struct ScoreGroup {
  bool triplet = false;
  std::vector<ScorePiece> pieces;
};

struct ScoreBar {
  Fraction start, end;              // [start, end); the pieces fill it exactly
  std::vector<ScoreGroup> groups;
};

struct ScoreVoice {
  WrittenVoiceInfo info;
  std::vector<WrittenNote> notes;  // the chord stream, sorted by (start, pitch)
  std::vector<ScoreBar> bars;    // the same bars in every voice
};

struct ScoreLayoutOptions {
  int grid_denominator = 16;  // finest straight note value 1/16 or 1/32
  bool split_piano = true;    // piano programs (0-7) spanning > 12 semitones at once → RH/LH
};

struct ScoreLayout {
  std::vector<ScoreVoice> voices;  // at least one (one empty voice for no notes)
  Meter meter;
  Key key;
  double tempo_bpm = 120.0;   // written beats (meter.beat) per minute
  Fraction origin;            // position 0 of the written music, in the analysis' whole notes
  Fraction pickup;            // length of a short first bar; 0 when none
  Fraction total;             // length of the written music (whole bars)
  Fraction beat;              // written beat
  Fraction bar_len;
  std::vector<Fraction> bar_starts;
  std::set<Fraction> trip_starts;  // starts of triplet beats
  double start_s = 0.0;       // time of position 0 in the input (may be < first onset)
  int bars() const { return static_cast<int>(bar_starts.size()); }
  Fraction bar_end(int b) const { return b + 1 < bars() ? bar_starts[static_cast<size_t>(b + 1)] : total; }
  bool on_beat(const Fraction& pos) const { return ((pos + origin) / beat).den == 1; }
};

// `notes` as prepare_notes returns them, `an` their analysis. Deterministic. Logs a warning
// (component "abc") when inner chord notes beyond 8 at once are left out.
ScoreLayout lay_out_score(const std::vector<Note>& notes, const Analysis& an, const ScoreLayoutOptions& options);

// Seconds of written position `pos` (whole notes from the layout's position 0) on the beat map of
// `an`, the analysis the layout was made from (extrapolated beyond its ends); start_s is pos 0.
double written_time_s(const ScoreLayout& layout, const Analysis& an, const Fraction& pos);

// Sets the clef of every pitched voice that is not a hand of a split piano (ids ending in R/L) —
// e.g. an instrument's own clef (instruments.h) for generated music; "" changes nothing. The ABC
// writer writes it as `clef=`; the MusicXML writer chooses clefs from the program and range.
void set_voice_clef(ScoreLayout* layout, const std::string& clef);

// A pitch spelled for a key: the letter's alteration in the line-of-fifths window around the
// tonic (tonic - 5 .. tonic + 6). octave: scientific (C4 = MIDI 60), of the letter.
struct SpelledPitch {
  char letter = 'C';  // A-G
  int alter = 0;      // -2..2
  int octave = 4;
};
SpelledPitch spell_pitch(int midi, int tonic_q);

}  // namespace tunescribe
