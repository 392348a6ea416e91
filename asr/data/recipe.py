"""The synthesis recipe (recipe.toml, words/*.txt and grammar.toml, shipped in asr/data/default_recipe/) and the
speakers it defines.

A *voice* is one engine voice (`flite:awb`, `espeak-ng:en-gb`); a *speaker* is one fixed setting of a voice
(an espeak-ng variant, a recorded voice's pitch preset) and owns the clips it says, like a person in the real
corpora. A *donor* is the human (or espeak-ng accent) behind a voice; splits never share a donor.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np

from asr.data import kokoro
from asr.errors import InputError, MissingError

DATA_DIR = Path(str(files("asr.data") / "default_recipe"))  # package data: works from a wheel too
SPLITS = ("train", "validation", "testing")
STAMP = "SYNTH.json"  # a generated corpus's record of its recipe, written last: without it the corpus is not complete
# Bumped whenever the synthesis code changes its output, so cached corpora are rebuilt.
SYNTH_VERSION = 2
# A recorded voice whose typical f0 ([f0]) is at least this is a woman's: she gets no warped (higher) speakers.
FEMALE_F0_HZ = 150


@dataclass(frozen=True)
class Speaker:
    key: str  # "espeak-ng:en-gb+f2" or "flite:awb#3": unique, stable
    engine: str  # "espeak-ng", "flite", "festival"
    voice: str  # engine voice name ("en-gb", "awb", "kal_diphone")
    variant: str  # espeak-ng variant ("f2"), "" for recorded voices
    f0: float  # mean pitch in Hz for recorded voices (0: the engine's own)
    donor: str
    split: str
    formant: float = 1.0  # vocal-tract warp of a recorded voice: formants x this (a shorter tract: women, children)
    accent: str = ""  # the language of a foreign voice, which says the keywords from respellings ([respell.*])

    @property
    def voice_id(self) -> str:
        """The voice as the recipe names it: "flite:awb"."""
        return f"{self.engine}:{self.voice}"

    @property
    def hash(self) -> str:
        """8 hex digits, like the speaker ids in Speech Commands file names."""
        return hashlib.sha1(self.key.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Scale:
    name: str
    keywords: list[str]
    unknown_words: list[str]
    heldout_words: list[str]
    speakers: list[Speaker]
    keyword_clips: dict[str, int]
    unknown_clips: dict[str, int]
    heldout_clips: int
    noise_seconds: float
    sentences: dict[str, int]
    reading: int  # per training reader: sentences of common words in random order ([scale.*] reading)
    kokoro: dict  # the scale's Kokoro clip counts ([scale.*] kokoro); empty: no Kokoro speakers


@dataclass(frozen=True)
class Recipe:
    raw: dict
    words: dict[str, list[str]]  # keywords, near_miss, common, dictionary, heldout
    grammar: dict
    digest: str  # hash of every recipe file: changes invalidate cached corpora

    @property
    def variation(self) -> dict:
        return self.raw["variation"]

    @property
    def female_donors(self) -> set[str]:
        """Donors with a voice pitched like a woman's ([f0] at least FEMALE_F0_HZ): slt, clb."""
        return {d for v, d in self.raw["donors"].items() if self.raw["f0"].get(v, 0) >= FEMALE_F0_HZ}

    def apt_package(self, engine: str) -> str:
        return self.raw["engines"][engine]

    def text_for(self, speaker: Speaker, word: str) -> str:
        """What the speaker is given to say for `word`: the respelling in its own language for an accented voice."""
        return self.raw["respell"][speaker.accent].get(word, word) if speaker.accent else word

    def scale(self, name: str) -> Scale:
        scales = self.raw["scale"]
        if name not in scales:
            raise InputError(f"{DATA_DIR / 'recipe.toml'}: no scale {name!r} (known: {sorted(scales)})")
        s = scales[name]
        unknown = self.words["near_miss"] + self.words["common"] + self.words["dictionary"]
        return Scale(
            name=name,
            keywords=self.words["keywords"] if s["keywords"] == "all" else list(s["keywords"]),
            unknown_words=_take(unknown, s["unknown_words"]),
            heldout_words=_take(self.words["heldout"], s["heldout_words"]),
            speakers=self._speakers(s),
            keyword_clips=dict(s["keyword_clips"]),
            unknown_clips=dict(s["unknown_clips"]),
            heldout_clips=int(s["heldout_clips"]),
            noise_seconds=float(s["noise_seconds"]),
            sentences=dict(s["sentences"]),
            reading=int(s.get("reading", 0)),
            kokoro=dict(s.get("kokoro", {})),
        )

    def _speakers(self, s: dict) -> list[Speaker]:
        voices = s.get("voices", self.raw["splits"])
        variants = self.variation["espeak_variants"]
        speakers = []
        for split in SPLITS:
            for i, voice in enumerate(voices[split]):
                engine, name = voice.split(":", 1)
                if engine == "espeak-ng" and voice not in self.raw["donors"]:  # an accent: a rule set, no donor
                    n = s["espeak_speakers_per_accent"]
                    # rotate the start so that the accents together use every variant
                    picks = [variants[(i * n + k) % len(variants)] for k in range(n)]
                    speakers += [
                        Speaker(f"{voice}+{v}", engine, name, v, 0.0, f"espeak-ng:{name}", split) for v in picks
                    ]
                else:
                    speakers += self._recorded_speakers(s, voice, split)
        if "kokoro" in s:  # after the others, so adding Kokoro leaves every other speaker's plan as it was
            speakers += self.kokoro_speakers(s["kokoro"]["mixes"])
        return speakers

    def kokoro_split(self, voice: str) -> str:
        k = self.raw["kokoro"]
        return next((split for split in ("validation", "testing") if voice in k[split]), "train")

    def kokoro_speakers(self, mixes: dict[str, int]) -> list[Speaker]:
        """Every stock English Kokoro voice in its split ([kokoro]), then `mixes[split]` new voices per split, each
        a Dirichlet-weighted mix of 2-3 stock voices of that split only (a mix of test voices is a test voice).
        Each stock voice is its own donor; a mix's donor names its voices."""
        k = self.raw["kokoro"]
        speakers = []
        for split in SPLITS:
            stock = [v for v in k["voices"] if self.kokoro_split(v) == split]
            speakers += [Speaker(f"kokoro:{v}", "kokoro", v, "", 0.0, f"kokoro:{v}", split) for v in stock]
            for i in range(mixes.get(split, 0)):
                rng = np.random.default_rng(int(hashlib.sha256(f"kokoro-mix {split} {i}".encode()).hexdigest()[:8], 16))
                names = sorted(rng.choice(stock, size=int(rng.integers(2, 4)), replace=False).tolist())
                spec = kokoro.mix_spec(names, rng.dirichlet([k["mix_alpha"]] * len(names)))
                donor = "+".join(f"kokoro:{n}" for n in names)
                speakers.append(Speaker(f"kokoro:{spec}", "kokoro", spec, "", 0.0, donor, split))
        return speakers

    def _recorded_speakers(self, s: dict, voice: str, split: str) -> list[Speaker]:
        """Speakers of one recorded voice: pitch presets (plus vocal-tract warps in training) where the recipe
        gives its f0 in Hz ([f0]: flite, festival diphones); otherwise, in training, vocal-tract presets (festival
        voices whose pitch cannot be set; MBROLA voices through espeak-ng, whose pitch is drawn per clip)."""
        engine, name = voice.split(":", 1)
        f0 = float(self.raw["f0"].get(voice, 0.0))
        donor, accent = self.raw["donors"][voice], self.raw.get("accents", {}).get(voice, "")
        n = s["speakers_per_voice"]
        if split == "train" and not f0:
            tracts = self.variation["tract_presets"]
            return [
                Speaker(f"{voice}#t{k}", engine, name, "", 0.0, donor, split, tracts[k % len(tracts)], accent)
                for k in range(n)
            ]
        presets = self.variation["f0_presets"]
        speakers = [
            Speaker(f"{voice}#{k}", engine, name, "", f0 * presets[k % len(presets)], donor, split, accent=accent)
            for k in range(n)
        ]
        if split == "train" and f0 < FEMALE_F0_HZ:  # simulated women and children from the men
            speakers += [
                Speaker(f"{voice}#w{k}", engine, name, "", f0 * pitch, donor, split, formant, accent)
                for k, (pitch, formant) in enumerate(s.get("warped_speakers", []))
            ]
        return speakers


def _take(words: list[str], count) -> list[str]:
    """All words, or `count` of them spread evenly over the list (so a small scale still has near-misses)."""
    if count == "all" or count >= len(words):
        return list(words)
    step = len(words) / count
    return [words[int(i * step)] for i in range(count)]


def read_words(path: Path) -> list[str]:
    return [w.strip() for w in path.read_text().splitlines() if w.strip() and not w.lstrip().startswith("#")]


def load_recipe(data_dir: Path = DATA_DIR) -> Recipe:
    """Read and check the recipe: word lists must not overlap, voices of one donor must share a split."""
    files = [data_dir / "recipe.toml", data_dir / "grammar.toml", *sorted((data_dir / "words").glob("*.txt"))]
    for f in files[:2]:
        if not f.is_file():
            raise MissingError(f"{f}: recipe file is missing")
    digest = hashlib.sha256(f"synth-v{SYNTH_VERSION}".encode())
    for f in files:
        digest.update(f.name.encode() + f.read_bytes())
    raw = tomllib.loads(files[0].read_text())
    words = {f.stem: read_words(f) for f in files[2:]}
    recipe = Recipe(raw, words, tomllib.loads(files[1].read_text()), digest.hexdigest()[:16])
    _check(recipe, data_dir)
    return recipe


def _check(recipe: Recipe, data_dir: Path) -> None:
    seen: dict[str, str] = {}
    for name in ("keywords", "near_miss", "common", "dictionary", "heldout"):
        for w in recipe.words.get(name, []):
            if w in seen:
                raise InputError(f"{data_dir / 'words' / name}.txt: {w!r} is also in {seen[w]}.txt")
            seen[w] = name
    split_of: dict[str, str] = {}
    for split in SPLITS:
        for voice in recipe.raw["splits"][split]:
            donor = recipe.raw["donors"].get(voice, voice.split("+")[0])
            if split_of.setdefault(donor, split) != split:
                raise InputError(
                    f"{data_dir / 'recipe.toml'}: donor {donor!r} is in both {split_of[donor]} and {split}"
                )
    k = recipe.raw.get("kokoro", {})
    for split in ("validation", "testing"):
        if set(k.get(split, [])) - set(k.get("voices", [])):
            raise InputError(f"{data_dir / 'recipe.toml'}: [kokoro] {split} names voices not in [kokoro] voices")
    for voice, accent in recipe.raw.get("accents", {}).items():
        missing = set(recipe.words["keywords"]) - set(recipe.raw.get("respell", {}).get(accent, {}))
        if missing:
            raise InputError(f"{data_dir / 'recipe.toml'}: [respell.{accent}] (for {voice}) lacks {sorted(missing)}")
