// musicxml_writer.h — a score layout → one MusicXML 4.0 score-partwise document.
//
// What it does: writes the ScoreLayout (score_layout.h) that the ABC writer writes — the same
// quantised notes, voices, bars, pickup, ties, tuplets, key, meter, tempo and instrument
// names — as uncompressed MusicXML 4.0: one part per instrument (a piano as one part on two
// staves: right and left hand, or one voice and a staff of measure rests), MIDI program and
// channel per part (drums as unpitched notes on channel 10), divisions chosen so that every
// duration is an integer, rests filling every measure, ties across bars, 3:2 tuplets, chords,
// accidentals as the measure needs them, beams within a beat, and clefs chosen by each staff's
// range and instrument (treble, bass, alto, octave clefs; a clef change for the bars that
// would need five or more ledger lines).
// What it does not: write layout (page/system breaks), dynamics, lyrics, key/meter changes or
// a compressed .mxl; read MusicXML.
// Thread-safety: pure functions; safe to call concurrently.
#pragma once

#include <string>
#include <vector>

#include "tunescribe/score_layout.h"

namespace tunescribe {

struct MusicXmlConfig {
  std::string title = "Transcription";  // <work-title> (escaped); one line
  bool piano_grand_staff = true;        // an unsplit piano part (programs 0-7) gets two staves too
  void validate() const;                // throws ConfigError naming the field
};

// A clef as MusicXML writes it.
struct XmlClef {
  std::string sign = "G";  // "G" "F" "C" "percussion"
  int line = 2;
  int octave_change = 0;   // clef-octave-change (-1: sounds an octave lower than written on the staff)
  bool operator==(const XmlClef& o) const {
    return sign == o.sign && line == o.line && octave_change == o.octave_change;
  }
  bool operator!=(const XmlClef& o) const { return !(*this == o); }
};

// The clefs the writer gives one staff, one per bar of layout.bars(), for the voice `voice`
// (index into layout.voices): the instrument's usual clef family, chosen by the voice's range;
// a bar whose notes would need 5 or more ledger lines in that clef gets the allowed clef that
// needs the fewest (bars without notes keep the clef before them).
std::vector<XmlClef> musicxml_staff_clefs(const ScoreLayout& layout, size_t voice);

// Deterministic: the same layout and config give the same bytes (no dates). Throws ConfigError.
std::string write_musicxml(const ScoreLayout& layout, const MusicXmlConfig& cfg = {});

}  // namespace tunescribe
