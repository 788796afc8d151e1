// `tunescribe score`: mir_eval note metrics (+ velocity, MT3 multi-instrument
// F1) and the ABC reward for one REF/EST pair or two folders paired by stem.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>

#include "commands.h"
#include "tunescribe/log.h"
#include "tunescribe/score_files.h"
#include "tunescribe/score_report.h"

namespace tunescribe::cli {

struct ScoreOptions {
  std::vector<std::string> files;
  std::string ref_dir, est_dir;
  bool json = false, csv = false;
  std::string report_path;  // --report FILE.html (score_report.h)
  bool force = false;       // --force: overwrite an existing report
  ScoreFilesConfig cfg;  // metric options, --txt-pitch, --reward-mode, --program-granularity, --fail-under, --no-sustain
};

namespace {

using ojson = nlohmann::ordered_json;

// JSON sections keyed by module, with mir_eval's names.
ojson metrics_json(const FlatMetrics& flat) {
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

void print_table(const std::vector<PairResult>& results, const ScoreAggregate& agg, bool dir_mode,
                 const std::vector<std::string>& ref_only, const std::vector<std::string>& est_only,
                 const std::string& mode_name) {
  std::ostringstream os;
  if (!dir_mode && results.size() == 1) {
    const auto& r = results.front();
    os << "reference: " << r.ref_path << "\nestimate:  " << r.est_path << "\n";
    if (r.scored_notes) os << "notes:     " << r.n_ref << " reference, " << r.n_est << " estimated\n";
    std::string section;
    for (const auto& kv : flat_metrics(r)) {
      std::string s = "transcription (mir_eval)", name = kv.first, remark;
      if (name.rfind("velocity.", 0) == 0) s = "transcription_velocity (mir_eval)", name = name.substr(9);
      else if (name.rfind("multi_instrument.", 0) == 0)
        s = "multi-instrument (MT3, program-aware; drums onset-only)", name = name.substr(17);
      else if (name.rfind("reward.", 0) == 0) {
        s = "ABC reward (" + mode_name + "): component losses and their weighted total, 0 = perfect; reward = 1 - total";
        name = name.substr(7);
        remark = name == "reward" ? "  (higher is better)" : "  (loss: lower is better)";
      }
      if (s != section) {
        os << "\n" << s << "\n";
        section = s;
      }
      char line[160];
      std::snprintf(line, sizeof line, "  %-34s %s%s\n", name.c_str(), fmt(kv.second).c_str(), remark.c_str());
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
      for (const auto& r : results) any = any || lookup_metric(flat_metrics(r), c.key).has_value();
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
                   const FlatMetrics& vals) {
      std::snprintf(buf, sizeof buf, "%-*s %7s %7s", static_cast<int>(w), name.c_str(), nr.c_str(), ne.c_str());
      os << buf;
      for (const auto& c : cols) {
        const auto v = lookup_metric(vals, c.key);
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

void print_csv(const std::vector<PairResult>& results, const ScoreAggregate& agg) {
  std::vector<std::string> keys = agg.order;
  for (const auto& kv : agg.pooled)
    if (std::find(keys.begin(), keys.end(), kv.first) == keys.end()) keys.push_back(kv.first);
  std::ostringstream os;
  os << "file,reference,estimate,n_ref,n_est";
  for (const auto& k : keys) os << "," << csv_field(k);
  os << "\n";
  auto row = [&](const std::string& name, const std::string& ref, const std::string& est, const std::string& nr,
                 const std::string& ne, const FlatMetrics& vals) {
    os << csv_field(name) << "," << csv_field(ref) << "," << csv_field(est) << "," << nr << "," << ne;
    for (const auto& k : keys) {
      os << ",";
      if (auto v = lookup_metric(vals, k)) {
        char buf[40];  // the shortest text that reads back as the same double (no %.17g noise)
        const auto res = std::to_chars(buf, buf + sizeof buf, *v);
        os << std::string_view(buf, static_cast<size_t>(res.ptr - buf));
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

void print_json(const ScoreOptions& o, const ScorePairing& pairing, const ScoreRun& run, const ScoreAggregate& agg,
                const std::vector<std::string>& tripped) {
  const auto& m = o.cfg.metric;
  ojson j;
  j["options"] = {{"onset_tolerance", m.onset_tolerance_s},
                  {"pitch_tolerance", m.pitch_tolerance_cents},
                  {"offset_ratio", m.offset_ratio},
                  {"offset_min_tolerance", m.offset_min_tolerance_s},
                  {"strict", m.strict},
                  {"use_offset", m.use_offset},
                  {"beta", m.beta},
                  {"velocity_tolerance", m.velocity_tolerance},
                  {"program_granularity", o.cfg.program_granularity},
                  {"reward_mode", reward_mode_name(reward_mode_from_string(o.cfg.reward_mode))}};
  j["files"] = ojson::array();
  for (const auto& r : run.results) {
    ojson f = {{"stem", r.stem}, {"reference", r.ref_path}, {"estimate", r.est_path}};
    if (r.scored_notes) f["n_ref"] = r.n_ref, f["n_est"] = r.n_est;
    const ojson sections = metrics_json(flat_metrics(r));
    for (const auto& kv : sections.items()) f[kv.key()] = kv.value();
    if (!r.notes.empty()) f["remarks"] = r.notes;
    j["files"].push_back(f);
  }
  j["aggregate"]["mean"] = metrics_json(agg.mean);
  j["aggregate"]["pooled"] = metrics_json(agg.pooled);
  j["unpaired"] = {{"reference_only", pairing.ref_only}, {"estimate_only", pairing.est_only}};
  j["errors"] = ojson::array();
  for (const auto& f : run.failures) j["errors"].push_back({{"pair", f.first}, {"error", f.second}});
  j["fail_under"] = {{"tripped", tripped}};
  std::cout << j.dump(2) << "\n";
}

int run_score(const ScoreOptions& o) {
  if (o.json && o.csv) throw ConfigError("score: choose one of --json and --csv");
  o.cfg.validate();
  const ScorePairing pairing = pair_score_inputs(o.files, o.ref_dir, o.est_dir);
  if (!o.report_path.empty()) check_report_path(o.report_path, o.force);  // before any work
  const ScoreRun run = score_pairs(pairing.pairs, o.cfg, [](const std::string& error) {
    std::fprintf(stderr, "error: %s\n", error.c_str());
  });
  if (!o.report_path.empty())  // also when pairs failed: they are listed in it
    log_info("score", "report: " + o.report_path + " (" +
                          std::to_string(write_score_report(o.report_path, pairing, run, o.cfg)) + " bytes)");
  if (run.results.empty()) return kExitUsage;  // every pair failed (already reported)
  const ScoreAggregate agg = aggregate_scores(run.results, o.cfg.metric.beta);
  const std::vector<std::string> tripped = tripped_gates(o.cfg.fail_under, agg);
  if (o.json) print_json(o, pairing, run, agg, tripped);
  else if (o.csv) print_csv(run.results, agg);
  else print_table(run.results, agg, pairing.folders, pairing.ref_only, pairing.est_only,
                   reward_mode_name(reward_mode_from_string(o.cfg.reward_mode)));
  for (const auto& t : tripped) std::fprintf(stderr, "fail-under: %s\n", t.c_str());
  if (!run.failures.empty()) return kExitUsage;
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
      "note lists), .txt (mir_eval: onset_s offset_s pitch_Hz [velocity]), .csv (note events as transcribe "
      "--format csv writes them), .abc.");
  sub->add_option("files", o->files, "REF EST: reference (ground truth) and estimate")->expected(0, 2);
  sub->add_option("--ref-dir", o->ref_dir, "Folder of reference files, paired with --est-dir by file stem");
  sub->add_option("--est-dir", o->est_dir, "Folder of estimated files");
  sub->add_flag("--json", o->json, "JSON on stdout (per file, mean and pooled aggregates; mir_eval key names)");
  sub->add_flag("--csv", o->csv, "CSV on stdout (one row per file, then 'mean' and 'pooled')");
  sub->add_option("--report", o->report_path,
                  "Also write one self-contained HTML page (no network): aggregate table, per-file table sortable "
                  "by any metric, per-file piano-roll overlays of matched / missed / extra notes, errors by pitch "
                  "and instrument, failed pairs with their reason (~3 MB for 500 pieces of 30 s)");
  sub->add_flag("--force", o->force, "Overwrite an existing --report file");
  sub->add_option("--onset-tolerance", o->cfg.metric.onset_tolerance_s, "Onset window in seconds")
      ->capture_default_str();
  sub->add_option("--pitch-tolerance", o->cfg.metric.pitch_tolerance_cents, "Pitch window in cents")
      ->capture_default_str();
  sub->add_option("--offset-ratio", o->cfg.metric.offset_ratio,
                  "Offset window as a fraction of the reference note's duration")
      ->capture_default_str();
  sub->add_option("--offset-min-tolerance", o->cfg.metric.offset_min_tolerance_s,
                  "Smallest offset window in seconds")
      ->capture_default_str();
  sub->add_flag("--no-offset", [o](int64_t) { o->cfg.metric.use_offset = false; },
                "Ignore offsets (mir_eval offset_ratio=None): the with-offset and Offset_* keys are left out");
  sub->add_flag("--strict", o->cfg.metric.strict, "Compare with < instead of <= (mir_eval strict=True)");
  sub->add_option("--beta", o->cfg.metric.beta, "F-measure beta (> 0)")->capture_default_str();
  sub->add_option("--velocity-tolerance", o->cfg.metric.velocity_tolerance,
                  "Velocity metrics: largest |fitted - reference| velocity on the 0..1 scale (strict <)")
      ->capture_default_str();
  sub->add_option("--txt-pitch", o->cfg.txt_pitch,
                  "Unit of the pitch column of .txt files: hz (mir_eval) or midi")
      ->capture_default_str();
  sub->add_option("--reward-mode", o->cfg.reward_mode,
                  "ABC reward: corrected (default, our fixes) or flynn2024 (the article's code, quirks included)")
      ->capture_default_str();
  sub->add_option("--fail-under", o->cfg.fail_under,
                  "METRIC=VALUE: exit 1 when the aggregate METRIC is below VALUE (repeatable). METRIC is a "
                  "mir_eval key (F-measure_no_offset), velocity.<key>, multi_instrument.<key> or "
                  "reward.<pitch|metre|tempo|instrument|total|reward>; mean over files, or prefix pooled:")
      ->allow_extra_args(false);
  sub->add_option("--program-granularity", o->cfg.program_granularity,
                  "Multi-instrument F1: programs must match exactly (full), by GM family (midi_class) or not "
                  "at all (flat); drums always onset-only")
      ->capture_default_str();
  sub->add_flag("--no-sustain", [o](int64_t) { o->cfg.apply_sustain = false; }, "MIDI inputs: do not extend notes while the sustain pedal is down");
  sub->footer(
      "Examples:\n"
      "  tunescribe score truth.mid out/song.mid                  (one pair: a table of every metric)\n"
      "  tunescribe score truth.txt out/song.txt                  (mir_eval .txt from transcribe --format txt)\n"
      "  tunescribe score truth.mid out/song.csv --json           (CSV note events; JSON on stdout)\n"
      "  tunescribe score --ref-dir gt/ --est-dir out/ --csv      (folders paired by file stem)\n"
      "  tunescribe score --ref-dir truth/ --est-dir out/ --report report.html   (HTML report with piano rolls)\n"
      "  tunescribe score --ref-dir gt/ --est-dir out/ --fail-under F-measure_no_offset=0.9\n"
      "  tunescribe score tune.abc out/song.abc --reward-mode flynn2024\n"
      "In the ABC reward, pitch, metre, tempo, instrument and total are losses (lower is better); reward = 1 - total.\n"
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
