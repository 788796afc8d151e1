// model.h — the MT3 T5 encoder-decoder (libtorch, CPU, fp32) and its model directory.
//
// What it does: loads a model directory (config.json + model.safetensors, the
// MT3 parameter tree of ../shared/specs/mt3.md §3.5 in Flax [in, out] kernel
// layout), checks every tensor name and shape, and runs the network of §3:
// continuous-input projection, fixed [sin | cos] positions (denominator d/2-1),
// pre-RMSNorm (eps 1e-6), unscaled multi-head attention (heads x head_dim may
// differ from d_model), gated tanh-GELU MLP, no biases, untied logits.
// Decoding (§4.1): greedy argmax with a self-attention KV cache per layer and
// cross-attention keys/values computed once, batched across segments; finished
// items are dropped from the batch. A step-wise API serves samplers.
// What it does not: compute log-mels (frontend.h) or turn tokens into notes (codec).
// Units: mel input is [batch, frames, input_depth] row-major float32 log-mel;
// token ids are model ids (0 = PAD/BOS, 1 = EOS, 2 = UNK).
// Thread-safety: a loaded Model is immutable; encode/decode may run from several
// threads at once (each call owns its tensors). set_model_threads is process-wide.
// This header does not include libtorch.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tunescribe/safetensors.h"

namespace tunescribe {

// The "model" section of config.json.
struct ModelConfig {
  int d_model = 512;
  int num_heads = 6;
  int head_dim = 64;
  int mlp_dim = 1024;
  int num_encoder_layers = 8;
  int num_decoder_layers = 8;
  int input_depth = 512;   // mel bins per frame
  int vocab_size = 1536;   // embedding rows (a multiple of 128)
  int max_positions = 2048;

  void validate() const;  // throws ConfigError naming field, value and range
  nlohmann::json to_json() const;
  // Every key is required; throws ConfigError naming a missing or non-integer key.
  static ModelConfig from_json(const nlohmann::json& j);
  int64_t num_parameters() const;  // without null_memory
};

// Every tensor a model of this config must have, with its [in, out] shape,
// in a stable order (encoder, then decoder). null_memory is not included.
std::vector<std::pair<std::string, std::vector<int64_t>>> expected_tensors(const ModelConfig& cfg);
extern const char* const kNullMemoryTensor;  // "target/decoder/null_memory" [1, d_model], optional

// Random weights (benchmarks, tests): kernels ~ N(0, 1/fan_in) (queries also
// /sqrt(head_dim)), embeddings ~ N(0, 1), norm scales 1 (+ small noise).
std::map<std::string, SafetensorsTensor> random_model_tensors(const ModelConfig& cfg, uint64_t seed,
                                                              bool with_null_memory = true);

// Encoder output (opaque; holds a tensor [batch, frames, d_model] and the
// cross-attention keys/values lazily). Cheap to copy (shared).
class EncoderOutput {
 public:
  EncoderOutput();
  ~EncoderOutput();
  EncoderOutput(const EncoderOutput&);
  EncoderOutput& operator=(const EncoderOutput&);
  int batch() const;
  int frames() const;
  int d_model() const;
  std::vector<float> to_vector() const;  // [batch, frames, d_model] row-major
  bool empty() const;
  struct Impl;
  std::shared_ptr<Impl> impl;
};

struct GreedyOptions {
  int eos_id = 1;
  bool shrink_batch = true;  // drop finished items from the batch (else keep them, unused)
  bool use_cache = true;     // false: recompute the whole prefix each step (reference, slow)
};

// Wall-clock split of decoding work (filled when a profile is attached; the
// timing synchronises nothing, CPU ops are synchronous).
struct DecodeProfile {
  double encoder_s = 0, embed_s = 0, self_attn_s = 0, cross_kv_s = 0, cross_attn_s = 0, mlp_s = 0,
         logits_s = 0, cache_s = 0, total_decode_s = 0;
  int64_t tokens = 0;  // tokens produced
  int64_t steps = 0;   // decoder steps (batched)
};

// Step-wise decoding state for samplers (opaque).
class DecoderState {
 public:
  DecoderState();
  ~DecoderState();
  DecoderState(DecoderState&&) noexcept;
  DecoderState& operator=(DecoderState&&) noexcept;
  int batch() const;
  int position() const;    // position the next fed token takes (0 = BOS)
  int max_length() const;  // positions available in the cache
  struct Impl;
  std::unique_ptr<Impl> impl;
};

class Model {
 public:
  // Reads dir/config.json and dir/model.safetensors. Throws ModelError naming
  // the file (missing/misshaped tensor, bad header, wrong model_type, ...).
  static std::unique_ptr<Model> load(const std::string& dir);
  // Builds a model from a parsed config.json object and tensors (checked like load).
  static std::unique_ptr<Model> from_tensors(const nlohmann::json& config_json,
                                             const std::map<std::string, SafetensorsTensor>& tensors,
                                             const std::string& label = "<memory>");
  ~Model();

  const ModelConfig& config() const;
  const nlohmann::json& raw_config() const;      // the whole config.json
  const nlohmann::json& frontend_json() const;   // "frontend" section ({} when absent)
  const nlohmann::json& codec_json() const;      // "codec" section ({} when absent)
  std::string name() const;
  const std::string& dir() const;
  bool has_null_memory() const;

  // mel: [batch, frames, input_depth]; 1 <= frames <= max_positions.
  EncoderOutput encode(const float* mel, int batch, int frames) const;
  // The learned "no audio" memory repeated for `batch` items (ModelError if absent).
  EncoderOutput null_memory(int batch) const;

  // Greedy decoding: per item the generated ids after BOS, ending with EOS when
  // it was produced (nothing after it), at most max_steps ids.
  std::vector<std::vector<int>> greedy_decode(const EncoderOutput& enc, int max_steps,
                                              const GreedyOptions& opts = {}) const;

  // Teacher-forced logits for decoder inputs (each row starts with BOS = 0; all
  // rows equally long): [batch, length, vocab_size] row-major. No cache.
  std::vector<float> decoder_logits(const EncoderOutput& enc, const std::vector<std::vector<int>>& inputs) const;

  // Step-wise API. start_decoding prepares caches for up to max_length
  // positions; step feeds one token per item (first call: BOS = 0) and returns
  // the next-token logits [batch, vocab_size] row-major.
  DecoderState start_decoding(const EncoderOutput& enc, int max_length) const;
  std::vector<float> step(DecoderState& state, const std::vector<int>& tokens) const;
  // Keeps only the listed items (in that order) of a state: samplers drop finished items.
  void select_items(DecoderState& state, const std::vector<int>& items) const;

  // Attach a profile (nullptr detaches). Not thread-safe: benchmarks only.
  void set_profile(DecodeProfile* profile) const;

  struct Impl;

 private:
  Model();
  std::unique_ptr<Impl> impl_;
};

// libtorch intra-op threads (the first call wins; later calls with another
// value are ignored with a warning) and inter-op threads = 1.
void set_model_threads(int n_threads);
int model_threads();

// Attention kernel used for matrix products inside attention ("auto", "matmul",
// "bmm", "mulsum", "loop"); for benchmarks. Throws ConfigError on other names.
void set_attention_kernel(const std::string& name);
std::string attention_kernel();

}  // namespace tunescribe
