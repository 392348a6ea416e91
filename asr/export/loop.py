"""Export a tied keyword Conformer as TFLite WHILE loops over its shared blocks: depth that costs no flash.

The unrolled route (PyTorch -> ONNX -> onnx2tf) stores tied weights once but repeats ~100 ops and ~110 tensors per
depth, so every extra tied layer costs ~35 KB of flash and arena. Here the PyTorch weights are re-laid out for a
TensorFlow re-implementation (`asr.export.loop_graph`, run in a child process) whose tied blocks are one
`tf.while_loop` per run of the sharing plan, converted to full-int8 TFLite; then the loop-carried tensor is made
int8 (`asr.export.loop_tflite`). All layout changes below are exact algebra, done once in float64.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from asr.config import Config
from asr.errors import InputError
from asr.export.flatbuffer import inspect_tflite
from asr.export.loop_tflite import (
    STREAM_CACHES,
    caches_as_variables,
    drop_identity_requantize,
    int8_loop_carry,
    share_cache_quantization,
)
from asr.model.adapters import BlockAdapters
from asr.model.block import BlockNorms, ConformerBlock
from asr.model.conformer import ConformerWithHead, CTCConformer, KeywordConformer
from asr.runtime.host_interpreters import io_details


class LoopExportError(InputError):
    """The model cannot be exported as a loop; the message names the feature that prevents it."""


def loop_segments(plan: list[int]) -> list[tuple[list[int], int]]:
    """Split a sharing plan into (blocks one loop body applies in turn, iterations).

    A periodic plan is one loop: all -> [([0], N)], cycle ABAB -> [([0, 1], N/2)]. Otherwise each run of one block
    is its own loop: sequence AABB -> [([0], 2), ([1], 2)]; untied -> one iteration per block (no loop).
    """
    n = len(plan)
    period = next(p for p in range(1, n + 1) if n % p == 0 and plan == plan[:p] * (n // p))
    segments: list[tuple[list[int], int]] = []
    if period < n:
        segments = [(plan[:period], n // period)]
    else:
        for b in plan:
            if segments and segments[-1][0] == [b]:
                segments[-1] = ([b], segments[-1][1] + 1)
            else:
                segments.append(([b], 1))
    return segments


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _linear(out: dict, name: str, layer: torch.nn.Linear, rows: slice = slice(None), scale: float = 1.0) -> None:
    """Store a Linear as [in, out] weights for x @ w + b, optionally only output rows `rows`, scaled."""
    out[f"{name}.w"] = scale * _np(layer.weight)[rows].T
    out[f"{name}.b"] = scale * _np(layer.bias)[rows]


def _projection_parts(block: ConformerBlock) -> dict[str, list[tuple[str, slice, float]]]:
    """How the graph lays out each shared projection: (graph name, output rows, scale) per part. The macaron half
    step is folded into the FFN down projections, 1/sqrt(d_k) into the query, and attention and GLU are split."""
    d, whole = block.attn_out.in_features, slice(None)
    q_scale = (d // block.n_heads) ** -0.5
    return {
        "ffn1_up": [("ffn1_up", whole, 1.0)],
        "ffn1_down": [("ffn1_down", whole, 0.5)],
        "attn_in": [
            ("attn_q", slice(0, d), q_scale),
            ("attn_k", slice(d, 2 * d), 1.0),
            ("attn_v", slice(2 * d, None), 1.0),
        ],
        "attn_out": [("attn_out", whole, 1.0)],
        "conv_in": [("conv_a", slice(0, d), 1.0), ("conv_gate", slice(d, None), 1.0)],  # GLU: value, gate
        "conv_out": [("conv_out", whole, 1.0)],
        "ffn2_up": [("ffn2_up", whole, 1.0)],
        "ffn2_down": [("ffn2_down", whole, 0.5)],
    }


def _block_weights(out: dict, prefix: str, block: ConformerBlock) -> None:
    for projection, parts in _projection_parts(block).items():
        for name, rows, scale in parts:
            _linear(out, f"{prefix}.{name}", getattr(block, projection), rows, scale)
    out[f"{prefix}.conv_dw.w"] = _np(block.conv_dw.weight)[:, 0, :].T[None, :, :, None]  # [1, K, C, 1]


def _lora_tables(block: ConformerBlock, adapters: list[BlockAdapters]) -> dict[str, np.ndarray]:
    """The adapters of the depths one loop position runs, as tables [iterations, ...] the loop counter gathers:
    x @ a[i] @ b[i] is depth i's B A x, split and scaled like the projection it adapts."""
    out = {}
    for projection, parts in _projection_parts(block).items():
        for name, rows, scale in parts:
            out[f"lora.{name}.a"] = np.stack([_np(a[projection].down.weight).T for a in adapters])  # [n, in, r]
            out[f"lora.{name}.b"] = np.stack([scale * _np(a[projection].up.weight)[rows].T for a in adapters])
    return out


def _norm_weights(norms: BlockNorms, conv_bias: torch.Tensor) -> dict[str, np.ndarray]:
    """LayerNorm gains and biases, and BatchNorm (eval statistics) with the depthwise bias as scale and shift."""
    out = {}
    for name in ("ffn1", "attn", "conv", "ffn2", "final"):
        ln = getattr(norms, name)
        if abs(ln.eps - 1e-5) > 1e-12:
            raise LoopExportError(f"LayerNorm {name} has eps {ln.eps}; the loop export assumes 1e-5")
        out[f"{name}.g"], out[f"{name}.b"] = _np(ln.weight), _np(ln.bias)
    bn = norms.conv_bn
    scale = _np(bn.weight) / np.sqrt(_np(bn.running_var) + bn.eps)
    out["bn.scale"], out["bn.shift"] = scale, (_np(conv_bias) - _np(bn.running_mean)) * scale + _np(bn.bias)
    return out


def _fold_bn_scale(w: dict[str, np.ndarray], conv_key: str, scale_keys: list[str]) -> None:
    """Move a block's typical BatchNorm scale (per channel; geometric mean over its depths) into its depthwise weights.

    Why: BatchNorm scales spread over 10x across channels. Applied after the convolution, int8 would quantize the
    unscaled output with one step for all channels and then amplify the small channels' rounding. Folded, the
    convolution's output is quantized at its real scale and only the per-depth ratio (near 1) is applied after it;
    a shared norm's ratio is exactly 1 and is dropped.
    """
    scales = np.concatenate([np.atleast_2d(w[k]) for k in scale_keys])
    typical = np.where(scales[0] < 0, -1.0, 1.0) * np.exp(np.log(np.abs(scales) + 1e-12).mean(axis=0))
    w[conv_key] = w[conv_key] * typical[None, None, :, None]
    for key in scale_keys:
        ratio = w[key] / typical
        if np.allclose(ratio, 1.0, rtol=1e-6, atol=0.0):
            del w[key]
        else:
            w[key] = ratio


def check_exportable(model: torch.nn.Module, config: Config) -> None:
    """Raise LoopExportError naming what the loop export does not support."""
    if not isinstance(model, (KeywordConformer, CTCConformer)):
        raise LoopExportError(f"the loop export needs a keyword or CTC Conformer, not {type(model).__name__}")
    if model.training:
        raise LoopExportError("the model is in training mode; call model.eval() (BatchNorm statistics are folded)")


def loop_weights(model: ConformerWithHead, config: Config) -> tuple[dict[str, np.ndarray], dict]:
    """(named float32 arrays, graph spec) for `asr.export.loop_graph`."""
    check_exportable(model, config)
    m, enc = config.model, model.encoder
    segments = loop_segments(enc.plan)
    w: dict[str, np.ndarray] = {}
    sub = model.subsampling
    for i, conv in enumerate(c for c in sub.conv if isinstance(c, torch.nn.Conv2d)):
        w[f"front.conv{i}.w"] = _np(conv.weight).transpose(2, 3, 1, 0)  # [kh, kw, in, out]
        w[f"front.conv{i}.b"] = _np(conv.bias)
    # torch flattens the subsampled map as (channel, mel); TensorFlow's NHWC as (mel, channel).
    proj = _np(sub.proj.weight)
    channels = sub.conv[0].out_channels
    proj = proj.reshape(proj.shape[0], channels, -1).transpose(0, 2, 1).reshape(proj.shape[0], -1)
    w["front.proj.w"], w["front.proj.b"] = proj.T, _np(sub.proj.bias)
    scale_keys: dict[int, list[str]] = {}  # BatchNorm scale entries (shared or per-depth tables) of each block
    for b, block in enumerate(enc.blocks):
        _block_weights(w, f"block{b}", block)
        if not m.per_depth_norm:
            w.update({f"block{b}.{k}": v for k, v in _norm_weights(block.norms, block.conv_dw.bias).items()})
            scale_keys[b] = [f"block{b}.bn.scale"]
    depth = 0  # per-depth parameters: tables [iterations, ...] per loop position, gathered by the loop counter
    for s, (blocks, iterations) in enumerate(segments):
        for j, b in enumerate(blocks):
            depths = [depth + i * len(blocks) + j for i in range(iterations)]
            if m.per_depth_norm:
                tables = [_norm_weights(enc.depth_norms[d], enc.blocks[b].conv_dw.bias) for d in depths]
                w.update({f"seg{s}.pos{j}.{k}": np.stack([t[k] for t in tables]) for k in tables[0]})
                scale_keys.setdefault(b, []).append(f"seg{s}.pos{j}.bn.scale")
            if m.lora_rank:
                lora = _lora_tables(enc.blocks[b], [enc.adapters[d] for d in depths])
                w.update({f"seg{s}.pos{j}.{k}": v for k, v in lora.items()})
        depth += len(blocks) * iterations
    for b, keys in scale_keys.items():
        _fold_bn_scale(w, f"block{b}.conv_dw.w", keys)
    _linear(w, "head", model.classifier)
    spec = {
        "frames": config.features.num_frames(config.features.clip_samples),
        "n_mels": config.features.n_mels,
        "heads": m.n_heads,
        "time_strides": list(sub.time_strides),
        "segments": segments,
        "per_depth_norm": m.per_depth_norm,
        "head": "ctc" if isinstance(model, CTCConformer) else "keyword",
        "head_frames": getattr(model, "head_frames", 0),
    }
    if model.context:  # causal: exported as its streaming step (asr.export.loop_graph.stream_model)
        spec["stream"] = stream_spec(model)
    return {k: v.astype(np.float32) for k, v in w.items()}, spec


def stream_spec(model: KeywordConformer) -> dict:
    """What the streaming step of a causal keyword model takes and keeps: feature frames in per step (the two
    3-frame convolutions' span) and per step (their strides), cached keys (one window's encoder frames but the new
    one), convolution inputs kept (kernel - 1), and how many frames' logits the head averages."""
    frames_in = 1
    for stride in reversed(model.subsampling.time_strides):
        frames_in = (frames_in - 1) * stride + 3
    conv = model.encoder.blocks[0].conv_dw
    return {
        "frames_in": frames_in,
        "frames_per_step": int(np.prod(model.subsampling.time_strides)),
        "keys": model.context - 1,
        "kernel": conv.kernel_size[0],
        "d_model": conv.in_channels,
        "head_frames": model.head_frames,
    }


def export_loop_tflite(
    model: ConformerWithHead,
    config: Config,
    calibration_features: np.ndarray,
    out_path: Path,
    *,
    float_path: Path | None = None,
    int8_carry: bool = True,
) -> dict:
    """Write the full-int8 loop model to `out_path` (and the float32 one to `float_path`); return what it is.

    `calibration_features`: normalised log-mel windows [N, frames, n_mels] for the int8 activation ranges.
    `int8_carry`: the loop-carried tensor in int8 (smaller arena; see loop_tflite).
    Returned dict: file and constant bytes, op counts, loops, loop-carried tensors made int8, int8 input/output
    scale and zero point (output kind: logits), conversion seconds.
    """
    if len(calibration_features) == 0:
        raise InputError(f"{out_path}: the calibration set is empty; int8 conversion needs real feature windows")
    check_exportable(model, config)
    expected = (config.features.num_frames(config.features.clip_samples), config.features.n_mels)
    if tuple(calibration_features.shape[1:]) != expected:
        raise InputError(f"calibration features have shape {calibration_features.shape[1:]}, expected {expected}")
    weights, spec = loop_weights(model, config)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="loop-", dir=out_path.parent) as tmp:
        work = Path(tmp)
        np.savez(work / "weights.npz", **weights)
        (work / "spec.json").write_text(json.dumps(spec))
        np.save(work / "calibration.npy", calibration_features.astype(np.float32))
        _run_child(work)
        int8 = (work / "int8.tflite").read_bytes()
        carried = 0
        if int8_carry:
            int8, carried = int8_loop_carry(int8)
        if "stream" in spec:
            int8 = share_cache_quantization(int8, caches=len(STREAM_CACHES))
        int8, dropped = drop_identity_requantize(int8)
        if "stream" in spec:
            int8 = caches_as_variables(int8, STREAM_CACHES)
            float32 = (work / "float32.tflite").read_bytes()
            (work / "float32.tflite").write_bytes(caches_as_variables(float32, STREAM_CACHES))
        (work / "int8.tflite").write_bytes(int8)
        info = inspect_tflite(work / "int8.tflite").summary()
        os.replace(work / "int8.tflite", out_path)
        if float_path is not None:
            os.replace(work / "float32.tflite", float_path)
    info.pop("duplicated_constants")
    return {
        "route": "loop",
        **info,
        "loops": [{"blocks": blocks, "iterations": n} for blocks, n in spec["segments"]],
        "int8_carried_tensors": carried,
        "identity_requantize_dropped": dropped,
        **_io_quantization(out_path),
        "seconds": round(time.perf_counter() - start, 1),
    }


def _io_quantization(path: Path) -> dict:
    details = dict(zip(("input", "output"), io_details(path), strict=True))
    out = {
        k: {
            "shape": [int(n) for n in d["shape"]],
            "dtype": np.dtype(d["dtype"]).name,
            "scale": float(d["quantization"][0]),
            "zero_point": int(d["quantization"][1]),
        }
        for k, d in details.items()
    }
    out["output"]["kind"] = "log_probs" if len(out["output"]["shape"]) == 3 else "logits"
    return out


def _run_child(work: Path) -> None:
    """Build and convert in a child process: TensorFlow stays out of this one (see asr.export.tflite)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    with (work / "convert.log").open("w") as log:
        proc = subprocess.run(
            [sys.executable, "-m", "asr.export.loop_graph", str(work)], stdout=log, stderr=subprocess.STDOUT, env=env
        )
    if proc.returncode != 0 or not (work / "int8.tflite").is_file():
        tail = "\n".join((work / "convert.log").read_text(errors="replace").splitlines()[-25:])
        raise RuntimeError(f"loop conversion failed (exit {proc.returncode}):\n{tail}")
