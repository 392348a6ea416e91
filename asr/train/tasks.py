"""What differs between the keyword and the CTC task: data, labels, loss and the dev score."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from asr.config import Config
from asr.data.splits import open_split
from asr.evaluation.evaluate import keyword_predictions, transcribe
from asr.evaluation.metrics import keyword_report, wer_report
from asr.train.batches import KeywordBatches, SentenceBatches


class KeywordTask:
    """Classify 1 s windows into silence, unknown and the keywords; the dev score is accuracy."""

    def __init__(self, config: Config, run_dir: Path):
        self.config = config
        self.train_set = open_split(config, config.data.root, "train")
        self.dev_set = open_split(config, config.data.root, "validation")
        self.labels = list(self.train_set.labels)
        self.tokenizer_file = None
        self.num_outputs = len(self.labels)

    def batches(self, rank: int, world: int) -> KeywordBatches:
        c = self.config
        speech = None
        if c.train.speech_negatives:
            from asr.data.librispeech import LibriSpeech

            speech = LibriSpeech(c.data.speech_root, c.data.train_split)
        return KeywordBatches(self.train_set, c.features, c.train, c.train.seed, rank, world, speech=speech)

    def loss(self, model, batch, device) -> torch.Tensor:
        features, labels, spelled, lengths = (t.to(device) for t in batch)
        tc = self.config.train
        if not tc.spell_ctc:
            return F.cross_entropy(model(features), labels, label_smoothing=tc.label_smoothing)
        logits, letters = model(features)  # a model with a speller also spells in training mode
        loss = F.cross_entropy(logits, labels, label_smoothing=tc.label_smoothing)
        keep = lengths >= 0  # crops of background speech have no transcript: no CTC term
        if not keep.any():
            return loss
        frames = torch.full((int(keep.sum()),), letters.shape[1], dtype=torch.long, device=device)
        ctc = F.ctc_loss(
            letters[keep].transpose(0, 1), spelled, frames, lengths[keep], blank=letters.shape[-1] - 1,
            zero_infinity=True,
        )  # fmt: skip
        return loss + tc.spell_ctc * ctc

    def evaluate(self, model) -> dict:
        """Dev metrics; "score" is what best.pt maximises."""
        report = keyword_report(*keyword_predictions(model, self.dev_set, self.config.features), self.labels)
        return {"dev_accuracy": report["accuracy"], "score": report["accuracy"]}


class CTCTask:
    """Transcribe sentences into sentencepiece tokens (or phones) with CTC; the dev score is 1 - WER (or PER)."""

    def __init__(self, config: Config, run_dir: Path, is_main: bool = True):
        from asr.text import Tokenizer, make_tokenizer

        self.config = config
        self.train_set = open_split(config, config.data.root, config.data.train_split)
        self.dev_set = open_split(config, config.data.root, config.data.dev_split)
        self.labels = []
        phones = config.data.units == "phones"
        self.tokenizer_file = None if phones else "tokenizer.model"
        path = None if phones else run_dir / self.tokenizer_file
        if not phones and not path.is_file() and is_main:  # trained once per run, from the training transcripts
            Tokenizer.train(self.train_set.transcripts(), run_dir / "tokenizer", config.data.tokenizer_vocab)
        if torch.distributed.is_initialized():
            torch.distributed.barrier()
        texts = self.train_set.transcripts() + self.dev_set.transcripts() if phones else []
        self.tokenizer = make_tokenizer(config.data.units, path, texts)
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
    return KeywordTask(config, run_dir) if config.task == "kws" else CTCTask(config, run_dir, is_main)
