"""`driftlab envs`: list the environment ids `envs.make` accepts."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("envs", help="list available environments")
    p.add_argument("--details", action="store_true",
                   help="also build each env and show its action space (slower)")


def run(args: argparse.Namespace) -> int:
    from driftlab import envs

    for env_id in envs.list_envs():
        if args.details:
            env = envs.make(env_id)
            print(f"{env_id:40s} obs {env.observation_shape}  actions {env.action_space}")
        else:
            print(env_id)
    return 0
