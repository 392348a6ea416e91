"""Wake-word metrics on a labelled stream, one definition for every system: recall and false accepts per hour
against the threshold (a DET curve), and two operating points read off by the same rule for all.

Neural models go through the runtime's streaming detector (`asr.runtime.detector`, the code the Pi runs) and
`asr eval-stream`'s matching: their posteriors are computed once and the threshold swept over them, with only the
wake word armed (the other keywords never fire), which is how a wake-word device uses a keyword model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asr.runtime.detector import Detection, Detector
from asr.runtime.frontend import FeatureSpec
from asr.runtime.stream_eval import THRESHOLDS, Event, decide, match, score_recording

# Two operating points read off every sweep: the best recall with at most FA_BUDGET false accepts per hour, and
# the fewest false accepts per hour with recall >= TARGET_RECALL (None when a system never gets there).
FA_BUDGET = 12.0  # 2 false accepts in a 10-minute stream
TARGET_RECALL = 0.9
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


def summarise(sweep: list[dict]) -> dict:
    """The sweep and its two operating points (see FA_BUDGET, TARGET_RECALL)."""
    scored = [s for s in sweep if s["recall"] is not None]
    within = [s for s in scored if s["false_accepts_per_hour"] <= FA_BUDGET]
    reaching = [s for s in scored if s["recall"] >= TARGET_RECALL]
    return {
        "at_fa_budget": max(within, key=lambda s: (s["recall"], -s["false_accepts_per_hour"])) if within else None,
        "at_target_recall": min(reaching, key=lambda s: (s["false_accepts_per_hour"], -s["recall"]))
        if reaching
        else None,
        "fa_budget_per_hour": FA_BUDGET,
        "target_recall": TARGET_RECALL,
        "sweep": sweep,
    }


def neural_sweep(stream: Stream, model, labels: list[str], spec: FeatureSpec, output_kind: str) -> dict:
    """Score `stream` once with the streaming detector (hop 100 ms, 300 ms smoothing) and sweep the threshold."""
    if stream.wake_word not in labels:
        raise ValueError(f"the model's labels {labels} have no wake word {stream.wake_word!r}")
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
    return summarise(sweep)
