"""One episode as a job: a Task in, an EpisodeResult (its CSV row, and on request its
Trajectory) out. The same job type serves evaluation and training collection.

    Task           what to run: policy (a name, or a student by value), scenario, seed, and
                   for DAgger the teacher and its takeover probability
    Trajectory     what happened, step by step (navctl.rollout, the one episode loop)
    EpisodeResult  what a worker sends back: the row, and the trajectory when asked for

A task is fully determined by its fields: the policy is reset and the environment reseeded
at the start of every episode, so where and after what an episode runs does not change its
result. `Runner` keeps one environment per scenario and one policy per name for the life of
a worker process. An episode that raises becomes a row with status "error" and the
exception's message.

Row columns (`COLUMNS`): `scenario` is the name the task gave (a procedural set such as
`procedural-test` for all its episodes), `scenario_seed` the generator seed of the scenario
the episode ran (empty for a file); times in simulated seconds, lengths in metres, rates in m/s toward
the goal. `events` is a JSON list with, for every event that fired, its time, position,
effect, the progress rate before and after it and its recovery time (null = not recovered);
`progress_curve` is the progress rate on `curve_offsets()` around the first event (JSON,
null where outside the episode).
"""
from __future__ import annotations

import json
import math
import sys
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np

from envs.scenarios import Scenario
from navctl import policy_names
from navctl.policy_names import PolicyWeights
from navctl.metrics import aligned_progress, episode_metrics
from navctl.rollout import Trajectory, rollout

if TYPE_CHECKING:
    from navctl.scenario_sets import ProceduralSet

COLUMNS = [
    "policy", "scenario", "episode", "seed", "scenario_seed", "status", "error",
    "success", "spl", "soft_spl", "collisions", "time_to_goal_s", "episode_time_s",
    "path_length_m", "shortest_path_m", "final_distance_m", "termination",
    "events_fired", "recovered_events", "mean_recovery_s", "events", "progress_curve",
]
CURVE_BEFORE_S = 5.0  # adaptation curve: seconds before the first event ...
CURVE_AFTER_S = 15.0  # ... and after it
CURVE_STEP_S = 0.25  # grid step, seconds


def curve_offsets() -> np.ndarray:
    """Times relative to the first event (s) at which `progress_curve` is sampled."""
    return np.arange(-CURVE_BEFORE_S, CURVE_AFTER_S + 1e-9, CURVE_STEP_S)


def episode_seed(seed: int, scenario: str, index: int) -> int:
    """The env seed of episode `index` of `scenario` in a run with base `seed` (stable across runs)."""
    ss = np.random.SeedSequence([int(seed), zlib.crc32(scenario.encode("utf-8")), int(index)])
    return int(ss.generate_state(1, np.uint32)[0])


@dataclass(frozen=True)
class Task:
    """One episode to run.

    `policy` is a name for policy_names.make_policy, or, when `weights` is given, the label
    of that learned policy in the row. `scenario` is a scenario, or a procedural set whose
    env generates the scenario of `seed` (navctl.scenario_sets). With a `teacher` (a policy name, e.g. "expert") the
    episode is a DAgger episode (see navctl.rollout.rollout): the trajectory is kept, with
    the teacher's labels and the observations.
    """

    policy: str
    scenario: Union[Scenario, "ProceduralSet"]
    episode: int
    seed: int
    keep_trajectory: bool = False
    weights: Optional[PolicyWeights] = None
    teacher: Optional[str] = None
    takeover: float = 0.0  # probability that the teacher's action is executed at a step
    coin_seed: int = 0  # seeds the per-step teacher/policy coin
    max_steps: Optional[int] = None  # cut the episode after this many steps

    @property
    def key(self) -> tuple[str, str, int, int]:
        return (self.policy, self.scenario.name, self.episode, self.seed)


@dataclass
class EpisodeResult:
    row: dict[str, Any]
    trajectory: Optional[Trajectory] = None


def _num(x: Any) -> Optional[float]:
    """A float for JSON/CSV, None for NaN or missing."""
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def _fmt(x: Any) -> str:
    """CSV text of a value: floats to 6 decimals, 1/0 for booleans, '' for NaN/None."""
    if x is None:
        return ""
    if isinstance(x, (bool, np.bool_)):
        return "1" if x else "0"
    if isinstance(x, (float, np.floating)):
        return "" if math.isnan(x) else repr(round(float(x), 6))
    return str(x)


def _plain_event(event: dict[str, Any]) -> dict[str, Any]:
    """An event of metrics.event_metrics for JSON: rounded, None for NaN."""
    out = dict(event)
    for k in ("time_s", "rate_before", "rate_after", "recovery_s"):
        value = _num(event[k])
        out[k] = None if value is None else round(value, 6)
    out["position"] = [round(float(v), 4) for v in event["position"]]
    return out


def make_row(task: Task, traj: Trajectory) -> dict[str, str]:
    """The CSV row of a finished episode."""
    m = episode_metrics(traj)
    events = [_plain_event(e) for e in m["events"]]
    curve = aligned_progress(traj, CURVE_BEFORE_S, CURVE_AFTER_S, CURVE_STEP_S)
    curve_json = "" if curve is None else json.dumps([None if math.isnan(r) else round(float(r), 4)
                                                      for r in curve[1]])
    row = {k: m[k] for k in COLUMNS if k in m}
    row.update(policy=task.policy, scenario=task.scenario.name, episode=task.episode, seed=task.seed,
               scenario_seed=traj.scenario_seed, status="ok", error="",
               events=json.dumps(events, separators=(",", ":")), progress_curve=curve_json)
    return {k: _fmt(row.get(k)) for k in COLUMNS}


def _scenario_seed(task: Task) -> Optional[int]:
    """The generator seed a task's episode runs (None for a fixed scenario)."""
    return None if isinstance(task.scenario, Scenario) else task.scenario.scenario_seed(task.seed)


def error_row(task: Task, exc: BaseException) -> dict[str, str]:
    """The CSV row of an episode that raised."""
    message = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    row = {k: "" for k in COLUMNS}
    row.update(policy=task.policy, scenario=task.scenario.name, episode=str(task.episode), seed=str(task.seed),
               scenario_seed=_fmt(_scenario_seed(task)), status="error", error=message)
    return row


def parse_row(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row with its values typed back (NaN for empty numbers, lists for the JSON columns)."""
    out: dict[str, Any] = dict(row)
    for k in ("episode", "seed", "collisions", "events_fired", "recovered_events"):
        out[k] = int(row[k]) if row.get(k) else 0
    for k in ("spl", "soft_spl", "time_to_goal_s", "episode_time_s", "path_length_m", "shortest_path_m",
              "final_distance_m", "mean_recovery_s"):
        out[k] = float(row[k]) if row.get(k) else math.nan
    out["scenario_seed"] = int(row["scenario_seed"]) if row.get("scenario_seed") else None
    out["success"] = row.get("success") == "1"
    out["events"] = json.loads(row["events"]) if row.get("events") else []
    out["progress_curve"] = (np.array([math.nan if v is None else v for v in json.loads(row["progress_curve"])])
                             if row.get("progress_curve") else None)
    return out


def _single_threaded_torch() -> None:
    """One torch thread per worker: workers already fill the cores, and results do not
    depend on how many threads a matrix product was split over."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


class Runner:
    """Runs tasks in this process, keeping one env per scenario and one policy per name."""

    def __init__(self, render_mode: Optional[str] = None) -> None:
        self.render_mode = render_mode
        self._envs: dict[Any, Any] = {}
        self._policies: dict[str, Any] = {}
        self._student: tuple[str, Any] = ("", None)  # (digest, policy): the last policy sent by value

    def _env(self, scenario: Union[Scenario, "ProceduralSet"]):
        if scenario not in self._envs:
            from envs.terrain_nav import TerrainNavEnv
            given = scenario if isinstance(scenario, Scenario) else scenario.name  # "procedural-test": the env generates
            self._envs[scenario] = TerrainNavEnv(given, render_mode=self.render_mode)
        return self._envs[scenario]

    def _policy(self, name: str):
        if name not in self._policies:
            self._policies[name] = policy_names.make_policy(name)
            _single_threaded_torch()
        return self._policies[name]

    def _by_value(self, weights: PolicyWeights):
        if self._student[0] != weights.digest:  # one at a time: training sends a new one every round
            self._student = (weights.digest, weights.build())
            _single_threaded_torch()
        return self._student[1]

    def run(self, task: Task, frames: Optional[list] = None) -> EpisodeResult:
        """Runs one episode; an exception becomes an error row (and the cached env and policy,
        whose state is now unknown, are rebuilt for the next task)."""
        try:
            env = self._env(task.scenario)
            policy = self._policy(task.policy) if task.weights is None else self._by_value(task.weights)
            teacher = None if task.teacher is None else self._policy(task.teacher)
            traj = rollout(env, policy, task.seed, teacher=teacher, takeover=task.takeover,
                           coin_seed=task.coin_seed, frames=frames, max_steps=task.max_steps)
            traj.policy = task.policy
            row = make_row(task, traj)
        except Exception as exc:  # noqa: BLE001 - any failure of one episode is recorded, the run goes on
            self._forget(task)
            return EpisodeResult(error_row(task, exc))
        keep = task.keep_trajectory or task.teacher is not None
        return EpisodeResult(row, traj if keep else None)

    def _forget(self, task: Task) -> None:
        self._policies.pop(task.policy, None)
        if task.teacher is not None:
            self._policies.pop(task.teacher, None)
        self._student = ("", None)
        env = self._envs.pop(task.scenario, None)
        if env is not None:
            _close(env)

    def close(self) -> None:
        for env in self._envs.values():
            _close(env)
        self._envs.clear()
        self._policies.clear()
        self._student = ("", None)


def _close(env) -> None:
    from envs.quiet import c_output_silenced

    with c_output_silenced():  # PyBullet's GUI says goodbye on stdout
        env.close()


_WORKER_RUNNER: Optional[Runner] = None


def run_in_worker(task: Task) -> EpisodeResult:
    """Entry point of pool and Ray workers: runs `task` on this process's shared Runner."""
    global _WORKER_RUNNER
    if _WORKER_RUNNER is None:
        _WORKER_RUNNER = Runner()
    return _WORKER_RUNNER.run(task)
