"""The one episode loop: an environment and a policy (and, for DAgger, a teacher) in, a
Trajectory out. Evaluation, `navctl run` and training collection all drive episodes here.

Trajectory is the record of one episode, step by step; episode.py turns it into a CSV row,
train.py into labelled training sequences.
"""
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

    scenario: str  # the scenario the env ran (for a procedural set, the generated one: procedural-<seed>)
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
    labels: Optional[np.ndarray] = None  # (T, 2) the teacher's action at every step, with a teacher
    takeovers: Optional[np.ndarray] = None  # (T,) bool, with a teacher: its escape (or rescue) drove it at that step
    obstacles: tuple = ()  # the episode's fixed and random obstacles (envs.terrain)
    scenario_seed: Optional[int] = None  # the generator seed of a generated episode's scenario (info["scenario_seed"])

    @property
    def success(self) -> bool:
        return self.termination == "success"

    @property
    def steps(self) -> int:
        return len(self.actions)


def rollout(env, policy, seed: int, *, teacher=None, takeover: float = 0.0, coin_seed: int = 0,
            keep_observations: bool = False, frames: Optional[list] = None,
            max_steps: Optional[int] = None) -> Trajectory:
    """Drives one episode of `env` (a TerrainNav env, possibly wrapped) with `policy`.

    The policy is reset to batch size 1; privileged policies get the info dict each step.
    With a `teacher` (DAgger), the teacher is asked for its action at every step (the
    trajectory's `labels`, observations kept) and that action is executed instead of the
    policy's with probability `takeover`, by a coin seeded with `coin_seed`; the policy acts
    every step all the same, to keep its state. The teacher may be the policy itself.
    If `frames` is a list, env.render() output is appended to it every step. The episode
    ends when the env ends it or after `max_steps` steps.
    """
    obs, info = env.reset(seed=seed)
    base = env.unwrapped
    record = _Recorder(obs, info, keep_observations or teacher is not None)
    policy.reset(1)
    if teacher is not None and teacher is not policy:
        teacher.reset(1)
    coin = np.random.default_rng(coin_seed)
    if frames is not None:
        frames.append(env.render())
    while True:
        action = _act(policy, obs, info)
        if teacher is not None:
            label = action if teacher is policy else _act(teacher, obs, info)
            record.labels.append(label)
            record.takeovers.append(_rescuing(teacher))
            if coin.random() < takeover:
                action = label
        obs, reward, terminated, truncated, info = env.step(action)
        record.step(obs, info, action, reward)
        if frames is not None:
            frames.append(env.render())
        if terminated or truncated or (max_steps is not None and len(record.actions) >= max_steps):
            break
    return record.trajectory(base, seed, getattr(policy, "name", type(policy).__name__), info, teacher is not None)


def _rescuing(teacher) -> bool:
    """Whether the teacher's own escape (or rescue) chose its last action (GuidedExpert's
    rescuing(); False for a teacher without one)."""
    rescuing = getattr(teacher, "rescuing", None)
    return bool(rescuing(0)) if rescuing is not None else False


def _act(policy, obs: np.ndarray, info: dict) -> np.ndarray:
    return np.asarray(policy.act(obs, info if policy.privileged else None), dtype=np.float32).reshape(2)


class _Recorder:
    """Collects an episode's per-step values (index 0: after reset) for a Trajectory."""

    def __init__(self, obs: np.ndarray, info: dict, keep_observations: bool) -> None:
        pose = info["privileged"]["pose"]
        self.xy, self.yaw, self.dist, self.times = [pose[:2]], [pose[2]], [info["distance_to_goal"]], [0.0]
        self.start = np.array(pose, dtype=float)
        self.goal = np.array(info["privileged"]["goal"], dtype=float)
        self.observations = [obs] if keep_observations else None
        self.actions: list = []
        self.rewards: list = []
        self.collisions: list = []
        self.labels: list = []
        self.takeovers: list = []

    def step(self, obs: np.ndarray, info: dict, action: np.ndarray, reward: float) -> None:
        pose = info["privileged"]["pose"]
        self.xy.append(pose[:2])
        self.yaw.append(pose[2])
        self.dist.append(info["distance_to_goal"])
        self.times.append(info["time_s"])
        self.actions.append(action)
        self.rewards.append(reward)
        self.collisions.append(info["collision"])
        if self.observations is not None:
            self.observations.append(obs)

    def trajectory(self, base, seed: int, policy: str, info: dict, labelled: bool) -> Trajectory:
        return Trajectory(
            scenario=base.scenario.name, seed=seed, policy=policy, dt=1.0 / base.control_hz,
            time_s=np.array(self.times),
            xy=np.array(self.xy, dtype=float),
            yaw=np.array(self.yaw, dtype=float),
            distance=np.array(self.dist, dtype=float),
            actions=np.array(self.actions, dtype=np.float32).reshape(-1, 2),
            rewards=np.array(self.rewards, dtype=float),
            collisions=np.array(self.collisions, dtype=bool),
            goal=self.goal, start=self.start,
            events=list(info["events"]),
            termination=info["termination"],
            path_length=float(info["path_length"]),
            shortest_path_length=float(info["shortest_path_length"]),
            observations=None if self.observations is None else np.array(self.observations),
            labels=np.array(self.labels, dtype=np.float32).reshape(-1, 2) if labelled else None,
            takeovers=np.array(self.takeovers, dtype=bool).reshape(-1) if labelled else None,
            obstacles=tuple(base.terrain.obstacles),
            scenario_seed=info.get("scenario_seed"),
        )
