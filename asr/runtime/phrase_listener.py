"""Wake words and commands defined by text, for the Pi: a phrase is heard through a real-speech embedding.

`asr phrases EXPORT_DIR --keyword "hey marvin"` (asr.train.phrase_listener, on the PC) synthesizes each phrase in
the recipe's training voices and trains a small head on Google's speech_embedding (openWakeWord's recipe for a
custom word; the embedding learnt from real speech). It writes EXPORT_DIR/phrases; this module only reads it.

Streaming follows openWakeWord: every 80 ms hop the mel model runs on the hop plus 30 ms before it (exactly the
frames it gives on the whole recording), the embedding model on the last 76 mel frames, and the head on the last
`rows` embeddings. A phrase fires when its score (log-odds of the phrase against every other label) reaches its
threshold, at most once per refractory period.

No torch and no TensorFlow: 2.4 MB of float TFLite models and a numpy MLP (the CTC route, asr.runtime.phrases, is
the one for a microcontroller).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.runtime.detector import Detection
from asr.runtime.phrases import phrase_key
from asr.runtime.spotter import to_float_audio
from asr.runtime.verifier import (
    EMBEDDING_DIM,
    EMBEDDING_FRAMES,
    EMBEDDING_STEP,
    MEL_BINS,
    SpeechEmbedding,
    VerifierError,
    head_logits,
    read_head_dir,
)

PHRASES_DIR, PHRASES_CONFIG = "phrases", "phrases.json"  # inside an export directory
MEL_HOP = 160  # samples per mel frame
MEL_CONTEXT = 480  # samples before a hop the mel model needs to give the hop's frames as on the whole recording
HOP = EMBEDDING_STEP * MEL_HOP  # 80 ms: one embedding per hop


class PhraseSetupError(VerifierError):
    """Phrases that are not set up for an export, or a phrases directory that cannot be used."""


@dataclass(frozen=True)
class PhrasesConfig:
    """What the head names and how it listens (phrases.json, written by `asr phrases`)."""

    labels: list[str]  # "_silence_", "_unknown_", then the phrases
    rows: int  # embeddings the head hears (one every 80 ms)
    thresholds: dict[str, float]  # log-odds per phrase
    refractory_s: float
    sample_rate: int
    voices: int  # synthesized voices each phrase was learnt from
    embedding_source: str

    @property
    def phrases(self) -> list[str]:
        return self.labels[2:]


def log_odds(logits: np.ndarray) -> np.ndarray:
    """Each phrase's log-odds against every other label: head logits [n, labels] -> [n, phrases]."""
    out = []
    for i in range(2, logits.shape[1]):
        others = np.delete(logits, i, axis=1)
        top = others.max(axis=1, keepdims=True)
        out.append(logits[:, i] - top[:, 0] - np.log(np.exp(others - top).sum(axis=1)))
    return np.stack(out, axis=1)


class EmbeddingStream:
    """openWakeWord's streaming front end: `push(samples)` yields one embedding [96] per 80 ms hop it completes, of
    the last 76 mel frames (exactly the whole recording's frames), from the 10th hop on."""

    def __init__(self, embedding: SpeechEmbedding) -> None:
        self.embedding = embedding
        self.reset()

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)  # samples of the next hop
        self._context = np.zeros(0, dtype=np.float32)  # the last MEL_CONTEXT samples
        self._mels = np.zeros((0, MEL_BINS), dtype=np.float32)  # the last EMBEDDING_FRAMES mel frames
        self.hops = 0

    @property
    def samples_heard(self) -> int:
        return self.hops * HOP + len(self._pending)

    def push(self, samples: np.ndarray) -> Iterator[np.ndarray]:
        self._pending = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        while len(self._pending) >= HOP:
            hop, self._pending = self._pending[:HOP], self._pending[HOP:]
            audio = np.concatenate([self._context, hop])
            self._context = audio[-MEL_CONTEXT:]
            self.hops += 1
            self._mels = np.concatenate([self._mels, self.embedding.mels(audio)[-EMBEDDING_STEP:]])
            self._mels = self._mels[-EMBEDDING_FRAMES:]
            if len(self._mels) == EMBEDDING_FRAMES:
                yield self.embedding.embed_mels(self._mels)[0]


class PhraseListener:
    """Phrases defined by text, heard in a stream, in three lines:

    from asr import PhraseListener
    listener = PhraseListener.from_export("artifacts/kws-tiny", ["hey marvin"])
    for detection in listener.predict(chunk): ...   # chunk: int16 PCM or float32 in [-1, 1], at sample_rate
    """

    def __init__(
        self,
        home: str | Path,
        *,
        thresholds: Mapping[str, float] | None = None,
        backend: str | None = None,
    ) -> None:
        self.home = Path(home)
        self.config, self.head = read_head_dir(
            self.home, PHRASES_CONFIG, PhrasesConfig, "phrases", "asr phrases", PhraseSetupError
        )
        self.thresholds = dict(self.config.thresholds) | {phrase_key(k): v for k, v in (thresholds or {}).items()}
        unknown = sorted(set(self.thresholds) - set(self.config.phrases))
        if unknown:
            raise PhraseSetupError(f"{self.home}: {unknown} not set up (it knows {self.config.phrases})")
        self.stream = EmbeddingStream(SpeechEmbedding(self.home, backend=backend))
        self.sample_rate = self.config.sample_rate
        self.listening = set(self.config.phrases)  # the phrases `predict` fires (from_export: those asked for)
        self.reset()

    def reset(self) -> None:
        """Forget the audio heard so far: the next sample starts a new stream."""
        self.stream.reset()
        self._rows = np.zeros((0, EMBEDDING_DIM), dtype=np.float32)  # the last `rows` embeddings
        self._last = {p: -np.inf for p in self.config.phrases}

    @classmethod
    def from_export(cls, export_dir: str | Path, phrases: Iterable[str], **kwargs) -> PhraseListener:
        """The listener of an export directory, checked to know every one of `phrases`."""
        home = Path(export_dir) / PHRASES_DIR
        if not home.is_dir():
            raise PhraseSetupError(
                f"{export_dir}: no phrases set up; on the PC run `asr phrases {export_dir} --keyword PHRASE ...`"
            )
        listener = cls(home, **kwargs)
        wanted = [phrase_key(p) for p in phrases]
        missing = [p for p in wanted if p not in listener.config.phrases]
        if missing:
            raise PhraseSetupError(
                f"{home}: {missing} not set up (it knows {listener.config.phrases}); on the PC run "
                f"`asr phrases {export_dir} --keyword ...` with every phrase you want"
            )
        listener.listening = set(wanted)
        return listener

    @property
    def audio_seconds(self) -> float:
        return self.stream.samples_heard / self.sample_rate

    def scores(self) -> np.ndarray:
        """Each phrase's log-odds against every other label, on the latest `rows` embeddings."""
        return log_odds(head_logits(self.head, self._rows[None]))[0]

    def listen(self, samples: np.ndarray) -> Iterator[tuple[float, np.ndarray]]:
        """(time in s, each phrase's score) at every hop `samples` completes, once the head has its rows."""
        for row in self.stream.push(samples):
            self._rows = np.concatenate([self._rows, row[None]])[-self.config.rows :]
            if len(self._rows) == self.config.rows:
                yield self.stream.hops * HOP / self.sample_rate, self.scores()

    def predict(self, chunk: np.ndarray) -> list[Detection]:
        """The detections `chunk` (int16 PCM or float32 in [-1, 1], mono, at `sample_rate`) completes."""
        found = []
        for t, scores in self.listen(to_float_audio(chunk)):
            for phrase, score in zip(self.config.phrases, scores, strict=True):
                if phrase not in self.listening or score < self.thresholds[phrase]:
                    continue
                if t - self._last[phrase] >= self.config.refractory_s:
                    self._last[phrase] = t
                    found.append(Detection(t, phrase, float(score)))
        return found

    def run(self, chunks: Iterable[np.ndarray]) -> Iterator[Detection]:
        for chunk in chunks:
            yield from self.predict(chunk)


def run_demo(args) -> int:
    """`asr demo EXPORT_DIR --keyword PHRASE ...` on a keyword export: one line per detection."""
    import sys

    from asr.runtime.audio_source import demo_chunks
    from asr.runtime.response import respond

    thresholds = dict(args.label_threshold)
    if args.threshold is not None:
        thresholds = {phrase_key(p): args.threshold for p in args.keyword} | thresholds
    listener = PhraseListener.from_export(args.model_dir, args.keyword, thresholds=thresholds, backend=args.backend)
    phrases = sorted(listener.listening)
    at = ", ".join(f"{p!r} at {listener.thresholds[p]:g}" for p in phrases)
    print(f"phrases heard through {listener.home} ({listener.config.voices} synthesized voices): {at}", file=sys.stderr)
    chunks = demo_chunks(args, listener.sample_rate, phrases)
    wake_word = phrase_key(args.wake_word) if args.wake_word else None
    return respond(listener.run(chunks), args, phrases, lambda: listener.audio_seconds, wake_word)
