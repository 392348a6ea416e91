#!/usr/bin/env python3
"""Standalone keyword demo for a Raspberry Pi: `python3 deploy/pi/demo.py MODEL_DIR [--stdin | --file F]`.

Same options as `asr demo`; works from a checkout without installing the package (numpy, an interpreter
and, for the microphone, sounddevice are enough).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for `import asr`

from asr.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
