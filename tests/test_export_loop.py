"""The loop export: tied blocks as one TFLite WHILE loop, flat in depth, computing what PyTorch computes."""

from pathlib import Path

import numpy as np
import pytest
import torch

from asr.config import load_config
from asr.export.flatbuffer import inspect_tflite
from asr.export.loop import export_loop_tflite, loop_segments
from asr.export.micro import probe
from asr.export.parity import torch_scores
from asr.export.routes import choose_route
from asr.export.windows import corpus_windows
from asr.model import build_model, num_outputs
from asr.model.checkpoint import load_checkpoint
from asr.runtime.bundle import Manifest
from asr.runtime.host_interpreters import run_litert, run_micro
from asr.runtime.interpreter import dequantize, quantize


def tiny_config(depth: int, **model):
    overrides = {"model.d_model": 32, "model.ffn_dim": 64, "model.kernel_size": 7, "model.depth": depth}
    return load_config("kws-tiny", overrides | {f"model.{k}": v for k, v in model.items()})


@pytest.fixture(scope="module")
def calibration(kws_checkpoint, commands_corpus):
    """Calibration windows from the training split of the real generated corpus."""
    return corpus_windows(load_checkpoint(kws_checkpoint).config, commands_corpus, "train", 48)[0]


def test_segments_follow_the_sharing_plan():
    assert loop_segments([0, 0, 0, 0]) == [([0], 4)]
    assert loop_segments([0, 1, 0, 1, 0, 1]) == [([0, 1], 3)]
    assert loop_segments([0, 0, 1, 1]) == [([0], 2), ([1], 2)]
    assert loop_segments([0, 1, 2]) == [([0], 1), ([1], 1), ([2], 1)]


def test_file_does_not_grow_with_depth(tmp_path: Path, calibration):
    sizes = {}
    for depth in (2, 4):
        torch.manual_seed(0)
        config = tiny_config(depth, per_depth_norm=False)
        model = build_model(config, num_outputs(config)).eval()
        info = export_loop_tflite(model, config, calibration, tmp_path / f"n{depth}.tflite")
        assert info["loops"] == [{"blocks": [0], "iterations": depth}]
        assert info["int8_carried_tensors"] == 1
        assert info["op_counts"]["WHILE"] == 1
        sizes[depth] = info["file_bytes"]
    assert abs(sizes[4] - sizes[2]) <= 256, sizes


# The test model trained for a minute has near-tied logits on some of the tiny corpus's 33 test windows, where one
# int8 rounding flips a label (one window is 3%); a broken export agrees on about one window in thirteen (chance).
MIN_AGREEMENT = 0.85


@pytest.fixture(scope="module")
def loop_manifest(kws_export_loop) -> Manifest:
    return Manifest.read(kws_export_loop)


@pytest.mark.slow
def test_asr_export_route_loop_writes_the_export_contract(kws_export_loop, loop_manifest):
    m, r = loop_manifest, loop_manifest.report
    assert r["route"] == "loop" and "route_note" not in r
    assert r["route_details"]["loops"] == [{"blocks": [0], "iterations": r["sharing"]["depth"]}]
    assert m.models == {"int8": "model_int8.tflite", "float32": "model_float32.tflite"}  # no ONNX on this route
    for name, size in r["files"].items():
        assert (kws_export_loop / name).stat().st_size == size
    assert m.input.shape == [1, 97, 40] and m.input.dtype == "int8" and m.input.scale > 0
    assert m.output.shape == [1, len(m.labels)] and m.output_kind == "logits"
    assert m.features.n_mels == 40 and r["versions"]["tflite-micro"] != "not installed"
    int8 = inspect_tflite(kws_export_loop / "model_int8.tflite")
    assert int8.duplicates == [] and r["weights"]["int8_constant_bytes"] == int8.constant_bytes
    assert r["tflite"]["int8"]["op_counts"]["WHILE"] == 1
    # the float TensorFlow re-implementation is the PyTorch model
    assert r["parity"]["float32"]["tflite_float32_max_abs_diff"] < 1e-3
    q = r["parity"]["int8"]
    assert q["criterion"] == "labels" and set(q["label_agreement"]) == set(q["max_lsb_diff"])
    assert q["within_tolerance"] == (min(q["label_agreement"].values()) >= q["label_agreement_min"])
    assert q["micro_vs_torch_label_agreement"] >= MIN_AGREEMENT
    acc = r["accuracy"]
    assert acc["windows"] > 0 and acc["int8_vs_torch_label_agreement"] >= MIN_AGREEMENT
    assert acc["int8_drop_vs_torch_points"] == pytest.approx(acc["torch"] - acc["tflite_int8"], abs=1e-3)
    assert set(r["latency_ms"]) >= {"ai_edge_litert", "tflite_runtime", "tflite_micro"}


@pytest.mark.slow
def test_loop_export_runs_in_tflite_micro_with_its_measured_arena(
    kws_export_loop, loop_manifest, kws_checkpoint, commands_corpus
):
    """TFLite Micro runs the WHILE model in the manifest's arena and picks PyTorch's labels on held-out clips."""
    loaded = load_checkpoint(kws_checkpoint)
    test = corpus_windows(loaded.config, commands_corpus, "testing", 40)[0]
    path, m = kws_export_loop / "model_int8.tflite", loop_manifest
    measured = m.report["arena_measured_bytes"]
    assert m.arena_bytes >= measured and probe(path, measured)[0]
    assert not probe(path, measured - 64)[0]
    micro, _ = run_micro(path, quantize(test, m.input.scale, m.input.zero_point), m.arena_bytes)
    scores = dequantize(micro, m.output.scale, m.output.zero_point)
    agreement = float(np.mean(scores.argmax(1) == torch_scores(loaded.model, test).argmax(1)))
    assert agreement >= MIN_AGREEMENT, agreement


def test_default_route_is_the_loop_even_with_lora():
    lora = tiny_config(2, lora_rank=2)
    model = build_model(lora, num_outputs(lora)).eval()
    assert choose_route(None, model, lora) == ("loop", None)
    assert choose_route("unrolled", model, lora) == ("unrolled", None)


def test_lora_adapters_run_per_depth_in_the_loop(tmp_path: Path, calibration):
    """Per-depth LoRA on a cycle of two stored blocks: the float TFLite model computes what PyTorch computes, and
    without the adapters' tables it would not (each depth's adapters are random here, not the zeros they start at)."""
    torch.manual_seed(0)
    config = tiny_config(4, lora_rank=2, sharing="cycle", unique_blocks=2)
    model = build_model(config, num_outputs(config)).eval()
    for adapters in model.encoder.adapters:
        for lora in adapters.values():
            torch.nn.init.normal_(lora.up.weight, std=0.2)
    info = export_loop_tflite(model, config, calibration, tmp_path / "int8.tflite", float_path=tmp_path / "f.tflite")
    assert info["loops"] == [{"blocks": [0, 1], "iterations": 2}] and info["op_counts"]["GATHER"] > 0
    assert inspect_tflite(tmp_path / "f.tflite").duplicates == []  # q, k and v's one A table is stored once
    windows = calibration[:8]
    reference = torch_scores(model, windows)
    tflite = run_litert(tmp_path / "f.tflite", windows)[0]
    for adapters in model.encoder.adapters:
        for lora in adapters.values():
            torch.nn.init.zeros_(lora.up.weight)
    without = torch_scores(model, windows)
    error, effect = np.abs(tflite - reference).max(), np.abs(without - reference).max()
    assert error < 1e-3 * max(1.0, np.abs(reference).max()) and effect > 100 * error, (error, effect)
    # and TFLite Micro runs the int8 model: the gathered adapter tables feed its matmuls as int8 tensors
    inp, out = info["input"], info["output"]
    micro, _ = run_micro(tmp_path / "int8.tflite", quantize(windows, inp["scale"], inp["zero_point"]), 400_000)
    int8 = dequantize(micro, out["scale"], out["zero_point"])
    assert np.corrcoef(int8.ravel(), reference.ravel())[0, 1] > 0.95
