#!/usr/bin/env bash
# Install the keyword demo on Raspberry Pi OS 64-bit (Bookworm, Python 3.11, Arm): numpy, a TFLite
# interpreter, soundfile and sounddevice. No torch, no tensorflow: the Pi only runs the exported model.
#
#   deploy/pi/install.sh                      # the venv and the `asr` command
#   deploy/pi/install.sh /home/pi/kws-export  # ... and a systemd service running the demo on that model at boot
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${VENV:-$HOME/asr-venv}
MODEL_DIR=${1:-}
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

$SUDO apt-get update -qq
# libportaudio2: the microphone (sounddevice); libsndfile1: WAV/FLAC (soundfile); alsa-utils: arecord, for --stdin.
$SUDO apt-get install -y -qq --no-install-recommends libportaudio2 libsndfile1 python3-venv alsa-utils

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "$REPO[device]"
# Refuse a heavy install by accident: the device extra must not pull these in.
if "$VENV/bin/python" -c "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) for m in ('torch', 'tensorflow')))"; then
  echo "[install] $VENV: asr installed without torch or tensorflow"
else
  echo "[install] warning: torch or tensorflow is installed in $VENV (not needed on the device)" >&2
fi
"$VENV/bin/asr" demo --list-devices || echo "[install] no audio device found yet: plug in a USB microphone" >&2

if [ -n "$MODEL_DIR" ]; then
  MODEL_DIR=$(cd "$MODEL_DIR" && pwd)
  [ -f "$MODEL_DIR/manifest.json" ] || { echo "$MODEL_DIR: no manifest.json (copy an 'asr export' directory)" >&2; exit 1; }
  sed -e "s|@USER@|$(id -un)|g" -e "s|@VENV@|$VENV|g" -e "s|@MODEL_DIR@|$MODEL_DIR|g" \
    "$REPO/deploy/pi/asr-demo.service" | $SUDO tee /etc/systemd/system/asr-demo.service >/dev/null
  $SUDO systemctl daemon-reload
  $SUDO systemctl enable --now asr-demo.service
  echo "[install] asr-demo.service running; follow it with: journalctl -u asr-demo -f"
else
  echo "[install] try it: $VENV/bin/asr demo MODEL_DIR   (or --file clip.wav, or arecord ... | asr demo MODEL_DIR --stdin)"
fi
