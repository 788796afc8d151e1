// bench_score — speed and memory of the mir_eval re-implementation on large
// note sets (issue: "pairs of 100,000-note files score in seconds, with memory
// proportional to the number of hits").
//
// Usage: bench_score [n_notes=100000] [seed=1]
// Prints, per scenario, the wall time of evaluate_transcription (14 keys),
// evaluate_transcription_velocity (8 keys) and evaluate_multi_instrument,
// and the peak resident memory of the process.
#include <sys/resource.h>

#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "tunescribe/score.h"

using namespace tunescribe;

namespace {

double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

// A piano-like performance: `n` notes, about `notes_per_s` onsets per second,
// chords of 1–4 notes, a few programs, velocities 20–120.
ScoreNotes make_reference(size_t n, double notes_per_s, std::mt19937_64& rng) {
  ScoreNotes s;
  s.source = "ref";
  s.has_velocity = s.has_program = true;
  std::uniform_real_distribution<double> u(0, 1);
  double t = 0;
  while (s.notes.size() < n) {
    t += -std::log(1 - u(rng)) * 2.5 / notes_per_s;
    const int chord = 1 + static_cast<int>(u(rng) * 4);
    for (int k = 0; k < chord && s.notes.size() < n; ++k) {
      ScoreNote x;
      x.onset_s = std::round(t * 1000) / 1000;
      x.offset_s = x.onset_s + 0.05 + u(rng) * 1.5;
      x.pitch_hz = midi_to_hz(36 + static_cast<int>(u(rng) * 60));
      x.velocity = 20 + static_cast<int>(u(rng) * 100);
      x.program = static_cast<int>(u(rng) * 3) * 24;
      s.notes.push_back(x);
    }
  }
  return s;
}

// A plausible transcription: 90 % of the notes with jittered times and
// velocities, 5 % with a wrong pitch, plus 10 % spurious notes.
ScoreNotes make_estimate(const ScoreNotes& ref, std::mt19937_64& rng) {
  ScoreNotes e;
  e.source = "est";
  e.has_velocity = e.has_program = true;
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<double> jitter(0, 0.02);
  for (const auto& r : ref.notes) {
    if (u(rng) < 0.1) continue;
    ScoreNote x = r;
    x.onset_s = std::max(0.0, r.onset_s + jitter(rng));
    x.offset_s = std::max(x.onset_s + 0.01, r.offset_s + 5 * jitter(rng));
    if (u(rng) < 0.05) x.pitch_hz *= std::pow(2.0, (u(rng) < 0.5 ? -1 : 1) / 12.0);
    x.velocity = std::max(1.0, std::min(127.0, r.velocity + 10 * jitter(rng) * 50));
    e.notes.push_back(x);
    if (u(rng) < 0.1) {
      ScoreNote y = x;
      y.pitch_hz = midi_to_hz(36 + static_cast<int>(u(rng) * 60));
      e.notes.push_back(y);
    }
  }
  return e;
}

// CPU seconds (the benchmark machine may be shared; wall time is printed at the end).
template <class F>
double time_s(F&& f) {
  const std::clock_t t0 = std::clock();
  f();
  return static_cast<double>(std::clock() - t0) / CLOCKS_PER_SEC;
}

void scenario(const char* name, const ScoreNotes& ref, const ScoreNotes& est) {
  TranscriptionScores t;
  VelocityScores v;
  MultiInstrumentScores m;
  const double t_t = time_s([&] { t = evaluate_transcription(ref, est); });
  const double t_v = time_s([&] { v = evaluate_transcription_velocity(ref, est); });
  const double t_m = time_s([&] { m = evaluate_multi_instrument(ref, est); });
  std::printf("%-34s ref %7zu est %7zu | transcription %6.3f s (F %.4f, F_no_offset %.4f) | velocity %6.3f s "
              "(F %.4f) | multi-instrument %6.3f s (F %.4f) | peak RSS %.1f MiB\n",
              name, ref.notes.size(), est.notes.size(), t_t, t.metrics.get("F-measure"),
              t.metrics.get("F-measure_no_offset"), t_v, v.metrics.get("F-measure"), t_m,
              m.metrics.get("F-measure"), peak_rss_mib());
}

}  // namespace

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 100000;
  const uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1;
  std::mt19937_64 rng(seed);
  const auto wall0 = std::chrono::steady_clock::now();
  std::printf("baseline peak RSS (process + libraries) %.1f MiB; times are CPU seconds\n", peak_rss_mib());
  {
    const ScoreNotes ref = make_reference(n, 10.0, rng);
    const ScoreNotes est = make_estimate(ref, rng);
    scenario("piano-like, 10 notes/s", ref, est);
  }
  {
    // Dense: 200 notes/s, so each onset window holds ~20 candidates.
    const ScoreNotes ref = make_reference(n, 200.0, rng);
    const ScoreNotes est = make_estimate(ref, rng);
    scenario("dense, 200 notes/s", ref, est);
  }
  std::printf("(an n_ref x n_est float64 matrix would need %.1f GiB)\n",
              static_cast<double>(n) * static_cast<double>(n) * 8.0 / (1024.0 * 1024.0 * 1024.0));
  std::printf("total wall time %.2f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count());
  return 0;
}
