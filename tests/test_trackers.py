"""`train --tensorboard` writes every update's record (mean and per-seed returns,
losses, drift statistics) as TensorBoard scalars: read back from the event file."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from driftlab.cli import main

pytest.importorskip("tensorboardX")


def read_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} of every event file in `folder` (TFRecord framing:
    length u64, its crc u32, the Event proto, its crc u32)."""
    from tensorboardX.proto import event_pb2

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12:offset + 12 + length])
            offset += 12 + length + 4
            for value in event.summary.value:
                out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out


def test_train_logs_every_update_to_tensorboard(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--algo", "dpo", "--env", "gymnax/CartPole-v1", "--seeds", "2",
                 "--set", "total_timesteps=1024", "--set", "num_envs=4", "--set", "num_steps=32",
                 "--no-progress", "--tensorboard", "--out", str(out)]) == 0
    scalars = read_scalars(out / "tensorboard")
    updates = 1024 // (4 * 32)
    for tag in ("episode_return", "episode_return_per_seed/0", "episode_return_per_seed/1",
                "policy_loss", "value_loss", "entropy", "approx_kl", "update"):
        assert tag in scalars, sorted(scalars)
    for tag in ("policy_loss", "update"):
        assert [step for step, _ in scalars[tag]] == [128 * (i + 1) for i in range(updates)]
    assert [v for _, v in scalars["update"]] == [float(i + 1) for i in range(updates)]
    drift_tags = [t for t in scalars if "drift" in t or "clip" in t]
    assert drift_tags, sorted(scalars)
    assert "tensorboard: true" in (out / "config.yaml").read_text()
