"""Parity of the exported models with PyTorch, and float vs int8 accuracy on the held-out split.

float32 (ONNX Runtime when the route made an ONNX file, TFLite on ai-edge-litert) must match PyTorch to a tight
tolerance or the export fails. int8 runtimes (ai-edge-litert, tflite-runtime, TFLite Micro) are compared in output
quantization steps (LSB) and by the labels they pick: their kernels round differently, so equality would be the
wrong test. The unrolled route is judged by LSB; the loop route by labels, since one set of scales serves every
iteration and each iteration's rounding feeds the next (TFLite Micro and ai-edge-litert differed by up to ~23 LSB
on a trained kws-tiny while picking the same labels). ai-edge-litert is compared with its reference kernels; its
default XNNPACK delegate, which differs more, is reported separately.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from asr.errors import InputError
from asr.evaluation import metrics
from asr.evaluation.metrics import label_agreement
from asr.export.onnx import run_onnx
from asr.runtime.host_interpreters import run_litert, run_micro, run_tflite_runtime
from asr.runtime.interpreter import dequantize, quantize

FLOAT_ATOL = 2e-3  # on logits, plus FLOAT_RTOL times the largest logit
FLOAT_RTOL = 1e-3
INT8_LSB_TOLERANCE = 6  # the reference int8 runtimes round differently by a few steps (BENCHMARKS.md section 4)
INT8_LABEL_AGREEMENT = 0.95  # the loop route's criterion: the least share of windows on which two runtimes agree
CRITERIA = ("lsb", "labels")


class ParityError(InputError):
    """An exported model does not compute what the PyTorch model computes (a ValueError: the CLI prints it)."""


def torch_scores(model: torch.nn.Module, features: np.ndarray, batch_size: int = 64) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return np.concatenate(
            [model(torch.from_numpy(features[i : i + batch_size])).numpy() for i in range(0, len(features), batch_size)]
        )


def float_parity(reference: np.ndarray, float_tflite: Path, windows: np.ndarray, onnx_path: Path | None = None) -> dict:
    """Max |difference| of TFLite float32 (and ONNX Runtime, given the .onnx) against PyTorch `reference`.

    Raises ParityError beyond the tolerance."""
    tolerance = FLOAT_ATOL + FLOAT_RTOL * float(np.abs(reference).max())
    result = {"windows": len(windows), "tolerance": tolerance}
    runs = [(float_tflite, "tflite_float32", lambda: run_litert(float_tflite, windows)[0])]
    if onnx_path is not None:
        runs.insert(0, (onnx_path, "onnxruntime", lambda: run_onnx(onnx_path, windows)))
    for path, name, scores in runs:
        diff = float(np.abs(scores() - reference).max())
        result[f"{name}_max_abs_diff"] = diff
        if not diff <= tolerance:
            raise ParityError(
                f"{path}: {name} differs from PyTorch by {diff:.3g} (tolerance {tolerance:.3g}) "
                f"on {len(windows)} windows: the conversion changed the model"
            )
    return result


def int8_parity(
    int8_tflite: Path, windows: np.ndarray, reference: np.ndarray, io: dict, arena_bytes: int, criterion: str = "lsb"
) -> tuple[dict, dict]:
    """(parity, latency) of the int8 model on three runtimes.

    Recorded, not fatal: the runtimes' rounding differences are not errors of the export; `within_tolerance`
    flags, by `criterion`, a disagreement beyond INT8_LSB_TOLERANCE ("lsb") or label agreement below
    INT8_LABEL_AGREEMENT ("labels"), and the CLI warns. Both measures are always recorded.
    """
    if criterion not in CRITERIA:
        raise InputError(f"int8 parity criterion {criterion!r} is not one of {CRITERIA}")
    inputs = quantize(windows, io["input"].scale, io["input"].zero_point)
    runs = {
        "ai_edge_litert": run_litert(int8_tflite, inputs, reference_kernels=True),
        "tflite_runtime": run_tflite_runtime(int8_tflite, inputs),
        "tflite_micro": run_micro(int8_tflite, inputs, arena_bytes),
    }
    xnnpack = run_litert(int8_tflite, inputs)  # the default delegate rounds differently: reported on its own
    outputs = {name: out.astype(np.int32) for name, (out, _) in runs.items()}
    pairs = [(a, b) for i, a in enumerate(outputs) for b in list(outputs)[i + 1 :]]
    lsb = {f"{a}_vs_{b}": int(np.abs(outputs[a] - outputs[b]).max()) for a, b in pairs}
    labels = {f"{a}_vs_{b}": label_agreement(outputs[a], outputs[b]) for a, b in pairs}
    scale, zero_point = io["output"].scale, io["output"].zero_point
    micro = dequantize(runs["tflite_micro"][0], scale, zero_point)
    result = {
        "windows": len(windows),
        "criterion": criterion,
        "lsb_tolerance": INT8_LSB_TOLERANCE,
        "max_lsb_diff": lsb,
        "label_agreement_min": INT8_LABEL_AGREEMENT,
        "label_agreement": labels,
        "micro_vs_torch_label_agreement": label_agreement(micro, reference),
        "micro_vs_torch_max_abs_diff": float(np.abs(micro - reference).max()),
        "output_scale": scale,
    }
    if criterion == "lsb":
        result["within_tolerance"] = max(lsb.values()) <= INT8_LSB_TOLERANCE
    else:
        result["within_tolerance"] = min(labels.values()) >= INT8_LABEL_AGREEMENT
    result["xnnpack_vs_reference_max_lsb_diff"] = int(
        np.abs(xnnpack[0].astype(np.int32) - outputs["ai_edge_litert"]).max()
    )
    latency = {name: ms for name, (_, ms) in runs.items()}
    latency["ai_edge_litert_reference_kernels"] = latency.pop("ai_edge_litert")
    latency["ai_edge_litert"] = xnnpack[1]
    return result, latency


def accuracy(
    reference: np.ndarray, float_tflite: Path, int8_tflite: Path, windows: np.ndarray, labels: np.ndarray, io: dict
) -> dict:
    """Accuracy (percent) of PyTorch, TFLite float32 and int8 on the held-out windows, and the int8 drop
    (against float32 TFLite and against PyTorch itself)."""
    float_scores, _ = run_litert(float_tflite, windows)
    int8_out, _ = run_litert(int8_tflite, quantize(windows, io["input"].scale, io["input"].zero_point))
    result = {
        "windows": len(windows),
        "torch": percent(reference, labels),
        "tflite_float32": percent(float_scores, labels),
        "tflite_int8": percent(int8_out, labels),
        "int8_vs_float_label_agreement": label_agreement(int8_out, float_scores),
        "int8_vs_torch_label_agreement": label_agreement(int8_out, reference),
    }
    result["int8_drop_points"] = round(result["tflite_float32"] - result["tflite_int8"], 3)
    result["int8_drop_vs_torch_points"] = round(result["torch"] - result["tflite_int8"], 3)
    return result


def percent(scores: np.ndarray, labels: np.ndarray) -> float:
    return round(metrics.accuracy(scores, labels) * 100.0, 3)
