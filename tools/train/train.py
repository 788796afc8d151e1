#!/usr/bin/python3
"""Train the tunescribe model from rendered shards; export the model directory.

  train.py --data data/shards --run runs/tiny --size tiny --steps 50 --batch-size 4
  train.py --data data/shards --run runs/base --size base --steps 200000 --batch-size 64  # GPU
  train.py --run runs/base --export models/default            # export the latest checkpoint only
  train.py --run runs/base --plot docs/learning-curve.png     # plot the learning curve only
  train.py --arch hconv --init-from models/default --hconv-json grow.json ...  # grow and continue

The loop, objective and checkpoint format: tunescribe_train/trainer.py; the recipe: docs/training.md.
"""
import argparse
import os

from tunescribe_train import REPO
from tunescribe_train.trainer import SIZES, run


def build_parser():
    ap = argparse.ArgumentParser(description="train the tunescribe model (see docs/training.md)")
    ap.add_argument("--data", default=os.path.join(REPO, "data", "shards"),
                    help="shard root(s) with train/ and validation/; join several with '%s'" % os.pathsep)
    ap.add_argument("--run", required=True, help="run directory (checkpoint, log, plot)")
    ap.add_argument("--size", choices=sorted(SIZES), default="tiny")
    ap.add_argument("--model-json", help="JSON with ModelConfig fields overriding --size")
    ap.add_argument("--arch", choices=["mt3", "hconv"], default="mt3",
                    help="mt3: log-mel T5 (tokens only); hconv: log-frequency harmonic conv front end with "
                         "dense note heads feeding the T5 (tools/train/hconv.py)")
    ap.add_argument("--hconv-json", help="JSON overriding hconv.DEFAULT_HCONV fields (--arch hconv)")
    ap.add_argument("--token-frac", type=float, default=0.5,
                    help="hconv: fraction of each batch that also trains the token decoder (0 = heads only)")
    ap.add_argument("--token-weight", type=float, default=1.0, help="hconv: weight of the token loss")
    ap.add_argument("--init-from", metavar="MODEL_DIR",
                    help="start a new run (no checkpoint yet) from an exported hconv model directory, e.g. the "
                         "committed models/default: weights from it, step and CPU time from its config.json "
                         "(the optimizer starts fresh: use --schedule-from/--warmup-steps for a warm restart)")
    ap.add_argument("--codec-json", help="JSON codec section (default: mt3, 1 velocity bin)")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup-steps", type=int, default=0)
    ap.add_argument("--lr-decay", choices=["none", "cosine"], default="none",
                    help="cosine: after warm-up, decay the LR to --lr-final x LR at --steps")
    ap.add_argument("--schedule-from", type=int, default=0,
                    help="start the warm-up and cosine schedule at this step (warm restart when resuming)")
    ap.add_argument("--lr-final", type=float, default=0.1, help="final LR as a fraction of --lr (cosine)")
    ap.add_argument("--optimizer", choices=["adamw", "adafactor"], default="adamw")
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--z-loss", type=float, default=1e-4)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--null-prob", type=float, default=0.1, help="fraction of 'continue without audio' examples")
    ap.add_argument("--max-prefix", type=int, default=511)
    ap.add_argument("--bucket-pool", type=int, default=8,
                    help="batches drawn together and regrouped by decoder length (less padding; 1 = off)")
    ap.add_argument("--max-target-len", type=int, default=1023)
    ap.add_argument("--no-augment", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--eval-examples", type=int, default=64)
    ap.add_argument("--ckpt-every", type=int, default=1000)
    ap.add_argument("--export", help="write the model directory here at the end (fp16)")
    ap.add_argument("--name", help="model name in the exported config.json (default tunescribe-<size>); -step<N> is appended")
    ap.add_argument("--decoding-json", help="hconv export: the config.json 'decoding' section (default frames, 0.5/0.3)")
    ap.add_argument("--export-dtype", default="F16", choices=["F16", "BF16", "F32"])
    ap.add_argument("--plot", help="also write the learning curve PNG here")
    ap.add_argument("--time-limit-s", type=float, default=0, help="stop (checkpoint, export) after this wall time")
    return ap


def main():
    run(build_parser().parse_args())


if __name__ == "__main__":
    main()
