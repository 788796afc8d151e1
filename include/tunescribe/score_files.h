// score_files.h — scores files of notes against reference files, as `tunescribe score` does it.
// What it does: pairs a reference with an estimate (two files, or two folders by file stem), reads
// both, computes every metric that applies (mir_eval notes, velocity, MT3 multi-instrument F1, the
// ABC reward; a pair that fails does not stop the others), mean and pooled aggregates, --fail-under gates.
// What it does not: print tables, CSV or JSON (the CLI does) or define the metrics (score.h, reward.h).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tunescribe/reward.h"
#include "tunescribe/score.h"

namespace tunescribe {

struct ScoreFilesConfig {
  TranscriptionOptions metric;
  std::string txt_pitch = "hz";              // pitch column of .txt files: hz | midi
  std::string reward_mode = "corrected";     // corrected | flynn2024
  std::string program_granularity = "full";  // full | midi_class | flat
  std::vector<std::string> fail_under;       // METRIC=VALUE, optionally pooled:/mean: prefixed
  bool apply_sustain = true;                 // MIDI: extend notes while the sustain pedal is down
  // Throws ConfigError naming the flag: --txt-pitch, the metric options, --program-granularity,
  // --reward-mode, --fail-under (in that order).
  void validate() const;
};

struct ScorePair {
  std::string stem, ref_path, est_path;
};

struct ScorePairing {
  std::vector<ScorePair> pairs;
  std::vector<std::string> ref_only, est_only;  // folder mode: files without a partner
  bool folders = false;                         // paired by stem from two folders
};

// REF EST (two files) or --ref-dir/--est-dir (files of the two folders with a note-file extension
// paired by stem; unpaired files are warned about). ConfigError for a wrong combination, a folder
// with two files of one stem, or folders that share no stem.
ScorePairing pair_score_inputs(const std::vector<std::string>& files, const std::string& ref_dir,
                               const std::string& est_dir);

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

// Reads both files and computes every metric that applies. InputError when a file cannot be read
// or nothing could be scored.
PairResult score_pair(const ScorePair& pair, const ScoreFilesConfig& cfg);

struct ScoreRun {
  std::vector<PairResult> results;                            // the pairs scored, in order
  std::vector<std::pair<std::string, std::string>> failures;  // "REF / EST", reason
};
// Scores every pair (a Batch of one job per pair): a pair that fails is reported through
// `on_failure` at once and does not stop the others; a ConfigError stops the run (rethrown).
// Remarks of scored pairs are logged.
ScoreRun score_pairs(const std::vector<ScorePair>& pairs, const ScoreFilesConfig& cfg,
                     const std::function<void(const std::string& error)>& on_failure = {});

using FlatMetrics = std::vector<std::pair<std::string, double>>;
// Flat metric names: transcription keys as mir_eval names them, "velocity.<key>",
// "multi_instrument.<key>", "reward.<component>".
FlatMetrics flat_metrics(const PairResult& r);
std::optional<double> lookup_metric(const FlatMetrics& v, const std::string& key);

struct ScoreAggregate {
  FlatMetrics mean;    // over files having the metric
  FlatMetrics pooled;  // over all notes (match counts summed, then the metrics)
  std::vector<std::string> order;
};
ScoreAggregate aggregate_scores(const std::vector<PairResult>& results, double beta);

// --fail-under: the gates that trip ("F-measure = 0.5 is below 0.9"). ConfigError when a gate
// names a metric that no aggregate has.
std::vector<std::string> tripped_gates(const std::vector<std::string>& fail_under, const ScoreAggregate& agg);

}  // namespace tunescribe
