"""The classic peer: CMU pocketsphinx (PyPI 5.1.1) with its bundled en-us acoustic model, fully offline.

Two uses, the two ways pocketsphinx is used for keywords:
- closed-set recognition of 1 s clips with a JSGF grammar `<word> = w1 | w2 | ...`. How `_unknown_` is modelled:
  the grammar lists the keywords AND every unknown word of the corpus's training split (the same vocabulary the
  neural models hear as `_unknown_` in training); a clip decoded as one of those words is `_unknown_`, and a clip
  with an empty hypothesis is `_silence_`. Words of the test split that training never had (the corpus's held-out
  words) are not in the grammar, exactly as they were never heard by the neural models.
- keyphrase spotting (`keyphrase=..., kws_threshold=...`) of the wake word on a continuous stream, with the
  threshold swept for a DET curve. Each threshold needs its own pass: detections reset the search.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from asr.errors import InputError
from asr.features import DEFAULT_SPEC
from asr.runtime.detector import Detection

SAMPLE_RATE = DEFAULT_SPEC.sample_rate
# Keyphrase thresholds swept for the DET curve (pocketsphinx's documented useful range is 1e-50 .. 1e-5).
KWS_THRESHOLDS = (1e-40, 1e-35, 1e-30, 1e-25, 1e-20, 1e-15, 1e-10, 1e-5)
# Grammar search beams, narrower than the defaults (1e-48 / 7e-29 / 1e-48, tuned for large vocabularies): 1.8x
# faster with the same accuracy on a 54-clip sample of the test split (77.8% both).
GRAMMAR_BEAMS = {"beam": 1e-30, "wbeam": 1e-20, "pbeam": 1e-30}


def model_dir() -> Path:
    """The bundled en-us acoustic model directory."""
    from pocketsphinx import get_model_path

    return Path(get_model_path()) / "en-us" / "en-us"


def to_pcm(audio: np.ndarray) -> bytes:
    """float [-1, 1] -> 16-bit little-endian PCM, what `process_raw` takes."""
    return (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def decode_utterance(decoder, audio: np.ndarray) -> str:
    """A pocketsphinx decoder's best hypothesis for one whole utterance, with its active search ("" if none)."""
    decoder.start_utt()
    decoder.process_raw(to_pcm(audio), full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr.strip() if hyp is not None else ""


def _decoder(**options):
    from pocketsphinx import Decoder

    return Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", **options)


def jsgf(words: list[str]) -> str:
    return "#JSGF V1.0;\ngrammar words;\npublic <word> = " + " | ".join(words) + ";\n"


class GrammarRecognizer:
    """Classify 1 s clips into `labels` (`_silence_`, `_unknown_`, *keywords) with a closed-set JSGF grammar."""

    def __init__(self, labels: list[str], unknown_words: list[str]):
        self.labels = list(labels)
        keywords = self.labels[2:]
        self._decoder = _decoder(**GRAMMAR_BEAMS)
        self.missing = [w for w in [*keywords, *unknown_words] if self._decoder.lookup_word(w) is None]
        if any(k in self.missing for k in keywords):
            raise InputError(f"pocketsphinx's en-us dictionary has no pronunciation for keyword(s) {self.missing}")
        self.words = [w for w in dict.fromkeys([*keywords, *unknown_words]) if w not in self.missing]
        self._decoder.add_jsgf_string("words", jsgf(self.words))
        self._decoder.activate_search("words")
        self._index = {k: i for i, k in enumerate(self.labels)}

    def hypothesis(self, audio: np.ndarray) -> str:
        return decode_utterance(self._decoder, audio)

    def classify(self, audio: np.ndarray) -> int:
        word = self.hypothesis(audio)
        if not word:
            return self._index["_silence_"]
        return self._index.get(word, self._index["_unknown_"])

    def stored_bytes(self) -> int:
        """Acoustic model files plus the dictionary entries of the grammar's words: what a device would store."""
        words = set(self.words)
        dictionary = Path(self._decoder.config["dict"]).read_text().splitlines(keepends=True)
        entries = sum(len(line.encode()) for line in dictionary if line.split(" ", 1)[0].split("(")[0] in words)
        return sum(p.stat().st_size for p in model_dir().iterdir() if p.is_file()) + entries


_worker: GrammarRecognizer | None = None


def _init_worker(labels: list[str], unknown_words: list[str]) -> None:
    global _worker
    _worker = GrammarRecognizer(labels, unknown_words)


def _classify_timed(audio: np.ndarray) -> tuple[int, float]:
    start = time.perf_counter()
    label = _worker.classify(audio)
    return label, time.perf_counter() - start


def classify_all(
    labels: list[str], unknown_words: list[str], clips: np.ndarray, jobs: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """(predicted label per clip, seconds per clip) with `jobs` decoder processes (decoding is single-threaded)."""
    bar = {"total": len(clips), "desc": "pocketsphinx grammar", "unit": "clip", "leave": False}
    if jobs <= 1:
        _init_worker(labels, unknown_words)
        results = [_classify_timed(c) for c in tqdm(clips, **bar)]
    else:  # fork: the children only run pocketsphinx, never torch
        with multiprocessing.get_context("fork").Pool(jobs, _init_worker, (labels, unknown_words)) as pool:
            results = list(tqdm(pool.imap(_classify_timed, list(clips), chunksize=16), **bar))
    return np.array([r[0] for r in results]), np.array([r[1] for r in results])


def spot(audio: np.ndarray, keyphrase: str, threshold: float, hop_s: float = 0.1) -> tuple[list[Detection], float]:
    """(detections, seconds of decoding) of `keyphrase` in a stream fed `hop_s` at a time; a detection is stamped
    with the stream time at the end of the chunk that completed it, and restarts the search."""
    d = _decoder(keyphrase=keyphrase, kws_threshold=threshold)
    step = round(hop_s * SAMPLE_RATE)
    pcm = np.clip(audio, -1.0, 1.0)
    found = []
    start = time.perf_counter()
    d.start_utt()
    for pos in range(0, len(pcm), step):
        d.process_raw(to_pcm(pcm[pos : pos + step]), False, False)
        if d.hyp() is not None:
            found.append(Detection(min(pos + step, len(pcm)) / SAMPLE_RATE, keyphrase, threshold))
            d.end_utt()
            d.start_utt()
    d.end_utt()
    return found, time.perf_counter() - start


def _spot_star(args) -> tuple[list[Detection], float]:
    return spot(*args)


def spot_sweep(
    audio: np.ndarray, keyphrase: str, thresholds=KWS_THRESHOLDS, jobs: int = 1
) -> list[tuple[float, list[Detection], float]]:
    """(threshold, detections, decoding seconds) for each threshold, `jobs` passes at a time."""
    tasks = [(audio, keyphrase, t) for t in thresholds]
    bar = {"total": len(tasks), "desc": "pocketsphinx keyphrase sweep", "unit": "threshold", "leave": False}
    if jobs <= 1:
        results = [_spot_star(t) for t in tqdm(tasks, **bar)]
    else:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            results = list(tqdm(pool.imap(_spot_star, tasks, chunksize=1), **bar))
    return [(t, found, seconds) for t, (found, seconds) in zip(thresholds, results, strict=True)]
