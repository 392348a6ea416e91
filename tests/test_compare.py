"""bench/compare.py and bench.peers: the side-by-side comparison on the tiny generated corpus, in quick mode."""

import json
from pathlib import Path

import numpy as np
import pytest

from asr.config import load_config
from asr.data.speech_commands import SpeechCommands
from asr.runtime.bundle import Manifest
from bench import compare as bench_compare
from bench.peers.pocketsphinx import GrammarRecognizer
from bench.peers.testset import load_testset

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "asr" / "configs"


def test_compared_models_share_data_and_budget_and_the_tied_one_is_kws_tiny():
    configs = {p.stem: load_config(p.stem) for p in CONFIGS.glob("compare-*.toml")}
    assert set(configs) == {"compare-tied", "compare-untied", "compare-lora4", "compare-dscnn"}
    tied = configs["compare-tied"]
    for name, config in configs.items():
        assert config.train == tied.train, f"{name}: another training budget"
        assert config.data == tied.data, f"{name}: other data"
    assert tied.model == load_config("kws-tiny").model and tied.data == load_config("kws-tiny").data
    untied, lora = configs["compare-untied"].model, configs["compare-lora4"].model
    assert (untied.sharing, untied.unique_blocks, untied.depth) == ("none", 4, 4)
    assert (lora.sharing, lora.lora_rank) == ("all", 4)
    assert configs["compare-dscnn"].model.arch == "dscnn"


def test_noisy_test_set_is_deterministic_per_clip(commands_corpus, commands_keywords):
    a = load_testset(commands_corpus, commands_keywords)
    b = load_testset(commands_corpus, commands_keywords)
    assert np.array_equal(a.noisy, b.noisy) and np.array_equal(a.targets, b.targets)
    assert len(a.targets) == len(SpeechCommands(commands_corpus, "testing", commands_keywords))
    assert np.all((a.snr_db >= 5) & (a.snr_db <= 20))
    assert not np.allclose(a.clean, a.noisy)


def test_pocketsphinx_recognizes_clean_keywords(commands_corpus, commands_keywords):
    test = SpeechCommands(commands_corpus, "testing", commands_keywords)
    train = SpeechCommands(commands_corpus, "train", commands_keywords)
    unknown = sorted({p.parent.name for p, label in train.items if label == 1})
    recognizer = GrammarRecognizer(test.labels, unknown)
    assert set(unknown) <= set(recognizer.words) and not recognizer.missing
    keyword_clips = [i for i, (_, label) in enumerate(test.items) if label >= 2]
    right = sum(recognizer.classify(test[i][0]) == test[i][1] for i in keyword_clips)
    assert len(keyword_clips) >= 4 and right >= 0.75 * len(keyword_clips)


@pytest.fixture(scope="module")
def quick(tmp_path_factory, commands_corpus, kws_checkpoint, kws_export):
    """A quick comparison: the fixture's tied model as exported, a tiny untied one (30 steps, scored in PyTorch)
    and pocketsphinx."""
    out = tmp_path_factory.mktemp("compare")
    argv = ["--quick", "--data", str(commands_corpus), "--sentences", str(out / "none"), "--out", str(out)]
    argv += ["--systems", "tied", "untied", "pocketsphinx", "--no-export", "--no-progress"]
    argv += ["--checkpoint", f"tied={kws_checkpoint}", "--export", f"tied={kws_export}"]
    return bench_compare.main(argv)


def test_comparison_table_rows_and_sane_numbers(quick, kws_export):
    rows = {r["system"]: r for r in quick["rows"]}
    assert list(rows) == ["tied", "untied", "pocketsphinx"]
    tied, untied, ps = rows["tied"], rows["untied"], rows["pocketsphinx"]
    manifest = Manifest.read(kws_export)
    assert tied["stored_bytes"] == (kws_export / "model_int8.tflite").stat().st_size
    assert tied["arena_bytes"] == manifest.arena_bytes and tied["latency_ms"] > 0
    # same depth and width: the same computation, but the untied model stores a block per depth
    assert untied["macs"] == tied["macs"] > 0
    assert untied["unique_parameters"] > tied["unique_parameters"]
    assert untied["unique_parameters_vs_tied"] > 1 and tied["unique_parameters_vs_tied"] == 1
    assert ps["stored_bytes"] > 10 * tied["stored_bytes"]  # an HMM acoustic model is megabytes
    assert ps["accuracy_clean"] >= 0.5
    assert untied["train_seconds"] > 0  # trained by the tool itself, timed from its metrics
    for row in rows.values():
        for key in ("accuracy_clean", "accuracy_noisy"):
            assert 0.0 <= row[key] <= 1.0
        sweep = row["wake"]["sweep"]
        assert all(s["recall"] is not None and s["false_accepts_per_hour"] >= 0 for s in sweep)
        assert sweep[0]["recall"] >= sweep[-1]["recall"]  # the laxest threshold finds at least as much


def test_comparison_writes_table_json_and_plots(quick):
    paths = quick["paths"]
    text = paths["markdown"].read_text()
    for row in quick["rows"]:
        assert row["title"] in text
    assert "Training budget: 30 steps" in text
    saved = json.loads(paths["json"].read_text())
    assert [r["system"] for r in saved["rows"]] == ["tied", "untied", "pocketsphinx"]
    for key in ("accuracy_plot", "det_plot"):
        assert paths[key].read_bytes()[:4] == b"\x89PNG"
