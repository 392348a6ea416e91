"""The package stands on its own: a wheel built by `python -m build`, installed into a fresh venv, synthesizes a
corpus and exports an MCU bundle, reading its recipe and templates as package data (no checkout needed); with only
the `device` extra beside it (no torch, no TensorFlow anywhere), `from asr import KeywordSpotter` runs the demo."""

import importlib.metadata
import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    return next(out.glob("tied_asr-*.whl"))


def new_venv(path: Path, wheel: Path) -> tuple[Path, Path]:
    """(python, site-packages) of a new venv holding the wheel and nothing else."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.check_output([python, "-c", code], text=True).strip())
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--target", str(site), str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    return python, site


def requirement_closure(names: list[str]) -> set[str]:
    """The installed distributions `names` need, theirs included (markers evaluated, no extras)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        dist = importlib.metadata.distribution(todo.pop())
        if dist.name.lower() in seen:
            continue
        seen.add(dist.name.lower())
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory, wheel) -> Path:
    """The wheel in a new venv; every other package is seen through a path file (the wheel comes first)."""
    python, site = new_venv(tmp_path_factory.mktemp("venv") / "full", wheel)
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


@pytest.fixture(scope="module")
def device_python(tmp_path_factory, wheel) -> Path:
    """The wheel in a new venv beside the `device` extra's packages and what they need, linked in one by one."""
    python, site = new_venv(tmp_path_factory.mktemp("venv") / "device", wheel)
    extra = [Requirement(r) for r in importlib.metadata.requires("tied-asr") if 'extra == "device"' in r]
    for name in requirement_closure([r.name for r in extra if r.marker.evaluate({"extra": "device"})]):
        dist = importlib.metadata.distribution(name)
        for top in {f.parts[0] for f in dist.files if f.parts[0] != ".." and not f.parts[0].endswith(".dist-info")}:
            if not (site / top).exists():
                (site / top).symlink_to(dist.locate_file(top))
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


def test_the_api_runs_with_only_the_device_extra(device_python, tmp_path, kws_export, commands_corpus):
    clip = next(p for p in sorted(commands_corpus.rglob("*.wav")) if "_background_noise_" not in p.parts)
    code = (
        "import importlib.util, json\nfrom asr import KeywordSpotter\n"
        f"spotter = KeywordSpotter.from_export({str(kws_export)!r}, threshold=0.3)\n"
        f"print(json.dumps([d.to_dict() for d in spotter.predict_clip({str(clip)!r})]))\n"
        "print([m for m in ('torch', 'tensorflow', 'torchaudio') if importlib.util.find_spec(m)])"
    )
    run = subprocess.run([device_python, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    found, heavy = run.stdout.splitlines()
    assert heavy == "[]"  # not merely unimported: not installed
    demo = _asr(sys.executable, tmp_path, "demo", str(kws_export), "--file", str(clip), "--json", "--threshold", "0.3")
    assert json.loads(found) == [json.loads(line) for line in demo.stdout.splitlines()]


def test_a_phrase_is_set_up_and_spotted_with_only_the_device_extra(
    device_python, tmp_path, phone_export, commands_corpus
):
    """Wake words by text on a device install: no sentencepiece, torch or TensorFlow; espeak-ng makes the phones."""
    export = shutil.copytree(phone_export, tmp_path / "phones", ignore=shutil.ignore_patterns("keywords.json"))
    clip = sorted((commands_corpus / "marvin").glob("*.wav"))[0]
    run = _asr(device_python, tmp_path, "demo", str(export), "--file", str(clip), "--json", "--keyword", "marvin")
    assert run.returncode == 0, run.stderr
    assert json.loads((export / "keywords.json").read_text())["marvin"]["unit_names"] == "m A@ v I n".split()
