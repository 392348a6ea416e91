"""Reading checkpoints: `torch.load(weights_only=True)` (no code runs on load), the model rebuilt from its config.

A checkpoint holds the config as a plain dict, the labels (or the tokenizer file name), the model weights and,
for resuming, the optimizer, scheduler, step and every random generator's state (written by asr.train.checkpoint).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from asr.config import Config, from_dict
from asr.errors import InputError, MissingError
from asr.model.build import build_model

FORMAT = "asr-checkpoint-1"
# Settings removed since a checkpoint was written, with the value at which they did nothing (None: any value):
# dropped on load when they hold it (the checkpoint runs the same without them), an error otherwise.
RETIRED = {("data", "corpus"): None, ("train", "tempo"): [1.0, 1.0], ("train", "ema_decay"): 0.0}


@dataclass
class Loaded:
    model: torch.nn.Module  # in eval mode
    config: Config
    labels: list[str]  # keyword classes; empty for ctc
    tokenizer: Path | None  # ctc: the sentencepiece model next to the checkpoint
    step: int
    state: dict  # everything stored, for resuming


def read_state(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise MissingError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a foreign or corrupt file
        raise InputError(f"{path}: not a checkpoint written by `asr train` ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise InputError(f"{path}: not a checkpoint written by `asr train` (format is not {FORMAT!r})")
    return state


def load_checkpoint(path: str | Path) -> Loaded:
    """The trained model (eval mode) and what it needs at inference: config, labels or tokenizer."""
    state = read_state(path)
    config = from_dict(_without_retired(state["config"], path), f"{path} (stored config)")
    model = build_model(config, state["num_outputs"])
    model.load_state_dict(state["model"])
    tokenizer = Path(path).parent / state["tokenizer"] if state.get("tokenizer") else None
    return Loaded(model.eval(), config, list(state["labels"]), tokenizer, int(state["step"]), state)


def _without_retired(values: dict, path: str | Path) -> dict:
    values = {k: dict(v) if isinstance(v, dict) else v for k, v in values.items()}
    for (section, key), inert in RETIRED.items():
        if key in values.get(section, {}):
            value = values[section].pop(key)
            value = list(value) if isinstance(value, (list, tuple)) else value
            if inert is not None and value != inert:
                raise InputError(f"{path}: {section}.{key} = {value!r} is no longer supported; retrain without it")
    return values
