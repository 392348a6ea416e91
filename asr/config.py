"""Typed experiment configs, read from TOML files (stdlib `tomllib`: a safe loader, no code execution).

A config names its task (`kws`: keyword classifier on 1-second windows; `ctc`: sentence recognition), the
corpus, the model (with its sharing plan), training and export settings. Unknown keys and impossible
settings are errors raised here, before any work starts. Built-in configs live in `asr/configs/` and can
be named without a path (`asr train kws-tiny`).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from asr.errors import InputError
from asr.features import FeatureSpec

BUILTIN_DIR = Path(__file__).parent / "configs"


class ConfigError(InputError):
    """A config file that cannot be used; the message names the file and the key."""


@dataclass
class DataConfig:
    root: str = "data/generated/commands"
    keywords: list[str] = field(
        default_factory=lambda: ["marvin", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
    )
    wake_word: str = "marvin"  # the keyword `asr demo --wake-then-command` waits for; recorded in the export
    train_split: str = "train-clean-100"  # LibriSpeech-layout split names (sentences corpus, speech_root)
    speech_root: str = ""  # keyword task: a LibriSpeech-layout corpus whose train_split gives background speech
    dev_split: str = "dev-clean"
    test_split: str = "test-clean"
    silence_fraction: float = 0.1  # share of `_silence_` examples, drawn from background noise
    unknown_fraction: float = 1.0  # share of each unknown word's training clips kept (1.0: all; eval keeps all)
    tokenizer_vocab: int = 128  # sentencepiece vocabulary size (ctc task)
    units: str = "pieces"  # what a CTC model writes: "pieces" (sentencepiece) or "phones" (espeak-ng, asr.text.PHONES)


@dataclass
class ModelConfig:
    arch: str = "conformer"  # "conformer" or "dscnn" (the microcontroller CNN baseline)
    d_model: int = 64
    n_heads: int = 4
    ffn_dim: int = 128
    kernel_size: int = 15
    depth: int = 4  # N: layers computed
    unique_blocks: int = 1  # M: layers stored
    sharing: str = "all"  # "none", "all", "cycle" (ABAB..), "sequence" (AABB..)
    per_depth_norm: bool = False  # relaxation: each depth keeps its own normalisation
    lora_rank: int = 0  # relaxation: per-depth low-rank adapters on the shared projections (0 = off)
    dropout: float = 0.1
    subsampling: int = 4  # time reduction of the convolutional front (2 or 4)
    subsampling_channels: int = 16  # channels of the two subsampling convolutions (small: they are stored once)
    causal: bool = False  # every encoder frame hears only itself and earlier frames: what a streaming model needs
    head_frames: int = 0  # keyword head: the mean of the last N encoder frames (0: all of them)


@dataclass
class TrainConfig:
    steps: int = 3000
    batch_size: int = 64
    lr: float = 2e-3
    warmup_steps: int = 200
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    label_smoothing: float = 0.05
    spell_ctc: float = 0.0  # keyword task: weight of an auxiliary CTC loss that spells the spoken word (0 = off)
    speech_negatives: float = 0.0  # keyword task: share of examples that are 1 s of background speech, unknown
    ctc_units: str = "letters"  # what that loss spells: "letters" or "phones" (espeak-ng US English phonemes)
    spec_time_mask: int = 10  # max frames per SpecAugment time mask
    spec_freq_mask: int = 6  # max bins per SpecAugment frequency mask
    noise_prob: float = 0.8  # probability of mixing background noise into a training example
    snr_db: tuple[float, float] = (5.0, 25.0)
    speed_perturb: tuple[float, float] = (0.85, 1.15)
    eq_prob: float = 0.0  # probability of a random channel: spectral tilt, resonances, band limit
    reverb_prob: float = 0.0  # probability of a simulated room (RT60 0.1-0.7 s)
    vtlp: tuple[float, float] = (1.0, 1.0)  # vocal-tract-length warp of the mel axis (formants x factor)
    silence_pad_s: float = 0.0  # CTC task: up to this much digital silence after each utterance (see SentenceBatches)
    eval_every: int = 500
    checkpoint_every: int = 200
    num_workers: int = 1
    seed: int = 0


@dataclass
class ExportConfig:
    calibration_samples: int = 200  # training-split windows used to calibrate int8
    parity_samples: int = 50
    arena_margin: float = 0.1  # safety margin added to the measured TFLite Micro arena


@dataclass
class Config:
    name: str = "custom"
    task: str = "kws"  # "kws" or "ctc"
    features: FeatureSpec = field(default_factory=FeatureSpec)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        m = self.model
        _check(self.task in ("kws", "ctc"), f"task must be 'kws' or 'ctc', not {self.task!r}")
        if self.task == "kws":
            _check(
                self.data.wake_word in self.data.keywords, f"data.wake_word {self.data.wake_word!r} is not a keyword"
            )
        _check(m.arch in ("conformer", "dscnn"), f"model.arch {m.arch!r} is unknown")
        _check(m.sharing in ("none", "all", "cycle", "sequence"), f"model.sharing {m.sharing!r} is unknown")
        _check(m.depth >= 1, "model.depth must be >= 1")
        if m.sharing == "none":
            _check(m.unique_blocks in (m.depth, 1), "model.sharing 'none' stores one block per depth")
        elif m.sharing == "all":
            _check(m.unique_blocks == 1, "model.sharing 'all' needs model.unique_blocks = 1")
        else:
            _check(
                1 <= m.unique_blocks <= m.depth and m.depth % m.unique_blocks == 0,
                f"model.sharing {m.sharing!r}: unique_blocks M={m.unique_blocks} must divide depth N={m.depth}",
            )
        _check(m.d_model % m.n_heads == 0, f"model.d_model {m.d_model} must be divisible by n_heads {m.n_heads}")
        _check(m.kernel_size % 2 == 1, "model.kernel_size must be odd")
        _check(m.head_frames >= 0, f"model.head_frames must be >= 0, not {m.head_frames}")
        _check(not m.causal or self.task == "kws", "model.causal is for the keyword task (a streaming detector)")
        _check(
            not m.causal or m.head_frames > 0,
            "model.causal needs model.head_frames > 0: in a stream the window's first frames have heard the audio "
            "before it, which no training clip showed them, so the head reads the last frames only (BENCHMARKS.md 7)",
        )
        _check(m.subsampling in (2, 4), "model.subsampling must be 2 or 4")
        _check(m.lora_rank >= 0, "model.lora_rank must be >= 0")
        if self.train.spell_ctc:
            _check(self.task == "kws" and m.arch == "conformer", "train.spell_ctc needs task 'kws' and a conformer")
        if self.train.speech_negatives:
            _check(bool(self.data.speech_root), "train.speech_negatives needs data.speech_root (a sentences corpus)")
        _check(self.train.ctc_units in ("letters", "phones"), "train.ctc_units must be 'letters' or 'phones'")
        _check(self.train.silence_pad_s >= 0, "train.silence_pad_s must be >= 0")
        _check(self.data.units in ("pieces", "phones"), "data.units must be 'pieces' or 'phones'")
        _check(self.train.steps > 0 and self.train.batch_size > 0, "train.steps and train.batch_size must be > 0")
        _check(self.export.calibration_samples > 0, "export.calibration_samples must be > 0")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _build(cls, values: dict, where: str):
    """Instantiate dataclass `cls` from `values`, recursing into nested dataclasses; unknown keys are errors."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(fields)}")
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls(), name) if name in fields else None
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}.{name} must be a table")
            kwargs[name] = _build(type(default), value, f"{where}.{name}")
        elif isinstance(default, tuple):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def resolve_path(name_or_path: str | Path) -> Path:
    """A config file path, or the name of a built-in config (`kws-tiny`)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    builtin = BUILTIN_DIR / f"{name_or_path}.toml"
    if builtin.is_file():
        return builtin
    names = sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))
    raise ConfigError(f"{name_or_path}: no such config file or built-in config (built-in: {names})")


def from_dict(values: dict, where: str = "config") -> Config:
    config = _build(Config, values, where)
    try:
        config.validate()
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    return config


def load_config(name_or_path: str | Path, overrides: dict | None = None) -> Config:
    """Read and validate a config; `overrides` maps dotted keys (`model.depth`) to values."""
    path = resolve_path(name_or_path)
    values = _read_values(path)
    values.setdefault("name", path.stem)
    for dotted, value in (overrides or {}).items():
        *parents, leaf = dotted.split(".")
        node = values
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return from_dict(values, str(path))


def _read_values(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """The TOML tables of `path`, on top of those of the config it `extends` (another file or a built-in name)."""
    if path in seen:
        raise ConfigError(f"{path}: `extends` loops back to itself ({' -> '.join(map(str, seen))})")
    try:
        values = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    parent = values.pop("extends", None)
    if parent is None:
        return values
    base = resolve_path(parent if "/" not in parent else path.parent / parent)
    return _merge(_read_values(base, (*seen, path)), values)


def _merge(base: dict, child: dict) -> dict:
    merged = dict(base)
    for key, value in child.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged
