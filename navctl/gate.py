"""Gates for headless CI: thresholds on evaluation results, read from a YAML file.

    thresholds:
      - {policy: liquid, scenario: "*", metric: success_rate, min: 0.8}
      - {policy: "*", scenario: "*", metric: errors, max: 0}

`policy` and `scenario` are shell-style patterns (default "*"); `metric` is a key of the
results in summary.json (see navctl.summary.GATE_METRICS); at least one of `min` / `max`.
A threshold that matches no result fails (a misspelt name must not pass silently), and so
does a metric with no data.
"""
from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from envs.scenarios import ScenarioError, load_yaml, read_text
from navctl.errors import UsageError
from navctl.summary import GATE_METRICS, is_missing

_FIELDS = ("policy", "scenario", "metric", "min", "max")


@dataclass(frozen=True)
class Threshold:
    metric: str
    policy: str = "*"
    scenario: str = "*"
    min: Optional[float] = None
    max: Optional[float] = None


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{where}: must be a number, got {value!r}")
    return float(value)


def load_gate(path: str | os.PathLike) -> list[Threshold]:
    """Reads and validates a gate file; raises UsageError naming the file and field."""
    name = os.fspath(path)
    try:  # the scenario files' reader: YAML 1.2 numbers, duplicate keys refused, size bounded
        data = load_yaml(read_text(name, name), name)
    except ScenarioError as e:
        raise UsageError(str(e)) from None
    if not isinstance(data, dict):
        raise UsageError(f"{name}: must be a mapping with a 'thresholds' list")
    for key in data:
        if key != "thresholds":
            raise UsageError(f"{name}: {key}: unknown field (expected 'thresholds')")
    items = data.get("thresholds")
    if not isinstance(items, list) or not items:
        raise UsageError(f"{name}: thresholds: must be a non-empty list")
    out = []
    for i, item in enumerate(items):
        where = f"{name}: thresholds[{i}]"
        if not isinstance(item, dict):
            raise UsageError(f"{where}: must be a mapping")
        for key in item:
            if key not in _FIELDS:
                raise UsageError(f"{where}.{key}: unknown field (valid: {', '.join(_FIELDS)})")
        metric = item.get("metric")
        if metric not in GATE_METRICS:
            raise UsageError(f"{where}.metric: must be one of {', '.join(GATE_METRICS)}, got {metric!r}")
        if "min" not in item and "max" not in item:
            raise UsageError(f"{where}: needs 'min' or 'max'")
        for key in ("policy", "scenario"):
            if not isinstance(item.get(key, "*"), str):
                raise UsageError(f"{where}.{key}: must be a string pattern, got {item[key]!r}")
        out.append(Threshold(metric=metric, policy=item.get("policy", "*"), scenario=item.get("scenario", "*"),
                             min=_number(f"{where}.min", item["min"]) if "min" in item else None,
                             max=_number(f"{where}.max", item["max"]) if "max" in item else None))
    return out


def check_gate(thresholds: Sequence[Threshold], results: Sequence[dict[str, Any]]) -> list[str]:
    """One message per failed check, e.g. 'liquid on ice-strip: success_rate 0.60 < min 0.80'."""
    failures = []
    for t in thresholds:
        matched = [r for r in results
                   if fnmatch.fnmatchcase(r["policy"], t.policy) and fnmatch.fnmatchcase(r["scenario"], t.scenario)]
        if not matched:
            failures.append(f"no result matches policy {t.policy!r} and scenario {t.scenario!r} (metric {t.metric})")
        for r in matched:
            value = r.get(t.metric)
            who = f"{r['policy']} on {r['scenario']}"
            if is_missing(value):
                failures.append(f"{who}: {t.metric} has no data")
            elif t.min is not None and value < t.min:
                failures.append(f"{who}: {t.metric} {value:.3g} < min {t.min:g}")
            elif t.max is not None and value > t.max:
                failures.append(f"{who}: {t.metric} {value:.3g} > max {t.max:g}")
    return failures
