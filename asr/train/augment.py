"""Waveform and spectrogram augmentation. Every function draws from the generator it is given, never from a
global one, so an example is a pure function of its seed (the key to exact resume and to DDP sharding)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torchaudio


@lru_cache(maxsize=64)
def _resampler(orig: int, new: int) -> torchaudio.transforms.Resample:
    return torchaudio.transforms.Resample(orig, new)  # builds the sinc kernel once per rate pair


def speed_perturb(wave: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """Play `wave` `factor` times faster (pitch moves with it), by resampling.

    The target rate is rounded to a multiple of 160 Hz: few distinct rates, so each kernel is built once.
    """
    new_rate = max(160, int(round(sample_rate / factor / 160)) * 160)
    if new_rate == sample_rate:
        return wave
    with torch.no_grad():
        return _resampler(sample_rate, new_rate)(torch.from_numpy(wave)).numpy()


def fit_length(wave: np.ndarray, length: int, rng: np.random.Generator | None) -> np.ndarray:
    """Crop or zero-pad to `length` samples: at a random offset with `rng`, centred without."""
    extra = len(wave) - length
    if extra == 0:
        return wave
    offset = int(rng.integers(0, abs(extra) + 1)) if rng is not None else abs(extra) // 2
    if extra > 0:
        return wave[offset : offset + length]
    return np.pad(wave, (offset, -extra - offset))


def mix_noise(
    wave: np.ndarray, noises: list[np.ndarray], snr_db: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """Add a random stretch of a random noise clip at a random SNR (absolute level for a silent `wave`)."""
    noise = noises[int(rng.integers(len(noises)))]
    if len(noise) < len(wave):
        noise = np.tile(noise, len(wave) // len(noise) + 1)
    start = int(rng.integers(0, len(noise) - len(wave) + 1))
    noise = noise[start : start + len(wave)].astype(np.float32)
    noise_rms = float(np.sqrt(np.mean(noise**2))) + 1e-8
    wave_rms = float(np.sqrt(np.mean(wave**2)))
    if wave_rms < 1e-4:  # silence: choose the noise level itself, from faint to loud
        target = 10 ** rng.uniform(-3.5, -1.0)
    else:
        target = wave_rms / 10 ** (rng.uniform(*snr_db) / 20)
    return wave + noise * (target / noise_rms)


class SpecAugment:
    """One frequency mask and one time mask (torchaudio's SpecAugment transforms) on features [T, F], seeded.

    torchaudio draws from torch's global generator, so masks are drawn inside `fork_rng`, which leaves it untouched.
    """

    def __init__(self, freq_mask: int, time_mask: int):
        masks = [torchaudio.transforms.FrequencyMasking(freq_mask)] if freq_mask else []
        masks += [torchaudio.transforms.TimeMasking(time_mask)] if time_mask else []
        self.masks = torch.nn.Sequential(*masks)

    def __call__(self, features: torch.Tensor, seed: int) -> torch.Tensor:
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)  # CPU only: torch.manual_seed also queues CUDA seeding
            return self.masks(features.T.unsqueeze(0)).squeeze(0).T  # torchaudio masks (..., freq, time)
