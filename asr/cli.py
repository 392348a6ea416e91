"""The `asr` command. Each subcommand lives in the module that does the work; this file only routes.

A subcommand module defines `configure(parser)` (its arguments) and `run(args) -> int`. Modules are
imported only when their subcommand runs, so `asr demo` on a Raspberry Pi never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from asr.errors import AsrError

# name -> (module, one-line help); the order is the data flow.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "data": (
        "asr.data.cli",
        "generate the offline corpora (synth), a labelled test stream (stream), corpus summaries (info)",
    ),
    "model": ("asr.model.cli", "model reports: `asr model info CONFIG` prints unique vs effective parameters"),
    "train": ("asr.train.cli", "train a model from a config (resumes from its checkpoint; torchrun for DDP)"),
    "plot": ("asr.train.plot", "plot a run's training curves"),
    "eval": ("asr.evaluation.evaluate", "evaluate a checkpoint on a corpus split (accuracy / WER, JSON report)"),
    "export": ("asr.export.cli", "PyTorch -> ONNX -> TFLite float32 and int8, parity checks, MCU bundle"),
    "verifier": ("asr.train.verifier", "train an export's Pi-side second opinion on real-speech embeddings"),
    "phrases": ("asr.train.phrase_listener", "set up wake words defined by text for the Pi (asr demo --keyword)"),
    "firmware": ("asr.export.firmware", "build the MCU bundle with TFLite Micro: host program or Cortex-M image"),
    "demo": ("asr.runtime.demo", "streaming keyword demo on microphone, file or stdin audio"),
    "transcribe": ("asr.runtime.transcribe", "speech to text with an exported CTC model on file, stdin or microphone"),
    "eval-stream": ("asr.evaluation.stream", "wake-word metrics on a long labelled recording"),
    "summary": ("asr.evaluation.summary", "the main job's closing table from the reports its steps wrote"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="asr", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    modules = {}
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:  # import only the module that will run
            modules[name] = importlib.import_module(module_name)
            modules[name].configure(p)
    args = parser.parse_args(argv)
    try:
        return int(modules[args.command].run(args) or 0)
    except AsrError as e:  # anything else is a bug: keep its traceback
        print(f"asr {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"asr {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
