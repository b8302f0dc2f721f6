"""`train --tensorboard` / `--wandb` write every update's record (mean and per-seed returns,
losses, drift statistics) as scalars: read back from the TensorBoard event file and
from the offline W&B run file."""

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


def read_wandb_history(run_file: Path) -> list[dict[str, float]]:
    """The history rows of an offline W&B run file (`run-*.wandb`): a 7-byte header,
    then LevelDB-log framing in 32 KiB blocks (crc u32, length u16, type u8: 1 full,
    2 first, 3 middle, 4 last), each whole record a wandb_internal_pb2.Record."""
    import json

    from wandb.proto import wandb_internal_pb2

    data, block = run_file.read_bytes(), 32768
    assert data[:4] == b":W&B", data[:7]
    rows, pending, offset = [], b"", 7
    while offset + 7 <= len(data):
        if block - offset % block < 7:  # a block's tail too short for a header is padding
            offset += block - offset % block
            continue
        length, kind = struct.unpack("<HB", data[offset + 4:offset + 7])
        pending += data[offset + 7:offset + 7 + length]
        offset += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record.FromString(pending)
            pending = b""
            if record.WhichOneof("record_type") == "history":
                rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                             for item in record.history.item})
    return rows


def test_train_logs_every_update_to_wandb_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "run"
    assert main(["train", "--algo", "ppo", "--env", "gymnax/CartPole-v1", "--seeds", "2",
                 "--set", "total_timesteps=1024", "--set", "num_envs=4", "--set", "num_steps=32",
                 "--no-progress", "--wandb", "--out", str(out)]) == 0
    (run_file,) = (out / "wandb").glob("offline-run-*/run-*.wandb")
    rows = read_wandb_history(run_file)
    updates = 1024 // (4 * 32)
    assert [row["update"] for row in rows] == [float(i + 1) for i in range(updates)], rows
    for tag in ("episode_return", "episode_return_per_seed/0", "episode_return_per_seed/1",
                "policy_loss", "value_loss", "entropy", "approx_kl"):
        assert all(tag in row for row in rows), sorted(rows[0])
    assert [row["_step"] for row in rows] == [128 * (i + 1) for i in range(updates)]
    assert "wandb: true" in (out / "config.yaml").read_text()
