"""The microcontroller bundle: generated C sources agree with the model, and the C front end with numpy."""

import re
import shutil
import subprocess

import numpy as np
import pytest

from asr.audio import read_audio
from asr.export import flatbuffer
from asr.export.micro import resolver_method
from asr.features import log_mel
from asr.runtime.bundle import Manifest

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("export", ["kws_export", "kws_export_loop"])
def test_bundle_matches_the_model(export, request):
    """Settings and the op resolver come from the model: for the loop route, ops of every subgraph (WHILE, LESS...)."""
    kws_export = request.getfixturevalue(export)
    mcu, manifest = kws_export / "mcu", Manifest.read(kws_export)
    settings = (mcu / "model_settings.h").read_text()
    assert f"kTensorArenaSize = {manifest.arena_bytes};" in settings
    assert f"kInputZeroPoint = {manifest.input.zero_point};" in settings
    assert all(f'"{label}"' in settings for label in manifest.labels)
    ops = flatbuffer.inspect_tflite(kws_export / "model_int8.tflite").op_counts
    resolver = (mcu / "op_resolver.h").read_text()
    assert f"MicroMutableOpResolver<{len(ops)}>" in resolver
    assert re.findall(r"resolver\.(Add\w+)\(", resolver) == [resolver_method(op) for op in ops]
    if manifest.report["route"] == "loop":  # LESS only in the condition subgraph, the convolution only in the body
        assert {"AddWhile", "AddLess", "AddQuantize", "AddDepthwiseConv2D"} <= set(re.findall(r"Add\w+", resolver))
    data = (mcu / "model_data.cc").read_text()
    assert f"g_model_data_len = {(kws_export / 'model_int8.tflite').stat().st_size};" in data


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_c_frontend_matches_numpy(kws_export, commands_corpus, tmp_path):
    """Compile the bundle's C front end on the host and compare its features on generated speech."""
    mcu = kws_export / "mcu"
    exe = tmp_path / "host_features"
    sources = [mcu / "frontend.c", mcu / "frontend_tables.c", mcu / "host_features.c"]
    cmd = ["gcc", "-O2", "-std=c99", "-Wall", "-Werror", f"-I{mcu}", *map(str, sources), "-lm", "-o", str(exe)]
    subprocess.run(cmd, check=True)
    spec = Manifest.read(kws_export).features
    clips = sorted(p for p in commands_corpus.glob("*/*.wav") if not p.parent.name.startswith("_"))[:5]
    assert clips
    for clip in clips:
        audio = read_audio(clip)
        c = np.frombuffer(subprocess.run([str(exe)], input=audio.tobytes(), capture_output=True).stdout, np.float32)
        reference = log_mel(audio, spec)
        assert c.size == reference.size
        np.testing.assert_allclose(c.reshape(reference.shape), reference, atol=1e-3)
