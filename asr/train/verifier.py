"""`asr verifier EXPORT_DIR --data COMMANDS [--speech data/real]`: train the Pi-side second opinion of an export.

The verifier (asr.runtime.verifier) hears a detection through Google's speech_embedding, which learnt from real
speech, and a small head trained here. The head learns the export's labels from the keyword corpus (each keyword
clip clean and once in noise, as training mixes it) and, with --speech, learns real human speech as `_unknown_`:
crops of a LibriSpeech-layout split (`asr data real-speech`: other speakers than the test split). Those real
negatives are what the spotter's own training lacks (BENCHMARKS.md 3c). For each keyword it also learns the
word's near-misses (asr.data.near_misses: a consonant away, "marvis", "barvin"; none that sounds like another
keyword) as `_unknown_` against the word's own readings, both said by the corpus's Kokoro training voices: the
false accepts that pass a head without them are words that sound like a keyword.

The embeddings are computed once and cached in --work (atomically; a killed run starts again from the cache).
The verifier is written into EXPORT_DIR/verifier at the end, all of it or nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from asr.data import kokoro, render
from asr.data.librispeech import LibriSpeech
from asr.data.near_misses import near_misses, segments, skeleton, variants
from asr.data.recipe import Speaker, load_recipe
from asr.data.speech_commands import SpeechCommands
from asr.data.synth import KOKORO_CACHE, rng_for, training_voices, utterance
from asr.errors import InputError
from asr.files import write_text_atomic
from asr.runtime.bundle import Manifest
from asr.runtime.verifier import (
    CONFIG_FILE,
    EMBEDDING_FILES,
    HEAD_FILE,
    VERIFIER_DIR,
    SpeechEmbedding,
    VerifierConfig,
    VerifierError,
    head_logits,
)

EMBEDDING_HOME = Path(sys.prefix) / "speech_embedding"
EMBEDDING_SOURCE = (
    "Google speech_embedding (openWakeWord's front end), Apache-2.0: the TFLite files of PyPI pyopen-wakeword 1.1.0"
)
EMBEDDING_LICENSE = "LICENSE"  # written by tools/speech_embedding/install.sh beside the models
CROP_S = 1.28  # a 1 s clip with room to move; 7 embeddings
DELAY_S = 0.3  # the spotter fires 0.4-0.5 s after a word starts, before it ends (BENCHMARKS.md 3c)
THRESHOLD = 0.5
FLOOR_DBFS = -70.0  # a real microphone is never digitally silent
NOISE_SNR_DB = (5.0, 20.0)
HIDDEN, EPOCHS, BATCH = 256, 30, 256
NEAR_MISS_CLIPS = 600  # of 300 near-miss phone strings of the wake word, each said twice
WAKE_CLIPS = 240  # the wake word's own readings, said by the same voices
KEYWORD_CLIPS = 168  # of each other keyword, in the same ratio: 60 near-misses said twice, 48 of its readings


class Examples:
    """Embeddings of the head's training (or validation) examples."""

    def __init__(self, embedding: SpeechEmbedding, crop_samples: int, rng: np.random.Generator) -> None:
        self.embedding, self.crop_samples, self.rng = embedding, crop_samples, rng
        self.x: list[np.ndarray] = []
        self.y: list[int] = []

    def add(self, audio: np.ndarray, label: int, noise: np.ndarray | None = None) -> None:
        """`audio` (up to a crop) at a random place in the crop, over a faint floor, and in `noise` if given."""
        n = self.crop_samples
        crop = 10 ** (FLOOR_DBFS / 20) * self.rng.standard_normal(n).astype(np.float32)
        offset = int(self.rng.integers(0, n - len(audio) + 1))
        crop[offset : offset + len(audio)] += audio
        if noise is not None:
            start = int(self.rng.integers(0, len(noise) - n + 1))
            piece = noise[start : start + n]
            snr = self.rng.uniform(*NOISE_SNR_DB)
            gain = np.sqrt((np.mean(audio**2) + 1e-9) / (np.mean(piece**2) + 1e-9) / 10 ** (snr / 10))
            crop += gain * piece
        self.x.append(self.embedding.embed(crop))
        self.y.append(label)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.stack(self.x).astype(np.float32), np.array(self.y, dtype=np.int64)


def corpus_examples(
    embedding: SpeechEmbedding, data: Path, split: str, keywords: list[str], crop_samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """The keyword corpus's `split`: every clip once, and (training) every keyword clip again in noise."""
    corpus = SpeechCommands(data, split, keywords)
    random.seed(0)  # SpeechCommands draws its training `_silence_` crops from Python's random: the same ones each run
    noises = corpus.background_noise(crop_samples)
    examples = Examples(embedding, crop_samples, np.random.default_rng(len(split)))
    for i in tqdm(range(len(corpus)), desc=f"verifier: {split} clips", unit="clip"):
        clip, label = corpus[i]
        examples.add(clip, label)
        if split == "train" and label >= 2 and noises:
            examples.add(clip, label, noises[int(examples.rng.integers(len(noises)))])
    return examples.arrays()


def speech_examples(
    embedding: SpeechEmbedding, root: Path, split: str, crop_samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """Crops of real speech, every half crop, labelled `_unknown_` (index 1)."""
    speech = LibriSpeech(root, split)
    examples = Examples(embedding, crop_samples, np.random.default_rng(7))
    for i in tqdm(range(len(speech)), desc=f"verifier: {root}/{split}", unit="utt"):
        audio = np.asarray(speech[i][0], dtype=np.float32)
        starts = range(0, max(1, len(audio) - crop_samples + 1), crop_samples // 2)
        for start in starts:
            examples.add(audio[start : start + crop_samples], 1)
    return examples.arrays()


def _say(args: tuple[Speaker, list[str], Path]) -> list[np.ndarray]:
    """Worker: one Kokoro voice saying each phone string, with the recipe's prosody for that voice and string."""
    speaker, phones, cache = args
    recipe = load_recipe()
    said = []
    for n, p in enumerate(phones):
        drawn = utterance(recipe, speaker, p, rng_for(0, "near-miss", speaker.voice, p, n))
        said.append(replace(drawn, text=p, phonemes=True))  # Kokoro's prosody draws, the phones as they are
    return kokoro.synthesize(speaker.voice, said, cache)


def near_miss_examples(
    embedding: SpeechEmbedding, data: Path, words: list[str], labels: list[str], crop_samples: int, clips: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each of `words`' near-misses (`_unknown_`) and its own readings (the word), `clips` a word in the ratio
    NEAR_MISS_CLIPS : WAKE_CLIPS, said in turn by the corpus's Kokoro training voices (the default recipe's for a
    corpus without them); each heard clean and once in the corpus's background noise. No near-miss has the
    skeleton of another keyword among `labels`."""
    kokoro.check_installed()  # only Kokoro speaks phones as they are written
    recipe = load_recipe()
    voices = [v for v in training_voices(data) if v.engine == "kokoro"]
    voices = voices or [v for v in recipe.scale("default").speakers if v.engine == "kokoro" and v.split == "train"]
    keywords = [label for label in labels if not label.startswith("_")]
    noises = SpeechCommands(data, "train", keywords).background_noise(crop_samples)
    skeletons = {k: {skeleton(segments(r)) for r in kokoro.readings(k)} for k in keywords}

    def one(word: str) -> tuple[np.ndarray, np.ndarray]:
        readings = kokoro.readings(word)
        avoid = frozenset().union(*(s for k, s in skeletons.items() if k != word))
        misses = round(clips * NEAR_MISS_CLIPS / (NEAR_MISS_CLIPS + WAKE_CLIPS))
        strings = near_misses(readings, max(1, misses // 2), np.random.default_rng(0), avoid)
        own = [v for r in readings for v in variants(r)]
        jobs = [(strings[i % len(strings)], 1) for i in range(misses)]
        jobs += [(own[i % len(own)], labels.index(word)) for i in range(clips - misses)]
        jobs = [jobs[i] for i in np.random.default_rng(1).permutation(len(jobs))]  # a string's clips: other voices
        turns = [jobs[k :: len(voices)] for k in range(len(voices))]  # voice k says jobs k, k + voices, ...
        work = [(v, [p for p, _ in t], data.parent / KOKORO_CACHE) for v, t in zip(voices, turns, strict=True)]
        with ProcessPoolExecutor(2) as pool:
            said = list(tqdm(pool.map(_say, work), total=len(work), desc=f"verifier: {word!r} and near-misses"))
        examples = Examples(embedding, crop_samples, np.random.default_rng(11))
        for k, (turn, audio) in enumerate(zip(turns, said, strict=True)):
            for n, ((_, label), raw) in enumerate(zip(turn, audio, strict=True)):
                level = rng_for(0, "near-miss level", k, n)
                clip = render.level(render.trim(raw)[:crop_samples], level, recipe.variation)
                examples.add(clip, label)
                if noises:
                    examples.add(clip, label, noises[int(examples.rng.integers(len(noises)))])
        return examples.arrays()

    parts = [one(word) for word in words]
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


def cached(path: Path, key: str, make) -> tuple[np.ndarray, np.ndarray]:
    """`make()`'s (x, y), kept in `path` under `key`: a rerun (after a kill, or for another seed) reuses it."""
    if path.is_file():
        with np.load(path) as f:
            if str(f["key"]) == key:
                return f["x"], f["y"]
    x, y = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, x=x, y=y, key=key)
    tmp.replace(path)
    return x, y


def train_head(
    x: np.ndarray, y: np.ndarray, num_labels: int, seed: int, desc: str = "verifier: head"
) -> dict[str, np.ndarray]:
    """A two-layer MLP on the flattened embeddings, standardised per feature (asr.runtime.verifier runs it)."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # sums in one order: the same head on every run (it trains in seconds)
    flat = x.reshape(len(x), -1)
    mean, std = flat.mean(0), flat.std(0) + 1e-6
    inputs = torch.tensor((flat - mean) / std, dtype=torch.float32)
    targets = torch.tensor(y)
    layers = [torch.nn.Linear(flat.shape[1], HIDDEN), torch.nn.ReLU(), torch.nn.Dropout(0.3)]
    net = torch.nn.Sequential(*layers, torch.nn.Linear(HIDDEN, num_labels))
    optimizer = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-2)
    for _ in tqdm(range(EPOCHS), desc=desc, unit="epoch"):
        net.train()
        for batch in torch.randperm(len(inputs)).split(BATCH):
            loss = torch.nn.functional.cross_entropy(net(inputs[batch]), targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    first, last = net[0], net[3]
    return {
        "mean": mean.astype(np.float32),
        "std": std.astype(np.float32),
        "w1": first.weight.detach().numpy().T.copy(),
        "b1": first.bias.detach().numpy().copy(),
        "w2": last.weight.detach().numpy().T.copy(),
        "b2": last.bias.detach().numpy().copy(),
    }


def train_verifier(
    export_dir: Path,
    data: Path,
    *,
    speech: Path | None = None,
    speech_split: str = "train-clean-100",
    work: Path = Path("runs/verifier"),
    embedding_home: Path = EMBEDDING_HOME,
    seed: int = 0,
    wake_clips: int = NEAR_MISS_CLIPS + WAKE_CLIPS,
    keyword_clips: int = KEYWORD_CLIPS,
) -> dict:
    """Train the head and write EXPORT_DIR/verifier; returns what it measured. The embeddings do not depend on
    `seed` (the head's), so a second seed reuses the cache."""
    manifest = Manifest.read(export_dir)
    if manifest.output_kind == "log_probs":
        raise InputError(f"{export_dir}: a CTC export; the verifier checks a keyword model's detections")
    embedding = SpeechEmbedding(embedding_home)
    rate = manifest.features.sample_rate
    crop = round(CROP_S * rate)
    digest = hashlib.sha256(json.dumps([manifest.labels, crop]).encode()).hexdigest()[:12]

    def corpus(split: str) -> tuple[np.ndarray, np.ndarray]:
        key = f"{data.resolve()}|{split}|{digest}"
        return cached(
            work / f"{split}.npz", key, lambda: corpus_examples(embedding, data, split, manifest.keywords, crop)
        )

    x, y = corpus("train")
    real = 0
    if speech is not None:
        key = f"{speech.resolve()}|{speech_split}|{crop}"
        sx, sy = cached(work / "speech.npz", key, lambda: speech_examples(embedding, speech, speech_split, crop))
        x, y, real = np.concatenate([x, sx]), np.concatenate([y, sy]), len(sy)
    near = 0
    if manifest.wake_word is not None and wake_clips > 0:
        key = f"{data.resolve()}|{manifest.wake_word}|{wake_clips}|{digest}"

        def said() -> tuple[np.ndarray, np.ndarray]:
            return near_miss_examples(embedding, data, [manifest.wake_word], manifest.labels, crop, wake_clips)

        wx, wy = cached(work / "wake.npz", key, said)
        x, y, near = np.concatenate([x, wx]), np.concatenate([y, wy]), len(wy)
    commands = [k for k in manifest.keywords if k != manifest.wake_word]
    if commands and keyword_clips > 0:
        key = f"{data.resolve()}|{commands}|{keyword_clips}|{digest}"

        def each() -> tuple[np.ndarray, np.ndarray]:
            return near_miss_examples(embedding, data, commands, manifest.labels, crop, keyword_clips)

        kx, ky = cached(work / "keywords.npz", key, each)
        x, y, near = np.concatenate([x, kx]), np.concatenate([y, ky]), near + len(ky)
    head = train_head(x, y, len(manifest.labels), seed)
    vx, vy = corpus("validation")
    config = VerifierConfig(manifest.labels, crop, DELAY_S, THRESHOLD, rate, EMBEDDING_SOURCE)
    report = {
        "training_examples": len(y),
        "real_speech_examples": real,
        "near_miss_examples": near,
        "validation_accuracy": float((head_logits(head, vx).argmax(1) == vy).mean()),
    }
    write_verifier(export_dir, embedding_home, head, config)
    return report


def write_verifier(export_dir: Path, embedding_home: Path, head: dict, config: VerifierConfig) -> Path:
    """EXPORT_DIR/verifier, replaced whole: a half-written verifier never exists."""
    return write_head_dir(export_dir / VERIFIER_DIR, embedding_home, head, CONFIG_FILE, config.__dict__)


def write_head_dir(out: Path, embedding_home: Path, head: dict, config_file: str, config: dict) -> Path:
    """A head on the speech embedding, with the embedding's models and licence, as directory `out`, replaced whole."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; an export directory is meant to be shared (as asr export's)
    try:
        for name in (*EMBEDDING_FILES, EMBEDDING_LICENSE):  # Apache-2.0 asks for its licence beside the models
            shutil.copyfile(embedding_home / name, tmp / name)
        np.savez(tmp / HEAD_FILE, **head)
        write_text_atomic(tmp / config_file, json.dumps(config, indent=1) + "\n")
        if out.exists():
            shutil.rmtree(out)
        tmp.replace(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("export_dir", type=Path, metavar="EXPORT_DIR", help="a keyword model's export directory")
    parser.add_argument("--data", type=Path, required=True, help="the keyword corpus it was trained on")
    parser.add_argument("--speech", type=Path, help="real speech as negatives: a LibriSpeech-layout tree")
    parser.add_argument("--speech-split", default="train-clean-100", help="its split to use (never the test one)")
    parser.add_argument("--work", type=Path, default=Path("runs/verifier"), help="the embeddings' cache")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--wake-clips",
        type=int,
        default=NEAR_MISS_CLIPS + WAKE_CLIPS,
        help="Kokoro clips of the wake word's near-misses and of the word itself (0: none)",
    )
    parser.add_argument(
        "--keyword-clips",
        type=int,
        default=KEYWORD_CLIPS,
        help="the same for each other keyword (0: none)",
    )


def run(args: argparse.Namespace) -> int:
    if not (EMBEDDING_HOME / EMBEDDING_FILES[0]).is_file():
        raise VerifierError(f"{EMBEDDING_HOME}: the speech embedding is not set up; run tools/setup.sh")
    report = train_verifier(
        args.export_dir,
        args.data,
        speech=args.speech,
        speech_split=args.speech_split,
        work=args.work,
        seed=args.seed,
        wake_clips=args.wake_clips,
        keyword_clips=args.keyword_clips,
    )
    print(
        f"verifier: {report['training_examples']} training examples ({report['real_speech_examples']} of real "
        f"speech, {report['near_miss_examples']} of the keywords and their near-misses), validation accuracy "
        f"{report['validation_accuracy']:.3f}; written to "
        f"{args.export_dir / VERIFIER_DIR} (asr demo and asr eval-stream use it; --no-verify to leave it out)"
    )
    return 0
