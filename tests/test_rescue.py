"""The guided teacher's rescue (ExpertConfig.rescue) in the real simulator: it gets out of a
trap the classical route cannot leave, and changes nothing where the route does not stall."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from envs.scenarios import from_dict
from envs.terrain_nav import TerrainNavEnv
from navctl.expert import ExpertConfig, GuidedExpert


def u_trap(time_limit_s: float) -> dict:
    """A U of walls open towards the start, its back wall across the straight line to the
    goal: a local minimum of goal distance that a goal-seeking route drives into."""
    wall, depth, width = 0.3, 2.5, 5.0
    return {"version": 1, "name": "u-trap", "time_limit_s": time_limit_s,
            "arena": {"size_m": [18, 14]},
            "robot": {"start": {"x": -6, "y": 0, "yaw_deg": 0}},
            "goal": {"x": 5, "y": 0, "radius_m": 0.5},
            "sensors": {"noise": {"lidar_m": 0, "imu": 0, "odometry": 0}},
            "obstacles": [{"box": {"center": [1, 0], "size": [wall, width, 1]}},
                          {"box": {"center": [1 - depth / 2, width / 2], "size": [depth, wall, 1]}},
                          {"box": {"center": [1 - depth / 2, -width / 2], "size": [depth, wall, 1]}}]}


def drive(env: TerrainNavEnv, teacher: GuidedExpert, seed: int,
          probe: Callable[[GuidedExpert], Any] = lambda t: t.rescuing(0)) -> tuple[dict, list[np.ndarray], list]:
    """One episode driven by `teacher`: the final info, its actions and, each step after it
    acted, probe(teacher) (by default whether the rescue drove)."""
    obs, info = env.reset(seed=seed)
    teacher.reset(1)
    actions, probed = [], []
    while True:
        actions.append(teacher.act(obs, info))
        probed.append(probe(teacher))
        obs, _, terminated, truncated, info = env.step(actions[-1])
        if terminated or truncated:
            return info, actions, probed


def test_rescue_gets_the_guided_teacher_out_of_a_u_trap():
    env = TerrainNavEnv(from_dict(u_trap(time_limit_s=45), "u-trap.yaml"))
    try:
        old, _, _ = drive(env, GuidedExpert(), seed=0)
        new, _, rescuing = drive(env, GuidedExpert(ExpertConfig(rescue=True)), seed=0)
    finally:
        env.close()
    assert old["termination"] == "time_limit"  # the classical route stays in the U
    assert new["is_success"], new["termination"]
    assert not rescuing[0] and any(rescuing), "the classical route should drive first, then the rescue"
    handed_back = any(a and not b for a, b in zip(rescuing, rescuing[1:]))
    assert handed_back and not rescuing[-1], "the rescue should hand back to the classical route once out"


def assert_no_action_changes_without_a_stall(config: ExpertConfig) -> None:
    """A procedural training scenario the classical route drives through: the guided teacher
    with `config` (the rescue or the escape on) and without answer with bit-identical actions."""
    env = TerrainNavEnv("procedural-train")
    try:
        info_off, off, _ = drive(env, GuidedExpert(), seed=0)
        info_on, on, rescuing = drive(env, GuidedExpert(config), seed=0)
    finally:
        env.close()
    assert info_off["is_success"] and info_on["is_success"]
    assert not any(rescuing)
    assert len(on) == len(off) > 50
    assert np.array_equal(np.array(on), np.array(off))


def test_without_a_stall_the_rescue_changes_no_action():
    assert_no_action_changes_without_a_stall(ExpertConfig(rescue=True))
