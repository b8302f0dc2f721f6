"""`driftlab` command line: discover, train, inspect, distill, compare, envs.

Each verb lives in its own module exposing `add_parser(subparsers)` and
`run(args) -> int`; this file only wires them up and turns user errors into
one line on stderr (exit status 2) instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Verb -> module. Modules are imported only when needed, so `--help` is quick.
COMMANDS = {
    "train": "driftlab.train_command",
    "envs": "driftlab.envs_command",
}
OPTIONAL_COMMANDS = {
    "discover": "driftlab.discover_command",
    "inspect": "driftlab.inspect_command",
    "distill": "driftlab.distill_command",
    "compare": "driftlab.compare_command",
    "quickstart": "driftlab.quickstart_command",
    "experiment": "driftlab.experiment_command",
}


def _available_commands() -> dict[str, str]:
    found = dict(COMMANDS)
    for verb, module in OPTIONAL_COMMANDS.items():
        if importlib.util.find_spec(module) is not None:
            found[verb] = module
    return found


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(
        prog="driftlab",
        description="Discover, train and inspect Mirror-Learning drift functions (LPO) in JAX.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = {}
    for verb, name in _available_commands().items():
        module = importlib.import_module(name)
        module.add_parser(sub)
        modules[verb] = module
    return parser, modules


def run_stage(argv: list[object], hint: str = "") -> None:
    """Run one verb in-process (for commands that chain verbs); a non-zero
    exit becomes a DriftlabError naming the stage, plus `hint`."""
    from driftlab.errors import DriftlabError

    code = main([str(a) for a in argv])
    if code != 0:
        raise DriftlabError(f"stage `driftlab {argv[0]}` failed (exit {code}){hint}")


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser, modules = build_parser()
    args = parser.parse_args(argv)
    from driftlab.errors import user_errors

    try:
        return int(modules[args.command].run(args) or 0)
    except user_errors() as err:
        print(f"driftlab {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"driftlab {args.command}: interrupted; files written so far are intact",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
