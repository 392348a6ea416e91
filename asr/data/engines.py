"""The three Debian-main synthesizers behind one call: texts in, 16 kHz mono float32 audio out.

espeak-ng and flite start fast, so they run once per text; festival takes ~0.3 s to start, so one
`festival -b` process speaks a whole batch (80x faster than text2wave per word).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import soundfile as sf

from asr.audio import resample_audio
from asr.data.recipe import Speaker

SAMPLE_RATE = 16000
BINARIES = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "festival"}


class EngineMissing(RuntimeError):
    """A synthesizer (or one of its voices) is not installed; the message names the Debian package."""


@dataclass(frozen=True)
class Utterance:
    text: str
    pitch: int = 50  # espeak-ng -p (0-99)
    speed: int = 175  # espeak-ng -s (words per minute)
    range: str = "medium"  # espeak-ng SSML <prosody range>
    f0: float = 0.0  # target mean f0 in Hz (flite, festival diphone voices); 0 keeps the voice's own
    stretch: float = 1.0  # duration stretch (flite, festival)


def check_engine(engine: str, apt_package: str) -> None:
    if shutil.which(BINARIES[engine]) is None:
        raise EngineMissing(f"the speech synthesizer {engine!r} is not installed: apt-get install {apt_package}")


def synthesize(speaker: Speaker, utterances: list[Utterance], apt_package: str) -> list[np.ndarray]:
    check_engine(speaker.engine, apt_package)
    with tempfile.TemporaryDirectory(prefix="asr-synth-") as tmp:
        if speaker.engine == "festival":
            return _festival(speaker, utterances, Path(tmp), apt_package)
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
