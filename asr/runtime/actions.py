"""Run a shell command when a keyword fires, from a TOML file mapping labels to commands.

    yes = "mpc play"
    stop = "mpc stop"
    marvin = "aplay /usr/share/sounds/alsa/Front_Center.wav"

Commands run in the background (the detector must keep listening) with ASR_LABEL, ASR_SCORE and ASR_TIME
in their environment.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from asr.errors import InputError
from asr.files import read_toml
from asr.runtime.detector import Detection


def load_actions(path: str | Path, labels: list[str]) -> dict[str, str]:
    """label -> shell command; every key must be one of the model's labels."""
    table = read_toml(path, "actions file")
    unknown = sorted(set(table) - set(labels))
    if unknown:
        raise InputError(f"{path}: unknown label(s) {unknown}; the model's labels: {labels}")
    bad = sorted(label for label, command in table.items() if not isinstance(command, str))
    if bad:
        raise InputError(f"{path}: the command for {bad} must be a string")
    return table


def run_action(command: str, detection: Detection) -> subprocess.Popen:
    env = dict(
        os.environ, ASR_LABEL=detection.label, ASR_SCORE=f"{detection.score:.4f}", ASR_TIME=f"{detection.time_s:.3f}"
    )
    return subprocess.Popen(command, shell=True, env=env)  # the user's own command line, by design
