// abc_writer.h — performed notes (seconds) → one ABC 2.1 tune.
//
// The quantisation, voices, bars, ties and written pieces are score_layout.h's (shared with
// the MusicXML writer); this component writes them as ABC text.
// What it does: takes tempo, beat grid, meter (2/4 3/4 4/4 6/8 9/8 12/8) and key
// from the analysis component (analysis.h: estimates, overrides or the
// NoteSequence's MIDI metadata), places pickup bars, quantises
// onsets/offsets to a rational grid (1/16 or 1/32, triplets where they fit
// clearly better), groups notes into one voice per instrument (a wide-range
// piano part split into right/left hand), spells pitches for the key and
// writes the ABC subset that abc2midi, abcm2ps and abcjs read the same way
// (see ../shared/specs/abc.md): explicit L:, accidentals valid under both
// "pitch" and "octave" propagation, no accidentals on tie continuations
// (except where a tool would read the bare letter as another pitch), at most
// 8 notes per chord, only 2^k and dotted 2^k lengths, `(3` / `(3:2:r`
// tuplets, bars split with ties, final bar padded, the same line breaks in
// every voice (a bar longer than a line is broken inside, at a shared beat).
// What it does not: infer repeats, dynamics, ornaments, lyrics or key/meter
// changes; keep expressive timing (that is what quantisation removes).
// Units: seconds for input times; exact fractions of a whole note for all
// musical time in the result.
// Thread-safety: pure functions; safe to call concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tunescribe/analysis.h"  // KeyProfile
#include "tunescribe/music.h"
#include "tunescribe/notes.h"
#include "tunescribe/score_layout.h"

namespace tunescribe {

struct AbcWriterConfig {
  std::string title = "Transcription";  // T: ('%' is escaped)
  int reference_number = 1;             // X:, >= 1
  // Q: value: written beats per minute (a quarter in simple meters, a dotted
  // quarter in 6/8 9/8 12/8, a half in 2/2). 0 = estimate. Range 0 or 20..400.
  double tempo_bpm = 0.0;
  // M: "" = estimate; else "2/4" "3/4" "4/4" "6/8" "9/8" "12/8" "2/2" "3/8" "C" "C|" or any n/d
  // with n 1..16 and d in {2,4,8,16}.
  std::string meter;
  // K: "" = estimate; else tonic A-G with optional # or b and optional mode
  // ("G", "Em", "Bb", "F#m", "Ddor", "Amix", "Cmaj"); at most 7 sharps/flats.
  std::string key;
  int unit_denominator = 0;   // L:1/n; 0 = spec rule (1/16 below 3/4, else 1/8); else 4, 8, 16 or 32
  int grid_denominator = 16;  // finest straight note value 1/16 or 1/32
  bool triplets = true;       // allow triplet beats in simple meters
  int bars_per_line = 4;      // 1..32: bars per system (the same bars in every voice)
  int max_line_chars = 72;    // a system with a longer voice line gets half the bars (0 = never; 30..1000)
  bool use_midi_metadata = true;  // tempo/time/key signatures carried by the NoteSequence
  KeyProfile key_profile = KeyProfile::kAlbrechtShanahan;
  bool split_piano = true;    // piano programs (0-7) spanning > 12 semitones at once → RH/LH
  double chord_cluster_s = 0.04;  // onsets this close are one chord before quantisation (0..0.2)
  double min_note_s = 0.03;       // shorter notes are dropped (0..0.5)
  void validate() const;          // throws ConfigError naming the field
};

// The written notes and voices are the score layout's (score_layout.h).
using AbcQuantisedNote = WrittenNote;
using AbcVoiceInfo = WrittenVoiceInfo;

struct AbcTune {
  std::string text;                      // the tune, ending with a newline
  std::vector<AbcVoiceInfo> voices;
  std::vector<AbcQuantisedNote> notes;   // sorted by (voice, start, pitch)
  std::string meter = "4/4";             // as written in M:
  int meter_numerator = 4;
  int meter_denominator = 4;
  Fraction bar_length{1};                // whole notes
  Fraction pickup;                       // length of a short first bar; 0 when none
  Fraction beat{1, 4};                   // Q: note value
  double tempo_bpm = 120.0;              // Q: value
  std::string key = "C";                 // as written in K:
  int key_fifths = 0;                    // signature: sharps > 0, flats < 0
  bool key_minor = false;
  Fraction unit_length{1, 8};            // L:
  int bars = 0;                          // bars written (the pickup included)
  double start_s = 0.0;                  // time of position 0 in the input (may be < first onset)
};

// Deterministic: the same notes and config give the same bytes.
// Throws ConfigError for an invalid config. With no usable notes it writes a
// tune of one bar rest.
AbcTune write_abc(const NoteSequence& seq, const AbcWriterConfig& cfg = {});
// The analysis write_abc(seq, cfg) runs (on prepare_notes(seq.notes, cfg.min_note_s), with
// cfg's tempo/meter/key overrides), for callers that share it with other outputs (MIDI meta
// events, JSON fields) so that they never disagree with the ABC. Throws ConfigError.
AnalysisOptions abc_analysis_options(const AbcWriterConfig& cfg);
Analysis analyse_for_abc(const NoteSequence& seq, const AbcWriterConfig& cfg);
// write_abc with that analysis given (`an` must come from analyse_for_abc(seq, cfg)).
AbcTune write_abc(const NoteSequence& seq, const AbcWriterConfig& cfg, const Analysis& an);
// The score layout write_abc(seq, cfg, an) writes (cfg's min_note_s, grid_denominator and
// split_piano), for callers that write it in other notations too (musicxml_writer.h).
ScoreLayoutOptions abc_layout_options(const AbcWriterConfig& cfg);
ScoreLayout lay_out_for_abc(const NoteSequence& seq, const AbcWriterConfig& cfg, const Analysis& an);
// The ABC text of a layout (cfg's title, X:, unit length and line layout are used).
AbcTune write_abc(const ScoreLayout& layout, const AbcWriterConfig& cfg);

// "song" from "/a/b/song.mid" (for T:).
std::string abc_title_from_path(const std::string& path);

}  // namespace tunescribe
