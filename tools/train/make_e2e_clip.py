#!/usr/bin/python3
"""The held-out clip of the default model's end-to-end CI test (tests/data/e2e/heldout-pop909-piano.*).

Music the model never trained on, played by instruments it never heard: the first POP909 song of the
validation split (tools/train/split.json), a 12 s window starting at its first note, every track
(melody, bridge, piano) played on GM piano 0, rendered with MuseScore General (reserved for
validation, never used in training) at 16 kHz mono. POP909 is MIT-licensed. Writes OUT.flac and
OUT.mid (the ground truth: exactly the notes rendered).

  make_e2e_clip.py tests/data/e2e/heldout-pop909-piano
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import soundfile as sf

from tunescribe_train import midi_notes  # noqa: E402
import render  # noqa: E402
from tunescribe_train import split as split_mod  # noqa: E402

WINDOW_S = 12.0
LEAD_S = 0.25        # silence before the first note
SAMPLE_RATE = 16000
SOUNDFONT = "/usr/share/sounds/sf3/MuseScore_General.sf3"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    table = split_mod.load_split()
    pieces = sorted(p for p, s in table.items() if s == "validation" and p.startswith("pop909:"))
    song = pieces[0].split(":")[1]
    path = os.path.join(split_mod.default_shared_dir(), "corpora", "pop909", "POP909", song, song + ".mid")
    tracks = midi_notes.read_tracks(path)
    first = min(n[0] for tr in tracks for n in tr.notes)
    a, b = first, first + WINDOW_S - LEAD_S - 0.5
    notes = []
    for tr in tracks:
        for on, off, p, v in tr.notes:
            if a <= on < b:
                notes.append([LEAD_S + on - a, LEAD_S + min(off, b) - a, p, v, 0, 0])
    # same-pitch overlaps (two tracks on one piano) would be one key: trimmed as in training data
    notes = [n[:4] for n in render.trim_overlaps(notes)]
    channels = [{"channel": 0, "controls": [(0.0, "program", 0, 0)], "notes": notes}]
    midi_notes.write_midi(out + ".mid", channels, WINDOW_S)
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "out.raw")
        subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.5", "-r", str(SAMPLE_RATE), "-R", "1", "-C", "0",
                        "-O", "float", "-T", "raw", "-E", "little", "-F", raw, SOUNDFONT, out + ".mid"],
                       check=True, capture_output=True)
        x = np.fromfile(raw, dtype="<f4").reshape(-1, 2).mean(axis=1)
    x = x[:int(WINDOW_S * SAMPLE_RATE)]
    x = x * (0.8 / max(1e-9, float(np.abs(x).max())))
    sf.write(out + ".flac", x, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    print("%s: POP909 song %s (%s), %d notes, %.1f s" % (out, song, pieces[0], len(notes), len(x) / SAMPLE_RATE))


if __name__ == "__main__":
    main()
