// `tunescribe import-mt3`: a published MT3 checkpoint (T5X: msgpack + zarr) → a model directory
// (config.json + model.safetensors), written to -o DIR or installed by --name into the models folder.
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "tunescribe/mt3_import.h"
#include "tunescribe/model_store.h"

namespace fs = std::filesystem;

namespace tunescribe::cli {

struct ImportMt3Options {
  std::string checkpoint_dir;
  std::string out_dir;  // -o; empty: <models folder>/<name>
  std::string name;     // --name: model name (and folder in the models folder without -o)
  bool fp16 = false;
  bool force = false;
  bool json = false;
};

namespace {

// Where the model goes: -o, else the models folder / --name.
std::string output_dir_for(const ImportMt3Options& o) {
  if (!o.name.empty() && !is_valid_model_name(o.name))
    throw ConfigError("import-mt3: --name '" + o.name +
                      "' is not a model name (1-64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit)");
  if (!o.out_dir.empty()) return o.out_dir;
  if (o.name.empty()) throw ConfigError("import-mt3: give -o MODEL_DIR or --name NAME (installs into the models folder)");
  const std::string folder = user_models_dir();
  if (folder.empty())
    throw ConfigError("import-mt3: --name needs $TUNESCRIBE_MODELS or $HOME to find the models folder; pass -o MODEL_DIR");
  return (fs::path(folder) / o.name).string();
}

int run_import_mt3(const ImportMt3Options& o, const GlobalOptions& g) {
  apply_global_options(g);
  Mt3ImportConfig cfg;
  cfg.checkpoint_dir = o.checkpoint_dir;
  cfg.output_dir = output_dir_for(o);
  cfg.name = o.name;
  cfg.dtype = o.fp16 ? "F16" : "F32";
  cfg.overwrite = o.force;
  cfg.validate();
  std::error_code ec;
  if (!o.force && fs::exists(cfg.output_dir, ec))
    throw OutputError("import-mt3: " + cfg.output_dir + ": exists (use --force to replace it)");
  const Mt3ImportResult r = import_mt3(cfg);
  if (o.json) {
    std::cout << nlohmann::json{{"output_dir", r.output_dir},     {"variant", r.variant},
                                {"step", r.step},                 {"parameters", r.parameters},
                                {"checkpoint_sha256", r.checkpoint_sha256}, {"dtype", cfg.dtype},
                                {"name", r.config.value("name", std::string())}}
                     .dump()
              << std::endl;
  } else {
    std::cout << "imported " << r.variant << " (step " << r.step << ", " << r.parameters << " parameters, "
              << cfg.dtype << ") into " << r.output_dir << "\n"
              << "  transcribe with: tunescribe transcribe song.wav --model "
              << (o.out_dir.empty() ? o.name : r.output_dir) << std::endl;
  }
  return kExitOk;
}

}  // namespace

void setup_import_mt3(CLI::App& app, std::shared_ptr<GlobalOptions> global) {
  auto o = std::make_shared<ImportMt3Options>();
  auto* sub = app.add_subcommand("import-mt3", "Import Magenta's published MT3 checkpoint (T5X) as a model directory");
  sub->add_option("checkpoint", o->checkpoint_dir,
                  "T5X checkpoint folder (the 'checkpoint' msgpack file + target.* zarr folders), e.g. from "
                  "gsutil -m cp -r gs://mt3/checkpoints/mt3 .")
      ->required();
  sub->add_option("-o,--output", o->out_dir, "Model directory to create (default with --name: the models folder)");
  sub->add_option("--name", o->name,
                  "Model name; without -o installs into $TUNESCRIBE_MODELS (else ~/.local/share/tunescribe/models), "
                  "so that --model NAME finds it");
  sub->add_flag("--fp16", o->fp16, "Store the weights as float16 (half the size; computed in float32)");
  sub->add_flag("--force", o->force, "Replace an existing model directory");
  sub->add_flag("--json", o->json, "Print a JSON summary on stdout");
  sub->footer("Examples:\n  gsutil -m cp -r gs://mt3/checkpoints/mt3 .\n"
              "  tunescribe import-mt3 mt3 --name mt3 && tunescribe transcribe song.wav --model mt3\n"
              "  tunescribe import-mt3 ismir2021 -o models/ismir2021 --fp16\n"
              "Exit codes: 0 done, 1 output exists or cannot be written, 2 usage error, 3 checkpoint error.");
  sub->callback([o, global]() { set_exit_code(run_import_mt3(*o, *global)); });
}

}  // namespace tunescribe::cli
