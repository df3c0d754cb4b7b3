"""One episode: an environment and a policy in, a Trajectory out."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np


@dataclass
class Trajectory:
    """What happened in one episode, step by step (index 0 is the state after reset).

    Positions are world metres, times simulated seconds, distance the straight-line
    distance to the goal centre in metres.
    """

    scenario: str
    seed: int
    policy: str
    dt: float
    time_s: np.ndarray  # (T+1,)
    xy: np.ndarray  # (T+1, 2)
    yaw: np.ndarray  # (T+1,) rad
    distance: np.ndarray  # (T+1,) m to the goal centre
    actions: np.ndarray  # (T, 2)
    rewards: np.ndarray  # (T,)
    collisions: np.ndarray  # (T,) bool
    goal: np.ndarray  # (3,) x, y, radius
    start: np.ndarray  # (3,) x, y, yaw
    events: list[dict[str, Any]] = field(default_factory=list)
    termination: Optional[str] = None  # success | flipped | out_of_arena | time_limit
    path_length: float = 0.0
    shortest_path_length: float = 0.0
    observations: Optional[np.ndarray] = None  # (T+1, obs_dim) if kept

    @property
    def success(self) -> bool:
        return self.termination == "success"

    @property
    def steps(self) -> int:
        return len(self.actions)


def rollout(env, policy, seed: int, keep_observations: bool = False, frames: Optional[list] = None,
            max_steps: Optional[int] = None) -> Trajectory:
    """Drives one episode of `env` (a TerrainNav env, possibly wrapped) with `policy`.

    The policy is reset to batch size 1; privileged policies get the info dict each step.
    If `frames` is a list, env.render() output is appended to it every step.
    """
    obs, info = env.reset(seed=seed)
    base = env.unwrapped
    policy.reset(1)
    xy, yaw, dist, times = [info["privileged"]["pose"][:2]], [info["privileged"]["pose"][2]], [info["distance_to_goal"]], [0.0]
    observations = [obs] if keep_observations else None
    actions, rewards, collisions = [], [], []
    if frames is not None:
        frames.append(env.render())
    start = np.array(info["privileged"]["pose"], dtype=float)
    goal = np.array(info["privileged"]["goal"], dtype=float)
    steps = 0
    while True:
        action = np.asarray(policy.act(obs, info if policy.privileged else None), dtype=np.float32).reshape(2)
        obs, reward, terminated, truncated, info = env.step(action)
        steps += 1
        pose = info["privileged"]["pose"]
        xy.append(pose[:2])
        yaw.append(pose[2])
        dist.append(info["distance_to_goal"])
        times.append(info["time_s"])
        actions.append(action)
        rewards.append(reward)
        collisions.append(info["collision"])
        if keep_observations:
            observations.append(obs)
        if frames is not None:
            frames.append(env.render())
        if terminated or truncated or (max_steps is not None and steps >= max_steps):
            break
    return Trajectory(
        scenario=base.scenario.name,
        seed=seed,
        policy=getattr(policy, "name", type(policy).__name__),
        dt=1.0 / base.control_hz,
        time_s=np.array(times),
        xy=np.array(xy, dtype=float),
        yaw=np.array(yaw, dtype=float),
        distance=np.array(dist, dtype=float),
        actions=np.array(actions, dtype=np.float32).reshape(-1, 2),
        rewards=np.array(rewards, dtype=float),
        collisions=np.array(collisions, dtype=bool),
        goal=goal,
        start=start,
        events=list(info["events"]),
        termination=info["termination"],
        path_length=float(info["path_length"]),
        shortest_path_length=float(info["shortest_path_length"]),
        observations=np.array(observations) if keep_observations else None,
    )
