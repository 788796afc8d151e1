// `tunescribe score`: mir_eval note metrics (+ velocity, MT3 multi-instrument
// F1) and the ABC reward for one REF/EST pair or two folders paired by stem.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <tuple>

#include "commands.h"
#include "tunescribe/abc_reader.h"
#include "tunescribe/abc_writer.h"
#include "tunescribe/batch.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/log.h"
#include "tunescribe/midi.h"
#include "tunescribe/notes.h"
#include "tunescribe/reward.h"
#include "tunescribe/score.h"


namespace fs = std::filesystem;

namespace tunescribe::cli {

struct ScoreOptions {
  std::vector<std::string> files;
  std::string ref_dir, est_dir;
  bool json = false, csv = false;
  TranscriptionOptions metric;
  std::string txt_pitch = "hz";
  std::string reward_mode = "corrected";
  std::string program_granularity = "full";
  std::vector<std::string> fail_under;
  bool no_sustain = false;
};

namespace {

using ojson = nlohmann::ordered_json;

// One scored input file.
struct Input {
  std::string path;
  std::string kind;                 // txt | midi | json | abc
  std::optional<ScoreNotes> notes;  // for the mir_eval metrics
  std::optional<RewardInput> reward;  // for the ABC reward
  std::optional<NoteSequence> sequence;  // MIDI/JSON notes (for the emitter path)
  std::string abc_text;
};

struct PairResult {
  std::string stem, ref_path, est_path;
  size_t n_ref = 0, n_est = 0;
  bool scored_notes = false;
  std::optional<TranscriptionScores> transcription;
  std::optional<VelocityScores> velocity;
  std::optional<MultiInstrumentScores> multi;
  std::optional<RewardResult> reward;
  std::vector<std::string> notes;  // remarks (skipped parts)
};

bool supported_extension(const std::string& path) {
  const std::string e = lower_extension(path);
  return e == ".mid" || e == ".midi" || e == ".json" || e == ".txt" || e == ".abc";
}

Input load_input(const std::string& path, const ScoreOptions& o, RewardMode mode) {
  Input in;
  in.path = path;
  const std::string ext = lower_extension(path);
  std::error_code ec;
  if (!fs::exists(path, ec)) throw InputError("score: " + path + ": no such file");
  if (ext == ".txt") {
    in.kind = "txt";
    in.notes = read_mir_eval_txt(path, o.txt_pitch == "midi");
    return in;
  }
  if (ext == ".mid" || ext == ".midi" || ext == ".json") {
    NoteSequence seq;
    if (ext == ".json") {
      in.kind = "json";
      const std::string text = read_file_text(path);
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(text);
      } catch (const nlohmann::json::exception& e) {
        throw InputError("score: " + path + ": not valid JSON (" + e.what() + ")");
      }
      seq = notes_from_json(j, path);
    } else {
      in.kind = "midi";
      MidiReadOptions mo;
      mo.apply_sustain = !o.no_sustain;
      seq = read_midi_file(path, mo);
    }
    seq.source = path;
    in.notes = score_notes_from_sequence(seq);
    in.sequence = seq;
    return in;
  }
  if (ext == ".abc") {
    in.kind = "abc";
    in.abc_text = read_file_text(path);
    in.reward = parse_reward_input(in.abc_text, mode, path);
    std::vector<AbcTuneNotes> tunes;
    try {
      tunes = read_abc_text(in.abc_text, path);
    } catch (const InputError&) {
      // A bare fragment without X: (common in model output): read it as one tune.
      if (in.abc_text.find("X:") != std::string::npos) throw;
      tunes = read_abc_text("X:1\n" + in.abc_text, path);
    }
    if (tunes.empty()) throw InputError("score: " + path + ": no ABC tune (X:) found");
    if (tunes.size() > 1) log_warn("score", path + ": " + std::to_string(tunes.size()) + " tunes; scoring the first");
    NoteSequence seq = tunes.front().sequence;
    seq.source = path;
    ScoreNotes sn = score_notes_from_sequence(seq);
    sn.has_velocity = false;  // ABC has no real dynamics
    in.notes = sn;
    return in;
  }
  throw InputError("score: " + path + ": unsupported file type '" + ext + "' (use .mid, .midi, .json, .txt or .abc)");
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

PairResult score_pair(const std::string& stem, const std::string& ref_path, const std::string& est_path,
                      const ScoreOptions& o, RewardMode mode) {
  PairResult r;
  r.stem = stem;
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
  if (ref.kind == "abc" || est.kind == "abc") {
    auto rr = reward_side(ref, mode, r.notes);
    auto er = reward_side(est, mode, r.notes);
    if (rr && er) r.reward = compute_reward(*rr, *er, mode);
  }
  if (!r.transcription && !r.reward) throw InputError("score: " + ref_path + " / " + est_path + ": nothing could be scored (" +
                                                      (r.notes.empty() ? std::string("no metric applies") : r.notes.front()) + ")");
  return r;
}

// Flat metric names: transcription keys as mir_eval names them,
// "velocity.<key>", "multi_instrument.<key>", "reward.<component>".
std::vector<std::pair<std::string, double>> flat_metrics(const PairResult& r) {
  std::vector<std::pair<std::string, double>> out;
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

struct Aggregate {
  std::vector<std::pair<std::string, double>> mean;    // over files having the metric
  std::vector<std::pair<std::string, double>> pooled;  // over all notes
  std::vector<std::string> order;
};

Aggregate aggregate(const std::vector<PairResult>& results, double beta) {
  Aggregate a;
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

// JSON sections keyed by module, with mir_eval's names.
ojson metrics_json(const std::vector<std::pair<std::string, double>>& flat) {
  ojson j = ojson::object();
  for (const auto& kv : flat) {
    std::string section = "transcription", key = kv.first;
    for (const auto& pre : {std::make_pair("velocity.", "transcription_velocity"),
                            std::make_pair("multi_instrument.", "multi_instrument"), std::make_pair("reward.", "reward")}) {
      if (key.rfind(pre.first, 0) == 0) {
        section = pre.second;
        key = key.substr(std::string(pre.first).size());
      }
    }
    j[section][key] = kv.second;
  }
  return j;
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6f", v);
  return buf;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) {
    if (c == '"') o += '"';
    o += c;
  }
  return o + "\"";
}

std::optional<double> lookup(const std::vector<std::pair<std::string, double>>& v, const std::string& k) {
  for (const auto& kv : v)
    if (kv.first == k) return kv.second;
  return std::nullopt;
}

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

void print_table(const std::vector<PairResult>& results, const Aggregate& agg, bool dir_mode,
                 const std::vector<std::string>& ref_only, const std::vector<std::string>& est_only,
                 const std::string& mode_name) {
  std::ostringstream os;
  if (!dir_mode && results.size() == 1) {
    const auto& r = results.front();
    os << "reference: " << r.ref_path << "\nestimate:  " << r.est_path << "\n";
    if (r.scored_notes) os << "notes:     " << r.n_ref << " reference, " << r.n_est << " estimated\n";
    std::string section;
    for (const auto& kv : flat_metrics(r)) {
      std::string s = "transcription (mir_eval)", name = kv.first;
      if (name.rfind("velocity.", 0) == 0) s = "transcription_velocity (mir_eval)", name = name.substr(9);
      else if (name.rfind("multi_instrument.", 0) == 0)
        s = "multi-instrument (MT3, program-aware; drums onset-only)", name = name.substr(17);
      else if (name.rfind("reward.", 0) == 0) s = "ABC reward (" + mode_name + ")", name = name.substr(7);
      if (s != section) {
        os << "\n" << s << "\n";
        section = s;
      }
      char line[128];
      std::snprintf(line, sizeof line, "  %-34s %s\n", name.c_str(), fmt(kv.second).c_str());
      os << line;
    }
  } else {
    struct Col {
      const char* head;
      const char* key;
    };
    const Col all_cols[] = {{"F", "F-measure"},
                        {"F_no_off", "F-measure_no_offset"},
                        {"Onset_F", "Onset_F-measure"},
                        {"Offset_F", "Offset_F-measure"},
                        {"AOR", "Average_Overlap_Ratio"},
                        {"Vel_F", "velocity.F-measure"},
                        {"Multi_F", "multi_instrument.F-measure"},
                        {"Reward", "reward.reward"}};
    // Only the columns some file has.
    std::vector<Col> shown;
    for (const auto& c : all_cols) {
      bool any = false;
      for (const auto& r : results) any = any || lookup(flat_metrics(r), c.key).has_value();
      if (any) shown.push_back(c);
    }
    const auto& cols = shown;
    size_t w = 6;
    for (const auto& r : results) w = std::max(w, r.stem.size());
    char buf[256];
    std::snprintf(buf, sizeof buf, "%-*s %7s %7s", static_cast<int>(w), "file", "n_ref", "n_est");
    os << buf;
    for (const auto& c : cols) {
      std::snprintf(buf, sizeof buf, " %9s", c.head);
      os << buf;
    }
    os << "\n";
    auto row = [&](const std::string& name, const std::string& nr, const std::string& ne,
                   const std::vector<std::pair<std::string, double>>& vals) {
      std::snprintf(buf, sizeof buf, "%-*s %7s %7s", static_cast<int>(w), name.c_str(), nr.c_str(), ne.c_str());
      os << buf;
      for (const auto& c : cols) {
        const auto v = lookup(vals, c.key);
        std::snprintf(buf, sizeof buf, " %9s", v ? fmt(*v).substr(0, 8).c_str() : "-");
        os << buf;
      }
      os << "\n";
    };
    size_t tot_ref = 0, tot_est = 0;
    for (const auto& r : results) {
      row(r.stem, r.scored_notes ? std::to_string(r.n_ref) : "-", r.scored_notes ? std::to_string(r.n_est) : "-",
          flat_metrics(r));
      tot_ref += r.n_ref;
      tot_est += r.n_est;
    }
    os << std::string(w + 16 + 10 * cols.size(), '-') << "\n";
    row("mean", "", "", agg.mean);
    row("pooled", std::to_string(tot_ref), std::to_string(tot_est), agg.pooled);
    os << "\n" << results.size() << " pair(s) scored";
    if (!ref_only.empty() || !est_only.empty())
      os << "; unpaired: " << ref_only.size() << " reference-only, " << est_only.size() << " estimate-only";
    os << "\n";
    for (const auto& f : ref_only) os << "  reference only: " << f << "\n";
    for (const auto& f : est_only) os << "  estimate only:  " << f << "\n";
  }
  std::cout << os.str();
}

void print_csv(const std::vector<PairResult>& results, const Aggregate& agg) {
  std::vector<std::string> keys = agg.order;
  for (const auto& kv : agg.pooled)
    if (std::find(keys.begin(), keys.end(), kv.first) == keys.end()) keys.push_back(kv.first);
  std::ostringstream os;
  os << "file,reference,estimate,n_ref,n_est";
  for (const auto& k : keys) os << "," << csv_field(k);
  os << "\n";
  auto row = [&](const std::string& name, const std::string& ref, const std::string& est, const std::string& nr,
                 const std::string& ne, const std::vector<std::pair<std::string, double>>& vals) {
    os << csv_field(name) << "," << csv_field(ref) << "," << csv_field(est) << "," << nr << "," << ne;
    for (const auto& k : keys) {
      os << ",";
      if (auto v = lookup(vals, k)) {
        char buf[40];
        std::snprintf(buf, sizeof buf, "%.17g", *v);
        os << buf;
      }
    }
    os << "\n";
  };
  size_t tot_ref = 0, tot_est = 0;
  for (const auto& r : results) {
    row(r.stem, r.ref_path, r.est_path, r.scored_notes ? std::to_string(r.n_ref) : "",
        r.scored_notes ? std::to_string(r.n_est) : "", flat_metrics(r));
    tot_ref += r.n_ref;
    tot_est += r.n_est;
  }
  row("mean", "", "", "", "", agg.mean);
  row("pooled", "", "", std::to_string(tot_ref), std::to_string(tot_est), agg.pooled);
  std::cout << os.str();
}

// Files of a folder with a supported extension, by stem; duplicates are an error.
std::map<std::string, std::string> files_by_stem(const std::string& dir, const char* flag) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw ConfigError(std::string("score: ") + flag + " " + dir + ": not a folder");
  std::map<std::string, std::string> out;
  const auto paths = list_input_files(dir, false, supported_extension, ec);
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

int run_score(const ScoreOptions& o) {
  if (o.json && o.csv) throw ConfigError("score: choose one of --json and --csv");
  if (o.txt_pitch != "hz" && o.txt_pitch != "midi")
    throw ConfigError("score: --txt-pitch '" + o.txt_pitch + "': expected hz or midi");
  o.metric.validate();
  program_granularity_from_string(o.program_granularity);
  const RewardMode mode = reward_mode_from_string(o.reward_mode);
  const auto gates = parse_gates(o.fail_under);
  const bool dir_mode = !o.ref_dir.empty() || !o.est_dir.empty();
  std::vector<std::tuple<std::string, std::string, std::string>> pairs;  // stem, ref, est
  std::vector<std::string> ref_only, est_only;
  if (dir_mode) {
    if (o.ref_dir.empty() || o.est_dir.empty()) throw ConfigError("score: --ref-dir and --est-dir go together");
    if (!o.files.empty()) throw ConfigError("score: give either REF EST or --ref-dir/--est-dir, not both");
    const auto refs = files_by_stem(o.ref_dir, "--ref-dir");
    const auto ests = files_by_stem(o.est_dir, "--est-dir");
    for (const auto& kv : refs) {
      auto it = ests.find(kv.first);
      if (it == ests.end()) ref_only.push_back(kv.second);
      else pairs.emplace_back(kv.first, kv.second, it->second);
    }
    for (const auto& kv : ests)
      if (!refs.count(kv.first)) est_only.push_back(kv.second);
    for (const auto& f : ref_only) log_warn("score", "no estimate for reference " + f);
    for (const auto& f : est_only) log_warn("score", "no reference for estimate " + f);
    if (pairs.empty()) throw ConfigError("score: no files in " + o.ref_dir + " and " + o.est_dir + " share a stem");
  } else {
    if (o.files.size() != 2) throw ConfigError("score: expected REF EST (or --ref-dir A --est-dir B)");
    pairs.emplace_back(path_stem(o.files[1]), o.files[0], o.files[1]);
  }

  // Every pair is one batch job; a pair that cannot be read or scored fails alone.
  BatchConfig bc;
  bc.component = "score";
  bc.config_error_stops = true;
  Batch batch(bc);
  for (const auto& p : pairs) batch.add(std::get<1>(p) + " / " + std::get<2>(p));
  std::vector<std::optional<PairResult>> scored(pairs.size());
  const BatchSummary summary = batch.run(
      [&](const BatchJob& job, int) {
        const auto& p = pairs[job.index];
        scored[job.index] = score_pair(std::get<0>(p), std::get<1>(p), std::get<2>(p), o, mode);
        for (const auto& n : scored[job.index]->notes) log_info("score", n);
        return JobResult{};
      },
      [](const JobRecord& rec, const BatchProgress&) {
        if (rec.status == JobStatus::Failed) std::fprintf(stderr, "error: %s\n", rec.error.c_str());
      });
  if (summary.fatal) std::rethrow_exception(summary.fatal);
  std::vector<PairResult> results;
  for (auto& r : scored)
    if (r) results.push_back(std::move(*r));
  const auto& failures = summary.failures;
  if (results.empty()) return kExitUsage;  // every pair failed (already reported)
  const Aggregate agg = aggregate(results, o.metric.beta);

  // Gates.
  std::vector<std::string> tripped;
  for (const auto& g : gates) {
    const auto v = lookup(g.pooled ? agg.pooled : agg.mean, g.metric);
    if (!v) {
      std::fprintf(stderr, "error: score: --fail-under %s: no %s aggregate named '%s' for these inputs\n",
                   g.spec.c_str(), g.pooled ? "pooled" : "mean", g.metric.c_str());
      return kExitUsage;
    }
    if (*v < g.value) {
      char buf[256];
      std::snprintf(buf, sizeof buf, "%s%s = %.6f is below %.6f", g.pooled ? "pooled:" : "", g.metric.c_str(), *v,
                    g.value);
      tripped.push_back(buf);
    }
  }

  if (o.json) {
    ojson j;
    j["options"] = {{"onset_tolerance", o.metric.onset_tolerance_s},
                    {"pitch_tolerance", o.metric.pitch_tolerance_cents},
                    {"offset_ratio", o.metric.offset_ratio},
                    {"offset_min_tolerance", o.metric.offset_min_tolerance_s},
                    {"strict", o.metric.strict},
                    {"use_offset", o.metric.use_offset},
                    {"beta", o.metric.beta},
                    {"velocity_tolerance", o.metric.velocity_tolerance},
                    {"program_granularity", o.program_granularity},
                    {"reward_mode", reward_mode_name(mode)}};
    j["files"] = ojson::array();
    for (const auto& r : results) {
      ojson f = {{"stem", r.stem}, {"reference", r.ref_path}, {"estimate", r.est_path}};
      if (r.scored_notes) f["n_ref"] = r.n_ref, f["n_est"] = r.n_est;
      const ojson sections = metrics_json(flat_metrics(r));
      for (const auto& kv : sections.items()) f[kv.key()] = kv.value();
      if (!r.notes.empty()) f["remarks"] = r.notes;
      j["files"].push_back(f);
    }
    j["aggregate"]["mean"] = metrics_json(agg.mean);
    j["aggregate"]["pooled"] = metrics_json(agg.pooled);
    j["unpaired"] = {{"reference_only", ref_only}, {"estimate_only", est_only}};
    j["errors"] = ojson::array();
    for (const auto& f : failures) j["errors"].push_back({{"pair", f.first}, {"error", f.second}});
    j["fail_under"] = {{"tripped", tripped}};
    std::cout << j.dump(2) << "\n";
  } else if (o.csv) {
    print_csv(results, agg);
  } else {
    print_table(results, agg, dir_mode, ref_only, est_only, reward_mode_name(mode));
  }
  for (const auto& t : tripped) std::fprintf(stderr, "fail-under: %s\n", t.c_str());
  if (!failures.empty()) return kExitUsage;
  if (!tripped.empty()) return kExitSomeFailed;
  return kExitOk;
}

}  // namespace

void setup_score(CLI::App& app, std::shared_ptr<GlobalOptions> global) {
  auto o = std::make_shared<ScoreOptions>();
  auto* sub = app.add_subcommand(
      "score",
      "Score transcriptions against ground truth with mir_eval's note metrics (identical results), "
      "MT3's multi-instrument F1 and the ABC reward. Inputs by extension: .mid/.midi, .json (tunescribe "
      "note lists), .txt (mir_eval: onset_s offset_s pitch_Hz [velocity]), .abc.");
  sub->add_option("files", o->files, "REF EST: reference (ground truth) and estimate")->expected(0, 2);
  sub->add_option("--ref-dir", o->ref_dir, "Folder of reference files, paired with --est-dir by file stem");
  sub->add_option("--est-dir", o->est_dir, "Folder of estimated files");
  sub->add_flag("--json", o->json, "JSON on stdout (per file, mean and pooled aggregates; mir_eval key names)");
  sub->add_flag("--csv", o->csv, "CSV on stdout (one row per file, then 'mean' and 'pooled')");
  sub->add_option("--onset-tolerance", o->metric.onset_tolerance_s, "Onset window in seconds")
      ->capture_default_str();
  sub->add_option("--pitch-tolerance", o->metric.pitch_tolerance_cents, "Pitch window in cents")
      ->capture_default_str();
  sub->add_option("--offset-ratio", o->metric.offset_ratio,
                  "Offset window as a fraction of the reference note's duration")
      ->capture_default_str();
  sub->add_option("--offset-min-tolerance", o->metric.offset_min_tolerance_s,
                  "Smallest offset window in seconds")
      ->capture_default_str();
  sub->add_flag("--no-offset", [o](int64_t) { o->metric.use_offset = false; },
                "Ignore offsets (mir_eval offset_ratio=None): the with-offset and Offset_* keys are left out");
  sub->add_flag("--strict", o->metric.strict, "Compare with < instead of <= (mir_eval strict=True)");
  sub->add_option("--beta", o->metric.beta, "F-measure beta (> 0)")->capture_default_str();
  sub->add_option("--velocity-tolerance", o->metric.velocity_tolerance,
                  "Velocity metrics: largest |fitted - reference| velocity on the 0..1 scale (strict <)")
      ->capture_default_str();
  sub->add_option("--txt-pitch", o->txt_pitch,
                  "Unit of the pitch column of .txt files: hz (mir_eval) or midi")
      ->capture_default_str();
  sub->add_option("--reward-mode", o->reward_mode,
                  "ABC reward: corrected (default, our fixes) or flynn2024 (the article's code, quirks included)")
      ->capture_default_str();
  sub->add_option("--fail-under", o->fail_under,
                  "METRIC=VALUE: exit 1 when the aggregate METRIC is below VALUE (repeatable). METRIC is a "
                  "mir_eval key (F-measure_no_offset), velocity.<key>, multi_instrument.<key> or "
                  "reward.<pitch|metre|tempo|instrument|total|reward>; mean over files, or prefix pooled:")
      ->allow_extra_args(false);
  sub->add_option("--program-granularity", o->program_granularity,
                  "Multi-instrument F1: programs must match exactly (full), by GM family (midi_class) or not "
                  "at all (flat); drums always onset-only")
      ->capture_default_str();
  sub->add_flag("--no-sustain", o->no_sustain, "MIDI inputs: do not extend notes while the sustain pedal is down");
  sub->footer(
      "Exit codes: 0 scored, 1 a --fail-under gate tripped, 2 usage error or an input that could not be "
      "read (the file and reason are printed).");
  sub->callback([o, global]() {
    apply_global_options(*global);
    int rc = kExitOk;
    try {
      rc = run_score(*o);
    } catch (const Error& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      rc = kExitUsage;
    }
    set_exit_code(rc);
  });
}

}  // namespace tunescribe::cli
