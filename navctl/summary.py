"""Per-episode rows -> per (policy, scenario) results with 95% bootstrap intervals, and the
Markdown report.

A result holds, for the episodes that finished (status ok): success_rate, spl, soft_spl,
collision_rate (share of episodes with at least one collision), mean_time_to_goal_s (over
successful episodes), recovery_rate (share of events, among those that fired while the robot
was making progress, after which it recovered) and mean_recovery_s (over recovered events),
each with `<metric>_ci` = [lo, hi]; plus counts (episodes, errors, events). None stands for
"no data" (JSON has no NaN).
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


def _cell(result: dict[str, Any], key: str) -> str:
    value, ci = result.get(key), result.get(f"{key}_ci")
    if value is None:
        return "n/a"
    digits = 1 if key.endswith("_s") else 2
    text = f"{value:.{digits}f}"
    if ci is not None and ci[0] != ci[1]:
        text += f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
    return text


def markdown(results: Sequence[dict[str, Any]], title: str = "Evaluation") -> str:
    """A table per scenario: mean [95% bootstrap interval] of every metric, one row per policy."""
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
    return "\n".join(lines)


def is_missing(value: Any) -> bool:
    """True for None or NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))
