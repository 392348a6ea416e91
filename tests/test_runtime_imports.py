"""A Raspberry Pi has numpy and an interpreter, not torch or tensorflow: the runtime must not import them."""

import pkgutil
import subprocess
import sys

import asr.runtime

HEAVY = ("torch", "torchaudio", "tensorflow", "tf_keras")


def modules_loaded_after(code: str) -> list[str]:
    check = f"\nimport sys\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code + check], capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1]


def test_runtime_modules_import_neither_torch_nor_tensorflow():
    modules = [f"asr.runtime.{m.name}" for m in pkgutil.iter_modules(asr.runtime.__path__)]
    assert {"asr.runtime.interpreter", "asr.runtime.detector", "asr.runtime.demo"} <= set(modules)
    assert modules_loaded_after(f"import importlib\nfor m in {modules!r}: importlib.import_module(m)") == "[]"


def test_demo_on_a_file_runs_without_torch_or_tensorflow(kws_export, commands_corpus):
    clip = next(p for p in sorted(commands_corpus.rglob("*.wav")) if "_background_noise_" not in p.parts)
    code = f"from asr.cli import main\nassert main(['demo', {str(kws_export)!r}, '--file', {str(clip)!r}]) == 0"
    assert modules_loaded_after(code) == "[]"
