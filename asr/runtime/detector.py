"""Streaming keyword detection: audio chunks in, `Detection(time_s, label, score)` out.

Each 10 ms feature frame is computed once as its samples arrive (a 1 s window recomputed every hop would
cost ~10x more front end on a Pi). The model runs on the latest 1 s window every hop; its posteriors are
averaged over a few hops (one noisy window should not fire) and compared with per-label thresholds; after
a detection, a label re-arms only once its posterior has fallen below threshold, and a short refractory
period keeps a word from also firing as a similar-sounding keyword. Labels starting with "_"
(`_silence_`, `_unknown_`) are filler classes and never fire.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from asr.errors import InputError
from asr.features import FeatureSpec, StreamingFrontend, silence_features
from asr.labels import is_keyword, keywords

DEFAULT_THRESHOLD = 0.7


@dataclass(frozen=True)
class Detection:
    time_s: float  # stream time at the end of the window that fired
    label: str
    score: float  # smoothed posterior

    def to_dict(self) -> dict:
        return {"time_s": round(self.time_s, 3), "label": self.label, "score": round(self.score, 4)}


def format_detection(detection: Detection, as_json: bool) -> str:
    if as_json:
        return json.dumps(detection.to_dict())
    return f"{detection.time_s:9.2f}s  {detection.label:<12s} {detection.score:.3f}"


def to_posteriors(scores: np.ndarray, kind: str) -> np.ndarray:
    """Class probabilities from model outputs of manifest `output.kind` ("logits" or "probabilities")."""
    if kind == "probabilities":
        return scores
    e = np.exp(scores - scores.max())
    return e / e.sum()


class Decider:
    """Thresholds and refractory period over a sequence of smoothed posteriors.

    A label fires when its posterior reaches its threshold, at most once per refractory period (any label),
    and again only after its posterior fell below the threshold: a word seen by ten overlapping windows
    fires once. Separate from scoring so that `eval-stream` can score a recording once and sweep thresholds.
    """

    def __init__(self, labels: list[str], thresholds: Mapping[str, float], refractory_s: float) -> None:
        self.refractory_s = refractory_s
        self._watch = [(i, label, float(thresholds[label])) for i, label in enumerate(labels) if is_keyword(label)]
        self.thresholds = {label: thr for _, label, thr in self._watch}
        self._armed = {label: True for _, label, _ in self._watch}
        self._last_fired = -np.inf

    def update(self, time_s: float, posteriors: np.ndarray) -> Detection | None:
        above = []
        for i, label, thr in self._watch:
            if posteriors[i] < thr:
                self._armed[label] = True
            elif self._armed[label]:
                above.append((float(posteriors[i]), label))
        if not above or time_s - self._last_fired < self.refractory_s:
            return None
        score, label = max(above)
        self._armed[label] = False
        self._last_fired = time_s
        return Detection(time_s, label, score)


def label_thresholds(labels: list[str], default: float, overrides: Mapping[str, float] | None = None) -> dict:
    """A threshold for every keyword label; `overrides` must name known keywords."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(keywords(labels)))
    if unknown:
        raise InputError(f"threshold for unknown keyword(s) {unknown}; the model's keywords: {keywords(labels)}")
    return {label: overrides.get(label, default) for label in keywords(labels)}


class Detector:
    """Feed audio with `push(chunk)`; get the detections completed by that chunk.

    `model(features [T, F]) -> scores [C]` is any callable, normally `asr.runtime.interpreter.TFLiteModel`, run on
    the latest window every hop. A streaming step model (`asr.runtime.interpreter.TFLiteStreamModel`: a `step`
    method) instead computes each new encoder frame once, as its features arrive; every hop scores the mean of its
    last `head_frames` frames' logits; that model keeps one stream's caches, so it serves one detector at a time
    (a new detector resets it).
    """

    def __init__(
        self,
        model: Callable[[np.ndarray], np.ndarray],
        labels: list[str],
        spec: FeatureSpec,
        *,
        output_kind: str = "logits",
        hop_s: float = 0.1,
        smooth_s: float = 0.3,
        threshold: float = DEFAULT_THRESHOLD,
        thresholds: Mapping[str, float] | None = None,
        refractory_s: float = 0.75,
    ) -> None:
        if not keywords(labels):
            raise InputError(f"no keyword labels to detect in {labels}")
        self._settings = dict(
            output_kind=output_kind, hop_s=hop_s, smooth_s=smooth_s, threshold=threshold, thresholds=thresholds,
            refractory_s=refractory_s,
        )  # fmt: skip
        self.model, self.labels, self.spec, self.output_kind = model, list(labels), spec, output_kind
        frame_s = spec.hop_length / spec.sample_rate
        self.hop_frames = max(1, round(hop_s / frame_s))
        self.window_frames = spec.num_frames(spec.clip_samples)
        if self.hop_frames > self.window_frames:
            raise InputError(f"hop {hop_s} s is longer than the model's {spec.clip_seconds} s window")
        self.frontend = StreamingFrontend(spec)
        self.decider = Decider(self.labels, label_thresholds(self.labels, threshold, thresholds), refractory_s)
        self._recent = deque(maxlen=max(1, round(smooth_s / (self.hop_frames * frame_s))))
        self._features = np.zeros((0, spec.n_mels), dtype=np.float32)  # rows from frame `_first` on
        self._first = 0
        self._next_end = self.window_frames  # frame index (exclusive) where the next window ends
        self._stream = hasattr(model, "step")
        if self._stream:
            model.reset(silence_features(spec, model.warmup_frames))  # the model keeps one stream's caches
            self._next_step = 0  # feature frame where the next streaming step's input starts
            self._frame_logits = deque(maxlen=model.head_frames)

    def fresh(self) -> Detector:
        """A detector with the same model and settings at the start of a new stream."""
        return Detector(self.model, self.labels, self.spec, **self._settings)

    @property
    def audio_seconds(self) -> float:
        return self.frontend.samples_seen / self.spec.sample_rate

    def window_end_time(self, end_frame: int) -> float:
        """Stream time (s) of the last sample seen by a window ending (exclusive) at `end_frame`."""
        return ((end_frame - 1) * self.spec.hop_length + self.spec.n_fft) / self.spec.sample_rate

    def score(self, samples: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """(time_s, smoothed posteriors) for every window that `samples` completes."""
        self._features = np.concatenate([self._features, self.frontend.push(samples)])
        results = []
        while self._next_end <= self._first + len(self._features):
            if self._stream:
                scores = self._steps_until(self._next_end)
            else:
                start = self._next_end - self.window_frames - self._first
                scores = self.model(self._features[start : start + self.window_frames])
            self._recent.append(to_posteriors(scores, self.output_kind))
            results.append((self.window_end_time(self._next_end), np.mean(self._recent, axis=0)))
            self._next_end += self.hop_frames
        drop = self._next_end - self.window_frames - self._first
        if drop > 0:
            self._features, self._first = self._features[drop:], self._first + drop
        return results

    def _steps_until(self, end: int) -> np.ndarray:
        """The streaming model's steps whose input ends by feature frame `end`; the head's mean logits."""
        while self._next_step + self.model.frames_in <= end:
            start = self._next_step - self._first
            self._frame_logits.append(self.model.step(self._features[start : start + self.model.frames_in]))
            self._next_step += self.model.frames_per_step
        return np.mean(self._frame_logits, axis=0)

    def push(self, samples: np.ndarray) -> list[Detection]:
        detections = (self.decider.update(t, p) for t, p in self.score(samples))
        return [d for d in detections if d is not None]

    def run(self, chunks: Iterable[np.ndarray]) -> Iterator[Detection]:
        """Detections of a whole stream of chunks, yielded as they happen."""
        for chunk in chunks:
            yield from self.push(chunk)
