"""Plan and synthesize the two offline corpora, in the layouts of the real ones.

commands: Google Speech Commands v2 (`WORD/<speaker>_nohash_<n>.wav`, validation_list.txt, testing_list.txt,
_background_noise_/). sentences: LibriSpeech (`SPLIT/SPEAKER/CHAPTER/*.flac` + `.trans.txt`, SPEAKERS.TXT).

Every clip's text and settings are planned up front from the seed, and each clip's audio depends only on its
own plan, so the corpus is the same whatever the number of processes or the order they finish in.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from asr.audio import resample_audio, write_audio
from asr.data import grammar, kokoro, noise, render
from asr.data.engines import EngineMissing, Utterance, check_engine, synthesize
from asr.data.recipe import SPLITS, STAMP, Recipe, Scale, Speaker, load_recipe
from asr.data.screen import Screen
from asr.errors import InputError
from asr.files import write_text_atomic

CORPORA = ("commands", "sentences")
LIBRISPEECH_SPLITS = {"train": "train-clean-100", "validation": "dev-clean", "testing": "test-clean"}
HELDOUT_TEMPLATE_SHARE = 0.4  # share of test-clean sentences from templates never trained on
BATCH = 40  # clips per task: one festival process, one progress step
SCREENED_OUT = "_screened_out_"  # keyword clips the screen rejected (asr/data/screen.py); no loader reads it
KOKORO_CACHE = ".kokoro-cache"  # beside the corpora (data/generated/.kokoro-cache): raw Kokoro audio per clip


@dataclass(frozen=True)
class Job:
    """One audio file to write."""

    path: str  # relative to the corpus root
    speaker: Speaker
    utterance: Utterance
    seed: int  # drives placement and level
    kind: str  # "word" (1 s clip) or "sentence"


def rng_for(seed: int, *parts: object) -> np.random.Generator:
    """A generator that depends only on the seed and the parts (a clip's identity), never on run order."""
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def training_voices(commands: Path) -> list[Speaker]:
    """The training voices of the recipe scale the keyword corpus `commands` was made with (its SYNTH.json;
    "default" for a corpus made elsewhere) that are installed here (Kokoro's only when it is set up)."""
    stamp = commands / STAMP
    scale = json.loads(stamp.read_text())["key"]["scale"] if stamp.is_file() else "default"
    recipe = load_recipe()
    voices = []
    for speaker in recipe.scale(scale).speakers:
        if speaker.split != "train":
            continue
        try:
            check_engine(speaker.engine, recipe.apt_package(speaker.engine))
        except EngineMissing as e:
            if speaker.engine != "kokoro":
                raise
            print(f"without Kokoro's voices ({e})", file=sys.stderr)
            continue
        voices.append(speaker)
    return voices


def utterance(recipe: Recipe, speaker: Speaker, text: str, rng: np.random.Generator) -> Utterance:
    """Random prosody for one clip: espeak-ng pitch, speed and pitch range; recorded voices' f0 and tempo."""
    v = recipe.variation
    if speaker.engine == "kokoro":
        k = recipe.raw["kokoro"]
        return Utterance(
            text + str(rng.choice(k["endings"])),
            stretch=round(1 / float(rng.uniform(*k["speed"])), 3),
            style_shift=int(rng.integers(k["style_shift"][0], k["style_shift"][1] + 1)),
        )
    # A warped speaker is synthesized slower (and lower) by its formant factor, then played that much faster
    # (speak): formants move up by the factor while duration (and the f0 asked for) come out right.
    if speaker.engine == "espeak-ng":
        speed = int(rng.integers(v["espeak_speed"][0], v["espeak_speed"][1] + 1))
        return Utterance(
            text,
            pitch=int(rng.integers(v["espeak_pitch"][0], v["espeak_pitch"][1] + 1)),
            speed=round(speed / speaker.formant),
            range=str(rng.choice(v["espeak_range"])),
        )
    f0 = speaker.f0 * (1 + rng.uniform(-v["f0_jitter"], v["f0_jitter"])) / speaker.formant if speaker.f0 else 0.0
    stretch = round(float(rng.uniform(*v["stretch"])) * speaker.formant, 3)
    return Utterance(text, f0=round(f0, 1), stretch=stretch, voice_f0=float(recipe.raw["f0"].get(speaker.voice_id, 0)))


def plan_commands(recipe: Recipe, scale: Scale, seed: int) -> list[Job]:
    """Keywords: every speaker says each keyword a few times. Unknown words: a few clips each, by random
    speakers of each split. Held-out unknown words: testing only."""
    jobs: list[Job] = []
    count: dict[tuple[str, str], int] = defaultdict(int)  # (speaker, word) -> clips so far

    def add(word: str, speaker: Speaker) -> None:
        n = count[speaker.key, word]
        count[speaker.key, word] += 1
        rng = rng_for(seed, "commands", word, speaker.key, n)
        path = f"{word}/{speaker.hash}_nohash_{n}.wav"
        text = recipe.text_for(speaker, word)
        jobs.append(Job(path, speaker, utterance(recipe, speaker, text, rng), int(rng.integers(2**31)), "word"))

    for split in SPLITS:
        speakers = [s for s in scale.speakers if s.split == split and s.engine != "kokoro"]
        if not speakers:
            raise InputError(f"recipe scale {scale.name!r} has no {split} voices")
        for speaker in speakers:
            for word in scale.keywords:
                for _ in range(scale.keyword_clips[split]):
                    add(word, speaker)
        words = [(w, scale.unknown_clips[split]) for w in scale.unknown_words]
        if split == "testing":
            words += [(w, scale.heldout_clips) for w in scale.heldout_words]
        for word, clips in words:
            rng = rng_for(seed, "who", split, word)
            for i in rng.choice(len(speakers), size=clips, replace=clips > len(speakers)):
                add(word, speakers[int(i)])
        _plan_kokoro(scale, split, seed, add)
    return jobs


def _plan_kokoro(scale: Scale, split: str, seed: int, add) -> None:
    """Kokoro's clips, counted apart from the other engines' (each costs ~1 s of CPU): every Kokoro speaker says
    each keyword, and unknown words spread over the list are said once each by a random Kokoro speaker."""
    speakers = [s for s in scale.speakers if s.split == split and s.engine == "kokoro"]
    if not speakers:
        return
    k = scale.kokoro
    for speaker in speakers:
        for word in scale.keywords:
            for _ in range(k["keyword_clips"][split]):
                add(word, speaker)
    words = [(w, 1) for w in _spread(scale.unknown_words, k["unknown_words"][split])]
    if split == "testing":
        words += [(w, k["heldout_clips"]) for w in scale.heldout_words]
    for word, clips in words:
        rng = rng_for(seed, "who-kokoro", split, word)
        for i in rng.choice(len(speakers), size=clips, replace=clips > len(speakers)):
            add(word, speakers[int(i)])


def _spread(words: list[str], count: int) -> list[str]:
    if count <= 0:
        return []
    step = max(1.0, len(words) / count)
    return [words[int(i * step)] for i in range(min(count, len(words)))]


def readers(scale: Scale, splits: tuple[str, ...] = SPLITS) -> list[Speaker]:
    """The speakers of the sentences corpus (of `splits`). Accented voices cannot read English text as written. Of
    Kokoro's speakers, only the training ones read, and only with [scale.*] kokoro.sentences: its speech costs ~1.4 s
    of CPU a second, and the test set stays the donors kal and slt."""
    kokoro_reads = bool(scale.kokoro.get("sentences"))
    return [
        s
        for s in scale.speakers
        if s.split in splits and not s.accent and (s.engine != "kokoro" or (kokoro_reads and s.split == "train"))
    ]


def librispeech_ids(scale: Scale) -> dict[str, tuple[int, int]]:
    """Speaker key -> (LibriSpeech speaker id, chapter id)."""
    return {s.key: (1000 + i, 100 + i) for i, s in enumerate(readers(scale))}


def plan_sentences(recipe: Recipe, scale: Scale, seed: int, splits: tuple[str, ...] = SPLITS) -> list[Job]:
    """Each speaker reads one chapter of grammar sentences; test-clean also gets the held-out templates. Training
    speakers then read `reading` sentences of common and grammar words in random order (grammar.reading). Each
    utterance is a function of (seed, speaker, index) alone, so a build of some `splits` holds the same files."""
    jobs = []
    ids = librispeech_ids(scale)
    words = recipe.words["common"] + recipe.words["dictionary"] + grammar.vocabulary(recipe.grammar)
    for speaker in readers(scale, splits):
        spk, chapter = ids[speaker.key]
        share = HELDOUT_TEMPLATE_SHARE if speaker.split == "testing" else 0.0
        if speaker.engine == "kokoro":  # training speakers only (readers)
            n_grammar, n_reading = scale.kokoro["sentences"], scale.kokoro.get("reading", 0)
        else:
            n_grammar, n_reading = scale.sentences[speaker.split], scale.reading if speaker.split == "train" else 0
        for i in range(n_grammar + n_reading):
            rng = rng_for(seed, "sentences", speaker.key, i)
            text = grammar.sentence(recipe.grammar, rng, share) if i < n_grammar else grammar.reading(words, rng)
            path = f"{LIBRISPEECH_SPLITS[speaker.split]}/{spk}/{chapter}/{spk}-{chapter}-{i:04d}.flac"
            jobs.append(Job(path, speaker, utterance(recipe, speaker, text, rng), int(rng.integers(2**31)), "sentence"))
    return jobs


def speak(speaker: Speaker, utterances: list[Utterance], apt_package: str) -> list[np.ndarray]:
    """The speaker's audio for each utterance (made by `utterance()`), with its vocal-tract warp applied."""
    audios = synthesize(speaker, utterances, apt_package)
    if speaker.formant == 1.0:
        return audios
    rate = int(round(render.SAMPLE_RATE * speaker.formant / 160)) * 160  # a multiple of 160 Hz: a short kernel
    return [resample_audio(a, rate, render.SAMPLE_RATE) for a in audios]  # played `formant` times faster


_SCREEN: Screen | None = None  # one per worker process


def run_batch(root: str, jobs: list[Job], variation: dict, apt_package: str, screen_min: float = 0.0) -> int:
    """Worker: synthesize one speaker's batch and write each file atomically. With `screen_min`, a clip of a word
    the screen knows, heard as that word with a lower probability, goes to SCREENED_OUT/ instead (a rerun skips it)."""
    global _SCREEN
    speaker = jobs[0].speaker
    utterances = [j.utterance for j in jobs]
    if speaker.engine == "kokoro":  # cached per clip beside the corpora: ~1 s of CPU per word
        audios = kokoro.synthesize(speaker.voice, utterances, Path(root).parent / KOKORO_CACHE)
    else:
        audios = speak(speaker, utterances, apt_package)
    for job, audio in zip(jobs, audios, strict=True):
        rng = np.random.default_rng(job.seed)
        clip = (
            render.word_clip(audio, rng, variation)
            if job.kind == "word"
            else render.sentence_clip(audio, rng, variation)
        )
        path = Path(root) / job.path
        if screen_min and job.kind == "word":
            _SCREEN = _SCREEN or Screen()
            if not _SCREEN.keeps(clip, job.path.split("/")[0], screen_min):
                path = Path(root) / SCREENED_OUT / job.path
        write_audio(path, clip, render.SAMPLE_RATE)
    return len(jobs)


def _batches(jobs: list[Job]) -> list[list[Job]]:
    by_speaker: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        by_speaker[job.speaker.key].append(job)
    return [group[i : i + BATCH] for group in by_speaker.values() for i in range(0, len(group), BATCH)]


def _done(root: Path, job: Job) -> bool:
    """Files are atomic: an existing one is complete (in the corpus, or screened out)."""
    return (root / job.path).is_file() or (root / SCREENED_OUT / job.path).is_file()


def _run(recipe: Recipe, root: Path, jobs: list[Job], workers: int, desc: str) -> None:
    todo = [j for j in jobs if not _done(root, j)]
    batches = _batches(todo)

    def args(b: list[Job]) -> tuple:
        engine = b[0].speaker.engine
        screen = recipe.raw["kokoro"]["screen_min_probability"] if engine == "kokoro" else 0.0
        return str(root), b, recipe.variation, recipe.apt_package(engine), screen

    with tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc=desc, unit="clip") as bar:
        if workers <= 1:
            for b in batches:
                bar.update(run_batch(*args(b)))
            return
        with ProcessPoolExecutor(workers) as pool:
            futures = [pool.submit(run_batch, *args(b)) for b in batches]
            for f in futures:
                bar.update(f.result())


def _speaker_table(speakers: list[Speaker], ids: dict[str, str | int]) -> str:
    rows = [
        {"speaker": ids[s.key], "key": s.key, "engine": s.engine, "voice": s.voice, "donor": s.donor, "split": s.split}
        for s in speakers
    ]
    return json.dumps(rows, indent=1) + "\n"


def _finish_commands(recipe: Recipe, scale: Scale, root: Path, jobs: list[Job], seed: int) -> None:
    split_of = {s.key: s.split for s in scale.speakers}
    for split in ("validation", "testing"):
        paths = sorted(j.path for j in jobs if split_of[j.speaker.key] == split and (root / j.path).is_file())
        write_text_atomic(root / f"{split}_list.txt", "\n".join(paths) + "\n")
    # Babble is sentences read by training voices only, so no held-out donor is heard in training noise.
    talkers = [s for s in readers(scale) if s.split == "train"][:6]
    rng = rng_for(seed, "babble")
    speech = []
    for speaker in talkers:
        utts = [utterance(recipe, speaker, grammar.sentence(recipe.grammar, rng), rng) for _ in range(3)]
        speech += [render.trim(a) for a in synthesize(speaker, utts, recipe.apt_package(speaker.engine))]
    noises = noise.background_noises(rng_for(seed, "noise"), scale.noise_seconds, speech)
    for name, audio in noises.items():
        write_audio(root / "_background_noise_" / f"{name}.wav", audio, noise.SAMPLE_RATE)
    write_text_atomic(root / "voices.json", _speaker_table(scale.speakers, {s.key: s.hash for s in scale.speakers}))


def _finish_sentences(recipe: Recipe, scale: Scale, root: Path, jobs: list[Job], splits: tuple[str, ...]) -> None:
    ids = librispeech_ids(scale)
    chapters: dict[Path, list[str]] = defaultdict(list)
    samples: dict[str, int] = defaultdict(int)
    for job in jobs:
        path = root / job.path
        text = job.utterance.text.rstrip("".join(recipe.raw["kokoro"]["endings"]))  # Kokoro's closing mark
        chapters[path.parent].append(f"{path.stem} {text.upper()}")
        samples[job.speaker.key] += sf.info(str(path)).frames
    for folder, lines in chapters.items():
        spk, chapter = folder.parts[-2:]
        write_text_atomic(folder / f"{spk}-{chapter}.trans.txt", "\n".join(lines) + "\n")
    header = [
        "; Generated speakers (asr data synth), in the format of LibriSpeech's SPEAKERS.TXT.",
        ";ID  |SEX| SUBSET           |MINUTES| NAME",
    ]
    rows = []
    female_donors = recipe.female_donors
    for s in readers(scale, splits):
        female = (
            s.variant.startswith("f")
            or s.variant in ("Annie", "steph")
            or s.donor in female_donors
            or (s.engine == "kokoro" and kokoro.dominant_voice(s.voice)[1] == "f")  # af_, bf_: women
        )
        minutes = samples[s.key] / render.SAMPLE_RATE / 60
        subset = LIBRISPEECH_SPLITS[s.split]
        rows.append(f"{ids[s.key][0]:<5}| {'F' if female else 'M'} | {subset:<17}| {minutes:5.2f} | {s.key}")
    write_text_atomic(root / "SPEAKERS.TXT", "\n".join(header + rows) + "\n")
    write_text_atomic(root / "voices.json", _speaker_table(readers(scale, splits), {k: v[0] for k, v in ids.items()}))


def build_corpus(
    corpus: str,
    out: str | Path = "data/generated",
    scale: str = "default",
    seed: int = 0,
    jobs: int = 2,
    splits: tuple[str, ...] = SPLITS,
) -> Path:
    """Synthesize `out/corpus` unless an identical one (same recipe, scale, seed and splits) is already there.

    `splits` (sentences only) builds some splits: `make demo` needs the held-out ones only, for its streams' background
    speech, and the training speakers' reading costs most of the corpus's time. A full build later replaces it.
    Work happens in `out/.corpus.partial` (resumed if a run was killed) and is renamed into place only when
    complete, so `out/corpus` is always either absent, the previous complete corpus, or the new one."""
    if corpus not in CORPORA:
        raise InputError(f"unknown corpus {corpus!r} (known: {', '.join(CORPORA)})")
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown or not splits:
        raise InputError(f"splits must be some of {', '.join(SPLITS)}, not {list(splits)}")
    splits = tuple(s for s in SPLITS if s in splits)
    if corpus == "commands" and splits != SPLITS:
        raise InputError("the commands corpus is built whole (its splits share the donors' word lists)")
    recipe = load_recipe()
    sc = recipe.scale(scale)
    key = {"corpus": corpus, "scale": scale, "seed": seed, "recipe": recipe.digest}
    if splits != SPLITS:
        key["splits"] = list(splits)
    out = Path(out)
    final, partial = out / corpus, out / f".{corpus}.partial"
    held = _stamp(final).get("key", {})
    same_corpus = {k: v for k, v in held.items() if k != "splits"} == {k: v for k, v in key.items() if k != "splits"}
    if same_corpus and set(splits) <= set(held.get("splits", SPLITS)):  # it holds every split asked for
        print(f"{final}: up to date (recipe {recipe.digest}, scale {scale}, seed {seed})")
        return final
    if final.exists() and not (final / STAMP).is_file():
        raise FileExistsError(f"{final}: exists but was not made by `asr data synth`; move it away first")
    plan = plan_commands(recipe, sc, seed) if corpus == "commands" else plan_sentences(recipe, sc, seed, splits)
    for engine in sorted({j.speaker.engine for j in plan}):
        check_engine(engine, recipe.apt_package(engine))
    if _stamp(partial, "PARTIAL.json").get("key") != key:
        shutil.rmtree(partial, ignore_errors=True)  # another recipe's leftovers
    partial.mkdir(parents=True, exist_ok=True)
    write_text_atomic(partial / "PARTIAL.json", json.dumps({"key": key}))
    start = time.time()
    _run(recipe, partial, plan, jobs, f"{corpus} ({scale})")
    if corpus == "commands":
        _finish_commands(recipe, sc, partial, plan, seed)
    else:
        _finish_sentences(recipe, sc, partial, plan, splits)
    (partial / "PARTIAL.json").unlink()
    stamp = {"key": key, "clips": len(plan), "seconds_to_build": round(time.time() - start, 1)}
    screened = [j for j in plan if (partial / SCREENED_OUT / j.path).is_file()]
    if screened:
        stamp["screened_out"] = len(screened)
        stamp["kokoro_word_clips"] = sum(j.speaker.engine == "kokoro" for j in plan)
    write_text_atomic(partial / STAMP, json.dumps(stamp, indent=1) + "\n")
    if final.exists():
        old = out / f".{corpus}.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(partial, final)
        old.unlink() if old.is_symlink() else shutil.rmtree(old)  # a link to a corpus elsewhere: leave that corpus
    else:
        os.replace(partial, final)
    return final


def _stamp(folder: Path, name: str = STAMP) -> dict:
    try:
        return json.loads((folder / name).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
