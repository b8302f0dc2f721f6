"""The one I/O module (driftlab.algorithms.storage) and the one final-return
definition: strict reads with one-line errors naming the file, a torn last
JSON line tolerated and nothing else, null for non-finite floats, atomic
replacement, truncation on resume."""

from __future__ import annotations

import json
import math
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from driftlab.algorithms import storage
from driftlab.algorithms.evaluation import final_return
from driftlab.algorithms.storage import (
    JsonlWriter,
    RecordFileError,
    read_json,
    read_jsonl,
    read_yaml,
    truncate_jsonl,
    write_json,
    write_jsonl,
    write_yaml,
)
from driftlab.errors import user_errors

RECORDS = [{"generation": g, "value": float(g)} for g in range(1, 5)]


def _lines(records: list) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def _strict(text: str):
    """json.loads that refuses NaN/Infinity (what other parsers do)."""
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def _message(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text
    return text


def test_record_file_error_is_a_one_line_user_error():
    assert issubclass(RecordFileError, user_errors())


# ---- JSON lines ---------------------------------------------------------------------------

@pytest.mark.parametrize("torn", ['{"generation": 5, "val', '{"generation": 5, "value": 5.0'
                                  ', "x": [1,', "{", ""])
@pytest.mark.parametrize("newline", ["", "\n"])
def test_torn_last_line_is_skipped(tmp_path, torn, newline):
    path = tmp_path / "metrics.jsonl"
    path.write_text(_lines(RECORDS) + torn + newline)
    assert read_jsonl(path) == RECORDS


def test_empty_file_has_no_records(tmp_path):
    (tmp_path / "m.jsonl").write_text("")
    assert read_jsonl(tmp_path / "m.jsonl") == []


@pytest.mark.parametrize("bad", ['{"generation": 2, "va', "", "not json"])
def test_corrupt_middle_line_names_file_and_line(tmp_path, bad):
    path = tmp_path / "metrics.jsonl"
    path.write_text(_lines(RECORDS[:1]) + bad + "\n" + _lines(RECORDS[1:]))
    with pytest.raises(RecordFileError) as excinfo:
        read_jsonl(path)
    text = _message(excinfo)
    assert f"{path} line 2 is not valid JSON" in text and "damaged" in text


@pytest.mark.parametrize("line, kind", [("[1, 2]", "list"), ("5", "int"), ('"abc"', "str"),
                                        ("null", "NoneType")])
@pytest.mark.parametrize("where", ["middle", "last"])
def test_line_that_is_not_an_object_is_an_error(tmp_path, line, kind, where):
    path = tmp_path / "metrics.jsonl"
    text = (_lines(RECORDS[:2]) + line + "\n" + _lines(RECORDS[2:]) if where == "middle"
            else _lines(RECORDS) + line + "\n")
    path.write_text(text)
    number = 3 if where == "middle" else 5
    with pytest.raises(RecordFileError) as excinfo:
        read_jsonl(path)
    assert f"{path} line {number} is {kind} JSON, not an object" in _message(excinfo)


def test_the_callers_error_type(tmp_path):
    class MyError(ValueError):
        pass

    (tmp_path / "m.jsonl").write_text("[1]\n")
    with pytest.raises(MyError, match="line 1 is list JSON"):
        read_jsonl(tmp_path / "m.jsonl", MyError)
    with pytest.raises(MyError, match="does not exist"):
        read_json(tmp_path / "nothing.json", MyError)


def test_writer_appends_flushed_lines_with_null_for_non_finite(tmp_path):
    path = tmp_path / "sub" / "metrics.jsonl"
    with JsonlWriter(path) as log:
        written = log.write({"a": float("nan"), "b": [1.0, float("inf")], "c": np.float32(2.5),
                             "d": jnp.array(jnp.nan), "e": np.arange(2)})
        assert written == {"a": None, "b": [1.0, None], "c": 2.5, "d": None, "e": [0, 1]}
        # flushed: readable before the writer is closed
        assert _strict(path.read_text()) == written
    with JsonlWriter(path) as log:  # appends
        log.write({"a": -float("inf")})
    records = read_jsonl(path)
    assert records == [written, {"a": None}]
    assert np.isnan(np.asarray(records[0]["a"], np.float64))  # null reads back as NaN
    assert np.isnan(np.asarray(records[0]["b"], np.float64)[1])
    with JsonlWriter(path, truncate=True) as log:
        log.write({"x": 1})
    assert read_jsonl(path) == [{"x": 1}]


def test_write_jsonl_replaces_the_whole_file(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text("old\n")
    write_jsonl(path, [{"x": float("nan")}, {"x": 1}])
    assert path.read_text() == '{"x": null}\n{"x": 1}\n'


def test_truncate_keeps_records_up_to_last_byte_for_byte(tmp_path):
    path = tmp_path / "metrics.jsonl"
    # odd spacing: kept lines are copied as they are, not re-serialised
    original = ['{"generation": 1,  "v": 1.5}', '{"generation":2}', '{"note": "no generation"}',
                '{"generation": 3}', '{"generation": 4}']
    path.write_text("\n".join(original) + '\n{"generation": 5, "v"')
    kept = truncate_jsonl(path, "generation", 2)
    assert path.read_text() == "\n".join(original[:3]) + "\n"
    assert kept == [{"generation": 1, "v": 1.5}, {"generation": 2}, {"note": "no generation"}]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert truncate_jsonl(tmp_path / "missing.jsonl", "generation", 1) == []
    assert not (tmp_path / "missing.jsonl").exists()


def test_truncate_refuses_a_corrupt_middle_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    text = _lines(RECORDS[:1]) + "garbage\n" + _lines(RECORDS[1:])
    path.write_text(text)
    with pytest.raises(RecordFileError, match="line 2 is not valid JSON"):
        truncate_jsonl(path, "generation", 2)
    assert path.read_text() == text


# ---- JSON and YAML files --------------------------------------------------------------------

def test_json_writes_null_for_non_finite_and_yaml_keeps_it(tmp_path):
    """JSON stays strict (null); YAML keeps .inf/.nan so a setting such as the Brax
    presets' max_grad_norm: inf reads back as itself (train --rerun depends on it)."""
    data = {"a": float("nan"), "b": [float("inf"), 2.0], "c": np.float64(1.5), "d": (1, 2),
            "e": None, "f": {"g": np.array([1.0, np.nan])}}
    expected = {"a": None, "b": [None, 2.0], "c": 1.5, "d": [1, 2], "e": None,
                "f": {"g": [1.0, None]}}
    write_json(tmp_path / "x.json", data)
    assert _strict((tmp_path / "x.json").read_text()) == expected
    assert read_json(tmp_path / "x.json") == expected
    assert np.isnan(np.asarray(read_json(tmp_path / "x.json")["f"]["g"], np.float64)[1])
    write_yaml(tmp_path / "x.yaml", data)
    back = read_yaml(tmp_path / "x.yaml")
    assert np.isnan(back["a"]) and back["b"] == [float("inf"), 2.0] and back["c"] == 1.5
    assert back["d"] == [1, 2] and back["e"] is None and np.isnan(back["f"]["g"][1])


@pytest.mark.parametrize("reader", [read_json, read_yaml])
def test_missing_directory_binary_unreadable(tmp_path, reader):
    with pytest.raises(RecordFileError) as excinfo:
        reader(tmp_path / "missing")
    assert _message(excinfo) == f"{tmp_path / 'missing'} does not exist; check the path"
    with pytest.raises(RecordFileError, match="is a directory, not a file"):
        reader(tmp_path)
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00\x81binary")
    with pytest.raises(RecordFileError, match="binary is not a text file"):
        reader(tmp_path / "binary")
    if os.geteuid() != 0:  # root reads anything
        (tmp_path / "private").write_text("{}")
        (tmp_path / "private").chmod(0)
        with pytest.raises(RecordFileError, match="cannot be read .*check its permissions"):
            reader(tmp_path / "private")


def test_malformed_json(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text("{not json")
    with pytest.raises(RecordFileError) as excinfo:
        read_json(path)
    assert _message(excinfo).startswith(f"{path} is unreadable: not valid JSON (")
    path.write_text("[1]")
    with pytest.raises(RecordFileError) as excinfo:
        read_json(path)
    assert f"{path} holds list JSON, not an object" in _message(excinfo)


def test_malformed_yaml(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("num_envs: [1,\n  gamma: {\n")
    with pytest.raises(RecordFileError) as excinfo:
        read_yaml(path)
    assert f"{path} is not valid YAML (" in _message(excinfo)
    path.write_text("- 1\n- 2\n")
    with pytest.raises(RecordFileError) as excinfo:
        read_yaml(path)
    assert f"{path} holds a list, not a mapping of settings" in _message(excinfo)
    path.write_text("")
    assert read_yaml(path) == {}


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    write_json(path, {"old": 1})

    def fail(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "fsync", fail)
    with pytest.raises(OSError, match="No space left"):
        write_json(path, {"new": 2})
    with pytest.raises(TypeError):  # not serialisable: nothing is written either
        write_json(path, {"new": object()})
    monkeypatch.undo()
    assert read_json(path) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary left


# ---- the one final return ------------------------------------------------------------------

def test_final_return_numpy_and_jax_agree():
    curve = np.array([[np.nan, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0],
                      [np.nan] * 10], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an all-NaN window is NaN, quietly
        host = final_return(curve, 0.2)
    assert host.dtype == np.float64 and host[0] == 9.0 and np.isnan(host[1])
    assert final_return(curve.tolist(), 0.2)[0] == 9.0
    device = final_return(jnp.asarray(curve), 0.2)
    assert isinstance(device, jax.Array) and device.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(device, np.float64), host)
    # traced (the fitness inside jit) gives the same bits as outside
    jitted = jax.jit(lambda x: final_return(x, 0.2))(jnp.asarray(curve))
    np.testing.assert_array_equal(np.asarray(jitted), np.asarray(device))
    # at least one update, and the default fraction is 10%
    assert final_return(np.arange(5.0), 0.01) == 4.0
    assert final_return(np.arange(1.0, 21.0)) == 19.5
    assert math.isnan(float(final_return(jnp.full((10,), jnp.nan), 0.2)))


def test_compare_reads_a_run_killed_mid_line(tmp_path):
    """compare takes a run's complete lines and skips only the torn last one."""
    from driftlab.analysis.compare import load_runs

    run = tmp_path / "run"
    records = [{"update": i, "timesteps": 8 * i, "episode_return_per_seed": [i, None]}
               for i in range(1, 4)]
    (run).mkdir()
    (run / "metrics.jsonl").write_text(_lines(records) + '{"update": 4, "timeste')
    write_json(run / "summary.json", {"env": "e", "algo": "ppo"})
    write_yaml(run / "config.yaml", {"command": "train"})
    (group,) = load_runs([run])
    np.testing.assert_array_equal(group.timesteps, [8, 16, 24])
    np.testing.assert_array_equal(group.returns, [[1, 2, 3], [np.nan] * 3])
