"""navctl run (and `python run_sim.py`): drive one scenario for a few seeded episodes, headless.

    python run_sim.py                                   # liquid on right-motor-fade, 3 episodes
    python run_sim.py --scenario payload-hill --policy lstm --episodes 5 --seed 1
    python run_sim.py --video run.mp4                   # also film episode 0 (mp4 or gif)
    python run_sim.py --gui                             # PyBullet's window, real time

The policy drives every episode; a twin drives the same episodes for comparison: for a
plastic policy the same weights with plasticity off, for NAME-frozen the plastic NAME, for the
expert the classical controller. Prints a table (success, SPL, time to goal, collisions, the
events that fired and the recovery after each) and writes OUT (default runs/<timestamp>/):
summary.json and episodes.csv (as `navctl evaluate` writes them) and trajectory.png (episode
0 of both drawn over the arena map). `--scenario procedural-test` (or `procedural`) runs a
generated scenario per episode as `navctl evaluate` does; the table names each one's seed.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from envs import scenarios as scenario_files
from envs.scenarios import Scenario
from navctl import policy_names
from navctl.episode import EpisodeResult, Runner, Task, parse_row
from navctl.errors import UsageError
from navctl.evaluate import EPISODES_CSV, SUMMARY_JSON, command_line, execute, plan, run_info, write_summary
from navctl.io import atomic_path
from navctl.scenario_sets import Source, env_seed, load_one

DEFAULT_SCENARIO = "right-motor-fade"
DEFAULT_POLICY = "liquid"
FALLBACK_POLICY, FALLBACK_TWIN = "expert", "classical"
DEFAULT_EPISODES = 3
TRAJECTORY_PNG = "trajectory.png"
VIDEO_FPS = 20  # one frame per control step: real time


def choose_policies(name: Optional[str], no_plasticity: bool) -> tuple[str, Optional[str], Optional[str]]:
    """(policy, twin or None, a note for the user or None).

    With no --policy, a missing `liquid` checkpoint falls back to the expert, with the
    classical controller as its twin, and says so.
    """
    explicit = name is not None
    name = name or DEFAULT_POLICY
    if no_plasticity and not name.endswith(policy_names.FROZEN_SUFFIX):
        name += policy_names.FROZEN_SUFFIX
    try:
        policy = policy_names.make_policy(name)
    except ValueError as e:  # UsageError or a policies checkpoint error
        if explicit or no_plasticity:
            raise
        note = (f"the shipped {DEFAULT_POLICY!r} policy cannot be loaded ({e}); driving with "
                f"{FALLBACK_POLICY!r} instead, {FALLBACK_TWIN!r} beside it")
        return FALLBACK_POLICY, FALLBACK_TWIN, note
    if name.endswith(policy_names.FROZEN_SUFFIX):
        return name, name[: -len(policy_names.FROZEN_SUFFIX)], None
    if policy.plasticity:
        return name, name + policy_names.FROZEN_SUFFIX, None
    if name == FALLBACK_POLICY:
        return name, FALLBACK_TWIN, None
    return name, None, None


def _describe(name: str, twin: Optional[str] = None) -> str:
    """The policy's name, saying whether plasticity is on when that is the comparison."""
    if name.endswith(policy_names.FROZEN_SUFFIX):
        return f"{name} (plasticity off)"
    if twin == name + policy_names.FROZEN_SUFFIX:
        return f"{name} (plasticity on)"
    return name


def _outcome(row: dict[str, Any]) -> str:
    if row["status"] != "ok":
        return f"error: {row['error']}"
    if row["success"]:
        return f"success in {row['time_to_goal_s']:.1f} s, SPL {row['spl']:.2f}"
    return f"{row['termination'].replace('_', ' ')}, {row['final_distance_m']:.1f} m from the goal"


def _events_text(row: dict[str, Any]) -> str:
    from navctl.plots import event_label

    parts = []
    for e in row["events"]:
        if not e["applicable"]:
            recovery = "no progress before it"
        elif e["recovered"]:
            recovery = f"recovered in {e['recovery_s']:.1f} s"
        else:
            recovery = "not recovered"
        parts.append(f"{e['time_s']:.1f} s {event_label(e['set'])}: {recovery}")
    return "; ".join(parts) or "none fired"


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The per-episode table printed at the end of a run (parsed rows); for generated
    scenarios a column names each episode's scenario seed."""
    w = max([len("policy")] + [len(r["policy"]) for r in rows])
    generated = any(r.get("scenario_seed") is not None for r in rows)
    seed_w = max([len("scenario seed")] + [len(str(r.get("scenario_seed"))) for r in rows]) if generated else 0
    seed_col = f" {'scenario seed':>{seed_w}}" if generated else ""
    header = (f"{'policy':<{w}} {'ep':>2}{seed_col} {'success':>7} {'SPL':>5} {'time to goal':>12} {'collisions':>10}"
              "  events (recovery)")
    lines = [header, "-" * len(header)]
    for r in rows:
        first = f"{r['policy']:<{w}} {r['episode']:>2}" + (f" {r.get('scenario_seed')!s:>{seed_w}}" if generated else "")
        if r["status"] != "ok":
            lines.append(f"{first}  error: {r['error']}")
            continue
        ttg = "-" if math.isnan(r["time_to_goal_s"]) else f"{r['time_to_goal_s']:.1f} s"
        lines.append(f"{first} {'yes' if r['success'] else 'no':>7} {r['spl']:>5.2f} "
                     f"{ttg:>12} {r['collisions']:>10}  {_events_text(r)}")
    return "\n".join(lines)


def _default_out() -> Path:
    base = Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


def write_video(path: Path, scenario: Source, policy: str, seed: int) -> Optional[str]:
    """Films one episode headless (rgb_array, 320x240) into an .mp4 or .gif (20 frames per
    simulated second; 10 for a gif). Returns None, or the error of an episode that raised."""
    import imageio.v2 as imageio

    frames: list = []
    runner = Runner(render_mode="rgb_array")
    try:
        result = runner.run(Task(policy, scenario, 0, seed), frames=frames)
    finally:
        runner.close()
    if result.row["status"] != "ok":
        return result.row["error"]
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".gif":
            imageio.mimsave(tmp, frames[::2], duration=2000 / VIDEO_FPS, loop=0)  # 10 fps keeps the file small
        else:
            imageio.mimsave(tmp, frames, fps=VIDEO_FPS, macro_block_size=16)
    return None


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """The arguments of `navctl run` / run_sim.py."""
    parser.description = ("Drive a scenario for a few seeded episodes, print a table and write "
                          "summary.json, episodes.csv and trajectory.png.")
    parser.add_argument("--scenario", default=DEFAULT_SCENARIO,
                        help=f"built-in name, YAML file, procedural-<seed> (one generated scenario), procedural "
                             f"(a new one every episode) or procedural-train|validation|test (episode i: that "
                             f"split's scenario i) (default {DEFAULT_SCENARIO}; built-ins: "
                             f"{', '.join(scenario_files.names())})")
    parser.add_argument("--policy", default=None,
                        help=f"{', '.join(policy_names.valid_names())}, or a checkpoint file (default {DEFAULT_POLICY})")
    parser.add_argument("--episodes", type=int, default=DEFAULT_EPISODES, help=f"default {DEFAULT_EPISODES}")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--no-plasticity", action="store_true", help="freeze the plastic traces (ablation)")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default runs/<timestamp>)")
    parser.add_argument("--video", type=Path, default=None, help="also film episode 0 into FILE.mp4 or FILE.gif")
    parser.add_argument("--gui", action="store_true", help="show PyBullet's window and run in real time")
    parser.add_argument("--workers", type=int, default=None, help="parallel episodes (default: all cores)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show the progress line (default: only on a terminal)")


def main(args: argparse.Namespace) -> int:
    """Runs `navctl run`."""
    started = time.time()
    if args.video is not None and args.video.suffix.lower() not in (".mp4", ".gif"):
        raise UsageError(f"--video: {args.video}: the file must end in .mp4 or .gif")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    if args.gui and sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        # PyBullet's GUI would end the process without a word
        raise UsageError("--gui needs a display and none is set (DISPLAY); use --video FILE.mp4 to watch a headless run")
    scenario = load_one(args.scenario)
    policy, twin, note = choose_policies(args.policy, args.no_plasticity)
    if note:
        print(f"navctl run: {note}", file=sys.stderr)
    policies = [policy] + ([twin] if twin else [])
    tasks = plan(policies, [scenario], args.episodes, args.seed, keep_first_trajectory=True)
    out: Path = args.out or _default_out()
    out.mkdir(parents=True, exist_ok=True)
    print(f"{scenario.name}: {scenario.description}")
    print(f"policy: {_describe(policy, twin)}" + (f"; beside it: {_describe(twin)}" if twin else "")
          + f"; {args.episodes} episode(s), seed {args.seed}, " + ("GUI in real time" if args.gui else "headless"))
    try:
        rows, fresh, _ = execute(tasks, out / EPISODES_CSV, workers=1 if args.gui else args.workers,
                                 render_mode="human" if args.gui else None, progress=args.progress, label="run")
    except KeyboardInterrupt:
        print(f"navctl run: interrupted; finished episodes are in {out / EPISODES_CSV}", file=sys.stderr)
        return 130
    info = run_info(command_line(args), args.seed, started, episodes=args.episodes, policies=policies,
                    scenarios=[{"name": scenario.name, "source": scenario.source}], backend="local",
                    workers=1 if args.gui else (args.workers or os.cpu_count()), fallback_note=note)
    write_summary(out, rows, policies, [scenario.name], info)
    parsed = [parse_row(r) for r in rows]
    print(table(parsed))
    written = [str(out / SUMMARY_JSON), EPISODES_CSV]
    if _draw(out / TRAJECTORY_PNG, scenario, fresh, policy, twin, note, args.seed):
        written.append(TRAJECTORY_PNG)
    status = 0
    if args.video is not None:
        print(f"filming episode 0 of {policy} into {args.video} ...", file=sys.stderr)
        error = write_video(args.video, scenario, policy, env_seed(scenario, args.seed, 0))
        if error:
            print(f"navctl run: no video: the filmed episode failed: {error}", file=sys.stderr)
            status = 1
        else:
            written.append(str(args.video))
    print("wrote " + ", ".join(written))
    return status


def _draw(path: Path, scenario: Source, results: Sequence[EpisodeResult], policy: str, twin: Optional[str],
          note: Optional[str], seed: int) -> bool:
    """Writes trajectory.png from the kept episode-0 trajectories (over the scenario episode 0
    ran: for a procedural set, the one generated for it); False if none finished."""
    from navctl.plots import plot_trajectories

    first = {r.row["policy"]: r for r in results if r.trajectory is not None}
    panels = []
    for name in [policy] + ([twin] if twin else []):
        result = first.get(name)
        if result is None:
            continue
        label = _describe(name, twin)
        if note and name == policy:
            label += " (fallback: the liquid checkpoint is missing)"
        elif note:
            label += " (for comparison)"
        panels.append((f"{label}\n{_outcome(parse_row(result.row))}", result.trajectory, result.trajectory.obstacles))
    if not panels:
        return False
    seed0 = env_seed(scenario, seed, 0)
    title = f"{scenario.name}, episode 0 (env seed {seed0})"
    if not isinstance(scenario, Scenario):
        generated = panels[0][1].scenario_seed
        scenario = scenario_files.generate(generated)
        title = f"{title}: {scenario.name}"
    plot_trajectories(scenario, panels, path, title=title)
    return True
