"""tools/error_agreement.py: two copies of one trained model agree on every clip, and the counts add up."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_one_model_twice_misses_the_same_clips(tmp_path, kws_checkpoint, commands_corpus):
    out = tmp_path / "agreement.json"
    cmd = [sys.executable, str(ROOT / "tools/error_agreement.py"), str(kws_checkpoint), str(kws_checkpoint),
           "--data", str(commands_corpus), "--out", str(out)]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text())

    accuracy = report["models"][0]
    assert report["models"] == [accuracy, accuracy] and report["ensemble"] == accuracy
    right, one, both = report["wrong_in_k_models"]
    assert one == 0  # the same weights never disagree
    assert both == round((1 - accuracy) * (right + both))
    assert sum(row["all_wrong"] for row in report["all_wrong_by_label"].values()) == both
    assert sum(report["all_wrong_by_group"].values()) == both
    assert "ensemble (mean probability)" in run.stdout
