"""Rollout speed with the liquid policy, and evaluation throughput, measured in one run.

1. Real-time factor (simulated seconds per wall second) of `navctl.rollout` with the liquid
   policy, and the ratio of its wall time to the bare physics of the same simulated time:
   the time spent inside `stepSimulation` during those very episodes (same states, same
   contacts), clocked by a thin wrapper around it. Target: the whole loop (reset, env,
   sensors, events, policy, trajectory) <= 1.25x the physics.
2. Evaluation throughput (episodes per minute) of the evaluation engine with 1 and 2
   workers on the same tasks, process start-up included. Target speed-up >= 1.8x. The two
   are measured alternately `--trials` times and the best run of each is compared (as
   timeit does: on a shared virtual machine the same run varies by 10-20% from one try to
   the next). CPU seconds per episode are printed too: they show how many cores the 2-worker
   run actually got. With --training the same is measured on training collection tasks
   (the liquid policy sent by value, the expert labelling every step and taking over with
   probability 0.5, as in a DAgger round of `navctl train`).

The shipped `liquid` checkpoint is used if there is one, else an untrained liquid policy of
the same architecture (the same arithmetic per step), saved to a temporary checkpoint so
that worker processes can load it.

    python benchmarks/rollout.py [--scenario right-motor-fade] [--episodes 16] [--trials 3] [--repeats 3] [--training]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import tempfile
import time
from pathlib import Path

import envs  # noqa: F401  (registers the env)
from envs import terrain_nav
from envs.scenarios import load
from envs.terrain_nav import TerrainNavEnv
from navctl.backends import run_tasks
from navctl.episode import Task
from navctl.evaluate import plan
from navctl.policy_names import PolicyWeights, make_policy
from navctl.rollout import rollout


def liquid_policy_name(tmp: Path) -> tuple[str, str]:
    """(name or checkpoint path for make_policy, a description)."""
    try:
        make_policy("liquid")
        return "liquid", "shipped liquid checkpoint"
    except ValueError:
        import policies
        from policies.checkpoint import save_policy

        path = tmp / "liquid-untrained.safetensors"
        save_policy(policies.build({"kind": "liquid"}), path)
        return str(path), "untrained liquid policy (the shipped checkpoint is missing)"


class TimedPhysics:
    """pybullet with a stopwatch on stepSimulation (everything else passes through)."""

    def __init__(self, module) -> None:
        self._module = module
        self.seconds = 0.0

    def stepSimulation(self, *args, **kwargs):  # noqa: N802 (pybullet's name)
        t0 = time.perf_counter()
        out = self._module.stepSimulation(*args, **kwargs)
        self.seconds += time.perf_counter() - t0
        return out

    def __getattr__(self, name: str):
        return getattr(self._module, name)


def time_rollout(env: TerrainNavEnv, policy, seed: int) -> tuple[float, float, float]:
    """(wall seconds, seconds inside stepSimulation, simulated seconds) of one episode."""
    timed = TimedPhysics(terrain_nav.p)
    terrain_nav.p = timed
    try:
        t0 = time.perf_counter()
        traj = rollout(env, policy, seed)
        wall = time.perf_counter() - t0
    finally:
        terrain_nav.p = timed._module
    return wall, timed.seconds, float(traj.time_s[-1])


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its reaped children, seconds."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def training_tasks(name: str, scenario, episodes: int) -> list[Task]:
    """A DAgger round's collection: the policy by value, the expert teaching (takeover 0.5)."""
    policy = make_policy(name)
    student = PolicyWeights.of(policy, dataclasses.asdict(policy.config))
    return [Task("student", scenario, i, i, weights=student, teacher="expert", takeover=0.5, coin_seed=i)
            for i in range(episodes)]


def throughput(tasks: list, workers: int) -> tuple[float, float]:
    """(episodes per minute, CPU seconds per episode) of the executor, pool start-up included."""
    t0, c0 = time.perf_counter(), _cpu_seconds()
    results = list(run_tasks(tasks, workers=workers))  # the pool has shut down: its CPU time is counted
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    errors = [r.row["error"] for r in results if r.row["status"] != "ok"]
    if errors:
        raise RuntimeError(f"episodes failed: {errors[0]}")
    return 60.0 * len(results) / wall, cpu / len(results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="right-motor-fade")
    ap.add_argument("--episodes", type=int, default=16, help="episodes per throughput measurement")
    ap.add_argument("--trials", type=int, default=3, help="alternating 1- and 2-worker measurements")
    ap.add_argument("--repeats", type=int, default=3, help="episodes timed for the real-time factor")
    ap.add_argument("--training", action="store_true", help="measure throughput on training collection tasks")
    args = ap.parse_args()
    scenario = load(args.scenario)
    print(f"cpus: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        name, what = liquid_policy_name(Path(tmp))
        print(f"policy: {what}; scenario: {scenario.name}")

        env = TerrainNavEnv(scenario)
        policy = make_policy(name)
        rollout(env, policy, seed=0)  # warm-up
        runs = [time_rollout(env, policy, seed=k) for k in range(args.repeats)]
        env.close()
        wall, physics, simulated = (sum(r[i] for r in runs) for i in range(3))
        print(f"rollout: {len(runs)} episodes, {simulated:.0f} simulated s in {wall:.1f} wall s: "
              f"real-time factor {simulated / wall:.1f}x")
        print(f"inside stepSimulation: {physics:.1f} s; loop / physics = {wall / physics:.3f} (target <= 1.25)")

        tasks = (training_tasks(name, scenario, args.episodes) if args.training
                 else plan([name], [scenario], args.episodes, seed=0))
        kind = "training collection" if args.training else "evaluation"
        trials = {1: [], 2: []}
        for _ in range(args.trials):
            for workers in (1, 2):
                trials[workers].append(throughput(tasks, workers))
        print(f"{kind} trials, episodes/min: " + "; ".join(
            f"{w} worker{'s' if w > 1 else ''}: " + ", ".join(f"{t[0]:.1f}" for t in trials[w]) for w in (1, 2)))
        (one, cpu_one), (two, cpu_two) = (max(trials[w]) for w in (1, 2))
        print(f"{kind}, {args.episodes} episodes, best of {args.trials}: 1 worker {one:.1f} episodes/min "
              f"({cpu_one:.1f} CPU s each), 2 workers {two:.1f} episodes/min ({cpu_two:.1f} CPU s each, "
              f"start-up included); speed-up {two / one:.2f}x (target >= 1.8)")
        med = [sorted(t[0] for t in trials[w])[len(trials[w]) // 2] for w in (1, 2)]
        print(f"median of {args.trials} for comparison: {med[0]:.1f} vs {med[1]:.1f} episodes/min, "
              f"speed-up {med[1] / med[0]:.2f}x")
        print(f"cores the 2-worker run got: {two / 60 * cpu_two:.2f} of {os.cpu_count()} "
              "(below 2: other processes had the rest)")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
