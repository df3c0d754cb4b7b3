"""The training config: one YAML file holds every hyper-parameter (see configs/*.yaml).

The file's fields are the fields of `TrainConfig` and its parts below (the comments document
them); `load_config(path)` reads it with the readers of the scenario files
(envs.scenarios.parse), fills in the defaults, and raises UsageError naming the file, the
field and what is wrong, before any work starts.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from envs.scenarios import PROCEDURAL_SPLITS
from envs.scenarios.parse import Invalid, ScenarioError, fields, flag, list_of, load_yaml, number, text
from navctl.errors import UsageError


PROCEDURAL_SEED_STRIDE = 100_000  # training seed s starts at procedural train scenario s * this (mod the split size)


@dataclass(frozen=True)
class Scenarios:
    # Built-in names, files, "train" / "eval" for a whole built-in split; and "procedural-train":
    # a new generated scenario of the procedural train split for every procedural episode, never
    # repeated within a run (round 0 takes train scenarios s*100000, s*100000+1, ... for seed s,
    # every later round the next ones).
    train: tuple[str, ...] = ("train",)
    # Built-ins as above, run on seeds disjoint from the training seeds; and/or
    # "procedural-validation": its scenarios 0..validation_episodes-1, each once, on the env
    # seeds of `navctl evaluate --scenarios procedural-validation --seed 0` (the same every round).
    validation: tuple[str, ...] = ("train",)
    validation_episodes: int = 1  # per built-in validation scenario; for procedural-validation: how many of its scenarios
    # With both built-in and procedural-train entries in `train`: the share of every round's
    # episodes (dagger.expert_episodes, dagger.episodes_per_round) that run procedural scenarios,
    # rounded to whole episodes; the others cycle over the built-ins. With only one kind, all.
    procedural_share: float = 0.5


@dataclass(frozen=True)
class Dagger:
    expert_episodes: int = 40  # round 0: the expert drives every step
    rounds: int = 4  # rounds after round 0, the student driving
    episodes_per_round: int = 20
    beta_start: float = 0.5  # probability that the expert drives a step in round 1 ...
    beta_decay: float = 0.5  # ... multiplied by this every further round
    mirror: bool = True  # also train on every episode mirrored left <-> right
    max_episode_s: float = 0.0  # cut collection episodes this long (0: the scenario's limit)
    # who drives round 0 and labels every step: "expert" (plans on the true map), "guided"
    # (the expert's driving on the classical controller's route; navctl/expert.py GuidedExpert)
    # "guided-rescue" (the same, and the expert's own route where the classical one stalls)
    # or "guided-escape" (the same, and following the obstacle on one side where it stalls)
    teacher: str = "expert"


@dataclass(frozen=True)
class Optim:
    epochs: int = 8  # passes over all the data, every round
    batch_episodes: int = 16
    chunk_steps: int = 50  # truncated BPTT length; state and traces carry across chunks
    lr: float = 3e-3  # Adam's learning rate at the start of every round's fit ...
    lr_min: float = 3e-4  # ... annealed by a cosine over its epochs to this
    grad_clip: float = 1.0  # gradient norm clip
    takeover_weight: float = 1.0  # loss weight of the steps where the teacher's escape (or rescue) drove; 1 = none
    event_weight: float = 1.0  # loss weight multiplier of the steps in the event_window_s after an event; 1 = none
    event_window_s: float = 10.0  # simulated seconds after each event that event_weight applies to


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    name: str  # names the run directory and, with --ship, the checkpoint
    seed: int = 0  # every round re-seeds all its randomness from (seed, round)
    policy: dict[str, Any]  # passed to policies.build (see policies.learned.PolicyConfig)
    scenarios: Scenarios = field(default_factory=Scenarios)
    dagger: Dagger = field(default_factory=Dagger)
    optim: Optim = field(default_factory=Optim)
    workers: int = 0  # rollout processes; 0 = all cores
    torch_threads: int = 1  # fixed so that results do not depend on the machine

    def as_dict(self) -> dict[str, Any]:
        """The config as plain JSON data (as the model card stores it)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


def _names(v: Any, path: str) -> tuple[str, ...]:
    """A list of scenario names; a single name reads as a list of one."""
    return list_of(text(), 1000, "a training run names at most 1000 scenarios")([v] if isinstance(v, str) else v, path)


def _mapping(v: Any, path: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise Invalid(path, f"must be a mapping, got {type(v).__name__}")
    return dict(v)


_COUNT, _RATE = number(integer=True, ge=0), number(ge=0)
_READ = fields(TrainConfig, {
    "name": text(),
    "seed": _COUNT,
    "policy": _mapping,
    "scenarios": fields(Scenarios, {"train": _names, "validation": _names, "validation_episodes": _COUNT,
                                    "procedural_share": number(ge=0, le=1)}),
    "dagger": fields(Dagger, {
        "expert_episodes": _COUNT, "rounds": _COUNT, "episodes_per_round": _COUNT,
        "beta_start": number(ge=0, le=1), "beta_decay": _RATE, "mirror": flag, "max_episode_s": _RATE,
        "teacher": text(choices=("expert", "guided", "guided-rescue", "guided-escape"))}),
    "optim": fields(Optim, {
        "epochs": _COUNT, "batch_episodes": number(integer=True, ge=1), "chunk_steps": number(integer=True, ge=1),
        "lr": _RATE, "lr_min": _RATE, "grad_clip": _RATE, "takeover_weight": number(ge=1),
        "event_weight": number(ge=1), "event_window_s": number(gt=0)}),
    "workers": _COUNT,
    "torch_threads": number(integer=True, ge=1),
}, required=("name", "policy"))


def validate_config(data: Any, source: str) -> TrainConfig:
    """Checks a parsed config and fills in defaults; scenario names and the policy are checked too."""
    try:
        cfg = _READ(data, "")
    except Invalid as e:
        raise UsageError(f"{source}: {e.path}: {e.reason}" if e.path else f"{source}: {e.reason}") from None
    _check_scenarios(cfg, source)
    if not 0.0 < cfg.optim.lr_min <= cfg.optim.lr:
        raise UsageError(f"{source}: optim.lr_min: must be in (0, lr], got {cfg.optim.lr_min}")
    try:
        import policies
        from navctl.policy_names import with_base

        cfg = dataclasses.replace(cfg, policy=with_base(cfg.policy))
        policies.build(cfg.policy)
    except (ValueError, TypeError, KeyError) as e:
        raise UsageError(f"{source}: policy: {e}") from None
    return cfg


def _check_entry(part: str, name: str) -> None:
    """Raises ValueError (a ScenarioError for a bad file) if `name` has no place in
    scenarios.<part> ("train" or "validation"): generated scenarios of a part come from the
    procedural split of the same name (test seeds are for reporting only, and plain
    "procedural" draws from every seed)."""
    from envs import scenarios
    from navctl.scenario_sets import generated_seed, load_one, procedural_set

    found, seed = procedural_set(name), generated_seed(name)
    if found is not None and found.split != part:
        raise ValueError(f"{name}: {part} uses procedural-{part} (procedural test seeds are for reporting only)")
    if seed is not None and seed not in PROCEDURAL_SPLITS[part]:
        raise ValueError(f"{name}: a {part} scenario must come from the procedural {part} split's seeds")
    if found is None and name not in scenarios.SPLITS:
        load_one(name)


def _check_scenarios(cfg: TrainConfig, source: str) -> None:
    for part in ("train", "validation"):
        entries = getattr(cfg.scenarios, part)
        if not entries:
            raise UsageError(f"{source}: scenarios.{part}: names no scenario")
        for i, name in enumerate(entries):
            try:
                _check_entry(part, name)
            except ValueError as e:  # UsageError and ScenarioError are ValueErrors too
                raise UsageError(f"{source}: scenarios.{part}[{i}]: {e}") from None
    total = sum(procedural_episodes(cfg, r) for r in range(1 + cfg.dagger.rounds))
    if total > len(PROCEDURAL_SPLITS["train"]):
        raise UsageError(f"{source}: scenarios: {total} procedural training episodes, more than the "
                         f"{len(PROCEDURAL_SPLITS['train'])} scenarios of the procedural train split")


def load_config(path: str | os.PathLike) -> TrainConfig:
    """Reads and validates a training config file."""
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as f:
            data = load_yaml(f.read(), source)  # YAML 1.2 numbers; raises ScenarioError (a ValueError)
    except FileNotFoundError:
        raise UsageError(f"{source}: no such config file") from None
    except ScenarioError as e:  # malformed YAML, duplicate keys: one line naming file and line
        raise UsageError(str(e)) from None
    return validate_config(data, source)


def scenario_names(entries: tuple[str, ...]) -> list[str]:
    """The fixed scenarios of `entries`: split names ("train", "eval") expanded into scenario
    names, keeping order, no repeats; procedural sets (procedural-train, ...) left out."""
    from envs import scenarios
    from navctl.scenario_sets import procedural_set

    out: list[str] = []
    for entry in entries:
        for name in scenarios.names(entry) if entry in scenarios.SPLITS else [entry]:
            if name not in out and procedural_set(name) is None:
                out.append(name)
    return out


def has_procedural(entries: tuple[str, ...]) -> bool:
    """Whether `entries` name a procedural set (procedural-train, procedural-validation)."""
    from navctl.scenario_sets import procedural_set

    return any(procedural_set(e) is not None for e in entries)


def procedural_episodes(cfg: TrainConfig, round_index: int) -> int:
    """How many of round `round_index`'s collection episodes run procedural train scenarios."""
    count = cfg.dagger.expert_episodes if round_index == 0 else cfg.dagger.episodes_per_round
    if not has_procedural(cfg.scenarios.train):
        return 0
    if not scenario_names(cfg.scenarios.train):
        return count
    return int(cfg.scenarios.procedural_share * count + 0.5)


def first_procedural_index(cfg: TrainConfig, round_index: int) -> int:
    """The procedural train scenario (index into the split) of round `round_index`'s first
    procedural episode: seed * PROCEDURAL_SEED_STRIDE, plus every earlier round's count."""
    done = sum(procedural_episodes(cfg, r) for r in range(round_index))
    return (cfg.seed * PROCEDURAL_SEED_STRIDE + done) % len(PROCEDURAL_SPLITS["train"])
