"""Kill `asr train` mid-run, rerun the same command: it resumes and ends with the uninterrupted run's weights."""

import json
import os
import signal
import subprocess
import sys
import time

import torch
from fixtures_model import tiny_kws_overrides

from asr.model.checkpoint import load_checkpoint, read_state

STEPS, EVERY = 24, 6


def _command(run_dir, corpus, keywords) -> list[str]:
    overrides = tiny_kws_overrides(corpus, keywords) | {
        "train.steps": STEPS,
        "train.checkpoint_every": EVERY,
        "train.eval_every": 12,
        "train.batch_size": 8,
        "model.dropout": 0.1,  # dropout draws from torch's global generator: resume must restore it
        "train.noise_prob": 0.8,
    }
    sets = [arg for key, value in overrides.items() for arg in ("--set", f"{key}={json.dumps(value)}")]
    return [sys.executable, "-m", "asr.cli", "train", "kws-tiny", "--run-dir", str(run_dir), "--no-progress", *sets]


def _last_logged_step(run_dir) -> int:
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return max((json.loads(line)["step"] for line in lines if line.endswith("}")), default=0)


def test_kill_and_rerun_resumes_exactly(tmp_path, commands_corpus, commands_keywords):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run(_command(straight, commands_corpus, commands_keywords), check=True, capture_output=True, timeout=300)

    proc = subprocess.Popen(_command(killed, commands_corpus, commands_keywords), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 240
    while _last_logged_step(killed) <= EVERY + 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    at_kill = read_state(killed / "checkpoint.pt")
    killed_at = at_kill["step"]
    assert EVERY <= killed_at < STEPS
    assert _last_logged_step(killed) > killed_at  # steps were lost and must be redone

    rerun = subprocess.run(_command(killed, commands_corpus, commands_keywords), capture_output=True, text=True,
                           timeout=300)  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming {killed} at step {killed_at}" in rerun.stdout

    a, b = read_state(straight / "checkpoint.pt"), read_state(killed / "checkpoint.pt")
    assert a["step"] == b["step"] == STEPS
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    for key in ("exp_avg", "exp_avg_sq"):
        assert all(
            torch.equal(a["optimizer"]["state"][i][key], b["optimizer"]["state"][i][key])
            for i in a["optimizer"]["state"]
        )
    records = [json.loads(line) for line in (killed / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in records if "loss" in r]
    assert train_steps == list(range(1, STEPS + 1))  # the lost steps were logged once, after the resume
    resumed = next(r for r in records if r["step"] == killed_at + 1 and "loss" in r)
    assert resumed["elapsed_s"] >= at_kill["elapsed_s"] > 0  # the clock goes on from the checkpoint
    best = load_checkpoint(killed / "best.pt")
    assert best.step > 0
    if best.step == STEPS:
        assert torch.equal(best.state["model"]["classifier.weight"], b["model"]["classifier.weight"])
