"""`asr demo MODEL_DIR`: listen for keywords and print one line per detection.

Audio comes from the microphone (default), `--file AUDIO`, or `--stdin` (raw S16_LE mono PCM, e.g. from
`arecord -f S16_LE -r 16000 -c 1`). `--wake-then-command` acts on a command only after the wake word;
`--actions FILE.toml` runs a shell command per label.
"""

from __future__ import annotations

import argparse
import sys

from asr.errors import InputError
from asr.runtime.audio_source import NO_MICROPHONE_HINT, demo_chunks, list_devices
from asr.runtime.detector import DEFAULT_THRESHOLD
from asr.runtime.options import add_detector_arguments, spotter_from_args
from asr.runtime.response import respond


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
        "--wake-word",
        default=None,
        help="default: the manifest's wake word (the config's data.wake_word); with --keyword, one of the phrases",
    )
    parser.add_argument("--actions", metavar="FILE.toml", help="label = 'shell command' per line")
    parser.add_argument(
        "--keyword",
        action="append",
        metavar="PHRASE",
        help="spot this phrase, defined by text (repeatable): a CTC export by its units (asr.runtime.phrases), "
        "a keyword export by the head `asr phrases` set up (asr.runtime.phrase_listener)",
    )
    parser.add_argument("--chunk-ms", type=float, default=100.0, help="audio read size")


def run(args: argparse.Namespace) -> int:
    if args.list_devices:
        print(list_devices() or f"PortAudio finds no audio device; {NO_MICROPHONE_HINT}")
        return 0
    if not args.model_dir:
        raise InputError("MODEL_DIR is required (an export directory with manifest.json)")
    from asr.runtime.phrases import is_ctc_export, run_demo

    if is_ctc_export(args.model_dir):
        return run_demo(args)
    if args.keyword:
        from asr.runtime.phrase_listener import run_demo as listen_for_phrases

        return listen_for_phrases(args)
    spotter = spotter_from_args(args, threshold=args.threshold, label_thresholds=dict(args.label_threshold))
    wake_word = None
    if args.wake_then_command is not None:
        wake_word = args.wake_word or spotter.wake_word
        if wake_word is None:
            raise InputError(f"{args.model_dir}: the manifest names no wake word; pass --wake-word")
        spotter.checked_labels = {wake_word}
    if spotter.verifier is not None:
        which = "each detection" if wake_word is None else f"each {wake_word!r}"
        print(f"{which} is checked by {spotter.verifier.home} (--no-verify: not)", file=sys.stderr)
    chunks = demo_chunks(args, spotter.sample_rate, spotter.keywords)
    labels = spotter.manifest.labels
    return respond(spotter.detections(chunks), args, labels, lambda: spotter.detector.audio_seconds, wake_word)
