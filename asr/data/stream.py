"""`asr data stream`: a long labelled test recording for `asr eval-stream` (stream.wav + events.csv).

Keywords come from a Speech-Commands-layout corpus's held-out voices (its testing list), laid over its
background noise at varied levels and SNRs, with unknown words and, when a LibriSpeech-layout corpus is
given, stretches of background speech between them as negatives. The same seed gives the same files.

    asr data stream --commands data/generated/commands --sentences data/generated/sentences \
        --minutes 10 --out-dir artifacts/stream
"""

from __future__ import annotations

import argparse
import csv
import io
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from asr.audio import read_audio, write_audio
from asr.config import DataConfig
from asr.data.speech_commands import SpeechCommands
from asr.errors import MissingError
from asr.features import DEFAULT_SPEC, FeatureSpec

FRAME_S = 0.01  # for finding where the speech in a clip starts and ends


def speech_span(clip: np.ndarray, frame: int, floor_db: float = -30.0) -> tuple[int, int]:
    """(first, last) sample of the `frame`-long frames within `floor_db` of the clip's loudest frame."""
    n = max(1, len(clip) // frame)
    rms = np.sqrt(np.mean(clip[: n * frame].reshape(n, -1) ** 2, axis=1) + 1e-12)
    active = np.flatnonzero(20 * np.log10(rms / rms.max()) > floor_db)
    return int(active[0] * frame), int((active[-1] + 1) * frame)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def pick(paths: list[Path], rng: np.random.Generator) -> Path:
    return paths[int(rng.integers(len(paths)))]


def noise_bed(
    noises: list[np.ndarray], length: int, rate: int, rng: np.random.Generator, level_db: tuple[float, float]
) -> np.ndarray:
    """Background noise of `length` samples: random stretches of the noise clips, each at a random level."""
    bed = np.zeros(length, dtype=np.float32)
    pos = 0
    while pos < length:
        noise = noises[rng.integers(len(noises))]
        n = min(length - pos, len(noise), int(rng.uniform(5, 20) * rate))
        start = rng.integers(0, len(noise) - n + 1)
        piece = noise[start : start + n]
        bed[pos : pos + n] = piece / rms(piece) * 10 ** (rng.uniform(*level_db) / 20)
        pos += n
    return bed


def make_stream(
    commands_root: Path,
    keywords: list[str],
    *,
    minutes: float,
    seed: int = 0,
    split: str = "testing",
    sentences_root: Path | None = None,
    keyword_share: float = 0.5,
    snr_db: tuple[float, float] = (5.0, 25.0),
    noise_db: tuple[float, float] = (-45.0, -30.0),
    gap_s: tuple[float, float] = (1.0, 4.0),
    spec: FeatureSpec = DEFAULT_SPEC,
) -> tuple[np.ndarray, list[tuple[float, str, float]]]:
    """(stream audio, events as (onset_s, label, offset_s)); unknown words are labelled `_unknown_` and
    background speech `_speech_`, both negatives for eval-stream."""
    rng = np.random.default_rng(seed)
    corpus = SpeechCommands(commands_root, split, keywords, spec=spec)
    rate = spec.sample_rate
    noises = [n for n in corpus.background_noise() if len(n) > rate]
    if not noises:
        raise MissingError(f"{commands_root}: no _background_noise_ clips longer than 1 s to build a stream on")
    by_label: dict[str, list[Path]] = {}
    for path, label in sorted(corpus.items, key=lambda item: str(item[0])):
        by_label.setdefault(corpus.labels[label], []).append(Path(path))
    missing = [k for k in keywords if k not in by_label]
    if missing:
        raise MissingError(f"{commands_root}: no {split}-split clips of keyword(s) {missing}")
    sentences = None
    if sentences_root is not None:
        from asr.data.librispeech import LibriSpeech
        from asr.data.synth import LIBRISPEECH_SPLITS

        # The sentences of the same split's voices: a validation stream holds no test voice.
        sentences = LibriSpeech(sentences_root, LIBRISPEECH_SPLITS[split], spec.sample_rate)

    length = int(minutes * 60 * rate)
    stream = noise_bed(noises, length, rate, rng, noise_db)
    events = []
    kinds = ["keyword"] + (["_unknown_"] if "_unknown_" in by_label else []) + (["_speech_"] if sentences else [])
    shares = [keyword_share] + [(1 - keyword_share) / (len(kinds) - 1)] * (len(kinds) - 1) if len(kinds) > 1 else [1.0]
    order: list[str] = []
    pos = int(rng.uniform(*gap_s) * rate)
    with tqdm(total=length, unit="sample", unit_scale=True, desc="stream", leave=False) as bar:
        while True:
            kind = kinds[rng.choice(len(kinds), p=shares)]
            if kind == "keyword":
                if not order:  # every keyword once per round, in a random order: balanced counts
                    order = list(rng.permutation(keywords))
                label = str(order.pop())
                clip = read_audio(pick(by_label[label], rng), rate)
            elif kind == "_unknown_":
                label, clip = kind, read_audio(pick(by_label[kind], rng), rate)
            else:
                label, clip = kind, sentences[int(rng.integers(len(sentences)))][0][: 4 * rate]
            if pos + len(clip) > length:
                break
            first, last = speech_span(clip, round(FRAME_S * rate))
            local_noise = rms(stream[pos + first : pos + last])
            gain = local_noise * 10 ** (rng.uniform(*snr_db) / 20) / rms(clip[first:last])
            stream[pos : pos + len(clip)] += gain * clip
            events.append((round((pos + first) / rate, 3), label, round((pos + last) / rate, 3)))
            step = len(clip) + int(rng.uniform(*gap_s) * rate)
            bar.update(min(step, length - pos))
            pos += step
    peak = float(np.abs(stream).max())
    if peak > 0.99:  # scale the whole stream, not clip: SNRs stay as drawn
        stream *= 0.99 / peak
    return stream, events


def write_events(path: Path, events: list[tuple[float, str, float]]) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["onset_s", "label", "offset_s"])
    writer.writerows(events)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(text.getvalue())
    os.replace(tmp, path)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--commands", type=Path, default=Path("data/generated/commands"), help="Speech Commands root")
    parser.add_argument("--sentences", type=Path, help="LibriSpeech-layout root: background speech (of the same split)")
    parser.add_argument("--keywords", nargs="+", default=DataConfig().keywords)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="testing", help="corpus split to draw words from (held-out voices)")
    parser.add_argument("--keyword-share", type=float, default=0.5, help="share of events that are keywords")
    parser.add_argument("--snr-db", type=float, nargs=2, default=(5.0, 25.0), metavar=("LOW", "HIGH"))
    parser.add_argument("--out-dir", type=Path, default=Path("artifacts/stream"))


def run(args: argparse.Namespace) -> int:
    stream, events = make_stream(
        args.commands,
        args.keywords,
        minutes=args.minutes,
        seed=args.seed,
        split=args.split,
        sentences_root=args.sentences,
        keyword_share=args.keyword_share,
        snr_db=tuple(args.snr_db),
    )
    rate = DEFAULT_SPEC.sample_rate  # make_stream's
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_audio(args.out_dir / "stream.wav", stream, rate)
    write_events(args.out_dir / "events.csv", events)
    n_keywords = sum(label in args.keywords for _, label, _ in events)
    print(
        f"{args.out_dir}/stream.wav: {len(stream) / rate / 60:.1f} min, {n_keywords} keyword events, "
        f"{len(events) - n_keywords} negative events; {args.out_dir}/events.csv"
    )
    return 0
