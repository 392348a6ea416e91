"""The log-mel front end: defined once here, computed in numpy on devices.

`FeatureSpec` is the single source of truth for feature settings. Training computes the same features
with torchaudio (`asr.features.LogMel`), the microcontroller bundle with C (`asr/export/mcu_templates/frontend.c`);
both read these numbers, and tests hold all three together.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class FeatureSpec:
    sample_rate: int = 16000
    n_fft: int = 512  # window and FFT length: 32 ms (one length for both keeps the C front end simple)
    hop_length: int = 160  # 10 ms
    n_mels: int = 40
    f_min: float = 20.0
    f_max: float = 7600.0
    log_offset: float = 1e-6
    # Fixed normalisation (not per utterance) so a stream can be normalised frame by frame on a device.
    mean: float = -5.0
    std: float = 5.0
    clip_seconds: float = 1.0  # the keyword model's window

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * self.sample_rate))

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
            raise ValueError(f"unknown feature settings: {sorted(unknown)}")
        return cls(**values)


DEFAULT_SPEC = FeatureSpec()


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale (torchaudio's default `mel_scale="htk"`)."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=8)
def mel_filterbank(spec: FeatureSpec) -> np.ndarray:
    """Triangular filters [n_fft // 2 + 1, n_mels], the same construction as torchaudio.functional.melscale_fbanks."""
    n_freqs = spec.n_fft // 2 + 1
    all_freqs = np.linspace(0, spec.sample_rate // 2, n_freqs)
    m_pts = np.linspace(hz_to_mel(spec.f_min), hz_to_mel(spec.f_max), spec.n_mels + 2)
    f_pts = mel_to_hz(m_pts)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts[None, :] - all_freqs[:, None]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return np.maximum(0.0, np.minimum(down, up)).astype(np.float32)


@lru_cache(maxsize=8)
def window(spec: FeatureSpec) -> np.ndarray:
    """Periodic Hann window (torch.hann_window's default)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(spec.n_fft) / spec.n_fft)


def frames_to_features(frames: np.ndarray, spec: FeatureSpec = DEFAULT_SPEC) -> np.ndarray:
    """Normalised log-mel features [n, n_mels] from frames [n, n_fft] of float audio."""
    power = np.abs(np.fft.rfft(frames * window(spec), axis=-1)) ** 2
    mel = power.astype(np.float32) @ mel_filterbank(spec)
    return ((np.log(mel + spec.log_offset) - spec.mean) / spec.std).astype(np.float32)


def log_mel(audio: np.ndarray, spec: FeatureSpec = DEFAULT_SPEC) -> np.ndarray:
    """Normalised log-mel features [frames, n_mels] of mono float audio in [-1, 1] at `spec.sample_rate`."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio of shape [samples], got {audio.shape}")
    n = spec.num_frames(len(audio))
    if n == 0:
        return np.zeros((0, spec.n_mels), dtype=np.float32)
    idx = np.arange(spec.n_fft)[None, :] + spec.hop_length * np.arange(n)[:, None]
    return frames_to_features(audio[idx], spec)
