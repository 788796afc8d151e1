// reward.cpp — the ABC reward of scoring.md §2 (Flynn 2024 and the corrected
// variant). Every regex of the original is emulated by hand so that Python's
// `re` semantics (`.` excludes only '\n', `$` also matches before a final
// newline) are reproduced exactly, independent of std::regex.
#include "tunescribe/reward.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>

#include "tunescribe/abc_reader.h"
#include "tunescribe/errors.h"
#include "tunescribe/music.h"

namespace tunescribe {

namespace reward_detail {

// pretty_midi.INSTRUMENT_MAP (scoring.md Appendix A), spelling included.
const std::vector<std::string>& pretty_midi_gm_names() {
  static const std::vector<std::string> names = {
      "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
      "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet", "Celesta", "Glockenspiel",
      "Music Box", "Vibraphone", "Marimba", "Xylophone", "Tubular Bells", "Dulcimer", "Drawbar Organ",
      "Percussive Organ", "Rock Organ", "Church Organ", "Reed Organ", "Accordion", "Harmonica",
      "Tango Accordion", "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)",
      "Electric Guitar (clean)", "Electric Guitar (muted)", "Overdriven Guitar", "Distortion Guitar",
      "Guitar Harmonics", "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass",
      "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2", "Violin", "Viola", "Cello", "Contrabass",
      "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani", "String Ensemble 1",
      "String Ensemble 2", "Synth Strings 1", "Synth Strings 2", "Choir Aahs", "Voice Oohs", "Synth Choir",
      "Orchestra Hit", "Trumpet", "Trombone", "Tuba", "Muted Trumpet", "French Horn", "Brass Section",
      "Synth Brass 1", "Synth Brass 2", "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax", "Oboe",
      "English Horn", "Bassoon", "Clarinet", "Piccolo", "Flute", "Recorder", "Pan Flute", "Blown bottle",
      "Shakuhachi", "Whistle", "Ocarina", "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)",
      "Lead 4 chiff", "Lead 5 (charang)", "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
      "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)", "Pad 5 (bowed)",
      "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)", "FX 1 (rain)", "FX 2 (soundtrack)",
      "FX 3 (crystal)", "FX 4 (atmosphere)", "FX 5 (brightness)", "FX 6 (goblins)", "FX 7 (echoes)",
      "FX 8 (sci-fi)", "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba", "Bagpipe", "Fiddle", "Shanai",
      "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock", "Taiko Drum", "Melodic Tom", "Synth Drum",
      "Reverse Cymbal", "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet", "Telephone Ring",
      "Helicopter", "Applause", "Gunshot"};
  return names;
}

}  // namespace reward_detail

namespace {

using namespace reward_detail;

constexpr int kDrumProgram = 128;  // corrected mode: a drum voice

bool is_py_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_note_letter(char c) { return (c >= 'A' && c <= 'G') || (c >= 'a' && c <= 'g'); }

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string strip(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && is_py_space(s[b])) ++b;
  while (e > b && is_py_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

const std::vector<std::string>& gm_lower() {
  static const std::vector<std::string> v = [] {
    std::vector<std::string> out;
    for (const auto& n : pretty_midi_gm_names()) out.push_back(lower(n));
    return out;
  }();
  return v;
}

std::string program_name_lower(int program) {
  if (program == kDrumProgram) return "drums";
  if (program < 0 || program > 127) return "";
  return gm_lower()[static_cast<size_t>(program)];
}

// Python: re.search(r'<F>:\s*\(?\s*(<digits pattern>)', text), F = 'M' or 'Q'.
// Returns the captured text or "" when there is no match.
std::string flynn_search_field(const std::string& t, char field, bool fraction) {
  for (size_t p = 0; p + 1 < t.size(); ++p) {
    if (t[p] != field || t[p + 1] != ':') continue;
    size_t i = p + 2;
    while (i < t.size() && is_py_space(t[i])) ++i;
    if (i < t.size() && t[i] == '(') ++i;
    while (i < t.size() && is_py_space(t[i])) ++i;
    size_t s = i;
    while (i < t.size() && is_digit(t[i])) ++i;
    if (i == s) continue;
    if (!fraction) return t.substr(s, i - s);
    if (i >= t.size() || t[i] != '/') continue;
    size_t j = i + 1;
    while (j < t.size() && is_digit(t[j])) ++j;
    if (j == i + 1) continue;
    return t.substr(s, j - s);
  }
  return "";
}

long long parse_ll_capped(const std::string& digits) {
  // Python ints are unbounded; cap absurd values instead of overflowing.
  if (digits.size() > 15) return 999999999999999LL;
  return std::atoll(digits.c_str());
}

// Corrected-mode helpers -------------------------------------------------------

struct KeySig {
  int acc[7] = {0, 0, 0, 0, 0, 0, 0};  // per letter C D E F G A B
};

int letter_index(char c) {
  switch (std::toupper(static_cast<unsigned char>(c))) {
    case 'C': return 0;
    case 'D': return 1;
    case 'E': return 2;
    case 'F': return 3;
    case 'G': return 4;
    case 'A': return 5;
    case 'B': return 6;
    default: return -1;
  }
}
const int kPitchClass[7] = {0, 2, 4, 5, 7, 9, 11};

// K: value → key signature (tonic + mode; "none"/"HP"/empty → no accidentals; an unknown mode
// or a clef=… after the tonic → major; clamped to 7 accidentals).
KeySig corrected_key_signature(const std::string& value) {
  KeySig k;
  std::string v = strip(value);
  if (v.empty() || !(v[0] >= 'A' && v[0] <= 'G')) return k;  // none, HP, clef only …
  size_t i = 0;
  int fifths = 0;
  parse_tonic(v, &i, &fifths);
  while (i < v.size() && v[i] == ' ') ++i;
  std::string mode;
  while (i < v.size() && std::isalpha(static_cast<unsigned char>(v[i]))) mode += static_cast<char>(std::tolower(v[i++]));
  const int offset = mode_fifths_offset(mode.substr(0, std::min<size_t>(3, mode.size())));
  if (offset != kUnknownMode) fifths += offset;
  fifths = std::max(-7, std::min(7, fifths));
  for (int li = 0; li < 7; ++li) k.acc[li] = signature_alter(fifths, "CDEFGAB"[li]);
  return k;
}

struct VoiceState {
  RewardVoice voice;
  KeySig key;
  std::map<int, int> bar_acc;      // (letter*100 + octave offset) → accidental
  std::vector<int> last_event;     // pitches of the last note/chord
  std::vector<int> tied_prev;      // pitches tied into the next event
};

// name="…" / nm="…" (quoted, or unquoted up to whitespace).
std::string voice_name_from_header(const std::string& rest) {
  for (const char* key : {"name=", "nm="}) {
    size_t p = 0;
    while ((p = rest.find(key, p)) != std::string::npos) {
      if (p > 0 && std::isalnum(static_cast<unsigned char>(rest[p - 1]))) {
        ++p;
        continue;
      }
      size_t i = p + std::string(key).size();
      if (i < rest.size() && rest[i] == '"') {
        size_t e = rest.find('"', i + 1);
        return rest.substr(i + 1, (e == std::string::npos ? rest.size() : e) - i - 1);
      }
      size_t e = i;
      while (e < rest.size() && !is_py_space(rest[e])) ++e;
      return rest.substr(i, e - i);
    }
  }
  return "";
}

class CorrectedParser {
 public:
  RewardInput parse(const std::string& text) {
    RewardInput in;
    size_t pos = 0;
    while (pos <= text.size()) {
      size_t eol = text.find('\n', pos);
      if (eol == std::string::npos) eol = text.size();
      std::string line = text.substr(pos, eol - pos);
      pos = eol + 1;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      handle_line(line, in);
      if (eol == text.size()) break;
    }
    for (auto& v : voices_) in.voices.push_back(std::move(v.voice));
    return in;
  }

 private:
  std::vector<VoiceState> voices_;
  int current_ = -1;
  KeySig global_key_;
  bool music_seen_ = false;

  int voice_index(const std::string& id) {
    for (size_t i = 0; i < voices_.size(); ++i)
      if (voices_[i].voice.id == id) return static_cast<int>(i);
    VoiceState v;
    v.voice.id = id;
    v.key = global_key_;
    voices_.push_back(v);
    return static_cast<int>(voices_.size() - 1);
  }

  VoiceState& current() {
    if (current_ < 0) current_ = voice_index("");
    return voices_[static_cast<size_t>(current_)];
  }

  void set_key(const std::string& value) {
    const KeySig k = corrected_key_signature(value);
    if (!music_seen_) {
      global_key_ = k;
      for (auto& v : voices_) v.key = k;
    } else {
      current().key = k;
    }
  }

  void switch_voice(const std::string& spec) {
    // spec: "ID rest…"
    std::string s = strip(spec);
    size_t e = 0;
    while (e < s.size() && !is_py_space(s[e]) && s[e] != ']') ++e;
    const std::string id = s.substr(0, e);
    if (id.empty()) return;
    current_ = voice_index(id);
    const std::string name = voice_name_from_header(s.substr(e));
    if (!name.empty() && voices_[static_cast<size_t>(current_)].voice.name.empty())
      voices_[static_cast<size_t>(current_)].voice.name = name;
  }

  void handle_line(const std::string& raw, RewardInput& in) {
    // Header fields ^\s*([MQLKV]):(.*)$ — first occurrence of M and Q.
    size_t b = 0;
    while (b < raw.size() && is_py_space(raw[b])) ++b;
    if (b + 1 < raw.size() && raw[b] == '%' && raw[b + 1] == '%') {
      directive(raw.substr(b + 2));
      return;
    }
    std::string line = raw;
    // Strip % comments (not \%).
    for (size_t i = 0; i < line.size(); ++i)
      if (line[i] == '%' && (i == 0 || line[i - 1] != '\\')) {
        line.resize(i);
        break;
      }
    if (b + 1 < line.size() && std::isalpha(static_cast<unsigned char>(line[b])) && line[b + 1] == ':') {
      const char f = line[b];
      const std::string value = line.substr(b + 2);
      if (f == 'M' && !in.meter_present) {
        in.meter_present = true;
        parse_meter(value, in);
      } else if (f == 'Q' && !in.tempo_present) {
        in.tempo_present = true;
        parse_tempo(value, in);
      } else if (f == 'K') {
        set_key(value);
      } else if (f == 'V') {
        switch_voice(value);
      }
      return;  // other fields (T:, w:, L:, …) carry no notes
    }
    if (b + 1 < line.size() && line[b] == '+' && line[b + 1] == ':') return;  // field continuation
    scan_music(line);
  }

  void directive(const std::string& d) {
    // %%MIDI program N  /  %%MIDI channel 10 (drums)
    std::string s = strip(d);
    if (lower(s.substr(0, 4)) != "midi") return;
    std::string rest = strip(s.substr(4));
    const std::string lr = lower(rest);
    auto number_after = [&](size_t n) {
      std::string t = strip(rest.substr(n));
      if (t.empty() || !is_digit(t[0])) return -1;
      return std::atoi(t.c_str());
    };
    if (current_ < 0) return;  // header-level directive: applies to no voice in particular
    if (lr.rfind("program", 0) == 0) {
      const int p = number_after(7);
      if (p >= 0 && p <= 127 && current().voice.program != kDrumProgram) current().voice.program = p;
    } else if (lr.rfind("channel", 0) == 0) {
      if (number_after(7) == 10) current().voice.program = kDrumProgram;
    }
  }

  static void parse_meter(const std::string& value, RewardInput& in) {
    std::string v = strip(value);
    int symbol_num = 0, symbol_den = 0;
    if (meter_symbol(v, &symbol_num, &symbol_den)) {
      in.has_meter = true, in.meter_num = symbol_num, in.meter_den = symbol_den;
      return;
    }
    size_t i = 0;
    while (i < v.size() && is_digit(v[i])) ++i;
    if (i == 0 || i >= v.size() || v[i] != '/') return;
    size_t j = i + 1;
    while (j < v.size() && is_digit(v[j])) ++j;
    if (j == i + 1) return;
    const long long n = parse_ll_capped(v.substr(0, i)), d = parse_ll_capped(v.substr(i + 1, j - i - 1));
    if (n <= 0 || d <= 0) return;
    in.has_meter = true, in.meter_num = n, in.meter_den = d;
  }

  static void parse_tempo(const std::string& value, RewardInput& in) {
    // Drop quoted text, then "a/b=N" or "N".
    std::string v;
    bool in_quote = false;
    for (char c : value) {
      if (c == '"') in_quote = !in_quote;
      else if (!in_quote) v += c;
    }
    v = strip(v);
    auto parse_num = [](const std::string& s, double& out) {
      std::string t = strip(s);
      if (t.empty()) return false;
      char* e = nullptr;
      out = std::strtod(t.c_str(), &e);
      return *e == '\0' && std::isfinite(out) && out > 0;
    };
    const size_t eq = v.find('=');
    double bpm = 0;
    if (eq == std::string::npos) {
      if (!parse_num(v, bpm)) return;
    } else {
      double n = 0;
      if (!parse_num(v.substr(eq + 1), n)) return;
      std::string frac = strip(v.substr(0, eq));
      const size_t sp = frac.find(' ');  // "1/4 3/8=N": first fraction counts
      if (sp != std::string::npos) frac = frac.substr(0, sp);
      const size_t sl = frac.find('/');
      double a = 0, bden = 0;
      if (sl == std::string::npos || !parse_num(frac.substr(0, sl), a) || !parse_num(frac.substr(sl + 1), bden))
        return;
      bpm = n * (a / bden) / 0.25;
    }
    in.has_tempo = true;
    in.tempo_bpm = bpm;
  }

  void end_event(VoiceState& v, const std::vector<int>& pitches) {
    v.tied_prev.clear();
    v.last_event = pitches;
  }

  void scan_music(const std::string& s) {
    bool in_chord = false;
    std::vector<int> chord, chord_tied;
    int last_token_pitch = -1000;
    size_t i = 0;
    const size_t n = s.size();
    while (i < n) {
      const char c = s[i];
      if (c == '"') {
        const size_t e = s.find('"', i + 1);
        i = e == std::string::npos ? n : e + 1;
        continue;
      }
      if (c == '!' || c == '+') {
        const size_t e = s.find(c, i + 1);
        i = e == std::string::npos ? i + 1 : e + 1;
        continue;
      }
      if (c == '{') {  // grace notes are ornaments: skipped
        const size_t e = s.find('}', i + 1);
        i = e == std::string::npos ? n : e + 1;
        continue;
      }
      if (c == '[' && i + 2 < n && std::isalpha(static_cast<unsigned char>(s[i + 1])) && s[i + 2] == ':') {
        size_t e = s.find(']', i + 3);
        if (e == std::string::npos) e = n;
        const std::string value = s.substr(i + 3, e - i - 3);
        if (s[i + 1] == 'V') switch_voice(value);
        else if (s[i + 1] == 'K') current().key = corrected_key_signature(value);
        i = e + 1;
        continue;
      }
      if (c == '[' && i + 1 < n && s[i + 1] == '|') {
        current().bar_acc.clear();
        i += 2;
        continue;
      }
      if (c == '[') {
        in_chord = true;
        chord.clear();
        chord_tied.clear();
        ++i;
        continue;
      }
      if (c == ']') {
        if (in_chord) {
          in_chord = false;
          VoiceState& v = current();
          end_event(v, chord);
          if (!chord_tied.empty()) v.tied_prev = chord_tied;
        }
        ++i;
        continue;
      }
      if (c == '|') {
        current().bar_acc.clear();
        ++i;
        continue;
      }
      if (c == '-') {
        VoiceState& v = current();
        if (in_chord) {
          if (last_token_pitch != -1000) chord_tied.push_back(last_token_pitch);
        } else {
          v.tied_prev = v.last_event;
        }
        ++i;
        continue;
      }
      if (c == '^' || c == '_' || c == '=' || is_note_letter(c)) {
        size_t j = i;
        int acc = 0;
        bool explicit_acc = false;
        if (s.compare(j, 2, "^^") == 0) acc = 2, j += 2, explicit_acc = true;
        else if (s.compare(j, 2, "__") == 0) acc = -2, j += 2, explicit_acc = true;
        else if (s[j] == '^') acc = 1, j += 1, explicit_acc = true;
        else if (s[j] == '_') acc = -1, j += 1, explicit_acc = true;
        else if (s[j] == '=') acc = 0, j += 1, explicit_acc = true;
        if (j >= n || !is_note_letter(s[j])) {
          i = j > i ? j : i + 1;
          continue;
        }
        const char letter = s[j++];
        int octave = (letter >= 'a' && letter <= 'g') ? 1 : 0;
        while (j < n && (s[j] == ',' || s[j] == '\'')) octave += s[j++] == '\'' ? 1 : -1;
        const int li = letter_index(letter);
        VoiceState& v = current();
        const int slot = li * 100 + octave + 50;
        if (explicit_acc) v.bar_acc[slot] = acc;
        else if (v.bar_acc.count(slot)) acc = v.bar_acc[slot];
        else acc = v.key.acc[li];
        const int pitch = 60 + kPitchClass[li] + 12 * octave + acc;
        music_seen_ = true;
        auto tied = std::find(v.tied_prev.begin(), v.tied_prev.end(), pitch);
        if (tied != v.tied_prev.end()) v.tied_prev.erase(tied);  // continuation of a tied note
        else v.voice.pitches.push_back(pitch);
        last_token_pitch = pitch;
        if (in_chord) chord.push_back(pitch);
        else end_event(v, {pitch});
        i = j;
        continue;
      }
      ++i;
    }
  }
};

}  // namespace

// ---------------------------------------------------------------------------

namespace reward_detail {

double metre_component(double x, double t) {
  if (x <= t) return 0.5 * x / t;
  return 0.5 + 0.5 * (1.0 - std::exp(-(x - t) / t));
}

double metre_loss(long long num_a, long long den_a, long long num_b, long long den_b) {
  const double n = static_cast<double>(std::llabs(num_a - num_b));
  const double d = static_cast<double>(std::llabs(den_a - den_b));
  const double r = std::fabs(static_cast<double>(num_a) / static_cast<double>(den_a) -
                             static_cast<double>(num_b) / static_cast<double>(den_b));
  return std::min(1.0, 0.3 * metre_component(n, 1) + 0.3 * metre_component(d, 2) + 0.4 * metre_component(r, 0.25));
}

double flynn_tempo_loss(double delta) {
  const double l = delta <= 10 ? 0.025 * delta : 0.5 + 0.5 * (1.0 - std::exp(-(delta - 10) / 50.0));
  return std::min(1.0, l);
}

double corrected_tempo_loss(double delta) {
  const double l = delta <= 10 ? 0.05 * delta : 0.5 + 0.5 * (1.0 - std::exp(-(delta - 10) / 50.0));
  return std::min(1.0, l);
}

int flynn_note_to_number(const std::string& tok) {
  if (tok.empty()) return 60;
  const int li = letter_index(tok[0]);
  const int base = li >= 0 && is_note_letter(tok[0]) ? kPitchClass[li] : 0;
  int octave = 0, acc = 0;
  for (size_t i = 1; i < tok.size(); ++i) {
    const char c = tok[i];
    if (c == ',') --octave;
    else if (c == '\'') ++octave;
    else if (c == '^') ++acc;
    else if (c == '_') --acc;
    else break;
  }
  return base + acc + 12 * (octave + 5);
}

std::vector<int> flynn_note_numbers(const std::string& voice_text) {
  std::string s;
  for (char c : voice_text)
    if (!is_py_space(c)) s += c;
  std::vector<int> out;
  size_t p = 0;
  while (p < s.size()) {
    size_t j = p;
    while (j < s.size() && (s[j] == '^' || s[j] == '_')) ++j;
    if (j < s.size() && is_note_letter(s[j])) {
      size_t e = j + 1;
      while (e < s.size() && (s[e] == ',' || s[e] == '\'')) ++e;
      out.push_back(flynn_note_to_number(s.substr(p, e - p)));
      p = e;
    } else {
      ++p;
    }
  }
  return out;
}

std::vector<std::string> flynn_split_voices(const std::string& t) {
  // re.findall(r'(V:\d+.*?\n(?:.*?\n)*?)(?=V:|$)', t), then drop each
  // match's first line.
  const size_t n = t.size();
  auto lookahead = [&](size_t q) {
    return (q + 1 < n && t[q] == 'V' && t[q + 1] == ':') || q == n || (q == n - 1 && t[q] == '\n');
  };
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < n) {
    size_t p = pos, end = 0;
    bool found = false;
    for (; p + 2 < n && !found; ++p) {
      if (t[p] != 'V' || t[p + 1] != ':' || !is_digit(t[p + 2])) continue;
      size_t q = p + 2;
      while (q < n && is_digit(t[q])) ++q;
      size_t nl = t.find('\n', q);
      if (nl == std::string::npos) continue;
      size_t cur = nl + 1;
      while (true) {
        if (lookahead(cur)) {
          found = true;
          end = cur;
          break;
        }
        nl = t.find('\n', cur);
        if (nl == std::string::npos) break;
        cur = nl + 1;
      }
      if (found) break;
    }
    if (!found) break;
    const std::string match = t.substr(p, end - p);
    const size_t first_nl = match.find('\n');
    out.push_back(first_nl == std::string::npos ? std::string() : match.substr(first_nl + 1));
    pos = end;
  }
  return out;
}

std::vector<std::string> flynn_instrument_names(const std::string& t) {
  // re.findall(r'V:\d+[^\n]*name="?([^"\n]*)"?', t)
  const size_t n = t.size();
  std::vector<std::string> out;
  size_t p = 0;
  while (p + 2 < n) {
    if (t[p] != 'V' || t[p + 1] != ':' || !is_digit(t[p + 2])) {
      ++p;
      continue;
    }
    size_t q = p + 3;  // at least one digit; [^\n]* may start after any of them
    size_t eol = t.find('\n', p);
    if (eol == std::string::npos) eol = n;
    // Greedy [^\n]*: the last "name=" on the line that starts at or after q.
    size_t k = std::string::npos;
    if (eol >= q + 5) {
      const size_t f = t.rfind("name=", eol - 5);
      if (f != std::string::npos && f >= q) k = f;
    }
    if (k == std::string::npos) {
      ++p;
      continue;
    }
    size_t i = k + 5;
    if (i < n && t[i] == '"') ++i;
    size_t e = i;
    while (e < n && t[e] != '"' && t[e] != '\n') ++e;
    out.push_back(t.substr(i, e - i));
    if (e < n && t[e] == '"') ++e;
    p = e;
  }
  return out;
}

double normalized_levenshtein(const std::vector<int>& a, const std::vector<int>& b) {
  if (a.empty() && b.empty()) return 0.0;
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    prev.swap(cur);
  }
  return static_cast<double>(prev[b.size()]) / static_cast<double>(std::max(a.size(), b.size()));
}

double difflib_ratio(const std::string& a, const std::string& b) {
  const size_t la = a.size(), lb = b.size();
  if (la + lb == 0) return 1.0;
  std::unordered_map<char, std::vector<size_t>> b2j;
  for (size_t j = 0; j < lb; ++j) b2j[b[j]].push_back(j);
  if (lb >= 200) {  // autojunk: drop "popular" elements
    const size_t ntest = lb / 100 + 1;
    for (auto it = b2j.begin(); it != b2j.end();)
      it = it->second.size() > ntest ? b2j.erase(it) : std::next(it);
  }
  auto longest = [&](size_t alo, size_t ahi, size_t blo, size_t bhi, size_t& bi, size_t& bj) {
    size_t besti = alo, bestj = blo, bestsize = 0;
    std::unordered_map<size_t, size_t> j2len, newj2len;
    for (size_t i = alo; i < ahi; ++i) {
      newj2len.clear();
      auto f = b2j.find(a[i]);
      if (f != b2j.end()) {
        for (size_t j : f->second) {
          if (j < blo) continue;
          if (j >= bhi) break;
          size_t k = 1;
          if (j > 0) {
            auto g = j2len.find(j - 1);
            if (g != j2len.end()) k = g->second + 1;
          }
          newj2len[j] = k;
          if (k > bestsize) besti = i - k + 1, bestj = j - k + 1, bestsize = k;
        }
      }
      j2len.swap(newj2len);
    }
    while (besti > alo && bestj > blo && a[besti - 1] == b[bestj - 1]) --besti, --bestj, ++bestsize;
    while (besti + bestsize < ahi && bestj + bestsize < bhi && a[besti + bestsize] == b[bestj + bestsize]) ++bestsize;
    bi = besti;
    bj = bestj;
    return bestsize;
  };
  struct Range {
    size_t alo, ahi, blo, bhi;
  };
  std::vector<Range> queue = {{0, la, 0, lb}};
  size_t matches = 0;
  while (!queue.empty()) {
    const Range r = queue.back();
    queue.pop_back();
    size_t i = 0, j = 0;
    const size_t k = longest(r.alo, r.ahi, r.blo, r.bhi, i, j);
    if (k) {
      matches += k;
      if (r.alo < i && r.blo < j) queue.push_back({r.alo, i, r.blo, j});
      if (i + k < r.ahi && j + k < r.bhi) queue.push_back({i + k, r.ahi, j + k, r.bhi});
    }
  }
  return 2.0 * static_cast<double>(matches) / static_cast<double>(la + lb);
}

int flynn_gm_program(const std::string& name) {
  const std::string word = lower(strip(name));
  const auto& names = gm_lower();
  double best = -1;
  int best_i = -1;
  for (size_t i = 0; i < names.size(); ++i) {
    const double r = difflib_ratio(names[i], word);
    if (r < 0.6) continue;
    if (r > best || (r == best && names[i] > names[static_cast<size_t>(best_i)])) {
      best = r;
      best_i = static_cast<int>(i);
    }
  }
  return best_i;
}

int corrected_gm_program(const std::string& name) {
  std::string s = lower(strip(name));
  // Collapse whitespace.
  {
    std::string t;
    for (char c : s)
      if (!is_py_space(c) || (!t.empty() && t.back() != ' ')) t += is_py_space(c) ? ' ' : c;
    s = strip(t);
  }
  if (s.empty()) return -1;
  const auto& names = gm_lower();
  auto exact = [&](const std::string& x) {
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == x) return static_cast<int>(i);
    return -1;
  };
  static const std::map<std::string, int> synonyms = {
      {"piano", 0}, {"grand piano", 0}, {"acoustic piano", 0}, {"keyboard", 0}, {"keys", 0},
      {"electric piano", 4}, {"rhodes", 4}, {"organ", 19}, {"guitar", 24}, {"acoustic guitar", 24},
      {"classical guitar", 24}, {"nylon guitar", 24}, {"steel guitar", 25}, {"electric guitar", 27},
      {"bass", 32}, {"bass guitar", 33}, {"electric bass", 33}, {"double bass", 43}, {"contrabass", 43},
      {"upright bass", 43}, {"string bass", 43}, {"horn", 60}, {"french horn", 60}, {"horn in f", 60},
      {"sax", 65}, {"saxophone", 65}, {"alto saxophone", 65}, {"tenor saxophone", 66},
      {"soprano saxophone", 64}, {"baritone saxophone", 67}, {"drums", kDrumProgram},
      {"drum kit", kDrumProgram}, {"drumset", kDrumProgram}, {"drum set", kDrumProgram},
      {"percussion", kDrumProgram}, {"voice", 52}, {"vocals", 52}, {"vocal", 52}, {"voices", 52},
      {"singer", 52}, {"choir", 52}, {"soprano", 52}, {"alto", 52}, {"tenor", 52}, {"strings", 48},
      {"string ensemble", 48}, {"violoncello", 42}, {"harp", 46}, {"cor anglais", 69},
      {"trumpet in bb", 56}, {"bb trumpet", 56}, {"cornet", 56}, {"flugelhorn", 56},
      {"clarinet in bb", 71}, {"bb clarinet", 71}, {"clarinet in a", 71}, {"euphonium", 58},
      {"vibes", 11}, {"glock", 9}, {"bells", 14}, {"synth", 80}, {"mandolin", 25}, {"ukulele", 24}};
  auto lookup = [&](const std::string& x) {
    const int e = exact(x);
    if (e >= 0) return e;
    const auto it = synonyms.find(x);
    return it == synonyms.end() ? -1 : it->second;
  };
  int p = lookup(s);
  if (p >= 0) return p;
  // Drop trailing part/hand markers: "Violin 1", "Violin II", "Piano RH", "Flute (solo)".
  static const std::set<std::string> markers = {"i", "ii", "iii", "iv", "rh", "lh", "left", "right", "upper",
                                                "lower", "solo", "tutti", "hand", "part", "1st", "2nd", "3rd"};
  std::string t = s;
  while (true) {
    const size_t sp = t.rfind(' ');
    if (sp == std::string::npos) break;
    const std::string last = t.substr(sp + 1);
    const bool numeric = std::all_of(last.begin(), last.end(), [](char c) { return is_digit(c); });
    const bool paren = !last.empty() && last.front() == '(' && last.back() == ')';
    if (!(numeric || paren || markers.count(last))) break;
    t = strip(t.substr(0, sp));
    p = lookup(t);
    if (p >= 0) return p;
  }
  return flynn_gm_program(t);
}

double flynn_instrument_pair_loss(int a, int b) {
  if (a == b) return 0.0;
  if (a < 0 || b < 0) return 1.0;
  if (a / 8 == b / 8) return 0.5;
  return 1.0 - difflib_ratio(program_name_lower(a), program_name_lower(b));
}

std::vector<int> hungarian(const std::vector<std::vector<double>>& cost) {
  const int n = static_cast<int>(cost.size());
  if (n == 0) return {};
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(n + 1, 0), v(n + 1, 0);
  std::vector<int> p(n + 1, 0), way(n + 1, 0);
  for (int i = 1; i <= n; ++i) {
    p[0] = i;
    int j0 = 0;
    std::vector<double> minv(n + 1, inf);
    std::vector<char> used(n + 1, 0);
    do {
      used[j0] = 1;
      const int i0 = p[j0];
      double delta = inf;
      int j1 = 0;
      for (int j = 1; j <= n; ++j)
        if (!used[j]) {
          const double cur = cost[i0 - 1][j - 1] - u[i0] - v[j];
          if (cur < minv[j]) minv[j] = cur, way[j] = j0;
          if (minv[j] < delta) delta = minv[j], j1 = j;
        }
      for (int j = 0; j <= n; ++j)
        if (used[j]) u[p[j]] += delta, v[j] -= delta;
        else minv[j] -= delta;
      j0 = j1;
    } while (p[j0] != 0);
    do {
      const int j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0);
  }
  std::vector<int> row_to_col(n, -1);
  for (int j = 1; j <= n; ++j)
    if (p[j] > 0) row_to_col[p[j] - 1] = j - 1;
  return row_to_col;
}

}  // namespace reward_detail

// ---------------------------------------------------------------------------

RewardMode reward_mode_from_string(const std::string& s) {
  const std::string l = lower(s);
  if (l == "corrected" || l == "flynn2024-fixed" || l == "fixed") return RewardMode::Corrected;
  if (l == "flynn2024" || l == "flynn") return RewardMode::Flynn2024;
  throw ConfigError("reward: reward mode '" + s + "' is unknown (corrected | flynn2024)");
}

std::string reward_mode_name(RewardMode m) { return m == RewardMode::Corrected ? "corrected" : "flynn2024"; }

namespace {

// Corrected mode: the notes of each voice as abc2midi would play them (the
// ABC reader: key signatures, accidentals, ties, repeats, endings, parts),
// so that an ABC text and a MIDI rendering of it compare equal. Names and
// %%MIDI programs stay those of the header parser; the text tokenizer's
// pitches are kept when the reader finds no note at all.
void pitches_from_abc_reader(const std::string& text, const std::string& what, RewardInput& in) {
  bool has_x = false;
  for (size_t p = 0; p < text.size();) {
    size_t b = p;
    while (b < text.size() && (text[b] == ' ' || text[b] == '\t')) ++b;
    if (text.compare(b, 2, "X:") == 0) has_x = true;
    const size_t e = text.find('\n', p);
    if (e == std::string::npos) break;
    p = e + 1;
  }
  std::vector<AbcTuneNotes> tunes;
  try {
    tunes = read_abc_text(has_x ? text : "X:1\n" + text, what);
  } catch (const Error&) {
    return;
  }
  if (tunes.empty() || tunes.front().notes.empty()) return;
  const AbcTuneNotes& tune = tunes.front();
  std::vector<RewardVoice> voices;
  for (const auto& id : tune.voice_ids) {
    RewardVoice v;
    v.id = id;
    for (const auto& pv : in.voices)
      if (pv.id == id || (pv.id.empty() && tune.voice_ids.size() == 1)) {
        v.name = pv.name;
        v.program = pv.program;
      }
    voices.push_back(v);
  }
  for (const auto& n : tune.notes) {  // sorted by (voice, start, pitch)
    if (n.grace || n.voice < 0 || static_cast<size_t>(n.voice) >= voices.size()) continue;
    voices[static_cast<size_t>(n.voice)].pitches.push_back(n.pitch);
  }
  in.voices = std::move(voices);
}

}  // namespace

RewardInput parse_reward_input(const std::string& text, RewardMode mode, const std::string& what) {
  RewardInput in;
  if (mode == RewardMode::Flynn2024) {
    for (const auto& body : flynn_split_voices(text)) {
      RewardVoice v;
      v.pitches = flynn_note_numbers(body);
      in.voices.push_back(std::move(v));
    }
    in.instrument_names = flynn_instrument_names(text);
    const std::string m = flynn_search_field(text, 'M', true);
    if (!m.empty()) {
      const size_t sl = m.find('/');
      in.meter_present = in.has_meter = true;
      in.meter_num = parse_ll_capped(m.substr(0, sl));
      in.meter_den = parse_ll_capped(m.substr(sl + 1));
    }
    const std::string q = flynn_search_field(text, 'Q', false);
    if (!q.empty()) {
      in.tempo_present = in.has_tempo = true;
      in.tempo_bpm = static_cast<double>(parse_ll_capped(q));
    }
  } else {
    in = CorrectedParser().parse(text);
    pitches_from_abc_reader(text, what, in);
  }
  in.source = what;
  return in;
}

std::string flynn2024_layout(const std::string& text) {
  struct V {
    std::string id, name;
    int program = -1;
    std::string body;
  };
  std::vector<V> voices;
  std::string header;
  int def = -1, cur = -1;
  auto find_voice = [&](const std::string& id) {
    for (size_t i = 0; i < voices.size(); ++i)
      if (voices[i].id == id) return static_cast<int>(i);
    voices.push_back(V{id, "", -1, ""});
    return static_cast<int>(voices.size() - 1);
  };
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("%%MIDI program", 0) == 0) {
      if (def >= 0) voices[static_cast<size_t>(def)].program = std::atoi(line.c_str() + 14);
      continue;
    }
    if (line.rfind("%", 0) == 0 || line.rfind("T:", 0) == 0) continue;
    if (line.rfind("V:", 0) == 0) {
      std::string rest = strip(line.substr(2));
      size_t e = 0;
      while (e < rest.size() && !is_py_space(rest[e])) ++e;
      def = cur = find_voice(rest.substr(0, e));
      const std::string name = voice_name_from_header(rest.substr(e));
      if (!name.empty()) voices[static_cast<size_t>(def)].name = name;
      continue;
    }
    if (line.rfind("[V:", 0) == 0) {
      const size_t close = line.find(']');
      if (close != std::string::npos) {
        std::string id = strip(line.substr(3, close - 3));
        const size_t sp = id.find(' ');
        if (sp != std::string::npos) id = id.substr(0, sp);
        cur = find_voice(id);
        line = strip(line.substr(close + 1));
      }
    }
    if (cur < 0) header += line + "\n";
    else voices[static_cast<size_t>(cur)].body += line + "\n";
  }
  std::string out = header;
  for (size_t i = 0; i < voices.size(); ++i) {
    std::string name = voices[i].name;
    if (name.empty() && voices[i].program >= 0 && voices[i].program <= 127)
      name = pretty_midi_gm_names()[static_cast<size_t>(voices[i].program)];
    out += "V:" + std::to_string(i + 1) + " name=\"" + name + "\"\n" + voices[i].body;
  }
  return out;
}

RewardInput reward_input_from_sequence(const NoteSequence& seq) {
  RewardInput in;
  in.source = seq.source;
  std::map<int, size_t> track_of_program;
  std::vector<std::vector<const Note*>> tracks;
  std::vector<const Note*> sorted;
  for (const auto& n : seq.notes)
    if (!n.is_drum) sorted.push_back(&n);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Note* a, const Note* b) {
    return a->onset_s != b->onset_s ? a->onset_s < b->onset_s : a->pitch < b->pitch;
  });
  for (const Note* n : sorted) {
    auto it = track_of_program.find(n->program);
    if (it == track_of_program.end()) {
      it = track_of_program.emplace(n->program, tracks.size()).first;
      tracks.emplace_back();
      RewardVoice v;
      v.id = std::to_string(tracks.size());
      v.program = n->program;
      v.name = pretty_midi_gm_names()[static_cast<size_t>(std::clamp(n->program, 0, 127))];
      in.voices.push_back(v);
    }
    in.voices[it->second].pitches.push_back(n->pitch);
  }
  if (!seq.time_signatures.empty()) {
    in.meter_present = in.has_meter = true;
    in.meter_num = seq.time_signatures.front().numerator;
    in.meter_den = seq.time_signatures.front().denominator;
    if (in.meter_num <= 0 || in.meter_den <= 0) in.has_meter = false;
  }
  if (!seq.tempos.empty()) {
    in.tempo_present = in.has_tempo = true;
    in.tempo_bpm = seq.tempos.front().bpm;
  }
  return in;
}

namespace {

RewardResult flynn_compute(const RewardInput& first, const RewardInput& second, const std::string& where) {
  RewardResult r;
  // Pitch: each voice of `first` takes its min distance over `second`'s voices.
  if (first.voices.empty()) {
    r.pitch = 1.0;
  } else {
    double sum = 0;
    for (const auto& v1 : first.voices) {
      double best = 1.0;
      if (!second.voices.empty()) {
        best = std::numeric_limits<double>::infinity();
        for (const auto& v2 : second.voices) best = std::min(best, normalized_levenshtein(v1.pitches, v2.pitches));
      }
      sum += best;
    }
    r.pitch = sum / static_cast<double>(first.voices.size());
  }
  if (first.has_meter && second.has_meter) {
    if (first.meter_den == 0 || second.meter_den == 0)
      throw InputError("reward: " + where + ": M: with denominator 0 (the flynn2024 code raises ZeroDivisionError)");
    r.metre = metre_loss(first.meter_num, first.meter_den, second.meter_num, second.meter_den);
  }
  if (first.has_tempo && second.has_tempo) r.tempo = flynn_tempo_loss(std::fabs(first.tempo_bpm - second.tempo_bpm));
  const auto& n1 = first.instrument_names;
  const auto& n2 = second.instrument_names;
  const size_t denom = std::max(n1.size(), n2.size());
  if (denom > 0) {
    double sum = 0;
    for (size_t i = 0; i < std::min(n1.size(), n2.size()); ++i)
      sum += flynn_instrument_pair_loss(flynn_gm_program(n1[i]), flynn_gm_program(n2[i]));
    r.instrument = sum / static_cast<double>(denom);
  }
  // The original sums float32 tensors.
  const float total = 0.5f * static_cast<float>(r.pitch) + 0.15f * static_cast<float>(r.metre) +
                      0.15f * static_cast<float>(r.tempo) + 0.2f * static_cast<float>(r.instrument);
  r.total = total;
  r.reward = static_cast<double>(1.0f - total);
  return r;
}

int voice_program(const RewardVoice& v) { return v.program >= 0 ? v.program : corrected_gm_program(v.name); }

RewardResult corrected_compute(const RewardInput& gt, const RewardInput& pred) {
  RewardResult r;
  const size_t ng = gt.voices.size(), np = pred.voices.size(), n = std::max(ng, np);
  std::vector<int> assign;
  if (n > 0) {
    std::vector<std::vector<double>> cost(n, std::vector<double>(n, 1.0));
    for (size_t i = 0; i < np; ++i)
      for (size_t j = 0; j < ng; ++j) cost[i][j] = normalized_levenshtein(pred.voices[i].pitches, gt.voices[j].pitches);
    assign = hungarian(cost);
    double sum = 0;
    for (size_t i = 0; i < n; ++i) sum += cost[i][static_cast<size_t>(assign[i])];
    r.pitch = sum / static_cast<double>(n);
  }
  // Instrument: reuse the assignment; unmatched voices cost 1.
  r.use_instrument = false;
  for (const auto& v : gt.voices)
    if (v.program >= 0 || !strip(v.name).empty()) r.use_instrument = true;
  if (r.use_instrument) {
    double sum = 0;
    for (size_t i = 0; i < n; ++i) {
      const size_t j = static_cast<size_t>(assign[i]);
      if (i >= np || j >= ng) {
        sum += 1.0;
        continue;
      }
      const int a = voice_program(pred.voices[i]), b = voice_program(gt.voices[j]);
      sum += (a < 0 && b < 0) ? 1.0 : flynn_instrument_pair_loss(a, b);
    }
    r.instrument = sum / static_cast<double>(n);
  }
  r.use_metre = gt.has_meter;
  if (r.use_metre)
    r.metre = pred.has_meter ? metre_loss(pred.meter_num, pred.meter_den, gt.meter_num, gt.meter_den) : 1.0;
  r.use_tempo = gt.has_tempo;
  if (r.use_tempo) r.tempo = pred.has_tempo ? corrected_tempo_loss(std::fabs(pred.tempo_bpm - gt.tempo_bpm)) : 1.0;
  double wsum = 0.5, total = 0.5 * r.pitch;
  if (r.use_metre) wsum += 0.15, total += 0.15 * r.metre;
  if (r.use_tempo) wsum += 0.15, total += 0.15 * r.tempo;
  if (r.use_instrument) wsum += 0.2, total += 0.2 * r.instrument;
  r.total = total / wsum;
  r.reward = 1.0 - r.total;
  return r;
}

}  // namespace

RewardResult compute_reward(const RewardInput& ref, const RewardInput& est, RewardMode mode) {
  if (mode == RewardMode::Flynn2024) return flynn_compute(ref, est, ref.source + " vs " + est.source);
  return corrected_compute(ref, est);
}

RewardResult abc_reward(const std::string& ref_abc, const std::string& est_abc, RewardMode mode) {
  return compute_reward(parse_reward_input(ref_abc, mode, "ref"), parse_reward_input(est_abc, mode, "est"), mode);
}

}  // namespace tunescribe
