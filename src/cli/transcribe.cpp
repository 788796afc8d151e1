// `tunescribe transcribe`: audio or MIDI files/folders → .mid / .json (and .abc).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "commands.h"
#include "tunescribe/abc_writer.h"
#include "tunescribe/audio.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/log.h"
#include "tunescribe/midi.h"
#include "tunescribe/notes.h"
#include "tunescribe/transcriber.h"

namespace fs = std::filesystem;

namespace tunescribe::cli {

struct TranscribeOptions {
  std::vector<std::string> inputs;
  std::string out_dir;            // empty: beside each input
  std::string formats = "abc,mid,json";
  double tempo_bpm = 0.0;         // ABC: 0 = estimate
  std::string meter, key;         // ABC: "" = estimate
  std::string title;              // ABC T:; "" = from the input file name
  int bars_per_line = 4;
  bool ignore_midi_meta = false;
  std::string model_dir;
  bool recursive = false;
  bool force = false;
  bool skip_existing = false;
  bool json = false;
  bool no_sustain = false;
  int threads = 2;
  int batch_size = 8;
  int jobs = 1;                   // parallel file workers
  std::string shard;              // "K/N" or empty
  std::string summary_path;       // JSON summary file or empty
  std::string decoder = "auto";   // auto | tokens | frames
  std::string resample = "auto";  // auto | best | medium | fast
  // Frames decoder settings; NaN = not given (the model's "decoding" values apply).
  double onset_threshold = NAN, frame_threshold = NAN, min_note_ms = NAN, min_freq_hz = NAN, max_freq_hz = NAN;
};

namespace {

struct Job {
  std::string input;
  std::string stem_dir;  // output folder for this input
};

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

bool is_supported_input(const fs::path& p) {
  const std::string s = p.string();
  return is_audio_path(s) || is_midi_path(s);
}

// Expand files, folders and '-' (paths on stdin) into a sorted, de-duplicated job list.
std::vector<Job> collect_jobs(const TranscribeOptions& o, std::vector<std::pair<std::string, std::string>>& failures) {
  std::vector<Job> jobs;
  std::set<std::string> seen;
  auto add = [&](const fs::path& p) {
    std::string key = p.lexically_normal().string();
    if (!seen.insert(key).second) return;
    jobs.push_back({p.string(), o.out_dir.empty() ? p.parent_path().string() : o.out_dir});
  };
  const std::vector<std::string> raw = expand_stdin_paths(o.inputs);
  for (const auto& in : raw) {
    std::error_code ec;
    fs::path p(in);
    if (fs::is_directory(p, ec)) {
      std::vector<fs::path> found;
      if (o.recursive) {
        fs::recursive_directory_iterator it(p, fs::directory_options::skip_permission_denied, ec), end;
        for (; !ec && it != end; it.increment(ec)) {
          if (it.depth() > 64) { it.disable_recursion_pending(); continue; }
          std::error_code e2;
          if (it->is_regular_file(e2) && is_supported_input(it->path())) found.push_back(it->path());
        }
        if (ec) failures.push_back({in, "cannot list folder: " + ec.message()});
      } else {
        for (fs::directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
          std::error_code e2;
          if (it->is_regular_file(e2) && is_supported_input(it->path())) found.push_back(it->path());
        }
        if (ec) failures.push_back({in, "cannot list folder: " + ec.message()});
      }
      std::sort(found.begin(), found.end());
      if (found.empty()) log_warn("transcribe", in + ": no audio or MIDI files found" + (o.recursive ? "" : " (use --recursive for subfolders)"));
      for (auto& f : found) add(f);
    } else {
      add(p);  // missing files are reported when processed
    }
  }
  return jobs;
}

std::string out_path(const Job& j, const std::string& ext) {
  fs::path dir = j.stem_dir.empty() ? fs::path(".") : fs::path(j.stem_dir);
  return (dir / (path_stem(j.input) + "." + ext)).string();
}

}  // namespace

namespace {

// Signals: the first SIGINT/SIGTERM asks the batch to stop (workers finish or
// abandon their current input at the next segment batch, no new input starts);
// a second one removes the temporary files of writes in progress and exits at
// once with 128 + signal.
volatile std::sig_atomic_t g_stop_signal = 0;

extern "C" void on_stop_signal(int sig) {
  if (g_stop_signal != 0) {
    remove_pending_temp_files();
    static const char msg[] = "\ntranscribe: second signal: stopped at once (temporary files removed, no summary)\n";
    ssize_t ignored = ::write(2, msg, sizeof msg - 1);
    (void)ignored;
    ::_exit(128 + sig);
  }
  g_stop_signal = sig;
}

struct SignalScope {
  struct sigaction old_int {}, old_term {};
  SignalScope() {
    g_stop_signal = 0;
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

bool stop_requested() { return g_stop_signal != 0; }

struct Interrupted {};  // thrown from the progress callback to abandon an input

// "K/N" with 1 <= K <= N.
std::pair<int, int> parse_shard(const std::string& s) {
  auto bad = [&]() {
    return ConfigError("transcribe: --shard '" + s + "': expected K/N with integers 1 <= K <= N (e.g. 3/10)");
  };
  auto slash = s.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= s.size()) throw bad();
  auto digits = [](const std::string& t) {
    return !t.empty() && t.size() <= 9 && std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  std::string ks = s.substr(0, slash), ns = s.substr(slash + 1);
  if (!digits(ks) || !digits(ns)) throw bad();
  int k = std::stoi(ks), n = std::stoi(ns);
  if (n < 1 || k < 1 || k > n) throw bad();
  return {k, n};
}

// Shard K/N: rank the inputs by normalised path (independent of argument
// order), keep those whose rank % N == K - 1, in their original order.
std::vector<Job> select_shard(const std::vector<Job>& jobs, int k, int n) {
  std::vector<size_t> order(jobs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::vector<std::string> keys;
  keys.reserve(jobs.size());
  for (const auto& j : jobs) keys.push_back(fs::path(j.input).lexically_normal().string());
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return keys[a] < keys[b]; });
  std::vector<char> keep(jobs.size(), 0);
  for (size_t r = 0; r < order.size(); ++r)
    if (static_cast<int>(r % static_cast<size_t>(n)) == k - 1) keep[order[r]] = 1;
  std::vector<Job> out;
  for (size_t i = 0; i < jobs.size(); ++i)
    if (keep[i]) out.push_back(jobs[i]);
  return out;
}

}  // namespace

namespace {
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
  if (o.force && o.skip_existing) throw ConfigError("transcribe: --force and --skip-existing exclude each other");
  const auto formats = parse_formats(o.formats);
  {
    AbcWriterConfig check;  // reject bad --meter/--key/--tempo before any work
    check.tempo_bpm = o.tempo_bpm;
    check.meter = o.meter;
    check.key = o.key;
    check.bars_per_line = o.bars_per_line;
    check.title = o.title;
    check.validate();
  }
  std::pair<int, int> shard{1, 1};
  if (!o.shard.empty()) shard = parse_shard(o.shard);
  if (o.jobs < 1 || o.jobs > 256) throw ConfigError("transcribe: --jobs " + std::to_string(o.jobs) + " is not within [1, 256]");
  if (!o.out_dir.empty()) {
    std::error_code ec;
    fs::create_directories(o.out_dir, ec);
    if (ec) throw OutputError(o.out_dir + ": cannot create output folder: " + ec.message());
  }
  std::vector<std::pair<std::string, std::string>> failures;
  auto jobs = collect_jobs(o, failures);
  if (!o.shard.empty()) {
    const size_t all = jobs.size();
    jobs = select_shard(jobs, shard.first, shard.second);
    log_info("transcribe", "shard " + o.shard + ": " + std::to_string(jobs.size()) + " of " + std::to_string(all) + " inputs");
  }
  if (jobs.empty() && failures.empty() && o.shard.empty()) throw ConfigError("transcribe: no inputs to process");

  // Threads: `jobs` file workers, each with its own Transcriber whose model
  // runs `threads` batch-split workers (process-wide setting). Keep the product
  // within the machine's cores.
  const int hw = std::max(1u, std::thread::hardware_concurrency());
  int n_workers = std::min<int>(o.jobs, std::max<size_t>(size_t(1), jobs.size()));
  int model_threads_n = o.threads;
  bool any_audio = std::any_of(jobs.begin(), jobs.end(), [](const Job& j) { return is_audio_path(j.input); });
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
  std::mutex mu;  // guards everything below and stdout/stderr lines
  int done = 0, skipped = 0, finished = 0;
  double audio_seconds = 0.0;
  nlohmann::json ok_list = nlohmann::json::array(), skipped_list = nlohmann::json::array();
  std::vector<std::string> fatal_error;  // a model or configuration error stops the run (exit 3 / 2)
  int fatal_code = 0;
  std::atomic<size_t> next{0};
  const auto t0 = std::chrono::steady_clock::now();
  const bool progress = log_level() <= LogLevel::Info;
  // The first error that must stop the whole run wins; the others stop their workers quietly.
  auto record_fatal = [&](const char* what, int code) {
    std::lock_guard<std::mutex> lk(mu);
    if (fatal_error.empty()) {
      fatal_error.push_back(what);
      fatal_code = code;
    }
  };

  auto worker = [&]() {
    std::unique_ptr<Transcriber> transcriber;  // created on this worker's first audio input
    for (;;) {
      if (stop_requested()) return;
      {
        std::lock_guard<std::mutex> lk(mu);
        if (!fatal_error.empty()) return;
      }
      const size_t i = next.fetch_add(1);
      if (i >= jobs.size()) return;
      const Job& job = jobs[i];
      nlohmann::json rec = {{"input", job.input}};
      bool abandoned = false;
      try {
        std::vector<std::string> outs;
        for (const auto& f : formats) outs.push_back(out_path(job, f));
        bool all_exist = std::all_of(outs.begin(), outs.end(), [](const std::string& p) { return fs::exists(p); });
        if (o.skip_existing && all_exist) {
          rec["status"] = "skipped";
          std::lock_guard<std::mutex> lk(mu);
          ++skipped;
          ++finished;
          skipped_list.push_back(job.input);
          if (o.json) std::cout << rec.dump() << std::endl;
          continue;
        }
        if (!o.force) {
          for (const auto& p : outs)
            if (fs::exists(p) && !o.skip_existing)
              throw OutputError(p + ": exists (use --force to overwrite or --skip-existing)");
        }
        NoteSequence seq;
        double dur = 0.0;
        if (is_midi_path(job.input)) {
          seq = read_midi_file(job.input, midi_opt);
          dur = seq.end_time();
        } else if (is_audio_path(job.input)) {
          if (!transcriber) {
            TranscriberConfig tc;
            tc.model_dir = o.model_dir;
            tc.n_threads = model_threads_n;
            tc.batch_size = o.batch_size;
            set_decoder_options(o, tc);
            try {
              transcriber = std::make_unique<Transcriber>(tc);
            } catch (const ConfigError& e) {  // e.g. --decoder frames on a model without heads
              record_fatal(e.what(), kExitUsage);
              return;
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
          seq = transcriber->transcribe(audio, [](int, int) {
            if (stop_requested()) throw Interrupted{};
          });
          dur = audio.duration_s();
          seq.source = job.input;
        } else {
          throw InputError(job.input + ": unsupported file type (expected audio: .wav .flac .ogg .aiff, or MIDI: .mid)");
        }
        seq.sort();
        // Render every output before writing any, then write each atomically.
        std::vector<std::string> bytes(formats.size());
        for (size_t k = 0; k < formats.size(); ++k) {
          const auto& f = formats[k];
          if (f == "mid") {
            auto b = write_midi_bytes(seq);
            bytes[k].assign(b.begin(), b.end());
          } else if (f == "abc") {
            AbcWriterConfig ac;
            ac.title = o.title.empty() ? abc_title_from_path(job.input) : o.title;
            ac.tempo_bpm = o.tempo_bpm;
            ac.meter = o.meter;
            ac.key = o.key;
            ac.bars_per_line = o.bars_per_line;
            ac.use_midi_metadata = !o.ignore_midi_meta;
            AbcTune tune = write_abc(seq, ac);
            bytes[k] = std::move(tune.text);
            rec["abc"] = {{"meter", tune.meter}, {"key", tune.key}, {"tempo_bpm", tune.tempo_bpm}, {"bars", tune.bars}};
          } else if (f == "json") {
            nlohmann::json j = notes_to_json(seq);
            j["input"] = job.input;
            bytes[k] = j.dump(1) + "\n";
          }
        }
        for (size_t k = 0; k < formats.size(); ++k) write_file_atomic(outs[k], bytes[k]);
        rec["status"] = "ok";
        rec["outputs"] = outs;
        rec["notes"] = seq.notes.size();
        rec["duration_s"] = dur;
        std::lock_guard<std::mutex> lk(mu);
        ++done;
        audio_seconds += dur;
        nlohmann::json item = {{"input", job.input}, {"outputs", outs}, {"notes", seq.notes.size()}, {"duration_s", dur}};
        ok_list.push_back(item);
      } catch (const Interrupted&) {
        abandoned = true;
      } catch (const ModelError& e) {
        record_fatal(e.what(), kExitModel);
        return;
      } catch (const NotAvailableError& e) {
        record_fatal(e.what(), kExitUsage);
        return;
      } catch (const Error& e) {
        rec["status"] = "failed";
        rec["error"] = e.what();
        std::lock_guard<std::mutex> lk(mu);
        failures.push_back({job.input, e.what()});
        log_error("transcribe", e.what());
      } catch (const std::exception& e) {  // e.g. bad_alloc on a huge input: fail this input only
        rec["status"] = "failed";
        rec["error"] = job.input + ": " + e.what();
        std::lock_guard<std::mutex> lk(mu);
        failures.push_back({job.input, rec["error"].get<std::string>()});
        log_error("transcribe", rec["error"].get<std::string>());
      }
      if (abandoned) return;
      std::lock_guard<std::mutex> lk(mu);
      ++finished;
      if (o.json) std::cout << rec.dump() << std::endl;
      if (progress) {
        double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::fprintf(stderr, "\r[transcribe] %d/%zu files, %.1f audio s/s   ", finished, jobs.size(),
                     el > 0 ? audio_seconds / el : 0.0);
        if (static_cast<size_t>(finished) == jobs.size()) std::fprintf(stderr, "\n");
      }
    }
  };

  if (n_workers <= 1) {
    worker();
  } else {
    std::vector<std::thread> pool;
    for (int w = 0; w < n_workers; ++w) pool.emplace_back(worker);
    for (auto& t : pool) t.join();
  }

  const int sig = g_stop_signal;
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::json fl = nlohmann::json::array();
  for (auto& f : failures) fl.push_back({{"input", f.first}, {"error", f.second}});
  nlohmann::json pending = nlohmann::json::array();
  {
    // Inputs neither finished nor failed (interrupted, or stopped by a model error).
    std::set<std::string> finished_inputs;
    for (const auto& x : ok_list) finished_inputs.insert(x["input"].get<std::string>());
    for (const auto& x : skipped_list) finished_inputs.insert(x.get<std::string>());
    for (const auto& f : failures) finished_inputs.insert(f.first);
    for (const auto& j : jobs)
      if (!finished_inputs.count(j.input)) pending.push_back(j.input);
  }
  std::string stop_name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "";
  nlohmann::json counts = {{"ok", done}, {"skipped", skipped}, {"failed", failures.size()},
                           {"not_done", pending.size()}, {"inputs", jobs.size()},
                           {"seconds", el}, {"audio_seconds", audio_seconds}};
  if (!o.summary_path.empty()) {
    nlohmann::json s = counts;
    s["interrupted"] = sig != 0 ? nlohmann::json(stop_name) : nlohmann::json(nullptr);
    s["fatal_error"] = fatal_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(fatal_error[0]);
    s["shard"] = o.shard.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.shard);
    s["jobs"] = n_workers;
    s["threads"] = model_threads_n;
    s["succeeded"] = ok_list;
    s["skipped_inputs"] = skipped_list;
    s["failures"] = fl;
    s["not_done_inputs"] = pending;
    try {
      write_file_atomic(o.summary_path, s.dump(1) + "\n");
    } catch (const Error& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
    }
  }
  if (o.json) {
    nlohmann::json s = {{"summary", counts}};
    s["summary"]["failures"] = fl;
    if (sig != 0) s["summary"]["interrupted"] = stop_name;
    std::cout << s.dump() << std::endl;
  }
  if (progress && finished > 0 && static_cast<size_t>(finished) != jobs.size()) std::fprintf(stderr, "\n");
  if (!fatal_error.empty()) {
    if (fatal_code == kExitUsage) throw NotAvailableError(fatal_error[0]);
    throw ModelError(fatal_error[0]);
  }
  std::string line = std::to_string(done) + " done, " + std::to_string(skipped) + " skipped, " +
                     std::to_string(failures.size()) + " failed";
  if (sig != 0) {
    // Always shown, even with --quiet: the user must know the batch is incomplete.
    std::fprintf(stderr, "transcribe: interrupted by %s: %s, %zu not done (rerun with --skip-existing to resume)\n",
                 stop_name.c_str(), line.c_str(), pending.size());
  } else {
    log_info("transcribe", line);
  }
  for (auto& f : failures) std::fprintf(stderr, "failed: %s: %s\n", f.first.c_str(), f.second.c_str());
  if (sig != 0) return 128 + sig;
  return failures.empty() ? kExitOk : kExitSomeFailed;
}

void setup_transcribe(CLI::App& app, std::shared_ptr<GlobalOptions> global) {
  auto opt = std::make_shared<TranscribeOptions>();
  auto* sub = app.add_subcommand("transcribe", "Transcribe audio (WAV/FLAC/OGG/AIFF) or MIDI files to MIDI/JSON notes");
  sub->add_option("inputs", opt->inputs, "Input files or folders; '-' reads paths from stdin, one per line")->required();
  sub->add_option("-o,--output-dir", opt->out_dir, "Output folder (default: beside each input)");
  sub->add_option("-f,--format", opt->formats, "Comma-separated outputs: abc, mid, json")->capture_default_str();
  sub->add_option("-m,--model", opt->model_dir, "Model directory (config.json + model.safetensors) or installed model name (tunescribe models); default: the shipped model");
  sub->add_flag("-r,--recursive", opt->recursive, "Descend into subfolders of folder inputs");
  sub->add_flag("--force", opt->force, "Overwrite existing outputs");
  sub->add_flag("--skip-existing", opt->skip_existing, "Skip inputs whose outputs all exist (resumable batches)");
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
  sub->add_option("-j,--jobs", opt->jobs,
                  "Parallel file workers, each with its own model copy running --threads workers; "
                  "jobs x threads is kept within the hardware threads (--threads is lowered)")
      ->capture_default_str()->check(CLI::Range(1, 256));
  sub->add_option("--shard", opt->shard,
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
