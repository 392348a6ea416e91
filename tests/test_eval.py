"""`asr eval` and `asr plot` on the trained fixture model; the CTC path trains and scores on the sentences corpus."""

import json
import subprocess
import sys

import numpy as np
import pytest

from asr.config import load_config
from asr.data.splits import open_split
from asr.evaluation.evaluate import keyword_predictions
from asr.model.checkpoint import load_checkpoint
from asr.train.loop import train


def _asr(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "asr.cli", *map(str, args)], capture_output=True, text=True, timeout=300
    )


def test_fixture_model_classifies_its_training_clips_better_than_chance(kws_checkpoint):
    loaded = load_checkpoint(kws_checkpoint)
    assert not loaded.model.training and loaded.labels[:2] == ["_silence_", "_unknown_"]
    source = open_split(loaded.config, loaded.config.data.root, "train")
    preds, targets = keyword_predictions(loaded.model, source, loaded.config.features)
    assert (preds == targets).mean() > 2.0 / len(loaded.labels)


def test_eval_writes_report_and_confusion_matrix(kws_checkpoint, commands_corpus, tmp_path):
    out = tmp_path / "report.json"
    result = _asr("eval", kws_checkpoint, commands_corpus, "--split", "testing", "--out", out)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["split"] == "testing" and 0.0 <= report["accuracy"] <= 1.0
    assert report["examples"] == sum(c["support"] for c in report["per_class"].values())
    assert np.array(report["confusion"]).sum() == report["examples"]
    assert out.with_suffix(".confusion.png").stat().st_size > 1000


def test_plot_draws_the_run_curves(kws_checkpoint, tmp_path):
    result = _asr("plot", kws_checkpoint.parent, "--out", tmp_path / "curves.png")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_files_get_clear_errors(tmp_path, commands_corpus):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a checkpoint"):
        load_checkpoint(junk)
    result = _asr("eval", tmp_path / "missing.pt", commands_corpus)
    assert result.returncode == 2 and "missing.pt" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_ctc_trains_and_reports_wer(tmp_path, sentences_corpus):
    overrides = {
        "data.root": str(sentences_corpus),
        "model.d_model": 32,
        "model.ffn_dim": 64,
        "model.depth": 2,
        "model.subsampling_channels": 8,
        "train.steps": 6,
        "train.batch_size": 4,
        "train.eval_every": 6,
        "train.checkpoint_every": 6,
        "train.num_workers": 0,
    }
    run_dir = tmp_path / "ctc"
    metrics = train(load_config("asr-tiny", overrides), run_dir, progress=False)
    assert metrics["dev_wer"] >= 0.0 and (run_dir / "tokenizer.model").is_file()
    loaded = load_checkpoint(run_dir / "best.pt")
    assert loaded.tokenizer == run_dir / "tokenizer.model"
    out = tmp_path / "wer.json"
    result = _asr("eval", run_dir / "best.pt", sentences_corpus, "--out", out)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["split"] == "test-clean" and report["wer"] >= 0.0 and report["samples"]
