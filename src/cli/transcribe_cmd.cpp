// `tunescribe transcribe`: audio or MIDI files/folders → .mid / .json (and .abc).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "tunescribe/audio_formats.h"
#include "tunescribe/batch.h"
#include "tunescribe/file_transcriber.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/log.h"
#include "tunescribe/view_outputs.h"
#include "tunescribe/output_target.h"
#include "tunescribe/progress_meter.h"

namespace tunescribe::cli {

struct TranscribeOptions {
  std::vector<std::string> inputs;
  BatchConfig batch;            // -o, -r, --force, --skip-existing, --jobs, --shard
  FileTranscriberConfig files;  // --format, the model and decoder flags, the ABC flags, --no-sustain
  bool json = false;
  bool format_given = false;    // --format on the command line (-o FILE then takes it, not the extension)
  std::string summary_path;     // JSON summary file or empty
};

namespace {

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

// One "failed: ..." line per failing input that names the file once (the library's messages
// already start with the component and the file).
std::string failure_line(const std::string& input, const std::string& error) {
  return "failed: " + (error.find(input) != std::string::npos ? error : input + ": " + error);
}

// stdout: one JSON line per finished input (--json); stderr: a failure's one line as it happens and
// the files line (on a terminal rewritten in place; in a log one line per file, for batches).
ProgressCallback progress_printer(bool json, const std::shared_ptr<ProgressMeter>& meter, bool terminal) {
  const bool progress = log_level() <= LogLevel::Info;
  return [json, progress, meter, terminal](const JobRecord& rec, const BatchProgress& p) {
    const std::string closing = meter->finish(rec.job->input);
    if (rec.status == JobStatus::Failed) {
      std::fprintf(stderr, "%s%s\n", terminal ? "\r\33[K" : "", failure_line(rec.job->input, rec.error).c_str());
    } else {
      std::fputs(closing.c_str(), stderr);
    }
    if (json) std::cout << rec.json.dump() << std::endl;
    if (progress && rec.status != JobStatus::Skipped) {
      const double rate = p.elapsed_s > 0 ? p.media_seconds / p.elapsed_s : 0.0;
      if (terminal) {
        std::fprintf(stderr, "\r[transcribe] %zu/%zu files, %.1f audio s/s   ", p.finished, p.total, rate);
        if (p.finished == p.total) std::fprintf(stderr, "\n");
      } else if (p.total > 1) {
        std::fprintf(stderr, "[transcribe] %zu/%zu files, %.1f audio s/s\n", p.finished, p.total, rate);
      }
    }
  };
}

// Percent and ETA of audio inputs longer than a minute, on stderr (not with --quiet).
void attach_file_progress(FileTranscriberConfig& files, const std::shared_ptr<ProgressMeter>& meter) {
  if (log_level() > LogLevel::Info) return;
  auto starts = std::make_shared<std::pair<std::mutex, std::map<std::string, std::chrono::steady_clock::time_point>>>();
  files.on_progress = [meter, starts](const std::string& input, double done_s, double total_s) {
    const auto now = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point t0;
    {
      std::lock_guard<std::mutex> lk(starts->first);
      auto it = starts->second.find(input);
      if (done_s <= 0.0 || it == starts->second.end()) it = starts->second.insert_or_assign(input, now).first;
      t0 = it->second;
    }
    const std::string text = meter->update(input, done_s, total_s, std::chrono::duration<double>(now - t0).count());
    if (!text.empty()) std::fputs(text.c_str(), stderr);
  };
}

// The end of a batch: --summary file, --json summary line, the result line and the failures.
void print_summary(const TranscribeOptions& o, const BatchSummary& s, int model_threads, size_t n_collect_failures,
                   bool terminal) {
  if (!o.summary_path.empty()) {
    nlohmann::json file = s.to_json();
    file["threads"] = model_threads;
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
  const bool progress = log_level() <= LogLevel::Info;
  if (progress && terminal && s.finished > 0 && s.finished != s.inputs) std::fprintf(stderr, "\n");  // close the \r line
  if (s.fatal) return;  // reported by the caller
  // Inputs that failed before any job ran (a folder that could not be listed); the others had
  // their line when they failed.
  for (size_t i = 0; i < s.failures.size() && i < n_collect_failures; ++i)
    std::fprintf(stderr, "%s\n", failure_line(s.failures[i].first, s.failures[i].second).c_str());
  if (s.stop_signal != 0) {
    // Always shown, even with --quiet: the user must know the batch is incomplete.
    std::fprintf(stderr, "transcribe: interrupted by %s: %s, %zu not done (rerun with --skip-existing to resume)\n",
                 s.stop_name().c_str(), s.line().c_str(), s.not_done.size());
  } else {
    log_info("transcribe", s.line());
  }
}

}  // namespace

static int run_transcribe(const TranscribeOptions& o, const GlobalOptions& g) {
  apply_global_options(g);
  o.files.validate();  // bad --decoder / frames settings, --format, --meter/--key/--tempo: before any work
  const std::vector<std::string> inputs = expand_stdin_paths(o.inputs);
  // -o: one output file (one input file, one format) or a folder.
  OutputTargetRequest req;
  req.output = o.batch.out_dir;
  req.inputs = inputs;
  req.formats = o.files.format_list();
  req.format_given = o.format_given;
  req.is_format = [](const std::string& f) { return is_transcribe_format(f); };
  const OutputTarget target = resolve_output_target(req);
  FileTranscriberConfig files = o.files;
  if (!target.file.empty()) files.formats = target.format;
  // svg/roll/wav (view_outputs.h): wav is checked now; svg without abcm2ps is left out, the other
  // formats are written and the missing program is reported at the end (exit 2).
  const auto ruled_out = check_view_formats(files.format_list(), &files.views, "transcribe");
  files.formats = remove_formats(files.formats, ruled_out);
  if (files.formats.empty()) throw NotAvailableError(abcm2ps_missing_message("transcribe"));
  BatchConfig bc = o.batch;
  bc.out_dir = target.dir;
  bc.out_file = target.file;
  bc.output_exts = view_output_extensions(files.format_list());
  Batch batch(bc);
  batch.collect(inputs, is_transcribable_path, "audio or MIDI files");
  ProgressMeterConfig pc;
  pc.terminal = ::isatty(2) != 0;
  auto meter = std::make_shared<ProgressMeter>(pc);
  attach_file_progress(files, meter);
  FileTranscriber transcriber(files, batch);
  SignalScope signals;
  const size_t n_collect_failures = batch.collect_failures();
  const BatchSummary s = batch.run([&](const BatchJob& job, int worker) { return transcriber.run(job, worker); },
                                   progress_printer(o.json, meter, pc.terminal), &g_stop_signal);
  print_summary(o, s, transcriber.model_threads(), n_collect_failures, pc.terminal);
  if (s.fatal) std::rethrow_exception(s.fatal);
  if (s.stop_signal != 0) return 128 + s.stop_signal;
  if (!ruled_out.empty())
    return report_error(NotAvailableError(abcm2ps_missing_message("transcribe") + "; the other formats were written"));
  return s.failures.empty() ? kExitOk : kExitSomeFailed;
}

void setup_transcribe(CLI::App& app, std::shared_ptr<GlobalOptions> global) {
  auto opt = std::make_shared<TranscribeOptions>();
  opt->batch.component = "transcribe";
  auto* sub = app.add_subcommand(
      "transcribe", "Transcribe audio (WAV/FLAC/OGG/Opus/MP3/AIFF: what this build's libsndfile decodes) or MIDI "
                    "files to ABC/MIDI/JSON/CSV/TXT notes");
  sub->add_option("inputs", opt->inputs, "Input files or folders; '-' reads paths from stdin, one per line")->required();
  sub->add_option("-o,--output-dir", opt->batch.out_dir,
                  "Output folder (default: beside each input); with one input file also the output file itself "
                  "(-o song.mid: the format from the extension unless --format is given)");
  sub->add_option("-f,--format", opt->files.formats,
                  "Comma-separated outputs: abc, mid, json, musicxml (MusicXML 4.0: STEM.musicxml), csv (note events: onset_s,offset_s,pitch,velocity,"
                  "program,instrument), txt (mir_eval: onset offset frequency_Hz); svg (sheet music by abcm2ps: "
                  "STEM.svg, STEM-2.svg … one file per page), roll (piano-roll SVG: STEM.roll.svg), wav (the notes "
                  "played by FluidSynth: STEM.synth.wav, 44.1 kHz 16-bit mono)")
      ->capture_default_str();
  sub->add_option("--soundfont", opt->files.views.soundfont,
                  "--format wav: General MIDI soundfont (.sf2) [default: /usr/share/sounds/sf2/default-GM.sf2, else "
                  "FluidR3_GM.sf2, else TimGM6mb.sf2]");
  sub->add_option("-m,--model", opt->files.transcriber.model_dir, "Model directory (config.json + model.safetensors) or installed model name (tunescribe models); default: the shipped model");
  sub->add_flag("-r,--recursive", opt->batch.recursive, "Descend into subfolders of folder inputs");
  sub->add_flag("--force", opt->batch.force, "Overwrite existing outputs");
  sub->add_flag("--skip-existing", opt->batch.skip_existing, "Skip inputs whose outputs all exist (resumable batches)");
  sub->add_flag("--json", opt->json, "Print one JSON object per input and a summary object on stdout");
  // A non-number gets a sentence saying what is expected, not CLI11's conversion error.
  const CLI::Validator tempo_number(
      [](std::string& v) {
        char* end = nullptr;
        std::strtod(v.c_str(), &end);
        if (v.empty() || end == v.c_str() || *end != '\0')
          return "\"" + v + "\" is not a number: expected beats per minute, 20 to 400 (or 0 = estimate from the notes)";
        return std::string();
      },
      "BPM");
  sub->add_option("--tempo", opt->files.abc.tempo_bpm, "ABC: tempo in beats per minute (0 = estimate from the notes)")
      ->capture_default_str()->check(tempo_number)->check(CLI::Range(0.0, 400.0));
  sub->add_option("--meter", opt->files.abc.meter, "ABC: meter such as 3/4 or 6/8 (default: estimate)");
  sub->add_option("--key", opt->files.abc.key, "ABC: key such as G, Em, Bb or F#m (default: estimate)");
  sub->add_option("--title", opt->files.abc.title, "ABC: tune title (T:) (default: from the input file name)");
  sub->add_option("--bars-per-line", opt->files.abc.bars_per_line, "ABC: bars per line")->capture_default_str()->check(CLI::Range(1, 32));
  sub->add_flag("--ignore-midi-meta", [opt](int64_t) { opt->files.abc.use_midi_metadata = false; }, "ABC: estimate tempo/meter/key even when a MIDI input carries them");
  sub->add_flag("--no-sustain", [opt](int64_t) { opt->files.apply_sustain = false; }, "MIDI inputs: do not extend notes by the sustain pedal (CC64)");
  sub->add_option("-t,--threads", opt->files.transcriber.n_threads, "libtorch threads")->capture_default_str()->check(CLI::Range(1, 256));
  sub->add_option("-b,--batch-size", opt->files.transcriber.batch_size,
                  "Segments decoded together; 0 = auto (16 for the tokens decoder, 8 for frames)")
      ->capture_default_str()->check(CLI::Range(0, 1024));
  sub->add_option("-j,--jobs", opt->batch.jobs,
                  "Parallel file workers, each with its own model copy running --threads workers; "
                  "jobs x threads is kept within the hardware threads (--threads is lowered)")
      ->capture_default_str()->check(CLI::Range(1, 256));
  sub->add_option("--shard", opt->batch.shard,
                  "Process only shard K of N (1 <= K <= N): inputs ranked by path, rank % N == K-1 "
                  "(Slurm: --shard $((SLURM_ARRAY_TASK_ID+1))/$SLURM_ARRAY_TASK_COUNT for 0-based arrays)");
  sub->add_option("--decoder", opt->files.transcriber.decoder,
                  "Audio decoding path: tokens (T5 decoder, every model), frames (the dense onset/frame heads of "
                  "hconv models; faster, notes carry a confidence) or auto (the model's default: frames for hconv "
                  "models that say so, else tokens)")
      ->capture_default_str()->check(CLI::IsMember({"auto", "tokens", "frames"}));
  sub->add_option("--precision", opt->files.transcriber.precision,
                  "T5 arithmetic: fp32, int8 (dynamic int8 matrices: faster token decoding, see docs/performance.md "
                  "for the accuracy cost) or auto (the model's inference.precision, else fp32)")
      ->capture_default_str()->check(CLI::IsMember({"auto", "fp32", "int8"}));
  sub->add_flag("--merge-relabelled-ties", opt->files.transcriber.merge_relabelled_ties,
               "Token decoding (MT3): when the model re-declares a held note under another instrument at a "
               "segment boundary, continue the note (its first instrument kept) instead of cutting it there");
  sub->add_option("--resample", opt->files.resample,
                  "Resampler for audio not at the model's rate: auto (tunescribe's polyphase windowed-sinc filter, "
                  "passband to 95 % of Nyquist, 100 dB; rare rate pairs it does not take use best) or libsamplerate's "
                  "best (SINC_BEST, ~20x slower), medium (SINC_MEDIUM) or fast (SINC_FASTEST)")
      ->capture_default_str()->check(CLI::IsMember({"auto", "best", "medium", "fast"}));
  // Frames decoder flags in [0, max]: each sets its override only when given (else the model's
  // "decoding" value applies).
  auto& fr = opt->files.transcriber.frames;
  const struct {
    const char* name;
    std::optional<double>* field;
    double max;
    const char* help;
  } frames_flags[] = {
      {"--onset-threshold", &fr.onset_threshold, 1.0,
       "Frames decoder: onset probability (0-1) at which a peak starts a note [default: the model's, else 0.5]"},
      {"--frame-threshold", &fr.frame_threshold, 1.0,
       "Frames decoder: frame probability (0-1) a note needs to go on [default: the model's, else 0.3]"},
      {"--min-note-ms", &fr.min_note_ms, 10000.0,
       "Frames decoder: drop notes shorter than this many milliseconds (0-10000) [default: the model's, else 0 = "
       "keep all]"},
      {"--min-freq", &fr.min_freq_hz, 100000.0,
       "Frames decoder: drop notes whose fundamental is below this frequency in Hz [default: no limit]"},
      {"--max-freq", &fr.max_freq_hz, 100000.0,
       "Frames decoder: drop notes whose fundamental is above this frequency in Hz [default: no limit]"},
      {"--velocity-loudness", &fr.velocity_loudness, 1.0,
       "Frames decoder: weight (0-1) of the recording's loudness at each note's start in its velocity, blended "
       "with the velocity head [default: the model's, else 0 = head only]"},
  };
  for (const auto& f : frames_flags)
    sub->add_option_function<double>(f.name, [field = f.field](const double& v) { *field = v; }, f.help)
        ->check(CLI::Range(0.0, f.max));
  sub->add_option("--summary", opt->summary_path,
                  "Write a JSON summary (succeeded, skipped, failures with reasons, not done) to this file at the end, "
                  "also when interrupted");
  sub->footer("Examples:\n  tunescribe transcribe song.wav -o out/\n  tunescribe transcribe recordings/ -r --skip-existing --json > runs.jsonl\n"
              "  tunescribe transcribe song.flac -o out/ -f abc,svg,roll,wav   (sheet music, piano roll, audio)\n"
              "  tunescribe transcribe song.mp3 -o song.mid            (MP3/Opus input: one output file)\n"
              "  tunescribe transcribe song.opus --format csv -o out/  (note events: out/song.csv)\n"
              "  tunescribe transcribe song.flac --format txt -o out/  (mir_eval notes: out/song.txt)\n"
              "Audio this build reads: " + audio_extensions_text() + " (M4A/AAC: convert first, e.g. ffmpeg -i in.m4a in.flac).\n"
              "Audio inputs longer than a minute report percent done and an ETA on stderr.\n"
              "  tunescribe transcribe song.flac -f abc,musicxml -o out/   (out/song.abc + out/song.musicxml, one score)\n"
              "With --jobs > 1 the --json lines come in completion order.\n"
              "Exit codes: 0 all inputs done, 1 some input failed, 2 usage error, 3 model error,\n"
              "130 interrupted by SIGINT, 143 interrupted by SIGTERM (finished outputs are kept).");
  sub->callback([opt, global, sub]() {
    opt->format_given = sub->get_option("--format")->count() > 0;
    set_exit_code(run_transcribe(*opt, *global));
  });
}

}  // namespace tunescribe::cli
