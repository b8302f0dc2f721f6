"""docs/benchmarks.md's figure tables are generated from the benchmarks' JSON
(benchmarks/tables.py), so no figure there can be typed by hand. No benchmark runs
here: the renderer only reads JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import tables  # noqa: E402

SWEEP = {"env": "gymnax/CartPole-v1", "settings": 8, "seeds": 4, "timesteps_per_seed": 32768,
         "wall_seconds": {"cold": {"sweep": 50.0, "separate": 150.0},
                          "warm": {"sweep": 10.0, "separate": 40.0}},
         "separate_over_sweep_wall": {"cold": 3.0, "warm": 4.0},
         "settings_with_identical_final_returns": 8,
         "conditions": {"date": "2026-12-01T09:00:00+00:00", "commit": "1481c35c95564de045a2",
                        "uncommitted": True, "changed_files": ["driftlab/training.py"],
                        "command": "python benchmarks/sweep.py", "jax": "0.10.2", "cpus": 2,
                        "backend": "cpu", "wall_seconds": 600.0,
                        "load_average_start": [5.19, 4.69, 4.78],
                        "load_average_end": [6.0, 5.01, 4.9]}}


def test_the_committed_page_is_what_the_committed_json_renders(capsys):
    doc = tables.DOC.read_text()
    assert tables.BEGIN in doc and tables.END in doc
    expected = tables.updated(doc, tables.render(tables.RESULTS, tables.GPU_RESULTS))
    assert doc == expected, ("docs/benchmarks.md differs from what benchmarks/tables.py renders "
                             "from benchmarks/results/*.json: run `python benchmarks/tables.py`")
    assert tables.main(["--check"]) == 0


def test_a_missing_json_gets_a_line_and_check_catches_a_stale_page(tmp_path, capsys):
    results, gpu = tmp_path / "results", tmp_path / "gpu"
    results.mkdir()
    gpu.mkdir()
    (results / "sweep.json").write_text(json.dumps(SWEEP))
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# page\n\nprose\n\n{tables.BEGIN}\n| typed | 1.23x |\n{tables.END}\n\nmore prose\n")
    paths = ["--results", str(results), "--gpu-results", str(gpu), "--doc", str(doc)]

    assert tables.main(["--check", *paths]) == 1
    err = capsys.readouterr().err
    assert "out of date" in err and err.count("\n") == 1

    assert tables.main(paths) == 0
    page = doc.read_text()
    assert page.startswith("# page\n\nprose\n\n" + tables.BEGIN + "\n")
    assert page.endswith(tables.END + "\n\nmore prose\n")
    assert "| typed |" not in page
    for name in ("throughput", "discovery", "whole_process"):
        assert f"No `{name}.json` yet" in page
    assert "| cold | 50.0 s | 150.0 s | **3.00x** |" in page
    assert "at `1481c35` with uncommitted changes to 1 tracked file (1 outside benchmarks/" in page
    assert "load average (1 / 5 / 15 min) 5.2 / 4.7 / 4.8 at the start, 6.0 / 5.0 / 4.9 at the end" in page
    assert "GPU" not in page
    assert tables.main(["--check", *paths]) == 0
    assert tables.main(paths) == 0 and doc.read_text() == page  # idempotent


def test_a_page_without_the_markers_is_refused_in_one_line(tmp_path, capsys):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# page\n\n| typed | 1.23x |\n")
    assert tables.main(["--check", "--results", str(tmp_path), "--gpu-results", str(tmp_path),
                        "--doc", str(doc)]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    assert doc.read_text() == "# page\n\n| typed | 1.23x |\n"
