"""What `asr demo` does with detections, whichever detector found them: the wake gate, one line each, the user's
actions, and a summary (micro_speech's "respond" step)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable

from asr.errors import InputError
from asr.runtime.actions import load_actions, run_action
from asr.runtime.detector import Detection, format_detection
from asr.runtime.wake import WakeGate


def respond(
    detections: Iterable[Detection],
    args: argparse.Namespace,
    labels: list[str],
    audio_seconds: Callable[[], float],
    wake_word: str | None = None,
) -> int:
    """Print (and act on) each detection the wake gate (--wake-then-command) lets through; returns 0.

    `labels`: what the detector can name (the actions file's keys are checked against them); `wake_word`: the
    gate's, when --wake-then-command is given."""
    gate = None
    if args.wake_then_command is not None:
        if wake_word is None:
            raise InputError(f"{args.model_dir}: --wake-then-command needs --wake-word (one of {labels})")
        gate = WakeGate(wake_word, labels, args.wake_then_command)
    actions = load_actions(args.actions, labels) if args.actions else {}
    started, count = time.perf_counter(), 0
    for detection in detections:
        if gate is not None and not gate.accept(detection):
            continue
        count += 1
        print(format_detection(detection, args.json), flush=True)
        if detection.label in actions:
            run_action(actions[detection.label], detection)
    elapsed, seconds = time.perf_counter() - started, audio_seconds()
    rtf = f", real-time factor {elapsed / seconds:.3f}" if seconds else ""
    print(f"{count} detection(s) in {seconds:.1f} s of audio{rtf}", file=sys.stderr)
    return 0
