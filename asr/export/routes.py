"""The two ways to make the float32 and int8 .tflite files; everything after them is shared (asr.export.pipeline).

- `unrolled`: PyTorch -> ONNX -> onnx2tf. Any model; tied weights are stored once, but every depth repeats its ops
  and tensors (~35 KB of flash and arena per tied layer of kws-tiny).
- `loop`: the tied blocks as TFLite WHILE loops (asr.export.loop). Keyword and CTC Conformers, with per-depth norms
  and LoRA adapters gathered by the loop counter; file and arena stay flat with depth. No ONNX file.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from asr.errors import InputError

if TYPE_CHECKING:  # `asr export --help` should not wait for torch
    import numpy as np
    import torch

    from asr.config import Config

ROUTES = ("unrolled", "loop")
# The loop: the same int8 accuracy in less flash and arena, flat with depth (BENCHMARKS.md section 4). Models the loop
# cannot take fall back to unrolled.
DEFAULT_ROUTE = "loop"


@dataclass
class Converted:
    """The files a route wrote into the export directory, and what only that route knows about them."""

    float_path: Path
    int8_path: Path
    onnx_path: Path | None
    seconds: float
    parity_criterion: str  # how the int8 runtimes are compared: "lsb" or "labels" (see asr.export.parity)
    details: dict = field(default_factory=dict)


def convert_unrolled(
    model: torch.nn.Module, config: Config, shape: tuple[int, ...], calibration: np.ndarray, stage: Path, work: Path
) -> Converted:
    from asr.export.onnx import export_onnx
    from asr.export.tflite import convert

    onnx_path = export_onnx(model, stage / "model.onnx", shape)
    float_tmp, int8_tmp, seconds = convert(onnx_path, calibration, work)
    float_path, int8_path = stage / "model_float32.tflite", stage / "model_int8.tflite"
    shutil.copyfile(float_tmp, float_path)
    shutil.copyfile(int8_tmp, int8_path)
    return Converted(float_path, int8_path, onnx_path, seconds, "lsb", {"converter": "onnx2tf"})


def convert_loop(
    model: torch.nn.Module, config: Config, shape: tuple[int, ...], calibration: np.ndarray, stage: Path, work: Path
) -> Converted:
    from asr.export.loop import export_loop_tflite

    float_path, int8_path = stage / "model_float32.tflite", stage / "model_int8.tflite"
    info = export_loop_tflite(model, config, calibration, int8_path, float_path=float_path)
    keys = ("loops", "int8_carried_tensors", "identity_requantize_dropped")
    details = {"converter": "tf.while_loop", **{k: info[k] for k in keys}}
    return Converted(float_path, int8_path, None, info["seconds"], "labels", details)


CONVERTERS = {"unrolled": convert_unrolled, "loop": convert_loop}


def choose_route(requested: str | None, model: torch.nn.Module, config: Config) -> tuple[str, str | None]:
    """(route, note): the requested route, or DEFAULT_ROUTE when None.

    An explicit `loop` the model cannot take raises LoopExportError naming the setting; the default falls back
    to `unrolled` with a note saying why.
    """
    from asr.export.loop import LoopExportError, check_exportable

    route = requested or DEFAULT_ROUTE
    if route not in ROUTES:
        raise InputError(f"--route {route!r}: choose one of {', '.join(ROUTES)}")
    if getattr(model, "context", 0) and route != "loop":
        raise InputError(f"--route {route}: a causal model exports as its streaming step, by the loop route only")
    if route != "loop":
        return route, None
    try:
        check_exportable(model, config)
    except LoopExportError as e:
        if requested:
            raise
        return "unrolled", f"{e}; exported through the unrolled route instead"
    return route, None
