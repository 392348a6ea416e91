"""Checkpoints: written atomically, read with `torch.load(weights_only=True)` (no code runs on load).

A checkpoint holds the config as a plain dict, the labels (or the tokenizer file name), the model weights and,
for resuming, the optimizer, scheduler, step and every random generator's state.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asr.config import Config, from_dict
from asr.model import build_model

FORMAT = "asr-checkpoint-1"


@dataclass
class Loaded:
    model: torch.nn.Module  # in eval mode
    config: Config
    labels: list[str]  # keyword classes; empty for ctc
    tokenizer: Path | None  # ctc: the sentencepiece model next to the checkpoint
    step: int
    state: dict  # everything stored, for resuming


def save_checkpoint(path: Path, state: dict) -> None:
    """Write to a temp file, then rename: a killed writer never leaves a half-written checkpoint."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"format": FORMAT, **state}, tmp)
    os.replace(tmp, path)


def read_state(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a foreign or corrupt file
        raise ValueError(f"{path}: not a checkpoint written by `asr train` ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path}: not a checkpoint written by `asr train` (format is not {FORMAT!r})")
    return state


def load_checkpoint(path: str | Path) -> Loaded:
    """The trained model (eval mode) and what it needs at inference: config, labels or tokenizer."""
    state = read_state(path)
    config = from_dict(state["config"], f"{path} (stored config)")
    model = build_model(config, state["num_outputs"])
    model.load_state_dict(state["model"])
    tokenizer = Path(path).parent / state["tokenizer"] if state.get("tokenizer") else None
    return Loaded(model.eval(), config, list(state["labels"]), tokenizer, int(state["step"]), state)


def rng_state() -> dict:
    """Python, numpy and torch generator states as tensors and plain lists (loadable with weights_only)."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2])},
        "numpy_gauss": [int(np_state[3]), float(np_state[4])],
        "python": [py_version, list(py_internal), py_gauss],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    keys = state["numpy"]["keys"].numpy().astype(np.uint32)
    has_gauss, gauss = state["numpy_gauss"]
    np.random.set_state(("MT19937", keys, state["numpy"]["pos"], has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
