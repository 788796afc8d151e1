// note_files.h — reads a file of notes, the reader chosen by the file's extension.
// What it does: one list of note-file extensions (.mid/.midi MIDI, .abc, .json note lists, .txt
// mir_eval, .csv note events) and one call, read_notes(path), that picks the reader (midi.h,
// abc_reader.h, notes.h, score.h, note_tables.h), with one error for every other extension.
// What it does not: read audio (audio.h, transcriber.h) or interpret the notes.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "tunescribe/notes.h"
#include "tunescribe/score.h"

namespace tunescribe {

enum class NotesFormat { Midi, Abc, Json, Txt, Csv };

struct NotesExtension {
  const char* extension;  // lower case, with the dot
  NotesFormat format;
};
// Every note-file extension: .mid .midi .abc .json .txt .csv.
const std::vector<NotesExtension>& notes_extensions();
// The format of a path by its extension (case-insensitive); nullopt for any other extension.
std::optional<NotesFormat> notes_format(const std::string& path);
bool is_notes_path(const std::string& path);

struct ReadNotesOptions {
  // The formats the caller can use; a file of any other kind gets the unsupported-type error.
  std::vector<NotesFormat> formats = {NotesFormat::Midi, NotesFormat::Abc, NotesFormat::Json, NotesFormat::Txt,
                                      NotesFormat::Csv};
  std::string also_expected;        // other inputs the caller takes, named first in that error
  bool apply_sustain = true;        // MIDI: extend notes while the sustain pedal is down
  bool txt_pitch_midi = false;      // TXT: the pitch column holds MIDI note numbers, not Hz
  bool abc_fragment = false;        // ABC: a text without X: is read as one tune
  size_t max_json_bytes = size_t(1) << 31;
};

struct NotesFile {
  std::string path;
  NotesFormat format = NotesFormat::Midi;
  NoteSequence sequence;            // MIDI, ABC (the first tune), JSON, CSV; source = path
  std::optional<ScoreNotes> txt;    // TXT: the mir_eval notes (Hz, velocities when given)
  std::string abc_text;             // ABC: the file's text
  size_t abc_tunes = 0;             // ABC: tunes in the file
};

// Throws InputError naming the file: unsupported extension ("notes: PATH: unsupported file type
// '.wav' (expected .mid, .midi, .abc, .json, .txt or .csv)"), unreadable or invalid contents.
NotesFile read_notes(const std::string& path, const ReadNotesOptions& opt = {});

}  // namespace tunescribe
