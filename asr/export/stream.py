"""Checks of a causal keyword model exported as its streaming step (asr.export.loop_graph.stream_model).

The step computes one encoder frame from the frames before it (the caches), so it is judged on streams, not on
windows: PyTorch's causal encoder over a whole feature sequence computes every frame the way the stream does,
once the caches hold real frames instead of the empty (zero) ones a stream starts with. Parity is therefore
measured after that start (`transient_steps`). Clip accuracy plays each test clip as a stream of its own, after a
window of digital silence (`asr.features.silence_features`), as a device that has been listening would hear it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from asr.evaluation.metrics import label_agreement
from asr.export.parity import FLOAT_ATOL, FLOAT_RTOL, INT8_LABEL_AGREEMENT, ParityError, percent
from asr.export.parity import torch_scores as torch_scores_of
from asr.runtime.bundle import StreamSteps
from asr.runtime.interpreter import STREAM_STATE, TFLiteStreamModel, dequantize, quantize

Step = Callable[[np.ndarray, list[np.ndarray]], tuple[np.ndarray, list[np.ndarray]]]


def transient_steps(model: torch.nn.Module) -> int:
    """Steps after which a stream from empty caches computes what PyTorch does: every depth's key and convolution
    caches filled with frames that were themselves computed from full caches."""
    block = model.encoder.blocks[0]
    return len(model.encoder.plan) * (model.context + block.conv_dw.kernel_size[0])


def torch_frame_logits(model: torch.nn.Module, features: np.ndarray) -> np.ndarray:
    """Each encoder frame's logits [steps, C] for a feature sequence [N, F] (the causal encoder, whole)."""
    with torch.no_grad():
        h = model.encoder(model.subsampling(torch.from_numpy(features)[None]))
        return model.classifier(h)[0].numpy()


def play(step: Step, state: list[np.ndarray], features: np.ndarray, steps: StreamSteps) -> tuple[np.ndarray, float]:
    """(every step's logits [n, C], median ms per step) of a feature sequence [N, F] from `state`."""
    out, times = [], []
    for start in range(0, len(features) - steps.frames_in + 1, steps.frames_per_step):
        begin = time.perf_counter()
        logits, state = step(features[start : start + steps.frames_in], state)
        times.append(time.perf_counter() - begin)
        out.append(logits)
    return np.array(out), float(np.median(times) * 1000.0)


def after(step: Step, state: list[np.ndarray], features: np.ndarray, steps: StreamSteps) -> list[np.ndarray]:
    """The caches after stepping through `features` [N, F] from `state` (a stream's start: one window of silence)."""
    for start in range(0, len(features) - steps.frames_in + 1, steps.frames_per_step):
        _, state = step(features[start : start + steps.frames_in], state)
    return state


def litert(path: Path, steps: StreamSteps) -> TFLiteStreamModel:
    return TFLiteStreamModel(
        path, frames_per_step=steps.frames_per_step, head_frames=steps.head_frames, backend="ai-edge-litert"
    )


def micro_step(path: Path, arena_size: int, raw: bool = False) -> tuple[Step, list[np.ndarray]]:
    """(step, empty caches) of the int8 step model in TFLite Micro: float (or int8) features in, float logits out
    (`raw`: its int8 logits, as int32)."""
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_file(str(path), arena_size=arena_size)
    details = [interpreter.get_input_details(i) for i in range(1 + len(STREAM_STATE))]
    logits_q = interpreter.get_output_details(0)["quantization_parameters"]
    scale, zero = float(logits_q["scales"][0]), int(logits_q["zero_points"][0])
    feature_q = details[0]["quantization_parameters"]

    def step(features: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        if features.dtype != np.int8:  # int8 features (a firmware's own) go in as they are
            features = quantize(features, feature_q["scales"][0], feature_q["zero_points"][0])
        interpreter.set_input(features[None], 0)
        for i, value in enumerate(state, start=1):
            interpreter.set_input(value, i)
        interpreter.invoke()
        new = [np.array(interpreter.get_output(i)) for i in range(1, 1 + len(STREAM_STATE))]
        if raw:
            return np.array(interpreter.get_output(0)).reshape(-1).astype(np.int32), new
        return dequantize(np.array(interpreter.get_output(0)).reshape(-1), scale, zero), new

    empty = [np.full(d["shape"], d["quantization_parameters"]["zero_points"][0], dtype=d["dtype"]) for d in details[1:]]
    return step, empty


def clip_head_sums(
    path: Path, arena_size: int, clips: np.ndarray, steps: StreamSteps, silence: np.ndarray
) -> np.ndarray:
    """What the firmware's clip mode prints: each int8 feature clip [n, frames, F] played in TFLite Micro from the
    caches one window of `silence` (int8 features) leaves, its last `head_frames` steps' int8 logits summed [n, C]."""
    step, empty = micro_step(path, arena_size, raw=True)
    start = after(step, empty, silence, steps)
    return np.stack([play(step, start, clip, steps)[0][-steps.head_frames :].sum(0) for clip in clips])


def stream_parity(
    model: torch.nn.Module,
    float_path: Path,
    int8_path: Path,
    features: np.ndarray,
    steps: StreamSteps,
    arena_bytes: int,
) -> tuple[dict, dict, dict]:
    """(float32 parity, int8 parity, ms per step) on one feature stream [N, F].

    float32 TFLite must match PyTorch after the transient, or ParityError; int8 on ai-edge-litert and TFLite Micro
    is compared by the labels each step picks (recorded, not fatal, like the loop route's windows)."""
    reference = torch_frame_logits(model, features)
    skip = transient_steps(model)
    if len(reference) <= skip:
        raise ParityError(
            f"a parity stream of {len(features)} frames is too short: the first {skip} steps are transient"
        )
    tolerance = FLOAT_ATOL + FLOAT_RTOL * float(np.abs(reference).max())
    fmodel = litert(float_path, steps)
    float_out, _ = play(fmodel.step, fmodel.initial_state(), features, steps)
    diff = float(np.abs(float_out[skip:] - reference[skip : len(float_out)]).max())
    if not diff <= tolerance:
        raise ParityError(
            f"{float_path}: the float32 streaming step differs from PyTorch by {diff:.3g} (tolerance {tolerance:.3g}) "
            f"on {len(float_out) - skip} steps: the conversion changed the model"
        )
    imodel = litert(int8_path, steps)
    int8_out, litert_ms = play(imodel.step, imodel.initial_state(), features, steps)
    step, empty = micro_step(int8_path, arena_bytes)
    micro_out, micro_ms = play(step, empty, features, steps)
    agreement = label_agreement(micro_out, int8_out)
    lsb = int(np.round(np.abs(micro_out - int8_out).max() / imodel.output_scale))
    float_parity = {"steps": len(float_out) - skip, "tolerance": tolerance, "tflite_float32_max_abs_diff": diff}
    int8_parity = {
        "steps": len(int8_out),
        "criterion": "labels",
        "label_agreement_min": INT8_LABEL_AGREEMENT,
        "label_agreement": {"tflite_micro_vs_ai_edge_litert": agreement},
        "max_lsb_diff": {"tflite_micro_vs_ai_edge_litert": lsb},
        "micro_vs_torch_label_agreement": label_agreement(micro_out[skip:], reference[skip : len(micro_out)]),
        "micro_vs_torch_max_abs_diff": float(np.abs(micro_out[skip:] - reference[skip : len(micro_out)]).max()),
        "within_tolerance": agreement >= INT8_LABEL_AGREEMENT,
    }
    return float_parity, int8_parity, {"ai_edge_litert": litert_ms, "tflite_micro": micro_ms}


def stream_accuracy(
    model: torch.nn.Module,
    float_path: Path,
    int8_path: Path,
    windows: np.ndarray,
    labels: np.ndarray,
    steps: StreamSteps,
    silence: np.ndarray,
) -> dict:
    """Accuracy (percent) on the held-out clips, each played as a stream after one window of silence (the caches a
    stream starts with) and read by the head (the mean of its last `head_frames` steps' logits); PyTorch reads each
    clip whole."""
    torch_scores = torch_scores_of(model, windows)
    scores = {}
    for name, path in (("tflite_float32", float_path), ("tflite_int8", int8_path)):
        m = litert(path, steps)
        start = m.initial_state(silence)
        scores[name] = np.stack([play(m.step, start, w, steps)[0][-steps.head_frames :].mean(0) for w in windows])
    result = {"windows": len(windows), "torch": percent(torch_scores, labels)}
    result.update({name: percent(s, labels) for name, s in scores.items()})
    result["int8_vs_float_label_agreement"] = label_agreement(scores["tflite_int8"], scores["tflite_float32"])
    result["int8_vs_torch_label_agreement"] = label_agreement(scores["tflite_int8"], torch_scores)
    result["int8_drop_points"] = round(result["tflite_float32"] - result["tflite_int8"], 3)
    result["int8_drop_vs_torch_points"] = round(result["torch"] - result["tflite_int8"], 3)
    return result
