// libFuzzer target: the model config loader — config.json text → JSON →
// ModelConfig::from_json → validate → parameter count and tensor list.
// (Model::load adds libtorch on top; the parsing of config.json is this.)
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "tunescribe/errors.h"
#include "tunescribe/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  try {
    const nlohmann::json& m = j.is_object() && j.contains("model") ? j["model"] : j;
    tunescribe::ModelConfig cfg = tunescribe::ModelConfig::from_json(m);
    cfg.validate();
    (void)cfg.num_parameters();
    (void)tunescribe::expected_tensors(cfg);
    (void)tunescribe::ModelConfig::from_json(cfg.to_json());
  } catch (const tunescribe::Error&) {
  }
  return 0;
}
