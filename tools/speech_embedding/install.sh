#!/usr/bin/env bash
# Google's speech_embedding as openWakeWord runs it (Apache-2.0), for the Pi-side verifier (asr verifier,
# asr.runtime.verifier), into VENV/speech_embedding (outside git): the two TFLite files of PyPI pyopen-wakeword
# 1.1.0, checked against their sha256. Only the models are used (its wheel's C library and code are not), so the
# x86-64 wheel serves any machine: `asr verifier` copies them into the export directory a Pi receives.
# Usage: tools/speech_embedding/install.sh VENV   (called by tools/setup.sh)
set -euo pipefail
VENV=$1
HOME_DIR="$VENV/speech_embedding"
[ -f "$HOME_DIR/.done" ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$VENV/bin/python" -m pip download --no-deps --only-binary=:all: --platform manylinux_2_35_x86_64 \
  --disable-pip-version-check -q -d "$tmp" "pyopen-wakeword==1.1.0" 2>&1 | { grep -v "is ignored: it is neither" || true; }
ls "$tmp"/pyopen_wakeword-1.1.0-*.whl >/dev/null 2>&1 \
  || { echo "[setup] pip could not download pyopen-wakeword==1.1.0 (the speech embedding): is PyPI reachable?" >&2; exit 1; }
"$VENV/bin/python" - "$tmp"/pyopen_wakeword-1.1.0-*.whl "$HOME_DIR" <<'PY'
import hashlib, sys, zipfile, pathlib
SHA256 = {
    "melspectrogram.tflite": "96fa0adccb6e8cf95cb14465409a1a2898ee4a96a85bb9ed3c7eb0e68bf163e8",
    "embedding_model.tflite": "c0aea21eb84a4ce90a08c870da41b7a7173b45269e6a3207c71d67c40f3a59d8",
}
out = pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
with zipfile.ZipFile(sys.argv[1]) as z:
    for name, digest in SHA256.items():
        data = z.read(f"pyopen_wakeword/models/{name}")
        if hashlib.sha256(data).hexdigest() != digest:
            sys.exit(f"[setup] {sys.argv[1]}: {name} has sha256 {hashlib.sha256(data).hexdigest()}, expected {digest}")
        tmp = out / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(out / name)
    (out / "LICENSE").write_bytes(z.read("pyopen_wakeword-1.1.0.dist-info/licenses/LICENSE"))
PY
touch "$HOME_DIR/.done"
echo "[setup] speech embedding ready: $HOME_DIR"
