"""Feature windows from the keyword corpus: calibration (training split) and held-out test sets.

Features come from the numpy front end (`asr.features.log_mel`), the one the devices run, so int8
scales are calibrated on exactly what the deployed model will see.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from tqdm import tqdm

from asr.config import Config
from asr.errors import MissingError
from asr.features import fit_window, log_mel


def corpus_windows(
    config: Config, root: str | Path, split: str, limit: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(features [N, frames, n_mels], labels [N], label names) of up to `limit` examples of a commands split.

    A random subset (fixed seed) when `limit` is smaller than the split, so every class is represented.
    """
    from asr.data.speech_commands import SpeechCommands

    root = Path(root)
    if not root.is_dir():
        raise MissingError(f"{root}: keyword corpus not found (generate it with `asr data synth`, or pass --data)")
    dataset = SpeechCommands(
        root,
        split,
        config.data.keywords,
        spec=config.features,
        silence_fraction=config.data.silence_fraction,
        seed=seed,
    )
    indices = np.arange(len(dataset))
    if limit is not None and limit < len(indices):
        indices = np.sort(np.random.default_rng(seed).choice(indices, size=limit, replace=False))
    features, labels = [], []
    saved = random.getstate()
    random.seed(seed)  # training-split silence crops come from Python's `random`: fix them, then restore it
    try:
        for i in tqdm(indices, desc=f"{split} windows", unit="clip", leave=False):
            waveform, label = dataset[int(i)]
            features.append(log_mel(fit_window(waveform, config.features.clip_samples), config.features))
            labels.append(label)
    finally:
        random.setstate(saved)
    shape = (0, config.features.num_frames(config.features.clip_samples), config.features.n_mels)
    stacked = np.stack(features).astype(np.float32) if features else np.zeros(shape, np.float32)
    return stacked, np.asarray(labels, dtype=np.int64), list(dataset.labels)
