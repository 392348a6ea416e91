"""`asr phrases EXPORT_DIR --keyword PHRASE ...`: set up wake words and commands defined by text, for the Pi.

openWakeWord's recipe for a custom word, with this project's synthesizers: each phrase is spoken by every training
voice of the corpus recipe (espeak-ng, flite, festival, RHVoice and, when installed, Kokoro), each clip is heard
clean and in noise through Google's speech_embedding (it learnt from real speech), and a small head learns the
phrases against everything else the corpora say: every training word (the phrase's own word excepted), crops of
the training sentences and, with --speech, real human speech. The test voices never speak at set-up.

With --speech each phrase also gets its own threshold: the lowest (from DEFAULT_THRESHOLD up) at which it fires at
most TARGET_FA_PER_HOUR on real speakers its head never heard. The real speakers are split in FOLDS; a head learns
all but one fold and scores that one, hop by hop, as the listener would hear it; the head written learns them all.

The head and its settings go to EXPORT_DIR/phrases (asr.runtime.phrase_listener reads them), all of it or nothing.
The negatives' embeddings are cached in --work per crop length, the real speech's once (atomically): another phrase
of a length set up before takes about 2.5 minutes with --speech (BENCHMARKS.md section 8).
"""

from __future__ import annotations

import argparse
import json
import random
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from asr.data import kokoro, render
from asr.data.librispeech import LibriSpeech, play_utterances
from asr.data.recipe import Speaker, load_recipe
from asr.data.speech_commands import SpeechCommands
from asr.data.synth import KOKORO_CACHE, rng_for, speak, training_voices, utterance
from asr.errors import InputError
from asr.runtime.bundle import Manifest
from asr.runtime.phrase_listener import (
    HOP,
    PHRASES_CONFIG,
    PHRASES_DIR,
    EmbeddingStream,
    PhrasesConfig,
    log_odds,
)
from asr.runtime.phrases import phrase_key
from asr.runtime.verifier import SpeechEmbedding, head_logits
from asr.train.verifier import (
    EMBEDDING_HOME,
    EMBEDDING_SOURCE,
    Examples,
    cached,
    train_head,
    write_head_dir,
)

CLIPS_PER_VOICE = 4  # each in its own prosody (speed, pitch)
NOISY_COPIES = 2  # each phrase clip is also heard this many times in noise
MIN_CROP_S = 1.28  # 7 embeddings; a longer phrase gets a longer crop
MARGIN_S = 0.3
DEFAULT_THRESHOLD = 8.0  # log-odds, chosen on the validation stream (BENCHMARKS.md section 8)
REFRACTORY_S = 1.0
# With --speech each phrase's threshold is raised until it fires at most this often on real speakers its head never
# heard (openWakeWord's goal): FOLDS heads, each learning the other folds' speakers, score the held-out ones.
TARGET_FA_PER_HOUR = 0.5
FOLDS = 3
THRESHOLD_STEP, MAX_THRESHOLD = 0.25, 40.0
SPEECH_SPLIT = "train-clean-100"  # `asr data real-speech`: other speakers than the test split
SILENCE, UNKNOWN = "_silence_", "_unknown_"


def _speak(args: tuple[Speaker, str, int, int, Path]) -> list[np.ndarray]:
    """Worker: raw audio of one voice saying `phrase` `clips` times, each with its own prosody."""
    speaker, phrase, clips, seed, kokoro_cache = args
    recipe = load_recipe()
    utterances = [
        utterance(recipe, speaker, recipe.text_for(speaker, phrase), rng_for(seed, "phrase", phrase, speaker.key, n))
        for n in range(clips)
    ]
    if speaker.engine == "kokoro":
        return kokoro.synthesize(speaker.voice, utterances, kokoro_cache)
    return speak(speaker, utterances, recipe.apt_package(speaker.engine))


def synthesize_phrase(phrase: str, voices: list[Speaker], seed: int, kokoro_cache: Path) -> list[np.ndarray]:
    """The phrase said by every voice (trimmed raw audio, 16 kHz), using both cores."""
    jobs = [(v, phrase, CLIPS_PER_VOICE, seed, kokoro_cache) for v in voices]
    with ProcessPoolExecutor(2) as pool:
        said = list(tqdm(pool.map(_speak, jobs), total=len(jobs), desc=f"phrases: saying {phrase!r}", unit="voice"))
    return [render.trim(a) for clips in said for a in clips]


def crop_samples(clips: list[np.ndarray], rate: int) -> int:
    """A crop that holds 95% of the phrase clips whole with a margin, in whole hops (at least MIN_CROP_S)."""
    longest = np.percentile([len(c) for c in clips], 95) / rate + MARGIN_S
    hops = int(np.ceil(max(MIN_CROP_S, longest) * rate / HOP))
    return hops * HOP


def negative_examples(
    embedding: SpeechEmbedding, corpus: SpeechCommands, noises: list[np.ndarray], sentences: Path, crop: int
) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, word) of what is no phrase: every clip of the keyword corpus's training split (its word, or
    `_silence_`) and crops of the training sentences every half crop, each also once in `noises`."""
    random.seed(0)  # SpeechCommands draws its training `_silence_` crops from Python's random: the same ones each run
    examples = Examples(embedding, crop, np.random.default_rng(3))
    words = []
    for i in tqdm(range(len(corpus)), desc="phrases: negatives, words", unit="clip"):
        clip, label = corpus[i]
        word = SILENCE if label == 0 else Path(corpus.items[i][0]).parent.name
        for noise in (None, noises[int(examples.rng.integers(len(noises)))]):
            examples.add(clip, 0, noise)
            words.append(word)
    speech = LibriSpeech(sentences, "train-clean-100")
    for i in tqdm(range(len(speech)), desc="phrases: negatives, sentences", unit="utt"):
        audio = np.asarray(speech[i][0], dtype=np.float32)
        for start in range(0, max(1, len(audio) - crop + 1), crop // 2):
            examples.add(audio[start : start + crop], 0)
            words.append(UNKNOWN)
        examples.add(audio[:crop], 0, noises[int(examples.rng.integers(len(noises)))])
        words.append(UNKNOWN)
    return np.stack(examples.x).astype(np.float32), np.array(words)


def speech_session(embedding: SpeechEmbedding, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """The listener's embedding rows [hops, 96] of real speech heard as a session (each utterance after a pause of
    faint noise, as bench.real_false_accepts plays it), and the speaker of each row [hops]."""
    speech = LibriSpeech(root, SPEECH_SPLIT)
    stream = EmbeddingStream(embedding)
    rows, speakers, ids = [], [], {}
    played = tqdm(play_utterances(speech), total=len(speech), desc=f"phrases: {root}/{SPEECH_SPLIT}", unit="utt")
    for pause, audio, utt_id in played:
        speaker = ids.setdefault(LibriSpeech.speaker_of(utt_id), len(ids))
        for piece in (pause, audio):
            for row in stream.push(piece):
                rows.append(row)
                speakers.append(speaker)
    return np.stack(rows).astype(np.float32), np.array(speakers)


def windows(rows: np.ndarray, n: int) -> np.ndarray:
    """What the head hears at every hop of a session: each run of `n` consecutive rows, [hops - n + 1, n, 96]."""
    return np.lib.stride_tricks.sliding_window_view(rows, n, axis=0).transpose(0, 2, 1)


def false_accepts(scores: np.ndarray, threshold: float) -> int:
    """Times a phrase fires on a session whose score at each hop is `scores`, once per refractory period."""
    count, last = 0, -np.inf
    for i in np.flatnonzero(scores >= threshold):
        if (i - last) * HOP / render.SAMPLE_RATE >= REFRACTORY_S:
            count, last = count + 1, i
    return count


def held_out_scores(
    x: np.ndarray, y: np.ndarray, heard: np.ndarray, fold: np.ndarray, stride: int, num_labels: int, seed: int
) -> np.ndarray:
    """Each phrase's score at every hop of the session `heard` ([hops, rows, 96]), from the head that learnt `x`,
    `y` and every `stride`-th hop of the other folds' speakers (`fold`: each hop's)."""
    scores = np.empty((len(heard), num_labels - 2), dtype=np.float32)
    every = np.arange(len(heard)) % stride == 0
    for k in range(FOLDS):
        learnt = heard[every & (fold != k)]
        head = train_head(
            np.concatenate([x, learnt]),
            np.concatenate([y, np.ones(len(learnt), dtype=np.int64)]),
            num_labels,
            seed,
            f"phrases: head of fold {k + 1}/{FOLDS}",
        )
        for part in np.array_split(np.flatnonzero(fold == k), max(1, len(heard) // 4096)):
            scores[part] = log_odds(head_logits(head, heard[part]))
    return scores


def choose_threshold(scores: np.ndarray, hours: float) -> tuple[float, float]:
    """The lowest threshold from DEFAULT_THRESHOLD up with at most TARGET_FA_PER_HOUR, and its rate."""
    for threshold in np.arange(DEFAULT_THRESHOLD, MAX_THRESHOLD + 1e-9, THRESHOLD_STEP):
        rate = false_accepts(scores, threshold) / hours
        if rate <= TARGET_FA_PER_HOUR:
            break
    return float(threshold), rate


def set_up_phrases(
    export_dir: Path,
    phrases: list[str],
    commands: Path,
    sentences: Path,
    *,
    speech: Path | None = None,
    work: Path = Path("runs/phrases"),
    embedding_home: Path = EMBEDDING_HOME,
    seed: int = 0,
) -> dict:
    """Train the phrases' head and write EXPORT_DIR/phrases; returns what it measured."""
    keys = [phrase_key(p) for p in phrases]
    if not keys or any(len(k.replace(" ", "")) < 2 for k in keys) or len(set(keys)) != len(keys):
        raise InputError(f"phrases {phrases}: need one or more distinct phrases of two letters or more")
    if Manifest.read(export_dir).ctc is not None:
        raise InputError(f"{export_dir}: a CTC export spots phrases by its own units (`asr demo --keyword`)")
    embedding = SpeechEmbedding(embedding_home)
    voices = training_voices(commands)
    said = {k: synthesize_phrase(k, voices, seed, commands.parent / KOKORO_CACHE) for k in keys}
    rate = render.SAMPLE_RATE
    crop = crop_samples([c for clips in said.values() for c in clips], rate)
    rows = len(embedding.embed(np.zeros(crop, dtype=np.float32)))
    key = f"{commands.resolve()}|{sentences.resolve()}|{crop}"
    corpus = SpeechCommands(commands, "train", [])
    noises = corpus.background_noise(crop)
    neg_x, neg_words = cached(
        work / f"negatives-{crop}.npz", key, lambda: negative_examples(embedding, corpus, noises, sentences, crop)
    )
    keep = ~np.isin(neg_words, keys)  # a corpus word that is a phrase is no negative of it
    variation = load_recipe().variation
    positives = Examples(embedding, crop, np.random.default_rng(seed))
    for label, k in enumerate(keys, start=2):
        for i, raw in enumerate(tqdm(said[k], desc=f"phrases: hearing {k!r}", unit="clip")):
            clip = render.word_clip(raw, rng_for(seed, "phrase level", k, i), variation, crop)  # level, floor, place
            positives.add(clip, label)
            for _ in range(NOISY_COPIES):
                positives.add(clip, label, noises[int(positives.rng.integers(len(noises)))])
    px, py = positives.arrays()
    x = np.concatenate([neg_x[keep], px])
    y = np.concatenate([np.where(neg_words[keep] == SILENCE, 0, 1), py])
    thresholds, measured = dict.fromkeys(keys, DEFAULT_THRESHOLD), {}
    if speech is not None:  # real speech: negatives, and the judge of each phrase's threshold
        session, speakers = cached(
            work / "speech-session.npz", f"{speech.resolve()}|{SPEECH_SPLIT}", lambda: speech_session(embedding, speech)
        )
        heard, fold = windows(session, rows), speakers[rows - 1 :] % FOLDS
        stride = max(1, crop // HOP // 2)  # a crop every half crop
        scores = held_out_scores(x, y, heard, fold, stride, 2 + len(keys), seed)
        hours = len(session) * HOP / rate / 3600
        for j, k in enumerate(keys):
            thresholds[k], fa = choose_threshold(scores[:, j], hours)
            measured[k] = {"threshold": thresholds[k], "false_accepts_per_hour_held_out": round(fa, 2)}
        learnt = heard[::stride]
        x, y = np.concatenate([x, learnt]), np.concatenate([y, np.ones(len(learnt), dtype=np.int64)])
    head = train_head(x, y, 2 + len(keys), seed, "phrases: head")
    config = PhrasesConfig(
        labels=[SILENCE, UNKNOWN, *keys],
        rows=rows,
        thresholds=thresholds,
        refractory_s=REFRACTORY_S,
        sample_rate=rate,
        voices=len(voices),
        embedding_source=EMBEDDING_SOURCE,
    )
    write_head_dir(Path(export_dir) / PHRASES_DIR, embedding_home, head, PHRASES_CONFIG, config.__dict__)
    report = {
        "phrases": keys,
        "voices": len(voices),
        "clips": {k: len(v) for k, v in said.items()},
        "crop_s": crop / rate,
        "negatives": int((y < 2).sum()),
        "thresholds": thresholds,
    }
    if measured:
        report["real_speech"] = {"hours": round(hours, 2), "folds": FOLDS, "per_phrase": measured}
    return report


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("export_dir", type=Path, metavar="EXPORT_DIR", help="an export directory (the Pi's model)")
    parser.add_argument("--keyword", action="append", required=True, metavar="PHRASE", help="a phrase (repeatable)")
    parser.add_argument("--commands", type=Path, default=Path("data/generated/commands"), help="keyword corpus")
    parser.add_argument("--sentences", type=Path, default=Path("data/generated/sentences"), help="sentences corpus")
    parser.add_argument(
        "--speech",
        type=Path,
        help=f"real speech (a LibriSpeech-layout tree, its {SPEECH_SPLIT}): negatives, and each phrase's threshold",
    )
    parser.add_argument("--work", type=Path, default=Path("runs/phrases"), help="the negatives' embeddings cache")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    report = set_up_phrases(
        args.export_dir, args.keyword, args.commands, args.sentences, speech=args.speech, work=args.work, seed=args.seed
    )
    print(json.dumps(report, indent=1))
    print(f"set up in {args.export_dir / PHRASES_DIR}: `asr demo {args.export_dir} --keyword PHRASE` listens")
    return 0
