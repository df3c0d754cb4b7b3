"""Soak test: many episodes over every scenario, driven by random actions and by a policy.

Checks what a long run must not do, and counts what it saw:
  - no NaN or inf in any observation or reward (each one is counted, with where it was);
  - no exception from reset or step (counted by type, and the run goes on);
  - bounded memory: the process's resident set size (psutil) after a warm-up round and at
    the end, and the growth per 1000 episodes in between;
  - events fired, steps with a collision, episodes with one, how episodes ended.

Every round remakes one env per scenario (so connect / disconnect is soaked too) and drives
one episode per action source in each. Episodes are capped at --max-steps control steps to
make thousands affordable; every --full-every-th round runs each episode to its end (events
fire mid-episode, at 5-12 s in the built-ins). Exit status 1 if a NaN, an error, or (with
--max-rss-growth-mb) too much memory growth was seen.

    python benchmarks/soak.py                                      # the figures in BENCHMARKS.md
    python benchmarks/soak.py --rounds 5 --max-steps 10            # a smoke run
    python benchmarks/soak.py --scenarios ice-strip,my/arena.yaml  # any scenario= the env takes: names, files,
                                                                   # and the procedural generator's once it exists
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import psutil

from envs import scenarios
from envs.terrain_nav import TerrainNavEnv

MIB = 1024 * 1024


@dataclass
class Tally:
    """What the soak saw, over all episodes."""

    episodes: int = 0
    full_episodes: int = 0
    steps: int = 0
    nonfinite: list = field(default_factory=list)  # (scenario, source, seed, step, what)
    errors: Counter = field(default_factory=Counter)  # "Type: message" -> count
    error_examples: dict = field(default_factory=dict)  # "Type: message" -> (scenario, source, seed)
    events: Counter = field(default_factory=Counter)  # trigger -> count
    collision_steps: int = 0
    collision_episodes: int = 0
    endings: Counter = field(default_factory=Counter)  # termination -> count (None: capped)


def random_actor(rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    """Uniform actions, 10% of them outside [-1, 1] (the env clips them)."""
    def act(obs: np.ndarray) -> np.ndarray:
        scale = 1.5 if rng.random() < 0.1 else 1.0
        return rng.uniform(-scale, scale, 2).astype(np.float32)
    return act


def run_episode(env: TerrainNavEnv, act: Callable[[np.ndarray], np.ndarray], seed: int, max_steps: Optional[int],
                where: tuple[str, str], tally: Tally) -> None:
    """One episode; every observation and reward checked, events, collisions and the ending counted."""
    obs, info = env.reset(seed=seed)
    if not np.isfinite(obs).all():
        tally.nonfinite.append((*where, seed, 0, "reset observation"))
    collided, termination, step = False, None, 0
    while max_steps is None or step < max_steps:
        obs, reward, terminated, truncated, info = env.step(act(obs))
        step += 1
        if not np.isfinite(obs).all() or not math.isfinite(reward):
            tally.nonfinite.append((*where, seed, step, "observation" if math.isfinite(reward) else "reward"))
        if info["collision"]:
            tally.collision_steps += 1
            collided = True
        if terminated or truncated:
            termination = info["termination"]
            break
    tally.steps += step
    tally.events.update(e["trigger"] for e in info["events"])
    tally.collision_episodes += collided
    tally.endings[termination or "capped"] += 1


def _load_policy(name: str):  # noqa: ANN202 - a policies.Policy; imported here, torch is heavy
    import policies

    return policies.load(name)


def _actor(source: str, policy, episode_seed: int) -> Callable[[np.ndarray], np.ndarray]:
    if source == "policy":
        policy.reset(1)
        return policy.act
    return random_actor(np.random.default_rng(episode_seed))


def _drive(env: TerrainNavEnv, act: Callable[[np.ndarray], np.ndarray], seed: int, max_steps: Optional[int],
           where: tuple[str, str], tally: Tally) -> None:
    """run_episode, with an exception counted (by type and message) instead of ending the soak."""
    try:
        run_episode(env, act, seed, max_steps, where, tally)
    except Exception as e:  # noqa: BLE001 - a soak counts failures and goes on
        key = f"{type(e).__name__}: {e}"
        tally.errors[key] += 1
        tally.error_examples.setdefault(key, (*where, seed))
    tally.episodes += 1


def soak(names: list[str], sources: list[str], rounds: int, max_steps: int, full_every: int, policy_name: str,
         seed: int, warmup_rounds: int, progress: bool) -> tuple[Tally, dict]:
    """Runs the soak; returns the tally and memory readings (MiB) and timings."""
    process = psutil.Process()
    for name in names:  # a bad name or file stops here, before any episode
        TerrainNavEnv(name).close()
    policy = _load_policy(policy_name) if "policy" in sources else None
    rng = np.random.default_rng(seed)
    tally, memory = Tally(), {"start": process.memory_info().rss / MIB}
    t0 = time.perf_counter()
    for r in range(rounds):
        full = full_every > 0 and r % full_every == full_every - 1
        for name in names:
            env = TerrainNavEnv(name)  # whatever the env takes: a built-in, a file, a generator's name
            for source in sources:
                episode_seed = int(rng.integers(2 ** 31))
                _drive(env, _actor(source, policy, episode_seed), episode_seed, None if full else max_steps,
                       (name, source), tally)
                tally.full_episodes += full
            env.close()
        rss = process.memory_info().rss / MIB
        if r == warmup_rounds - 1:
            memory["warm"], memory["warm_episodes"] = rss, tally.episodes
        if r >= warmup_rounds - 1:
            memory.setdefault("samples", []).append((tally.episodes, rss))  # one reading per round
        memory["peak"] = max(memory.get("peak", 0.0), rss)
        if progress:
            print(f"  round {r + 1}/{rounds}: {tally.episodes} episodes, {tally.steps} steps, "
                  f"{time.perf_counter() - t0:.0f} s, RSS {process.memory_info().rss / MIB:.0f} MiB", flush=True)
    memory["end"] = process.memory_info().rss / MIB
    memory["seconds"] = time.perf_counter() - t0
    return tally, memory


def report(tally: Tally, memory: dict, names: list[str], sources: list[str]) -> list[str]:
    """The summary lines."""
    lines = [f"{tally.episodes} episodes ({tally.full_episodes} run to their end) over {len(names)} scenarios x "
             f"{'/'.join(sources)}, {tally.steps} control steps in {memory['seconds']:.0f} s "
             f"({tally.steps / memory['seconds']:.0f} steps/s)",
             f"non-finite observations or rewards: {len(tally.nonfinite)}"]
    lines += [f"  {s} / {src} seed {seed} step {step}: {what}" for s, src, seed, step, what in tally.nonfinite[:10]]
    lines.append(f"errors: {sum(tally.errors.values())}")
    lines += [f"  {n} x {key} (first: {tally.error_examples[key]})" for key, n in tally.errors.most_common(10)]
    lines.append(f"events fired: {sum(tally.events.values())} ({', '.join(f'{k} {v}' for k, v in sorted(tally.events.items()))})")
    lines.append(f"collisions: {tally.collision_steps} steps, in {tally.collision_episodes} episodes")
    lines.append("endings: " + ", ".join(f"{k} {v}" for k, v in tally.endings.most_common()))
    if "warm" in memory:
        lines.append(f"memory (RSS): {memory['start']:.0f} MiB at start, {memory['warm']:.0f} MiB after the warm-up "
                     f"({memory['warm_episodes']} episodes), {memory['end']:.0f} MiB at the end, peak "
                     f"{memory['peak']:.0f} MiB: growth {memory['end'] - memory['warm']:+.1f} MiB over "
                     f"{tally.episodes - memory['warm_episodes']} episodes")
        episodes, rss = np.array(memory["samples"]).T
        if len(episodes) >= 3:  # the trend is steadier than the end-to-end difference (the allocator breathes)
            slope = np.polyfit(episodes, rss, 1)[0] * 1000
            lines.append(f"  after the warm-up RSS stayed in [{rss.min():.0f}, {rss.max():.0f}] MiB over {len(rss)} "
                         f"readings; least-squares trend {slope:+.2f} MiB per 1000 episodes")
    return lines


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", default="all",
                    help="comma-separated scenario names or files; 'all' (the built-ins), 'train' or 'eval'")
    ap.add_argument("--sources", default="random,policy", help="action sources: random, policy (default both)")
    ap.add_argument("--policy", default="liquid", help="the policy for the 'policy' source (policies.load name or file)")
    ap.add_argument("--rounds", type=int, default=50, help="episodes per scenario and source")
    ap.add_argument("--max-steps", type=int, default=20, help="control steps per capped episode")
    ap.add_argument("--full-every", type=int, default=50, help="every N-th round runs episodes to their end (0: never)")
    ap.add_argument("--warmup-rounds", type=int, default=1, help="rounds before the memory baseline is read")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-rss-growth-mb", type=float, default=None, help="fail (exit 1) if RSS grows more after warm-up")
    ap.add_argument("--quiet", action="store_true", help="no line per round")
    args = ap.parse_args(argv)
    if args.scenarios == "all":
        names = scenarios.names()
    elif args.scenarios in scenarios.SPLITS:
        names = scenarios.names(args.scenarios)
    else:
        names = [n for n in args.scenarios.split(",") if n]
    sources = [s for s in args.sources.split(",") if s]
    if not names or not sources or set(sources) - {"random", "policy"} or args.rounds < 1 or args.max_steps < 1:
        ap.error("need scenarios, sources among random and policy, --rounds >= 1 and --max-steps >= 1")
    try:
        tally, memory = soak(names, sources, args.rounds, args.max_steps, args.full_every, args.policy, args.seed,
                             min(args.warmup_rounds, args.rounds), not args.quiet)
    except (scenarios.ScenarioError, FileNotFoundError, ValueError) as e:
        print(f"soak: error: {e}", file=sys.stderr)
        return 2
    print("\n".join(report(tally, memory, names, sources)))
    too_much = args.max_rss_growth_mb is not None and memory["end"] - memory.get("warm", memory["end"]) > args.max_rss_growth_mb
    return 1 if tally.nonfinite or tally.errors or too_much else 0


if __name__ == "__main__":
    sys.exit(main())
