"""Session fixtures of the export stage (see conftest.py)."""

import shutil
import subprocess
import sys

import pytest

from asr.export import firmware


def run_asr(*args, check: bool = True) -> subprocess.CompletedProcess:
    """`asr ARGS` in a child process (an export loads several TFLite interpreters, and tflite-runtime must stay
    loadable here); with `check`, a failure shows the command's output."""
    proc = subprocess.run([sys.executable, "-m", "asr.cli", *map(str, args)], capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, f"asr {args[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _asr_export(checkpoint, out, corpus, route: str):
    run_asr("export", checkpoint, out, "--mcu", "--route", route, "--calibration", 64, "--data", corpus)
    return out


@pytest.fixture(scope="session")
def kws_export(kws_checkpoint, commands_corpus, tmp_path_factory):
    """Export directory of `kws_checkpoint` (int8 + MCU bundle) through the unrolled route (with model.onnx)."""
    return _asr_export(kws_checkpoint, tmp_path_factory.mktemp("export") / "kws", commands_corpus, "unrolled")


@pytest.fixture(scope="session")
def kws_export_loop(kws_checkpoint, commands_corpus, tmp_path_factory):
    """Export directory of `kws_checkpoint` (int8 + MCU bundle) through the loop route (TFLite WHILE)."""
    return _asr_export(kws_checkpoint, tmp_path_factory.mktemp("export_loop") / "kws", commands_corpus, "loop")


@pytest.fixture(scope="session")
def phone_export(kws_checkpoint, commands_corpus, tmp_path_factory):
    """`kws_checkpoint`'s phone head exported as a CTC model (wake words by text)."""
    out = tmp_path_factory.mktemp("phones") / "phones"
    run_asr("export", kws_checkpoint, out, "--phones", "--data", commands_corpus, "--calibration", 32, "--parity", 8)
    return out


def kit_or_skip():
    """The offline TFLite Micro kit, or skip the test (with what is missing)."""
    if shutil.which("g++") is None:
        pytest.skip("g++ not installed (apt-get install g++)")
    try:
        return firmware.find_kit()
    except firmware.FirmwareError as e:
        pytest.skip(f"TFLite Micro kit not found: {e}")
