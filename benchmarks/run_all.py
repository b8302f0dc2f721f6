"""Run every benchmark and write one JSON summary.

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
BENCHMARKS = ["throughput", "discovery", "sweep"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to each benchmark")
    parser.add_argument("--out", default=str(HERE / "results" / "summary.json"))
    args = parser.parse_args()
    summary = {"date": datetime.now(UTC).isoformat(), "benchmarks": {}}
    for name in BENCHMARKS:
        script = HERE / f"{name}.py"
        if not script.exists():
            continue
        out = HERE / "results" / f"{name}.json"
        cmd = [sys.executable, str(script), "--out", str(out)] + (["--quick"] if args.quick else [])
        print(f"== {name}: {' '.join(cmd)}", flush=True)
        proc = subprocess.run(cmd)
        summary["benchmarks"][name] = (json.loads(out.read_text()) if proc.returncode == 0
                                       else {"error": f"exit status {proc.returncode}"})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
