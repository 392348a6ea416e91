"""What differs between the keyword and the CTC task: data, labels, loss and the dev score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from asr.config import Config
from asr.evaluate import keyword_predictions, keyword_report, transcribe, wer_report
from asr.train.batches import KeywordBatches, SentenceBatches


def open_split(config: Config, root: str | Path, split: str):
    """The corpus split as a dataset of the agreed data interface."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such corpus directory (data.root in config {config.name!r})")
    if config.task == "kws":
        from asr.data.speech_commands import SpeechCommands

        return SpeechCommands(
            root,
            split,
            config.data.keywords,
            silence_fraction=config.data.silence_fraction,
            # Subsampling unknown words is a training choice; evaluation always sees every clip of its split.
            unknown_fraction=config.data.unknown_fraction if split == "train" else 1.0,
            seed=config.train.seed,
        )
    from asr.data.librispeech import LibriSpeech

    return LibriSpeech(root, split)


class KeywordTask:
    """Classify 1 s windows into silence, unknown and the keywords; the dev score is accuracy."""

    def __init__(self, config: Config, run_dir: Path, is_main: bool = True):
        self.config = config
        self.train_set = open_split(config, config.data.root, "train")
        self.dev_set = open_split(config, config.data.root, "validation")
        self.labels = list(self.train_set.labels)
        self.tokenizer_file = None
        self.num_outputs = len(self.labels)
        self.teacher = self._teacher_targets(is_main) if config.train.teacher else None

    def _teacher_targets(self, is_main: bool) -> np.ndarray:
        """The teacher's embedding of every training clip, standardised per dimension (so each counts alike)."""
        from asr.train.teacher import corpus_embeddings

        paths, root = [p for p, _ in self.train_set.items], self.config.data.root
        if is_main:  # one process computes the cache; the others read it
            corpus_embeddings(root, paths, self.config.features.clip_samples)
        if torch.distributed.is_initialized():
            torch.distributed.barrier()
        e = corpus_embeddings(root, paths, self.config.features.clip_samples)
        return (e - e.mean(axis=0)) / (e.std(axis=0) + 1e-6)

    def batches(self, rank: int, world: int) -> KeywordBatches:
        c = self.config
        speech = None
        if c.train.speech_negatives:
            from asr.data.librispeech import LibriSpeech

            speech = LibriSpeech(c.data.speech_root, c.data.train_split)
        return KeywordBatches(
            self.train_set, c.features, c.train, c.train.seed, rank, world, speech=speech, teacher=self.teacher
        )

    def loss(self, model, batch, device) -> torch.Tensor:
        features, labels, spelled, lengths, teacher, has_teacher = (t.to(device) for t in batch)
        tc = self.config.train
        out = model(features)  # a model with training-only heads also returns their outputs in training mode
        logits, aux = out if isinstance(out, tuple) else (out, {})
        loss = F.cross_entropy(logits, labels, label_smoothing=tc.label_smoothing)
        keep = lengths >= 0  # crops of background speech have no transcript: no CTC term
        if "spelling" in aux and keep.any():
            letters = aux["spelling"]
            frames = torch.full((int(keep.sum()),), letters.shape[1], dtype=torch.long, device=device)
            ctc = F.ctc_loss(
                letters[keep].transpose(0, 1), spelled, frames, lengths[keep], blank=letters.shape[-1] - 1,
                zero_infinity=True,
            )  # fmt: skip
            loss = loss + tc.spell_ctc * ctc
        if "embedding" in aux and has_teacher.any():
            loss = loss + tc.teacher * F.mse_loss(aux["embedding"][has_teacher], teacher[has_teacher])
        return loss

    def evaluate(self, model) -> dict:
        """Dev metrics; "score" is what best.pt maximises."""
        report = keyword_report(*keyword_predictions(model, self.dev_set, self.config.features), self.labels)
        return {"dev_accuracy": report["accuracy"], "score": report["accuracy"]}


class CTCTask:
    """Transcribe sentences into sentencepiece tokens with CTC; the dev score is 1 - WER."""

    def __init__(self, config: Config, run_dir: Path, is_main: bool = True):
        from asr.text import Tokenizer

        self.config = config
        self.train_set = open_split(config, config.data.root, config.data.train_split)
        self.dev_set = open_split(config, config.data.root, config.data.dev_split)
        self.labels = []
        self.tokenizer_file = "tokenizer.model"
        path = run_dir / self.tokenizer_file
        if not path.is_file() and is_main:  # trained once per run, from the training transcripts
            Tokenizer.train(self.train_set.transcripts(), run_dir / "tokenizer", config.data.tokenizer_vocab)
        if torch.distributed.is_initialized():
            torch.distributed.barrier()
        self.tokenizer = Tokenizer(path)
        self.num_outputs = self.tokenizer.vocab_size + 1  # blank last

    def batches(self, rank: int, world: int) -> SentenceBatches:
        c = self.config
        return SentenceBatches(self.train_set, self.tokenizer, c.features, c.train, c.train.seed, rank, world)

    def loss(self, model, batch, device) -> torch.Tensor:
        features, lengths, targets, target_lengths = batch
        log_probs = model(features.to(device), lengths.to(device))
        out_lengths = (
            model.module.output_lengths(lengths) if hasattr(model, "module") else model.output_lengths(lengths)
        )
        return F.ctc_loss(
            log_probs.transpose(0, 1), targets.to(device), out_lengths.to(device), target_lengths.to(device),
            blank=self.num_outputs - 1, zero_infinity=True,
        )  # fmt: skip

    def evaluate(self, model) -> dict:
        report = wer_report(*transcribe(model, self.dev_set, self.tokenizer, self.config.features))
        return {"dev_wer": report["wer"], "dev_cer": report["cer"], "score": 1.0 - report["wer"]}


def make_task(config: Config, run_dir: Path, is_main: bool = True):
    return KeywordTask(config, run_dir, is_main) if config.task == "kws" else CTCTask(config, run_dir, is_main)
