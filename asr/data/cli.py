"""`asr data synth` (generate the offline corpora), `asr data stream` (a labelled test recording from them) and
`asr data info ROOT` (summarise a corpus tree)."""

from __future__ import annotations

import argparse
import json

from asr.data.recipe import SPLITS


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    synth = sub.add_parser("synth", help="synthesize the commands and/or sentences corpus (cached by recipe+seed)")
    synth.add_argument("--corpus", choices=["commands", "sentences", "all"], default="all")
    synth.add_argument("--out", default="data/generated", help="parent folder of commands/ and sentences/")
    synth.add_argument("--scale", choices=["tiny", "default"], default="default")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--jobs", type=int, default=2, help="synthesis processes")
    synth.add_argument(
        "--splits", nargs="+", choices=SPLITS, default=list(SPLITS),
        help="sentences: build only these splits (a whole corpus already there is kept)",
    )  # fmt: skip
    from asr.data import stream

    stream.configure(sub.add_parser("stream", help="a long labelled recording of held-out voices for eval-stream"))
    from asr.data import real_speech

    real_speech.configure(
        sub.add_parser("real-speech", help="real human speech from Debian packages (LibriSpeech layout)")
    )
    info = sub.add_parser("info", help="clips, hours, donors and voices per split, size on disk")
    info.add_argument("root", help="a Speech Commands or LibriSpeech tree (real or generated)")
    info.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    if args.data_command == "synth":
        from asr.data.synth import CORPORA, build_corpus

        corpora = CORPORA if args.corpus == "all" else (args.corpus,)
        for corpus in corpora:
            splits = tuple(args.splits) if corpus == "sentences" else SPLITS
            root = build_corpus(corpus, args.out, args.scale, args.seed, args.jobs, splits)
            print(f"{corpus}: {root}")
        return 0
    if args.data_command in ("stream", "real-speech"):
        from asr.data import real_speech, stream

        return (stream if args.data_command == "stream" else real_speech).run(args)
    from asr.data.info import format_report, summarize

    report = summarize(args.root)
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0
