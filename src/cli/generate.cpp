// `tunescribe generate`: sample new music from the model → NAME.abc, NAME.mid (and NAME.wav).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "tunescribe/abc_reader.h"
#include "tunescribe/abc_writer.h"
#include "tunescribe/audio.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/generator.h"
#include "tunescribe/log.h"
#include "tunescribe/midi.h"
#include "tunescribe/model.h"
#include "tunescribe/model_store.h"
#include "tunescribe/notes.h"
#include "tunescribe/transcriber.h"

namespace fs = std::filesystem;

namespace tunescribe::cli {

struct GenerateOptions {
  std::string out_dir = ".";
  std::string model_dir;
  double seconds = 30.0;
  int bars = 0;
  double temperature = 1.0;
  int top_k = 0;
  double top_p = 0.95;
  long long seed = 0;
  int num = 1;
  std::string prompt, from_audio, tempo, meter, key, instrument, polyphony = "poly", soundfont;
  bool wav = false, json = false, force = false;
  std::string name;
  int threads = 2;
  double max_note_s = 10.0;
  int max_segment_tokens = 1024;
};

namespace {

NoteSequence load_prompt(const std::string& path) {
  const std::string ext = lower_extension(path);
  NoteSequence seq;
  if (is_midi_path(path)) {
    seq = read_midi_file(path);
  } else if (ext == ".abc") {
    auto tunes = read_abc_file(path);
    if (tunes.empty()) throw InputError("generate: " + path + ": no tune in the ABC file");
    if (tunes.size() > 1) log_warn("generate", path + ": " + std::to_string(tunes.size()) + " tunes, using the first");
    seq = tunes[0].sequence;
  } else if (ext == ".json") {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_file_text(path, size_t(64) << 20));
    } catch (const nlohmann::json::exception& e) {
      throw InputError("generate: " + path + ": not JSON: " + e.what());
    }
    seq = notes_from_json(j, path);
  } else {
    throw InputError("generate: " + path + ": unsupported prompt type (expected .abc, .mid/.midi or .json notes)");
  }
  if (seq.notes.empty()) throw InputError("generate: " + path + ": the prompt has no notes");
  seq.source = path;
  return seq;
}

double parse_tempo(const std::string& s) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end == s.c_str() || *end != '\0' || !std::isfinite(v) || v < 20.0 || v > 400.0)
    throw ConfigError("generate: --tempo \"" + s + "\" is not a tempo (20..400 quarter notes per minute)");
  return v;
}

}  // namespace

static int run_generate(const GenerateOptions& o, const GlobalOptions& g, bool seconds_given) {
  apply_global_options(g);
  // ---- Validate every value before any work.
  GeneratorConfig gc;
  gc.sampling.temperature = o.temperature;
  gc.sampling.top_k = o.top_k;
  gc.sampling.top_p = o.top_p;
  gc.monophonic = o.polyphony == "mono";
  gc.max_note_s = o.max_note_s;
  gc.max_segment_tokens = o.max_segment_tokens;
  if (o.polyphony != "mono" && o.polyphony != "poly")
    throw ConfigError("generate: --polyphony \"" + o.polyphony + "\" must be mono or poly");
  if (!o.instrument.empty()) {
    gc.instrument = gm_program_from_string(o.instrument);
    if (gc.instrument < 0 || gc.instrument > 127)
      throw ConfigError("generate: --instrument \"" + o.instrument +
                        "\" is not a General MIDI instrument (a name such as violin or a program 0..127)");
  }
  double tempo_bpm = 0.0;
  if (!o.tempo.empty()) tempo_bpm = parse_tempo(o.tempo);
  int meter_num = 0, meter_den = 0;
  if (!o.meter.empty()) {
    try {
      parse_meter_fraction(o.meter, &meter_num, &meter_den);
    } catch (const ConfigError&) {
      throw ConfigError("generate: --meter \"" + o.meter + "\" is not a meter (e.g. 4/4, 3/4, 6/8, 2/2, C, C|)");
    }
  }
  KeyName key_name;
  if (!o.key.empty()) {
    try {
      key_name = parse_key_name(o.key);
    } catch (const ConfigError&) {
      throw ConfigError("generate: --key \"" + o.key + "\" is not a key (e.g. C, G, Em, Bb, F#m, Ddor, Amix)");
    }
  }
  if (!o.prompt.empty() && !o.from_audio.empty())
    throw ConfigError("generate: --prompt and --from-audio cannot be used together");
  if (o.seed < 0) throw ConfigError("generate: --seed " + std::to_string(o.seed) + " must be >= 0");
  if (!o.name.empty() && (o.name.find('/') != std::string::npos || o.name == "." || o.name == ".."))
    throw ConfigError("generate: --name \"" + o.name + "\" must be a plain file name without '/'");
  std::string soundfont;
  if (o.wav) {
    if (!have_fluidsynth()) throw NotAvailableError("generate: --wav needs libfluidsynth, which this build does not have");
    soundfont = o.soundfont.empty() ? default_soundfont() : o.soundfont;
    if (soundfont.empty())
      throw ConfigError("generate: --wav: no default soundfont in /usr/share/sounds/sf2; pass --soundfont FILE.sf2");
    std::error_code ec;
    if (!fs::is_regular_file(soundfont, ec)) throw ConfigError("generate: --soundfont " + soundfont + ": no such file");
  }

  // Prompt (its metadata fills in tempo/meter/key that were not given).
  NoteSequence prompt;
  if (!o.prompt.empty()) prompt = load_prompt(o.prompt);
  if (tempo_bpm <= 0 && !prompt.tempos.empty()) tempo_bpm = std::clamp(prompt.tempos.front().bpm, 20.0, 400.0);
  if (meter_num == 0 && !prompt.time_signatures.empty()) {
    meter_num = prompt.time_signatures.front().numerator;
    meter_den = prompt.time_signatures.front().denominator;
  }
  // Length.
  if (o.bars > 0) {
    if (tempo_bpm <= 0) tempo_bpm = 120.0;
    if (meter_num == 0) meter_num = meter_den = 4;
    gc.seconds = bars_to_seconds(o.bars, std::to_string(meter_num) + "/" + std::to_string(meter_den), tempo_bpm);
  } else {
    gc.seconds = o.seconds;
  }
  if (!o.from_audio.empty() && !seconds_given && o.bars == 0) gc.seconds = 36000.0;  // the whole recording
  gc.validate();

  // Outputs (checked before any work; never overwritten without --force).
  std::error_code ec;
  fs::create_directories(o.out_dir.empty() ? "." : o.out_dir, ec);
  if (ec) throw OutputError("generate: " + o.out_dir + ": cannot create output folder: " + ec.message());
  struct Piece {
    uint64_t seed;
    std::string name;
    std::vector<std::string> outs;  // abc, mid, [wav]
  };
  std::vector<Piece> pieces;
  for (int i = 0; i < o.num; ++i) {
    Piece p;
    p.seed = uint64_t(o.seed) + uint64_t(i);
    if (o.name.empty()) p.name = "generated-" + std::to_string(p.seed);
    else p.name = o.num == 1 ? o.name : o.name + "-" + std::to_string(p.seed);
    for (const char* ext : {"abc", "mid", "wav"}) {
      if (std::string(ext) == "wav" && !o.wav) continue;
      p.outs.push_back((fs::path(o.out_dir.empty() ? "." : o.out_dir) / (p.name + "." + ext)).string());
    }
    if (!o.force)
      for (const auto& f : p.outs)
        if (fs::exists(f, ec)) throw OutputError("generate: " + f + ": exists (use --force to overwrite)");
    pieces.push_back(p);
  }

  // ---- Model.
  std::string dir = o.model_dir.empty() ? default_generate_model_dir() : resolve_model_dir(o.model_dir);
  if (dir.empty())
    throw ModelError("generate: no default model found (looked for models/generate and models/default in "
                     "<exe>/../share/tunescribe and the source tree); pass --model DIR");
  set_model_threads(o.threads);
  auto model = Model::load(dir);
  Generator gen(*model);
  Audio audio;
  const Audio* audio_ptr = nullptr;
  if (!o.from_audio.empty()) {
    AudioConfig ac;
    ac.target_rate_hz = gen.sample_rate_hz();
    audio = load_audio(o.from_audio, ac);
    audio_ptr = &audio;
  }

  for (const Piece& p : pieces) {
    gc.seed = p.seed;
    const auto t0 = std::chrono::steady_clock::now();
    GenerationResult r = gen.generate(gc, prompt.notes.empty() ? nullptr : &prompt, audio_ptr);
    NoteSequence seq = r.notes;
    seq.source = p.name;
    int transpose = 0;
    std::string estimated_key;
    if (!o.key.empty()) transpose = transpose_to_key(seq, o.key, &estimated_key);
    // Metadata for MIDI and ABC.
    if (tempo_bpm > 0) seq.tempos = {TempoChange{0.0, tempo_bpm}};
    if (meter_num > 0) seq.time_signatures = {TimeSignature{0.0, meter_num, meter_den}};
    if (!o.key.empty()) seq.key_signatures = {KeySignature{0.0, key_name.fifths, key_name.minor}};
    else if (!prompt.key_signatures.empty()) seq.key_signatures = {prompt.key_signatures.front()};
    AbcWriterConfig ac;
    ac.title = p.name;
    ac.meter = o.meter;
    ac.key = o.key;
    AbcTune tune = write_abc(seq, ac);
    write_file_atomic(p.outs[0], tune.text);
    MidiWriteOptions mo;
    if (tempo_bpm > 0) mo.bpm = tempo_bpm;
    write_midi_file(p.outs[1], seq, mo);
    if (o.wav) {
      std::vector<float> samples = render_with_fluidsynth(seq, soundfont, 44100);
      write_wav(p.outs[2], samples, 44100, true);
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    log_info("generate", p.outs[0] + ": " + std::to_string(seq.notes.size()) + " notes, " +
                             std::to_string(r.tokens_sampled) + " tokens sampled");
    if (o.json) {
      nlohmann::json j = {
          {"name", p.name},
          {"files", p.outs},
          {"seed", p.seed},
          {"notes", seq.notes.size()},
          {"seconds", r.seconds},
          {"prompt_seconds", r.prompt_s},
          {"segments", r.segment_tokens.size()},
          {"tokens", r.tokens_sampled},
          {"tokens_forced", r.tokens_forced},
          {"decoder_steps", r.decoder_steps},
          {"decode_seconds", r.decode_s},
          {"tokens_per_second", r.decode_s > 0 ? double(r.tokens_sampled) / r.decode_s : 0.0},
          {"wall_seconds", wall},
          {"invalid_tokens", r.invalid_tokens},
          {"transpose_semitones", transpose},
          {"estimated_key", estimated_key},
          {"abc", {{"meter", tune.meter}, {"key", tune.key}, {"tempo_bpm", tune.tempo_bpm}, {"bars", tune.bars}}},
          {"model", model->name()}};
      std::cout << j.dump() << std::endl;
    }
  }
  return kExitOk;
}

void setup_generate(CLI::App& app, std::shared_ptr<GlobalOptions> global) {
  auto o = std::make_shared<GenerateOptions>();
  auto* sub = app.add_subcommand("generate", "Sample new music from the model (ABC, MIDI, optional audio)");
  sub->add_option("-o,--output-dir", o->out_dir, "Output folder")->capture_default_str();
  sub->add_option("-m,--model", o->model_dir, "Model directory or installed model name (tunescribe models); default: the shipped generation model, models/generate");
  sub->add_option("--seconds", o->seconds, "Length in seconds (after the prompt)")->capture_default_str()->check(CLI::Range(0.1, 3600.0));
  sub->add_option("--bars", o->bars, "Length in bars (overrides --seconds; uses --tempo, default 120, and --meter, default 4/4)")->check(CLI::Range(1, 10000));
  sub->add_option("--temperature", o->temperature, "Sampling temperature (>0)")->capture_default_str()->check(CLI::Range(1e-3, 10.0));
  sub->add_option("--top-k", o->top_k, "Keep the k most likely tokens (0 = off)")->capture_default_str()->check(CLI::Range(0, 100000));
  sub->add_option("--top-p", o->top_p, "Nucleus sampling mass in (0, 1]")->capture_default_str()->check(CLI::Range(1e-6, 1.0));
  sub->add_option("--seed", o->seed, "Random seed (same seed and options, same output); variation i uses seed+i")->capture_default_str();
  sub->add_option("-n,--num", o->num, "Number of variations")->capture_default_str()->check(CLI::Range(1, 1000));
  sub->add_option("--prompt", o->prompt, "Continue this music (ABC, MIDI or JSON notes)");
  sub->add_option("--from-audio", o->from_audio, "Sample a variation conditioned on this recording");
  sub->add_option("--tempo", o->tempo, "Tempo in quarter notes per minute");
  sub->add_option("--meter", o->meter, "Meter, e.g. 3/4");
  sub->add_option("--key", o->key, "Key, e.g. G, Em, Bb (the result is transposed into it)");
  sub->add_option("--instrument", o->instrument, "GM instrument name or program 0..127");
  sub->add_option("--polyphony", o->polyphony, "mono or poly")->capture_default_str()->check(CLI::IsMember({"mono", "poly"}));
  sub->add_flag("--wav", o->wav, "Also render audio with FluidSynth");
  sub->add_option("--soundfont", o->soundfont, "Soundfont for --wav (default: Debian's GM soundfont)");
  sub->add_flag("--json", o->json, "Print a JSON summary on stdout (one line per piece)");
  sub->add_flag("--force", o->force, "Overwrite existing outputs");
  sub->add_option("--name", o->name, "Output name (default generated-SEED; with --num, NAME-SEED)");
  sub->add_option("-t,--threads", o->threads, "libtorch threads")->capture_default_str()->check(CLI::Range(1, 256));
  sub->add_option("--max-note-seconds", o->max_note_s, "Notes held longer are ended at the next segment boundary")
      ->capture_default_str()->check(CLI::Range(0.1, 3600.0));
  sub->add_option("--max-segment-tokens", o->max_segment_tokens, "Tokens per 2.048 s segment")
      ->capture_default_str()->check(CLI::Range(8, 4096));
  sub->footer("Examples:\n  tunescribe generate --seconds 20 --seed 7 -o out/\n"
              "  tunescribe generate --bars 16 --tempo 100 --meter 3/4 --key G --instrument violin --polyphony mono\n"
              "  tunescribe generate --prompt tune.abc --seconds 10 --wav\n"
              "Exit codes: 0 done, 1 an input or output failed, 2 usage error, 3 model error.");
  sub->callback([o, global, sub]() {
    const bool seconds_given = sub->get_option("--seconds")->count() > 0;
    set_exit_code(run_generate(*o, *global, seconds_given));
  });
}

}  // namespace tunescribe::cli
