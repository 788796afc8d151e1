// model_store.h — where model directories live: --model NAME|DIR resolution and listing.
//
// What it does: the user models folder ($TUNESCRIBE_MODELS, else ~/.local/share/tunescribe/models)
// beside the shipped models (<exe>/../share/tunescribe/models, the source tree's models/);
// resolves a --model argument (a model directory, else a name in the user folder, else a shipped
// model); lists installed models from their config.json (name, parameters, codec, provenance).
// What it does not: load weights (model.h) or create models (mt3_import.h writes them).
// Thread-safety: free functions; they read the environment and the file system only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tunescribe {

// A folder holding config.json and model.safetensors.
bool is_model_dir(const std::string& dir);

// $TUNESCRIBE_MODELS, else $HOME/.local/share/tunescribe/models; "" when neither is set.
// The folder need not exist.
std::string user_models_dir();

// Folders that may hold the shipped models, in lookup order (existing or not).
std::vector<std::string> shipped_models_dirs();

// The shipped model called `name` (canonical path) from the first of shipped_models_dirs()
// that has it; "" when none does.
std::string shipped_model_dir(const std::string& name);

// Model names are 1-64 characters of [A-Za-z0-9._-], starting with a letter or digit.
bool is_valid_model_name(const std::string& name);

// A model directory for a --model argument: the argument itself when it is a model
// directory; else the model of that name in user_models_dir(), then among the shipped
// models; else the argument when it is an existing folder (loading it reports what is
// missing). Throws ModelError when nothing matches.
std::string resolve_model_dir(const std::string& name_or_dir);

struct InstalledModel {
  std::string name;       // folder name (what --model takes)
  std::string dir;
  std::string location;   // "user" or "shipped"
  std::string model_name; // config.json "name"
  int64_t parameters = 0;
  nlohmann::json codec;       // config.json "codec" section ({} when absent)
  nlohmann::json provenance;  // "provenance" (imported), else "training" ({} when absent)
  std::string error;          // why the entry is unusable ("" when it loads as far as checked)
  nlohmann::json to_json() const;
};

// Models in user_models_dir() (location "user"), then in the first existing shipped folder
// ("shipped"), each sorted by name. Folders without config.json are not listed.
std::vector<InstalledModel> list_installed_models();

}  // namespace tunescribe
