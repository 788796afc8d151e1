#!/usr/bin/python3
"""Under- or overfitting? The dense heads' quick onset F1 of an hconv model on training segments
beside validation segments (the same metric as the trainer's evaluation: local-maximum peaks
matched to labelled onsets of the same key within +-3 frames).

  fit_check.py --model models/default --train data/shards2 --validation data/shards [--examples 160]

About equal scores mean the model underfits (capacity, not data, limits it); a clearly higher
training score means it overfits (more data or augmentation helps).
"""
import argparse

import numpy as np
import torch

from tunescribe_train import dataset as D
from tunescribe_train import hconv as H
from tunescribe_train.trainer import onset_match_counts


def head_onset_f1(model, fe, root, split, n, threshold, seed):
    lf, valid = H.LogFreq(fe), H.frame_geometry(fe)[2]
    examples = D.fixed_examples(root, split, n, seed=seed, frontend=fe)
    counts = np.zeros(3, np.int64)
    with torch.no_grad():
        for i in range(0, len(examples), 16):
            b = D.collate(examples[i:i + 16])
            on = torch.sigmoid(model.front(lf(b["audio"]))[0][:, 0, :valid]).numpy()
            ref = b["labels"]["onset"][:, :valid].numpy()
            for e in range(on.shape[0]):
                counts += onset_match_counts(on[e], ref[e], threshold=threshold)
    tp, fp, fn = (int(c) for c in counts)
    p, r = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    return 2 * p * r / max(p + r, 1e-9), p, r, len(examples)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--train", required=True, help="shard root whose train/ split is scored")
    ap.add_argument("--validation", required=True, help="shard root whose validation/ split is scored")
    ap.add_argument("--examples", type=int, default=160)
    ap.add_argument("--threshold", type=float, default=0.35, help="onset peak threshold")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, cfg = H.load_hconv(args.model)
    for root, split in ((args.train, "train"), (args.validation, "validation")):
        f, p, r, n = head_onset_f1(model, cfg["frontend"], root, split, args.examples, args.threshold, args.seed)
        print("%-10s %4d segments  head onset F1 %.3f (P %.3f R %.3f)" % (split, n, f, p, r))


if __name__ == "__main__":
    main()
