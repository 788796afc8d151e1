// midi.h — Standard MIDI File reading and writing.
//
// What it does: reads SMF format 0 and 1 (running status, meta/sysex skipped,
// exact tempo-map tick→seconds conversion, per-channel program changes,
// channel 10 = drums, note-on velocity 0 = note-off, overlapping same-pitch
// notes, optional sustain-pedal extension as in MAESTRO evaluation, notes left
// open end at the track end) into a NoteSequence with its tempo, time- and
// key-signature metadata. Writes SMF format 1: a tempo/meta track, then one
// track per instrument (program, or drums on channel 10).
// What it does not: quantise or interpret notes; play audio.
// Errors: InputError naming the file and the problem; never reads past the
// buffer and never allocates more than the file's size.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tunescribe/notes.h"

namespace tunescribe {

struct MidiReadOptions {
  bool apply_sustain = true;   // extend note ends while CC64 >= 64 (per channel)
};

struct MidiWriteOptions {
  int ticks_per_quarter = 480;
  double bpm = 120.0;          // used when the sequence carries no tempo map
};

NoteSequence read_midi_file(const std::string& path, const MidiReadOptions& opt = {});
NoteSequence read_midi_bytes(const std::vector<uint8_t>& bytes, const std::string& what,
                             const MidiReadOptions& opt = {});

std::vector<uint8_t> write_midi_bytes(const NoteSequence& seq, const MidiWriteOptions& opt = {});
// Written atomically (temporary file + rename). Throws OutputError.
void write_midi_file(const std::string& path, const NoteSequence& seq, const MidiWriteOptions& opt = {});

bool is_midi_path(const std::string& path);  // .mid / .midi (case-insensitive)

}  // namespace tunescribe
