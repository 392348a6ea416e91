"""The keyword Conformer in TensorFlow with its tied blocks as `tf.while_loop`s, and its TFLite conversion.

Why our own TensorFlow: the PyTorch -> ONNX -> onnx2tf route unrolls a tied block once per depth (~35 KB of flash
and arena per layer). Written here, a tied block is the body of ONE loop, which TFLite keeps as a WHILE op over a
single subgraph: file and arena stay flat with depth. Every op is chosen to lower to a TFLite Micro builtin:
2-D matmuls (FULLY_CONNECTED), LayerNorm as MEAN/SUB/MUL/RSQRT, SiLU as LOGISTIC*MUL, GLU as two projections,
the depthwise convolution as DEPTHWISE_CONV_2D. Per-depth normalisation and LoRA adapters are gathered from stacked
tables by the loop counter (GATHER).

Imports TensorFlow: run it in a child process (`python -m asr.export.loop_graph WORKDIR`), like onnx2tf in
`asr.export.tflite`, so the calling process can still load tflite-runtime. Inputs (written by `asr.export.loop`):
WORKDIR/weights.npz, WORKDIR/spec.json, WORKDIR/calibration.npy. Outputs: WORKDIR/float32.tflite, WORKDIR/int8.tflite.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

from asr.export.loop_tflite import STREAM_CACHES

LN_EPS = 1e-5


class Weights:
    """Named float32 constants; `norm(block, name, depth)` returns shared or per-depth (gathered) parameters."""

    def __init__(self, arrays: dict[str, np.ndarray], per_depth_norm: bool):
        self.c = {k: tf.constant(v, tf.float32) for k, v in arrays.items()}
        self.per_depth_norm = per_depth_norm

    def has(self, name: str) -> bool:
        return name in self.c

    def __getitem__(self, name: str) -> tf.Tensor:
        return self.c[name]

    def norm(self, prefix: str, name: str, index: tf.Tensor | None) -> tf.Tensor:
        """`prefix` names the block (shared) or the loop position (per depth: a table gathered at `index`)."""
        if index is None:
            return self.c[f"{prefix}.{name}"]
        return tf.gather(self.c[f"{prefix}.{name}"], index)


def layer_norm(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    mean = tf.reduce_mean(x, axis=-1, keepdims=True)
    centred = x - mean
    var = tf.reduce_mean(centred * centred, axis=-1, keepdims=True)
    return centred * tf.math.rsqrt(var + LN_EPS) * g + b


def silu(x: tf.Tensor) -> tf.Tensor:
    return x * tf.sigmoid(x)


def linear(x: tf.Tensor, w: Weights, name: str) -> tf.Tensor:
    return tf.matmul(x, w[f"{name}.w"]) + w[f"{name}.b"]


def conformer_block(
    x: tf.Tensor,
    w: Weights,
    block: str,
    position: str,
    index: tf.Tensor,
    heads: int,
    cache: tuple[tf.Tensor, tf.Tensor, tf.Tensor] | None = None,
):
    """asr.model.block.ConformerBlock (eval mode) on x [T, D]: projections from `block`; norms from `block`, or
    per depth from the loop `position`'s tables at `index` (the loop counter), as are the LoRA adapters.

    With `cache` (a causal block's streaming step: x is ONE new frame [1, D]), attention also reads the keys and
    values [L, D] of the L frames before it, and the depthwise convolution its inputs [K - 1, D]; returns
    (x, the caches with the new frame appended and the oldest dropped). One frame needs no causal mask."""
    d = x.shape[1]
    norm, norm_index = (position, index) if w.per_depth_norm else (block, None)

    def ln(name: str, y: tf.Tensor) -> tf.Tensor:
        return layer_norm(y, w.norm(norm, f"{name}.g", norm_index), w.norm(norm, f"{name}.b", norm_index))

    def proj(name: str, y: tf.Tensor) -> tf.Tensor:
        out = linear(y, w, f"{block}.{name}")
        if w.has(f"{position}.lora.{name}.a"):  # this depth's low-rank adapter: y @ A_i @ B_i
            a, b = (tf.gather(w[f"{position}.lora.{name}.{m}"], index) for m in "ab")
            out = out + tf.matmul(tf.matmul(y, a), b)
        return out

    def ffn(prefix: str, y: tf.Tensor) -> tf.Tensor:  # the macaron 0.5 is folded into `*_down`
        return proj(f"{prefix}_down", silu(proj(f"{prefix}_up", ln(prefix, y))))

    def heads_first(y: tf.Tensor) -> tf.Tensor:  # [T, D] -> [H, T, D/H]
        return tf.transpose(tf.reshape(y, [y.shape[0], heads, d // heads]), [1, 0, 2])

    x = x + ffn("ffn1", x)
    h = ln("attn", x)
    q, k, v = (proj(f"attn_{p}", h) for p in "qkv")  # 1/sqrt(dk) folded into q
    if cache is not None:
        k, v = tf.concat([cache[0], k], 0), tf.concat([cache[1], v], 0)
    o = tf.matmul(tf.nn.softmax(tf.matmul(heads_first(q), heads_first(k), transpose_b=True), axis=-1), heads_first(v))
    x = x + proj("attn_out", tf.reshape(tf.transpose(o, [1, 0, 2]), [x.shape[0], d]))
    h = ln("conv", x)
    h = proj("conv_a", h) * tf.sigmoid(proj("conv_gate", h))  # GLU
    if cache is not None:
        h = tf.concat([cache[2], h], 0)  # the kernel's K frames, the new one last
    conv_in = h
    h = tf.nn.depthwise_conv2d(
        tf.reshape(h, [1, 1, h.shape[0], d]),
        w[f"{block}.conv_dw.w"],
        [1, 1, 1, 1],
        "SAME" if cache is None else "VALID",
    )
    h = tf.reshape(h, [x.shape[0], d])
    if w.has(f"{norm}.bn.scale"):  # the per-depth part of BatchNorm's scale (its shared part is in the weights)
        h = h * w.norm(norm, "bn.scale", norm_index)
    h = h + w.norm(norm, "bn.shift", norm_index)  # BatchNorm's shift with the convolution's bias
    x = x + proj("conv_out", silu(h))
    x = x + ffn("ffn2", x)
    x = ln("final", x)
    if cache is None:
        return x
    return x, tuple(drop_first(c) for c in (k, v, conv_in))


def drop_first(x: tf.Tensor) -> tf.Tensor:
    """x[1:] as a GATHER (a kernel the loop already has): TFLite Micro's STRIDED_SLICE is 9.7 KB of flash."""
    return tf.gather(x, tf.range(1, x.shape[0]))


def front(features: tf.Tensor, w: Weights, time_strides: list[int]) -> tf.Tensor:
    """asr.model.subsampling.ConvSubsampling on features [1, T, F] -> [T', D] (NHWC convolutions)."""
    _, t, f = features.shape
    h = tf.reshape(features, [1, t, f, 1])
    for i, stride in enumerate(time_strides):
        h = tf.nn.relu(tf.nn.conv2d(h, w[f"front.conv{i}.w"], [1, stride, 2, 1], "VALID") + w[f"front.conv{i}.b"])
    _, t, f, c = h.shape
    return linear(tf.reshape(h, [t, f * c]), w, "front.proj")


def keyword_model(spec: dict, w: Weights) -> tf.types.experimental.ConcreteFunction:
    """features [1, frames, n_mels] -> logits [1, classes] (spec "head" "keyword"), or per-frame CTC
    log-probabilities [1, frames', vocab + 1] (head "ctc"); each loop segment is one tf.while_loop."""

    def body(x: tf.Tensor, segment: int, blocks: list[int], index: tf.Tensor) -> tf.Tensor:
        for j, b in enumerate(blocks):
            x = conformer_block(x, w, f"block{b}", f"seg{segment}.pos{j}", index, spec["heads"])
        return x

    @tf.function(input_signature=[tf.TensorSpec([1, spec["frames"], spec["n_mels"]], tf.float32)])
    def model(features: tf.Tensor) -> tf.Tensor:
        x = front(features, w, spec["time_strides"])
        for s, (blocks, iterations) in enumerate(spec["segments"]):
            # Even one iteration is a loop: its own subgraph keeps its constants from being folded into new weights.
            _, x = tf.while_loop(
                lambda i, _x, n=iterations: i < n,
                lambda i, y, s=s, blocks=blocks: (i + 1, body(y, s, blocks, i)),
                (tf.constant(0), x),
            )
        if spec.get("head") == "ctc":
            return tf.nn.log_softmax(linear(x, w, "head"), axis=-1)[None]
        head = spec.get("head_frames", 0)  # the mean of the last frames (0: all)
        return linear(tf.reduce_mean(x[-head:] if head else x, axis=0, keepdims=True), w, "head")

    return model.get_concrete_function()


def stream_model(spec: dict, w: Weights) -> tf.types.experimental.ConcreteFunction:
    """A causal keyword model's streaming step: the feature frames [1, frames_in, n_mels] that complete one new
    encoder frame, and each depth's caches (keys, values [depth, L, D]; convolution inputs [depth, K - 1, D]) ->
    that frame's logits [1, classes] and the caches moved on by one frame.

    The caches are loop variables: each iteration takes its depth's from the front and appends the new ones at
    the back, so after all depths they are back in depth order, and the loop body stays one subgraph. After
    conversion they become variables the model keeps (asr.export.loop_tflite.caches_as_variables)."""
    st = spec["stream"]
    depth = sum(len(blocks) * n for blocks, n in spec["segments"])
    keys_shape, conv_shape = [depth, st["keys"], st["d_model"]], [depth, st["kernel"] - 1, st["d_model"]]
    shapes = (keys_shape, keys_shape, conv_shape)  # STREAM_CACHES'

    def body(x, caches, segment: int, blocks: list[int], index: tf.Tensor):
        for j, b in enumerate(blocks):
            x, new = conformer_block(
                x,
                w,
                f"block{b}",
                f"seg{segment}.pos{j}",
                index,
                spec["heads"],
                cache=tuple(tf.gather(c, 0) for c in caches),
            )
            caches = tuple(
                tf.concat([drop_first(c), tf.expand_dims(n, 0)], 0) for c, n in zip(caches, new, strict=True)
            )
        return x, caches

    @tf.function(
        input_signature=[
            tf.TensorSpec([1, st["frames_in"], spec["n_mels"]], tf.float32, name="features"),
            *(tf.TensorSpec(shape, tf.float32, name=name) for name, shape in zip(STREAM_CACHES, shapes, strict=True)),
        ]
    )
    def model(features, keys, values, conv):
        x = front(features, w, spec["time_strides"])
        caches = (keys, values, conv)
        for s, (blocks, iterations) in enumerate(spec["segments"]):
            _, x, caches = tf.while_loop(
                lambda i, _x, _c, n=iterations: i < n,
                lambda i, y, c, s=s, blocks=blocks: (i + 1, *body(y, c, s, blocks, i)),
                (tf.constant(0), x, caches),
            )
        return (linear(x, w, "head"), *caches)

    return model.get_concrete_function()


def stream_calibration(concrete, spec: dict, windows: np.ndarray, samples: int = 200) -> list[list[np.ndarray]]:
    """Representative inputs of the streaming step: the calibration windows played one after another from empty
    caches, the float model's own caches sampled along the way (int8 needs their real ranges)."""
    st = spec["stream"]
    features = windows.reshape(-1, windows.shape[-1]).astype(np.float32)
    steps = range(0, len(features) - st["frames_in"] + 1, st["frames_per_step"])
    keep = set(np.linspace(len(steps) // 10, len(steps) - 1, samples).astype(int))
    caches = [np.zeros(t.shape, np.float32) for t in concrete.inputs[1:4]]
    out = []
    for n, start in enumerate(steps):
        inputs = [features[None, start : start + st["frames_in"]], *caches]
        if n in keep:
            out.append(inputs)
        caches = [c.numpy() for c in concrete(*[tf.constant(a) for a in inputs])[1:]]
    return out


def convert(concrete: tf.types.experimental.ConcreteFunction, calibration: list[list[np.ndarray]] | None) -> bytes:
    """float32 TFLite, or full-int8 (int8 inputs and outputs) when calibration inputs are given (one list of
    input arrays per sample).

    The default (MLIR) quantizer handles WHILE; the old one refuses it."""
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    if calibration is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: iter(calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def main(workdir: Path) -> None:
    spec = json.loads((workdir / "spec.json").read_text())
    with np.load(workdir / "weights.npz") as npz:
        w = Weights(dict(npz), spec["per_depth_norm"])
    windows = np.load(workdir / "calibration.npy")
    if "stream" in spec:
        concrete = stream_model(spec, w)
        calibration = stream_calibration(concrete, spec, windows)
    else:
        concrete = keyword_model(spec, w)
        calibration = [[x[None].astype(np.float32)] for x in windows]
    (workdir / "float32.tflite").write_bytes(convert(concrete, None))
    (workdir / "int8.tflite").write_bytes(convert(concrete, calibration))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
