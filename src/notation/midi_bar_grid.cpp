// midi_bar_grid.cpp — tempo map and signatures that put the score's bars on a transcription's MIDI.
#include "tunescribe/midi_bar_grid.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace tunescribe {

namespace {

constexpr long long kMaxUspq = 0xFFFFFF;  // the largest MIDI tempo (µs per quarter)

long long clamp_uspq(double uspq) { return std::clamp<long long>(std::llround(uspq), 1, kMaxUspq); }

bool power_of_two(int64_t v) { return v >= 1 && (v & (v - 1)) == 0; }

}  // namespace

void set_bar_grid_metadata(const ScoreLayout& L, const Analysis& an, NoteSequence* seq) {
  set_analysis_metadata(an, seq);  // the fallback, and the key signature
  bool any_note = false;
  for (const auto& v : L.voices) any_note = any_note || !v.notes.empty();
  const Meter& m = L.meter;
  if (!any_note || seq->time_signatures.empty() || L.bars() < 1) return;

  const Fraction sixteenth(1, 16);
  const Fraction bar1_end = L.bar_end(0);
  // The first sixteenth of written bar 1 at or after 0 s (bar 1 may start before the audio when
  // a first note late in the bar is written as a full bar with rests).
  Fraction p0(0);
  while (written_time_s(L, an, p0) < 0.0 && p0 < bar1_end) p0 = p0 + sixteenth;
  if (p0 >= bar1_end) return;
  const double lead_s = std::max(0.0, written_time_s(L, an, p0));
  const double quarter_s = 60.0 / quarter_bpm(an);
  // Sixteenths of rest before p0 (none for under half a sixteenth: bar 1 then starts at 0 s,
  // that early, and its tempo takes up the difference).
  int64_t lead_16 = std::llround(lead_s / (quarter_s / 4.0));
  if (lead_16 > 0) lead_16 = std::max<int64_t>(lead_16, static_cast<int64_t>(std::ceil(lead_s * 4e6 / double(kMaxUspq))));
  const Fraction first_bar = Fraction(lead_16, 16) + (bar1_end - p0);
  const bool partial = first_bar != m.bar();
  int64_t ts_den = std::max<int64_t>(first_bar.den, m.den);
  if (partial && (!power_of_two(first_bar.den) || !power_of_two(ts_den) ||
                  first_bar.num * (ts_den / first_bar.den) > 255))
    return;

  std::vector<TempoChange> tempos;
  double t = 0.0;  // the MIDI time of the position reached so far (exact in ticks)
  if (lead_16 > 0) {
    const double quarters = double(lead_16) / 4.0;
    const long long u = clamp_uspq(lead_s * 1e6 / quarters);
    tempos.push_back({0.0, 6e7 / double(u)});
    t = quarters * double(u) / 1e6;
  }
  // Bar lines from p0 on; the written tempo until it drifts more than the tolerance.
  std::vector<Fraction> lines{p0, bar1_end};
  for (int b = 1; b < L.bars(); ++b) lines.push_back(L.bar_end(b));
  const double tol_s = quarter_s / 16.0;
  long long cur = clamp_uspq(60e6 / quarter_bpm(an));
  long long emitted = -1;
  double bar2_t = 0.0;
  for (size_t j = 0; j + 1 < lines.size(); ++j) {
    const double quarters = (lines[j + 1] - lines[j]).value() * 4.0;
    if (quarters <= 0) continue;
    const double target = written_time_s(L, an, lines[j + 1]);
    if (std::abs(t + quarters * double(cur) / 1e6 - target) > tol_s) cur = clamp_uspq((target - t) * 1e6 / quarters);
    if (cur != emitted) {
      tempos.push_back({t, 6e7 / double(cur)});
      emitted = cur;
    }
    t += quarters * double(cur) / 1e6;
    if (j == 0) bar2_t = t;
  }
  seq->tempos = tempos;
  seq->time_signatures.clear();
  if (partial) {
    seq->time_signatures.push_back({0.0, static_cast<int>(first_bar.num * (ts_den / first_bar.den)), static_cast<int>(ts_den)});
    if (L.bars() > 1) seq->time_signatures.push_back({bar2_t, m.num, m.den});
  } else {
    seq->time_signatures.push_back({0.0, m.num, m.den});
  }
}

}  // namespace tunescribe
