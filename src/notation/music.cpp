// music.cpp — Fraction, Meter and Key (see music.h).
#include "tunescribe/music.h"

#include <cctype>
#include <cstdlib>
#include <numeric>
#include <stdexcept>

namespace tunescribe {

// ---------------------------------------------------------------- Fraction
Fraction::Fraction(int64_t n, int64_t d) {
  if (d == 0) throw std::invalid_argument("Fraction with zero denominator");
  if (d < 0) { n = -n; d = -d; }
  int64_t g = std::gcd(n < 0 ? -n : n, d);
  if (g == 0) g = 1;
  num = n / g;
  den = d / g;
}
std::string Fraction::str() const {
  return den == 1 ? std::to_string(num) : std::to_string(num) + "/" + std::to_string(den);
}
Fraction operator+(const Fraction& a, const Fraction& b) {
  int64_t g = std::gcd(a.den, b.den);
  return Fraction(a.num * (b.den / g) + b.num * (a.den / g), a.den / g * b.den);
}
Fraction operator-(const Fraction& a, const Fraction& b) { return a + Fraction(-b.num, b.den); }
Fraction operator*(const Fraction& a, const Fraction& b) {
  int64_t g1 = std::gcd(a.num < 0 ? -a.num : a.num, b.den);
  int64_t g2 = std::gcd(b.num < 0 ? -b.num : b.num, a.den);
  if (g1 == 0) g1 = 1;
  if (g2 == 0) g2 = 1;
  return Fraction((a.num / g1) * (b.num / g2), (a.den / g2) * (b.den / g1));
}
Fraction operator/(const Fraction& a, const Fraction& b) {
  if (b.num == 0) throw std::invalid_argument("Fraction division by zero");
  return a * Fraction(b.den, b.num);
}
bool operator==(const Fraction& a, const Fraction& b) { return a.num == b.num && a.den == b.den; }
bool operator!=(const Fraction& a, const Fraction& b) { return !(a == b); }
bool operator<(const Fraction& a, const Fraction& b) {
  return static_cast<__int128>(a.num) * b.den < static_cast<__int128>(b.num) * a.den;
}
bool operator<=(const Fraction& a, const Fraction& b) { return !(b < a); }
bool operator>(const Fraction& a, const Fraction& b) { return b < a; }
bool operator>=(const Fraction& a, const Fraction& b) { return !(a < b); }
int64_t floor_int(const Fraction& a) {
  int64_t q = a.num / a.den;
  if (a.num % a.den != 0 && a.num < 0) --q;
  return q;
}

// ---------------------------------------------------------------- Meter
Meter make_meter(int num, int den, const std::string& text) {
  Meter m;
  m.num = num;
  m.den = den;
  m.text = text;
  if (den >= 8 && num % 3 == 0 && num > 3) {
    m.sub = 3;
    m.beat = Fraction(3, den);
    m.beats_per_bar = num / 3;
  } else {
    m.sub = 2;
    m.beat = Fraction(1, den);
    m.beats_per_bar = num;
  }
  return m;
}

bool meter_symbol(const std::string& s, int* num, int* den) {
  if (s == "C") { *num = 4; *den = 4; return true; }
  if (s == "C|") { *num = 2; *den = 2; return true; }
  return false;
}

bool parse_meter(const std::string& s, Meter* out) {
  int n = 0, d = 0;
  if (meter_symbol(s, &n, &d)) { *out = make_meter(n, d, s); return true; }
  auto slash = s.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= s.size()) return false;
  for (size_t i = 0; i < s.size(); ++i)
    if (i != slash && !std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  n = std::atoi(s.substr(0, slash).c_str());
  d = std::atoi(s.substr(slash + 1).c_str());
  if (n < 1 || n > 16 || !(d == 2 || d == 4 || d == 8 || d == 16)) return false;
  *out = make_meter(n, d, std::to_string(n) + "/" + std::to_string(d));
  return true;
}

// ---------------------------------------------------------------- Key
char lof_letter(int q) { return "FCGDAEB"[((q + 1) % 7 + 7) % 7]; }
int lof_alter(int q) { int v = q + 1; return v >= 0 ? v / 7 : -((-v + 6) / 7); }
int lof_pc(int q) { return ((7 * q) % 12 + 12) % 12; }

std::string Key::text() const {
  std::string s(1, lof_letter(tonic_q));
  int a = lof_alter(tonic_q);
  if (a > 0) s += std::string(a, '#');
  if (a < 0) s += std::string(-a, 'b');
  return s + mode;
}

int mode_fifths_offset(const std::string& m) {
  if (m.empty() || m == "maj" || m == "ion") return 0;
  if (m == "m" || m == "min" || m == "aeo") return -3;
  if (m == "dor") return -2;
  if (m == "phr") return -4;
  if (m == "lyd") return 1;
  if (m == "mix") return -1;
  if (m == "loc") return -5;
  return kUnknownMode;
}

bool parse_tonic(const std::string& s, size_t* i, int* tonic_q) {
  if (*i >= s.size()) return false;
  const char L = static_cast<char>(std::toupper(static_cast<unsigned char>(s[*i])));
  const std::string letters = "FCGDAEB";
  const auto pos = letters.find(L);
  if (L == 0 || pos == std::string::npos) return false;
  int q = static_cast<int>(pos) - 1;
  size_t k = *i + 1;
  if (k < s.size() && s[k] == '#') { q += 7; ++k; }
  else if (k < s.size() && s[k] == 'b') { q -= 7; ++k; }
  *tonic_q = q;
  *i = k;
  return true;
}

bool parse_key(const std::string& s, Key* out) {
  size_t i = 0;
  int q = 0;
  if (!parse_tonic(s, &i, &q)) return false;
  std::string mode;
  for (; i < s.size(); ++i) {
    if (s[i] == ' ') continue;
    mode += static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
  }
  if (mode.size() > 3) mode = mode.substr(0, 3);
  const int off = mode_fifths_offset(mode);
  if (off == kUnknownMode) return false;
  Key k;
  k.tonic_q = q;
  k.fifths = q + off;
  if (k.fifths < -7 || k.fifths > 7) return false;
  k.minor = (off == -3);
  if (off == 0) k.mode = "";
  else if (off == -3) k.mode = "m";
  else {
    k.mode = mode;
    k.mode[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(k.mode[0])));
  }
  *out = k;
  return true;
}

Key key_from_signature(int fifths, bool minor) {
  Key k;
  k.fifths = fifths;
  k.minor = minor;
  k.tonic_q = minor ? fifths + 3 : fifths;
  k.mode = minor ? "m" : "";
  return k;
}

int signature_alter(int fifths, char letter) {
  const std::string sharps = "FCGDAEB", flats = "BEADGCF";
  if (fifths > 0) {
    auto p = sharps.find(letter);
    return static_cast<int>(p) < fifths ? 1 : 0;
  }
  if (fifths < 0) {
    auto p = flats.find(letter);
    return static_cast<int>(p) < -fifths ? -1 : 0;
  }
  return 0;
}

}  // namespace tunescribe
