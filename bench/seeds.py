"""A lever measured over seeds: one row per trained model, then each arm's mean and spread (max - min).

    python -m bench.seeds ARM=EXPORT_DIR[,STREAM_REPORT] ...

EXPORT_DIR holds what `make demo`'s export step writes beside the model (`eval-testing.json`,
`eval-testing-noisy.json`: `asr eval ... --tflite EXPORT_DIR [--noisy]`); STREAM_REPORT, optional, is `asr
eval-stream ... --at-saved-threshold --out` on the test stream. The held-out groups are those `asr summary` reports.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from asr.evaluation.summary import group, held_out_donors, load
from asr.runtime.bundle import Manifest

COLUMNS = (  # percentages, and false accepts per hour
    "kal+slt clean %",
    "kal+slt noisy %",
    "Kokoro clean %",
    "Kokoro noisy %",
    "never-heard words called a keyword %",
    "stream recall %",
    "stream FA/h",
    "wake word recall on the stream %",
    "real speech: wake FA/h",
    "real speech: all keywords FA/h",
)


def _percent(value: float | None) -> float | None:
    return None if value is None else 100 * value


def figures(export_dir: Path, stream_report: Path | None) -> list[float | None]:
    clean, noisy = load(export_dir / "eval-testing.json"), load(export_dir / "eval-testing-noisy.json")
    donors = held_out_donors()
    values = [
        _percent(group(clean, "donor", donors)),
        _percent(group(noisy, "donor", donors)),
        _percent(group(clean, "engine", ["kokoro"])),
        _percent(group(noisy, "engine", ["kokoro"])),
        _percent(clean["false_keyword"]["unseen_words"]["rate"]),
    ]
    real_path = export_dir / "real_false_accepts.json"  # python -m bench.real_false_accepts ... --out
    real = load(real_path) if real_path.is_file() else None
    if stream_report is None:
        values += [None, None, None]
    else:
        chosen = load(stream_report)["chosen"]
        wake = Manifest.read(export_dir).wake_word
        values += [
            _percent(chosen["overall"]["recall"]),
            chosen["overall"]["false_accepts_per_hour"],
            _percent(chosen["per_label"].get(wake, {}).get("recall")),
        ]
    if real is None:
        return [*values, None, None]
    return [*values, real["wake_word"]["per_hour"], real["all_keywords_saved"]["per_hour"]]


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table(runs: list[tuple[str, Path, Path | None]]) -> str:
    lines = [f"| arm | model | {' | '.join(COLUMNS)} |", "|---" * (len(COLUMNS) + 2) + "|"]
    by_arm: dict[str, list[list[float | None]]] = defaultdict(list)
    for arm, export_dir, stream in runs:
        values = figures(export_dir, stream)
        by_arm[arm].append(values)
        lines.append(f"| {arm} | {export_dir} | {' | '.join(_cell(v) for v in values)} |")
    for arm, rows in by_arm.items():
        cells = []
        for column in zip(*rows, strict=True):
            known = np.array([v for v in column if v is not None])
            cells.append("-" if not known.size else f"{known.mean():.1f} ± {(known.max() - known.min()) / 2:.1f}")
        lines.append(f"| **{arm}**, mean ± half the spread | {len(rows)} seed(s) | {' | '.join(cells)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="ARM=EXPORT_DIR[,STREAM_REPORT]")
    runs = []
    for spec in parser.parse_args().runs:
        arm, _, paths = spec.partition("=")
        export_dir, _, stream = paths.partition(",")
        if not arm or not export_dir:
            parser.error(f"{spec!r}: expected ARM=EXPORT_DIR[,STREAM_REPORT]")
        runs.append((arm, Path(export_dir), Path(stream) if stream else None))
    print(table(runs))


if __name__ == "__main__":
    main()
