"""Scenario files: load and validate them, list the built-in suite (format: SCENARIOS.md).

    names()                -> every built-in scenario name, sorted
    names(split="eval")    -> only the held-out split ("train" or "eval")
    load("ice-strip")      -> a built-in by name
    load("my/ice.yaml")    -> a user file by path
    generate(seed)         -> a procedural scenario, the same for the same seed (procedural.py)
    dump(scenario)         -> its YAML text, which load / parse read back to an equal scenario (writer.py)
    procedural_seed("test", i) -> the generator seed of the i-th scenario of a procedural split

Anything that cannot be honoured raises ScenarioError (a ValueError) whose message is one
line: `<file>: <field path>: <reason>`.
"""
from __future__ import annotations

import difflib
import functools
import os
from pathlib import Path
from typing import Optional, Union

from .model import Scenario
from .parse import FORMAT_VERSION, ScenarioError, from_dict, load_yaml, parse, read_text
from .procedural import LAYOUTS, PROCEDURAL_SPLITS, feasible_path, generate, procedural_seed
from .writer import dump

BUILTIN_DIR = Path(__file__).parent / "builtin"
SPLITS = ("train", "eval")

__all__ = ["BUILTIN_DIR", "FORMAT_VERSION", "LAYOUTS", "PROCEDURAL_SPLITS", "SPLITS", "Scenario",
           "ScenarioError", "dump", "feasible_path", "from_dict", "generate", "load", "load_yaml", "names",
           "parse", "procedural_seed", "read_text"]


def _builtin_files() -> dict[str, Path]:
    return {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.yaml"), key=lambda p: p.stem)}  # by name: "hills" < "hills-x"


@functools.lru_cache(maxsize=None)
def _builtin(name: str) -> Scenario:
    path = BUILTIN_DIR / f"{name}.yaml"
    return parse(path.read_text(encoding="utf-8"), path.name)  # Scenario is frozen: safe to share


def names(split: Optional[str] = None) -> list[str]:
    """Sorted built-in scenario names; with split="train" or "eval" only that split."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)} or None, got {split!r}")
    return [n for n in _builtin_files() if split is None or _builtin(n).split == split]


def load(name_or_path: Union[str, os.PathLike]) -> Scenario:
    """A validated Scenario from a built-in name (see names()) or a path to a YAML file.

    A built-in name wins over a file of the same name in the working directory. Raises
    ScenarioError naming the file (as given, or the basename for built-ins), field and reason.
    """
    given = os.fspath(name_or_path)
    builtins = _builtin_files()
    if given in builtins:
        return _builtin(given)
    path = Path(given)
    if not path.is_file():
        close = difflib.get_close_matches(Path(given).stem, list(builtins), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ScenarioError(given, None, f"not a built-in scenario or an existing file ({hint}"
                                         f"built-ins: {', '.join(builtins)})")
    return parse(read_text(path, given), given)  # a file over MAX_FILE_BYTES is refused unread
