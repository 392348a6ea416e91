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
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from asr.data.info import read_voices
from asr.data.noise import NoisySplit
from asr.errors import InputError, MissingError
from asr.evaluation.metrics import keyword_report, unseen_report, wer_report
from asr.features import FeatureSpec, fit_window, log_mel
from asr.features.logmel import LogMel
from asr.files import save_figure_atomic, write_text_atomic


@torch.no_grad()
def keyword_logits(model, source, spec: FeatureSpec, batch_size: int = 128, progress: bool = False):
    """(logits [examples, classes], true class) over every example of a keyword dataset, clips centred."""
    logmel, logits, targets = LogMel(spec), [], []
    model.eval()
    for start in tqdm(range(0, len(source), batch_size), desc="eval", disable=not progress, leave=False):
        items = [source[i] for i in range(start, min(start + batch_size, len(source)))]
        waves = np.stack([fit_window(w, spec.clip_samples, None) for w, _ in items]).astype(np.float32)
        device = next(model.parameters()).device
        logits.append(model(logmel(torch.from_numpy(waves)).to(device)).cpu().numpy())
        targets.append(np.array([y for _, y in items]))
    return np.concatenate(logits), np.concatenate(targets)


def keyword_predictions(model, source, spec: FeatureSpec, batch_size: int = 128, progress: bool = False):
    """(predicted class, true class) arrays over every example of a keyword dataset, clips centred in the window."""
    logits, targets = keyword_logits(model, source, spec, batch_size, progress)
    return logits.argmax(-1), targets


def micro_predictions(export_dir: Path, source, labels: list[str], batch_size: int = 64, progress: bool = False):
    """(predicted class, true class, runtime info) of the export's int8 model running in TFLite Micro.

    Features come from the numpy front end (asr.features.log_mel) with the manifest's FeatureSpec, and are
    quantized with the manifest's input scale and zero point, exactly as on the device. A streaming step model
    plays each clip after the warm-up of silence (the manifest's StreamSteps) and is read by its head, as the
    firmware's clip mode does.
    """
    from asr.runtime.bundle import load_exported
    from asr.runtime.host_interpreters import clip_head_sums, run_micro
    from asr.runtime.interpreter import quantize

    model, manifest = load_exported(export_dir, precision="int8")
    spec = manifest.features
    if manifest.labels != labels:
        raise InputError(
            f"{export_dir / 'manifest.json'}: labels {manifest.labels} differ from the checkpoint's {labels}"
        )
    scale, zero_point = manifest.input.scale, manifest.input.zero_point
    preds, targets, times = [], [], []
    for start in tqdm(range(0, len(source), batch_size), desc="eval tflm", disable=not progress, leave=False):
        items = [source[i] for i in range(start, min(start + batch_size, len(source)))]
        windows = np.stack([log_mel(fit_window(w, spec.clip_samples, None), spec) for w, _ in items])
        inputs = quantize(windows, scale, zero_point)
        if manifest.stream is None:
            scores, ms = run_micro(model.path, inputs, manifest.arena_bytes)
        else:
            begin = time.perf_counter()
            scores = clip_head_sums(model.path, manifest.arena_bytes, inputs, manifest.stream, spec)
            ms = (time.perf_counter() - begin) * 1000 / len(inputs)
        preds.append(scores.argmax(-1))
        targets.append(np.array([y for _, y in items]))
        times.append(ms)
    info = {"runtime": "tflite_micro", "precision": "int8", "export_dir": str(export_dir), "model": str(model.path)}
    return np.concatenate(preds), np.concatenate(targets), info | {"ms_per_window": float(np.median(times))}


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
        refs += [tokenizer.reference(text) for _, text, _ in items]
    return refs, hyps


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
    from asr.data.splits import open_split
    from asr.model.checkpoint import load_checkpoint

    loaded = load_checkpoint(args.checkpoint)
    config = loaded.config
    if not args.data_root.is_dir():
        raise MissingError(f"{args.data_root}: no such corpus directory")
    split = args.split or ("testing" if config.task == "kws" else config.data.test_split)
    source = open_split(config, args.data_root, split)
    if args.noisy:
        if config.task != "kws":
            raise InputError(f"{args.checkpoint}: --noisy scores keyword models; this is a {config.task} checkpoint")
        source = NoisySplit(source, seed=config.train.seed)
    if args.tflite is not None and config.task != "kws":
        raise InputError(f"{args.checkpoint}: --tflite scores keyword models; this is a {config.task} checkpoint")
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
        words = [path.parent.name for path, _ in source.items]
        voices = read_voices(source.root)
        rows = None if voices is None else [voices.get(source.speaker_of(path), {}) for path, _ in source.items]
        report |= unseen_report(preds, targets, loaded.labels, words, train_words, rows)
        png = out.with_suffix(".confusion.png")
        plot_confusion(report, png)
        print(
            f"{split}, {runtime['condition']} ({runtime['runtime']} {runtime['precision']}): "
            f"accuracy {report['accuracy']:.2%} on {report['examples']} clips; confusion matrix: {png}"
        )
        print_unseen(report)
    else:
        from asr.text import make_tokenizer

        tokenizer = make_tokenizer(config.data.units, loaded.tokenizer, source.transcripts())
        refs, hyps = transcribe(loaded.model, source, tokenizer, config.features, progress=True)
        report = wer_report(refs, hyps)
        rate = "PER (phone error rate)" if config.data.units == "phones" else "WER"
        print(f"{split}: {rate} {report['wer']:.2%}, CER {report['cer']:.2%} on {report['examples']} utterances")
    report = {"checkpoint": str(args.checkpoint), "data_root": str(args.data_root), "split": split, **report}
    write_text_atomic(out, json.dumps(report, indent=2))
    print(f"report: {out}")
    return 0
