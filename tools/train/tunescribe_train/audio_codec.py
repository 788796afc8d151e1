"""Decode the shards' compressed audio (FLAC or Ogg Vorbis bytes) to float32 mono.

Uses the `soundfile` module when it is importable (Debian python3-soundfile here). Training
machines without it (e.g. a GPU image with PyTorch but no soundfile/cffi) fall back to libsndfile
through ctypes: the library is found from $TS_LIBSNDFILE (path of libsndfile.so.1), from
under data/sndfile-libs (tools/train/fetch_sndfile_libs.sh), or from the system (see
docs/training.md, "Training on a machine without soundfile").
"""
import ctypes
import ctypes.util
import glob
import io
import os
import tempfile

import numpy as np

from . import REPO
_backend = None


class _SfInfo(ctypes.Structure):
    _fields_ = [("frames", ctypes.c_int64), ("samplerate", ctypes.c_int), ("channels", ctypes.c_int),
                ("format", ctypes.c_int), ("sections", ctypes.c_int), ("seekable", ctypes.c_int)]


def _preload_siblings(libdir):
    """Loads libsndfile's dependencies found beside it (by full path, RTLD_GLOBAL, in dependency
    order), so a carried copy works without LD_LIBRARY_PATH set before the process started."""
    for stem in ("libogg.so", "libvorbis.so", "libvorbisenc.so", "libFLAC.so", "libopus.so",
                 "libmpg123.so", "libmp3lame.so"):
        for path in sorted(glob.glob(os.path.join(libdir, stem + ".*"))):
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                break
            except OSError:
                continue


class _CtypesSndfile:
    SFM_READ = 0x10

    def __init__(self):
        cands = [os.environ.get("TS_LIBSNDFILE", "")]
        repo = REPO
        cands += sorted(glob.glob(os.path.join(repo, "data", "sndfile-libs", "**", "libsndfile.so.1"), recursive=True))
        found = ctypes.util.find_library("sndfile")
        if found:
            cands.append(found)
        cands.append("libsndfile.so.1")
        err = None
        for c in cands:
            if not c:
                continue
            try:
                if os.path.sep in c:
                    _preload_siblings(os.path.dirname(c))
                self.lib = ctypes.CDLL(c)
                break
            except OSError as e:
                err = e
        else:
            raise ImportError("audio_codec: neither soundfile nor libsndfile is available (%s)" % err)
        self.lib.sf_open.restype = ctypes.c_void_p
        self.lib.sf_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(_SfInfo)]
        self.lib.sf_readf_float.restype = ctypes.c_int64
        self.lib.sf_readf_float.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.c_int64]
        self.lib.sf_close.argtypes = [ctypes.c_void_p]
        self.lib.sf_strerror.restype = ctypes.c_char_p
        self.lib.sf_strerror.argtypes = [ctypes.c_void_p]

    def decode(self, data: bytes):
        tmpdir = "/dev/shm" if os.path.isdir("/dev/shm") else None
        with tempfile.NamedTemporaryFile(dir=tmpdir, suffix=".snd") as f:
            f.write(data)
            f.flush()
            info = _SfInfo()
            h = self.lib.sf_open(f.name.encode(), self.SFM_READ, ctypes.byref(info))
            if not h:
                raise ValueError("audio_codec: libsndfile: %s" % self.lib.sf_strerror(None).decode())
            try:
                out = np.empty((info.frames, info.channels), dtype=np.float32)
                got = self.lib.sf_readf_float(h, out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), info.frames)
            finally:
                self.lib.sf_close(h)
        return out[:got], info.samplerate


class _Soundfile:
    def __init__(self):
        import soundfile
        self.sf = soundfile

    def decode(self, data: bytes):
        x, sr = self.sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        return x, sr


def backend(force: str = None):
    global _backend
    if force == "ctypes":
        return _CtypesSndfile()
    if _backend is None:
        try:
            _backend = _Soundfile()
        except ImportError:
            _backend = _CtypesSndfile()
    return _backend


def decode(data: bytes, force: str = None):
    """bytes of a FLAC/Ogg file -> (float32 mono [N], sample rate)."""
    x, sr = backend(force).decode(bytes(data))
    return (x[:, 0] if x.shape[1] == 1 else x.mean(axis=1)).astype(np.float32, copy=False), sr
