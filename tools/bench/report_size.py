#!/usr/bin/env python3
"""Size of `tunescribe score --report` for a large batch (docs/outputs.md).

Usage: tools/bench/report_size.py TUNESCRIBE_BIN WORK_DIR [N_FILES [SECONDS [NOTES_PER_S]]]
Writes N_FILES pairs of mir_eval .txt files (default 500 pieces of 30 s at 8 reference notes a
second; the estimate hits ~80 % within the onset window, ~10 % at a wrong pitch, plus ~10 %
false alarms), runs `score --ref-dir --est-dir --report` and prints the note counts, the report's
size and the time taken.
"""
import os
import random
import subprocess
import sys
import time


def main():
    binary, work = sys.argv[1], os.path.abspath(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 30.0
    per_s = float(sys.argv[5]) if len(sys.argv) > 5 else 8.0
    rng = random.Random(500)
    ref_dir, est_dir = os.path.join(work, "ref"), os.path.join(work, "est")
    os.makedirs(ref_dir, exist_ok=True)
    os.makedirs(est_dir, exist_ok=True)
    hz = lambda m: 440.0 * 2 ** ((m - 69) / 12.0)
    n_ref = n_est = 0
    for k in range(n):
        ref, est = [], []
        for i in range(int(seconds * per_s)):
            on = i / per_s + rng.uniform(0, 0.05)
            off = on + rng.choice([0.12, 0.25, 0.5, 1.0])
            p = rng.randint(36, 96)
            ref.append((on, off, p))
            r = rng.random()
            if r < 0.8:
                est.append((max(0.0, on + rng.uniform(-0.04, 0.04)), off + rng.uniform(-0.1, 0.1), p))
            elif r < 0.9:
                est.append((on, off, p + rng.choice([-12, -1, 1, 12])))
            if rng.random() < 0.1:
                t = rng.uniform(0, seconds)
                est.append((t, t + 0.3, rng.randint(36, 96)))
        n_ref += len(ref)
        n_est += len(est)
        for path, notes in ((os.path.join(ref_dir, "p%04d.txt" % k), ref), (os.path.join(est_dir, "p%04d.txt" % k), est)):
            with open(path, "w") as f:
                f.writelines("%.4f %.4f %.3f\n" % (a, max(b, a + 0.03), hz(p)) for a, b, p in notes)
    report = os.path.join(work, "report.html")
    t0 = time.time()
    r = subprocess.run([binary, "--quiet", "score", "--ref-dir", ref_dir, "--est-dir", est_dir, "--report", report,
                        "--force"], capture_output=True, text=True)
    dt = time.time() - t0
    if r.returncode != 0:
        print(r.stderr)
        return 1
    size = os.path.getsize(report)
    print("%d pairs of %.0f s, %d reference + %d estimated notes: report %d bytes (%.2f MB, %.1f bytes/note), %.1f s"
          % (n, seconds, n_ref, n_est, size, size / 1e6, size / (n_ref + n_est), dt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
