// notes.h — the note type every component exchanges.
//
// What it does: a performed note in seconds {onset_s, offset_s, pitch,
// velocity, program, is_drum}, a NoteSequence with optional musical metadata
// (tempo map, time and key signatures) read from MIDI or ABC, General MIDI
// instrument names, and JSON (de)serialisation of note lists.
// What it does not: quantise, spell or interpret notes musically (abc_writer
// does), nor read/write MIDI (midi.h).
// Units: seconds for times, MIDI numbers (0..127) for pitch/velocity/program.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace tunescribe {

struct Note {
  double onset_s = 0.0;
  double offset_s = 0.0;
  int pitch = 60;       // MIDI pitch 0..127 (GM drum key when is_drum)
  int velocity = 100;   // 1..127
  int program = 0;      // GM program 0..127 (0 for drums)
  bool is_drum = false;
  // Decoder confidence in [0, 1] (the frames decoder's onset peak); < 0 = unknown
  // (every other source). Not part of operator==.
  float confidence = -1.0f;

  double duration_s() const { return offset_s - onset_s; }
  bool has_confidence() const { return confidence >= 0.0f; }
  bool operator==(const Note& o) const;
};

struct TempoChange {
  double time_s = 0.0;
  double bpm = 120.0;  // quarter notes per minute
};

struct TimeSignature {
  double time_s = 0.0;
  int numerator = 4;
  int denominator = 4;
};

struct KeySignature {
  double time_s = 0.0;
  int fifths = 0;      // -7..7 (flats negative)
  bool minor = false;
};

struct NoteSequence {
  std::vector<Note> notes;
  // Metadata kept from the source (MIDI meta events, ABC header); may be empty.
  std::vector<TempoChange> tempos;
  std::vector<TimeSignature> time_signatures;
  std::vector<KeySignature> key_signatures;
  double duration_s = 0.0;  // end of the source (last event), >= last offset
  std::string source;       // file it came from, for messages

  // Sort notes by (onset, is_drum, program, pitch, offset).
  void sort();
  double end_time() const;  // max(duration_s, last offset)
};

// General MIDI program name, e.g. 0 -> "Acoustic Grand Piano". "Drums" for drums.
std::string gm_program_name(int program, bool is_drum = false);
// Instrument family 0..15 (program / 8).
inline int gm_family(int program) { return program / 8; }
// Parse a program given as a number ("40") or a GM name (case-insensitive,
// "violin"); returns -1 when unknown.
int gm_program_from_string(const std::string& s);

// JSON note list: {"notes":[{"onset_s","offset_s","pitch","velocity","program",
// "is_drum","instrument"[, "confidence" when known]}...], "duration_s":..}
nlohmann::json notes_to_json(const NoteSequence& seq);
// Throws InputError (naming `what`) on a malformed document.
NoteSequence notes_from_json(const nlohmann::json& j, const std::string& what);

// Midi pitch <-> Hz (A4 = 440 Hz).
double midi_to_hz(double pitch);
double hz_to_midi(double hz);

}  // namespace tunescribe
