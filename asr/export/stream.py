"""Checks of a causal keyword model exported as its streaming step (asr.export.loop_graph.stream_model).

The step computes one encoder frame from the frames before it (the caches), so it is judged on streams, not on
windows: PyTorch's causal encoder over a whole feature sequence computes every frame the way the stream does,
once the caches hold real frames instead of the empty (zero) ones a stream starts with. Parity is therefore
measured after that start (`transient_steps`). Clip accuracy plays each test clip as a stream of its own, after
that many steps of digital silence (`asr.features.silence_features`), as a device that has been listening to
silence would hear it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from asr.evaluation.metrics import label_agreement
from asr.export.parity import FLOAT_ATOL, FLOAT_RTOL, INT8_LABEL_AGREEMENT, ParityError, percent
from asr.export.parity import torch_scores as torch_scores_of
from asr.features import FeatureSpec, silence_features
from asr.runtime.bundle import StreamSteps
from asr.runtime.host_interpreters import micro_step
from asr.runtime.interpreter import TFLiteStreamModel, play


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


def litert(path: Path, steps: StreamSteps) -> TFLiteStreamModel:
    return TFLiteStreamModel(
        path,
        frames_per_step=steps.frames_per_step,
        head_frames=steps.head_frames,
        warmup_frames=steps.warmup_frames,
        backend="ai-edge-litert",
    )


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
    float_out, _ = play(fmodel.step, features, steps)
    diff = float(np.abs(float_out[skip:] - reference[skip : len(float_out)]).max())
    if not diff <= tolerance:
        raise ParityError(
            f"{float_path}: the float32 streaming step differs from PyTorch by {diff:.3g} (tolerance {tolerance:.3g}) "
            f"on {len(float_out) - skip} steps: the conversion changed the model"
        )
    imodel = litert(int8_path, steps)
    int8_out, litert_ms = play(imodel.step, features, steps)
    micro_out, micro_ms = play(micro_step(int8_path, arena_bytes)[0], features, steps)
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


def clip_head(model: TFLiteStreamModel, silence: np.ndarray, clip: np.ndarray, steps: StreamSteps) -> np.ndarray:
    """The head's mean logits [C] after one clip [frames, F] played as a stream of its own, after `silence`."""
    model.reset(silence)
    return play(model.step, clip, steps)[0][-steps.head_frames :].mean(0)


def stream_accuracy(
    model: torch.nn.Module,
    float_path: Path,
    int8_path: Path,
    windows: np.ndarray,
    labels: np.ndarray,
    steps: StreamSteps,
    spec: FeatureSpec,
) -> dict:
    """Accuracy (percent) on the held-out clips, each played as a stream after `steps.warmup_frames` of silence (the
    caches a stream starts with, as the firmware's clip mode plays them) and read by the head (the mean of its last
    `head_frames` steps' logits); PyTorch reads each clip whole."""
    silence = silence_features(spec, steps.warmup_frames)
    torch_scores = torch_scores_of(model, windows)
    scores = {}
    for name, path in (("tflite_float32", float_path), ("tflite_int8", int8_path)):
        m = litert(path, steps)
        scores[name] = np.stack([clip_head(m, silence, w, steps) for w in windows])
    result = {"windows": len(windows), "torch": percent(torch_scores, labels)}
    result.update({name: percent(s, labels) for name, s in scores.items()})
    result["int8_vs_float_label_agreement"] = label_agreement(scores["tflite_int8"], scores["tflite_float32"])
    result["int8_vs_torch_label_agreement"] = label_agreement(scores["tflite_int8"], torch_scores)
    result["int8_drop_points"] = round(result["tflite_float32"] - result["tflite_int8"], 3)
    result["int8_drop_vs_torch_points"] = round(result["torch"] - result["tflite_int8"], 3)
    return result
