"""The export directory: `manifest.json` (the typed `Manifest`) beside the .tflite models.

The manifest is the contract between export and device: labels, feature settings, tensor quantization, the
TFLite Micro arena, the wake word and the detector thresholds come from it, never from code, so a retrained model
cannot silently run with a mismatched front end. `Manifest.read` and `Manifest.write` are its only reader and
writer; what the export measured (sizes, parity, accuracy, latency) rides along in `report`, for people and
benchmarks.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from asr.errors import InputError
from asr.features import FeatureSpec
from asr.files import write_text_atomic
from asr.labels import keywords
from asr.runtime.detector import label_thresholds
from asr.runtime.detector_config import detector_config_h
from asr.runtime.interpreter import TFLiteModel, TFLiteStreamModel

FORMAT = "asr-export-2"
OUTPUT_KINDS = ("logits", "probabilities", "log_probs")  # log_probs: per-frame CTC outputs (asr.runtime.ctc)
FILENAME = "manifest.json"
MCU_DIR = "mcu"  # the microcontroller bundle inside an export directory (`asr export --mcu`)


class BundleError(InputError):
    """An export directory that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class TensorQuant:
    """Shape, dtype and int8 quantization of a model's input or output tensor (real = (q - zero_point) * scale)."""

    shape: list[int]
    dtype: str
    scale: float
    zero_point: int


@dataclass(frozen=True)
class Thresholds:
    """The detector's posterior thresholds: one shared, and any keyword's own, with how they were chosen."""

    threshold: float
    label_thresholds: dict[str, float] = field(default_factory=dict)
    chosen_by: str = ""


@dataclass(frozen=True)
class CTCUnits:
    """What a CTC model's outputs name, and how its fixed windows tile a longer recording (asr.runtime.ctc_stream)."""

    units: str  # "sentencepiece" or "phones"
    blank: int  # the output index of the CTC blank
    window_frames: int  # feature frames in one model window
    hop_frames: int  # feature frames between window starts
    time_strides: list[int]  # the subsampling's time strides
    encoder_frames_per_window: int
    pieces: list[str] = field(default_factory=list)  # sentencepiece pieces, output index order
    piece_scores: list[float] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)  # espeak-ng phones, output index order
    phone_source: str = ""

    @property
    def symbols(self) -> list[str]:
        return self.pieces or self.phones


@dataclass(frozen=True)
class StreamSteps:
    """How a causal keyword model streams (asr.runtime.interpreter.TFLiteStreamModel): each step takes `frames_in`
    feature frames, steps start every `frames_per_step` frames, and the keyword head averages the last
    `head_frames` steps' logits. A stream starts from `warmup_steps` steps of digital silence: the model's transient
    (asr.export.stream.transient_steps), after which every cache holds only frames of silence."""

    frames_in: int
    frames_per_step: int
    head_frames: int
    warmup_steps: int

    @property
    def warmup_frames(self) -> int:
        """Feature frames of silence that make `warmup_steps` steps."""
        return self.frames_in + (self.warmup_steps - 1) * self.frames_per_step


@dataclass(frozen=True)
class Manifest:
    labels: list[str]
    features: FeatureSpec
    models: dict[str, str]  # precision ("int8", "float32", "onnx") -> file name in the export directory
    input: TensorQuant
    output: TensorQuant
    arena_bytes: int  # TFLite Micro tensor arena: measured, plus the export's margin
    output_kind: str = "logits"  # or "probabilities"
    wake_word: str | None = None  # the keyword `asr demo --wake-then-command` waits for
    thresholds: Thresholds | None = None  # chosen by `asr eval-stream --save-threshold`
    ctc: CTCUnits | None = None  # a CTC model's units and windows (output_kind "log_probs")
    stream: StreamSteps | None = None  # a causal keyword model, exported as its streaming step
    report: dict = field(default_factory=dict)  # what the export measured

    def __post_init__(self) -> None:
        if self.output_kind not in OUTPUT_KINDS:
            raise BundleError(f"output_kind {self.output_kind!r} is not one of {OUTPUT_KINDS}")
        if (self.ctc is not None) != (self.output_kind == "log_probs"):
            raise BundleError(f"output_kind {self.output_kind!r} with{'' if self.ctc else 'out'} CTC units")
        if self.wake_word is not None and self.wake_word not in keywords(self.labels):
            raise BundleError(f"wake word {self.wake_word!r} is not one of the keywords {keywords(self.labels)}")

    @property
    def keywords(self) -> list[str]:
        return keywords(self.labels)

    @property
    def source(self) -> str:
        """What the microcontroller bundle's generated files say they were made from."""
        return f"{self.report.get('source', {}).get('checkpoint', 'a checkpoint')} ({self.models.get('int8')})"

    def detector_config_h(self) -> str:
        """The microcontroller bundle's detector_config.h for this model and its saved thresholds."""
        saved = self.thresholds and label_thresholds(
            self.labels, self.thresholds.threshold, self.thresholds.label_thresholds
        )
        return detector_config_h(self.features, self.labels, saved, self.source)

    def with_thresholds(self, thresholds: Thresholds) -> Manifest:
        label_thresholds(self.labels, thresholds.threshold, thresholds.label_thresholds)  # names only known keywords
        return dataclasses.replace(self, thresholds=thresholds)

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["features"] = self.features.to_dict()
        return {"format": FORMAT, **values}

    def write(self, export_dir: str | Path) -> Path:
        return write_text_atomic(Path(export_dir) / FILENAME, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def read(cls, export_dir: str | Path) -> Manifest:
        """The manifest of `export_dir`; a clear error for a missing, foreign or older one."""
        export_dir = Path(export_dir)
        path = export_dir / FILENAME
        if not export_dir.is_dir():
            raise BundleError(f"{export_dir}: not an export directory (expected {FILENAME} and a .tflite model)")
        if not path.is_file():
            raise BundleError(f"{path}: missing; is {export_dir} the output of `asr export`?")
        try:
            values = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise BundleError(f"{path}: not valid JSON: {e}") from None
        if not isinstance(values, dict) or values.get("format") != FORMAT:
            found = values.get("format", "none") if isinstance(values, dict) else "none"
            raise BundleError(
                f"{path}: manifest format {found!r}, this version reads {FORMAT!r}: export the model again "
                f"(`asr export CHECKPOINT {export_dir}`), then re-run `asr eval-stream --save-threshold` if it had "
                "saved thresholds"
            )
        try:
            values.pop("format")
            values["features"] = FeatureSpec.from_dict(values["features"])
            values["input"], values["output"] = TensorQuant(**values["input"]), TensorQuant(**values["output"])
            if values.get("thresholds") is not None:
                values["thresholds"] = Thresholds(**values["thresholds"])
            if values.get("ctc") is not None:
                values["ctc"] = CTCUnits(**values["ctc"])
            if values.get("stream") is not None:
                values["stream"] = StreamSteps(**values["stream"])
            return cls(**values)
        except (KeyError, TypeError, InputError) as e:
            raise BundleError(f"{path}: bad manifest: {e}") from None


def load_exported(
    export_dir: str | Path, *, precision: str = "int8", backend: str | None = None
) -> tuple[TFLiteModel | TFLiteStreamModel, Manifest]:
    """(model, manifest) of an export directory; the model's shapes are checked against the manifest."""
    manifest = Manifest.read(export_dir)
    path = Path(export_dir) / FILENAME
    if precision not in manifest.models:
        raise BundleError(f"{path}: no {precision!r} model (has {sorted(manifest.models)})")
    file, spec, stream = Path(export_dir) / manifest.models[precision], manifest.features, manifest.stream
    if stream is None:
        model = TFLiteModel(file, backend=backend)
    else:
        model = TFLiteStreamModel(
            file,
            frames_per_step=stream.frames_per_step,
            head_frames=stream.head_frames,
            warmup_frames=stream.warmup_frames,
            backend=backend,
        )
    expected = (1, spec.window_frames if stream is None else stream.frames_in, spec.n_mels)
    if model.input_shape != expected:
        raise BundleError(
            f"{model.path}: input shape {list(model.input_shape)} does not match the manifest's features "
            f"({list(expected)}: {spec.clip_seconds} s of {spec.n_mels} mels)"
        )
    if model.output_shape[-1] != len(manifest.labels):
        raise BundleError(f"{model.path}: {model.output_shape[-1]} outputs but {len(manifest.labels)} labels in {path}")
    return model, manifest


def save_thresholds(export_dir: str | Path, thresholds: Thresholds) -> None:
    """Store the detector thresholds in the export's manifest, where `asr demo` and `KeywordSpotter` look, and in
    its microcontroller bundle's detector_config.h where `asr export --mcu` wrote one."""
    manifest = Manifest.read(export_dir).with_thresholds(thresholds)
    manifest.write(export_dir)
    config = Path(export_dir) / MCU_DIR / "detector_config.h"
    if config.is_file():
        write_text_atomic(config, manifest.detector_config_h())
