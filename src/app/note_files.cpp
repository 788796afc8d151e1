#include "tunescribe/note_files.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "tunescribe/abc_reader.h"
#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/midi.h"
#include "tunescribe/note_tables.h"

namespace tunescribe {

const std::vector<NotesExtension>& notes_extensions() {
  static const std::vector<NotesExtension> list = {{".mid", NotesFormat::Midi},
                                                   {".midi", NotesFormat::Midi},
                                                   {".abc", NotesFormat::Abc},
                                                   {".json", NotesFormat::Json},
                                                   {".txt", NotesFormat::Txt},
                                                   {".csv", NotesFormat::Csv}};
  return list;
}

std::optional<NotesFormat> notes_format(const std::string& path) {
  const std::string ext = lower_extension(path);
  for (const auto& e : notes_extensions())
    if (ext == e.extension) return e.format;
  return std::nullopt;
}

bool is_notes_path(const std::string& path) { return notes_format(path).has_value(); }

namespace {

bool allowed(const ReadNotesOptions& opt, NotesFormat f) {
  return std::find(opt.formats.begin(), opt.formats.end(), f) != opt.formats.end();
}

InputError unsupported(const std::string& path, const ReadNotesOptions& opt) {
  std::vector<std::string> items;
  if (!opt.also_expected.empty()) items.push_back(opt.also_expected);
  for (const auto& e : notes_extensions())
    if (allowed(opt, e.format)) items.push_back(e.extension);
  std::string list;
  for (size_t i = 0; i < items.size(); ++i)
    list += (i == 0 ? "" : i + 1 == items.size() ? " or " : ", ") + items[i];
  return InputError("notes: " + path + ": unsupported file type '" + lower_extension(path) + "' (expected " + list +
                    ")");
}

NoteSequence read_json_notes(const std::string& path, size_t max_bytes) {
  const std::string text = read_file_text(path, max_bytes);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw InputError("notes: " + path + ": not valid JSON (" + e.what() + ")");
  }
  return notes_from_json(j, path);
}

void read_abc_notes(NotesFile& f, bool fragment) {
  f.abc_text = read_file_text(f.path);
  std::vector<AbcTuneNotes> tunes;
  try {
    tunes = read_abc_text(f.abc_text, f.path);
  } catch (const InputError&) {
    // A bare fragment without X: (common in model output): read it as one tune.
    if (!fragment || f.abc_text.find("X:") != std::string::npos) throw;
    tunes = read_abc_text("X:1\n" + f.abc_text, f.path);
  }
  if (tunes.empty()) throw InputError("notes: " + f.path + ": no ABC tune (X:) found");
  f.abc_tunes = tunes.size();
  f.sequence = std::move(tunes.front().sequence);
}

}  // namespace

NotesFile read_notes(const std::string& path, const ReadNotesOptions& opt) {
  const auto format = notes_format(path);
  if (!format || !allowed(opt, *format)) throw unsupported(path, opt);
  NotesFile f;
  f.path = path;
  f.format = *format;
  switch (*format) {
    case NotesFormat::Midi: {
      MidiReadOptions mo;
      mo.apply_sustain = opt.apply_sustain;
      f.sequence = read_midi_file(path, mo);
      break;
    }
    case NotesFormat::Abc:
      read_abc_notes(f, opt.abc_fragment);
      break;
    case NotesFormat::Json:
      f.sequence = read_json_notes(path, opt.max_json_bytes);
      break;
    case NotesFormat::Csv:
      f.sequence = read_notes_csv(path);
      break;
    case NotesFormat::Txt:
      f.txt = read_mir_eval_txt(path, opt.txt_pitch_midi);
      return f;
  }
  f.sequence.source = path;
  return f;
}

}  // namespace tunescribe
