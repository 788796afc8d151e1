// piano_roll.h — notes drawn as a piano-roll SVG (time × pitch), by tunescribe itself.
// What it does: one self-contained SVG of a NoteSequence: time runs left to right and wraps into
// rows of row_s seconds (a 30 s clip is one row, a 10 min piece a column of rows you scroll),
// pitch bottom to top over the span the notes use (black-key lanes shaded, every C labelled),
// one colour per instrument with a legend (GM name and note count), velocity as opacity (8
// levels), drums in their own lane below the pitched notes (one sub-lane per drum key, a fixed
// marker at each onset), bar lines and bar numbers when bar times are given, a time axis whose
// tick step grows with the zoom so that labels never overlap. Notes are paths grouped by
// instrument and velocity level, so the file stays small (about 25 bytes per note).
// bar_times() turns the ABC writer's analysis (analysis.h: beat map, meter and downbeat) into the
// bar-line times the roll draws, so the roll's bars are the bars of the .abc.
// What it does not: engrave notation (engrave.h), play audio, or compare two note lists (the
// score report, score_report.h, draws its own overlay).
// Units: seconds for times, MIDI numbers for pitch and velocity, pixels for sizes.
// Thread-safety: pure functions; safe to call concurrently.
#pragma once

#include <string>
#include <vector>

#include "tunescribe/analysis.h"
#include "tunescribe/notes.h"

namespace tunescribe {

struct PianoRollConfig {
  double px_per_s = 40.0;      // horizontal scale, pixels per second (5..400)
  double row_s = 40.0;         // seconds per row; longer pieces wrap into more rows (5..600)
  double note_height_px = 0;   // height of one semitone; 0 = from the pitch span (3..8 px), else 2..20
  std::string title;           // drawn above the legend ("" = none; XML-escaped)
  // Throws ConfigError naming the field, the value and the range.
  void validate() const;
};

// The SVG document (UTF-8, starts with "<svg"). An empty sequence gives a one-row roll saying so.
// bar_times_s: bar-line times in seconds (any order; those outside the piece are ignored).
std::string render_piano_roll_svg(const NoteSequence& seq, const std::vector<double>& bar_times_s,
                                  const PianoRollConfig& cfg = {});

// Bar starts (downbeats) of an analysis, in seconds, from the first at or after 0 s up to end_s;
// at most 100000. Empty when the analysis has no usable beat map.
std::vector<double> bar_times(const Analysis& an, double end_s);

// The colour tunescribe gives the k-th instrument of a roll ("#rrggbb"; cycles after 12).
std::string instrument_colour(size_t k);

}  // namespace tunescribe
