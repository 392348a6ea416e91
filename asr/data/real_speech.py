"""`asr data real-speech`: real human speech from Debian packages, as a LibriSpeech-layout tree for false-accept
measurements and negatives.

    asr data real-speech [--out data/real]

downloads each package below (`apt-get download`, `dpkg-deb -x`: nothing is installed), decodes its recordings to
16 kHz mono FLAC under OUT/SPLIT/SPEAKER/CHAPTER/ (CHAPTER: the package), and writes OUT/sources.json (package,
licence, speaker, language, split, clips, hours). Split by package and speaker: the held-out speakers (test-clean)
are the Tux Paint volunteers and the Czech Fish Fillets actors, never heard in training; train-clean-100 holds
the others (usable as `_unknown_` negatives: `data.speech_root`). English clips are left out of both unless
their words are known to hold no keyword (a real "no" is not a false accept, nor an unknown word).
The recordings are GPL/GFDL: OUT is ignored by git, never commit it. Transcripts are Tux Paint's (each stamp's
description in the speaker's language, from the stamp's .txt; the number of a number's name); the other packages
give none, and their .trans.txt lines say UNTRANSCRIBED (the layout needs one). They say what a false accept heard.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from asr.audio import resample_audio, write_audio
from asr.data.recipe import load_recipe
from asr.errors import MissingError
from asr.files import write_text_atomic

SAMPLE_RATE = 16000
MIN_SECONDS = 0.3
# A keyword as a part of an English clip's name (hedgewars "Yessir", "Comeonthen"): such clips are left out.
KEYWORD_PART = re.compile("|".join(load_recipe().words["keywords"]), re.IGNORECASE)


TUXPAINT_DESCRIPTION = re.compile(r"([^/]*)_desc_([a-z]{2,3})(?:\.ogg)+$")  # STAMP_desc_LANG.ogg
TUXPAINT_NUMBER = re.compile(r"symbols/math/(\d+)_([A-Za-z_@]+)\.ogg$")  # a number's name: N_LANG.ogg


def _tuxpaint(rel: str) -> str | None:
    m = TUXPAINT_DESCRIPTION.search(rel) or TUXPAINT_NUMBER.search(rel)
    return None if not m or m.group(2).startswith("en") else m.group(2)  # English descriptions may hold keywords


def _tuxpaint_text(path: Path) -> str | None:
    """What a Tux Paint recording says: its stamp's description in the recording's language (`STAMP.txt` holds a
    line `LANG.utf8=TEXT` per language), or the number a number's name is."""
    if m := TUXPAINT_NUMBER.search(path.as_posix()):
        return m.group(1)
    m = TUXPAINT_DESCRIPTION.search(path.name)
    stamp = path.with_name(f"{m.group(1)}.txt") if m else None
    if stamp is None or not stamp.is_file():
        return None
    for line in stamp.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(f"{m.group(2)}.utf8="):
            return " ".join(line.split("=", 1)[1].split()) or None
    return None


def _fillets(rel: str) -> str | None:
    parts = Path(rel).name.split("-")  # sound/LEVEL/LANG/LEVEL-CHARACTER-LINE.ogg: one actor per character
    return parts[1].removesuffix(".ogg") if len(parts) > 2 else None


def _per_language(rel: str, root: str) -> str | None:
    m = re.match(rf"{root}/([^/]+)/", rel)
    return None if not m or m.group(1).startswith("en") else m.group(1)


def _hedgewars(rel: str) -> str | None:
    m = re.match(r"usr/share/games/hedgewars/Data/Sounds/voices/([^/]+)/(.+)\.ogg$", rel)
    return None if not m or KEYWORD_PART.search(m.group(2)) else m.group(1)


# package: (licence, split, speaker of a file path inside the package or None to leave the file out)
SOURCES = {
    "tuxpaint-stamps-default": ("GPL-2", "test-clean", _tuxpaint),
    "fillets-ng-data-cs": ("GPL-2", "test-clean", _fillets),
    "fillets-ng-data-nl": ("GPL-2", "train-clean-100", _fillets),
    "klettres-data": ("GPL-2+", "train-clean-100", lambda r: _per_language(r, "usr/share/klettres")),
    "ktuberling-data": ("GPL-2+", "train-clean-100", lambda r: _per_language(r, "usr/share/ktuberling/sounds")),
    "hedgewars-data": ("GFDL-1.3", "train-clean-100", _hedgewars),
}
AUDIO = (".ogg", ".wav", ".flac")
TRANSCRIPTS = {"tuxpaint-stamps-default": _tuxpaint_text}  # package: what a recording of it says, if known


def fetch(package: str, work: Path) -> Path:
    """The package's files, extracted under work/PACKAGE (downloaded once)."""
    tree = work / package
    if (tree / ".done").is_file():
        return tree
    debs = work / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    if not list(debs.glob(f"{package}_*.deb")):
        if shutil.which("apt-get") is None:
            raise MissingError(f"apt-get is missing: {package} is a Debian package (Debian 12, main)")
        proc = subprocess.run(["apt-get", "download", package], cwd=debs, capture_output=True, text=True)
        if proc.returncode != 0:
            raise MissingError(
                f"Debian package {package} is unavailable ({proc.stderr.strip()[-200:]}): run `apt-get update` "
                f"(as root) and check that Debian main is in /etc/apt/sources.list"
            )
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    subprocess.run(["dpkg-deb", "-x", str(next(debs.glob(f"{package}_*.deb"))), str(tree)], check=True)
    (tree / ".done").touch()
    return tree


def convert(src: str, dest: str) -> float:
    """Decode one recording to 16 kHz mono FLAC; its seconds (0: too short or silent, not written)."""
    audio, rate = sf.read(src, dtype="float32", always_2d=True)
    audio = resample_audio(audio.mean(axis=1), rate, SAMPLE_RATE)
    if len(audio) < MIN_SECONDS * SAMPLE_RATE or np.abs(audio).max() < 1e-3:
        return 0.0
    write_audio(dest, audio, SAMPLE_RATE)
    return len(audio) / SAMPLE_RATE


def extract(out: Path, jobs: int) -> None:
    work = out / ".packages"
    plan: list[tuple[str, str, str, Path]] = []  # (package, speaker, split, source file)
    for package, (_, split, speaker_of) in SOURCES.items():
        tree = fetch(package, work)
        for path in sorted(p for p in tree.rglob("*") if p.suffix.lower() in AUDIO and p.is_file()):
            speaker = speaker_of(str(path.relative_to(tree)))
            if speaker:
                plan.append((package, speaker, split, path))
    speakers = sorted({(p, s) for p, s, _, _ in plan})
    ids = {key: 100 + i for i, key in enumerate(speakers)}  # stable: sorted names
    chapters = {package: 10 + i for i, package in enumerate(SOURCES)}
    counter: dict[tuple, int] = defaultdict(int)
    targets = []
    for package, speaker, split, path in plan:
        spk, chap = ids[package, speaker], chapters[package]
        n = counter[spk, chap]
        counter[spk, chap] += 1
        dest = out / split / str(spk) / str(chap) / f"{spk}-{chap}-{n:04d}.flac"
        targets.append((dest, package, speaker, split, path))
    seconds: dict[Path, float] = {}
    todo = [t for t in targets if not t[0].is_file()]
    sources, dests = [str(t[4]) for t in todo], [str(t[0]) for t in todo]
    with ProcessPoolExecutor(jobs) as pool, tqdm(total=len(targets), initial=len(targets) - len(todo)) as bar:
        for dest, s in zip(dests, pool.map(convert, sources, dests, chunksize=16), strict=True):
            seconds[Path(dest)] = s
            bar.update()
    table: dict[tuple, dict] = {}
    lines: dict[Path, list[str]] = defaultdict(list)
    for dest, package, speaker, split, source in targets:
        if not dest.is_file():
            continue  # too short or silent
        text = TRANSCRIPTS[package](source) if package in TRANSCRIPTS else None
        lines[dest.parent].append(f"{dest.stem} {text or 'UNTRANSCRIBED'}")
        row = table.setdefault(
            (package, speaker),
            {"id": ids[package, speaker], "package": package, "speaker": speaker, "licence": SOURCES[package][0],
             "split": split, "clips": 0, "hours": 0.0},
        )  # fmt: skip
        row["clips"] += 1
        row["hours"] += seconds.get(dest) or sf.info(str(dest)).duration
    for folder, rows in lines.items():
        write_text_atomic(folder / f"{folder.parent.name}-{folder.name}.trans.txt", "\n".join(rows) + "\n")
    for row in table.values():
        row["hours"] = round(row["hours"] / 3600, 4)
    write_text_atomic(out / "sources.json", json.dumps(sorted(table.values(), key=lambda r: r["id"]), indent=1) + "\n")
    for split in ("train-clean-100", "test-clean"):
        rows = [r for r in table.values() if r["split"] == split]
        print(f"{split}: {len(rows)} speakers, {sum(r['clips'] for r in rows)} clips, "
              f"{sum(r['hours'] for r in rows):.2f} h")  # fmt: skip


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("data/real"))
    parser.add_argument("--jobs", type=int, default=2)


def run(args: argparse.Namespace) -> int:
    extract(args.out, args.jobs)
    return 0
