"""Run an exported CTC model over audio of any length: fixed windows with overlap, stitched per-frame outputs.

The int8 model takes a fixed window (static shapes for TFLite Micro). Windows start every `hop_frames` feature
frames and overlap; from each window only its central encoder frames are kept (all of them at the stream's ends),
so every output frame comes from a window that saw context on both sides. Feature frames are computed once as
samples arrive (`StreamingFrontend`), so a microphone stream and a file give the same frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asr.errors import InputError
from asr.features import FeatureSpec
from asr.runtime.bundle import BundleError, Manifest, load_exported
from asr.runtime.ctc import Pieces
from asr.runtime.detector import StreamingFrontend
from asr.runtime.words import BEAM, LEXICON_FILE, LM_FILE, WordDecoder, read_lexicon


def silence_feature(spec: FeatureSpec) -> float:
    """The normalised log-mel value of digital silence: what pads the last window."""
    return float((np.log(spec.log_offset) - spec.mean) / spec.std)


def encoder_frames(frames: int, time_strides: list[int]) -> int:
    """Encoder frames of `frames` feature frames (asr.model.subsampling: 3-wide convolutions, no padding)."""
    for stride in time_strides:
        frames = (frames - 3) // stride + 1 if frames >= 3 else 0
    return max(frames, 0)


@dataclass(frozen=True)
class WindowPlan:
    """Where windows start and which of their encoder frames are kept."""

    window_frames: int  # feature frames per window (the model's input)
    hop_frames: int  # feature frames between window starts (a multiple of the stride)
    time_strides: list[int]

    def __post_init__(self) -> None:
        stride = int(np.prod(self.time_strides))
        if self.hop_frames % stride or not 0 < self.hop_frames <= self.window_frames:
            raise InputError(
                f"window hop {self.hop_frames} frames must be a positive multiple of {stride} within the window"
            )

    @property
    def stride(self) -> int:
        return int(np.prod(self.time_strides))

    @property
    def outputs(self) -> int:
        return encoder_frames(self.window_frames, self.time_strides)

    @property
    def hop_outputs(self) -> int:
        return self.hop_frames // self.stride

    @property
    def margin(self) -> int:
        """Encoder frames dropped at each side of an inner window."""
        return (self.outputs - self.hop_outputs) // 2

    def starts(self, frames: int) -> list[int]:
        """Window starts (feature frames) covering a stream of `frames` frames."""
        total = encoder_frames(frames, self.time_strides)
        starts = [0]
        while starts[-1] // self.stride + self.outputs < total:
            starts.append(starts[-1] + self.hop_frames)
        return starts

    def keep(self, index: int, last: bool) -> slice:
        """The encoder frames of window `index` that go into the stitched output."""
        lo = 0 if index == 0 else self.margin
        return slice(lo, self.outputs if last else self.margin + self.hop_outputs)


def plan_from_manifest(manifest: Manifest) -> WindowPlan:
    spec, ctc = manifest.features, manifest.ctc
    return WindowPlan(spec.window_frames, ctc.hop_frames, list(ctc.time_strides))


class CTCStream:
    """Audio chunks in, stitched log-probabilities [n, units + 1] out, as soon as they are final."""

    def __init__(self, model: Callable[[np.ndarray], np.ndarray], spec: FeatureSpec, plan: WindowPlan, units: int):
        self.model, self.spec, self.plan, self.units = model, spec, plan, units
        self.frontend = StreamingFrontend(spec)
        self._features = np.zeros((0, spec.n_mels), dtype=np.float32)  # rows from feature frame `_first` on
        self._first = 0
        self._window = 0  # index of the next window to run
        self.frames_out = 0

    @property
    def audio_seconds(self) -> float:
        return self.frontend.samples_seen / self.spec.sample_rate

    def _run(self, start: int, last: bool) -> np.ndarray:
        rows = self._features[start - self._first : start - self._first + self.plan.window_frames]
        if len(rows) < self.plan.window_frames:
            pad = np.full((self.plan.window_frames - len(rows), self.spec.n_mels), silence_feature(self.spec))
            rows = np.concatenate([rows, pad.astype(np.float32)])
        out = np.asarray(self.model(rows), dtype=np.float32).reshape(self.plan.outputs, self.units)
        kept = out[self.plan.keep(self._window, last)]
        self._window += 1
        self.frames_out += len(kept)
        return kept

    def push(self, samples: np.ndarray) -> np.ndarray:
        """The output frames completed by `samples` (inner windows only; `finish` runs the last one)."""
        self._features = np.concatenate([self._features, self.frontend.push(samples)])
        out = []
        # A window runs once the NEXT window has begun too: only then is it known not to be the stream's last.
        while (self._window + 1) * self.plan.hop_frames + self.plan.window_frames <= self._first + len(self._features):
            out.append(self._run(self._window * self.plan.hop_frames, last=False))
        drop = self._window * self.plan.hop_frames - self._first
        if drop > 0:
            self._features, self._first = self._features[drop:], self._first + drop
        return np.concatenate(out) if out else np.zeros((0, self.units), dtype=np.float32)

    def finish(self) -> np.ndarray:
        """The remaining output frames, the last window padded with silence and kept whole: CTC emits a word's units
        late, so the last word is often in the frames past the audio's end (cut, "pause the music" read "pause")."""
        total_frames = self._first + len(self._features)
        total = encoder_frames(total_frames, self.plan.time_strides)
        out = []
        starts = self.plan.starts(total_frames)
        while self._window < len(starts) and self.frames_out < total:
            out.append(self._run(starts[self._window], last=self._window == len(starts) - 1))
        return np.concatenate(out) if out else np.zeros((0, self.units), dtype=np.float32)

    def run(self, chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for chunk in chunks:
            frames = self.push(chunk)
            if len(frames):
                yield frames
        yield self.finish()


@dataclass
class CTCModel:
    """An exported CTC model with what decoding needs: units, blank, window plan."""

    model: Callable[[np.ndarray], np.ndarray]
    spec: FeatureSpec
    plan: WindowPlan
    manifest: Manifest
    units: list[str]  # pieces or phones, without the blank
    pieces: Pieces | None  # text models: the decoder of piece ids
    lexicon: dict[str, list[int]] = field(default_factory=dict)  # the export's words in units (may be empty)
    lm: Path | None = None  # the export's word n-gram

    @property
    def blank(self) -> int:
        return len(self.units)

    @property
    def unit_kind(self) -> str:
        return self.manifest.ctc.units

    def stream(self) -> CTCStream:
        return CTCStream(self.model, self.spec, self.plan, len(self.units) + 1)

    def log_probs(self, audio: np.ndarray) -> np.ndarray:
        """Stitched log-probabilities [encoder frames, units + 1] of a whole recording."""
        stream = self.stream()
        return np.concatenate([stream.push(audio), stream.finish()])

    def word_decoder(self, beam: int = BEAM) -> WordDecoder | None:
        """The export's own words and n-gram (asr.runtime.words); None for an export written without them."""
        return WordDecoder(self.units, self.lexicon, self.lm, beam=beam) if self.lexicon else None

    def decode(self, ids: list[int]) -> str:
        if self.pieces is not None:
            return self.pieces.decode(ids)
        return " ".join(self.units[i] for i in ids)


def load_ctc(export_dir: str | Path, *, precision: str = "int8", backend: str | None = None) -> CTCModel:
    """The CTC export in `export_dir`; BundleError if it is a keyword export or lacks its units."""
    model, manifest = load_exported(export_dir, precision=precision, backend=backend)
    path = Path(export_dir) / "manifest.json"
    ctc = manifest.ctc
    if ctc is None:
        raise BundleError(f"{path}: not a CTC export (no 'ctc' section); keyword exports run with `asr demo`")
    units = ctc.symbols
    if not units:
        raise BundleError(f"{path}: the CTC export carries no tokenizer pieces or phone set; re-export it")
    if len(units) + 1 != len(manifest.labels):
        raise BundleError(f"{path}: {len(units)} units + blank but the model has {len(manifest.labels)} outputs")
    pieces = Pieces(ctc.pieces, ctc.piece_scores or None) if ctc.pieces else None
    lexicon, lm = Path(export_dir) / LEXICON_FILE, Path(export_dir) / LM_FILE
    return CTCModel(
        model,
        manifest.features,
        plan_from_manifest(manifest),
        manifest,
        list(units),
        pieces,
        read_lexicon(lexicon, units) if lexicon.is_file() else {},
        lm if lm.is_file() else None,
    )
