"""Audio file IO with errors that name the file and the problem (soundfile; no torch, so it runs on a Pi).

Policy: audio is mono float32 in [-1, 1]. A stereo file is refused (mixing down silently hides a wrong
microphone or a wrong file); a file at another sample rate is refused unless the caller asks for
`resample=True`, so a 44.1 kHz recording never slips into 16 kHz features unnoticed.
"""

from __future__ import annotations

import math
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.errors import InputError
from asr.files import default_mode


class AudioError(InputError):
    """An audio file that cannot be used as it is; the message names the file and the problem."""


def read_audio(path: str | Path, sample_rate: int = 16000, *, resample: bool = False) -> np.ndarray:
    """Mono float32 samples of `path` at `sample_rate` (wav, flac, ogg: whatever libsndfile reads)."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(f"{path}: not a readable audio file ({e})") from None
    if audio.shape[1] != 1:
        raise AudioError(f"{path}: has {audio.shape[1]} channels; expected mono (mix it down first)")
    if audio.shape[0] == 0:
        raise AudioError(f"{path}: contains no samples")
    audio = audio[:, 0]
    if rate != sample_rate:
        if not resample:
            raise AudioError(f"{path}: sample rate is {rate} Hz, expected {sample_rate} Hz (pass resample=True)")
        audio = resample_audio(audio, rate, sample_rate)
    return audio


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int = 16000, subtype: str = "PCM_16") -> None:
    """Write mono audio atomically (temp file, then rename): a killed writer never leaves a truncated file."""
    path = Path(path)
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise AudioError(f"{path}: expected mono audio of shape [samples], got {audio.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".part")
    os.fchmod(fd, default_mode())
    try:
        with os.fdopen(fd, "wb") as f:
            sf.write(f, np.clip(audio, -1.0, 1.0), sample_rate, subtype=subtype, format=path.suffix[1:].upper())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def resample_audio(audio: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Band-limited resampling, the same algorithm and numbers as torchaudio.functional.resample (Hann-windowed
    sinc, 6 zero crossings, rolloff 0.99). Written in numpy because the device side has neither torch nor scipy;
    tests/test_audio.py holds it to torchaudio."""
    if orig_rate == new_rate:
        return np.asarray(audio, dtype=np.float32)
    gcd = math.gcd(int(orig_rate), int(new_rate))
    orig, new = int(orig_rate) // gcd, int(new_rate) // gcd
    kernel, width = _sinc_kernel(orig, new)
    x = np.asarray(audio, dtype=np.float64)
    padded = np.pad(x, (width, width + orig))
    frames = np.lib.stride_tricks.sliding_window_view(padded, kernel.shape[1])[::orig]
    out = (frames @ kernel.T).reshape(-1)
    return out[: math.ceil(new * len(x) / orig)].astype(np.float32)


@lru_cache(maxsize=16)
def _sinc_kernel(orig: int, new: int, zeros: int = 6, rolloff: float = 0.99) -> tuple[np.ndarray, int]:
    """Polyphase filters [new, 2 * width + orig]: row p interpolates output phase p (torchaudio's construction)."""
    base = min(orig, new) * rolloff
    width = math.ceil(zeros * orig / base)
    idx = np.arange(-width, width + orig, dtype=np.float64)[None, :] / orig
    t = (np.arange(0, -new, -1, dtype=np.float64)[:, None] / new + idx) * base
    t = np.clip(t, -zeros, zeros)
    window = np.cos(t * math.pi / zeros / 2) ** 2
    t *= math.pi
    with np.errstate(invalid="ignore", divide="ignore"):
        sinc = np.where(t == 0, 1.0, np.sin(t) / t)
    return sinc * window * (base / orig), width
