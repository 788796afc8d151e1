// mt3_import.h — Magenta's published MT3 checkpoints (T5X) → a tunescribe model directory.
//
// What it does: reads a T5X checkpoint directory as Magenta publishes it (../shared/specs/mt3.md
// §6): the msgpack `checkpoint` file (Flax state dict; small arrays inline as ext-type records,
// the others as TensorStore spec dicts) and the zarr v2 array folders (.zarray, gzip/zlib chunks
// `i.j`, C order, little-endian floats, any number of chunks), keeps the `target` parameter tree
// (optimizer state is skipped), infers the variant (mt3 / ismir2021) and dimensions from the
// shapes and writes config.json + model.safetensors atomically (temp folder + rename).
// What it does not: run the model, download checkpoints, or decide about overwriting (the caller
// sets `overwrite`). Errors: CheckpointError (errors.h) naming the array, OutputError on writes.
// Thread-safety: free functions without shared state.
//
//   Mt3ImportConfig cfg;
//   cfg.checkpoint_dir = "checkpoints/mt3";
//   cfg.output_dir = "models/mt3";
//   Mt3ImportResult r = import_mt3(cfg);   // r.variant == "mt3", r.step == 1000000
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "tunescribe/model.h"
#include "tunescribe/safetensors.h"

namespace tunescribe {

struct Mt3ImportConfig {
  std::string checkpoint_dir;  // holds `checkpoint` and the target.* zarr folders
  std::string output_dir;      // model directory to create
  std::string dtype = "F32";   // weights in model.safetensors: "F32", "F16" or "BF16"
  std::string name;            // config.json "name"; "" = "<variant>-step<step>"
  bool overwrite = false;      // replace an existing output_dir (else OutputError)
  // The checkpoint stores q/k/v as [d_model, heads * head_dim] without the split;
  // both published models (and T5X generally) use 64.
  int head_dim = 64;
  void validate() const;  // throws ConfigError naming field, value and range
};

// The parameter tree of a T5X checkpoint: tensors named like the model's
// ("target/encoder/layers_0/attention/query/kernel"), shapes as stored ([in, out] kernels).
struct T5xCheckpoint {
  std::map<std::string, SafetensorsTensor> params;
  int64_t step = -1;             // state.step (-1 when the checkpoint has none)
  std::string checkpoint_sha256;  // of the msgpack `checkpoint` file
  int inline_arrays = 0;         // leaves stored in the msgpack
  int zarr_arrays = 0;           // leaves read from zarr folders
  int skipped_state_leaves = 0;  // optimizer state leaves (not read)
};

// Reads every `target` leaf of a checkpoint directory (data included).
// Throws CheckpointError (missing array, wrong dtype, unknown layout, corrupt chunk).
T5xCheckpoint read_t5x_checkpoint(const std::string& checkpoint_dir);

// The model config.json for these parameters: variant from the embedding rows
// (1536 = mt3, 1664 = ismir2021: codec, segment length), dimensions from the shapes,
// then every tensor's shape checked against the network (CheckpointError naming the array).
// `provenance` goes into config.json as is.
nlohmann::json mt3_model_config(const T5xCheckpoint& ckpt, const std::string& name, int head_dim,
                                 const nlohmann::json& provenance);

struct Mt3ImportResult {
  std::string output_dir;
  std::string variant;  // "mt3" or "ismir2021"
  int64_t step = -1;
  int64_t parameters = 0;
  std::string checkpoint_sha256;
  nlohmann::json config;  // the config.json written
};

// read_t5x_checkpoint + mt3_model_config + atomic write of the model directory.
Mt3ImportResult import_mt3(const Mt3ImportConfig& cfg);

// Hex SHA-256 of a file (InputError when unreadable).
std::string sha256_file_hex(const std::string& path);

}  // namespace tunescribe
