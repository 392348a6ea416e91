"""Feature settings: the one source of truth that data, training, export, the runtime and the C bundle all read."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from asr.errors import InputError


@dataclass(frozen=True)
class FeatureSpec:
    """Log-mel settings; impossible values are refused at construction.

    Args:
        sample_rate: audio rate in Hz; corpora at another rate are refused, never reinterpreted.
        n_fft: window and FFT length in samples (one length for both keeps the C front end simple).
        hop_length: samples between frames.
        n_mels: mel bands, HTK scale, between `f_min` and `f_max` Hz.
        log_offset: added before the log.
        mean, std: fixed normalisation (not per utterance), so a stream is normalised frame by frame on a device.
        clip_seconds: the keyword model's window.
    """

    sample_rate: int = 16000
    n_fft: int = 512
    hop_length: int = 160
    n_mels: int = 40
    f_min: float = 20.0
    f_max: float = 7600.0
    log_offset: float = 1e-6
    mean: float = -5.0
    std: float = 5.0
    clip_seconds: float = 1.0

    def __post_init__(self) -> None:
        problems = [
            (self.sample_rate <= 0, f"sample_rate {self.sample_rate} must be > 0"),
            (self.n_fft <= 0 or self.hop_length <= 0, f"n_fft {self.n_fft}, hop_length {self.hop_length} must be > 0"),
            (self.hop_length > self.n_fft, f"hop_length {self.hop_length} is longer than n_fft {self.n_fft}"),
            (self.n_mels <= 0, f"n_mels {self.n_mels} must be > 0"),
            (not 0 <= self.f_min < self.f_max, f"need 0 <= f_min < f_max, got {self.f_min}, {self.f_max}"),
            (self.f_max > self.sample_rate / 2, f"f_max {self.f_max} Hz is above Nyquist ({self.sample_rate / 2} Hz)"),
            (self.log_offset <= 0 or self.std <= 0, "log_offset and std must be > 0"),
            (self.clip_samples < self.n_fft, f"clip_seconds {self.clip_seconds} is shorter than one frame"),
        ]
        bad = [message for failed, message in problems if failed]
        if bad:
            raise InputError(f"bad feature settings: {'; '.join(bad)}")

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * self.sample_rate))

    @property
    def window_frames(self) -> int:
        """Frames in one keyword window."""
        return self.num_frames(self.clip_samples)

    def num_frames(self, num_samples: int) -> int:
        """Frames produced from `num_samples` samples (no centre padding)."""
        if num_samples < self.n_fft:
            return 0
        return 1 + (num_samples - self.n_fft) // self.hop_length

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> FeatureSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise InputError(f"unknown feature settings: {sorted(unknown)}")
        return cls(**values)


DEFAULT_SPEC = FeatureSpec()


def fit_window(wave: np.ndarray, length: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Crop or zero-pad to `length` samples: centred, or at a random offset drawn from `rng` (training)."""
    extra = len(wave) - length
    if extra == 0:
        return wave
    offset = int(rng.integers(0, abs(extra) + 1)) if rng is not None else abs(extra) // 2
    if extra > 0:
        return wave[offset : offset + length]
    return np.pad(wave, (offset, -extra - offset))
