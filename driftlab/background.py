"""driftlab work in one child process while this process does other work.

The quickstart's PPO and DPO runs need nothing from its discovery; its learned
drift's run and its inspection need only the discovery; meanwhile the
distillation leaves the second CPU core mostly idle (tracing, single-threaded
XLA compiles, symbolic search). One child process (not a thread: run-directory
locks are per process, and tracing and sympy would share one GIL) runs those
jobs, one after the other, through the same `driftlab.api` calls with the same
settings, so the numbers are the same as in-process. One process for all of
them pays JAX's start-up and the trainer's shared compiles once.

Protocol: the job list goes to `python -m driftlab.background SPEC.json`; a job
with `after` waits until the parent writes that word as a line to the child's
stdin; each job's printed output goes to `<out>.log`, and the child reports
each job's end as one JSON line on its stdout. EOF on stdin (the parent is
gone) ends the child.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from driftlab.errors import DriftlabError

# How long a child that was told to stop (SIGTERM) may take to mark its run
# INCOMPLETE and exit before it is killed.
STOP_SECONDS = 30.0


@dataclass
class Job:
    """One api call, `kind` "train" (kwargs of api.train) or "inspect" (of
    api.inspect), or "random-returns" (the random-policy returns of the envs of
    kwargs["runs"], as `compare` measures them, to the JSON file `out`); it starts
    after the parent's `after` signal."""
    name: str
    kind: str
    out: str
    kwargs: dict[str, Any]
    after: str | None = None

    @property
    def log(self) -> Path:
        out = Path(self.out)
        return out.with_name(out.name + ".log")


class Background:
    """The parent's side: starts the child (as a context manager; leaving it stops
    a child still running, SIGTERM then SIGKILL after STOP_SECONDS), signals it,
    and collects each job's output."""

    def __init__(self, jobs: list[Job], spec: Path) -> None:
        self.jobs = {job.name: job for job in jobs}
        self.spec = spec
        self._done: dict[str, dict[str, Any]] = {}
        self._changed = threading.Condition()
        self._child: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> Background:
        if self.jobs:
            from driftlab.algorithms.storage import write_json

            write_json(self.spec, {"jobs": [asdict(job) for job in self.jobs.values()]})
            stderr = open(self.spec.with_suffix(".log"), "w")  # noqa: SIM115 - the child's
            with stderr:
                self._child = subprocess.Popen(
                    [sys.executable, "-m", "driftlab.background", str(self.spec)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True)
            self._reader = threading.Thread(target=self._read, daemon=True)
            self._reader.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _read(self) -> None:
        assert self._child is not None and self._child.stdout is not None
        for line in self._child.stdout:
            try:
                report = json.loads(line)
            except ValueError:
                continue  # not a report (a library printing to stdout)
            with self._changed:
                self._done[report["job"]] = report
                self._changed.notify_all()
        self._child.wait()
        with self._changed:
            self._changed.notify_all()

    def signal(self, word: str) -> None:
        """Let the jobs waiting for `word` start."""
        if self._child is not None and self._child.poll() is None:
            try:
                self._child.stdin.write(word + "\n")
                self._child.stdin.flush()
            except OSError:
                pass  # the child has ended; collect() says why

    def collect(self, name: str) -> str:
        """Wait for job `name`; its printed output, or a DriftlabError with its
        error line."""
        job = self.jobs[name]
        with self._changed:
            while name not in self._done and self._child.poll() is None:
                self._changed.wait(timeout=0.5)  # short waits: Ctrl-C is seen at once
            report = self._done.get(name)
        output = job.log.read_text() if job.log.is_file() else ""
        if report is None or report.get("error"):
            error = (report or {}).get("error") or (
                f"the background process ended (exit {self._child.returncode}) before it; "
                f"see {self.spec.with_suffix('.log')}")
            raise DriftlabError(f"{name} (run in the background): {error} (its output: "
                                f"{job.log})")
        return output

    def stop(self) -> None:
        child = self._child
        if child is None:
            return
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if self._reader is not None:
            self._reader.join()


# ---- the child's side ---------------------------------------------------------------

def _run_job(job: Job) -> None:
    from driftlab import api

    if job.kind == "train":
        from driftlab.train_command import print_outcome

        print_outcome(api.train(**job.kwargs, out=job.out, progress=False))
    elif job.kind == "inspect":
        from driftlab.inspect_command import print_result

        print_result(api.inspect(**job.kwargs, out=job.out))
    elif job.kind == "random-returns":
        from driftlab.algorithms.storage import write_json
        from driftlab.analysis.compare import RANDOM_EPISODES, load_runs, random_returns_of

        returns = random_returns_of(load_runs(job.kwargs["runs"]))
        write_json(Path(job.out), returns)
        print(f"random-policy returns ({RANDOM_EPISODES} episodes per env, key 0, as compare "
              f"measures them): {returns} -> {job.out}")
    else:
        raise DriftlabError(f"unknown background job kind {job.kind!r}")


def main(spec: str) -> int:
    import contextlib
    import traceback

    from driftlab.algorithms.storage import read_json
    from driftlab.errors import user_errors

    report = sys.stdout
    signals: set[str] = set()
    for entry in read_json(spec)["jobs"]:
        job = Job(**entry)
        while job.after is not None and job.after not in signals:
            word = sys.stdin.readline()
            if not word:
                return 1  # the parent is gone
            signals.add(word.strip())
        error = None
        with open(job.log, "w") as log, contextlib.redirect_stdout(log), \
                contextlib.redirect_stderr(log):
            try:
                _run_job(job)
            except user_errors() as err:
                error = str(err)
                print(f"driftlab: error: {error}")
            except Exception as err:  # a bug: its trace in the log, one line to the parent
                traceback.print_exc()
                error = f"{type(err).__name__}: {err}"
        print(json.dumps({"job": job.name, "error": error}), file=report, flush=True)
        if error is not None:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
