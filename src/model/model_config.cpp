// model_config.cpp — ModelConfig, the expected parameter tree and random
// weights (no libtorch in this file).
#include <cmath>
#include <random>

#include "tunescribe/errors.h"
#include "tunescribe/model.h"
#include "util/json_fields.h"

namespace tunescribe {

const char* const kNullMemoryTensor = "target/decoder/null_memory";

namespace {

void check_range(const char* field, int value, int lo, int hi) {
  if (value < lo || value > hi)
    throw ConfigError(std::string("model: config.json: model.") + field + " = " + std::to_string(value) +
                      " is not within [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
}

}  // namespace

void ModelConfig::validate() const {
  check_range("d_model", d_model, 4, 16384);
  if (d_model % 2)
    throw ConfigError("model: config.json: model.d_model = " + std::to_string(d_model) + " must be even");
  check_range("num_heads", num_heads, 1, 256);
  check_range("head_dim", head_dim, 1, 1024);
  check_range("mlp_dim", mlp_dim, 1, 65536);
  check_range("num_encoder_layers", num_encoder_layers, 0, 128);
  check_range("num_decoder_layers", num_decoder_layers, 1, 128);
  check_range("input_depth", input_depth, 1, 16384);
  check_range("vocab_size", vocab_size, 128, 1 << 20);
  if (vocab_size % 128)
    throw ConfigError("model: config.json: model.vocab_size = " + std::to_string(vocab_size) +
                      " must be a multiple of 128 (embedding rows)");
  check_range("max_positions", max_positions, 2, 65536);
}

nlohmann::json ModelConfig::to_json() const {
  return {{"d_model", d_model},
          {"num_heads", num_heads},
          {"head_dim", head_dim},
          {"mlp_dim", mlp_dim},
          {"num_encoder_layers", num_encoder_layers},
          {"num_decoder_layers", num_decoder_layers},
          {"input_depth", input_depth},
          {"vocab_size", vocab_size},
          {"max_positions", max_positions}};
}

ModelConfig ModelConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw ConfigError("model: config.json: the \"model\" section is not an object");
  ModelConfig c;  // every field is required: a model file must describe itself fully
  const std::string where = "model: config.json: model.";
  json_fields::require_int(j, "d_model", where, c.d_model);
  json_fields::require_int(j, "num_heads", where, c.num_heads);
  json_fields::require_int(j, "head_dim", where, c.head_dim);
  json_fields::require_int(j, "mlp_dim", where, c.mlp_dim);
  json_fields::require_int(j, "num_encoder_layers", where, c.num_encoder_layers);
  json_fields::require_int(j, "num_decoder_layers", where, c.num_decoder_layers);
  json_fields::require_int(j, "input_depth", where, c.input_depth);
  json_fields::require_int(j, "vocab_size", where, c.vocab_size);
  json_fields::require_int(j, "max_positions", where, c.max_positions);
  c.validate();
  return c;
}

int64_t ModelConfig::num_parameters() const {
  int64_t n = 0;
  for (const auto& t : expected_tensors(*this)) {
    int64_t k = 1;
    for (int64_t s : t.second) k *= s;
    n += k;
  }
  return n;
}

// ---------------------------------------------------------------------------
// HconvConfig

std::vector<int> HconvConfig::shifts() const {
  std::vector<int> out;
  for (double h : harmonics) out.push_back(int(std::nearbyint(12.0 * bins_per_semitone * std::log2(h))));
  return out;
}

void HconvConfig::validate() const {
  const std::string where = "model: config.json: hconv.";
  if (harmonics.empty() || harmonics.size() > 64)
    throw ConfigError(where + "harmonics has " + std::to_string(harmonics.size()) + " entries, expected 1 to 64");
  for (double h : harmonics)
    if (!std::isfinite(h) || !(h > 0.0) || h > 64.0)
      throw ConfigError(where + "harmonics: " + std::to_string(h) + " is not within (0, 64]");
  auto range = [&](const char* field, int v, int lo, int hi) {
    if (v < lo || v > hi)
      throw ConfigError(where + field + " = " + std::to_string(v) + " is not within [" + std::to_string(lo) + ", " +
                        std::to_string(hi) + "]");
  };
  range("conv_channels", conv_channels, 1, 1024);
  range("key_channels", key_channels, 1, 1024);
  range("res_layers", res_layers, 0, 16);
  range("num_families", num_families, 1, 16);
  range("bin_offset", bin_offset, -4096, 4096);
  if (n_bins < 1 || n_bins > 4096)
    throw ConfigError("model: config.json: frontend.n_bins = " + std::to_string(n_bins) + " is not within [1, 4096]");
  if (bins_per_semitone < 1 || bins_per_semitone > 48)
    throw ConfigError("model: config.json: frontend.bins_per_semitone = " + std::to_string(bins_per_semitone) +
                      " is not within [1, 48]");
}

nlohmann::json HconvConfig::to_json() const {
  return {{"harmonics", harmonics},         {"conv_channels", conv_channels}, {"key_channels", key_channels},
          {"res_layers", res_layers},       {"num_families", num_families},   {"bin_offset", bin_offset}};
}

HconvConfig HconvConfig::from_json(const nlohmann::json& j, int n_bins, int bins_per_semitone) {
  if (!j.is_object()) throw ConfigError("model: config.json: the \"hconv\" section is not an object");
  HconvConfig c;
  const std::string where = "model: config.json: hconv.";
  if (j.contains("harmonics")) {
    const auto& h = j["harmonics"];
    if (!h.is_array()) throw ConfigError(where + "harmonics is not an array of numbers");
    c.harmonics.clear();
    for (const auto& v : h) {
      if (!v.is_number()) throw ConfigError(where + "harmonics holds " + v.dump() + ", not a number");
      c.harmonics.push_back(v.get<double>());
    }
  }
  json_fields::read_int(j, "conv_channels", where, c.conv_channels);
  json_fields::read_int(j, "key_channels", where, c.key_channels);
  json_fields::read_int(j, "res_layers", where, c.res_layers);
  json_fields::read_int(j, "num_families", where, c.num_families);
  json_fields::read_int(j, "bin_offset", where, c.bin_offset);
  c.n_bins = n_bins;
  c.bins_per_semitone = bins_per_semitone;
  c.validate();
  return c;
}

std::vector<std::pair<std::string, std::vector<int64_t>>> expected_hconv_tensors(const HconvConfig& c) {
  const int64_t n = c.n_bins, H = int64_t(c.harmonics.size()), c1 = c.conv_channels, c2 = c.key_channels;
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  auto conv = [&](const std::string& name, std::vector<int64_t> kernel) {
    const int64_t o = kernel[0];
    out.emplace_back("hconv/" + name + "/kernel", std::move(kernel));
    out.emplace_back("hconv/" + name + "/bias", std::vector<int64_t>{o});
  };
  out.emplace_back("hconv/in_scale", std::vector<int64_t>{n});
  out.emplace_back("hconv/in_bias", std::vector<int64_t>{n});
  conv("conv1", {c1, H, 3, 3});
  conv("conv2", {c1, c1, 3, 3});
  conv("down", {c2, c1, 1, c.bins_per_semitone});
  for (int i = 0; i < c.res_layers; ++i) conv("res" + std::to_string(i), {c2, c2, 3, 3});
  conv("heads", {int64_t(c.num_heads()), c2, 1, 1});
  return out;
}

// ---------------------------------------------------------------------------

std::vector<std::pair<std::string, std::vector<int64_t>>> expected_tensors(const ModelConfig& c) {
  const int64_t d = c.d_model, hd = int64_t(c.num_heads) * c.head_dim, m = c.mlp_dim, v = c.vocab_size;
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) { out.emplace_back(name, std::move(shape)); };
  auto attn = [&](const std::string& p) {
    add(p + "/query/kernel", {d, hd});
    add(p + "/key/kernel", {d, hd});
    add(p + "/value/kernel", {d, hd});
    add(p + "/out/kernel", {hd, d});
  };
  auto mlp = [&](const std::string& p) {
    add(p + "/wi_0/kernel", {d, m});
    add(p + "/wi_1/kernel", {d, m});
    add(p + "/wo/kernel", {m, d});
  };
  add("target/encoder/continuous_inputs_projection/kernel", {c.input_depth, d});
  for (int i = 0; i < c.num_encoder_layers; ++i) {
    const std::string p = "target/encoder/layers_" + std::to_string(i);
    add(p + "/pre_attention_layer_norm/scale", {d});
    attn(p + "/attention");
    add(p + "/pre_mlp_layer_norm/scale", {d});
    mlp(p + "/mlp");
  }
  add("target/encoder/encoder_norm/scale", {d});
  add("target/decoder/token_embedder/embedding", {v, d});
  for (int i = 0; i < c.num_decoder_layers; ++i) {
    const std::string p = "target/decoder/layers_" + std::to_string(i);
    add(p + "/pre_self_attention_layer_norm/scale", {d});
    attn(p + "/self_attention");
    add(p + "/pre_cross_attention_layer_norm/scale", {d});
    attn(p + "/encoder_decoder_attention");
    add(p + "/pre_mlp_layer_norm/scale", {d});
    mlp(p + "/mlp");
  }
  add("target/decoder/decoder_norm/scale", {d});
  add("target/decoder/logits_dense/kernel", {d, v});
  return out;
}

std::map<std::string, SafetensorsTensor> random_model_tensors(const ModelConfig& cfg, uint64_t seed,
                                                              bool with_null_memory) {
  cfg.validate();
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::map<std::string, SafetensorsTensor> out;
  auto fill = [&](const std::string& name, const std::vector<int64_t>& shape) {
    SafetensorsTensor t;
    t.shape = shape;
    t.dtype = "F32";
    t.data.resize(size_t(t.numel()));
    auto ends_with = [&](const char* s) {
      std::string suf(s);
      return name.size() >= suf.size() && name.compare(name.size() - suf.size(), suf.size(), suf) == 0;
    };
    if (ends_with("/scale")) {
      for (auto& x : t.data) x = 1.0f + 0.1f * normal(rng);
    } else if (ends_with("/embedding") || ends_with("null_memory")) {
      for (auto& x : t.data) x = normal(rng);
    } else {
      float sd = 1.0f / std::sqrt(float(shape[0]));
      if (ends_with("/query/kernel")) sd /= std::sqrt(float(cfg.head_dim));
      for (auto& x : t.data) x = sd * normal(rng);
    }
    out.emplace(name, std::move(t));
  };
  for (const auto& e : expected_tensors(cfg)) fill(e.first, e.second);
  if (with_null_memory) fill(kNullMemoryTensor, {1, cfg.d_model});
  return out;
}

}  // namespace tunescribe
