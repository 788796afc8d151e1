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
// hconv models (config.json format_version 2 with an "hconv" section,
// tools/train/tunescribe_train/hconv.py): a harmonic conv front (per-bin affine, harmonic stack,
// conv 3x3 x2, down conv to one row per key, dilated residual convs, 1x1 heads)
// turns log-frequency features [batch, frames, n_bins] into dense per-key heads
// (onset, frame, offset, velocity, instrument-family logits) and the memory
// features the T5 encoder reads (input_depth = key_channels*88 + 4*88);
// encode() then takes the log-frequency features. front_heads() runs the front only.
// What it does not: compute log-mels (frontend.h) or turn tokens into notes (codec).
// Units: mel input is [batch, frames, input_depth] row-major float32 log-mel;
// token ids are model ids (0 = PAD/BOS, 1 = EOS, 2 = UNK).
// Thread-safety: a loaded Model is immutable; encode/decode may run from several
// threads at once (each call owns its tensors). set_model_threads is process-wide.
// config.json: {"model_type": "tunescribe-mt3", "format_version": 1 (2 with "hconv"), "name",
//   "frontend": {...}, "codec": {...}, "decoding": {...} (read by their own components; raw JSON here),
//   "hconv": {HconvConfig fields} (optional), "model": {ModelConfig fields, all required},
//   "training": {free-form provenance}}.
// model.safetensors: F32/F16/BF16 tensors named as in expected_tensors() (and
// expected_hconv_tensors() for hconv models, PyTorch layouts), plus the
// optional "target/decoder/null_memory" [1, d_model]. Extra tensors are ignored (warning).
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

// The "hconv" section of config.json (+ n_bins and bins_per_semitone from "frontend").
struct HconvConfig {
  static constexpr int kKeys = 88;   // one row per piano key, MIDI 21..108
  static constexpr int kMinPitch = 21;
  std::vector<double> harmonics{0.5, 1, 2, 3, 4, 5, 6, 7, 8};
  int conv_channels = 16;   // C1: conv1/conv2 output channels
  int key_channels = 32;    // C2: channels per key after the down conv
  int res_layers = 3;       // residual convs, time dilation 2^i
  int num_families = 16;    // GM instrument-family logits (program / 8)
  int bin_offset = 2;       // input bin of key 0's first bin (before the harmonic shift)
  int n_bins = 300;         // frontend.n_bins
  int bins_per_semitone = 3;  // frontend.bins_per_semitone

  int num_heads() const { return 4 + num_families; }
  int memory_depth() const { return (key_channels + 4) * kKeys; }
  // Bin shift of every harmonic: round(12 * bps * log2(h)), ties to even like Python's round.
  std::vector<int> shifts() const;
  void validate() const;  // throws ConfigError naming field, value and range
  nlohmann::json to_json() const;  // the "hconv" section (without n_bins / bins_per_semitone)
  // `hconv`: the "hconv" section; n_bins and bps from the front end. Missing keys keep defaults.
  static HconvConfig from_json(const nlohmann::json& hconv, int n_bins, int bins_per_semitone);
};

// Every tensor of an hconv front, PyTorch layouts ([out, in, kh, kw] kernels).
std::vector<std::pair<std::string, std::vector<int64_t>>> expected_hconv_tensors(const HconvConfig& cfg);

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
  // Split the batch into this many chunks decoded on their own std::threads
  // (results are identical); 0 = model_workers() (see set_model_threads).
  // The profile is not filled when workers > 1.
  int workers = 0;
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

// Whether Model::quantize_int8() can run here (libtorch built with the oneDNN quantized engine).
bool int8_available();

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
  const nlohmann::json& decoding_json() const;   // "decoding" section ({} when absent)
  std::string name() const;
  const std::string& dir() const;
  bool has_null_memory() const;

  // hconv front: true when config.json has an "hconv" section (the model has dense heads).
  bool has_heads() const;
  const HconvConfig& hconv_config() const;  // defaults when !has_heads()
  // Values per input frame encode() takes: frontend n_bins (hconv) or input_depth.
  int feature_depth() const;

  // mel: [batch, frames, feature_depth()]; 1 <= frames <= max_positions.
  // hconv models: the front's memory features go into the T5 encoder.
  // workers > 1 encodes chunks of the batch on separate threads; 0 = model_workers().
  EncoderOutput encode(const float* mel, int batch, int frames, int workers = 0) const;
  // hconv models only (ModelError otherwise): the front alone on features
  // [batch, frames, n_bins] -> heads [batch, 4 + num_families, frames, 88]
  // row-major: sigmoid of onset, frame, offset, velocity (channels 0..3), raw
  // family logits (4..). No T5 encoder.
  std::vector<float> front_heads(const float* features, int batch, int frames, int workers = 0) const;
  // hconv models only: the T5 encoder's input [batch, frames, input_depth] (tests, diagnostics).
  std::vector<float> front_memory(const float* features, int batch, int frames) const;
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

  // Int8 dynamic quantization of the T5 encoder's matrices (inputs projection, attention, MLP)
  // and the decoder's cross-attention K/V projection (symmetric per-output-channel int8 weights,
  // activations quantized per call by libtorch's oneDNN engine). The per-token decoder matrices,
  // the hconv front, embeddings and norms stay fp32.
  // Returns the number of matrices packed (again: no-op). NotAvailableError when this
  // libtorch has no oneDNN quantized engine (int8_available()). Not thread-safe: call it
  // right after loading, before decoding.
  int quantize_int8();
  bool quantized() const;

  // Attach a profile (nullptr detaches). Not thread-safe: benchmarks only.
  void set_profile(DecodeProfile* profile) const;

  struct Impl;

 private:
  Model();
  std::unique_ptr<Impl> impl_;
};

// Threads for the model, process-wide; the first call wins (later calls with
// other values are ignored with a warning). Default (intra_op = false):
// n_threads batch-split workers (encode / greedy_decode run chunks of the batch
// on their own std::threads) with libtorch intra-op, inter-op and OpenBLAS
// threads all 1 — independent workers need no OpenMP barriers, which stall
// badly on a busy machine (measured in docs/performance.md). intra_op = true:
// libtorch intra-op and OpenBLAS threads = n_threads, one worker.
void set_model_threads(int n_threads, bool intra_op = false);
int model_threads();   // the n_threads set (0 before any call)
int model_workers();   // default worker count (1 before any call)

// Attention kernel used for matrix products inside attention ("auto", "matmul",
// "bmm", "mulsum", "loop"); for benchmarks. Throws ConfigError on other names.
void set_attention_kernel(const std::string& name);
std::string attention_kernel();

// libtorch build configuration (BLAS backend, threads): for benchmarks and --version.
std::string model_backend_info();

}  // namespace tunescribe
