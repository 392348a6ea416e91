"""Wake-word metrics on a labelled stream, one definition for every system: recall and false accepts per hour
against the threshold (a DET curve), and two operating points read off by the same rule for all.

Neural models go through the runtime's streaming detector (`asr.runtime.detector`, the code the Pi runs) and
`asr eval-stream`'s matching: their posteriors are computed once and the threshold swept over them, with only the
wake word armed (the other keywords never fire), which is how a wake-word device uses a keyword model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asr.errors import InputError
from asr.evaluation.metrics import THRESHOLDS, Event, decide, match, peer_operating_points
from asr.evaluation.stream import score_recording
from asr.features import FeatureSpec
from asr.runtime.detector import Detection, Detector

MAX_DELAY_S = 1.0
WINDOW_S = 1.0


@dataclass
class Stream:
    audio: np.ndarray  # float32 mono, 16 kHz
    events: list[Event]  # the wake word's events and the negatives (`_unknown_`, `_speech_`)
    wake_word: str

    @property
    def duration_s(self) -> float:
        return len(self.audio) / 16000

    @property
    def wake_events(self) -> int:
        return sum(e.label == self.wake_word for e in self.events)


def point(stream: Stream, labels: list[str], detections: list[Detection], threshold: float) -> dict:
    """Recall and false accepts of the wake word for one threshold's detections."""
    matched = match(detections, stream.events, labels, stream.duration_s, WINDOW_S, MAX_DELAY_S)
    s = matched["per_label"][stream.wake_word]
    return {
        "threshold": threshold,
        "recall": s["recall"],
        "false_reject_rate": None if s["recall"] is None else 1 - s["recall"],
        "false_accepts": s["false_accepts"],
        "false_accepts_per_hour": s["false_accepts_per_hour"],
        "latency_mean_s": s["latency_mean_s"],
    }


def neural_sweep(stream: Stream, model, labels: list[str], spec: FeatureSpec, output_kind: str) -> dict:
    """Score `stream` once with the streaming detector (hop 100 ms, 300 ms smoothing) and sweep the threshold."""
    if stream.wake_word not in labels:
        raise InputError(f"the model's labels {labels} have no wake word {stream.wake_word!r}")
    detector = Detector(model, labels, spec, output_kind=output_kind)
    times, posteriors = score_recording(detector, stream.audio)
    wake = labels.index(stream.wake_word)
    masked = posteriors.copy()
    others = [i for i, label in enumerate(labels) if i != wake and not label.startswith("_")]
    masked[:, others] = 0.0  # only the wake word is armed
    sweep = []
    for threshold in THRESHOLDS:
        found = decide(times, masked, labels, float(threshold), detector.decider.refractory_s)
        sweep.append(point(stream, labels, found, float(threshold)))
    return peer_operating_points(sweep)
