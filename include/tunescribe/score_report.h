// score_report.h — one self-contained HTML page of a `tunescribe score` run (--report FILE.html).
// What it does: the aggregate table (every mean and pooled metric: mir_eval keys, velocity,
// multi-instrument F1, the ABC reward where an ABC file took part), a per-file table sortable by
// any column (inline JS; all metrics behind a "show all" switch), error counts by pitch and by
// instrument (all files, and the worst pitches per file), the pairs that failed with their reason
// and the unpaired files, and per file a piano-roll overlay of reference and estimate: matched
// notes, misses and false alarms in three colours. The matching is mir_eval's onset + pitch
// matching without the offset criterion (match_notes, MatchKind::NoteNoOffset: the pairs behind
// Precision_no_offset / Recall_no_offset), so the counts drawn are the JSON's numbers
// (matched = Recall_no_offset x n_ref). The notes are re-read from the files with the scoring's
// options. Inline SVG (paths in centiseconds × semitones, ~10 bytes a note), inline CSS and JS, no
// network. The inline script also checks on load that the notes drawn match the counts and
// records the result as data-* attributes (data-check, data-drawn) for tests and readers.
// #sort=COLUMN[-desc] in the URL sorts the file table on load.
// What it does not: compute the metrics (score_files.h) or decide the exit code.
// Size: about 3 MB for 500 pieces of 30 s (docs/outputs.md has the measurement).
#pragma once

#include <cstddef>
#include <string>

#include "tunescribe/score_files.h"

namespace tunescribe {

struct ScoreReportConfig {
  std::string title = "tunescribe score report";
  size_t max_overlay_notes = 50000;  // a pair with more notes (ref + est) gets no overlay, only counts (100..10^7)
  void validate() const;             // throws ConfigError
};

// The page. `cfg` is the scoring's configuration (file reading options, tolerances).
std::string build_score_report(const ScorePairing& pairing, const ScoreRun& run, const ScoreFilesConfig& cfg,
                               const ScoreReportConfig& rc = {});

// Before scoring: OutputError when `path` exists and !force ("score: --report PATH: exists (use
// --force to overwrite)") or is a folder; ConfigError when it is empty.
void check_report_path(const std::string& path, bool force);
// build_score_report written atomically (never half-written); returns the size in bytes.
size_t write_score_report(const std::string& path, const ScorePairing& pairing, const ScoreRun& run,
                          const ScoreFilesConfig& cfg, const ScoreReportConfig& rc = {});

}  // namespace tunescribe
