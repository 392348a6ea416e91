"""Command-line settings of the detector, shared by `asr demo` and `asr eval-stream` so both run it the same way."""

from __future__ import annotations

import argparse

from asr.runtime.bundle import load_exported, output_kind
from asr.runtime.detector import DEFAULT_THRESHOLD, Detector
from asr.runtime.interpreter import BACKENDS


def add_detector_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hop-ms", type=float, default=100.0, help="run the model every HOP ms (default 100)")
    parser.add_argument("--smooth-ms", type=float, default=300.0, help="average posteriors over this long")
    parser.add_argument("--refractory-s", type=float, default=0.75, help="no detection this soon after another")
    parser.add_argument("--backend", choices=sorted(BACKENDS), default=None, help="TFLite interpreter to use")
    parser.add_argument("--precision", default="int8", help="which exported model to run (int8 or float32)")


def detector_from_args(args: argparse.Namespace, **thresholds) -> tuple[Detector, dict]:
    """The exported model in `args.model_dir` wrapped in a detector with the command line's settings. Without a
    threshold, the ones saved in the manifest (`asr eval-stream --save-threshold`: shared and per keyword), else
    DEFAULT_THRESHOLD; a keyword's threshold given on the command line wins over the saved ones."""
    model, labels, spec, manifest = load_exported(args.model_dir, precision=args.precision, backend=args.backend)
    saved = manifest.get("detector", {})
    if thresholds.get("threshold") is None:
        thresholds["threshold"] = saved.get("threshold", DEFAULT_THRESHOLD)
        thresholds["thresholds"] = saved.get("label_thresholds", {}) | (thresholds.get("thresholds") or {})
    detector = Detector(
        model,
        labels,
        spec,
        output_kind=output_kind(manifest),
        hop_s=args.hop_ms / 1000,
        smooth_s=args.smooth_ms / 1000,
        refractory_s=args.refractory_s,
        **thresholds,
    )
    return detector, manifest
