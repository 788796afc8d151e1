"""Streaming training examples from rendered shards (tools/train/render.py), with label-preserving
audio augmentations.

An example is ONE model segment (256 frames = 32768 samples = 2.048 s) cut on the codec's segment
grid of its excerpt (crops are random over segments, and the phase of the music against the grid
was randomised at render time), with
  audio   float32 [32768] (augmented),
  targets int64 [L]  the codec's tokens for the segment, ending in EOS (from `tunescribe tokens`),
  prev    int64 [P]  the previous segment's tokens of the same excerpt without its EOS (empty for
                     the excerpt's first segment) -- used by the "continue without audio" recipe.

Mixing of independent examples (MT3 style) is done at the NOTE level at render time (render.py,
--mix-prob), so the targets of a mixture come from the C++ codec on the merged MIDI; this module
does not sum audio of different examples (its targets could not be merged without the codec).

Audio augmentations (numpy, on the data-loader workers; each with its own probability), chosen for
real acoustic recordings: random gain (-24..+3 dB from the rendered 0.9 peak; clipped to [-1, 1]
like a real ADC), EQ (1-3 random RBJ biquads: low/high shelf, peaking, +-10 dB, and sometimes a
low-pass, applied as a magnitude response), synthetic room reverb (exponentially decaying
noise impulse response, RT60 0.15-1.6 s, pre-delay, wet 10-60 %, convolved with 1.5 s of the
excerpt before the segment so tails enter realistically), additive noise (white / pink / brown,
SNR 10-45 dB) and a hum component. Labels stay true: none of these moves, adds or removes notes.
"""
import json
import math
import os
from typing import Dict, List

import numpy as np
import torch

from . import audio_codec

SEGMENT_SAMPLES = 32768
SAMPLE_RATE = 16000
EOS = 1
PAD = 0


def list_shards(root: str, split: str) -> List[str]:
    """Shards of `split` under `root`; several roots may be joined with os.pathsep (':')."""
    out = []
    for r in root.split(os.pathsep):
        d = os.path.join(r, split)
        if os.path.isdir(d):
            out += sorted(os.path.join(d, n) for n in os.listdir(d) if n.endswith(".npz") and not n.startswith("."))
    return out


class Shard:
    """Decoded job shard: audio of every excerpt and the per-segment targets (and, with
    `frontend` given, dense frame labels of the hconv heads from the job's MIDI)."""

    def __init__(self, path: str, frontend: dict = None):
        z = np.load(path)
        self.meta = json.loads(bytes(z["meta"]).decode())
        if not self.meta.get("tokens"):
            raise ValueError("dataset: %s: shard has no targets (run render.py --retokenize)" % path)
        if "audio_pcm16" in z.files:
            audio, sr = z["audio_pcm16"].astype(np.float32) / 32767.0, SAMPLE_RATE
        elif "audio" in z.files:
            audio, sr = audio_codec.decode(z["audio"].tobytes())
        else:
            raise ValueError("dataset: %s: shard has no audio (render.py --synthesize)" % path)
        assert sr == SAMPLE_RATE
        self.audio = audio
        self.tokens = z["tokens"]
        self.offsets = z["token_offsets"]
        self.excerpt_segments = self.meta["excerpt_segments"]
        self.n_segments = len(self.offsets) - 1
        # segments whose targets the codec had to truncate (> max tokens) are never used
        trunc = z["truncated"] if "truncated" in z.files else np.zeros(self.n_segments, np.uint8)
        self.usable = [s for s in range(self.n_segments) if not trunc[s]]
        self.path = path
        self.frontend = frontend
        self.notes = None
        if frontend is not None:
            from . import hconv
            self.notes = np.array(hconv.job_notes(z["midi"]), dtype=np.float64).reshape(-1, 5)

    def segment_start_s(self, s: int) -> float:
        """Time of stored segment s in the job MIDI (gap segments are not stored)."""
        ex_idx, k = divmod(s, self.excerpt_segments)
        gap = self.meta.get("gap_segments", 1)
        return (ex_idx * (self.excerpt_segments + gap) + k) * SEGMENT_SAMPLES / SAMPLE_RATE

    def segment_labels(self, s: int) -> Dict:
        from . import hconv
        t0 = self.segment_start_s(s)
        seg_len = SEGMENT_SAMPLES / SAMPLE_RATE
        n = self.notes
        sel = n[(n[:, 1] > t0) & (n[:, 0] < t0 + seg_len)]
        return hconv.frame_labels([(a, b, int(p), int(v), int(g)) for a, b, p, v, g in sel], t0, self.frontend)

    def segment_tokens(self, s: int) -> np.ndarray:
        return self.tokens[self.offsets[s]:self.offsets[s + 1]]

    def example(self, s: int, rng: np.random.Generator, augment: "Augment" = None, context_s: float = 1.5):
        ex_idx, k = divmod(s, self.excerpt_segments)
        ex_start = ex_idx * self.excerpt_segments * SEGMENT_SAMPLES
        s0 = s * SEGMENT_SAMPLES
        ctx = min(int(context_s * SAMPLE_RATE), s0 - ex_start)
        x = self.audio[s0 - ctx:s0 + SEGMENT_SAMPLES]
        if augment is not None:
            x = augment(x, rng)
        x = x[ctx:]
        targets = self.segment_tokens(s)
        prev = self.segment_tokens(s - 1) if k > 0 else np.zeros(0, dtype=targets.dtype)
        if len(prev) and prev[-1] == EOS:
            prev = prev[:-1]
        ex = {"audio": np.ascontiguousarray(x, dtype=np.float32), "targets": targets.astype(np.int64),
              "prev": prev.astype(np.int64), "shard": os.path.basename(self.path), "segment": s}
        if self.notes is not None:
            ex["labels"] = self.segment_labels(s)
        return ex


# ---------------------------------------------------------------------------------------------
# augmentations

def _biquad_mag(kind, f0, gain_db, q, freqs):
    """|H| of an RBJ-cookbook biquad at the given frequencies (Hz)."""
    a_ = 10 ** (gain_db / 40.0)
    w0 = 2 * math.pi * f0 / SAMPLE_RATE
    alpha = math.sin(w0) / (2 * q)
    cw = math.cos(w0)
    if kind == "peak":
        b = [1 + alpha * a_, -2 * cw, 1 - alpha * a_]
        a = [1 + alpha / a_, -2 * cw, 1 - alpha / a_]
    elif kind == "lowshelf":
        sq = 2 * math.sqrt(a_) * alpha
        b = [a_ * ((a_ + 1) - (a_ - 1) * cw + sq), 2 * a_ * ((a_ - 1) - (a_ + 1) * cw), a_ * ((a_ + 1) - (a_ - 1) * cw - sq)]
        a = [(a_ + 1) + (a_ - 1) * cw + sq, -2 * ((a_ - 1) + (a_ + 1) * cw), (a_ + 1) + (a_ - 1) * cw - sq]
    elif kind == "highshelf":
        sq = 2 * math.sqrt(a_) * alpha
        b = [a_ * ((a_ + 1) + (a_ - 1) * cw + sq), -2 * a_ * ((a_ - 1) + (a_ + 1) * cw), a_ * ((a_ + 1) + (a_ - 1) * cw - sq)]
        a = [(a_ + 1) - (a_ - 1) * cw + sq, 2 * ((a_ - 1) - (a_ + 1) * cw), (a_ + 1) - (a_ - 1) * cw - sq]
    else:  # lowpass
        b = [(1 - cw) / 2, 1 - cw, (1 - cw) / 2]
        a = [1 + alpha, -2 * cw, 1 - alpha]
    z = np.exp(-1j * 2 * np.pi * freqs / SAMPLE_RATE)
    h = (b[0] + b[1] * z + b[2] * z * z) / (a[0] + a[1] * z + a[2] * z * z)
    return np.abs(h)


def _colored_noise(n, color, rng):
    white = rng.standard_normal(n)
    if color == "white":
        return white
    spec = np.fft.rfft(white)
    f = np.maximum(np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE), 20.0)
    spec = spec / (np.sqrt(f) if color == "pink" else f)
    y = np.fft.irfft(spec, n)
    return y / (np.std(y) + 1e-12)


class Augment:
    def __init__(self, p_gain=1.0, p_eq=0.5, p_reverb=0.35, p_noise=0.4, p_hum=0.05, strength=1.0):
        self.p = dict(gain=p_gain, eq=p_eq, reverb=p_reverb, noise=p_noise, hum=p_hum)
        self.strength = strength

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = x.astype(np.float64)
        n = len(x)
        if rng.random() < self.p["eq"]:
            nfft = 1 << int(math.ceil(math.log2(n + 1)))
            freqs = np.fft.rfftfreq(nfft, 1.0 / SAMPLE_RATE)
            mag = np.ones_like(freqs)
            for _ in range(rng.integers(1, 4)):
                kind = rng.choice(["peak", "peak", "lowshelf", "highshelf"])
                f0 = float(np.exp(rng.uniform(np.log(60), np.log(6000))))
                mag *= _biquad_mag(kind, f0, rng.uniform(-10, 10) * self.strength, rng.uniform(0.4, 2.0), freqs)
            if rng.random() < 0.2:
                mag *= _biquad_mag("lowpass", float(rng.uniform(3000, 7500)), 0.0, 0.707, freqs)
            x = np.fft.irfft(np.fft.rfft(x, nfft) * mag, nfft)[:n]
        if rng.random() < self.p["reverb"]:
            rt60 = rng.uniform(0.15, 1.6)
            length = int(min(1.5, rt60) * SAMPLE_RATE)
            t = np.arange(length) / SAMPLE_RATE
            ir = rng.standard_normal(length) * np.exp(-6.9078 * t / rt60)
            if rng.random() < 0.5:  # darker tail: high frequencies decay faster
                ir = np.convolve(ir, np.ones(4) / 4, mode="same")
            pre = int(rng.uniform(0.0, 0.03) * SAMPLE_RATE)
            ir = np.concatenate([np.zeros(pre), ir])
            ir /= np.sqrt(np.sum(ir ** 2)) + 1e-12
            nfft = 1 << int(math.ceil(math.log2(n + len(ir))))
            wet = np.fft.irfft(np.fft.rfft(x, nfft) * np.fft.rfft(ir, nfft), nfft)[:n]
            mix = rng.uniform(0.1, 0.6)
            dry_rms = np.sqrt(np.mean(x ** 2)) + 1e-12
            wet *= dry_rms / (np.sqrt(np.mean(wet ** 2)) + 1e-12)
            x = (1 - mix) * x + mix * wet
        if rng.random() < self.p["gain"]:
            peak = np.max(np.abs(x)) + 1e-12
            x = x * (0.9 / peak) * 10 ** (rng.uniform(-24, 3) / 20)
        rms = np.sqrt(np.mean(x ** 2)) + 1e-9
        if rng.random() < self.p["noise"]:
            snr_db = rng.uniform(10, 45) / max(self.strength, 1e-3) if self.strength < 1 else rng.uniform(10, 45)
            color = rng.choice(["white", "pink", "brown"])
            x = x + _colored_noise(n, color, rng) * rms * 10 ** (-snr_db / 20)
        if rng.random() < self.p["hum"]:
            f = rng.choice([50.0, 60.0])
            t = np.arange(n) / SAMPLE_RATE
            hum = sum(np.sin(2 * np.pi * f * h * t + rng.uniform(0, 6.3)) / h for h in (1, 2, 3))
            x = x + hum * rms * 10 ** (-rng.uniform(25, 45) / 20)
        return np.clip(x, -1.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# streaming

class ShardStream(torch.utils.data.IterableDataset):
    """Endless (or one-pass) stream of examples from shards, shuffled with a buffer of
    `shards_in_memory` shards. Shards are split across DataLoader workers; every worker
    has its own deterministic RNG derived from (seed, epoch, worker id)."""

    def __init__(self, root: str, split: str = "train", seed: int = 0, augment: Augment = None,
                 shards_in_memory: int = 4, endless: bool = True, max_target_len: int = 1024,
                 shard_paths: List[str] = None, frontend: dict = None):
        super().__init__()
        self.frontend = frontend
        self.paths = shard_paths if shard_paths is not None else list_shards(root, split)
        if not self.paths:
            raise FileNotFoundError("dataset: no shards under %s/%s" % (root, split))
        self.seed = seed
        self.augment = augment
        self.shards_in_memory = shards_in_memory
        self.endless = endless
        self.max_target_len = max_target_len
        self.epoch = 0

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        epoch = 0
        while True:
            rng = np.random.default_rng([self.seed, epoch, wid])
            order = [self.paths[i] for i in rng.permutation(len(self.paths))]
            mine = order[wid::nw] or order[:1]
            for g in range(0, len(mine), self.shards_in_memory):
                shards = [Shard(p, self.frontend) for p in mine[g:g + self.shards_in_memory]]
                items = [(si, s) for si, sh in enumerate(shards) for s in sh.usable]
                for j in rng.permutation(len(items)):
                    si, s = items[j]
                    ex = shards[si].example(s, rng, self.augment)
                    if len(ex["targets"]) > self.max_target_len:
                        continue
                    yield ex
            epoch += 1
            if not self.endless:
                return


def collate(examples: List[Dict]) -> Dict:
    """Batch: audio [B, 32768]; targets [B, L] padded with PAD (0); prev as a list."""
    audio = torch.from_numpy(np.stack([e["audio"] for e in examples]))
    L = max(len(e["targets"]) for e in examples)
    targets = torch.zeros(len(examples), L, dtype=torch.long)
    for i, e in enumerate(examples):
        targets[i, :len(e["targets"])] = torch.from_numpy(e["targets"])
    out = {"audio": audio, "targets": targets, "prev": [torch.from_numpy(e["prev"]) for e in examples],
           "ids": ["%s:%d" % (e["shard"], e["segment"]) for e in examples]}
    if "labels" in examples[0]:
        out["labels"] = {k: torch.from_numpy(np.stack([e["labels"][k] for e in examples]))
                         for k in examples[0]["labels"]}
    return out


def fixed_examples(root: str, split: str, max_examples: int, seed: int = 0, frontend: dict = None) -> List[Dict]:
    """Deterministic, un-augmented list of examples (validation loss)."""
    paths = list_shards(root, split)
    if not paths:
        return []
    rng = np.random.default_rng(seed)
    per_shard = -(-max_examples // len(paths))   # spread over every shard, decode each once
    out = []
    for p in paths:
        sh = Shard(p, frontend)
        pick = sorted(rng.permutation(len(sh.usable))[:per_shard])
        out += [sh.example(sh.usable[i], rng, None) for i in pick]
    idx = rng.permutation(len(out))[:max_examples]
    return [out[i] for i in sorted(idx)]
