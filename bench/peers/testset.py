"""The comparison's test set: the corpus's held-out test voices, clean and with background noise mixed in.

Noise comes from the corpus's own `_background_noise_` clips at 5-20 dB SNR. Every clip's noise (which clip, where,
at what SNR) is drawn from a generator seeded by (seed, the clip's index in the split), so every system is scored
on exactly the same noisy audio, run after run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from asr.data.noise import NoisySplit
from asr.data.speech_commands import SpeechCommands
from asr.features import FeatureSpec, fit_window, log_mel


@dataclass
class TestSet:
    labels: list[str]  # class names, `_silence_`, `_unknown_`, *keywords
    targets: np.ndarray  # [N] label index
    clean: np.ndarray  # [N, samples] float32 waveforms
    noisy: np.ndarray  # [N, samples] the same clips with noise mixed in
    snr_db: np.ndarray  # [N] the SNR drawn for each noisy clip
    words: list[str]  # the spoken word of each clip (folder name; "" for `_silence_`)

    def features(self, condition: str, spec: FeatureSpec) -> np.ndarray:
        """Normalised log-mel windows [N, frames, n_mels] of `condition` ("clean" or "noisy")."""
        waves = self.clean if condition == "clean" else self.noisy
        return np.stack([log_mel(fit_window(w, spec.clip_samples), spec) for w in waves]).astype(np.float32)


def load_testset(
    root: str | Path,
    keywords: list[str],
    *,
    split: str = "testing",
    snr_db: tuple[float, float] = (5.0, 20.0),
    seed: int = 0,
) -> TestSet:
    """The split of a Speech Commands-layout corpus (with its `_silence_` share), clean and noisy."""
    dataset = SpeechCommands(root, split, keywords, seed=seed)
    noise = NoisySplit(dataset, snr_db, seed)  # the noise `asr eval --noisy` mixes into clip i
    clean, noisy, targets, snrs, words = [], [], [], [], []
    for i in tqdm(range(len(dataset)), desc=f"{split} clips", unit="clip", leave=False):
        wave, label = dataset[i]  # read once: a `_silence_` window is a random crop
        mixed, snr = noise.mix(wave, i)
        clean.append(wave)
        noisy.append(mixed)
        targets.append(label)
        snrs.append(snr)
        words.append(dataset.items[i][0].parent.name if i < len(dataset.items) else "")
    return TestSet(list(dataset.labels), np.array(targets), np.stack(clean), np.stack(noisy), np.array(snrs), words)
