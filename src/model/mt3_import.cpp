// T5X checkpoint (msgpack + zarr v2) → tunescribe model directory. No libtorch here.
#include "tunescribe/mt3_import.h"

#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <climits>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "tunescribe/codec.h"
#include "tunescribe/errors.h"
#include "tunescribe/fileutil.h"
#include "tunescribe/frontend.h"
#include "tunescribe/log.h"
#include "tunescribe/version.h"
#include "util/sha256.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace tunescribe {

namespace {

using Kind = CheckpointError::Kind;
constexpr int kFlaxNdarrayExt = 1;  // flax.serialization's msgpack ext code for numpy arrays

// "target/encoder/x/kernel" → "target.encoder.x.kernel" (the zarr folder name users see).
std::string dotted(const std::string& name) {
  std::string s = name;
  for (char& c : s)
    if (c == '/') c = '.';
  return s;
}

[[noreturn]] void fail(Kind kind, const std::string& where, const std::string& msg) {
  throw CheckpointError(kind, "mt3-import: " + where + ": " + msg);
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

int64_t product(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t v : s) n *= v;
  return n;
}

// Element types the importer converts to float32.
enum class Elem { F32, F16, BF16 };
size_t elem_size(Elem e) { return e == Elem::F32 ? 4 : 2; }

// numpy dtype names (inline records) and zarr dtype strings; false when unsupported.
bool parse_elem(const std::string& dtype, Elem& out) {
  if (dtype == "float32" || dtype == "<f4") out = Elem::F32;
  else if (dtype == "float16" || dtype == "<f2") out = Elem::F16;
  else if (dtype == "bfloat16" || dtype == "<bf16") out = Elem::BF16;
  else return false;
  return true;
}

void convert(const uint8_t* src, size_t n, Elem e, float* dst) {
  if (e == Elem::F32) {
    std::memcpy(dst, src, n * 4);  // little-endian host (x86-64, aarch64)
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    const uint16_t v = uint16_t(src[2 * i] | (src[2 * i + 1] << 8));
    dst[i] = e == Elem::F16 ? half_to_float(v) : bf16_to_float(v);
  }
}

std::vector<int64_t> parse_shape(const json& j, const std::string& where, const char* what) {
  if (!j.is_array()) fail(Kind::UnknownLayout, where, std::string(what) + " is not an array: " + j.dump());
  std::vector<int64_t> s;
  for (const auto& v : j) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > (int64_t(1) << 40))
      fail(Kind::UnknownLayout, where, std::string(what) + " holds " + v.dump() + ", not a dimension");
    s.push_back(v.get<int64_t>());
  }
  return s;
}

// ---------------------------------------------------------------------------
// Inline leaves: msgpack ext type 1 whose payload is msgpack [shape, dtype name, raw C-order bytes].

json parse_ext_record(const json& leaf, const std::string& where) {
  const auto& bin = leaf.get_binary();
  if (!bin.has_subtype() || bin.subtype() != kFlaxNdarrayExt)
    fail(Kind::UnknownLayout, where,
         "msgpack ext type " + std::to_string(bin.has_subtype() ? int(bin.subtype()) : -1) +
             " is not a Flax ndarray record (ext type 1)");
  json rec;
  try {
    rec = json::from_msgpack(bin.begin(), bin.end());
  } catch (const json::exception& e) {
    fail(Kind::CorruptChunk, where, std::string("inline array record is not valid msgpack (") + e.what() + ")");
  }
  if (!rec.is_array() || rec.size() != 3 || !rec[1].is_string() || !rec[2].is_binary())
    fail(Kind::UnknownLayout, where, "inline array record is not [shape, dtype, bytes]");
  return rec;
}

SafetensorsTensor decode_inline(const json& leaf, const std::string& where) {
  const json rec = parse_ext_record(leaf, where);
  SafetensorsTensor t;
  t.shape = parse_shape(rec[0], where, "inline shape");
  const std::string dtype = rec[1].get<std::string>();
  Elem e;
  if (!parse_elem(dtype, e))
    fail(Kind::WrongDtype, where, "dtype " + dtype + " is not a float type (float32, float16, bfloat16)");
  const auto& bytes = rec[2].get_binary();
  const size_t want = size_t(product(t.shape)) * elem_size(e);
  if (bytes.size() != want)
    fail(Kind::CorruptChunk, where,
         "inline data holds " + std::to_string(bytes.size()) + " bytes, its shape needs " + std::to_string(want));
  t.dtype = "F32";
  t.data.resize(size_t(product(t.shape)));
  convert(bytes.data(), t.data.size(), e, t.data.data());
  return t;
}

// An integer scalar (state.step): a plain msgpack integer or an inline int array with one element.
// Provenance only: anything else is "unknown" (-1), not an error.
int64_t decode_step(const json& leaf) {
  if (leaf.is_number_integer()) return leaf.get<int64_t>();
  if (!leaf.is_binary()) return -1;
  json rec;
  try {
    rec = parse_ext_record(leaf, "state.step");
  } catch (const CheckpointError&) {
    return -1;
  }
  const auto& b = rec[2].get_binary();
  const std::string dt = rec[1].get<std::string>();
  if ((dt == "int32" || dt == "uint32") && b.size() == 4) {
    uint32_t v;
    std::memcpy(&v, b.data(), 4);
    return dt == "int32" ? int64_t(int32_t(v)) : int64_t(v);
  }
  if ((dt == "int64" || dt == "uint64") && b.size() == 8) {
    int64_t v;
    std::memcpy(&v, b.data(), 8);
    return v;
  }
  return -1;
}

// ---------------------------------------------------------------------------
// zarr v2 arrays

struct ZarrMeta {
  std::vector<int64_t> shape, chunks;
  Elem elem = Elem::F32;
  std::string dtype;
  std::string compressor;  // "" (none), "gzip" or "zlib"
  std::string separator = ".";
};

ZarrMeta read_zarray(const fs::path& zdir, const std::string& where) {
  const fs::path meta_path = zdir / ".zarray";
  std::error_code ec;
  if (!fs::exists(meta_path, ec))
    fail(Kind::MissingArray, where, "the zarr folder " + zdir.string() + " or its .zarray is missing");
  json j;
  try {
    j = json::parse(read_file_text(meta_path.string(), size_t(1) << 20));
  } catch (const json::exception& e) {
    fail(Kind::UnknownLayout, where, ".zarray is not JSON (" + std::string(e.what()) + ")");
  } catch (const InputError& e) {
    fail(Kind::MissingArray, where, e.what());
  }
  if (!j.is_object() || j.value("zarr_format", 0) != 2)
    fail(Kind::UnknownLayout, where, ".zarray is not zarr format 2");
  ZarrMeta m;
  m.shape = parse_shape(j.value("shape", json()), where, ".zarray shape");
  m.chunks = parse_shape(j.value("chunks", json()), where, ".zarray chunks");
  if (m.chunks.size() != m.shape.size())
    fail(Kind::UnknownLayout, where, ".zarray chunks " + shape_str(m.chunks) + " do not match shape " + shape_str(m.shape));
  for (int64_t c : m.chunks)
    if (c < 1) fail(Kind::UnknownLayout, where, ".zarray chunks " + shape_str(m.chunks) + " hold a zero");
  m.dtype = j.value("dtype", json()).is_string() ? j["dtype"].get<std::string>() : j.value("dtype", json()).dump();
  if (!parse_elem(m.dtype, m.elem))
    fail(Kind::WrongDtype, where, "dtype " + m.dtype + " is not a little-endian float type (<f4, <f2, bfloat16)");
  if (j.value("order", std::string("C")) != "C")
    fail(Kind::UnknownLayout, where, ".zarray order is not \"C\"");
  if (j.contains("filters") && !j["filters"].is_null() && !(j["filters"].is_array() && j["filters"].empty()))
    fail(Kind::UnknownLayout, where, ".zarray filters are not supported: " + j["filters"].dump());
  const json comp = j.value("compressor", json());
  if (!comp.is_null()) {
    m.compressor = comp.is_object() ? comp.value("id", std::string()) : std::string();
    if (m.compressor != "gzip" && m.compressor != "zlib")
      fail(Kind::UnknownLayout, where, "compressor " + comp.dump() + " is not supported (gzip, zlib or none)");
  }
  m.separator = j.value("dimension_separator", std::string("."));
  if (m.separator != "." && m.separator != "/")
    fail(Kind::UnknownLayout, where, ".zarray dimension_separator \"" + m.separator + "\" is not \".\" or \"/\"");
  return m;
}

// Inflates a gzip or zlib stream into exactly `out.size()` bytes.
void inflate_exact(const std::vector<uint8_t>& in, std::vector<uint8_t>& out, const std::string& where) {
  if (in.size() > UINT_MAX) fail(Kind::CorruptChunk, where, "compressed chunk larger than 4 GiB");
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) fail(Kind::CorruptChunk, where, "zlib cannot start");
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = uInt(in.size());
  zs.next_out = out.data();
  zs.avail_out = uInt(out.size());
  uint8_t spill = 0;  // one byte past the end: detects a chunk that decompresses to more
  bool spilled = false;
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (zs.avail_out == 0) {
      if (spilled) break;
      zs.next_out = &spill;
      zs.avail_out = 1;
      spilled = true;
    }
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) break;  // input ended before the stream did
  }
  const uLong produced = zs.total_out;
  const std::string zmsg = zs.msg ? zs.msg : "";
  inflateEnd(&zs);
  if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT || rc == Z_MEM_ERROR || rc == Z_STREAM_ERROR)
    fail(Kind::CorruptChunk, where, "corrupt compressed data (zlib: " + (zmsg.empty() ? std::to_string(rc) : zmsg) + ")");
  if (produced > out.size())
    fail(Kind::CorruptChunk, where, "decompresses to more than the " + std::to_string(out.size()) + " bytes expected");
  if (rc != Z_STREAM_END)
    fail(Kind::CorruptChunk, where,
         "truncated (the compressed stream ends after " + std::to_string(produced) + " of " +
             std::to_string(out.size()) + " bytes)");
  if (produced != out.size())
    fail(Kind::CorruptChunk, where,
         "decompresses to " + std::to_string(produced) + " bytes, expected " + std::to_string(out.size()));
}

// Copies the part of a decoded C-order chunk that lies inside the array.
void scatter_chunk(const std::vector<float>& chunk, const ZarrMeta& m, const std::vector<int64_t>& cidx,
                   std::vector<float>& dst) {
  const size_t nd = m.shape.size();
  if (nd == 0) {
    dst[0] = chunk[0];
    return;
  }
  std::vector<int64_t> extent(nd), origin(nd);
  for (size_t d = 0; d < nd; ++d) {
    origin[d] = cidx[d] * m.chunks[d];
    extent[d] = std::min(m.chunks[d], m.shape[d] - origin[d]);
  }
  std::vector<int64_t> pos(nd, 0);  // odometer over all dims but the last, inside the extent
  for (;;) {
    int64_t src = 0, off = 0;
    for (size_t d = 0; d < nd; ++d) {
      src = src * m.chunks[d] + pos[d];
      off = off * m.shape[d] + origin[d] + pos[d];
    }
    std::copy(chunk.begin() + src, chunk.begin() + src + extent[nd - 1], dst.begin() + off);
    size_t d = nd - 1;
    while (d > 0) {
      --d;
      if (++pos[d] < extent[d]) break;
      pos[d] = 0;
      if (d == 0) return;
    }
    if (nd == 1) return;
  }
}

SafetensorsTensor read_zarr(const fs::path& zdir, const std::string& where) {
  const ZarrMeta m = read_zarray(zdir, where);
  SafetensorsTensor t;
  t.shape = m.shape;
  t.dtype = "F32";
  t.data.assign(size_t(product(m.shape)), 0.0f);
  if (t.data.empty()) return t;
  const size_t nd = m.shape.size();
  std::vector<int64_t> grid(nd);
  for (size_t d = 0; d < nd; ++d) grid[d] = (m.shape[d] + m.chunks[d] - 1) / m.chunks[d];
  const size_t chunk_elems = size_t(product(m.chunks));
  std::vector<uint8_t> raw(chunk_elems * elem_size(m.elem));
  std::vector<float> chunk(chunk_elems);
  std::vector<int64_t> cidx(nd, 0);
  for (int64_t n = 0, total = product(grid); n < total; ++n) {
    std::string cname;
    for (size_t d = 0; d < nd; ++d) cname += (d ? m.separator : "") + std::to_string(cidx[d]);
    if (nd == 0) cname = "0";
    const std::string cwhere = where + ": chunk " + cname;
    const fs::path cpath = zdir / cname;
    std::vector<uint8_t> file;
    try {
      file = read_file_bytes(cpath.string(), size_t(1) << 31);
    } catch (const InputError&) {
      fail(Kind::CorruptChunk, cwhere, "the chunk file " + cpath.string() + " is missing or unreadable");
    }
    if (m.compressor.empty()) {
      if (file.size() != raw.size())
        fail(Kind::CorruptChunk, cwhere,
             "holds " + std::to_string(file.size()) + " bytes, expected " + std::to_string(raw.size()) + " (truncated?)");
      raw.swap(file);
    } else {
      inflate_exact(file, raw, cwhere);
    }
    convert(raw.data(), chunk_elems, m.elem, chunk.data());
    scatter_chunk(chunk, m, cidx, t.data);
    for (size_t d = nd; d-- > 0;) {  // next chunk index, C order
      if (++cidx[d] < grid[d]) break;
      cidx[d] = 0;
    }
  }
  return t;
}

// The zarr folder of a TensorStore spec leaf: the last component of its kvstore path
// (T5X writes paths relative to the checkpoint folder), else the dotted tree path.
fs::path zarr_dir_of(const json& spec, const fs::path& root, const std::string& name) {
  std::string p;
  if (spec.contains("kvstore") && spec["kvstore"].is_object() && spec["kvstore"].contains("path") &&
      spec["kvstore"]["path"].is_string())
    p = spec["kvstore"]["path"].get<std::string>();
  else if (spec.contains("kvstore") && spec["kvstore"].is_string())
    p = spec["kvstore"].get<std::string>();
  else if (spec.contains("path") && spec["path"].is_string())
    p = spec["path"].get<std::string>();
  while (!p.empty() && p.back() == '/') p.pop_back();
  std::string last = fs::path(p).filename().string();
  if (last.empty() || last == "." || last == "..") last = dotted(name);
  return root / last;
}

bool is_tensorstore_spec(const json& j) {
  return j.is_object() && j.contains("driver") && j["driver"].is_string();
}

// ---------------------------------------------------------------------------
// The state dict

struct Leaves {
  std::map<std::string, const json*> inline_leaves;  // name → ext record
  std::map<std::string, const json*> zarr_leaves;    // name → TensorStore spec
};

void collect_target(const json& node, const std::string& name, Leaves& out) {
  const std::string where = "array " + dotted(name);
  if (node.is_binary()) {
    out.inline_leaves[name] = &node;
  } else if (is_tensorstore_spec(node)) {
    if (node["driver"] != "zarr")
      fail(Kind::UnknownLayout, where, "TensorStore driver " + node["driver"].dump() + " is not supported (zarr)");
    out.zarr_leaves[name] = &node;
  } else if (node.is_object()) {
    if (node.contains("__msgpack_chunked_array__"))
      fail(Kind::UnknownLayout, where, "Flax chunked msgpack arrays are not supported");
    for (auto it = node.begin(); it != node.end(); ++it) collect_target(it.value(), name + "/" + it.key(), out);
  } else {
    fail(Kind::UnknownLayout, where, "leaf is neither an inline array nor a zarr spec: " + node.dump().substr(0, 80));
  }
}

int count_leaves(const json& node) {
  if (!node.is_object() || is_tensorstore_spec(node)) return 1;
  int n = 0;
  for (const auto& v : node) n += count_leaves(v);
  return n;
}

std::string top_level_keys(const json& root) {
  std::string keys;
  if (root.is_object())
    for (auto it = root.begin(); it != root.end(); ++it) keys += (keys.empty() ? "" : ", ") + it.key();
  return keys.empty() ? "none" : keys;
}

}  // namespace

std::string sha256_file_hex(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError("mt3-import: " + path + ": cannot open");
  Sha256 h;
  std::vector<char> buf(size_t(1) << 20);
  while (f) {
    f.read(buf.data(), std::streamsize(buf.size()));
    h.update(reinterpret_cast<const uint8_t*>(buf.data()), size_t(f.gcount()));
  }
  if (f.bad()) throw InputError("mt3-import: " + path + ": read error");
  return h.hex_digest();
}

T5xCheckpoint read_t5x_checkpoint(const std::string& checkpoint_dir) {
  const fs::path root(checkpoint_dir);
  const fs::path msgpack_path = root / "checkpoint";
  std::error_code ec;
  if (!fs::is_regular_file(msgpack_path, ec))
    fail(Kind::UnknownLayout, checkpoint_dir, "no msgpack 'checkpoint' file: not a T5X checkpoint folder");
  const std::vector<uint8_t> bytes = read_file_bytes(msgpack_path.string());
  T5xCheckpoint out;
  Sha256 hash;
  hash.update(bytes.data(), bytes.size());
  out.checkpoint_sha256 = hash.hex_digest();
  json state;
  try {
    state = json::from_msgpack(bytes);
  } catch (const json::exception& e) {
    fail(Kind::UnknownLayout, msgpack_path.string(), std::string("not a msgpack state dict (") + e.what() + ")");
  }
  // T5X writes {"target", "state"} (flax.optim-era checkpoints: under "optimizer").
  const json* top = &state;
  if (state.is_object() && !state.contains("target") && state.contains("optimizer") && state["optimizer"].is_object())
    top = &state["optimizer"];
  if (!top->is_object() || !top->contains("target") || !(*top)["target"].is_object())
    fail(Kind::UnknownLayout, msgpack_path.string(),
         "no 'target' parameter tree (top-level keys: " + top_level_keys(state) + ")");
  if (top->contains("state") && (*top)["state"].is_object()) {
    const json& st = (*top)["state"];
    if (st.contains("step")) out.step = decode_step(st["step"]);
    out.skipped_state_leaves = count_leaves(st);
  }
  Leaves leaves;
  collect_target((*top)["target"], "target", leaves);
  for (const auto& kv : leaves.inline_leaves) {
    out.params[kv.first] = decode_inline(*kv.second, "array " + dotted(kv.first));
    ++out.inline_arrays;
  }
  for (const auto& kv : leaves.zarr_leaves) {
    out.params[kv.first] = read_zarr(zarr_dir_of(*kv.second, root, kv.first), "array " + dotted(kv.first));
    ++out.zarr_arrays;
  }
  log_info("mt3-import", "read " + std::to_string(out.params.size()) + " arrays (" +
                             std::to_string(out.inline_arrays) + " inline, " + std::to_string(out.zarr_arrays) +
                             " zarr), skipped " + std::to_string(out.skipped_state_leaves) +
                             " optimizer state leaves; step " + std::to_string(out.step));
  return out;
}

// ---------------------------------------------------------------------------
// Model config and output

void Mt3ImportConfig::validate() const {
  if (checkpoint_dir.empty()) throw ConfigError("mt3-import: checkpoint_dir is empty");
  if (output_dir.empty()) throw ConfigError("mt3-import: output_dir is empty");
  if (dtype != "F32" && dtype != "F16" && dtype != "BF16")
    throw ConfigError("mt3-import: dtype = \"" + dtype + "\" is not one of F32, F16, BF16");
  if (head_dim < 1 || head_dim > 1024)
    throw ConfigError("mt3-import: head_dim = " + std::to_string(head_dim) + " is not within [1, 1024]");
}

namespace {

// Number of consecutive layers_<i> subtrees under `prefix` ("target/encoder/layers_").
int count_layers(const std::map<std::string, SafetensorsTensor>& params, const std::string& prefix) {
  int n = 0;
  for (;; ++n) {
    const std::string p = prefix + std::to_string(n) + "/";
    auto it = params.lower_bound(p);
    if (it == params.end() || it->first.compare(0, p.size(), p) != 0) return n;
  }
}

const std::vector<int64_t>& shape_of(const T5xCheckpoint& ckpt, const std::string& name, size_t rank) {
  auto it = ckpt.params.find(name);
  if (it == ckpt.params.end()) fail(Kind::MissingArray, "array " + dotted(name), "not in the checkpoint");
  if (it->second.shape.size() != rank)
    fail(Kind::WrongShape, "array " + dotted(name),
         "has shape " + shape_str(it->second.shape) + ", expected " + std::to_string(rank) + " dimensions");
  return it->second.shape;
}

// Dimensions from the shapes: d_model and input depth from the input projection, heads from
// a query kernel's width / head_dim, MLP width, layer counts, embedding rows.
ModelConfig infer_dimensions(const T5xCheckpoint& ckpt, int head_dim) {
  ModelConfig mc;
  const auto& proj = shape_of(ckpt, "target/encoder/continuous_inputs_projection/kernel", 2);
  mc.input_depth = int(proj[0]);
  mc.d_model = int(proj[1]);
  mc.num_encoder_layers = count_layers(ckpt.params, "target/encoder/layers_");
  mc.num_decoder_layers = count_layers(ckpt.params, "target/decoder/layers_");
  const std::string block = mc.num_encoder_layers > 0 ? "target/encoder/layers_0/" : "target/decoder/layers_0/";
  const std::string query = block + (mc.num_encoder_layers > 0 ? "attention" : "self_attention") + "/query/kernel";
  const int64_t width = shape_of(ckpt, query, 2)[1];
  if (width % head_dim != 0)
    fail(Kind::WrongShape, "array " + dotted(query),
         "width " + std::to_string(width) + " is not a multiple of head_dim " + std::to_string(head_dim));
  mc.head_dim = head_dim;
  mc.num_heads = int(width / head_dim);
  mc.mlp_dim = int(shape_of(ckpt, block + "mlp/wi_0/kernel", 2)[1]);
  mc.vocab_size = int(shape_of(ckpt, "target/decoder/token_embedder/embedding", 2)[0]);
  mc.max_positions = 2048;  // FixedEmbed max_length in mt3/network.py
  try {
    mc.validate();
  } catch (const ConfigError& e) {
    fail(Kind::WrongShape, "target", std::string("dimensions read from the shapes are out of range (") + e.what() + ")");
  }
  return mc;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void write_model_dir(const fs::path& out, const json& config, const std::map<std::string, SafetensorsTensor>& tensors,
                     const std::string& dtype, const std::map<std::string, std::string>& metadata, bool overwrite) {
  std::error_code ec;
  const fs::path parent = out.parent_path().empty() ? fs::path(".") : out.parent_path();
  fs::create_directories(parent, ec);
  if (ec) throw OutputError("mt3-import: " + parent.string() + ": cannot create folder (" + ec.message() + ")");
  const std::string tag = std::to_string(::getpid());
  const fs::path tmp = parent / ("." + out.filename().string() + ".import-" + tag);
  const fs::path old = parent / ("." + out.filename().string() + ".old-" + tag);
  fs::remove_all(tmp, ec);
  if (!fs::create_directory(tmp, ec) || ec)
    throw OutputError("mt3-import: " + tmp.string() + ": cannot create folder (" + ec.message() + ")");
  try {
    write_file_atomic((tmp / "config.json").string(), config.dump(2) + "\n");
    write_safetensors((tmp / "model.safetensors").string(), tensors, dtype, metadata);
    bool moved_old = false;
    if (fs::exists(out, ec)) {
      if (!overwrite) throw OutputError("mt3-import: " + out.string() + " already exists; not replaced");
      fs::rename(out, old);  // throws filesystem_error
      moved_old = true;
    }
    fs::rename(tmp, out, ec);
    if (ec) {
      if (moved_old) fs::rename(old, out);
      throw OutputError("mt3-import: " + out.string() + ": cannot move the new model into place (" + ec.message() + ")");
    }
    if (moved_old) fs::remove_all(old, ec);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    throw OutputError("mt3-import: " + out.string() + ": " + e.what());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace

json mt3_model_config(const T5xCheckpoint& ckpt, const std::string& name, int head_dim, const json& provenance) {
  const int64_t rows = shape_of(ckpt, "target/decoder/token_embedder/embedding", 2)[0];
  std::string variant;
  CodecConfig codec;
  LogMelConfig fe;  // MT3's log-mel (specs/mt3.md §1)
  if (rows == Codec(CodecConfig::mt3()).embedding_rows()) {
    variant = "mt3";
    codec = CodecConfig::mt3();
    fe.segment_frames = 256;
  } else if (rows == Codec(CodecConfig::ismir2021()).embedding_rows()) {
    variant = "ismir2021";
    codec = CodecConfig::ismir2021();
    fe.segment_frames = 512;
  } else {
    fail(Kind::WrongShape, "array target.decoder.token_embedder.embedding",
         "has " + std::to_string(rows) + " rows; the published MT3 models have 1536 (mt3) or 1664 (ismir2021)");
  }
  const ModelConfig mc = infer_dimensions(ckpt, head_dim);
  if (mc.input_depth != fe.n_mels)
    fail(Kind::WrongShape, "array target.encoder.continuous_inputs_projection.kernel",
         "has " + std::to_string(mc.input_depth) + " input rows; MT3's log-mel has " + std::to_string(fe.n_mels) + " bands");
  const auto expected = expected_tensors(mc);
  for (const auto& e : expected) {
    const auto& got = shape_of(ckpt, e.first, e.second.size());
    if (got != e.second)
      fail(Kind::WrongShape, "array " + dotted(e.first), "has shape " + shape_str(got) + ", expected " + shape_str(e.second));
  }
  for (const auto& kv : ckpt.params) {
    bool known = false;
    for (const auto& e : expected) known = known || e.first == kv.first;
    if (!known) log_warn("mt3-import", "array " + dotted(kv.first) + " is not part of the MT3 network: ignored");
  }
  json prov = provenance.is_object() ? provenance : json::object();
  prov["variant"] = variant;
  return {{"model_type", "tunescribe-mt3"},
          {"format_version", 1},
          {"name", name.empty() ? variant + "-step" + std::to_string(ckpt.step) : name},
          {"frontend", fe.to_json()},
          {"codec", codec.to_json()},
          {"model", mc.to_json()},
          {"provenance", prov}};
}

Mt3ImportResult import_mt3(const Mt3ImportConfig& cfg) {
  cfg.validate();
  fs::path out = fs::absolute(cfg.output_dir).lexically_normal();
  if (out.filename().empty()) out = out.parent_path();
  std::error_code ec;
  if (fs::exists(out, ec) && !cfg.overwrite)
    throw OutputError("mt3-import: " + out.string() + " already exists; not replaced");
  T5xCheckpoint ckpt = read_t5x_checkpoint(cfg.checkpoint_dir);
  const std::string source = fs::absolute(cfg.checkpoint_dir).lexically_normal().string();
  const json provenance = {{"format", "t5x"},
                           {"source_path", source},
                           {"step", ckpt.step},
                           {"checkpoint_sha256", ckpt.checkpoint_sha256},
                           {"inline_arrays", ckpt.inline_arrays},
                           {"zarr_arrays", ckpt.zarr_arrays},
                           {"skipped_state_leaves", ckpt.skipped_state_leaves},
                           {"dtype", cfg.dtype},
                           {"licence", "Apache-2.0 (magenta/mt3)"},
                           {"imported_by", std::string("tunescribe ") + version_string() + " (" + git_commit() + ")"},
                           {"imported_utc", utc_now()}};
  Mt3ImportResult r;
  r.config = mt3_model_config(ckpt, cfg.name, cfg.head_dim, provenance);
  const ModelConfig mc = ModelConfig::from_json(r.config["model"]);
  std::map<std::string, SafetensorsTensor> tensors;
  for (const auto& e : expected_tensors(mc)) tensors[e.first] = std::move(ckpt.params[e.first]);
  ckpt.params.clear();
  if (cfg.dtype != "F32") {
    const float limit = cfg.dtype == "F16" ? 65504.0f : 3.3e38f;
    for (const auto& kv : tensors)
      for (float v : kv.second.data)
        if (std::fabs(v) > limit)
          throw ConfigError("mt3-import: array " + dotted(kv.first) + " holds " + std::to_string(v) +
                            ", outside the " + cfg.dtype + " range: import as F32");
  }
  const std::map<std::string, std::string> metadata = {
      {"source", "t5x"}, {"checkpoint_sha256", ckpt.checkpoint_sha256}, {"step", std::to_string(ckpt.step)}};
  write_model_dir(out, r.config, tensors, cfg.dtype, metadata, cfg.overwrite);
  r.output_dir = out.string();
  r.variant = r.config["provenance"]["variant"].get<std::string>();
  r.step = ckpt.step;
  r.parameters = mc.num_parameters();
  r.checkpoint_sha256 = ckpt.checkpoint_sha256;
  log_info("mt3-import", "wrote " + r.output_dir + " (" + r.variant + ", step " + std::to_string(r.step) + ", " +
                             std::to_string(r.parameters) + " parameters, " + cfg.dtype + ")");
  return r;
}

}  // namespace tunescribe
