"""Wake words defined by text, measured on a labelled stream (`asr data stream`): recall against false accepts
per hour for each phrase over a threshold sweep, and a DET plot.

Two routes. A CTC export: its log-probabilities are computed once over the whole stream (overlapping windows, as
on the device); each phrase is scored every hop over the last `--span-s` seconds (asr.runtime.ctc.keyword_score).
A keyword export with phrases set up (`asr phrases`): the listener's scores at every 80 ms hop, exactly as
`asr demo --keyword` computes them (asr.runtime.phrase_listener). Either way a phrase fires at a threshold, at most
once per refractory period, and detections are matched to events as `asr eval-stream` does.

    asr data stream --keywords marvin gopher pencil window --minutes 20 --out-dir S     # + --commands, --sentences
    python -m bench.phrases artifacts/asr-tiny S --keyword marvin gopher pencil window
    asr phrases artifacts/kws-tiny --keyword marvin --keyword gopher --keyword pencil --keyword window
    python -m bench.phrases artifacts/kws-tiny S --keyword marvin gopher pencil window
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from asr.audio import read_audio
from asr.data.librispeech import LibriSpeech, play_utterances
from asr.evaluation.metrics import match, read_events
from asr.runtime.bundle import Manifest
from asr.runtime.ctc import keyword_score
from asr.runtime.ctc_stream import load_ctc
from asr.runtime.detector import Detection
from asr.runtime.phrase_listener import HOP, PhraseListener
from asr.runtime.phrases import is_ctc_export, phrase_key, phrase_units
from asr.train.phrase_listener import TARGET_FA_PER_HOUR

CTC_THRESHOLDS = np.round(np.arange(-4.0, 0.001, 0.05), 2)  # mean log-probability per frame below the best path
LISTENER_THRESHOLDS = np.round(np.arange(-4.0, 20.001, 0.25), 2)  # log-odds


def score_series(log_probs: np.ndarray, units: list[int], blank: int, span: int, hop: int) -> np.ndarray:
    """[(end frame, score)] of the phrase's best placement in the `span` frames before each hop."""
    out = []
    for end in range(min(span, len(log_probs)), len(log_probs) + 1, hop):
        score, _, stop = keyword_score(log_probs[max(0, end - span) : end], units, blank)
        out.append((end - span + stop if end >= span else stop, score))
    return np.array(out)


def detections(series: np.ndarray, phrase: str, threshold: float, refractory_s: float) -> list:
    """series: [(time in s, score)]."""
    found, last = [], -np.inf
    for t, score in series:
        if score >= threshold and t - last >= refractory_s:
            found.append(Detection(t, phrase, float(score)))
            last = t
    return found


def ctc_series(args: argparse.Namespace, audio: np.ndarray) -> tuple[dict, dict]:
    """{phrase: [(time, score)]} and {phrase: its units} of a CTC export."""
    model = load_ctc(args.export, precision=args.precision)
    stream = model.stream()
    chunk = model.spec.sample_rate
    parts = [stream.push(audio[i : i + chunk]) for i in tqdm(range(0, len(audio), chunk), desc="model", unit="s")]
    log_probs = np.concatenate(parts + [stream.finish()])
    frame_s = model.plan.stride * model.spec.hop_length / model.spec.sample_rate
    span, hop = round(args.span_s / frame_s), max(1, round(args.hop_s / frame_s))
    series, units = {}, {}
    for phrase in args.keyword:
        ids = phrase_units(model, phrase)
        scores = score_series(log_probs, ids, model.blank, span, hop)
        series[phrase] = np.stack([scores[:, 0] * frame_s, scores[:, 1]], axis=1)
        units[phrase] = " ".join(model.units[u] for u in ids)
    return series, units


def listen(listener: PhraseListener, chunks, phrases: list[str]) -> dict:
    """{phrase: [(time, score)]} of a stream of chunks, as `asr demo --keyword` scores it."""
    rows = [row for chunk in chunks for row in listener.listen(chunk)]
    times, scores = np.array([t for t, _ in rows]), np.stack([s for _, s in rows])
    column = {p: listener.config.phrases.index(phrase_key(p)) for p in phrases}
    return {p: np.stack([times, scores[:, column[p]]], axis=1) for p in phrases}


def listener_series(listener: PhraseListener, audio: np.ndarray, phrases: list[str]) -> tuple[dict, dict]:
    """{phrase: [(time, score)]} of the phrases `asr phrases` set up for a keyword export, from a fresh stream."""
    listener.reset()
    chunks = (audio[i : i + HOP] for i in tqdm(range(0, len(audio), HOP), desc="listener", unit="hop"))
    return listen(listener, chunks, phrases), dict.fromkeys(phrases, f"{listener.config.voices} voices")


def real_speech_series(listener: PhraseListener, args: argparse.Namespace) -> tuple[dict, float]:
    """The listener's series over every utterance of --speech's split, played one after another with a pause of
    faint noise (as bench.real_false_accepts plays them) from a fresh stream, and the hours played."""
    listener.reset()
    speech = LibriSpeech(args.speech, args.speech_split)
    played = [0]

    def chunks():
        for pause, audio, _ in tqdm(play_utterances(speech), total=len(speech), desc="real speech", unit="utt"):
            played[0] += len(pause) + len(audio)
            yield pause
            yield audio

    series = listen(listener, chunks(), args.keyword)
    return series, played[0] / listener.sample_rate / 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path, help="a CTC export, or a keyword export with phrases (`asr phrases`)")
    parser.add_argument("stream", type=Path, help="a folder with stream.wav and events.csv (`asr data stream`)")
    parser.add_argument("--keyword", nargs="+", required=True, help="phrases (the stream's event labels)")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--span-s", type=float, default=2.0)
    parser.add_argument("--hop-s", type=float, default=0.2)
    parser.add_argument("--refractory-s", type=float, default=1.0)
    parser.add_argument("--plot", type=Path, default=None, help="write the DET curves here (PNG)")
    parser.add_argument("--speech", type=Path, help="phrase listener: false accepts on this real speech too")
    parser.add_argument("--speech-split", default="test-clean", help="its split (speakers the set-up never heard)")
    args = parser.parse_args()
    rate = Manifest.read(args.export).features.sample_rate
    audio = read_audio(args.stream / "stream.wav", rate)
    events = read_events(args.stream / "events.csv")
    hours = len(audio) / rate / 3600
    ctc = is_ctc_export(args.export)
    listener = None if ctc else PhraseListener.from_export(args.export, args.keyword)
    series, units = ctc_series(args, audio) if ctc else listener_series(listener, audio, args.keyword)
    thresholds = CTC_THRESHOLDS if ctc else LISTENER_THRESHOLDS
    saved = {} if ctc else listener.thresholds
    real, real_hours = real_speech_series(listener, args) if args.speech and not ctc else ({}, 0.0)

    def point(phrase: str, thr: float) -> list[float]:
        """[threshold, recall on the stream, its false accepts per hour(, those of the real speech)]."""
        found = detections(series[phrase], phrase, thr, args.refractory_s)
        result = match(found, [e for e in events if e.label == phrase], [phrase], len(audio) / rate, 1.0, 1.0)
        out = [float(thr), result["overall"]["recall"] or 0.0, result["overall"]["false_accepts"] / hours]
        if real:
            out.append(len(detections(real[phrase], phrase, thr, args.refractory_s)) / real_hours)
        return out

    curves, rows = {}, []
    for phrase in args.keyword:
        sweep = curves[phrase] = [point(phrase, thr) for thr in thresholds]
        best = {fa: max((p[1] for p in sweep if p[2] <= fa), default=0.0) for fa in (2, 10, 60)}
        if real:  # the best stream recall within the set-up's target on this real speech (a threshold chosen on it)
            best["real"] = max((p[1] for p in sweep if p[3] <= TARGET_FA_PER_HOUR), default=0.0)
        n = sum(e.label == phrase for e in events)
        at = ""
        if phrase_key(phrase) in saved:  # the listener's own threshold: the stream, and real speech if given
            t, recall, fa, *on_real = point(phrase, saved[phrase_key(phrase)])
            at = f"{t:g}: {recall:.1%}, {fa:.1f}/h" + (f", real speech {on_real[0]:.2f}/h" if on_real else "")
        rows.append((phrase, units[phrase], n, best, at))
    route = f"CTC, {args.precision}" if ctc else "phrase listener"
    print(f"{args.export} ({route}) on {args.stream}/stream.wav ({hours * 60:.1f} min)", end="")
    print(f"; real speech: {args.speech}/{args.speech_split} ({real_hours:.2f} h)\n" if real else "\n")
    oracle = f" | <= {TARGET_FA_PER_HOUR} FA/h of real speech" if real else ""
    print(f"| phrase | units | events | recall at <= 2 FA/h | <= 10 FA/h | <= 60 FA/h{oracle} | at its threshold |")
    print("|---|---|---|---|---|---|---|" + ("---|" if real else ""))
    for phrase, units, n, best, at in rows:
        cells = [f"{best[k]:.1%}" for k in (2, 10, 60, "real") if k in best]
        print(f"| {phrase} | {units} | {n} | {' | '.join(cells)} | {at or '-'} |")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 4))
        for phrase, sweep in curves.items():
            ax.plot([p[2] for p in sweep], [1 - p[1] for p in sweep], label=phrase)
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel("false accepts per hour")
        ax.set_ylabel("miss rate")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot)
    (args.stream / f"phrases_{args.export.name}.json").write_text(json.dumps(curves) + "\n")


if __name__ == "__main__":
    main()
