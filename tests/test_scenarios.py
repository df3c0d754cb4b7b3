"""Scenario files: the built-in suite, and every bad-input case of SCENARIOS.md (no simulation)."""
from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest

from envs import scenarios
from envs.scenarios import ScenarioError, load, names
from envs.scenarios.model import BoxObstacle, CylinderObstacle, Rect

# The example of SCENARIOS.md, with `random:` written as a list item (the only valid YAML reading).
EXAMPLE = """\
version: 1
name: ice-crossing
description: Cross a frozen strip to a goal 16 m away.
split: eval
time_limit_s: 60

arena:
  size_m: [20, 20]
  walls: true
  roughness_m: 0.02
  hills:
    - {center: [0, 3], radius_m: 3, height_m: 0.8}

robot:
  start: {x: -8, y: 0, yaw_deg: 0}
  payload_kg: 0

goal: {x: 8, y: 0, radius_m: 0.5}

surfaces:
  - {name: ice, rect: {center: [0, 0], size: [4, 20], yaw_deg: 0}, friction: 0.08}
  - {name: mud, circle: {center: [4, 4], radius_m: 2}, friction: 0.5, drag: 0.3}

obstacles:
  - {box: {center: [3, -1], size: [1, 1, 1], yaw_deg: 30}}
  - {cylinder: {center: [5, 2], radius_m: 0.3, height_m: 1}}
  - random: {count: 6, min_size_m: 0.3, max_size_m: 1.2, keep_clear_m: 1.5}

events:
  - {at_time_s: 12, set: {motor_gain: {left: 0.4}}}
  - {at_distance_m: 6, set: {payload_kg: 30}}
  - {on_enter: {circle: {center: [0, 0], radius_m: 2}}, set: {friction_scale: 0.5}}

randomize:
  start: {x: [-9, -7], y: [-3, 3], yaw_deg: [-45, 45]}
  goal: {x: [7, 9], y: [-3, 3]}
  friction_scale: [0.8, 1.2]
  payload_kg: [0, 10]
  motor_gain: {left: [0.9, 1.0], right: [0.9, 1.0]}
  event_time_jitter_s: 2

sensors:
  noise: {lidar_m: 0.02, imu: 0.01, odometry: 0.02}
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "ice.yaml"
    path.write_text(text)
    return str(path)


def edited(*pairs: str) -> str:
    """EXAMPLE with each (old, new) pair replaced once; old must occur."""
    text = EXAMPLE
    for old, new in zip(pairs[::2], pairs[1::2]):
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


# ---------------------------------------------------------------- the built-in suite

def test_names_and_splits() -> None:
    everything = names()
    train, held_out = names(split="train"), names(split="eval")
    assert everything == sorted(everything) and len(everything) >= 14
    assert train and held_out and not set(train) & set(held_out)
    assert sorted(train + held_out) == everything
    with pytest.raises(ValueError):
        names(split="test")


@pytest.mark.parametrize("name", names())
def test_builtin_loads_and_fits_the_suite(name: str) -> None:
    sc = load(name)
    assert sc.name == name and sc.source == f"{name}.yaml" and sc.split in ("train", "eval")
    assert sc.description and 45 <= sc.time_limit_s <= 60
    assert -8 <= sc.robot.start.x <= -6 and 6 <= sc.goal.x <= 8  # ~14 m: 15-40 s at ~1 m/s
    assert sc.arena.roughness_m <= 0.04
    assert all(abs(h.height_m) <= 1.0 and h.radius_m >= 3 for h in sc.arena.hills)
    if sc.random_obstacles:
        assert sc.random_obstacles.count <= 8 and sc.random_obstacles.keep_clear_m >= 1.5
    r = sc.randomize
    assert r.start.y and r.goal.y and r.friction_scale and r.payload_kg
    assert r.motor_gain.left and r.motor_gain.right and r.event_time_jitter_s > 0
    assert (sc.sensors.noise.lidar_m, sc.sensors.noise.imu, sc.sensors.noise.odometry) == (0.02, 0.01, 0.02)


@pytest.mark.parametrize("split", ["train", "eval"])
def test_each_split_has_mid_episode_changes(split: str) -> None:
    changing = [n for n in names(split=split) if load(n).events]
    assert len(changing) >= 3, changing


def test_contract_example_reads_every_field(tmp_path: Path) -> None:
    sc = load(write(tmp_path, EXAMPLE))
    assert sc.arena.size_m == (20.0, 20.0) and sc.arena.walls and sc.arena.hills[0].height_m == 0.8
    assert sc.surfaces[0].name == "ice" and isinstance(sc.surfaces[0].shape, Rect)
    assert sc.surfaces[1].drag == 0.3 and sc.surfaces[1].shape.radius_m == 2
    assert isinstance(sc.obstacles[0], BoxObstacle) and isinstance(sc.obstacles[1], CylinderObstacle)
    assert sc.random_obstacles.count == 6 and sc.random_obstacles.keep_clear_m == 1.5
    assert [e.trigger for e in sc.events] == ["at_time_s", "at_distance_m", "on_enter"]
    assert sc.events[0].set.motor_gain.left == 0.4 and sc.events[0].set.motor_gain.right is None
    assert sc.randomize.start.yaw_deg == (-45.0, 45.0) and sc.randomize.event_time_jitter_s == 2
    assert sc.sensors.noise.imu == 0.01


def test_defaults_for_optional_fields(tmp_path: Path) -> None:
    sc = load(write(tmp_path, "version: 1\nname: bare\narena: {size_m: [10, 10]}\n"
                              "robot: {start: {x: -3, y: 0}}\ngoal: {x: 3, y: 0}\n"))
    assert sc.split is None and sc.time_limit_s == 60 and sc.arena.walls and sc.goal.radius_m == 0.5
    assert sc.surfaces == () and sc.obstacles == () and sc.random_obstacles is None and sc.events == ()
    sc = load(write(tmp_path, EXAMPLE.replace(", friction: 0.5, drag: 0.3", ", drag: 0.3")))
    assert (sc.surfaces[1].friction, sc.surfaces[1].drag) == (1.0, 0.3)


def test_load_by_path_keeps_the_path_as_given(tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLE)
    assert load(Path(path)).source == path


def test_unknown_name_lists_the_builtins() -> None:
    with pytest.raises(ScenarioError) as e:
        load("ice-strp")
    msg = str(e.value)
    assert msg.startswith("ice-strp: not a built-in scenario or an existing file (did you mean 'ice-strip'? ")
    assert all(n in msg for n in names())


def test_error_is_a_picklable_value_error() -> None:
    err = pickle.loads(pickle.dumps(ScenarioError("ice.yaml", "goal.x", "bad")))
    assert isinstance(err, ValueError) and str(err) == "ice.yaml: goal.x: bad" and err.field == "goal.x"


# ---------------------------------------------------------------- bad input: (edit, field, reason)

OUTSIDE_X = "outside the arena: the {} must be at least 0.6 m inside the edge, i.e. x in [-9.4, 9.4]"

BAD = {
    "unknown-field-suggests": (
        ("size: [1, 1, 1]", "sise: [1, 1, 1]"),
        "obstacles[0].box.sise", "unknown field (did you mean 'size'?)"),
    "unknown-field-lists": (
        ("split: eval", "split: eval\ncolour: red"),
        "colour", "unknown field (expected one of: version, name, description, split, time_limit_s, "
                  "arena, robot, goal, surfaces, obstacles, events, randomize, sensors)"),
    "wrong-type-string": (
        ("time_limit_s: 60", "time_limit_s: sixty"),
        "time_limit_s", "must be a number, got string 'sixty'"),
    "wrong-type-bool": (
        ("radius_m: 0.5}", "radius_m: true}"),
        "goal.radius_m", "must be a number, got boolean true"),
    "wrong-type-vector": (
        ("size_m: [20, 20]", "size_m: 20"),
        "arena.size_m", "must be a list of 2 numbers, got number 20"),
    "wrong-type-mapping": (
        ("goal: {x: 8, y: 0, radius_m: 0.5}", "goal: [8, 0]"),
        "goal", "must be a mapping, got a list of 2"),
    "missing-version": (("version: 1\n", ""), "version", "missing required field"),
    "missing-name": (("name: ice-crossing\n", ""), "name", "missing required field"),
    "missing-arena-size": (("  size_m: [20, 20]\n", ""), "arena.size_m", "missing required field"),
    "missing-start": (("  start: {x: -8, y: 0, yaw_deg: 0}\n", ""), "robot.start", "missing required field"),
    "missing-goal": (("goal: {x: 8, y: 0, radius_m: 0.5}\n", ""), "goal", "missing required field"),
    "negative-size": (
        ("size: [4, 20]", "size: [4, -20]"),
        "surfaces[0].rect.size[1]", "must be > 0, got -20"),
    "zero-radius": (
        ("radius_m: 0.3", "radius_m: 0"),
        "obstacles[1].cylinder.radius_m", "must be > 0, got 0"),
    "negative-friction": (
        ("friction: 0.5", "friction: -0.2"),
        "surfaces[1].friction", "must be >= 0, got -0.2"),
    "drag-not-below-one": (
        ("drag: 0.3", "drag: 1.0"),
        "surfaces[1].drag", "must be in [0, 1), got 1"),
    "surface-two-shapes": (
        ("friction: 0.08", "circle: {center: [0, 0], radius_m: 1}, friction: 0.08"),
        "surfaces[0]", "needs exactly one of rect, circle, got rect and circle"),
    "start-outside-arena": (
        ("start: {x: -8", "start: {x: -12"),
        "robot.start.x", "-12 is " + OUTSIDE_X.format("start")),
    "start-too-near-wall": (
        ("start: {x: -8", "start: {x: -9.6"),
        "robot.start.x", "-9.6 is " + OUTSIDE_X.format("start")),
    "goal-outside-arena": (
        ("goal: {x: 8", "goal: {x: 10.5"),
        "goal.x", "10.5 is " + OUTSIDE_X.format("goal")),
    "goal-circle-crosses-edge": (
        ("radius_m: 0.5}", "radius_m: 2.5}"),
        "goal.x", "8 is outside the arena: the goal must be at least 2.5 m (its radius_m) inside the edge, "
                  "i.e. x in [-7.5, 7.5]"),
    "randomized-start-outside-arena": (
        ("x: [-9, -7]", "x: [-9.8, -7]"),
        "randomize.start.x", "[-9.8, -7] reaches " + OUTSIDE_X.format("start")),
    "start-inside-obstacle": (
        ("center: [3, -1], size", "center: [-8, 0.2], size"),
        "robot.start", "(-8, 0) is inside obstacles[0] (box at (-8, 0.2)); the start must keep 0.6 m clear"),
    "start-near-obstacle": (
        ("center: [5, 2], radius_m: 0.3", "center: [-8, 0.8], radius_m: 0.3"),
        "robot.start", "(-8, 0) is 0.50 m from obstacles[1] (cylinder at (-8, 0.8)); the start must keep 0.6 m clear"),
    "goal-inside-obstacle": (
        ("center: [5, 2], radius_m: 0.3", "center: [8, 0], radius_m: 0.3"),
        "goal", "(8, 0) is inside obstacles[1] (cylinder at (8, 0)); the goal must keep 0.6 m clear"),
    "randomized-goal-overlaps-obstacle": (
        ("center: [3, -1], size", "center: [8, 2.5], size"),
        "randomize.goal", "x in [7, 9], y in [-3, 3] overlaps obstacles[0] (box at (8, 2.5)); "
                          "the goal must keep 0.6 m clear"),
    "unknown-version": (
        ("version: 1", "version: 2"),
        "version", "unsupported version 2 (this navctl reads version 1)"),
    "bad-name": (
        ("name: ice-crossing", "name: Ice_Crossing"),
        "name", "must match [a-z0-9-]+ (lowercase letters, digits, '-'), got 'Ice_Crossing'"),
    "bad-split": (("split: eval", "split: test"), "split", "must be one of train, eval, got 'test'"),
    "event-two-triggers": (
        ("{at_distance_m: 6,", "{at_distance_m: 6, at_time_s: 3,"),
        "events[1]", "needs exactly one of at_time_s, at_distance_m, on_enter, got at_time_s and at_distance_m"),
    "event-no-trigger": (
        ("{at_time_s: 12, set", "{set"),
        "events[0]", "needs exactly one of at_time_s, at_distance_m, on_enter, got none"),
    "event-empty-set": (
        ("set: {payload_kg: 30}", "set: {}"),
        "events[1].set", "must set at least one of motor_gain, payload_kg, friction_scale"),
    "event-gain-out-of-range": (
        ("motor_gain: {left: 0.4}", "motor_gain: {left: 1.6}"),
        "events[0].set.motor_gain.left", "must be in [0, 1.5], got 1.6"),
    "event-after-time-limit": (
        ("at_time_s: 12", "at_time_s: 75"),
        "events[0].at_time_s", "must be < time_limit_s (60), got 75"),
    "randomize-range-reversed": (
        ("payload_kg: [0, 10]", "payload_kg: [10, 0]"),
        "randomize.payload_kg", "must be [lo, hi] with lo <= hi, got [10, 0]"),
    "two-random-entries": (
        ("  - random:", "  - random: {count: 1, min_size_m: 1, max_size_m: 1}\n  - random:"),
        "obstacles[3].random", "only one random entry is allowed"),
    "duplicate-key": (
        ("time_limit_s: 60", "time_limit_s: 60\ntime_limit_s: 30"),
        "line 6", "duplicate key 'time_limit_s'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input(case: str, tmp_path: Path) -> None:
    (old, new), field, reason = BAD[case]
    path = write(tmp_path, edited(old, new))
    with pytest.raises(ScenarioError) as e:
        load(path)
    assert str(e.value) == f"{path}: {field}: {reason}"
    assert (e.value.file, e.value.field, e.value.reason) == (path, field, reason)


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    line = EXAMPLE.splitlines().index("goal: {x: 8, y: 0, radius_m: 0.5}") + 1
    path = write(tmp_path, edited("goal: {x: 8, y: 0, radius_m: 0.5}", "goal: x: 8"))
    with pytest.raises(ScenarioError) as e:
        load(path)
    assert str(e.value) == f"{path}: line {line}: malformed YAML: mapping values are not allowed here (column 8)"


def test_random_as_a_sibling_key_is_malformed_yaml(tmp_path: Path) -> None:
    # SCENARIOS.md draws `random:` next to the list items; YAML cannot read that, so we say where.
    line = EXAMPLE.splitlines().index("  - random: {count: 6, min_size_m: 0.3, max_size_m: 1.2, keep_clear_m: 1.5}") + 1
    path = write(tmp_path, edited("  - random:", "  random:"))
    with pytest.raises(ScenarioError, match=rf"^{re.escape(path)}: line {line}: malformed YAML: "):
        load(path)


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    with pytest.raises(ScenarioError, match=rf"^{re.escape(path)}: the file is empty$"):
        load(path)


def test_error_messages_are_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, edited("description: Cross", "description: [1,\n\n  2}\nCross"))
    with pytest.raises(ScenarioError) as e:
        load(path)
    assert "\n" not in str(e.value)
    assert scenarios.ScenarioError is ScenarioError
