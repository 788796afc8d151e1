// model.cpp — the MT3 T5 encoder-decoder in libtorch (CPU, fp32, inference mode).
#include "tunescribe/model.h"

#include <atomic>
#include <dlfcn.h>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>

#include <torch/torch.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include "tunescribe/errors.h"
#include "tunescribe/frontend.h"
#include "tunescribe/log.h"

namespace tunescribe {

using torch::Tensor;

namespace {

enum class AttnKernel { Auto = 0, Matmul, Bmm, MulSum, Loop };
std::atomic<int> g_attn_kernel{int(AttnKernel::Auto)};

const char* kernel_name(AttnKernel k) {
  switch (k) {
    case AttnKernel::Auto: return "auto";
    case AttnKernel::Matmul: return "matmul";
    case AttnKernel::Bmm: return "bmm";
    case AttnKernel::MulSum: return "mulsum";
    case AttnKernel::Loop: return "loop";
  }
  return "auto";
}

// Adds elapsed wall time to a profile field (no-op without a profile).
class ScopedTime {
 public:
  explicit ScopedTime(double* field) : field_(field) {
    if (field_) t0_ = std::chrono::steady_clock::now();
  }
  ~ScopedTime() {
    if (field_) *field_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }

 private:
  double* field_;
  std::chrono::steady_clock::time_point t0_;
};

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

Tensor rms_norm(const Tensor& x, const Tensor& scale) {
  return x * torch::rsqrt(x.square().mean(-1, /*keepdim=*/true) + 1e-6) * scale;
}

// RMSNorm without its scale: the loader folds each pre-norm scale into the rows
// of the kernels that consume the normalised vector ((x*s)·K = x·(diag(s)K)),
// saving one op per sublayer per step.
Tensor rms(const Tensor& x) { return x * torch::rsqrt(x.square().mean(-1, /*keepdim=*/true) + 1e-6); }

// diag(scale) · kernel
Tensor fold(const Tensor& scale, const Tensor& kernel) { return (scale.unsqueeze(1) * kernel).contiguous(); }

// q [B,H,Lq,Dh] · k [B,H,Lk,Dh]^T -> [B,H,Lq,Lk]
Tensor attn_scores(const Tensor& q, const Tensor& k, AttnKernel kern) {
  const int64_t B = q.size(0), H = q.size(1), Lq = q.size(2), Dh = q.size(3), Lk = k.size(2);
  switch (kern) {
    case AttnKernel::Bmm:
      return torch::bmm(q.reshape({B * H, Lq, Dh}), k.reshape({B * H, Lk, Dh}).transpose(1, 2)).view({B, H, Lq, Lk});
    case AttnKernel::MulSum:
      if (Lq == 1) return (q * k).sum(-1).unsqueeze(2);
      return torch::matmul(q, k.transpose(-2, -1));
    case AttnKernel::Loop: {
      Tensor out = torch::empty({B, H, Lq, Lk}, q.options());
      for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h) {
          Tensor o = out[b][h];
          if (Lq == 1) {
            Tensor o0 = o[0];
            torch::mv_out(o0, k[b][h], q[b][h][0]);
          } else
            torch::mm_out(o, q[b][h], k[b][h].t());
        }
      return out;
    }
    case AttnKernel::Matmul:
    case AttnKernel::Auto:
    default:
      return torch::matmul(q, k.transpose(-2, -1));
  }
}

// p [B,H,Lq,Lk] · v [B,H,Lk,Dh] -> [B,H,Lq,Dh]
Tensor attn_values(const Tensor& p, const Tensor& v, AttnKernel kern) {
  const int64_t B = p.size(0), H = p.size(1), Lq = p.size(2), Lk = p.size(3), Dh = v.size(3);
  switch (kern) {
    case AttnKernel::Bmm:
      return torch::bmm(p.reshape({B * H, Lq, Lk}), v.reshape({B * H, Lk, Dh})).view({B, H, Lq, Dh});
    case AttnKernel::MulSum:
      if (Lq == 1) return (p.transpose(2, 3) * v).sum(2, /*keepdim=*/true);
      return torch::matmul(p, v);
    case AttnKernel::Loop: {
      Tensor out = torch::empty({B, H, Lq, Dh}, p.options());
      for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h) {
          Tensor o = out[b][h];
          if (Lq == 1) {
            Tensor o0 = o[0];
            torch::mv_out(o0, v[b][h].t(), p[b][h][0]);
          } else
            torch::mm_out(o, p[b][h], v[b][h]);
        }
      return out;
    }
    case AttnKernel::Matmul:
    case AttnKernel::Auto:
    default:
      return torch::matmul(p, v);
  }
}

// Unscaled dot-product attention (scale 1.0). bias: additive [Lq, Lk] or undefined.
Tensor attention_core(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias) {
  AttnKernel kern = AttnKernel(g_attn_kernel.load());
  if (kern == AttnKernel::Auto) kern = q.size(2) == 1 ? AttnKernel::MulSum : AttnKernel::Matmul;
  Tensor s = attn_scores(q, k, kern);
  if (bias.defined()) s = s + bias;
  Tensor p = torch::softmax(s, -1);
  return attn_values(p, v, kern);
}

struct AttnW {
  Tensor wqkv;  // [d, 3*HD] (self-attention)
  Tensor wq;    // [d, HD]
  Tensor wkv;   // [d, 2*HD]
  Tensor wo;    // [HD, d]
};
struct MlpW {
  Tensor wi;  // [d, 2*mlp] = [wi_0 | wi_1]
  Tensor wo;  // [mlp, d]
};
struct EncLayer {
  // pre-norm scales are folded into attn.wqkv and mlp.wi
  AttnW attn;
  MlpW mlp;
};
struct DecLayer {
  // pre-norm scales are folded into self_attn.wqkv, cross_attn.wq and mlp.wi
  AttnW self_attn, cross_attn;
  MlpW mlp;
};
// The hconv front's weights (PyTorch layouts).
struct HconvW {
  Tensor in_scale, in_bias;  // [n_bins]
  Tensor conv1_w, conv1_b, conv2_w, conv2_b, down_w, down_b, heads_w, heads_b;
  std::vector<Tensor> res_w, res_b;
};

std::once_flag g_threads_once;
std::atomic<int> g_threads{0};
std::atomic<int> g_workers{1};
// Set in batch-split worker threads: they never touch the (single-threaded) profile.
thread_local bool t_in_worker = false;

}  // namespace

// ---------------------------------------------------------------------------
struct EncoderOutput::Impl {
  Tensor x;  // [B, T, d]
};

EncoderOutput::EncoderOutput() = default;
EncoderOutput::~EncoderOutput() = default;
EncoderOutput::EncoderOutput(const EncoderOutput&) = default;
EncoderOutput& EncoderOutput::operator=(const EncoderOutput&) = default;
bool EncoderOutput::empty() const { return !impl || !impl->x.defined(); }
int EncoderOutput::batch() const { return empty() ? 0 : int(impl->x.size(0)); }
int EncoderOutput::frames() const { return empty() ? 0 : int(impl->x.size(1)); }
int EncoderOutput::d_model() const { return empty() ? 0 : int(impl->x.size(2)); }
std::vector<float> EncoderOutput::to_vector() const {
  if (empty()) return {};
  Tensor c = impl->x.contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

struct DecoderState::Impl {
  std::vector<Tensor> self_k, self_v;    // [B, H, max_len, Dh] each, written in place
  std::vector<Tensor> cross_k, cross_v;  // [B, H, T, Dh]
  int batch = 0;
  int pos = 0;
  int max_len = 0;
};

DecoderState::DecoderState() = default;
DecoderState::~DecoderState() = default;
DecoderState::DecoderState(DecoderState&&) noexcept = default;
DecoderState& DecoderState::operator=(DecoderState&&) noexcept = default;
int DecoderState::batch() const { return impl ? impl->batch : 0; }
int DecoderState::position() const { return impl ? impl->pos : 0; }
int DecoderState::max_length() const { return impl ? impl->max_len : 0; }

// ---------------------------------------------------------------------------
struct Model::Impl {
  ModelConfig cfg;
  nlohmann::json raw, frontend, codec, decoding;
  bool has_hconv = false;
  HconvConfig hc;
  std::vector<int> shifts;
  HconvW hw;
  std::string dir, label, name;
  Tensor in_proj, pe, enc_norm, embed, logits_w, null_mem;
  std::vector<EncLayer> enc;
  std::vector<DecLayer> dec;
  mutable std::atomic<DecodeProfile*> profile{nullptr};
  // quantize_int8(): packed int8 weights of the T5 matrices, keyed by the fp32 weight's storage.
  std::unordered_map<const void*, c10::IValue> qpacked;

  // x [..., in] times w [in, out]: fp32, or int8 dynamic quantization when w was packed.
  Tensor lin(const Tensor& x, const Tensor& w) const {
    if (!qpacked.empty()) {
      auto it = qpacked.find(w.unsafeGetTensorImpl());
      if (it != qpacked.end()) {
        static const c10::OperatorHandle op =
            c10::Dispatcher::singleton().findSchemaOrThrow("quantized::linear_dynamic", "");
        std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
        torch::jit::Stack st{x.reshape({-1, x.size(-1)}).contiguous(), it->second, false};
        op.callBoxed(&st);
        shape.back() = w.size(1);
        return st[0].toTensor().view(shape);
      }
    }
    return x.dim() == 2 ? x.mm(w) : x.matmul(w);
  }

  int64_t H() const { return cfg.num_heads; }
  int64_t Dh() const { return cfg.head_dim; }
  int64_t HD() const { return int64_t(cfg.num_heads) * cfg.head_dim; }
  DecodeProfile* current_profile() const { return t_in_worker ? nullptr : profile.load(); }
  double* prof(double DecodeProfile::*f) const {
    DecodeProfile* p = current_profile();
    return p ? &(p->*f) : nullptr;
  }

  Tensor mlp(const Tensor& h, const MlpW& w) const {
    Tensor a = lin(h, w.wi);
    const int64_t m = cfg.mlp_dim;
    return lin(torch::gelu(a.narrow(-1, 0, m), "tanh") * a.narrow(-1, m, m), w.wo);
  }

  // Full (uncached) multi-head attention; xq [B,Lq,d], xkv [B,Lk,d].
  Tensor mha_full(const Tensor& xq, const Tensor& xkv, const AttnW& w, bool self, const Tensor& bias) const {
    const int64_t B = xq.size(0), Lq = xq.size(1), Lk = xkv.size(1);
    Tensor q, k, v;
    if (self) {
      Tensor qkv = lin(xq, w.wqkv).view({B, Lq, 3, H(), Dh()}).permute({2, 0, 3, 1, 4}).contiguous();
      q = qkv[0];
      k = qkv[1];
      v = qkv[2];
    } else {
      q = lin(xq, w.wq).view({B, Lq, H(), Dh()}).permute({0, 2, 1, 3}).contiguous();
      Tensor kv = lin(xkv, w.wkv).view({B, Lk, 2, H(), Dh()}).permute({2, 0, 3, 1, 4}).contiguous();
      k = kv[0];
      v = kv[1];
    }
    Tensor o = attention_core(q, k, v, bias);  // [B,H,Lq,Dh]
    return lin(o.permute({0, 2, 1, 3}).reshape({B, Lq, HD()}), w.wo);
  }

  // hconv.HarmonicFront.forward: feats [B, T, n_bins] -> heads logits [B, 4+F, T, 88]
  // and the key features x [B, C2, T, 88].
  std::pair<Tensor, Tensor> front(const Tensor& feats) const {
    const int64_t bps = hc.bins_per_semitone, width = int64_t(HconvConfig::kKeys) * bps, n = hc.n_bins;
    const int64_t off = hc.bin_offset;
    Tensor x = feats * hw.in_scale + hw.in_bias;
    const int64_t mn = *std::min_element(shifts.begin(), shifts.end());
    const int64_t mx = *std::max_element(shifts.begin(), shifts.end());
    const int64_t lo_pad = std::max<int64_t>(0, -mn - off), hi_pad = std::max<int64_t>(0, off + mx + width - n);
    Tensor xp = torch::constant_pad_nd(x, {lo_pad, hi_pad}, 0.0);
    std::vector<Tensor> parts;
    for (int s : shifts) parts.push_back(xp.narrow(2, lo_pad + off + s, width));
    x = torch::stack(parts, 1);  // [B, H, T, 88*bps]
    using Ints = std::vector<int64_t>;
    const Ints one{1, 1}, zero{0, 0}, down_stride{1, bps};
    x = torch::relu(torch::conv2d(x, hw.conv1_w, hw.conv1_b, one, one));
    x = torch::relu(torch::conv2d(x, hw.conv2_w, hw.conv2_b, one, one));
    x = torch::relu(torch::conv2d(x, hw.down_w, hw.down_b, down_stride, zero));
    for (size_t i = 0; i < hw.res_w.size(); ++i) {
      const int64_t d = int64_t(1) << i;
      const Ints dil{d, 1};
      x = x + torch::relu(torch::conv2d(x, hw.res_w[i], hw.res_b[i], one, dil, dil));
    }
    Tensor heads = torch::conv2d(x, hw.heads_w, hw.heads_b);
    return {heads, x};
  }

  // The T5 encoder's input: [B, T, C2*88 | 4*88] (key features, sigmoid of the first 4 heads).
  static Tensor memory(const Tensor& heads, const Tensor& x) {
    const int64_t B = x.size(0), C = x.size(1), T = x.size(2), P = x.size(3);
    return torch::cat({x.permute({0, 2, 1, 3}).reshape({B, T, C * P}),
                       torch::sigmoid(heads.narrow(1, 0, 4)).permute({0, 2, 1, 3}).reshape({B, T, 4 * P})},
                      -1);
  }

  // Features [B, T, feature depth] -> the encoder's continuous input.
  Tensor encoder_input(const Tensor& feats) const {
    if (!has_hconv) return feats;
    auto hx = front(feats);
    return memory(hx.first, hx.second);
  }

  Tensor encode(const Tensor& mel) const {
    const int64_t T = mel.size(1);
    Tensor x = lin(mel, in_proj) + pe.narrow(0, 0, T);
    Tensor none;
    for (const auto& L : enc) {
      Tensor h = rms(x);
      x = x + mha_full(h, h, L.attn, true, none);
      x = x + mlp(rms(x), L.mlp);
    }
    return rms_norm(x, enc_norm);
  }

  // Teacher-forced decoder: tokens [B, L] int64 -> logits [B, L, V].
  Tensor decode_full(const Tensor& mem, const Tensor& tokens) const {
    const int64_t B = tokens.size(0), L = tokens.size(1);
    Tensor x = embed.index_select(0, tokens.reshape({-1})).view({B, L, cfg.d_model}) + pe.narrow(0, 0, L);
    Tensor causal = torch::full({L, L}, -1e10f, torch::kFloat).triu(1);
    Tensor none;
    for (const auto& D : dec) {
      Tensor h = rms(x);
      x = x + mha_full(h, h, D.self_attn, true, causal);
      h = rms(x);
      x = x + mha_full(h, mem, D.cross_attn, false, none);
      x = x + mlp(rms(x), D.mlp);
    }
    return lin(rms(x), logits_w);
  }

  DecoderState::Impl start(const Tensor& mem, int max_len) const {
    DecoderState::Impl st;
    ScopedTime t(prof(&DecodeProfile::cross_kv_s));
    const int64_t B = mem.size(0), T = mem.size(1);
    st.batch = int(B);
    st.max_len = max_len;
    for (const auto& D : dec) {
      Tensor kv = lin(mem, D.cross_attn.wkv).view({B, T, 2, H(), Dh()}).permute({2, 0, 3, 1, 4}).contiguous();
      st.cross_k.push_back(kv[0]);
      st.cross_v.push_back(kv[1]);
      st.self_k.push_back(torch::empty({B, H(), max_len, Dh()}, torch::kFloat));
      st.self_v.push_back(torch::empty({B, H(), max_len, Dh()}, torch::kFloat));
    }
    return st;
  }

  // One cached decoder step: tokens [B] int64 -> logits [B, V].
  Tensor step(DecoderState::Impl& st, const Tensor& tokens) const {
    const int64_t B = st.batch;
    const int pos = st.pos;
    Tensor x;
    {
      ScopedTime t(prof(&DecodeProfile::embed_s));
      x = embed.index_select(0, tokens) + pe[pos];  // [B, d]
    }
    Tensor none;
    for (size_t l = 0; l < dec.size(); ++l) {
      const DecLayer& D = dec[l];
      {
        ScopedTime t(prof(&DecodeProfile::self_attn_s));
        Tensor qkv = lin(rms(x), D.self_attn.wqkv);  // [B, 3HD]
        Tensor q = qkv.narrow(1, 0, HD()).reshape({B, H(), 1, Dh()});
        st.self_k[l].select(2, pos).copy_(qkv.narrow(1, HD(), HD()).view({B, H(), Dh()}));
        st.self_v[l].select(2, pos).copy_(qkv.narrow(1, 2 * HD(), HD()).view({B, H(), Dh()}));
        Tensor o = attention_core(q, st.self_k[l].narrow(2, 0, pos + 1), st.self_v[l].narrow(2, 0, pos + 1), none);
        x = x + lin(o.reshape({B, HD()}), D.self_attn.wo);
      }
      {
        ScopedTime t(prof(&DecodeProfile::cross_attn_s));
        Tensor q = lin(rms(x), D.cross_attn.wq).view({B, H(), 1, Dh()});
        Tensor o = attention_core(q, st.cross_k[l], st.cross_v[l], none);
        x = x + lin(o.reshape({B, HD()}), D.cross_attn.wo);
      }
      {
        ScopedTime t(prof(&DecodeProfile::mlp_s));
        x = x + mlp(rms(x), D.mlp);
      }
    }
    ScopedTime t(prof(&DecodeProfile::logits_s));
    st.pos++;
    return lin(rms(x), logits_w);
  }

  void select(DecoderState::Impl& st, const Tensor& idx) const {
    ScopedTime t(prof(&DecodeProfile::cache_s));
    const int64_t nb = idx.size(0);
    for (size_t l = 0; l < dec.size(); ++l) {
      st.cross_k[l] = st.cross_k[l].index_select(0, idx);
      st.cross_v[l] = st.cross_v[l].index_select(0, idx);
      for (Tensor* c : {&st.self_k[l], &st.self_v[l]}) {
        Tensor n = torch::empty({nb, H(), st.max_len, Dh()}, torch::kFloat);
        if (st.pos > 0) n.narrow(2, 0, st.pos).copy_(c->narrow(2, 0, st.pos).index_select(0, idx));
        *c = n;
      }
    }
    st.batch = int(nb);
  }
};

// ---------------------------------------------------------------------------
Model::Model() : impl_(std::make_unique<Impl>()) {}
Model::~Model() = default;

// Checks config.json (model_type, format_version, sections) and fills the
// config fields of an Impl. Messages start "model: config.json" (load renames).
static void parse_config(Model::Impl& I, const nlohmann::json& cfg_json) {
  const std::string cfg_label = "model: config.json";
  if (!cfg_json.is_object()) throw ModelError(cfg_label + ": not a JSON object");
  if (!cfg_json.contains("model_type") || cfg_json["model_type"] != "tunescribe-mt3")
    throw ModelError(cfg_label + ": model_type is " +
                     (cfg_json.contains("model_type") ? cfg_json["model_type"].dump() : std::string("missing")) +
                     ", expected \"tunescribe-mt3\"");
  if (!cfg_json.contains("format_version") || !cfg_json["format_version"].is_number_integer() ||
      (cfg_json["format_version"].get<int64_t>() != 1 && cfg_json["format_version"].get<int64_t>() != 2))
    throw ModelError(cfg_label + ": format_version is " +
                     (cfg_json.contains("format_version") ? cfg_json["format_version"].dump() : std::string("missing")) +
                     ", this build reads format_version 1 and 2");
  const int64_t version = cfg_json["format_version"].get<int64_t>();
  if (!cfg_json.contains("model")) throw ModelError(cfg_label + ": the \"model\" section is missing");
  I.cfg = ModelConfig::from_json(cfg_json["model"]);
  I.raw = cfg_json;
  I.frontend = cfg_json.contains("frontend") ? cfg_json["frontend"] : nlohmann::json::object();
  I.codec = cfg_json.contains("codec") ? cfg_json["codec"] : nlohmann::json::object();
  if (!I.frontend.is_object()) throw ModelError(cfg_label + ": the \"frontend\" section is not an object");
  if (!I.codec.is_object()) throw ModelError(cfg_label + ": the \"codec\" section is not an object");
  I.decoding = cfg_json.contains("decoding") ? cfg_json["decoding"] : nlohmann::json::object();
  if (!I.decoding.is_object()) throw ModelError(cfg_label + ": the \"decoding\" section is not an object");
  I.has_hconv = cfg_json.contains("hconv");
  if (version == 2 && !I.has_hconv)
    throw ModelError(cfg_label + ": format_version is 2 but there is no \"hconv\" section (format_version 2 is the "
                     "hconv model family)");
  if (I.has_hconv) {
    if (version < 2)
      throw ModelError(cfg_label + ": an \"hconv\" section needs format_version 2, found " + std::to_string(version));
    LogMelConfig fe;
    try {
      fe = LogMelConfig::from_json(I.frontend);
    } catch (const ConfigError& e) {
      throw ModelError(cfg_label + ": " + e.what());
    }
    if (!fe.is_logfreq())
      throw ModelError(cfg_label + ": an hconv model needs frontend.kind \"logfreq\", found \"" + fe.kind + "\"");
    I.hc = HconvConfig::from_json(cfg_json["hconv"], fe.n_bins, fe.bins_per_semitone);
    I.shifts = I.hc.shifts();
    if (I.hc.memory_depth() != I.cfg.input_depth)
      throw ModelError(cfg_label + ": model.input_depth = " + std::to_string(I.cfg.input_depth) +
                       " differs from the hconv memory depth (key_channels + 4) * 88 = " +
                       std::to_string(I.hc.memory_depth()));
  }
  if (!I.has_hconv && I.frontend.contains("n_mels") && I.frontend["n_mels"].is_number_integer() &&
      I.frontend["n_mels"].get<int64_t>() != I.cfg.input_depth)
    throw ModelError(cfg_label + ": frontend.n_mels = " + I.frontend["n_mels"].dump() +
                     " differs from model.input_depth = " + std::to_string(I.cfg.input_depth));
  I.name = cfg_json.contains("name") && cfg_json["name"].is_string() ? cfg_json["name"].get<std::string>() : "";

}

std::unique_ptr<Model> Model::load(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  const std::string st_path = (fs::path(dir) / "model.safetensors").string();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw ModelError("model: " + dir + ": not a model directory");
  std::ifstream f(cfg_path, std::ios::binary);
  if (!f) throw ModelError("model: " + cfg_path + ": cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  nlohmann::json cfg;
  try {
    cfg = nlohmann::json::parse(ss.str());
  } catch (const std::exception& e) {
    throw ModelError("model: " + cfg_path + ": invalid JSON: " + e.what());
  }
  // Config problems name the config file, tensor problems the weights file.
  auto renamed = [&](const Error& e) {
    const std::string msg = e.what(), pre = "model: config.json";
    if (msg.rfind(pre, 0) == 0) return ModelError("model: " + cfg_path + msg.substr(pre.size()));
    return ModelError(msg);
  };
  try {  // fail on the config before reading a large weights file
    Model::Impl check;
    parse_config(check, cfg);
  } catch (const Error& e) {
    throw renamed(e);
  }
  SafetensorsFile file = read_safetensors(st_path);
  std::unique_ptr<Model> m;
  try {
    m = from_tensors(cfg, file.tensors, st_path);
  } catch (const Error& e) {
    throw renamed(e);
  }
  m->impl_->dir = dir;
  return m;
}

std::unique_ptr<Model> Model::from_tensors(const nlohmann::json& cfg_json,
                                           const std::map<std::string, SafetensorsTensor>& tensors,
                                           const std::string& label) {
  c10::InferenceMode guard;
  std::unique_ptr<Model> model(new Model());
  Impl& I = *model->impl_;
  I.label = label;
  parse_config(I, cfg_json);

  const ModelConfig& c = I.cfg;
  auto expected = expected_tensors(c);
  if (I.has_hconv) {
    auto hconv = expected_hconv_tensors(I.hc);
    expected.insert(expected.end(), hconv.begin(), hconv.end());
  }
  std::map<std::string, Tensor> W;
  for (const auto& e : expected) {
    auto it = tensors.find(e.first);
    if (it == tensors.end())
      throw ModelError("model: " + label + ": missing tensor '" + e.first + "' (expected shape " + shape_str(e.second) + ")");
    if (it->second.shape != e.second)
      throw ModelError("model: " + label + ": tensor '" + e.first + "' has shape " + shape_str(it->second.shape) +
                       ", expected " + shape_str(e.second));
    if (int64_t(it->second.data.size()) != it->second.numel())
      throw ModelError("model: " + label + ": tensor '" + e.first + "' data size disagrees with its shape");
    W[e.first] = torch::from_blob(const_cast<float*>(it->second.data.data()), e.second, torch::kFloat).clone();
  }
  size_t unexpected = 0;
  for (const auto& kv : tensors)
    if (!W.count(kv.first) && kv.first != kNullMemoryTensor) ++unexpected;
  if (unexpected) log_warn("model", label + ": " + std::to_string(unexpected) + " unexpected tensors ignored");
  auto nm = tensors.find(kNullMemoryTensor);
  if (nm != tensors.end()) {
    std::vector<int64_t> want{1, c.d_model};
    if (nm->second.shape != want)
      throw ModelError("model: " + label + ": tensor '" + std::string(kNullMemoryTensor) + "' has shape " +
                       shape_str(nm->second.shape) + ", expected " + shape_str(want));
    I.null_mem = torch::from_blob(const_cast<float*>(nm->second.data.data()), want, torch::kFloat).clone();
  }

  auto attn = [&](const std::string& p) {
    AttnW a;
    Tensor q = W[p + "/query/kernel"], k = W[p + "/key/kernel"], v = W[p + "/value/kernel"];
    a.wq = q;
    a.wkv = torch::cat({k, v}, 1).contiguous();
    a.wqkv = torch::cat({q, k, v}, 1).contiguous();
    a.wo = W[p + "/out/kernel"];
    return a;
  };
  auto mlp = [&](const std::string& p) {
    MlpW m;
    m.wi = torch::cat({W[p + "/wi_0/kernel"], W[p + "/wi_1/kernel"]}, 1).contiguous();
    m.wo = W[p + "/wo/kernel"];
    return m;
  };
  I.in_proj = W["target/encoder/continuous_inputs_projection/kernel"];
  for (int i = 0; i < c.num_encoder_layers; ++i) {
    const std::string p = "target/encoder/layers_" + std::to_string(i);
    EncLayer L;
    L.attn = attn(p + "/attention");
    L.attn.wqkv = fold(W[p + "/pre_attention_layer_norm/scale"], L.attn.wqkv);
    L.attn.wq = Tensor();
    L.attn.wkv = Tensor();
    L.mlp = mlp(p + "/mlp");
    L.mlp.wi = fold(W[p + "/pre_mlp_layer_norm/scale"], L.mlp.wi);
    I.enc.push_back(std::move(L));
  }
  I.enc_norm = W["target/encoder/encoder_norm/scale"];
  I.embed = W["target/decoder/token_embedder/embedding"];
  for (int i = 0; i < c.num_decoder_layers; ++i) {
    const std::string p = "target/decoder/layers_" + std::to_string(i);
    DecLayer L;
    L.self_attn = attn(p + "/self_attention");
    L.self_attn.wqkv = fold(W[p + "/pre_self_attention_layer_norm/scale"], L.self_attn.wqkv);
    L.self_attn.wq = Tensor();
    L.self_attn.wkv = Tensor();
    L.cross_attn = attn(p + "/encoder_decoder_attention");
    L.cross_attn.wq = fold(W[p + "/pre_cross_attention_layer_norm/scale"], L.cross_attn.wq);
    L.cross_attn.wqkv = Tensor();
    L.mlp = mlp(p + "/mlp");
    L.mlp.wi = fold(W[p + "/pre_mlp_layer_norm/scale"], L.mlp.wi);
    I.dec.push_back(std::move(L));
  }
  I.logits_w = fold(W["target/decoder/decoder_norm/scale"], W["target/decoder/logits_dense/kernel"]);
  if (I.has_hconv) {
    HconvW& h = I.hw;
    h.in_scale = W["hconv/in_scale"];
    h.in_bias = W["hconv/in_bias"];
    h.conv1_w = W["hconv/conv1/kernel"];
    h.conv1_b = W["hconv/conv1/bias"];
    h.conv2_w = W["hconv/conv2/kernel"];
    h.conv2_b = W["hconv/conv2/bias"];
    h.down_w = W["hconv/down/kernel"];
    h.down_b = W["hconv/down/bias"];
    for (int i = 0; i < I.hc.res_layers; ++i) {
      h.res_w.push_back(W["hconv/res" + std::to_string(i) + "/kernel"]);
      h.res_b.push_back(W["hconv/res" + std::to_string(i) + "/bias"]);
    }
    h.heads_w = W["hconv/heads/kernel"];
    h.heads_b = W["hconv/heads/bias"];
  }

  // Fixed sinusoidal positions, [sin | cos], denominator d/2 - 1, computed in double.
  const int half = c.d_model / 2;
  std::vector<float> pe(size_t(c.max_positions) * c.d_model);
  const double scale = half > 1 ? -std::log(10000.0) / double(half - 1) : 0.0;
  for (int p = 0; p < c.max_positions; ++p)
    for (int i = 0; i < half; ++i) {
      const double a = double(p) * std::exp(double(i) * scale);
      pe[size_t(p) * c.d_model + i] = float(std::sin(a));
      pe[size_t(p) * c.d_model + half + i] = float(std::cos(a));
    }
  I.pe = torch::from_blob(pe.data(), {c.max_positions, c.d_model}, torch::kFloat).clone();
  return model;
}

const ModelConfig& Model::config() const { return impl_->cfg; }
const nlohmann::json& Model::raw_config() const { return impl_->raw; }
const nlohmann::json& Model::frontend_json() const { return impl_->frontend; }
const nlohmann::json& Model::codec_json() const { return impl_->codec; }
const nlohmann::json& Model::decoding_json() const { return impl_->decoding; }
bool Model::has_heads() const { return impl_->has_hconv; }
const HconvConfig& Model::hconv_config() const { return impl_->hc; }
int Model::feature_depth() const { return impl_->has_hconv ? impl_->hc.n_bins : impl_->cfg.input_depth; }
std::string Model::name() const { return impl_->name; }
const std::string& Model::dir() const { return impl_->dir; }
bool Model::has_null_memory() const { return impl_->null_mem.defined(); }
void Model::set_profile(DecodeProfile* profile) const { impl_->profile = profile; }

bool int8_available() {
  for (at::QEngine e : at::globalContext().supportedQEngines())
    if (e == at::QEngine::ONEDNN) return true;
  return false;
}

int Model::quantize_int8() {
  Impl& I = *impl_;
  if (!I.qpacked.empty()) return int(I.qpacked.size());
  if (!int8_available())
    throw NotAvailableError("model: int8 inference needs libtorch's oneDNN quantized engine, which this build lacks");
  at::globalContext().setQEngine(at::QEngine::ONEDNN);
  torch::NoGradGuard no_grad;
  const c10::OperatorHandle prepack = c10::Dispatcher::singleton().findSchemaOrThrow("quantized::linear_prepack", "");
  auto pack = [&](const Tensor& w) {  // w [in, out]: symmetric per-output-channel int8
    if (!w.defined() || I.qpacked.count(w.unsafeGetTensorImpl())) return;
    Tensor wt = w.t().contiguous();  // [out, in]
    Tensor scale = std::get<0>(wt.abs().max(1)).clamp_min(1e-12).div(127.0).to(torch::kDouble);
    Tensor q = at::quantize_per_channel(wt, scale, torch::zeros({wt.size(0)}, torch::kLong), 0, at::kQInt8);
    torch::jit::Stack st{q, c10::IValue()};
    prepack.callBoxed(&st);
    I.qpacked.emplace(w.unsafeGetTensorImpl(), st[0]);
  };
  pack(I.in_proj);
  for (const auto& L : I.enc) {
    for (const Tensor* w : {&L.attn.wqkv, &L.attn.wo, &L.mlp.wi, &L.mlp.wo}) pack(*w);
  }
  // Decoder: only the cross-attention K/V projection (once per segment, over every frame). The
  // per-token matrices stay fp32: with a few rows per call, quantizing the activations costs more
  // than the int8 product saves (measured: decoding 256 -> 123 tokens/s with them, docs/performance.md).
  for (const auto& D : I.dec) pack(D.cross_attn.wkv);
  return int(I.qpacked.size());
}

bool Model::quantized() const { return !impl_->qpacked.empty(); }

namespace {

// Runs fn(chunk_index, begin, end) for `workers` contiguous chunks of [0, n) on
// their own threads; rethrows the first exception.
template <class F>
void run_chunks(int n, int workers, F fn) {
  workers = std::max(1, std::min(workers, n));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(workers));
  std::vector<std::thread> pool;
  for (int w = 0; w < workers; ++w) {
    const int b0 = int(int64_t(n) * w / workers), b1 = int(int64_t(n) * (w + 1) / workers);
    pool.emplace_back([&, w, b0, b1] {
      // A new thread starts with OpenMP's default team size (every core): give it the
      // process's intra-op setting, or oneDNN (int8) ops oversubscribe the cores.
      at::init_num_threads();
      try {
        fn(w, b0, b1);
      } catch (...) {
        errors[size_t(w)] = std::current_exception();
      }
    });
  }
  for (auto& t : pool) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace

namespace {
// Segments [b0, b1) of `mel`, at most kEncodeRows per call: a larger call's activations fall out
// of the core's cache (measured on MT3, 2 workers: 67.9 ms/segment with 4 segments a call, 79.8
// with 8).
Tensor encode_rows(const Model::Impl& I, const float* mel, int b0, int b1, int frames, int depth) {
  constexpr int kEncodeRows = 4;
  const size_t item = size_t(frames) * depth;
  std::vector<Tensor> sub;
  for (int s = b0; s < b1; s += kEncodeRows) {
    const int e = std::min(b1, s + kEncodeRows);
    Tensor x = torch::from_blob(const_cast<float*>(mel) + s * item, {e - s, frames, depth}, torch::kFloat);
    sub.push_back(I.encode(I.encoder_input(x)));
  }
  return sub.size() == 1 ? sub[0] : torch::cat(sub, 0);
}
}  // namespace

EncoderOutput Model::encode(const float* mel, int batch, int frames, int workers) const {
  const ModelConfig& c = impl_->cfg;
  const int depth = feature_depth();
  if (batch < 1) throw InputError("model: encode: batch = " + std::to_string(batch) + " must be >= 1");
  if (frames < 1 || frames > c.max_positions)
    throw InputError("model: encode: frames = " + std::to_string(frames) + " is not within [1, " +
                     std::to_string(c.max_positions) + "]");
  c10::InferenceMode guard;
  ScopedTime t(impl_->prof(&DecodeProfile::encoder_s));
  EncoderOutput out;
  out.impl = std::make_shared<EncoderOutput::Impl>();
  if (workers <= 0) workers = model_workers();
  if (workers > 1 && batch > 1) {
    const int n = std::min(workers, batch);
    std::vector<Tensor> parts(static_cast<size_t>(n));
    run_chunks(batch, n, [&](int w, int b0, int b1) {
      t_in_worker = true;
      c10::InferenceMode g;
      parts[size_t(w)] = encode_rows(*impl_, mel, b0, b1, frames, depth);
    });
    out.impl->x = torch::cat(parts, 0);
    return out;
  }
  out.impl->x = encode_rows(*impl_, mel, 0, batch, frames, depth);
  return out;
}


namespace {
void check_front_args(const Model::Impl& I, int batch, int frames, const char* what) {
  if (!I.has_hconv)
    throw ModelError("model: " + I.label + ": " + what + ": this model has no hconv front (no \"hconv\" section)");
  if (batch < 1) throw InputError(std::string("model: ") + what + ": batch = " + std::to_string(batch) + " must be >= 1");
  if (frames < 1 || frames > 65536)
    throw InputError(std::string("model: ") + what + ": frames = " + std::to_string(frames) +
                     " is not within [1, 65536]");
}

std::vector<float> to_floats(const Tensor& t) {
  Tensor c = t.contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}
}  // namespace

std::vector<float> Model::front_heads(const float* features, int batch, int frames, int workers) const {
  check_front_args(*impl_, batch, frames, "front_heads");
  c10::InferenceMode guard;
  ScopedTime t(impl_->prof(&DecodeProfile::encoder_s));
  const int depth = feature_depth();
  auto heads_of = [&](int b0, int b1) {
    Tensor x = torch::from_blob(const_cast<float*>(features) + size_t(b0) * frames * depth, {b1 - b0, frames, depth},
                                torch::kFloat);
    Tensor h = impl_->front(x).first;
    return torch::cat({torch::sigmoid(h.narrow(1, 0, 4)), h.narrow(1, 4, h.size(1) - 4)}, 1).contiguous();
  };
  if (workers <= 0) workers = model_workers();
  if (workers > 1 && batch > 1) {
    const int n = std::min(workers, batch);
    std::vector<Tensor> parts(static_cast<size_t>(n));
    run_chunks(batch, n, [&](int w, int b0, int b1) {
      t_in_worker = true;
      c10::InferenceMode g;
      parts[size_t(w)] = heads_of(b0, b1);
    });
    return to_floats(torch::cat(parts, 0));
  }
  return to_floats(heads_of(0, batch));
}

std::vector<float> Model::front_memory(const float* features, int batch, int frames) const {
  check_front_args(*impl_, batch, frames, "front_memory");
  c10::InferenceMode guard;
  Tensor x = torch::from_blob(const_cast<float*>(features), {batch, frames, feature_depth()}, torch::kFloat);
  return to_floats(impl_->encoder_input(x));
}

EncoderOutput Model::null_memory(int batch) const {
  if (!has_null_memory()) throw ModelError("model: " + impl_->label + ": this model has no null_memory tensor");
  if (batch < 1) throw InputError("model: null_memory: batch = " + std::to_string(batch) + " must be >= 1");
  c10::InferenceMode guard;
  EncoderOutput out;
  out.impl = std::make_shared<EncoderOutput::Impl>();
  out.impl->x = impl_->null_mem.unsqueeze(0).expand({batch, 1, impl_->cfg.d_model}).contiguous();
  return out;
}

static void check_enc(const EncoderOutput& enc, const ModelConfig& c) {
  if (enc.empty()) throw InputError("model: decode: empty encoder output");
  if (enc.d_model() != c.d_model) throw InputError("model: decode: encoder output is from another model");
}

std::vector<std::vector<int>> Model::greedy_decode(const EncoderOutput& enc, int max_steps,
                                                   const GreedyOptions& opts) const {
  const ModelConfig& c = impl_->cfg;
  check_enc(enc, c);
  if (max_steps < 1 || max_steps > c.max_positions)
    throw InputError("model: decode: max_steps = " + std::to_string(max_steps) + " is not within [1, " +
                     std::to_string(c.max_positions) + "]");
  const int B = enc.batch();
  const int workers = opts.workers > 0 ? opts.workers : model_workers();
  if (workers > 1 && B > 1) {
    GreedyOptions one = opts;
    one.workers = 1;
    std::vector<std::vector<int>> out(static_cast<size_t>(B));
    run_chunks(B, workers, [&](int, int b0, int b1) {
      t_in_worker = true;
      EncoderOutput sub;
      sub.impl = std::make_shared<EncoderOutput::Impl>();
      {
        c10::InferenceMode g;
        sub.impl->x = enc.impl->x.narrow(0, b0, b1 - b0);
      }
      auto part = greedy_decode(sub, max_steps, one);
      for (int b = b0; b < b1; ++b) out[size_t(b)] = std::move(part[size_t(b - b0)]);
    });
    return out;
  }
  c10::InferenceMode guard;
  DecodeProfile* const prof = impl_->current_profile();
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::vector<int>> out(static_cast<size_t>(B));
  std::vector<char> done(static_cast<size_t>(B), 0);
  if (!opts.use_cache) {
    Tensor tokens = torch::zeros({B, 1}, torch::kLong);
    for (int s = 0; s < max_steps; ++s) {
      Tensor next = impl_->decode_full(enc.impl->x, tokens).select(1, s).argmax(-1);
      auto acc = next.accessor<int64_t, 1>();
      bool all = true;
      for (int b = 0; b < B; ++b) {
        if (!done[b]) {
          out[b].push_back(int(acc[b]));
          if (acc[b] == opts.eos_id) done[b] = 1;
        }
        all = all && done[b];
      }
      if (all) break;
      tokens = torch::cat({tokens, next.unsqueeze(1)}, 1);
    }
    return out;
  }
  DecoderState::Impl st = impl_->start(enc.impl->x, max_steps);
  std::vector<int> active(static_cast<size_t>(B));
  for (int b = 0; b < B; ++b) active[b] = b;
  Tensor tokens = torch::zeros({B}, torch::kLong);
  for (int s = 0; s < max_steps; ++s) {
    Tensor next = impl_->step(st, tokens).argmax(-1);
    if (prof) prof->steps++;
    auto acc = next.accessor<int64_t, 1>();
    std::vector<int64_t> keep_rows;
    std::vector<int> keep_items;
    for (size_t i = 0; i < active.size(); ++i) {
      const int b = active[i];
      if (done[b]) continue;
      out[b].push_back(int(acc[i]));
      if (prof) prof->tokens++;
      if (acc[i] == opts.eos_id)
        done[b] = 1;
      else {
        keep_rows.push_back(int64_t(i));
        keep_items.push_back(b);
      }
    }
    if (keep_rows.empty() || s + 1 == max_steps) break;
    if (opts.shrink_batch && keep_rows.size() < active.size()) {
      Tensor idx = torch::tensor(keep_rows, torch::kLong);
      impl_->select(st, idx);
      tokens = next.index_select(0, idx);
      active = keep_items;
    } else {
      tokens = next;
    }
  }
  if (prof)
    prof->total_decode_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

std::vector<float> Model::decoder_logits(const EncoderOutput& enc, const std::vector<std::vector<int>>& inputs) const {
  const ModelConfig& c = impl_->cfg;
  check_enc(enc, c);
  if (int(inputs.size()) != enc.batch()) throw InputError("model: decoder_logits: batch size mismatch");
  const size_t L = inputs.empty() ? 0 : inputs[0].size();
  if (L < 1 || int(L) > c.max_positions) throw InputError("model: decoder_logits: bad input length");
  std::vector<int64_t> flat;
  for (const auto& row : inputs) {
    if (row.size() != L) throw InputError("model: decoder_logits: rows differ in length");
    for (int t : row) {
      if (t < 0 || t >= c.vocab_size) throw InputError("model: decoder_logits: token id " + std::to_string(t) + " out of range");
      flat.push_back(t);
    }
  }
  c10::InferenceMode guard;
  Tensor tokens = torch::tensor(flat, torch::kLong).view({int64_t(inputs.size()), int64_t(L)});
  Tensor lg = impl_->decode_full(enc.impl->x, tokens).contiguous();
  return std::vector<float>(lg.data_ptr<float>(), lg.data_ptr<float>() + lg.numel());
}

DecoderState Model::start_decoding(const EncoderOutput& enc, int max_length) const {
  const ModelConfig& c = impl_->cfg;
  check_enc(enc, c);
  if (max_length < 1 || max_length > c.max_positions)
    throw InputError("model: decode: max_length = " + std::to_string(max_length) + " is not within [1, " +
                     std::to_string(c.max_positions) + "]");
  c10::InferenceMode guard;
  DecoderState st;
  st.impl = std::make_unique<DecoderState::Impl>(impl_->start(enc.impl->x, max_length));
  return st;
}

std::vector<float> Model::step(DecoderState& state, const std::vector<int>& tokens) const {
  if (!state.impl) throw InputError("model: step: decoder state not started");
  DecoderState::Impl& st = *state.impl;
  if (int(tokens.size()) != st.batch)
    throw InputError("model: step: got " + std::to_string(tokens.size()) + " tokens for a batch of " +
                     std::to_string(st.batch));
  if (st.pos >= st.max_len) throw InputError("model: step: decoder state is full (" + std::to_string(st.max_len) + " positions)");
  std::vector<int64_t> ids;
  for (int t : tokens) {
    if (t < 0 || t >= impl_->cfg.vocab_size) throw InputError("model: step: token id " + std::to_string(t) + " out of range");
    ids.push_back(t);
  }
  c10::InferenceMode guard;
  Tensor lg = impl_->step(st, torch::tensor(ids, torch::kLong)).contiguous();
  return std::vector<float>(lg.data_ptr<float>(), lg.data_ptr<float>() + lg.numel());
}

void Model::select_items(DecoderState& state, const std::vector<int>& items) const {
  if (!state.impl) throw InputError("model: select_items: decoder state not started");
  std::vector<int64_t> idx;
  for (int i : items) {
    if (i < 0 || i >= state.impl->batch) throw InputError("model: select_items: item " + std::to_string(i) + " out of range");
    idx.push_back(i);
  }
  if (idx.empty()) throw InputError("model: select_items: no items left");
  c10::InferenceMode guard;
  impl_->select(*state.impl, torch::tensor(idx, torch::kLong));
}

// ---------------------------------------------------------------------------
void set_model_threads(int n_threads, bool intra_op) {
  if (n_threads < 1 || n_threads > 1024)
    throw ConfigError("model: threads = " + std::to_string(n_threads) + " is not within [1, 1024]");
  bool first = false;
  std::call_once(g_threads_once, [&] {
    first = true;
    try {
      at::set_num_interop_threads(1);
    } catch (const std::exception&) {
      // inter-op pool already started (another component used torch first): keep it
    }
    const int pool = intra_op ? n_threads : 1;
    torch::set_num_threads(pool);
    // libtorch does not size OpenBLAS's own pthread pool (Debian's libblas.so.3
    // is openblas-pthread): without this it uses every core on its own.
    using SetThreads = void (*)(int);
    if (auto f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(pool);
    g_threads = n_threads;
    g_workers = intra_op ? 1 : n_threads;
  });
  if (!first && n_threads != g_threads.load())
    log_warn("model", "threads already set to " + std::to_string(g_threads.load()) + "; ignoring " +
                          std::to_string(n_threads));
}

int model_threads() { return g_threads.load(); }
int model_workers() { return std::max(1, g_workers.load()); }

void set_attention_kernel(const std::string& name) {
  for (AttnKernel k : {AttnKernel::Auto, AttnKernel::Matmul, AttnKernel::Bmm, AttnKernel::MulSum, AttnKernel::Loop})
    if (name == kernel_name(k)) {
      g_attn_kernel = int(k);
      return;
    }
  throw ConfigError("model: attention kernel '" + name + "' is not one of auto, matmul, bmm, mulsum, loop");
}

std::string attention_kernel() { return kernel_name(AttnKernel(g_attn_kernel.load())); }

std::string model_backend_info() {
  return "libtorch " + std::string(TORCH_VERSION) + ", intra-op threads " + std::to_string(torch::get_num_threads()) +
         ", inter-op threads " + std::to_string(at::get_num_interop_threads()) + "\n" + at::show_config();
}

}  // namespace tunescribe
