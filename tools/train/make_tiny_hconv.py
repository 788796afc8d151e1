"""make_tiny_hconv.py — a tiny random-weights hconv model and its parity fixture for the C++ tests.

    /usr/bin/python3 tools/train/make_tiny_hconv.py [--out tests/data/hconv]

Writes OUT/model/ (config.json + model.safetensors in float32: logfreq front end, harmonic conv
front with 4/8 channels, a 1+1-layer d32 T5) and OUT/parity.safetensors with, computed by the
PyTorch reference (hconv.py + mt3_model.py) from a deterministic test signal (test_audio below):
  audio       [N]                 the signal (float32, 16 kHz; 1.6 segments long)
  features    [S, T, n_bins]      LogFreq of every segment (the last one zero-padded in samples)
  heads       [S, 4+F, T, 88]     sigmoid of onset/frame/offset/velocity, raw family logits
  memory      [S, T, depth]       the T5 encoder's continuous input
  encoded     [S, T, d_model]     T5 encoder output
  logits0     [S, vocab]          first decoder step logits (BOS)
  logfreq_matrix [n_fft/2+1, n_bins]
and OUT/parity.json with the greedy tokens of every segment (32 steps) and the notes of
hconv.decode_frames on `heads` at thresholds 0.5/0.3 (these random weights give few notes; the
decoder itself is tested on crafted posteriors too).
"""
import argparse
import json
import os

import numpy as np
import torch

from tunescribe_train import hconv as H  # noqa: E402
from tunescribe_train import mt3_model as M  # noqa: E402
from tunescribe_train.safetensors_io import write_safetensors  # noqa: E402


def test_audio(n):
    t = np.arange(n, dtype=np.float64) / 16000.0
    x = 0.3 * np.sin(2 * np.pi * 220.0 * t) * (t < 1.2) + 0.2 * np.sin(2 * np.pi * 659.26 * t) * (t > 0.7) \
        + 0.05 * np.sin(2 * np.pi * 3000.0 * t + 0.3) + 0.01 * np.sin(12345.0 * t * t)
    return x.astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data/hconv")
    a = ap.parse_args()
    torch.manual_seed(7)
    hc = dict(H.DEFAULT_HCONV, conv_channels=4, key_channels=8, res_layers=2)
    mcfg = M.ModelConfig(d_model=32, num_heads=2, head_dim=16, mlp_dim=64, num_encoder_layers=1,
                         num_decoder_layers=1, input_depth=1, vocab_size=1664, max_positions=512)
    model = H.HConvModel(mcfg, H.DEFAULT_FRONTEND, hc, with_null_memory=True).eval()
    with torch.no_grad():  # make the heads fire somewhere: bias the onset/frame heads up
        model.front.heads.bias[0] += 4.5
        model.front.heads.bias[1] += 4.5
    codec = dict(M.DEFAULT_CODEC, num_velocity_bins=127)
    H.save_hconv(model, os.path.join(a.out, "model"), "tunescribe-hconv-tiny-random", codec,
                 {"note": "random weights (tools/train/make_tiny_hconv.py), tests only"}, dtype="F32")
    fe = H.DEFAULT_FRONTEND
    seg = fe["segment_frames"] * fe["hop_length"]
    x = test_audio(int(seg * 1.6))
    S = -(-len(x) // seg)
    xp = np.pad(x, (0, S * seg - len(x)))
    lf = H.LogFreq(fe)
    with torch.no_grad():
        feats = torch.stack([lf(torch.from_numpy(xp[s * seg:(s + 1) * seg])[None])[0] for s in range(S)])
        heads, mem = model.front(feats)
        probs = torch.cat([torch.sigmoid(heads[:, :4]), heads[:, 4:]], 1)
        enc = model.t5.encode(mem)
        logits0 = model.t5.decode(enc, torch.zeros(S, 1, dtype=torch.long))[:, 0]
        greedy = model.t5.greedy(enc, 32)
    out = {"audio": x, "features": feats.numpy(), "heads": probs.numpy(), "memory": mem.numpy(),
           "encoded": enc.numpy(), "logits0": logits0.numpy(), "logfreq_matrix": H.logfreq_matrix_np(fe)}
    write_safetensors(os.path.join(a.out, "parity.safetensors"), out, dtype="F32")
    notes = H.decode_frames(probs.numpy(), fe)
    json.dump({"greedy": greedy, "segments": S, "frames_notes": [list(n) for n in notes],
               "thresholds": [0.5, 0.3]}, open(os.path.join(a.out, "parity.json"), "w"))
    print("wrote %s: %d segments, %d frame notes" % (a.out, S, len(notes)))


if __name__ == "__main__":
    main()
