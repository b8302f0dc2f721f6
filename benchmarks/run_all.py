"""Run every CPU benchmark, write one JSON summary and regenerate the tables of
docs/benchmarks.md from the results (benchmarks/tables.py).

    python benchmarks/run_all.py [--quick] [--out benchmarks/results/summary.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
# name (the JSON file under results/): the script and its extra arguments
BENCHMARKS = {"throughput": ("throughput", []), "whole_process": ("throughput", ["--whole-process"]),
              "discovery": ("discovery", []), "sweep": ("sweep", []),
              "evaluate_jobs": ("evaluate_jobs", [])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to each benchmark")
    parser.add_argument("--out", default=str(HERE / "results" / "summary.json"))
    args = parser.parse_args()
    summary = {"date": datetime.now(UTC).isoformat(), "benchmarks": {}}
    for name, (script_name, extra) in BENCHMARKS.items():
        script = HERE / f"{script_name}.py"
        if not script.exists():
            continue
        out = HERE / "results" / f"{name}.json"
        cmd = ([sys.executable, str(script), *extra, "--out", str(out)]
               + (["--quick"] if args.quick else []))
        print(f"== {name}: {' '.join(cmd)}", flush=True)
        proc = subprocess.run(cmd)
        summary["benchmarks"][name] = (json.loads(out.read_text()) if proc.returncode == 0
                                       else {"error": f"exit status {proc.returncode}"})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.out}")
    subprocess.run([sys.executable, str(HERE / "tables.py")], check=True)


if __name__ == "__main__":
    main()
