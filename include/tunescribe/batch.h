// batch.h — runs one job per input file, resumably, on a pool of workers.
// What it does: files and folders → jobs (sorted, de-duplicated, shard K of N), --skip-existing and
// overwrite refusal, `jobs` worker threads, atomic output writes, a stop flag (set by the CLI's signal
// handler), a progress callback per finished job and a summary (done, skipped, failures, not done).
// What it does not: know what a job computes, print, install signal handlers or choose exit codes.
#pragma once

#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace tunescribe {

struct BatchConfig {
  std::string component = "batch";      // names the caller in messages ("transcribe")
  std::string out_dir;                  // outputs go here; "" = beside each input
  std::vector<std::string> output_exts; // one output per extension: <dir>/<input stem>.<ext>; empty = none
  std::string out_file;                 // one input, one output written exactly here (output_exts: one
                                        // entry, out_dir ""); collect() refuses more than one input
  bool recursive = false;               // folders: descend into subfolders (at most 64 deep)
  bool force = false;                   // overwrite existing outputs
  bool skip_existing = false;           // skip an input whose outputs all exist
  int jobs = 1;                         // worker threads, 1..256
  std::string shard;                    // "K/N" (1 <= K <= N) or "" = every input
  bool config_error_stops = false;      // a ConfigError from a job stops the batch (else it fails that input)
  // Throws ConfigError naming the command-line flag (--force, --skip-existing, --shard, --jobs, -o).
  void validate() const;
};

// "K/N" → {K, N}; ConfigError naming --shard unless 1 <= K <= N.
std::pair<int, int> parse_shard(const std::string& spec, const std::string& component = "batch");

// Regular files below `dir` (following links) that `accept` takes, sorted by path; folders are
// descended into when `recursive` (at most 64 levels). Listing errors go to `ec`; what was listed
// before the error is returned.
std::vector<std::string> list_input_files(const std::string& dir, bool recursive,
                                          const std::function<bool(const std::string&)>& accept,
                                          std::error_code& ec);

struct BatchJob {
  std::string input;                 // the file (or what the job is about) as records name it
  std::vector<std::string> outputs;  // output paths, one per BatchConfig::output_exts
  size_t index = 0;                  // position in Batch::jobs()
};

// What a job hands back; the batch writes `outputs` (one per output path) atomically.
struct JobResult {
  std::vector<std::string> outputs;
  nlohmann::json details = nlohmann::json::object();  // in the job's record and its "succeeded" entry
  nlohmann::json record_extra = nlohmann::json::object();  // in the record only (kept when a write fails)
  double media_seconds = 0.0;        // seconds of input media (summed as audio_seconds)
  // More files (path, bytes) beyond the one per extension, e.g. sheet-music pages 2.. (STEM-2.svg):
  // refused like the outputs when they exist (before anything is written), then written atomically.
  std::vector<std::pair<std::string, std::string>> extra_outputs;
  // Files of an earlier run that this result replaces without rewriting (pages beyond this run's
  // last, e.g. STEM-3.svg when the tune now has two pages): removed after the outputs are written,
  // with --force only (without it the outputs were new, so such files are not this input's).
  std::vector<std::string> stale_outputs;
};

// Thrown by a job function to abandon its input because the batch is stopping (the input is "not done").
struct BatchStopped {};

enum class JobStatus { Ok, Skipped, Failed };

// One finished job, as the progress callback sees it.
struct JobRecord {
  const BatchJob* job = nullptr;
  JobStatus status = JobStatus::Ok;
  std::string error;                 // Failed: the reason
  nlohmann::json json;               // {"input", "status", ["outputs", details...] | ["error"]}
};

struct BatchProgress {
  size_t finished = 0, total = 0;    // jobs finished (done, skipped or failed) / all jobs
  double elapsed_s = 0.0;
  double media_seconds = 0.0;        // summed over the jobs done so far
};

struct BatchSummary {
  size_t ok = 0, skipped = 0, inputs = 0;
  size_t finished = 0;               // jobs done, skipped or failed (of `inputs`)
  std::vector<std::pair<std::string, std::string>> failures;  // input, reason (folders that could not be listed first)
  std::vector<std::string> skipped_inputs, not_done;          // not done: neither finished nor failed
  nlohmann::json succeeded = nlohmann::json::array();         // {"input", "outputs", details...}
  double seconds = 0.0, media_seconds = 0.0;
  int stop_signal = 0;               // the stop flag's value when the run ended (0: not stopped)
  std::string shard;
  int workers = 1;
  std::string fatal_error;           // the error that stopped the batch ("" if none)
  std::exception_ptr fatal;          // the same, to rethrow

  std::string stop_name() const;     // "SIGINT", "SIGTERM" or ""
  // {ok, skipped, failed, not_done, inputs, seconds, audio_seconds}
  nlohmann::json counts_json() const;
  nlohmann::json failures_json() const;  // [{"input", "error"}]
  // The summary file: counts, interrupted, fatal_error, shard, jobs and the lists of inputs.
  nlohmann::json to_json() const;
  std::string line() const;          // "N done, N skipped, N failed"
};

using JobFunction = std::function<JobResult(const BatchJob& job, int worker)>;
// Called once per finished job (not for abandoned ones), one call at a time.
using ProgressCallback = std::function<void(const JobRecord& record, const BatchProgress& progress)>;

class Batch {
 public:
  explicit Batch(BatchConfig cfg);  // validates

  // Creates the output folder (OutputError), expands `inputs` (folders → the files `accept` takes;
  // `kinds` names them in the warning for an empty folder, e.g. "audio or MIDI files"), keeps the
  // shard. ConfigError when nothing is left to do and no shard was asked for.
  void collect(const std::vector<std::string>& inputs, const std::function<bool(const std::string&)>& accept,
               const std::string& kinds);
  // Adds one job as is (no de-duplication, no outputs unless output_exts are set).
  void add(const std::string& input);

  const std::vector<BatchJob>& jobs() const { return jobs_; }
  // Inputs collect() already failed (folders that could not be listed); first in the summary's failures.
  size_t collect_failures() const { return collect_failures_.size(); }
  int workers() const;  // threads run() starts: min(jobs, number of jobs), at least 1
  bool stop_requested() const;

  // Runs `job` for every job on workers() threads. A job that throws ModelError or
  // NotAvailableError (or ConfigError with config_error_stops) stops the batch: no new job
  // starts, the summary names it (fatal / fatal_error). Any other exception fails that input only.
  // `stop` (may be null): non-zero asks the batch to stop; jobs may poll stop_requested() and throw
  // BatchStopped to abandon their input.
  BatchSummary run(const JobFunction& job, const ProgressCallback& progress = {},
                   const std::atomic<int>* stop = nullptr);

 private:
  struct RunState;
  void work(RunState& st, const JobFunction& job, const ProgressCallback& progress, int worker);
  void add_job(const std::string& input);
  BatchSummary summarise(RunState& st);

  BatchConfig cfg_;
  std::vector<BatchJob> jobs_;
  std::vector<std::pair<std::string, std::string>> collect_failures_;
  const std::atomic<int>* stop_ = nullptr;
};

}  // namespace tunescribe
