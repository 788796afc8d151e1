// `tunescribe models`: the installed models (user folder, then shipped) with name, parameters,
// codec and provenance; a table or, with --json, one JSON object.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "tunescribe/codec.h"
#include "tunescribe/model_store.h"

namespace tunescribe::cli {

namespace {

std::string codec_summary(const nlohmann::json& j) {
  try {
    const CodecConfig c = CodecConfig::from_json(j);
    return std::to_string(c.num_velocity_bins) + (c.num_velocity_bins == 1 ? " velocity bin" : " velocity bins") +
           (c.use_ties ? ", ties" : "") + ", " + c.program_granularity + " programs, " +
           std::to_string(Codec(c).embedding_rows()) + " rows";
  } catch (const Error&) {
    return "invalid codec";
  }
}

std::string provenance_summary(const nlohmann::json& p) {
  if (!p.is_object() || p.empty()) return "-";
  if (p.value("format", std::string()) == "t5x")
    return "T5X " + p.value("variant", std::string("?")) + " step " + std::to_string(p.value("step", int64_t(-1))) +
           ", sha256 " + p.value("checkpoint_sha256", std::string()).substr(0, 12) + ", from " +
           p.value("source_path", std::string("?"));
  std::string s = "trained";
  if (p.contains("steps") && p["steps"].is_number()) s += " " + p["steps"].dump() + " steps";
  if (p.contains("git_commit") && p["git_commit"].is_string()) s += ", commit " + p["git_commit"].get<std::string>().substr(0, 12);
  return s;
}

std::string millions(int64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fM", double(n) / 1e6);
  return buf;
}

}  // namespace

void setup_models(CLI::App& app, std::shared_ptr<GlobalOptions> global) {
  auto as_json = std::make_shared<bool>(false);
  auto* sub = app.add_subcommand("models", "List installed models (the models folder, then the shipped ones)");
  sub->add_flag("--json", *as_json, "Print one JSON object: {\"user_models_dir\", \"models\": [...]}");
  sub->footer("Models are folders with config.json + model.safetensors. The models folder is $TUNESCRIBE_MODELS,\n"
              "else ~/.local/share/tunescribe/models; 'tunescribe import-mt3 CKPT --name NAME' installs there and\n"
              "'--model NAME' finds a model by name.");
  sub->callback([as_json, global]() {
    apply_global_options(*global);
    const std::vector<InstalledModel> models = list_installed_models();
    if (*as_json) {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& m : models) arr.push_back(m.to_json());
      std::cout << nlohmann::json{{"user_models_dir", user_models_dir()}, {"models", arr}}.dump() << std::endl;
    } else {
      std::cout << "# models folder: " << user_models_dir() << "\n";
      for (const auto& m : models) {
        std::cout << m.name << "\t" << m.location << "\t";
        if (!m.error.empty()) {
          std::cout << "unusable: " << m.error << "\n";
          continue;
        }
        std::cout << millions(m.parameters) << "\t" << codec_summary(m.codec) << "\t"
                  << provenance_summary(m.provenance) << "\t" << m.dir << "\n";
      }
      std::cout.flush();
    }
    set_exit_code(kExitOk);
  });
}

}  // namespace tunescribe::cli
