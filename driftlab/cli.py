"""`driftlab` command line: discover, train, inspect, distill, compare, evaluate, envs.

Each verb lives in its own module exposing `add_parser(subparsers)` and
`run(args) -> int`, which calls the verb's `driftlab.api` function with the
parsed values; this file only wires them up and turns user errors into
one line on stderr (exit status 2) instead of a traceback. Before any of
them runs, JAX's persistent compilation cache is switched on (see
`setup_compilation_cache`), so a repeated command skips most XLA compiles.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from driftlab import stopping

# Verb -> module. Modules are imported only when needed, so `--help` is quick.
COMMANDS = {
    "train": "driftlab.train_command",
    "envs": "driftlab.envs_command",
    "drifts": "driftlab.drifts_command",
}
OPTIONAL_COMMANDS = {
    "discover": "driftlab.discover_command",
    "inspect": "driftlab.inspect_command",
    "distill": "driftlab.distill_command",
    "compare": "driftlab.compare_command",
    "quickstart": "driftlab.quickstart_command",
    "experiment": "driftlab.experiment_command",
    "evaluate": "driftlab.evaluate_command",
}


def _available_commands() -> dict[str, str]:
    found = dict(COMMANDS)
    for verb, module in OPTIONAL_COMMANDS.items():
        if importlib.util.find_spec(module) is not None:
            found[verb] = module
    return found


OFF_VALUES = ("off", "0", "false", "no", "none", "disable", "disabled")
CACHE_MIN_COMPILE_SECONDS = "0.2"  # JAX's default (1 s) would skip e.g. a gymnax env's init
CACHE_MAX_BYTES = str(4 << 30)  # least recently used entries go beyond this (needs filelock)
_cache_ready = False


def resolve_cache_dir(environ: Mapping[str, str]) -> tuple[Path | None, str | None]:
    """(directory, warning) for the compilation cache: `DRIFTLAB_JAX_CACHE` when it
    is a path, `$XDG_CACHE_HOME/driftlab/jax` or `~/.cache/driftlab/jax` when it is
    unset, None when it is `off` or the directory cannot be created or written
    (then a one-line warning)."""
    value = environ.get("DRIFTLAB_JAX_CACHE", "").strip()
    if value.lower() in OFF_VALUES:
        return None, None
    if value:
        path = Path(value).expanduser()
    else:
        base = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME") or Path.home())
                                                    / ".cache")
        path = Path(base).expanduser() / "driftlab" / "jax"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        return None, (f"driftlab: compilation cache off ({path} is not writable: "
                      f"{err.strerror or err}); set DRIFTLAB_JAX_CACHE=/other/dir or off")
    return path, None


def setup_compilation_cache(environ: MutableMapping[str, str] = os.environ) -> Path | None:
    """Switch JAX's persistent compilation cache on for this process (and the
    processes it starts), before anything compiles. A process that set jax's
    cache directory itself (a script, the tests) keeps it, and so does a
    JAX_COMPILATION_CACHE_DIR unless DRIFTLAB_JAX_CACHE is given. Never raises."""
    jax = sys.modules.get("jax")
    if jax is not None and jax.config.jax_compilation_cache_dir:
        return Path(jax.config.jax_compilation_cache_dir)
    if environ.get("JAX_COMPILATION_CACHE_DIR") and not environ.get("DRIFTLAB_JAX_CACHE"):
        return Path(environ["JAX_COMPILATION_CACHE_DIR"])
    path, warning = resolve_cache_dir(environ)
    if warning:
        print(warning, file=sys.stderr)
    if path is None:
        return None
    settings = {"JAX_COMPILATION_CACHE_DIR": str(path),
                "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": environ.get(
                    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", CACHE_MIN_COMPILE_SECONDS)}
    if importlib.util.find_spec("filelock") is not None:
        settings["JAX_COMPILATION_CACHE_MAX_SIZE"] = environ.get(
            "JAX_COMPILATION_CACHE_MAX_SIZE", CACHE_MAX_BYTES)
    environ.update(settings)  # read by jax when it is imported, here or in a child process
    if jax is not None:  # already imported (driftlab called in-process): set it directly
        for name, value in settings.items():
            kind = float if "SECS" in name else (int if "SIZE" in name else str)
            jax.config.update(name.lower(), kind(value))
    return path


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


def ensure_compilation_cache() -> None:
    """setup_compilation_cache() once per process, before anything compiles (the
    command line and every driftlab.api function call it)."""
    global _cache_ready
    if not _cache_ready:
        setup_compilation_cache()
        _cache_ready = True


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    ensure_compilation_cache()
    from driftlab.errors import platform_error, resource_error

    try:  # importing the verbs starts JAX's backend (gymnax makes arrays on import)
        parser, modules = build_parser()
    except (RuntimeError, AssertionError) as err:
        line = platform_error(err)
        if line is None:
            raise
        print(f"driftlab: error: {line}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    from driftlab.errors import user_errors

    # SIGTERM (a scheduler's or `kill`'s stop) ends a verb as Ctrl-C does: the same
    # clean-up, and one line instead of a silent death.
    previous = stopping.install()
    from driftlab.rundir import held_locks, release_locks, stop_note

    locks_before = held_locks()  # a caller's own (a script calling main) are kept
    try:
        code = int(modules[args.command].run(args) or 0)
        stopping.raise_if_stopped()  # a stop whose raise was swallowed still reports 143
        return code
    except user_errors() as err:
        print(f"driftlab {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a full disk, a name too long, an unwritable path
        named = [getattr(args, k, None) for k in ("out", "resume")]  # where the verb writes
        line = resource_error(err, next((v for v in named if isinstance(v, str)), None))
        if line is None:
            raise
        print(f"driftlab {args.command}: error: {line}", file=sys.stderr)
        return 2
    except (RuntimeError, AssertionError) as err:  # JAX_PLATFORMS names what is not here
        line = platform_error(err)
        if line is None:
            raise
        print(f"driftlab {args.command}: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:  # one line, and how to go on where there is a way
        resume_dir = getattr(err, "resume_dir", None)  # a discovery's ES run
        hint = (f"; continue it with `driftlab discover --resume {resume_dir}`" if resume_dir
                else stop_note(err, locks_before, args.command))  # a train run: --rerun
        return stopping.report(args.command, err, hint)
    finally:
        release_locks(keep=locks_before)
        stopping.restore(previous)


if __name__ == "__main__":
    sys.exit(main())
