"""navctl evaluate: policies x scenarios x seeded episodes on a backend -> CSV, JSON, Markdown, plots.

    navctl evaluate --policies liquid,liquid-frozen,classical,expert --scenarios eval \\
        --episodes 20 --seed 0 --workers 2 --backend local --out runs/eval
    python -m navctl.evaluate ...   (the same)

Writes in --out: episodes.csv (one row per episode, appended and synced as each finishes,
sorted at the end), summary.json (per policy and scenario: rates and means with 95%
bootstrap intervals; each policy after the first against the first, paired over the same
episodes; run metadata), summary.md (a table per scenario), results.png
(success and SPL by scenario and policy) and adaptation.png (progress rate around the first
event). Episode seeds depend only on --seed, the scenario name and the episode index, so
the rows are the same for any --workers and backend; `--scenarios procedural-test` runs the
test split's scenarios 0..N-1, the same for every --seed (navctl.scenario_sets). --resume skips the episodes already
in episodes.csv. --gate FILE.yaml checks thresholds (navctl/gate.py) and exits 1 if one fails.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from navctl import gate as gates
from navctl import policy_names
from navctl.backends import BACKENDS, run_tasks
from navctl.episode import COLUMNS, EpisodeResult, Task, parse_row
from navctl.errors import UsageError
from navctl.io import CsvLog, atomic_write_json, atomic_write_text, write_csv
from navctl.scenario_sets import ProceduralSet, Source, env_seed, resolve
from navctl.summary import markdown, paired_differences, summarize

EPISODES_CSV = "episodes.csv"
SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
RESULTS_PNG = "results.png"
ADAPTATION_PNG = "adaptation.png"


# --- what to run -----------------------------------------------------------------------------
def _split(spec: str) -> list[str]:
    return list(dict.fromkeys(item.strip() for item in spec.split(",") if item.strip()))


def parse_policies(spec: str) -> list[str]:
    """Comma-separated policy names or checkpoint paths, checked (UsageError lists the valid ones)."""
    names = _split(spec)
    if not names:
        raise UsageError(f"--policies: no policy given ({', '.join(policy_names.valid_names())})")
    for name in names:
        policy_names.make_policy(name)  # fails here, before any episode, on a bad name or checkpoint
    return names


def parse_scenarios(spec: str) -> list[Source]:
    """Comma-separated splits (train, eval), built-in names, YAML files, generated names
    (procedural-<seed>) and procedural sets (procedural, procedural-train|validation|test),
    loaded and validated (navctl.scenario_sets)."""
    out = resolve(_split(spec))
    if not out:
        raise UsageError("--scenarios: no scenario given (train, eval, a built-in name, a YAML file, "
                         "procedural or procedural-train|validation|test)")
    return out


def plan(policies: Sequence[str], scenarios: Sequence[Source], episodes: int, seed: int,
         keep_first_trajectory: bool = False) -> list[Task]:
    """Every (policy, scenario, episode) task in report order; episode i of a scenario has the
    same seed (and, for a procedural split, the same scenario) for every policy."""
    if episodes < 1:
        raise UsageError(f"--episodes must be >= 1, got {episodes}")
    if seed < 0:
        raise UsageError(f"--seed must be >= 0, got {seed}")
    for sc in scenarios:
        if isinstance(sc, ProceduralSet) and episodes > len(sc.seeds):
            raise UsageError(f"--episodes {episodes}: {sc.name} has only {len(sc.seeds)} scenarios")
    seeds = {(sc.name, i): env_seed(sc, seed, i) for sc in scenarios for i in range(episodes)}
    return [Task(p, sc, i, seeds[sc.name, i], keep_trajectory=keep_first_trajectory and i == 0)
            for p in policies for sc in scenarios for i in range(episodes)]


# --- running it --------------------------------------------------------------------------------
def _row_key(row: dict[str, str]) -> tuple[str, str, int, int]:
    return (row["policy"], row["scenario"], int(row["episode"]), int(row["seed"]))


def execute(tasks: Sequence[Task], csv_path: Path, *, resume: bool = False, backend: str = "local",
            workers: Optional[int] = None, ray_address: Optional[str] = None, progress: Optional[bool] = None,
            render_mode: Optional[str] = None, label: str = "episodes") -> tuple[list[dict[str, str]], list[EpisodeResult], int]:
    """Runs the tasks not yet in `csv_path` (all of them unless `resume`), appending each row as
    it finishes, then rewrites the file in task order.

    Returns (rows of all tasks in task order, results of the episodes run now, episodes skipped).
    On Ctrl-C every finished row is already on disk; the KeyboardInterrupt propagates.
    """
    from tqdm import tqdm

    log = CsvLog(csv_path, COLUMNS, resume=resume)
    try:
        done = {_row_key(r): r for r in log.rows}
    except (KeyError, TypeError, ValueError):
        log.close()
        raise UsageError(f"{csv_path}: cannot resume: it has rows that are not navctl episode rows") from None
    todo = [t for t in tasks if t.key not in done]
    skipped = len(tasks) - len(todo)
    fresh: list[EpisodeResult] = []
    bar = tqdm(total=len(tasks), initial=skipped, desc=label, unit="ep", dynamic_ncols=True,
               disable=None if progress is None else not progress, file=sys.stderr)
    ok = success = 0
    try:
        for result in run_tasks(todo, backend=backend, workers=workers, ray_address=ray_address,
                                render_mode=render_mode):
            log.append(result.row)
            done[_row_key(result.row)] = result.row
            fresh.append(result)
            ok += result.row["status"] == "ok"
            success += result.row["success"] == "1"
            bar.set_postfix_str(f"success {success}/{ok}" + (f", errors {len(fresh) - ok}" if len(fresh) > ok else ""),
                                refresh=False)
            bar.update(1)
    finally:
        bar.close()
        log.close()
    in_order = [done[t.key] for t in tasks]
    planned = {t.key for t in tasks}
    others = [r for k, r in done.items() if k not in planned]  # rows of other runs in the same file stay
    write_csv(csv_path, COLUMNS, in_order + others)
    return in_order, fresh, skipped


# --- reporting ------------------------------------------------------------------------------------
def _git_commit() -> Optional[str]:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _versions(extra: Sequence[str] = ()) -> dict[str, Optional[str]]:
    out: dict[str, Optional[str]] = {"python": platform.python_version()}
    for package in ("navctl", "numpy", "torch", "pybullet", "gymnasium", *extra):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = None
    return out


def command_line(args: argparse.Namespace) -> str:
    """The command as typed (the CLI stores it in args.command_line), for the record."""
    return getattr(args, "command_line", None) or shlex.join(sys.argv)


def run_info(command: str, seed: int, started: float, **fields: Any) -> dict[str, Any]:
    """Top-level metadata of summary.json: command, seed, git commit, versions, times."""
    return {
        "command": command,
        "seed": seed,
        "git_commit": _git_commit(),
        "versions": _versions(("ray",) if fields.get("backend") == "ray" else ()),
        "started_at": datetime.datetime.fromtimestamp(started).astimezone().isoformat(timespec="seconds"),
        "wall_time_s": round(time.time() - started, 2),
        "host_cpus": os.cpu_count(),
        **fields,
    }


def write_summary(out: Path, rows: Sequence[dict[str, str]], policies: Sequence[str], scenarios: Sequence[str],
                  info: dict[str, Any]) -> dict[str, Any]:
    """Writes summary.json ({"results": [...], "differences": [...], "run": info}) and returns it;
    differences: every policy after the first against the first, paired over the same episodes."""
    parsed = [parse_row(r) for r in rows]
    summary = {"results": summarize(parsed, policies, scenarios),
               "differences": paired_differences(parsed, policies, scenarios), "run": info}
    atomic_write_json(out / SUMMARY_JSON, summary)
    return summary


def write_report(out: Path, rows: Sequence[dict[str, str]], summary: dict[str, Any]) -> str:
    """Writes summary.md, results.png and adaptation.png; returns the Markdown."""
    from navctl import plots

    text = markdown(summary["results"], title=f"Evaluation: {summary['run']['command']}",
                    differences=summary["differences"])
    atomic_write_text(out / SUMMARY_MD, text)
    plots.plot_results(summary["results"], out / RESULTS_PNG)
    plots.plot_adaptation([parse_row(r) for r in rows], out / ADAPTATION_PNG)
    return text


# --- the command -------------------------------------------------------------------------------
def configure_parser(parser: argparse.ArgumentParser) -> None:
    """The arguments of `navctl evaluate`."""
    parser.description = "Evaluate policies on scenarios over seeded episodes; write CSV, JSON, Markdown and plots."
    parser.add_argument("--policies", required=True,
                        help=f"comma-separated: {', '.join(policy_names.valid_names())}, NAME-frozen, or checkpoint files")
    parser.add_argument("--scenarios", default="eval",
                        help="comma-separated: eval, train (the built-in splits), built-in names, YAML files, "
                             "procedural-train|validation|test (episode i: that split's scenario i), procedural "
                             "(a new generated scenario every episode) (default eval)")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per policy and scenario (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="base seed; episode seeds derive from it (default 0)")
    parser.add_argument("--workers", type=int, default=None, help="parallel episodes (default: all cores)")
    parser.add_argument("--backend", choices=BACKENDS, default="local",
                        help="local: a process pool on this machine; ray: Ray tasks (default local)")
    parser.add_argument("--ray-address", default=None, help="address of an existing Ray cluster (default: start one)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--resume", action="store_true", help="skip the episodes already in OUT/episodes.csv")
    parser.add_argument("--gate", type=Path, default=None, help="YAML thresholds; exit 1 if a result falls below one")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show the progress line (default: only on a terminal)")


def main(args: argparse.Namespace) -> int:
    """Runs `navctl evaluate`; 0 on success, 1 if the gate fails."""
    started = time.time()
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    if args.ray_address and args.backend != "ray":
        raise UsageError("--ray-address needs --backend ray")
    thresholds = gates.load_gate(args.gate) if args.gate else None
    policies = parse_policies(args.policies)
    scenarios = parse_scenarios(args.scenarios)
    tasks = plan(policies, scenarios, args.episodes, args.seed)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    try:
        rows, fresh, skipped = execute(tasks, out / EPISODES_CSV, resume=args.resume, backend=args.backend,
                                       workers=args.workers, ray_address=args.ray_address, progress=args.progress,
                                       label="evaluate")
    except KeyboardInterrupt:
        print(f"navctl evaluate: interrupted; finished episodes are in {out / EPISODES_CSV} "
              "(rerun with --resume to finish)", file=sys.stderr)
        return 130
    errors = [r for r in rows if r["status"] == "error"]
    info = run_info(command_line(args), args.seed, started, episodes=args.episodes, policies=policies,
                    scenarios=[{"name": sc.name, "source": sc.source} for sc in scenarios], backend=args.backend,
                    workers=args.workers or os.cpu_count(), episodes_run=len(fresh), episodes_resumed=skipped,
                    errors=len(errors))
    summary = write_summary(out, rows, policies, [sc.name for sc in scenarios], info)
    print(write_report(out, rows, summary))
    print(f"wrote {out / EPISODES_CSV}, {SUMMARY_JSON}, {SUMMARY_MD}, {RESULTS_PNG}, {ADAPTATION_PNG} "
          f"({len(fresh)} episodes run, {skipped} resumed, {info['wall_time_s']:.0f} s)")
    if errors:
        print(f"navctl evaluate: {len(errors)} episode(s) failed, e.g. {errors[0]['policy']} on "
              f"{errors[0]['scenario']} episode {errors[0]['episode']}: {errors[0]['error']}", file=sys.stderr)
    if thresholds is not None:
        failures = gates.check_gate(thresholds, summary["results"])
        for failure in failures:
            print(f"navctl evaluate: gate failed: {failure}", file=sys.stderr)
        if failures:
            return 1
        print(f"gate passed: {len(thresholds)} threshold(s) in {args.gate}")
    return 0


if __name__ == "__main__":
    from navctl.cli import main as cli_main
    sys.exit(cli_main(["evaluate", *sys.argv[1:]]))
