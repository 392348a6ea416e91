"""`asr train CONFIG [--run-dir runs/NAME] [--set key=value ...]`: train, or resume a killed run.

Rerunning the same command continues from RUN_DIR/checkpoint.pt. For several processes (DDP):
`torchrun --nproc_per_node 2 -m asr.cli train CONFIG ...`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asr.model.cli import add_config_args, config_from_args


def configure(parser: argparse.ArgumentParser) -> None:
    add_config_args(parser)
    parser.add_argument("--run-dir", type=Path, help="where checkpoints and metrics go (default: runs/CONFIG_NAME)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")


def run(args: argparse.Namespace) -> int:
    from asr.train.loop import train

    config = config_from_args(args)  # a bad config fails here, before any data is read
    run_dir = args.run_dir or Path("runs") / config.name
    train(config, run_dir, progress=not args.no_progress)
    print(f"checkpoints: {run_dir / 'checkpoint.pt'} (latest), {run_dir / 'best.pt'} (best dev)")
    return 0
