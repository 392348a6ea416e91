"""What the device's windows cost a CTC checkpoint: greedy WER in PyTorch on whole utterances, on whole utterances
followed by 1 s of digital silence, and on the device's fixed windows (the last one padded with digital silence,
as `asr.runtime.ctc_stream` does). Prints a Markdown table; "trained templates" leaves out the utterances of the
grammar's held-out templates.

    python -m bench.ctc_windows runs/asr-tiny/best.pt --data data/generated/sentences
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from asr.audio import read_audio
from asr.data.recipe import load_recipe
from asr.export.ctc import (
    DEFAULT_OVERLAP_SECONDS,
    DEFAULT_WINDOW_SECONDS,
    stream_log_probs,
    tokenizer_units,
    torch_window_model,
    window_plan,
)
from asr.features import log_mel
from asr.model.checkpoint import load_checkpoint
from asr.runtime.ctc import greedy
from asr.runtime.ctc_stream import silence_feature
from bench.peers.sentences import IntentMatcher, load_utterances, wer

WHOLE, PADDED, WINDOWS = "whole utterance", "whole utterance + 1 s of digital silence", "the device's windows"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a CTC checkpoint (best.pt), its tokenizer.model beside it")
    parser.add_argument("--data", type=Path, default=Path("data/generated/sentences"))
    parser.add_argument("--split", default="test-clean")
    parser.add_argument("--window-seconds", type=float, default=DEFAULT_WINDOW_SECONDS)
    parser.add_argument("--overlap-seconds", type=float, default=DEFAULT_OVERLAP_SECONDS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    loaded = load_checkpoint(args.checkpoint)
    model = loaded.model.eval()
    pieces, _ = tokenizer_units(loaded.tokenizer, args.checkpoint)
    config, plan = window_plan(loaded.config, args.window_seconds, args.overlap_seconds)
    spec, blank = config.features, len(pieces.pieces)
    utts = load_utterances(args.data, args.split, IntentMatcher(load_recipe().grammar))
    silence = np.full((round(spec.sample_rate / spec.hop_length), spec.n_mels), silence_feature(spec), np.float32)
    run = torch_window_model(model)  # any number of feature frames -> log-probabilities
    rows: dict[str, list[str]] = {WHOLE: [], PADDED: [], WINDOWS: []}
    for utt in tqdm(utts, desc="utterances", unit="utt"):
        audio = read_audio(utt.path, spec.sample_rate)
        features = log_mel(audio, spec)
        log_probs = {
            WHOLE: run(features),
            PADDED: run(np.concatenate([features, silence])),
            WINDOWS: stream_log_probs(run, audio, spec, plan, blank + 1),
        }
        for name, lp in log_probs.items():
            rows[name].append(pieces.decode(greedy(lp, blank)))
    refs = [u.reference for u in utts]
    trained = [i for i, u in enumerate(utts) if not u.heldout]
    print(f"{args.checkpoint} on {args.data}/{args.split} ({len(utts)} utterances, {len(trained)} of trained "
          f"templates); windows {args.window_seconds:g} s with {args.overlap_seconds:g} s of overlap\n")  # fmt: skip
    print("| input (PyTorch, greedy) | WER | WER, trained templates |\n|---|---|---|")
    for name, hyps in rows.items():
        print(f"| {name} | {wer(refs, hyps):.1%} | {wer([refs[i] for i in trained], [hyps[i] for i in trained]):.1%} |")


if __name__ == "__main__":
    main()
