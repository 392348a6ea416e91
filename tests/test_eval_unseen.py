"""`asr eval` on what the model never heard: per-donor accuracy, false keywords on unseen words and silence,
keyword-only accuracy, and the same report for the int8 export running in TFLite Micro."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from asr.data.recipe import load_recipe


def _eval(checkpoint, corpus, out, *extra) -> dict:
    cmd = [sys.executable, "-m", "asr.cli", "eval", str(checkpoint), str(corpus), "--split", "testing"]
    result = subprocess.run([*cmd, "--out", str(out), *map(str, extra)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "keyword-only accuracy" in result.stdout and "called a keyword" in result.stdout
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def torch_report(kws_checkpoint, commands_corpus, tmp_path_factory) -> dict:
    return _eval(kws_checkpoint, commands_corpus, tmp_path_factory.mktemp("eval") / "torch.json")


def _check_consistent(report: dict) -> None:
    per_class, labels = report["per_class"], report["labels"]
    recalls = [per_class[k]["recall"] for k in labels[2:] if per_class[k]["support"]]
    assert report["keyword_accuracy"] == pytest.approx(np.mean(recalls))
    fk = report["false_keyword"]
    for rate in (fk["unseen_words"]["rate"], fk["seen_words"]["rate"], fk["silence"]["rate"]):
        assert 0.0 <= rate <= 1.0
    assert fk["unseen_words"]["clips"] + fk["seen_words"]["clips"] == per_class["_unknown_"]["support"]
    assert fk["silence"]["windows"] == per_class["_silence_"]["support"]
    assert report["speech_clips"] == report["examples"] - per_class["_silence_"]["support"]
    for group in ("donor", "engine", "voice"):
        rows = report["groups"][group]
        assert sum(r["examples"] for r in rows.values()) == report["speech_clips"]
        assert all(0.0 <= r["accuracy"] <= 1.0 and r["splits"] == ["testing"] for r in rows.values())


def test_report_breaks_down_unseen_voices_and_words(torch_report, commands_corpus):
    assert torch_report["model"] == {"runtime": "pytorch", "precision": "float32", "condition": "clean"}
    _check_consistent(torch_report)
    # The words found only in testing are exactly the recipe's held-out words.
    assert torch_report["false_keyword"]["unseen_words"]["words"] == sorted(load_recipe().scale("tiny").heldout_words)
    voices = json.loads((commands_corpus / "voices.json").read_text())
    test_donors = {row["donor"] for row in voices if row["split"] == "testing"}
    assert set(torch_report["groups"]["donor"]) == test_donors


def test_noisy_condition_scores_the_same_clips_with_noise(torch_report, kws_checkpoint, commands_corpus, tmp_path):
    noisy = _eval(kws_checkpoint, commands_corpus, tmp_path / "noisy.json", "--noisy")
    assert noisy["model"]["condition"] == "noisy 5-20 dB SNR"
    _check_consistent(noisy)
    assert noisy["examples"] == torch_report["examples"]
    assert noisy["confusion"] != torch_report["confusion"]  # the noise changes some decisions of a tiny model
    assert noisy == _eval(kws_checkpoint, commands_corpus, tmp_path / "again.json", "--noisy")  # the same noise


def test_tflite_micro_report_matches_pytorch(torch_report, kws_checkpoint, kws_export, commands_corpus, tmp_path):
    report = _eval(kws_checkpoint, commands_corpus, tmp_path / "micro.json", "--tflite", kws_export)
    assert report["model"]["runtime"] == "tflite_micro" and report["model"]["precision"] == "int8"
    _check_consistent(report)
    assert report["examples"] == torch_report["examples"]
    # int8 rounding may flip a borderline window or two of the few in the tiny test split.
    assert abs(report["accuracy"] - torch_report["accuracy"]) <= 2.5 / report["examples"]
    assert report["false_keyword"]["unseen_words"]["words"] == torch_report["false_keyword"]["unseen_words"]["words"]


def test_real_tree_without_voices_skips_groups(kws_checkpoint, commands_corpus, tmp_path):
    tree = tmp_path / "commands"
    shutil.copytree(commands_corpus, tree, ignore=shutil.ignore_patterns("voices.json", "SYNTH.json"))
    report = _eval(kws_checkpoint, tree, tmp_path / "real.json")
    assert report["groups"] is None and report["false_keyword"]["unseen_words"]["words"]


def test_tflite_option_names_a_bad_export_dir(kws_checkpoint, commands_corpus, tmp_path):
    cmd = [sys.executable, "-m", "asr.cli", "eval", str(kws_checkpoint), str(commands_corpus)]
    result = subprocess.run([*cmd, "--tflite", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "manifest.json" in result.stderr and "Traceback" not in result.stderr
