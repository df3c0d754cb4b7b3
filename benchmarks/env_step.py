"""Env step cost against the bare physics it contains, measured in one run.

For each scenario: steps per second of `env.step`, and the ratio of one `env.step` to a
control period worth of `stepSimulation` plus one lidar `rayTestBatch` on the same world
(the floor no environment can go under). Target: overhead <= 15% (ratio <= 1.15).

    python benchmarks/env_step.py [--steps 2000] [--scenarios flat,rough-ground]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import envs  # noqa: F401  (registers the env)
from envs.quiet import pybullet as p
from envs.terrain_nav import TerrainNavEnv


def time_env(env: TerrainNavEnv, steps: int, seed: int) -> float:
    """Seconds per env.step, driving a tight circle that stays clear of the walls (resets when an episode ends)."""
    env.reset(seed=seed)
    action = np.array([0.5, 0.5], dtype=np.float32)
    t0 = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return (time.perf_counter() - t0) / steps


def time_bare(env: TerrainNavEnv, steps: int, seed: int) -> float:
    """Seconds per control period of bare physics: substeps x stepSimulation + one ray batch."""
    env.reset(seed=seed)
    env.robot.command(np.array([0.5, 0.5]))
    c, n = env.client, env.substeps
    lidar = env.lidar
    t0 = time.perf_counter()
    for _ in range(steps):
        for _ in range(n):
            p.stepSimulation(physicsClientId=c)
        p.rayTestBatch(lidar._starts, lidar._ends, parentObjectUniqueId=lidar.body, parentLinkIndex=-1,
                       physicsClientId=c)
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--scenarios", default="flat,rough-ground")
    args = ap.parse_args()
    print(f"{'scenario':<16} {'env steps/s':>12} {'env step µs':>12} {'bare µs':>10} {'ratio':>7}")
    for name in args.scenarios.split(","):
        env = TerrainNavEnv(name)
        # alternate the two measurements so machine noise hits both alike; keep the best of 3
        env_s = min(time_env(env, args.steps, seed=k) for k in range(3))
        bare_s = min(time_bare(env, args.steps, seed=k) for k in range(3))
        env.close()
        print(f"{name:<16} {1 / env_s:>12.0f} {env_s * 1e6:>12.1f} {bare_s * 1e6:>10.1f} {env_s / bare_s:>7.3f}")


if __name__ == "__main__":
    main()
