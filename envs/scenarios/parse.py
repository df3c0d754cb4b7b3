"""Read and check scenario YAML (format version 1, see SCENARIOS.md) into `model.Scenario`.

The walker is table-driven: each level of the file is a `_fields(...)` spec that maps a key
to a reader, and a reader checks one YAML value and converts it. Checks that span fields
(events within the time limit, start and goal inside the arena and clear of obstacles) run
on the built Scenario. The first problem found raises ScenarioError, one line:
`<file>: <field path>: <reason>`. The bounds of envs/scenarios/limits.py are checked here,
each message giving its reason.

`load_yaml(text, source)` is the YAML reader of every file navctl reads (scenarios, training
configs, gate files): YAML 1.2 numbers, duplicate keys refused, a size bound before parsing.

Lengths are metres, angles degrees, times seconds.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import operator
import os
import re
from typing import Any, Callable, Optional, Union

import yaml

from .model import (
    Arena, BoxObstacle, Circle, CylinderObstacle, Event, EventSet, Goal, GoalRandomize, Hill,
    MotorGain, MotorGainRandomize, Pose, RandomObstacles, Randomize, Rect, RobotSpec, Scenario,
    Range, Sensors, SensorNoise, StartRandomize, Surface,
)
from .limits import (
    MAX_ARENA_SIDE_M, MAX_EVENTS, MAX_FILE_BYTES, MAX_FRICTION, MAX_FRICTION_SCALE, MAX_HILL_HEIGHT_M, MAX_HILLS,
    MAX_LENGTH_M, MAX_NOISE_SD, MAX_OBSTACLES, MAX_PAYLOAD_KG, MAX_ROUGHNESS_M, MAX_SURFACES, MAX_TIME_LIMIT_S,
)

FORMAT_VERSION = 1
# Half the Husky's footprint diagonal (~0.99 x 0.67 m): the chassis centre can get no closer
# than this to a wall or an obstacle, so start and goal must keep this much clearance.
ROBOT_HALF_FOOTPRINT_M = 0.6
MOTOR_GAIN_MAX = 1.5


class ScenarioError(ValueError):
    """A scenario that cannot be honoured. str() is one line: `<file>: <field path>: <reason>`.

    `field` is None for problems with the file as a whole (unknown name, unreadable file);
    for YAML syntax errors it is `line N`.
    """

    def __init__(self, file: str, field: Optional[str], reason: str) -> None:
        self.file, self.field, self.reason = file, field, reason
        message = ": ".join(part for part in (file, field, reason) if part)
        super().__init__(" ".join(message.splitlines()))

    def __reduce__(self) -> tuple:  # picklable, so it crosses process (and Ray) boundaries intact
        return type(self), (self.file, self.field, self.reason)


class _Invalid(Exception):
    """A problem at a field path, raised inside the walker; `parse` adds the file name."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path, self.reason = path, reason


# ---------------------------------------------------------------- YAML with line numbers

# YAML 1.2 floats (core schema): 1e-3, 1.0e9, 2E+3, .5, -.5. PyYAML follows YAML 1.1, whose
# floats need a dot and a signed exponent, so it would read 1e-3 and 1.0e9 as strings.
_YAML12_FLOAT = re.compile(r"""^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
                               |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X)


class _StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that reads YAML 1.2 floats and rejects duplicate keys (plain YAML
    silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float)):
                continue  # unhashable keys are left to SafeLoader's own error
            if key in seen:
                raise _Invalid(f"line {key_node.start_mark.line + 1}", f"duplicate key {key!r}")
            seen.add(key)
        return super().construct_mapping(node, deep)


# Tried after YAML 1.1's int and float (first characters: sign, dot, digit); PyYAML copies the
# resolver table for the subclass, so yaml.SafeLoader itself is unchanged.
_StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", _YAML12_FLOAT, list("-+.0123456789"))


def _too_big(size: int, unit: str) -> str:
    return (f"the file is {size} {unit}, over the limit of {MAX_FILE_BYTES} ({MAX_FILE_BYTES // 1024} KiB) "
            f"that keeps reading it under a second")


def read_text(path: Union[str, os.PathLike], source: str) -> str:
    """The UTF-8 text of a scenario or config file; one larger than MAX_FILE_BYTES is refused
    before it is read. Raises ScenarioError `<source>: <reason>`."""
    try:
        size = os.stat(path).st_size
        if size > MAX_FILE_BYTES:
            raise ScenarioError(source, None, _too_big(size, "bytes"))
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(source, None, f"cannot read the file: {e}") from None


def _parse_yaml(text: str) -> Any:
    if len(text) > MAX_FILE_BYTES:
        raise _Invalid("", _too_big(len(text), "characters"))
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem or e.context or "cannot parse"
        if mark is None:
            raise _Invalid("", f"malformed YAML: {problem}") from None
        where = f"column {mark.column + 1}"
        if e.context and e.context_mark and e.context_mark.line != mark.line:
            where += f"; {e.context} that starts on line {e.context_mark.line + 1}"
        raise _Invalid(f"line {mark.line + 1}", f"malformed YAML: {problem} ({where})") from None
    except yaml.YAMLError as e:
        raise _Invalid("", f"malformed YAML: {e}") from None
    except RecursionError:
        raise _Invalid("", "malformed YAML: nested too deeply") from None


def load_yaml(text: str, source: str) -> Any:
    """The YAML tree of a scenario or config file, numbers read as YAML 1.2 reads them.

    Strict: a duplicate key is an error. Text longer than MAX_FILE_BYTES characters is refused
    before parsing. Raises ScenarioError, one line: `<source>: line N: <reason>`.
    """
    try:
        return _parse_yaml(text)
    except _Invalid as e:
        raise ScenarioError(source, e.path or None, e.reason) from None


# ---------------------------------------------------------------- readers: (value, path) -> value

Reader = Callable[[Any, str], Any]

_BOUNDS = {"ge": (">=", operator.ge), "gt": (">", operator.gt),
           "le": ("<=", operator.le), "lt": ("<", operator.lt)}


def _num(x: float) -> str:
    """A number as the user would write it: 2 not 2.0, -0.2 as is."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(x)


def _describe(v: Any) -> str:
    """How a YAML value reads in a message: `string '60s'`, `boolean true`, `a list of 3`."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"boolean {str(v).lower()}"
    if isinstance(v, (int, float)):
        return f"number {v!r}"
    if isinstance(v, str):
        return f"string {v!r}{_number_hint(v.strip())}"
    if isinstance(v, list):
        return f"a list of {len(v)}"
    if isinstance(v, dict):
        return "a mapping"
    return type(v).__name__


def _number_hint(text: str) -> str:
    """A hint for text that was surely meant as a number: a bare exponent, a unit, a decimal comma."""
    mantissa = r"[-+]?(\d+\.?\d*|\.\d+)"
    if re.fullmatch(mantissa + r"[eE][-+]?", text):
        return " (an exponent needs digits, e.g. 1e-3)"
    if re.fullmatch(mantissa + r"([eE][-+]?\d+)?\s*[^\d\s.,+-].*", text):
        return " (write the number alone: the field's name gives its unit)"
    if re.fullmatch(r"[-+]?\d+,\d+", text):
        return " (write decimals with a dot)"
    return ""


def _bounds_text(bounds: dict[str, float]) -> str:
    lo = next((("[" if k == "ge" else "(", bounds[k]) for k in ("ge", "gt") if k in bounds), None)
    hi = next((("]" if k == "le" else ")", bounds[k]) for k in ("le", "lt") if k in bounds), None)
    if lo and hi:
        return f"in {lo[0]}{_num(lo[1])}, {_num(hi[1])}{hi[0]}"
    key = next(iter(bounds))
    return f"{_BOUNDS[key][0]} {_num(bounds[key])}"


def _number(integer: bool = False, cap: Optional[float] = None, why: str = "", **bounds: float) -> Reader:
    """A number (an int, or a float unless `integer`; never a bool) within bounds ge/gt/le/lt,
    and within `cap` in size (|v| <= cap), a limit of this implementation explained by `why`."""
    kinds = int if integer else (int, float)
    signed = not any(k in bounds and bounds[k] >= 0 for k in ("ge", "gt"))
    cap_text = "" if cap is None else (f"in [{_num(-cap)}, {_num(cap)}]" if signed else f"<= {_num(cap)}")

    def read(v: Any, path: str) -> Any:
        if isinstance(v, bool) or not isinstance(v, kinds):
            raise _Invalid(path, f"must be {'an integer' if integer else 'a number'}, got {_describe(v)}")
        if not math.isfinite(v):
            raise _Invalid(path, f"must be a finite number, got {v}")
        if not all(_BOUNDS[k][1](v, limit) for k, limit in bounds.items()):
            raise _Invalid(path, f"must be {_bounds_text(bounds)}, got {_num(v)}")
        if cap is not None and abs(v) > cap:
            raise _Invalid(path, f"must be {cap_text} ({why}), got {_num(v)}")
        return v if integer else float(v)

    return read


def _text(pattern: Optional[str] = None, pattern_hint: str = "", choices: tuple[str, ...] = ()) -> Reader:
    """A string, optionally matching `pattern` (explained by `pattern_hint`) or one of `choices`."""
    def read(v: Any, path: str) -> str:
        if not isinstance(v, str):
            raise _Invalid(path, f"must be a string, got {_describe(v)}")
        if pattern and not re.fullmatch(pattern, v):
            raise _Invalid(path, f"must match {pattern} ({pattern_hint}), got {v!r}")
        if choices and v not in choices:
            raise _Invalid(path, f"must be one of {', '.join(choices)}, got {v!r}")
        return v

    return read


def _flag(v: Any, path: str) -> bool:
    if not isinstance(v, bool):
        raise _Invalid(path, f"must be true or false, got {_describe(v)}")
    return v


def _vector(n: int, **limits: Any) -> Reader:
    """A list of exactly n numbers, each read by _number(**limits); returned as a tuple of floats."""
    item = _number(**limits)

    def read(v: Any, path: str) -> tuple[float, ...]:
        if not isinstance(v, list) or len(v) != n:
            raise _Invalid(path, f"must be a list of {n} numbers, got {_describe(v)}")
        return tuple(item(x, f"{path}[{i}]") for i, x in enumerate(v))

    return read


def _range(**limits: Any) -> Reader:
    """A uniform draw [lo, hi] with lo <= hi, each read by _number(**limits)."""
    pair = _vector(2, **limits)

    def read(v: Any, path: str) -> tuple[float, float]:
        lo, hi = pair(v, path)
        if lo > hi:
            raise _Invalid(path, f"must be [lo, hi] with lo <= hi, got [{_num(lo)}, {_num(hi)}]")
        return lo, hi

    return read


def _list(item: Reader, most: int, why: str) -> Reader:
    """A list of at most `most` entries (a limit explained by `why`); null reads as empty, so
    every entry may be commented out. The length is checked before any entry is read."""
    def read(v: Any, path: str) -> tuple:
        if v is None:
            return ()
        if not isinstance(v, list):
            raise _Invalid(path, f"must be a list, got {_describe(v)}")
        if len(v) > most:
            raise _Invalid(path, f"must have at most {most} entries ({why}), got {len(v)}")
        return tuple(item(x, f"{path}[{i}]") for i, x in enumerate(v))

    return read


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _fields(build: Callable[..., Any], spec: dict[str, Reader], required: tuple[str, ...] = (),
            one_of: tuple[str, ...] = (), nonempty: bool = False) -> Reader:
    """A mapping whose keys come from `spec`; calls build(**read values) (absent keys are not passed).

    required: keys that must be present; one_of: keys of which exactly one must be present;
    nonempty: at least one key must be present. null reads as an empty mapping.
    """
    def read(v: Any, path: str) -> Any:
        v = {} if v is None else v
        if not isinstance(v, dict):
            raise _Invalid(path, f"must be a mapping, got {_describe(v)}")
        for key in v:
            if key not in spec:
                close = difflib.get_close_matches(str(key), list(spec), n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(spec)}"
                raise _Invalid(_join(path, str(key)), f"unknown field ({hint})")
        missing = [k for k in required if k not in v]
        if missing:
            raise _Invalid(_join(path, missing[0]), "missing required field")
        present = [k for k in one_of if k in v]
        if one_of and len(present) != 1:
            got = " and ".join(present) or "none"
            raise _Invalid(path, f"needs exactly one of {', '.join(one_of)}, got {got}")
        if nonempty and not v:
            raise _Invalid(path, f"must set at least one of {', '.join(spec)}")
        return build(**{k: spec[k](x, _join(path, k)) for k, x in v.items()})

    return read


def _the_one(**kw: Any) -> Any:
    """build for a one_of mapping such as {rect: ...} or {box: ...}: the single read value."""
    return next(iter(kw.values()))


def _make_surface(rect: Optional[Rect] = None, circle: Optional[Circle] = None, name: str = "",
                  friction: float = 1.0, **kw: Any) -> Surface:
    # friction defaults to the ground's own 1.0, so a zone may set only drag (mud on firm soil)
    return Surface(name=name, shape=rect or circle, friction=friction, **kw)


def _make_scenario(obstacles: tuple = ((), None), **kw: Any) -> Scenario:
    fixed, random = obstacles
    return Scenario(obstacles=fixed, random_obstacles=random, **kw)


# ---------------------------------------------------------------- the format, level by level

# Each limit of envs/scenarios/limits.py with the reason a message gives for it.
_WHY_LENGTH = f"no length or coordinate in a scenario exceeds the largest arena side, {_num(MAX_LENGTH_M)} m"
_length = _number(gt=0, cap=MAX_LENGTH_M, why=_WHY_LENGTH)
_clearance = _number(ge=0, cap=MAX_LENGTH_M, why=_WHY_LENGTH)
_xy = _vector(2, cap=MAX_LENGTH_M, why=_WHY_LENGTH)
_any = _number()
_gain = _number(ge=0, le=MOTOR_GAIN_MAX)
_payload = _number(ge=0, cap=MAX_PAYLOAD_KG, why="the Husky's rated payload, kg")
_friction = _number(ge=0, cap=MAX_FRICTION, why="tyre rubber on real ground stays below about 1.2")
_friction_scale = _number(ge=0, cap=MAX_FRICTION_SCALE, why="it multiplies a friction bounded by 2")
_noise = _number(ge=0, cap=MAX_NOISE_SD, why="a standard deviation of 1 already drowns what the sensor measures")
_time = _number(ge=0, cap=MAX_TIME_LIMIT_S, why="the longest episode, 10 simulated minutes")

_rect = _fields(Rect, {"center": _xy, "size": _vector(2, gt=0, cap=MAX_LENGTH_M, why=_WHY_LENGTH),
                       "yaw_deg": _any}, required=("center", "size"))
_circle = _fields(Circle, {"center": _xy, "radius_m": _length}, required=("center", "radius_m"))
_shape = _fields(_the_one, {"rect": _rect, "circle": _circle}, one_of=("rect", "circle"))

_hill = _fields(Hill, {"center": _xy, "radius_m": _length,
                       "height_m": _number(cap=MAX_HILL_HEIGHT_M,
                                           why="hills are ground to drive over; higher ones are walls")},
                required=("center", "radius_m", "height_m"))
_arena = _fields(Arena, {
    "size_m": _vector(2, gt=0, cap=MAX_ARENA_SIDE_M, why="the largest arena: the cost of every reset grows with its area"),
    "walls": _flag,
    "roughness_m": _number(ge=0, cap=MAX_ROUGHNESS_M, why="higher bumps every 0.6 m are walls, not rough ground"),
    "hills": _list(_hill, MAX_HILLS, "each one is summed over the whole heightfield at every reset"),
}, required=("size_m",))
_pose = _fields(Pose, {"x": _any, "y": _any, "yaw_deg": _any}, required=("x", "y"))
_robot = _fields(RobotSpec, {"start": _pose, "payload_kg": _payload}, required=("start",))
_goal = _fields(Goal, {"x": _any, "y": _any, "radius_m": _length}, required=("x", "y"))

_surface = _fields(_make_surface, {"name": _text(), "rect": _rect, "circle": _circle,
                                   "friction": _friction, "drag": _number(ge=0, lt=1)},
                   one_of=("rect", "circle"))

_box = _fields(BoxObstacle, {"center": _xy, "size": _vector(3, gt=0, cap=MAX_LENGTH_M, why=_WHY_LENGTH),
                             "yaw_deg": _any}, required=("center", "size"))
_cylinder = _fields(CylinderObstacle, {"center": _xy, "radius_m": _length, "height_m": _length},
                    required=("center", "radius_m"))
_WHY_OBSTACLES = f"at most {MAX_OBSTACLES} obstacles: each is a body and a pass over the maps at every reset"
_random = _fields(RandomObstacles, {"count": _number(integer=True, ge=0, cap=MAX_OBSTACLES, why=_WHY_OBSTACLES),
                                    "min_size_m": _length, "max_size_m": _length, "keep_clear_m": _clearance},
                  required=("count", "min_size_m", "max_size_m"))
_obstacle = _fields(_the_one, {"box": _box, "cylinder": _cylinder, "random": _random},
                    one_of=("box", "cylinder", "random"))


def _obstacles(v: Any, path: str) -> tuple[tuple, Optional[RandomObstacles]]:
    """`obstacles:` -> (fixed obstacles, RandomObstacles or None).

    SCENARIOS.md draws `random:` as a key next to the `- ...` items of the list, which is not
    valid YAML (a block list cannot also hold a mapping key). We read the evident intent as
    one list item `- random: {count: 6, min_size_m: 0.3, ...}`; at most one such item.
    """
    items = _list(_obstacle, MAX_OBSTACLES, _WHY_OBSTACLES)(v, path)
    randoms = [i for i, o in enumerate(items) if isinstance(o, RandomObstacles)]
    if len(randoms) > 1:
        raise _Invalid(f"{path}[{randoms[1]}].random", "only one random entry is allowed")
    if not randoms:
        return items, None
    i = randoms[0]
    spec = dataclasses.replace(items[i], list_index=i)
    if spec.min_size_m > spec.max_size_m:
        raise _Invalid(f"{path}[{i}].random.max_size_m",
                       f"must be >= min_size_m ({_num(spec.min_size_m)}), got {_num(spec.max_size_m)}")
    fixed = items[:i] + items[i + 1:]
    if len(fixed) + spec.count > MAX_OBSTACLES:
        raise _Invalid(f"{path}[{i}].random.count", f"{len(fixed)} fixed obstacles and {spec.count} random ones "
                                                    f"are more than {MAX_OBSTACLES} ({_WHY_OBSTACLES})")
    return fixed, spec


_event_set = _fields(EventSet, {
    "motor_gain": _fields(MotorGain, {"left": _gain, "right": _gain}, nonempty=True),
    "payload_kg": _payload,
    "friction_scale": _friction_scale,
}, nonempty=True)
_event = _fields(Event, {"at_time_s": _number(ge=0), "at_distance_m": _number(ge=0), "on_enter": _shape,
                         "set": _event_set},
                 required=("set",), one_of=("at_time_s", "at_distance_m", "on_enter"))

_randomize = _fields(Randomize, {
    "start": _fields(StartRandomize, {"x": _range(), "y": _range(), "yaw_deg": _range()}),
    "goal": _fields(GoalRandomize, {"x": _range(), "y": _range()}),
    "friction_scale": _range(ge=0, cap=MAX_FRICTION_SCALE, why="it multiplies a friction bounded by 2"),
    "payload_kg": _range(ge=0, cap=MAX_PAYLOAD_KG, why="the Husky's rated payload, kg"),
    "motor_gain": _fields(MotorGainRandomize, {"left": _range(ge=0, le=MOTOR_GAIN_MAX),
                                               "right": _range(ge=0, le=MOTOR_GAIN_MAX)}),
    "event_time_jitter_s": _time,
})
_sensors = _fields(Sensors, {"noise": _fields(SensorNoise, {"lidar_m": _noise, "imu": _noise, "odometry": _noise})})

_scenario = _fields(_make_scenario, {
    "version": _number(integer=True),
    "name": _text(pattern=r"[a-z0-9-]+", pattern_hint="lowercase letters, digits, '-'"),
    "description": _text(),
    "split": _text(choices=("train", "eval")),
    "time_limit_s": _number(gt=0, cap=MAX_TIME_LIMIT_S, why="the longest episode, 10 simulated minutes"),
    "arena": _arena,
    "robot": _robot,
    "goal": _goal,
    "surfaces": _list(_surface, MAX_SURFACES, "each one is a pass over the friction maps at every reset"),
    "obstacles": _obstacles,
    "events": _list(_event, MAX_EVENTS, "every one is checked at every control step"),
    "randomize": _randomize,
    "sensors": _sensors,
}, required=("version", "name", "arena", "robot", "goal"))


# ---------------------------------------------------------------- checks across fields

def _rect_gap(a: tuple, b: tuple) -> float:
    """Distance in metres between two rotated rectangles (cx, cy, half_x, half_y, yaw_deg).

    Half sizes may be 0 (a point or a segment). 0 when they overlap (separating-axis test);
    otherwise the nearest vertex-to-rectangle distance, exact for convex shapes.
    """
    def corners(r: tuple) -> list[tuple[float, float]]:
        cx, cy, hx, hy, yaw = r
        c, s = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
        return [(cx + c * u - s * v, cy + s * u + c * v) for u in (-hx, hx) for v in (-hy, hy)]

    def point_gap(p: tuple[float, float], r: tuple) -> float:
        cx, cy, hx, hy, yaw = r
        c, s = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
        dx, dy = p[0] - cx, p[1] - cy
        u, v = c * dx + s * dy, -s * dx + c * dy
        return math.hypot(max(abs(u) - hx, 0.0), max(abs(v) - hy, 0.0))

    ca, cb = corners(a), corners(b)
    for yaw in (a[4], a[4] + 90, b[4], b[4] + 90):
        n = (math.cos(math.radians(yaw)), math.sin(math.radians(yaw)))
        pa = [n[0] * x + n[1] * y for x, y in ca]
        pb = [n[0] * x + n[1] * y for x, y in cb]
        if max(pa) < min(pb) or max(pb) < min(pa):
            return min(min(point_gap(p, b) for p in ca), min(point_gap(p, a) for p in cb))
    return 0.0


def _obstacle_gap(region: tuple, ob: Any) -> float:
    """Clearance in metres between a rectangle region and an obstacle's footprint."""
    if isinstance(ob, BoxObstacle):
        return _rect_gap(region, (*ob.center, ob.size[0] / 2, ob.size[1] / 2, ob.yaw_deg))
    return max(0.0, _rect_gap(region, (*ob.center, 0.0, 0.0, 0.0)) - ob.radius_m)


def _check_events(sc: Scenario) -> None:
    for i, ev in enumerate(sc.events):
        if ev.at_time_s is not None and ev.at_time_s >= sc.time_limit_s:
            raise _Invalid(f"events[{i}].at_time_s",
                           f"must be < time_limit_s ({_num(sc.time_limit_s)}), got {_num(ev.at_time_s)}")


def _check_limits(sc: Scenario) -> None:
    """Limits that span fields: the largest payload drawn, random boxes that fit the arena."""
    if sc.randomize.payload_kg is not None:
        most = sc.robot.payload_kg + sc.randomize.payload_kg[1]
        if most > MAX_PAYLOAD_KG:
            raise _Invalid("randomize.payload_kg", f"robot.payload_kg ({_num(sc.robot.payload_kg)}) plus up to "
                                                   f"{_num(sc.randomize.payload_kg[1])} drawn is {_num(most)}, more than "
                                                   f"{_num(MAX_PAYLOAD_KG)} (the Husky's rated payload, kg)")
    spec = sc.random_obstacles
    if spec is not None:
        fits = min(sc.arena.size_m) / math.sqrt(2)
        if spec.max_size_m > fits:
            raise _Invalid(f"obstacles[{spec.list_index}].random.max_size_m",
                           f"must be <= {fits:.2f} so that a box fits inside the arena turned any way "
                           f"(its shorter side / sqrt 2), got {_num(spec.max_size_m)}")


def _places(sc: Scenario) -> list[tuple[str, str, Range, Range, float]]:
    """Where the robot may start and the goal may lie: (field path, "start"|"goal", x span, y span,
    margin from the arena edge). A fixed pose is a span of zero width; randomize ranges add spans."""
    start, goal, rnd = sc.robot.start, sc.goal, sc.randomize
    goal_margin = max(ROBOT_HALF_FOOTPRINT_M, goal.radius_m)  # the whole goal circle lies in the arena
    places = [("robot.start", "start", (start.x, start.x), (start.y, start.y), ROBOT_HALF_FOOTPRINT_M),
              ("goal", "goal", (goal.x, goal.x), (goal.y, goal.y), goal_margin)]
    if rnd.start.x or rnd.start.y:
        places.append(("randomize.start", "start", rnd.start.x or (start.x, start.x),
                       rnd.start.y or (start.y, start.y), ROBOT_HALF_FOOTPRINT_M))
    if rnd.goal.x or rnd.goal.y:
        places.append(("randomize.goal", "goal", rnd.goal.x or (goal.x, goal.x),
                       rnd.goal.y or (goal.y, goal.y), goal_margin))
    return places


def _check_placement(sc: Scenario) -> None:
    """Start and goal (and their randomize ranges) inside the arena and clear of fixed obstacles."""
    m = ROBOT_HALF_FOOTPRINT_M
    for path, what, xs, ys, margin in _places(sc):
        is_range = path.startswith("randomize.")
        for axis, (lo, hi), size in (("x", xs, sc.arena.size_m[0]), ("y", ys, sc.arena.size_m[1])):
            inner = size / 2 - margin
            if lo < -inner or hi > inner:
                got = f"[{_num(lo)}, {_num(hi)}] reaches" if is_range else f"{_num(lo)} is"
                why = f"{_num(margin)} m" + (" (its radius_m)" if margin > m else "")
                raise _Invalid(f"{path}.{axis}",
                               f"{got} outside the arena: the {what} must be at least {why} inside the edge, "
                               f"i.e. {axis} in [{_num(-inner)}, {_num(inner)}]")
        region = ((xs[0] + xs[1]) / 2, (ys[0] + ys[1]) / 2, (xs[1] - xs[0]) / 2, (ys[1] - ys[0]) / 2, 0.0)
        for i, ob in enumerate(sc.obstacles):
            gap = _obstacle_gap(region, ob)
            if gap < m:
                where = (f"x in [{_num(xs[0])}, {_num(xs[1])}], y in [{_num(ys[0])}, {_num(ys[1])}]" if is_range
                         else f"({_num(xs[0])}, {_num(ys[0])})")
                rel = ("overlaps" if is_range else "is inside") if gap == 0 else f"is {gap:.2f} m from"
                kind = "box" if isinstance(ob, BoxObstacle) else "cylinder"
                raise _Invalid(path, f"{where} {rel} obstacles[{i}] ({kind} at ({_num(ob.center[0])}, "
                                     f"{_num(ob.center[1])})); the {what} must keep {_num(m)} m clear")


# ---------------------------------------------------------------- entry points

def from_dict(data: Any, source: str = "<scenario>") -> Scenario:
    """Validate an already-parsed YAML tree; `source` names the file in messages."""
    try:
        if data is None:
            raise _Invalid("", "the file is empty")
        if not isinstance(data, dict):
            raise _Invalid("", f"must be a mapping of fields at the top level, got {_describe(data)}")
        # The version comes first: a newer file may use fields this reader does not know.
        if "version" not in data:
            raise _Invalid("version", "missing required field")
        version = _number(integer=True)(data["version"], "version")
        if version != FORMAT_VERSION:
            raise _Invalid("version", f"unsupported version {version} (this navctl reads version {FORMAT_VERSION})")
        sc = _scenario(data, "")
        _check_limits(sc)
        _check_events(sc)
        _check_placement(sc)
    except _Invalid as e:
        raise ScenarioError(source, e.path or None, e.reason) from None
    return dataclasses.replace(sc, source=source)


def parse(text: str, source: str = "<scenario>") -> Scenario:
    """Parse and validate scenario YAML text; `source` names the file in messages."""
    return from_dict(load_yaml(text, source), source)


# The readers, public for the project's other YAML files (navctl's training config) so that
# they are checked, and their errors worded, the same way.
Invalid, fields, number, text, flag, list_of = _Invalid, _fields, _number, _text, _flag, _list
