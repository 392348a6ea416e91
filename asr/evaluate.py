"""`asr eval CHECKPOINT DATA_ROOT [--split testing] [--out report.json]`: score a trained model on a corpus split.

Keyword models: accuracy, a per-class report and a confusion-matrix PNG. CTC models: WER and CER (jiwer) of greedy
CTC decoding. The same functions score the dev split during training.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from asr.features import LogMel
from asr.runtime.frontend import FeatureSpec
from asr.train.augment import fit_length


@torch.no_grad()
def keyword_predictions(model, source, spec: FeatureSpec, batch_size: int = 128, progress: bool = False):
    """(predicted class, true class) arrays over every example of a keyword dataset, clips centred in the window."""
    logmel, preds, targets = LogMel(spec), [], []
    model.eval()
    for start in tqdm(range(0, len(source), batch_size), desc="eval", disable=not progress, leave=False):
        items = [source[i] for i in range(start, min(start + batch_size, len(source)))]
        waves = np.stack([fit_length(w, spec.clip_samples, None) for w, _ in items]).astype(np.float32)
        device = next(model.parameters()).device
        logits = model(logmel(torch.from_numpy(waves)).to(device))
        preds.append(logits.argmax(-1).cpu().numpy())
        targets.append(np.array([y for _, y in items]))
    return np.concatenate(preds), np.concatenate(targets)


def keyword_report(preds: np.ndarray, targets: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, per-class precision / recall / support, and the confusion matrix (rows: truth)."""
    k = len(labels)
    confusion = np.bincount(targets * k + preds, minlength=k * k).reshape(k, k)
    per_class = {}
    for i, name in enumerate(labels):
        support, predicted = int(confusion[i].sum()), int(confusion[:, i].sum())
        per_class[name] = {
            "support": support,
            "recall": float(confusion[i, i] / support) if support else None,
            "precision": float(confusion[i, i] / predicted) if predicted else None,
        }
    return {
        "examples": int(len(targets)),
        "accuracy": float((preds == targets).mean()) if len(targets) else 0.0,
        "per_class": per_class,
        "labels": labels,
        "confusion": confusion.tolist(),
    }


def greedy_ctc(log_probs: torch.Tensor, lengths: torch.Tensor, blank: int) -> list[list[int]]:
    """Best path per frame, repeats merged, blanks dropped."""
    out = []
    for best, n in zip(log_probs.argmax(-1).tolist(), lengths.tolist(), strict=True):
        ids, prev = [], None
        for t in best[:n]:
            if t != prev and t != blank:
                ids.append(t)
            prev = t
        out.append(ids)
    return out


@torch.no_grad()
def transcribe(model, source, tokenizer, spec: FeatureSpec, batch_size: int = 16, progress: bool = False):
    """(references, hypotheses) over a sentence dataset, greedy CTC decoding."""
    logmel, refs, hyps = LogMel(spec), [], []
    model.eval()
    device = next(model.parameters()).device
    for start in tqdm(range(0, len(source), batch_size), desc="eval", disable=not progress, leave=False):
        items = [source[i] for i in range(start, min(start + batch_size, len(source)))]
        feats = [logmel(torch.from_numpy(np.asarray(w, dtype=np.float32))[None])[0] for w, _, _ in items]
        lengths = torch.tensor([len(f) for f in feats])
        padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True).to(device)
        log_probs = model(padded, lengths.to(device))
        out_lengths = model.output_lengths(lengths)
        hyps += [tokenizer.decode(ids) for ids in greedy_ctc(log_probs.cpu(), out_lengths, tokenizer.vocab_size)]
        refs += [text for _, text, _ in items]
    return refs, hyps


def wer_report(refs: list[str], hyps: list[str]) -> dict:
    import jiwer

    return {
        "examples": len(refs),
        "wer": float(jiwer.wer(refs, hyps)),
        "cer": float(jiwer.cer(refs, hyps)),
        "samples": [{"ref": r, "hyp": h} for r, h in list(zip(refs, hyps, strict=True))[:10]],
    }


def plot_confusion(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    confusion, labels = np.array(report["confusion"]), report["labels"]
    rates = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1 + 0.55 * len(labels), 1 + 0.5 * len(labels)))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for (i, j), n in np.ndenumerate(confusion):
        if n:
            ax.text(j, i, str(n), ha="center", va="center", fontsize=7, color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"accuracy {report['accuracy']:.1%} on {report['examples']} clips")
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="checkpoint written by `asr train` (best.pt)")
    parser.add_argument("data_root", type=Path, help="corpus root (Speech Commands or LibriSpeech layout)")
    parser.add_argument("--split", help="split to score (default: testing for keywords, the config's test split)")
    parser.add_argument("--out", type=Path, help="JSON report (default: next to the checkpoint, eval-SPLIT.json)")


def run(args: argparse.Namespace) -> int:
    from asr.train.checkpoint import load_checkpoint
    from asr.train.tasks import open_split

    loaded = load_checkpoint(args.checkpoint)
    config = loaded.config
    if not args.data_root.is_dir():
        raise FileNotFoundError(f"{args.data_root}: no such corpus directory")
    split = args.split or ("testing" if config.task == "kws" else config.data.test_split)
    source = open_split(config, args.data_root, split)
    out = args.out or args.checkpoint.with_name(f"eval-{split}.json")
    if config.task == "kws":
        preds, targets = keyword_predictions(loaded.model, source, config.features, progress=True)
        report = keyword_report(preds, targets, loaded.labels)
        png = out.with_suffix(".confusion.png")
        plot_confusion(report, png)
        print(f"{split}: accuracy {report['accuracy']:.2%} on {report['examples']} clips; confusion matrix: {png}")
    else:
        from asr.text import Tokenizer

        refs, hyps = transcribe(loaded.model, source, Tokenizer(loaded.tokenizer), config.features, progress=True)
        report = wer_report(refs, hyps)
        print(f"{split}: WER {report['wer']:.2%}, CER {report['cer']:.2%} on {report['examples']} utterances")
    report = {"checkpoint": str(args.checkpoint), "data_root": str(args.data_root), "split": split, **report}
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(report, indent=2))
    os.replace(tmp, out)
    print(f"report: {out}")
    return 0
