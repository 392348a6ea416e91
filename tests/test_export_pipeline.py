"""The export of a tiny trained tied keyword model: manifest, parity, accuracy, weights stored once, arena."""

import json

import numpy as np
import pytest

from asr.export import flatbuffer
from asr.export.micro import probe
from asr.export.parity import INT8_LSB_TOLERANCE
from asr.runtime.bundle import BundleError, Manifest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def manifest(kws_export) -> Manifest:
    return Manifest.read(kws_export)


def test_export_directory_is_complete(kws_export, manifest):
    report = manifest.report
    assert report["route"] == "unrolled" and manifest.models["onnx"] == "model.onnx"
    for name in manifest.models.values():
        assert (kws_export / name).stat().st_size > 1000
    assert manifest.input.shape == [1, 97, 40] and manifest.input.dtype == "int8"
    assert manifest.output.shape == [1, len(manifest.labels)] and manifest.output_kind == "logits"
    assert manifest.wake_word == manifest.keywords[0] == "marvin"  # the config's data.wake_word
    assert report["sharing"]["plan"] is not None and len(report["sharing"]["plan"]) == report["sharing"]["depth"]
    assert not list(kws_export.parent.glob(".kws.*")), "staging directories left behind"


def test_an_old_manifest_says_what_to_re_export(kws_export, tmp_path):
    values = json.loads((kws_export / "manifest.json").read_text())
    values.pop("format")
    (tmp_path / "manifest.json").write_text(json.dumps(values))
    with pytest.raises(BundleError, match=r"format 'none'.*export the model again \(`asr export CHECKPOINT"):
        Manifest.read(tmp_path)


def test_parity_within_tolerance(manifest):
    f = manifest.report["parity"]["float32"]
    assert f["onnxruntime_max_abs_diff"] <= f["tolerance"] and f["tflite_float32_max_abs_diff"] <= f["tolerance"]
    q = manifest.report["parity"]["int8"]
    assert set(q["max_lsb_diff"]) == {
        "ai_edge_litert_vs_tflite_runtime",
        "ai_edge_litert_vs_tflite_micro",
        "tflite_runtime_vs_tflite_micro",
    }
    # recorded rather than enforced: a model trained for a minute has a tiny output scale, so rounding shows more
    assert q["within_tolerance"] == (max(q["max_lsb_diff"].values()) <= INT8_LSB_TOLERANCE)
    assert q["micro_vs_torch_label_agreement"] >= 0.9


def test_int8_accuracy_recorded(manifest):
    acc = manifest.report["accuracy"]
    assert acc["windows"] > 0
    assert acc["int8_vs_float_label_agreement"] >= 0.9
    assert abs(acc["tflite_float32"] - acc["torch"]) <= 100.0 / acc["windows"]  # float32 TFLite = PyTorch


def test_tflite_micro_labels_match_pytorch(kws_export, manifest, kws_checkpoint, commands_corpus):
    """The int8 model in TFLite Micro picks the same labels as PyTorch on generated held-out clips."""
    from asr.export.parity import torch_scores
    from asr.export.windows import corpus_windows
    from asr.model.checkpoint import load_checkpoint
    from asr.runtime.host_interpreters import run_micro
    from asr.runtime.interpreter import quantize

    loaded = load_checkpoint(kws_checkpoint)
    windows, _, _ = corpus_windows(loaded.config, commands_corpus, "testing", limit=60)
    inputs = quantize(windows, manifest.input.scale, manifest.input.zero_point)
    micro, _ = run_micro(kws_export / manifest.models["int8"], inputs, manifest.arena_bytes)
    agreement = np.mean(micro.argmax(1) == torch_scores(loaded.model, windows).argmax(1))
    assert agreement >= 0.9, agreement


def test_weights_stored_once(kws_export, manifest):
    int8 = flatbuffer.inspect_tflite(kws_export / "model_int8.tflite")
    assert int8.duplicates == []
    report = manifest.report
    assert report["weights"]["int8_constant_bytes"] == int8.constant_bytes
    # a tied model stores about one byte per unique parameter (plus int32 biases), not one per effective one
    assert int8.constant_bytes < 2 * report["unique_parameters"] < 2 * report["effective_parameters"]


def test_arena_is_the_measured_minimum(kws_export, manifest):
    model = kws_export / "model_int8.tflite"
    measured = manifest.report["arena_measured_bytes"]
    assert manifest.arena_bytes >= measured
    assert probe(model, measured)[0]
    assert not probe(model, measured - 64)[0]
