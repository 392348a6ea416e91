"""The Pi verifier's check threshold swept: wake-word recall on a generated stream against false accepts per hour of
held-out real speech, for one or more verifier heads judging the same keyword model's detections.

    python -m bench.verifier_curve artifacts/kws-tiny-pi --stream S [--heads DIR ...] \
        [--speech data/real --split test-clean] [--plot curve.png] [--out runs/bench/verifier_curve.json]

A head is judged by its whole curve, not by the one point its saved threshold picks: two heads that differ by a
false wake in 5.7 h at 0.5 may lie on one curve (BENCHMARKS.md 3c). The keyword model runs once per recording at
the export's saved thresholds, as `asr demo` fires; each head (default: the export's own verifier, a directory
`asr verifier` writes) then gives every detection its probability, and a detection passes at check threshold t when
that probability is at least t. At t = 0 every detection passes (the model alone); at the head's saved threshold the
counts are those of `bench.real_false_accepts` and `asr eval-stream --at-saved-threshold`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from asr.audio import read_audio
from asr.data.librispeech import LibriSpeech
from asr.errors import InputError
from asr.evaluation.metrics import decide, match, read_events
from asr.evaluation.stream import score_recording
from asr.files import save_figure_atomic, write_text_atomic
from asr.runtime.spotter import KeywordSpotter
from asr.runtime.verifier import VERIFIER_DIR, Verifier
from bench.real_false_accepts import play

CHECKS = np.round(np.arange(0.0, 1.0, 0.05), 2)
MAX_DELAY_S = 1.0  # a detection this long after its word's end still hits it, as in `asr eval-stream`


def head_probabilities(verifier: Verifier, audio: np.ndarray, detections) -> np.ndarray:
    return np.array([verifier.probability(verifier.crop(audio, d.time_s), d.label) for d in detections])


def measure(args: argparse.Namespace) -> dict:
    spotter = KeywordSpotter.from_export(args.model_dir, verify=False)
    detector, saved, wake = spotter.detector, spotter.manifest.thresholds, spotter.wake_word
    if saved is None:
        raise InputError(
            f"{args.model_dir}/manifest.json has no saved threshold: run `asr eval-stream --save-threshold`"
        )
    heads = args.heads or [args.model_dir / VERIFIER_DIR]
    verifiers = [Verifier(h) for h in heads]
    refractory, labels = detector.decider.refractory_s, detector.labels

    def fire(times: np.ndarray, posteriors: np.ndarray):
        return decide(times, posteriors, labels, saved.threshold, refractory, saved.label_thresholds)

    audio = read_audio(args.stream / "stream.wav", detector.spec.sample_rate)
    events = read_events(args.stream / "events.csv")
    found = fire(*score_recording(detector.fresh(), audio))
    stream_p = [head_probabilities(v, audio, found) for v in verifiers]
    seconds = len(audio) / detector.spec.sample_rate

    times, posteriors, _, real_seconds, session = play(
        detector.fresh(), LibriSpeech(args.speech, args.split), None, keep_audio=True
    )
    false = fire(times, posteriors)
    real_p = [head_probabilities(v, session, false) for v in verifiers]
    hours = real_seconds / 3600
    is_wake = np.array([d.label == wake for d in false], dtype=bool)

    curves = []
    for head, sp, rp in zip(heads, stream_p, real_p, strict=True):
        rows = []
        for t in CHECKS:
            kept = [d for d, p in zip(found, sp, strict=True) if p >= t]
            m = match(kept, events, labels, seconds, detector.spec.clip_seconds, MAX_DELAY_S)
            passed = rp >= t
            wake_fa, fa = int((passed & is_wake).sum()), int(passed.sum())
            rows.append(
                {
                    "check": float(t),
                    "wake_recall": m["per_label"].get(wake, {}).get("recall"),
                    "recall": m["overall"]["recall"],
                    "wake_false_accepts": wake_fa,
                    "false_accepts": fa,
                    "wake_fa_per_hour": round(wake_fa / hours, 3),
                    "fa_per_hour": round(fa / hours, 3),
                }
            )
        curves.append({"head": str(head), "rows": rows})
    return {
        "model_dir": str(args.model_dir),
        "stream": str(args.stream),
        "wake_events": sum(e.label == wake for e in events),
        "speech": f"{args.speech}/{args.split}",
        "hours": round(hours, 4),
        "wake_word": wake,
        "thresholds": {"shared": saved.threshold, "own": dict(saved.label_thresholds)},
        "curves": curves,
    }


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for curve in report["curves"]:
        rows = [r for r in curve["rows"] if r["wake_recall"] is not None]
        fa = [max(r["wake_fa_per_hour"], 1e-2) for r in rows]  # log axis: 0 FA/h drawn at 0.01
        ax.plot(fa, [100 * r["wake_recall"] for r in rows], ".-", label=curve["head"])
    ax.set(xscale="log", xlabel="false wakes per hour of real speech (0 drawn at 0.01)", ylabel="wake recall (%)")
    ax.set_title(f"{report['wake_word']!r}: {report['wake_events']} events, {report['hours']:.2f} h of real speech")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    save_figure_atomic(fig, path, dpi=120, bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path, help="an export directory with saved thresholds")
    parser.add_argument("--stream", type=Path, required=True, help="a generated stream (stream.wav, events.csv)")
    parser.add_argument("--heads", type=Path, nargs="+", help="verifier directories (default: MODEL_DIR/verifier)")
    parser.add_argument("--speech", type=Path, default=Path("data/real"), help="a LibriSpeech-layout tree")
    parser.add_argument("--split", default="test-clean")
    parser.add_argument("--plot", type=Path, help="wake recall against false wakes per hour, one line per head")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/verifier_curve.json"))
    args = parser.parse_args()
    report = measure(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, json.dumps(report, indent=1) + "\n")
    print(f"{report['wake_events']} wake words in {args.stream}; {report['hours']:.2f} h of {report['speech']}")
    print("| head | check | wake recall | all recall | wake FA/h | all FA/h |")
    print("|---|---|---|---|---|---|")
    for curve in report["curves"]:
        for r in curve["rows"]:
            wake, rec = (("-" if x is None else f"{100 * x:.1f}%") for x in (r["wake_recall"], r["recall"]))
            fa = f"{r['wake_fa_per_hour']:.2f} | {r['fa_per_hour']:.2f}"
            print(f"| {curve['head']} | {r['check']:.2f} | {wake} | {rec} | {fa} |")
    if args.plot:
        plot(report, args.plot)
        print(f"plot: {args.plot}")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
