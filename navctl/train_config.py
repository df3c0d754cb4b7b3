"""The training config: one YAML file holds every hyper-parameter (see configs/*.yaml).

`load_config(path)` returns a plain dict with defaults filled in, or raises UsageError naming
the file, the field and what is wrong — before any work starts.
"""
from __future__ import annotations

import difflib
import os
from typing import Any

import yaml

from envs.scenarios.parse import load_yaml
from navctl.errors import UsageError

# field -> (type or nested spec, default); a default of ... means required
SPEC: dict[str, Any] = {
    "name": (str, ...),
    "seed": (int, 0),
    "policy": (dict, ...),  # passed to policies.build; validated there
    "scenarios": {
        "train": (list, ["train"]),  # scenario names, or "train" / "eval" for a whole split
        "validation": (list, ["train"]),
        "validation_episodes": (int, 1),  # per scenario, seeds disjoint from training seeds
    },
    "dagger": {
        "expert_episodes": (int, 40),  # round 0: the expert drives every step
        "rounds": (int, 4),  # rounds after round 0, the student driving
        "episodes_per_round": (int, 20),
        "beta_start": (float, 0.5),  # probability that the expert drives a step in round 1 ...
        "beta_decay": (float, 0.5),  # ... multiplied by this every further round
        "mirror": (bool, True),  # also train on every episode mirrored left <-> right
        "max_episode_s": (float, 0.0),  # cut collection episodes this long (0: the scenario's limit)
    },
    "optim": {
        "epochs": (int, 8),  # passes over all the data, every round
        "batch_episodes": (int, 16),
        "chunk_steps": (int, 50),  # truncated BPTT length; state and traces carry across chunks
        "lr": (float, 3e-3),  # Adam's learning rate at the start of every round's fit ...
        "lr_min": (float, 3e-4),  # ... annealed by a cosine over its epochs to this
        "grad_clip": (float, 1.0),
    },
    "workers": (int, 0),  # rollout processes; 0 = all cores
    "torch_threads": (int, 1),  # fixed so that results do not depend on the machine
}


def _check(value: Any, spec: Any, where: str, source: str) -> Any:
    if isinstance(spec, dict):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise UsageError(f"{source}: {where}: must be a mapping, got {type(value).__name__}")
        out = {}
        for key in value:
            if key not in spec:
                close = difflib.get_close_matches(str(key), list(spec), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise UsageError(f"{source}: {where + '.' if where else ''}{key}: unknown field{hint}")
        for key, sub in spec.items():
            path = f"{where}.{key}" if where else key
            if isinstance(sub, dict):
                out[key] = _check(value.get(key), sub, path, source)
                continue
            kind, default = sub
            if key not in value:
                if default is ...:
                    raise UsageError(f"{source}: {path}: missing required field")
                out[key] = default
                continue
            v = value[key]
            if kind is float and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)
            if kind is list and isinstance(v, str):
                v = [v]
            if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
                raise UsageError(f"{source}: {path}: must be {kind.__name__}, got {type(v).__name__} {v!r}")
            if kind in (int, float) and v < 0:
                raise UsageError(f"{source}: {path}: must be >= 0, got {v}")
            out[key] = v
        return out
    raise AssertionError(spec)


def validate_config(data: Any, source: str) -> dict[str, Any]:
    """Checks a parsed config and fills in defaults; scenario names are checked too."""
    from envs import scenarios

    cfg = _check(data, SPEC, "", source)
    for field in ("train", "validation"):
        for i, name in enumerate(cfg["scenarios"][field]):
            if name in scenarios.SPLITS:
                continue
            try:
                scenarios.load(name)
            except scenarios.ScenarioError as e:
                raise UsageError(f"{source}: scenarios.{field}[{i}]: {e}") from None
    if cfg["optim"]["chunk_steps"] < 1 or cfg["optim"]["batch_episodes"] < 1:
        raise UsageError(f"{source}: optim: chunk_steps and batch_episodes must be >= 1")
    if not 0.0 < cfg["optim"]["lr_min"] <= cfg["optim"]["lr"]:
        raise UsageError(f"{source}: optim.lr_min: must be in (0, lr], got {cfg['optim']['lr_min']}")
    if not 0.0 <= cfg["dagger"]["beta_start"] <= 1.0:
        raise UsageError(f"{source}: dagger.beta_start: must be in [0, 1], got {cfg['dagger']['beta_start']}")
    try:
        import policies

        policies.build(cfg["policy"])
    except (ValueError, TypeError, KeyError) as e:
        raise UsageError(f"{source}: policy: {e}") from None
    return cfg


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """Reads and validates a training config file."""
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as f:
            data = load_yaml(f.read(), source)  # YAML 1.2 numbers; raises ScenarioError (a ValueError)
    except FileNotFoundError:
        raise UsageError(f"{source}: no such config file") from None
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        where = f"line {line + 1}: " if line is not None else ""
        raise UsageError(f"{source}: {where}malformed YAML: {getattr(e, 'problem', e)}") from None
    return validate_config(data, source)


def scenario_names(entries: list[str]) -> list[str]:
    """Expands split names ("train", "eval") into scenario names, keeping order, no repeats."""
    from envs import scenarios

    out: list[str] = []
    for entry in entries:
        for name in scenarios.names(entry) if entry in scenarios.SPLITS else [entry]:
            if name not in out:
                out.append(name)
    return out
