"""Two DDP processes (gloo, CPU), each on its shard of a global batch, get the single-process gradients.

Run by pytest, this file launches itself under torchrun as the two-process worker (see `__main__`). BatchNorm runs
on its stored statistics and dropout is off, so the loss of a global batch is exactly the mean of its shards'
(on CPU each rank normalises its own shard; on GPU the loop uses SyncBatchNorm).
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from fixtures_model import tiny_kws_overrides

from asr.config import load_config
from asr.model import build_model
from asr.train import distributed
from asr.train.tasks import KeywordTask

STEP = 3  # any step: the batch is a pure function of (seed, step)


def _gradients(overrides: dict, run_dir: Path) -> tuple[dict[str, torch.Tensor], int]:
    """Gradients of the loss of this process's shard of the batch of STEP (after DDP's all-reduce), and the rank."""
    config = load_config("kws-tiny", overrides)
    d = distributed.setup()
    task = KeywordTask(config, run_dir)
    torch.manual_seed(0)
    model = build_model(config, task.num_outputs)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
    net = distributed.wrap(model, d)
    task.loss(net, task.batches(d.rank, d.world)[STEP], d.device).backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    distributed.teardown(d)
    return grads, d.rank


def test_two_process_ddp_matches_single_process_gradients(tmp_path, commands_corpus, commands_keywords):
    overrides = tiny_kws_overrides(commands_corpus, commands_keywords) | {"train.batch_size": 8}
    (tmp_path / "overrides.json").write_text(json.dumps(overrides))
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    result = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", __file__, str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    ddp = torch.load(tmp_path / "grads.pt", weights_only=True)
    single, _ = _gradients(overrides, tmp_path)
    assert ddp.keys() == single.keys()
    for name, grad in single.items():
        torch.testing.assert_close(ddp[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    assert any(g.abs().sum() > 0 for g in single.values())


if __name__ == "__main__":  # one torchrun worker
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    grads, rank = _gradients(json.loads((out / "overrides.json").read_text()), out)
    if rank == 0:
        torch.save(grads, out / "grads.pt")
