"""The harmonic conv front end of the tunescribe "hconv" models, in PyTorch (the C++ engine mirrors it).

What it does:
  LogFreq      log-frequency spectrogram: the same STFT as the MT3 front end (periodic Hann n_fft,
               hop, no centering, per segment, end zero-padded, magnitude) times a triangular
               filterbank with `bins_per_semitone` bins per semitone from MIDI `min_midi` up
               (logfreq_matrix_np), then ln(max(v, log_floor)).
  HarmonicFront  [B, T, n_bins] log-magnitude -> per-bin affine -> harmonic stack (the spectrum
               shifted by 12*bps*log2(h) bins for every harmonic h, 88 keys x bps bins kept) ->
               2 conv 3x3 + ReLU -> conv (1 x bps, stride bps) to one row per key -> residual
               dilated 3x3 convs (time dilations 1, 2, 4) -> 1x1 heads per key and frame:
               onset, frame, offset, velocity (sigmoid) and `num_families` GM instrument-family
               logits. Its memory features (conv channels x 88 + the 4 sigmoid heads x 88 per frame)
               are the T5 encoder's continuous input.
  frame_labels dense targets of one segment from the notes of the rendered MIDI.
  decode_frames  notes from the heads (onset peak picking, frame continuation): the reference of
               the C++ `--decoder frames`.
What it does not: tokens (the T5 encoder/decoder is mt3_model.py), rendering, training loops.

Frame time convention: frame j of a segment starts at sample j*hop of the segment and its window
is centred at j*hop + n_fft/2, so its time is segment_start + (j*hop + n_fft/2)/sr. An onset at
time t (seconds from the segment start) is labelled at frame round((t - n_fft/2/sr) / (hop/sr)),
clipped to 0 for onsets inside the first half window (so the decoder places frame-0 onsets in the
middle of [0, n_fft/2/sr + hop/sr/2), 36 ms for this front end); only frames whose centre lies inside the
segment (j < valid_frames) are used for onsets and notes.
Tensor names (model.safetensors, PyTorch layouts): `hconv/in_scale` [n_bins], `hconv/in_bias`
[n_bins], `hconv/conv{1,2}/kernel` [out, in, 3, 3] + `/bias`, `hconv/down/kernel` [C2, C1, 1, bps],
`hconv/res{i}/kernel` [C2, C2, 3, 3] (dilation (2^i, 1)), `hconv/heads/kernel` [4 + F, C2, 1, 1].
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import features

NUM_PITCHES = 88
MIN_PITCH = 21
HEADS = ("onset", "frame", "offset", "velocity")
# GM instrument families (program // 8) and the program written for each by the frames decoder
FAMILY_PROGRAMS = [0, 11, 16, 24, 32, 40, 48, 56, 65, 73, 80, 88, 96, 104, 112, 118]

DEFAULT_FRONTEND = {"kind": "logfreq", "sample_rate_hz": 16000, "n_fft": 2048, "hop_length": 256,
                    "segment_frames": 128, "min_midi": 20.0, "bins_per_semitone": 3, "n_bins": 300,
                    "log_floor": 1e-5}
DEFAULT_HCONV = {"harmonics": [0.5, 1, 2, 3, 4, 5, 6, 7, 8], "conv_channels": 16, "key_channels": 32,
                 "res_layers": 3, "num_families": 16, "bin_offset": 2}


def midi_hz(m):
    return 440.0 * 2.0 ** ((np.asarray(m, dtype=np.float64) - 69.0) / 12.0)


def logfreq_matrix_np(fe=DEFAULT_FRONTEND) -> np.ndarray:
    """[n_fft/2+1, n_bins] float32: triangle per bin between its neighbours' centre frequencies,
    each side at least one FFT bin wide, columns normalised to sum 1 (built in float64)."""
    sr, n_fft, bps, n = fe["sample_rate_hz"], fe["n_fft"], fe["bins_per_semitone"], fe["n_bins"]
    df = sr / n_fft
    fk = np.arange(n_fft // 2 + 1, dtype=np.float64) * df
    b = np.arange(n, dtype=np.float64)
    fc = midi_hz(fe["min_midi"] + b / bps)
    lo = midi_hz(fe["min_midi"] + (b - 1) / bps)
    hi = midi_hz(fe["min_midi"] + (b + 1) / bps)
    lw = np.maximum(fc - lo, df)
    uw = np.maximum(hi - fc, df)
    up = (fk[:, None] - (fc - lw)[None]) / lw[None]
    down = ((fc + uw)[None] - fk[:, None]) / uw[None]
    w = np.maximum(0.0, np.minimum(up, down))
    w[:, fc >= sr / 2] = 0.0
    s = w.sum(0)
    w = np.where(s[None] > 0, w / np.where(s > 0, s, 1.0)[None], 0.0)
    return w.astype(np.float32)


class LogFreq(nn.Module):
    def __init__(self, fe=DEFAULT_FRONTEND):
        super().__init__()
        self.fe = dict(fe)
        self.register_buffer("window", features.periodic_hann(fe["n_fft"]), persistent=False)
        self.register_buffer("fb", torch.from_numpy(logfreq_matrix_np(fe)), persistent=False)

    @torch.no_grad()
    def forward(self, audio):
        """audio [B, N] -> [B, ceil(N/hop), n_bins] (one segment per row, like features.LogMel)."""
        hop, n_fft = self.fe["hop_length"], self.fe["n_fft"]
        n = audio.shape[-1]
        frames = (n + hop - 1) // hop
        total = (frames - 1) * hop + n_fft
        x = F.pad(audio.float(), (0, total - n)).unfold(-1, n_fft, hop)
        mag = torch.fft.rfft(x * self.window, n=n_fft, dim=-1).abs()
        return torch.log(torch.clamp(torch.matmul(mag, self.fb), min=self.fe["log_floor"]))


def harmonic_shifts(harmonics, bps):
    return [int(round(12 * bps * math.log2(h))) for h in harmonics]


class HarmonicFront(nn.Module):
    def __init__(self, fe=DEFAULT_FRONTEND, hc=DEFAULT_HCONV):
        super().__init__()
        self.fe, self.hc = dict(fe), dict(hc)
        n, bps = fe["n_bins"], fe["bins_per_semitone"]
        c1, c2, H = hc["conv_channels"], hc["key_channels"], len(hc["harmonics"])
        self.shifts = harmonic_shifts(hc["harmonics"], bps)
        self.width = NUM_PITCHES * bps
        self.in_scale = nn.Parameter(torch.full((n,), 1.0 / 3.0))
        self.in_bias = nn.Parameter(torch.full((n,), 5.0 / 3.0))
        self.conv1 = nn.Conv2d(H, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c1, 3, padding=1)
        self.down = nn.Conv2d(c1, c2, (1, bps), stride=(1, bps))
        self.res = nn.ModuleList([nn.Conv2d(c2, c2, 3, padding=(2 ** i, 1), dilation=(2 ** i, 1))
                                  for i in range(hc["res_layers"])])
        self.heads = nn.Conv2d(c2, 4 + hc["num_families"], 1)
        with torch.no_grad():  # sparse targets: start the onset/frame/offset heads near their priors
            self.heads.bias[:3].fill_(-4.0)
        self.memory_depth = c2 * NUM_PITCHES + 4 * NUM_PITCHES

    def stack(self, x):
        """[B, T, n_bins] -> [B, H, T, 88*bps]: bin b of harmonic h is input bin b + offset + shift_h."""
        B, T, n = x.shape
        off = self.hc["bin_offset"]
        lo_pad = max(0, -min(self.shifts) - off)
        hi_pad = max(0, off + max(self.shifts) + self.width - n)
        xp = F.pad(x, (lo_pad, hi_pad))
        return torch.stack([xp[:, :, lo_pad + off + s: lo_pad + off + s + self.width] for s in self.shifts], 1)

    def forward(self, feats):
        """feats [B, T, n_bins] -> (heads [B, 4 + F, T, 88] logits, memory [B, T, memory_depth])."""
        x = feats * self.in_scale + self.in_bias
        x = self.stack(x)
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.relu(self.down(x))
        for conv in self.res:
            x = x + F.relu(conv(x))
        heads = self.heads(x)
        B, C, T, P = x.shape
        mem = torch.cat([x.permute(0, 2, 1, 3).reshape(B, T, C * P),
                         torch.sigmoid(heads[:, :4]).permute(0, 2, 1, 3).reshape(B, T, 4 * P)], -1)
        return heads, mem

    def tensors(self):
        """Export names (PyTorch layouts)."""
        out = {"hconv/in_scale": self.in_scale, "hconv/in_bias": self.in_bias}
        for name, m in [("conv1", self.conv1), ("conv2", self.conv2), ("down", self.down), ("heads", self.heads)] + \
                [("res%d" % i, c) for i, c in enumerate(self.res)]:
            out["hconv/%s/kernel" % name] = m.weight
            out["hconv/%s/bias" % name] = m.bias
        return out

    def load_tensors(self, t):
        with torch.no_grad():
            for k, p in self.tensors().items():
                p.copy_(torch.as_tensor(t[k]).float())


# ---------------------------------------------------------------------------------------------
# labels

def frame_geometry(fe=DEFAULT_FRONTEND):
    """(frame period s, offset of frame 0's centre s, valid frames per segment)."""
    sr, hop, n_fft, T = fe["sample_rate_hz"], fe["hop_length"], fe["n_fft"], fe["segment_frames"]
    period = hop / sr
    centre0 = (n_fft / 2) / sr
    valid = int(math.ceil((T * hop - n_fft / 2) / hop))
    return period, centre0, valid


def frame_labels(notes, seg_start, fe=DEFAULT_FRONTEND):
    """notes: [(on, off, pitch, velocity, program)] in seconds of the job; -> dict of float32 arrays
    [T, 88]: onset, frame, offset, velocity (vel/127 at onset frames), family (int64, -1 = none)."""
    period, c0, valid = frame_geometry(fe)
    T = fe["segment_frames"]
    seg_len = T * fe["hop_length"] / fe["sample_rate_hz"]
    on_l = np.zeros((T, NUM_PITCHES), np.float32)
    fr_l = np.zeros((T, NUM_PITCHES), np.float32)
    off_l = np.zeros((T, NUM_PITCHES), np.float32)
    vel_l = np.zeros((T, NUM_PITCHES), np.float32)
    fam_l = np.full((T, NUM_PITCHES), -1, np.int64)
    centres = c0 + period * np.arange(T)
    for on, off, pitch, vel, prog in notes:
        p = pitch - MIN_PITCH
        if p < 0 or p >= NUM_PITCHES:
            continue
        a, b = on - seg_start, off - seg_start
        if b <= 0 or a >= seg_len:
            continue
        act = (centres >= a) & (centres < b)
        if a >= 0:  # onset inside this segment
            j = min(valid - 1, max(0, int(round((a - c0) / period))))
            on_l[j, p] = 1.0
            vel_l[j, p] = vel / 127.0
            act[j] = True
        if b < seg_len:
            j = min(valid - 1, max(0, int(round((b - c0) / period))))
            off_l[j, p] = 1.0
        fr_l[act, p] = 1.0
        fam_l[act & (fam_l[:, p] < 0), p] = prog // 8
    return {"onset": on_l, "frame": fr_l, "offset": off_l, "velocity": vel_l, "family": fam_l}


def job_notes(midi_bytes):
    """Notes of a rendered job MIDI: [(on, off, pitch, vel, program)] sorted (drum channel skipped);
    the program is the one in force on the note's channel at its onset."""
    import io
    import mido
    from . import midi_notes
    mid = mido.MidiFile(file=io.BytesIO(bytes(midi_bytes)))
    programs = midi_notes.program_changes(mid)
    return sorted((on, off, p, v, midi_notes.program_at(programs, tr.channel, on))
                  for tr in midi_notes.tracks_of(mid) for on, off, p, v in tr.notes)


# ---------------------------------------------------------------------------------------------
# losses and decoding

def dense_loss(heads, labels, valid):
    """heads [B, 4+F, T, 88] logits; labels dict of [B, T, 88] tensors; valid frames per segment.
    Per-frame sums over keys, averaged over frames and batch."""
    h = heads[:, :, :valid]
    lab = {k: v[:, :valid] for k, v in labels.items()}
    def bce(i, y, pos_weight=None):
        return F.binary_cross_entropy_with_logits(h[:, i], y, reduction="none",
                                                  pos_weight=pos_weight).sum(-1).mean()
    pw = torch.tensor(2.0, device=heads.device)
    l_on = bce(0, lab["onset"], pw)
    l_fr = bce(1, lab["frame"])
    l_off = bce(2, lab["offset"])
    m = lab["onset"]
    l_vel = ((torch.sigmoid(h[:, 3]) - lab["velocity"]) ** 2 * m).sum() / m.sum().clamp(min=1.0)
    fam = lab["family"]
    sel = fam >= 0
    if bool(sel.any()):
        fl = h[:, 4:].permute(0, 2, 3, 1)[sel]
        l_fam = F.cross_entropy(fl, fam[sel])
    else:
        l_fam = h.sum() * 0.0
    total = l_on + l_fr + 0.5 * l_off + 2.0 * l_vel + 0.5 * l_fam
    return total, {"onset": float(l_on), "frame": float(l_fr), "offset": float(l_off), "vel": float(l_vel),
                   "family": float(l_fam)}


def decode_frames(probs, fe=DEFAULT_FRONTEND, onset_threshold=0.5, frame_threshold=0.3, min_note_s=0.0,
                  seg_starts=None, offset_threshold=None, long_frames=None, long_frame_threshold=None,
                  return_frames=False, feats=None, velocity_loudness=0.0):
    """probs: [S, 4+F, T, 88] numpy (sigmoid for the first 4, raw logits for families) of consecutive
    segments; -> notes [(onset_s, offset_s, pitch, velocity, program, confidence)]. The same algorithm
    as the C++ frames decoder (see src/model/frames_decoder.cpp). Every note lasts at least until the end of
    its onset frame; notes shorter than min_note_s are dropped (the C++ --min-note-ms).

    Study-only variants (tools/train/decode_study.py; the C++ decoder has none of them): with
    offset_threshold a note also ends at a local peak of the offset head at or above it (that frame
    included); with long_frames / long_frame_threshold the continuation threshold drops to
    long_frame_threshold once a note has lasted long_frames frames. return_frames adds each note's
    onset frame index (into the concatenated valid frames) as a 7th field.

    velocity_loudness (the C++ FramesDecoderConfig field of that name) with feats [S, T, n_bins]
    (the log-frequency input of the same segments): per call, the head's velocities (x 127,
    unrounded) and each note's loudness (the features' maximum over the note's first 3 frames and
    the pitch's bin +-1) are z-scored, blended (1 - w) : w and mapped back onto the head's mean and
    spread, rounded and clipped to 1..127 (with at least 3 notes)."""
    period, c0, valid = frame_geometry(fe)
    seg_len = fe["segment_frames"] * fe["hop_length"] / fe["sample_rate_hz"]
    S = probs.shape[0]
    # global frame sequence: valid frames of every segment, with their times
    on = np.concatenate([probs[s, 0, :valid] for s in range(S)])
    fr = np.concatenate([probs[s, 1, :valid] for s in range(S)])
    of = np.concatenate([probs[s, 2, :valid] for s in range(S)]) if offset_threshold is not None else None
    ve = np.concatenate([probs[s, 3, :valid] for s in range(S)])
    fam = np.concatenate([probs[s, 4:, :valid].transpose(1, 0, 2) for s in range(S)])  # [N, F, 88]
    starts = seg_starts if seg_starts is not None else [s * seg_len for s in range(S)]
    times = np.concatenate([starts[s] + c0 + period * np.arange(valid) for s in range(S)])
    blend = feats is not None and velocity_loudness > 0
    if blend:
        ft = np.concatenate([np.asarray(feats[s])[:valid] for s in range(S)])  # [N, n_bins]
        extra = []
    first = np.zeros(len(times), bool)
    first[::valid] = True
    N = len(times)
    notes = []
    for p in range(NUM_PITCHES):
        o = on[:, p]
        cand = np.where(o >= onset_threshold)[0]
        for i in cand:
            if (i > 0 and o[i - 1] > o[i]) or (i + 1 < N and o[i + 1] >= o[i] and not first[i + 1]):
                continue
            # sub-frame refinement (parabola through the neighbours), not across segment joins
            d = 0.0
            if 0 < i < N - 1 and not first[i] and not first[i + 1]:
                den = o[i - 1] - 2 * o[i] + o[i + 1]
                if den < 0:
                    d = max(-0.5, min(0.5, 0.5 * (o[i - 1] - o[i + 1]) / den))
            t_on = times[i] + d * period
            if first[i]:  # frame 0 holds every onset of [0, c0 + period/2): place it mid-range
                t_on = starts[i // valid] + 0.5 * (c0 + 0.5 * period)
            j = i + 1
            while j < N and fr[j, p] >= (frame_threshold if long_frames is None or j - i < long_frames
                                         else long_frame_threshold) \
                    and not (on[j, p] >= onset_threshold and (j + 1 >= N or on[j, p] >= on[j + 1, p]) and
                             on[j, p] >= on[j - 1, p]):
                j += 1
                if of is not None and of[j - 1, p] >= offset_threshold and of[j - 1, p] >= of[j - 2, p] and \
                        (j >= N or of[j - 1, p] >= of[j, p]):
                    break
            t_off = times[j - 1] + 0.5 * period
            if t_off - t_on < min_note_s:
                continue
            famv = fam[i:j, :, p].mean(0)
            prog = FAMILY_PROGRAMS[int(np.argmax(famv))]
            note = (t_on, t_off, p + MIN_PITCH, int(round(float(np.clip(ve[i, p], 0, 1)) * 127)) or 1, prog,
                    float(o[i]))
            notes.append(note + (int(i),) if return_frames else note)
            if blend:
                b = int(round((p + MIN_PITCH - fe["min_midi"]) * fe["bins_per_semitone"]))
                loud = float(ft[i:min(j, i + 3), max(0, b - 1):min(ft.shape[1], b + 2)].max())
                extra.append((float(np.clip(ve[i, p], 0, 1)) * 127.0, loud))
    if blend and len(notes) >= 3:
        hv, lv = np.array(extra).T
        z = (1 - velocity_loudness) * (hv - hv.mean()) / (hv.std() + 1e-6) + \
            velocity_loudness * (lv - lv.mean()) / (lv.std() + 1e-6)
        v = np.clip(np.rint(hv.mean() + hv.std() * z), 1, 127).astype(int)
        notes = [n[:3] + (int(v[k]),) + n[4:] for k, n in enumerate(notes)]
    notes.sort()
    return notes


# ---------------------------------------------------------------------------------------------
# the whole model: harmonic front + T5 encoder-decoder over its memory features

class HConvModel(nn.Module):
    """front (HarmonicFront) -> memory features -> mt3_model.MT3Model (input_depth = memory depth)."""

    def __init__(self, mcfg, fe=DEFAULT_FRONTEND, hc=DEFAULT_HCONV, dropout=0.0, with_null_memory=True):
        super().__init__()
        from . import mt3_model as M
        self.front = HarmonicFront(fe, hc)
        d = mcfg.to_dict()
        d["input_depth"] = self.front.memory_depth
        self.cfg = M.ModelConfig.from_dict(d)
        self.t5 = M.MT3Model(self.cfg, dropout=dropout, with_null_memory=with_null_memory)
        self.fe, self.hc = dict(fe), dict(hc)

    def flax_state(self):
        out = dict(self.t5.flax_state())
        out.update(self.front.tensors())
        return out


def grow_from(dst, src, new_scale=0.01):
    """Initialise the wider/deeper HConvModel `dst` from the trained `src` so that it computes
    (nearly) the same function: every tensor of `src` is copied into the leading block of its
    counterpart; weights from new channels into old ones are zero (so the old channels see no
    change), new output channels keep their random initialisation (so they learn at once), and the
    old-channel rows of new residual layers are scaled by `new_scale` (exactly the old function at
    0; a small non-zero scale lets their gradients flow through the ReLU). The T5 input projection
    gets zero rows for the new key channels' memory columns. Front end, harmonics, families and the
    T5 dimensions must match; conv_channels, key_channels and res_layers may only grow."""
    for k in ("harmonics", "num_families", "bin_offset"):
        if dst.hc[k] != src.hc[k]:
            raise ValueError("grow_from: hconv %s differs (%r -> %r)" % (k, src.hc[k], dst.hc[k]))
    for k in ("conv_channels", "key_channels", "res_layers"):
        if dst.hc[k] < src.hc[k]:
            raise ValueError("grow_from: hconv %s shrinks (%d -> %d)" % (k, src.hc[k], dst.hc[k]))
    if dst.fe != src.fe:
        raise ValueError("grow_from: front ends differ")
    old_c2, new_c2 = src.hc["key_channels"], dst.hc["key_channels"]
    sstate = src.state_dict()
    with torch.no_grad():
        for name, d in dst.state_dict().items():
            if name.endswith("continuous_inputs_projection.kernel"):
                s = sstate[name]
                if s.shape[1] != d.shape[1]:
                    raise ValueError("grow_from: T5 width differs")
                d.zero_()
                d[:old_c2 * NUM_PITCHES] = s[:old_c2 * NUM_PITCHES]
                d[new_c2 * NUM_PITCHES:] = s[old_c2 * NUM_PITCHES:]
                continue
            if name not in sstate:
                if name.startswith("front.res."):  # a new residual layer
                    if name.endswith("weight"):
                        d[:old_c2] *= new_scale
                    else:
                        d[:old_c2] = 0.0
                    continue
                raise ValueError("grow_from: no source for %s" % name)
            s = sstate[name]
            if s.shape == d.shape:
                d.copy_(s)
                continue
            if s.dim() != d.dim() or any(a > b for a, b in zip(s.shape, d.shape)):
                raise ValueError("grow_from: %s cannot grow %s -> %s" % (name, tuple(s.shape), tuple(d.shape)))
            so = s.shape[0]
            if s.dim() >= 2:
                d[:so, s.shape[1]:] = 0.0
            d[tuple(slice(0, n) for n in s.shape)] = s
    return dst


def save_hconv(model, out_dir, name, codec, training, dtype="F16", decoding=None):
    """Model directory: config.json (format_version 2, "frontend" logfreq, "hconv", "model", "codec",
    "decoding", "training") + model.safetensors (T5 tensors by MT3 names + hconv/* tensors)."""
    from . import mt3_model as M
    cfg = {"model_type": M.MODEL_TYPE, "format_version": 2, "name": name, "frontend": dict(model.fe),
           "hconv": dict(model.hc), "model": model.cfg.to_dict(), "codec": dict(codec),
           "decoding": dict(decoding or {"default": "frames", "onset_threshold": 0.5, "frame_threshold": 0.3,
                                         "min_note_ms": 0.0}),
           "training": dict(training or {})}
    M.write_model_dir(out_dir, cfg, model.flax_state(), dtype)
    return cfg


def load_hconv(model_dir):
    """-> (HConvModel in eval mode, config dict)."""
    import json
    import os
    from . import mt3_model as M
    from .safetensors_io import read_safetensors
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    if "hconv" not in cfg:
        raise ValueError("%s: not an hconv model" % model_dir)
    t = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    model = HConvModel(M.ModelConfig.from_dict(cfg["model"]), cfg["frontend"], cfg["hconv"],
                       with_null_memory="target/decoder/null_memory" in t)
    with torch.no_grad():
        for k, p in model.flax_state().items():
            if k not in t or tuple(t[k].shape) != tuple(p.shape):
                raise ValueError("%s: tensor %s missing or misshaped" % (model_dir, k))
            p.copy_(torch.from_numpy(np.ascontiguousarray(t[k])))
    return model.eval(), cfg
