"""Where the demo's audio comes from: a microphone, an audio file, or raw 16-bit PCM on stdin.

Each source is an iterator of float32 mono chunks in [-1, 1] at the model's sample rate. sounddevice
(PortAudio) is imported only for the microphone, so file and stdin input work on machines without it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from asr.errors import InputError

PCM_SCALE = 32768.0  # int16 full scale

NO_MICROPHONE_HINT = "use --file AUDIO.wav, or pipe raw audio: arecord -f S16_LE -r 16000 -c 1 | asr demo MODEL --stdin"


class AudioSourceError(InputError):
    """Audio input that cannot be opened: no PortAudio, no microphone, an unreadable file."""


def file_chunks(
    path: str | Path, sample_rate: int, chunk_samples: int, *, resample: bool = False
) -> Iterator[np.ndarray]:
    """Chunks of a mono WAV/FLAC file; one at another sample rate is an error unless `resample`."""
    from asr.audio import read_audio  # soundfile: not needed for stdin or microphone input

    audio = read_audio(path, sample_rate=sample_rate, resample=resample)
    for start in range(0, len(audio), chunk_samples):
        yield audio[start : start + chunk_samples]


def pcm_chunks(stream: BinaryIO, chunk_samples: int) -> Iterator[np.ndarray]:
    """Chunks of raw signed 16-bit little-endian mono PCM (what `arecord -f S16_LE -c 1` writes)."""
    leftover = b""
    while True:
        data = stream.read(2 * chunk_samples)
        if not data:
            break
        data = leftover + data
        usable = len(data) - len(data) % 2  # a read may end between the two bytes of a sample
        data, leftover = data[:usable], data[usable:]
        if data:
            yield np.frombuffer(data, dtype="<i2").astype(np.float32) / PCM_SCALE


def stdin_chunks(chunk_samples: int) -> Iterator[np.ndarray]:
    return pcm_chunks(sys.stdin.buffer, chunk_samples)


def import_sounddevice():
    """The sounddevice module, or AudioSourceError with what to do instead."""
    try:
        import sounddevice
    except ImportError:
        raise AudioSourceError(
            f"sounddevice is not installed (pip install sounddevice); {NO_MICROPHONE_HINT}"
        ) from None
    except OSError as e:  # "PortAudio library not found"
        raise AudioSourceError(f"{e} (apt install libportaudio2); {NO_MICROPHONE_HINT}") from None
    return sounddevice


def list_devices() -> str:
    """PortAudio's device table, for choosing --device."""
    return str(import_sounddevice().query_devices())


def microphone_chunks(sample_rate: int, chunk_samples: int, device: int | str | None = None) -> Iterator[np.ndarray]:
    """Chunks recorded live; the stream opens now, so a missing microphone fails before listening starts."""
    sd = import_sounddevice()
    port_audio_error = getattr(sd, "PortAudioError", OSError)
    try:
        stream = sd.InputStream(
            samplerate=sample_rate, channels=1, dtype="float32", blocksize=chunk_samples, device=device
        )
        stream.start()
    except (port_audio_error, ValueError) as e:  # "Error querying device -1": no sound card / no such device
        raise AudioSourceError(
            f"cannot open microphone {device if device is not None else '(default)'}: {e}; "
            f"see --list-devices, or {NO_MICROPHONE_HINT}"
        ) from None
    return _read(stream, chunk_samples)


def _read(stream, chunk_samples: int) -> Iterator[np.ndarray]:
    try:
        while True:
            data, overflowed = stream.read(chunk_samples)
            if overflowed:
                print("warning: audio input overflowed (the detector fell behind)", file=sys.stderr)
            yield np.asarray(data, dtype=np.float32).reshape(-1)
    finally:
        stream.stop()
        stream.close()


def demo_chunks(args, sample_rate: int, listening_for: list[str]) -> Iterator[np.ndarray]:
    """The chunks `asr demo`'s arguments ask for: --file, --stdin, else the microphone (--device)."""
    chunk = max(1, round(args.chunk_ms / 1000 * sample_rate))
    if args.file:
        return file_chunks(args.file, sample_rate, chunk, resample=args.resample)
    if args.stdin:
        return stdin_chunks(chunk)
    device = int(args.device) if args.device is not None and args.device.isdigit() else args.device
    chunks = microphone_chunks(sample_rate, chunk, device)
    print(f"listening for {', '.join(listening_for)} (Ctrl-C to stop)", file=sys.stderr)
    return chunks
