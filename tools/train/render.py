#!/usr/bin/python3
"""Render training / validation shards: corpus MIDI -> augmented MIDI -> FluidSynth audio -> shards.

A *job* is a batch of excerpts (several pieces) laid end to end on the 2.048 s segment grid with one
silent gap segment after each excerpt (release tails die there; gaps are not stored). One job = one
MIDI file, one `fluidsynth` call (the soundfont is loaded once per job) and one `tunescribe tokens`
call, so every stored segment's targets come from the C++ codec on exactly the MIDI that was rendered.

Per excerpt (all random choices from a seed derived from the job key, so re-runs are identical):
  - crop: EXCERPT_SEGMENTS x 2.048 s window of one performance/song/tune (K non-overlapping windows
    per file), notes starting in the window, cut at its end; random phase offset (0..2.048 s)
    so that music falls differently on the segment grid;
  - tempo scaling (x0.85..1.2), transposition (piano +-2, others +-5 semitones, kept in 21..108),
    velocity scaling (x0.7..1.3 + jitter), all applied to the notes before rendering;
  - instruments: ASAP -> solo piano (mostly program 0, sometimes other pianos of the GM piano family);
    POP909 MELODY/BRIDGE/PIANO and Nottingham melody/chords -> a program from a palette per role
    (lead, second voice, accompaniment, chords), so the material is multi-instrument;
  - MT3-style mixing at the NOTE level (train split only by default): with probability --mix-prob
    another excerpt of the same job is laid over this one on separate channels; the codec then
    encodes the merged MIDI, so targets of the mixture are exact;
  - per-channel reverb/chorus sends and volume.
Same (program, pitch) overlaps are trimmed (the earlier note ends at the later onset).

Soundfonts: train split -> FluidR3_GM or TimGM6mb; validation split -> MuseScore General only
(never used for training).

Output (under --out, default data/shards):
  <split>/<job>.npz   audio (uint8: one FLAC 16-bit, or Ogg Vorbis with --audio-format vorbis,
                      16 kHz mono, the excerpts concatenated, each EXCERPT_SEGMENTS*32768 samples), midi (uint8: the job's MIDI),
                      tokens (int32 flat) + token_offsets (int64 [n_segments+1]) in excerpt order,
                      meta (uint8 JSON: excerpts, pieces, augmentation, soundfont, codec arguments)
  manifest.jsonl      one line per job (rebuilt from the job files at the end of every run)
Resumable: existing job files are skipped; files are written atomically.

Usage:
  render.py --split train --limit-pieces 20 --workers 2 --out data/shards
  render.py --split validation --out data/shards
  render.py --retokenize data/shards     # re-run `tunescribe tokens` on stored MIDI (codec change)
"""
import argparse
import hashlib
import io
import json
import multiprocessing as mp
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

try:  # optional: the --synthesize stage runs on machines without soundfile/mido (audio as pcm16)
    import soundfile as sf
except ImportError:
    sf = None

from tunescribe_train import REPO  # noqa: E402
from tunescribe_train import split as split_mod  # noqa: E402
try:
    from tunescribe_train import midi_notes  # noqa: E402  (mido; not needed by --synthesize)
except ImportError:
    midi_notes = None

SAMPLE_RATE = 16000
HOP = 128
SEGMENT_FRAMES = 256
SEGMENT_SAMPLES = SEGMENT_FRAMES * HOP          # 32768
SEGMENT_S = SEGMENT_SAMPLES / SAMPLE_RATE       # 2.048
EXCERPT_SEGMENTS = 8                            # 16.384 s
GAP_SEGMENTS = 1

TRAIN_SOUNDFONTS = ["/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/TimGM6mb.sf2"]
# MuseScore General (Debian musescore-general-soundfont): validation only, never for training.
VALIDATION_SOUNDFONT_CANDIDATES = ["/usr/share/sounds/sf3/MuseScore_General.sf3",
                                   "/usr/share/sounds/sf3/MuseScore_General_Full.sf3"]


def validation_soundfonts():
    found = [p for p in VALIDATION_SOUNDFONT_CANDIDATES if os.path.exists(p)]
    if not found:
        raise FileNotFoundError("render: MuseScore General soundfont not found (apt-get install "
                                "musescore-general-soundfont): " + ", ".join(VALIDATION_SOUNDFONT_CANDIDATES))
    return found[:1]


def check_training_soundfont(path):
    """Refuses a training soundfont that is (or links to) the reserved validation soundfont."""
    real = os.path.realpath(path)
    reserved = {os.path.realpath(p) for p in VALIDATION_SOUNDFONT_CANDIDATES if os.path.exists(p)}
    if real in reserved or "musescore" in os.path.basename(real).lower():
        raise ValueError("render: %s is the validation soundfont; never train on it" % path)

# GM programs (0-based) per role, with weights.
PALETTES = {
    "piano": [(0, 80), (1, 8), (2, 4), (4, 4), (5, 4)],
    "lead": [(73, 10), (40, 10), (71, 8), (68, 6), (65, 6), (56, 5), (74, 4), (110, 4), (21, 6),
             (24, 5), (0, 8), (11, 3), (22, 3), (52, 3), (64, 3), (69, 2), (80, 2), (81, 2), (4, 4),
             (25, 3), (26, 3)],
    "second": [(48, 10), (49, 4), (4, 6), (25, 6), (24, 5), (16, 4), (19, 4), (41, 4), (42, 6), (60, 4),
               (71, 4), (12, 3), (89, 3), (0, 8), (61, 3), (70, 3)],
    "accomp": [(0, 35), (1, 4), (4, 8), (5, 4), (24, 8), (25, 8), (26, 4), (46, 5), (16, 4), (48, 6),
               (6, 2), (27, 3), (2, 3)],
    "chords": [(24, 12), (25, 10), (0, 14), (21, 8), (48, 8), (16, 5), (19, 4), (46, 5), (4, 6), (26, 4),
               (33, 4), (32, 3)],
}


def default_tunescribe_bin() -> str:
    for cand in (os.environ.get("TUNESCRIBE_BIN", ""), os.path.join(REPO, "build", "bin", "tunescribe")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return ""


def seed_of(*parts) -> int:
    h = hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()
    return int(h[:15], 16)


def weighted(rng: random.Random, table):
    total = sum(w for _, w in table)
    x = rng.uniform(0, total)
    for v, w in table:
        x -= w
        if x <= 0:
            return v
    return table[-1][0]


def roles_for(corpus: str, tracks):
    """Role per track: asap -> piano; pop909 by track name; nottingham: first track melody."""
    roles = []
    for i, tr in enumerate(tracks):
        if corpus == "asap":
            roles.append("piano")
        elif corpus == "pop909":
            n = tr.name.upper()
            roles.append("lead" if "MELODY" in n else "second" if "BRIDGE" in n else "accomp")
        else:
            roles.append("lead" if i == 0 else "chords")
    return roles


# --------------------------------------------------------------------------------------------
# planning

def plan_jobs(split: str, pieces, excerpts_per_file: int, variants: int, job_excerpts: int, seed: int,
              limit_pieces: int = 0):
    """Deterministic list of jobs: [{"key", "split", "items": [(piece_id, corpus, file, k, n_k)]}]."""
    table = split_mod.load_split()
    chosen = [p for p in pieces if table.get(p.piece_id) == split]
    if limit_pieces:
        rng = random.Random(seed_of(seed, split, "limit"))
        chosen = sorted(rng.sample(chosen, min(limit_pieces, len(chosen))), key=lambda p: p.piece_id)
    jobs = []
    for v in range(variants):
        items = []
        for p in chosen:
            for f in p.files:
                n = excerpts_per_file
                for k in range(n):
                    items.append((p.piece_id, p.corpus, f, k, n))
        rng = random.Random(seed_of(seed, split, "variant", v))
        rng.shuffle(items)
        for j in range(0, len(items), job_excerpts):
            jobs.append({"key": "%s-v%02d-%05d" % (split, v, j // job_excerpts), "split": split,
                         "variant": v, "items": items[j:j + job_excerpts]})
    return jobs


# --------------------------------------------------------------------------------------------
# one excerpt

def make_excerpt(rng: random.Random, corpus: str, path: str, k: int, n_k: int):
    """Returns (parts, info): parts = [(role, notes)] with notes in excerpt time [0, EXCERPT_S)."""
    tracks = midi_notes.read_tracks(path)
    excerpt_s = EXCERPT_SEGMENTS * SEGMENT_S
    if not tracks:
        return [], {"empty": True}
    roles = roles_for(corpus, tracks)
    speed = rng.uniform(0.85, 1.2)
    phase = rng.uniform(0.0, SEGMENT_S) if rng.random() < 0.8 else 0.0
    tail = 0.05
    win_src = (excerpt_s - phase - tail) * speed   # source seconds that fit in the excerpt
    first = min(n[0] for tr in tracks for n in tr.notes)
    last = max(n[1] for tr in tracks for n in tr.notes)
    span = max(0.0, last - first - win_src)
    lo = first + span * k / n_k
    hi = first + span * (k + 1) / n_k
    a = rng.uniform(lo, hi) if hi > lo else lo
    b = a + win_src
    max_transpose = 2 if corpus == "asap" else 5
    transpose = rng.randint(-max_transpose, max_transpose)
    vel_scale = rng.uniform(0.7, 1.3)
    parts = []
    for tr, role in zip(tracks, roles):
        notes = []
        for on, off, p, v in tr.notes:
            if on < a or on >= b:
                continue
            t_on = phase + (on - a) / speed
            t_off = phase + (min(off, b) - a) / speed
            t_off = min(t_off, excerpt_s - tail)
            pitch = p + transpose
            vel = int(round(v * vel_scale + rng.gauss(0, 4)))
            notes.append([t_on, t_off, pitch, max(1, min(127, vel))])
        if notes:
            parts.append((role, notes))
    # keep pitches in 21..108 (shift the whole excerpt back by octaves if needed)
    all_p = [n[2] for _, ns in parts for n in ns]
    if all_p:
        while max(all_p) > 108:
            for _, ns in parts:
                for n in ns:
                    n[2] -= 12
            all_p = [x - 12 for x in all_p]
        while min(all_p) < 21:
            for _, ns in parts:
                for n in ns:
                    n[2] += 12
            all_p = [x + 12 for x in all_p]
        for _, ns in parts:
            ns[:] = [n for n in ns if 0 <= n[2] <= 127]
    info = {"src_start_s": round(a, 3), "speed": round(speed, 4), "phase_s": round(phase, 4),
            "transpose": transpose, "velocity_scale": round(vel_scale, 3)}
    return parts, info


def trim_overlaps(notes_with_prog):
    """notes: [on, off, pitch, vel, channel, program] -> same (program, pitch) overlaps trimmed."""
    notes_with_prog.sort(key=lambda n: (n[5], n[2], n[0]))
    for x, y in zip(notes_with_prog, notes_with_prog[1:]):
        if x[5] == y[5] and x[2] == y[2] and x[1] > y[0]:
            x[1] = y[0]
    return [n for n in notes_with_prog if n[1] - n[0] >= 0.02]


# --------------------------------------------------------------------------------------------
# one job

def export_tokens(tunescribe_bin: str, midi_path: str, codec_args, duration_s: float):
    """Runs `tunescribe tokens FILE --segment-frames 256 --duration-s D [codec args]`
    -> (list of token lists, list of truncated flags, the JSON document without its segments)."""
    cmd = [tunescribe_bin, "tokens", midi_path, "--segment-frames", str(SEGMENT_FRAMES),
           "--duration-s", "%.6f" % duration_s] + list(codec_args)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    doc = None
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            doc = json.loads(line)
            break
    if doc is None:
        doc = json.loads(out)
    segs = doc.pop("segments")
    result, truncated = [], []
    for k, s in enumerate(segs):
        expect = k * SEGMENT_SAMPLES
        if s.get("start_sample", expect) != expect:
            raise RuntimeError("render: %s: codec segment %d starts at sample %s, expected %d" % (
                midi_path, k, s.get("start_sample"), expect))
        result.append([int(t) for t in s["tokens"]])
        truncated.append(bool(s.get("truncated", False)))
    return result, truncated, doc


def render_job(job: dict, opts: dict) -> dict:
    out_dir = os.path.join(opts["out"], job["split"])
    final = os.path.join(out_dir, job["key"] + ".npz")
    if os.path.exists(final):
        return {"key": job["key"], "skipped": True}
    t_start = time.time()
    cpu0 = os.times()
    rng = random.Random(seed_of(opts["seed"], job["key"]))
    soundfonts = validation_soundfonts() if job["split"] == "validation" else (opts.get("train_soundfonts")
                                                                               or TRAIN_SOUNDFONTS)
    soundfont = rng.choice(soundfonts)
    if opts.get("soundfont"):  # testing only (smoke test): one fixed soundfont for every split
        soundfont = opts["soundfont"]
    if job["split"] == "train":
        check_training_soundfont(soundfont)
    excerpts = []
    for (pid, corpus, path, k, n_k) in job["items"]:
        parts, info = make_excerpt(rng, corpus, path, k, n_k)
        excerpts.append({"piece": pid, "corpus": corpus, "file": os.path.relpath(path, opts["shared"]),
                         "k": k, "parts": parts, "info": info})
    # instruments per part, then optional note-level mixing with another excerpt of the job
    piano_prob = opts.get("piano_prob", 0.0) if job["split"] == "train" else 0.0
    for ex in excerpts:
        # --piano-prob: the whole excerpt (melody, chords, accompaniment) played on pianos, so that
        # pop songs and folk tunes add to the solo-piano material that ASAP alone provides
        as_piano = piano_prob > 0 and rng.random() < piano_prob
        ex["programs"] = [weighted(rng, PALETTES["piano" if as_piano else role]) for role, _ in ex["parts"]]
    mix_prob = opts["mix_prob"] if job["split"] == "train" else opts["mix_prob_validation"]
    for i, ex in enumerate(excerpts):
        ex["mix_with"] = None
        if len(excerpts) > 1 and rng.random() < mix_prob:
            j = rng.choice([x for x in range(len(excerpts)) if x != i and excerpts[x]["piece"] != ex["piece"]] or [i])
            if j != i:
                ex["mix_with"] = j
    channels = {}
    meta_excerpts = []
    for i, ex in enumerate(excerpts):
        origin = i * (EXCERPT_SEGMENTS + GAP_SEGMENTS) * SEGMENT_S
        layers = [(ex["parts"], ex["programs"], 1.0)]
        if ex["mix_with"] is not None:
            other = excerpts[ex["mix_with"]]
            layers.append((other["parts"], other["programs"], rng.uniform(0.6, 1.0)))
        flat = []
        ch_list = [c for c in range(16) if c != 9]
        ci = 0
        used = []
        for parts, programs, vgain in layers:
            for (role, notes), prog in zip(parts, programs):
                ch = ch_list[ci % len(ch_list)]
                ci += 1
                used.append((ch, prog))
                for on, off, p, v in notes:
                    flat.append([on, off, p, max(1, min(127, int(round(v * vgain)))), ch, prog])
        flat = trim_overlaps(flat)
        for ch, prog in used:
            c = channels.setdefault(ch, {"channel": ch, "controls": [], "notes": []})
            c["controls"] += [(origin, "cc", 7, rng.randint(85, 110)), (origin, "cc", 11, 127),
                              (origin, "cc", 91, rng.choice([0, 0, 20, 40, 70])),
                              (origin, "cc", 93, rng.choice([0, 0, 0, 20, 40])),
                              (origin, "program", prog, 0)]
        for on, off, p, v, ch, prog in flat:
            channels[ch]["notes"].append((origin + on, origin + off, p, v))
        meta_excerpts.append({"piece": ex["piece"], "corpus": ex["corpus"], "file": ex["file"], "k": ex["k"],
                              "programs": sorted(set(p for _, p in used)), "n_notes": len(flat),
                              "mix_with": excerpts[ex["mix_with"]]["piece"] if ex["mix_with"] is not None else None,
                              "first_segment": i * (EXCERPT_SEGMENTS + GAP_SEGMENTS), **ex["info"]})
    n_ex = len(excerpts)
    total_segments = n_ex * (EXCERPT_SEGMENTS + GAP_SEGMENTS)
    end_s = total_segments * SEGMENT_S
    tmp = tempfile.mkdtemp(prefix="render-", dir=opts.get("tmp") or None)
    try:
        midi_path = os.path.join(tmp, job["key"] + ".mid")
        midi_notes.write_midi(midi_path, [channels[c] for c in sorted(channels)], end_s)
        reverb = "1" if rng.random() < 0.6 else "0"
        with open(midi_path, "rb") as f:
            midi_bytes = np.frombuffer(f.read(), dtype=np.uint8)
        arrays = {"midi": midi_bytes}
        synth_s = 0.0
        if opts.get("stage", "full") == "full":
            excerpt_audio, peaks, synth_s = synthesize_audio(midi_path, soundfont, reverb == "1", n_ex, tmp,
                                                             opts.get("fluidsynth") or "fluidsynth")
            for i in range(n_ex):
                meta_excerpts[i]["peak_before_norm"] = peaks[i]
            arrays.update(encode_audio(excerpt_audio, opts["audio_format"]))
        meta = {"format": "tunescribe-shard", "version": 1, "key": job["key"], "split": job["split"],
                "soundfont": os.path.basename(soundfont), "soundfont_path": soundfont,
                "fluidsynth_reverb": reverb == "1",
                "sample_rate_hz": SAMPLE_RATE,
                "audio_format": opts["audio_format"] if opts.get("stage", "full") == "full" else None, "segment_samples": SEGMENT_SAMPLES,
                "excerpt_segments": EXCERPT_SEGMENTS, "gap_segments": GAP_SEGMENTS,
                "n_excerpts": n_ex, "audio_s": n_ex * EXCERPT_SEGMENTS * SEGMENT_S,
                "excerpts": meta_excerpts, "seed": opts["seed"], "codec_args": opts["codec_args"]}
        if opts["tunescribe"]:
            arrays.update(tokens_for_job(opts["tunescribe"], midi_path, opts["codec_args"], n_ex))
            meta["tokens"] = True
        else:
            meta["tokens"] = False
        meta["render_wall_s"] = round(time.time() - t_start, 3)
        cpu1 = os.times()
        cpu_s = sum(cpu1[:4]) - sum(cpu0[:4])  # this worker + its fluidsynth/tunescribe children
        meta["render_cpu_s"] = round(cpu_s, 3)
        meta["synth_wall_s"] = round(synth_s, 3)
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        os.makedirs(out_dir, exist_ok=True)
        tmp_npz = os.path.join(out_dir, ".%s.tmp.npz" % job["key"])
        np.savez(tmp_npz, **arrays)
        os.replace(tmp_npz, final)
        with open(final[:-4] + ".json.tmp", "w") as f:
            json.dump(summary_line(meta, final, opts["out"]), f)
        os.replace(final[:-4] + ".json.tmp", final[:-4] + ".json")
        return {"key": job["key"], "audio_s": meta["audio_s"], "wall_s": meta["render_wall_s"],
                "synth_s": synth_s, "cpu_s": cpu_s, "bytes": os.path.getsize(final)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def synthesize_audio(midi_path, soundfont, reverb, n_ex, tmp, fluidsynth="fluidsynth"):
    """FluidSynth -> excerpts (gaps removed), each peak-normalised to 0.9 -> (float32, peaks, wall s).
    Raw float output, so reading it needs numpy only."""
    raw_path = os.path.join(tmp, "out.raw")
    t_synth = time.time()
    subprocess.run([fluidsynth, "-ni", "-q", "-g", "0.4", "-r", str(SAMPLE_RATE), "-R", "1" if reverb else "0",
                    "-C", "1", "-o", "synth.polyphony=256", "-O", "float", "-T", "raw", "-E", "little",
                    "-F", raw_path, soundfont, midi_path], check=True, capture_output=True)
    synth_s = time.time() - t_synth
    audio = np.fromfile(raw_path, dtype="<f4").reshape(-1, 2).mean(axis=1)
    need = n_ex * (EXCERPT_SEGMENTS + GAP_SEGMENTS) * SEGMENT_SAMPLES
    if len(audio) < need:
        audio = np.pad(audio, (0, need - len(audio)))
    pieces, peaks = [], []
    for i in range(n_ex):
        s0 = i * (EXCERPT_SEGMENTS + GAP_SEGMENTS) * SEGMENT_SAMPLES
        x = audio[s0:s0 + EXCERPT_SEGMENTS * SEGMENT_SAMPLES]
        peak = float(np.abs(x).max())
        if peak > 0:
            x = x * (0.9 / peak)   # level is augmented at training time
        peaks.append(round(peak, 5))
        pieces.append(x)
    return np.concatenate(pieces).astype(np.float32), peaks, synth_s


def encode_audio(excerpt_audio, audio_format):
    """-> {"audio": FLAC/Ogg bytes} or {"audio_pcm16": int16 samples} (no soundfile needed)."""
    if audio_format == "pcm16" or sf is None:
        return {"audio_pcm16": np.round(np.clip(excerpt_audio, -1, 1) * 32767).astype(np.int16)}
    buf = io.BytesIO()
    if audio_format == "vorbis":
        # written in blocks: libsndfile's Vorbis encoder crashes on very large single writes
        with sf.SoundFile(buf, "w", SAMPLE_RATE, 1, format="OGG", subtype="VORBIS") as f:
            for i in range(0, len(excerpt_audio), 1 << 15):
                f.write(excerpt_audio[i:i + (1 << 15)])
    else:
        sf.write(buf, excerpt_audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return {"audio": np.frombuffer(buf.getvalue(), dtype=np.uint8)}


def iter_shard_files(root, suffix):
    """(split, folder, file name) of every shard file with this suffix, in sorted order."""
    for split in sorted(os.listdir(root)):
        d = os.path.join(root, split)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if name.endswith(suffix) and not name.startswith("."):
                yield split, d, name


def load_shard(path):
    z = dict(np.load(path))
    return z, json.loads(z["meta"].tobytes().decode())


def save_shard(path, z, meta, root):
    """Rewrite a shard atomically with updated meta, and its manifest line beside it."""
    z["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    d, name = os.path.split(path)
    tmp_npz = os.path.join(d, ".%s.tmp.npz" % name[:-4])
    np.savez(tmp_npz, **z)
    os.replace(tmp_npz, path)
    with open(path[:-4] + ".json", "w") as f:
        json.dump(summary_line(meta, path, root), f)


def synthesize_shards(root, opts):
    """Second stage of `--stage midi`: render the stored MIDI of shards that have no audio yet
    (on any machine with numpy and a fluidsynth binary: no mido, soundfile or tunescribe needed)."""
    done = 0
    audio_total = 0.0
    t0 = time.time()
    for split, d, name in iter_shard_files(root, ".npz"):
        path = os.path.join(d, name)
        z, meta = load_shard(path)
        if meta.get("audio_format"):
            continue
        sfont = opts.get("soundfont") or meta["soundfont_path"]
        if split == "train":
            check_training_soundfont(sfont)
        tmp = tempfile.mkdtemp(prefix="synth-", dir=opts.get("tmp") or None)
        try:
            midi_path = os.path.join(tmp, "job.mid")
            with open(midi_path, "wb") as f:
                f.write(z["midi"].tobytes())
            x, peaks, synth_s = synthesize_audio(midi_path, sfont, meta["fluidsynth_reverb"],
                                                 meta["n_excerpts"], tmp, opts.get("fluidsynth") or "fluidsynth")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        enc = encode_audio(x, opts["audio_format"])
        z.update(enc)
        for e, p in zip(meta["excerpts"], peaks):
            e["peak_before_norm"] = p
        meta["audio_format"] = "pcm16" if "audio_pcm16" in enc else opts["audio_format"]
        meta["soundfont"] = os.path.basename(sfont)
        meta["synth_wall_s"] = round(synth_s, 3)
        save_shard(path, z, meta, root)
        done += 1
        audio_total += meta["audio_s"]
        print("\r[synthesize] %d shards  %.0f s audio  %.1f audio-s/s" % (
            done, audio_total, audio_total / max(time.time() - t0, 1e-9)), end="", file=sys.stderr)
    print(file=sys.stderr)
    write_manifest(root)
    return done


def tokens_for_job(tunescribe_bin, midi_path, codec_args, n_ex):
    duration_s = n_ex * (EXCERPT_SEGMENTS + GAP_SEGMENTS) * SEGMENT_S
    segs, trunc, doc = export_tokens(tunescribe_bin, midi_path, codec_args, duration_s)
    flat, offsets, flags = [], [0], []
    for i in range(n_ex):
        s0 = i * (EXCERPT_SEGMENTS + GAP_SEGMENTS)
        for s in range(s0, s0 + EXCERPT_SEGMENTS):
            if s >= len(segs):
                raise RuntimeError("render: %s: codec returned %d segments, need %d" % (midi_path, len(segs), s + 1))
            flat += segs[s]
            offsets.append(len(flat))
            flags.append(trunc[s])
    info = {k: doc.get(k) for k in ("vocab_size", "embedding_rows", "codec", "num_notes", "canonicalized",
                                    "truncated_segments")}
    return {"tokens": np.asarray(flat, dtype=np.int32), "token_offsets": np.asarray(offsets, dtype=np.int64),
            "truncated": np.asarray(flags, dtype=np.uint8),
            "codec_info": np.frombuffer(json.dumps(info).encode(), dtype=np.uint8)}


def summary_line(meta, path, root):
    return {"shard": os.path.relpath(path, root), "split": meta["split"], "key": meta["key"],
            "soundfont": meta["soundfont"], "n_excerpts": meta["n_excerpts"],
            "n_segments": meta["n_excerpts"] * meta["excerpt_segments"], "audio_s": meta["audio_s"],
            "tokens": meta["tokens"], "bytes": os.path.getsize(path),
            "pieces": sorted(set(e["piece"] for e in meta["excerpts"]))}


def write_manifest(root):
    lines = []
    for _, d, name in iter_shard_files(root, ".json"):
        with open(os.path.join(d, name)) as f:
            lines.append(f.read().strip())
    tmp = os.path.join(root, "manifest.jsonl.tmp")
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + ("\n" if lines else ""))
    os.replace(tmp, os.path.join(root, "manifest.jsonl"))
    return len(lines)


def retokenize(root, tunescribe_bin, codec_args):
    n = 0
    for _, d, name in iter_shard_files(root, ".npz"):
        path = os.path.join(d, name)
        z, meta = load_shard(path)
        with tempfile.TemporaryDirectory() as tmp:
            mp_ = os.path.join(tmp, "job.mid")
            with open(mp_, "wb") as f:
                f.write(bytes(z["midi"]))
            z.update(tokens_for_job(tunescribe_bin, mp_, codec_args, meta["n_excerpts"]))
        meta["tokens"] = True
        meta["codec_args"] = list(codec_args)
        save_shard(path, z, meta, root)
        n += 1
    write_manifest(root)
    return n


def _worker(args):
    job, opts = args
    try:
        return render_job(job, opts)
    except Exception as e:  # report and go on; the job is retried on the next run
        return {"key": job["key"], "error": "%s: %s" % (type(e).__name__, e)}


def main():
    ap = argparse.ArgumentParser(description="render augmented training shards (see module docstring)")
    ap.add_argument("--split", choices=["train", "validation"], default="train")
    ap.add_argument("--out", default=os.path.join(REPO, "data", "shards"))
    ap.add_argument("--shared", default=None)
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2)))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--variants", type=int, default=1, help="augmented renderings of every file")
    ap.add_argument("--excerpts-per-file", type=int, default=2)
    ap.add_argument("--job-excerpts", type=int, default=8, help="excerpts per job (one fluidsynth call)")
    ap.add_argument("--limit-pieces", type=int, default=0, help="only N pieces of the split (deterministic)")
    ap.add_argument("--limit-jobs", type=int, default=0)
    ap.add_argument("--mix-prob", type=float, default=0.3)
    ap.add_argument("--mix-prob-validation", type=float, default=0.0)
    ap.add_argument("--piano-prob", type=float, default=0.0,
                    help="train split: probability that every part of an excerpt is played on a piano")
    ap.add_argument("--tunescribe", default=None, help="tunescribe binary for targets (default build/bin/tunescribe)")
    ap.add_argument("--no-tokens", action="store_true", help="store MIDI only; run --retokenize later")
    ap.add_argument("--codec-arg", action="append", default=[], help="extra argument for `tunescribe tokens`")
    ap.add_argument("--retokenize", metavar="ROOT", help="recompute targets of existing shards")
    ap.add_argument("--tmp", default=None)
    ap.add_argument("--soundfont", default=None,
                    help="TESTING ONLY: use this soundfont for every job (the smoke test renders its tiny "
                         "validation split with TimGM6mb to stay fast; real validation uses MuseScore General)")
    ap.add_argument("--train-soundfont", action="append", default=[], metavar="SF2",
                    help="training soundfont (repeatable; default: %s). E.g. Debian csound-soundfont's "
                         "/usr/share/sounds/sf2/sf_GMbank.sf2 for a third set of instruments"
                         % ", ".join(os.path.basename(p) for p in TRAIN_SOUNDFONTS))
    ap.add_argument("--audio-format", choices=["flac", "vorbis", "pcm16"], default="flac",
                    help="flac: lossless, ~78 MB per audio hour; vorbis: lossy, ~17 MB per hour; "
                         "pcm16: raw int16, 115 MB per hour, needs no soundfile to read")
    ap.add_argument("--stage", choices=["full", "midi"], default="full",
                    help="midi: augmented MIDI + codec targets only (~0.1 MB per audio hour); render the audio "
                         "later, e.g. on the training machine, with --synthesize")
    ap.add_argument("--synthesize", metavar="ROOT", help="render the audio of --stage midi shards under ROOT")
    ap.add_argument("--fluidsynth", default=None, help="fluidsynth binary (default: fluidsynth on PATH)")
    args = ap.parse_args()
    # fluidsynth renders silence for a soundfont it cannot load, which would pair silent audio with
    # full note targets: refuse a missing or reserved soundfont before any work.
    for sfont in args.train_soundfont + ([args.soundfont] if args.soundfont else []):
        if not os.path.isfile(sfont):
            sys.exit("render: soundfont %s: no such file" % sfont)
    for sfont in args.train_soundfont:
        try:
            check_training_soundfont(sfont)
        except ValueError as e:
            sys.exit(str(e))

    if args.synthesize:
        opts = {"soundfont": args.soundfont, "fluidsynth": args.fluidsynth, "tmp": args.tmp,
                "audio_format": args.audio_format if sf is not None else "pcm16"}
        print("synthesized %d shards" % synthesize_shards(args.synthesize, opts))
        return
    tbin = "" if args.no_tokens else (args.tunescribe or default_tunescribe_bin())
    if args.retokenize:
        if not tbin:
            sys.exit("render: no tunescribe binary for --retokenize")
        print("retokenized %d shards" % retokenize(args.retokenize, tbin, args.codec_arg))
        return
    if not args.no_tokens and not tbin:
        sys.exit("render: build/bin/tunescribe not found (build it, pass --tunescribe, or use --no-tokens)")
    shared = args.shared or split_mod.default_shared_dir()
    pieces = split_mod.list_pieces(shared)
    jobs = plan_jobs(args.split, pieces, args.excerpts_per_file, args.variants, args.job_excerpts, args.seed,
                     args.limit_pieces)
    if args.limit_jobs:
        jobs = jobs[:args.limit_jobs]
    opts = {"out": args.out, "seed": args.seed, "shared": shared, "tunescribe": tbin,
            "codec_args": args.codec_arg, "mix_prob": args.mix_prob,
            "mix_prob_validation": args.mix_prob_validation, "tmp": args.tmp,
            "piano_prob": args.piano_prob, "train_soundfonts": args.train_soundfont,
            "audio_format": args.audio_format, "soundfont": args.soundfont, "stage": args.stage,
            "fluidsynth": args.fluidsynth}
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    done = audio = synth = cpu = 0.0
    nbytes = 0
    errors = 0
    work = [(j, opts) for j in jobs]
    if args.workers <= 1:
        results = map(_worker, work)
    else:
        pool = mp.Pool(args.workers)
        results = pool.imap_unordered(_worker, work)
    for r in results:
        if "error" in r:
            errors += 1
            print("render: job %s failed: %s" % (r["key"], r["error"]), file=sys.stderr)
            continue
        done += 1
        if not r.get("skipped"):
            audio += r["audio_s"]
            synth += r["synth_s"]
            cpu += r["cpu_s"]
            nbytes += r["bytes"]
        el = time.time() - t0
        print("\r[render] %d/%d jobs  %.0f s audio  %.1f audio-s/s  %.1f MB" % (
            done, len(jobs), audio, audio / max(el, 1e-9), nbytes / 1e6), end="", file=sys.stderr)
    print(file=sys.stderr)
    n = write_manifest(args.out)
    el = time.time() - t0
    stats = {"jobs": len(jobs), "errors": errors, "audio_s": round(audio, 1), "wall_s": round(el, 1),
             "workers": args.workers, "audio_s_per_s": round(audio / max(el, 1e-9), 2),
             "audio_s_per_s_per_worker": round(audio / max(el, 1e-9) / args.workers, 2),
             "cpu_s": round(cpu, 1), "audio_s_per_cpu_s": round(audio / max(cpu, 1e-9), 1),
             "bytes": nbytes, "mb_per_audio_hour": round(nbytes / 1e6 / max(audio / 3600, 1e-9), 1),
             "manifest_lines": n}
    print(json.dumps(stats))
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
