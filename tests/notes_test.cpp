#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tunescribe/errors.h"
#include "tunescribe/notes.h"

using namespace tunescribe;

TEST(Notes, JsonRoundTripKeepsEveryField) {
  NoteSequence s;
  s.notes.push_back({0.5, 1.25, 64, 90, 40, false});
  s.notes.push_back({0.0, 0.01, 36, 100, 0, true});
  s.sort();
  auto j = notes_to_json(s);
  EXPECT_EQ(j["notes"][0]["instrument"], "Drums");
  EXPECT_EQ(j["notes"][1]["instrument"], "Violin");
  auto back = notes_from_json(j, "x.json");
  ASSERT_EQ(back.notes.size(), 2u);
  EXPECT_EQ(back.notes[0], s.notes[0]);
  EXPECT_EQ(back.notes[1], s.notes[1]);
}

TEST(Notes, JsonRejectsBadNotesNamingTheFile) {
  auto j = nlohmann::json::parse(R"({"notes":[{"onset_s":1,"offset_s":0.5,"pitch":60}]})");
  try {
    notes_from_json(j, "bad.json");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("offset_s before onset_s"), std::string::npos);
  }
  EXPECT_THROW(notes_from_json(nlohmann::json::parse(R"({"x":1})"), "y.json"), InputError);
  EXPECT_THROW(notes_from_json(nlohmann::json::parse(R"([{"onset_s":0,"offset_s":1,"pitch":300}])"), "z"), InputError);
}

TEST(Notes, GmProgramNames) {
  EXPECT_EQ(gm_program_name(0), "Acoustic Grand Piano");
  EXPECT_EQ(gm_program_name(127), "Gunshot");
  EXPECT_EQ(gm_program_from_string("violin"), 40);
  EXPECT_EQ(gm_program_from_string("Flute"), 73);
  EXPECT_EQ(gm_program_from_string("73"), 73);
  EXPECT_EQ(gm_program_from_string("128"), -1);
  EXPECT_EQ(gm_program_from_string("kazoo-xyz"), -1);
}

TEST(Notes, HzMidiConversion) {
  EXPECT_NEAR(midi_to_hz(69), 440.0, 1e-9);
  EXPECT_NEAR(hz_to_midi(261.6255653), 60.0, 1e-6);
}
