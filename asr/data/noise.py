"""Background noise for `_background_noise_/`, generated offline: coloured noise, mains hum, babble.

The real corpus ships six recordings (white and pink noise, a running tap, an exercise bike, ...); these
cover the same ground (broadband, low-frequency, tonal, speech-like) without any recording.
"""

from __future__ import annotations

import numpy as np

from asr.data.render import SAMPLE_RATE
from asr.errors import MissingError

_FRAME = 160  # 10 ms: speech level is measured over the frames that carry the word, not the silence around it
RMS = 0.08  # about -22 dBFS: leaves room for the random gain applied when mixing


def coloured(rng: np.random.Generator, seconds: float, exponent: float) -> np.ndarray:
    """Noise with power spectrum ~ 1 / f**exponent (0 white, 1 pink, 2 brown), shaped in the frequency domain."""
    n = int(seconds * SAMPLE_RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    f[0] = f[1]
    spectrum /= f ** (exponent / 2.0)
    spectrum[f < 20.0] = 0.0  # no DC or subsonic drift (brown noise would wander off)
    return _level(np.fft.irfft(spectrum, n))


def hum(rng: np.random.Generator, seconds: float, mains_hz: float) -> np.ndarray:
    """Mains hum: the fundamental and odd-heavy harmonics with slow drift, over a faint hiss."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    drift = 1.0 + 0.002 * np.sin(2 * np.pi * 0.1 * t + rng.uniform(0, 2 * np.pi))
    out = np.zeros_like(t)
    for k in range(1, 12):
        amp = rng.uniform(0.3, 1.0) / k ** (0.7 if k % 2 else 1.2)
        out += amp * np.sin(2 * np.pi * mains_hz * k * drift * t + rng.uniform(0, 2 * np.pi))
    return _level(out + 0.02 * rng.standard_normal(len(t)))


def babble(rng: np.random.Generator, seconds: float, speech: list[np.ndarray], talkers: int = 6) -> np.ndarray:
    """Several talkers at once, each a random sequence of the given utterances, at uneven levels."""
    n = int(seconds * SAMPLE_RATE)
    out = np.zeros(n)
    for _ in range(talkers):
        track = np.zeros(n)
        pos = int(rng.integers(0, SAMPLE_RATE))
        while pos < n:
            clip = speech[int(rng.integers(len(speech)))]
            clip = clip[: n - pos] / (np.sqrt(np.mean(clip**2)) + 1e-9)
            track[pos : pos + len(clip)] += clip
            pos += len(clip) + int(rng.integers(0, SAMPLE_RATE // 4))
        out += track * rng.uniform(0.4, 1.0)
    return _level(out)


def _level(x: np.ndarray) -> np.ndarray:
    return (x * RMS / (np.sqrt(np.mean(x**2)) + 1e-12)).astype(np.float32)


def background_noises(rng: np.random.Generator, seconds: float, speech: list[np.ndarray]) -> dict[str, np.ndarray]:
    """File stem -> audio, for every kind of noise."""
    return {
        "white_noise": coloured(rng, seconds, 0.0),
        "pink_noise": coloured(rng, seconds, 1.0),
        "brown_noise": coloured(rng, seconds, 2.0),
        "hum_50hz": hum(rng, seconds, 50.0),
        "hum_60hz": hum(rng, seconds, 60.0),
        "babble": babble(rng, seconds, speech),
    }


def active_rms(clip: np.ndarray, floor_db: float = -30.0) -> float:
    """RMS over the 10 ms frames within `floor_db` of the loudest one: the level of the word itself."""
    n = max(1, len(clip) // _FRAME)
    frames = clip[: n * _FRAME].reshape(n, -1).astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=1) + 1e-12)
    active = rms[20 * np.log10(rms / rms.max()) > floor_db]
    return float(np.sqrt(np.mean(active**2)))


def mix_at_snr(
    clip: np.ndarray, noises: list[np.ndarray], rng: np.random.Generator, snr_db: tuple[float, float]
) -> tuple[np.ndarray, float]:
    """(clip + a random crop of a random noise at a random SNR over the word's own level, the SNR): the
    deterministic noisy test condition (one generator per clip), shared by `asr eval --noisy` and the comparison."""
    noise = noises[int(rng.integers(len(noises)))]
    start = int(rng.integers(0, len(noise) - len(clip) + 1))
    crop = noise[start : start + len(clip)].astype(np.float64)
    snr = float(rng.uniform(*snr_db))
    gain = active_rms(clip) / (np.sqrt(np.mean(crop**2)) + 1e-12) / 10 ** (snr / 20)
    return np.clip(clip + gain * crop, -1.0, 1.0).astype(np.float32), snr


class NoisySplit:
    """A keyword split with background noise at `snr_db` mixed into every clip, drawn per clip index so that every
    run and every system hears the same noisy audio: the "noisy" test condition."""

    def __init__(self, source, snr_db: tuple[float, float] = (5.0, 20.0), seed: int = 0):
        self.source, self.snr_db, self.seed = source, snr_db, seed
        self.noises = [n for n in source.background_noise() if len(n) > SAMPLE_RATE]
        if not self.noises:
            raise MissingError(f"{source.root / '_background_noise_'}: no noise clips longer than 1 s to mix in")

    def __len__(self) -> int:
        return len(self.source)

    def __getattr__(self, name: str):
        return getattr(self.source, name)  # items, labels, ...: those of the clean split

    def mix(self, wave: np.ndarray, index: int) -> tuple[np.ndarray, float]:
        """(`wave` with the noise of clip `index` mixed in, its SNR)."""
        return mix_at_snr(wave, self.noises, np.random.default_rng([self.seed, index]), self.snr_db)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        wave, label = self.source[index]
        return self.mix(wave, index)[0], label
