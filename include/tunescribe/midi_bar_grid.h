// midi_bar_grid.h — MIDI meta events that put the written score's bars on a transcription.
//
// What it does: for the notes of an audio transcription (seconds, as played) and the score
// layout the ABC and MusicXML writers use, chooses a tempo map, time signatures and the key
// signature so that a MIDI reader counting bars from the meta events finds the layout's bars
// at the times the analysis places them: MIDI bar 1 holds exactly the notes of the written
// bar 1 (a pickup stays a short first bar), every later bar line falls within a quarter of a
// sixteenth of the written bar line, and the notes keep their seconds (to a tick).
//   - The audio before the written music (the lead-in, [0 s, layout.start_s)) becomes rests at
//     the start of bar 1, as whole sixteenths at a tempo of their own (none when it is under
//     half a sixteenth: bar 1 then starts at 0 s, that much early); bar 1's time signature
//     is then lead-in + written bar 1 (e.g. 5/16 for a sixteenth of silence before a quarter
//     pickup), and the meter follows at bar 2. With no lead-in and no pickup: the meter at 0.
//   - Tempo: the written tempo (ABC Q:) from bar 1; a new tempo event at a bar line only where
//     keeping the previous tempo would put the next bar line off its written time by more than
//     a quarter of a sixteenth (a steady performance gets one tempo, rubato a few).
// What it does not: move notes, change the ABC/MusicXML, or touch a MIDI input's metadata.
// Thread-safety: pure function.
#pragma once

#include "tunescribe/analysis.h"
#include "tunescribe/notes.h"
#include "tunescribe/score_layout.h"

namespace tunescribe {

// Ticks per quarter the metadata is exact for (write the .mid with it).
constexpr int kBarGridTicksPerQuarter = 960;

// Replaces seq's tempos, time and key signatures. Falls back to set_analysis_metadata's single
// events at 0 s when the layout has no notes or bar 1 cannot be written as a MIDI time
// signature (numerator > 255 or a denominator that is not a power of two).
void set_bar_grid_metadata(const ScoreLayout& layout, const Analysis& an, NoteSequence* seq);

}  // namespace tunescribe
