"""`asr model info CONFIG [--set key=value ...]`: print a config's unique vs effective parameters."""

from __future__ import annotations

import argparse
import json
import tomllib

from asr.config import Config, load_config
from asr.errors import InputError
from asr.model.build import build_model, num_outputs
from asr.model.report import format_report, parameter_report


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """CONFIG and --set, shared by the commands that read a config."""
    parser.add_argument("config", help="built-in config name (kws-tiny) or path to a TOML file")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value, e.g. --set model.depth=8 --set model.sharing='\"cycle\"' (TOML value)",
    )  # fmt: skip


def parse_overrides(items: list[str]) -> dict:
    """`key=value` strings -> {key: value}; a value is read as TOML (8, 1e-3, true, [1, 2]) or else taken as text."""
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise InputError(f"--set {item!r}: expected KEY=VALUE")
        try:
            out[key.strip()] = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = text
    return out


def config_from_args(args: argparse.Namespace) -> Config:
    return load_config(args.config, parse_overrides(args.overrides))


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = sub.add_parser("info", help="unique (stored) vs effective (computed) parameters, by module")
    add_config_args(info)
    info.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    report = parameter_report(build_model(config, num_outputs(config)))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        m = config.model
        print(
            f"{config.name}: {m.arch}, task {config.task}, d_model {m.d_model}, depth {m.depth}, sharing {m.sharing} "
            f"(M={m.unique_blocks}), per_depth_norm {m.per_depth_norm}, lora_rank {m.lora_rank}"
        )
        print(format_report(report))
    return 0
