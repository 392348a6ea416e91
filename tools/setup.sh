#!/usr/bin/env bash
# One-time setup for a fresh Debian 12 machine with Python 3.11 (run as root, or with sudo for apt).
# Idempotent: a second run only checks and returns in seconds.
# Versions and the reasons behind each pin: see ../shared/STACK.md (recorded in requirements.lock.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3.11}
APT_PKGS="espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts festvox-suopuhe-lj sox libsox-fmt-all libsndfile1 libportaudio2 gcc g++
  wine64 gcc-mingw-w64-x86-64-win32"  # the last two: RHVoice (tools/rhvoice/install.sh)
# Firmware (asr firmware, tools/bench_firmware.py): the Arm compiler with its C/C++ libraries, and QEMU's boards.
APT_PKGS="$APT_PKGS gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm"
# npm: Kokoro's voices (tools/kokoro/install.sh); Debian's only where no other npm is installed (nodejs from
# another source bundles its own, and Debian's npm package then conflicts with it)
command -v npm >/dev/null || APT_PKGS="$APT_PKGS npm"
STAMP="$VENV/.setup-done"

missing=$(dpkg-query -W -f='${Package} ${Status}\n' $APT_PKGS 2>/dev/null | grep -v "install ok installed" | cut -d' ' -f1 || true)
for p in $APT_PKGS; do dpkg-query -W "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "${missing// /}" ]; then
  echo "[setup] installing Debian packages:$missing"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ -f "$STAMP" ] && cmp -s "$STAMP" tools/requirements.lock.txt && "$VENV/bin/python" -c "import asr" 2>/dev/null \
   && [ -f "$VENV/rhvoice/.done" ] \
   && [ -f "$VENV/kokoro/.done" ] && [ -f "$VENV/speech_embedding/.done" ]; then
  echo "[setup] environment up to date ($VENV)"; exit 0
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# pip on this machine kind warns about every missing local index folder; keep its real messages only.
PIP() { "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" 2>&1 | { grep -v "is ignored: it is neither" || true; }; }
PIP --upgrade pip wheel setuptools >/dev/null
# torch first: the CPU wheel (any other version pulls a multi-GB CUDA build).
PIP "torch==2.13.0"
# Packages whose own dependency pins would replace torch / tensorflow / numpy: installed without deps.
PIP --no-deps "torchaudio==2.11.0" "tf-keras==2.21.0" "onnx2tf==1.29.24"
PIP -r tools/requirements.lock.txt
# torchaudio 2.11's PyPI wheel ships compiled ops built against CUDA torch; on CPU torch they fail to load
# and take `import torchaudio` down with them. The project uses only its pure-Python parts (transforms,
# functional, models), so the CUDA-only libraries are set aside; torchaudio then imports without them.
TA_LIB=$("$VENV/bin/python" -c "import importlib.util as u, os; print(os.path.join(os.path.dirname(u.find_spec('torchaudio').origin), 'lib'))")
if ! "$VENV/bin/python" -c "import torchaudio" 2>/dev/null; then
  mkdir -p "$TA_LIB/cuda-only" && mv "$TA_LIB"/*.so "$TA_LIB/cuda-only/"
fi
"$VENV/bin/python" -c "import torchaudio; torchaudio.transforms.MelSpectrogram(n_fft=512, n_mels=40)"
PIP --no-deps -e .
bash tools/rhvoice/install.sh "$VENV"
bash tools/kokoro/install.sh "$VENV"
bash tools/speech_embedding/install.sh "$VENV"
cp tools/requirements.lock.txt "$STAMP"
echo "[setup] done: $VENV"
