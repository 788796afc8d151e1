#!/usr/bin/python3
"""What limits the frames decoder's offsets and velocities? A study on rendered TRAINING pieces
(training soundfonts and augmentation, never the validation set), so that nothing here is tuned to
the numbers the model card reports.

  decode_study.py --model models/default --data data/shards2 --every 14 --out runs/decode-study

Every `every`-th shard of DATA/train becomes clips (evaluate.py's make_clips); the PyTorch model's
heads are computed once (OUT/probs.npz) and decoded several ways (hconv.decode_frames and its
study-only variants), each scored with mir_eval per clip (mean over clips, per group):

1. decoding variants: the model's thresholds; lower frame thresholds; ending notes at offset-head
   peaks; a lower continuation threshold once a note is long;
2. piano offsets by reference duration: how many onset-matched notes end too early / too late
   for mir_eval's offset tolerance (max(50 ms, 0.2 x duration)), and the median duration ratio;
3. velocity: the velocity head alone against blends with the input's loudness at each note's start
   (decode_frames' velocity_loudness weight: per-clip z-scores of the head and of the log-frequency
   peak over the note's first 3 frames and the pitch's bin +-1).

Prints JSON and writes OUT/study.json.
"""
import argparse
import json
import os
import sys
import warnings

import numpy as np
import torch

import evaluate as E
from tunescribe_train import hconv as H
from tunescribe_train import midi_notes

VARIANTS = [
    ("model thresholds", {}),
    ("frame 0.3", {"frame_threshold": 0.3}),
    ("frame 0.2", {"frame_threshold": 0.2}),
    ("frame 0.3 + offset-head stop 0.5", {"frame_threshold": 0.3, "offset_threshold": 0.5}),
    ("frame 0.2 + offset-head stop 0.3", {"frame_threshold": 0.2, "offset_threshold": 0.3}),
    ("frame 0.3 after 0.25 s", {"long_frames": 16, "long_frame_threshold": 0.3}),
    ("frame 0.3 after 0.5 s", {"long_frames": 32, "long_frame_threshold": 0.3}),
    ("frame 0.2 after 1 s", {"long_frames": 60, "long_frame_threshold": 0.2}),
]
DUR_BINS = [0, 0.1, 0.25, 0.5, 1.0, 2.0, 1e9]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True, help="shard root with a train/ split")
    ap.add_argument("--split", default="train")
    ap.add_argument("--every", type=int, default=14, help="use every N-th shard")
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    warnings.filterwarnings("ignore")  # mir_eval's lstsq rcond notice
    import mir_eval
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    clips_json = os.path.join(a.out, "clips.json")
    if not os.path.exists(clips_json):
        json.dump(E.make_clips(a.data, a.out, 0, split=a.split, every=a.every), open(clips_json, "w"))
    clips = json.load(open(clips_json))
    model, cfg = H.load_hconv(a.model)
    fe = cfg["frontend"]
    dec = cfg.get("decoding", {})
    base = {"onset_threshold": dec.get("onset_threshold", 0.5), "frame_threshold": dec.get("frame_threshold", 0.3)}
    lf = H.LogFreq(fe)
    probs, feats_seg, refs = {}, {}, {}
    for stem, group, corpus, piece in clips:
        probs[stem], feats_seg[stem], _ = E.clip_heads(model, lf, fe, os.path.join(a.out, "clips", group, stem + ".wav"))
        notes = []
        for tr in midi_notes.read_tracks(os.path.join(a.out, "ref", group, stem + ".mid")):
            notes += [(on, off, p, v) for on, off, p, v in tr.notes]
        refs[stem] = np.array(notes, float).reshape(-1, 4)

    def hz(m):
        return mir_eval.util.midi_to_hz(m)

    def scores(r, e, vel):
        ri, rp = r[:, :2], hz(r[:, 2])
        ei, ep = (e[:, :2], hz(e[:, 2])) if len(e) else (np.zeros((0, 2)), np.zeros(0))
        on = mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep, offset_ratio=None)[2]
        onoff = mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep)[2]
        v = mir_eval.transcription_velocity.precision_recall_f1_overlap(ri, rp, r[:, 3], ei, ep,
                                                                          vel if len(e) else np.zeros(0))[2]
        return on, onoff, v

    def decode(stem, **kw):
        args = dict(base, **kw)
        return H.decode_frames(probs[stem], fe, args.pop("onset_threshold"), args.pop("frame_threshold"),
                               return_frames=True, **args)

    # the velocity study below sets its own weight; the variants use the head alone

    out = {"model": a.model, "data": a.data, "split": a.split, "every": a.every, "clips": len(clips),
           "decoding": base, "variants": {}, "piano_offsets": [], "velocity": {}}
    for name, kw in VARIANTS:
        per = {}
        for stem, group, _, _ in clips:
            e = np.array([n[:4] for n in decode(stem, **kw)], float).reshape(-1, 4)
            per.setdefault(group, []).append(scores(refs[stem], e, e[:, 3]))
        out["variants"][name] = {g: dict(zip(("onset_f1", "onset_offset_f1", "velocity_f1"),
                                             np.round(np.mean(v, 0), 4).tolist())) for g, v in per.items()}
        print(name, out["variants"][name], file=sys.stderr, flush=True)

    bins = {}
    for stem, group, _, _ in clips:
        if group != "piano":
            continue
        r = refs[stem]
        e = np.array([n[:4] for n in decode(stem)], float).reshape(-1, 4)
        if not len(e):
            continue
        for i, j in mir_eval.transcription.match_notes(r[:, :2], hz(r[:, 2]), e[:, :2], hz(e[:, 2]), offset_ratio=None):
            rd = r[i, 1] - r[i, 0]
            tol = max(0.05, 0.2 * rd)
            err = e[j, 1] - r[i, 1]
            b = bins.setdefault(int(np.searchsorted(DUR_BINS, rd, side="right") - 1), [0, 0, 0, []])
            b[0] += 1
            b[1] += err < -tol
            b[2] += err > tol
            b[3].append((e[j, 1] - e[j, 0]) / rd)
    for k in sorted(bins):
        n, early, late, ratio = bins[k]
        out["piano_offsets"].append({"ref_duration_s": [DUR_BINS[k], DUR_BINS[k + 1] if DUR_BINS[k + 1] < 1e9 else None],
                                     "matched": n, "early": round(early / n, 3), "late": round(late / n, 3),
                                     "median_duration_ratio": round(float(np.median(ratio)), 3)})

    for w in (0.0, 0.3, 0.5, 0.7, 1.0):
        per = {}
        for stem, group, _, _ in clips:
            e = np.array([n[:4] for n in decode(stem, feats=feats_seg[stem], velocity_loudness=w)], float).reshape(-1, 4)
            per.setdefault(group, []).append(scores(refs[stem], e, e[:, 3])[2])
        out["velocity"]["loudness weight %.1f" % w] = {g: round(float(np.mean(v)), 4) for g, v in per.items()}
        print("velocity loudness weight %.1f" % w, out["velocity"]["loudness weight %.1f" % w], file=sys.stderr,
              flush=True)
    json.dump(out, open(os.path.join(a.out, "study.json"), "w"), indent=1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
