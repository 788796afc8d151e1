// midi.h — Standard MIDI File reading and writing.
//
// What it does: reads SMF format 0 and 1 (format 2: tracks are played one after
// the other) into a NoteSequence with its tempo, time- and key-signature
// metadata, and writes SMF format 1.
// What it does not: quantise or interpret notes; play audio.
// Units: seconds (double) in the NoteSequence, integer ticks in the file.
// Thread-safety: all functions are re-entrant (no shared state).
//
// Reading rules (the same choices as mido + pretty_midi / note_seq, which
// produce the usual ground truth for transcription scoring):
// - Running status; meta events (tempo 0x51, time signature 0x58, key
//   signature 0x59, the rest skipped) and sysex (F0/F7) are skipped by their
//   declared lengths. Like mido, events after an end-of-track in the same chunk
//   are still read; unknown chunk types are skipped; chunks after the number of
//   tracks the header declares are ignored.
// - Time: metrical division: exact tempo map from every track (ticks x µs per
//   quarter accumulated in integers, one division to seconds); several tempo
//   events at one tick: the last wins; 120 bpm before the first one. SMPTE
//   division: ticks / (frames per second x ticks per frame), tempo ignored.
// - Notes are paired per (track, channel, pitch), as pretty_midi does: a
//   note-off (or note-on with velocity 0) ends every open note of that pitch,
//   except that notes begun at that same tick stay open when older ones exist.
//   A new note-on of a sounding pitch does not end the older note. Notes still
//   open at the end of their track end at the track's last event (pretty_midi
//   would drop them). Every note-on with velocity > 0 gives one note.
// - Program: the last program change of the note's channel before the note-on
//   in the merged stream ordered by (tick, track, position); 0 before any.
//   Channel 10 (index 9) is drums: is_drum = true, program = 0.
// - Sustain (MidiReadOptions::apply_sustain, on by default) follows MAESTRO
//   evaluation (note_seq apply_sustain_control_changes), per channel, drums
//   excluded: CC64 >= 64 is pedal down. A note released while the pedal is down
//   ends at the next pedal-up (or at the last note/pedal event of the file); a
//   note-on while the pedal is down ends every earlier sounding note of the
//   same pitch on that channel (one left with zero length is removed). At one
//   tick: pedal-down, then pedal-up, then note-on, then note-off events.
// - Metadata in seconds: tempos (the effective map, always starting at 0 s for
//   metrical files), time and key signatures (last per tick). duration_s = time
//   of the last event of any track (at least the last offset).
// - Errors: InputError "midi: <what>: <problem>" for a missing MThd, truncated
//   chunks, chunk lengths beyond the data, bad variable-length quantities
//   (more than 4 bytes), running status without a status, undefined status
//   bytes, data bytes > 127, bad division. Never reads past the buffer and
//   allocates only in proportion to the bytes actually present.
//
// Writing rules: SMF format 1, ticks_per_quarter from the options. Track 0:
// tempo map (seq.tempos, or opt.bpm when empty or starting after 0 s), time and
// key signatures. Then one track per instrument, melodic programs in ascending
// order and drums last: a track name (GM name), a program change and the notes.
// Channels 1-9 and 11-16 go to melodic instruments, channel 10 only to drums;
// beyond 15 melodic instruments a channel is shared (preferably within a GM
// family) and each sharing track repeats its program change before every
// note-on. Seconds -> ticks through the written tempo map (rounded to the
// nearest tick). Per instrument and pitch the written notes never overlap: an
// earlier note is cut at the next onset, notes sharing an onset tick are merged
// (the longest kept), and every note lasts at least one tick. At one tick
// note-offs come before note-ons. Velocities are clamped to 1..127.
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
  int ticks_per_quarter = 480; // 1..32767
  double bpm = 120.0;          // 1..6e7; used when the sequence carries no tempo map

  void validate() const;       // throws ConfigError naming the field
};

// `what` names the source in error messages (usually the file name).
NoteSequence read_midi_file(const std::string& path, const MidiReadOptions& opt = {});
NoteSequence read_midi_bytes(const std::vector<uint8_t>& bytes, const std::string& what,
                             const MidiReadOptions& opt = {});

// Throws ConfigError (bad options) or InputError (a note/tempo that cannot be
// written: non-finite time, pitch or program outside 0..127, tempo <= 0).
std::vector<uint8_t> write_midi_bytes(const NoteSequence& seq, const MidiWriteOptions& opt = {});
// Written atomically (temporary file + rename). Throws OutputError.
void write_midi_file(const std::string& path, const NoteSequence& seq, const MidiWriteOptions& opt = {});

bool is_midi_path(const std::string& path);  // .mid / .midi (case-insensitive)

}  // namespace tunescribe
