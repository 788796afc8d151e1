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
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import audio_codec  # noqa: E402
import midi_notes  # noqa: E402

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


def make_clips(data, out, limit):
    """Writes OUT/clips/*.wav and OUT/ref/<group>/*.mid; returns [(stem, group, corpus, piece)]."""
    vdir = os.path.join(data, "validation")
    shards = sorted(n for n in os.listdir(vdir) if n.endswith(".npz") and not n.startswith("."))
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
        programs = program_changes(midi_path)
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
                prog = program_at(programs, tr.channel, t0)
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


def program_changes(midi_path):
    """{channel: [(time_s, program)]} of the job MIDI (it sets programs at each excerpt's origin)."""
    import mido
    mid = mido.MidiFile(midi_path)
    changes = {}
    for tr in mid.tracks:
        tick = 0
        for msg in tr:
            tick += msg.time
            if msg.type == "program_change":
                t = mido.tick2second(tick, mid.ticks_per_beat, midi_notes.TEMPO_US)
                changes.setdefault(msg.channel, []).append((t, msg.program))
    return {ch: sorted(v) for ch, v in changes.items()}


def program_at(changes, channel, t):
    """The channel's program in force at time t."""
    prog = 0
    for when, p in changes.get(channel, []):
        if when <= t + 1e-6:
            prog = p
    return prog


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
    args = ap.parse_args()
    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    os.makedirs(os.path.join(args.out, "clips"))
    clips = make_clips(args.data, args.out, args.limit)
    os.remove(os.path.join(args.out, "tmp.mid"))
    groups = sorted(set(c[1] for c in clips))
    t = time.time()
    for group in groups:
        run([args.tunescribe, "transcribe", os.path.join(args.out, "clips", group), "--model", args.model,
             "-o", os.path.join(args.out, "est", group), "--format", "mid", "--threads", str(args.threads),
             "--force"])
    wall = time.time() - t
    audio_s = len(clips) * 8 * SEGMENT_SAMPLES / SAMPLE_RATE
    summary = {"model": os.path.abspath(args.model), "data": os.path.abspath(args.data), "clips": len(clips),
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
        summary["groups"][group] = g
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
