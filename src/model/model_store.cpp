// Model folders: the user folder, the shipped folders, --model resolution, listing.
#include "tunescribe/model_store.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>

#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/frontend.h"
#include "tunescribe/model.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace tunescribe {

bool is_model_dir(const std::string& dir) {
  std::error_code ec;
  const fs::path p(dir);
  return fs::is_regular_file(p / "config.json", ec) && fs::is_regular_file(p / "model.safetensors", ec);
}

std::string user_models_dir() {
  const char* env = std::getenv("TUNESCRIBE_MODELS");
  if (env && *env) return env;
  const char* home = std::getenv("HOME");
  if (home && *home) return (fs::path(home) / ".local" / "share" / "tunescribe" / "models").string();
  return "";
}

std::vector<std::string> shipped_models_dirs() {
  std::vector<std::string> out;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    out.push_back((exe.parent_path() / ".." / "share" / "tunescribe" / "models").string());
    out.push_back((exe.parent_path() / ".." / ".." / "models").string());  // build/bin → source tree
  }
  out.push_back((fs::path(TUNESCRIBE_SOURCE_DIR) / "models").string());
  return out;
}

std::string shipped_model_dir(const std::string& name) {
  for (const auto& folder : shipped_models_dirs()) {
    const fs::path c = fs::path(folder) / name;
    if (is_model_dir(c.string())) return fs::weakly_canonical(c).string();
  }
  return "";
}

bool is_valid_model_name(const std::string& name) {
  if (name.empty() || name.size() > 64 || !std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

std::string resolve_model_dir(const std::string& arg) {
  if (is_model_dir(arg)) return arg;
  std::string looked;
  if (is_valid_model_name(arg)) {
    const std::string user = user_models_dir();
    if (!user.empty()) {
      const std::string d = (fs::path(user) / arg).string();
      if (is_model_dir(d)) return d;
      looked = user;
    }
    const std::string shipped = shipped_model_dir(arg);
    if (!shipped.empty()) return shipped;
  }
  std::error_code ec;
  if (fs::is_directory(arg, ec)) return arg;  // Model::load says what is missing
  throw ModelError("model: '" + arg + "' is neither a model directory nor an installed model name" +
                   (looked.empty() ? std::string() : " (looked in " + looked + " and the shipped models)") +
                   "; 'tunescribe models' lists them");
}

json InstalledModel::to_json() const {
  json j = {{"name", name},   {"dir", dir},     {"location", location},     {"model_name", model_name},
            {"parameters", parameters}, {"codec", codec}, {"provenance", provenance}};
  if (!error.empty()) j["error"] = error;
  return j;
}

namespace {

// Parameters of the network a config.json describes (T5 + hconv front), without null_memory.
int64_t parameters_of(const json& cfg) {
  int64_t n = ModelConfig::from_json(cfg.at("model")).num_parameters();
  if (cfg.contains("hconv")) {
    const LogMelConfig fe = LogMelConfig::from_json(cfg.value("frontend", json::object()));
    for (const auto& t : expected_hconv_tensors(HconvConfig::from_json(cfg["hconv"], fe.n_bins, fe.bins_per_semitone))) {
      int64_t k = 1;
      for (int64_t s : t.second) k *= s;
      n += k;
    }
  }
  return n;
}

InstalledModel describe(const fs::path& dir, const std::string& location) {
  InstalledModel m;
  m.name = dir.filename().string();
  m.dir = dir.string();
  m.location = location;
  try {
    const json cfg = json::parse(read_file_text((dir / "config.json").string(), size_t(1) << 24));
    m.model_name = cfg.value("name", std::string());
    m.codec = cfg.value("codec", json::object());
    m.provenance = cfg.contains("provenance") ? cfg["provenance"] : cfg.value("training", json::object());
    m.parameters = parameters_of(cfg);
    if (!is_model_dir(m.dir)) m.error = "model.safetensors is missing";
  } catch (const std::exception& e) {  // a broken entry is listed with the reason, not fatal
    m.error = std::string("config.json: ") + e.what();
  }
  return m;
}

void list_folder(const std::string& folder, const std::string& location, std::vector<InstalledModel>& out) {
  std::error_code ec;
  std::vector<fs::path> dirs;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code e2;
    const std::string fname = it->path().filename().string();
    if (!fname.empty() && fname[0] == '.') continue;  // temporary folders of imports in progress
    if (it->is_directory(e2) && fs::exists(it->path() / "config.json", e2)) dirs.push_back(it->path());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const auto& d : dirs) out.push_back(describe(d, location));
}

}  // namespace

std::vector<InstalledModel> list_installed_models() {
  std::vector<InstalledModel> out;
  const std::string user = user_models_dir();
  if (!user.empty()) list_folder(user, "user", out);
  std::error_code ec;
  for (const auto& s : shipped_models_dirs()) {
    if (!fs::is_directory(s, ec)) continue;
    list_folder(fs::weakly_canonical(s).string(), "shipped", out);
    break;
  }
  return out;
}

}  // namespace tunescribe
