// `tunescribe generate`: options are parsed now; the engine lands with the generate issue.
#include "commands.h"

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
};

void setup_generate(CLI::App& app, std::shared_ptr<GlobalOptions> global) {
  auto o = std::make_shared<GenerateOptions>();
  auto* sub = app.add_subcommand("generate", "Sample new music from the model (ABC, MIDI, optional audio)");
  sub->add_option("-o,--output-dir", o->out_dir, "Output folder")->capture_default_str();
  sub->add_option("-m,--model", o->model_dir, "Model directory (default: the shipped model)");
  sub->add_option("--seconds", o->seconds, "Length in seconds")->capture_default_str()->check(CLI::Range(0.1, 3600.0));
  sub->add_option("--bars", o->bars, "Length in bars (overrides --seconds)")->check(CLI::Range(1, 10000));
  sub->add_option("--temperature", o->temperature, "Sampling temperature (>0)")->capture_default_str()->check(CLI::Range(1e-3, 10.0));
  sub->add_option("--top-k", o->top_k, "Keep the k most likely tokens (0 = off)")->capture_default_str()->check(CLI::Range(0, 100000));
  sub->add_option("--top-p", o->top_p, "Nucleus sampling mass in (0, 1]")->capture_default_str()->check(CLI::Range(1e-6, 1.0));
  sub->add_option("--seed", o->seed, "Random seed (same seed and options, same output)")->capture_default_str();
  sub->add_option("-n,--num", o->num, "Number of variations")->capture_default_str()->check(CLI::Range(1, 1000));
  sub->add_option("--prompt", o->prompt, "Continue this music (ABC, MIDI or JSON notes)");
  sub->add_option("--from-audio", o->from_audio, "Sample a variation conditioned on this recording");
  sub->add_option("--tempo", o->tempo, "Tempo in quarter notes per minute");
  sub->add_option("--meter", o->meter, "Meter, e.g. 3/4");
  sub->add_option("--key", o->key, "Key, e.g. G, Em, Bb");
  sub->add_option("--instrument", o->instrument, "GM instrument name or program 0..127");
  sub->add_option("--polyphony", o->polyphony, "mono or poly")->capture_default_str()->check(CLI::IsMember({"mono", "poly"}));
  sub->add_flag("--wav", o->wav, "Also render audio with FluidSynth");
  sub->add_option("--soundfont", o->soundfont, "Soundfont for --wav (default: Debian's GM soundfont)");
  sub->add_flag("--json", o->json, "Print a JSON summary on stdout");
  sub->add_flag("--force", o->force, "Overwrite existing outputs");
  sub->callback([o, global]() {
    apply_global_options(*global);
    throw NotAvailableError("generate: not available yet (needs the trained default model)");
  });
}

}  // namespace tunescribe::cli
