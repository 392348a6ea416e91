"""Sharing plans: each builds, trains, and stores exactly the parameters it reports; bad plans fail early."""

import subprocess
import sys

import pytest
import torch

from asr.config import ConfigError, from_dict, load_config
from asr.model import build_model
from asr.model.report import parameter_report
from asr.model.sharing import sharing_plan

SMALL = {"d_model": 32, "n_heads": 4, "ffn_dim": 64, "kernel_size": 7, "depth": 4, "subsampling_channels": 4}
PLANS = {
    "none": {"sharing": "none", "unique_blocks": 4},
    "all": {"sharing": "all", "unique_blocks": 1},
    "cycle": {"sharing": "cycle", "unique_blocks": 2},
    "sequence": {"sharing": "sequence", "unique_blocks": 2},
    "all+norm+lora": {"sharing": "all", "unique_blocks": 1, "per_depth_norm": True, "lora_rank": 2},
    "cycle+lora": {"sharing": "cycle", "unique_blocks": 2, "lora_rank": 4},
}


def test_plans_map_depths_to_blocks():
    assert sharing_plan("none", 4, 4) == [0, 1, 2, 3]
    assert sharing_plan("all", 4, 1) == [0, 0, 0, 0]
    assert sharing_plan("cycle", 6, 2) == [0, 1, 0, 1, 0, 1]
    assert sharing_plan("sequence", 6, 2) == [0, 0, 0, 1, 1, 1]
    assert sharing_plan("cycle", 16, 4)[4:8] == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("sharing", "depth", "unique"), [("cycle", 4, 3), ("sequence", 4, 8), ("all", 4, 2), ("none", 4, 2), ("ring", 4, 2)]
)
def test_impossible_plans_are_config_errors(sharing, depth, unique):
    with pytest.raises(ConfigError, match="sharing"):
        sharing_plan(sharing, depth, unique)


def _stored_elements(model: torch.nn.Module) -> tuple[int, int]:
    """(elements, tensors) in the state dict, counting each storage once (by data_ptr)."""
    seen = {}
    for tensor in model.state_dict().values():
        seen.setdefault(tensor.data_ptr(), tensor.numel())
    return sum(seen.values()), len(seen)


@pytest.mark.parametrize("name", list(PLANS))
def test_plan_trains_and_stores_exactly_its_unique_parameters(name):
    torch.manual_seed(0)
    model = build_model(from_dict({"model": SMALL | PLANS[name]}), 6)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x, y = torch.randn(8, 97, 40), torch.randint(0, 6, (8,))
    losses = []
    for _ in range(5):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]

    report = parameter_report(model)
    elements, tensors = _stored_elements(model)
    assert elements == report["unique_parameters"] + report["buffer_elements"]
    assert tensors == len(model.state_dict())  # no tensor is stored under two names
    untied = build_model(from_dict({"model": SMALL | PLANS[name] | {"sharing": "none", "unique_blocks": 4}}), 6)
    assert report["effective_parameters"] == parameter_report(untied)["unique_parameters"]


def test_tied_model_stores_its_block_once_and_reuses_the_module():
    model = build_model(from_dict({"model": SMALL | PLANS["all"]}), 6)
    assert len(model.encoder.blocks) == 1
    keys = [k for k in model.state_dict() if k.startswith("encoder.blocks.0.ffn1_up.weight")]
    assert keys == ["encoder.blocks.0.ffn1_up.weight"]
    block = sum(p.numel() for p in model.encoder.blocks[0].parameters())
    report = parameter_report(model)
    assert report["effective_parameters"] == report["unique_parameters"] + 3 * block  # 4 depths run one block


def test_lora_starts_equal_to_the_strictly_tied_model():
    """B = 0 at initialisation: adapters change nothing until trained."""
    torch.manual_seed(0)
    relaxed = build_model(from_dict({"model": SMALL | PLANS["cycle+lora"]}), 6).eval()
    tied = build_model(from_dict({"model": SMALL | PLANS["cycle"]}), 6).eval()
    tied.load_state_dict({k: v for k, v in relaxed.state_dict().items() if ".adapters." not in k})
    x = torch.randn(2, 97, 40)
    torch.testing.assert_close(relaxed(x), tied(x))


def test_dscnn_baseline_classifies_the_same_input():
    model = build_model(from_dict({"model": {"arch": "dscnn"}}), 13)
    assert model(torch.randn(2, 97, 40)).shape == (2, 13)
    assert 15_000 < parameter_report(model)["unique_parameters"] < 40_000


def test_builtin_configs_build():
    for name in ("kws-tiny", "kws-mcu", "kws-stream", "asr-tiny", "asr-small-librispeech"):
        config = load_config(name)
        outputs = config.data.tokenizer_vocab + 1 if config.task == "ctc" else len(config.data.keywords) + 2
        assert parameter_report(build_model(config, outputs))["unique_parameters"] > 0


def test_the_microcontroller_config_is_the_default_recipe_narrower():
    default, mcu = load_config("kws-tiny"), load_config("kws-mcu")
    assert (mcu.data, mcu.train, mcu.features) == (default.data, default.train, default.features)
    assert (mcu.model.d_model, mcu.model.ffn_dim) == (64, 128) and mcu.model.depth == default.model.depth
    outputs = len(default.data.keywords) + 2
    sizes = [parameter_report(build_model(c, outputs))["unique_parameters"] for c in (default, mcu)]
    assert sizes[1] < 0.5 * sizes[0]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.bogus=1", "unknown key"),
        ("model.unique_blocks=3", "must divide depth"),
        ("model.causal=true", "model.head_frames > 0"),
    ],
)
def test_bad_config_fails_before_training(tmp_path, override, message):
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "asr.cli", "train", "kws-tiny", "--run-dir", str(run_dir), "--set", override,
         "--set", 'model.sharing="cycle"'],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not run_dir.exists()


def test_model_info_prints_the_table():
    result = subprocess.run(
        [sys.executable, "-m", "asr.cli", "model", "info", "kws-tiny"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "effective / unique" in result.stdout and "encoder.blocks" in result.stdout
