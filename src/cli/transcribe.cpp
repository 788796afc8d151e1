// `tunescribe transcribe`: audio or MIDI files/folders → .mid / .json (and .abc).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

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
  std::vector<std::string> raw;
  for (const auto& in : o.inputs) {
    if (in == "-") {
      std::string line;
      while (std::getline(std::cin, line)) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        if (!line.empty()) raw.push_back(line);
      }
    } else {
      raw.push_back(in);
    }
  }
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

static int run_transcribe(const TranscribeOptions& o, const GlobalOptions& g) {
  apply_global_options(g);
  if (o.force && o.skip_existing) throw ConfigError("transcribe: --force and --skip-existing exclude each other");
  const auto formats = parse_formats(o.formats);
  {
    AbcWriterConfig check;  // reject bad --meter/--key/--tempo before any work
    check.tempo_bpm = o.tempo_bpm;
    check.meter = o.meter;
    check.key = o.key;
    check.bars_per_line = o.bars_per_line;
    check.validate();
  }
  if (!o.out_dir.empty()) {
    std::error_code ec;
    fs::create_directories(o.out_dir, ec);
    if (ec) throw OutputError(o.out_dir + ": cannot create output folder: " + ec.message());
  }
  std::vector<std::pair<std::string, std::string>> failures;
  auto jobs = collect_jobs(o, failures);
  if (jobs.empty() && failures.empty()) throw ConfigError("transcribe: no inputs to process");

  std::unique_ptr<Transcriber> transcriber;  // created on the first audio input
  MidiReadOptions midi_opt;
  midi_opt.apply_sustain = !o.no_sustain;
  int done = 0, skipped = 0;
  double audio_seconds = 0.0;
  const auto t0 = std::chrono::steady_clock::now();
  const bool progress = log_level() <= LogLevel::Info;

  for (size_t i = 0; i < jobs.size(); ++i) {
    const Job& job = jobs[i];
    nlohmann::json rec = {{"input", job.input}};
    try {
      std::vector<std::string> outs;
      for (const auto& f : formats) outs.push_back(out_path(job, f));
      bool all_exist = std::all_of(outs.begin(), outs.end(), [](const std::string& p) { return fs::exists(p); });
      if (o.skip_existing && all_exist) {
        ++skipped;
        rec["status"] = "skipped";
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
          tc.n_threads = o.threads;
          tc.batch_size = o.batch_size;
          transcriber = std::make_unique<Transcriber>(tc);
        }
        AudioConfig ac;
        ac.target_rate_hz = transcriber->sample_rate_hz();
        Audio audio = load_audio(job.input, ac);
        dur = audio.duration_s();
        seq = transcriber->transcribe(audio);
        seq.source = job.input;
      } else {
        throw InputError(job.input + ": unsupported file type (expected audio: .wav .flac .ogg .aiff, or MIDI: .mid)");
      }
      seq.sort();
      for (size_t k = 0; k < formats.size(); ++k) {
        const auto& f = formats[k];
        if (f == "mid") write_midi_file(outs[k], seq);
        else if (f == "abc") {
          AbcWriterConfig ac;
          ac.title = path_stem(job.input);
          ac.tempo_bpm = o.tempo_bpm;
          ac.meter = o.meter;
          ac.key = o.key;
          ac.bars_per_line = o.bars_per_line;
          ac.use_midi_metadata = !o.ignore_midi_meta;
          AbcTune tune = write_abc(seq, ac);
          write_file_atomic(outs[k], tune.text);
          rec["abc"] = {{"meter", tune.meter}, {"key", tune.key}, {"tempo_bpm", tune.tempo_bpm}, {"bars", tune.bars}};
        } else if (f == "json") {
          nlohmann::json j = notes_to_json(seq);
          j["input"] = job.input;
          write_file_atomic(outs[k], j.dump(1) + "\n");
        }
      }
      ++done;
      audio_seconds += dur;
      rec["status"] = "ok";
      rec["outputs"] = outs;
      rec["notes"] = seq.notes.size();
      rec["duration_s"] = dur;
    } catch (const NotAvailableError&) {
      throw;  // the whole run cannot proceed
    } catch (const ModelError&) {
      throw;
    } catch (const Error& e) {
      failures.push_back({job.input, e.what()});
      rec["status"] = "failed";
      rec["error"] = e.what();
      log_error("transcribe", e.what());
    }
    if (o.json) std::cout << rec.dump() << std::endl;
    if (progress) {
      double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::fprintf(stderr, "\r[transcribe] %zu/%zu files, %.1f audio s/s   ", i + 1, jobs.size(),
                   el > 0 ? audio_seconds / el : 0.0);
      if (i + 1 == jobs.size()) std::fprintf(stderr, "\n");
    }
  }
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (o.json) {
    nlohmann::json s = {{"summary", {{"ok", done}, {"skipped", skipped}, {"failed", failures.size()},
                                      {"seconds", el}, {"audio_seconds", audio_seconds}}}};
    nlohmann::json fl = nlohmann::json::array();
    for (auto& f : failures) fl.push_back({{"input", f.first}, {"error", f.second}});
    s["summary"]["failures"] = fl;
    std::cout << s.dump() << std::endl;
  }
  log_info("transcribe", std::to_string(done) + " done, " + std::to_string(skipped) + " skipped, " +
                             std::to_string(failures.size()) + " failed");
  for (auto& f : failures) std::fprintf(stderr, "failed: %s: %s\n", f.first.c_str(), f.second.c_str());
  return failures.empty() ? kExitOk : kExitSomeFailed;
}

void setup_transcribe(CLI::App& app, std::shared_ptr<GlobalOptions> global) {
  auto opt = std::make_shared<TranscribeOptions>();
  auto* sub = app.add_subcommand("transcribe", "Transcribe audio (WAV/FLAC/OGG/AIFF) or MIDI files to MIDI/JSON notes");
  sub->add_option("inputs", opt->inputs, "Input files or folders; '-' reads paths from stdin, one per line")->required();
  sub->add_option("-o,--output-dir", opt->out_dir, "Output folder (default: beside each input)");
  sub->add_option("-f,--format", opt->formats, "Comma-separated outputs: abc, mid, json")->capture_default_str();
  sub->add_option("-m,--model", opt->model_dir, "Model directory (config.json + model.safetensors); default: the shipped model");
  sub->add_flag("-r,--recursive", opt->recursive, "Descend into subfolders of folder inputs");
  sub->add_flag("--force", opt->force, "Overwrite existing outputs");
  sub->add_flag("--skip-existing", opt->skip_existing, "Skip inputs whose outputs all exist (resumable batches)");
  sub->add_flag("--json", opt->json, "Print one JSON object per input and a summary object on stdout");
  sub->add_option("--tempo", opt->tempo_bpm, "ABC: tempo in beats per minute (0 = estimate from the notes)")
      ->capture_default_str()->check(CLI::Range(0.0, 400.0));
  sub->add_option("--meter", opt->meter, "ABC: meter such as 3/4 or 6/8 (default: estimate)");
  sub->add_option("--key", opt->key, "ABC: key such as G, Em, Bb or F#m (default: estimate)");
  sub->add_option("--bars-per-line", opt->bars_per_line, "ABC: bars per line")->capture_default_str()->check(CLI::Range(1, 32));
  sub->add_flag("--ignore-midi-meta", opt->ignore_midi_meta, "ABC: estimate tempo/meter/key even when a MIDI input carries them");
  sub->add_flag("--no-sustain", opt->no_sustain, "MIDI inputs: do not extend notes by the sustain pedal (CC64)");
  sub->add_option("-t,--threads", opt->threads, "libtorch threads")->capture_default_str()->check(CLI::Range(1, 256));
  sub->add_option("-b,--batch-size", opt->batch_size, "Segments decoded together")->capture_default_str()->check(CLI::Range(1, 1024));
  sub->footer("Examples:\n  tunescribe transcribe song.wav -o out/\n  tunescribe transcribe recordings/ -r --skip-existing --json > runs.jsonl\n"
              "Exit codes: 0 all inputs done, 1 some input failed, 2 usage error, 3 model error.");
  sub->callback([opt, global]() { set_exit_code(run_transcribe(*opt, *global)); });
}

}  // namespace tunescribe::cli
