"""Google Speech Commands v2 (real or generated) as a keyword-classification dataset.

Splits follow the official lists: `validation_list.txt` and `testing_list.txt` name their clips, training
is every other clip. Labels are `["_silence_", "_unknown_", *keywords]`: folders not in `keywords` are
`_unknown_`, and `_silence_` examples are 1-second crops of `_background_noise_/` at a random gain.
"""

from __future__ import annotations

import math
import random
from functools import cached_property
from pathlib import Path

import numpy as np

from asr.audio import read_audio
from asr.errors import InputError, MissingError
from asr.features import DEFAULT_SPEC, FeatureSpec, fit_window
from asr.labels import keyword_labels

SPLITS = ("train", "validation", "testing")
NOISE_DIR = "_background_noise_"


class SpeechCommands:
    """Clips of one split as (waveform float32 [spec.clip_samples], label index), read at spec.sample_rate (a file
    at another rate is an error, never reinterpreted).

    unknown_fraction: the share of each unknown word's clips kept (a random subset fixed by `seed`, at least one
    clip per word while the share is above 0): the breadth of the unknown vocabulary, which matters most for
    rejecting non-keywords, survives any volume reduction.
    silence_fraction: `_silence_` examples added, as a share of the speech clips kept (TensorFlow's recipe).
    Silence crops of the validation and testing splits are fixed per index; training crops are fresh on each
    access, drawn from Python's `random` (which PyTorch's DataLoader seeds differently in each worker).
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        keywords: list[str],
        *,
        spec: FeatureSpec = DEFAULT_SPEC,
        silence_fraction: float = 0.1,
        unknown_fraction: float = 1.0,
        seed: int = 0,
    ):
        self.root = Path(root)
        if split not in SPLITS:
            raise InputError(f"split must be one of {SPLITS}, not {split!r}")
        if not self.root.is_dir():
            raise MissingError(f"{self.root}: no such Speech Commands directory")
        self.split, self.seed, self.spec = split, seed, spec
        self.labels = keyword_labels(keywords)
        words = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
        missing = [k for k in keywords if k not in words]
        if missing:
            raise MissingError(f"{self.root}: no folder for keyword(s) {missing} (folders: {words[:20]} ...)")
        listed = {s: self._read_list(f"{s}_list.txt") for s in ("validation", "testing")}
        index = {k: i + 2 for i, k in enumerate(keywords)}
        items: list[tuple[Path, int]] = []
        for word in words:
            label = index.get(word, 1)
            rels = [f"{word}/{p.name}" for p in sorted((self.root / word).glob("*.wav"))]
            rels = [r for r in rels if _split_of(r, listed) == split]
            if label == 1 and unknown_fraction < 1.0:
                keep = math.ceil(unknown_fraction * len(rels))
                rng = np.random.default_rng([seed, *word.encode()])
                rels = [rels[k] for k in sorted(rng.permutation(len(rels))[:keep])]
            items += [(self.root / r, label) for r in rels]
        self.items = items
        self.num_silence = int(round(silence_fraction * len(items)))

    def _read_list(self, name: str) -> set[str]:
        path = self.root / name
        if not path.is_file():
            raise MissingError(f"{path}: missing split list (a Speech Commands root has {name})")
        return {line.strip() for line in path.read_text().splitlines() if line.strip()}

    def __len__(self) -> int:
        return len(self.items) + self.num_silence

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} examples")
        if i < len(self.items):
            path, label = self.items[i]
            return fit_window(read_audio(path, self.spec.sample_rate), self.spec.clip_samples), label
        if self.split == "train":
            rng = np.random.default_rng(random.getrandbits(64))
        else:
            rng = np.random.default_rng([self.seed, i])
        return self._silence(rng), 0

    def _silence(self, rng: np.random.Generator) -> np.ndarray:
        noises = self.background_noise()
        if not noises:
            raise MissingError(f"{self.root / NOISE_DIR}: no background noise clips to make _silence_ from")
        clip = noises[int(rng.integers(len(noises)))]
        n = self.spec.clip_samples
        start = int(rng.integers(0, max(1, len(clip) - n + 1)))
        return fit_window(clip[start : start + n] * rng.uniform(0.0, 1.0), n).astype(np.float32)

    @cached_property
    def _noises(self) -> list[np.ndarray]:
        folder = self.root / NOISE_DIR
        if not folder.is_dir():
            return []
        return [read_audio(p, self.spec.sample_rate) for p in sorted(folder.glob("*.wav"))]

    def background_noise(self, at_least: int = 0) -> list[np.ndarray]:
        """The `_background_noise_` clips (for noise mixing in training and `_silence_` examples) of at least
        `at_least` samples: those a crop that long can be cut from."""
        return [n for n in self._noises if len(n) >= at_least]

    @staticmethod
    def speaker_of(path: str | Path) -> str:
        """The speaker id in a file name `<speaker>_nohash_<n>.wav`."""
        return Path(path).name.split("_nohash_")[0]


def _split_of(rel: str, listed: dict[str, set[str]]) -> str:
    return next((name for name, paths in listed.items() if rel in paths), "train")
