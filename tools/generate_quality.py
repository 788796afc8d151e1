#!/usr/bin/python3
"""Quality of `tunescribe generate` over N generated pieces (docs/generate.md).

Generates N pieces in one run (`--num N`, seeds S..S+N-1) and measures:
  * share of ABC files that abc2midi and abcm2ps read cleanly (exit 0, no
    "error" line in their output), and the share without "warning" lines either
    (abcm2ps warns about underfull lines, a layout matter);
  * pitch-class distribution (duration-weighted), note density (onsets/s) and
    polyphony (mean number of sounding notes while anything sounds), compared
    with a seeded sample of corpus MIDI files (first --seconds of each);
  * in-key ratio (share of note duration in the key's scale) when --key is given;
  * self-similarity: mean cosine similarity of the chroma vectors of
    non-adjacent 1 s windows, and the share of repeated pitch-interval 4-grams;
  * tokens per second from the generator's JSON summary (--threads, default 2).

  /usr/bin/python3 tools/generate_quality.py --model models/tiny --n 100 --seconds 8 \
      [--key G] [--corpus /work/shared/corpora] [--corpus-files 50] [--out DIR] [-- extra generate args]

Prints a Markdown table and writes quality.json in the output folder.
"""
import argparse
import glob
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

import mido
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MAJOR = [0, 2, 4, 5, 7, 9, 11]
LETTER_FIFTHS = {"A": 3, "B": 5, "C": 0, "D": 2, "E": 4, "F": -1, "G": 1}
MODE_OFFSET = [("maj", 0), ("ion", 0), ("min", -3), ("aeo", -3), ("dor", -2), ("phr", -4), ("lyd", 1),
               ("mix", -1), ("loc", -5)]


def key_fifths(key):
    f = LETTER_FIFTHS[key[0].upper()]
    rest = key[1:]
    if rest[:1] in ("#", "b"):
        f += 7 if rest[0] == "#" else -7
        rest = rest[1:]
    rest = rest.strip().lower()
    if rest == "m":
        return f - 3
    for name, off in MODE_OFFSET:
        if rest.startswith(name):
            return f + off
    return f


def midi_notes(path, max_s=None):
    """(onset, offset, pitch) of non-drum notes, seconds."""
    mf = mido.MidiFile(path)
    t = 0.0
    open_notes = {}
    out = []
    for msg in mf:  # merged tracks, delta times in seconds
        t += msg.time
        if msg.type not in ("note_on", "note_off") or msg.channel == 9:
            continue
        key = (msg.channel, msg.note)
        if msg.type == "note_on" and msg.velocity > 0:
            open_notes.setdefault(key, []).append(t)
        elif open_notes.get(key):
            on = open_notes[key].pop(0)
            out.append((on, t, msg.note))
    if max_s is not None:
        out = [(a, min(b, max_s), p) for a, b, p in out if a < max_s]
    return [n for n in out if n[1] > n[0]]


def stats(notes, seconds):
    pc = np.zeros(12)
    for a, b, p in notes:
        pc[p % 12] += b - a
    pcd = pc / pc.sum() if pc.sum() > 0 else pc
    density = len(notes) / seconds if seconds > 0 else 0.0
    # Polyphony on a 10 ms grid.
    n = int(math.ceil(seconds * 100)) + 1
    active = np.zeros(n)
    for a, b, _ in notes:
        active[int(a * 100):max(int(a * 100) + 1, int(b * 100))] += 1
    sounding = active[active > 0]
    poly = float(sounding.mean()) if len(sounding) else 0.0
    # Self-similarity of 1 s chroma windows (non-adjacent pairs).
    w = int(math.ceil(seconds))
    chroma = np.zeros((max(w, 1), 12))
    for a, b, p in notes:
        for k in range(int(a), min(int(math.ceil(b)), w)):
            chroma[k, p % 12] += min(b, k + 1) - max(a, k)
    norms = np.linalg.norm(chroma, axis=1)
    sims = []
    for i in range(len(chroma)):
        for j in range(i + 2, len(chroma)):
            if norms[i] > 0 and norms[j] > 0:
                sims.append(float(chroma[i] @ chroma[j] / norms[i] / norms[j]))
    selfsim = float(np.mean(sims)) if sims else 0.0
    # Repeated pitch-interval 4-grams of the top line (highest pitch per onset).
    onsets = {}
    for a, b, p in notes:
        k = round(a, 2)
        onsets[k] = max(onsets.get(k, 0), p)
    line = [onsets[k] for k in sorted(onsets)]
    iv = [line[i + 1] - line[i] for i in range(len(line) - 1)]
    grams = [tuple(iv[i:i + 4]) for i in range(len(iv) - 3)]
    rep = 1.0 - len(set(grams)) / len(grams) if grams else 0.0
    return {"pc": pcd, "density": density, "polyphony": poly, "selfsim": selfsim, "repeat4": rep}


def in_key(notes, fifths):
    tonic = (7 * fifths) % 12
    scale = {(tonic + s) % 12 for s in MAJOR}
    tot = sum(b - a for a, b, _ in notes)
    good = sum(b - a for a, b, p in notes if p % 12 in scale)
    return good / tot if tot > 0 else 1.0


def clean_run(cmd):
    """(no errors, no warnings either, first problem lines)."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, False, str(e)
    lines = (r.stdout + r.stderr).splitlines()
    errors = [l for l in lines if re.search(r"\berror\b", l, re.I)]
    warnings = [l for l in lines if re.search(r"\bwarning\b", l, re.I)]
    ok = r.returncode == 0 and not errors
    return ok, ok and not warnings, "\n".join((errors + warnings)[:3])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin", "tunescribe"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "tiny"))
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--key", default="")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--corpus", default="/work/shared/corpora")
    ap.add_argument("--corpus-files", type=int, default=50)
    ap.add_argument("--out", default="")
    ap.add_argument("extra", nargs="*", help="extra arguments for tunescribe generate (after --)")
    args = ap.parse_args()

    out = args.out or tempfile.mkdtemp(prefix="genq_")
    os.makedirs(out, exist_ok=True)
    cmd = [args.bin, "generate", "-q", "-m", args.model, "-o", out, "--num", str(args.n), "--seed", str(args.seed),
           "--seconds", str(args.seconds), "--threads", str(args.threads), "--json", "--force"]
    if args.key:
        cmd += ["--key", args.key]
    cmd += args.extra
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("generate failed (%d): %s" % (r.returncode, r.stderr))
    pieces = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]

    abc2midi = shutil.which("abc2midi")
    abcm2ps = shutil.which("abcm2ps")
    ok_midi = ok_ps = quiet_midi = quiet_ps = 0
    problems = []
    gen_stats = []
    keys = []
    tps = []
    for p in pieces:
        abc = p["files"][0]
        mid = p["files"][1]
        if abc2midi:
            good, quiet, why = clean_run([abc2midi, abc, "-o", os.path.join(out, "_check.mid")])
            ok_midi += good
            quiet_midi += quiet
            if not quiet:
                problems.append((abc, "abc2midi", why))
        if abcm2ps:
            good, quiet, why = clean_run([abcm2ps, "-q", abc, "-O", os.path.join(out, "_check.ps")])
            ok_ps += good
            quiet_ps += quiet
            if not quiet:
                problems.append((abc, "abcm2ps", why))
        notes = midi_notes(mid)
        gen_stats.append(stats(notes, p["seconds"]))
        if args.key:
            keys.append(in_key(notes, key_fifths(args.key)))
        tps.append(p["tokens_per_second"])

    corpus = sorted(glob.glob(os.path.join(args.corpus, "**", "*.mid"), recursive=True))
    random.Random(1).shuffle(corpus)
    corp_stats = []
    for path in corpus:
        if len(corp_stats) >= args.corpus_files:
            break
        try:
            notes = midi_notes(path, args.seconds)
        except Exception:  # noqa: BLE001 - a broken corpus file is skipped
            continue
        if notes:
            corp_stats.append(stats(notes, args.seconds))

    def mean(xs, k):
        return float(np.mean([x[k] for x in xs])) if xs else float("nan")

    g_pc = np.mean([s["pc"] for s in gen_stats], axis=0) if gen_stats else np.zeros(12)
    c_pc = np.mean([s["pc"] for s in corp_stats], axis=0) if corp_stats else np.zeros(12)
    res = {
        "pieces": len(pieces),
        "seconds": args.seconds,
        "model": pieces[0]["model"] if pieces else "",
        "abc2midi_clean": ok_midi / len(pieces) if abc2midi and pieces else None,
        "abcm2ps_clean": ok_ps / len(pieces) if abcm2ps and pieces else None,
        "abc2midi_no_warnings": quiet_midi / len(pieces) if abc2midi and pieces else None,
        "abcm2ps_no_warnings": quiet_ps / len(pieces) if abcm2ps and pieces else None,
        "pitch_class_l1_vs_corpus": float(np.abs(g_pc - c_pc).sum()),
        "pitch_class_generated": [round(float(x), 4) for x in g_pc],
        "pitch_class_corpus": [round(float(x), 4) for x in c_pc],
        "density_generated": mean(gen_stats, "density"),
        "density_corpus": mean(corp_stats, "density"),
        "polyphony_generated": mean(gen_stats, "polyphony"),
        "polyphony_corpus": mean(corp_stats, "polyphony"),
        "selfsim_generated": mean(gen_stats, "selfsim"),
        "selfsim_corpus": mean(corp_stats, "selfsim"),
        "repeat4_generated": mean(gen_stats, "repeat4"),
        "repeat4_corpus": mean(corp_stats, "repeat4"),
        "in_key_ratio": float(np.mean(keys)) if keys else None,
        "key": args.key,
        "tokens_per_second_mean": float(np.mean(tps)) if tps else 0.0,
        "threads": args.threads,
        "corpus_files": len(corp_stats),
        "problems": problems[:20],
        "command": " ".join(cmd),
    }
    with open(os.path.join(out, "quality.json"), "w") as f:
        json.dump(res, f, indent=1)

    def fmt(v):
        return "n/a" if v is None else ("%.3f" % v if isinstance(v, float) else str(v))

    print("| measure | generated | corpus |")
    print("|---|---|---|")
    print("| ABC without errors in abc2midi / abcm2ps | %s / %s | |" % (fmt(res["abc2midi_clean"]), fmt(res["abcm2ps_clean"])))
    print("| ABC without warnings either | %s / %s | |" % (fmt(res["abc2midi_no_warnings"]), fmt(res["abcm2ps_no_warnings"])))
    print("| pitch-class L1 distance to corpus | %s | 0 |" % fmt(res["pitch_class_l1_vs_corpus"]))
    print("| note density (onsets/s) | %s | %s |" % (fmt(res["density_generated"]), fmt(res["density_corpus"])))
    print("| polyphony (sounding notes) | %s | %s |" % (fmt(res["polyphony_generated"]), fmt(res["polyphony_corpus"])))
    print("| self-similarity (chroma cosine) | %s | %s |" % (fmt(res["selfsim_generated"]), fmt(res["selfsim_corpus"])))
    print("| repeated interval 4-grams | %s | %s |" % (fmt(res["repeat4_generated"]), fmt(res["repeat4_corpus"])))
    if args.key:
        print("| in-key ratio (%s) | %s | |" % (args.key, fmt(res["in_key_ratio"])))
    print("| tokens/s (%d threads) | %s | |" % (args.threads, fmt(res["tokens_per_second_mean"])))
    print("\n%d pieces of %g s, model %s, %d corpus files; details in %s"
          % (len(pieces), args.seconds, res["model"], len(corp_stats), os.path.join(out, "quality.json")))
    for abc, tool, why in problems[:5]:
        print("  %s: %s: %s" % (os.path.basename(abc), tool, why.replace("\n", " / ")))


if __name__ == "__main__":
    main()
