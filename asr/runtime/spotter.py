"""The public face of the device side: an exported keyword model as a streaming spotter, in three lines.

    from asr import KeywordSpotter
    spotter = KeywordSpotter.from_export("artifacts/kws-tiny")
    for detection in spotter.predict(chunk): ...   # chunk: int16 PCM or float32 in [-1, 1], at spotter.sample_rate

It applies the thresholds `asr eval-stream --save-threshold` stored with the model, exactly as `asr demo` does
(`asr demo` is a shell over this class).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from asr.errors import InputError
from asr.runtime.bundle import Manifest, load_exported
from asr.runtime.detector import DEFAULT_THRESHOLD, Detection, Detector

PCM_SCALE = 32768.0  # int16 full scale


def to_float_audio(chunk: np.ndarray) -> np.ndarray:
    """Mono float32 in [-1, 1] from int16 PCM or float32; any other dtype or shape is refused, not guessed."""
    chunk = np.asarray(chunk)
    if chunk.ndim != 1:
        raise InputError(f"expected a mono chunk of shape [samples], got shape {list(chunk.shape)}")
    if chunk.dtype == np.int16:
        return chunk.astype(np.float32) / PCM_SCALE
    if chunk.dtype == np.float32:
        return chunk
    raise InputError(f"audio chunks must be int16 PCM or float32 in [-1, 1], got {chunk.dtype}")


class KeywordSpotter:
    """Streaming keyword spotting with an exported model: `predict(chunk)` returns the detections it completes."""

    def __init__(self, detector: Detector, manifest: Manifest) -> None:
        self.detector, self.manifest = detector, manifest

    @classmethod
    def from_export(
        cls,
        export_dir: str | Path,
        *,
        threshold: float | None = None,
        label_thresholds: Mapping[str, float] | None = None,
        backend: str | None = None,
        precision: str = "int8",
        hop_s: float = 0.1,
        smooth_s: float = 0.3,
        refractory_s: float = 0.75,
    ) -> KeywordSpotter:
        """Load `export_dir`. Thresholds: `threshold` for every keyword, else the saved ones (shared and per
        keyword), else DEFAULT_THRESHOLD; a keyword in `label_thresholds` gets its own either way."""
        model, manifest = load_exported(export_dir, precision=precision, backend=backend)
        saved = manifest.thresholds
        per_label = dict(saved.label_thresholds) if saved and threshold is None else {}
        if threshold is None:
            threshold = saved.threshold if saved else DEFAULT_THRESHOLD
        detector = Detector(
            model,
            manifest.labels,
            manifest.features,
            output_kind=manifest.output_kind,
            hop_s=hop_s,
            smooth_s=smooth_s,
            threshold=threshold,
            thresholds=per_label | dict(label_thresholds or {}),
            refractory_s=refractory_s,
        )
        return cls(detector, manifest)

    @property
    def sample_rate(self) -> int:
        return self.manifest.features.sample_rate

    @property
    def keywords(self) -> list[str]:
        return self.manifest.keywords

    @property
    def wake_word(self) -> str | None:
        return self.manifest.wake_word

    def predict(self, chunk: np.ndarray, sample_rate: int | None = None) -> list[Detection]:
        """Detections completed by the next chunk of the stream (any length; int16 PCM or float32)."""
        if sample_rate is not None and sample_rate != self.sample_rate:
            raise InputError(f"audio at {sample_rate} Hz; this model takes {self.sample_rate} Hz (resample first)")
        return self.detector.push(to_float_audio(chunk))

    def predict_clip(self, path: str | Path, *, resample: bool = False) -> list[Detection]:
        """Detections in a whole audio file, on a fresh stream (the streaming state is restored afterwards)."""
        from asr.audio import read_audio

        audio = read_audio(path, sample_rate=self.sample_rate, resample=resample)
        fresh = KeywordSpotter(self.detector.fresh(), self.manifest)
        return fresh.predict(audio)
