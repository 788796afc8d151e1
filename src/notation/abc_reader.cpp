// abc_reader.cpp — ABC text → notes (see abc_reader.h).
#include "tunescribe/abc_reader.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"

namespace tunescribe {

void AbcReaderConfig::validate() const {
  if (!(default_bpm >= 1.0 && default_bpm <= 1000.0))
    throw ConfigError("abc: default_bpm = " + std::to_string(default_bpm) + " is out of range (1..1000)");
  if (velocity < 1 || velocity > 127)
    throw ConfigError("abc: velocity = " + std::to_string(velocity) + " is out of range (1..127)");
}

namespace {

struct Item {
  enum Kind { kNote, kRest, kBar, kEnding, kTempo, kPart, kMeter, kKey } kind = kNote;
  Fraction dur;                  // time advance (notes, rests)
  Fraction raw;                  // written length (before tuplet and broken rhythm)
  bool staccato = false;
  std::vector<int> pitches;
  std::vector<bool> ties;
  std::vector<std::pair<int, int>> positions;  // (letter, octave) of each pitch
  std::vector<bool> explicit_acc;              // pitch written with its own accidental
  std::vector<std::pair<int, Fraction>> graces;  // pitch, written length
  bool rep_start = false, rep_end = false;
  bool thick = false;            // ||, |], [|
  std::vector<int> endings;      // kEnding / kBar with variant numbers
  double qbpm = 0;               // kTempo: quarters per minute
  char part = 0;
  int num = 0, den = 0;          // kMeter
  int fifths = 0;                // kKey
  bool minor = false;
  int line = 0, col = 0;
};

struct Voice {
  std::string id;
  std::vector<Item> items;
  Fraction unit{1, 8};
  int key_alter[7] = {0, 0, 0, 0, 0, 0, 0};  // by letter index C D E F G A B
  std::map<int, int> bar_acc;                // letter -> alter (pitch propagation)
  std::map<std::pair<int, int>, int> bar_acc_oct;
  int meter_num = 4, meter_den = 4;
  bool meter_none = false;
  // tuplet
  int tup_left = 0;
  Fraction tup_factor{1};
  // broken rhythm
  Fraction next_factor{1};       // for the note after '>' / '<'
  Fraction prev_factor{1};       // for the note before it (applied when both lengths match)
  int broken_prev = -1;          // item index of that note
  bool staccato = false;         // a '.' decoration waits for the next note
  int last_note = -1;
  // ties: staff position (letter, octave) -> pitch of notes tied from the previous note item
  std::map<std::pair<int, int>, int> tie_pos;
  int program = 0;
  bool drum = false;
  bool implicit = false;  // created without a V: field (may still take the first V: name)
};

int letter_index(char c) {
  switch (std::toupper(static_cast<unsigned char>(c))) {
    case 'C': return 0; case 'D': return 1; case 'E': return 2; case 'F': return 3;
    case 'G': return 4; case 'A': return 5; case 'B': return 6; default: return -1;
  }
}
const int kLetterSemis[7] = {0, 2, 4, 5, 7, 9, 11};

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

std::string strip_comment(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] == '%' && (i == 0 || s[i - 1] != '\\')) return s.substr(0, i);
  return s;
}

struct KeyInfo {
  int fifths = 0;
  bool minor = false;
  int mods[7] = {99, 99, 99, 99, 99, 99, 99};  // explicit per-letter alterations
  bool ok = true;
};

KeyInfo parse_key_field(const std::string& raw) {
  KeyInfo k;
  std::string s = trim(strip_comment(raw));
  // tokens
  std::vector<std::string> toks;
  {
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
      size_t j = i;
      while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
      if (j > i) toks.push_back(s.substr(i, j - i));
      i = j;
    }
  }
  size_t t = 0;
  if (t < toks.size() && toks[t].find('=') == std::string::npos && toks[t] != "none" && toks[t] != "None" &&
      letter_index(toks[t][0]) >= 0 && toks[t][0] != '^' && toks[t][0] != '_') {
    const std::string& tk = toks[t];
    int q = 0;
    size_t i = 0;
    parse_tonic(tk, &i, &q);
    std::string mode = tk.substr(i);
    ++t;
    if (mode.empty() && t < toks.size() && toks[t].find('=') == std::string::npos && toks[t][0] != '^' &&
        toks[t][0] != '_' && toks[t][0] != '=' && std::isalpha(static_cast<unsigned char>(toks[t][0]))) {
      std::string m = toks[t];
      std::string ml;
      for (char c : m) ml += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      static const char* modes[] = {"maj", "min", "m", "ion", "aeo", "dor", "phr", "lyd", "mix", "loc"};
      for (const char* md : modes)
        if (ml.rfind(md, 0) == 0) { mode = m; ++t; break; }
    }
    std::string ml;
    for (char c : mode) ml += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (ml.size() > 3) ml = ml.substr(0, 3);
    // Leniently, any other mode starting with 'm' is minor; "exp" (explicit accidentals
    // only) has no signature; anything else is major with a warning.
    int off = mode_fifths_offset(ml);
    if (off == kUnknownMode) {
      if (ml[0] == 'm') off = -3;
      else if (ml == "exp") off = 0;
      else { off = 0; k.ok = false; }
    }
    k.fifths = q + off;
    k.minor = off == -3;
    if (ml == "exp") k.fifths = 0;
  } else if (t < toks.size() && (toks[t] == "none" || toks[t] == "None")) {
    ++t;
  } else if (t < toks.size() && toks[t] == "HP") {
    ++t;  // highland pipes, no signature
  } else if (t < toks.size() && toks[t] == "Hp") {
    k.fifths = 2;  // highland pipes as abc2midi plays them: F# and C#
    ++t;
  }
  for (; t < toks.size(); ++t) {
    const std::string& tk = toks[t];
    size_t i = 0;
    int alter = 0;
    bool acc = false;
    while (i < tk.size() && (tk[i] == '^' || tk[i] == '_' || tk[i] == '=')) {
      acc = true;
      alter += tk[i] == '^' ? 1 : tk[i] == '_' ? -1 : 0;
      ++i;
    }
    if (acc && i < tk.size() && letter_index(tk[i]) >= 0) k.mods[letter_index(tk[i])] = alter;
  }
  return k;
}

void apply_key(Voice& v, const KeyInfo& k) {
  for (int i = 0; i < 7; ++i) v.key_alter[i] = signature_alter(k.fifths, "CDEFGAB"[i]);
  for (int i = 0; i < 7; ++i)
    if (k.mods[i] != 99) v.key_alter[i] = k.mods[i];
}

bool parse_meter_field(const std::string& raw, int* num, int* den, bool* none) {
  std::string s = trim(strip_comment(raw));
  *none = false;
  if (s.empty() || s == "none" || s == "None") { *none = true; *num = 4; *den = 4; return true; }
  if (meter_symbol(s, num, den)) return true;
  auto slash = s.find('/');
  if (slash == std::string::npos) return false;
  std::string n = s.substr(0, slash), d = s.substr(slash + 1);
  int total = 0, cur = 0;
  bool any = false;
  for (char c : n) {
    if (std::isdigit(static_cast<unsigned char>(c))) { cur = std::min(cur * 10 + (c - '0'), 1000000); any = true; }
    else if (c == '+') { total = std::min(total + cur, 1000000); cur = 0; }
  }
  total = std::min(total + cur, 1000000);
  int dd = std::atoi(trim(d).c_str());
  if (!any || total <= 0 || dd <= 0) return false;
  *num = total;
  *den = dd;
  return true;
}

bool parse_fraction(const std::string& s, Fraction* out) {
  auto slash = s.find('/');
  if (slash == std::string::npos) {
    int n = std::atoi(trim(s).c_str());
    if (n <= 0) return false;
    *out = Fraction(n);
    return true;
  }
  int n = std::atoi(trim(s.substr(0, slash)).c_str());
  int d = std::atoi(trim(s.substr(slash + 1)).c_str());
  if (n <= 0 || d <= 0) return false;
  *out = Fraction(n, d);
  return true;
}

// Q: → quarter notes per minute (0 if none found).
double parse_tempo_field(const std::string& raw, const Fraction& unit) {
  std::string s = strip_comment(raw);
  // drop quoted strings
  std::string t;
  bool q = false;
  for (char c : s) {
    if (c == '"') { q = !q; continue; }
    if (!q) t += c;
  }
  t = trim(t);
  auto eq = t.find('=');
  if (eq == std::string::npos) {
    int n = std::atoi(t.c_str());
    if (n <= 0) return 0;
    return n * unit.value() * 4.0;
  }
  std::string lhs = trim(t.substr(0, eq));
  double bpm = std::atof(trim(t.substr(eq + 1)).c_str());
  if (bpm <= 0) return 0;
  double whole = 0;
  size_t i = 0;
  while (i < lhs.size()) {
    while (i < lhs.size() && std::isspace(static_cast<unsigned char>(lhs[i]))) ++i;
    size_t j = i;
    while (j < lhs.size() && !std::isspace(static_cast<unsigned char>(lhs[j]))) ++j;
    std::string tok = lhs.substr(i, j - i);
    Fraction f;
    if (!tok.empty() && tok[0] == 'C') whole += unit.value() * (tok.size() > 1 ? std::atof(tok.c_str() + 1) : 1.0);
    else if (!tok.empty() && parse_fraction(tok, &f)) whole += f.value();
    i = j;
  }
  if (whole <= 0) whole = 0.25;
  return bpm * whole * 4.0;
}

struct TuneParser {
  const std::string& what;
  const AbcReaderConfig& cfg;
  AbcTuneNotes& out;
  std::vector<Voice> voices;
  int cur = -1;
  Fraction header_unit{0};
  bool header_unit_set = false;
  int header_meter_num = 4, header_meter_den = 4;
  bool header_meter_none = false, header_meter_set = false;
  KeyInfo header_key;
  std::string header_parts;
  double header_qbpm = 0;
  bool in_body = false;

  TuneParser(const std::string& w, const AbcReaderConfig& c, AbcTuneNotes& o) : what(w), cfg(c), out(o) {}

  void warn(int line, int col, const std::string& msg) {
    std::string m = "abc: " + what + ":" + std::to_string(line) + ":" + std::to_string(col + 1) + ": " + msg;
    if (cfg.strict) throw InputError(m);
    if (out.warnings.size() < 200) out.warnings.push_back(m);
  }

  Fraction default_unit() const {
    if (header_unit_set) return header_unit;
    if (header_meter_none) return Fraction(1, 8);
    return static_cast<double>(header_meter_num) / header_meter_den < 0.75 ? Fraction(1, 16) : Fraction(1, 8);
  }

  Voice& voice() {
    if (cur < 0) select_voice("1", true);
    return voices[static_cast<size_t>(cur)];
  }

  int find_voice(const std::string& id) {
    for (size_t i = 0; i < voices.size(); ++i)
      if (voices[i].id == id) return static_cast<int>(i);
    return -1;
  }

  void select_voice(const std::string& id, bool implicit = false) {
    int i = find_voice(id);
    if (i >= 0 && !implicit) voices[static_cast<size_t>(i)].implicit = false;
    if (i < 0) {
      // The implicit first voice takes the name of the first explicit V: in the body.
      if (!implicit && voices.size() == 1 && voices[0].implicit && voices[0].items.empty()) {
        voices[0].id = id;
        voices[0].implicit = false;
        cur = 0;
        return;
      }
      Voice v;
      v.id = id;
      v.unit = default_unit();
      v.meter_num = header_meter_num;
      v.meter_den = header_meter_den;
      v.meter_none = header_meter_none;
      apply_key(v, header_key);
      v.implicit = implicit;
      voices.push_back(v);
      i = static_cast<int>(voices.size()) - 1;
    }
    cur = i;
  }

  Fraction bar_length(const Voice& v) const {
    if (v.meter_none) return Fraction(1);
    return Fraction(v.meter_num, v.meter_den);
  }

  // A field line or inline field (letter, value). In the header when !in_body.
  void field(char f, const std::string& value, int line, int col) {
    std::string val = trim(value);
    switch (f) {
      case 'T':
        if (out.title.empty()) out.title = trim(strip_comment(val));
        break;
      case 'M': {
        int n, d;
        bool none;
        if (!parse_meter_field(val, &n, &d, &none)) { warn(line, col, "bad M: field '" + val + "'"); break; }
        if (!in_body) {
          header_meter_num = n; header_meter_den = d; header_meter_none = none; header_meter_set = true;
          if (out.meter.empty()) out.meter = trim(strip_comment(val));
        } else {
          Voice& v = voice();
          v.meter_num = n; v.meter_den = d; v.meter_none = none;
          Item it; it.kind = Item::kMeter; it.num = n; it.den = d; it.line = line; it.col = col;
          v.items.push_back(it);
        }
        break;
      }
      case 'L': {
        Fraction u;
        if (!parse_fraction(strip_comment(val), &u)) { warn(line, col, "bad L: field '" + val + "'"); break; }
        if (!in_body) { header_unit = u; header_unit_set = true; }
        else voice().unit = u;
        break;
      }
      case 'Q': {
        Fraction u = in_body ? voice().unit : default_unit();
        double b = parse_tempo_field(val, u);
        if (b <= 0) { warn(line, col, "bad Q: field '" + val + "'"); break; }
        if (!in_body) header_qbpm = b;
        else {
          Item it; it.kind = Item::kTempo; it.qbpm = b; it.line = line; it.col = col;
          voice().items.push_back(it);
        }
        break;
      }
      case 'K': {
        KeyInfo k = parse_key_field(val);
        if (!k.ok) warn(line, col, "unknown mode in K: field '" + val + "'");
        if (!in_body) {
          header_key = k;
          if (out.key.empty()) out.key = trim(strip_comment(val));
          in_body = true;
          // Voices declared in the header take the final header settings.
          for (auto& v : voices) {
            v.unit = default_unit();
            v.meter_num = header_meter_num; v.meter_den = header_meter_den; v.meter_none = header_meter_none;
            apply_key(v, header_key);
          }
          if (voices.empty()) select_voice("1", true);
          out.unit_length = voices[0].unit;
        } else {
          Voice& v = voice();
          apply_key(v, k);
          v.bar_acc.clear();
          v.bar_acc_oct.clear();
          Item it; it.kind = Item::kKey; it.fifths = k.fifths; it.minor = k.minor; it.line = line; it.col = col;
          v.items.push_back(it);
        }
        break;
      }
      case 'V': {
        std::string s = trim(strip_comment(val));
        size_t j = 0;
        while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
        std::string id = s.substr(0, j);
        if (id.empty()) { warn(line, col, "empty V: field"); break; }
        select_voice(id);
        break;
      }
      case 'P': {
        std::string s = trim(strip_comment(val));
        if (!in_body) header_parts = s;
        else if (!s.empty()) {
          Item it; it.kind = Item::kPart; it.part = s[0]; it.line = line; it.col = col;
          voice().items.push_back(it);
        }
        break;
      }
      default:
        break;  // other fields carry no music
    }
  }

  void directive(const std::string& s, int line, int col) {
    // %%MIDI program [channel] N ; %%MIDI channel N
    std::string t = trim(s.substr(2));
    if (t.rfind("MIDI", 0) != 0) return;
    t = trim(t.substr(4));
    std::vector<std::string> toks;
    size_t i = 0;
    while (i < t.size()) {
      while (i < t.size() && std::isspace(static_cast<unsigned char>(t[i]))) ++i;
      size_t j = i;
      while (j < t.size() && !std::isspace(static_cast<unsigned char>(t[j])) && t[j] != '%') ++j;
      if (j > i) toks.push_back(t.substr(i, j - i));
      if (j < t.size() && t[j] == '%') break;
      i = j;
    }
    if (toks.empty()) return;
    if (toks[0] == "program" && toks.size() >= 2) {
      int n = std::atoi(toks.back().c_str());
      if (n < 0 || n > 127) { warn(line, col, "%%MIDI program out of range"); return; }
      if (!in_body && voices.empty()) select_voice("1", true);
      if (cur < 0) cur = 0;
      voice().program = n;
    } else if (toks[0] == "channel" && toks.size() >= 2) {
      if (!in_body && voices.empty()) select_voice("1", true);
      if (cur < 0) cur = 0;
      voice().drum = std::atoi(toks[1].c_str()) == 10;
    }
  }

  // ---- music line
  bool parse_length(const std::string& s, size_t& i, Fraction* mult) {
    int64_t num = 1, den = 1;
    bool any = false;
    if (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      num = 0;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) && num < 100000) num = num * 10 + (s[i++] - '0');
      any = true;
    }
    while (i < s.size() && s[i] == '/') {
      ++i;
      any = true;
      if (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
        int64_t d = 0;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) && d < 100000) d = d * 10 + (s[i++] - '0');
        den *= std::max<int64_t>(1, d);
      } else {
        den *= 2;
      }
      if (den > (1 << 20)) den = 1 << 20;
    }
    if (num == 0) num = 1;  // "A0" is not meaningful; abc2midi treats it as 1
    *mult = Fraction(num, den);
    return any;
  }

  // Parses accidental + letter + octave marks at s[i]; returns false if no note.
  bool parse_pitch(const std::string& s, size_t& i, int* pitch, int* letter, int* octave, bool* explicit_acc,
                   int* acc_val, int line) {
    size_t j = i;
    int acc = 0;
    bool has_acc = false;
    while (j < s.size() && (s[j] == '^' || s[j] == '_' || s[j] == '=')) {
      has_acc = true;
      if (s[j] == '^') acc += 1;
      else if (s[j] == '_') acc -= 1;
      else acc = 0;
      ++j;
    }
    if (j >= s.size() || letter_index(s[j]) < 0) {
      if (has_acc) warn(line, static_cast<int>(i), "accidental without a note");
      i = j;
      return false;
    }
    char c = s[j++];
    int li = letter_index(c);
    int oct = std::islower(static_cast<unsigned char>(c)) ? 5 : 4;
    while (j < s.size() && (s[j] == '\'' || s[j] == ',')) {
      oct += s[j] == '\'' ? 1 : -1;
      ++j;
    }
    i = j;
    *letter = li;
    *octave = oct;
    *explicit_acc = has_acc;
    *acc_val = acc;
    (void)pitch;
    return true;
  }

  int resolve_pitch(Voice& v, int li, int oct, bool has_acc, int acc) {
    int alter;
    if (has_acc) {
      alter = acc;
      v.bar_acc[li] = acc;
      v.bar_acc_oct[{li, oct}] = acc;
    } else if (cfg.pitch_propagation && v.bar_acc.count(li)) {
      alter = v.bar_acc[li];
    } else if (!cfg.pitch_propagation && v.bar_acc_oct.count({li, oct})) {
      alter = v.bar_acc_oct[{li, oct}];
    } else {
      alter = v.key_alter[li];
    }
    return (oct + 1) * 12 + kLetterSemis[li] + alter;
  }

  void add_note_item(Voice& v, Item it, const std::vector<std::pair<int, int>>& positions, bool chord_tie) {
    // Broken rhythm from a preceding '>' or '<': abc2midi applies it only to two
    // notes of the same written length and both staccato or both not.
    it.raw = it.dur;
    it.staccato = v.staccato;
    v.staccato = false;
    if (v.broken_prev >= 0) {
      Item& prev = v.items[static_cast<size_t>(v.broken_prev)];
      if (prev.raw == it.raw && prev.staccato == it.staccato) {
        prev.dur = prev.dur * v.prev_factor;
        it.dur = it.dur * v.next_factor;
      } else {
        warn(it.line, it.col, "broken rhythm between notes of unequal length ignored");
      }
      v.broken_prev = -1;
    }
    if (v.tup_left > 0) {
      it.dur = it.dur * v.tup_factor;
      for (auto& g : it.graces) g.second = g.second * v.tup_factor;  // abc2midi scales them too
      --v.tup_left;
    }
    if (it.kind == Item::kNote) {
      // A tie continuation keeps the tied pitch (same staff position).
      for (size_t k = 0; k < it.pitches.size(); ++k) {
        auto f = v.tie_pos.find(positions[k]);
        // (unless it carries its own accidental: abc2midi then ties only equal pitches)
        if (f != v.tie_pos.end() && !(k < it.explicit_acc.size() && it.explicit_acc[k])) it.pitches[k] = f->second;
        if (chord_tie) it.ties[k] = true;
      }
      v.tie_pos.clear();
      for (size_t k = 0; k < it.pitches.size(); ++k)
        if (it.ties[k]) v.tie_pos[positions[k]] = it.pitches[k];
      it.positions = positions;
    } else {
      v.tie_pos.clear();
    }
    v.items.push_back(it);
    v.last_note = static_cast<int>(v.items.size()) - 1;
  }

  void bar_reset(Voice& v) {
    v.bar_acc.clear();
    v.bar_acc_oct.clear();
  }

  void music_line(const std::string& s, int line) {
    size_t i = 0;
    std::vector<std::pair<int, Fraction>> graces;
    while (i < s.size()) {
      char c = s[i];
      int col = static_cast<int>(i);
      if (c == '%') break;
      if (std::isspace(static_cast<unsigned char>(c)) || c == '`' || c == '\\' || c == '$' || c == '*' ||
          c == ')' || c == 'y') { ++i; continue; }
      if (c == '"') {  // chord symbol / annotation
        size_t j = s.find('"', i + 1);
        if (j == std::string::npos) { warn(line, col, "unterminated chord symbol"); break; }
        i = j + 1;
        continue;
      }
      if (c == '!' || c == '+') {  // decoration !...! (a lone ! is an old line break)
        size_t j = i + 1;
        while (j < s.size() && s[j] != c && s[j] != '|' && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
        if (j < s.size() && s[j] == c && j > i + 1) { i = j + 1; continue; }
        ++i;
        continue;
      }
      if (std::strchr(".~HLMOPSTuvJR", c) && c != 0) {
        if (c == '.' && cur >= 0) voices[static_cast<size_t>(cur)].staccato = true;
        ++i;
        continue;
      }
      if (c == '{') {  // grace notes
        if (!scan_grace_notes(s, i, line, col, graces)) break;
        continue;
      }
      if (c == '(') {
        scan_tuplet(s, i, line, col);
        continue;
      }
      if (c == '[' && i + 2 < s.size() && std::isalpha(static_cast<unsigned char>(s[i + 1])) && s[i + 2] == ':') {
        size_t j = s.find(']', i);
        if (j == std::string::npos) { warn(line, col, "unterminated inline field"); break; }
        field(s[i + 1], s.substr(i + 3, j - i - 3), line, col);
        i = j + 1;
        continue;
      }
      if (c == '|' || c == ':' || (c == '[' && i + 1 < s.size() && s[i + 1] == '|') ||
          (c == '[' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
        scan_bar(s, i, line, col, graces);
        continue;
      }
      if (c == '>' || c == '<') {
        scan_broken_rhythm(s, i, line, col);
        continue;
      }
      if (c == 'z' || c == 'x' || c == 'Z' || c == 'X') {
        scan_rest(s, i, line, col, graces);
        continue;
      }
      if (c == '[' || c == '^' || c == '_' || c == '=' || letter_index(c) >= 0) {
        scan_note(s, i, line, col, graces);
        continue;
      }
      if (c == '&') { warn(line, col, "voice overlay (&) is not supported; skipped"); ++i; continue; }
      if (c == '-') {  // a tie written after a space ties the previous note (as abc2midi reads it)
        scan_loose_tie(i);
        continue;
      }
      warn(line, col, std::string("unexpected character '") + c + "'");
      ++i;
    }
  }

  // {…} grace notes (for the next note): false when unterminated.
  bool scan_grace_notes(const std::string& s, size_t& i, int line, int col,
                        std::vector<std::pair<int, Fraction>>& graces) {
    size_t j = s.find('}', i);
    if (j == std::string::npos) { warn(line, col, "unterminated grace notes"); return false; }
    std::string g = s.substr(i + 1, j - i - 1);
    size_t k = 0;
    Voice& v = voice();
    while (k < g.size()) {
      int li, oct, acc, p = 0;
      bool has;
      size_t k0 = k;
      if (parse_pitch(g, k, &p, &li, &oct, &has, &acc, line)) {
        Fraction m;
        parse_length(g, k, &m);
        int pitch = resolve_pitch(v, li, oct, has, acc);
        graces.emplace_back(pitch, v.unit * m);
      } else if (k == k0) {
        ++k;
      }
    }
    i = j + 1;
    return true;
  }

  // (p:q:r tuplet, or a slur.
  void scan_tuplet(const std::string& s, size_t& i, int line, int col) {
    if (i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      size_t j = i + 1;
      auto num = [&](int dflt) {
        if (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) {
          int n = 0;
          while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) n = std::min(n * 10 + (s[j++] - '0'), 1000000);  // saturate (fuzzer finding)
          return n;
        }
        return dflt;
      };
      int p = num(0);
      int q = 0, r = 0;
      if (j < s.size() && s[j] == ':') {
        ++j;
        q = num(0);
        if (j < s.size() && s[j] == ':') { ++j; r = num(0); }
      }
      Voice& v = voice();
      if (p < 2 || p > 9) { warn(line, col, "unsupported tuplet (" + std::to_string(p)); i = j; return; }
      if (q == 0) {
        if (p == 3 || p == 6) q = 2;
        else if (p == 2 || p == 4 || p == 8) q = 3;
        else q = (v.meter_num % 3 == 0) ? 3 : 2;  // abc2midi's rule for 5, 7, 9
      }
      if (r == 0) r = p;
      v.tup_left = r;
      v.tup_factor = Fraction(q, p);
      i = j;
    } else {
      ++i;  // slur
    }
  }

  // Bar lines, repeats and endings ([1 |2 :|1,3).
  void scan_bar(const std::string& s, size_t& i, int line, int col, std::vector<std::pair<int, Fraction>>& graces) {
    const char c = s[i];
    Voice& v = voice();
    Item it;
    it.line = line;
    it.col = col;
    size_t j = i;
    bool is_bar = false;
    if (c == '[' && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      it.kind = Item::kEnding;
      j = i + 1;
    } else {
      std::string run;
      while (j < s.size() && (s[j] == '|' || s[j] == ':' || s[j] == '[' || s[j] == ']')) {
        if (s[j] == '[' && !(j + 1 < s.size() && (s[j + 1] == '|' || std::isdigit(static_cast<unsigned char>(s[j + 1])))))
          break;
        if (s[j] == '[' && std::isdigit(static_cast<unsigned char>(s[j + 1]))) { ++j; break; }
        if (s[j] == ']' && run.empty()) break;
        run += s[j++];
      }
      if (run.find('|') == std::string::npos && run.find(':') != std::string::npos && run.size() >= 2) {
        is_bar = true;  // "::"
      }
      is_bar = is_bar || run.find('|') != std::string::npos;
      if (!is_bar) {
        if (run.empty()) { ++i; return; }
        ++i;
        return;
      }
      it.kind = Item::kBar;
      it.rep_end = run[0] == ':';
      it.rep_start = run.back() == ':';
      it.thick = run.find("||") != std::string::npos || run.find(']') != std::string::npos ||
                 run.find('[') != std::string::npos;
      if (run == "::") { it.rep_end = it.rep_start = true; }
    }
    // Ending numbers: "1", "1,3", "1-3".
    while (j < s.size() && s[j] == ' ' && it.kind == Item::kEnding) ++j;
    if (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) {
      int prev = -1;
      bool range = false;
      while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == ',' || s[j] == '-')) {
        if (std::isdigit(static_cast<unsigned char>(s[j]))) {
          int n = 0;
          while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) n = std::min(n * 10 + (s[j++] - '0'), 1000000);  // saturate (fuzzer finding)
          if (range && prev >= 0) for (int x = prev + 1; x <= n && x < prev + 20; ++x) it.endings.push_back(x);
          else it.endings.push_back(n);
          prev = n;
          range = false;
        } else {
          range = s[j] == '-';
          ++j;
        }
      }
    }
    if (it.kind == Item::kBar) bar_reset(v);
    graces.clear();  // a grace group before a bar line has no host note
    v.items.push_back(it);
    i = j;
  }

  // > < >> << broken rhythm between the previous and the next note.
  void scan_broken_rhythm(const std::string& s, size_t& i, int line, int col) {
    const char c = s[i];
    Voice& v = voice();
    int n = 0;
    size_t j = i;
    while (j < s.size() && s[j] == c) { ++n; ++j; }
    if (n > 3) {  // fuzzer finding: 1 << n overflowed for long runs of '>'
      warn(line, col, "broken rhythm longer than 3 ('" + std::string(3, c) + "') treated as 3");
      n = 3;
    }
    Fraction small(1, int64_t(1) << n);
    Fraction big = Fraction(2) - small;
    if (v.last_note >= 0 && v.last_note == static_cast<int>(v.items.size()) - 1) {
      v.broken_prev = v.last_note;
      v.prev_factor = c == '>' ? big : small;
      v.next_factor = c == '>' ? small : big;
    } else {
      warn(line, col, "broken rhythm without a preceding note");
    }
    i = j;
  }

  // z x (rests) and Z X (multi-bar rests).
  void scan_rest(const std::string& s, size_t& i, int line, int col, std::vector<std::pair<int, Fraction>>& graces) {
    const char c = s[i];
    Voice& v = voice();
    size_t j = i + 1;
    Fraction m;
    bool has = parse_length(s, j, &m);
    Item it;
    it.kind = Item::kRest;
    it.line = line;
    it.col = col;
    if (c == 'Z' || c == 'X') {
      int64_t bars = has ? m.num / m.den : 1;
      if (bars < 1) bars = 1;
      it.dur = bar_length(v) * Fraction(bars);
      v.items.push_back(it);
      v.tie_pos.clear();
    } else {
      it.dur = v.unit * m;
      add_note_item(v, it, {}, false);
    }
    graces.clear();
    i = j;
  }

  // One pitch with its length and tie at s[j] (j advanced), appended to `it` and `positions`;
  // false (nothing appended) when no pitch is there.
  bool scan_pitch(const std::string& s, size_t& j, int line, Voice& v, Item& it,
                  std::vector<std::pair<int, int>>& positions, Fraction* len) {
    int li, oct, acc, p = 0;
    bool has;
    if (!parse_pitch(s, j, &p, &li, &oct, &has, &acc, line)) return false;
    parse_length(s, j, len);
    bool tie = false;
    if (j < s.size() && s[j] == '-') { tie = true; ++j; }
    it.pitches.push_back(resolve_pitch(v, li, oct, has, acc));
    it.ties.push_back(tie);
    positions.emplace_back(li, oct);
    it.explicit_acc.push_back(has);
    return true;
  }

  // A note or a [chord], with its length, ties and the grace notes before it.
  void scan_note(const std::string& s, size_t& i, int line, int col, std::vector<std::pair<int, Fraction>>& graces) {
    const char c = s[i];
    Voice& v = voice();
    Item it;
    it.kind = Item::kNote;
    it.line = line;
    it.col = col;
    std::vector<std::pair<int, int>> positions;
    bool chord_tie = false;
    if (c == '[') {
      size_t j = i + 1;
      Fraction first_len;
      bool first = true;
      while (j < s.size() && s[j] != ']') {
        char d = s[j];
        if (d == '"') { size_t e = s.find('"', j + 1); j = e == std::string::npos ? s.size() : e + 1; continue; }
        if (d == '!') { size_t e = s.find('!', j + 1); j = e == std::string::npos ? s.size() : e + 1; continue; }
        if (std::isspace(static_cast<unsigned char>(d)) || std::strchr(".~HLMOPSTuvJR()", d)) { ++j; continue; }
        size_t j0 = j;
        Fraction m;
        if (!scan_pitch(s, j, line, v, it, positions, &m)) {
          if (j == j0) { warn(line, static_cast<int>(j), std::string("unexpected '") + d + "' in chord"); ++j; }
          continue;
        }
        if (first) { first_len = m; first = false; }
      }
      if (j >= s.size()) { warn(line, col, "unterminated chord"); i = s.size(); return; }
      ++j;  // ']'
      Fraction outer;
      bool has_outer = parse_length(s, j, &outer);
      // abc2midi: an outer length replaces the inner ones; otherwise the first note's length.
      it.dur = v.unit * (has_outer ? outer : (first ? Fraction(1) : first_len));
      if (j < s.size() && s[j] == '-') { chord_tie = true; ++j; }
      i = j;
      if (it.pitches.empty()) { return; }
    } else {
      size_t j = i;
      Fraction m;
      if (!scan_pitch(s, j, line, v, it, positions, &m)) { i = std::max(j, i + 1); return; }
      it.dur = v.unit * m;
      i = j;
    }
    it.graces = graces;
    graces.clear();
    add_note_item(v, it, positions, chord_tie);
  }

  // A tie written after a space ties the previous note (as abc2midi reads it).
  void scan_loose_tie(size_t& i) {
    Voice& v = voice();
    if (v.last_note >= 0 && v.last_note == static_cast<int>(v.items.size()) - 1 &&
        v.items[static_cast<size_t>(v.last_note)].kind == Item::kNote) {
      Item& prev = v.items[static_cast<size_t>(v.last_note)];
      for (size_t k = 0; k < prev.ties.size(); ++k) prev.ties[k] = true;
      for (size_t k = 0; k < prev.positions.size(); ++k) v.tie_pos[prev.positions[k]] = prev.pitches[k];
    }
    ++i;
  }
};

// Repeat/ending expansion as abc2midi plays it (checked case by case against
// abc2midi 4.84): `pass` counts the times a section has been entered; a :| jumps
// back to the section start the first time it is met; a :| met again (or a ::)
// starts a new section; an ending [n / |n not matching the pass is skipped up to
// the next matching ending, a ||, a |:, or a :| that is not part of the ending
// structure. Returns item indices in play order.
std::vector<size_t> expand_repeats(const std::vector<Item>& items, size_t begin, size_t end) {
  std::vector<size_t> order;
  size_t section_start = begin;
  int pass = 1;
  bool skipping = false;
  std::set<size_t> used;
  const size_t kNoSection = static_cast<size_t>(-1);
  bool endings_seen = false;
  size_t guard = 0;
  size_t i = begin;
  auto ending_follows = [&](size_t k) {
    return !items[k].endings.empty() || (k + 1 < end && items[k + 1].kind == Item::kEnding);
  };
  auto has = [](const std::vector<int>& v, int x) { return std::find(v.begin(), v.end(), x) != v.end(); };
  while (i < end && guard++ < 1000000) {
    const Item& it = items[i];
    bool is_marker = it.kind == Item::kBar || it.kind == Item::kEnding;
    if (!it.endings.empty()) endings_seen = true;
    if (skipping) {
      if (!is_marker) { ++i; continue; }
      if (!it.endings.empty()) {
        if (has(it.endings, pass)) skipping = false;
        ++i;
        continue;
      }
      if (it.rep_end && ending_follows(i)) { ++i; continue; }
      if (it.rep_end || it.rep_start || it.thick) skipping = false;
      else { ++i; continue; }
    }
    if (is_marker) {
      if (it.rep_end && !(it.rep_end && ending_follows(i) && used.count(i))) {
        if (!used.count(i) && section_start != kNoSection) {
          used.insert(i);
          ++pass;
          i = section_start;
          continue;
        }
        // Passing a :| again: it opens a new section ("Assuming repeat"), except
        // once variant endings have been met, when later :| without |: do not repeat.
        section_start = endings_seen ? kNoSection : i + 1;
        pass = 1;
      }
      if (it.rep_start) {
        section_start = i + 1;
        pass = 1;
      }
      if (!it.endings.empty() && !has(it.endings, pass)) skipping = true;
      ++i;
      continue;
    }
    order.push_back(i);
    ++i;
  }
  return order;
}

std::string expand_part_order(const std::string& spec) {
  std::string out;
  size_t i = 0;
  while (i < spec.size()) {
    char c = spec[i];
    if (c == '(') {
      size_t j = spec.find(')', i);
      if (j == std::string::npos) break;
      std::string inner = expand_part_order(spec.substr(i + 1, j - i - 1));
      i = j + 1;
      int n = 0;
      while (i < spec.size() && std::isdigit(static_cast<unsigned char>(spec[i]))) n = std::min(n * 10 + (spec[i++] - '0'), 1000000);
      for (int k = 0; k < std::max(1, std::min(n, 20)); ++k) out += inner;
      continue;
    }
    if (std::isalpha(static_cast<unsigned char>(c))) {
      ++i;
      int n = 0;
      while (i < spec.size() && std::isdigit(static_cast<unsigned char>(spec[i]))) n = std::min(n * 10 + (spec[i++] - '0'), 1000000);
      for (int k = 0; k < std::max(1, std::min(n, 20)); ++k) out += c;
      continue;
    }
    if (c == '%') break;
    ++i;
  }
  return out;
}

// The order in which a voice's items play: P: part order (when the voice has part markers),
// repeats and endings expanded as abc2midi plays them (or as written).
std::vector<size_t> play_order(const Voice& v, const std::string& header_parts, const AbcReaderConfig& cfg) {
  std::vector<size_t> order;
  const auto& items = v.items;
  std::string parts = cfg.expand_parts ? expand_part_order(header_parts) : "";
  bool has_markers = false;
  for (const auto& it : items) has_markers = has_markers || it.kind == Item::kPart;
  auto section = [&](size_t b, size_t e) {
    if (cfg.expand_repeats) {
      auto o = expand_repeats(items, b, e);
      order.insert(order.end(), o.begin(), o.end());
    } else {
      for (size_t k = b; k < e; ++k) order.push_back(k);
    }
  };
  if (parts.size() >= 1 && has_markers) {
    // segments
    std::map<char, std::pair<size_t, size_t>> seg;
    size_t first_marker = items.size();
    for (size_t k = 0; k < items.size(); ++k) {
      if (items[k].kind != Item::kPart) continue;
      if (first_marker == items.size()) first_marker = k;
      size_t e = k + 1;
      while (e < items.size() && items[e].kind != Item::kPart) ++e;
      if (!seg.count(items[k].part)) seg[items[k].part] = {k + 1, e};
    }
    section(0, first_marker);
    for (char p : parts) {
      auto f = seg.find(p);
      if (f != seg.end()) section(f->second.first, f->second.second);
    }
  } else {
    section(0, items.size());
  }
  return order;
}

// Tempo, meter and key changes met while playing the first voice (whole-note positions).
struct TuneChanges {
  std::vector<std::pair<Fraction, double>> tempo_map;  // whole-note position -> quarter bpm
  std::vector<std::pair<Fraction, std::pair<int, int>>> meters;
  std::vector<std::pair<Fraction, std::pair<int, bool>>> keys;
};

// Voice vi's notes in play order, in whole notes: ties merged, grace notes played when asked.
void time_voice(const Voice& v, size_t vi, const std::vector<size_t>& order, const AbcReaderConfig& cfg,
                TuneChanges& changes, std::vector<AbcReadNote>& notes) {
  const auto& items = v.items;
  auto& tempo_map = changes.tempo_map;
  auto& meters = changes.meters;
  auto& keys = changes.keys;
  // Timing and ties.
  Fraction t(0);
  std::map<int, size_t> pending;  // pitch -> index in notes of a note tied forward
  for (size_t k : order) {
    const Item& it = items[k];
    if (it.kind == Item::kTempo) {
      if (vi == 0) tempo_map.emplace_back(t, it.qbpm);
      continue;
    }
    if (it.kind == Item::kMeter) { if (vi == 0) meters.push_back({t, {it.num, it.den}}); continue; }
    if (it.kind == Item::kKey) { if (vi == 0) keys.push_back({t, {it.fifths, it.minor}}); continue; }
    if (it.kind == Item::kRest) { t = t + it.dur; pending.clear(); continue; }
    if (it.kind != Item::kNote) continue;
    Fraction start = t, dur = it.dur;
    Fraction grace_total(0);
    for (const auto& g : it.graces) grace_total = grace_total + g.second * Fraction(1, 4);
    // abc2midi drops a grace group as long as its host note (half of it when staccato).
    Fraction host = it.staccato ? it.dur * Fraction(1, 2) : it.dur;
    if (cfg.play_grace_notes && !it.graces.empty() && grace_total < host) {
      Fraction gt = t;
      for (const auto& g : it.graces) {
        Fraction gl = g.second * Fraction(1, 4);
        if (gt + gl >= t + it.dur) break;
        AbcReadNote n;
        n.voice = static_cast<int>(vi);
        n.pitch = g.first;
        n.start = gt;
        n.length = gl;
        n.program = v.program;
        n.is_drum = v.drum;
        n.grace = true;
        notes.push_back(n);
        gt = gt + gl;
      }
      start = gt;
      dur = t + it.dur - gt;
    }
    std::map<int, size_t> next_pending;
    for (size_t p = 0; p < it.pitches.size(); ++p) {
      int pitch = it.pitches[p];
      if (pitch < 0 || pitch > 127) continue;
      auto f = pending.find(pitch);
      size_t idx;
      if (f != pending.end() && !(cfg.play_grace_notes && !it.graces.empty())) {
        idx = f->second;
        notes[idx].length = (t + it.dur) - notes[idx].start;
      } else {
        AbcReadNote n;
        n.voice = static_cast<int>(vi);
        n.pitch = pitch;
        n.start = start;
        n.length = dur;
        n.program = v.program;
        n.is_drum = v.drum;
        notes.push_back(n);
        idx = notes.size() - 1;
      }
      if (it.ties[p]) next_pending[pitch] = idx;
    }
    pending.swap(next_pending);
    t = t + it.dur;
  }
}

// The notes in seconds through the tempo map, with the tempo/meter/key metadata.
void tune_sequence(const TuneParser& P, TuneChanges& changes, const AbcReaderConfig& cfg, AbcTuneNotes& out) {
  auto& tempo_map = changes.tempo_map;
  const auto& meters = changes.meters;
  const auto& keys = changes.keys;
  // Seconds through the tempo map (sorted, last change at a position wins).
  std::stable_sort(tempo_map.begin(), tempo_map.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<double> seg_start_s(tempo_map.size(), 0.0);
  for (size_t k = 1; k < tempo_map.size(); ++k)
    seg_start_s[k] = seg_start_s[k - 1] +
                     (tempo_map[k].first - tempo_map[k - 1].first).value() * 4.0 * 60.0 / tempo_map[k - 1].second;
  auto seconds = [&](const Fraction& w) {
    size_t k = 0;
    while (k + 1 < tempo_map.size() && tempo_map[k + 1].first <= w) ++k;
    return seg_start_s[k] + (w - tempo_map[k].first).value() * 4.0 * 60.0 / tempo_map[k].second;
  };
  NoteSequence& seq = out.sequence;
  for (const auto& n : out.notes) {
    Note x;
    x.onset_s = seconds(n.start);
    x.offset_s = seconds(n.start + n.length);
    x.pitch = n.pitch;
    x.velocity = cfg.velocity;
    x.program = n.is_drum ? 0 : n.program;
    x.is_drum = n.is_drum;
    seq.notes.push_back(x);
  }
  for (size_t k = 0; k < tempo_map.size(); ++k) {
    if (k + 1 < tempo_map.size() && tempo_map[k + 1].first == tempo_map[k].first) continue;
    seq.tempos.push_back(TempoChange{seg_start_s[k], tempo_map[k].second});
  }
  if (P.header_meter_set && !P.header_meter_none)
    seq.time_signatures.push_back(TimeSignature{0.0, P.header_meter_num, P.header_meter_den});
  for (const auto& m : meters) seq.time_signatures.push_back(TimeSignature{seconds(m.first), m.second.first, m.second.second});
  seq.key_signatures.push_back(KeySignature{0.0, std::max(-7, std::min(7, P.header_key.fifths)), P.header_key.minor});
  for (const auto& k : keys) seq.key_signatures.push_back(KeySignature{seconds(k.first), k.second.first, k.second.second});
  seq.sort();
  seq.duration_s = seq.end_time();
}

void finish_tune(TuneParser& P, AbcTuneNotes& out, const AbcReaderConfig& cfg) {
  TuneChanges changes;
  changes.tempo_map.emplace_back(Fraction(0), P.header_qbpm > 0 ? P.header_qbpm : cfg.default_bpm);
  for (size_t vi = 0; vi < P.voices.size(); ++vi) {
    const Voice& v = P.voices[vi];
    out.voice_ids.push_back(v.id);
    time_voice(v, vi, play_order(v, P.header_parts, cfg), cfg, changes, out.notes);
  }
  std::stable_sort(out.notes.begin(), out.notes.end(), [](const AbcReadNote& a, const AbcReadNote& b) {
    if (a.voice != b.voice) return a.voice < b.voice;
    if (a.start != b.start) return a.start < b.start;
    return a.pitch < b.pitch;
  });
  tune_sequence(P, changes, cfg, out);
}

}  // namespace

std::vector<AbcTuneNotes> read_abc_text(const std::string& text, const std::string& what, const AbcReaderConfig& cfg) {
  cfg.validate();
  std::vector<std::string> lines;
  {
    size_t i = 0;
    while (i <= text.size()) {
      size_t j = text.find('\n', i);
      if (j == std::string::npos) j = text.size();
      std::string l = text.substr(i, j - i);
      if (!l.empty() && l.back() == '\r') l.pop_back();
      lines.push_back(l);
      i = j + 1;
    }
  }
  std::vector<AbcTuneNotes> tunes;
  auto is_field = [](const std::string& l) {
    return l.size() >= 2 && std::isalpha(static_cast<unsigned char>(l[0])) && l[1] == ':';
  };
  size_t li = 0;
  while (li < lines.size()) {
    if (!(lines[li].size() >= 2 && lines[li][0] == 'X' && lines[li][1] == ':')) { ++li; continue; }
    AbcTuneNotes tune;
    tune.line = static_cast<int>(li) + 1;
    tune.reference_number = std::atoi(lines[li].c_str() + 2);
    TuneParser P(what, cfg, tune);
    size_t k = li + 1;
    for (; k < lines.size(); ++k) {
      const std::string& l = lines[k];
      if (trim(l).empty()) break;  // blank line ends the tune
      if (l.size() >= 2 && l[0] == 'X' && l[1] == ':') break;
      int line_no = static_cast<int>(k) + 1;
      if (l.size() >= 2 && l[0] == '%' && l[1] == '%') { P.directive(l, line_no, 0); continue; }
      if (l[0] == '%') continue;
      if (is_field(l)) {
        char f = l[0];
        if (!P.in_body || f != 'w') P.field(f, l.substr(2), line_no, 0);
        continue;
      }
      if (!P.in_body) {
        P.warn(line_no, 0, "music before K: (K: assumed C)");
        P.field('K', "C", line_no, 0);
      }
      P.music_line(l, line_no);
    }
    if (!P.in_body) {
      P.warn(tune.line, 0, "tune has no K: field; ignored");
      li = k;
      continue;
    }
    finish_tune(P, tune, cfg);
    tunes.push_back(std::move(tune));
    li = k;
  }
  if (tunes.empty()) throw InputError("abc: " + what + ": no tune (X: ... K:) found");
  return tunes;
}

std::vector<AbcTuneNotes> read_abc_file(const std::string& path, const AbcReaderConfig& cfg) {
  return read_abc_text(read_file_text(path), path, cfg);
}

}  // namespace tunescribe
