// reward_text.h — private to the ABC reward: the text helpers its two modes share.
//
// What it does: Python's string semantics (str.strip, str.lower, \s) for both modes and the
// entry points of each mode (reward_corrected.cpp, reward_flynn2024.cpp); reward.cpp holds what
// both use and dispatches.
// What it does not: belong to the public API (reward.h is the reward's only public header).
#pragma once

#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

#include "tunescribe/reward.h"

namespace tunescribe {
namespace reward_text {

using namespace reward_detail;

constexpr int kDrumProgram = 128;  // corrected mode: a drum voice

inline bool is_py_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_note_letter(char c) { return (c >= 'A' && c <= 'G') || (c >= 'a' && c <= 'g'); }

inline std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

inline std::string strip(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && is_py_space(s[b])) ++b;
  while (e > b && is_py_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

inline const std::vector<std::string>& gm_lower() {
  static const std::vector<std::string> v = [] {
    std::vector<std::string> out;
    for (const auto& n : pretty_midi_gm_names()) out.push_back(lower(n));
    return out;
  }();
  return v;
}

inline std::string program_name_lower(int program) {
  if (program == kDrumProgram) return "drums";
  if (program < 0 || program > 127) return "";
  return gm_lower()[static_cast<size_t>(program)];
}

inline long long parse_ll_capped(const std::string& digits) {
  // Python ints are unbounded; cap absurd values instead of overflowing.
  if (digits.size() > 15) return 999999999999999LL;
  return std::atoll(digits.c_str());
}

inline int letter_index(char c) {
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

// name="…" / nm="…" (quoted, or unquoted up to whitespace).
inline std::string voice_name_from_header(const std::string& rest) {
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

// Corrected mode (reward_corrected.cpp): the header parser and abc2midi's pitches (the ABC reader).
RewardInput parse_corrected(const std::string& text, const std::string& what);
RewardResult corrected_compute(const RewardInput& gt, const RewardInput& pred);
// Flynn 2024 mode (reward_flynn2024.cpp): the article's regexes, quirks included.
RewardInput parse_flynn2024(const std::string& text);
RewardResult flynn_compute(const RewardInput& first, const RewardInput& second, const std::string& where);

}  // namespace reward_text
}  // namespace tunescribe
