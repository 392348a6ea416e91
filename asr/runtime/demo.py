"""`asr demo MODEL_DIR`: listen for keywords and print one line per detection.

Audio comes from the microphone (default), `--file AUDIO`, or `--stdin` (raw S16_LE mono PCM, e.g. from
`arecord -f S16_LE -r 16000 -c 1`). `--wake-then-command` acts on a command only after the wake word;
`--actions FILE.toml` runs a shell command per label.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from asr.runtime.actions import load_actions, run_action
from asr.runtime.audio_source import NO_MICROPHONE_HINT, file_chunks, list_devices, microphone_chunks, stdin_chunks
from asr.runtime.detector import DEFAULT_THRESHOLD, Detection, keywords
from asr.runtime.options import add_detector_arguments, detector_from_args
from asr.runtime.wake import DEFAULT_WAKE_WORD, WakeGate


def label_threshold(text: str) -> tuple[str, float]:
    label, _, value = text.partition("=")
    try:
        return label, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LABEL=THRESHOLD, got {text!r}") from None


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", nargs="?", metavar="MODEL_DIR", help="export directory (manifest.json)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--file", metavar="AUDIO", help="a mono WAV/FLAC file at the model's sample rate")
    source.add_argument("--stdin", action="store_true", help="raw signed 16-bit little-endian mono PCM on stdin")
    source.add_argument("--device", help="microphone: PortAudio device index or name (see --list-devices)")
    parser.add_argument("--resample", action="store_true", help="accept a --file at another sample rate")
    parser.add_argument("--list-devices", action="store_true", help="print the audio devices and exit")
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="posterior threshold for every keyword (default: the one `asr eval-stream --save-threshold` stored in "
        f"the manifest, else {DEFAULT_THRESHOLD})",
    )
    parser.add_argument(
        "--label-threshold",
        type=label_threshold,
        action="append",
        default=[],
        metavar="LABEL=X",
        help="threshold for one keyword (repeatable), e.g. --label-threshold marvin=0.9",
    )
    add_detector_arguments(parser)
    parser.add_argument(
        "--wake-then-command",
        nargs="?",
        type=float,
        const=3.0,
        default=None,
        metavar="SECONDS",
        help="act on a command only within SECONDS (default 3) after the wake word",
    )
    parser.add_argument(
        "--wake-word", default=None, help=f"default: the manifest's wake_word, else {DEFAULT_WAKE_WORD}"
    )
    parser.add_argument("--actions", metavar="FILE.toml", help="label = 'shell command' per line")
    parser.add_argument(
        "--keyword",
        action="append",
        metavar="PHRASE",
        help="a CTC export: spot this phrase, defined by text (repeatable; asr.runtime.phrases)",
    )
    parser.add_argument("--chunk-ms", type=float, default=100.0, help="audio read size")


def format_detection(detection: Detection, as_json: bool) -> str:
    if as_json:
        return json.dumps(detection.to_dict())
    return f"{detection.time_s:9.2f}s  {detection.label:<12s} {detection.score:.3f}"


def run(args: argparse.Namespace) -> int:
    if args.list_devices:
        print(list_devices() or f"PortAudio finds no audio device; {NO_MICROPHONE_HINT}")
        return 0
    if not args.model_dir:
        raise ValueError("MODEL_DIR is required (an export directory with manifest.json)")
    from asr.runtime.phrases import is_ctc_export, run_demo

    if args.keyword or is_ctc_export(args.model_dir):
        return run_demo(args)
    detector, manifest = detector_from_args(args, threshold=args.threshold, thresholds=dict(args.label_threshold))
    labels, spec = detector.labels, detector.spec
    gate = None
    if args.wake_then_command is not None:
        gate = WakeGate(args.wake_word or manifest.get("wake_word", DEFAULT_WAKE_WORD), labels, args.wake_then_command)
    actions = load_actions(args.actions, labels) if args.actions else {}

    chunk = max(1, round(args.chunk_ms / 1000 * spec.sample_rate))
    if args.file:
        chunks = file_chunks(args.file, spec.sample_rate, chunk, resample=args.resample)
    elif args.stdin:
        chunks = stdin_chunks(chunk)
    else:
        device = int(args.device) if args.device is not None and args.device.isdigit() else args.device
        chunks = microphone_chunks(spec.sample_rate, chunk, device)
        print(f"listening for {', '.join(keywords(labels))} (Ctrl-C to stop)", file=sys.stderr)

    started, count = time.perf_counter(), 0
    for detection in detector.run(chunks):
        if gate is not None and not gate.accept(detection):
            continue
        count += 1
        print(format_detection(detection, args.json), flush=True)
        if detection.label in actions:
            run_action(actions[detection.label], detection)
    elapsed = time.perf_counter() - started
    seconds = detector.audio_seconds
    rtf = f", real-time factor {elapsed / seconds:.3f}" if seconds else ""
    print(f"{count} detection(s) in {seconds:.1f} s of audio{rtf}", file=sys.stderr)
    return 0
