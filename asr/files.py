"""Atomic file writes (a temporary file in the same folder, then a rename): a killed job never leaves a
half-written report, manifest or plot that looks complete; and TOML files read with errors that name them. Standard
library only, so the device runtime can use it."""

from __future__ import annotations

import os
import tempfile
import tomllib
from pathlib import Path

from asr.errors import InputError, MissingError


def default_mode() -> int:
    """The permissions `open()` gives a new file (0o666 less the umask). mkstemp makes its files private, so a
    file written atomically would otherwise be unreadable to another user, e.g. the Pi's demo service."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _temp_beside(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".part{path.suffix}")
    os.fchmod(fd, default_mode())
    os.close(fd)
    return Path(tmp)


def write_text_atomic(path: str | Path, text: str) -> Path:
    path = Path(path)
    tmp = _temp_beside(path)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_toml(path: str | Path, what: str) -> dict:
    """The tables of the TOML file `path` (a `what`, named in the errors), read with the safe stdlib loader."""
    path = Path(path)
    if not path.is_file():
        raise MissingError(f"{path}: no such {what}")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: not valid TOML: {e}") from None


def save_figure_atomic(fig, path: str | Path, **savefig_kwargs) -> Path:
    """Save a matplotlib figure (format from the file's suffix) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    tmp = _temp_beside(path)
    fig.savefig(tmp, format=path.suffix[1:] or "png", **savefig_kwargs)
    plt.close(fig)
    os.replace(tmp, path)
    return path
