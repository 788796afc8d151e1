"""make_tiny_model.py — the tiny random-weights model (models/tiny) and the parity fixtures.

    /usr/bin/python3 tools/train/make_tiny_model.py [--out models/tiny] [--fixtures tests/data/model]

Writes a model directory (config.json + model.safetensors, float32, < 2 MB) with
d_model 64, 2 heads x 24 (48 != d_model on purpose), 2+2 layers, mlp 128, 1536
vocabulary rows (the mt3 codec with one velocity bin), 512 mel bins, 256-frame
segments, plus tests/data/model/parity.{safetensors,json}: encoder outputs,
first-step logits, teacher-forced logits and greedy tokens computed by the
PyTorch reference (mt3_model.py) from a deterministic input mel (test_mel below;
tests/model_test.cpp computes the same formula).
"""
import argparse
import json
import os

import numpy as np
import torch

from tunescribe_train import mt3_model as M  # noqa: E402
from tunescribe_train.safetensors_io import write_safetensors  # noqa: E402

TINY = M.ModelConfig(d_model=64, num_heads=2, head_dim=24, mlp_dim=128, num_encoder_layers=2,
                     num_decoder_layers=2, input_depth=512, vocab_size=1536, max_positions=2048)
GREEDY_STEPS = 32
NULL_STEPS = 16
FORCED = [0, 1004, 1133, 1135, 50, 1010, 1132, 1]


def test_mel(batch, frames, depth):
    """Deterministic log-mel-like input, computed in float64 then rounded to float32."""
    b = np.arange(batch, dtype=np.float64)[:, None, None]
    t = np.arange(frames, dtype=np.float64)[None, :, None]
    f = np.arange(depth, dtype=np.float64)[None, None, :]
    v = -4.0 + 3.0 * np.sin(0.071 * (t + 1.0) + 0.013 * (f + 1.0) * (b + 1.0)) \
        + 1.5 * np.cos(0.29 * f - 0.037 * t + 0.5 * b)
    return v.astype(np.float32)


def top2_gap(logits):
    s = torch.sort(logits, dim=-1, descending=True).values
    return float((s[..., 0] - s[..., 1]).min())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="models/tiny")
    ap.add_argument("--fixtures", default="tests/data/model")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    model = M.MT3Model(TINY, dropout=0.0, with_null_memory=True)
    with torch.no_grad():  # norm scales around 1 so that a wrong scale use shows up in parity
        for name, p in model.named_parameters():
            if name.endswith(".scale"):
                p.add_(0.1 * torch.randn_like(p))
    frontend = dict(M.DEFAULT_FRONTEND, segment_frames=256, n_mels=512)
    M.save_model(model, args.out, name="tiny-random", frontend=frontend, codec=M.DEFAULT_CODEC,
                 training={"note": "random weights for tests; not trained",
                           "generator": "tools/train/make_tiny_model.py", "seed": args.seed})
    model, _ = M.load_model(args.out)  # round trip through our own files
    model.eval()

    with torch.no_grad():
        mel = torch.from_numpy(test_mel(2, 256, TINY.input_depth))
        enc = model.encode(mel)
        logits0 = model.decode(enc, torch.zeros(2, 1, dtype=torch.long))[:, 0]
        greedy = model.greedy(enc, GREEDY_STEPS, use_cache=True)
        greedy_full = model.greedy(enc, GREEDY_STEPS, use_cache=False)
        assert greedy == greedy_full, "cached and uncached reference decoding differ"
        # the smallest top-1/top-2 margin along the greedy path (ties would make parity flaky)
        gaps = []
        for b in range(2):
            inp = torch.tensor([[0] + greedy[b][:-1]])
            gaps.append(top2_gap(model.decode(enc[b:b + 1], inp)[0]))
        forced = torch.tensor([FORCED, FORCED[::-1][:1] + FORCED[1:]])
        forced_logits = model.decode(enc, forced)
        nm = model.null_memory_batch(1)
        null_logits0 = model.decode(nm, torch.zeros(1, 1, dtype=torch.long))[:, 0]
        null_greedy = model.greedy(nm, NULL_STEPS)

    os.makedirs(args.fixtures, exist_ok=True)
    write_safetensors(os.path.join(args.fixtures, "parity.safetensors"), {
        "encoder_out": enc.numpy(),
        "logits0": logits0.numpy(),
        "forced_logits_last": forced_logits[:, -1].numpy(),
        "forced_logits_first": forced_logits[:, 0].numpy(),
        "null_logits0": null_logits0.numpy(),
    })
    info = {
        "generator": "tools/train/make_tiny_model.py",
        "mel": "test_mel(2, 256, 512): -4 + 3 sin(0.071 (t+1) + 0.013 (f+1)(b+1)) + 1.5 cos(0.29 f - 0.037 t + 0.5 b)",
        "greedy_steps": GREEDY_STEPS,
        "greedy": greedy,
        "greedy_min_top2_gap": min(gaps),
        "forced_inputs": forced.tolist(),
        "null_steps": NULL_STEPS,
        "null_greedy": null_greedy,
    }
    with open(os.path.join(args.fixtures, "parity.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    n = sum(p.numel() for p in model.parameters())
    print(f"tiny model: {n} parameters; greedy lengths {[len(g) for g in greedy]}; "
          f"min top-2 gap {min(gaps):.4f}; files in {args.out} and {args.fixtures}")


if __name__ == "__main__":
    main()
