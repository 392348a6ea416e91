"""False accepts per hour on held-out real human speech, at the thresholds saved in an export's manifest.

    python -m bench.real_false_accepts artifacts/kws-tiny --speech data/real --split test-clean \
        [--stream-report artifacts/stream/report.json] [--out runs/bench/real_false_accepts.json]

A wake word must stay silent through any human speech, in any language. This plays every utterance of a
LibriSpeech-layout split (asr data real-speech extract: volunteers and actors in a dozen languages, no English
keyword in it) through the streaming detector, as `asr demo` runs it, one after another with a short pause of
faint noise between them, and counts every detection as a false accept:
- the wake word at its own saved threshold (`asr eval-stream --wake-fa-per-hour ... --save-threshold`);
- all keywords at the saved thresholds (the shared one, the wake word's own for it), as `asr demo` fires;
- all keywords at the shared threshold alone.
Counts per hour of the audio played, overall and per source (asr data real-speech's sources.json), and each
false accept as `asr demo` fires with its utterance and transcript (what was said, where the source gives it). With
--stream-report, the recall on the generated stream at the same thresholds is printed beside them. An export
with a verifier (`asr verifier`) has every detection checked by it, as `asr demo` does (--no-verify: not).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from asr.audio import read_audio
from asr.data.librispeech import PAUSE_S, LibriSpeech, play_utterances
from asr.errors import InputError
from asr.evaluation.metrics import decide, read_events
from asr.evaluation.stream import evaluate_stream
from asr.files import write_text_atomic
from asr.runtime.options import add_detector_arguments, spotter_from_args


def play(detector, speech: LibriSpeech, max_hours: float | None, seed: int = 0, keep_audio: bool = False):
    """(window times, smoothed posteriors, [(start_s, end_s, speaker, utterance id)] of each utterance, seconds
    played, the session's audio if `keep_audio` else None) of the whole session, heard by a fresh detector (a
    second session on the same one would start with the first's clock and smoothing)."""
    detector = detector.fresh()
    rate = detector.spec.sample_rate
    times, posteriors, spans, clock, played = [], [], [], 0.0, []
    order = range(len(speech))
    if max_hours:  # every k-th utterance: all speakers, about max_hours of them
        total = sum(sf.info(str(path)).duration for path, _, _ in speech.items) + PAUSE_S * len(speech)
        order = order[:: max(1, int(total / (max_hours * 3600)))]
    played_utterances = tqdm(play_utterances(speech, order, seed), total=len(order), desc="real speech", unit="utt")
    for floor, audio, utt_id in played_utterances:
        for chunk in (floor, audio):
            if keep_audio:
                played.append(chunk)
            for t, p in detector.score(chunk):
                times.append(t)
                posteriors.append(p)
        spans.append((clock + PAUSE_S, clock + PAUSE_S + len(audio) / rate, LibriSpeech.speaker_of(utt_id), utt_id))
        clock += PAUSE_S + len(audio) / rate
    session = np.concatenate(played) if keep_audio else None
    return np.array(times), np.array(posteriors).reshape(len(times), len(detector.labels)), spans, clock, session


def checker(verifier, audio):
    """The detections of a session's audio that the verifier lets through; all of them without one."""
    return (lambda found: found) if verifier is None else verifier.confirmer(audio)


def heard_in(detections, spans) -> list[tuple]:
    """The utterance span each detection belongs to: a window ends at most one window after its utterance, so the
    one that started last before it."""
    starts = np.array([span[0] for span in spans])
    return [spans[max(0, int(np.searchsorted(starts, d.time_s)) - 1)] for d in detections]


def count(detections, spans, source_of: dict[str, str], hours: float) -> dict:
    per_source = Counter(source_of.get(span[2], "?") for span in heard_in(detections, spans))
    return {
        "false_accepts": len(detections),
        "per_hour": round(len(detections) / hours, 3),
        "per_label": dict(Counter(d.label for d in detections)),
        "per_source": dict(per_source),
    }


SHOWN = 20  # false accepts printed with what was said (all of them in the report)

# Thresholds chosen on real speech (--choose-on): a fine grid near 1, where a wake word's threshold must sit.
GRID = np.round(np.concatenate([np.arange(0.30, 0.95, 0.01), np.arange(0.95, 0.9995, 0.001)]), 4)


def choose_on_real_speech(args: argparse.Namespace, detector, verifier, wake: str, shared: float) -> tuple[float, dict]:
    """(shared, {wake: threshold}): the lowest thresholds with at most --wake-target wake-word false accepts per
    hour, and then at most --keywords-target for all keywords, on the real speech of the --choose-on split (other
    speakers than the split measured)."""
    speech = LibriSpeech(args.speech, args.choose_on)
    times, posteriors, _, seconds, audio = play(detector, speech, args.max_hours, keep_audio=verifier is not None)
    hours, labels, refractory, check = seconds / 3600, detector.labels, args.refractory_s, checker(verifier, audio)

    def per_hour(shared_t: float, wake_t: float, only_wake: bool) -> float:
        found = check(decide(times, posteriors, labels, shared_t, refractory, {wake: wake_t}))
        return sum(not only_wake or d.label == wake for d in found) / hours

    wake_t = next((float(t) for t in GRID if per_hour(shared, t, True) <= args.wake_target), float(GRID[-1]))
    shared_t = next(
        (float(t) for t in GRID if per_hour(t, max(wake_t, t), False) <= args.keywords_target), float(GRID[-1])
    )
    return shared_t, {wake: max(wake_t, shared_t)}


def measure(args: argparse.Namespace) -> dict:
    spotter = spotter_from_args(args)
    detector, saved, verifier = spotter.detector, spotter.manifest.thresholds, spotter.verifier
    if saved is None:
        raise InputError(
            f"{args.model_dir}/manifest.json has no saved threshold: run `asr eval-stream --save-threshold`"
        )
    shared, own = saved.threshold, dict(saved.label_thresholds)
    wake = args.wake_word or spotter.wake_word
    if args.choose_on:
        shared, own = choose_on_real_speech(args, detector, verifier, wake, shared)
    speech = LibriSpeech(args.speech, args.split)
    sources = Path(args.speech) / "sources.json"
    rows = json.loads(sources.read_text()) if sources.is_file() else []
    source_of = {str(r["id"]): r["package"] for r in rows}
    times, posteriors, spans, seconds, audio = play(detector, speech, args.max_hours, keep_audio=verifier is not None)
    said = {utt_id: text for _, text, utt_id in speech.items}
    hours = seconds / 3600
    refractory, labels, check = args.refractory_s, detector.labels, checker(verifier, audio)
    as_demo = check(decide(times, posteriors, labels, shared, refractory, own))
    report = {
        "model_dir": str(args.model_dir),
        "speech": f"{args.speech}/{args.split}",
        "utterances": len(spans),
        "hours": round(hours, 4),
        "speakers": len({span[2] for span in spans}),
        "thresholds": {"shared": shared, "own": own, "chosen_on": args.choose_on or "saved in the manifest"},
        "verified": verifier is not None,
        "wake_word": count([d for d in as_demo if d.label == wake], spans, source_of, hours) | {"word": wake},
        "all_keywords_saved": count(as_demo, spans, source_of, hours),
        "all_keywords_shared": count(
            check(decide(times, posteriors, labels, shared, refractory)), spans, source_of, hours
        ),
        "false_accepts": [
            {"label": d.label, "time_s": round(d.time_s, 2), "utterance": span[3], "transcript": said[span[3]]}
            for d, span in zip(as_demo, heard_in(as_demo, spans), strict=True)
        ],
    }
    if args.stream:  # the generated test stream at these thresholds
        events = read_events(args.stream / "events.csv")
        audio = read_audio(args.stream / "stream.wav", detector.spec.sample_rate)
        confirm = None if verifier is None else verifier.confirmer(audio)
        chosen = evaluate_stream(detector, audio, events, fixed=(shared, own), confirm=confirm)["chosen"]
        report["generated_stream_recall"] = {
            "overall": chosen["overall"]["recall"],
            "wake_word": chosen["per_label"].get(wake, {}).get("recall"),
            "reason": f"{args.stream} at these thresholds",
        }
    elif args.stream_report:
        chosen = json.loads(Path(args.stream_report).read_text())["chosen"]
        report["generated_stream_recall"] = {
            "overall": chosen["overall"]["recall"],
            "wake_word": chosen["per_label"].get(wake, {}).get("recall"),
            "reason": chosen.get("reason"),
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path, help="an export directory with saved thresholds")
    parser.add_argument("--speech", type=Path, default=Path("data/real"), help="a LibriSpeech-layout tree")
    parser.add_argument("--split", default="test-clean")
    parser.add_argument("--wake-word", help="default: the manifest's wake word")
    parser.add_argument("--max-hours", type=float, default=None, help="about this much: every k-th utterance")
    parser.add_argument("--stream-report", type=Path, help="`asr eval-stream --at-saved-threshold` report.json")
    parser.add_argument(
        "--stream", type=Path, help="a generated stream (stream.wav, events.csv): recall at the thresholds"
    )
    parser.add_argument("--choose-on", help="choose the thresholds on this split of --speech (e.g. train-clean-100)")
    parser.add_argument("--wake-target", type=float, default=0.5, help="wake-word FA/h allowed on --choose-on")
    parser.add_argument("--keywords-target", type=float, default=2.0, help="all-keyword FA/h allowed on --choose-on")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/real_false_accepts.json"))
    add_detector_arguments(parser)
    args = parser.parse_args()
    report = measure(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, json.dumps(report, indent=1) + "\n")
    recall = report.get("generated_stream_recall", {})
    checked = ", each detection checked by the export's verifier" if report["verified"] else ""
    print(
        f"{report['hours']:.2f} h of real speech, {report['utterances']} utterances, {report['speakers']} speakers"
        + checked
    )
    print("| measure | false accepts | per hour | recall on the generated stream |")
    print("|---|---|---|---|")
    for key, name, rec in (
        ("wake_word", f"wake word {report['wake_word']['word']!r} at its own threshold", recall.get("wake_word")),
        ("all_keywords_saved", "all keywords at these thresholds (as `asr demo`)", recall.get("overall")),
        ("all_keywords_shared", f"all keywords at the shared threshold {report['thresholds']['shared']}", None),
    ):
        r = report[key]
        print(
            f"| {name} | {r['false_accepts']} | {r['per_hour']:.2f} | {'-' if rec is None else f'{100 * rec:.1f}%'} |"
        )
    for a in report["false_accepts"][:SHOWN]:
        print(f"  {a['label']!r} at {a['time_s']:.1f} s, in {a['utterance']}: {a['transcript'][:80]}")
    if len(report["false_accepts"]) > SHOWN:
        print(f"  ... {len(report['false_accepts']) - SHOWN} more in {args.out}")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
