"""`asr plot RUN_DIR [--out curves.png]`: training loss, learning rate and dev score from metrics.jsonl."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from asr.errors import InputError, MissingError
from asr.files import save_figure_atomic


def read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        raise MissingError(f"{path}: no metrics file (is this a run directory of `asr train`?)")
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not a metrics file ({e})") from None


def plot_run(run_dir: Path, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(run_dir / "metrics.jsonl")
    train = [r for r in records if "loss" in r]
    dev = [r for r in records if "score" in r]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    if train:
        steps, loss = np.array([r["step"] for r in train]), np.array([r["loss"] for r in train])
        axes[0].plot(steps, loss, alpha=0.3, label="step")
        k = max(1, len(loss) // 50)
        axes[0].plot(steps[k - 1 :], np.convolve(loss, np.ones(k) / k, mode="valid"), label=f"mean of {k}")
        axes[0].legend()
        axes[1].plot(steps, [r["lr"] for r in train])
    for key in sorted({k for r in dev for k in r} - {"step", "score"}):
        axes[2].plot([r["step"] for r in dev if key in r], [r[key] for r in dev if key in r], marker="o", label=key)
    if dev:
        axes[2].legend()
    for ax, title in zip(axes, ("training loss", "learning rate", "dev"), strict=True):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.suptitle(str(run_dir))
    fig.tight_layout()
    save_figure_atomic(fig, out, dpi=110)
    return out


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="run directory written by `asr train`")
    parser.add_argument("--out", type=Path, help="PNG to write (default: RUN_DIR/curves.png)")


def run(args: argparse.Namespace) -> int:
    out = plot_run(args.run_dir, args.out or args.run_dir / "curves.png")
    print(f"wrote {out}")
    return 0
