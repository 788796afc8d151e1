// reward_corrected.cpp — the corrected ABC reward (scoring.md §2, our fixes): a header and
// music parser with key signatures, bar accidentals and ties, the notes as abc2midi plays them
// (the ABC reader), instruments by name or %%MIDI program, voices paired by the Hungarian method.
#include "reward_text.h"

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

namespace {

using namespace reward_detail;
using namespace reward_text;

struct KeySig {
  int acc[7] = {0, 0, 0, 0, 0, 0, 0};  // per letter C D E F G A B
};

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

int voice_program(const RewardVoice& v) { return v.program >= 0 ? v.program : corrected_gm_program(v.name); }

}  // namespace

namespace reward_detail {

using namespace reward_text;

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

}  // namespace reward_detail

namespace reward_text {

RewardInput parse_corrected(const std::string& text, const std::string& what) {
  RewardInput in = CorrectedParser().parse(text);
  pitches_from_abc_reader(text, what, in);
  return in;
}

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

}  // namespace reward_text
}  // namespace tunescribe
