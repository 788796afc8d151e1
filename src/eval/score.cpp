// score.cpp — mir_eval.transcription / transcription_velocity, re-implemented
// from ../shared/specs/scoring.md §1, plus MT3's multi-instrument F1.
#include "tunescribe/score.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/log.h"

namespace tunescribe {

namespace {

constexpr size_t kNone = static_cast<size_t>(-1);

std::string fmt_double(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

void check_range(const char* field, double v, double lo, double hi, bool lo_open = false) {
  if (!std::isfinite(v) || v < lo || (lo_open && v <= lo) || v > hi) {
    throw ConfigError(std::string("score: ") + field + " = " + fmt_double(v) + " is out of range " +
                      (lo_open ? "(" : "[") + fmt_double(lo) + ", " + fmt_double(hi) + "]");
  }
}

// numpy's pairwise summation (np.add.reduce on a contiguous float64 array),
// so np.mean is reproduced to the last bit in the common cases.
double pairwise_sum(const double* a, size_t n) {
  if (n < 8) {
    double res = 0.0;
    for (size_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int k = 0; k < 8; ++k) r[k] = a[k];
    size_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int k = 0; k < 8; ++k) r[k] += a[i + k];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

double numpy_mean(const std::vector<double>& v) {
  if (v.empty()) return 0.0;
  return (0.0 + pairwise_sum(v.data(), v.size())) / static_cast<double>(v.size());
}

// Compressed hit lists: ref r hits est[start[r] .. start[r+1]) (ascending).
struct HitGraph {
  size_t n_ref = 0, n_est = 0;
  std::vector<size_t> start;
  std::vector<size_t> est;
};

inline bool cmp_le(double a, double b, bool strict) { return strict ? a < b : a <= b; }

HitGraph build_hits(const std::vector<ScoreNote>& ref, const std::vector<ScoreNote>& est,
                    const TranscriptionOptions& opt, MatchKind kind) {
  HitGraph g;
  g.n_ref = ref.size();
  g.n_est = est.size();
  g.start.assign(ref.size() + 1, 0);
  const bool by_offset = kind == MatchKind::Offset;
  const bool check_onset = kind != MatchKind::Offset;
  const bool check_pitch = kind == MatchKind::Note || kind == MatchKind::NoteNoOffset;
  const bool check_offset = kind == MatchKind::Note || kind == MatchKind::Offset;
  const bool strict = opt.strict;

  // Sort est by the key time (stable on index).
  std::vector<size_t> order(est.size());
  std::iota(order.begin(), order.end(), size_t(0));
  auto key = [&](size_t j) { return by_offset ? est[j].offset_s : est[j].onset_s; };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key(a) < key(b); });
  std::vector<double> keys(est.size());
  for (size_t k = 0; k < order.size(); ++k) keys[k] = key(order[k]);

  std::vector<double> log2_est, log2_ref;
  if (check_pitch) {
    log2_est.resize(est.size());
    for (size_t j = 0; j < est.size(); ++j) log2_est[j] = std::log2(est[j].pitch_hz);
    log2_ref.resize(ref.size());
    for (size_t i = 0; i < ref.size(); ++i) log2_ref[i] = std::log2(ref[i].pitch_hz);
  }

  std::vector<size_t> row;
  for (size_t i = 0; i < ref.size(); ++i) {
    const ScoreNote& r = ref[i];
    double offset_tol = 0.0;
    if (check_offset) {
      const double dur = std::fabs(r.offset_s - r.onset_s);
      offset_tol = std::max(opt.offset_ratio * dur, opt.offset_min_tolerance_s);
    }
    const double centre = by_offset ? r.offset_s : r.onset_s;
    const double tol = by_offset ? offset_tol : opt.onset_tolerance_s;
    // round4 can pull a distance down by at most 0.5e-4: widen the window.
    const double margin = 1e-4 + 1e-9 * (std::fabs(centre) + tol);
    const double lo = centre - tol - margin, hi = centre + tol + margin;
    auto it = std::lower_bound(keys.begin(), keys.end(), lo);
    row.clear();
    for (size_t k = static_cast<size_t>(it - keys.begin()); k < keys.size() && keys[k] <= hi; ++k) {
      const size_t j = order[k];
      const ScoreNote& e = est[j];
      if (check_onset && !cmp_le(round4(std::fabs(r.onset_s - e.onset_s)), opt.onset_tolerance_s, strict))
        continue;
      if (check_pitch &&
          !cmp_le(std::fabs(1200.0 * (log2_ref[i] - log2_est[j])), opt.pitch_tolerance_cents, strict))
        continue;
      if (check_offset && !cmp_le(round4(std::fabs(r.offset_s - e.offset_s)), offset_tol, strict))
        continue;
      row.push_back(j);
    }
    std::sort(row.begin(), row.end());
    g.est.insert(g.est.end(), row.begin(), row.end());
    g.start[i + 1] = g.est.size();
  }
  return g;
}

// mir_eval.util._bipartite_match on the graph est -> [ref...] that mir_eval's
// callers build from np.where(hit_matrix) (row-major: ref ascending, then est).
// Hopcroft-Karp as mir_eval runs it (the order of its dictionaries decides which maximum matching
// comes out, so every loop keeps that order): graph keys are the estimates in order of first
// appearance, a greedy first pass, then phases of layering (layer) and augmenting (augment).
class HopcroftKarp {
 public:
  explicit HopcroftKarp(const HitGraph& h)
      : n_ref_(h.n_ref), n_est_(h.n_est), match_ref_(h.n_ref, kNone), pred_(h.n_est, kAbsent),
        preds_present_(h.n_ref, 0), preds_list_(h.n_ref), nl_lists_(h.n_ref), in_nl_(h.n_ref, 0) {
    build_adjacency(h);
  }

  Matching run() {
    greedy();
    while (layer()) {
      for (size_t v : unmatched_) augment(v);
      // pred entries of the graph keys are reset at the top of the next phase;
      // entries for ests outside the graph are never set.
    }
    Matching m;
    for (size_t v = 0; v < n_ref_; ++v)
      if (match_ref_[v] != kNone) m.emplace_back(v, match_ref_[v]);
    return m;
  }

 private:
  static constexpr long kAbsent = -2, kFree = -1;
  struct Frame {
    size_t v;
    size_t idx;
    size_t pending_u;
  };

  // graph keys (est) in order of first appearance; adjacency est -> refs.
  void build_adjacency(const HitGraph& h) {
    std::vector<size_t> adj_count(n_est_, 0);
    for (size_t i = 0; i < n_ref_; ++i)
      for (size_t k = h.start[i]; k < h.start[i + 1]; ++k) {
        const size_t e = h.est[k];
        if (adj_count[e]++ == 0) key_order_.push_back(e);
      }
    adj_start_.assign(n_est_ + 1, 0);
    for (size_t e = 0; e < n_est_; ++e) adj_start_[e + 1] = adj_start_[e] + adj_count[e];
    adj_.resize(h.est.size());
    std::vector<size_t> fill(adj_start_.begin(), adj_start_.end() - 1);
    for (size_t i = 0; i < n_ref_; ++i)
      for (size_t k = h.start[i]; k < h.start[i + 1]; ++k) adj_[fill[h.est[k]]++] = i;
  }

  void greedy() {
    for (size_t u : key_order_)
      for (size_t k = adj_start_[u]; k < adj_start_[u + 1]; ++k) {
        const size_t v = adj_[k];
        if (match_ref_[v] == kNone) {
          match_ref_[v] = u;
          break;
        }
      }
  }

  // One phase's layering from the free estimates; true when it reached unmatched refs.
  bool layer() {
    for (size_t v : touched_refs_) {
      preds_present_[v] = 0;
      preds_list_[v].clear();
    }
    touched_refs_.clear();
    unmatched_.clear();
    for (size_t u : key_order_) pred_[u] = kFree;
    for (size_t v = 0; v < n_ref_; ++v)
      if (match_ref_[v] != kNone) pred_[match_ref_[v]] = kAbsent;
    layer_.clear();
    for (size_t u : key_order_)
      if (pred_[u] == kFree) layer_.push_back(u);
    while (!layer_.empty() && unmatched_.empty()) next_layer();
    return !unmatched_.empty();
  }

  void next_layer() {
    nl_order_.clear();
    for (size_t u : layer_)
      for (size_t k = adj_start_[u]; k < adj_start_[u + 1]; ++k) {
        const size_t v = adj_[k];
        if (preds_present_[v]) continue;
        if (!in_nl_[v]) {
          in_nl_[v] = 1;
          nl_order_.push_back(v);
        }
        nl_lists_[v].push_back(u);
      }
    layer_.clear();
    for (size_t v : nl_order_) {
      in_nl_[v] = 0;
      preds_present_[v] = 1;
      touched_refs_.push_back(v);
      preds_list_[v].swap(nl_lists_[v]);
      nl_lists_[v].clear();
      if (match_ref_[v] != kNone) {
        layer_.push_back(match_ref_[v]);
        pred_[match_ref_[v]] = static_cast<long>(v);
      } else {
        unmatched_.push_back(v);
      }
    }
  }

  bool enter(size_t v) {
    if (!preds_present_[v]) return false;
    preds_present_[v] = 0;
    stack_.push_back(Frame{v, 0, kNone});
    return true;
  }

  // mir_eval's recursive augmenting-path search from ref v0, with an explicit stack.
  bool augment(size_t v0) {
    stack_.clear();
    if (!enter(v0)) return false;
    bool have_child = false, child_result = false;
    while (!stack_.empty()) {
      const size_t top = stack_.size() - 1;
      if (have_child) {
        have_child = false;
        if (child_result) {
          match_ref_[stack_[top].v] = stack_[top].pending_u;
          stack_.pop_back();
          have_child = true;
          child_result = true;
          continue;
        }
        ++stack_[top].idx;
      }
      const int step = advance(top);
      if (step > 0) continue;  // descended into a child
      if (step == 0) {         // reached a free estimate
        have_child = true;
        child_result = true;
        continue;
      }
      stack_.pop_back();
      have_child = true;
      child_result = false;
    }
    return child_result;
  }

  // Scans the predecessors of the frame at `top`: 1 = pushed a child frame, 0 = matched a free
  // estimate (frame popped), -1 = exhausted.
  int advance(size_t top) {
    while (stack_[top].idx < preds_list_[stack_[top].v].size()) {
      const size_t u = preds_list_[stack_[top].v][stack_[top].idx];
      if (pred_[u] != kAbsent) {
        const long pu = pred_[u];
        pred_[u] = kAbsent;
        if (pu == kFree) {
          match_ref_[stack_[top].v] = u;
          stack_.pop_back();
          return 0;
        }
        stack_[top].pending_u = u;
        if (enter(static_cast<size_t>(pu))) return 1;
        ++stack_[top].idx;  // recurse(pu) returned false at once
      } else {
        ++stack_[top].idx;
      }
    }
    return -1;
  }

  const size_t n_ref_, n_est_;
  std::vector<size_t> key_order_, adj_start_, adj_;
  std::vector<size_t> match_ref_;                 // ref -> est ("matching")
  std::vector<long> pred_;                        // est -> FREE | ref | absent
  std::vector<char> preds_present_;               // ref in preds
  std::vector<std::vector<size_t>> preds_list_;
  std::vector<std::vector<size_t>> nl_lists_;
  std::vector<char> in_nl_;
  std::vector<size_t> touched_refs_, layer_, nl_order_, unmatched_;
  std::vector<Frame> stack_;
};

Matching bipartite_match_graph(const HitGraph& h) { return HopcroftKarp(h).run(); }

double overlap_ratio(const ScoreNote& r, const ScoreNote& e) {
  return (std::min(r.offset_s, e.offset_s) - std::max(r.onset_s, e.onset_s)) /
         (std::max(r.offset_s, e.offset_s) - std::min(r.onset_s, e.onset_s));
}

// P, R, F, AOR of one matching, mir_eval style.
struct Prfa {
  double p = 0, r = 0, f = 0, aor = 0;
  MatchCounts counts;
};

Prfa prfa(const std::vector<ScoreNote>& ref, const std::vector<ScoreNote>& est, const Matching& m,
          double beta) {
  Prfa out;
  out.counts.n_ref = ref.size();
  out.counts.n_est = est.size();
  if (ref.empty() || est.empty()) return out;
  out.counts.matched = m.size();
  out.p = static_cast<double>(m.size()) / static_cast<double>(est.size());
  out.r = static_cast<double>(m.size()) / static_cast<double>(ref.size());
  out.f = f_measure(out.p, out.r, beta);
  std::vector<double> ratios;
  ratios.reserve(m.size());
  for (const auto& pr : m) ratios.push_back(overlap_ratio(ref[pr.first], est[pr.second]));
  out.aor = numpy_mean(ratios);
  for (double x : ratios) out.counts.overlap_sum += x;
  return out;
}

std::string side_name(bool is_ref) { return is_ref ? "reference" : "estimate"; }

void validate_intervals(const ScoreNotes& s, bool is_ref) {
  const std::string where = "score: " + s.source + ": " + side_name(is_ref) + ": ";
  for (size_t i = 0; i < s.notes.size(); ++i) {
    const ScoreNote& n = s.notes[i];
    if (!std::isfinite(n.onset_s) || !std::isfinite(n.offset_s))
      throw InputError(where + "non-finite interval time (note " + std::to_string(i) + ")");
  }
  for (size_t i = 0; i < s.notes.size(); ++i) {
    const ScoreNote& n = s.notes[i];
    if (n.onset_s < 0 || n.offset_s < 0)
      throw InputError(where + "Negative interval times found (note " + std::to_string(i) + ")");
  }
  for (size_t i = 0; i < s.notes.size(); ++i) {
    const ScoreNote& n = s.notes[i];
    if (n.offset_s <= n.onset_s)
      throw InputError(where + "All interval durations must be strictly positive (note " +
                       std::to_string(i) + ": onset " + fmt_double(n.onset_s) + " s, offset " +
                       fmt_double(n.offset_s) + " s)");
  }
}

void validate_pitches(const ScoreNotes& s, bool is_ref) {
  const std::string where = "score: " + s.source + ": " + side_name(is_ref) + ": ";
  for (size_t i = 0; i < s.notes.size(); ++i) {
    const double p = s.notes[i].pitch_hz;
    if (std::isnan(p) || std::isinf(p))
      throw InputError(where + "non-finite pitch value (note " + std::to_string(i) + ")");
    if (p <= 0)
      throw InputError(where + (is_ref ? "Reference contains" : "Estimate contains") +
                       " at least one non-positive pitch value (note " + std::to_string(i) + ")");
  }
}

void validate_velocities(const ScoreNotes& s, bool is_ref) {
  const std::string where = "score: " + s.source + ": " + side_name(is_ref) + ": ";
  if (!s.has_velocity)
    throw InputError(where + "has no velocities (the velocity metrics need them)");
  for (size_t i = 0; i < s.notes.size(); ++i) {
    const double v = s.notes[i].velocity;
    if (!std::isfinite(v))
      throw InputError(where + "non-finite velocity (note " + std::to_string(i) + ")");
    if (v < 0)
      throw InputError(where + (is_ref ? "Reference" : "Estimated") +
                       " velocities must be positive. (note " + std::to_string(i) + ")");
  }
}

Matching velocity_filter(const std::vector<ScoreNote>& ref, const std::vector<ScoreNote>& est,
                         const Matching& m, double velocity_tolerance) {
  if (ref.empty()) return {};
  double vmin = ref[0].velocity, vmax = ref[0].velocity;
  for (const auto& n : ref) {
    vmin = std::min(vmin, n.velocity);
    vmax = std::max(vmax, n.velocity);
  }
  const double range = std::max(1.0, vmax - vmin);
  if (m.empty()) return {};
  const size_t n = m.size();
  std::vector<double> x(n), y(n);
  for (size_t k = 0; k < n; ++k) {
    x[k] = est[m[k].second].velocity;
    y[k] = (ref[m[k].first].velocity - vmin) / range;
  }
  const double ybar = numpy_mean(y);
  bool all_equal = true;
  for (size_t k = 1; k < n; ++k)
    if (x[k] != x[0]) all_equal = false;
  std::vector<double> fit(n);
  if (all_equal) {
    // Rank-deficient: lstsq's minimum-norm solution fits mean(y) everywhere.
    std::fill(fit.begin(), fit.end(), ybar);
  } else {
    const double xbar = numpy_mean(x);
    double sxx = 0, sxy = 0;
    for (size_t k = 0; k < n; ++k) {
      sxx += (x[k] - xbar) * (x[k] - xbar);
      sxy += (x[k] - xbar) * (y[k] - ybar);
    }
    const double slope = sxy / sxx, intercept = ybar - slope * xbar;
    for (size_t k = 0; k < n; ++k) fit[k] = slope * x[k] + intercept;
  }
  Matching kept;
  for (size_t k = 0; k < n; ++k)
    if (std::fabs(fit[k] - y[k]) < velocity_tolerance) kept.push_back(m[k]);
  return kept;
}

void warn_empty(const ScoreNotes& ref, const ScoreNotes& est) {
  if (ref.notes.empty()) log_warn("score", ref.source + ": Reference notes are empty.");
  if (est.notes.empty()) log_warn("score", est.source + ": Estimated notes are empty.");
}

}  // namespace

// ---------------------------------------------------------------------------

void TranscriptionOptions::validate() const {
  check_range("onset_tolerance_s", onset_tolerance_s, 0.0, 1e6);
  check_range("pitch_tolerance_cents", pitch_tolerance_cents, 0.0, 1e6);
  check_range("offset_ratio", offset_ratio, 0.0, 1e6);
  check_range("offset_min_tolerance_s", offset_min_tolerance_s, 0.0, 1e6);
  check_range("beta", beta, 0.0, 1e6, /*lo_open=*/true);
  check_range("velocity_tolerance", velocity_tolerance, 0.0, 1e6);
}

double round4(double x) { return std::nearbyint(x * 10000.0) / 10000.0; }

double f_measure(double precision, double recall, double beta) {
  if (precision == 0 && recall == 0) return 0.0;
  const double b2 = beta * beta;
  return (1 + b2) * precision * recall / (b2 * precision + recall);
}

bool Metrics::has(const std::string& key) const {
  for (const auto& kv : values)
    if (kv.first == key) return true;
  return false;
}

double Metrics::get(const std::string& key) const {
  for (const auto& kv : values)
    if (kv.first == key) return kv.second;
  throw std::out_of_range("no metric named " + key);
}

void Metrics::set(const std::string& key, double v) {
  for (auto& kv : values)
    if (kv.first == key) {
      kv.second = v;
      return;
    }
  values.emplace_back(key, v);
}

Matching bipartite_match(size_t n_ref, const std::vector<std::vector<size_t>>& hits_per_ref) {
  HitGraph g;
  g.n_ref = n_ref;
  g.start.assign(n_ref + 1, 0);
  for (size_t i = 0; i < n_ref; ++i) {
    std::vector<size_t> row = i < hits_per_ref.size() ? hits_per_ref[i] : std::vector<size_t>{};
    std::sort(row.begin(), row.end());
    row.erase(std::unique(row.begin(), row.end()), row.end());
    for (size_t e : row) g.n_est = std::max(g.n_est, e + 1);
    g.est.insert(g.est.end(), row.begin(), row.end());
    g.start[i + 1] = g.est.size();
  }
  return bipartite_match_graph(g);
}

Matching match_notes(const std::vector<ScoreNote>& ref, const std::vector<ScoreNote>& est,
                     const TranscriptionOptions& opt, MatchKind kind) {
  if (ref.empty() || est.empty()) return {};
  return bipartite_match_graph(build_hits(ref, est, opt, kind));
}

Matching match_notes_velocity(const std::vector<ScoreNote>& ref, const std::vector<ScoreNote>& est,
                              const TranscriptionOptions& opt, bool use_offset) {
  const Matching m = match_notes(ref, est, opt, use_offset ? MatchKind::Note : MatchKind::NoteNoOffset);
  return velocity_filter(ref, est, m, opt.velocity_tolerance);
}

void validate_transcription(const ScoreNotes& ref, const ScoreNotes& est, bool check_velocity) {
  validate_intervals(ref, true);
  validate_intervals(est, false);
  validate_pitches(ref, true);
  validate_pitches(est, false);
  if (check_velocity) {
    validate_velocities(ref, true);
    validate_velocities(est, false);
  }
}

void add_prf_metrics(Metrics& m, const MatchCounts& c, const std::string& p_key,
                     const std::string& r_key, const std::string& f_key, const std::string& aor_key,
                     double beta) {
  double p = 0, r = 0, f = 0, aor = 0;
  if (c.n_ref > 0 && c.n_est > 0) {
    p = static_cast<double>(c.matched) / static_cast<double>(c.n_est);
    r = static_cast<double>(c.matched) / static_cast<double>(c.n_ref);
    f = f_measure(p, r, beta);
    aor = c.matched ? c.overlap_sum / static_cast<double>(c.matched) : 0.0;
  }
  m.set(p_key, p);
  m.set(r_key, r);
  m.set(f_key, f);
  if (!aor_key.empty()) m.set(aor_key, aor);
}

TranscriptionScores evaluate_transcription(const ScoreNotes& ref, const ScoreNotes& est,
                                           const TranscriptionOptions& opt) {
  opt.validate();
  warn_empty(ref, est);
  validate_transcription(ref, est, false);
  TranscriptionScores out;
  auto& M = out.metrics;
  const auto& R = ref.notes;
  const auto& E = est.notes;
  if (opt.use_offset) {
    const Prfa a = prfa(R, E, match_notes(R, E, opt, MatchKind::Note), opt.beta);
    M.set("Precision", a.p);
    M.set("Recall", a.r);
    M.set("F-measure", a.f);
    M.set("Average_Overlap_Ratio", a.aor);
    out.note = a.counts;
  }
  {
    const Prfa a = prfa(R, E, match_notes(R, E, opt, MatchKind::NoteNoOffset), opt.beta);
    M.set("Precision_no_offset", a.p);
    M.set("Recall_no_offset", a.r);
    M.set("F-measure_no_offset", a.f);
    M.set("Average_Overlap_Ratio_no_offset", a.aor);
    out.note_no_offset = a.counts;
  }
  {
    const Prfa a = prfa(R, E, match_notes(R, E, opt, MatchKind::Onset), opt.beta);
    M.set("Onset_Precision", a.p);
    M.set("Onset_Recall", a.r);
    M.set("Onset_F-measure", a.f);
    out.onset = a.counts;
  }
  if (opt.use_offset) {
    const Prfa a = prfa(R, E, match_notes(R, E, opt, MatchKind::Offset), opt.beta);
    M.set("Offset_Precision", a.p);
    M.set("Offset_Recall", a.r);
    M.set("Offset_F-measure", a.f);
    out.offset = a.counts;
  }
  return out;
}

VelocityScores evaluate_transcription_velocity(const ScoreNotes& ref, const ScoreNotes& est,
                                               const TranscriptionOptions& opt) {
  opt.validate();
  warn_empty(ref, est);
  validate_transcription(ref, est, true);
  VelocityScores out;
  auto& M = out.metrics;
  const auto& R = ref.notes;
  const auto& E = est.notes;
  if (opt.use_offset) {
    const Prfa a = prfa(R, E, match_notes_velocity(R, E, opt, true), opt.beta);
    M.set("Precision", a.p);
    M.set("Recall", a.r);
    M.set("F-measure", a.f);
    M.set("Average_Overlap_Ratio", a.aor);
    out.note = a.counts;
  }
  {
    const Prfa a = prfa(R, E, match_notes_velocity(R, E, opt, false), opt.beta);
    M.set("Precision_no_offset", a.p);
    M.set("Recall_no_offset", a.r);
    M.set("F-measure_no_offset", a.f);
    M.set("Average_Overlap_Ratio_no_offset", a.aor);
    out.note_no_offset = a.counts;
  }
  return out;
}

ProgramGranularity program_granularity_from_string(const std::string& s) {
  if (s == "full") return ProgramGranularity::Full;
  if (s == "midi_class") return ProgramGranularity::MidiClass;
  if (s == "flat") return ProgramGranularity::Flat;
  throw ConfigError("score: program granularity '" + s + "' is unknown (full | midi_class | flat)");
}

Metrics multi_instrument_metrics(const MatchCounts& drum, const MatchCounts& nondrum, double beta) {
  auto prf = [&](Metrics& m, size_t matched, size_t n_ref, size_t n_est, const std::string& prefix) {
    const double p = n_est ? static_cast<double>(matched) / static_cast<double>(n_est) : 0.0;
    const double r = n_ref ? static_cast<double>(matched) / static_cast<double>(n_ref) : 0.0;
    m.set(prefix + "Precision", p);
    m.set(prefix + "Recall", r);
    m.set(prefix + "F-measure", f_measure(p, r, beta));
  };
  Metrics m;
  prf(m, drum.matched + nondrum.matched, drum.n_ref + nondrum.n_ref, drum.n_est + nondrum.n_est, "");
  prf(m, drum.matched, drum.n_ref, drum.n_est, "Drum_");
  prf(m, nondrum.matched, nondrum.n_ref, nondrum.n_est, "Nondrum_");
  return m;
}

MultiInstrumentScores evaluate_multi_instrument(const ScoreNotes& ref, const ScoreNotes& est,
                                                const TranscriptionOptions& opt, ProgramGranularity granularity) {
  opt.validate();
  validate_transcription(ref, est, false);
  auto program_of = [&](const ScoreNote& n) {
    if (n.is_drum) return 0;
    switch (granularity) {
      case ProgramGranularity::MidiClass: return (n.program / 8) * 8;
      case ProgramGranularity::Flat: return 0;
      default: return n.program;
    }
  };
  using Key = std::pair<int, bool>;
  std::map<Key, std::pair<std::vector<ScoreNote>, std::vector<ScoreNote>>> groups;
  for (const auto& n : ref.notes) groups[Key{program_of(n), n.is_drum}].first.push_back(n);
  for (const auto& n : est.notes) groups[Key{program_of(n), n.is_drum}].second.push_back(n);
  MultiInstrumentScores out;
  for (const auto& kv : groups) {
    const auto& r = kv.second.first;
    const auto& e = kv.second.second;
    const bool drum = kv.first.second;
    MatchCounts& c = drum ? out.drum : out.nondrum;
    c.n_ref += r.size();
    c.n_est += e.size();
    if (r.empty() || e.empty()) continue;
    const MatchKind kind = (drum || !opt.use_offset) ? MatchKind::NoteNoOffset : MatchKind::Note;
    c.matched += match_notes(r, e, opt, kind).size();
  }
  out.n_ref = out.drum.n_ref + out.nondrum.n_ref;
  out.n_est = out.drum.n_est + out.nondrum.n_est;
  out.matched = out.drum.matched + out.nondrum.matched;
  out.metrics = multi_instrument_metrics(out.drum, out.nondrum, opt.beta);
  return out;
}

// Readers --------------------------------------------------------------------

ScoreNotes parse_mir_eval_txt(const std::string& text, const std::string& what, bool pitch_is_midi) {
  ScoreNotes out;
  out.source = what;
  size_t ncols = 0;
  size_t pos = 0, line_no = 0;
  std::vector<std::string> fields;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    auto is_sep = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == ',' || c == '\v' || c == '\f'; };
    size_t b = 0;
    while (b < line.size() && (line[b] == ' ' || line[b] == '\t' || line[b] == '\r')) ++b;
    if (b == line.size()) continue;  // blank line
    if (line[b] == '#') continue;    // comment
    fields.clear();
    size_t i = b;
    while (i < line.size()) {
      while (i < line.size() && is_sep(line[i])) ++i;
      if (i >= line.size()) break;
      size_t j = i;
      while (j < line.size() && !is_sep(line[j])) ++j;
      fields.push_back(line.substr(i, j - i));
      i = j;
    }
    const std::string where = "score: " + what + ":" + std::to_string(line_no) + ": ";
    if (fields.size() != 3 && fields.size() != 4)
      throw InputError(where + "expected 3 or 4 columns (onset offset pitch [velocity]), got " +
                       std::to_string(fields.size()));
    if (ncols == 0) ncols = fields.size();
    else if (fields.size() != ncols)
      throw InputError(where + "expected " + std::to_string(ncols) + " columns like the first note line, got " +
                       std::to_string(fields.size()));
    double v[4] = {0, 0, 0, 0};
    for (size_t k = 0; k < fields.size(); ++k) {
      const char* s = fields[k].c_str();
      char* endp = nullptr;
      v[k] = std::strtod(s, &endp);
      if (endp == s || *endp != '\0')
        throw InputError(where + "column " + std::to_string(k + 1) + " is not a number: '" + fields[k] + "'");
    }
    ScoreNote n;
    n.onset_s = v[0];
    n.offset_s = v[1];
    n.pitch_hz = pitch_is_midi ? midi_to_hz(v[2]) : v[2];
    n.velocity = v[3];
    out.notes.push_back(n);
  }
  out.has_velocity = ncols == 4;
  return out;
}

ScoreNotes read_mir_eval_txt(const std::string& path, bool pitch_is_midi) {
  std::string text;
  try {
    text = read_file_text(path);
  } catch (const Error& e) {
    throw InputError(std::string("score: ") + path + ": cannot read (" + e.what() + ")");
  }
  return parse_mir_eval_txt(text, path, pitch_is_midi);
}

ScoreNotes score_notes_from_sequence(const NoteSequence& seq, size_t* dropped) {
  ScoreNotes out;
  out.source = seq.source;
  out.has_velocity = true;
  out.has_program = true;
  size_t n_dropped = 0;
  for (const auto& n : seq.notes) {
    if (!(n.offset_s > n.onset_s)) {
      ++n_dropped;
      continue;
    }
    ScoreNote s;
    s.onset_s = n.onset_s;
    s.offset_s = n.offset_s;
    s.pitch_hz = midi_to_hz(n.pitch);
    s.velocity = n.velocity;
    s.program = n.is_drum ? 0 : n.program;
    s.is_drum = n.is_drum;
    out.notes.push_back(s);
  }
  if (n_dropped)
    log_warn("score", seq.source + ": dropped " + std::to_string(n_dropped) + " zero-length note(s)");
  if (dropped) *dropped = n_dropped;
  return out;
}

}  // namespace tunescribe
