#!/usr/bin/python3
"""Training-throughput benchmark (not a test): examples/s of one optimizer step (log-mel + forward +
backward + AdamW) for a model size, on synthetic segments (random audio, random targets of a given
length), and of the data pipeline (shard decode + augmentation) if --data is given.

  bench_train.py --size tiny --batch-size 8 --target-len 200 --steps 3 [--threads 2] [--data data/shards]
Prints one JSON line.
"""
import argparse
import json
import os
import time

import numpy as np
import torch

from tunescribe_train import dataset as D  # noqa: E402
from tunescribe_train import features  # noqa: E402
from tunescribe_train import mt3_model as M  # noqa: E402
from tunescribe_train import trainer as T  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="tiny", choices=sorted(T.SIZES))
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--target-len", type=int, default=200)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data", help="shard root: also time the data pipeline")
    ap.add_argument("--model-json", help="JSON with ModelConfig fields overriding --size")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                       ("cpu" if args.device == "auto" else args.device))
    bf16 = dev.type == "cuda" and torch.cuda.is_bf16_supported()
    fields = dict(T.SIZES[args.size])
    if args.model_json:
        fields.update(json.loads(args.model_json))
    cfg = M.ModelConfig.from_dict(dict(M.ModelConfig().to_dict(), **fields))
    model = M.MT3Model(cfg, dropout=0.1).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    lm = features.LogMel().to(dev)
    B, L = args.batch_size, args.target_len
    audio = torch.randn(B, 32768, device=dev) * 0.1
    tgt = torch.randint(3, 1300, (B, L), device=dev)
    inp = torch.zeros_like(tgt)
    inp[:, 1:] = tgt[:, :-1]
    w = torch.ones(B, L, device=dev)
    times, cpu = [], []
    for s in range(args.steps + 1):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t = time.time()
        c = time.process_time()
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(lm(audio), inp, tgt)
        loss, _ = T.weighted_loss(logits, tgt, w, 1e-4)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if s > 0:  # first step is warm-up
            times.append(time.time() - t)
            cpu.append(time.process_time() - c)
    res = {"size": args.size, "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
           "device": str(dev), "bf16": bf16, "threads": torch.get_num_threads(), "batch_size": B,
           "target_len": L, "step_s": round(float(np.median(times)), 3),
           "examples_per_s": round(B / float(np.median(times)), 2),
           "cpu_s_per_example": round(float(np.median(cpu)) / B, 3)}
    if args.data:
        stream = D.ShardStream(args.data, "train", seed=0, augment=D.Augment())
        it = iter(stream)
        next(it)
        t = time.time()
        c = time.process_time()
        n = 0
        while time.time() - t < 10 and n < 200:
            next(it)
            n += 1
        res["data_examples_per_s"] = round(n / (time.time() - t), 1)
        res["data_cpu_s_per_example"] = round((time.process_time() - c) / n, 4)
    try:
        res["loadavg"] = os.getloadavg()[0]
    except OSError:
        pass
    print(json.dumps(res))


if __name__ == "__main__":
    main()
