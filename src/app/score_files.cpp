#include "tunescribe/score_files.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include "tunescribe/abc_writer.h"
#include "tunescribe/batch.h"
#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/log.h"
#include "tunescribe/note_files.h"
#include "tunescribe/notes.h"

namespace fs = std::filesystem;

namespace tunescribe {

namespace {

// One scored input file.
struct Input {
  std::string path;
  NotesFormat format = NotesFormat::Midi;
  std::optional<ScoreNotes> notes;  // for the mir_eval metrics
  std::optional<RewardInput> reward;  // for the ABC reward
  std::optional<NoteSequence> sequence;  // MIDI/JSON notes (for the emitter path)
};

Input load_input(const std::string& path, const ScoreFilesConfig& o, RewardMode mode) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw InputError("score: " + path + ": no such file");
  ReadNotesOptions ro;
  ro.apply_sustain = o.apply_sustain;
  ro.txt_pitch_midi = o.txt_pitch == "midi";
  ro.abc_fragment = true;
  NotesFile f = read_notes(path, ro);
  Input in;
  in.path = path;
  in.format = f.format;
  if (f.format == NotesFormat::Txt) {
    in.notes = std::move(f.txt);
    return in;
  }
  ScoreNotes sn = score_notes_from_sequence(f.sequence);
  if (f.format == NotesFormat::Abc) {
    in.reward = parse_reward_input(f.abc_text, mode, path);
    if (f.abc_tunes > 1) log_warn("score", path + ": " + std::to_string(f.abc_tunes) + " tunes; scoring the first");
    sn.has_velocity = false;  // ABC has no real dynamics
  } else {
    in.sequence = std::move(f.sequence);
  }
  in.notes = std::move(sn);
  return in;
}

// The reward input of the non-ABC side of an ABC pair.
std::optional<RewardInput> reward_side(const Input& in, RewardMode mode, std::vector<std::string>& remarks) {
  if (in.reward) return in.reward;
  if (!in.sequence) {
    remarks.push_back("reward: " + in.path + ": a mir_eval .txt file has no instruments, metre or tempo");
    return std::nullopt;
  }
  AbcWriterConfig cfg;
  cfg.title = abc_title_from_path(in.path);
  const AbcTune tune = write_abc(*in.sequence, cfg);
  // flynn2024: the article's voice regex needs its data's layout (V:1 blocks).
  const std::string text = mode == RewardMode::Flynn2024 ? flynn2024_layout(tune.text) : tune.text;
  return parse_reward_input(text, mode, in.path);
}

}  // namespace

PairResult score_pair(const ScorePair& pair, const ScoreFilesConfig& o) {
  const RewardMode mode = reward_mode_from_string(o.reward_mode);
  const std::string& ref_path = pair.ref_path;
  const std::string& est_path = pair.est_path;
  PairResult r;
  r.stem = pair.stem;
  r.ref_path = ref_path;
  r.est_path = est_path;
  const Input ref = load_input(ref_path, o, mode);
  const Input est = load_input(est_path, o, mode);
  if (ref.notes && est.notes) {
    ScoreNotes rn = *ref.notes, en = *est.notes;
    rn.source = ref_path;
    en.source = est_path;
    r.n_ref = rn.notes.size();
    r.n_est = en.notes.size();
    r.scored_notes = true;
    r.transcription = evaluate_transcription(rn, en, o.metric);
    if (rn.has_velocity && en.has_velocity) r.velocity = evaluate_transcription_velocity(rn, en, o.metric);
    if (rn.has_program && en.has_program)
      r.multi = evaluate_multi_instrument(rn, en, o.metric, program_granularity_from_string(o.program_granularity));
  }
  if (ref.format == NotesFormat::Abc || est.format == NotesFormat::Abc) {
    auto rr = reward_side(ref, mode, r.notes);
    auto er = reward_side(est, mode, r.notes);
    if (rr && er) r.reward = compute_reward(*rr, *er, mode);
  }
  if (!r.transcription && !r.reward) throw InputError("score: " + ref_path + " / " + est_path + ": nothing could be scored (" +
                                                      (r.notes.empty() ? std::string("no metric applies") : r.notes.front()) + ")");
  return r;
}

FlatMetrics flat_metrics(const PairResult& r) {
  FlatMetrics out;
  if (r.transcription)
    for (const auto& kv : r.transcription->metrics.values) out.push_back(kv);
  if (r.velocity)
    for (const auto& kv : r.velocity->metrics.values) out.emplace_back("velocity." + kv.first, kv.second);
  if (r.multi)
    for (const auto& kv : r.multi->metrics.values) out.emplace_back("multi_instrument." + kv.first, kv.second);
  if (r.reward) {
    out.emplace_back("reward.pitch", r.reward->pitch);
    out.emplace_back("reward.metre", r.reward->metre);
    out.emplace_back("reward.tempo", r.reward->tempo);
    out.emplace_back("reward.instrument", r.reward->instrument);
    out.emplace_back("reward.total", r.reward->total);
    out.emplace_back("reward.reward", r.reward->reward);
  }
  return out;
}

std::optional<double> lookup_metric(const FlatMetrics& v, const std::string& k) {
  for (const auto& kv : v)
    if (kv.first == k) return kv.second;
  return std::nullopt;
}

ScoreAggregate aggregate_scores(const std::vector<PairResult>& results, double beta) {
  ScoreAggregate a;
  std::map<std::string, std::pair<double, size_t>> sums;
  for (const auto& r : results)
    for (const auto& kv : flat_metrics(r)) {
      if (!sums.count(kv.first)) a.order.push_back(kv.first);
      sums[kv.first].first += kv.second;
      sums[kv.first].second += 1;
    }
  for (const auto& k : a.order) a.mean.emplace_back(k, sums[k].first / static_cast<double>(sums[k].second));
  // Pooled: sum the match counts of every file, then compute the metrics.
  MatchCounts note, no_off, onset, offset, vnote, vno_off, m_drum, m_nondrum;
  bool have_t = false, have_off = false, have_v = false, have_v_off = false, have_m = false;
  auto add = [](MatchCounts& s, const MatchCounts& c) {
    s.n_ref += c.n_ref;
    s.n_est += c.n_est;
    s.matched += c.matched;
    s.overlap_sum += c.overlap_sum;
  };
  for (const auto& r : results) {
    if (r.transcription) {
      have_t = true;
      have_off = r.transcription->metrics.has("Precision");
      add(note, r.transcription->note);
      add(no_off, r.transcription->note_no_offset);
      add(onset, r.transcription->onset);
      add(offset, r.transcription->offset);
    }
    if (r.velocity) {
      have_v = true;
      have_v_off = r.velocity->metrics.has("Precision");
      add(vnote, r.velocity->note);
      add(vno_off, r.velocity->note_no_offset);
    }
    if (r.multi) {
      have_m = true;
      add(m_drum, r.multi->drum);
      add(m_nondrum, r.multi->nondrum);
    }
  }
  Metrics p;
  if (have_t) {
    if (have_off) add_prf_metrics(p, note, "Precision", "Recall", "F-measure", "Average_Overlap_Ratio", beta);
    add_prf_metrics(p, no_off, "Precision_no_offset", "Recall_no_offset", "F-measure_no_offset",
                    "Average_Overlap_Ratio_no_offset", beta);
    add_prf_metrics(p, onset, "Onset_Precision", "Onset_Recall", "Onset_F-measure", "", beta);
    if (have_off) add_prf_metrics(p, offset, "Offset_Precision", "Offset_Recall", "Offset_F-measure", "", beta);
  }
  if (have_v) {
    if (have_v_off)
      add_prf_metrics(p, vnote, "velocity.Precision", "velocity.Recall", "velocity.F-measure",
                      "velocity.Average_Overlap_Ratio", beta);
    add_prf_metrics(p, vno_off, "velocity.Precision_no_offset", "velocity.Recall_no_offset",
                    "velocity.F-measure_no_offset", "velocity.Average_Overlap_Ratio_no_offset", beta);
  }
  if (have_m) {
    for (const auto& kv : multi_instrument_metrics(m_drum, m_nondrum, beta).values)
      p.set("multi_instrument." + kv.first, kv.second);
  }
  a.pooled = p.values;
  return a;
}

namespace {

// "transcription.X" → "X", "transcription_velocity.X" → "velocity.X".
std::string canonical_metric(std::string m) {
  if (m.rfind("transcription_velocity.", 0) == 0) return "velocity." + m.substr(23);
  if (m.rfind("transcription.", 0) == 0) return m.substr(14);
  return m;
}

struct Gate {
  std::string spec, metric;
  bool pooled = false;
  double value = 0;
};

std::vector<Gate> parse_gates(const std::vector<std::string>& specs) {
  std::vector<Gate> out;
  for (const auto& s : specs) {
    const size_t eq = s.rfind('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == s.size())
      throw ConfigError("score: --fail-under '" + s + "': expected METRIC=VALUE, e.g. F-measure_no_offset=0.9");
    Gate g;
    g.spec = s;
    g.metric = s.substr(0, eq);
    if (g.metric.rfind("pooled:", 0) == 0) {
      g.pooled = true;
      g.metric = g.metric.substr(7);
    } else if (g.metric.rfind("mean:", 0) == 0) {
      g.metric = g.metric.substr(5);
    }
    g.metric = canonical_metric(g.metric);
    const std::string v = s.substr(eq + 1);
    char* e = nullptr;
    g.value = std::strtod(v.c_str(), &e);
    if (*e != '\0' || !std::isfinite(g.value))
      throw ConfigError("score: --fail-under '" + s + "': '" + v + "' is not a number");
    out.push_back(g);
  }
  return out;
}

// Files of a folder with a supported extension, by stem; duplicates are an error.
std::map<std::string, std::string> files_by_stem(const std::string& dir, const char* flag) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw ConfigError(std::string("score: ") + flag + " " + dir + ": not a folder");
  std::map<std::string, std::string> out;
  const auto paths = list_input_files(dir, false, is_notes_path, ec);
  if (ec) throw ConfigError(std::string("score: ") + flag + " " + dir + ": cannot list folder: " + ec.message());
  for (const auto& p : paths) {
    const std::string stem = path_stem(p);
    auto it = out.find(stem);
    if (it != out.end())
      throw ConfigError("score: " + std::string(flag) + " " + dir + ": two files with the stem '" + stem + "' (" +
                        it->second + ", " + p + "); keep one");
    out[stem] = p;
  }
  return out;
}

}  // namespace

void ScoreFilesConfig::validate() const {
  if (txt_pitch != "hz" && txt_pitch != "midi")
    throw ConfigError("score: --txt-pitch '" + txt_pitch + "': expected hz or midi");
  metric.validate();
  program_granularity_from_string(program_granularity);
  reward_mode_from_string(reward_mode);
  parse_gates(fail_under);
}

ScorePairing pair_score_inputs(const std::vector<std::string>& files, const std::string& ref_dir,
                               const std::string& est_dir) {
  ScorePairing p;
  p.folders = !ref_dir.empty() || !est_dir.empty();
  if (!p.folders) {
    if (files.size() != 2) throw ConfigError("score: expected REF EST (or --ref-dir A --est-dir B)");
    p.pairs.push_back({path_stem(files[1]), files[0], files[1]});
    return p;
  }
  if (ref_dir.empty() || est_dir.empty()) throw ConfigError("score: --ref-dir and --est-dir go together");
  if (!files.empty()) throw ConfigError("score: give either REF EST or --ref-dir/--est-dir, not both");
  const auto refs = files_by_stem(ref_dir, "--ref-dir");
  const auto ests = files_by_stem(est_dir, "--est-dir");
  for (const auto& kv : refs) {
    auto it = ests.find(kv.first);
    if (it == ests.end()) p.ref_only.push_back(kv.second);
    else p.pairs.push_back({kv.first, kv.second, it->second});
  }
  for (const auto& kv : ests)
    if (!refs.count(kv.first)) p.est_only.push_back(kv.second);
  for (const auto& f : p.ref_only) log_warn("score", "no estimate for reference " + f);
  for (const auto& f : p.est_only) log_warn("score", "no reference for estimate " + f);
  if (p.pairs.empty()) throw ConfigError("score: no files in " + ref_dir + " and " + est_dir + " share a stem");
  return p;
}

ScoreRun score_pairs(const std::vector<ScorePair>& pairs, const ScoreFilesConfig& cfg,
                     const std::function<void(const std::string& error)>& on_failure) {
  // Every pair is one batch job; a pair that cannot be read or scored fails alone.
  BatchConfig bc;
  bc.component = "score";
  bc.config_error_stops = true;
  Batch batch(bc);
  for (const auto& p : pairs) batch.add(p.ref_path + " / " + p.est_path);
  std::vector<std::optional<PairResult>> scored(pairs.size());
  BatchSummary summary = batch.run(
      [&](const BatchJob& job, int) {
        scored[job.index] = score_pair(pairs[job.index], cfg);
        for (const auto& n : scored[job.index]->notes) log_info("score", n);
        return JobResult{};
      },
      [&](const JobRecord& rec, const BatchProgress&) {
        if (rec.status == JobStatus::Failed && on_failure) on_failure(rec.error);
      });
  if (summary.fatal) std::rethrow_exception(summary.fatal);
  ScoreRun run;
  for (auto& r : scored)
    if (r) run.results.push_back(std::move(*r));
  run.failures = std::move(summary.failures);
  return run;
}

std::vector<std::string> tripped_gates(const std::vector<std::string>& fail_under, const ScoreAggregate& agg) {
  std::vector<std::string> tripped;
  for (const auto& g : parse_gates(fail_under)) {
    const auto v = lookup_metric(g.pooled ? agg.pooled : agg.mean, g.metric);
    if (!v)
      throw ConfigError("score: --fail-under " + g.spec + ": no " + (g.pooled ? "pooled" : "mean") +
                        " aggregate named '" + g.metric + "' for these inputs");
    if (*v < g.value) {
      char buf[256];
      std::snprintf(buf, sizeof buf, "%s%s = %.6f is below %.6f", g.pooled ? "pooled:" : "", g.metric.c_str(), *v,
                    g.value);
      tripped.push_back(buf);
    }
  }
  return tripped;
}

}  // namespace tunescribe
