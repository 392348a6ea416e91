"""Every figure the project reports, defined once and torch-free: keyword accuracy and the rates that say how a
model does on what it never heard, WER, and for streams the matching of detections to labelled events, threshold
sweeps and operating points. Training, `asr eval`, `asr eval-stream`, the export's parity checks and the peer
benchmarks all read them from here.

Stream matching: a detection hits an event of its own label when it comes between the event's onset and its end
(offset_s, else onset_s + the model window) plus `max_delay_s`; each event is hit at most once. Every other
detection is a false accept, including a second one on the same word and any keyword fired on an event whose label
is not a keyword (`_unknown_`, background speech). Latency is measured from the event's onset.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.errors import InputError, MissingError
from asr.labels import SILENCE, UNKNOWN, keyword_indices, keywords
from asr.runtime.detector import Decider, Detection, label_thresholds

THRESHOLDS = np.round(np.arange(0.05, 1.0, 0.01), 2)  # the sweep every stream report uses
GROUPS = ("donor", "engine", "voice")  # voices.json fields accuracy is broken down by ("voice" as engine:voice)
# Peer wake-word comparisons read two points off every sweep: the best recall within FA_BUDGET false accepts per
# hour, and the fewest false accepts per hour with recall >= TARGET_RECALL (None when a system never gets there).
FA_BUDGET = 12.0  # 2 false accepts in a 10-minute stream
TARGET_RECALL = 0.9


# --- clips ------------------------------------------------------------------------------------------------------


def accuracy(scores: np.ndarray, targets: np.ndarray) -> float:
    """Share of rows of `scores` [N, C] whose argmax is the target."""
    return float(np.mean(scores.argmax(-1) == targets)) if len(targets) else 0.0


def label_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of rows on which two score arrays [N, C] pick the same label."""
    return float(np.mean(a.argmax(-1) == b.argmax(-1)))


def keyword_report(preds: np.ndarray, targets: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, per-class precision / recall / support, and the confusion matrix (rows: truth)."""
    k = len(labels)
    confusion = np.bincount(targets * k + preds, minlength=k * k).reshape(k, k)
    per_class = {}
    for i, name in enumerate(labels):
        support, predicted = int(confusion[i].sum()), int(confusion[:, i].sum())
        per_class[name] = {
            "support": support,
            "recall": float(confusion[i, i] / support) if support else None,
            "precision": float(confusion[i, i] / predicted) if predicted else None,
        }
    return {
        "examples": int(len(targets)),
        "accuracy": float((preds == targets).mean()) if len(targets) else 0.0,
        "per_class": per_class,
        "labels": labels,
        "confusion": confusion.tolist(),
    }


def rate(hits: np.ndarray) -> float | None:
    return float(hits.mean()) if len(hits) else None


def keyword_accuracy(preds: np.ndarray, targets: np.ndarray, labels: list[str]) -> float | None:
    """Mean recall over the keyword classes present (not the filler classes)."""
    recalls = [(preds[targets == k] == k).mean() for k in keyword_indices(labels) if (targets == k).any()]
    return float(np.mean(recalls)) if recalls else None


def group_summary(preds: np.ndarray, targets: np.ndarray, labels: list[str]) -> dict:
    called = called_keyword(preds, labels)
    unknown = targets == labels.index(UNKNOWN)
    return {
        "examples": int(len(targets)),
        "accuracy": rate(preds == targets),
        "keyword_accuracy": keyword_accuracy(preds, targets, labels),
        "false_keyword_rate": rate(called[unknown]),
    }


def called_keyword(preds: np.ndarray, labels: list[str]) -> np.ndarray:
    """Which predictions name a keyword (the model would fire)."""
    return np.isin(preds, keyword_indices(labels))


def unseen_report(
    preds: np.ndarray,
    targets: np.ndarray,
    labels: list[str],
    words: list[str],
    train_words: set[str],
    voice_rows: list[dict] | None = None,
) -> dict:
    """Keyword-only accuracy, how often a keyword is called on unknown words unseen / seen in training and on
    silence, and (given each clip's voices.json row) accuracy per donor, engine and voice.

    Example i < len(words) is a speech clip of the word `words[i]`; the rest are `_silence_` windows.
    """
    n = len(words)
    called = called_keyword(preds, labels)
    speech_preds, speech_targets = preds[:n], targets[:n]
    words_arr = np.array(words)
    unknown = speech_targets == labels.index(UNKNOWN)
    unseen = unknown & ~np.isin(words_arr, sorted(train_words))
    seen = unknown & ~unseen
    silence = targets[n:] == labels.index(SILENCE)
    report = {
        "keyword_accuracy": keyword_accuracy(preds, targets, labels),
        "false_keyword": {
            "unseen_words": {
                "rate": rate(called[:n][unseen]),
                "clips": int(unseen.sum()),
                "words": sorted(set(words_arr[unseen])),
            },
            "seen_words": {
                "rate": rate(called[:n][seen]),
                "clips": int(seen.sum()),
                "words": len(set(words_arr[seen])),
            },
            "silence": {"rate": rate(called[n:][silence]), "windows": int(silence.sum())},
        },
        "speech_clips": n,
        "groups": None,
    }
    if voice_rows is not None:
        report["groups"] = {}
        for group in GROUPS:
            names = np.array([_group_name(row, group) for row in voice_rows])
            report["groups"][group] = {
                name: group_summary(speech_preds[names == name], speech_targets[names == name], labels)
                | {
                    "splits": sorted(
                        {row.get("split", "?") for row, m in zip(voice_rows, names == name, strict=True) if m}
                    )
                }
                for name in sorted(set(names))
            }
    return report


def _group_name(row: dict, group: str) -> str:
    if not row:
        return "(not in voices.json)"
    return f"{row['engine']}:{row['voice']}" if group == "voice" else str(row[group])


def wer_report(refs: list[str], hyps: list[str]) -> dict:
    import jiwer

    return {
        "examples": len(refs),
        "wer": float(jiwer.wer(refs, hyps)),
        "cer": float(jiwer.cer(refs, hyps)),
        "samples": [{"ref": r, "hyp": h} for r, h in list(zip(refs, hyps, strict=True))[:10]],
    }


# --- streams ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    onset_s: float
    label: str
    offset_s: float | None = None


def read_events(path: str | Path) -> list[Event]:
    """Events of a CSV with rows `onset_s,label[,offset_s]`; a header row is allowed."""
    path = Path(path)
    if not path.is_file():
        raise MissingError(f"{path}: events file not found")
    events = []
    with path.open(newline="") as f:
        for line_no, row in enumerate(csv.reader(f), 1):
            if not row or (line_no == 1 and row[0].strip().lower() == "onset_s"):
                continue
            try:
                if len(row) not in (2, 3):
                    raise InputError(f"{len(row)} fields")
                offset = float(row[2]) if len(row) == 3 and row[2].strip() else None
                events.append(Event(float(row[0]), row[1].strip(), offset))
            except ValueError as e:
                raise InputError(f"{path}:{line_no}: expected onset_s,label[,offset_s], got {row} ({e})") from None
    return sorted(events, key=lambda e: e.onset_s)


def decide(
    times: np.ndarray,
    posteriors: np.ndarray,
    labels: list[str],
    threshold: float,
    refractory_s: float,
    overrides: Mapping[str, float] | None = None,
) -> list[Detection]:
    """The detections of the stored posteriors at `threshold` (per-label `overrides` win), as the demo makes them.

    Only windows where some keyword reaches its threshold, and the first window after them (which re-arms every
    label), can change the decider's state; the rest are skipped, which makes a sweep of an hour's posteriors
    take seconds instead of minutes."""
    thresholds = label_thresholds(labels, threshold, overrides)
    decider = Decider(labels, thresholds, refractory_s)
    columns = [labels.index(label) for label in thresholds]
    above = (posteriors[:, columns] >= np.array(list(thresholds.values()))).any(axis=1)
    changes = above | np.concatenate([[False], above[:-1]])
    found = (decider.update(times[i], posteriors[i]) for i in np.flatnonzero(changes))
    return [d for d in found if d is not None]


def match(
    detections: list[Detection],
    events: list[Event],
    labels: list[str],
    duration_s: float,
    window_s: float,
    max_delay_s: float,
) -> dict:
    """Per-keyword and overall recall, false accepts (and per hour) and latency of `detections`."""
    words = keywords(labels)
    onsets = np.array([e.onset_s for e in events])
    ends = np.array([e.offset_s if e.offset_s is not None else e.onset_s + window_s for e in events]) + max_delay_s
    event_labels = np.array([e.label for e in events], dtype=object)
    hit_at: dict[int, float] = {}  # event index -> detection time
    false_accepts = dict.fromkeys(words, 0)
    for d in detections:  # vectorised over events: the threshold sweep calls this ~100 times
        candidates = np.flatnonzero((onsets <= d.time_s) & (ends >= d.time_s) & (event_labels == d.label))
        free = [int(i) for i in candidates if int(i) not in hit_at]
        if free:
            hit_at[free[0]] = d.time_s
        else:
            false_accepts[d.label] += 1
    hours = duration_s / 3600

    def summary(names: list[str]) -> dict:
        indices = [i for i, e in enumerate(events) if e.label in names]
        latencies = [hit_at[i] - events[i].onset_s for i in indices if i in hit_at]
        fa = sum(false_accepts[n] for n in names)
        return {
            "events": len(indices),
            "hits": len(latencies),
            "recall": len(latencies) / len(indices) if indices else None,
            "false_accepts": fa,
            "false_accepts_per_hour": fa / hours,
            "latency_mean_s": float(np.mean(latencies)) if latencies else None,
            "latency_p90_s": float(np.percentile(latencies, 90)) if latencies else None,
        }

    return {"overall": summary(words), "per_label": {w: summary([w]) for w in words}}


def choose(sweep: list[dict], target_recall: float, target_fa_per_hour: float | None) -> tuple[dict, str]:
    """The sweep point to use, and why. A recording without keyword events (recall None) measures false
    accepts only: then the lowest threshold within the FA/h target, or with the fewest FA/h."""
    if target_fa_per_hour is not None:
        ok = [s for s in sweep if s["false_accepts_per_hour"] <= target_fa_per_hour]
        if ok:
            best = max(ok, key=lambda s: (s["recall"] or 0, -s["threshold"]))
            return best, f"best recall at <= {target_fa_per_hour} FA/h"
    else:
        ok = [s for s in sweep if s["recall"] is not None and s["recall"] >= target_recall]
        if ok:
            best = min(ok, key=lambda s: (s["false_accepts_per_hour"], -s["recall"], -s["threshold"]))
            return best, f"fewest FA/h with recall >= {target_recall:.0%}"
    best = max(sweep, key=lambda s: (s["recall"] or 0, -s["false_accepts_per_hour"], -s["threshold"]))
    return best, "no keyword events: fewest FA/h" if best["recall"] is None else "target not reached: best recall"


def wake_operating_point(at, shared: float, wake_word: str, labels: list[str], fa_per_hour: float) -> dict:
    """The wake word's own threshold: its best recall with at most `fa_per_hour` false accepts of its own (the
    other keywords at the `shared` threshold: they still fire, and the refractory period follows them). Among
    thresholds with that recall and the fewest false accepts, the middle one: the most margin on either side."""
    if wake_word not in keywords(labels):
        raise InputError(f"wake word {wake_word!r} is not one of the model's keywords {keywords(labels)}")
    sweep = []
    for threshold in THRESHOLDS:
        s = at(shared, {wake_word: float(threshold)})["per_label"][wake_word]
        sweep.append({"threshold": float(threshold), **s})
    within = [s for s in sweep if s["false_accepts_per_hour"] <= fa_per_hour]
    if not within:
        best = min(sweep, key=lambda s: (s["false_accepts_per_hour"], -s["threshold"]))
        return {"word": wake_word, "reason": f"no threshold within {fa_per_hour} FA/h: fewest", **best, "sweep": sweep}
    top = max((s["recall"] or 0, -s["false_accepts"]) for s in within)
    plateau = [s for s in within if ((s["recall"] or 0), -s["false_accepts"]) == top]
    best = plateau[len(plateau) // 2]
    return {"word": wake_word, "reason": f"best recall at <= {fa_per_hour} FA/h", **best, "sweep": sweep}


def peer_operating_points(sweep: list[dict]) -> dict:
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
