"""One TFLite model behind one call: float features in, float class scores out.

A device has either ai-edge-litert (the maintained interpreter) or tflite-runtime (the classic Pi wheel,
no Python 3.12+ builds); both expose the same `Interpreter` class, so the wrapper picks whichever is
installed. Quantization to and from int8 happens here, with the scale and zero point stored in the model.
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from asr.errors import InputError

# backend name -> module holding `Interpreter`, in order of preference.
BACKENDS: dict[str, str] = {
    "ai-edge-litert": "ai_edge_litert.interpreter",
    "tflite-runtime": "tflite_runtime.interpreter",
}
TFLITE_IDENTIFIER = b"TFL3"  # the flatbuffer file identifier, bytes 4..8 of every .tflite file


class ModelFileError(InputError):
    """A model file that is missing or is not a TFLite flatbuffer."""


def available_backends() -> list[str]:
    """Installed interpreter backends, preferred first."""
    return [name for name, module in BACKENDS.items() if importlib.util.find_spec(module.split(".")[0])]


def interpreter_class(backend: str | None):
    """(backend name, its `Interpreter` class): `backend`, else the first installed."""
    names = [backend] if backend else list(BACKENDS)
    for name in names:
        if name not in BACKENDS:
            raise InputError(f"unknown interpreter backend {name!r}; known: {sorted(BACKENDS)}")
        try:
            return name, importlib.import_module(BACKENDS[name]).Interpreter
        except ImportError:
            continue
    wanted = backend or " or ".join(BACKENDS)
    raise ModelFileError(f"no TFLite interpreter installed: pip install {wanted}")


def check_tflite_file(path: Path) -> None:
    """Raise ModelFileError naming `path` unless it exists and carries the TFLite identifier."""
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    with path.open("rb") as f:
        head = f.read(8)
    if head[4:8] != TFLITE_IDENTIFIER:
        raise ModelFileError(f"{path}: not a TFLite model (no 'TFL3' identifier at bytes 4..8)")


def load_interpreter(path: Path, backend: str | None, num_threads: int):
    """(backend name, an interpreter with its tensors allocated) for the TFLite file `path`; ModelFileError naming
    the file if it is missing, not TFLite, or refused."""
    check_tflite_file(path)
    name, make = interpreter_class(backend)
    try:
        interpreter = make(model_path=str(path), num_threads=num_threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise ModelFileError(f"{path}: the {name} interpreter cannot load it: {e}") from None
    return name, interpreter


def quantize(features: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return np.clip(np.round(features / scale) + zero_point, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return ((q.astype(np.float32) - zero_point) * scale).astype(np.float32)


class TFLiteModel:
    """A single-input, single-output TFLite model: `model(features [T, F]) -> scores [C]` (float32).

    int8 (or uint8) inputs are quantized with the input tensor's scale / zero point and outputs dequantized,
    so callers never see integers. `num_threads=1` keeps timing comparable across devices.
    """

    def __init__(self, path: str | Path, *, backend: str | None = None, num_threads: int = 1) -> None:
        self.path = Path(path)
        self.backend, self._interpreter = load_interpreter(self.path, backend, num_threads)
        inputs, outputs = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelFileError(
                f"{self.path}: expected one input and one output, got {len(inputs)} and {len(outputs)}"
            )
        self._input, self._output = inputs[0], outputs[0]
        self.input_shape = tuple(int(d) for d in self._input["shape"])
        self.output_shape = tuple(int(d) for d in self._output["shape"])
        self.input_dtype = np.dtype(self._input["dtype"])
        self.input_scale, self.input_zero_point = self._input["quantization"]
        self.output_scale, self.output_zero_point = self._output["quantization"]

    def quantize(self, features: np.ndarray) -> np.ndarray:
        """Features [T, F] as the model's input tensor [1, T, F] in its dtype."""
        features = np.asarray(features, dtype=np.float32)
        if features.shape != self.input_shape[1:]:
            raise InputError(f"{self.path}: input must be {list(self.input_shape[1:])}, got {list(features.shape)}")
        if self.input_dtype.kind not in "iu":  # a float model takes features as they are
            return features[None].astype(self.input_dtype)
        info = np.iinfo(self.input_dtype)
        q = np.round(features / self.input_scale) + self.input_zero_point
        return np.clip(q, info.min, info.max).astype(self.input_dtype)[None]

    def __call__(self, features: np.ndarray) -> np.ndarray:
        self._interpreter.set_tensor(self._input["index"], self.quantize(features))
        self._interpreter.invoke()
        out = self._interpreter.get_tensor(self._output["index"]).reshape(-1)
        if np.dtype(self._output["dtype"]).kind in "iu":
            return ((out.astype(np.float32) - self.output_zero_point) * self.output_scale).astype(np.float32)
        return out.astype(np.float32)


# A streaming step model's step: the feature frames [frames_in, F] of one step in, its logits [C] out. The model
# keeps its caches itself from one step to the next.
Step = Callable[[np.ndarray], np.ndarray]


class StepShape(Protocol):
    frames_in: int  # feature frames one step reads
    frames_per_step: int  # feature frames between step starts


def play(step: Step, features: np.ndarray, shape: StepShape) -> tuple[np.ndarray, float]:
    """(every step's logits [n, C], median ms per step) of a feature sequence [N, F] played on from where `step`'s
    model is."""
    out, times = [], []
    for start in range(0, len(features) - shape.frames_in + 1, shape.frames_per_step):
        begin = time.perf_counter()
        out.append(step(features[start : start + shape.frames_in]))
        times.append(time.perf_counter() - begin)
    return np.array(out), float(np.median(times) * 1000.0) if times else 0.0


class TFLiteStreamModel:
    """A causal keyword model's streaming step (`asr export` of a model trained with `model.causal`).

    `step(features [frames_in, F]) -> logits [C]`: the feature frames that complete ONE new encoder frame in, that
    frame's logits out (float32). The model keeps each depth's caches (keys, values, convolution inputs) itself, as
    resource variables, and moves them on by one frame per step; `reset(history)` starts a new stream from empty
    caches, then steps through `history`. Steps start every `frames_per_step` feature frames; the keyword head is
    the mean of the last `head_frames` steps' logits (the manifest's `stream`).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        frames_per_step: int,
        head_frames: int,
        warmup_frames: int,
        backend: str | None = None,
        num_threads: int = 1,
    ) -> None:
        self.path, self.frames_per_step, self.head_frames = Path(path), frames_per_step, head_frames
        self.warmup_frames = warmup_frames  # the silence a stream starts from (the manifest's StreamSteps)
        self.num_threads = num_threads
        self.backend, self._interpreter = load_interpreter(self.path, backend, num_threads)
        inputs, outputs = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelFileError(
                f"{self.path}: not a streaming step model that keeps its caches (inputs "
                f"{[d['name'] for d in inputs]}, expected the features alone); export it again"
            )
        self._features, self._logits = inputs[0], outputs[0]
        self.input_shape = tuple(int(d) for d in self._features["shape"])
        self.output_shape = tuple(int(d) for d in self._logits["shape"])
        self.frames_in = self.input_shape[1]
        self.output_scale = float(self._logits["quantization"][0]) or 1.0  # float32 models: 0

    def reset(self, history: np.ndarray | None = None) -> None:
        """Start a stream: empty caches (each its zero point), then `history` (feature frames [N, F]) stepped
        through (`silence_features(spec, self.warmup_frames)`: a device that has been listening to silence long
        enough that no cache still holds an empty frame). A fresh interpreter: TFLite's reset_all_variables leaves
        resource variables."""
        self.backend, self._interpreter = load_interpreter(self.path, self.backend, self.num_threads)
        if history is not None:
            play(self.step, history, self)

    def step(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, dtype=np.float32)
        if features.shape != self.input_shape[1:]:
            raise InputError(
                f"{self.path}: a step takes {list(self.input_shape[1:])} features, got {list(features.shape)}"
            )
        d = self._features
        q = features[None] if d["dtype"] == np.float32 else quantize(features[None], *d["quantization"])
        self._interpreter.set_tensor(d["index"], q)
        self._interpreter.invoke()
        logits = self._interpreter.get_tensor(self._logits["index"]).reshape(-1)
        if self._logits["dtype"] != np.float32:
            logits = dequantize(logits, *self._logits["quantization"])
        return logits.astype(np.float32)
