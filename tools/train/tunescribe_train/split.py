#!/usr/bin/python3
"""Train/validation split of the training corpora, by PIECE (never by segment).

Pieces:
  asap:<folder>        all performances of one ASAP piece (metadata.csv `folder`), e.g.
                       asap:Chopin/Ballades/1 -> every *.mid performance listed for that folder
                       (the score MIDI `midi_score.mid` is never used)
  pop909:<NNN>         one POP909 song (tracks MELODY, BRIDGE, PIANO)
  nottingham:<stem>    one Nottingham tune (top-level MIDI/<stem>.mid: melody + chords tracks)

Rule (deterministic, independent of file order, machine and Python version):
  u = int(sha256("tunescribe-split-v1:" + piece_id)[:16 hex], 16) / 2**64
  split = "validation" if u < VALIDATION_FRACTION else "train"
Bach chorales are absent from the corpora; any piece whose id or file names mention
"chorale"/"choral" is excluded outright (never train on them).

Usage:
  /usr/bin/python3 tools/train/split.py [--shared ../shared] [--write tools/train/split.json]
  /usr/bin/python3 tools/train/split.py --check     # verify split.json matches the rule
Library use: list_pieces(shared_dir) -> [Piece], load_split(path) -> {piece_id: split}.
"""
import argparse
import csv
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Dict, List

SPLIT_SALT = "tunescribe-split-v1:"
VALIDATION_FRACTION = 0.07
from . import REPO, TOOLS_DIR
DEFAULT_SPLIT_JSON = os.path.join(TOOLS_DIR, "split.json")


def default_shared_dir() -> str:
    """../shared relative to the repository root, or /work/shared."""
    repo = REPO
    for cand in (os.path.join(repo, "..", "shared"), os.path.join(repo, "shared"), "/work/shared"):
        if os.path.isdir(os.path.join(cand, "corpora")):
            return os.path.normpath(cand)
    return os.path.normpath(os.path.join(repo, "..", "shared"))


@dataclass
class Piece:
    piece_id: str           # e.g. "pop909:001"
    corpus: str             # asap | pop909 | nottingham
    files: List[str] = field(default_factory=list)  # absolute MIDI paths (ASAP: one per performance)


def split_of(piece_id: str, validation_fraction: float = VALIDATION_FRACTION) -> str:
    digest = hashlib.sha256((SPLIT_SALT + piece_id).encode("utf-8")).hexdigest()
    u = int(digest[:16], 16) / float(2 ** 64)
    return "validation" if u < validation_fraction else "train"


def _is_chorale(text: str) -> bool:
    t = text.lower()
    return "chorale" in t or "choral" in t


def list_pieces(shared_dir: str = None) -> List[Piece]:
    shared_dir = shared_dir or default_shared_dir()
    corpora = os.path.join(shared_dir, "corpora")
    pieces: Dict[str, Piece] = {}

    # ASAP: group performances by folder (= piece).
    asap = os.path.join(corpora, "asap")
    meta = os.path.join(asap, "metadata.csv")
    if os.path.exists(meta):
        with open(meta, newline="") as f:
            for row in csv.DictReader(f):
                perf = row["midi_performance"]
                path = os.path.join(asap, perf)
                if not perf or not os.path.exists(path):
                    continue
                pid = "asap:" + row["folder"]
                if _is_chorale(pid) or _is_chorale(perf):
                    continue
                pieces.setdefault(pid, Piece(pid, "asap")).files.append(path)

    # POP909: one song per numbered folder.
    pop = os.path.join(corpora, "pop909", "POP909")
    if os.path.isdir(pop):
        for song in sorted(os.listdir(pop)):
            path = os.path.join(pop, song, song + ".mid")
            if os.path.exists(path):
                pid = "pop909:" + song
                pieces[pid] = Piece(pid, "pop909", [path])

    # Nottingham: top-level MIDI/<tune>.mid (melody + chords); melody/ and chords/ are splits of it.
    nott = os.path.join(corpora, "nottingham", "MIDI")
    if os.path.isdir(nott):
        for name in sorted(os.listdir(nott)):
            path = os.path.join(nott, name)
            if name.endswith(".mid") and os.path.isfile(path):
                pid = "nottingham:" + name[:-4]
                if _is_chorale(pid):
                    continue
                pieces[pid] = Piece(pid, "nottingham", [path])

    for p in pieces.values():
        p.files.sort()
    return [pieces[k] for k in sorted(pieces)]


def build_split(pieces: List[Piece]) -> dict:
    table = {p.piece_id: split_of(p.piece_id) for p in pieces}
    summary = {}
    for p in pieces:
        s = summary.setdefault(p.corpus, {"train": 0, "validation": 0, "train_files": 0, "validation_files": 0})
        s[table[p.piece_id]] += 1
        s[table[p.piece_id] + "_files"] += len(p.files)
    return {
        "format": "tunescribe-split",
        "version": 1,
        "rule": "validation iff int(sha256('%s' + piece_id)[:16], 16) / 2**64 < %g" % (SPLIT_SALT, VALIDATION_FRACTION),
        "summary": summary,
        "pieces": table,
    }


def load_split(path: str = DEFAULT_SPLIT_JSON) -> Dict[str, str]:
    with open(path) as f:
        return json.load(f)["pieces"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=None, help="shared/ directory (default: ../shared)")
    ap.add_argument("--write", default=DEFAULT_SPLIT_JSON, help="output JSON (default: tools/train/split.json)")
    ap.add_argument("--check", action="store_true", help="verify the committed split.json instead of writing")
    args = ap.parse_args()

    pieces = list_pieces(args.shared)
    if not pieces:
        print("split: no corpora found under %s" % (args.shared or default_shared_dir()), file=sys.stderr)
        return 1
    doc = build_split(pieces)
    if args.check:
        committed = load_split(args.write)
        bad = [k for k, v in doc["pieces"].items() if committed.get(k) != v]
        extra = [k for k in committed if k not in doc["pieces"]]
        if bad or extra:
            print("split: %d pieces disagree, %d unknown (e.g. %s)" % (len(bad), len(extra), (bad + extra)[:3]),
                  file=sys.stderr)
            return 1
        print("split: %s matches the rule (%d pieces)" % (args.write, len(committed)))
        return 0
    tmp = args.write + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, args.write)
    for corpus, s in sorted(doc["summary"].items()):
        n = s["train"] + s["validation"]
        print("%-10s pieces %4d  train %4d  validation %3d (%.1f%%)  files train %4d validation %3d" % (
            corpus, n, s["train"], s["validation"], 100.0 * s["validation"] / n, s["train_files"], s["validation_files"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
