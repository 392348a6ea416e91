"""The bundle's C decision step (detector.c) fires exactly where the Pi's Python detector does."""

import shutil
import subprocess

import numpy as np
import pytest

from asr.runtime.bundle import Manifest, Thresholds, save_thresholds
from asr.runtime.detector import Detector

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")]


def _posteriors(labels: list[str], windows: int, seed: int) -> np.ndarray:
    """Background posteriors with bursts where one keyword rises for a few windows, some near threshold, some
    overlapping: enough to exercise smoothing, re-arming and the refractory period."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(len(labels)) * 0.5, size=windows)
    p[:, :2] += 1.5  # filler classes dominate between words
    for start in rng.integers(0, windows - 12, size=windows // 8):
        label = rng.integers(2, len(labels))
        p[start : start + rng.integers(2, 12), label] += rng.uniform(2.0, 12.0)
    return (p / p.sum(1, keepdims=True)).astype(np.float32)


def test_c_decision_step_matches_python(kws_export_loop, tmp_path):
    export = tmp_path / "export"
    shutil.copytree(kws_export_loop, export)
    manifest = Manifest.read(export)
    labels = manifest.labels
    keywords = manifest.keywords
    saved = Thresholds(0.6, {keywords[0]: 0.8, keywords[-1]: 0.45}, "a test")
    save_thresholds(export, saved)  # as `asr eval-stream --save-threshold` does: the C bundle gets them too
    mcu = export / "mcu"
    exe = tmp_path / "host_detector"
    sources = [str(mcu / "detector.c"), str(mcu / "host_detector.c")]
    subprocess.run(["gcc", "-O2", "-std=c99", "-Wall", "-Werror", f"-I{mcu}", *sources, "-o", str(exe)], check=True)

    spec = manifest.features
    total = 0
    for seed in range(3):
        posteriors = _posteriors(labels, 400, seed)
        queue = list(posteriors)
        detector = Detector(
            lambda features, queue=queue: queue.pop(0),
            labels,
            spec,
            output_kind="probabilities",
            threshold=saved.threshold,
            thresholds=saved.label_thresholds,
        )
        frames = detector.window_frames + (len(posteriors) - 1) * detector.hop_frames
        audio = np.zeros(spec.n_fft + (frames - 1) * spec.hop_length, np.float32)
        expected = [(round(d.time_s, 4), labels.index(d.label), d.score) for d in detector.push(audio)]
        assert not queue
        out = subprocess.run([str(exe)], input=posteriors.tobytes(), capture_output=True, check=True).stdout
        rows = [line.split() for line in out.decode().splitlines()]
        got = [(round(float(t), 4), int(i), float(s)) for t, i, s in rows]
        assert [(t, i) for t, i, _ in got] == [(t, i) for t, i, _ in expected]
        np.testing.assert_allclose([s for *_, s in got], [s for *_, s in expected], rtol=1e-6)
        total += len(expected)
    assert total >= 10  # the sequences really fire
