"""The package stands on its own: a wheel built by `python -m build`, installed into a fresh venv, synthesizes a
corpus and exports an MCU bundle, reading its recipe and templates as package data (no checkout needed)."""

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory) -> Path:
    """A new venv holding only the wheel; its dependencies are seen through a path file (the wheel comes first)."""
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp / "dist"), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    wheel = next((tmp / "dist").glob("tied_asr-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())  # fmt: skip
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--target", str(site), str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    return python


def _asr(python: Path, cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-m", "asr.cli", *argv], cwd=cwd, capture_output=True, text=True)


@pytest.mark.slow
def test_installed_wheel_synthesizes_and_exports(fresh_python, tmp_path, kws_checkpoint, commands_corpus):
    where = subprocess.check_output([fresh_python, "-c", "import asr; print(asr.__file__)"], cwd=tmp_path, text=True)
    assert str(ROOT) not in where and "site-packages" in where, where

    synth = _asr(fresh_python, tmp_path, "data", "synth", "--corpus", "commands", "--scale", "tiny", "--out", "gen")
    assert synth.returncode == 0, synth.stderr
    assert (tmp_path / "gen" / "commands" / "testing_list.txt").is_file()

    export = _asr(fresh_python, tmp_path, "export", str(kws_checkpoint), "out", "--mcu", "--data", str(commands_corpus))
    assert export.returncode == 0, export.stderr
    mcu = tmp_path / "out" / "mcu"
    assert {"main.cc", "model_data.cc", "model_settings.h", "frontend.c"} <= {p.name for p in mcu.iterdir()}
