"""A causal keyword model exports as its streaming step: one encoder frame per call, its caches kept in the model
(resource variables), flat in depth; the detector streams it, and its scores do not depend on how the audio is
chunked."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from ai_edge_litert.interpreter import Interpreter
from fixtures_export import kit_or_skip, run_asr
from fixtures_model import tiny_kws_overrides

from asr.audio import read_audio
from asr.config import load_config
from asr.export import firmware
from asr.export.firmware_check import agreement, run_firmware, split_clips
from asr.export.flatbuffer import resource_variables
from asr.export.loop import export_loop_tflite, loop_weights
from asr.export.loop_tflite import (
    STREAM_CACHES,
    caches_as_variables,
    drop_identity_requantize,
    int8_loop_carry,
    share_cache_quantization,
)
from asr.export.parity import torch_scores
from asr.export.stream import transient_steps
from asr.export.windows import corpus_windows
from asr.model import build_model, num_outputs
from asr.model.checkpoint import load_checkpoint
from asr.runtime.bundle import Manifest, load_exported
from asr.runtime.detector import Detector
from asr.runtime.host_interpreters import micro_step, run_litert
from asr.runtime.interpreter import play
from asr.train.loop import train

CAUSAL = {"model.causal": True, "model.head_frames": 3}


@pytest.fixture(scope="module")
def stream_export(tmp_path_factory, commands_corpus, commands_keywords) -> Path:
    """A tiny causal keyword model trained on the generated clips, exported (int8 streaming step, MCU bundle)."""
    overrides = tiny_kws_overrides(commands_corpus, commands_keywords) | CAUSAL
    overrides |= {"train.steps": 160, "train.eval_every": 80, "train.checkpoint_every": 80}
    run_dir = tmp_path_factory.mktemp("causal-run")
    train(load_config("kws-tiny", overrides), run_dir, progress=False)
    out = tmp_path_factory.mktemp("causal-export") / "kws"
    run_asr("export", run_dir / "best.pt", out, "--mcu", "--calibration", 48, "--data", commands_corpus)
    return out


def test_the_step_matches_pytorch_and_agrees_in_int8(stream_export):
    manifest = Manifest.read(stream_export)
    report = manifest.report
    assert manifest.stream is not None and manifest.stream.frames_in == 7 and manifest.stream.frames_per_step == 4
    assert manifest.input.shape == [1, 7, 40] and manifest.output.shape == [1, len(manifest.labels)]
    assert report["parity"]["float32"]["tflite_float32_max_abs_diff"] <= report["parity"]["float32"]["tolerance"]
    assert report["parity"]["int8"]["label_agreement"]["tflite_micro_vs_ai_edge_litert"] >= 0.85
    accuracy = report["accuracy"]
    assert accuracy["int8_vs_float_label_agreement"] >= 0.85
    assert accuracy["tflite_int8"] > 100 / len(manifest.labels)  # better than chance, though it trained 160 steps
    assert report["arena_measured_bytes"] > 0


def test_the_step_model_keeps_its_caches_until_reset(stream_export, commands_corpus, commands_keywords):
    """Features are the step's only input: the caches live in the model, carry each step into the next, and a
    reset empties them (in ai-edge-litert and TFLite Micro alike, and the MCU bundle's model names them)."""
    model, manifest = load_exported(stream_export)
    assert model._interpreter.get_input_details()[0]["shape"].tolist() == [1, 7, 40]
    assert resource_variables((stream_export / "model_int8.tflite").read_bytes()) == ["keys", "values", "conv"]
    settings = (stream_export / "mcu" / "model_settings.h").read_text()
    assert "kResourceVariables = 3;" in settings and f"kWarmupSteps = {manifest.stream.warmup_steps};" in settings
    trained = load_checkpoint(Path(manifest.report["source"]["checkpoint"])).model
    assert manifest.stream.warmup_steps == transient_steps(trained)  # a stream starts after the transient
    config = load_config("kws-tiny", tiny_kws_overrides(commands_corpus, commands_keywords))
    clip = corpus_windows(config, commands_corpus, "testing", 1)[0]
    step, reset = micro_step(stream_export / "model_int8.tflite", manifest.arena_bytes)
    for run_step, start in ((model.step, model.reset), (step, reset)):
        start()
        first, _ = play(run_step, clip[0], manifest.stream)
        again, _ = play(run_step, clip[0], manifest.stream)
        start()
        fresh, _ = play(run_step, clip[0], manifest.stream)
        np.testing.assert_array_equal(first, fresh)
        assert not np.array_equal(first, again)  # the second pass heard the first


def test_keeping_the_caches_changes_no_output(tmp_path, commands_corpus, commands_keywords):
    """caches_as_variables is exact: the converted step with its caches as inputs and outputs, and the same step
    keeping them as variables, give the same int8 logits, step after step of a stream (ai-edge-litert)."""
    torch.manual_seed(0)
    config = load_config("kws-tiny", tiny_kws_overrides(commands_corpus, commands_keywords) | CAUSAL)
    model = build_model(config, num_outputs(config)).eval()
    windows = corpus_windows(config, commands_corpus, "train", 16)[0]
    weights, spec = loop_weights(model, config)
    np.savez(tmp_path / "weights.npz", **weights)
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    np.save(tmp_path / "calibration.npy", windows.astype(np.float32))
    subprocess.run([sys.executable, "-m", "asr.export.loop_graph", str(tmp_path)], check=True, capture_output=True)
    explicit = share_cache_quantization(int8_loop_carry((tmp_path / "int8.tflite").read_bytes())[0], 3)
    explicit = drop_identity_requantize(explicit)[0]
    kept = Interpreter(model_content=caches_as_variables(explicit, STREAM_CACHES))
    given = Interpreter(model_content=explicit)
    kept.allocate_tensors(), given.allocate_tensors()
    features, caches = given.get_input_details(), None
    scale, zero = features[0]["quantization"]
    for start in range(0, 97 * 3 - 7, 4):
        x = np.clip(np.round(windows.reshape(-1, 40)[None, start : start + 7] / scale) + zero, -128, 127)
        for interpreter in (given, kept):
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x.astype(np.int8))
        caches = caches or [np.full(d["shape"], d["quantization"][1], np.int8) for d in features[1:]]
        for detail, cache in zip(features[1:], caches, strict=True):
            given.set_tensor(detail["index"], cache)
        given.invoke(), kept.invoke()
        outputs = given.get_output_details()
        caches = [given.get_tensor(d["index"]).copy() for d in outputs[1:]]
        logits = kept.get_tensor(kept.get_output_details()[0]["index"])
        np.testing.assert_array_equal(given.get_tensor(outputs[0]["index"]), logits)
    assert len(kept.get_input_details()) == 1 and len(features) == 4


def test_detector_streams_the_same_whatever_the_chunks(stream_export, commands_corpus):
    """Every hop's scores are the head's mean over the step outputs, computed once per frame as audio arrives."""
    model, manifest = load_exported(stream_export)
    clips = sorted((commands_corpus / manifest.keywords[0]).glob("*.wav"))[:3]
    audio = np.concatenate([read_audio(p, sample_rate=16000) for p in clips])
    whole = Detector(model, manifest.labels, manifest.features).score(audio)
    chunked, detector = [], Detector(model, manifest.labels, manifest.features)
    for start in range(0, len(audio), 1234):
        chunked += detector.score(audio[start : start + 1234])
    assert len(whole) == len(chunked) >= 20
    for (t1, p1), (t2, p2) in zip(whole, chunked, strict=True):
        assert t1 == t2
        np.testing.assert_allclose(p1, p2, rtol=1e-6, atol=1e-7)
    assert not np.allclose(whole[0][1], whole[-1][1])


def test_the_step_file_and_arena_do_not_grow_with_depth(tmp_path, commands_corpus, commands_keywords):
    sizes = {}
    for depth in (2, 4):
        torch.manual_seed(0)
        config = load_config("kws-tiny", tiny_kws_overrides(commands_corpus, commands_keywords) | CAUSAL)
        config.model.depth = depth
        model = build_model(config, num_outputs(config)).eval()
        calibration = corpus_windows(config, commands_corpus, "train", 16)[0]
        info = export_loop_tflite(model, config, calibration, tmp_path / f"n{depth}.tflite")
        assert info["op_counts"]["WHILE"] == 1
        assert info["int8_carried_tensors"] == 4  # the block's output and the three caches stay int8
        sizes[depth] = info["file_bytes"]
    assert abs(sizes[4] - sizes[2]) <= 256, sizes


def test_eval_scores_the_streaming_export_in_tflite_micro(stream_export, commands_corpus, tmp_path):
    """`asr eval --tflite` plays each clip through the step model from empty caches, as the firmware does."""
    manifest = Manifest.read(stream_export)
    checkpoint = Path(manifest.report["source"]["checkpoint"])
    out = tmp_path / "eval.json"
    run_asr("eval", checkpoint, commands_corpus, "--tflite", stream_export, "--out", out)
    report = json.loads(out.read_text())
    assert report["model"]["runtime"] == "tflite_micro"
    assert abs(report["accuracy"] * 100 - manifest.report["accuracy"]["tflite_int8"]) <= 10


def test_the_streaming_export_takes_the_loop_route_only(stream_export, commands_corpus, tmp_path):
    checkpoint = Path(Manifest.read(stream_export).report["source"]["checkpoint"])
    unrolled = run_asr(
        "export", checkpoint, tmp_path / "u", "--route", "unrolled", "--data", commands_corpus, check=False
    )
    assert unrolled.returncode != 0 and "loop route" in unrolled.stderr


def test_eval_stream_runs_the_streaming_export(stream_export, commands_corpus, commands_keywords, tmp_path):
    run_asr(
        "data", "stream", "--commands", commands_corpus, "--minutes", "1", "--keywords", *commands_keywords,
        "--out-dir", tmp_path,
    )  # fmt: skip
    out = tmp_path / "report.json"
    run_asr("eval-stream", stream_export, tmp_path / "stream.wav", tmp_path / "events.csv", "--out", out)
    report = json.loads(out.read_text())
    assert report["windows"] >= 550  # a decision every 0.1 s of the minute
    assert report["chosen"]["overall"]["recall"] is not None


@pytest.mark.slow
def test_host_firmware_streams_as_python_micro(stream_export, commands_corpus, tmp_path):
    """The MCU bundle's app steps the model with its caches: on each clip (from empty caches) its head's int8 sums
    equal Python TFLite Micro's, and the --stream app runs on a continuous recording."""
    kit_or_skip()
    exe = firmware.build(stream_export, "host", tmp_path / "host")
    manifest = Manifest.read(stream_export)
    pcm, _ = split_clips(commands_corpus, manifest.labels, 8)
    spec = manifest.features
    run = run_firmware("host", exe, pcm, spec.window_frames, spec.n_mels)
    result = agreement(stream_export, run, pcm)
    assert result["clips"] == len(pcm) and result["labels_same_input"] == 1.0 and result["max_lsb_same_input"] == 0
    assert result["labels_end_to_end"] == 1.0
    (tmp_path / "stream.pcm").write_bytes(pcm.reshape(-1).astype("<i2").tobytes())
    proc = subprocess.run([str(exe), "--stream", str(tmp_path / "stream.pcm")], capture_output=True, text=True)
    assert proc.returncode == 0 and "arena used: " in proc.stdout, proc.stdout[-2000:]


def test_a_window_model_reads_its_head_frames_in_tflite_too(tmp_path, commands_corpus, commands_keywords):
    """model.head_frames without causality: the window export's head averages the same last frames as PyTorch."""
    torch.manual_seed(0)
    config = load_config("kws-tiny", tiny_kws_overrides(commands_corpus, commands_keywords) | {"model.head_frames": 3})
    model = build_model(config, num_outputs(config)).eval()
    windows = corpus_windows(config, commands_corpus, "train", 8)[0]
    export_loop_tflite(model, config, windows, tmp_path / "int8.tflite", float_path=tmp_path / "float.tflite")
    got, _ = run_litert(tmp_path / "float.tflite", windows)
    np.testing.assert_allclose(got, torch_scores(model, windows), rtol=1e-4, atol=1e-4)
