"""The arguments several verbs share, declared once: `--out`, `--no-progress`, `--set`."""

from __future__ import annotations

import argparse


def add_out(parser: argparse.ArgumentParser, what: str, default: str) -> None:
    """`--out DIR`: the folder the verb creates (`what`, e.g. "run directory to create";
    `default`, e.g. "runs/train-...")."""
    parser.add_argument("--out", help=f"{what} (default {default})")


def add_no_progress(parser: argparse.ArgumentParser) -> None:
    """`--no-progress`: no progress bars (logs and CI)."""
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def add_set(parser: argparse.ArgumentParser, example: str) -> None:
    """`--set KEY=VALUE`, repeatable, into `args.overrides` (driftlab.presets.parse_overrides
    reads them); `example` shows two, e.g. "--set population=32 --set inner.num_envs=16"."""
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help=f"override a setting, e.g. {example}")
