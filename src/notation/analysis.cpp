// analysis.cpp — beats, tempo, meter, per-beat grids and key of performed notes (see analysis.h).
#include "tunescribe/analysis.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <tuple>

#include "tunescribe/errors.h"

namespace tunescribe {

KeyProfile key_profile_from_string(const std::string& s) {
  if (s == "albrecht_shanahan") return KeyProfile::kAlbrechtShanahan;
  if (s == "krumhansl_kessler") return KeyProfile::kKrumhanslKessler;
  if (s == "temperley") return KeyProfile::kTemperley;
  if (s == "aarden_essen") return KeyProfile::kAardenEssen;
  throw ConfigError("abc: key_profile '" + s +
                    "' is not one of albrecht_shanahan, krumhansl_kessler, temperley, aarden_essen");
}

namespace {

// ---------------------------------------------------------------- key profiles
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


// ---------------------------------------------------------------- meter hypotheses
struct MeterHyp {
  Fraction f;      // written beat in tracked units
  int sub = 2;
  int bpb = 4;
  int phase = 0;   // steps
  double total = -1e300;
};

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
    Fraction bs = h.f * Fraction(kMeterSteps);
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
      long s = std::lround(bsal.first * kMeterSteps);
      int r = static_cast<int>(((s % bar) + bar) % bar);
      hist[static_cast<size_t>(r)] += bsal.second;
      total_sal += bsal.second;
    }
    if (total_sal <= 0) continue;
    double bpm = 60.0 / (sec_per_unit * h.f.value());
    double pr = std::log2(bpm / 100.0) / 0.7;
    double prior = 0.3 * (-0.5 * pr * pr);
    // Downbeats lie on tracked units (or on the hypothesised beats that coincide with them).
    int step = std::gcd(beat, kMeterSteps);
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

}  // namespace

// ---------------------------------------------------------------- input
std::vector<Note> prepare_notes(const std::vector<Note>& input, double min_note_s) {
  std::vector<Note> notes;
  for (const Note& n : input) {
    if (!(n.offset_s > n.onset_s) || n.pitch < 0 || n.pitch > 127) continue;
    if (!n.is_drum && n.duration_s() < min_note_s) continue;
    notes.push_back(n);
  }
  // (No NaN times are left, so tuple order is the field-by-field order.)
  std::sort(notes.begin(), notes.end(), [](const Note& a, const Note& b) {
    return std::tie(a.is_drum, a.program, a.pitch, a.onset_s, a.offset_s) <
           std::tie(b.is_drum, b.program, b.pitch, b.onset_s, b.offset_s);
  });
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
  std::sort(merged.begin(), merged.end(), [](const Note& a, const Note& b) {
    return std::tie(a.onset_s, a.is_drum, a.program, a.pitch) < std::tie(b.onset_s, b.is_drum, b.program, b.pitch);
  });
  return merged;
}

std::vector<OnsetCluster> onset_clusters(const std::vector<Note>& notes, double chord_cluster_s) {
  std::vector<OnsetCluster> clusters;
  size_t i = 0;
  while (i < notes.size()) {
    size_t j = i;
    double sal = 0;
    std::vector<double> times;
    while (j < notes.size() && notes[j].onset_s - notes[i].onset_s <= chord_cluster_s) {
      const Note& n = notes[j];
      sal += n.is_drum ? 0.3 : 0.3 + std::min(n.duration_s(), 1.0);
      times.push_back(n.onset_s);
      ++j;
    }
    OnsetCluster c;
    c.time_s = times[times.size() / 2];
    c.salience = sal;
    clusters.push_back(c);
    i = j;
  }
  return clusters;
}

// ---------------------------------------------------------------- beats
double BeatMap::beta(double t) const {
  const size_t n = times.size();
  if (t <= times[0]) return (t - times[0]) / (times[1] - times[0]);
  if (t >= times[n - 1]) return static_cast<double>(n - 1) + (t - times[n - 1]) / (times[n - 1] - times[n - 2]);
  size_t i = static_cast<size_t>(std::upper_bound(times.begin(), times.end(), t) - times.begin()) - 1;
  return static_cast<double>(i) + (t - times[i]) / (times[i + 1] - times[i]);
}

double BeatMap::time_of(double b) const {
  const size_t n = times.size();
  if (b <= 0) return times[0] + b * (times[1] - times[0]);
  if (b >= static_cast<double>(n - 1))
    return times[n - 1] + (b - static_cast<double>(n - 1)) * (times[n - 1] - times[n - 2]);
  size_t i = static_cast<size_t>(std::floor(b));
  return times[i] + (b - static_cast<double>(i)) * (times[i + 1] - times[i]);
}

BeatMap fixed_beat_map(double period_s, double t0, double t_end) {
  BeatMap m;
  int n = static_cast<int>(std::ceil((t_end - t0) / period_s)) + 3;
  for (int i = 0; i < n; ++i) m.times.push_back(t0 + i * period_s);
  return m;
}

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

// Global period by autocorrelation + Ellis (2007) DP beat tracking.
BeatMap track_beats(const std::vector<OnsetCluster>& clusters, double t_end) {
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
  if (beats.size() < 3) return fixed_beat_map(tau / fps, clusters.front().time_s, t_end);
  m.times = beats;
  return m;
}


BeatEstimate estimate_beats(const std::vector<OnsetCluster>& clusters, double t_end, double tempo_bpm,
                            const std::vector<TempoChange>& midi_tempos) {
  BeatEstimate est;
  BeatMap& map = est.map;
  if (tempo_bpm > 0) {
    est.unit = BeatUnit::kWrittenBeat;
    // Phase: start at the first onset, then shift the grid (by at most 0.15 beat)
    // to fit all onsets best to sixteenths or triplet eighths: the first onset
    // carries jitter too.
    const double period = 60.0 / tempo_bpm;
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
    map = fixed_beat_map(period, t0, t_end);
  } else if (!midi_tempos.empty()) {
    est.unit = BeatUnit::kQuarter;
    map = midi_tempo_map(midi_tempos, t_end);
  } else if (clusters.size() >= 4) {
    est.unit = BeatUnit::kTracked;
    map = track_beats(clusters, t_end);
  } else {
    est.unit = BeatUnit::kQuarter;
    double t0 = clusters.empty() ? 0.0 : clusters.front().time_s;
    map = fixed_beat_map(0.5, t0, t_end);
  }
  double b0 = map.beta(clusters.empty() ? 0 : clusters.front().time_s);
  double b1 = map.beta(t_end);
  if (!clusters.empty() && b1 - b0 > 0.5) est.sec_per_unit = (t_end - clusters.front().time_s) / (b1 - b0);
  else est.sec_per_unit = map.times[1] - map.times[0];
  return est;
}

// ---------------------------------------------------------------- meter
MeterEstimate estimate_meter(const std::vector<OnsetCluster>& clusters, const BeatEstimate& beats, const Meter* given) {
  std::vector<MeterHyp> cands;
  std::vector<Meter> meter_options;
  if (given) {
    meter_options.push_back(*given);
  } else {
    for (const char* s : {"2/4", "3/4", "4/4", "6/8", "9/8", "12/8"}) {
      Meter m;
      parse_meter(s, &m);
      meter_options.push_back(m);
    }
  }
  const std::vector<Fraction> all_f = {Fraction(1, 2), Fraction(1), Fraction(3, 2), Fraction(2), Fraction(3)};
  for (const Meter& m : meter_options) {
    std::vector<Fraction> fs;
    if (beats.unit == BeatUnit::kWrittenBeat) fs = {Fraction(1)};
    else if (beats.unit == BeatUnit::kQuarter) fs = {m.beat / Fraction(1, 4)};
    else fs = all_f;
    for (const Fraction& f : fs) {
      MeterHyp h;
      h.f = f;
      h.sub = m.sub;
      h.bpb = m.beats_per_bar;
      cands.push_back(h);
    }
  }
  std::vector<std::pair<double, double>> beta_sal;
  for (const auto& c : clusters) beta_sal.emplace_back(beats.map.beta(c.time_s), c.salience);
  MeterHyp hyp;
  if (beta_sal.empty()) {
    hyp = cands.front();
    hyp.phase = 0;
  } else {
    hyp = choose_meter(beta_sal, beats.sec_per_unit, cands, beats.unit == BeatUnit::kQuarter && given != nullptr);
    if (hyp.total < -1e299) { hyp = cands.front(); hyp.phase = 0; }
  }
  MeterEstimate est;
  est.given = given != nullptr;
  if (given) {
    est.meter = *given;
  } else if (hyp.sub == 2) {
    parse_meter(hyp.bpb == 2 ? "2/4" : hyp.bpb == 3 ? "3/4" : "4/4", &est.meter);
  } else {
    parse_meter(hyp.bpb == 2 ? "6/8" : hyp.bpb == 3 ? "9/8" : "12/8", &est.meter);
  }
  est.beat_units = hyp.f;
  est.phase_steps = hyp.phase;
  est.score = hyp.total;
  return est;
}

double written_tempo_bpm(const BeatEstimate& beats, const MeterEstimate& meter, double tempo_bpm,
                         const std::vector<TempoChange>& midi_tempos) {
  const double f_units = meter.units_per_beat();
  double bpm = 0;
  if (tempo_bpm > 0) {
    bpm = tempo_bpm;
  } else if (beats.unit == BeatUnit::kQuarter && !midi_tempos.empty()) {
    auto tc = midi_tempos;
    std::sort(tc.begin(), tc.end(), [](const TempoChange& a, const TempoChange& b) { return a.time_s < b.time_s; });
    bpm = tc[0].bpm / f_units;
  } else {
    bpm = 60.0 / (beats.sec_per_unit * f_units);
  }
  return std::max(20.0, std::min(400.0, std::round(bpm)));
}

// ---------------------------------------------------------------- per-beat grid
int64_t BeatGrids::beat_index(double b) const { return static_cast<int64_t>(std::floor(b + 0.5 / finest)); }

GridOption BeatGrids::at(int64_t k) const {
  auto it = per_beat.find(k);
  return it == per_beat.end() ? options.front() : it->second;
}

std::set<int64_t> BeatGrids::triplet_beats() const {
  std::set<int64_t> out;
  for (const auto& kv : per_beat)
    if (kv.second.triplet) out.insert(kv.first);
  return out;
}

NoteBeats note_beats(const std::vector<Note>& notes, const BeatMap& map, const MeterEstimate& meter) {
  NoteBeats at;
  at.onset.resize(notes.size());
  at.offset.resize(notes.size());
  for (size_t i = 0; i < notes.size(); ++i) {
    at.onset[i] = meter.beats_of(map, notes[i].onset_s);
    at.offset[i] = meter.beats_of(map, notes[i].offset_s);
  }
  return at;
}

namespace {

std::vector<GridOption> grid_options(const Meter& meter, int grid_denominator, bool triplets) {
  std::vector<GridOption> opts;
  const Fraction finest(1, grid_denominator);
  const Fraction beat_w = meter.beat;
  if (meter.sub == 2) {
    double lam[] = {0, 0.5, 1.5, 3.0, 4.5};
    int lvl = 0;
    for (int G = 1; G <= 16; G *= 2, ++lvl)
      if (beat_w / Fraction(G) >= finest) opts.push_back({G, lam[lvl], false});
    if (triplets) {
      if (beat_w / Fraction(3) * Fraction(3, 2) >= finest) opts.push_back({3, 2.0, true});
      if (beat_w / Fraction(6) * Fraction(3, 2) >= finest) opts.push_back({6, 4.0, true});
    }
  } else {
    opts.push_back({1, 0, false});
    double lam[] = {0.5, 1.5, 3.0, 4.5};
    int lvl = 0;
    for (int G = 3; G <= 24; G *= 2, ++lvl)
      if (beat_w / Fraction(G) >= finest) opts.push_back({G, lam[lvl], false});
  }
  return opts;
}

}  // namespace

BeatGrids choose_beat_grids(const std::vector<Note>& notes, const NoteBeats& at, const Meter& meter,
                            int grid_denominator, bool triplets) {
  const double sigma = 0.05;
  BeatGrids grids;
  grids.options = grid_options(meter, grid_denominator, triplets);
  grids.finest = 1;
  for (const auto& g : grids.options) grids.finest = std::max(grids.finest, g.G);
  std::map<int64_t, std::vector<std::pair<double, double>>> beat_points;  // beat -> (frac, weight)
  for (size_t i = 0; i < notes.size(); ++i) {
    int64_t k = grids.beat_index(at.onset[i]);
    beat_points[k].emplace_back(at.onset[i] - static_cast<double>(k), 1.0);
    if (!notes[i].is_drum) {
      int64_t k2 = grids.beat_index(at.offset[i]);
      beat_points[k2].emplace_back(at.offset[i] - static_cast<double>(k2), 0.1);
    }
  }
  for (const auto& kv : beat_points) {
    double best = 1e300;
    GridOption bg = grids.options.front();
    bool has_onset = false;
    for (const auto& pw : kv.second) has_onset = has_onset || pw.second >= 1.0;
    for (const auto& g : grids.options) {
      if (g.triplet && !has_onset) continue;  // offsets alone never make a triplet beat
      double c = g.lambda;
      for (const auto& pw : kv.second) {
        double d = pw.first - std::round(pw.first * g.G) / g.G;
        c += pw.second * (d / sigma) * (d / sigma);
      }
      if (c < best - 1e-12) { best = c; bg = g; }
    }
    grids.per_beat[kv.first] = bg;
  }
  return grids;
}

bool prefer_compound_meter(const std::vector<Note>& notes, const NoteBeats& at, int grid_denominator, bool triplets,
                           MeterEstimate* meter, BeatGrids* grids) {
  if (meter->given || meter->meter.sub != 2 || meter->meter.den != 4) return false;
  int trip = 0, bin = 0;
  for (const auto& kv : grids->per_beat) {
    if (kv.second.G == 1) continue;
    (kv.second.triplet ? trip : bin) += 1;
  }
  if (!(trip > bin && trip >= 2)) return false;
  Meter m;
  // 4/4 won through the 4/4-over-2/4 convention; compound duple is written 6/8.
  parse_meter(meter->meter.num == 3 ? "9/8" : "6/8", &m);
  meter->meter = m;
  *grids = choose_beat_grids(notes, at, m, grid_denominator, triplets);
  return true;
}

// ---------------------------------------------------------------- key
KeyEstimate estimate_key(const std::vector<Note>& notes, KeyProfile profile) {
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
  const int pi = static_cast<int>(profile);
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
  KeyEstimate est;
  est.correlation = best;
  // Tonic spelling: major tonic q in [-5, 6] (F# over Gb), minor in [-3, 8] (Eb minor over D#).
  int lo = best_minor ? -3 : -5;
  for (int q = lo; q < lo + 12; ++q)
    if (lof_pc(q) == best_pc) {
      est.key.tonic_q = q;
      est.key.minor = best_minor;
      est.key.fifths = best_minor ? q - 3 : q;
      est.key.mode = best_minor ? "m" : "";
      break;
    }
  return est;
}

// ---------------------------------------------------------------- everything at once
namespace {

// The meter from the options or the first MIDI time signature (when it is one the writer
// accepts); false when the meter is to be estimated.
bool given_meter(const NoteSequence& meta, const AnalysisOptions& o, Meter* out) {
  if (!o.meter.empty()) return parse_meter(o.meter, out);
  if (!o.use_midi_metadata || meta.time_signatures.empty()) return false;
  auto ts = meta.time_signatures;
  std::sort(ts.begin(), ts.end(), [](const TimeSignature& a, const TimeSignature& b) { return a.time_s < b.time_s; });
  return parse_meter(std::to_string(ts[0].numerator) + "/" + std::to_string(ts[0].denominator), out);
}

KeyEstimate choose_key(const std::vector<Note>& notes, const NoteSequence& meta, const AnalysisOptions& o) {
  KeyEstimate est;
  if (!o.key.empty()) {
    parse_key(o.key, &est.key);
    est.given = true;
  } else if (o.use_midi_metadata && !meta.key_signatures.empty()) {
    auto ks = meta.key_signatures;
    std::sort(ks.begin(), ks.end(), [](const KeySignature& a, const KeySignature& b) { return a.time_s < b.time_s; });
    est.key = key_from_signature(std::max(-7, std::min(7, ks[0].fifths)), ks[0].minor);
    est.given = true;
  } else {
    est = estimate_key(notes, o.key_profile);
  }
  return est;
}

}  // namespace

Analysis analyse(const std::vector<Note>& notes, const NoteSequence& meta, const AnalysisOptions& o) {
  Analysis a;
  Meter given;
  const bool meter_given = given_meter(meta, o, &given);
  for (const Note& n : notes) a.end_s = std::max(a.end_s, n.offset_s);
  a.clusters = onset_clusters(notes, o.chord_cluster_s);
  static const std::vector<TempoChange> kNone;
  const std::vector<TempoChange>& tempos = o.use_midi_metadata ? meta.tempos : kNone;
  a.beats = estimate_beats(a.clusters, a.end_s, o.tempo_bpm, tempos);
  a.meter = estimate_meter(a.clusters, a.beats, meter_given ? &given : nullptr);
  a.tempo_bpm = written_tempo_bpm(a.beats, a.meter, o.tempo_bpm, tempos);
  a.at = note_beats(notes, a.beats.map, a.meter);
  a.grids = choose_beat_grids(notes, a.at, a.meter.meter, o.grid_denominator, o.triplets);
  prefer_compound_meter(notes, a.at, o.grid_denominator, o.triplets, &a.meter, &a.grids);
  a.key = choose_key(notes, meta, o);
  return a;
}

double quarter_bpm(const Analysis& an) { return an.tempo_bpm * an.meter.meter.beat.value() * 4.0; }

void set_analysis_metadata(const Analysis& an, NoteSequence* seq) {
  const Meter& m = an.meter.meter;
  seq->tempos = {TempoChange{0.0, quarter_bpm(an)}};
  seq->time_signatures.clear();
  if (m.num >= 1 && m.den >= 1 && (m.den & (m.den - 1)) == 0) seq->time_signatures.push_back({0.0, m.num, m.den});
  const Key& k = an.key.key;
  seq->key_signatures = {KeySignature{0.0, k.fifths, k.minor}};
}

}  // namespace tunescribe
