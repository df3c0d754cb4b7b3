"""Write a Scenario back out as scenario YAML (format version 1, see SCENARIOS.md).

`dump(scenario)` gives text that `parse` reads back to an equal Scenario (all fields but
`source`, which names where a scenario was read from). Fields equal to the format's
defaults are left out; what remains is laid out like the built-in files: sections as
blocks, their entries as one-line flow mappings. Floats are written in their shortest
exact form, so nothing is lost in the round trip.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
from typing import Any

from .model import BoxObstacle, Circle, CylinderObstacle, Event, Rect, Scenario, Surface

# Top-level sections in the order the built-in files use.
_ORDER = ("version", "name", "description", "split", "time_limit_s", "arena", "robot", "goal",
          "surfaces", "obstacles", "events", "randomize", "sensors")
_FLOW_SECTIONS = ("goal",)  # sections short enough for one line
# A string may go unquoted when it holds none of YAML's indicators and reads back as itself.
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9 _./()%+=-]*")
_YAML_WORDS = {"null", "true", "false", "yes", "no", "on", "off", "y", "n", "nan", "inf"}


def _number(x: float) -> str:
    """A number that reads back exactly: 2 for 2.0, repr otherwise, with the dot PyYAML needs
    in an exponent (1.0e-05, not 1e-05, which YAML 1.1 reads as text)."""
    if isinstance(x, bool) or not math.isfinite(x):
        raise ValueError(f"cannot write {x!r} as a scenario number")
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    text = repr(float(x))
    mantissa, e, exponent = text.partition("e")
    if e:
        if "." not in mantissa:
            mantissa += ".0"
        if exponent[0] not in "+-":
            exponent = "+" + exponent
        text = f"{mantissa}e{exponent}"
    return text


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return _number(v)
    if isinstance(v, str):
        plain = _PLAIN.fullmatch(v) and v.lower() not in _YAML_WORDS and not v.endswith(" ")
        return v if plain else json.dumps(v)  # a JSON string is a valid double-quoted YAML scalar
    raise TypeError(f"cannot write {type(v).__name__} in a scenario")


def _flow(v: Any) -> str:
    """One line: {a: 1, b: [2, 3]}."""
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_flow(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    return _scalar(v)


def _block(tree: dict, depth: int) -> list[str]:
    """Mappings as indented blocks down to depth 1; below that, flow. Lists of mappings as `- {..}` lines."""
    pad = "  " * depth
    lines = []
    for key, v in tree.items():
        if isinstance(v, dict) and depth == 0 and key not in _FLOW_SECTIONS:
            lines += [f"{pad}{key}:", *_block(v, depth + 1)]
        elif isinstance(v, (list, tuple)) and v and isinstance(v[0], dict):
            lines += [f"{pad}{key}:", *(f"{pad}  - {_flow(x)}" for x in v)]
        else:
            lines.append(f"{pad}{key}: {_flow(v)}")
    return lines


def _fields(obj: Any, always: tuple[str, ...] = ()) -> dict:
    """A dataclass as a dict of its fields, leaving out None and values equal to the field's
    default (except the names in `always`); nested dataclasses become dicts, empty ones vanish."""
    out = {}
    for f in dataclasses.fields(obj):
        if not f.metadata.get("in_file", True):  # bookkeeping, not part of the scenario format
            continue
        v = getattr(obj, f.name)
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
        if v is None or (f.name not in always and v == default):
            continue
        if dataclasses.is_dataclass(v):
            v = _fields(v)
            if not v:
                continue
        if isinstance(v, tuple):
            v = [_fields(x) if dataclasses.is_dataclass(x) else x for x in v]
        out[f.name] = v
    return out


def _shape(shape: Rect | Circle) -> dict:
    return {"rect" if isinstance(shape, Rect) else "circle": _fields(shape)}


def _surface(s: Surface) -> dict:
    out = {"name": s.name} if s.name else {}
    out.update(_shape(s.shape))
    out["friction"] = s.friction
    if s.drag:
        out["drag"] = s.drag
    return out


def _obstacle(ob: BoxObstacle | CylinderObstacle) -> dict:
    kind = "box" if isinstance(ob, BoxObstacle) else "cylinder"
    return {kind: _fields(ob)}


def _event(ev: Event) -> dict:
    trigger = ev.trigger
    when = _shape(ev.on_enter) if trigger == "on_enter" else getattr(ev, trigger)
    return {trigger: when, "set": _fields(ev.set)}


def dump_tree(sc: Scenario) -> dict:
    """The scenario as the YAML tree of the file format (dicts, lists, numbers, strings), defaults left out."""
    tree: dict[str, Any] = {"version": sc.version, "name": sc.name}
    if sc.description:
        tree["description"] = sc.description
    if sc.split is not None:
        tree["split"] = sc.split
    tree["time_limit_s"] = sc.time_limit_s
    tree["arena"] = _fields(sc.arena)
    tree["robot"] = _fields(sc.robot)
    tree["goal"] = _fields(sc.goal, always=("radius_m",))
    obstacles = [_obstacle(ob) for ob in sc.obstacles]
    if sc.random_obstacles is not None:
        obstacles.append({"random": _fields(sc.random_obstacles)})
    for key, items in (("surfaces", [_surface(s) for s in sc.surfaces]), ("obstacles", obstacles),
                       ("events", [_event(e) for e in sc.events])):
        if items:
            tree[key] = items
    for key in ("randomize", "sensors"):
        section = _fields(getattr(sc, key))
        if section:
            tree[key] = section
    return {k: tree[k] for k in _ORDER if k in tree}


def dump(scenario: Scenario) -> str:
    """Scenario YAML (format version 1) that `envs.scenarios.parse` reads back to an equal
    Scenario (up to `source`)."""
    lines = []
    for line in _block(dump_tree(scenario), 0):
        if lines and line.endswith(":") and not line.startswith(" "):
            lines.append("")  # a blank line before each section, as in the built-in files
        lines.append(line)
    return "\n".join(lines) + "\n"
