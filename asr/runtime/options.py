"""Command-line settings of the detector, shared by `asr demo` and `asr eval-stream` so both run it the same way."""

from __future__ import annotations

import argparse

from asr.runtime.interpreter import BACKENDS
from asr.runtime.spotter import KeywordSpotter


def add_detector_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hop-ms", type=float, default=100.0, help="run the model every HOP ms (default 100)")
    parser.add_argument("--smooth-ms", type=float, default=300.0, help="average posteriors over this long")
    parser.add_argument("--refractory-s", type=float, default=0.75, help="no detection this soon after another")
    parser.add_argument("--backend", choices=sorted(BACKENDS), default=None, help="TFLite interpreter to use")
    parser.add_argument("--precision", default="int8", help="which exported model to run (int8 or float32)")
    parser.add_argument(
        "--no-verify", action="store_true", help="ignore the export's verifier (MODEL_DIR/verifier, `asr verifier`)"
    )


def spotter_from_args(args: argparse.Namespace, **thresholds) -> KeywordSpotter:
    """The exported model in `args.model_dir` as a KeywordSpotter with the command line's settings (thresholds:
    see KeywordSpotter.from_export)."""
    return KeywordSpotter.from_export(
        args.model_dir,
        backend=args.backend,
        precision=args.precision,
        hop_s=args.hop_ms / 1000,
        smooth_s=args.smooth_ms / 1000,
        refractory_s=args.refractory_s,
        verify=not args.no_verify,
        **thresholds,
    )
