"""Subword tokenizer for the CTC task (sentencepiece). The CTC blank is index `vocab_size`, the model's last
output, so token ids keep sentencepiece's numbering unchanged."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import sentencepiece as spm


class Tokenizer:
    """A trained sentencepiece model: text <-> token ids."""

    def __init__(self, model_path: str | Path):
        self.path = Path(model_path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such tokenizer model")
        self._sp = spm.SentencePieceProcessor()
        try:
            self._sp.Load(str(self.path))
        except (OSError, RuntimeError) as e:
            raise ValueError(f"{self.path}: not a sentencepiece model ({e})") from None

    @classmethod
    def train(cls, texts: list[str], out_prefix: str | Path, vocab_size: int, model_type: str = "unigram") -> Tokenizer:
        """Train on `texts` and write OUT_PREFIX.model and OUT_PREFIX.vocab (atomically).

        The vocabulary is a soft limit: a corpus too small for `vocab_size` pieces gets fewer (read
        `.vocab_size`) instead of an error, so tiny test corpora work with the configured size."""
        if model_type not in ("unigram", "bpe"):
            raise ValueError(f"tokenizer model_type must be 'unigram' or 'bpe', not {model_type!r}")
        texts = [t.strip() for t in texts if t.strip()]
        if not texts:
            raise ValueError("cannot train a tokenizer on no text")
        out_prefix = Path(out_prefix)
        out_prefix.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out_prefix.parent, prefix=".tokenizer-") as tmp:
            spm.SentencePieceTrainer.Train(
                sentence_iterator=iter(texts),
                model_prefix=str(Path(tmp) / "sp"),
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=1.0,
                hard_vocab_limit=False,
                bos_id=-1,
                eos_id=-1,
                unk_id=0,
                minloglevel=2,
            )
            for suffix in (".vocab", ".model"):  # the model last: its presence means both are complete
                os.replace(Path(tmp) / f"sp{suffix}", out_prefix.with_name(out_prefix.name + suffix))
        return cls(out_prefix.with_name(out_prefix.name + ".model"))

    @property
    def vocab_size(self) -> int:
        return self._sp.GetPieceSize()

    @property
    def blank(self) -> int:
        """The CTC blank index (one past the last piece)."""
        return self.vocab_size

    def encode(self, text: str) -> list[int]:
        return list(self._sp.EncodeAsIds(text))

    def decode(self, ids: list[int]) -> str:
        """Text of `ids`; ids outside the vocabulary (the CTC blank) are skipped."""
        return self._sp.DecodeIds([int(i) for i in ids if 0 <= int(i) < self.vocab_size])


# The spelling alphabet of the keyword model's auxiliary CTC loss (train.spell_ctc); blank is index len(SPELLING).
SPELLING = "abcdefghijklmnopqrstuvwxyz'"


def spell(word: str) -> list[int]:
    """Letter ids of `word` (other characters dropped): the CTC target that makes the keyword encoder hear the
    whole word, so "downy" is not "down"."""
    return [SPELLING.index(c) for c in word.lower() if c in SPELLING]
