#!/usr/bin/python3
"""Tests of tools/train/tunescribe_train/hconv.py: labels and the frames decoder agree on the time convention.

  PYTHONPATH=tools/train /usr/bin/python3 tests/python/test_hconv.py     # exit 0 = pass (CTest: HconvPython)

1. round trip: random notes over several segments -> frame_labels per segment -> posteriors equal
   to the labels -> decode_frames -> the same notes: pitch, velocity (+-1), program family, onset
   within half a frame (+ the documented frame-0 rule), offset within one frame. A shift anywhere
   between labels and decoding (the kind of bug that makes a model's onsets systematically early)
   fails here.
2. the log-frequency filterbank: every column sums to 1 below Nyquist; a pure tone's strongest bin
   is its own pitch's bin; the harmonic stack puts harmonic h of key p at key p's column.
3. LogFreq is computed per segment: the next segment's samples never change this one.
4. grow_from: a wider/deeper model initialised from a small one computes the same heads and the
   same T5 encoder output (exactly with new_scale 0, closely with the default), and its new
   channels are live (non-zero gradients).
"""
import math
import sys

import numpy as np
import torch

from tunescribe_train import hconv as H

FE = H.DEFAULT_FRONTEND


def check(cond, msg):
    if not cond:
        print("FAIL: " + msg)
        sys.exit(1)


def test_round_trip():
    rng = np.random.default_rng(3)
    period, c0, valid = H.frame_geometry(FE)
    seg_len = FE["segment_frames"] * FE["hop_length"] / FE["sample_rate_hz"]
    S = 5
    notes = []
    for p in range(21, 109, 3):
        t = rng.uniform(0.0, 0.5)
        while t < S * seg_len - 0.4:
            d = rng.uniform(0.1, 0.6)
            notes.append((t, t + d, p, int(rng.integers(20, 127)), int(rng.integers(0, 128))))
            t += d + rng.uniform(0.1, 0.8)
    fam_n = FE and H.DEFAULT_HCONV["num_families"]
    probs = np.zeros((S, 4 + fam_n, FE["segment_frames"], H.NUM_PITCHES), np.float32)
    for s in range(S):
        lab = H.frame_labels(notes, s * seg_len, FE)
        probs[s, 0], probs[s, 1], probs[s, 2], probs[s, 3] = lab["onset"], lab["frame"], lab["offset"], lab["velocity"]
        fam = lab["family"]
        for f in range(fam_n):
            probs[s, 4 + f] = np.where(fam == f, 5.0, 0.0)
    est = H.decode_frames(probs, FE, 0.5, 0.5, 0.0)
    check(len(est) == len(notes), "decoded %d notes, expected %d" % (len(est), len(notes)))
    ref = sorted(notes, key=lambda n: (n[2], n[0]))
    est = sorted(est, key=lambda n: (n[2], n[0]))
    worst_on = worst_off = 0.0
    for r, e in zip(ref, est):
        check(r[2] == e[2], "pitch %d != %d" % (e[2], r[2]))
        t_rel = r[0] - math.floor(r[0] / seg_len) * seg_len
        tol = ((c0 + period / 2) / 2 + 1e-6) if t_rel < c0 + period / 2 else period / 2 + 1e-6
        if t_rel > c0 + (valid - 0.5) * period:  # the segment's last half frame is clipped to its last valid frame
            tol = period + 1e-6
        worst_on = max(worst_on, abs(e[0] - r[0]))
        check(abs(e[0] - r[0]) <= tol, "onset %.4f vs %.4f (pitch %d)" % (e[0], r[0], r[2]))
        check(abs(e[3] - r[3]) <= 1, "velocity %d vs %d" % (e[3], r[3]))
        check(e[4] == H.FAMILY_PROGRAMS[r[4] // 8], "program %d for family of %d" % (e[4], r[4]))
        # offsets: within a frame, except where the note runs over a segment join (frames between
        # segments' last valid centre and the next segment's first are not observed)
        worst_off = max(worst_off, abs(e[1] - r[1]))
        check(abs(e[1] - r[1]) <= 2.5 * period + (c0 + period if (r[1] % seg_len) > seg_len - c0 - period or
                                                   (r[1] % seg_len) < c0 + period else 0),
              "offset %.4f vs %.4f (pitch %d)" % (e[1], r[1], r[2]))
    # the median onset error over notes away from segment starts is ~0 (no systematic shift)
    errs = [e[0] - r[0] for r, e in zip(ref, est) if (r[0] % seg_len) > c0 + period]
    check(abs(float(np.median(errs))) < 0.004, "median onset shift %.4f s" % float(np.median(errs)))
    print("round trip ok: %d notes, worst onset error %.1f ms, worst offset error %.1f ms, median shift %.1f ms" % (
        len(ref), worst_on * 1000, worst_off * 1000, float(np.median(errs)) * 1000))
    # velocity_loudness 1: velocities follow the features' peak at each note's start (here a
    # loudness that rises with pitch), keeping the head's mean; 0 or no features: the head's own.
    feats = np.full((S, FE["segment_frames"], FE["n_bins"]), -11.5, np.float32)
    for n in notes:
        b = int(round((n[2] - FE["min_midi"]) * FE["bins_per_semitone"]))
        feats[:, :, b] = -8.0 + 0.05 * n[2]
    same = H.decode_frames(probs, FE, 0.5, 0.5, 0.0, feats=feats, velocity_loudness=0.0)
    check([n[3] for n in same] == [n[3] for n in H.decode_frames(probs, FE, 0.5, 0.5, 0.0)], "weight 0 changed velocities")
    loud = H.decode_frames(probs, FE, 0.5, 0.5, 0.0, feats=feats, velocity_loudness=1.0)
    by_pitch = {}
    for n in loud:
        by_pitch.setdefault(n[2], set()).add(n[3])
    pitches = sorted(by_pitch)
    check(all(len(by_pitch[p]) == 1 for p in pitches), "one loudness per pitch gives one velocity per pitch")
    check(all(max(by_pitch[a]) <= min(by_pitch[b]) for a, b in zip(pitches, pitches[1:])),
          "velocities do not rise with loudness")
    check(abs(np.mean([n[3] for n in loud]) - np.mean([n[3] for n in same])) < 1.0, "the head's mean is not kept")


def test_filterbank():
    W = H.logfreq_matrix_np(FE)
    fc = H.midi_hz(FE["min_midi"] + np.arange(FE["n_bins"]) / FE["bins_per_semitone"])
    s = W.sum(0)
    check(np.allclose(s[fc < FE["sample_rate_hz"] / 2 - 20], 1.0, atol=1e-5), "filterbank columns do not sum to 1")
    lf = H.LogFreq(FE)
    seg = FE["segment_frames"] * FE["hop_length"]
    t = np.arange(seg) / FE["sample_rate_hz"]
    front = H.HarmonicFront(FE, H.DEFAULT_HCONV)
    for pitch in (45, 60, 69, 81):
        f0 = H.midi_hz(pitch)
        x = sum(0.3 / h * np.sin(2 * np.pi * f0 * h * t) for h in range(1, 6)).astype(np.float32)
        feats = lf(torch.from_numpy(x)[None])[0]
        best = int(feats[40].argmax())
        check(best == (pitch - FE["min_midi"]) * FE["bins_per_semitone"], "tone %d peaks at bin %d" % (pitch, best))
        st = front.stack(feats[None])[0]  # [H, T, 264]
        col = (pitch - H.MIN_PITCH) * FE["bins_per_semitone"] + 1
        for hi, h in enumerate(H.DEFAULT_HCONV["harmonics"]):
            if h in (1, 2, 3, 4):
                want = feats[40, int(round((pitch - FE["min_midi"]) * 3 + 36 * math.log2(h)))]
                check(float(st[hi, 40, col]) == float(want), "harmonic %s of %d misplaced" % (h, pitch))
    print("filterbank and harmonic stack ok")


def test_per_segment():
    lf = H.LogFreq(FE)
    seg = FE["segment_frames"] * FE["hop_length"]
    rng = np.random.default_rng(0)
    a = rng.standard_normal(2 * seg).astype(np.float32) * 0.1
    b = a.copy()
    b[seg:] = rng.standard_normal(seg) * 0.5
    fa = lf(torch.from_numpy(a.reshape(2, seg)))
    fb = lf(torch.from_numpy(b.reshape(2, seg)))
    check(torch.equal(fa[0], fb[0]), "segment 0 depends on segment 1's samples")
    check(fa.shape[1] == FE["segment_frames"], "frames per segment %d" % fa.shape[1])
    print("per-segment features ok")


def test_grow_from():
    from tunescribe_train import mt3_model as M
    torch.manual_seed(0)
    mc = M.ModelConfig(d_model=32, num_heads=2, head_dim=16, mlp_dim=64, num_encoder_layers=1,
                       num_decoder_layers=1, input_depth=1, vocab_size=64, max_positions=256)
    small_hc = dict(H.DEFAULT_HCONV, conv_channels=4, key_channels=6, res_layers=2)
    big_hc = dict(H.DEFAULT_HCONV, conv_channels=6, key_channels=9, res_layers=4)
    src = H.HConvModel(mc, FE, small_hc).eval()
    with torch.no_grad():  # make every source weight matter (the heads' bias starts at a constant)
        for p in src.parameters():
            p.add_(0.05 * torch.randn_like(p))
    feats = torch.randn(2, FE["segment_frames"], FE["n_bins"])
    with torch.no_grad():
        h0, m0 = src.front(feats)
        e0 = src.t5.encoder.continuous_inputs_projection(m0)
    for scale, tol in ((0.0, 1e-5), (0.01, 0.05)):
        torch.manual_seed(1)
        dst = H.grow_from(H.HConvModel(mc, FE, big_hc).eval(), src, new_scale=scale)
        with torch.no_grad():
            h1, m1 = dst.front(feats)
            e1 = dst.t5.encoder.continuous_inputs_projection(m1)
        dh = float((h1 - h0).abs().max() / h0.abs().max())
        de = float((e1 - e0).abs().max() / e0.abs().max())
        check(dh <= tol and de <= tol, "grow_from scale %g: heads differ by %.2g, memory projection by %.2g"
              % (scale, dh, de))
    dst.train()
    h, m = dst.front(feats)
    (h.sum() + dst.t5.encoder.continuous_inputs_projection(m).sum()).backward()
    check(float(dst.front.heads.weight.grad[:, 6:].abs().sum()) > 0, "grow_from: new key channels get no gradient")
    check(float(dst.front.res[3].weight.grad.abs().sum()) > 0, "grow_from: new residual layer gets no gradient")
    bad = dict(big_hc, key_channels=4)
    try:
        H.grow_from(H.HConvModel(mc, FE, bad), src)
        check(False, "grow_from accepted a narrower model")
    except ValueError:
        pass


if __name__ == "__main__":
    test_round_trip()
    test_filterbank()
    test_per_segment()
    test_grow_from()
    print("hconv tests passed")
