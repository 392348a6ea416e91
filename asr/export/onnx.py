"""PyTorch -> ONNX with a static [1, frames, n_mels] input: the shape TFLite Micro needs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

INPUT_NAME = "features"
OUTPUT_NAME = "scores"


def export_onnx(model: torch.nn.Module, path: Path, input_shape: tuple[int, ...]) -> Path:
    """Write `model` (eval mode) to `path` with the TorchScript exporter.

    dynamo=False and opset 17: this exporter stores tied weights once and onnx2tf converts its output; the dynamo
    exporter duplicated tied Linear weights.
    """
    model.eval()
    example = torch.zeros(input_shape, dtype=torch.float32)
    with torch.no_grad():
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamo=False,
            opset_version=17,
        )
    return path


def run_onnx(path: Path, features: np.ndarray) -> np.ndarray:
    """Scores [N, C] of ONNX Runtime for features [N, frames, n_mels], one window at a time (batch 1)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {INPUT_NAME: x[None]})[0] for x in features.astype(np.float32)])


def onnx_nodes_of_type(path: Path, op_type: str) -> list[str]:
    """Names of the ONNX nodes of `op_type` (case-insensitive): where a TFLite op came from."""
    import onnx

    graph = onnx.load(str(path)).graph
    return [node.name or node.output[0] for node in graph.node if node.op_type.lower() == op_type.lower()]
