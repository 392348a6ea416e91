"""Run a .tflite model on every interpreter a host has: ai-edge-litert, tflite-runtime and TFLite Micro.

Each returns raw outputs [N, C] in the model's output dtype for inputs already in its input dtype, plus the
median milliseconds per window (one thread, batch 1), so parity and benchmarks share one code path.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from asr.features import FeatureSpec, silence_features
from asr.runtime.interpreter import Step, dequantize, play, quantize

if TYPE_CHECKING:
    from asr.runtime.bundle import StreamSteps


def io_details(path: Path) -> tuple[dict, dict]:
    """(input, output) details of the model as ai-edge-litert reports them."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    return interpreter.get_input_details()[0], interpreter.get_output_details()[0]


def _invoke_all(set_input, invoke, get_output, inputs: np.ndarray) -> tuple[np.ndarray, float]:
    outputs, times = [], []
    for x in inputs:
        set_input(x[None])
        start = time.perf_counter()
        invoke()
        times.append(time.perf_counter() - start)
        outputs.append(np.array(get_output()).reshape(-1))
    return np.stack(outputs), float(np.median(times) * 1000.0)


def _interpreter_run(interpreter_class, path: Path, inputs: np.ndarray) -> tuple[np.ndarray, float]:
    interpreter = interpreter_class(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    i, o = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    return _invoke_all(
        lambda x: interpreter.set_tensor(i, x), interpreter.invoke, lambda: interpreter.get_tensor(o), inputs
    )


def run_litert(path: Path, inputs: np.ndarray, *, reference_kernels: bool = False) -> tuple[np.ndarray, float]:
    """ai-edge-litert as a device runs it (XNNPACK delegate), or with its reference kernels only."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    if not reference_kernels:
        return _interpreter_run(Interpreter, path, inputs)
    resolver = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES

    def reference(**kwargs):
        return Interpreter(experimental_op_resolver_type=resolver, **kwargs)

    return _interpreter_run(reference, path, inputs)


def run_tflite_runtime(path: Path, inputs: np.ndarray) -> tuple[np.ndarray, float]:
    """tflite-runtime in a child process: it breaks in a process that has imported TensorFlow or ai-edge-litert."""
    with tempfile.TemporaryDirectory() as tmp:
        in_path, out_path = Path(tmp) / "in.npy", Path(tmp) / "out.npy"
        np.save(in_path, inputs)
        proc = subprocess.run(
            [sys.executable, "-m", "asr.runtime.host_interpreters", str(path), str(in_path), str(out_path)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{path}: tflite-runtime failed:\n{proc.stderr[-2000:]}")
        result = np.load(out_path, allow_pickle=False)
        return result["outputs"], float(result["ms"])


def run_micro(path: Path, inputs: np.ndarray, arena_size: int) -> tuple[np.ndarray, float]:
    """TFLite Micro in this process: safe once `arena_size` has been measured in a child process."""
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_file(str(path), arena_size=arena_size)
    return _invoke_all(
        lambda x: interpreter.set_input(x, 0), interpreter.invoke, lambda: interpreter.get_output(0), inputs
    )


def micro_step(path: Path, arena_size: int, raw: bool = False) -> tuple[Step, Callable[[], None]]:
    """(step, reset) of the int8 step model in TFLite Micro: float (or int8) features in, float logits out (`raw`:
    its int8 logits, as int32); `reset()` empties the caches the model keeps (each variable at its zero point)."""
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_file(str(path), arena_size=arena_size)
    logits_q = interpreter.get_output_details(0)["quantization_parameters"]
    scale, zero = float(logits_q["scales"][0]), int(logits_q["zero_points"][0])
    feature_q = interpreter.get_input_details(0)["quantization_parameters"]

    def step(features: np.ndarray) -> np.ndarray:
        if features.dtype != np.int8:  # int8 features (a firmware's own) go in as they are
            features = quantize(features, feature_q["scales"][0], feature_q["zero_points"][0])
        interpreter.set_input(features[None], 0)
        interpreter.invoke()
        logits = np.array(interpreter.get_output(0)).reshape(-1)
        return logits.astype(np.int32) if raw else dequantize(logits, scale, zero)

    return step, interpreter.reset


def clip_head_sums(path: Path, arena_size: int, clips: np.ndarray, steps: StreamSteps, spec: FeatureSpec) -> np.ndarray:
    """What the firmware's clip mode prints: each int8 feature clip [n, frames, F] played in TFLite Micro from empty
    caches after `steps.warmup_steps` steps of silence, its last `head_frames` steps' int8 logits summed [n, C].
    The warm-up is played again for every clip: TFLite Micro's resource variables cannot be saved and restored."""
    silence = silence_features(spec, steps.warmup_frames)
    step, reset = micro_step(path, arena_size, raw=True)
    sums = []
    for clip in clips:
        reset()
        play(step, silence, steps)
        sums.append(play(step, clip, steps)[0][-steps.head_frames :].sum(0))
    return np.stack(sums)


def _tflite_runtime_main(model: str, in_path: str, out_path: str) -> None:
    from tflite_runtime.interpreter import Interpreter

    outputs, ms = _interpreter_run(Interpreter, Path(model), np.load(in_path))
    with open(out_path, "wb") as f:
        np.savez(f, outputs=outputs, ms=np.float64(ms))


if __name__ == "__main__":
    _tflite_runtime_main(*sys.argv[1:4])
