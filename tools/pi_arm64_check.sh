#!/usr/bin/env bash
# Run the Raspberry Pi demo (deploy/pi/demo.py) on an emulated arm64 CPU, with Debian bookworm's Python 3.11
# (what Raspberry Pi OS 64-bit ships) and the aarch64 wheels of the Pi's dependencies (pyproject's `device`
# extra). Proves the Pi path installs and runs on Arm's instruction set; says nothing about a Pi's speed,
# microphone or PortAudio setup.
#
#   tools/pi_arm64_check.sh EXPORT_DIR WAV [CTC_EXPORT_DIR]   # e.g. runs/kws/export data/generated/stream/stream.wav
#
# An EXPORT_DIR with phrases set up (`asr phrases`) also has them listened for there and on the host.
# With CTC_EXPORT_DIR (an `asr export` of a CTC model, text or phones) it also runs the device's CTC commands there
# on the same audio: `asr transcribe CTC_EXPORT_DIR AUDIO` (and `--grammar` of the default grammar where the export
# carries a lexicon) and `asr demo CTC_EXPORT_DIR --keyword marvin --file AUDIO`. The phrase is set up on the host first (espeak-ng for a phone model: the repository's .venv), in a copy of
# CTC_EXPORT_DIR, whose keywords.json the emulated Pi then only reads. Each is compared with the host's run.
#
# Environment:
#   PI_ARM64_DIR     cache for the arm64 root and wheels (default: build/pi-arm64 in the repository)
#   PI_CPU           emulated CPU: cortex-a72 (Raspberry Pi 4, default) or cortex-a76 (Raspberry Pi 5)
#   PI_SECONDS       run on the first N seconds of WAV (default 60; 0: all of it; emulation is 40-90x slower)
#   PI_ARM64_MIRROR  Debian mirror (default: the one this machine's apt uses, else deb.debian.org)
#   HOST_PYTHON      a host Python >= 3.11 with pip, to download the wheels (default: the repository's .venv)
#
# Exits non-zero if an emulated command fails. Needs root (or sudo) for apt-get and debootstrap, on Debian/Ubuntu.
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 EXPORT_DIR WAV [CTC_EXPORT_DIR]" >&2
  exit 2
fi
REPO=$(cd "$(dirname "$0")/.." && pwd)
EXPORT_DIR=$(cd "$1" && pwd)
WAV=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
CTC_EXPORT_DIR=""
[ $# -lt 3 ] || CTC_EXPORT_DIR=$(cd "$3" && pwd)
[ -f "$EXPORT_DIR/manifest.json" ] || { echo "$EXPORT_DIR: no manifest.json (an 'asr export' directory)" >&2; exit 2; }
[ -f "$WAV" ] || { echo "$WAV: not found" >&2; exit 2; }
# The CTC checks need the host too: the phrase's set-up (espeak-ng phones for a phone model) and the reference.
HOST_VENV=$REPO/.venv/bin/python
if [ -n "$CTC_EXPORT_DIR" ]; then
  [ -f "$CTC_EXPORT_DIR/manifest.json" ] \
    || { echo "$CTC_EXPORT_DIR: no manifest.json (an 'asr export' directory)" >&2; exit 2; }
  if [ ! -x "$HOST_VENV" ] \
    || ! PYTHONPATH=$REPO "$HOST_VENV" -c 'import asr.runtime.phrases, soundfile' 2>/dev/null; then
    echo "CTC_EXPORT_DIR needs the repository's .venv (asr's runtime, soundfile) to set up the phrase" >&2
    exit 2
  fi
  PYTHONPATH=$REPO "$HOST_VENV" -c 'import sys; from asr.runtime.phrases import is_ctc_export
sys.exit(not is_ctc_export(sys.argv[1]))' "$CTC_EXPORT_DIR" 2>/dev/null \
    || { echo "$CTC_EXPORT_DIR: not a CTC export (its manifest names no CTC units)" >&2; exit 2; }
fi
CACHE=${PI_ARM64_DIR:-$REPO/build/pi-arm64}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
ROOTFS=$CACHE/rootfs
SITE=$CACHE/site
CPU=${PI_CPU:-cortex-a72}
SECONDS_CUT=${PI_SECONDS:-60}
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
log() { echo "[pi-arm64] $*" >&2; }

# --- host tools ------------------------------------------------------------------------------------------
# qemu-user runs single arm64 Linux programs on this CPU. No binfmt_misc is needed (containers often lack it):
# we call qemu-aarch64 ourselves, with -L ROOTFS so the emulated program finds its arm64 loader and libraries.
# debootstrap fetches the arm64 Debian packages; its first stage only unpacks, it never runs arm64 code.
QEMU=$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)
if [ -z "$QEMU" ] || ! command -v debootstrap >/dev/null; then
  log "installing qemu-user-static and debootstrap with apt-get"
  $SUDO apt-get update -qq
  # Debian bookworm names it qemu-user-static; some releases ship the static binaries in qemu-user.
  $SUDO apt-get install -y -qq --no-install-recommends qemu-user-static debootstrap debian-archive-keyring \
    || $SUDO apt-get install -y -qq --no-install-recommends qemu-user debootstrap debian-archive-keyring
  QEMU=$(command -v qemu-aarch64-static || command -v qemu-aarch64)
fi

# --- arm64 Debian bookworm root (cached) -----------------------------------------------------------------
if [ ! -x "$ROOTFS/usr/bin/python3.11" ]; then
  # The mirror this machine's apt already reaches (deb822 `URIs:` or one-line `deb` entries, not security).
  MIRROR=${PI_ARM64_MIRROR:-$(grep -hsE '^[[:space:]]*(URIs:|deb[[:space:]])' /etc/apt/sources.list \
    /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
    | grep -oE 'https?://[^[:space:]]+/debian/?([[:space:]]|$)' | grep -v security | head -n 1 | tr -d '[:space:]' || true)}
  MIRROR=${MIRROR:-http://deb.debian.org/debian}
  log "building the arm64 bookworm root in $ROOTFS from $MIRROR"
  TMP_ROOT=$CACHE/rootfs.partial
  $SUDO rm -rf "$TMP_ROOT"
  # minbase + Python 3.11 and the two C libraries the demo's wheels load (libsndfile: soundfile falls back to
  # it; libportaudio2: sounddevice's microphone), as deploy/pi/install.sh installs them with apt on the Pi.
  $SUDO debootstrap --foreign --arch=arm64 --variant=minbase --include=python3,libsndfile1,libportaudio2 \
    bookworm "$TMP_ROOT" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -n 20 "$CACHE/debootstrap.log" >&2; exit 1; }
  # The first stage unpacked only the `required` packages; the rest (python3 and the --include list with
  # their dependencies) wait as .debs. Unpack them without maintainer scripts (those would be arm64 code).
  # --keep-directory-symlink keeps the merged-/usr links (/lib -> usr/lib) that plain `dpkg -x` would replace.
  read -ra BASE_PKGS <"$TMP_ROOT/debootstrap/base"  # one line, space-separated package names
  for pkg in "${BASE_PKGS[@]}"; do
    for deb in "$TMP_ROOT"/var/cache/apt/archives/"${pkg}"_*_*.deb; do
      dpkg-deb --fsys-tarfile "$deb" | $SUDO tar -x --keep-directory-symlink -C "$TMP_ROOT"
    done
  done
  # qemu-user looks up every absolute path under -L ROOTFS first and falls back to the host's: an empty /dev
  # and /proc let the emulated program use the host's devices and /proc (debootstrap links proc -> /proc).
  $SUDO rm -rf "$TMP_ROOT/dev" "$TMP_ROOT/proc"
  $SUDO mkdir "$TMP_ROOT/dev" "$TMP_ROOT/proc"
  [ -x "$TMP_ROOT/usr/bin/python3.11" ] || { log "no python3.11 in the unpacked root"; exit 1; }
  $SUDO rm -rf "$ROOTFS"
  $SUDO mv "$TMP_ROOT" "$ROOTFS"  # only a complete root lands in the cache
fi

# A Raspberry Pi's /proc/cpuinfo for the emulated CPU. qemu 7.2 (bookworm) shows the emulated program the
# host's x86 /proc/cpuinfo; the cpuinfo library inside ai-edge-litert's XNNPACK then finds no Arm core and
# the interpreter dies with SIGSEGV before loading the model. With -L, qemu serves ROOTFS/proc/cpuinfo instead.
case $CPU in
  cortex-a72) # Raspberry Pi 4 (BCM2711)
    FEATURES="fp asimd evtstrm crc32 cpuid"; VARIANT=0x0; PART=0xd08; REV=3
    MODEL="Raspberry Pi 4 Model B Rev 1.4"; BOARD=d03114 ;;
  cortex-a76) # Raspberry Pi 5 (BCM2712)
    FEATURES="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
    VARIANT=0x4; PART=0xd0b; REV=1; MODEL="Raspberry Pi 5 Model B Rev 1.0"; BOARD=d04170 ;;
  *) echo "PI_CPU=$CPU: use cortex-a72 (Pi 4) or cortex-a76 (Pi 5)" >&2; exit 2 ;;
esac
{
  for i in 0 1 2 3; do
    printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\n' "$i" "$FEATURES"
    printf 'CPU architecture: 8\nCPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' "$VARIANT" "$PART" "$REV"
  done
  printf 'Revision\t: %s\nModel\t\t: %s\n' "$BOARD" "$MODEL"
} | $SUDO tee "$ROOTFS/proc/cpuinfo" >/dev/null

# The emulated Pi Python: arm64 python3.11 from the root, the aarch64 wheels, and the checkout (as demo.py
# itself does), no host packages. -cpu picks the Pi's core, so only its instruction set extensions exist.
PI_PYTHON=(env PYTHONPATH="$SITE:$REPO" PYTHONNOUSERSITE=1 "$QEMU" -cpu "$CPU" -L "$ROOTFS" "$ROOTFS/usr/bin/python3.11")
pi_python() { "${PI_PYTHON[@]}" "$@"; }
# `asr COMMAND ...` from the checkout, as deploy/pi/demo.py calls it: `python -c "$ASR_CLI" COMMAND ARGS`.
ASR_CLI='import sys; from asr.cli import main; sys.exit(main(sys.argv[1:]))'

# --- aarch64 wheels (cached) -----------------------------------------------------------------------------
# The requirements are pyproject's core dependencies plus the `device` extra: what install.sh puts on a Pi.
HOST_PYTHON=${HOST_PYTHON:-}
if [ -z "$HOST_PYTHON" ]; then
  if [ -x "$REPO/.venv/bin/python" ]; then
    HOST_PYTHON=$REPO/.venv/bin/python
  else  # a host venv only for pip (Debian's system pip refuses to install: PEP 668)
    if [ ! -x "$CACHE/host-venv/bin/python" ]; then
      python3 -m venv "$CACHE/host-venv" 2>/dev/null || {
        $SUDO apt-get install -y -qq --no-install-recommends python3-venv
        python3 -m venv "$CACHE/host-venv"
      }
      "$CACHE/host-venv/bin/python" -m pip install -q --upgrade pip
    fi
    HOST_PYTHON=$CACHE/host-venv/bin/python
  fi
fi
mapfile -t REQS < <("$HOST_PYTHON" - "$REPO/pyproject.toml" <<'EOF'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["device"]))
EOF
)
# Every manylinux tag the root's glibc accepts (bookworm: 2.36), as pip on the Pi itself would: with fewer tags
# pip silently picks an older release (ai-edge-litert 2.x is manylinux_2_27 only, 1.x manylinux_2_17).
GLIBC_MINOR=$(pi_python -c 'import platform; print(platform.libc_ver()[1].split(".")[1])')
PLATFORMS=(--platform manylinux2014_aarch64)
for minor in $(seq 17 "$GLIBC_MINOR"); do PLATFORMS+=(--platform "manylinux_2_${minor}_aarch64"); done
STAMP="${REQS[*]} | glibc 2.$GLIBC_MINOR"
if [ "$(cat "$SITE/.requirements" 2>/dev/null || true)" != "$STAMP" ]; then
  log "downloading aarch64 cp311 wheels into $SITE: ${REQS[*]}"
  rm -rf "$SITE.partial"
  # Host pip, target platform: --only-binary because nothing may be compiled for arm64 here.
  "$HOST_PYTHON" -m pip install -q --no-warn-conflicts --disable-pip-version-check --target "$SITE.partial" \
    "${PLATFORMS[@]}" --python-version 3.11 --implementation cp --only-binary=:all: "${REQS[@]}"
  echo "$STAMP" >"$SITE.partial/.requirements"
  rm -rf "$SITE"
  mv "$SITE.partial" "$SITE"
fi

# --- checks under emulation ------------------------------------------------------------------------------
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

log "emulated system:"
pi_python - <<'EOF'
import importlib.metadata as md, importlib.util, os, platform, sys
print(f"  platform.machine()={platform.machine()}  uname -m={os.uname().machine}  Python {sys.version.split()[0]}"
      f"  {'-'.join(platform.libc_ver())}")
print("  " + "  ".join(f"{d}=={md.version(d)}" for d in ("numpy", "ai-edge-litert", "soundfile", "sounddevice")))
heavy = [m for m in ("torch", "tensorflow", "tflite_runtime") if importlib.util.find_spec(m)]
if platform.machine() != "aarch64" or heavy:
    sys.exit(f"not the Pi environment: machine {platform.machine()}, unexpected packages {heavy}")
EOF

pi_python "$REPO/deploy/pi/demo.py" --help >/dev/null
log "--list-devices (no microphone expected in a container):"
pi_python "$REPO/deploy/pi/demo.py" --list-devices 2>&1 | sed 's/^/  /'

# The microphone path without a microphone must end in a message, not a traceback (a host that has one lets
# the demo listen: the timeout ends it).
rc=0
timeout 60 "${PI_PYTHON[@]}" "$REPO/deploy/pi/demo.py" "$EXPORT_DIR" </dev/null >"$WORK/mic.out" 2>&1 || rc=$?
if grep -q Traceback "$WORK/mic.out"; then
  cat "$WORK/mic.out" >&2
  log "FAIL: opening the microphone raised an exception"
  exit 1
fi
log "microphone without a device: exit $rc, $(grep -v '^INFO' "$WORK/mic.out" | head -n 1)"

# Emulation runs 40-90x slower than the host, so by default a 60 s piece stands in for the whole stream.
AUDIO=$WAV
if [ "$SECONDS_CUT" != 0 ]; then
  AUDIO=$WORK/first-${SECONDS_CUT}s.wav
  pi_python - "$WAV" "$AUDIO" "$SECONDS_CUT" <<'EOF'
import sys
import soundfile as sf
info = sf.info(sys.argv[1])
audio, rate = sf.read(sys.argv[1], frames=int(float(sys.argv[3]) * info.samplerate), dtype="int16")
sf.write(sys.argv[2], audio, rate, subtype="PCM_16")
EOF
fi

log "demo on $(basename "$AUDIO") with emulated $CPU (qemu timing, not a Pi's):"
start=$(date +%s)
rc=0
pi_python "$REPO/deploy/pi/demo.py" "$EXPORT_DIR" --file "$AUDIO" >"$CACHE/detections-arm64.txt" 2>"$WORK/demo.err" || rc=$?
elapsed=$(($(date +%s) - start))
sed 's/^/  /' "$CACHE/detections-arm64.txt"
grep -v '^INFO' "$WORK/demo.err" | sed 's/^/  /' >&2 || true
if [ "$rc" != 0 ]; then
  log "FAIL: the emulated demo exited with $rc"
  exit "$rc"
fi
log "emulated demo: ok, ${elapsed} s wall time under qemu"

# The same command on the host, for comparison only: the input features agree to float rounding and TFLite's
# reference int8 kernels give bit-identical scores on both, but XNNPACK's optimized int8 kernels round
# differently on x86 and Arm, so scores differ (up to ~0.08 seen) and a detection near the threshold may flip.
compare_detections() {  # HOST_FILE ARM64_FILE: lines `time label score`
  # Time and label of each detection (the first two columns), then the largest score difference.
  if cmp -s <(awk '{print $1, $2}' "$1") <(awk '{print $1, $2}' "$2"); then
    log "host ($(uname -m)): the same $(wc -l <"$1") detections; scores differ by at most" \
      "$(paste "$1" "$2" | awk '{d = $3 - $6; if (d < 0) d = -d; if (d > m) m = d} END {printf "%.3f", m}')"
  else
    log "host ($(uname -m)) detections differ (< host, > emulated arm64):"
    diff "$1" "$2" | sed 's/^/  /' >&2 || true
  fi
}
if [ -x "$HOST_VENV" ] && "$HOST_VENV" -c 'import numpy, soundfile' 2>/dev/null; then
  if "$HOST_VENV" "$REPO/deploy/pi/demo.py" "$EXPORT_DIR" --file "$AUDIO" \
    >"$CACHE/detections-host.txt" 2>/dev/null; then
    compare_detections "$CACHE/detections-host.txt" "$CACHE/detections-arm64.txt"
  fi
fi

# --- the CTC commands: transcribe, and a wake word defined by text ---------------------------------------
# run_pi NAME OUT COMMAND...: run an emulated command, its stdout to OUT; fail loudly if it exits non-zero or
# prints a traceback (an `asr` error message exits 2 without one).
run_pi() {
  local name=$1 out=$2 rc=0 start elapsed
  shift 2
  log "$name on $(basename "$AUDIO") with emulated $CPU:"
  start=$(date +%s)
  "${PI_PYTHON[@]}" "$@" >"$out" 2>"$WORK/pi.err" || rc=$?
  elapsed=$(($(date +%s) - start))
  sed 's/^/  /' "$out"
  grep -v '^INFO' "$WORK/pi.err" | sed 's/^/  /' >&2 || true
  if [ "$rc" != 0 ] || grep -q Traceback "$WORK/pi.err"; then
    log "FAIL: the emulated $name exited with $rc"
    exit 1
  fi
  log "emulated $name: ok, ${elapsed} s wall time under qemu"
}
# --- phrases defined by text for the Pi (`asr phrases` set them up in EXPORT_DIR/phrases on the PC) ------------
if [ -f "$EXPORT_DIR/phrases/phrases.json" ]; then
  mapfile -t PI_PHRASES < <(python3 -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["labels"][2:]))' \
    "$EXPORT_DIR/phrases/phrases.json")
  PHRASE_ARGS=()
  for p in "${PI_PHRASES[@]}"; do PHRASE_ARGS+=(--keyword "$p"); done
  run_pi "demo ${PHRASE_ARGS[*]}" "$CACHE/listener-arm64.txt" \
    "$REPO/deploy/pi/demo.py" "$EXPORT_DIR" "${PHRASE_ARGS[@]}" --file "$AUDIO"
  if "$HOST_VENV" "$REPO/deploy/pi/demo.py" "$EXPORT_DIR" "${PHRASE_ARGS[@]}" --file "$AUDIO" \
    >"$CACHE/listener-host.txt" 2>/dev/null; then
    compare_detections "$CACHE/listener-host.txt" "$CACHE/listener-arm64.txt"
  fi
fi
[ -n "$CTC_EXPORT_DIR" ] || exit 0

# A copy: set-up writes the phrase's units into EXPORT_DIR/keywords.json (a stored phrase there is kept).
CTC_DIR=$WORK/ctc-export
cp -r "$CTC_EXPORT_DIR" "$CTC_DIR"
PHRASE=marvin

# (a) The transcript of the cut audio (words where the export carries a lexicon, else greedy units), emulated and on
# the host.
run_pi transcribe "$CACHE/transcript-arm64.txt" -c "$ASR_CLI" transcribe "$CTC_DIR" "$AUDIO"
PYTHONPATH=$REPO "$HOST_VENV" -c "$ASR_CLI" transcribe "$CTC_DIR" "$AUDIO" \
  >"$CACHE/transcript-host.txt" 2>"$WORK/host.err" \
  || { cat "$WORK/host.err" >&2; log "FAIL: transcribe on the host failed"; exit 1; }
if cmp -s "$CACHE/transcript-host.txt" "$CACHE/transcript-arm64.txt"; then
  log "host ($(uname -m)): the same transcript ($(wc -w <"$CACHE/transcript-host.txt") words or units)"
else  # XNNPACK's rounding (above) flips frames between two close units (phone head: 18 of 1498 frames)
  edits=$("$HOST_VENV" - "$CACHE/transcript-host.txt" "$CACHE/transcript-arm64.txt" <<'EOF'
import difflib, sys
host, arm = (open(f).read().split() for f in sys.argv[1:])
ops = difflib.SequenceMatcher(None, host, arm, autojunk=False).get_opcodes()
edits = sum(max(i2 - i1, j2 - j1) for op, i1, i2, j1, j2 in ops if op != "equal")
print(f"{edits} edits between {len(host)} words or units (host) and {len(arm)} (emulated arm64)")
EOF
)
  log "host ($(uname -m)) transcript differs: $edits"
  sed 's/^/  host:  /' "$CACHE/transcript-host.txt" >&2
  sed 's/^/  arm64: /' "$CACHE/transcript-arm64.txt" >&2
fi

# (b) The phrase: set up on the host (espeak-ng for a phone model; the host's run is also the reference), then the
# emulated Pi, which has no espeak-ng and must only read the stored units.
"$HOST_VENV" "$REPO/deploy/pi/demo.py" "$CTC_DIR" --keyword "$PHRASE" --file "$AUDIO" \
  >"$CACHE/phrase-detections-host.txt" 2>"$WORK/host.err" \
  || { cat "$WORK/host.err" >&2; log "FAIL: setting up and spotting '$PHRASE' on the host failed"; exit 1; }
[ -f "$CTC_DIR/keywords.json" ] || { log "FAIL: the host's set-up stored no keywords.json"; exit 1; }
log "phrase set up on the host: $(grep -m 1 "^$PHRASE:" "$WORK/host.err")"
stored=$(cksum <"$CTC_DIR/keywords.json")
run_pi "demo --keyword $PHRASE" "$CACHE/phrase-detections-arm64.txt" \
  "$REPO/deploy/pi/demo.py" "$CTC_DIR" --keyword "$PHRASE" --file "$AUDIO"
[ "$(cksum <"$CTC_DIR/keywords.json")" = "$stored" ] \
  || { log "FAIL: the emulated demo rewrote keywords.json instead of reading the stored units"; exit 1; }
compare_detections "$CACHE/phrase-detections-host.txt" "$CACHE/phrase-detections-arm64.txt"

# (c) Intent by the default grammar: an export with a lexicon spells every request there, so the Pi, which has no
# espeak-ng, decodes a phone model's intent too.
if [ -f "$CTC_DIR/lexicon.txt" ]; then
  GRAMMAR=$REPO/asr/data/default_recipe/grammar.toml
  run_pi "transcribe --grammar" "$CACHE/intent-arm64.txt" -c "$ASR_CLI" transcribe "$CTC_DIR" "$AUDIO" --grammar "$GRAMMAR"
  PYTHONPATH=$REPO "$HOST_VENV" -c "$ASR_CLI" transcribe "$CTC_DIR" "$AUDIO" --grammar "$GRAMMAR" \
    >"$CACHE/intent-host.txt" 2>"$WORK/host.err" \
    || { cat "$WORK/host.err" >&2; log "FAIL: transcribe --grammar on the host failed"; exit 1; }
  cmp -s "$CACHE/intent-host.txt" "$CACHE/intent-arm64.txt" && log "host ($(uname -m)): the same request" \
    || log "host ($(uname -m)) request differs: $(cat "$CACHE/intent-host.txt")"
fi
