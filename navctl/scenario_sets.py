"""What a `--scenarios` list names, and the env seed of every episode of it.

    resolve(["eval", "procedural-test", "my.yaml"])  -> [Scenario ..., ProceduralSet("test"), Scenario]
    env_seed(source, base_seed, i)                   -> the env reset seed of episode i of `source`

An item is a built-in split (`train`, `eval`), a built-in name, a YAML file, a generated
scenario by name (`procedural-<generator seed>`, one fixed scenario), or a procedural set:
`procedural` (a fresh generated scenario every episode) or `procedural-train`,
`procedural-validation`, `procedural-test` (the fixed scenarios of that split of
envs.scenarios.PROCEDURAL_SPLITS, episode i running scenario i).

Seeds. A fixed scenario's episode i runs with env seed episode_seed(base, name, i). For a
split of n scenarios the env runs scenario `reset seed mod n` of it (envs/terrain_nav.py), so
episode i gets reset seed i + n * k with k = episode_seed(base, name, i) mod (2^32 // n): the
same scenario i for every base seed and policy, while the base seed still changes what the
scenario's `randomize` draws; the seed stays below 2^32. `procedural` uses episode_seed as
a file does, and the env takes the generator seed = reset seed mod 2^31.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

from envs import scenarios as scenario_files
from envs.scenarios import PROCEDURAL_SPLITS, Scenario
from navctl.episode import episode_seed
from navctl.errors import UsageError

PROCEDURAL = "procedural"
ANY_SEED = range(0, 2 ** 31)  # the generator seeds of plain "procedural" (the env's rule)
SEED_LIMIT = 2 ** 32  # env seeds stay below this
_GENERATED = re.compile(r"procedural-(\d+)")


@dataclass(frozen=True)
class ProceduralSet:
    """A generated scenario per episode: from the generator seeds of PROCEDURAL_SPLITS[split],
    or from any seed when `split` is None (`procedural`)."""

    split: Optional[str] = None

    @property
    def name(self) -> str:
        """Its name in rows and reports, which is also the env's `scenario=` argument."""
        return PROCEDURAL if self.split is None else f"{PROCEDURAL}-{self.split}"

    @property
    def source(self) -> str:
        return "envs.scenarios.generate"

    @property
    def seeds(self) -> range:
        return ANY_SEED if self.split is None else PROCEDURAL_SPLITS[self.split]

    @property
    def description(self) -> str:
        if self.split is None:
            return "a new generated scenario every episode (generator seed = env seed mod 2^31)"
        s = self.seeds
        return (f"the procedural {self.split} split: episode i runs generated scenario i "
                f"(generator seeds {s.start}..{s.stop - 1})")

    def reset_seed(self, base_seed: int, index: int) -> int:
        """The env seed of episode `index` (see the module docstring)."""
        k = episode_seed(base_seed, self.name, index)
        return k if self.split is None else self.env_seed(index, k)

    def env_seed(self, index: int, draw: int) -> int:
        """An env seed that runs scenario `index` of the split, `draw` (any integer >= 0)
        choosing which of them: index + n * (draw mod 2^32 // n), below 2^32."""
        n = len(self.seeds)
        if not 0 <= index < n:
            raise UsageError(f"{self.name} has {n} scenarios: episode {index} is beyond it")
        return index + n * (draw % (SEED_LIMIT // n))

    def scenario_seed(self, reset_seed: int) -> int:
        """The generator seed the env runs for `reset_seed`."""
        return self.seeds[reset_seed % len(self.seeds)]


Source = Union[Scenario, ProceduralSet]


def procedural_set(item: str) -> Optional[ProceduralSet]:
    """The ProceduralSet an item names, or None."""
    if item == PROCEDURAL:
        return ProceduralSet()
    if item.startswith(PROCEDURAL + "-") and item[len(PROCEDURAL) + 1:] in PROCEDURAL_SPLITS:
        return ProceduralSet(item[len(PROCEDURAL) + 1:])
    return None


def generated_seed(item: str) -> Optional[int]:
    """The generator seed of a generated scenario's name (`procedural-17` -> 17), else None."""
    match = _GENERATED.fullmatch(item)
    return int(match.group(1)) if match else None


def load_one(item: str) -> Source:
    """A procedural set, a generated scenario by name, or a built-in name or file (validated)."""
    found = procedural_set(item)
    if found is not None:
        return found
    seed = generated_seed(item)
    if seed is not None:
        return scenario_files.generate(seed)
    if item.startswith(PROCEDURAL + "-") and "." not in item and not Path(item).exists():
        known = ", ".join(ProceduralSet(s).name for s in PROCEDURAL_SPLITS)
        raise UsageError(f"{item}: unknown procedural name (use {PROCEDURAL}, {known} or {PROCEDURAL}-<seed>)")
    return scenario_files.load(item)


def resolve(items: Sequence[str]) -> list[Source]:
    """Every scenario the items name, splits expanded, in order, without repeats; two
    different scenarios of the same name raise UsageError."""
    out: list[Source] = []
    for item in items:
        names = scenario_files.names(item) if item in scenario_files.SPLITS else [item]
        out += [load_one(name) for name in names]
    seen: dict[str, str] = {}
    for sc in out:
        if sc.name in seen and seen[sc.name] != sc.source:
            raise UsageError(f"two scenarios are named {sc.name!r} ({seen[sc.name]}, {sc.source}): "
                             "names must be unique within one evaluation")
        seen[sc.name] = sc.source
    return list({sc.name: sc for sc in out}.values())


def env_seed(source: Source, base_seed: int, index: int) -> int:
    """The env reset seed of episode `index` of `source` in a run with base seed `base_seed`."""
    if isinstance(source, ProceduralSet):
        return source.reset_seed(base_seed, index)
    return episode_seed(base_seed, source.name, index)
