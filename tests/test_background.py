"""driftlab.background: jobs in one child process, started on the parent's signal,
failures as one line, and no child left behind."""

from __future__ import annotations

import time

import pytest

from driftlab.background import Background, Job
from driftlab.errors import DriftlabError


def _bad_train(tmp_path, name: str, after: str | None = None) -> Job:
    # An unknown algorithm: refused by api.train before anything compiles.
    return Job(name, "train", str(tmp_path / name),
               {"algo": "nosuchalgo", "env": "gymnax/CartPole-v1", "seeds": 1,
                "timesteps": 1024}, after)


def test_a_failing_job_is_one_line_naming_it_and_its_log(tmp_path):
    job = _bad_train(tmp_path, "first")
    with Background([job], tmp_path / "background.json") as background:
        with pytest.raises(DriftlabError) as err:
            background.collect("first")
    message = str(err.value)
    assert "\n" not in message and message.startswith("first (run in the background): ")
    assert "nosuchalgo" in message and str(job.log) in message
    assert "driftlab: error:" in job.log.read_text()


def test_a_job_waits_for_its_signal(tmp_path):
    waiting = _bad_train(tmp_path, "waiting", after="go")
    with Background([waiting], tmp_path / "background.json") as background:
        time.sleep(3.0)  # the child has started by now; the job has not
        assert not waiting.log.exists()
        background.signal("go")
        with pytest.raises(DriftlabError, match="nosuchalgo"):
            background.collect("waiting")


def test_leaving_stops_the_child_and_the_jobs_not_started(tmp_path):
    never = _bad_train(tmp_path, "never", after="never-sent")
    with Background([never], tmp_path / "background.json") as background:
        child = background._child
    assert child.poll() is not None  # stopped on the way out, not left running
    assert not never.log.exists()


def test_a_child_that_dies_is_reported_not_waited_for(tmp_path):
    later = _bad_train(tmp_path, "later", after="go")
    with Background([later], tmp_path / "background.json") as background:
        background._child.kill()
        background.signal("go")  # to a dead child: no error here
        with pytest.raises(DriftlabError, match="ended .* before it"):
            background.collect("later")


def test_no_jobs_start_no_child(tmp_path):
    with Background([], tmp_path / "background.json") as background:
        assert background._child is None
    assert not (tmp_path / "background.json").exists()
