"""A config's corpus split as a dataset: Speech Commands layout for keyword models, LibriSpeech for CTC."""

from __future__ import annotations

from pathlib import Path

from asr.config import Config
from asr.errors import MissingError


def open_split(config: Config, root: str | Path, split: str):
    """The corpus split as a dataset of the agreed data interface."""
    root = Path(root)
    if not root.is_dir():
        raise MissingError(f"{root}: no such corpus directory (data.root in config {config.name!r})")
    if config.task == "kws":
        from asr.data.speech_commands import SpeechCommands

        return SpeechCommands(
            root,
            split,
            config.data.keywords,
            spec=config.features,
            silence_fraction=config.data.silence_fraction,
            # Subsampling unknown words is a training choice; evaluation always sees every clip of its split.
            unknown_fraction=config.data.unknown_fraction if split == "train" else 1.0,
            seed=config.train.seed,
        )
    from asr.data.librispeech import LibriSpeech

    return LibriSpeech(root, split, config.features.sample_rate)
