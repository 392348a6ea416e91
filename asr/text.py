"""The CTC units: subword pieces (sentencepiece; the blank is index `vocab_size`, the model's last output, so token
ids keep sentencepiece's numbering unchanged), letters, and espeak-ng phones.

sentencepiece is imported where a tokenizer is made: the phone set is also read on a device, which has none.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

from asr.errors import InputError, MissingError


class Tokenizer:
    """A trained sentencepiece model: text <-> token ids."""

    def __init__(self, model_path: str | Path):
        self.path = Path(model_path)
        if not self.path.is_file():
            raise MissingError(f"{self.path}: no such tokenizer model")
        import sentencepiece as spm

        self._sp = spm.SentencePieceProcessor()
        try:
            self._sp.Load(str(self.path))
        except (OSError, RuntimeError) as e:
            raise InputError(f"{self.path}: not a sentencepiece model ({e})") from None

    @classmethod
    def train(cls, texts: list[str], out_prefix: str | Path, vocab_size: int, model_type: str = "unigram") -> Tokenizer:
        """Train on `texts` and write OUT_PREFIX.model and OUT_PREFIX.vocab (atomically).

        The vocabulary is a soft limit: a corpus too small for `vocab_size` pieces gets fewer (read
        `.vocab_size`) instead of an error, so tiny test corpora work with the configured size."""
        if model_type not in ("unigram", "bpe"):
            raise InputError(f"tokenizer model_type must be 'unigram' or 'bpe', not {model_type!r}")
        texts = [t.strip() for t in texts if t.strip()]
        if not texts:
            raise InputError("cannot train a tokenizer on no text")
        out_prefix = Path(out_prefix)
        out_prefix.parent.mkdir(parents=True, exist_ok=True)
        import sentencepiece as spm

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

    def reference(self, text: str) -> str:
        """What a perfect transcript of `text` decodes to: the text itself."""
        return text


# The spelling alphabet of the keyword model's auxiliary CTC loss (train.spell_ctc); blank is index len(SPELLING).
SPELLING = "abcdefghijklmnopqrstuvwxyz'"


def spell(word: str) -> list[int]:
    """Letter ids of `word` (other characters dropped): the CTC target that makes the keyword encoder hear the
    whole word, so "downy" is not "down"."""
    return [SPELLING.index(c) for c in word.lower() if c in SPELLING]


# The phone set of the same loss with train.ctc_units = "phones": espeak-ng's US English phoneme mnemonics, stress
# marks dropped and rare allophones folded into their phoneme; blank is index len(PHONES).
PHONES = (
    "@ @L 0 3 3: A: A@ D E I N O2 O: O@ OI S T U U@ V Z a aI aI@ aU aa b d dZ e@ eI f g h i i: i@ j k l m n o@ oU "
    "p r s t tS u: v w z"
).split()
_FOLD = {"I2": "I", "I#": "I", "t#": "t", "t2": "t", "?": "t", "a#": "a", "@2": "@", "@-": "@", "n-": "n"}
_FOLD |= {"i@3": "i@", "aI3": "aI@"}


def espeak(words: list[str]) -> list[str]:
    """espeak-ng's US English phoneme mnemonics of each word, one process for all; FileNotFoundError without it."""
    out = subprocess.run(
        ["espeak-ng", "-q", "-x", "--sep= ", "-v", "en-us"], input="".join(f"{w}.\n" for w in words),
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    if len(lines) != len(words):
        raise RuntimeError(f"espeak-ng gave {len(lines)} phoneme lines for {len(words)} words")
    return lines


def fold(said: str) -> list[str]:
    """espeak-ng's mnemonics of a word as PHONES names: stress and syllable marks dropped, rare allophones folded."""
    return [_FOLD.get(p, p) for p in re.sub(r"[',;]", "", said).split()]


def phonemes(words: list[str]) -> dict[str, list[int]]:
    """Phone ids of each word as espeak-ng says it in US English (one process for all words): a CTC target that
    names the sounds, shared by every voice, where a spelling names letters."""
    words = sorted({w.lower() for w in words if w})
    if not words:
        return {}
    try:
        said = espeak(words)
    except FileNotFoundError as e:
        raise MissingError("train.ctc_units = 'phones' needs espeak-ng (apt-get install espeak-ng)") from e
    return {word: [PHONES.index(p) for p in fold(line) if p in PHONES] for word, line in zip(words, said, strict=True)}


class PhoneTokenizer:
    """Sentences <-> espeak-ng phones (PHONES), the Tokenizer interface for a CTC model over phones (data.units =
    "phones"): the model that spots wake words defined by text. Words are looked up once, then cached."""

    def __init__(self, texts: list[str] = ()):
        self._ids: dict[str, list[int]] = {}
        self._learn(texts)

    def _learn(self, texts) -> None:
        new = {w for text in texts for w in text.lower().split()} - self._ids.keys()
        self._ids |= phonemes(sorted(new))

    @property
    def vocab_size(self) -> int:
        return len(PHONES)

    @property
    def blank(self) -> int:
        return len(PHONES)

    def encode(self, text: str) -> list[int]:
        self._learn([text])
        return [i for word in text.lower().split() for i in self._ids.get(word, [])]

    def decode(self, ids: list[int]) -> str:
        return " ".join(PHONES[int(i)] for i in ids if 0 <= int(i) < len(PHONES))

    def reference(self, text: str) -> str:
        """The phones of `text`: error rates of a phone model are phone error rates."""
        return self.decode(self.encode(text))


def make_tokenizer(units: str, path: str | Path | None, texts: list[str] = ()) -> Tokenizer | PhoneTokenizer:
    """The CTC model's units: a trained sentencepiece model at `path`, or phones (which `texts` warm up)."""
    return PhoneTokenizer(texts) if units == "phones" else Tokenizer(path)
