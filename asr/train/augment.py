"""Waveform and spectrogram augmentation. Every function draws from the generator it is given, never from a
global one, so an example is a pure function of its seed (the key to exact resume and to DDP sharding)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torchaudio

from asr.features.frontend import hz_to_mel, mel_to_hz


@lru_cache(maxsize=128)
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


def random_eq(wave: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Change the channel and the timbre, not the words: a random spectral tilt, a few broad resonance bumps and,
    half the time, a band limit (telephone-like low-pass and high-pass). Applied as one gain curve in the frequency
    domain (numpy's FFT: no filter library needed for a smooth, zero-phase curve); the RMS level is kept.
    """
    spectrum = np.fft.rfft(wave.astype(np.float64))
    octaves = np.log2(np.maximum(np.fft.rfftfreq(len(wave), 1.0 / sample_rate), 20.0) / 1000.0)  # from 1 kHz
    gain_db = rng.uniform(-3.0, 3.0) * octaves  # tilt, dB per octave
    for _ in range(int(rng.integers(1, 4))):
        centre, width = rng.uniform(np.log2(0.15), np.log2(6.0)), rng.uniform(0.3, 1.5)
        gain_db += rng.uniform(-9.0, 9.0) * np.exp(-0.5 * ((octaves - centre) / width) ** 2)
    if rng.random() < 0.5:
        low, high = np.log2(rng.uniform(2.8, 7.5)), np.log2(rng.uniform(0.05, 0.4))
        gain_db -= 40.0 * (np.maximum(octaves - low, 0.0) + np.maximum(high - octaves, 0.0))  # 40 dB per octave
    out = np.fft.irfft(spectrum * 10 ** (gain_db / 20.0), len(wave))
    return (out * (np.sqrt(np.mean(wave**2)) / (np.sqrt(np.mean(out**2)) + 1e-12))).astype(np.float32)


def reverberate(wave: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Convolve with a simulated room impulse response: a direct path, then exponentially decaying noise
    (reverberation time 0.1-0.7 s, direct-to-reverberant ratio 0-15 dB). No measured RIRs are available offline,
    and this statistical model is the standard stand-in for them."""
    rt60 = rng.uniform(0.1, 0.7)
    t = np.arange(int(rt60 * sample_rate)) / sample_rate
    tail = rng.standard_normal(len(t)) * 10 ** (-3.0 * t / rt60)  # -60 dB at rt60
    tail[: int(0.003 * sample_rate)] = 0.0  # the first reflections arrive a few ms after the direct sound
    tail *= 10 ** (-rng.uniform(0.0, 15.0) / 20.0) / (np.sqrt(np.sum(tail**2)) + 1e-12)
    rir = np.concatenate([[1.0], tail[1:]])
    n = 1 << (len(wave) + len(rir) - 2).bit_length()  # a power of two: a fast FFT
    out = np.fft.irfft(np.fft.rfft(wave, n) * np.fft.rfft(rir, n), n)[: len(wave)]
    return (out * (np.abs(wave).max() / (np.abs(out).max() + 1e-12))).astype(np.float32)


def vtlp_matrix(factor: float, n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    """[n_mels, n_mels] interpolation that warps log-mel frames as if the vocal tract were `factor` times shorter
    (formants x factor, pitch and timing untouched): output bin i takes the input at frequency f_i / factor."""
    mels = np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2)[1:-1]  # the filter centres
    source = hz_to_mel(np.clip(mel_to_hz(mels) / factor, f_min, f_max))
    position = np.interp(source, mels, np.arange(n_mels))
    lower = np.clip(np.floor(position).astype(int), 0, n_mels - 1)
    upper = np.minimum(lower + 1, n_mels - 1)
    weight = position - lower
    matrix = np.zeros((n_mels, n_mels))
    matrix[np.arange(n_mels), lower] += 1.0 - weight
    matrix[np.arange(n_mels), upper] += weight
    return matrix.astype(np.float32)
