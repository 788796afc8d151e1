// abc_reader.h — ABC 2.1 text (real tune collections) → notes.
//
// What it does: reads every tune of a file (X: … blank line): header and
// inline fields ([K:] [M:] [L:] [Q:] [V:]), voices, key signatures with
// modes and explicit accidentals, accidentals persisting to the bar line
// (in every octave, as abc2midi plays them, or in one octave), octave marks,
// lengths (/ // /2 3/2 …), rests (z x Z multi-bar), chords (abc2midi's
// length rule), ties (a continuation keeps the tied pitch), tuplets (p:q:r),
// broken rhythm (> < >> <<), grace notes (no time, or optionally played the
// way abc2midi plays them), decorations, chord symbols and annotations
// (skipped), repeats, first/second endings and P: part orders expanded the
// way abc2midi plays them, %%MIDI program/channel per voice.
// What it does not: play ornaments (trills, rolls, fermatas), dynamics, lyrics,
// %%MIDI drum/gchord accompaniment, or voice overlay (&, skipped with a warning).
// Units: musical time in whole notes (exact fractions); NoteSequence times in
// seconds from Q: (120 quarter notes per minute when absent).
// Errors: problems are warnings "abc: FILE:LINE:COL: message" kept with the
// tune; with strict = true the first one is thrown as InputError instead.
// A text without any X: tune throws InputError.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "tunescribe/music.h"
#include "tunescribe/notes.h"

namespace tunescribe {

struct AbcReaderConfig {
  bool expand_repeats = true;      // play |: :| and endings as abc2midi does
  bool expand_parts = true;        // play P: orders from the header (P:ABA)
  bool pitch_propagation = true;   // accidentals apply to the letter in every octave (abc2midi);
                                   // false: same octave only (abcjs, abcm2ps, engraving)
  bool play_grace_notes = false;   // true: each grace note sounds for 1/4 of its written length,
                                   // taken from the start of the following note (abc2midi)
  double default_bpm = 120.0;      // quarter notes per minute without Q: (1..1000)
  int velocity = 80;               // velocity given to every note (1..127)
  bool strict = false;             // throw InputError at the first problem
  void validate() const;           // throws ConfigError naming the field
};

struct AbcReadNote {
  int voice = 0;       // index into AbcTuneNotes::voice_ids
  int pitch = 60;
  Fraction start;      // whole notes from the start of the tune (after repeat expansion)
  Fraction length;     // whole notes (tied notes merged)
  int program = 0;
  bool is_drum = false;
  bool grace = false;  // a played grace note (play_grace_notes)
};

struct AbcTuneNotes {
  int reference_number = 0;           // X:
  std::string title;                  // first T:
  int line = 0;                       // 1-based line of X:
  std::string meter;                  // first M: ("4/4", "C", "none")
  std::string key;                    // first K: as written
  Fraction unit_length{1, 8};         // L: of the first voice at K:
  std::vector<std::string> voice_ids;
  std::vector<AbcReadNote> notes;     // sorted by (voice, start, pitch)
  NoteSequence sequence;              // the same notes in seconds, with tempo/meter/key metadata
  std::vector<std::string> warnings;  // "abc: FILE:LINE:COL: …"
};

std::vector<AbcTuneNotes> read_abc_text(const std::string& text, const std::string& what,
                                        const AbcReaderConfig& cfg = {});
// Throws InputError when the file cannot be read.
std::vector<AbcTuneNotes> read_abc_file(const std::string& path, const AbcReaderConfig& cfg = {});

}  // namespace tunescribe
