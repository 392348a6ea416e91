"""The loop export: tied blocks as one TFLite WHILE loop, flat in depth, computing what PyTorch computes."""

from pathlib import Path

import numpy as np
import pytest
import torch

from asr.config import load_config
from asr.export.flatbuffer import inspect_tflite
from asr.export.loop import LoopExportError, export_loop_tflite, loop_segments
from asr.export.micro import measure_arena
from asr.export.parity import dequantize, quantize, torch_scores
from asr.export.runtimes import run_litert, run_micro
from asr.export.windows import corpus_windows
from asr.model import build_model, num_outputs
from asr.train.checkpoint import load_checkpoint


def tiny_config(depth: int, **model):
    overrides = {"model.d_model": 32, "model.ffn_dim": 64, "model.kernel_size": 7, "model.depth": depth}
    return load_config("kws-tiny", overrides | {f"model.{k}": v for k, v in model.items()})


@pytest.fixture(scope="module")
def windows(kws_checkpoint, commands_corpus):
    """(calibration windows from the training split, test windows) of the real generated corpus."""
    config = load_checkpoint(kws_checkpoint).config
    calibration = corpus_windows(config, commands_corpus, "train", 48)[0]
    test = corpus_windows(config, commands_corpus, "testing", 40)[0]
    return calibration, test


def test_segments_follow_the_sharing_plan():
    assert loop_segments([0, 0, 0, 0]) == [([0], 4)]
    assert loop_segments([0, 1, 0, 1, 0, 1]) == [([0, 1], 3)]
    assert loop_segments([0, 0, 1, 1]) == [([0], 2), ([1], 2)]
    assert loop_segments([0, 1, 2]) == [([0], 1), ([1], 1), ([2], 1)]
    assert loop_segments([0, 0, 0, 0], peel_first=True) == [([0], 1), ([0], 3)]


def test_file_does_not_grow_with_depth(tmp_path: Path, windows):
    calibration, _ = windows
    sizes = {}
    for depth in (2, 4):
        torch.manual_seed(0)
        config = tiny_config(depth, per_depth_norm=False)
        model = build_model(config, num_outputs(config)).eval()
        info = export_loop_tflite(model, config, calibration, tmp_path / f"n{depth}.tflite", peel_first=False)
        assert info["loops"] == [{"blocks": [0], "iterations": depth}]
        assert info["int8_carried_tensors"] == 1
        assert info["op_counts"]["WHILE"] == 1
        sizes[depth] = info["file_bytes"]
    assert abs(sizes[4] - sizes[2]) <= 256, sizes


def test_trained_model_matches_pytorch_in_tflite_micro(tmp_path: Path, kws_checkpoint, windows):
    calibration, test = windows
    loaded = load_checkpoint(kws_checkpoint)
    int8_path, float_path = tmp_path / "loop_int8.tflite", tmp_path / "loop_float32.tflite"
    info = export_loop_tflite(loaded.model, loaded.config, calibration, int8_path, float_path=float_path)
    reference = torch_scores(loaded.model, test)

    # The float TensorFlow re-implementation is the PyTorch model.
    float_scores, _ = run_litert(float_path, test)
    assert np.abs(float_scores - reference).max() < 1e-4

    # The int8 loop runs in TFLite Micro (which registers WHILE) and picks PyTorch's labels.
    assert "WHILE" in inspect_tflite(int8_path).op_counts
    inputs = quantize(test, info["input"]["scale"], info["input"]["zero_point"])
    micro, _ = run_micro(int8_path, inputs, measure_arena(int8_path))
    litert, _ = run_litert(int8_path, inputs)
    # Kernels round differently by a few LSB per op, and the loop feeds each block's rounding into the next:
    # compare labels, not raw outputs.
    assert np.mean(micro.argmax(1) == litert.argmax(1)) >= 0.95
    scores = dequantize(micro, info["output"]["scale"], info["output"]["zero_point"])
    agreement = float(np.mean(scores.argmax(1) == reference.argmax(1)))
    assert agreement >= 0.9, agreement


def test_lora_is_refused_by_name(tmp_path: Path):
    config = tiny_config(2, lora_rank=2)
    model = build_model(config, num_outputs(config)).eval()
    with pytest.raises(LoopExportError, match="lora_rank"):
        export_loop_tflite(model, config, np.zeros((1, 97, 40), np.float32), tmp_path / "x.tflite")
