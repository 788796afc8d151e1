// note_tables.h — note lists as plain-text tables: CSV note events and mir_eval's .txt.
//
// What it does: writes a NoteSequence as
//  * CSV note events, one row per note in the sequence's order, under the header
//    `onset_s,offset_s,pitch,velocity,program,instrument` (like basic-pitch's note-event CSV:
//    seconds, MIDI pitch, MIDI velocity, GM program, GM instrument name — "Drums" for drum hits);
//    reads such a file back (the columns found by header name, extra columns ignored);
//  * mir_eval's note file (`onset offset frequency_Hz`, tab-separated, one note per line; what
//    mir_eval.io.load_valued_intervals and `tunescribe score` read), from the same notes `score`
//    takes from a MIDI/JSON file (score_notes_from_sequence: notes with offset <= onset dropped).
// Numbers are written in their shortest round-trip form (std::to_chars): reading a file back
// gives the same doubles.
// What it does not: keep tempo/meter/key (MIDI, JSON, ABC do) or confidences.
// Thread-safety: pure functions.
#pragma once

#include <string>

#include "tunescribe/notes.h"

namespace tunescribe {

// The CSV header line (without the newline).
inline constexpr const char* kNoteCsvHeader = "onset_s,offset_s,pitch,velocity,program,instrument";
// CSV text: the header, then one line per note; "\n" line ends.
std::string notes_to_csv(const NoteSequence& seq);
// mir_eval text: one "onset\toffset\tfrequency_Hz\n" line per note scored.
std::string notes_to_mir_eval_txt(const NoteSequence& seq);
// Parses CSV note events (header required; onset_s, offset_s and pitch columns required;
// velocity defaults to 100, program to 0; instrument "Drums" marks a drum hit). Throws
// InputError naming `what` and the line.
NoteSequence parse_notes_csv(const std::string& text, const std::string& what);
NoteSequence read_notes_csv(const std::string& path);
// Shortest text that reads back as the same double ("0.5", "1e-07", "440").
std::string shortest_number(double v);

}  // namespace tunescribe
