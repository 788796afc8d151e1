// reward.cpp — the ABC reward of scoring.md §2: what both modes use (GM names, metre loss,
// Levenshtein and difflib distances, the Hungarian assignment), the mode dispatch and the reward
// of a NoteSequence. The modes: reward_corrected.cpp and reward_flynn2024.cpp.
#include "tunescribe/reward.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>

#include "reward_text.h"
#include "tunescribe/errors.h"

namespace tunescribe {

namespace reward_detail {

using namespace reward_text;

// pretty_midi.INSTRUMENT_MAP (scoring.md Appendix A), spelling included.
const std::vector<std::string>& pretty_midi_gm_names() {
  static const std::vector<std::string> names = {
      "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
      "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet", "Celesta", "Glockenspiel",
      "Music Box", "Vibraphone", "Marimba", "Xylophone", "Tubular Bells", "Dulcimer", "Drawbar Organ",
      "Percussive Organ", "Rock Organ", "Church Organ", "Reed Organ", "Accordion", "Harmonica",
      "Tango Accordion", "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)",
      "Electric Guitar (clean)", "Electric Guitar (muted)", "Overdriven Guitar", "Distortion Guitar",
      "Guitar Harmonics", "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass",
      "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2", "Violin", "Viola", "Cello", "Contrabass",
      "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani", "String Ensemble 1",
      "String Ensemble 2", "Synth Strings 1", "Synth Strings 2", "Choir Aahs", "Voice Oohs", "Synth Choir",
      "Orchestra Hit", "Trumpet", "Trombone", "Tuba", "Muted Trumpet", "French Horn", "Brass Section",
      "Synth Brass 1", "Synth Brass 2", "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax", "Oboe",
      "English Horn", "Bassoon", "Clarinet", "Piccolo", "Flute", "Recorder", "Pan Flute", "Blown bottle",
      "Shakuhachi", "Whistle", "Ocarina", "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)",
      "Lead 4 chiff", "Lead 5 (charang)", "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
      "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)", "Pad 5 (bowed)",
      "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)", "FX 1 (rain)", "FX 2 (soundtrack)",
      "FX 3 (crystal)", "FX 4 (atmosphere)", "FX 5 (brightness)", "FX 6 (goblins)", "FX 7 (echoes)",
      "FX 8 (sci-fi)", "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba", "Bagpipe", "Fiddle", "Shanai",
      "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock", "Taiko Drum", "Melodic Tom", "Synth Drum",
      "Reverse Cymbal", "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet", "Telephone Ring",
      "Helicopter", "Applause", "Gunshot"};
  return names;
}

double metre_component(double x, double t) {
  if (x <= t) return 0.5 * x / t;
  return 0.5 + 0.5 * (1.0 - std::exp(-(x - t) / t));
}

double metre_loss(long long num_a, long long den_a, long long num_b, long long den_b) {
  const double n = static_cast<double>(std::llabs(num_a - num_b));
  const double d = static_cast<double>(std::llabs(den_a - den_b));
  const double r = std::fabs(static_cast<double>(num_a) / static_cast<double>(den_a) -
                             static_cast<double>(num_b) / static_cast<double>(den_b));
  return std::min(1.0, 0.3 * metre_component(n, 1) + 0.3 * metre_component(d, 2) + 0.4 * metre_component(r, 0.25));
}

// Tempo loss: `slope` per BPM up to 10 BPM, then saturating towards 1.
static double tempo_loss(double delta, double slope) {
  const double l = delta <= 10 ? slope * delta : 0.5 + 0.5 * (1.0 - std::exp(-(delta - 10) / 50.0));
  return std::min(1.0, l);
}

double flynn_tempo_loss(double delta) { return tempo_loss(delta, 0.025); }

double corrected_tempo_loss(double delta) { return tempo_loss(delta, 0.05); }

double normalized_levenshtein(const std::vector<int>& a, const std::vector<int>& b) {
  if (a.empty() && b.empty()) return 0.0;
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    prev.swap(cur);
  }
  return static_cast<double>(prev[b.size()]) / static_cast<double>(std::max(a.size(), b.size()));
}

double difflib_ratio(const std::string& a, const std::string& b) {
  const size_t la = a.size(), lb = b.size();
  if (la + lb == 0) return 1.0;
  std::unordered_map<char, std::vector<size_t>> b2j;
  for (size_t j = 0; j < lb; ++j) b2j[b[j]].push_back(j);
  if (lb >= 200) {  // autojunk: drop "popular" elements
    const size_t ntest = lb / 100 + 1;
    for (auto it = b2j.begin(); it != b2j.end();)
      it = it->second.size() > ntest ? b2j.erase(it) : std::next(it);
  }
  auto longest = [&](size_t alo, size_t ahi, size_t blo, size_t bhi, size_t& bi, size_t& bj) {
    size_t besti = alo, bestj = blo, bestsize = 0;
    std::unordered_map<size_t, size_t> j2len, newj2len;
    for (size_t i = alo; i < ahi; ++i) {
      newj2len.clear();
      auto f = b2j.find(a[i]);
      if (f != b2j.end()) {
        for (size_t j : f->second) {
          if (j < blo) continue;
          if (j >= bhi) break;
          size_t k = 1;
          if (j > 0) {
            auto g = j2len.find(j - 1);
            if (g != j2len.end()) k = g->second + 1;
          }
          newj2len[j] = k;
          if (k > bestsize) besti = i - k + 1, bestj = j - k + 1, bestsize = k;
        }
      }
      j2len.swap(newj2len);
    }
    while (besti > alo && bestj > blo && a[besti - 1] == b[bestj - 1]) --besti, --bestj, ++bestsize;
    while (besti + bestsize < ahi && bestj + bestsize < bhi && a[besti + bestsize] == b[bestj + bestsize]) ++bestsize;
    bi = besti;
    bj = bestj;
    return bestsize;
  };
  struct Range {
    size_t alo, ahi, blo, bhi;
  };
  std::vector<Range> queue = {{0, la, 0, lb}};
  size_t matches = 0;
  while (!queue.empty()) {
    const Range r = queue.back();
    queue.pop_back();
    size_t i = 0, j = 0;
    const size_t k = longest(r.alo, r.ahi, r.blo, r.bhi, i, j);
    if (k) {
      matches += k;
      if (r.alo < i && r.blo < j) queue.push_back({r.alo, i, r.blo, j});
      if (i + k < r.ahi && j + k < r.bhi) queue.push_back({i + k, r.ahi, j + k, r.bhi});
    }
  }
  return 2.0 * static_cast<double>(matches) / static_cast<double>(la + lb);
}

double flynn_instrument_pair_loss(int a, int b) {
  if (a == b) return 0.0;
  if (a < 0 || b < 0) return 1.0;
  if (a / 8 == b / 8) return 0.5;
  return 1.0 - difflib_ratio(program_name_lower(a), program_name_lower(b));
}

std::vector<int> hungarian(const std::vector<std::vector<double>>& cost) {
  const int n = static_cast<int>(cost.size());
  if (n == 0) return {};
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(n + 1, 0), v(n + 1, 0);
  std::vector<int> p(n + 1, 0), way(n + 1, 0);
  for (int i = 1; i <= n; ++i) {
    p[0] = i;
    int j0 = 0;
    std::vector<double> minv(n + 1, inf);
    std::vector<char> used(n + 1, 0);
    do {
      used[j0] = 1;
      const int i0 = p[j0];
      double delta = inf;
      int j1 = 0;
      for (int j = 1; j <= n; ++j)
        if (!used[j]) {
          const double cur = cost[i0 - 1][j - 1] - u[i0] - v[j];
          if (cur < minv[j]) minv[j] = cur, way[j] = j0;
          if (minv[j] < delta) delta = minv[j], j1 = j;
        }
      for (int j = 0; j <= n; ++j)
        if (used[j]) u[p[j]] += delta, v[j] -= delta;
        else minv[j] -= delta;
      j0 = j1;
    } while (p[j0] != 0);
    do {
      const int j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0);
  }
  std::vector<int> row_to_col(n, -1);
  for (int j = 1; j <= n; ++j)
    if (p[j] > 0) row_to_col[p[j] - 1] = j - 1;
  return row_to_col;
}

}  // namespace reward_detail

RewardMode reward_mode_from_string(const std::string& s) {
  const std::string l = reward_text::lower(s);
  if (l == "corrected" || l == "flynn2024-fixed" || l == "fixed") return RewardMode::Corrected;
  if (l == "flynn2024" || l == "flynn") return RewardMode::Flynn2024;
  throw ConfigError("reward: reward mode '" + s + "' is unknown (corrected | flynn2024)");
}

std::string reward_mode_name(RewardMode m) { return m == RewardMode::Corrected ? "corrected" : "flynn2024"; }


RewardInput parse_reward_input(const std::string& text, RewardMode mode, const std::string& what) {
  RewardInput in = mode == RewardMode::Flynn2024 ? reward_text::parse_flynn2024(text) : reward_text::parse_corrected(text, what);
  in.source = what;
  return in;
}

RewardInput reward_input_from_sequence(const NoteSequence& seq) {
  RewardInput in;
  in.source = seq.source;
  std::map<int, size_t> track_of_program;
  std::vector<std::vector<const Note*>> tracks;
  std::vector<const Note*> sorted;
  for (const auto& n : seq.notes)
    if (!n.is_drum) sorted.push_back(&n);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Note* a, const Note* b) {
    return a->onset_s != b->onset_s ? a->onset_s < b->onset_s : a->pitch < b->pitch;
  });
  for (const Note* n : sorted) {
    auto it = track_of_program.find(n->program);
    if (it == track_of_program.end()) {
      it = track_of_program.emplace(n->program, tracks.size()).first;
      tracks.emplace_back();
      RewardVoice v;
      v.id = std::to_string(tracks.size());
      v.program = n->program;
      v.name = reward_detail::pretty_midi_gm_names()[static_cast<size_t>(std::clamp(n->program, 0, 127))];
      in.voices.push_back(v);
    }
    in.voices[it->second].pitches.push_back(n->pitch);
  }
  if (!seq.time_signatures.empty()) {
    in.meter_present = in.has_meter = true;
    in.meter_num = seq.time_signatures.front().numerator;
    in.meter_den = seq.time_signatures.front().denominator;
    if (in.meter_num <= 0 || in.meter_den <= 0) in.has_meter = false;
  }
  if (!seq.tempos.empty()) {
    in.tempo_present = in.has_tempo = true;
    in.tempo_bpm = seq.tempos.front().bpm;
  }
  return in;
}

RewardResult compute_reward(const RewardInput& ref, const RewardInput& est, RewardMode mode) {
  if (mode == RewardMode::Flynn2024) return reward_text::flynn_compute(ref, est, ref.source + " vs " + est.source);
  return reward_text::corrected_compute(ref, est);
}

RewardResult abc_reward(const std::string& ref_abc, const std::string& est_abc, RewardMode mode) {
  return compute_reward(parse_reward_input(ref_abc, mode, "ref"), parse_reward_input(est_abc, mode, "est"), mode);
}

}  // namespace tunescribe

