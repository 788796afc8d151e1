// `tunescribe transcribe`: audio or MIDI files/folders → .mid / .json (and .abc).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "commands.h"
#include "tunescribe/abc_writer.h"
#include "tunescribe/audio.h"
#include "tunescribe/batch.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/log.h"
#include "tunescribe/midi.h"
#include "tunescribe/notes.h"
#include "tunescribe/transcriber.h"

namespace fs = std::filesystem;

namespace tunescribe::cli {

struct TranscribeOptions {
  std::vector<std::string> inputs;
  BatchConfig batch;              // -o, -r, --force, --skip-existing, --jobs, --shard
  std::string formats = "abc,mid,json";
  double tempo_bpm = 0.0;         // ABC: 0 = estimate
  std::string meter, key;         // ABC: "" = estimate
  std::string title;              // ABC T:; "" = from the input file name
  int bars_per_line = 4;
  bool ignore_midi_meta = false;
  std::string model_dir;
  bool json = false;
  bool no_sustain = false;
  int threads = 2;
  int batch_size = 8;
  std::string summary_path;       // JSON summary file or empty
  std::string decoder = "auto";   // auto | tokens | frames
  std::string resample = "auto";  // auto | best | medium | fast
  // Frames decoder settings; NaN = not given (the model's "decoding" values apply).
  double onset_threshold = NAN, frame_threshold = NAN, min_note_ms = NAN, min_freq_hz = NAN, max_freq_hz = NAN;
};

namespace {

std::vector<std::string> parse_formats(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string f;
  while (std::getline(ss, f, ',')) {
    if (f.empty()) continue;
    if (f != "mid" && f != "json" && f != "abc")
      throw ConfigError("transcribe: --format: unknown format '" + f + "' (choose from mid, json, abc)");
    if (std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
  }
  if (out.empty()) throw ConfigError("transcribe: --format is empty");
  return out;
}

bool is_supported_input(const std::string& p) { return is_audio_path(p) || is_midi_path(p); }

// Signals: the first SIGINT/SIGTERM asks the batch to stop (workers finish or
// abandon their current input at the next segment batch, no new input starts);
// a second one removes the temporary files of writes in progress and exits at
// once with 128 + signal.
std::atomic<int> g_stop_signal{0};

extern "C" void on_stop_signal(int sig) {
  if (g_stop_signal.load() != 0) {
    remove_pending_temp_files();
    static const char msg[] = "\ntranscribe: second signal: stopped at once (temporary files removed, no summary)\n";
    ssize_t ignored = ::write(2, msg, sizeof msg - 1);
    (void)ignored;
    ::_exit(128 + sig);
  }
  g_stop_signal.store(sig);
}

struct SignalScope {
  struct sigaction old_int {}, old_term {};
  SignalScope() {
    g_stop_signal.store(0);
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
  }
  ~SignalScope() {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
  }
};

// The library's decoder settings from the flags (NaN = not given).
void set_decoder_options(const TranscribeOptions& o, TranscriberConfig& tc) {
  tc.decoder = o.decoder;
  auto set = [](double v, std::optional<double>& field) {
    if (!std::isnan(v)) field = v;
  };
  set(o.onset_threshold, tc.frames.onset_threshold);
  set(o.frame_threshold, tc.frames.frame_threshold);
  set(o.min_note_ms, tc.frames.min_note_ms);
  set(o.min_freq_hz, tc.frames.min_freq_hz);
  set(o.max_freq_hz, tc.frames.max_freq_hz);
}

}  // namespace

static int run_transcribe(const TranscribeOptions& o, const GlobalOptions& g) {
  apply_global_options(g);
  {
    TranscriberConfig check;  // reject bad --decoder / frames settings before any work
    set_decoder_options(o, check);
    check.validate();
  }
  BatchConfig bc = o.batch;
  const auto formats = parse_formats(o.formats);
  bc.output_exts = formats;
  {
    AbcWriterConfig check;  // reject bad --meter/--key/--tempo before any work
    check.tempo_bpm = o.tempo_bpm;
    check.meter = o.meter;
    check.key = o.key;
    check.bars_per_line = o.bars_per_line;
    check.title = o.title;
    check.validate();
  }
  Batch batch(bc);
  batch.collect(expand_stdin_paths(o.inputs), is_supported_input, "audio or MIDI files");
  const auto& jobs = batch.jobs();

  // Threads: `jobs` file workers, each with its own Transcriber whose model
  // runs `threads` batch-split workers (process-wide setting). Keep the product
  // within the machine's cores.
  const int hw = std::max(1u, std::thread::hardware_concurrency());
  int n_workers = batch.workers();
  int model_threads_n = o.threads;
  bool any_audio = std::any_of(jobs.begin(), jobs.end(), [](const BatchJob& j) { return is_audio_path(j.input); });
  if (any_audio && n_workers * model_threads_n > hw) {
    int t = std::max(1, hw / n_workers);
    log_warn("transcribe", "--jobs " + std::to_string(n_workers) + " x --threads " + std::to_string(model_threads_n) +
                               " exceeds the " + std::to_string(hw) + " hardware threads: using --threads " +
                               std::to_string(t));
    model_threads_n = t;
    if (n_workers > hw) log_warn("transcribe", "--jobs " + std::to_string(n_workers) + " exceeds the hardware threads; expect slowdowns");
  }

  SignalScope signals;
  MidiReadOptions midi_opt;
  midi_opt.apply_sustain = !o.no_sustain;
  std::vector<std::unique_ptr<Transcriber>> transcribers(n_workers);  // created on a worker's first audio input
  auto job_fn = [&](const BatchJob& job, int worker) {
    JobResult res;
    NoteSequence seq;
    double dur = 0.0;
    if (is_midi_path(job.input)) {
      seq = read_midi_file(job.input, midi_opt);
      dur = seq.end_time();
    } else if (is_audio_path(job.input)) {
      auto& transcriber = transcribers[worker];
      if (!transcriber) {
        TranscriberConfig tc;
        tc.model_dir = o.model_dir;
        tc.n_threads = model_threads_n;
        tc.batch_size = o.batch_size;
        set_decoder_options(o, tc);
        try {
          transcriber = std::make_unique<Transcriber>(tc);
        } catch (const ConfigError& e) {  // e.g. --decoder frames on a model without heads: stops the batch
          throw NotAvailableError(e.what());
        }
      }
      AudioConfig ac;
      ac.target_rate_hz = transcriber->sample_rate_hz();
      ac.resample_quality = o.resample == "best"     ? 0
                            : o.resample == "medium" ? 1
                            : o.resample == "fast"   ? 2
                                                     : transcriber->preferred_resample_quality();
      // Streamed: decoded, resampled and transcribed one segment at a
      // time, so memory does not grow with the recording's length.
      AudioStream audio(job.input, ac);
      seq = transcriber->transcribe(audio, [&](int, int) {
        if (batch.stop_requested()) throw BatchStopped{};
      });
      dur = audio.duration_s();
      seq.source = job.input;
    } else {
      throw InputError(job.input + ": unsupported file type (expected audio: .wav .flac .ogg .aiff, or MIDI: .mid)");
    }
    seq.sort();
    // Render every output before writing any (the batch writes each atomically).
    res.outputs.resize(formats.size());
    for (size_t k = 0; k < formats.size(); ++k) {
      const auto& f = formats[k];
      if (f == "mid") {
        auto b = write_midi_bytes(seq);
        res.outputs[k].assign(b.begin(), b.end());
      } else if (f == "abc") {
        AbcWriterConfig ac;
        ac.title = o.title.empty() ? abc_title_from_path(job.input) : o.title;
        ac.tempo_bpm = o.tempo_bpm;
        ac.meter = o.meter;
        ac.key = o.key;
        ac.bars_per_line = o.bars_per_line;
        ac.use_midi_metadata = !o.ignore_midi_meta;
        AbcTune tune = write_abc(seq, ac);
        res.outputs[k] = std::move(tune.text);
        res.record_extra["abc"] = {{"meter", tune.meter}, {"key", tune.key}, {"tempo_bpm", tune.tempo_bpm}, {"bars", tune.bars}};
      } else if (f == "json") {
        nlohmann::json j = notes_to_json(seq);
        j["input"] = job.input;
        res.outputs[k] = j.dump(1) + "\n";
      }
    }
    res.details = {{"notes", seq.notes.size()}, {"duration_s", dur}};
    res.media_seconds = dur;
    return res;
  };

  const bool progress = log_level() <= LogLevel::Info;
  auto report = [&](const JobRecord& rec, const BatchProgress& p) {
    if (rec.status == JobStatus::Failed) log_error("transcribe", rec.error);
    if (o.json) std::cout << rec.json.dump() << std::endl;
    if (progress && rec.status != JobStatus::Skipped) {
      std::fprintf(stderr, "\r[transcribe] %zu/%zu files, %.1f audio s/s   ", p.finished, p.total,
                   p.elapsed_s > 0 ? p.media_seconds / p.elapsed_s : 0.0);
      if (p.finished == p.total) std::fprintf(stderr, "\n");
    }
  };
  const BatchSummary s = batch.run(job_fn, report, &g_stop_signal);

  if (!o.summary_path.empty()) {
    nlohmann::json file = s.to_json();
    file["threads"] = model_threads_n;
    try {
      write_file_atomic(o.summary_path, file.dump(1) + "\n");
    } catch (const Error& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
    }
  }
  if (o.json) {
    nlohmann::json j = {{"summary", s.counts_json()}};
    j["summary"]["failures"] = s.failures_json();
    if (s.stop_signal != 0) j["summary"]["interrupted"] = s.stop_name();
    std::cout << j.dump() << std::endl;
  }
  if (progress && s.finished > 0 && s.finished != s.inputs) std::fprintf(stderr, "\n");
  if (s.fatal) std::rethrow_exception(s.fatal);
  if (s.stop_signal != 0) {
    // Always shown, even with --quiet: the user must know the batch is incomplete.
    std::fprintf(stderr, "transcribe: interrupted by %s: %s, %zu not done (rerun with --skip-existing to resume)\n",
                 s.stop_name().c_str(), s.line().c_str(), s.not_done.size());
  } else {
    log_info("transcribe", s.line());
  }
  for (auto& f : s.failures) std::fprintf(stderr, "failed: %s: %s\n", f.first.c_str(), f.second.c_str());
  if (s.stop_signal != 0) return 128 + s.stop_signal;
  return s.failures.empty() ? kExitOk : kExitSomeFailed;
}

void setup_transcribe(CLI::App& app, std::shared_ptr<GlobalOptions> global) {
  auto opt = std::make_shared<TranscribeOptions>();
  opt->batch.component = "transcribe";
  auto* sub = app.add_subcommand("transcribe", "Transcribe audio (WAV/FLAC/OGG/AIFF) or MIDI files to MIDI/JSON notes");
  sub->add_option("inputs", opt->inputs, "Input files or folders; '-' reads paths from stdin, one per line")->required();
  sub->add_option("-o,--output-dir", opt->batch.out_dir, "Output folder (default: beside each input)");
  sub->add_option("-f,--format", opt->formats, "Comma-separated outputs: abc, mid, json")->capture_default_str();
  sub->add_option("-m,--model", opt->model_dir, "Model directory (config.json + model.safetensors); default: the shipped model");
  sub->add_flag("-r,--recursive", opt->batch.recursive, "Descend into subfolders of folder inputs");
  sub->add_flag("--force", opt->batch.force, "Overwrite existing outputs");
  sub->add_flag("--skip-existing", opt->batch.skip_existing, "Skip inputs whose outputs all exist (resumable batches)");
  sub->add_flag("--json", opt->json, "Print one JSON object per input and a summary object on stdout");
  sub->add_option("--tempo", opt->tempo_bpm, "ABC: tempo in beats per minute (0 = estimate from the notes)")
      ->capture_default_str()->check(CLI::Range(0.0, 400.0));
  sub->add_option("--meter", opt->meter, "ABC: meter such as 3/4 or 6/8 (default: estimate)");
  sub->add_option("--key", opt->key, "ABC: key such as G, Em, Bb or F#m (default: estimate)");
  sub->add_option("--title", opt->title, "ABC: tune title (T:) (default: from the input file name)");
  sub->add_option("--bars-per-line", opt->bars_per_line, "ABC: bars per line")->capture_default_str()->check(CLI::Range(1, 32));
  sub->add_flag("--ignore-midi-meta", opt->ignore_midi_meta, "ABC: estimate tempo/meter/key even when a MIDI input carries them");
  sub->add_flag("--no-sustain", opt->no_sustain, "MIDI inputs: do not extend notes by the sustain pedal (CC64)");
  sub->add_option("-t,--threads", opt->threads, "libtorch threads")->capture_default_str()->check(CLI::Range(1, 256));
  sub->add_option("-b,--batch-size", opt->batch_size, "Segments decoded together")->capture_default_str()->check(CLI::Range(1, 1024));
  sub->add_option("-j,--jobs", opt->batch.jobs,
                  "Parallel file workers, each with its own model copy running --threads workers; "
                  "jobs x threads is kept within the hardware threads (--threads is lowered)")
      ->capture_default_str()->check(CLI::Range(1, 256));
  sub->add_option("--shard", opt->batch.shard,
                  "Process only shard K of N (1 <= K <= N): inputs ranked by path, rank % N == K-1 "
                  "(Slurm: --shard $((SLURM_ARRAY_TASK_ID+1))/$SLURM_ARRAY_TASK_COUNT for 0-based arrays)");
  sub->add_option("--decoder", opt->decoder,
                  "Audio decoding path: tokens (T5 decoder, every model), frames (the dense onset/frame heads of "
                  "hconv models; faster, notes carry a confidence) or auto (the model's default: frames for hconv "
                  "models that say so, else tokens)")
      ->capture_default_str()->check(CLI::IsMember({"auto", "tokens", "frames"}));
  sub->add_option("--resample", opt->resample,
                  "Resampler for audio not at the model's rate (libsamplerate): best (SINC_BEST), medium "
                  "(SINC_MEDIUM, ~5x faster), fast (SINC_FASTEST) or auto (what the model's front end needs: "
                  "best for MT3 log-mel models, medium for hconv models)")
      ->capture_default_str()->check(CLI::IsMember({"auto", "best", "medium", "fast"}));
  sub->add_option("--onset-threshold", opt->onset_threshold,
                  "Frames decoder: onset probability (0-1) at which a peak starts a note [default: the model's, "
                  "else 0.5]")
      ->check(CLI::Range(0.0, 1.0));
  sub->add_option("--frame-threshold", opt->frame_threshold,
                  "Frames decoder: frame probability (0-1) a note needs to go on [default: the model's, else 0.3]")
      ->check(CLI::Range(0.0, 1.0));
  sub->add_option("--min-note-ms", opt->min_note_ms,
                  "Frames decoder: drop notes shorter than this many milliseconds (0-10000) [default: the "
                  "model's, else 0 = keep all]")
      ->check(CLI::Range(0.0, 10000.0));
  sub->add_option("--min-freq", opt->min_freq_hz,
                  "Frames decoder: drop notes whose fundamental is below this frequency in Hz [default: no limit]")
      ->check(CLI::Range(0.0, 100000.0));
  sub->add_option("--max-freq", opt->max_freq_hz,
                  "Frames decoder: drop notes whose fundamental is above this frequency in Hz [default: no limit]")
      ->check(CLI::Range(0.0, 100000.0));
  sub->add_option("--summary", opt->summary_path,
                  "Write a JSON summary (succeeded, skipped, failures with reasons, not done) to this file at the end, "
                  "also when interrupted");
  sub->footer("Examples:\n  tunescribe transcribe song.wav -o out/\n  tunescribe transcribe recordings/ -r --skip-existing --json > runs.jsonl\n"
              "With --jobs > 1 the --json lines come in completion order.\n"
              "Exit codes: 0 all inputs done, 1 some input failed, 2 usage error, 3 model error,\n"
              "130 interrupted by SIGINT, 143 interrupted by SIGTERM (finished outputs are kept).");
  sub->callback([opt, global]() { set_exit_code(run_transcribe(*opt, *global)); });
}

}  // namespace tunescribe::cli
