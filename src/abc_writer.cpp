// abc_writer.cpp — performed notes → one ABC 2.1 tune (see abc_writer.h and
// ../shared/specs/abc.md for the rules followed here).
#include "tunescribe/abc_writer.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <numeric>
#include <set>
#include <sstream>
#include <stdexcept>

#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/log.h"

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

KeyProfile key_profile_from_string(const std::string& s) {
  if (s == "albrecht_shanahan") return KeyProfile::kAlbrechtShanahan;
  if (s == "krumhansl_kessler") return KeyProfile::kKrumhanslKessler;
  if (s == "temperley") return KeyProfile::kTemperley;
  if (s == "aarden_essen") return KeyProfile::kAardenEssen;
  throw ConfigError("abc: key_profile '" + s +
                    "' is not one of albrecht_shanahan, krumhansl_kessler, temperley, aarden_essen");
}

std::string abc_title_from_path(const std::string& path) { return path_stem(path); }

namespace {

const char* kComponent = "abc";

// ---------------------------------------------------------------- meter / key parsing
struct Meter {
  int num = 4, den = 4;
  std::string text = "4/4";
  Fraction beat{1, 4};  // written beat (Q: unit)
  int sub = 2;          // subdivisions of the beat: 2 simple, 3 compound
  int beats_per_bar = 4;
  Fraction bar() const { return Fraction(num, den); }
};

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

bool parse_meter(const std::string& s, Meter* out) {
  if (s == "C") { *out = make_meter(4, 4, "C"); return true; }
  if (s == "C|") { *out = make_meter(2, 2, "C|"); return true; }
  auto slash = s.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= s.size()) return false;
  for (size_t i = 0; i < s.size(); ++i)
    if (i != slash && !std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  int n = std::atoi(s.substr(0, slash).c_str());
  int d = std::atoi(s.substr(slash + 1).c_str());
  if (n < 1 || n > 16 || !(d == 2 || d == 4 || d == 8 || d == 16)) return false;
  *out = make_meter(n, d, std::to_string(n) + "/" + std::to_string(d));
  return true;
}

// Line of fifths: C=0, G=1, ..., F=-1, Bb=-2.
char lof_letter(int q) { return "FCGDAEB"[((q + 1) % 7 + 7) % 7]; }
int lof_alter(int q) { int v = q + 1; return v >= 0 ? v / 7 : -((-v + 6) / 7); }
int lof_pc(int q) { return ((7 * q) % 12 + 12) % 12; }

struct Key {
  int tonic_q = 0;       // line-of-fifths position of the tonic
  int fifths = 0;        // signature
  bool minor = false;
  std::string mode;      // "" major, "m" minor, or "Dor", "Phr", "Lyd", "Mix", "Loc"
  std::string text() const {
    std::string s(1, lof_letter(tonic_q));
    int a = lof_alter(tonic_q);
    if (a > 0) s += std::string(a, '#');
    if (a < 0) s += std::string(-a, 'b');
    return s + mode;
  }
};

int mode_offset(const std::string& mode_lower) {
  // signature fifths = tonic_q + offset
  if (mode_lower.empty() || mode_lower == "maj" || mode_lower == "ion") return 0;
  if (mode_lower == "m" || mode_lower == "min" || mode_lower == "aeo") return -3;
  if (mode_lower == "dor") return -2;
  if (mode_lower == "phr") return -4;
  if (mode_lower == "lyd") return 1;
  if (mode_lower == "mix") return -1;
  if (mode_lower == "loc") return -5;
  return 99;
}

bool parse_key(const std::string& s, Key* out) {
  if (s.empty()) return false;
  char L = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  const std::string letters = "FCGDAEB";
  auto pos = letters.find(L);
  if (pos == std::string::npos) return false;
  int q = static_cast<int>(pos) - 1;
  size_t i = 1;
  if (i < s.size() && s[i] == '#') { q += 7; ++i; }
  else if (i < s.size() && s[i] == 'b') { q -= 7; ++i; }
  std::string mode;
  for (; i < s.size(); ++i) {
    if (s[i] == ' ') continue;
    mode += static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
  }
  if (mode.size() > 3) mode = mode.substr(0, 3);
  int off = mode_offset(mode);
  if (off == 99) return false;
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

// ---------------------------------------------------------------- key estimation
const double kProfiles[4][2][12] = {
    {{0.238, 0.006, 0.111, 0.006, 0.137, 0.094, 0.016, 0.214, 0.009, 0.080, 0.008, 0.081},
     {0.220, 0.006, 0.104, 0.123, 0.019, 0.103, 0.012, 0.214, 0.062, 0.022, 0.061, 0.052}},
    {{6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88},
     {6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17}},
    {{5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0},
     {5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0}},
    {{17.7661, 0.145624, 14.9265, 0.160186, 19.8049, 11.3587, 0.291248, 22.062, 0.145624, 8.15494,
      0.232998, 4.95122},
     {18.2648, 0.737619, 14.0499, 16.8599, 0.702494, 14.4362, 0.702494, 18.6161, 4.56621, 1.93186,
      7.37619, 1.75623}}};

double pearson(const double* x, const double* y) {
  double mx = 0, my = 0;
  for (int i = 0; i < 12; ++i) { mx += x[i]; my += y[i]; }
  mx /= 12; my /= 12;
  double sxy = 0, sxx = 0, syy = 0;
  for (int i = 0; i < 12; ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  if (sxx <= 0 || syy <= 0) return -2;
  return sxy / std::sqrt(sxx * syy);
}

Key estimate_key(const double hist[12], KeyProfile prof) {
  int pi = static_cast<int>(prof);
  double best = -3;
  int best_pc = 0;
  bool best_minor = false;
  for (int minor = 0; minor < 2; ++minor) {
    for (int t = 0; t < 12; ++t) {
      double rot[12];
      for (int i = 0; i < 12; ++i) rot[i] = hist[(t + i) % 12];
      double r = pearson(rot, kProfiles[pi][minor]);
      if (r > best + 1e-12) { best = r; best_pc = t; best_minor = minor != 0; }
    }
  }
  // Tonic spelling: major tonic q in [-5, 6] (F# over Gb), minor in [-3, 8] (Eb minor over D#).
  int lo = best_minor ? -3 : -5;
  for (int q = lo; q < lo + 12; ++q)
    if (lof_pc(q) == best_pc) {
      Key k;
      k.tonic_q = q;
      k.minor = best_minor;
      k.fifths = best_minor ? q - 3 : q;
      k.mode = best_minor ? "m" : "";
      return k;
    }
  return Key{};
}

// Alteration given by the key signature for a letter.
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

struct Spelled {
  char letter = 'C';
  int alter = 0;
  int octave = 4;
};

Spelled spell(int midi, int tonic_q) {
  int pc = ((midi % 12) + 12) % 12;
  Spelled s;
  for (int q = tonic_q - 5; q <= tonic_q + 6; ++q) {
    if (lof_pc(q) == pc) {
      s.letter = lof_letter(q);
      s.alter = lof_alter(q);
      break;
    }
  }
  int v = midi - s.alter;
  s.octave = (v >= 0 ? v / 12 : -((-v + 11) / 12)) - 1;
  return s;
}

std::string octave_letter(const Spelled& s) {
  std::string out;
  if (s.octave >= 5) {
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(s.letter)));
    out += std::string(s.octave - 5, '\'');
  } else {
    out += s.letter;
    out += std::string(4 - s.octave, ',');
  }
  return out;
}

std::string accidental_text(int alter) {
  switch (alter) {
    case -2: return "__";
    case -1: return "_";
    case 0: return "=";
    case 1: return "^";
    case 2: return "^^";
    default: return "";
  }
}

// ---------------------------------------------------------------- beat map
// Piecewise-linear map from seconds to "units" through a list of unit times.
struct BeatMap {
  std::vector<double> times;  // strictly increasing, >= 2 entries
  double beta(double t) const {
    const size_t n = times.size();
    if (t <= times[0]) return (t - times[0]) / (times[1] - times[0]);
    if (t >= times[n - 1]) return static_cast<double>(n - 1) + (t - times[n - 1]) / (times[n - 1] - times[n - 2]);
    size_t i = static_cast<size_t>(std::upper_bound(times.begin(), times.end(), t) - times.begin()) - 1;
    return static_cast<double>(i) + (t - times[i]) / (times[i + 1] - times[i]);
  }
  double time_of(double b) const {
    const size_t n = times.size();
    if (b <= 0) return times[0] + b * (times[1] - times[0]);
    if (b >= static_cast<double>(n - 1))
      return times[n - 1] + (b - static_cast<double>(n - 1)) * (times[n - 1] - times[n - 2]);
    size_t i = static_cast<size_t>(std::floor(b));
    return times[i] + (b - static_cast<double>(i)) * (times[i + 1] - times[i]);
  }
};

BeatMap fixed_map(double period_s, double t0, double t_end) {
  BeatMap m;
  int n = static_cast<int>(std::ceil((t_end - t0) / period_s)) + 3;
  for (int i = 0; i < n; ++i) m.times.push_back(t0 + i * period_s);
  return m;
}

// Quarter-note grid from a MIDI tempo map (exact integration).
BeatMap midi_tempo_map(const std::vector<TempoChange>& tempos, double t_end) {
  std::vector<TempoChange> tc = tempos;
  std::sort(tc.begin(), tc.end(), [](const TempoChange& a, const TempoChange& b) { return a.time_s < b.time_s; });
  if (tc.empty() || tc[0].time_s > 0) tc.insert(tc.begin(), TempoChange{0.0, tc.empty() ? 120.0 : tc[0].bpm});
  BeatMap m;
  double t = 0, b = 0;
  size_t i = 0;
  m.times.push_back(0.0);
  double next_b = 1;
  while (t < t_end + 4.0 * 60.0 / tc.back().bpm || m.times.size() < 3) {
    double bpm = tc[i].bpm > 0 ? tc[i].bpm : 120.0;
    double seg_end_t = i + 1 < tc.size() ? tc[i + 1].time_s : 1e18;
    double t_at_next = t + (next_b - b) * 60.0 / bpm;
    if (t_at_next <= seg_end_t) {
      t = t_at_next;
      b = next_b;
      m.times.push_back(t);
      next_b += 1;
    } else {
      b += (seg_end_t - t) * bpm / 60.0;
      t = seg_end_t;
      ++i;
    }
    if (m.times.size() > 2000000) break;
  }
  return m;
}

struct Cluster {
  double time_s = 0;
  double salience = 0;
};

// Global period by autocorrelation + Ellis (2007) DP beat tracking.
BeatMap track_beats(const std::vector<Cluster>& clusters, double t_end) {
  const double fps = 100.0;
  const int T = static_cast<int>(std::ceil(t_end * fps)) + 20;
  std::vector<double> o(static_cast<size_t>(T), 0.0);
  for (const auto& c : clusters) {
    double f = c.time_s * fps;
    int f0 = static_cast<int>(std::floor(f));
    for (int k = f0 - 5; k <= f0 + 6; ++k) {
      if (k < 0 || k >= T) continue;
      double d = (k - f) / 1.5;
      o[static_cast<size_t>(k)] += c.salience * std::exp(-0.5 * d * d);
    }
  }
  double mean = std::accumulate(o.begin(), o.end(), 0.0) / T;
  std::vector<double> z(o.size());
  for (size_t i = 0; i < o.size(); ++i) z[i] = o[i] - mean;
  int lag_min = 25, lag_max = std::min(150, T - 1);
  std::vector<double> score(static_cast<size_t>(lag_max + 2), -1e300);
  int best_lag = -1;
  for (int L = lag_min; L <= lag_max; ++L) {
    double ac = 0;
    for (int t = 0; t + L < T; ++t) ac += z[static_cast<size_t>(t)] * z[static_cast<size_t>(t + L)];
    double bpm = 60.0 * fps / L;
    double pr = std::log2(bpm / 110.0);
    double s = ac * std::exp(-0.5 * pr * pr);
    score[static_cast<size_t>(L)] = s;
    if (best_lag < 0 || s > score[static_cast<size_t>(best_lag)]) best_lag = L;
  }
  double tau = best_lag > 0 ? best_lag : 50;
  if (best_lag > lag_min && best_lag < lag_max) {
    double a = score[static_cast<size_t>(best_lag - 1)], b = score[static_cast<size_t>(best_lag)],
           c = score[static_cast<size_t>(best_lag + 1)];
    double den = a - 2 * b + c;
    if (den < 0) tau = best_lag + 0.5 * (a - c) / den;
  }
  // Ellis DP.
  double sd = 0;
  for (double v : o) sd += (v - mean) * (v - mean);
  sd = std::sqrt(sd / T);
  if (sd <= 0) sd = 1;
  std::vector<double> C(o.size()), on(o.size());
  std::vector<int> back(o.size(), -1);
  for (size_t i = 0; i < o.size(); ++i) on[i] = o[i] / sd;
  const double alpha = 100.0;
  for (int t = 0; t < T; ++t) {
    double best = -1e300;
    int arg = -1;
    int p_lo = t - static_cast<int>(std::round(2 * tau)), p_hi = t - static_cast<int>(std::round(tau / 2));
    for (int p = std::max(0, p_lo); p <= p_hi; ++p) {
      double r = std::log((t - p) / tau);
      double v = C[static_cast<size_t>(p)] - alpha * r * r;
      if (v > best) { best = v; arg = p; }
    }
    if (arg >= 0 && best > 0) {
      C[static_cast<size_t>(t)] = on[static_cast<size_t>(t)] + best;
      back[static_cast<size_t>(t)] = arg;
    } else {
      C[static_cast<size_t>(t)] = on[static_cast<size_t>(t)];
    }
  }
  int last_onset = static_cast<int>(std::round(clusters.back().time_s * fps));
  int hi = std::min(T - 1, last_onset + static_cast<int>(tau));
  int lo = std::max(0, hi - static_cast<int>(tau));
  int arg = hi;
  for (int t = lo; t <= hi; ++t)
    if (C[static_cast<size_t>(t)] > C[static_cast<size_t>(arg)]) arg = t;
  std::vector<double> beats;
  for (int t = arg; t >= 0; t = back[static_cast<size_t>(t)]) beats.push_back(t / fps);
  std::reverse(beats.begin(), beats.end());
  BeatMap m;
  if (beats.size() < 3) return fixed_map(tau / fps, clusters.front().time_s, t_end);
  m.times = beats;
  return m;
}

// ---------------------------------------------------------------- meter estimation
struct MeterHyp {
  Fraction f;      // written beat in tracked units
  int sub = 2;
  int bpb = 4;
  int phase = 0;   // steps
  double total = -1e300;
};

const int kSteps = 48;  // grid steps per tracked unit

double weight_at(int p, int bar, int beat, int sub, int fine) {
  if (p % bar == 0) return 4;
  if (p % beat == 0) return 2;
  if (sub > 0 && p % sub == 0) return 1;
  if (fine > 0 && p % fine == 0) return 0.5;
  return 0.1;
}

// Scores hypotheses; `allowed` filters (f, sub, bpb). sec_per_unit for the tempo prior.
MeterHyp choose_meter(const std::vector<std::pair<double, double>>& beta_sal, double sec_per_unit,
                      const std::vector<MeterHyp>& candidates, bool prefer_phase0) {
  MeterHyp best;
  for (MeterHyp h : candidates) {
    Fraction bs = h.f * Fraction(kSteps);
    if (bs.den != 1) continue;
    int beat = static_cast<int>(bs.num);
    int bar = beat * h.bpb;
    int sub = beat % h.sub == 0 ? beat / h.sub : 0;
    int fine = sub % 2 == 0 ? sub / 2 : 0;
    std::vector<double> hist(static_cast<size_t>(bar), 0.0), W(static_cast<size_t>(bar));
    double meanW = 0;
    for (int p = 0; p < bar; ++p) {
      W[static_cast<size_t>(p)] = weight_at(p, bar, beat, sub, fine);
      meanW += W[static_cast<size_t>(p)];
    }
    meanW /= bar;
    double total_sal = 0;
    for (const auto& bsal : beta_sal) {
      long s = std::lround(bsal.first * kSteps);
      int r = static_cast<int>(((s % bar) + bar) % bar);
      hist[static_cast<size_t>(r)] += bsal.second;
      total_sal += bsal.second;
    }
    if (total_sal <= 0) continue;
    double bpm = 60.0 / (sec_per_unit * h.f.value());
    double pr = std::log2(bpm / 100.0) / 0.7;
    double prior = 0.3 * (-0.5 * pr * pr);
    // Downbeats lie on tracked units (or on the hypothesised beats that coincide with them).
    int step = std::gcd(beat, kSteps);
    for (int ph = 0; ph < bar; ph += step) {
      double sc = 0;
      for (int r = 0; r < bar; ++r) {
        if (hist[static_cast<size_t>(r)] == 0) continue;
        sc += hist[static_cast<size_t>(r)] * W[static_cast<size_t>(((r - ph) % bar + bar) % bar)];
      }
      sc /= total_sal * meanW;
      double total = std::log(std::max(sc, 1e-9)) + prior;
      // Conventions: simple duple music is usually written in 4/4 (not 2/4),
      // compound duple in 6/8 (not 12/8).
      if (h.bpb == 4) total += h.sub == 2 ? 0.2 : -0.05;
      if (prefer_phase0 && ph == 0) total += 0.05;
      if (total > best.total + 1e-12) {
        best = h;
        best.phase = ph;
        best.total = total;
      }
    }
  }
  return best;
}

// ---------------------------------------------------------------- quantisation helpers
struct QNote {
  Fraction start, end;  // whole notes, absolute (bar 0 downbeat = 0)
  int pitch, velocity, program;
  bool drum;
  int part;
};

struct Part {
  int program = 0;
  bool drum = false;
};

bool representable(const Fraction& v) {
  // 2^k or 3*2^k (k may be negative), at most a breve.
  if (v.num <= 0 || v > Fraction(2)) return false;
  auto pow2 = [](int64_t x) { return x > 0 && (x & (x - 1)) == 0; };
  if (v.den == 1) return v.num == 1 || v.num == 2;
  if (!pow2(v.den)) return false;
  return v.num == 1 || v.num == 3;
}

// Largest representable value <= d (whole notes, d > 0) not shorter than `finest`.
Fraction largest_representable(const Fraction& d, const Fraction& finest) {
  Fraction best;
  for (int64_t den = 1; den <= 256; den *= 2) {
    for (int64_t n : {1, 2, 3}) {
      Fraction v(n, den);
      if (!representable(v) || v > d) continue;
      if (v > best) best = v;
    }
  }
  if (best.num == 0) best = finest;
  return best;
}

std::string length_text(const Fraction& written, const Fraction& unit) {
  Fraction m = written / unit;
  if (m.num == 1 && m.den == 1) return "";
  if (m.den == 1) return std::to_string(m.num);
  if (m.num == 1 && m.den == 2) return "/";
  if (m.num == 1) return "/" + std::to_string(m.den);
  return std::to_string(m.num) + "/" + std::to_string(m.den);
}

struct Event {  // a written piece (note, chord or rest) inside one bar
  Fraction start, len;          // actual time, whole notes
  std::vector<int> pitches;     // empty = rest
  bool tie_out = false;         // continues into the next piece
  bool continuation = false;    // continues a tie (no accidental)
};

struct VoiceOut {
  AbcVoiceInfo info;
  std::vector<QNote> notes;  // chord stream after clipping, relative to origin
  std::vector<std::string> bars;
  // Per bar: places where a line may break inside the bar (position from the start of the
  // written music, character offset in the bar's text): before a piece or tuplet group that
  // starts on a beat.
  std::vector<std::vector<std::pair<Fraction, size_t>>> bar_breaks;
};

}  // namespace

void AbcWriterConfig::validate() const {
  auto bad = [](const std::string& field, const std::string& value, const std::string& range) {
    throw ConfigError("abc: " + field + " = " + value + " is out of range (" + range + ")");
  };
  if (reference_number < 1) bad("reference_number", std::to_string(reference_number), ">= 1");
  if (!(tempo_bpm == 0.0 || (tempo_bpm >= 20.0 && tempo_bpm <= 400.0)))
    bad("tempo_bpm", std::to_string(tempo_bpm), "0 or 20..400");
  Meter m;
  if (!meter.empty() && !parse_meter(meter, &m))
    bad("meter", "'" + meter + "'", "'' or C, C| or n/d with n 1..16, d 2,4,8,16");
  Key k;
  if (!key.empty() && !parse_key(key, &k))
    bad("key", "'" + key + "'", "'' or A-G[#|b][m|min|maj|dor|phr|lyd|mix|loc|aeo|ion], <= 7 accidentals");
  if (!(unit_denominator == 0 || unit_denominator == 4 || unit_denominator == 8 || unit_denominator == 16 ||
        unit_denominator == 32))
    bad("unit_denominator", std::to_string(unit_denominator), "0, 4, 8, 16 or 32");
  if (!(grid_denominator == 16 || grid_denominator == 32))
    bad("grid_denominator", std::to_string(grid_denominator), "16 or 32");
  if (bars_per_line < 1 || bars_per_line > 32) bad("bars_per_line", std::to_string(bars_per_line), "1..32");
  if (!(max_line_chars == 0 || (max_line_chars >= 30 && max_line_chars <= 1000)))
    bad("max_line_chars", std::to_string(max_line_chars), "0 or 30..1000");
  if (!(chord_cluster_s >= 0 && chord_cluster_s <= 0.2))
    bad("chord_cluster_s", std::to_string(chord_cluster_s), "0..0.2");
  if (!(min_note_s >= 0 && min_note_s <= 0.5)) bad("min_note_s", std::to_string(min_note_s), "0..0.5");
  if (title.find('\n') != std::string::npos || title.find('\r') != std::string::npos)
    bad("title", "(contains a line break)", "one line");
}

AbcTune write_abc(const NoteSequence& seq_in, const AbcWriterConfig& cfg) {
  cfg.validate();
  AbcTune tune;

  // ---- 1. Filter and merge duplicates.
  std::vector<Note> notes;
  for (const Note& n : seq_in.notes) {
    if (!(n.offset_s > n.onset_s) || n.pitch < 0 || n.pitch > 127) continue;
    if (!n.is_drum && n.duration_s() < cfg.min_note_s) continue;
    notes.push_back(n);
  }
  std::sort(notes.begin(), notes.end(), [](const Note& a, const Note& b) {
    if (a.is_drum != b.is_drum) return a.is_drum < b.is_drum;
    if (a.program != b.program) return a.program < b.program;
    if (a.pitch != b.pitch) return a.pitch < b.pitch;
    if (a.onset_s != b.onset_s) return a.onset_s < b.onset_s;
    return a.offset_s < b.offset_s;
  });
  {
    std::vector<Note> merged;
    for (const Note& n : notes) {
      if (!merged.empty()) {
        Note& p = merged.back();
        if (p.is_drum == n.is_drum && p.program == n.program && p.pitch == n.pitch && n.onset_s < p.offset_s - 1e-9 &&
            !n.is_drum) {
          p.offset_s = std::max(p.offset_s, n.offset_s);
          continue;
        }
      }
      merged.push_back(n);
    }
    notes.swap(merged);
  }
  std::sort(notes.begin(), notes.end(), [](const Note& a, const Note& b) {
    if (a.onset_s != b.onset_s) return a.onset_s < b.onset_s;
    if (a.is_drum != b.is_drum) return a.is_drum < b.is_drum;
    if (a.program != b.program) return a.program < b.program;
    return a.pitch < b.pitch;
  });

  // ---- 2. Meter and tempo sources.
  Meter meter;
  bool meter_given = false;
  if (!cfg.meter.empty()) {
    parse_meter(cfg.meter, &meter);
    meter_given = true;
  } else if (cfg.use_midi_metadata && !seq_in.time_signatures.empty()) {
    auto ts = seq_in.time_signatures;
    std::sort(ts.begin(), ts.end(), [](const TimeSignature& a, const TimeSignature& b) { return a.time_s < b.time_s; });
    Meter m;
    std::string txt = std::to_string(ts[0].numerator) + "/" + std::to_string(ts[0].denominator);
    if (parse_meter(txt, &m)) { meter = m; meter_given = true; }
  }

  double t_end = 0;
  for (const Note& n : notes) t_end = std::max(t_end, n.offset_s);

  // Onset clusters (for tempo and meter).
  std::vector<Cluster> clusters;
  std::vector<double> cluster_of_note_time;
  {
    size_t i = 0;
    while (i < notes.size()) {
      size_t j = i;
      double sal = 0;
      std::vector<double> times;
      while (j < notes.size() && notes[j].onset_s - notes[i].onset_s <= cfg.chord_cluster_s) {
        const Note& n = notes[j];
        sal += n.is_drum ? 0.3 : 0.3 + std::min(n.duration_s(), 1.0);
        times.push_back(n.onset_s);
        ++j;
      }
      Cluster c;
      c.time_s = times[times.size() / 2];
      c.salience = sal;
      clusters.push_back(c);
      i = j;
    }
  }

  BeatMap map;
  // What a "unit" of the map is: known (quarter / written beat) or tracked.
  enum class UnitKind { kWrittenBeat, kQuarter, kTracked } unit_kind;
  if (cfg.tempo_bpm > 0) {
    unit_kind = UnitKind::kWrittenBeat;
    // Phase: start at the first onset, then shift the grid (by at most 0.15 beat)
    // to fit all onsets best to sixteenths or triplet eighths: the first onset
    // carries jitter too.
    const double period = 60.0 / cfg.tempo_bpm;
    double t0 = clusters.empty() ? 0.0 : clusters.front().time_s;
    if (clusters.size() > 1) {
      double best_cost = 1e300, best_shift = 0;
      for (int k = -60; k <= 60; ++k) {
        double shift = k * 0.0025;
        double cost = 0;
        for (const auto& c : clusters) {
          double b = (c.time_s - t0) / period - shift;
          double r4 = (b * 4 - std::round(b * 4)) / 4 / 0.05, r3 = (b * 3 - std::round(b * 3)) / 3 / 0.05;
          cost += c.salience * std::min(r4 * r4, r3 * r3 + 1.0);
        }
        cost += 1e-6 * std::abs(k);
        if (cost < best_cost) { best_cost = cost; best_shift = shift; }
      }
      t0 += best_shift * period;
      // Beat phase: the grid offset (in twelfths of a beat) that puts the most
      // salience on beats, then on half and third beats.
      double best_w = -1;
      int best_k = 0;
      for (int k = 0; k < 12; ++k) {
        double w = 0;
        for (const auto& c : clusters) {
          double b = (c.time_s - t0) / period - k / 12.0;
          int pos = static_cast<int>(((std::lround(b * 12) % 12) + 12) % 12);
          w += c.salience * (pos == 0 ? 1.0 : (pos == 6 || pos == 4 || pos == 8) ? 0.5 : (pos % 3 == 0 || pos % 2 == 0) ? 0.25 : 0.0);
        }
        if (w > best_w + 1e-9) { best_w = w; best_k = k; }
      }
      t0 += best_k / 12.0 * period;
    }
    map = fixed_map(period, t0, t_end);
  } else if (cfg.use_midi_metadata && !seq_in.tempos.empty()) {
    unit_kind = UnitKind::kQuarter;
    map = midi_tempo_map(seq_in.tempos, t_end);
  } else if (clusters.size() >= 4) {
    unit_kind = UnitKind::kTracked;
    map = track_beats(clusters, t_end);
  } else {
    unit_kind = UnitKind::kQuarter;
    double t0 = clusters.empty() ? 0.0 : clusters.front().time_s;
    map = fixed_map(0.5, t0, t_end);
  }
  double sec_per_unit = 0.5;
  {
    double b0 = map.beta(clusters.empty() ? 0 : clusters.front().time_s);
    double b1 = map.beta(t_end);
    if (!clusters.empty() && b1 - b0 > 0.5) sec_per_unit = (t_end - clusters.front().time_s) / (b1 - b0);
    else sec_per_unit = map.times[1] - map.times[0];
  }

  // ---- 3. Meter hypotheses.
  std::vector<MeterHyp> cands;
  auto add_meter_cands = [&](const Meter& m, const std::vector<Fraction>& fs) {
    for (const Fraction& f : fs) {
      MeterHyp h;
      h.f = f;
      h.sub = m.sub;
      h.bpb = m.beats_per_bar;
      cands.push_back(h);
    }
  };
  std::vector<Fraction> all_f = {Fraction(1, 2), Fraction(1), Fraction(3, 2), Fraction(2), Fraction(3)};
  std::vector<Meter> meter_options;
  if (meter_given) {
    meter_options.push_back(meter);
  } else {
    for (const char* s : {"2/4", "3/4", "4/4", "6/8", "9/8", "12/8"}) {
      Meter m;
      parse_meter(s, &m);
      meter_options.push_back(m);
    }
  }
  for (const Meter& m : meter_options) {
    std::vector<Fraction> fs;
    if (unit_kind == UnitKind::kWrittenBeat) fs = {Fraction(1)};
    else if (unit_kind == UnitKind::kQuarter) fs = {m.beat / Fraction(1, 4)};
    else fs = all_f;
    add_meter_cands(m, fs);
  }
  std::vector<std::pair<double, double>> beta_sal;
  for (const auto& c : clusters) beta_sal.emplace_back(map.beta(c.time_s), c.salience);
  MeterHyp hyp;
  if (beta_sal.empty()) {
    hyp = cands.front();
    hyp.phase = 0;
  } else {
    hyp = choose_meter(beta_sal, sec_per_unit, cands, unit_kind == UnitKind::kQuarter && meter_given);
    if (hyp.total < -1e299) { hyp = cands.front(); hyp.phase = 0; }
  }
  if (!meter_given) {
    if (hyp.sub == 2) {
      parse_meter(hyp.bpb == 2 ? "2/4" : hyp.bpb == 3 ? "3/4" : "4/4", &meter);
    } else {
      parse_meter(hyp.bpb == 2 ? "6/8" : hyp.bpb == 3 ? "9/8" : "12/8", &meter);
    }
  }
  Fraction beat_w = meter.beat;
  const double f_units = hyp.f.value();
  const double phase_units = static_cast<double>(hyp.phase) / kSteps;
  auto beats_of = [&](double t) { return (map.beta(t) - phase_units) / f_units; };

  // Tempo for Q:
  double bpm_written = 0;
  if (cfg.tempo_bpm > 0) {
    bpm_written = cfg.tempo_bpm;
  } else if (unit_kind == UnitKind::kQuarter && cfg.use_midi_metadata && !seq_in.tempos.empty()) {
    auto tc = seq_in.tempos;
    std::sort(tc.begin(), tc.end(), [](const TempoChange& a, const TempoChange& b) { return a.time_s < b.time_s; });
    bpm_written = tc[0].bpm / f_units;
  } else {
    bpm_written = 60.0 / (sec_per_unit * f_units);
  }
  bpm_written = std::max(20.0, std::min(400.0, std::round(bpm_written)));

  // ---- 4. Per-beat grid choice.
  struct GridOpt { int G; double lambda; bool triplet; };
  std::vector<GridOpt> grid_opts;
  int Gmax = 1;
  const double sigma = 0.05;
  auto beat_index = [&](double b) { return static_cast<int64_t>(std::floor(b + 0.5 / Gmax)); };
  std::vector<double> on_b(notes.size()), off_b(notes.size());
  for (size_t i = 0; i < notes.size(); ++i) {
    on_b[i] = beats_of(notes[i].onset_s);
    off_b[i] = beats_of(notes[i].offset_s);
  }
  std::map<int64_t, GridOpt> beat_grid;
  auto compute_grids = [&]() {
    grid_opts.clear();
    const Fraction finest(1, cfg.grid_denominator);
    if (meter.sub == 2) {
      double lam[] = {0, 0.5, 1.5, 3.0, 4.5};
      int lvl = 0;
      for (int G = 1; G <= 16; G *= 2, ++lvl)
        if (beat_w / Fraction(G) >= finest) grid_opts.push_back({G, lam[lvl], false});
      if (cfg.triplets) {
        if (beat_w / Fraction(3) * Fraction(3, 2) >= finest) grid_opts.push_back({3, 2.0, true});
        if (beat_w / Fraction(6) * Fraction(3, 2) >= finest) grid_opts.push_back({6, 4.0, true});
      }
    } else {
      grid_opts.push_back({1, 0, false});
      double lam[] = {0.5, 1.5, 3.0, 4.5};
      int lvl = 0;
      for (int G = 3; G <= 24; G *= 2, ++lvl)
        if (beat_w / Fraction(G) >= finest) grid_opts.push_back({G, lam[lvl], false});
    }
    Gmax = 1;
    for (const auto& g : grid_opts) Gmax = std::max(Gmax, g.G);
    std::map<int64_t, std::vector<std::pair<double, double>>> beat_points;  // beat -> (frac, weight)
    for (size_t i = 0; i < notes.size(); ++i) {
      int64_t k = beat_index(on_b[i]);
      beat_points[k].emplace_back(on_b[i] - static_cast<double>(k), 1.0);
      if (!notes[i].is_drum) {
        int64_t k2 = beat_index(off_b[i]);
        beat_points[k2].emplace_back(off_b[i] - static_cast<double>(k2), 0.1);
      }
    }
    beat_grid.clear();
    for (const auto& kv : beat_points) {
      double best = 1e300;
      GridOpt bg = grid_opts.front();
      bool has_onset = false;
      for (const auto& pw : kv.second) has_onset = has_onset || pw.second >= 1.0;
      for (const auto& g : grid_opts) {
        if (g.triplet && !has_onset) continue;  // offsets alone never make a triplet beat
        double c = g.lambda;
        for (const auto& pw : kv.second) {
          double d = pw.first - std::round(pw.first * g.G) / g.G;
          c += pw.second * (d / sigma) * (d / sigma);
        }
        if (c < best - 1e-12) { best = c; bg = g; }
      }
      beat_grid[kv.first] = bg;
    }
  };
  compute_grids();
  if (!meter_given && meter.sub == 2 && meter.den == 4) {
    // Mostly triplet beats: the meter is compound with the same beat (2/4 -> 6/8 ...).
    int trip = 0, bin = 0;
    for (const auto& kv : beat_grid) {
      if (kv.second.G == 1) continue;
      (kv.second.triplet ? trip : bin) += 1;
    }
    if (trip > bin && trip >= 2) {
      Meter m;
      // 4/4 won through the 4/4-over-2/4 convention; compound duple is written 6/8.
      parse_meter(meter.num == 3 ? "9/8" : "6/8", &m);
      meter = m;
      beat_w = meter.beat;
      compute_grids();
    }
  }
  auto grid_of = [&](int64_t k) {
    auto it = beat_grid.find(k);
    return it == beat_grid.end() ? grid_opts.front() : it->second;
  };
  auto snap = [&](double b) {
    int64_t k = beat_index(b);
    int G = grid_of(k).G;
    int64_t j = std::llround((b - static_cast<double>(k)) * G);
    return Fraction(k * G + j, G) * beat_w;  // whole notes
  };
  std::set<int64_t> triplet_beats;
  for (const auto& kv : beat_grid)
    if (kv.second.triplet) triplet_beats.insert(kv.first);

  // ---- 5. Parts and quantised notes.
  std::vector<Part> parts;
  std::map<std::pair<bool, int>, int> part_index;
  for (const Note& n : notes) {
    auto key = std::make_pair(n.is_drum, n.is_drum ? 0 : n.program);
    if (!part_index.count(key)) {
      part_index[key] = 0;
    }
  }
  for (auto& kv : part_index) {  // ordered: melodic parts by program, then drums
    kv.second = static_cast<int>(parts.size());
    parts.push_back(Part{kv.first.second, kv.first.first});
  }
  std::vector<QNote> qnotes;
  for (size_t i = 0; i < notes.size(); ++i) {
    const Note& n = notes[i];
    QNote q;
    q.start = snap(on_b[i]);
    q.end = snap(off_b[i]);
    if (q.end <= q.start) {
      int64_t k = beat_index(on_b[i]);
      q.end = q.start + beat_w / Fraction(grid_of(k).G);
    }
    q.pitch = n.pitch;
    q.velocity = n.velocity;
    q.program = n.is_drum ? 0 : n.program;
    q.drum = n.is_drum;
    q.part = part_index[{n.is_drum, q.program}];
    qnotes.push_back(q);
  }

  // ---- 6. Key.
  Key key;
  if (!cfg.key.empty()) {
    parse_key(cfg.key, &key);
  } else if (cfg.use_midi_metadata && !seq_in.key_signatures.empty()) {
    auto ks = seq_in.key_signatures;
    std::sort(ks.begin(), ks.end(), [](const KeySignature& a, const KeySignature& b) { return a.time_s < b.time_s; });
    key = key_from_signature(std::max(-7, std::min(7, ks[0].fifths)), ks[0].minor);
  } else {
    // Duration-weighted pitch-class histogram (sqrt: long notes count, but less). A key signature
    // is the key of the opening (and usually of the close): later sections often modulate (a tune
    // in G with a B part in D, a sonata's development), so notes starting in the first 10 % of the
    // piece count 3x and those in the last 10 % 1.5x. Chosen on a development half of Nottingham
    // and ASAP and checked on a held-out half (docs/abc.md, tools/fixtures/abc_key_eval.py).
    double hist[12] = {0};
    double t_first = 0, t_last = 0;
    bool any = false;
    for (const Note& n : notes) {
      if (n.is_drum) continue;
      t_first = any ? std::min(t_first, n.onset_s) : n.onset_s;
      t_last = any ? std::max(t_last, n.offset_s) : n.offset_s;
      any = true;
    }
    const double span_s = t_last - t_first;
    for (const Note& n : notes) {
      if (n.is_drum) continue;
      double w = std::sqrt(n.duration_s());
      if (n.onset_s < t_first + 0.1 * span_s) w *= 3.0;
      if (n.onset_s >= t_last - 0.1 * span_s) w *= 1.5;
      hist[n.pitch % 12] += w;
    }
    key = estimate_key(hist, cfg.key_profile);
  }

  // ---- 7. Voices (piano hand split) and chord streams.
  std::vector<VoiceOut> voices;
  size_t dropped_chord_notes = 0;
  const Fraction min_step(1, cfg.grid_denominator);
  for (size_t pi = 0; pi < parts.size(); ++pi) {
    std::vector<QNote> pn;
    for (const QNote& q : qnotes)
      if (q.part == static_cast<int>(pi)) pn.push_back(q);
    bool split = false;
    const Part& P = parts[pi];
    if (cfg.split_piano && !P.drum && P.program <= 7) {
      for (size_t a = 0; a < pn.size() && !split; ++a)
        for (size_t b = a + 1; b < pn.size() && pn[b].start < pn[a].end; ++b)
          if (std::abs(pn[b].pitch - pn[a].pitch) > 12) { split = true; break; }
    }
    std::string id_base = P.drum ? "D" : "P" + std::to_string(pi + 1);
    std::vector<std::vector<QNote>> hands;
    std::vector<AbcVoiceInfo> infos;
    if (split) {
      std::vector<QNote> rh, lh;
      // Per onset group (pitches ascending), the split index minimising: hand spans over
      // 12/14 semitones (+20/+100), notes far on the wrong side (LH above G4, RH below F3),
      // and distance to each hand's previous position (voice leading).
      std::vector<QNote> sorted = pn;
      std::sort(sorted.begin(), sorted.end(), [](const QNote& a, const QNote& b) {
        if (a.start != b.start) return a.start < b.start;
        return a.pitch < b.pitch;
      });
      double last_lh = 48, last_rh = 72;
      size_t gi = 0;
      while (gi < sorted.size()) {
        size_t gj = gi;
        while (gj < sorted.size() && sorted[gj].start == sorted[gi].start) ++gj;
        const size_t m = gj - gi;
        double best_cost = 1e300;
        size_t best_s = 0;
        for (size_t sp = 0; sp <= m; ++sp) {
          double cost = 0;
          auto span_cost = [&](size_t a, size_t b) {  // notes [a, b)
            if (b <= a) return 0.0;
            int span = sorted[gi + b - 1].pitch - sorted[gi + a].pitch;
            return span > 14 ? 100.0 : span > 12 ? 20.0 : 0.0;
          };
          cost += span_cost(0, sp) + span_cost(sp, m);
          for (size_t k = 0; k < m; ++k) {
            int p = sorted[gi + k].pitch;
            if (k < sp) cost += std::max(0, p - 67) + 0.1 * std::abs(p - last_lh);
            else cost += std::max(0, 53 - p) + 0.1 * std::abs(p - last_rh);
          }
          if (cost < best_cost - 1e-9) { best_cost = cost; best_s = sp; }
        }
        double sum_l = 0, sum_r = 0;
        for (size_t k = 0; k < m; ++k) {
          const QNote& q = sorted[gi + k];
          if (k < best_s) { lh.push_back(q); sum_l += q.pitch; }
          else { rh.push_back(q); sum_r += q.pitch; }
        }
        if (best_s > 0) last_lh = sum_l / static_cast<double>(best_s);
        if (best_s < m) last_rh = sum_r / static_cast<double>(m - best_s);
        gi = gj;
      }
      hands = {rh, lh};
      infos.push_back({id_base + "R", gm_program_name(P.program, false), "treble", P.program, false});
      infos.push_back({id_base + "L", "", "bass", P.program, false});
    } else {
      hands = {pn};
      std::string clef = "treble";
      if (P.drum) clef = "perc";
      else {
        std::vector<int> ps;
        for (const QNote& q : pn) ps.push_back(q.pitch);
        std::sort(ps.begin(), ps.end());
        if (!ps.empty() && ps[ps.size() / 2] < 60) clef = "bass";
      }
      infos.push_back({id_base, gm_program_name(P.program, P.drum), clef, P.program, P.drum});
    }
    for (size_t h = 0; h < hands.size(); ++h) {
      auto& hv = hands[h];
      std::sort(hv.begin(), hv.end(), [](const QNote& a, const QNote& b) {
        if (a.start != b.start) return a.start < b.start;
        return a.pitch < b.pitch;
      });
      // Group by start, clip to a chord stream.
      std::vector<QNote> stream;
      size_t i = 0;
      while (i < hv.size()) {
        size_t j = i;
        Fraction end = hv[i].end;
        while (j < hv.size() && hv[j].start == hv[i].start) { end = std::min(end, hv[j].end); ++j; }
        if (j < hv.size()) {
          Fraction next = hv[j].start;
          if (next < end) end = next;
          Fraction gap = next - end;
          Fraction ioi = next - hv[i].start;
          if (gap > Fraction(0) && (gap <= min_step || gap * Fraction(4) < ioi)) end = next;
        }
        // Distinct pitches of this chord (hv is sorted by pitch within a start).
        std::vector<size_t> chord;
        for (size_t k = i; k < j; ++k)
          if (chord.empty() || hv[chord.back()].pitch != hv[k].pitch) chord.push_back(k);
        // abcm2ps draws at most 8 heads per chord ("Too many notes in chord"):
        // keep the outer 4 + 4 pitches, which carry the melody and the bass.
        constexpr size_t kMaxChordNotes = 8;
        if (chord.size() > kMaxChordNotes) {
          dropped_chord_notes += chord.size() - kMaxChordNotes;
          chord.erase(chord.begin() + kMaxChordNotes / 2, chord.end() - kMaxChordNotes / 2);
        }
        for (size_t k : chord) {
          QNote q = hv[k];
          q.end = end;
          stream.push_back(q);
        }
        i = j;
      }
      VoiceOut v;
      v.info = infos[h];
      v.notes = stream;
      voices.push_back(v);
    }
  }
  if (dropped_chord_notes > 0)
    log_warn("abc", std::to_string(dropped_chord_notes) +
                        " inner chord notes left out of the ABC (more than 8 at once in one voice)");
  if (voices.empty()) {
    VoiceOut v;
    v.info = {"P1", gm_program_name(0, false), "treble", 0, false};
    voices.push_back(v);
  }

  // ---- 8. Origin, pickup and bars.
  const Fraction bar_len = meter.bar();
  Fraction first, last;
  bool any = false;
  for (const auto& v : voices)
    for (const auto& q : v.notes) {
      if (!any || q.start < first) first = q.start;
      if (!any || q.end > last) last = q.end;
      any = true;
    }
  if (!any) { first = Fraction(0); last = bar_len; }
  {
    // A tune may not start inside a triplet beat: start at that beat instead.
    int64_t k = floor_int(first / beat_w);
    if (triplet_beats.count(k) && Fraction(k) * beat_w != first) first = Fraction(k) * beat_w;
  }
  Fraction bar0 = Fraction(floor_int(first / bar_len)) * bar_len;
  Fraction pickup = first - bar0 == Fraction(0) ? Fraction(0) : bar0 + bar_len - first;
  if (voices.size() > 1 && pickup > Fraction(0)) {
    // abc2abc checks the first bar of the second voice as a full bar: with several
    // voices a pickup is written as a full bar starting with rests.
    first = bar0;
    pickup = Fraction(0);
  }
  const Fraction origin = first;
  for (auto& v : voices)
    for (auto& q : v.notes) { q.start = q.start - origin; q.end = q.end - origin; }
  Fraction total = last - origin;
  std::vector<Fraction> bar_starts;
  {
    Fraction s(0);
    if (pickup > Fraction(0)) { bar_starts.push_back(s); s = pickup; }
    while (s < total) { bar_starts.push_back(s); s = s + bar_len; }
    if (bar_starts.empty()) bar_starts.push_back(Fraction(0));
    total = s;
    if (total == Fraction(0)) total = bar_len;
  }
  const int nbars = static_cast<int>(bar_starts.size());
  // The last chord of a voice has no next onset to be joined to: let it ring to the
  // end of the final bar when it stops less than a beat before it (a release, not a rest).
  for (auto& v : voices) {
    if (v.notes.empty()) continue;
    Fraction last_start = v.notes.back().start;
    for (auto& q : v.notes)
      if (q.start == last_start && q.end < total && total - q.end < beat_w) q.end = total;
  }
  auto bar_end = [&](int b) { return b + 1 < nbars ? bar_starts[static_cast<size_t>(b + 1)] : total; };
  std::set<Fraction, bool (*)(const Fraction&, const Fraction&)> trip_starts(
      [](const Fraction& a, const Fraction& b) { return a < b; });
  for (int64_t k : triplet_beats) trip_starts.insert(Fraction(k) * beat_w - origin);
  auto on_beat = [&](const Fraction& pos) { return ((pos + origin) / beat_w).den == 1; };

  // Unit length.
  Fraction unit = cfg.unit_denominator > 0 ? Fraction(1, cfg.unit_denominator)
                                           : (meter.bar().value() < 0.75 ? Fraction(1, 16) : Fraction(1, 8));
  const Fraction finest(1, cfg.grid_denominator);

  // ---- 9. Write bars per voice.
  for (auto& v : voices) {
    // Chord stream → segments (start, end, pitches).
    struct Seg { Fraction s, e; std::vector<int> p; };
    std::vector<Seg> segs;
    {
      size_t i = 0;
      Fraction cur(0);
      while (i < v.notes.size()) {
        size_t j = i;
        Seg sg{v.notes[i].start, v.notes[i].end, {}};
        while (j < v.notes.size() && v.notes[j].start == v.notes[i].start) { sg.p.push_back(v.notes[j].pitch); ++j; }
        if (cur < sg.s) segs.push_back(Seg{cur, sg.s, {}});
        segs.push_back(sg);
        cur = sg.e;
        i = j;
      }
      if (cur < total) segs.push_back(Seg{cur, total, {}});
    }
    std::map<std::pair<char, int>, int> acc_oct;
    std::map<char, int> acc_any;
    // Letters whose accidental state differs between the tools for the rest of the bar: an
    // accidental written on a tie continuation is recorded by abc2midi but not by abcjs, so
    // every later note of that letter in the bar carries its accidental.
    std::set<char> ambiguous;
    size_t si = 0;
    for (int b = 0; b < nbars; ++b) {
      const Fraction bs = bar_starts[static_cast<size_t>(b)], be = bar_end(b);
      acc_oct.clear();
      acc_any.clear();
      ambiguous.clear();
      // Pieces within the bar, cut at triplet-beat boundaries.
      std::vector<Event> evs;
      while (si < segs.size() && segs[si].e <= bs) ++si;
      for (size_t k = si; k < segs.size() && segs[k].s < be; ++k) {
        const Seg& sg = segs[k];
        Fraction s = std::max(sg.s, bs), e = std::min(sg.e, be);
        std::vector<Fraction> cuts = {s};
        for (auto it = trip_starts.lower_bound(s); it != trip_starts.end() && *it < e; ++it) {
          if (*it > s) cuts.push_back(*it);
          if (*it + beat_w < e) cuts.push_back(*it + beat_w);
        }
        for (auto it = trip_starts.lower_bound(s - beat_w); it != trip_starts.end() && *it < s; ++it)
          if (*it + beat_w > s && *it + beat_w < e) cuts.push_back(*it + beat_w);
        std::sort(cuts.begin(), cuts.end());
        cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
        cuts.push_back(e);
        for (size_t c = 0; c + 1 < cuts.size(); ++c) {
          Event ev;
          ev.start = cuts[c];
          ev.len = cuts[c + 1] - cuts[c];
          ev.pitches = sg.p;
          ev.continuation = !sg.p.empty() && cuts[c] > sg.s;
          ev.tie_out = !sg.p.empty() && cuts[c + 1] < sg.e;
          evs.push_back(ev);
        }
      }
      // Token writing.
      std::string out;
      std::vector<std::pair<Fraction, size_t>> breaks;
      auto write_piece = [&](const Event& ev, const Fraction& written, bool cont, bool tie) {
        if (ev.pitches.empty()) return "z" + length_text(written, unit);
        std::string t;
        bool chord = ev.pitches.size() > 1;
        if (chord) t += "[";
        std::vector<Spelled> sps;
        for (int p : ev.pitches) sps.push_back(spell(p, key.tonic_q));
        for (size_t i = 0; i < sps.size(); ++i) {
          const Spelled& sp = sps[i];
          auto ok = std::make_pair(sp.letter, sp.octave);
          // abc2midi 4.84 looks up the accidental state of the lowest octave (C,,,,, to B,,,,,,
          // MIDI 0-11) under the previous letter (after `^C`, `D,,,,,` plays D sharp): notes there
          // always carry their accidental ('=' included), continuations too.
          const bool lowest_octave = sp.octave < 0;
          if (!cont) {
            int impl_pitch = acc_any.count(sp.letter) ? acc_any[sp.letter] : signature_alter(key.fifths, sp.letter);
            int impl_oct = acc_oct.count(ok) ? acc_oct[ok] : signature_alter(key.fifths, sp.letter);
            if (lowest_octave || ambiguous.count(sp.letter) || !(sp.alter == impl_pitch && sp.alter == impl_oct)) {
              t += accidental_text(sp.alter);
              acc_any[sp.letter] = sp.alter;
              acc_oct[ok] = sp.alter;
            }
          } else {
            // A tie continuation carries no accidental and keeps the tied pitch (spec §1.8), as
            // long as every tool reads the bare letter as that pitch. Within a bar abc2midi reads
            // it with the accidental state (an earlier note of the chord, `[^C=c]4- [Cc]4`, makes
            // its C natural: "Could not find note to be tied"), and a chord holding the same
            // letter and octave twice (`[_E=E]`) cannot be told apart without accidentals. Such
            // continuations are written with their accidentals.
            bool twin = false;
            for (size_t j = 0; j < sps.size(); ++j)
              twin = twin || (j != i && sps[j].letter == sp.letter && sps[j].octave == sp.octave);
            bool misread = ambiguous.count(sp.letter) || (acc_any.count(sp.letter) && acc_any[sp.letter] != sp.alter) ||
                           (acc_oct.count(ok) && acc_oct[ok] != sp.alter);
            if (twin || misread || lowest_octave) {
              t += accidental_text(sp.alter);
              ambiguous.insert(sp.letter);
            }
          }
          t += octave_letter(sp);
        }
        if (chord) t += "]";
        t += length_text(written, unit);
        if (tie) t += "-";
        return t;
      };
      size_t e = 0;
      while (e < evs.size()) {
        const Event& ev = evs[e];
        // Is ev the start of a tuplet group?
        auto tit = trip_starts.find(ev.start);
        bool in_trip = false;
        Fraction tb;
        if (tit != trip_starts.end()) { in_trip = true; tb = *tit; }
        if (in_trip) {
          size_t g_end = e;
          bool needs = false;
          while (g_end < evs.size() && evs[g_end].start < tb + beat_w) {
            Fraction rs = (evs[g_end].start - tb) / finest, rl = evs[g_end].len / finest;
            if (rs.den != 1 || rl.den != 1) needs = true;
            ++g_end;
          }
          if (needs) {
            std::vector<std::string> toks;
            std::vector<Fraction> wl;
            for (size_t k = e; k < g_end; ++k) {
              Fraction w = evs[k].len * Fraction(3, 2);
              bool cont = evs[k].continuation;
              while (w > Fraction(0)) {
                Fraction piece = largest_representable(w, finest);
                if (piece > w) piece = w;
                w = w - piece;
                bool tie = evs[k].pitches.empty() ? false : (w > Fraction(0) || evs[k].tie_out);
                toks.push_back(write_piece(evs[k], piece, cont, tie));
                wl.push_back(piece);
                cont = true;
              }
            }
            // Plain (3 only for three equal single notes/rests: abc2midi warns
            // "Different length notes in tuple" for a chord inside (3.
            bool has_chord = false;
            for (size_t k = e; k < g_end; ++k) has_chord = has_chord || evs[k].pitches.size() > 1;
            bool equal3 = toks.size() == 3 && wl[0] == wl[1] && wl[1] == wl[2] && !has_chord;
            if (!out.empty()) {
              breaks.emplace_back(ev.start, out.size());
              out += " ";
            }
            out += equal3 ? "(3" : "(3:2:" + std::to_string(toks.size());
            for (const auto& t : toks) out += t;
            e = g_end;
            continue;
          }
        }
        // Straight event: split into representable pieces, at beat boundaries when off-beat.
        Fraction s = ev.start, rem = ev.len;
        bool cont = ev.continuation;
        while (rem > Fraction(0)) {
          Fraction rel = (s + origin) / beat_w;
          Fraction chunk = rem;
          if (rel.den != 1) {
            Fraction nb = Fraction(floor_int(rel) + 1) * beat_w - origin;
            if (s + rem > nb) chunk = nb - s;
          }
          Fraction piece = largest_representable(chunk, finest);
          if (piece > chunk) piece = chunk;
          rem = rem - piece;
          bool tie = ev.pitches.empty() ? false : (rem > Fraction(0) || ev.tie_out);
          bool long_ev = piece > beat_w;
          if (!out.empty() && on_beat(s)) breaks.emplace_back(s, out.size());
          if (!out.empty() && out.back() != ' ' && (on_beat(s) || long_ev)) out += " ";
          out += write_piece(ev, piece, cont, tie);
          if (long_ev && rem > Fraction(0)) out += " ";
          s = s + piece;
          cont = true;
        }
        ++e;
      }
      out += b + 1 == nbars ? " |]" : " |";
      v.bars.push_back(out);
      v.bar_breaks.push_back(breaks);
    }
  }

  // ---- 10. Text.
  std::ostringstream os;
  std::string title = cfg.title;
  {
    std::string t;
    for (char c : title) {
      if (c == '%') t += "\\%";
      else t += c;
    }
    title = t;
  }
  os << "X:" << cfg.reference_number << "\n";
  os << "T:" << title << "\n";
  os << "M:" << meter.text << "\n";
  os << "L:" << unit.str() << "\n";
  os << "Q:" << beat_w.str() << "=" << static_cast<int>(bpm_written) << "\n";
  if (voices.size() > 1) {
    os << "%%score";
    for (size_t i = 0; i < voices.size(); ++i) {
      const std::string& id = voices[i].info.id;
      if (id.size() > 1 && id.back() == 'R' && i + 1 < voices.size() &&
          voices[i + 1].info.id == id.substr(0, id.size() - 1) + "L") {
        os << " {" << id << " | " << voices[i + 1].info.id << "}";
        ++i;
      } else {
        os << " " << id;
      }
    }
    os << "\n";
  }
  os << "K:" << key.text() << "\n";
  for (const auto& v : voices) {
    os << "V:" << v.info.id << " clef=" << v.info.clef;
    if (!v.info.name.empty()) os << " name=\"" << v.info.name << "\"";
    os << "\n";
    if (v.info.is_drum) os << "%%MIDI channel 10\n";
    else os << "%%MIDI program " << v.info.program << "\n";
  }
  for (int b0 = 0; b0 < nbars;) {
    // bars_per_line bars per system, halved while a voice line would be longer than
    // max_line_chars (abcm2ps fails with "Line too much shrunk" on crowded lines).
    int n = cfg.bars_per_line;
    while (n > 1 && cfg.max_line_chars > 0) {
      size_t longest = 0;
      for (const auto& v : voices) {
        size_t len = 3 + v.info.id.size() + 1;
        for (int b = b0; b < std::min(nbars, b0 + n); ++b) len += 1 + v.bars[static_cast<size_t>(b)].size();
        longest = std::max(longest, len);
      }
      if (longest <= static_cast<size_t>(cfg.max_line_chars)) break;
      n = std::max(1, n / 2);
    }
    int b1 = std::min(nbars, b0 + n);
    if (n == 1 && cfg.max_line_chars > 0) {
      // A single bar longer than a line (long meters, many short notes) is broken inside,
      // at the same beat in every voice, where a piece or tuplet group starts in all of them:
      // abcm2ps fails with "Line too much shrunk" when it cannot fit a line.
      const size_t b = static_cast<size_t>(b0);
      std::vector<std::pair<Fraction, std::vector<size_t>>> common;  // time, offset per voice
      for (const auto& br : voices[0].bar_breaks[b]) {
        std::vector<size_t> offs;
        for (const auto& v : voices) {
          auto it = std::find_if(v.bar_breaks[b].begin(), v.bar_breaks[b].end(),
                                 [&](const std::pair<Fraction, size_t>& x) { return x.first == br.first; });
          if (it == v.bar_breaks[b].end()) break;
          offs.push_back(it->second);
        }
        if (offs.size() == voices.size() && (common.empty() || common.back().first != br.first))
          common.emplace_back(br.first, offs);
      }
      std::vector<size_t> from(voices.size(), 0);
      std::vector<std::vector<size_t>> cuts;  // chosen break offsets per voice, in order
      auto too_long = [&](const std::vector<size_t>& a, const std::vector<size_t>* z) {
        for (size_t vi = 0; vi < voices.size(); ++vi) {
          size_t end = z ? (*z)[vi] : voices[vi].bars[b].size();
          if (3 + voices[vi].info.id.size() + 1 + (end - a[vi]) > static_cast<size_t>(cfg.max_line_chars)) return true;
        }
        return false;
      };
      for (size_t k = 0; k < common.size(); ++k) {
        const std::vector<size_t>* next = k + 1 < common.size() ? &common[k + 1].second : nullptr;
        if (common[k].second != from && too_long(from, next)) {
          cuts.push_back(common[k].second);
          from = common[k].second;
        }
      }
      if (!cuts.empty()) {
        os << "% bar " << (b0 + 1) << ", broken into " << cuts.size() + 1 << " lines\n";
        for (size_t part = 0; part <= cuts.size(); ++part) {
          for (size_t vi = 0; vi < voices.size(); ++vi) {
            const std::string& text = voices[vi].bars[b];
            size_t a = part == 0 ? 0 : cuts[part - 1][vi], z = part < cuts.size() ? cuts[part][vi] : text.size();
            std::string piece = text.substr(a, z - a);
            while (!piece.empty() && piece.front() == ' ') piece.erase(piece.begin());
            while (!piece.empty() && piece.back() == ' ') piece.pop_back();
            os << "[V:" << voices[vi].info.id << "] " << piece << "\n";
          }
        }
        b0 = b1;
        continue;
      }
    }
    os << "% bars " << (b0 + 1) << "-" << b1 << "\n";
    for (const auto& v : voices) {
      os << "[V:" << v.info.id << "]";
      for (int bb = b0; bb < b1; ++bb) os << " " << v.bars[static_cast<size_t>(bb)];
      os << "\n";
    }
    b0 = b1;
  }

  // ---- 11. Result.
  tune.text = os.str();
  tune.meter = meter.text;
  tune.meter_numerator = meter.num;
  tune.meter_denominator = meter.den;
  tune.bar_length = bar_len;
  tune.pickup = pickup;
  tune.beat = beat_w;
  tune.tempo_bpm = bpm_written;
  tune.key = key.text();
  tune.key_fifths = key.fifths;
  tune.key_minor = key.minor;
  tune.unit_length = unit;
  tune.bars = nbars;
  {
    double b_origin = origin.value() / beat_w.value();  // in beats
    tune.start_s = map.time_of(b_origin * f_units + phase_units);
  }
  for (size_t vi = 0; vi < voices.size(); ++vi) {
    tune.voices.push_back(voices[vi].info);
    for (const QNote& q : voices[vi].notes) {
      AbcQuantisedNote n;
      n.voice = static_cast<int>(vi);
      n.pitch = q.pitch;
      n.start = q.start;
      n.length = q.end - q.start;
      n.velocity = q.velocity;
      n.program = q.program;
      n.is_drum = q.drum;
      tune.notes.push_back(n);
    }
  }
  std::sort(tune.notes.begin(), tune.notes.end(), [](const AbcQuantisedNote& a, const AbcQuantisedNote& b) {
    if (a.voice != b.voice) return a.voice < b.voice;
    if (a.start != b.start) return a.start < b.start;
    return a.pitch < b.pitch;
  });
  (void)kComponent;
  return tune;
}

}  // namespace tunescribe
