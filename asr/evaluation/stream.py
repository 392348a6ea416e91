"""`asr eval-stream MODEL_DIR AUDIO EVENTS.csv`: wake-word metrics on a long labelled recording.

Accuracy on 1 s clips says little about a device that listens all day. This runs the streaming detector
over a recording whose keyword onsets are known and reports, per keyword and overall, recall, false
accepts per hour and detection latency. The model runs once; the threshold is then swept over the stored
posteriors (the decisions are cheap), which gives a DET curve (false reject rate vs false accepts per hour)
and a chosen threshold: the fewest false accepts per hour with recall >= --target-recall, or the best
recall with at most --target-fa-per-hour. With --wake-fa-per-hour, the wake word also gets a threshold of its
own: its best recall with at most that many false accepts of the wake word per hour, the other keywords kept at
the shared threshold. Behind `asr demo --wake-then-command` only the wake word's false accepts open the gate, and
one threshold for a dozen keywords is rarely the wake word's best.

Detections are matched to events as asr.evaluation.metrics defines. An export with a verifier
(asr.runtime.verifier) is measured as `asr demo` runs it, each detection checked, except when thresholds are
saved: they are the model's own, which the microcontroller bundle (no verifier there) reads too.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from tqdm import tqdm

from asr.errors import InputError
from asr.evaluation.metrics import THRESHOLDS, Event, choose, decide, match, read_events, wake_operating_point
from asr.files import save_figure_atomic, write_text_atomic
from asr.labels import keywords
from asr.runtime.bundle import Thresholds, save_thresholds
from asr.runtime.detector import Detection, Detector
from asr.runtime.options import add_detector_arguments, spotter_from_args


def score_recording(detector: Detector, audio: np.ndarray, chunk_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(window end times [n], smoothed posteriors [n, C]) of the whole recording."""
    step = max(1, round(chunk_s * detector.spec.sample_rate))
    times, posteriors = [], []
    for start in tqdm(range(0, len(audio), step), desc="scoring", unit="s", unit_scale=chunk_s, leave=False):
        for t, p in detector.score(audio[start : start + step]):
            times.append(t)
            posteriors.append(p)
    return np.array(times), np.array(posteriors).reshape(len(times), len(detector.labels))


def evaluate_stream(
    detector: Detector,
    audio: np.ndarray,
    events: list[Event],
    *,
    max_delay_s: float = 1.0,
    target_recall: float = 0.9,
    target_fa_per_hour: float | None = None,
    wake_word: str | None = None,
    wake_fa_per_hour: float = 1.0,
    fixed: tuple[float, Mapping[str, float]] | None = None,
    confirm: Callable[[list[Detection]], list[Detection]] | None = None,
) -> dict:
    """The full report: the threshold sweep and the chosen threshold's per-label metrics; with `wake_word`, also
    the wake word's own sweep and threshold (the other keywords at the chosen shared threshold). With `fixed`
    (a shared threshold and per-label ones, chosen on another recording), the metrics at those instead of a
    choice: how thresholds chosen on one set of voices hold on another. `confirm` (a verifier's check) filters
    the detections at every threshold."""
    labels, spec = detector.labels, detector.spec
    duration_s = len(audio) / spec.sample_rate
    times, posteriors = score_recording(detector, audio)
    refractory = detector.decider.refractory_s

    def at(threshold: float, overrides: Mapping[str, float] | None = None) -> dict:
        found = decide(times, posteriors, labels, threshold, refractory, overrides)
        if confirm is not None:
            found = confirm(found)
        return match(found, events, labels, duration_s, spec.clip_seconds, max_delay_s)

    sweep = []
    for threshold in THRESHOLDS:
        overall = at(float(threshold))["overall"]
        sweep.append(
            {
                "threshold": float(threshold),
                "recall": overall["recall"],
                "false_reject_rate": None if overall["recall"] is None else 1 - overall["recall"],
                "false_accepts_per_hour": overall["false_accepts_per_hour"],
            }
        )
    overrides = None
    if fixed is None:
        chosen, reason = choose(sweep, target_recall, target_fa_per_hour)
    else:
        chosen, overrides = {"threshold": fixed[0]}, dict(fixed[1])
        reason = "saved: " + ", ".join(f"{k} {v:.2f}" for k, v in {"shared": fixed[0], **overrides}.items())
    report = {
        "duration_s": duration_s,
        "events": len(events),
        "keyword_events": sum(e.label in keywords(labels) for e in events),
        "windows": len(times),
        "settings": {"max_delay_s": max_delay_s, "refractory_s": refractory, "hop_frames": detector.hop_frames},
        "verified": confirm is not None,
        "chosen": {
            "threshold": chosen["threshold"],
            "reason": reason,
            "label_thresholds": overrides,  # None: shared only
            **at(chosen["threshold"], overrides),
        },
        "sweep": sweep,
    }
    if wake_word is not None:
        report["wake"] = wake_operating_point(at, chosen["threshold"], wake_word, labels, wake_fa_per_hour)
    return report


def plot_det(report: dict, path: Path) -> None:
    """DET curve (false reject rate against false accepts per hour) with the chosen point marked; for a
    recording without keyword events, false accepts per hour against the threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def fa(s: dict) -> float:
        return max(s["false_accepts_per_hour"], 1e-2)  # log axis: 0 FA/h drawn at 0.01

    sweep, chosen = report["sweep"], report["chosen"]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    if report["keyword_events"]:
        ax.plot([fa(s) for s in sweep], [100 * s["false_reject_rate"] for s in sweep], ".-", label="threshold sweep")
        ax.plot(fa(chosen["overall"]), 100 * (1 - chosen["overall"]["recall"]), "r*", markersize=14)
        ax.set(xscale="log", xlabel="false accepts per hour (0 drawn at 0.01)", ylabel="false reject rate (%)")
    else:
        ax.plot([s["threshold"] for s in sweep], [fa(s) for s in sweep], ".-", label="threshold sweep")
        ax.plot(chosen["threshold"], fa(chosen["overall"]), "r*", markersize=14)
        ax.set(yscale="log", xlabel="threshold", ylabel="false accepts per hour (0 drawn at 0.01)")
    saved = chosen.get("label_thresholds") is not None  # --at-saved-threshold: the reason names every threshold
    ax.lines[-1].set_label(chosen["reason"] if saved else f"chosen: threshold {chosen['threshold']:.2f}")
    ax.set_title(f"{report['keyword_events']} keyword events, {report['duration_s'] / 60:.1f} min")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    save_figure_atomic(fig, path, dpi=120, bbox_inches="tight")


def format_table(report: dict) -> str:
    chosen = report["chosen"]
    lines = [
        f"{report['duration_s'] / 60:.1f} min, {report['keyword_events']} keyword events; "
        f"threshold {chosen['threshold']:.2f} ({chosen['reason']})"
        + ("; each detection checked by the export's verifier" if report.get("verified") else ""),
        f"{'label':<12} {'events':>6} {'hits':>5} {'recall':>7} {'FA':>4} {'FA/h':>7} {'latency':>8}",
    ]
    for name, s in [*chosen["per_label"].items(), ("overall", chosen["overall"])]:
        recall = f"{s['recall']:.3f}" if s["recall"] is not None else "-"
        latency = f"{s['latency_mean_s']:.2f}s" if s["latency_mean_s"] is not None else "-"
        lines.append(
            f"{name:<12} {s['events']:>6} {s['hits']:>5} {recall:>7} {s['false_accepts']:>4} "
            f"{s['false_accepts_per_hour']:>7.1f} {latency:>8}"
        )
    if "wake" in report:
        w = report["wake"]
        recall = f"{w['recall']:.3f}" if w["recall"] is not None else "-"
        lines.append(
            f"wake word {w['word']!r} at its own threshold {w['threshold']:.2f} ({w['reason']}): recall {recall}, "
            f"{w['false_accepts']} false accepts ({w['false_accepts_per_hour']:.1f}/h)"
        )
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="export directory (manifest.json)")
    parser.add_argument("audio", metavar="AUDIO", help="the long recording (mono, the model's sample rate)")
    parser.add_argument("events", metavar="EVENTS.csv", help="rows onset_s,label[,offset_s]")
    parser.add_argument("--plot", metavar="det.png", help="write the DET curve here")
    parser.add_argument("--out", metavar="report.json", help="write the full report (with the sweep) here")
    parser.add_argument("--target-recall", type=float, default=0.9, help="choose the fewest FA/h at this recall")
    parser.add_argument("--target-fa-per-hour", type=float, help="instead: choose the best recall at this FA/h")
    parser.add_argument("--max-delay-s", type=float, default=1.0, help="latest a hit may come after a word's end")
    parser.add_argument(
        "--save-threshold", action="store_true", help="store the chosen threshold in the manifest, for `asr demo`"
    )
    parser.add_argument(
        "--wake-fa-per-hour",
        type=float,
        help="also choose the wake word's own threshold: its best recall with at most this many false accepts "
        "of the wake word per hour",
    )
    parser.add_argument("--wake-word", help="default: the manifest's wake word")
    parser.add_argument(
        "--at-saved-threshold",
        action="store_true",
        help="report at the thresholds saved in the manifest (chosen with --save-threshold on another recording, "
        "e.g. a stream of the validation voices) instead of choosing them on this one",
    )
    add_detector_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from asr.audio import read_audio

    if args.save_threshold:
        args.no_verify = True  # the thresholds are the model's own (see the module's docstring)
    spotter = spotter_from_args(args)
    detector, manifest, verifier = spotter.detector, spotter.manifest, spotter.verifier
    wake_word = None
    if args.wake_fa_per_hour is not None:
        wake_word = args.wake_word or manifest.wake_word
        if wake_word is None:
            raise InputError(f"{args.model_dir}: the manifest names no wake word; pass --wake-word")
    fixed = None
    if args.at_saved_threshold:
        if manifest.thresholds is None:
            raise InputError(f"{args.model_dir}/manifest.json: no saved threshold (run eval-stream --save-threshold)")
        fixed = (manifest.thresholds.threshold, manifest.thresholds.label_thresholds)
    events = read_events(args.events)
    audio = read_audio(args.audio, sample_rate=detector.spec.sample_rate)
    report = evaluate_stream(
        detector,
        audio,
        events,
        max_delay_s=args.max_delay_s,
        target_recall=args.target_recall,
        target_fa_per_hour=args.target_fa_per_hour,
        wake_word=wake_word,
        wake_fa_per_hour=args.wake_fa_per_hour,
        fixed=fixed,
        confirm=None if verifier is None else verifier.confirmer(audio),
    )
    report.update(model_dir=str(args.model_dir), audio=str(args.audio), events_file=str(args.events))
    print(format_table(report))
    if args.out:
        write_text_atomic(args.out, json.dumps(report, indent=2))
    if args.plot:
        plot_det(report, Path(args.plot))
    if args.save_threshold:
        chosen, wake = report["chosen"], report.get("wake")
        reason, own = f"asr eval-stream on {args.audio}: {chosen['reason']}", None
        if wake is not None:
            reason, own = f"{reason}; {wake['word']} alone: {wake['reason']}", {wake["word"]: wake["threshold"]}
        save_thresholds(args.model_dir, Thresholds(chosen["threshold"], own or {}, reason))
    return 0
