#!/usr/bin/python3
"""Note-level validation of an exported model with the C++ transcriber (the model card's numbers).

Every excerpt of the validation shards (held-out pieces, rendered with MuseScore General, not mixed)
becomes one clip: its 16 kHz audio as a WAV file and its ground truth as a MIDI file (the notes of
the job MIDI inside the excerpt's window, shifted to the clip's start). Then

  tunescribe transcribe CLIPS --model MODEL -o EST --format mid
  tunescribe score --ref-dir REF/<group> --est-dir EST --json

runs per group: `piano` (ASAP performances: solo piano) and `multi` (POP909 and Nottingham:
melody + accompaniment on other instruments). The summary (mean over clips and pooled over notes
of onset F1, onset+offset F1, velocity F1, multi-instrument F1) is printed as JSON and written to
OUT/summary.json, with the commands that produced it.

  evaluate.py --data data/shards --model models/default --out runs/eval [--limit 40]
  evaluate.py ... --transcribe-arg=--decoder --transcribe-arg=frames     # pass options to transcribe
  evaluate.py ... --python-frames [--onset-threshold 0.5 --frame-threshold 0.3]
        # hconv models: the PyTorch reference (hconv.decode_frames) instead of the C++ transcriber,
        # for choosing decoding thresholds while the C++ build is busy; scored the same way

Besides the mir_eval metrics, every group reports the timing of matched onsets (median of
estimate - reference over notes matched within 50 ms at the same pitch, and its 10/90 %
quantiles) and the median duration ratio of those notes: a systematic shift between audio and
targets shows up there first.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

from tunescribe_train import REPO  # noqa: E402
from tunescribe_train import audio_codec  # noqa: E402
from tunescribe_train import midi_notes  # noqa: E402

SAMPLE_RATE = 16000
SEGMENT_SAMPLES = 32768
GROUPS = {"asap": "piano", "pop909": "multi", "nottingham": "multi"}
METRICS = [("onset_f1", "transcription", "F-measure_no_offset"),
           ("onset_offset_f1", "transcription", "F-measure"),
           ("velocity_f1", "transcription_velocity", "F-measure"),
           ("multi_instrument_f1", "multi_instrument", "F-measure")]


def write_wav(path, x):
    import wave
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())


def make_clips(data, out, limit, split="validation", every=1):
    """Writes OUT/clips/*.wav and OUT/ref/<group>/*.mid from every `every`-th shard of DATA/SPLIT;
    returns [(stem, group, corpus, piece)]."""
    vdir = os.path.join(data, split)
    shards = sorted(n for n in os.listdir(vdir) if n.endswith(".npz") and not n.startswith("."))[::every]
    clips = []
    for name in shards:
        z = np.load(os.path.join(vdir, name))
        meta = json.loads(bytes(z["meta"]).decode())
        audio, sr = audio_codec.decode(z["audio"].tobytes())
        assert sr == SAMPLE_RATE
        midi_path = os.path.join(out, "tmp.mid")
        with open(midi_path, "wb") as f:
            f.write(z["midi"].tobytes())
        tracks = midi_notes.read_tracks(midi_path)
        programs = midi_notes.program_changes(midi_path)
        seg_s = SEGMENT_SAMPLES / SAMPLE_RATE
        n_seg = meta["excerpt_segments"]
        for i, ex in enumerate(meta["excerpts"]):
            group = GROUPS.get(ex["corpus"])
            if group is None:
                continue
            stem = "%s-%02d" % (meta["key"], i)
            t0 = ex["first_segment"] * seg_s
            t1 = t0 + n_seg * seg_s
            x = audio[i * n_seg * SEGMENT_SAMPLES:(i + 1) * n_seg * SEGMENT_SAMPLES]
            channels = []
            n_notes = 0
            for tr in tracks:
                notes = [(on - t0, min(off, t1) - t0, p, v) for on, off, p, v in tr.notes if t0 <= on < t1]
                if not notes:
                    continue
                prog = midi_notes.program_at(programs, tr.channel, t0)
                channels.append({"channel": tr.channel, "controls": [(0.0, "program", prog, 0)], "notes": notes})
                n_notes += len(notes)
            if n_notes == 0:
                continue
            os.makedirs(os.path.join(out, "clips", group), exist_ok=True)
            write_wav(os.path.join(out, "clips", group, stem + ".wav"), x)
            os.makedirs(os.path.join(out, "ref", group), exist_ok=True)
            midi_notes.write_midi(os.path.join(out, "ref", group, stem + ".mid"), channels, n_seg * seg_s)
            clips.append((stem, group, ex["corpus"], ex["piece"]))
            if limit and len(clips) >= limit:
                return clips
    return clips


def read_notes_mid(path):
    """[(on, off, pitch)] of every track of a MIDI file."""
    return [(on, off, p) for tr in midi_notes.read_tracks(path) for on, off, p, v in tr.notes]


def timing_stats(ref_dir, est_dir):
    """Onset deviation (ms) and duration ratio of notes matched greedily within 50 ms at one pitch."""
    dev, ratio = [], []
    for name in sorted(os.listdir(ref_dir)):
        est_path = os.path.join(est_dir, name)
        if not name.endswith(".mid") or not os.path.exists(est_path):
            continue
        ref = read_notes_mid(os.path.join(ref_dir, name))
        est = read_notes_mid(est_path)
        by_pitch = {}
        for n in est:
            by_pitch.setdefault(n[2], []).append(n)
        used = set()
        for r in ref:
            best = None
            for e in by_pitch.get(r[2], []):
                d = abs(e[0] - r[0])
                if d <= 0.05 and id(e) not in used and (best is None or d < abs(best[0] - r[0])):
                    best = e
            if best is not None:
                used.add(id(best))
                dev.append((best[0] - r[0]) * 1000.0)
                if r[1] > r[0]:
                    ratio.append((best[1] - best[0]) / (r[1] - r[0]))
    if not dev:
        return {}
    return {"onset_dev_ms_median": round(float(np.median(dev)), 1),
            "onset_dev_ms_p10": round(float(np.percentile(dev, 10)), 1),
            "onset_dev_ms_p90": round(float(np.percentile(dev, 90)), 1),
            "duration_ratio_median": round(float(np.median(ratio)), 3) if ratio else None,
            "matched": len(dev)}


def clip_heads(model, lf, fe, wav_path):
    """A 16 kHz WAV clip through the PyTorch hconv front -> (probs [S, 4+F, T, 88]: sigmoid of the first
    4 heads, raw family logits; log-frequency features [S, T, n_bins]; the clip's samples before it
    was zero-padded to whole segments)."""
    import wave
    import torch
    seg = fe["segment_frames"] * fe["hop_length"]
    with wave.open(wav_path) as w:
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32767.0
    S = max(1, -(-len(x) // seg))
    n = len(x)
    x = np.pad(x, (0, S * seg - n))
    with torch.no_grad():
        feats = lf(torch.from_numpy(x.reshape(S, seg)))
        heads = model.front(feats)[0]
    return torch.cat([torch.sigmoid(heads[:, :4]), heads[:, 4:]], 1).numpy(), feats.numpy(), n


def python_frames(model_dir, clips_dir, est_dir, onset_t, frame_t, min_note_ms):
    """Transcribe every WAV under clips_dir with the PyTorch hconv reference -> est_dir/*.mid."""
    from tunescribe_train import hconv as H
    model, cfg = H.load_hconv(model_dir)
    fe = cfg["frontend"]
    lf = H.LogFreq(fe)
    os.makedirs(est_dir, exist_ok=True)
    for name in sorted(os.listdir(clips_dir)):
        if not name.endswith(".wav"):
            continue
        probs, feats, n = clip_heads(model, lf, fe, os.path.join(clips_dir, name))
        notes = H.decode_frames(probs, fe, onset_t, frame_t, min_note_ms / 1000.0, feats=feats,
                                velocity_loudness=cfg.get("decoding", {}).get("velocity_loudness", 0.0))
        by_prog = {}
        for on, off, p, v, prog, conf in notes:
            by_prog.setdefault(prog, []).append((on, off, p, v))
        chans = [c for c in range(16) if c != 9]
        channels = [{"channel": chans[i % 15], "controls": [(0.0, "program", prog, 0)], "notes": ns}
                    for i, (prog, ns) in enumerate(sorted(by_prog.items()))]
        midi_notes.write_midi(os.path.join(est_dir, name[:-4] + ".mid"), channels, n / SAMPLE_RATE)


def run(cmd, **kw):
    print("[evaluate] " + " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, check=True, **kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="shard root with a validation/ folder")
    ap.add_argument("--model", required=True, help="model directory")
    ap.add_argument("--out", required=True)
    ap.add_argument("--tunescribe", default=os.path.join(REPO, "build", "bin", "tunescribe"))
    ap.add_argument("--limit", type=int, default=0, help="at most N clips")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--transcribe-arg", action="append", default=[], help="extra argument for `tunescribe transcribe`")
    ap.add_argument("--python-frames", action="store_true", help="hconv: transcribe with the PyTorch reference")
    ap.add_argument("--onset-threshold", type=float, default=0.5)
    ap.add_argument("--frame-threshold", type=float, default=0.3)
    ap.add_argument("--min-note-ms", type=float, default=0.0)
    ap.add_argument("--reuse-clips", action="store_true", help="keep OUT/clips and OUT/ref from an earlier run")
    args = ap.parse_args()
    clips_json = os.path.join(args.out, "clips.json")
    if args.reuse_clips and os.path.exists(clips_json):
        clips = [tuple(c) for c in json.load(open(clips_json))]
        shutil.rmtree(os.path.join(args.out, "est"), ignore_errors=True)
    else:
        if os.path.exists(args.out):
            shutil.rmtree(args.out)
        os.makedirs(os.path.join(args.out, "clips"))
        clips = make_clips(args.data, args.out, args.limit)
        os.remove(os.path.join(args.out, "tmp.mid"))
        json.dump(clips, open(clips_json, "w"))
    groups = sorted(set(c[1] for c in clips))
    t = time.time()
    for group in groups:
        if args.python_frames:
            python_frames(args.model, os.path.join(args.out, "clips", group), os.path.join(args.out, "est", group),
                          args.onset_threshold, args.frame_threshold, args.min_note_ms)
            continue
        run([args.tunescribe, "transcribe", os.path.join(args.out, "clips", group), "--model", args.model,
             "-o", os.path.join(args.out, "est", group), "--format", "mid", "--threads", str(args.threads),
             "--force"] + args.transcribe_arg)
    wall = time.time() - t
    audio_s = len(clips) * 8 * SEGMENT_SAMPLES / SAMPLE_RATE
    summary = {"model": os.path.abspath(args.model), "data": os.path.abspath(args.data), "clips": len(clips),
               "decoding": "python-frames %.2f/%.2f/%gms" % (args.onset_threshold, args.frame_threshold,
                                                           args.min_note_ms) if args.python_frames else
               " ".join(args.transcribe_arg) or "default",
               "audio_s": audio_s, "transcribe_wall_s": round(wall, 1), "groups": {}}
    for group in groups:
        res = run([args.tunescribe, "score", "--ref-dir", os.path.join(args.out, "ref", group), "--est-dir",
                   os.path.join(args.out, "est", group), "--json"], stdout=subprocess.PIPE)
        js = json.loads(res.stdout)
        with open(os.path.join(args.out, "score-%s.json" % group), "w") as f:
            json.dump(js, f, indent=1)
        g = {"clips": len(js["files"]), "pieces": len(set(c[3] for c in clips if c[1] == group)),
             "ref_notes": sum(f["n_ref"] for f in js["files"]), "est_notes": sum(f["n_est"] for f in js["files"])}
        for name, section, key in METRICS:
            vals = [f[section][key] for f in js["files"] if section in f]
            g[name + "_mean"] = round(float(np.mean(vals)), 4) if vals else None
            pooled = js["aggregate"].get("pooled", {}).get(section, {}).get(key)
            g[name + "_pooled"] = round(pooled, 4) if pooled is not None else None
        g.update(timing_stats(os.path.join(args.out, "ref", group), os.path.join(args.out, "est", group)))
        summary["groups"][group] = g
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
