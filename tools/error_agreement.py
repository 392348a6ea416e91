"""Do several keyword models miss the same clips? Variance or a systematic gap, from their predictions.

If the models trained with different seeds or settings miss different clips, averaging them (or more seeds, or
distillation) would help; if they miss the same clips, only other training data will. For each checkpoint: its
accuracy on the split; then the ensemble's (mean of the models' probabilities); how many clips each number of
models gets wrong; and for the clips that every model gets wrong, per voice and per true label, what they call them.

    python tools/error_agreement.py RUN_A/best.pt RUN_B/best.pt [...] --data data/generated/commands
                                    [--split testing] [--out bench/agreement.json]
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

import numpy as np

from asr.data.info import read_voices
from asr.evaluate import keyword_logits
from asr.files import write_text_atomic
from asr.train.checkpoint import load_checkpoint
from asr.train.tasks import open_split


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def score(checkpoints: list[Path], data: Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(probabilities [models, examples, classes], true class, labels, a group name per example: engine:voice)."""
    probs, labels, targets, source = [], None, None, None
    for path in checkpoints:
        loaded = load_checkpoint(path)
        if labels is not None and loaded.labels != labels:
            raise ValueError(f"{path}: labels {loaded.labels} differ from {checkpoints[0]}'s {labels}")
        labels = loaded.labels
        random.seed(loaded.config.train.seed)  # `_silence_` windows are cropped with `random`: the same for all
        source = open_split(loaded.config, data, split)
        logits, y = keyword_logits(loaded.model, source, loaded.config.features, progress=True)
        if targets is not None and not np.array_equal(y, targets):
            raise ValueError(f"{path}: its config reads another set of {split} examples from {data}")
        probs.append(softmax(logits))
        targets = y
    voices = read_voices(source.root) or {}
    groups = [
        "{engine}:{voice}".format(**voices[source.speaker_of(p)]) if source.speaker_of(p) in voices else "(real)"
        for p, _ in source.items
    ]
    groups += ["_silence_"] * (len(targets) - len(groups))
    return np.stack(probs), targets, labels, groups


def agreement(probs: np.ndarray, targets: np.ndarray, labels: list[str], groups: list[str]) -> dict:
    preds = probs.argmax(-1)
    wrong = (preds != targets).sum(0)
    everyone = wrong == len(probs)
    calls = lambda mask: dict(Counter(labels[p] for p in preds[:, mask].ravel()).most_common(4))  # noqa: E731
    names = np.array(groups)
    return {
        "models": [float(np.mean(p == targets)) for p in preds],
        "ensemble": float(np.mean(probs.mean(0).argmax(-1) == targets)),
        "wrong_in_k_models": np.bincount(wrong, minlength=len(probs) + 1).tolist(),
        "all_wrong_by_group": {g: int((everyone & (names == g)).sum()) for g in sorted(set(groups))},
        "all_wrong_by_label": {
            labels[k]: {
                "examples": int((targets == k).sum()),
                "all_wrong": int((everyone & (targets == k)).sum()),
                "called": calls(everyone & (targets == k)),
            }  # fmt: skip
            for k in range(len(labels))
        },
    }


def print_report(report: dict, checkpoints: list[Path]) -> None:
    print("| model | accuracy |\n|---|---|")
    for path, acc in zip(checkpoints, report["models"], strict=True):
        print(f"| {path} | {acc:.1%} |")
    print(f"| ensemble (mean probability) | {report['ensemble']:.1%} |\n")
    n = len(checkpoints)
    print(
        f"examples wrong in k of {n} models: "
        + ", ".join(f"k={k}: {c}" for k, c in enumerate(report["wrong_in_k_models"]))
    )
    print("wrong in every model, per voice: " + ", ".join(f"{g} {c}" for g, c in report["all_wrong_by_group"].items()))
    print("\n| true label | examples | wrong in every model | what the models call those |\n|---|---|---|---|")
    for label, row in report["all_wrong_by_label"].items():
        print(f"| {label} | {row['examples']} | {row['all_wrong']} | {row['called'] or '-'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", type=Path, nargs="+", help="best.pt of two or more keyword runs")
    parser.add_argument("--data", type=Path, required=True, help="the corpus root they were trained on")
    parser.add_argument("--split", default="testing")
    parser.add_argument("--out", type=Path, help="also write the report as JSON")
    args = parser.parse_args()
    if len(args.checkpoints) < 2:
        parser.error("give two or more checkpoints")
    report = agreement(*score(args.checkpoints, args.data, args.split))
    print_report(report, args.checkpoints)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.out, json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
