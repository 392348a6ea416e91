"""The training loop, top to bottom in one function (in the spirit of nanoGPT's train.py).

Resuming is exact: rerunning the same command after a kill loads RUN_DIR/checkpoint.pt (model, optimizer,
scheduler, step, generator states) and continues with the same batches, because the batch of step k is a pure
function of (seed, k) (asr.train.batches). The run ends with the weights an uninterrupted run would have.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from asr.config import Config
from asr.errors import InputError
from asr.model import build_model
from asr.model.checkpoint import read_state
from asr.train import distributed
from asr.train.checkpoint import rng_state, save_checkpoint, set_rng_state
from asr.train.tasks import make_task


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warmup to 1, then cosine decay to 0 at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _log(path: Path, record: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop records written after the checkpoint we resume from (a killed run logged steps it lost)."""
    if path.is_file():
        keep = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
        path.write_text("".join(line + "\n" for line in keep))


def train(config: Config, run_dir: Path, progress: bool = True) -> dict:
    """Train (or resume) `config` in `run_dir`; returns the last dev metrics."""
    torch.set_flush_denormal(True)  # denormals slowed CPU training 20x once the loss got small
    d = distributed.setup()
    if d.device.type == "cpu":  # leave the loader workers their cores: oversubscribed threads spin-wait badly
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // d.world - config.train.num_workers))
    run_dir.mkdir(parents=True, exist_ok=True)
    tc = config.train
    task = make_task(config, run_dir, d.is_main)

    torch.manual_seed(tc.seed)  # identical initial weights on every rank
    model = build_model(config, task.num_outputs).to(d.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, tc.warmup_steps, tc.steps))
    torch.manual_seed(tc.seed + d.rank)  # dropout masks differ between ranks
    step, best, trained_s = 0, {"score": -math.inf, "step": -1}, 0.0  # trained_s: training time before this run
    ckpt_path, best_path, metrics_path = run_dir / "checkpoint.pt", run_dir / "best.pt", run_dir / "metrics.jsonl"
    if ckpt_path.is_file():
        state = read_state(ckpt_path)
        if state["config"] != config.to_dict():
            raise InputError(f"{ckpt_path}: was trained with another config; use a new --run-dir or delete it")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, best, trained_s = state["step"], state["best"], state.get("elapsed_s", 0.0)
        set_rng_state(state["rng"][d.rank] if d.rank < len(state["rng"]) else state["rng"][0])
        if d.is_main:
            _truncate_metrics(metrics_path, step)
            print(f"resuming {run_dir} at step {step}")
    net = distributed.wrap(model, d)

    def snapshot(with_training_state: bool) -> dict:
        state = {
            "config": config.to_dict(),
            "labels": task.labels,
            "tokenizer": task.tokenizer_file,
            "num_outputs": task.num_outputs,
            "model": model.state_dict(),
            "step": step,
            "best": best,
        }
        if with_training_state:
            rngs = [None] * d.world
            if d.world > 1:
                torch.distributed.all_gather_object(rngs, rng_state())
            else:
                rngs = [rng_state()]
            state |= {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rngs,
                      "elapsed_s": trained_s + time.time() - started}  # fmt: skip
        return state

    # The loader draws batches `step, step + 1, ...`; its own generator leaves the global RNG untouched.
    loader = DataLoader(
        task.batches(d.rank, d.world),
        batch_size=None,
        sampler=range(step, tc.steps),
        num_workers=tc.num_workers,
        persistent_workers=False,
        generator=torch.Generator(),
    )
    metrics = {}
    bar = tqdm(total=tc.steps, initial=step, desc=config.name, disable=not (progress and d.is_main))
    started = time.time()
    for batch in loader:
        net.train()
        loss = task.loss(net, batch, d.device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        optimizer.step()
        scheduler.step()
        step += 1
        bar.update()
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if d.is_main:
            lr = scheduler.get_last_lr()[0]
            _log(metrics_path, {"step": step, "loss": loss.item(), "lr": lr, "grad_norm": float(grad_norm),
                                "elapsed_s": round(trained_s + time.time() - started, 2)})  # fmt: skip
        if step % tc.eval_every == 0 or step == tc.steps:
            if d.is_main:
                metrics = task.evaluate(model)
                _log(metrics_path, {"step": step, **metrics})
                if metrics["score"] > best["score"]:
                    best = {"score": metrics["score"], "step": step}
                    save_checkpoint(best_path, snapshot(with_training_state=False))
                bar.write(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            if d.world > 1:  # every rank keeps the same record of the best checkpoint
                shared = [best]
                torch.distributed.broadcast_object_list(shared, src=0)
                best = shared[0]
        if step % tc.checkpoint_every == 0 or step == tc.steps:
            state = snapshot(with_training_state=True)
            if d.is_main:
                save_checkpoint(ckpt_path, state)
    bar.close()
    if step >= tc.steps and not metrics and d.is_main:
        print(f"{run_dir}: already trained for {tc.steps} steps (best dev score {best['score']:.4f})")
    distributed.teardown(d)
    return metrics
