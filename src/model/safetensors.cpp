// safetensors.cpp — strict safetensors reader/writer (no libtorch here).
#include "tunescribe/safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"

namespace tunescribe {
namespace {

static_assert(sizeof(float) == 4, "float must be 32-bit");

[[noreturn]] void fail(const std::string& label, const std::string& what) {
  throw ModelError("model: " + label + ": " + what);
}

int dtype_size(const std::string& dtype) {
  if (dtype == "F32") return 4;
  if (dtype == "F16" || dtype == "BF16") return 2;
  return 0;
}

uint16_t load_u16(const uint8_t* p) { return uint16_t(p[0] | (uint16_t(p[1]) << 8)); }
uint32_t load_u32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}

const uint64_t kMaxHeaderBytes = uint64_t(100) << 20;  // 100 MiB of JSON is already absurd

}  // namespace

int64_t SafetensorsTensor::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

float half_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: value = mant * 2^-24
      float v = float(mant) * 5.9604644775390625e-08f;
      std::memcpy(&bits, &v, 4);
      bits |= sign;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  uint32_t exp = (x >> 23) & 0xffu;
  uint32_t mant = x & 0x7fffffu;
  if (exp == 255) return uint16_t(sign | 0x7c00u | (mant ? 0x200u : 0u));  // inf / nan
  int e = int(exp) - 127 + 15;
  if (e >= 31) return uint16_t(sign | 0x7c00u);  // overflow -> inf
  if (e <= 0) {
    if (e < -10) return sign;  // underflow -> signed zero
    mant |= 0x800000u;
    int shift = 14 - e;
    uint32_t half_mant = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half_mant & 1u))) half_mant++;
    return uint16_t(sign | half_mant);
  }
  uint32_t half = (uint32_t(e) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) half++;  // may carry into the exponent: fine
  return uint16_t(sign | half);
}

float bf16_to_float(uint16_t b) {
  uint32_t bits = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7f800000u) == 0x7f800000u && (x & 0x7fffffu)) return uint16_t((x >> 16) | 0x40u);  // nan
  uint32_t lsb = (x >> 16) & 1u;
  x += 0x7fffu + lsb;
  return uint16_t(x >> 16);
}

SafetensorsFile parse_safetensors(const uint8_t* bytes, size_t size, const std::string& label) {
  if (size < 8) fail(label, "truncated safetensors file (" + std::to_string(size) + " bytes, no header length)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > size - 8)
    fail(label, "safetensors header length " + std::to_string(header_len) + " runs past the end of the file (" +
                    std::to_string(size) + " bytes): truncated or not a safetensors file");
  if (header_len > kMaxHeaderBytes) fail(label, "safetensors header length " + std::to_string(header_len) + " is too large");
  if (header_len < 2) fail(label, "safetensors header is empty");
  const char* hdr = reinterpret_cast<const char*>(bytes + 8);
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(hdr, hdr + header_len);
  } catch (const std::exception& e) {
    fail(label, std::string("safetensors header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) fail(label, "safetensors header is not a JSON object");

  const uint8_t* data = bytes + 8 + header_len;
  const uint64_t data_size = uint64_t(size) - 8 - header_len;

  SafetensorsFile out;
  struct Range {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Range> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail(label, "__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) fail(label, "__metadata__ value '" + m.key() + "' is not a string");
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!v.is_object()) fail(label, where + ": entry is not an object");
    if (!v.contains("dtype") || !v["dtype"].is_string()) fail(label, where + ": missing dtype");
    if (!v.contains("shape") || !v["shape"].is_array()) fail(label, where + ": missing shape");
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
      fail(label, where + ": missing data_offsets [begin, end]");
    SafetensorsTensor t;
    t.dtype = v["dtype"].get<std::string>();
    const int esize = dtype_size(t.dtype);
    if (esize == 0) fail(label, where + ": unsupported dtype '" + t.dtype + "' (expected F32, F16 or BF16)");
    if (v["shape"].size() > 8) fail(label, where + ": too many dimensions");
    uint64_t numel = 1;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0))
        fail(label, where + ": shape entries must be non-negative integers");
      uint64_t s = d.get<uint64_t>();
      if (s != 0 && numel > (uint64_t(1) << 40) / s) fail(label, where + ": shape is too large");
      numel *= s;
      t.shape.push_back(int64_t(s));
    }
    const auto& offs = v["data_offsets"];
    for (const auto& o : offs)
      if (!o.is_number_unsigned() && !(o.is_number_integer() && o.get<int64_t>() >= 0))
        fail(label, where + ": data_offsets must be non-negative integers");
    const uint64_t begin = offs[0].get<uint64_t>(), end = offs[1].get<uint64_t>();
    if (begin > end) fail(label, where + ": data_offsets begin > end");
    if (end > data_size)
      fail(label, where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                      ") run past the data buffer (" + std::to_string(data_size) + " bytes): truncated file?");
    if (end - begin != numel * uint64_t(esize))
      fail(label, where + ": data size " + std::to_string(end - begin) + " bytes does not match shape (" +
                      std::to_string(numel) + " x " + std::to_string(esize) + " bytes)");
    ranges.push_back({begin, end, name});
    t.data.resize(numel);
    const uint8_t* p = data + begin;
    if (t.dtype == "F32") {
      for (uint64_t i = 0; i < numel; ++i) {
        uint32_t b = load_u32(p + 4 * i);
        std::memcpy(&t.data[i], &b, 4);
      }
    } else if (t.dtype == "F16") {
      for (uint64_t i = 0; i < numel; ++i) t.data[i] = half_to_float(load_u16(p + 2 * i));
    } else {
      for (uint64_t i = 0; i < numel; ++i) t.data[i] = bf16_to_float(load_u16(p + 2 * i));
    }
    out.tensors.emplace(name, std::move(t));
  }
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t max_end = 0;
  std::string max_name;
  for (const Range& r : ranges) {
    if (r.begin == r.end) continue;  // empty tensors occupy no bytes
    if (r.begin < max_end)
      fail(label, "tensors '" + max_name + "' and '" + r.name + "' have overlapping data_offsets");
    max_end = r.end;
    max_name = r.name;
  }
  return out;
}

SafetensorsFile read_safetensors(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, "cannot open safetensors file");
  f.seekg(0, std::ios::end);
  std::streamoff n = f.tellg();
  if (n < 0) fail(path, "cannot read safetensors file");
  f.seekg(0, std::ios::beg);
  std::vector<uint8_t> bytes(static_cast<size_t>(n));
  if (n > 0 && !f.read(reinterpret_cast<char*>(bytes.data()), n)) fail(path, "cannot read safetensors file");
  return parse_safetensors(bytes.data(), bytes.size(), path);
}

std::string serialize_safetensors(const std::map<std::string, SafetensorsTensor>& tensors, const std::string& dtype,
                                  const std::map<std::string, std::string>& metadata) {
  const int esize = dtype_size(dtype);
  if (esize == 0) throw ModelError("model: safetensors: cannot write dtype '" + dtype + "'");
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) {
    nlohmann::json m = nlohmann::json::object();
    for (const auto& kv : metadata) m[kv.first] = kv.second;
    header["__metadata__"] = m;
  }
  std::string body;
  uint64_t off = 0;
  for (const auto& kv : tensors) {
    const SafetensorsTensor& t = kv.second;
    if (t.numel() != int64_t(t.data.size()))
      throw ModelError("model: safetensors: tensor '" + kv.first + "' data size disagrees with its shape");
    uint64_t bytes = uint64_t(t.data.size()) * esize;
    header[kv.first] = {{"dtype", dtype}, {"shape", t.shape}, {"data_offsets", {off, off + bytes}}};
    off += bytes;
    for (float v : t.data) {
      if (esize == 4) {
        uint32_t b;
        std::memcpy(&b, &v, 4);
        for (int i = 0; i < 4; ++i) body.push_back(char((b >> (8 * i)) & 0xff));
      } else {
        uint16_t b = dtype == "F16" ? float_to_half(v) : float_to_bf16(v);
        body.push_back(char(b & 0xff));
        body.push_back(char(b >> 8));
      }
    }
  }
  std::string h = header.dump();
  while (h.size() % 8) h.push_back(' ');  // alignment padding, as the reference writer does
  std::string out;
  uint64_t hl = h.size();
  for (int i = 0; i < 8; ++i) out.push_back(char((hl >> (8 * i)) & 0xff));
  out += h;
  out += body;
  return out;
}

void write_safetensors(const std::string& path, const std::map<std::string, SafetensorsTensor>& tensors,
                       const std::string& dtype, const std::map<std::string, std::string>& metadata) {
  write_file_atomic(path, serialize_safetensors(tensors, dtype, metadata));
}

}  // namespace tunescribe
