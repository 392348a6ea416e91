"""Turn raw synthesizer output into corpus audio: trimmed, placed, levelled, never digital silence."""

from __future__ import annotations

import numpy as np

from asr.features import DEFAULT_SPEC

SAMPLE_RATE = DEFAULT_SPEC.sample_rate  # generated corpora are written at the default feature rate


def trim(audio: np.ndarray, floor_db: float = -40.0, margin_s: float = 0.02) -> np.ndarray:
    """Cut leading and trailing silence: 10 ms frames quieter than `floor_db` below the loudest frame."""
    hop = SAMPLE_RATE // 100
    n = len(audio) // hop
    if n == 0:
        return audio
    rms = np.sqrt(np.mean(audio[: n * hop].reshape(n, hop) ** 2, axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (floor_db / 20))
    margin = int(margin_s * SAMPLE_RATE)
    return audio[max(0, loud[0] * hop - margin) : min(len(audio), (loud[-1] + 1) * hop + margin)]


def level(audio: np.ndarray, rng: np.random.Generator, variation: dict) -> np.ndarray:
    """Random peak level, plus a faint noise floor at a random level (a real microphone is never silent)."""
    peak = 10 ** (rng.uniform(*variation["peak_dbfs"]) / 20)
    out = audio * (peak / (np.abs(audio).max() + 1e-9))
    floor = 10 ** (rng.uniform(*variation["floor_dbfs"]) / 20)
    return (out + floor * rng.standard_normal(len(out))).astype(np.float32)


def word_clip(audio: np.ndarray, rng: np.random.Generator, variation: dict, samples: int = SAMPLE_RATE) -> np.ndarray:
    """A 1-second clip: the trimmed word at a random offset (the centre of a word longer than the window)."""
    word = trim(audio)
    if len(word) > samples:
        start = (len(word) - samples) // 2
        word = word[start : start + samples]
    out = np.zeros(samples, dtype=np.float32)
    offset = int(rng.integers(0, samples - len(word) + 1))
    out[offset : offset + len(word)] = word
    return level(out, rng, variation)


def sentence_clip(audio: np.ndarray, rng: np.random.Generator, variation: dict) -> np.ndarray:
    """A trimmed sentence with 0.1-0.4 s of lead-in and tail, like a segmented audiobook utterance."""
    speech = trim(audio)
    lead, tail = (int(rng.uniform(0.1, 0.4) * SAMPLE_RATE) for _ in range(2))
    return level(np.concatenate([np.zeros(lead), speech, np.zeros(tail)]), rng, variation)
