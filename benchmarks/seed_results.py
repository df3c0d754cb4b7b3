"""Results over training seeds: success and SPL per learned kind as mean, spread and worst seed.

    python benchmarks/seed_results.py runs/test-eval runs/test-procedural \\
        --group liquid='liquid,runs/seeds/liquid-s*/best.safetensors' \\
        --group liquid-frozen='liquid-frozen,runs/seeds/liquid-s*/best.safetensors-frozen' \\
        --shipped liquid=liquid --shipped liquid-frozen=liquid-frozen --out runs/results

Input: `navctl evaluate` output directories (their episodes.csv) or episodes.csv files.
`--group NAME=GLOB` gathers the policies whose `policy` value matches GLOB (fnmatch; several
patterns separated by commas) into one learned kind, each matching policy being one training
seed; policies in no group (classical, expert, ...) are reported on their own.
`--shipped NAME=POLICY` names the policy value that is group NAME's shipped checkpoint: its
own numbers get a column of that group's row (and no row of their own). The shipped
checkpoint is usually one of the seeds: match it in GLOB too, as above.

Test sets: rows whose scenario is a procedural set (`procedural`, `procedural-test`, ...)
form a set named by that scenario; built-in scenarios form the set of their split (`eval`,
`train`). Per group and test set: success rate and SPL of every seed (over its episodes that
finished), their mean, sample standard deviation, min and max, and the worst seed (lowest
success, then lowest SPL); a single policy has one value. A seed with no finished episode on
a set is left out of that set's numbers, and the table's seeds column says so ("2 of 3").
The same again over the episodes "with a mid-episode change", chosen by the scenario's
definition and not by what happened in the run, so every policy is measured on the same
episodes: a built-in scenario with an event, or a procedural episode whose generated
scenario (`scenario_seed`) has one.

`--compare A,B` (repeatable) adds, per test set and subset, A minus B paired over the episodes
both ran and finished (same scenario, episode index and seed): the mean difference of success
and SPL with a 95% bootstrap interval of the paired differences (navctl.summary). A and B are
policy values, or group names with a `--shipped` checkpoint (which stands for the group).

Output: a Markdown table per test set on stdout and, with `--out DIR`, DIR/results.md, the
numbers in DIR/results.json and a plot DIR/results.png (with --compare also
DIR/differences.png: the success differences with their intervals). Bad input prints one
line on stderr and exits 2.
"""
from __future__ import annotations

import argparse
import fnmatch
import math
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Optional, Sequence

import numpy as np

from envs import scenarios as scenario_files
from navctl.errors import UsageError
from navctl.io import atomic_path, atomic_write_json, atomic_write_text, read_csv
from navctl.summary import PAIRED_METRICS, difference_cell, paired_difference

EPISODES_CSV = "episodes.csv"
RESULTS_MD = "results.md"
RESULTS_JSON = "results.json"
RESULTS_PNG = "results.png"
DIFFERENCES_PNG = "differences.png"
REQUIRED = ("policy", "scenario", "episode", "seed", "scenario_seed", "status", "success", "spl")
PROCEDURAL = "procedural"
GROUP_COLOR, SINGLE_COLOR = "#9ecae1", "0.75"
SUBSETS = {"all": "all episodes", "change": "episodes with a mid-episode change"}


@dataclass(frozen=True)
class Episode:
    """One finished or failed episode of an episodes.csv (rates as floats; None when it failed)."""

    policy: str
    scenario: str
    episode: int
    seed: int
    scenario_seed: Optional[int]
    success: Optional[float]
    spl: Optional[float]
    where: str  # file:line, for messages


# --- input ---------------------------------------------------------------------------------------
def _number(row: dict[str, str], column: str, where: str, kind: type = float) -> Any:
    try:
        return kind(row[column])
    except (TypeError, ValueError):
        raise UsageError(f"{where}: column {column}: not a number: {row[column]!r}") from None


def _episode(row: dict[str, str], where: str) -> Episode:
    ok = row["status"] == "ok"
    if row["status"] not in ("ok", "error"):
        raise UsageError(f"{where}: column status: {row['status']!r} is neither ok nor error")
    return Episode(policy=row["policy"], scenario=row["scenario"], episode=_number(row, "episode", where, int),
                   seed=_number(row, "seed", where, int),
                   scenario_seed=_number(row, "scenario_seed", where, int) if row["scenario_seed"] else None,
                   success=_number(row, "success", where) if ok else None,
                   spl=_number(row, "spl", where) if ok else None, where=where)


def read_episodes(inputs: Sequence[str]) -> list[Episode]:
    """The episodes of every input (a directory holding episodes.csv, or a CSV file), in order.
    An episode given again (same policy, scenario, episode and seed) is counted once; UsageError
    when its result differs, and on a missing file, a missing column or a bad value."""
    out: list[Episode] = []
    seen: dict[tuple[str, str, int, int], Episode] = {}
    for item in inputs:
        path = Path(item) / EPISODES_CSV if Path(item).is_dir() else Path(item)
        if not path.is_file():
            raise UsageError(f"{path}: no such file (give navctl evaluate output directories or episodes.csv files)")
        header, rows = read_csv(path)
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise UsageError(f"{path}: no column {', '.join(missing)} (not a navctl evaluate episodes.csv)")
        for line, row in enumerate(rows, start=2):
            ep = _episode(row, f"{path}:{line}")
            key = (ep.policy, ep.scenario, ep.episode, ep.seed)
            first = seen.setdefault(key, ep)
            if first is ep:
                out.append(ep)
            elif (first.success, first.spl, first.scenario_seed) != (ep.success, ep.spl, ep.scenario_seed):
                raise UsageError(f"{ep.where}: the same episode as {first.where} ({ep.policy}, {ep.scenario}, "
                                 f"episode {ep.episode}) with a different result")
    if not out:
        raise UsageError(f"no episodes in {', '.join(inputs)}")
    return out


def parse_pairs(specs: Sequence[str], option: str) -> dict[str, str]:
    """NAME=VALUE options as a dict in the order given; UsageError on a bad or repeated one."""
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise UsageError(f"{option} {spec!r}: expected NAME=VALUE")
        if name.strip() in out:
            raise UsageError(f"{option} {name.strip()!r} is given twice")
        out[name.strip()] = value.strip()
    return out


# --- which policy belongs where, and which episodes have a change -----------------------------
def matches(policy: str, globs: str) -> bool:
    """Whether `policy` matches one of the comma-separated fnmatch patterns `globs`."""
    return any(fnmatch.fnmatchcase(policy, glob.strip()) for glob in globs.split(","))


def assign_groups(policies: Sequence[str], groups: dict[str, str], shipped: dict[str, str]) -> dict[str, list[str]]:
    """Group name -> its policies (seeds), in the order they appear. UsageError when a group
    matches nothing, a policy matches two groups, a shipped policy is unknown, or a group has
    the name of a policy that would get a row of its own."""
    members: dict[str, list[str]] = {name: [p for p in policies if matches(p, glob)] for name, glob in groups.items()}
    known = ", ".join(policies)
    for name, seeds in members.items():
        if not seeds:
            raise UsageError(f"--group {name}={groups[name]}: matches no policy of the input ({known})")
    for policy in policies:
        owners = [name for name, seeds in members.items() if policy in seeds]
        if len(owners) > 1:
            raise UsageError(f"policy {policy!r} matches two groups: {', '.join(owners)}")
    grouped = {p for seeds in members.values() for p in seeds} | set(shipped.values())
    for name in groups:
        if name in policies and name not in grouped:
            raise UsageError(f"--group {name}: the policy {name!r} is in the input too and would be a second row "
                             f"named {name!r} (add --shipped {name}={name}, or name the group differently)")
    for name, policy in shipped.items():
        if name not in groups:
            raise UsageError(f"--shipped {name}={policy}: no --group named {name!r}")
        if policy not in policies:
            raise UsageError(f"--shipped {name}={policy}: no policy {policy!r} in the input ({known})")
    return members


class ScenarioFacts:
    """The test set of a row and whether its scenario has a scripted event; generated scenarios
    are built once per generator seed."""

    def __init__(self) -> None:
        self._builtin = set(scenario_files.names())
        self._generated: dict[int, bool] = {}

    @staticmethod
    def is_procedural(scenario: str) -> bool:
        return scenario == PROCEDURAL or scenario.startswith(PROCEDURAL + "-")

    def test_set(self, ep: Episode) -> str:
        """`procedural-...` as it is; a built-in scenario's split (`eval`, `train`)."""
        if self.is_procedural(ep.scenario):
            return ep.scenario
        if ep.scenario not in self._builtin:
            raise UsageError(f"{ep.where}: scenario {ep.scenario!r} is neither built-in nor procedural "
                             "(its events, which choose the change subset, are unknown)")
        return scenario_files.load(ep.scenario).split or "built-in"

    def has_change(self, ep: Episode) -> bool:
        """True when the scenario the episode ran defines at least one event."""
        if not self.is_procedural(ep.scenario):
            return bool(scenario_files.load(ep.scenario).events)
        seed = ep.scenario_seed
        if seed is None and ep.scenario[len(PROCEDURAL) + 1:].isdigit():
            seed = int(ep.scenario[len(PROCEDURAL) + 1:])  # a generated scenario by name: procedural-<seed>
        if seed is None:
            raise UsageError(f"{ep.where}: procedural scenario {ep.scenario!r} without a scenario_seed")
        if seed not in self._generated:
            self._generated[seed] = bool(scenario_files.generate(seed).events)
        return self._generated[seed]


# --- the numbers ---------------------------------------------------------------------------------
def rates(episodes: Sequence[Episode]) -> dict[str, Any]:
    """Success rate and mean SPL over the finished episodes (None without any), with counts."""
    done = [e for e in episodes if e.success is not None]
    return {"episodes": len(done), "errors": len(episodes) - len(done),
            "success_rate": float(np.mean([e.success for e in done])) if done else None,
            "spl": float(np.mean([e.spl for e in done])) if done else None}


def spread(values: Sequence[Optional[float]]) -> dict[str, Optional[float]]:
    """Mean, sample standard deviation (None for one value), min and max of the values given."""
    vals = [v for v in values if v is not None]
    if not vals:
        return {"mean": None, "std": None, "min": None, "max": None}
    return {"mean": float(np.mean(vals)), "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else None,
            "min": float(min(vals)), "max": float(max(vals))}


def over_seeds(per_seed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A group's numbers from each seed's rates: spread of success and SPL, and the worst seed
    (lowest success, then lowest SPL; seeds without finished episodes are left out)."""
    scored = [(r["success_rate"], r["spl"], p) for p, r in per_seed.items() if r["success_rate"] is not None]
    worst = min(scored) if scored else None
    return {"success_rate": spread([r["success_rate"] for r in per_seed.values()]),
            "spl": spread([r["spl"] for r in per_seed.values()]),
            "worst": None if worst is None else {"policy": worst[2], "success_rate": worst[0], "spl": worst[1]}}


def _row(name: str, seeds: Sequence[str], shipped: Optional[str], group: bool, by_policy: dict[str, list[Episode]],
         changed: set[Episode]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "group": group, "seeds": list(seeds), "shipped": shipped}
    for subset in SUBSETS:
        def pick(policy: str) -> list[Episode]:
            eps = by_policy.get(policy, [])
            return eps if subset == "all" else [e for e in eps if e in changed]
        per_seed = {p: rates(pick(p)) for p in seeds}
        out[subset] = {"per_seed": per_seed, **over_seeds(per_seed),
                       "shipped": rates(pick(shipped)) if shipped and shipped in by_policy else None}
    return out


def parse_compare(specs: Sequence[str]) -> list[tuple[str, str]]:
    """--compare A,B options as (A, B) pairs; UsageError on a malformed one."""
    out = []
    for spec in specs:
        parts = [x.strip() for x in spec.split(",")]
        if len(parts) != 2 or not all(parts):
            raise UsageError(f"--compare {spec!r}: expected A,B (two policy values or group names)")
        out.append((parts[0], parts[1]))
    return out


def _compared_policy(name: str, policies: Sequence[str], shipped: dict[str, str]) -> str:
    if name in shipped:
        return shipped[name]
    if name in policies:
        return name
    raise UsageError(f"--compare: {name!r} is neither a policy of the input nor a group with --shipped "
                     f"(policies: {', '.join(policies)})")


def differences(eps: Sequence[Episode], changed: set[Episode], compare: Sequence[tuple[str, str]],
                shipped: dict[str, str]) -> list[dict[str, Any]]:
    """Per (A, B) and subset: A minus B over the episodes both finished, paired by scenario,
    episode and seed; mean and 95% bootstrap interval of success and SPL differences."""
    policies = list(dict.fromkeys(e.policy for e in eps))
    finished: dict[str, dict[tuple[str, int, int], Episode]] = {}
    for e in eps:
        if e.success is not None:
            finished.setdefault(e.policy, {})[(e.scenario, e.episode, e.seed)] = e
    out = []
    for a_name, b_name in compare:
        a = finished.get(_compared_policy(a_name, policies, shipped), {})
        b = finished.get(_compared_policy(b_name, policies, shipped), {})
        for subset in SUBSETS:
            keys = sorted(k for k in a.keys() & b.keys() if subset == "all" or a[k] in changed)
            row: dict[str, Any] = {"policy": a_name, "reference": b_name, "subset": subset, "pairs": len(keys)}
            for metric, field_name in PAIRED_METRICS.items():
                row[metric], row[f"{metric}_ci"] = paired_difference([getattr(a[k], field_name) for k in keys],
                                                                     [getattr(b[k], field_name) for k in keys])
            out.append(row)
    return out


def summarize(episodes: Sequence[Episode], groups: dict[str, str], shipped: dict[str, str],
              facts: Optional[ScenarioFacts] = None,
              compare: Sequence[tuple[str, str]] = ()) -> list[dict[str, Any]]:
    """Per test set (in the order the rows first show them): its scenarios, episode counts,
    a row per group (in --group order) and per policy in no group (in row order), and the
    paired differences asked for with `compare`."""
    facts = facts or ScenarioFacts()
    policies = list(dict.fromkeys(e.policy for e in episodes))
    members = assign_groups(policies, groups, shipped)
    grouped = {p for seeds in members.values() for p in seeds} | set(shipped.values())
    rows_of = [(name, seeds, shipped.get(name), True) for name, seeds in members.items()]
    rows_of += [(p, [p], None, False) for p in policies if p not in grouped]
    sets: dict[str, list[Episode]] = {}
    for e in episodes:
        sets.setdefault(facts.test_set(e), []).append(e)
    out = []
    for set_name, eps in sets.items():
        changed = {e for e in eps if facts.has_change(e)}
        by_policy: dict[str, list[Episode]] = {}
        for e in eps:
            by_policy.setdefault(e.policy, []).append(e)
        counts = {p: len(v) for p, v in by_policy.items()}
        out.append({"test_set": set_name, "scenarios": list(dict.fromkeys(e.scenario for e in eps)),
                    "episodes_per_policy": counts,
                    "change_episodes_per_policy": {p: sum(e in changed for e in v) for p, v in by_policy.items()},
                    "rows": [_row(n, s, sh, g, by_policy, changed) for n, s, sh, g in rows_of
                             if any(p in by_policy for p in [*s, *([sh] if sh else [])])],
                    "differences": differences(eps, changed, compare, shipped)})
    return out


# --- the report ----------------------------------------------------------------------------------
def _f(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def seed_label(policy: str, seeds: Sequence[str]) -> str:
    """A seed's policy value as a table shows it: a checkpoint path from the folder all the
    group's seeds share (runs/seeds/liquid-s1/best.safetensors -> liquid-s1/best.safetensors)."""
    try:
        shared = os.path.commonpath([os.path.dirname(s) for s in seeds])
    except ValueError:  # absolute and relative paths mixed
        return policy
    return os.path.relpath(policy, shared) if shared else policy


def _cells(row: dict[str, Any], subset: str) -> list[str]:
    part = row[subset]
    n = sorted({r["episodes"] for r in part["per_seed"].values()})
    errors = sum(r["errors"] for r in part["per_seed"].values())
    episodes = (str(n[0]) if len(n) == 1 else f"{n[0]}–{n[-1]}") + (f" ({errors} errors)" if errors else "")
    sr, spl, worst, shipped = part["success_rate"], part["spl"], part["worst"], part["shipped"]
    if not row["group"]:
        return [row["name"], "", episodes, _f(sr["mean"]), "", _f(spl["mean"]), "", "", ""]
    std = "" if sr["std"] is None else f" ± {sr['std']:.2f}"
    spl_std = "" if spl["std"] is None else f" ± {spl['std']:.2f}"
    # a seed with no finished episode on this set is not in the numbers: say so in the count
    counted = sum(1 for r in part["per_seed"].values() if r["episodes"])
    seeds = str(counted) if counted == len(row["seeds"]) else f"{counted} of {len(row['seeds'])}"
    return [row["name"], seeds, episodes, _f(sr["mean"]) + std, f"{_f(sr['min'])}–{_f(sr['max'])}",
            _f(spl["mean"]) + spl_std, f"{_f(spl['min'])}–{_f(spl['max'])}",
            "n/a" if worst is None else f"{_f(worst['success_rate'])} / {_f(worst['spl'])} ({seed_label(worst['policy'], row['seeds'])})",
            "" if shipped is None else f"{_f(shipped['success_rate'])} / {_f(shipped['spl'])}"]


HEADER = ["policy", "seeds", "episodes per seed", "success (mean ± std)", "success min–max", "SPL (mean ± std)",
          "SPL min–max", "worst seed: success / SPL", "shipped: success / SPL"]


def markdown(results: Sequence[dict[str, Any]]) -> str:
    """A table per test set and subset (all episodes, those with a mid-episode change)."""
    lines = ["# Results over training seeds", "",
             "Success rate and SPL over the episodes that finished. A group's numbers are over its training "
             "seeds (one checkpoint each): mean ± sample standard deviation, min–max, the worst seed (lowest "
             "success); `shipped` is the shipped checkpoint's own result. A mid-episode change: the scenario "
             "defines at least one event (the same episodes for every policy).", ""]
    for ts in results:
        counts = sorted(set(ts["episodes_per_policy"].values()))
        changes = sorted(set(ts["change_episodes_per_policy"].values()))
        for subset, title in SUBSETS.items():
            n = counts if subset == "all" else changes
            shown = str(n[0]) if len(n) == 1 else f"{n[0]}–{n[-1]}"
            lines += [f"## {ts['test_set']}: {title} ({shown} episodes per policy)", "",
                      "| " + " | ".join(HEADER) + " |", "|---|" + "---:|" * (len(HEADER) - 1)]
            lines += ["| " + " | ".join(_cells(row, subset)) + " |" for row in ts["rows"]]
            lines.append("")
        if ts.get("differences"):
            lines += [f"## {ts['test_set']}: paired differences (the same episodes; difference [95% bootstrap "
                      "interval])", "", "| policy minus reference | episodes | pairs | success | SPL |",
                      "|---|---|---:|---:|---:|"]
            lines += [f"| {d['policy']} − {d['reference']} | {SUBSETS[d['subset']]} | {d['pairs']} | "
                      f"{difference_cell(d['success_rate'], d['success_rate_ci'])} | {difference_cell(d['spl'], d['spl_ci'])} |"
                      for d in ts["differences"]]
            lines.append("")
        if len(counts) > 1:
            lines += [f"Note: on {ts['test_set']} the policies ran different numbers of episodes "
                      f"({', '.join(f'{p} {c}' for p, c in ts['episodes_per_policy'].items())}).", ""]
    return "\n".join(lines)


def plot(results: Sequence[dict[str, Any]], path: str | os.PathLike) -> None:
    """Per test set (columns) and subset (rows): success per row as a bar at the mean, min–max
    whiskers, a dot per seed and a diamond at the shipped checkpoint's value."""
    from matplotlib.figure import Figure  # no pyplot: renders with Agg, no display needed
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    width = max(4.5, max(len(ts["rows"]) for ts in results) * 0.7)
    fig = Figure(figsize=(width * len(results), 7.5), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(SUBSETS), len(results), squeeze=False))
    for col, ts in enumerate(results):
        for r, subset in enumerate(SUBSETS):
            _bars(axes[r, col], ts["rows"], subset)
            axes[r, col].set_title(f"{ts['test_set']}: {SUBSETS[subset]}", fontsize=9)
    handles = [Patch(color=GROUP_COLOR, label="learned kind: mean over seeds"),
               Patch(color=SINGLE_COLOR, label="a single policy"),
               Line2D([], [], ls="", marker="o", ms=4, color="k", label="one training seed"),
               Line2D([], [], ls="", marker="D", ms=6, color="#d62728", label="shipped checkpoint")]
    fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle("Success rate (bars: mean over training seeds; whiskers: min–max)", fontsize=10)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")


def plot_differences(results: Sequence[dict[str, Any]], path: str | os.PathLike) -> None:
    """Per test set (columns): each --compare pair and subset as a dot at the mean success
    difference with its 95% paired bootstrap interval as whiskers; a line at zero."""
    from matplotlib.figure import Figure

    sets = [ts for ts in results if ts.get("differences")]
    rows = max(len(ts["differences"]) for ts in sets)
    fig = Figure(figsize=(4.5 * len(sets), 1.0 + 0.35 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(sets), squeeze=False)[0])
    for ax, ts in zip(axes, sets):
        diffs = [d for d in ts["differences"] if d["success_rate"] is not None]
        y = np.arange(len(diffs))[::-1]
        mean = np.array([d["success_rate"] for d in diffs])
        lo = mean - np.array([d["success_rate_ci"][0] for d in diffs])
        hi = np.array([d["success_rate_ci"][1] for d in diffs]) - mean
        ax.errorbar(mean, y, xerr=[lo, hi], fmt="o", ms=4, color="k", capsize=3, elinewidth=1)
        ax.axvline(0, color="0.5", lw=0.8)
        ax.set_yticks(y, [f"{d['policy']} − {d['reference']} ({d['subset']})" for d in diffs], fontsize=8)
        ax.set_xlabel("success difference (paired, 95% interval)", fontsize=8)
        ax.set_title(ts["test_set"], fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")


def _bars(ax: Any, rows: Sequence[dict[str, Any]], subset: str) -> None:
    x = np.arange(len(rows))
    for i, row in enumerate(rows):
        part = row[subset]
        sr = part["success_rate"]
        mean = math.nan if sr["mean"] is None else sr["mean"]
        err = [[mean - sr["min"]], [sr["max"] - mean]] if row["group"] and sr["mean"] is not None else None
        ax.bar(i, mean, 0.7, yerr=err, capsize=3, color=GROUP_COLOR if row["group"] else SINGLE_COLOR,
               error_kw={"elinewidth": 1})
        values = [r["success_rate"] for r in part["per_seed"].values() if r["success_rate"] is not None]
        if row["group"] and values:
            offsets = np.linspace(-0.2, 0.2, len(values)) if len(values) > 1 else [0.0]
            ax.scatter(i + np.asarray(offsets), values, s=12, color="k", zorder=3)
        if part["shipped"] is not None and part["shipped"]["success_rate"] is not None:
            ax.scatter([i], [part["shipped"]["success_rate"]], s=40, marker="D", color="#d62728", zorder=4)
    ax.set_xticks(x, [row["name"] for row in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate")
    ax.grid(axis="y", alpha=0.3)


# --- the command -------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage block
        self.exit(2, f"seed_results: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(description="Success and SPL over training seeds from navctl evaluate outputs.")
    p.add_argument("inputs", nargs="+", help="navctl evaluate output directories or episodes.csv files")
    p.add_argument("--group", action="append", default=[], metavar="NAME=GLOB",
                   help="gather the policies matching GLOB (fnmatch on the policy column) as the seeds of NAME")
    p.add_argument("--shipped", action="append", default=[], metavar="NAME=POLICY",
                   help="the policy value that is group NAME's shipped checkpoint")
    p.add_argument("--compare", action="append", default=[], metavar="A,B",
                   help="A minus B paired over the same episodes (policy values, or groups with --shipped)")
    p.add_argument("--out", type=Path, default=None, help="write results.md, results.json and results.png here")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        groups = parse_pairs(args.group, "--group")
        shipped = parse_pairs(args.shipped, "--shipped")
        results = summarize(read_episodes(args.inputs), groups, shipped, compare=parse_compare(args.compare))
    except (UsageError, scenario_files.ScenarioError) as e:
        print(f"seed_results: error: {e}", file=sys.stderr)
        return 2
    text = markdown(results)
    print(text)
    if args.out is not None:
        command = shlex.join(["python", "benchmarks/seed_results.py", *(sys.argv[1:] if argv is None else argv)])
        atomic_write_text(args.out / RESULTS_MD, text)
        atomic_write_json(args.out / RESULTS_JSON, {"command": command, "groups": groups, "shipped": shipped,
                                                     "inputs": list(args.inputs), "test_sets": results})
        plot(results, args.out / RESULTS_PNG)
        written = [RESULTS_JSON, RESULTS_PNG]
        if any(ts.get("differences") for ts in results):
            plot_differences(results, args.out / DIFFERENCES_PNG)
            written.append(DIFFERENCES_PNG)
        print(f"wrote {args.out / RESULTS_MD}, {', '.join(written)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
