// `tunescribe generate`: sample new music from the model → NAME.abc, NAME.mid (and NAME.wav).
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "tunescribe/generate_files.h"

namespace tunescribe::cli {

struct GenerateOptions {
  GenerateFilesConfig files;  // every flag but --json
  bool json = false;
};

static int run_generate(const GenerateOptions& o, const GlobalOptions& g) {
  apply_global_options(g);
  FileGenerator generator(o.files);  // every value, the prompt and the outputs are checked here
  for (size_t i = 0; i < generator.size(); ++i) {
    const GeneratedPiece piece = generator.generate(i);
    if (o.json) std::cout << piece.to_json().dump() << std::endl;
  }
  if (!generator.unavailable().empty())  // --format svg without abcm2ps: the other files are written
    return report_error(NotAvailableError(generator.unavailable() + "; the other formats were written"));
  return kExitOk;
}

void setup_generate(CLI::App& app, std::shared_ptr<GlobalOptions> global) {
  auto o = std::make_shared<GenerateOptions>();
  o->files.generator.sampling.top_p = 0.95;
  auto* sub = app.add_subcommand("generate", "Sample new music from the model (ABC, MIDI, optional audio)");
  sub->add_option("-o,--output-dir", o->files.out_dir, "Output folder")->capture_default_str();
  sub->add_option("-m,--model", o->files.model_dir, "Model directory or installed model name (tunescribe models); default: the shipped generation model, models/generate");
  sub->add_option("--seconds", o->files.seconds, "Length in seconds (after the prompt)")->capture_default_str()->check(CLI::Range(0.1, 3600.0));
  sub->add_option("--bars", o->files.bars, "Length in bars (overrides --seconds; uses --tempo, default 120, and --meter, default 4/4)")->check(CLI::Range(1, 10000));
  sub->add_option("--temperature", o->files.generator.sampling.temperature, "Sampling temperature (>0)")->capture_default_str()->check(CLI::Range(1e-3, 10.0));
  sub->add_option("--top-k", o->files.generator.sampling.top_k, "Keep the k most likely tokens (0 = off)")->capture_default_str()->check(CLI::Range(0, 100000));
  sub->add_option("--top-p", o->files.generator.sampling.top_p, "Nucleus sampling mass in (0, 1]")->capture_default_str()->check(CLI::Range(1e-6, 1.0));
  sub->add_option("--seed", o->files.seed, "Random seed (same seed and options, same output); variation i uses seed+i")->capture_default_str();
  sub->add_option("-n,--num", o->files.num, "Number of variations")->capture_default_str()->check(CLI::Range(1, 1000));
  sub->add_option("--prompt", o->files.prompt, "Continue this music (ABC, MIDI, JSON or CSV notes)");
  sub->add_option("--from-audio", o->files.from_audio,
                  "Sample a variation conditioned on this recording (any audio transcribe reads: WAV, FLAC, OGG, "
                  "Opus, MP3, AIFF …)");
  sub->add_option("--tempo", o->files.tempo, "Tempo in quarter notes per minute");
  sub->add_option("--meter", o->files.meter, "Meter, e.g. 3/4");
  sub->add_option("--key", o->files.key, "Key, e.g. G, Em, Bb (the result is transposed into it)");
  sub->add_option("--instrument", o->files.instrument,
                  "GM instrument name or program 0..127: every note is played by it, within its practical range "
                  "(violin 55..100, cello 36..76, …), and the ABC voice is written in its clef");
  sub->add_option("--polyphony", o->files.polyphony, "mono or poly")->capture_default_str()->check(CLI::IsMember({"mono", "poly"}));
  sub->add_flag("--wav", o->files.wav, "Also render audio with FluidSynth");
  sub->add_option("--soundfont", o->files.soundfont, "Soundfont for --wav (default: Debian's GM soundfont)");
  sub->add_option("-f,--format", o->files.formats,
                  "More outputs besides NAME.abc and NAME.mid, comma-separated: musicxml (NAME.musicxml, MusicXML 4.0), "
                  "svg (sheet music by abcm2ps, one file per page: NAME.svg, NAME-2.svg …), roll (piano-roll SVG: "
                  "NAME.roll.svg), wav (= --wav)")
      ->capture_default_str();
  sub->add_flag("--json", o->json, "Print a JSON summary on stdout (one line per piece)");
  sub->add_flag("--force", o->files.force, "Overwrite existing outputs");
  sub->add_option("--name", o->files.name, "Output name (default generated-SEED; with --num, NAME-SEED)");
  sub->add_option("-t,--threads", o->files.threads, "libtorch threads")->capture_default_str()->check(CLI::Range(1, 256));
  sub->add_option("--max-note-seconds", o->files.generator.max_note_s, "Notes held longer are ended at the next segment boundary")
      ->capture_default_str()->check(CLI::Range(0.1, 3600.0));
  sub->add_option("--max-segment-tokens", o->files.generator.max_segment_tokens, "Tokens per 2.048 s segment")
      ->capture_default_str()->check(CLI::Range(8, 4096));
  sub->footer("Examples:\n  tunescribe generate --seconds 20 --seed 7 -o out/\n"
              "  tunescribe generate --bars 16 --tempo 100 --meter 3/4 --key G --instrument violin --polyphony mono\n"
              "  tunescribe generate --prompt tune.abc --seconds 10 --wav\n"
              "  tunescribe generate --seconds 30 -f svg,roll,wav   (sheet music, piano roll, audio)\n"
              "  tunescribe generate --prompt notes.csv --seconds 10   (CSV note events from transcribe --format csv)\n"
              "  tunescribe generate --from-audio song.mp3 --seconds 20 (MP3/Opus recordings work where libsndfile reads them)\n"
              "  tunescribe generate --bars 8 --seed 3 --format musicxml -o out/   (also out/generated-3.musicxml)\n"
              "Exit codes: 0 done, 1 an input or output failed, 2 usage error, 3 model error.");
  sub->callback([o, global, sub]() {
    o->files.seconds_given = sub->get_option("--seconds")->count() > 0;
    set_exit_code(run_generate(*o, *global));
  });
}

}  // namespace tunescribe::cli
