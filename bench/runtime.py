"""Benchmark the device runtime on this CPU: per-window model latency, front-end cost, the streaming
detector's real-time factor, and the demo process's peak memory, for each installed TFLite interpreter.

    python -m bench.runtime EXPORT_DIR [--audio stream.wav] [--seconds 60]

Each backend is measured in its own process (tflite-runtime cannot share a process with tensorflow, and
peak memory must be the demo's own). One interpreter thread, as on a Pi core.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from asr.runtime.interpreter import available_backends

ROOT = Path(__file__).resolve().parents[1]


def measure(export_dir: str, audio_path: str, backend: str) -> dict:
    """Timings of one backend (runs inside the worker process)."""
    from asr.audio import read_audio
    from asr.runtime.bundle import load_exported, output_kind
    from asr.runtime.detector import Detector, StreamingFrontend

    model, labels, spec, manifest = load_exported(export_dir, backend=backend)
    audio = read_audio(audio_path, spec.sample_rate)
    window = StreamingFrontend(spec).push(audio[: spec.clip_samples])
    for _ in range(20):  # warm-up
        model(window)
    latencies = []
    for _ in range(200):
        start = time.perf_counter()
        model(window)
        latencies.append(time.perf_counter() - start)

    hop = spec.sample_rate // 10  # the detector's default 100 ms hop
    frontend = StreamingFrontend(spec)
    start = time.perf_counter()
    for pos in range(0, len(audio), hop):
        frontend.push(audio[pos : pos + hop])
    frontend_s = time.perf_counter() - start

    detector = Detector(model, labels, spec, output_kind=output_kind(manifest))
    start = time.perf_counter()
    for pos in range(0, len(audio), hop):
        detector.push(audio[pos : pos + hop])
    detector_s = time.perf_counter() - start
    audio_s = len(audio) / spec.sample_rate
    return {
        "window_ms_median": 1000 * float(np.median(latencies)),
        "window_ms_p90": 1000 * float(np.percentile(latencies, 90)),
        "frontend_ms_per_hop": 1000 * frontend_s / (audio_s * 10),
        "rtf": detector_s / audio_s,
    }


def demo_peak_rss_mb(export_dir: str, audio_path: str, backend: str) -> float:
    """Peak resident memory of `asr demo --file` (ru_maxrss of a wrapper's only child, so runs don't mix)."""
    demo = [sys.executable, "-m", "asr.cli", "demo", export_dir, "--file", audio_path, "--backend", backend]
    code = (
        "import resource, subprocess, sys\n"
        f"subprocess.run({demo!r}, check=True, capture_output=True, cwd={str(ROOT)!r})\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return int(out.strip()) / 1024  # Linux reports KiB


def noise_file(seconds: float) -> str:
    from asr.audio import write_audio

    rng = np.random.default_rng(0)
    path = Path(tempfile.mkdtemp()) / "noise.wav"
    write_audio(path, 0.05 * rng.standard_normal(int(seconds * 16000)).astype(np.float32))
    return str(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export_dir", help="an `asr export` directory")
    parser.add_argument("--audio", help="a 16 kHz mono recording (default: generated noise)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the generated noise")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: measure one backend in this process
    args = parser.parse_args()
    audio = args.audio or noise_file(args.seconds)
    if args.worker:
        print(json.dumps(measure(args.export_dir, audio, args.worker)))
        return 0

    rows = []
    for backend in available_backends():
        worker = [sys.executable, __file__, args.export_dir, "--audio", audio, "--worker", backend]
        result = json.loads(subprocess.run(worker, check=True, capture_output=True, text=True).stdout)
        result["peak_rss_mb"] = demo_peak_rss_mb(args.export_dir, audio, backend)
        rows.append((backend, result))
    print(f"CPU: {platform_cpu()}, 1 interpreter thread, hop 100 ms, model {args.export_dir}")
    print(f"{'backend':<16} {'window ms':>10} {'p90 ms':>8} {'front end ms/hop':>17} {'RTF':>7} {'demo peak MB':>13}")
    for backend, r in rows:
        print(
            f"{backend:<16} {r['window_ms_median']:>10.3f} {r['window_ms_p90']:>8.3f} "
            f"{r['frontend_ms_per_hop']:>17.3f} {r['rtf']:>7.4f} {r['peak_rss_mb']:>13.1f}"
        )
    return 0


def platform_cpu() -> str:
    try:
        names = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
        return names[0] if names else "unknown"
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
