// safetensors.h — a small, strict reader/writer for the safetensors format.
//
// What it does: parses the 8-byte little-endian header length, the JSON header
// ({"name": {"dtype", "shape", "data_offsets"}, "__metadata__": {...}}) and the
// data buffer; converts F32 / F16 / BF16 tensors to float32. Rejects files that
// are truncated, whose header runs past the end of the file, whose offsets are
// out of bounds, overlap or disagree with the shape, and unknown dtypes, with a
// ModelError that names the file ("model: dir/model.safetensors: ...").
// Writes F32 / F16 / BF16 files (tests, tools, random benchmark models).
// What it does not: memory-map, know anything about the network (model.h), or
// use libtorch (this file is fuzzable on its own).
// Thread-safety: free functions without shared state.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tunescribe {

struct SafetensorsTensor {
  std::vector<int64_t> shape;
  std::vector<float> data;  // row-major, converted to float32
  std::string dtype;        // dtype as stored in the file: "F32", "F16" or "BF16"
  int64_t numel() const;
};

struct SafetensorsFile {
  std::map<std::string, SafetensorsTensor> tensors;
  std::map<std::string, std::string> metadata;  // "__metadata__" (string values only)
};

// Reads and validates a whole file. Throws ModelError naming `path`.
SafetensorsFile read_safetensors(const std::string& path);
// Parses an in-memory image; `label` names it in error messages.
SafetensorsFile parse_safetensors(const uint8_t* bytes, size_t size, const std::string& label);

// Serialises tensors with the given dtype ("F32", "F16" or "BF16"); tensors are
// laid out in name order. Throws ModelError on an unknown dtype or a tensor
// whose data size disagrees with its shape.
std::string serialize_safetensors(const std::map<std::string, SafetensorsTensor>& tensors,
                                  const std::string& dtype = "F32",
                                  const std::map<std::string, std::string>& metadata = {});
// serialize_safetensors + atomic write (OutputError on failure).
void write_safetensors(const std::string& path,
                       const std::map<std::string, SafetensorsTensor>& tensors,
                       const std::string& dtype = "F32",
                       const std::map<std::string, std::string>& metadata = {});

// IEEE half / bfloat16 conversions (round to nearest even when narrowing).
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
float bf16_to_float(uint16_t b);
uint16_t float_to_bf16(float f);

}  // namespace tunescribe
