"""The privileged expert on procedural scenarios: success, SPL, and what the failures have in common.

Episode k runs the env `scenario="procedural-<split>"` reset with seed start + k, i.e. the
split's scenario number start + k (envs/terrain_nav.py), driven by the expert as
navctl/dagger.py drives it (act(obs, info) every control step). Prints the success rate,
SPL (success x shortest / driven path), the termination reasons, every failed episode with
its scenario's features, and for each feature how often episodes having it failed. Also
the generation time per scenario against the episode's simulated and wall time.

    python benchmarks/expert_procedural.py [--episodes 50] [--split validation] [--start 0] [--policy expert]
                                           [--json rows.json]
    python benchmarks/expert_procedural.py --compare classical.json guided.json ...

`--policy` drives with another policy instead (`classical`, `guided`, `guided-rescue` (the
guided teacher with ExpertConfig.rescue on), `guided-escape` (with ExpertConfig.escape on), or
a `policies.load` name or checkpoint such as `liquid`), to compare on the same scenarios. For
`guided-rescue` and `guided-escape` it also counts the steps the rescue (escape) drives and how
far its actions are from what the classical controller would command.
`--json` saves the per-episode rows; `--compare` prints success and SPL of saved runs on the
scenarios they share, and which of the first run's failures each other run fixes.
"""
from __future__ import annotations

import argparse
import collections
import json
import re
import time

import numpy as np

from envs.scenarios import Scenario, generate, procedural_seed
from envs.terrain_nav import TerrainNavEnv

from navctl.expert import ExpertConfig, GuidedExpert
from navctl.policy_names import classical_controller, make_policy


def features(sc: Scenario) -> list[str]:
    """Short tags for what a scenario holds: layout, zone kinds, terrain, events."""
    layout = re.search(r"layout ([a-z-]+)", sc.description)
    tags = [f"layout={layout.group(1) if layout else '?'}"]
    tags += sorted({f"zone={s.name}" for s in sc.surfaces})
    if sc.arena.hills:
        tags.append("hills")
    if sc.arena.roughness_m >= 0.02:
        tags.append("rough")
    if max(sc.arena.size_m) >= 24:
        tags.append("big-arena")
    for e in sc.events:
        s = e.set
        if s.motor_gain is not None:
            g = min(v for v in (s.motor_gain.left, s.motor_gain.right) if v is not None)
            tags.append("gain<0.4" if g < 0.4 else "gain-drop")
        if s.friction_scale is not None:
            tags.append("fscale<0.5" if s.friction_scale < 0.5 else "fscale")
        if s.payload_kg is not None:
            tags.append("payload>40" if s.payload_kg > 40 else "payload")
        tags.append(f"trigger={e.trigger}")
    return sorted(set(tags))


def run_episode(env: TerrainNavEnv, policy, seed: int) -> dict:
    obs, info = env.reset(seed=seed)
    policy.reset(1)
    start = np.asarray(info["privileged"]["pose"][:2]).copy()
    rescue = RescueTally(policy)
    t0 = time.perf_counter()
    while True:
        action = policy.act(obs, info) if getattr(policy, "privileged", False) else policy.act(obs)
        rescue.step(obs, action)
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    success = bool(info["is_success"])
    shortest, driven = info["shortest_path_length"], info["path_length"]
    spl = (shortest / max(shortest, driven) if shortest > 0 else 1.0) if success else 0.0
    return {"seed": seed, "scenario": info["scenario"], "scenario_seed": info["scenario_seed"], "success": success,
            "spl": spl, "termination": info["termination"], "time_s": info["time_s"],
            "time_limit_s": env.scenario.time_limit_s, "left_m": info["distance_to_goal"],
            "start": start, "end": np.asarray(info["privileged"]["pose"][:2]).copy(),
            "events": [e["set"] for e in info["events"]], "features": features(env.scenario),
            "wall_s": time.perf_counter() - t0, **rescue.summary()}


class RescueTally:
    """For a guided teacher with the rescue (or escape): how many steps it drives, and its
    actions and the other steps' actions beside the classical controller's on the same
    observations (normalised [v, w] each). Does nothing for other policies."""

    def __init__(self, policy) -> None:
        takes_over = isinstance(policy, GuidedExpert) and (policy.config.rescue or policy.config.escape)
        self.policy = policy if takes_over else None
        self.classical = classical_controller()
        self.classical.reset(1)
        self.pairs = {True: [], False: []}  # rescuing -> [[v, w, classical v, classical w], ...]

    def step(self, obs: np.ndarray, action: np.ndarray) -> None:
        if self.policy is None:
            return
        classical = self.classical.act(obs)
        self.pairs[self.policy.rescuing(0)].append([*map(float, action), *map(float, classical)])

    def summary(self) -> dict:
        if self.policy is None:
            return {}
        return {"rescue_steps": len(self.pairs[True]), "other_steps": len(self.pairs[False]),
                "rescue_pairs": self.pairs[True], "other_pairs": self.pairs[False]}


def report_rescue(rows: list[dict]) -> None:
    """Share of steps the rescue (or escape) drove, and how its actions differ from the classical controller's."""
    if not rows or "rescue_steps" not in rows[0]:
        return
    on, off = sum(r["rescue_steps"] for r in rows), sum(r["other_steps"] for r in rows)
    used = sum(r["rescue_steps"] > 0 for r in rows)
    print(f"rescue (or escape) active on {on} of {on + off} steps ({on / max(on + off, 1):.3f}), "
          f"in {used} of {len(rows)} episodes")
    for name, key in (("rescue", "rescue_pairs"), ("other", "other_pairs")):
        p = np.array([x for r in rows for x in r.get(key, [])]).reshape(-1, 4)
        if len(p) == 0:
            continue
        dv, dw = np.abs(p[:, 0] - p[:, 2]), np.abs(p[:, 1] - p[:, 3])
        opposite = (p[:, 1] * p[:, 3] < 0) & (np.abs(p[:, 1]) > 0.1) & (np.abs(p[:, 3]) > 0.1)
        print(f"  {name} steps ({len(p)}), against the classical action: |dv| mean {dv.mean():.3f}, "
              f"|dw| mean {dw.mean():.3f} (normalised); |dv| or |dw| > 0.5 on {np.mean((dv > 0.5) | (dw > 0.5)):.3f}; "
              f"turns the other way on {opposite.mean():.3f}; reverses (v < -0.05) on {np.mean(p[:, 0] < -0.05):.3f} "
              f"(classical {np.mean(p[:, 2] < -0.05):.3f})")


def compare(paths: list[str]) -> None:
    """Success and SPL of saved runs on their shared scenarios; failures of the first fixed by the others."""
    runs = {p: {r["scenario"]: r for r in json.load(open(p))} for p in paths}
    shared = sorted(set.intersection(*(set(r) for r in runs.values())), key=lambda n: int(n.rsplit("-", 1)[1]))
    print(f"{len(shared)} shared scenarios")
    first = runs[paths[0]]
    failed_first = {n for n in shared if not first[n]["success"]}
    for p, rows in runs.items():
        ok = [rows[n]["success"] for n in shared]
        fixed = sorted(n for n in failed_first if rows[n]["success"])
        broke = sorted(n for n in shared if first[n]["success"] and not rows[n]["success"])
        print(f"{p:<40} success {np.mean(ok):.3f}  SPL {np.mean([rows[n]['spl'] for n in shared]):.3f}  "
              f"fixes {len(fixed)}/{len(failed_first)} of the first's failures; fails where it succeeded: {broke}")
        report_rescue([rows[n] for n in shared])


def report(rows: list[dict], gen_s: np.ndarray) -> None:
    n = len(rows)
    success = np.array([r["success"] for r in rows])
    print(f"episodes: {n}  success: {success.mean():.3f}  SPL: {np.mean([r['spl'] for r in rows]):.3f}")
    ok = [r for r in rows if r["success"]]
    if ok:
        used = np.array([r["time_s"] / r["time_limit_s"] for r in ok])
        print(f"successful episodes used {used.mean():.2f} of the time limit on average (max {used.max():.2f})")
    print("terminations:", dict(collections.Counter(r["termination"] for r in rows)))
    print(f"generation: {1000 * gen_s.mean():.1f} ms per scenario (max {1000 * gen_s.max():.1f}); episodes: "
          f"{np.mean([r['time_s'] for r in rows]):.1f} s simulated, {np.mean([r['wall_s'] for r in rows]):.1f} s wall "
          f"on average")
    print("\nfailures:")
    for r in rows:
        if not r["success"]:
            print(f"  {r['scenario']:<22} {r['termination']:<12} t={r['time_s']:.0f}/{r['time_limit_s']:.0f} s "
                  f"left {r['left_m']:.1f} m at ({r['end'][0]:.1f}, {r['end'][1]:.1f}); fired {r['events']}; "
                  f"{' '.join(r['features'])}")
    print("\nfailure rate by feature (failed / episodes with it):")
    counts = collections.Counter(t for r in rows for t in r["features"])
    failed = collections.Counter(t for r in rows if not r["success"] for t in r["features"])
    for tag, k in sorted(counts.items(), key=lambda kv: (-failed[kv[0]] / kv[1], kv[0])):
        print(f"  {tag:<26} {failed[tag]:>3} / {k:<3}")
    report_rescue(rows)


def teacher_config(switch: str, settings: list[str]) -> ExpertConfig:
    """ExpertConfig with field `switch` ("rescue" or "escape") on and FIELD=VALUE settings
    (numbers; 0/1 for booleans)."""
    values = {}
    for item in settings:
        name, _, value = item.partition("=")
        if name not in ExpertConfig.__dataclass_fields__:
            raise SystemExit(f"--set {item}: ExpertConfig has no field {name!r}")
        values[name] = bool(int(value)) if isinstance(getattr(ExpertConfig, name), bool) else float(value)
    return ExpertConfig(**{switch: True, **values})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--split", default="validation", choices=("train", "validation", "test"))
    ap.add_argument("--start", type=int, default=0, help="first scenario number of the split")
    ap.add_argument("--policy", default="expert",
                    help="expert (default), classical, guided, guided-rescue, guided-escape, or a policies.load "
                         "name or checkpoint")
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                    help="ExpertConfig fields for guided-rescue or guided-escape, e.g. rescue_stall_s=4 rescue_max_s=30")
    ap.add_argument("--json", help="save the per-episode rows to this file")
    ap.add_argument("--compare", nargs="+", help="compare saved runs (--json files) instead of running")
    args = ap.parse_args()
    if args.compare:
        compare(args.compare)
        return
    env = TerrainNavEnv(f"procedural-{args.split}")
    if args.policy in ("guided-rescue", "guided-escape"):
        policy = GuidedExpert(teacher_config(args.policy.removeprefix("guided-"), args.set))
        print("config:", policy.config)
    else:
        policy = make_policy(args.policy)
    rows, gen_s = [], []
    for k in range(args.episodes):
        seed = args.start + k
        t0 = time.perf_counter()
        generate(procedural_seed(args.split, seed))  # timed alone (the env caches it)
        gen_s.append(time.perf_counter() - t0)
        rows.append(run_episode(env, policy, seed))
        r = rows[-1]
        print(f"{r['scenario']:<22} {'ok  ' if r['success'] else 'FAIL'} {r['termination']:<12} "
              f"t={r['time_s']:.0f}/{r['time_limit_s']:.0f} s spl={r['spl']:.2f}", flush=True)
    env.close()
    print()
    report(rows, np.array(gen_s))
    if args.json:
        keep = [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()} for r in rows]
        with open(args.json, "w") as f:
            json.dump(keep, f)


if __name__ == "__main__":
    main()
