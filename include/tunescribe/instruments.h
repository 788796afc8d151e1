// instruments.h — the practical range and clef of every General MIDI instrument, in one table.
//
// What it does: for each GM program 0..127 the lowest and highest MIDI pitch a player (or a
// typical patch) plays comfortably and the clef its part is written in ("treble", "bass",
// "alto"; "" for instruments written on a grand staff or in either clef — piano, organ, harp,
// marimba, pads … — where the ABC writer's choice stands). Used by `generate --instrument` to keep
// the sampled notes in range (GeneratorConfig::min_pitch/max_pitch) and to write the ABC voice in
// that clef. Also: moving stray notes into a range by octaves, and setting the clef of an ABC
// tune's pitched voices.
// What it does not: transpose for transposing instruments (parts are at sounding pitch), or
// cover drum kits (channel 10 has no range).
// Thread-safety: pure functions over a constant table.
#pragma once

#include <string>

#include "tunescribe/notes.h"

namespace tunescribe {

struct InstrumentRange {
  int program = 0;   // GM program 0..127
  int low = 0;       // lowest practical MIDI pitch
  int high = 127;    // highest practical MIDI pitch
  const char* clef = "";  // "treble" | "bass" | "alto" | "" (grand staff / either: the writer chooses)
};

// The table's row for `program`; ConfigError outside 0..127.
const InstrumentRange& instrument_range(int program);

// Moves every non-drum note below `low` up, and above `high` down, by whole octaves until it lies in
// [low, high] (high - low must be >= 11; ConfigError otherwise). Returns the number of notes moved.
int fold_into_range(NoteSequence& seq, int low, int high);

}  // namespace tunescribe
