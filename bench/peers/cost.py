"""What a window costs: multiply-accumulates and measured latency.

MACs are counted by PyTorch's own `torch.utils.flop_counter.FlopCounterMode` on one forward pass of one window:
it sees every matrix product and convolution the network runs (Linear, Conv1d/2d including depthwise, the attention
matmuls), at every depth, whether or not the weights are tied. MACs = its FLOPs / 2. Elementwise work
(normalisation, activations, softmax, residual adds) is not counted, the usual convention for keyword models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from asr.runtime.host_interpreters import io_details, run_litert
from asr.runtime.interpreter import quantize


def count_macs(model: torch.nn.Module, window_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass on a zero window of `window_shape` ([1, frames, n_mels])."""
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(window_shape))
    return int(counter.get_total_flops() // 2)


def litert_latency_ms(tflite_path: Path, windows: np.ndarray) -> float:
    """Median ms per window of the int8 model in ai-edge-litert (one thread, batch 1) over `windows`."""
    details, _ = io_details(tflite_path)
    scale, zero_point = details["quantization"]
    x = quantize(windows, scale, zero_point) if np.dtype(details["dtype"]).kind in "iu" else windows
    return run_litert(tflite_path, x)[1]
