"""Env step cost against the bare physics it contains, measured in one run.

For each scenario: steps per second of `env.step`, and the ratio of one `env.step` to a
control period worth of `stepSimulation` plus one lidar `rayTestBatch` on the same world
(the floor no environment can go under). Target: overhead <= 15% (ratio <= 1.15).

Two instances of the env are reset with the same seed and driven through the same motion,
one by `env.step`, the other by bare PyBullet calls; the two are timed in alternating blocks
so that load from other processes hits both alike. With `varying` actions (a new command
every step, as a policy gives) the bare side also sends the new wheel targets with one
`setJointMotorControlArray`, the least any controller must do.

    python benchmarks/env_step.py [--steps 800] [--scenarios flat,rough-ground]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from envs.quiet import pybullet as p
from envs.terrain_nav import TerrainNavEnv

BLOCK = 25  # control steps per timed block


def actions(steps: int, varying: bool) -> np.ndarray:
    """A tight circle that stays clear of the walls; `varying` wobbles it every step."""
    a = np.tile(np.array([0.5, 0.5], dtype=np.float32), (steps, 1))
    if varying:
        a[:, 1] += 0.2 * np.sin(np.arange(steps) * 0.3).astype(np.float32)
    return a


def measure(name: str, steps: int, varying: bool, seed: int = 0) -> tuple[float, float]:
    """Seconds per control step: (env.step, bare physics + one ray batch)."""
    stepped, bare = TerrainNavEnv(name), TerrainNavEnv(name)
    stepped.reset(seed=seed)
    bare.reset(seed=seed)
    c, n, lidar = bare.client, bare.substeps, bare.lidar
    todo = actions(steps, varying)
    bare.robot.command(todo[0])
    t_env = t_bare = 0.0
    for b in range(steps // BLOCK):
        block = todo[b * BLOCK:(b + 1) * BLOCK]
        t0 = time.perf_counter()
        for a in block:
            stepped.step(a)
        t1 = time.perf_counter()
        for a in block:
            if varying:
                bare.robot.command(a)
            for _ in range(n):
                p.stepSimulation(physicsClientId=c)
            p.rayTestBatch(lidar._starts, lidar._ends, parentObjectUniqueId=lidar.body, parentLinkIndex=-1,
                           physicsClientId=c)
        t2 = time.perf_counter()
        t_env += t1 - t0
        t_bare += t2 - t1
    stepped.close()
    bare.close()
    blocks = (steps // BLOCK) * BLOCK
    return t_env / blocks, t_bare / blocks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=800, help="control steps per repeat (<= 40 s of simulated time)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scenarios", default="flat,rough-ground")
    args = ap.parse_args()
    print(f"{'scenario':<16} {'actions':<9} {'env steps/s':>12} {'env step µs':>12} {'bare µs':>10} {'ratio':>7}")
    for name in args.scenarios.split(","):
        for varying in (False, True):
            runs = [measure(name, args.steps, varying, seed=k) for k in range(args.repeats)]
            env_s, bare_s = min(r[0] for r in runs), min(r[1] for r in runs)
            ratio = min(r[0] / r[1] for r in runs)  # the least disturbed repeat
            kind = "varying" if varying else "constant"
            print(f"{name:<16} {kind:<9} {1 / env_s:>12.0f} {env_s * 1e6:>12.1f} {bare_s * 1e6:>10.1f} {ratio:>7.3f}")


if __name__ == "__main__":
    main()
