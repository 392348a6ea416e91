"""The TFLite wrapper and the export-directory loader: real int8 model, clear errors for bad files."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from asr.audio import read_audio
from asr.features import log_mel
from asr.runtime.bundle import BundleError, Manifest, load_exported
from asr.runtime.interpreter import ModelFileError, TFLiteModel, available_backends


@pytest.fixture(scope="module")
def clip_features(commands_corpus, kws_export):
    spec = Manifest.read(kws_export).features
    clip = next(p for p in sorted(commands_corpus.rglob("*.wav")) if "_background_noise_" not in p.parts)
    audio = np.zeros(spec.clip_samples, np.float32)
    data = read_audio(clip, spec.sample_rate)[: spec.clip_samples]
    audio[: len(data)] = data
    return log_mel(audio, spec)


def copy_export(kws_export, tmp_path):
    return shutil.copytree(kws_export, tmp_path / "export")


def test_missing_model_file_is_named(tmp_path):
    with pytest.raises(ModelFileError, match=r"nothing\.tflite: model file not found"):
        TFLiteModel(tmp_path / "nothing.tflite")


def test_a_file_that_is_not_tflite_is_refused(tmp_path):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"this is a text file, not a flatbuffer")
    with pytest.raises(ModelFileError, match=r"model\.tflite: not a TFLite model"):
        TFLiteModel(bad)


def test_export_dir_with_a_corrupt_model_names_it(kws_export, tmp_path):
    export = copy_export(kws_export, tmp_path)
    manifest = Manifest.read(export)
    (export / manifest.models["int8"]).write_bytes(b"\0" * 64)
    with pytest.raises(ModelFileError, match=manifest.models["int8"]):
        load_exported(export)


def test_export_dir_errors_name_the_manifest(kws_export, tmp_path):
    with pytest.raises(BundleError, match="not an export directory"):
        load_exported(tmp_path / "missing")
    export = copy_export(kws_export, tmp_path)
    manifest = json.loads((export / "manifest.json").read_text())
    manifest["features"]["n_mels"] = manifest["features"]["n_mels"] // 2  # a front end the model was not built for
    (export / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="does not match the manifest's features"):
        load_exported(export)
    (export / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match=r"manifest\.json: not valid JSON"):
        load_exported(export)


def test_int8_input_quantization_round_trips(kws_export, clip_features):
    model = load_exported(kws_export)[0]
    assert model.input_dtype == np.int8
    q = model.quantize(clip_features)
    assert q.shape == model.input_shape
    back = (q[0].astype(np.float32) - model.input_zero_point) * model.input_scale
    in_range = (q[0] > -128) & (q[0] < 127)
    assert in_range.any()
    assert np.abs(back - clip_features)[in_range].max() <= model.input_scale / 2 + 1e-6
    assert (clip_features[q[0] == 127] >= back.max() - model.input_scale / 2).all()  # saturates, never wraps


def test_scores_have_one_value_per_label(kws_export, clip_features):
    model, manifest = load_exported(kws_export)
    labels = manifest.labels
    scores = model(clip_features)
    assert scores.shape == (len(labels),) and scores.dtype == np.float32
    if manifest.output_kind == "probabilities":
        assert abs(scores.sum() - 1) < 0.05


def test_installed_backends_agree_within_a_few_output_steps(kws_export, clip_features, tmp_path):
    # Each backend in its own process: tflite-runtime breaks in a process where tensorflow was imported.
    np.save(tmp_path / "features.npy", clip_features)
    results = {}
    for backend in available_backends():
        code = (
            "import sys, numpy as np\nfrom asr.runtime.bundle import load_exported\n"
            f"m = load_exported({str(kws_export)!r}, backend={backend!r})[0]\n"
            f"s = m(np.load({str(tmp_path / 'features.npy')!r}))\n"
            "print(m.output_scale, *s.tolist())"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        scale, *scores = map(float, out.split())
        results[backend] = (scale, np.array(scores))
    assert results, "no TFLite interpreter installed"
    (scale, reference), *others = results.values()
    for _, scores in others:
        assert np.abs(scores - reference).max() <= 4 * scale + 1e-6  # int8 kernels differ by a few steps
