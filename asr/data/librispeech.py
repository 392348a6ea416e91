"""A LibriSpeech split (real or generated): `ROOT/SPLIT/SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac` with one
`SPEAKER-CHAPTER.trans.txt` per chapter ("UTTID TRANSCRIPT" lines, upper case)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from asr.audio import read_audio
from asr.data.recipe import STAMP
from asr.errors import InputError, MissingError
from asr.features import DEFAULT_SPEC

PAUSE_S = 0.5  # real speech is heard as a session: each utterance after a pause of faint noise
PAUSE_DBFS = -70.0  # a real microphone is never digitally silent


def play_utterances(
    speech: LibriSpeech, order: Iterable[int] | None = None, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray, str]]:
    """The utterances (all, or those of `order`) played one after another as a real-speech session: (the pause of
    faint noise before each, its audio, its id)."""
    rng = np.random.default_rng(seed)
    pause = int(PAUSE_S * speech.sample_rate)
    for i in range(len(speech)) if order is None else order:
        audio, _, utt_id = speech[i]
        yield 10 ** (PAUSE_DBFS / 20) * rng.standard_normal(pause).astype(np.float32), audio, utt_id


class LibriSpeech:
    """Utterances of one split as (waveform float32, transcript, utterance id), sorted by id."""

    def __init__(self, root: str | Path, split: str, sample_rate: int = DEFAULT_SPEC.sample_rate):
        self.root, self.sample_rate = Path(root), sample_rate
        folder = self.root / split
        if not folder.is_dir():
            found = sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []
            hint = ""
            if (self.root / STAMP).is_file():  # `make demo` builds the generated sentences' held-out splits only
                hint = "; `asr data synth --corpus sentences` builds every split of the generated corpus"
            raise MissingError(f"{folder}: no such LibriSpeech split directory (found: {found}){hint}")
        self.split = split
        self.items: list[tuple[Path, str, str]] = []  # (audio path, transcript, utterance id)
        for chapter in sorted(p for p in folder.glob("*/*") if p.is_dir()):
            self.items += _read_chapter(chapter)
        if not self.items:
            raise MissingError(f"{folder}: no utterances (expected SPEAKER/CHAPTER/*.flac and *.trans.txt)")
        self.items.sort(key=lambda item: item[2])

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[np.ndarray, str, str]:
        path, text, utt_id = self.items[i]
        return read_audio(path, self.sample_rate), text, utt_id

    def transcripts(self) -> list[str]:
        """Every transcript of the split (for training a tokenizer)."""
        return [text for _, text, _ in self.items]

    @staticmethod
    def speaker_of(utt_id: str) -> str:
        return utt_id.split("-")[0]


def _read_chapter(chapter: Path) -> list[tuple[Path, str, str]]:
    speaker = chapter.parent.name
    trans = chapter / f"{speaker}-{chapter.name}.trans.txt"
    if not trans.is_file():
        raise MissingError(f"{trans}: missing transcript file for chapter {chapter}")
    texts = {}
    for n, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        utt_id, _, text = line.strip().partition(" ")
        if not text:
            raise InputError(f"{trans}:{n}: expected 'UTTID TRANSCRIPT', got {line!r}")
        texts[utt_id] = text
    audio = {p.stem: p for p in chapter.glob("*.flac")}
    untranscribed = sorted(set(audio) - set(texts))
    if untranscribed:
        raise InputError(f"{audio[untranscribed[0]]}: no transcript line for {untranscribed[0]} in {trans}")
    silent = sorted(set(texts) - set(audio))
    if silent:
        raise MissingError(f"{chapter / (silent[0] + '.flac')}: audio missing for its transcript line in {trans}")
    return [(audio[u], texts[u], u) for u in texts]
