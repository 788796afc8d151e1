// reward_flynn2024.cpp — the ABC reward as Flynn (2024) computes it (scoring.md §2), quirks
// included: every regex of the original emulated by hand so that Python's `re` semantics (`.`
// excludes only '\n', `$` also matches before a final newline) are reproduced exactly.
#include "reward_text.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>

#include "tunescribe/errors.h"
#include "tunescribe/log.h"

namespace tunescribe {

namespace {

using namespace reward_detail;
using namespace reward_text;

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

}  // namespace

namespace reward_detail {

using namespace reward_text;

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

}  // namespace reward_detail

namespace reward_text {

RewardInput parse_flynn2024(const std::string& text) {
  RewardInput in;
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
  return in;
}

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

}  // namespace reward_text

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
      std::string rest = reward_text::strip(line.substr(2));
      size_t e = 0;
      while (e < rest.size() && !reward_text::is_py_space(rest[e])) ++e;
      def = cur = find_voice(rest.substr(0, e));
      const std::string name = reward_text::voice_name_from_header(rest.substr(e));
      if (!name.empty()) voices[static_cast<size_t>(def)].name = name;
      continue;
    }
    if (line.rfind("[V:", 0) == 0) {
      const size_t close = line.find(']');
      if (close != std::string::npos) {
        std::string id = reward_text::strip(line.substr(3, close - 3));
        const size_t sp = id.find(' ');
        if (sp != std::string::npos) id = id.substr(0, sp);
        cur = find_voice(id);
        line = reward_text::strip(line.substr(close + 1));
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

}  // namespace tunescribe
