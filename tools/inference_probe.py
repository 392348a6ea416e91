"""Can a trick at inference time close the gap to voices never heard? A diagnostic for issue 8, not part of the chain.

For a keyword checkpoint, on the held-out test donors (clean and noisy 5-20 dB), against the model alone:
- test-time augmentation: each window also played slower and faster (resampled) and with its mel axis warped as
  for a shorter or longer vocal tract, the probabilities averaged;
- the training-only phone head of a model trained with the phone CTC loss: the CTC score of each keyword's
  phonemes, above the best free path, added to the classifier's log-probabilities (unknown and silence get a
  fixed score instead), which asks whether the phone head hears a keyword the classifier misses.
Every free choice (which augmentations, the weight and the fixed score) is made on the validation voices, then
reported on the test donors. (An ensemble of seeds: tools/error_agreement.py.) BENCHMARKS.md, section 3b.

    python tools/inference_probe.py data/generated/commands runs/kws-tiny/best.pt [--out bench/inference_probe.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from asr.data.noise import NoisySplit
from asr.features import LogMel
from asr.files import write_text_atomic
from asr.text import PHONES, phonemes
from asr.train.augment import fit_length, speed_perturb, vtlp_matrix
from asr.train.checkpoint import load_checkpoint
from asr.train.tasks import open_split

SPEEDS, WARPS = (0.9, 1.0, 1.12), (0.9, 1.0, 1.1)
AUGMENTATIONS = {  # name -> (speed, warp) pairs averaged
    "none": [(1.0, 1.0)],
    "speeds": [(s, 1.0) for s in SPEEDS],
    "warps": [(1.0, w) for w in WARPS],
    "speeds x warps": list(itertools.product(SPEEDS, WARPS)),
}
FUSION_WEIGHTS, UNKNOWN_SCORES = (0.1, 0.2, 0.3, 0.5, 1.0, 2.0), (-4.0, -2.0, -1.0, -0.5, 0.0)


def windows(source, samples: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    random.seed(seed)  # silence windows are crops drawn with `random`, as in `asr eval`
    items = [source[i] for i in range(len(source))]
    return [w for w, _ in items], np.array([y for _, y in items])


@torch.no_grad()
def outputs(model, waves: list[np.ndarray], spec, speed: float = 1.0, warp: float = 1.0):
    """Classifier log-probabilities [N, classes] and phone log-probabilities [N, frames, phones + 1] (or None)."""
    if speed != 1.0:
        waves = [speed_perturb(w, speed, spec.sample_rate) for w in waves]
    batch = torch.from_numpy(np.stack([fit_length(w, spec.clip_samples, None) for w in waves]).astype(np.float32))
    features = LogMel(spec)(batch)
    if warp != 1.0:
        features = features @ torch.from_numpy(vtlp_matrix(warp, spec.n_mels, spec.f_min, spec.f_max)).T
    model.eval()
    # KeywordConformer.forward, opened up: the phone head reads the same encoder frames (it is only returned in
    # training mode, where dropout would be on).
    h = model.encoder(model.subsampling(features))
    classes = torch.log_softmax(model.classifier(h.mean(dim=1)), -1).numpy()
    phones = torch.log_softmax(model.speller(h), -1) if model.speller is not None else None
    return classes, phones


def keyword_scores(phones: torch.Tensor, keywords: list[str]) -> np.ndarray:
    """[N, keywords]: log P(keyword's phonemes | window) under CTC, minus the best free path's log-probability."""
    n, frames, _ = phones.shape
    lexicon, best = phonemes(keywords), phones.max(-1).values.sum(-1)
    scores = []
    for word in keywords:
        target = torch.tensor(lexicon[word]).repeat(n, 1)
        nll = F.ctc_loss(
            phones.transpose(0, 1), target, torch.full((n,), frames), torch.full((n,), len(lexicon[word])),
            blank=len(PHONES), reduction="none",
        )  # fmt: skip
        scores.append((-nll - best).numpy())
    return np.stack(scores, 1)


def fuse(classes: np.ndarray, scores: np.ndarray, weight: float, unknown_score: float) -> np.ndarray:
    fused = classes.copy()
    fused[:, 2:] += weight * scores  # labels: _silence_, _unknown_, then the keywords
    fused[:, :2] += weight * unknown_score
    return fused.argmax(1)


def accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    return float((pred == y).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path, help="the Speech Commands root the checkpoint was trained on")
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--out", type=Path, default=Path("bench/inference_probe.json"))
    args = parser.parse_args()
    loaded = load_checkpoint(args.checkpoint)
    model, config, labels = loaded.model, loaded.config, loaded.labels
    spec, seed = config.features, config.train.seed
    val_set, test_set = (open_split(config, args.data, s) for s in ("validation", "testing"))
    splits = {
        "validation": windows(val_set, spec.clip_samples, seed),
        "test": windows(test_set, spec.clip_samples, seed),
        "test, noisy": windows(NoisySplit(test_set, seed=seed), spec.clip_samples, seed),
    }
    rows = []

    def row(method: str, chosen: str, preds: dict[str, np.ndarray]) -> None:
        rows.append({"method": method, "chosen": chosen} | {s: accuracy(preds[s], splits[s][1]) for s in splits})
        print(f"{method:30s} {chosen:26s}" + "".join(f" {rows[-1][s]:10.2%}" for s in splits), flush=True)

    print(f"{args.checkpoint}, PyTorch float\n{'':30s} {'chosen on validation':26s} validation       test      noisy")
    plain = {s: outputs(model, w, spec) for s, (w, _) in splits.items()}  # classifier and phone head, as heard
    conditions = {c for pairs in AUGMENTATIONS.values() for c in pairs} - {(1.0, 1.0)}
    augmented = {s: {c: np.exp(outputs(model, w, spec, *c)[0]) for c in conditions} for s, (w, _) in splits.items()}
    for s in splits:
        augmented[s][1.0, 1.0] = np.exp(plain[s][0])

    def tta(split: str, name: str) -> np.ndarray:
        return sum(augmented[split][c] for c in AUGMENTATIONS[name]).argmax(1)

    chosen = max(AUGMENTATIONS, key=lambda a: accuracy(tta("validation", a), splits["validation"][1]))
    for name in AUGMENTATIONS:
        method = "the model alone" if name == "none" else f"averaged over {name}"
        row(method, "<- this one" if name == chosen else "", {s: tta(s, name) for s in splits})

    if model.speller is not None:
        keywords = labels[2:]
        scores = {s: keyword_scores(phones, keywords) for s, (_, phones) in plain.items()}
        grid = list(itertools.product(FUSION_WEIGHTS, UNKNOWN_SCORES))
        val_classes, val_y = plain["validation"][0], splits["validation"][1]
        weight, unknown = max(grid, key=lambda g: accuracy(fuse(val_classes, scores["validation"], *g), val_y))
        fused = {s: fuse(plain[s][0], scores[s], weight, unknown) for s in splits}
        row("phone head fused", f"weight {weight}, unknown {unknown}", fused)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"checkpoint": str(args.checkpoint), "data": str(args.data), "rows": rows}
    write_text_atomic(args.out, json.dumps(report, indent=2))
    print(f"report: {args.out}")


if __name__ == "__main__":
    main()
