#include "tunescribe/notes.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>
#include <tuple>

#include "tunescribe/errors.h"

namespace tunescribe {

bool Note::operator==(const Note& o) const {
  return onset_s == o.onset_s && offset_s == o.offset_s && pitch == o.pitch &&
         velocity == o.velocity && program == o.program && is_drum == o.is_drum;
}

void NoteSequence::sort() {
  std::stable_sort(notes.begin(), notes.end(), [](const Note& a, const Note& b) {
    return std::make_tuple(a.onset_s, a.is_drum, a.program, a.pitch, a.offset_s) <
           std::make_tuple(b.onset_s, b.is_drum, b.program, b.pitch, b.offset_s);
  });
}

double NoteSequence::end_time() const {
  double t = duration_s;
  for (const auto& n : notes) t = std::max(t, n.offset_s);
  return t;
}

namespace {
const char* const kGmNames[128] = {
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet",
    "Celesta", "Glockenspiel", "Music Box", "Vibraphone",
    "Marimba", "Xylophone", "Tubular Bells", "Dulcimer",
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ",
    "Reed Organ", "Accordion", "Harmonica", "Tango Accordion",
    "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)", "Electric Guitar (clean)",
    "Electric Guitar (muted)", "Overdriven Guitar", "Distortion Guitar", "Guitar Harmonics",
    "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass",
    "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2",
    "Violin", "Viola", "Cello", "Contrabass",
    "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani",
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2",
    "Choir Aahs", "Voice Oohs", "Synth Voice", "Orchestra Hit",
    "Trumpet", "Trombone", "Tuba", "Muted Trumpet",
    "French Horn", "Brass Section", "Synth Brass 1", "Synth Brass 2",
    "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax",
    "Oboe", "English Horn", "Bassoon", "Clarinet",
    "Piccolo", "Flute", "Recorder", "Pan Flute",
    "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)",
    "Lead 5 (charang)", "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)",
    "Pad 5 (bowed)", "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)",
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)",
    "FX 5 (brightness)", "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)",
    "Sitar", "Banjo", "Shamisen", "Koto",
    "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock",
    "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal",
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet",
    "Telephone Ring", "Helicopter", "Applause", "Gunshot"};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
}  // namespace

std::string gm_program_name(int program, bool is_drum) {
  if (is_drum) return "Drums";
  if (program < 0 || program > 127) return "Unknown";
  return kGmNames[program];
}

int gm_program_from_string(const std::string& s) {
  if (s.empty()) return -1;
  bool digits = std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  if (digits) {
    if (s.size() > 3) return -1;
    int v = std::stoi(s);
    return (v >= 0 && v <= 127) ? v : -1;
  }
  const std::string ls = lower(s);
  for (int p = 0; p < 128; ++p)
    if (lower(kGmNames[p]) == ls) return p;
  // Also accept a unique prefix / common short names ("piano", "violin").
  for (int p = 0; p < 128; ++p)
    if (lower(kGmNames[p]).find(ls) != std::string::npos) return p;
  return -1;
}

nlohmann::json notes_to_json(const NoteSequence& seq) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& n : seq.notes) {
    arr.push_back({{"onset_s", n.onset_s},
                   {"offset_s", n.offset_s},
                   {"pitch", n.pitch},
                   {"velocity", n.velocity},
                   {"program", n.program},
                   {"is_drum", n.is_drum},
                   {"instrument", gm_program_name(n.program, n.is_drum)}});
    if (n.has_confidence()) arr.back()["confidence"] = double(n.confidence);
  }
  return {{"notes", arr}, {"duration_s", seq.end_time()}};
}

NoteSequence notes_from_json(const nlohmann::json& j, const std::string& what) {
  NoteSequence seq;
  seq.source = what;
  const nlohmann::json* arr = nullptr;
  if (j.is_array()) arr = &j;
  else if (j.is_object() && j.contains("notes") && j["notes"].is_array()) arr = &j["notes"];
  if (!arr) throw InputError(what + ": JSON note list must be an array or an object with a \"notes\" array");
  size_t i = 0;
  for (const auto& e : *arr) {
    auto fail = [&](const std::string& why) {
      throw InputError(what + ": note " + std::to_string(i) + ": " + why);
    };
    if (!e.is_object()) fail("not an object");
    Note n;
    try {
      if (!e.contains("onset_s") || !e.contains("offset_s") || !e.contains("pitch"))
        fail("needs onset_s, offset_s and pitch");
      n.onset_s = e.at("onset_s").get<double>();
      n.offset_s = e.at("offset_s").get<double>();
      n.pitch = e.at("pitch").get<int>();
      n.velocity = e.value("velocity", 100);
      n.program = e.value("program", 0);
      n.is_drum = e.value("is_drum", false);
      if (e.contains("confidence") && e["confidence"].is_number()) {
        const double c = e["confidence"].get<double>();
        if (!(c >= 0.0 && c <= 1.0)) fail("confidence out of 0..1");
        n.confidence = float(c);
      }
    } catch (const nlohmann::json::exception& ex) {
      fail(std::string("bad field type: ") + ex.what());
    }
    if (!std::isfinite(n.onset_s) || !std::isfinite(n.offset_s) || n.onset_s < 0)
      fail("times must be finite and >= 0");
    if (n.offset_s < n.onset_s) fail("offset_s before onset_s");
    if (n.pitch < 0 || n.pitch > 127) fail("pitch out of 0..127");
    if (n.velocity < 0 || n.velocity > 127) fail("velocity out of 0..127");
    if (n.program < 0 || n.program > 127) fail("program out of 0..127");
    seq.notes.push_back(n);
    ++i;
  }
  if (j.is_object() && j.contains("duration_s") && j["duration_s"].is_number())
    seq.duration_s = j["duration_s"].get<double>();
  seq.sort();
  return seq;
}

double midi_to_hz(double pitch) { return 440.0 * std::pow(2.0, (pitch - 69.0) / 12.0); }
double hz_to_midi(double hz) { return 69.0 + 12.0 * std::log2(hz / 440.0); }

}  // namespace tunescribe
