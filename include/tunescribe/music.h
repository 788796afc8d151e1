// music.h — the small vocabulary of musical types shared by every component.
//
// What it does: exact fractions of a whole note (`Fraction`), meters (`Meter`:
// numerator/denominator, written beat, simple or compound) and keys (`Key`: tonic
// on the line of fifths, signature, mode), with the strict parsing and the
// spelling that the ABC writer, the generator and the readers agree on.
// What it does not: estimate a meter or key from notes (analysis.h), read whole
// ABC fields with their lenient real-world forms (abc_reader.cpp and reward.cpp
// build those on the pieces here).
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>

namespace tunescribe {

// Exact musical time in whole notes; always reduced with den > 0.
struct Fraction {
  int64_t num = 0;
  int64_t den = 1;
  Fraction() = default;
  Fraction(int64_t n, int64_t d = 1);  // reduces; d == 0 is a logic error (throws std::invalid_argument)
  double value() const { return static_cast<double>(num) / static_cast<double>(den); }
  std::string str() const;  // "3/8", "1", "-1/4"
};
Fraction operator+(const Fraction& a, const Fraction& b);
Fraction operator-(const Fraction& a, const Fraction& b);
Fraction operator*(const Fraction& a, const Fraction& b);
Fraction operator/(const Fraction& a, const Fraction& b);
bool operator==(const Fraction& a, const Fraction& b);
bool operator!=(const Fraction& a, const Fraction& b);
bool operator<(const Fraction& a, const Fraction& b);
bool operator<=(const Fraction& a, const Fraction& b);
bool operator>(const Fraction& a, const Fraction& b);
bool operator>=(const Fraction& a, const Fraction& b);
// Largest integer <= a.
int64_t floor_int(const Fraction& a);

// A written meter. Compound meters (n/8 or n/16 with n = 6, 9, 12, 15) count dotted beats.
struct Meter {
  int num = 4, den = 4;
  std::string text = "4/4";  // as written in M: ("C" and "C|" kept)
  Fraction beat{1, 4};       // written beat (the Q: unit)
  int sub = 2;               // subdivisions of the beat: 2 simple, 3 compound
  int beats_per_bar = 4;
  Fraction bar() const { return Fraction(num, den); }
};
// The meter n/d written as `text`.
Meter make_meter(int num, int den, const std::string& text);
// The two meter symbols: "C" = 4/4, "C|" = 2/2. False for anything else.
bool meter_symbol(const std::string& s, int* num, int* den);
// Strict: "C", "C|" or n/d with n 1..16 and d in {2, 4, 8, 16} (no spaces). False otherwise.
bool parse_meter(const std::string& s, Meter* out);

// Line of fifths: C = 0, G = 1, …, F = -1, Bb = -2.
char lof_letter(int q);  // 'C' for 0
int lof_alter(int q);    // sharps > 0, flats < 0
int lof_pc(int q);       // pitch class 0..11

// A key: tonic, signature and mode.
struct Key {
  int tonic_q = 0;   // line-of-fifths position of the tonic
  int fifths = 0;    // signature: sharps > 0, flats < 0
  bool minor = false;
  std::string mode;  // "" major, "m" minor, or "Dor", "Phr", "Lyd", "Mix", "Loc"
  std::string text() const;  // "G", "F#m", "EbDor"
  int tonic_pc() const { return lof_pc(tonic_q); }
};
// Signature fifths minus tonic fifths of a mode given in lower case and cut to 3 letters:
// "" maj ion → 0, m min aeo → -3, dor → -2, phr → -4, lyd → 1, mix → -1, loc → -5;
// kUnknownMode for anything else.
constexpr int kUnknownMode = 99;
int mode_fifths_offset(const std::string& mode_lower3);
// Tonic letter A-G (either case) at s[*i] with an optional '#' or 'b' after it: sets *tonic_q
// (line of fifths) and advances *i. False (nothing changed) when s[*i] is not a letter A-G.
bool parse_tonic(const std::string& s, size_t* i, int* tonic_q);
// Strict: tonic, then a mode (spaces ignored, case-insensitive, cut to 3 letters) from
// mode_fifths_offset; at most 7 sharps or flats. False otherwise.
bool parse_key(const std::string& s, Key* out);
// The major (or aeolian) key of a signature.
Key key_from_signature(int fifths, bool minor);
// Alteration given by the signature `fifths` to `letter` (upper case): +1, -1 or 0.
int signature_alter(int fifths, char letter);

}  // namespace tunescribe
