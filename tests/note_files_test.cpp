// read_notes (note_files.h): one reader by extension for MIDI, ABC, JSON note lists and mir_eval .txt.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "tunescribe/errors.h"
#include "tunescribe/midi.h"
#include "tunescribe/note_files.h"

namespace fs = std::filesystem;
using namespace tunescribe;

namespace {

void put(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

NoteSequence two_notes() {
  NoteSequence seq;
  seq.notes.push_back(Note{});
  seq.notes.back().pitch = 60;
  seq.notes.back().onset_s = 0.0;
  seq.notes.back().offset_s = 0.5;
  seq.notes.push_back(Note{});
  seq.notes.back().pitch = 64;
  seq.notes.back().onset_s = 0.5;
  seq.notes.back().offset_s = 1.0;
  return seq;
}

std::string error_of(const std::string& path, const ReadNotesOptions& opt = {}) {
  try {
    read_notes(path, opt);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(NoteFiles, OneListOfExtensionsChoosesTheFormat) {
  ASSERT_EQ(notes_extensions().size(), 6u);
  EXPECT_EQ(notes_format("a/b.MID"), NotesFormat::Midi);
  EXPECT_EQ(notes_format("b.midi"), NotesFormat::Midi);
  EXPECT_EQ(notes_format("b.abc"), NotesFormat::Abc);
  EXPECT_EQ(notes_format("b.Json"), NotesFormat::Json);
  EXPECT_EQ(notes_format("b.txt"), NotesFormat::Txt);
  EXPECT_EQ(notes_format("b.CSV"), NotesFormat::Csv);
  EXPECT_FALSE(notes_format("b.wav").has_value());
  EXPECT_FALSE(is_notes_path("noextension"));
  EXPECT_TRUE(is_notes_path("x.abc"));
}

TEST(NoteFiles, ReadsEachFormatIntoNotes) {
  const std::string dir = test::temp_dir("note_files");
  write_midi_file(dir + "/a.mid", two_notes());
  put(dir + "/a.json", notes_to_json(two_notes()).dump());
  put(dir + "/a.abc", "X:1\nT:one\nM:4/4\nL:1/4\nK:C\nCE|]\n\nX:2\nT:two\nK:C\nG|]\n");
  put(dir + "/a.txt", "0.0 0.5 261.63\n0.5 1.0 329.63\n");
  put(dir + "/frag.abc", "K:C\nCEG|]\n");
  for (const char* name : {"a.mid", "a.json", "a.abc"}) {
    const NotesFile f = read_notes(dir + "/" + name);
    ASSERT_EQ(f.sequence.notes.size(), 2u) << name;
    EXPECT_EQ(f.sequence.notes[0].pitch, 60) << name;
    EXPECT_EQ(f.sequence.notes[1].pitch, 64) << name;
    EXPECT_EQ(f.sequence.source, dir + "/" + name);
  }
  const NotesFile abc = read_notes(dir + "/a.abc");
  EXPECT_EQ(abc.format, NotesFormat::Abc);
  EXPECT_EQ(abc.abc_tunes, 2u);
  EXPECT_NE(abc.abc_text.find("T:two"), std::string::npos);
  const NotesFile txt = read_notes(dir + "/a.txt");
  ASSERT_TRUE(txt.txt.has_value());
  EXPECT_EQ(txt.txt->notes.size(), 2u);
  EXPECT_TRUE(txt.sequence.notes.empty());
  // A fragment without X: only when asked for.
  EXPECT_THROW(read_notes(dir + "/frag.abc"), InputError);
  ReadNotesOptions lenient;
  lenient.abc_fragment = true;
  EXPECT_EQ(read_notes(dir + "/frag.abc", lenient).sequence.notes.size(), 3u);
  fs::remove_all(dir);
}

TEST(NoteFiles, OneErrorForOtherExtensionsAndBadContents) {
  const std::string dir = test::temp_dir("note_files_bad");
  put(dir + "/x.wav", "RIFF");
  put(dir + "/bad.json", "{not json");
  put(dir + "/a.txt", "0.0 0.5 261.63\n");
  EXPECT_EQ(error_of(dir + "/x.wav"),
            "notes: " + dir + "/x.wav: unsupported file type '.wav' (expected .mid, .midi, .abc, .json, .txt or .csv)");
  ReadNotesOptions midi_only;
  midi_only.formats = {NotesFormat::Midi};
  midi_only.also_expected = "audio (.wav)";
  EXPECT_EQ(error_of(dir + "/a.txt", midi_only),
            "notes: " + dir + "/a.txt: unsupported file type '.txt' (expected audio (.wav), .mid or .midi)");
  EXPECT_NE(error_of(dir + "/bad.json").find("bad.json: not valid JSON"), std::string::npos);
  EXPECT_NE(error_of(dir + "/missing.mid").find("missing.mid"), std::string::npos);
  fs::remove_all(dir);
}
