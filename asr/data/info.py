"""`asr data info ROOT`: what a corpus tree holds, per split (real or generated, either layout)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import soundfile as sf

from asr.data.recipe import STAMP
from asr.data.speech_commands import NOISE_DIR
from asr.errors import InputError, MissingError


def summarize(root: str | Path) -> dict:
    """Per split: clips, hours, speakers, donors and voices (when voices.json says), word types, megabytes."""
    root = Path(root)
    if not root.is_dir():
        raise MissingError(f"{root}: no such corpus directory")
    if (root / "validation_list.txt").is_file() or (root / NOISE_DIR).is_dir():
        layout, files = "speech_commands", _commands_files(root)
    elif (root / "SPEAKERS.TXT").is_file() or any(root.glob("*/*/*/*.trans.txt")):
        layout, files = "librispeech", _librispeech_files(root)
    else:
        raise InputError(f"{root}: neither a Speech Commands nor a LibriSpeech tree")
    voices = read_voices(root) or {}
    splits: dict[str, dict] = defaultdict(_new_split)
    for split, speaker, words, path in files:
        s = splits[split]
        s["clips"] += 1
        s["seconds"] += sf.info(str(path)).duration
        s["bytes"] += path.stat().st_size
        s["speakers"].add(speaker)
        s["words"].update(words)
        meta = voices.get(speaker, {})
        s["donors"].add(meta.get("donor", speaker))
        s["voices"].add(f"{meta['engine']}:{meta['voice']}" if meta else speaker)
    report = {"root": str(root), "layout": layout, "splits": {}}
    for name, s in splits.items():
        report["splits"][name] = {
            "clips": s["clips"],
            "hours": round(s["seconds"] / 3600, 3),
            "speakers": len(s["speakers"]),
            "donors": sorted(s["donors"]) if voices else len(s["donors"]),
            "voices": len(s["voices"]),
            "words": len(s["words"]),
            "MB": round(s["bytes"] / 1e6, 1),
        }
    noise = sorted((root / NOISE_DIR).glob("*.wav")) if layout == "speech_commands" else []
    if noise:
        report["background_noise"] = {
            "files": len(noise),
            "minutes": round(sum(sf.info(str(p)).duration for p in noise) / 60, 1),
            "MB": round(sum(p.stat().st_size for p in noise) / 1e6, 1),
        }
    report["total_MB"] = round(sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6, 1)
    stamp = root / STAMP
    if stamp.is_file():
        report["synth"] = json.loads(stamp.read_text())
    return report


def _new_split() -> dict:
    return {"clips": 0, "seconds": 0.0, "bytes": 0, "speakers": set(), "words": set(), "donors": set(), "voices": set()}


def read_voices(root: Path) -> dict[str, dict] | None:
    """Speaker id -> {engine, voice, donor, split} from a generated corpus's voices.json; None for a real tree."""
    path = root / "voices.json"
    if not path.is_file():
        return None
    try:
        return {str(row["speaker"]): row for row in json.loads(path.read_text())}
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise InputError(f"{path}: not a list of {{speaker, engine, voice, donor, split}} rows: {e}") from None


def _commands_files(root: Path):
    lists = {}
    for split in ("validation", "testing"):
        path = root / f"{split}_list.txt"
        lists[split] = set(path.read_text().split()) if path.is_file() else set()
    for path in sorted(root.glob("*/*.wav")):
        word = path.parent.name
        if word.startswith(("_", ".")):
            continue
        rel = f"{word}/{path.name}"
        split = next((s for s, names in lists.items() if rel in names), "train")
        yield split, path.name.split("_nohash_")[0], {word}, path


def _librispeech_files(root: Path):
    for trans in sorted(root.glob("*/*/*/*.trans.txt")):
        split, speaker = trans.parts[-4], trans.parts[-3]
        words = {line.split(" ", 1)[0]: set(line.split()[1:]) for line in trans.read_text().splitlines() if line}
        for path in sorted(trans.parent.glob("*.flac")):
            yield split, speaker, words.get(path.stem, set()), path


def format_report(report: dict) -> str:
    lines = [f"{report['root']} ({report['layout']})"]
    header = f"{'split':<17}{'clips':>8}{'hours':>8}{'speakers':>10}{'voices':>8}{'words':>7}{'MB':>8}  donors"
    lines.append(header)
    for name, s in sorted(report["splits"].items()):
        donors = s["donors"] if isinstance(s["donors"], int) else f"{len(s['donors'])}: {', '.join(s['donors'])}"
        lines.append(
            f"{name:<17}{s['clips']:>8}{s['hours']:>8.3f}{s['speakers']:>10}{s['voices']:>8}{s['words']:>7}"
            f"{s['MB']:>8.1f}  {donors}"
        )
    if "background_noise" in report:
        b = report["background_noise"]
        lines.append(f"_background_noise_: {b['files']} files, {b['minutes']} min, {b['MB']} MB")
    lines.append(f"total: {report['total_MB']} MB")
    if "synth" in report:
        lines.append(f"synthesized: {json.dumps(report['synth']['key'])}, {report['synth']['seconds_to_build']} s")
    return "\n".join(lines)
