"""DAgger data: episodes in which the privileged expert labels every observation.

Runs in worker processes: each worker keeps one env per scenario and rebuilds the student
from (config, weights) sent with the job. An episode is fully determined by its job (seed,
beta, weights), so results do not depend on which worker ran it or how many there are.
"""
from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Optional

import numpy as np

from navctl.metrics import path_efficiency

_ENVS: dict[str, Any] = {}
_STUDENT: dict[str, Any] = {}


@dataclass(frozen=True)
class EpisodeJob:
    scenario: str
    seed: int
    beta: float  # probability that the expert's action is executed at a step (1 = expert drives)
    mix_seed: int  # seeds the per-step expert/student coin
    policy_config: Optional[dict] = None  # the student; None when the expert drives alone
    weights: Optional[dict[str, np.ndarray]] = None
    weights_id: str = ""  # identifies `weights` so a worker rebuilds the student only when it changes
    max_steps: Optional[int] = None


@dataclass
class EpisodeData:
    scenario: str
    seed: int
    obs: np.ndarray  # (T, obs_dim) float32, what the student saw
    expert_actions: np.ndarray  # (T, 2) float32, the labels
    success: bool
    spl: float
    termination: str


def _env(scenario: str):
    if scenario not in _ENVS:
        from envs.terrain_nav import TerrainNavEnv

        _ENVS[scenario] = TerrainNavEnv(scenario)
    return _ENVS[scenario]


def _student(job: EpisodeJob):
    if _STUDENT.get("id") != job.weights_id:
        import policies
        import torch

        student = policies.build(job.policy_config)
        student.net.load_state_dict({k: torch.from_numpy(v) for k, v in job.weights.items()})
        student.net.eval()
        _STUDENT.update(id=job.weights_id, policy=student)
    return _STUDENT["policy"]


def run_episode(job: EpisodeJob) -> EpisodeData:
    """One labelled episode (the student acts every step to keep its state, even when the expert drives)."""
    from navctl.expert import ExpertController

    env = _env(job.scenario)
    expert = ExpertController()
    student = _student(job) if job.policy_config is not None else None
    coin = np.random.default_rng(job.mix_seed)
    obs, info = env.reset(seed=job.seed)
    expert.reset(1)
    if student is not None:
        student.reset(1)
    seen, labels = [], []
    steps = 0
    while True:
        label = np.asarray(expert.act(obs, info), dtype=np.float32).reshape(2)
        action = label
        if student is not None:
            mine = np.asarray(student.act(obs), dtype=np.float32).reshape(2)
            if coin.random() >= job.beta:
                action = mine
        seen.append(obs)
        labels.append(label)
        obs, _, terminated, truncated, info = env.step(action)
        steps += 1
        if terminated or truncated or (job.max_steps is not None and steps >= job.max_steps):
            break
    success = bool(info["is_success"])
    spl = path_efficiency(info["shortest_path_length"], info["path_length"]) if success else 0.0
    return EpisodeData(job.scenario, job.seed, np.asarray(seen, np.float32), np.asarray(labels, np.float32),
                       success, spl, str(info["termination"]))


def _init_worker(torch_threads: int) -> None:
    import torch

    torch.set_num_threads(torch_threads)


class Collector:
    """Runs episode jobs on `workers` processes (in this process when workers == 1), in job order."""

    def __init__(self, workers: int, torch_threads: int = 1) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.pool = None
        if self.workers > 1:
            ctx = multiprocessing.get_context("spawn")  # no forked torch or PyBullet state
            self.pool = ctx.Pool(self.workers, initializer=_init_worker, initargs=(torch_threads,))

    def run(self, jobs: Iterable[EpisodeJob]) -> Iterator[EpisodeData]:
        if self.pool is None:
            return map(run_episode, jobs)
        return self.pool.imap(run_episode, jobs)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None
