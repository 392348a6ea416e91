"""Wake words defined by text, measured on a labelled stream (tools/make_stream.py): recall against false accepts
per hour for each phrase over a threshold sweep, and a DET plot.

The CTC export's log-probabilities are computed once over the whole stream (overlapping windows, as on the device);
each phrase is scored every hop over the last `--span-s` seconds (asr.runtime.ctc.keyword_score) and fires at a
threshold, at most once per refractory period. Detections are matched to events as `asr eval-stream` does.

    python tools/make_stream.py --keywords marvin house happy tree --out-dir artifacts/stream-phrases
    python -m bench.phrases artifacts/asr-tiny artifacts/stream-phrases --keyword marvin house happy tree
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from asr.audio import read_audio
from asr.evaluation.metrics import match, read_events
from asr.runtime.ctc import keyword_score
from asr.runtime.ctc_stream import load_ctc
from asr.runtime.detector import Detection
from asr.runtime.phrases import phrase_units

THRESHOLDS = np.round(np.arange(-4.0, 0.001, 0.05), 2)


def score_series(log_probs: np.ndarray, units: list[int], blank: int, span: int, hop: int) -> np.ndarray:
    """[(end frame, score)] of the phrase's best placement in the `span` frames before each hop."""
    out = []
    for end in range(min(span, len(log_probs)), len(log_probs) + 1, hop):
        score, _, stop = keyword_score(log_probs[max(0, end - span) : end], units, blank)
        out.append((end - span + stop if end >= span else stop, score))
    return np.array(out)


def detections(series: np.ndarray, phrase: str, threshold: float, frame_s: float, refractory_s: float) -> list:
    found, last = [], -np.inf
    for end, score in series:
        t = end * frame_s
        if score >= threshold and t - last >= refractory_s:
            found.append(Detection(t, phrase, float(score)))
            last = t
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path, help="a CTC export directory")
    parser.add_argument("stream", type=Path, help="a folder with stream.wav and events.csv (tools/make_stream.py)")
    parser.add_argument("--keyword", nargs="+", required=True, help="phrases (the stream's event labels)")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--span-s", type=float, default=2.0)
    parser.add_argument("--hop-s", type=float, default=0.2)
    parser.add_argument("--refractory-s", type=float, default=1.0)
    parser.add_argument("--plot", type=Path, default=None, help="write the DET curves here (PNG)")
    args = parser.parse_args()
    model = load_ctc(args.export, precision=args.precision)
    audio = read_audio(args.stream / "stream.wav", model.spec.sample_rate)
    events = read_events(args.stream / "events.csv")
    hours = len(audio) / model.spec.sample_rate / 3600
    stream = model.stream()
    chunk = model.spec.sample_rate
    parts = [stream.push(audio[i : i + chunk]) for i in tqdm(range(0, len(audio), chunk), desc="model", unit="s")]
    log_probs = np.concatenate(parts + [stream.finish()])
    frame_s = model.plan.stride * model.spec.hop_length / model.spec.sample_rate
    span, hop = round(args.span_s / frame_s), max(1, round(args.hop_s / frame_s))
    curves, rows = {}, []
    for phrase in args.keyword:
        units = phrase_units(model, phrase)
        series = score_series(log_probs, units, model.blank, span, hop)
        sweep = []
        for thr in THRESHOLDS:
            found = detections(series, phrase, thr, frame_s, args.refractory_s)
            result = match(found, [e for e in events if e.label == phrase], [phrase], len(audio) / 16000, 1.0, 1.0)
            sweep.append((float(thr), result["overall"]["recall"] or 0.0, result["overall"]["false_accepts"] / hours))
        curves[phrase] = sweep
        best = {fa: max((r for _, r, f in sweep if f <= fa), default=0.0) for fa in (2, 10, 60)}
        n = sum(e.label == phrase for e in events)
        rows.append((phrase, " ".join(model.units[u] for u in units), n, best))
    print(f"{args.export} ({args.precision}) on {args.stream}/stream.wav ({hours * 60:.1f} min)\n")
    print("| phrase | units | events | recall at <= 2 FA/h | <= 10 FA/h | <= 60 FA/h |")
    print("|---|---|---|---|---|---|")
    for phrase, units, n, best in rows:
        print(f"| {phrase} | {units} | {n} | {best[2]:.1%} | {best[10]:.1%} | {best[60]:.1%} |")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 4))
        for phrase, sweep in curves.items():
            ax.plot([f for _, _, f in sweep], [1 - r for _, r, _ in sweep], label=phrase)
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel("false accepts per hour")
        ax.set_ylabel("miss rate")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot)
    (args.stream / "phrases_report.json").write_text(json.dumps(curves) + "\n")


if __name__ == "__main__":
    main()
