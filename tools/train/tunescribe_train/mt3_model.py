"""mt3_model.py — PyTorch reference of the tunescribe MT3 network (../shared/specs/mt3.md §3).

The same network as src/model/model.cpp: continuous-input projection; fixed sinusoidal
positions [sin | cos] with denominator d/2 - 1; pre-RMSNorm (eps 1e-6, no mean
subtraction); unscaled dot-product attention (heads x head_dim may differ from
d_model); gated tanh-GELU MLP; no biases; untied logits; decoder embedding not
scaled; BOS = 0 at position 0.

Parameters are stored as Flax kernels [in, out] (y = x @ kernel) under the MT3
names of §3.5, so `save_model` / `load_model` read and write our model directory
(config.json + model.safetensors) by renaming only. Optional parameter
`target/decoder/null_memory` [1, d_model]: a learned encoder memory for "no audio".

Training: dropout (rate from the constructor) after the input embeddings, on
attention probabilities, inside the MLP, after every sublayer and after the final
norms (T5/MT3 placement); `loss_fn` = cross-entropy + z_loss * logsumexp^2 on
non-pad targets. RMSNorm and softmax run in float32, so bf16 autocast is safe.
Runs on Debian's torch 1.13 (CPU) and current CUDA PyTorch.
"""
import json
import math
import os
import re
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .safetensors_io import read_safetensors, write_safetensors

MODEL_TYPE = "tunescribe-mt3"
FORMAT_VERSION = 1
PAD_ID, EOS_ID, UNK_ID = 0, 1, 2
NEG_INF = -1e10


@dataclass
class ModelConfig:
    d_model: int = 512
    num_heads: int = 6
    head_dim: int = 64
    mlp_dim: int = 1024
    num_encoder_layers: int = 8
    num_decoder_layers: int = 8
    input_depth: int = 512
    vocab_size: int = 1536
    max_positions: int = 2048

    @staticmethod
    def from_dict(d):
        return ModelConfig(**{k: int(d[k]) for k in ModelConfig.__dataclass_fields__})

    def to_dict(self):
        return asdict(self)


# The MT3 "mt3" (multi-instrument) defaults for the other config.json sections.
DEFAULT_FRONTEND = {
    "sample_rate_hz": 16000, "n_fft": 2048, "hop_length": 128, "n_mels": 512,
    "f_min_hz": 20.0, "f_max_hz": 7600.0, "log_floor": 1e-5, "segment_frames": 256,
}
DEFAULT_CODEC = {
    "steps_per_second": 100, "max_shift_seconds": 10, "num_velocity_bins": 1,
    "use_ties": True, "program_granularity": "full", "num_extra_ids": 100,
}


def sinusoid_table(max_len, d):
    """MT3 FixedEmbed: [all sines | all cosines], inv_i = exp(-i ln(1e4) / (d/2 - 1))."""
    half = d // 2
    pos = np.arange(max_len, dtype=np.float64)[:, None]
    scale = -math.log(10000.0) / (half - 1) if half > 1 else 0.0
    div = np.exp(np.arange(half, dtype=np.float64) * scale)
    pe = np.zeros((max_len, d), dtype=np.float32)
    pe[:, :half] = np.sin(pos * div)
    pe[:, half:] = np.cos(pos * div)
    return torch.from_numpy(pe)


class Dense(nn.Module):
    def __init__(self, d_in, d_out, std=None):
        super().__init__()
        self.kernel = nn.Parameter(torch.randn(d_in, d_out) * (std if std is not None else d_in ** -0.5))

    def forward(self, x):
        return x @ self.kernel.to(x.dtype)


class RMSNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(d))

    def forward(self, x):
        x32 = x.float()
        return x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + 1e-6) * self.scale.float()


class Attention(nn.Module):
    def __init__(self, cfg, dropout):
        super().__init__()
        hd = cfg.num_heads * cfg.head_dim
        self.h, self.dh = cfg.num_heads, cfg.head_dim
        self.query = Dense(cfg.d_model, hd, std=(cfg.d_model * cfg.head_dim) ** -0.5)
        self.key = Dense(cfg.d_model, hd)
        self.value = Dense(cfg.d_model, hd)
        self.out = Dense(hd, cfg.d_model)
        self.dropout = nn.Dropout(dropout)

    def split(self, x):  # [B, L, H*Dh] -> [B, H, L, Dh]; feature = head * Dh + d
        b, l, _ = x.shape
        return x.view(b, l, self.h, self.dh).transpose(1, 2)

    def forward(self, xq, xkv, bias=None, kv=None):
        """bias: additive, broadcastable to [B, H, Lq, Lk]; kv: precomputed (k, v)."""
        q = self.split(self.query(xq))
        if kv is None:
            k, v = self.split(self.key(xkv)), self.split(self.value(xkv))
        else:
            k, v = kv
        s = torch.matmul(q, k.transpose(-1, -2)).float()  # scale 1.0 (folded into the query init)
        if bias is not None:
            s = s + bias
        p = self.dropout(torch.softmax(s, dim=-1)).to(v.dtype)
        o = torch.matmul(p, v)
        b, _, lq, _ = o.shape
        return self.out(o.transpose(1, 2).reshape(b, lq, self.h * self.dh))


class Mlp(nn.Module):
    def __init__(self, cfg, dropout):
        super().__init__()
        self.wi_0 = Dense(cfg.d_model, cfg.mlp_dim)
        self.wi_1 = Dense(cfg.d_model, cfg.mlp_dim)
        self.wo = Dense(cfg.mlp_dim, cfg.d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        h = F.gelu(self.wi_0(x), approximate="tanh") * self.wi_1(x)
        return self.wo(self.dropout(h))


class EncoderLayer(nn.Module):
    def __init__(self, cfg, dropout):
        super().__init__()
        self.pre_attention_layer_norm = RMSNorm(cfg.d_model)
        self.attention = Attention(cfg, dropout)
        self.pre_mlp_layer_norm = RMSNorm(cfg.d_model)
        self.mlp = Mlp(cfg, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        h = self.pre_attention_layer_norm(x)
        x = x + self.dropout(self.attention(h, h))
        return x + self.dropout(self.mlp(self.pre_mlp_layer_norm(x)))


class DecoderLayer(nn.Module):
    def __init__(self, cfg, dropout):
        super().__init__()
        self.pre_self_attention_layer_norm = RMSNorm(cfg.d_model)
        self.self_attention = Attention(cfg, dropout)
        self.pre_cross_attention_layer_norm = RMSNorm(cfg.d_model)
        self.encoder_decoder_attention = Attention(cfg, dropout)
        self.pre_mlp_layer_norm = RMSNorm(cfg.d_model)
        self.mlp = Mlp(cfg, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, mem, self_bias=None, cross_bias=None):
        h = self.pre_self_attention_layer_norm(x)
        x = x + self.dropout(self.self_attention(h, h, self_bias))
        h = self.pre_cross_attention_layer_norm(x)
        x = x + self.dropout(self.encoder_decoder_attention(h, mem, cross_bias))
        return x + self.dropout(self.mlp(self.pre_mlp_layer_norm(x)))


class Embed(nn.Module):
    def __init__(self, v, d):
        super().__init__()
        self.embedding = nn.Parameter(torch.randn(v, d))

    def forward(self, ids):
        return F.embedding(ids, self.embedding)


class Encoder(nn.Module):
    def __init__(self, cfg, dropout):
        super().__init__()
        self.continuous_inputs_projection = Dense(cfg.input_depth, cfg.d_model)
        self.layers = nn.ModuleList([EncoderLayer(cfg, dropout) for _ in range(cfg.num_encoder_layers)])
        self.encoder_norm = RMSNorm(cfg.d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, mel, pe):
        x = self.continuous_inputs_projection(mel) + pe[: mel.shape[1]].to(mel.device)
        x = self.dropout(x)
        for layer in self.layers:
            x = layer(x)
        return self.dropout(self.encoder_norm(x))


class Decoder(nn.Module):
    def __init__(self, cfg, dropout, with_null_memory=True):
        super().__init__()
        self.token_embedder = Embed(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList([DecoderLayer(cfg, dropout) for _ in range(cfg.num_decoder_layers)])
        self.decoder_norm = RMSNorm(cfg.d_model)
        self.logits_dense = Dense(cfg.d_model, cfg.vocab_size)
        self.dropout = nn.Dropout(dropout)
        self.null_memory = nn.Parameter(torch.randn(1, cfg.d_model)) if with_null_memory else None

    def forward(self, mem, tokens, pe, self_bias, cross_bias=None):
        x = self.token_embedder(tokens) + pe[: tokens.shape[1]].to(mem.device)
        x = self.dropout(x)
        for layer in self.layers:
            x = layer(x, mem, self_bias, cross_bias)
        x = self.dropout(self.decoder_norm(x))
        return self.logits_dense(x).float()


class MT3Model(nn.Module):
    def __init__(self, cfg: ModelConfig, dropout=0.0, with_null_memory=True):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg, dropout)
        self.decoder = Decoder(cfg, dropout, with_null_memory)
        self.register_buffer("pe", sinusoid_table(cfg.max_positions, cfg.d_model), persistent=False)

    # -- forward passes ------------------------------------------------------------------------
    def encode(self, mel):
        """mel [B, T, input_depth] -> memory [B, T, d_model]."""
        return self.encoder(mel, self.pe)

    def null_memory_batch(self, batch):
        if self.decoder.null_memory is None:
            raise ValueError("this model has no null_memory")
        return self.decoder.null_memory.unsqueeze(0).expand(batch, 1, -1)

    def decode(self, mem, decoder_input, decoder_target=None):
        """Teacher-forced logits [B, L, V] (float32). decoder_input starts with BOS = 0.
        decoder_target (optional, [B, L]): positions where it is PAD are masked (training)."""
        L = decoder_input.shape[1]
        dev = decoder_input.device
        causal = torch.ones(L, L, dtype=torch.bool, device=dev).tril()
        if decoder_target is None:
            self_bias = torch.zeros(L, L, device=dev).masked_fill(~causal, NEG_INF)
            cross_bias = None
        else:
            valid = decoder_target > 0  # [B, L]
            m = causal[None] & valid[:, :, None] & valid[:, None, :]
            self_bias = torch.zeros(m.shape, device=dev).masked_fill(~m, NEG_INF)[:, None]
            cross_bias = torch.zeros(valid.shape, device=dev).masked_fill(~valid, NEG_INF)[:, None, :, None]
        return self.decoder(mem, decoder_input, self.pe, self_bias, cross_bias)

    def forward(self, mel, decoder_input, decoder_target=None, null_audio=None):
        """null_audio: optional bool [B]; True items use the learned null memory instead of the encoder."""
        mem = self.encode(mel) if mel is not None else None
        if null_audio is not None:
            nm = self.null_memory_batch(decoder_input.shape[0])
            if mem is None:
                mem = nm
            else:  # the null memory is one frame; pad it to T frames that repeat it
                nm = nm.expand(-1, mem.shape[1], -1)
                mem = torch.where(null_audio[:, None, None], nm.to(mem.dtype), mem)
        return self.decode(mem, decoder_input, decoder_target)

    # -- decoding (reference) ------------------------------------------------------------------
    @torch.no_grad()
    def greedy(self, mem, max_steps, eos_id=EOS_ID, use_cache=True):
        """Greedy argmax decoding; returns per item the ids after BOS, ending with EOS if produced."""
        B = mem.shape[0]
        dev = mem.device
        out = [[] for _ in range(B)]
        done = [False] * B
        tokens = torch.zeros(B, 1, dtype=torch.long, device=dev)
        cache = self._start_cache(mem, max_steps) if use_cache else None
        for s in range(max_steps):
            if use_cache:
                logits = self._step(cache, tokens[:, -1], s)
            else:
                logits = self.decode(mem, tokens)[:, -1]
            nxt = logits.argmax(-1)
            for b in range(B):
                if not done[b]:
                    out[b].append(int(nxt[b]))
                    done[b] = int(nxt[b]) == eos_id
            if all(done):
                break
            tokens = torch.cat([tokens, nxt[:, None]], 1)
        return out

    def _start_cache(self, mem, max_len):
        cache = []
        for layer in self.decoder.layers:
            a = layer.encoder_decoder_attention
            cache.append({"k": [], "v": [], "cross": (a.split(a.key(mem)), a.split(a.value(mem)))})
        return cache

    def _step(self, cache, token, pos):
        """One cached decoder step at position `pos`: token [B] -> logits [B, V]."""
        x = (self.decoder.token_embedder(token) + self.pe[pos].to(token.device))[:, None]
        for layer, c in zip(self.decoder.layers, cache):
            h = layer.pre_self_attention_layer_norm(x)
            a = layer.self_attention
            c["k"].append(a.split(a.key(h)))
            c["v"].append(a.split(a.value(h)))
            kv = (torch.cat(c["k"], 2), torch.cat(c["v"], 2))
            x = x + a(h, None, None, kv)
            h = layer.pre_cross_attention_layer_norm(x)
            x = x + layer.encoder_decoder_attention(h, None, None, c["cross"])
            x = x + layer.mlp(layer.pre_mlp_layer_norm(x))
        return self.decoder.logits_dense(self.decoder.decoder_norm(x))[:, 0].float()

    # -- parameters ----------------------------------------------------------------------------
    def flax_state(self):
        """dict MT3 name -> parameter (e.g. target/encoder/layers_0/attention/query/kernel)."""
        out = {}
        for name, p in self.named_parameters():
            out[to_flax_name(name)] = p
        return out


def to_flax_name(torch_name):
    n = re.sub(r"layers\.(\d+)", r"layers_\1", torch_name)
    return "target/" + n.replace(".", "/")


def loss_fn(logits, targets, z_loss=1e-4, label_smoothing=0.0):
    """T5X cross-entropy with z_loss on non-pad targets (PAD = 0).
    Returns (loss averaged over target tokens, dict of parts)."""
    logits = logits.float()
    V = logits.shape[-1]
    lse = torch.logsumexp(logits, dim=-1)
    logp = logits - lse[..., None]
    if label_smoothing > 0:
        conf = 1.0 - label_smoothing
        low = label_smoothing / (V - 1)
        soft = torch.full_like(logp, low).scatter_(-1, targets[..., None], conf)
        ce = -(soft * logp).sum(-1)
    else:
        ce = -logp.gather(-1, targets[..., None])[..., 0]
    weights = (targets > 0).float()
    n = weights.sum().clamp(min=1.0)
    ce_sum = (ce * weights).sum()
    z_sum = (z_loss * lse.pow(2) * weights).sum()
    return (ce_sum + z_sum) / n, {"ce": float(ce_sum / n), "z_loss": float(z_sum / n), "tokens": float(n)}


# -- model directory --------------------------------------------------------------------------
def save_model(model, out_dir, name="model", frontend=None, codec=None, training=None, dtype="F32"):
    """Writes out_dir/config.json and out_dir/model.safetensors (dtype F32, F16 or BF16)."""
    os.makedirs(out_dir, exist_ok=True)
    cfg = {
        "model_type": MODEL_TYPE,
        "format_version": FORMAT_VERSION,
        "name": name,
        "frontend": dict(frontend or DEFAULT_FRONTEND),
        "codec": dict(codec or DEFAULT_CODEC),
        "model": model.cfg.to_dict(),
        "training": dict(training or {}),
    }
    write_model_dir(out_dir, cfg, model.flax_state(), dtype)
    return cfg


def write_model_dir(out_dir, cfg, params, dtype):
    """config.json + model.safetensors (params: name -> tensor), each written atomically."""
    os.makedirs(out_dir, exist_ok=True)
    tensors = {k: v.detach().float().cpu().numpy() for k, v in params.items()}
    tmp = os.path.join(out_dir, "model.safetensors.tmp")
    write_safetensors(tmp, tensors, dtype=dtype, metadata={"format": "tunescribe-mt3"})
    os.replace(tmp, os.path.join(out_dir, "model.safetensors"))
    tmp = os.path.join(out_dir, "config.json.tmp")
    with open(tmp, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    os.replace(tmp, os.path.join(out_dir, "config.json"))


def load_model(model_dir, dropout=0.0, device="cpu"):
    """Returns (model, config dict). Checks model_type, format_version, every name and shape."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    if cfg.get("model_type") != MODEL_TYPE or cfg.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{model_dir}: not a {MODEL_TYPE} v{FORMAT_VERSION} model directory")
    mcfg = ModelConfig.from_dict(cfg["model"])
    tensors = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    has_null = "target/decoder/null_memory" in tensors
    model = MT3Model(mcfg, dropout=dropout, with_null_memory=has_null)
    with torch.no_grad():
        for name, p in model.flax_state().items():
            if name not in tensors:
                raise ValueError(f"{model_dir}: missing tensor {name}")
            t = tensors[name]
            if tuple(t.shape) != tuple(p.shape):
                raise ValueError(f"{model_dir}: tensor {name} has shape {t.shape}, expected {tuple(p.shape)}")
            p.copy_(torch.from_numpy(np.ascontiguousarray(t)))
    return model.to(device), cfg
