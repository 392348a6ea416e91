"""The log-mel front end in numpy: what devices compute, and the reference the torch and C twins are held to."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from asr.errors import InputError
from asr.features.spec import DEFAULT_SPEC, FeatureSpec


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
        raise InputError(f"expected mono audio of shape [samples], got {audio.shape}")
    n = spec.num_frames(len(audio))
    if n == 0:
        return np.zeros((0, spec.n_mels), dtype=np.float32)
    idx = np.arange(spec.n_fft)[None, :] + spec.hop_length * np.arange(n)[:, None]
    return frames_to_features(audio[idx], spec)


class StreamingFrontend:
    """Log-mel frames of a stream, each computed once; equal to `log_mel` of the whole stream.

    Only the samples of the next, still incomplete frames are kept (under n_fft samples, since frames overlap).
    """

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        self.samples_seen = 0
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, samples: np.ndarray) -> np.ndarray:
        """The new feature frames [n, n_mels] that `samples` (mono float in [-1, 1]) completes."""
        samples = np.asarray(samples)
        if samples.dtype.kind != "f" or samples.ndim != 1:
            # int16 PCM read as float would be 32768x too loud: features of garbage, silently
            raise InputError(
                f"expected mono float audio of shape [samples], got {samples.dtype} {list(samples.shape)} "
                "(scale int16 PCM by 1/32768 first, or use asr.KeywordSpotter.predict, which does)"
            )
        samples = samples.astype(np.float32, copy=False)
        self.samples_seen += len(samples)
        audio = np.concatenate([self._pending, samples])
        n = self.spec.num_frames(len(audio))
        if n == 0:
            self._pending = audio
            return np.zeros((0, self.spec.n_mels), dtype=np.float32)
        idx = np.arange(self.spec.n_fft)[None, :] + self.spec.hop_length * np.arange(n)[:, None]
        self._pending = audio[n * self.spec.hop_length :]
        return frames_to_features(audio[idx], self.spec)


def silence_features(spec: FeatureSpec = DEFAULT_SPEC, frames: int | None = None) -> np.ndarray:
    """Digital silence as features [frames, n_mels] (one window unless `frames` is given): what a streaming model's
    caches start from (a device that has been listening to silence), in Python and in the microcontroller bundle
    alike. Every frame of silence is the same frame."""
    window = log_mel(np.zeros(spec.clip_samples, dtype=np.float32), spec)
    return window if frames is None else np.repeat(window[:1], frames, axis=0)
