"""MT3 log-mel front end in PyTorch (mt3.md §1), for training on CPU or GPU.

Matches the C++ front end / tf.signal semantics:
  periodic Hann window of 2048, hop 128, NO centering, end zero-padded (pad_end): a segment of N
  samples gives ceil(N/128) frames, frame i = samples [128 i, 128 i + 2048) of THIS segment only
  (per-segment computation: windows near the end see zeros, never the next segment);
  |STFT| (magnitude, not power), 1025 bins;
  HTK mel matrix (mel = 1127 ln(1 + f/700)), 512 bands with edges equally spaced in mel between
  20 and 7600 Hz, triangles in mel units, peak 1, no area normalisation, DC row zero; built in
  float32 like tf.signal.linear_to_mel_weight_matrix;
  safe log: values <= 0 -> 1e-5, then natural log (positive tiny values are logged as they are).
No normalisation. Output float32 [..., frames, 512].

  logmel(audio [B, N] or [N]) -> [B, ceil(N/128), 512]
  LogMel(torch.nn.Module): same, caches the window and the mel matrix on the module's device.
  segment_logmel(audio, segment_samples=32768) splits a long signal into segments (the last one
  zero-padded to 256 rows with 0.0 like the MT3 feature converter) -> [S, 256, 512].
"""
import math

import numpy as np
import torch

SAMPLE_RATE = 16000
FFT_SIZE = 2048
HOP = 128
NUM_MELS = 512
MEL_LO_HZ = 20.0
MEL_HI_HZ = 7600.0
LOG_EPS = 1e-5


def _linspace_f32(start, stop, num):
    """tf.linspace in float32: ends exact, interior start + delta * i."""
    start, stop = np.float32(start), np.float32(stop)
    delta = np.float32((stop - start) / np.float32(num - 1))
    inner = start + delta * np.arange(1, num - 1, dtype=np.float32)
    return np.concatenate([[start], inner, [stop]]).astype(np.float32)


def _hz_to_mel_f32(hz):
    # every step rounded to float32 like tf.signal; the log itself is the correctly rounded float32
    # log (computed in float64, rounded once), so the matrix does not depend on the libm.
    hz = np.asarray(hz, dtype=np.float32)
    q = (np.float32(1.0) + hz / np.float32(700.0)).astype(np.float32)
    return (np.float32(1127.0) * np.log(q.astype(np.float64)).astype(np.float32)).astype(np.float32)


def mel_matrix_np(num_mels=NUM_MELS, num_bins=FFT_SIZE // 2 + 1, sample_rate=SAMPLE_RATE,
                  lo_hz=MEL_LO_HZ, hi_hz=MEL_HI_HZ) -> np.ndarray:
    """[num_bins, num_mels] float32 weights, step by step like tf.signal.linear_to_mel_weight_matrix."""
    linear = _linspace_f32(0.0, sample_rate / 2.0, num_bins)[1:]       # DC bin dropped here ...
    spec_mel = _hz_to_mel_f32(linear)[:, None]
    edges = _linspace_f32(_hz_to_mel_f32(lo_hz), _hz_to_mel_f32(hi_hz), num_mels + 2)
    lower, center, upper = edges[:-2][None, :], edges[1:-1][None, :], edges[2:][None, :]
    lower_slopes = (spec_mel - lower) / (center - lower)
    upper_slopes = (upper - spec_mel) / (upper - center)
    w = np.maximum(np.float32(0.0), np.minimum(lower_slopes, upper_slopes)).astype(np.float32)
    return np.concatenate([np.zeros((1, num_mels), dtype=np.float32), w], axis=0)  # ... DC row = 0


def periodic_hann(n=FFT_SIZE, dtype=torch.float32):
    k = torch.arange(n, dtype=torch.float64)
    return (0.5 - 0.5 * torch.cos(2.0 * math.pi * k / n)).to(dtype)


class LogMel(torch.nn.Module):
    def __init__(self, fft_dtype=torch.float32):
        super().__init__()
        self.fft_dtype = fft_dtype
        self.register_buffer("window", periodic_hann(FFT_SIZE, fft_dtype), persistent=False)
        self.register_buffer("mel", torch.from_numpy(mel_matrix_np()), persistent=False)

    @torch.no_grad()
    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        squeeze = audio.dim() == 1
        if squeeze:
            audio = audio[None]
        n = audio.shape[-1]
        frames = (n + HOP - 1) // HOP
        total = (frames - 1) * HOP + FFT_SIZE
        x = torch.nn.functional.pad(audio.to(self.fft_dtype), (0, total - n))
        x = x.unfold(-1, FFT_SIZE, HOP)                      # [B, frames, 2048]
        with torch.autocast(device_type=x.device.type, enabled=False):
            spec = torch.fft.rfft(x * self.window, n=FFT_SIZE, dim=-1)
            mag = spec.abs()                                 # [B, frames, 1025]
            mel = torch.matmul(mag, self.mel.to(mag.dtype)).to(torch.float32)  # [B, frames, 512]
            out = torch.log(torch.where(mel > 0, mel, torch.full_like(mel, LOG_EPS)))
        return out[0] if squeeze else out


_default = {}


def logmel(audio: torch.Tensor, fft_dtype=torch.float32) -> torch.Tensor:
    key = (audio.device, fft_dtype)
    if key not in _default:
        _default[key] = LogMel(fft_dtype).to(audio.device)
    return _default[key](audio)


def segment_logmel(audio: torch.Tensor, segment_samples: int = 256 * HOP, fft_dtype=torch.float32):
    """Long mono signal -> per-segment log-mel [S, segment_samples/128, 512]; short last segment's
    missing rows are 0.0 (MT3 feature converter). No extra end padding is added here."""
    n = audio.shape[-1]
    rows = segment_samples // HOP
    out = []
    for s0 in range(0, max(n, 1), segment_samples):
        seg = audio[s0:s0 + segment_samples]
        m = logmel(seg, fft_dtype)
        if m.shape[0] < rows:
            m = torch.nn.functional.pad(m, (0, 0, 0, rows - m.shape[0]))
        out.append(m)
    return torch.stack(out)
