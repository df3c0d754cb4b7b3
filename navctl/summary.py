"""Per-episode rows -> per (policy, scenario) results with 95% bootstrap intervals, and the
Markdown report.

A result holds, for the episodes that finished (status ok): success_rate, spl, soft_spl,
collision_rate (share of episodes with at least one collision), mean_time_to_goal_s (over
successful episodes), recovery_rate (share of events, among those that fired while the robot
was making progress, after which it recovered) and mean_recovery_s (over recovered events),
each with `<metric>_ci` = [lo, hi]; plus counts (episodes, errors, events). None stands for
"no data" (JSON has no NaN).

A paired difference compares two policies on the same episodes (same scenario, episode index
and seed, both finished): the mean of the per-episode differences and a 95% bootstrap interval
of it. Pairing removes the scenario-to-scenario spread both policies share, so the interval is
much narrower than the two policies' own intervals side by side suggest.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0

# metric key -> (column title, the samples it averages, taken from a group's parsed rows)
Samples = Callable[[list[dict[str, Any]]], list[float]]


def _events(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for r in rows for e in r["events"] if e.get("applicable")]


METRICS: dict[str, tuple[str, Samples]] = {
    "success_rate": ("success", lambda rows: [float(r["success"]) for r in rows]),
    "spl": ("SPL", lambda rows: [r["spl"] for r in rows]),
    "soft_spl": ("soft-SPL", lambda rows: [r["soft_spl"] for r in rows]),
    "collision_rate": ("collided", lambda rows: [float(r["collisions"] > 0) for r in rows]),
    "mean_time_to_goal_s": ("time to goal (s)", lambda rows: [r["time_to_goal_s"] for r in rows if r["success"]]),
    "recovery_rate": ("recovered", lambda rows: [float(e["recovered"]) for e in _events(rows)]),
    "mean_recovery_s": ("recovery (s)", lambda rows: [e["recovery_s"] for e in _events(rows) if e["recovered"]]),
}
# metrics a gate may test: the above plus plain counts
GATE_METRICS = (*METRICS, "episodes", "errors", "mean_collisions", "mean_path_length_m")


def bootstrap_ci(values: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> Optional[list[float]]:
    """95% percentile bootstrap interval of the mean; None without data (deterministic)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return None
    if x.size == 1 or np.all(x == x[0]):
        return [float(x[0]), float(x[0])]
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return [float(lo), float(hi)]


def _mean(values: Sequence[float]) -> Optional[float]:
    return float(np.mean(values)) if len(values) else None


def summarize(rows: Iterable[dict[str, Any]], policies: Sequence[str], scenarios: Sequence[str]) -> list[dict[str, Any]]:
    """One result per (policy, scenario) in the given order, from parsed rows (episode.parse_row)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {(p, s): [] for p in policies for s in scenarios}
    for row in rows:
        groups.setdefault((row["policy"], row["scenario"]), []).append(row)
    results = []
    for (policy, scenario), group in groups.items():
        ok = [r for r in group if r["status"] == "ok"]
        result: dict[str, Any] = {"policy": policy, "scenario": scenario, "episodes": len(ok),
                                  "errors": len(group) - len(ok)}
        for key, (_, samples) in METRICS.items():
            values = samples(ok)
            result[key] = _mean(values)
            result[f"{key}_ci"] = bootstrap_ci(values)
        result["mean_collisions"] = _mean([r["collisions"] for r in ok])
        result["mean_path_length_m"] = _mean([r["path_length_m"] for r in ok])
        result["events_fired"] = sum(len(r["events"]) for r in ok)
        result["events_applicable"] = len(_events(ok))
        results.append(result)
    return results


PAIRED_METRICS = {"success_rate": "success", "spl": "spl"}  # result key -> parsed row field


def paired_difference(a: Sequence[float], b: Sequence[float]) -> tuple[Optional[float], Optional[list[float]]]:
    """Mean of a[i] - b[i] and its 95% bootstrap interval (resampling the pairs); (None, None)
    without pairs."""
    if len(a) != len(b):
        raise ValueError(f"paired_difference: {len(a)} values against {len(b)}")
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return _mean(d), bootstrap_ci(d)


def paired_differences(rows: Iterable[dict[str, Any]], policies: Sequence[str],
                       scenarios: Sequence[str]) -> list[dict[str, Any]]:
    """Every policy after the first against the first (the reference), per scenario, from
    parsed rows: over the episodes both finished, `pairs` and the paired difference (policy
    minus reference) of success rate and SPL, each with `<metric>_ci`. Empty with one policy."""
    finished: dict[tuple[str, str], dict[tuple[int, int], dict[str, Any]]] = {}
    for row in rows:
        if row["status"] == "ok":
            finished.setdefault((row["policy"], row["scenario"]), {})[(row["episode"], row["seed"])] = row
    out = []
    reference = policies[0] if policies else None
    for policy in policies[1:]:
        for scenario in scenarios:
            ref, own = finished.get((reference, scenario), {}), finished.get((policy, scenario), {})
            keys = sorted(ref.keys() & own.keys())
            result: dict[str, Any] = {"policy": policy, "reference": reference, "scenario": scenario,
                                      "pairs": len(keys)}
            for key, field_name in PAIRED_METRICS.items():
                mean, ci = paired_difference([float(own[k][field_name]) for k in keys],
                                             [float(ref[k][field_name]) for k in keys])
                result[key], result[f"{key}_ci"] = mean, ci
            out.append(result)
    return out


def _cell(result: dict[str, Any], key: str) -> str:
    value, ci = result.get(key), result.get(f"{key}_ci")
    if value is None:
        return "n/a"
    digits = 1 if key.endswith("_s") else 2
    text = f"{value:.{digits}f}"
    if ci is not None and ci[0] != ci[1]:
        text += f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
    return text


def difference_cell(value: Optional[float], ci: Optional[list[float]]) -> str:
    """A paired difference as a table shows it: +0.047 [+0.023, +0.070]; n/a without pairs."""
    if value is None or ci is None:
        return "n/a"
    return f"{value:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]"


def markdown(results: Sequence[dict[str, Any]], title: str = "Evaluation",
             differences: Sequence[dict[str, Any]] = ()) -> str:
    """A table per scenario: mean [95% bootstrap interval] of every metric, one row per policy;
    then, given `differences` (paired_differences), each policy against the reference."""
    lines = [f"# {title}", "",
             "Mean [95% bootstrap interval] over episodes (recovery: over events that fired while the robot "
             "was making progress). n/a: no data.", ""]
    scenarios = list(dict.fromkeys(r["scenario"] for r in results))
    for scenario in scenarios:
        lines += [f"## {scenario}", ""]
        header = ["policy", "episodes", *(title for title, _ in METRICS.values()), "errors"]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---"] * len(header)) + "|")
        for r in results:
            if r["scenario"] == scenario:
                cells = [r["policy"], str(r["episodes"]), *(_cell(r, k) for k in METRICS), str(r["errors"])]
                lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        paired = [d for d in differences if d["scenario"] == scenario]
        if paired:
            lines += [f"Paired against {paired[0]['reference']} (the same episodes; difference "
                      "[95% bootstrap interval]):", "",
                      "| policy | pairs | success difference | SPL difference |", "|---|---|---|---|"]
            lines += [f"| {d['policy']} | {d['pairs']} | {difference_cell(d['success_rate'], d['success_rate_ci'])} | "
                      f"{difference_cell(d['spl'], d['spl_ci'])} |" for d in paired]
            lines.append("")
    return "\n".join(lines)


def is_missing(value: Any) -> bool:
    """True for None or NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))
