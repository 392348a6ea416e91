"""Session fixtures of the export stage (see conftest.py)."""

import subprocess
import sys

import pytest


@pytest.fixture(scope="session")
def kws_export(kws_checkpoint, commands_corpus, tmp_path_factory):
    """Export directory of `kws_checkpoint` (int8 + MCU bundle), made by the real `asr export` command.

    A child process: the export loads several TFLite interpreters, and tflite-runtime must stay loadable here.
    """
    out = tmp_path_factory.mktemp("export") / "kws"
    cmd = [sys.executable, "-m", "asr.cli", "export", str(kws_checkpoint), str(out), "--mcu"]
    cmd += ["--calibration", "64", "--data", str(commands_corpus)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"asr export failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return out
