"""The public face of the device side: an exported keyword model as a streaming spotter, in three lines.

    from asr import KeywordSpotter
    spotter = KeywordSpotter.from_export("artifacts/kws-tiny")
    for detection in spotter.predict(chunk): ...   # chunk: int16 PCM or float32 in [-1, 1], at spotter.sample_rate

It applies the thresholds `asr eval-stream --save-threshold` stored with the model, exactly as `asr demo` does
(`asr demo` is a shell over this class). An export with a verifier (`asr verifier`, asr.runtime.verifier) has
each detection checked by it first, which holds the detection back by the verifier's delay (0.3 s).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

from asr.errors import InputError
from asr.runtime.bundle import Manifest, load_exported
from asr.runtime.detector import DEFAULT_THRESHOLD, Detection, Detector
from asr.runtime.verifier import Verifier

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

    def __init__(self, detector: Detector, manifest: Manifest, verifier: Verifier | None = None) -> None:
        self.detector, self.manifest, self.verifier = detector, manifest, verifier
        # The labels the verifier checks (None: all). Behind a wake word only the wake word needs it: the commands
        # then keep the model's recall, and a false command needs a false wake first.
        self.checked_labels: set[str] | None = None
        self._pending: list[Detection] = []  # detections waiting for the audio their check needs
        self._recent = np.zeros(0, dtype=np.float32)  # the latest audio, for the verifier's crops
        self._samples = 0  # samples pushed so far

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
        verify: bool = True,
    ) -> KeywordSpotter:
        """Load `export_dir`. Thresholds: `threshold` for every keyword, else the saved ones (shared and per
        keyword), else DEFAULT_THRESHOLD; a keyword in `label_thresholds` gets its own either way. `verify`: use
        the export's verifier if it has one."""
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
        return cls(detector, manifest, Verifier.from_export(export_dir, backend=backend) if verify else None)

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
        audio = to_float_audio(chunk)
        found = self.detector.push(audio)
        if self.verifier is None:
            return found
        self._recent = np.concatenate([self._recent, audio])
        self._samples += len(audio)
        self._pending += found
        return self._check(flush=False)

    def flush(self) -> list[Detection]:
        """At the end of a stream: the detections still waiting for their check, checked on the audio there is."""
        return self._check(flush=True) if self.verifier is not None else []

    def detections(self, chunks: Iterable[np.ndarray]) -> Iterator[Detection]:
        """Every detection of a stream of chunks, the held-back ones at its end included."""
        for chunk in chunks:
            yield from self.predict(chunk)
        yield from self.flush()

    def _check(self, flush: bool) -> list[Detection]:
        verifier, rate = self.verifier, self.sample_rate
        now_s = self._samples / rate
        start_s = now_s - len(self._recent) / rate
        ready = [d for d in self._pending if flush or d.time_s + verifier.config.delay_s <= now_s]
        self._pending = [d for d in self._pending if d not in ready]
        checked = self.checked_labels
        passed = [
            d
            for d in ready
            if (checked is not None and d.label not in checked)
            or verifier.passes(verifier.crop(self._recent, d.time_s, start_s), d.label)
        ]
        # keep what a crop may still need: a detection is never older than one model window
        keep = verifier.config.crop_samples + round((verifier.config.delay_s + self.detector.spec.clip_seconds) * rate)
        self._recent = self._recent[-keep:]
        return passed

    def predict_clip(self, path: str | Path, *, resample: bool = False) -> list[Detection]:
        """Detections in a whole audio file, on a fresh stream (the streaming state is restored afterwards)."""
        from asr.audio import read_audio

        audio = read_audio(path, sample_rate=self.sample_rate, resample=resample)
        fresh = KeywordSpotter(self.detector.fresh(), self.manifest, self.verifier)
        fresh.checked_labels = self.checked_labels
        return [*fresh.predict(audio), *fresh.flush()]
