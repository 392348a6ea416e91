"""Session fixtures of the export stage (see conftest.py)."""

import subprocess
import sys

import pytest


def _asr_export(checkpoint, out, corpus, route: str):
    """Run the real `asr export --mcu` in a child process: the export loads several TFLite interpreters, and
    tflite-runtime must stay loadable here."""
    cmd = [sys.executable, "-m", "asr.cli", "export", str(checkpoint), str(out), "--mcu", "--route", route]
    cmd += ["--calibration", "64", "--data", str(corpus)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"asr export failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return out


@pytest.fixture(scope="session")
def kws_export(kws_checkpoint, commands_corpus, tmp_path_factory):
    """Export directory of `kws_checkpoint` (int8 + MCU bundle) through the unrolled route (with model.onnx)."""
    return _asr_export(kws_checkpoint, tmp_path_factory.mktemp("export") / "kws", commands_corpus, "unrolled")


@pytest.fixture(scope="session")
def kws_export_loop(kws_checkpoint, commands_corpus, tmp_path_factory):
    """Export directory of `kws_checkpoint` (int8 + MCU bundle) through the loop route (TFLite WHILE)."""
    return _asr_export(kws_checkpoint, tmp_path_factory.mktemp("export_loop") / "kws", commands_corpus, "loop")
