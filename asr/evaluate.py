"""`asr eval CHECKPOINT DATA_ROOT [--split testing] [--out report.json]`: score a trained model on a corpus split.

Keyword models: accuracy, a per-class report and a confusion-matrix PNG, plus the figures that say how the model
does on what it never heard: keyword-only accuracy, accuracy per held-out donor, engine and voice (from the generated
corpus's voices.json), and how often it calls a keyword on unknown words it never heard in training, on unknown words
it did hear, and on silence. `--tflite EXPORT_DIR` computes the same report for the exported int8 model running in
TFLite Micro, with the numpy front end the device uses; `--noisy` mixes background noise at 5-20 dB SNR into every
clip. CTC models: WER and CER (jiwer) of greedy CTC decoding. The same functions score the dev split during training.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from asr.data.info import read_voices
from asr.data.noise import NoisySplit
from asr.features import LogMel
from asr.files import save_figure_atomic, write_text_atomic
from asr.runtime.frontend import FeatureSpec, log_mel
from asr.train.augment import fit_length

GROUPS = ("donor", "engine", "voice")  # voices.json fields accuracy is broken down by ("voice" as engine:voice)


@torch.no_grad()
def keyword_logits(model, source, spec: FeatureSpec, batch_size: int = 128, progress: bool = False):
    """(logits [examples, classes], true class) over every example of a keyword dataset, clips centred."""
    logmel, logits, targets = LogMel(spec), [], []
    model.eval()
    for start in tqdm(range(0, len(source), batch_size), desc="eval", disable=not progress, leave=False):
        items = [source[i] for i in range(start, min(start + batch_size, len(source)))]
        waves = np.stack([fit_length(w, spec.clip_samples, None) for w, _ in items]).astype(np.float32)
        device = next(model.parameters()).device
        logits.append(model(logmel(torch.from_numpy(waves)).to(device)).cpu().numpy())
        targets.append(np.array([y for _, y in items]))
    return np.concatenate(logits), np.concatenate(targets)


def keyword_predictions(model, source, spec: FeatureSpec, batch_size: int = 128, progress: bool = False):
    """(predicted class, true class) arrays over every example of a keyword dataset, clips centred in the window."""
    logits, targets = keyword_logits(model, source, spec, batch_size, progress)
    return logits.argmax(-1), targets


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


def micro_predictions(export_dir: Path, source, labels: list[str], batch_size: int = 64, progress: bool = False):
    """(predicted class, true class, runtime info) of the export's int8 model running in TFLite Micro.

    Features come from the numpy front end (asr.runtime.frontend.log_mel) with the manifest's FeatureSpec, and are
    quantized with the manifest's input scale and zero point, exactly as on the device.
    """
    from asr.export.parity import quantize
    from asr.export.runtimes import run_micro
    from asr.runtime.bundle import load_exported

    model, exported_labels, spec, manifest = load_exported(export_dir, precision="int8")
    if exported_labels != labels:
        raise ValueError(
            f"{export_dir / 'manifest.json'}: labels {exported_labels} differ from the checkpoint's {labels}"
        )
    scale, zero_point = manifest["input"]["scale"], manifest["input"]["zero_point"]
    preds, targets, times = [], [], []
    for start in tqdm(range(0, len(source), batch_size), desc="eval tflm", disable=not progress, leave=False):
        items = [source[i] for i in range(start, min(start + batch_size, len(source)))]
        windows = np.stack([log_mel(fit_length(w, spec.clip_samples, None), spec) for w, _ in items])
        scores, ms = run_micro(model.path, quantize(windows, scale, zero_point), manifest["arena_bytes"])
        preds.append(scores.argmax(-1))
        targets.append(np.array([y for _, y in items]))
        times.append(ms)
    info = {"runtime": "tflite_micro", "precision": "int8", "export_dir": str(export_dir), "model": str(model.path)}
    return np.concatenate(preds), np.concatenate(targets), info | {"ms_per_window": float(np.median(times))}


def _rate(hits: np.ndarray) -> float | None:
    return float(hits.mean()) if len(hits) else None


def _keyword_accuracy(preds: np.ndarray, targets: np.ndarray, num_labels: int) -> float | None:
    """Mean recall over the keyword classes present (labels 2..: not _silence_ or _unknown_)."""
    recalls = [(preds[targets == k] == k).mean() for k in range(2, num_labels) if (targets == k).any()]
    return float(np.mean(recalls)) if recalls else None


def _summary(preds: np.ndarray, targets: np.ndarray, num_labels: int) -> dict:
    unknown = targets == 1
    return {
        "examples": int(len(targets)),
        "accuracy": _rate(preds == targets),
        "keyword_accuracy": _keyword_accuracy(preds, targets, num_labels),
        "false_keyword_rate": _rate(preds[unknown] >= 2),
    }


def unseen_report(preds: np.ndarray, targets: np.ndarray, source, train_words: set[str], labels: list[str]) -> dict:
    """Keyword-only accuracy, false keywords on unknown words unseen / seen in training and on silence, and (for a
    generated corpus) accuracy per donor, engine and voice.

    Example i < len(source.items) is the speech clip source.items[i]; the rest are `_silence_` windows.
    """
    n = len(source.items)
    speech_preds, speech_targets = preds[:n], targets[:n]
    words = np.array([path.parent.name for path, _ in source.items])
    unknown = speech_targets == 1
    unseen = unknown & ~np.isin(words, sorted(train_words))
    seen = unknown & ~unseen
    report = {
        "keyword_accuracy": _keyword_accuracy(preds, targets, len(labels)),
        "false_keyword": {
            "unseen_words": {
                "rate": _rate(speech_preds[unseen] >= 2),
                "clips": int(unseen.sum()),
                "words": sorted(set(words[unseen])),
            },
            "seen_words": {
                "rate": _rate(speech_preds[seen] >= 2),
                "clips": int(seen.sum()),
                "words": len(set(words[seen])),
            },
            "silence": {"rate": _rate(preds[n:][targets[n:] == 0] >= 2), "windows": int((targets[n:] == 0).sum())},
        },
        "speech_clips": n,
        "groups": None,
    }
    voices = read_voices(source.root)
    if voices is not None:
        rows = [voices.get(source.speaker_of(path), {}) for path, _ in source.items]
        report["groups"] = {}
        for group in GROUPS:
            names = np.array([_group_name(row, group) for row in rows])
            report["groups"][group] = {
                name: _summary(speech_preds[names == name], speech_targets[names == name], len(labels))
                | {"splits": sorted({row.get("split", "?") for row, m in zip(rows, names == name, strict=True) if m})}
                for name in sorted(set(names))
            }
    return report


def _group_name(row: dict, group: str) -> str:
    if not row:
        return "(not in voices.json)"
    return f"{row['engine']}:{row['voice']}" if group == "voice" else str(row[group])


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def print_unseen(report: dict) -> None:
    """The honest-evaluation figures, a few lines for the terminal."""
    fk = report["false_keyword"]
    print(f"keyword-only accuracy (mean keyword recall) {_pct(report['keyword_accuracy'])}")
    print(
        f"called a keyword: unknown words never heard in training {_pct(fk['unseen_words']['rate'])} "
        f"({fk['unseen_words']['clips']} clips, {len(fk['unseen_words']['words'])} words); "
        f"unknown words heard in training {_pct(fk['seen_words']['rate'])} ({fk['seen_words']['clips']} clips); "
        f"silence {_pct(fk['silence']['rate'])} ({fk['silence']['windows']} windows)"
    )
    if report["groups"] is None:
        print("per donor: no voices.json in the corpus (a real tree), skipped")
        return
    for group, rows in report["groups"].items():
        cells = [
            f"{name} {_pct(r['accuracy'])} (keywords {_pct(r['keyword_accuracy'])}, "
            f"false keyword {_pct(r['false_keyword_rate'])}, n={r['examples']})"
            for name, r in rows.items()
        ]
        print(f"per {group}: " + "; ".join(cells))


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
    save_figure_atomic(fig, path, dpi=120)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="checkpoint written by `asr train` (best.pt)")
    parser.add_argument("data_root", type=Path, help="corpus root (Speech Commands or LibriSpeech layout)")
    parser.add_argument("--split", help="split to score (default: testing for keywords, the config's test split)")
    parser.add_argument(
        "--out", type=Path, help="JSON report (default: eval-SPLIT.json next to the checkpoint, or in EXPORT_DIR)"
    )
    parser.add_argument(
        "--tflite",
        type=Path,
        metavar="EXPORT_DIR",
        help="score the exported int8 model running in TFLite Micro instead of the PyTorch checkpoint "
        "(keyword models; the checkpoint still gives the corpus settings)",
    )
    parser.add_argument(
        "--noisy",
        action="store_true",
        help="mix background noise at 5-20 dB SNR into every clip (the same noise on every run; keyword models)",
    )


def run(args: argparse.Namespace) -> int:
    from asr.train.checkpoint import load_checkpoint
    from asr.train.tasks import open_split

    loaded = load_checkpoint(args.checkpoint)
    config = loaded.config
    if not args.data_root.is_dir():
        raise FileNotFoundError(f"{args.data_root}: no such corpus directory")
    split = args.split or ("testing" if config.task == "kws" else config.data.test_split)
    source = open_split(config, args.data_root, split)
    if args.noisy:
        if config.task != "kws":
            raise ValueError(f"{args.checkpoint}: --noisy scores keyword models; this is a {config.task} checkpoint")
        source = NoisySplit(source, seed=config.train.seed)
    if args.tflite is not None and config.task != "kws":
        raise ValueError(f"{args.checkpoint}: --tflite scores keyword models; this is a {config.task} checkpoint")
    condition = "-noisy" if args.noisy else ""
    out = args.out or (args.tflite or args.checkpoint.parent) / f"eval-{split}{condition}.json"
    if config.task == "kws":
        # Training-split silence crops come from Python's `random`: seeded, a report is reproducible.
        random.seed(config.train.seed)
        if args.tflite is None:
            preds, targets = keyword_predictions(loaded.model, source, config.features, progress=True)
            runtime = {"runtime": "pytorch", "precision": "float32"}
        else:
            preds, targets, runtime = micro_predictions(args.tflite, source, loaded.labels, progress=True)
        train_set = source if split == "train" else open_split(config, args.data_root, "train")
        train_words = {path.parent.name for path, _ in train_set.items}
        runtime["condition"] = "noisy 5-20 dB SNR" if args.noisy else "clean"
        report = {"model": runtime} | keyword_report(preds, targets, loaded.labels)
        report |= unseen_report(preds, targets, source, train_words, loaded.labels)
        png = out.with_suffix(".confusion.png")
        plot_confusion(report, png)
        print(
            f"{split}, {runtime['condition']} ({runtime['runtime']} {runtime['precision']}): "
            f"accuracy {report['accuracy']:.2%} on {report['examples']} clips; confusion matrix: {png}"
        )
        print_unseen(report)
    else:
        from asr.text import Tokenizer

        refs, hyps = transcribe(loaded.model, source, Tokenizer(loaded.tokenizer), config.features, progress=True)
        report = wer_report(refs, hyps)
        print(f"{split}: WER {report['wer']:.2%}, CER {report['cer']:.2%} on {report['examples']} utterances")
    report = {"checkpoint": str(args.checkpoint), "data_root": str(args.data_root), "split": split, **report}
    write_text_atomic(out, json.dumps(report, indent=2))
    print(f"report: {out}")
    return 0
