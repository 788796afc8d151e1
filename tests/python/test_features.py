#!/usr/bin/python3
"""Parity and behaviour tests of tools/train/tunescribe_train/features.py (the trainer's torch log-mel).

  PYTHONPATH=tools/train /usr/bin/python3 tests/python/test_features.py   # exit 0 = pass (CTest: FeaturesPython)
  PYTHONPATH=tools/train /usr/bin/python3 tests/python/test_features.py --dump-clip X.wav --out Y.f32
      writes the torch log-mel (float32 LE, all segments' valid rows) of X.wav for a C++-side check.

Checks:
  1. against the independent numpy reference tools/fixtures/logmel_ref.py (frontend branch) on
     random noise, a chirp and silence, float64 FFT: |diff| <= 1e-4; float32 FFT: <= 1e-2 (float32 round-off on low-energy frames, e.g. 2e-3 on the chirp tail);
  2. against shared/fixtures/mt3/logmel.npy (an MT3 port's output on clip.wav), where the
     reference is above round-off (> -15; the clip's one-LSB DC offset makes the other rows
     ~1e-19 round-off noise in any FFT): |diff| <= 1e-3 (the fixture's suggested tolerance);
  3. behaviour: digital silence -> ln(1e-5) everywhere; ceil(N/128) frames; per-segment computation
     (changing the next segment's samples never changes this segment); DC row zero; the mel
     filters 1 and 10 are all-zero (spec §1.2); bf16 autocast on the caller's side does not change
     the result.
  4. the committed C++ front-end fixtures (tests/data/frontend, the ground truth of
     tests/frontend_test.cpp): torch log-mel of the same clips <= 1e-4.
Parts whose inputs are absent are reported as SKIP.
"""
import argparse
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
from tunescribe_train import features as F  # noqa: E402
from tunescribe_train import split as split_mod  # noqa: E402

failures = []


def check(name, ok, detail=""):
    print("%s %s %s" % ("PASS" if ok else "FAIL", name, detail))
    if not ok:
        failures.append(name)


def test_reference():
    ref_dir = os.path.join(REPO, "tools", "fixtures")
    if not os.path.exists(os.path.join(ref_dir, "logmel_ref.py")):
        print("SKIP reference parity (tools/fixtures/logmel_ref.py absent)")
        return
    sys.path.insert(0, ref_dir)
    import logmel_ref as R
    check("mel matrix == reference", np.array_equal(R.MEL, F.mel_matrix_np()),
          "max|d|=%g" % np.abs(R.MEL - F.mel_matrix_np()).max())
    rng = np.random.default_rng(7)
    t = np.arange(40000) / 16000.0
    clips = {
        "noise": 0.1 * rng.standard_normal(32768),
        "chirp": 0.5 * np.sin(2 * np.pi * (50 * t + 3000 * t * t)) + 0.003 * rng.standard_normal(len(t)),
        "short": 0.2 * rng.standard_normal(1000),
    }
    for name, x in clips.items():
        a = R.logmel(x)
        for dt, tol in ((torch.float64, 1e-4), (torch.float32, 1e-2)):
            b = F.logmel(torch.from_numpy(x), dt).numpy()
            d = float(np.abs(a - b).max()) if a.shape == b.shape else float("inf")
            check("reference %s %s" % (name, str(dt).split(".")[-1]), d <= tol, "max|d|=%.3g (tol %g)" % (d, tol))


def test_cpp_fixtures():
    """The committed front-end fixtures that tests/frontend_test.cpp checks the C++ LogMel against
    (tests/data/frontend): the torch log-mel of the same clips must match them too, so the trainer's
    features and the C++ front end agree through a common reference."""
    d = os.path.join(REPO, "tests", "data", "frontend")
    if not os.path.exists(os.path.join(d, "fixtures.json")):
        print("SKIP C++ front-end fixtures (tests/data/frontend absent)")
        return
    import json
    import soundfile as sf
    meta = json.load(open(os.path.join(d, "fixtures.json")))
    for clip in meta["clips"]:
        x, sr = sf.read(os.path.join(d, clip["file"]), dtype="float64")
        ref = np.fromfile(os.path.join(d, clip["logmel"]), dtype="<f4").reshape(-1, meta["n_mels"])
        x = np.concatenate([x, np.zeros(128 - len(x) % 128)])          # mt3.md §1.3.1
        seg = clip["segment_frames"] * 128
        worst = 0.0
        for k, s in enumerate(clip["segments"]):
            got = F.logmel(torch.from_numpy(x[k * seg:(k + 1) * seg]), torch.float64).numpy()
            want = ref[s["row_offset"]:s["row_offset"] + s["n_frames"]]
            worst = max(worst, float(np.abs(got - want).max()) if got.shape == want.shape else float("inf"))
        check("C++ fixture %s" % clip["file"], worst <= 1e-4, "max|d|=%.3g over %d segments" % (
            worst, len(clip["segments"])))


def test_mt3_fixture():
    shared = split_mod.default_shared_dir()
    wav = os.path.join(shared, "fixtures", "mt3", "clip.wav")
    if not os.path.exists(wav):
        print("SKIP MT3 fixture (shared/fixtures/mt3 absent)")
        return
    import soundfile as sf
    x, sr = sf.read(wav, dtype="float32")
    x = np.pad(x, (0, 128 - len(x) % 128))          # mt3.md §1.3.1
    ref = np.load(os.path.join(shared, "fixtures", "mt3", "logmel.npy"))
    got = F.segment_logmel(torch.from_numpy(x), fft_dtype=torch.float64).numpy()
    check("fixture shape", got.shape == ref.shape, str(got.shape))
    mask = ref > -15.0
    d = float(np.abs(got - ref)[mask].max())
    check("fixture log-mel (ref > -15)", d <= 1e-3, "max|d|=%.3g over %d values" % (d, int(mask.sum())))
    check("fixture padded rows are 0.0", np.all(got[1, 245:] == 0.0))


def test_behaviour():
    z = F.logmel(torch.zeros(32768))
    check("silence -> ln(1e-5)", bool(torch.all(z == float(np.log(np.float32(1e-5))))) and z.shape == (256, 512))
    for n in (1, 127, 128, 129, 32768, 1000):
        check("frames(N=%d)" % n, F.logmel(torch.zeros(n)).shape[0] == -(-n // 128))
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.standard_normal(2 * 32768).astype(np.float32))
    y = x.clone()
    y[32768:] = 0.7
    a = F.segment_logmel(x)[0]
    b = F.segment_logmel(y)[0]
    check("per-segment independence", torch.equal(a, b))
    W = F.mel_matrix_np()
    check("DC row zero", np.all(W[0] == 0))
    zero_cols = [j for j in range(W.shape[1]) if not np.any(W[:, j])]
    check("all-zero filters == [1, 10]", zero_cols == [1, 10], str(zero_cols))
    check("peak <= 1", float(W.max()) <= 1.0)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        c = F.logmel(x[:32768])
    check("autocast-safe", c.dtype == torch.float32 and torch.equal(c, F.logmel(x[:32768])))


def dump_clip(path, out):
    import soundfile as sf
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    assert sr == 16000, "16 kHz input expected"
    F.logmel(torch.from_numpy(x.astype(np.float64)), torch.float64).numpy().astype("<f4").tofile(out)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump-clip")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.dump_clip:
        dump_clip(args.dump_clip, args.out)
        sys.exit(0)
    torch.set_num_threads(1)
    test_behaviour()
    test_mt3_fixture()
    test_reference()
    test_cpp_fixtures()
    print("%d failure(s)" % len(failures))
    sys.exit(1 if failures else 0)
