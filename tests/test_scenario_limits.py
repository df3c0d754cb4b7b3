"""Hostile scenario input: the stated limits, YAML 1.2 numbers in every YAML file we read."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from envs.scenarios import ScenarioError, from_dict, limits, load, load_yaml, names, parse
from navctl import gate
from navctl.errors import UsageError
from tests.test_scenarios import EXAMPLE, edited, write

WHY_LENGTH = "no length or coordinate in a scenario exceeds the largest arena side, 50 m"

# (edit of EXAMPLE, field, reason): each is one line and raised before any simulation
OVER_LIMIT = {
    "huge-arena": (
        ("size_m: [20, 20]", "size_m: [100000, 100000]"),
        "arena.size_m[0]", "must be <= 50 (the largest arena: the cost of every reset grows with its area), got 100000"),
    "many-random-obstacles": (
        ("count: 6", "count: 100000"),
        "obstacles[2].random.count",
        "must be <= 200 (at most 200 obstacles: each is a body and a pass over the maps at every reset), got 100000"),
    "fixed-plus-random-obstacles": (
        ("count: 6", "count: 199"),
        "obstacles[2].random.count",
        "2 fixed obstacles and 199 random ones are more than 200 (at most 200 obstacles: each is a body and a pass "
        "over the maps at every reset)"),
    "huge-payload": (
        ("payload_kg: 0\n", "payload_kg: 1.0e+9\n"),
        "robot.payload_kg", "must be <= 75 (the Husky's rated payload, kg), got 1000000000"),
    "payload-plus-randomized": (
        ("payload_kg: 0\n", "payload_kg: 70\n"),
        "randomize.payload_kg",
        "robot.payload_kg (70) plus up to 10 drawn is 80, more than 75 (the Husky's rated payload, kg)"),
    "event-payload": (
        ("set: {payload_kg: 30}", "set: {payload_kg: 1e4}"),
        "events[1].set.payload_kg", "must be <= 75 (the Husky's rated payload, kg), got 10000"),
    "tall-hill": (
        ("height_m: 0.8}", "height_m: 1e6}"),
        "arena.hills[0].height_m", "must be in [-5, 5] (hills are ground to drive over; higher ones are walls), "
                                   "got 1000000"),
    "deep-hollow": (
        ("height_m: 0.8}", "height_m: -6}"),
        "arena.hills[0].height_m", "must be in [-5, 5] (hills are ground to drive over; higher ones are walls), got -6"),
    "rough": (
        ("roughness_m: 0.02", "roughness_m: 0.5"),
        "arena.roughness_m", "must be <= 0.2 (higher bumps every 0.6 m are walls, not rough ground), got 0.5"),
    "friction": (
        ("friction: 0.08", "friction: 8"),
        "surfaces[0].friction", "must be <= 2 (tyre rubber on real ground stays below about 1.2), got 8"),
    "friction-scale": (
        ("friction_scale: [0.8, 1.2]", "friction_scale: [0.8, 3]"),
        "randomize.friction_scale[1]", "must be <= 2 (it multiplies a friction bounded by 2), got 3"),
    "noise": (
        ("lidar_m: 0.02", "lidar_m: 2.5"),
        "sensors.noise.lidar_m", "must be <= 1 (a standard deviation of 1 already drowns what the sensor measures), "
                                 "got 2.5"),
    "time-limit": (
        ("time_limit_s: 60", "time_limit_s: 1e5"),
        "time_limit_s", "must be <= 600 (the longest episode, 10 simulated minutes), got 100000"),
    "far-obstacle": (
        ("center: [3, -1]", "center: [3, -1e9]"),
        "obstacles[0].box.center[1]", f"must be in [-50, 50] ({WHY_LENGTH}), got -1000000000"),
    "huge-obstacle": (
        ("size: [1, 1, 1]", "size: [1, 1, 1e3]"),
        "obstacles[0].box.size[2]", f"must be <= 50 ({WHY_LENGTH}), got 1000"),
    "random-box-wider-than-arena": (
        ("max_size_m: 1.2", "max_size_m: 15"),
        "obstacles[2].random.max_size_m",
        "must be <= 14.14 so that a box fits inside the arena turned any way (its shorter side / sqrt 2), got 15"),
}


@pytest.mark.parametrize("case", list(OVER_LIMIT))
def test_over_a_limit_is_one_line_naming_field_and_reason(case: str, tmp_path: Path) -> None:
    (old, new), field, reason = OVER_LIMIT[case]
    path = write(tmp_path, edited(old, new))
    with pytest.raises(ScenarioError) as e:
        load(path)
    assert str(e.value) == f"{path}: {field}: {reason}"


def test_long_lists_are_refused_before_their_entries_are_read(tmp_path: Path) -> None:
    hills = "\n".join("    - {center: [0, 0], radius_m: 3, height_m: wrong}" for _ in range(51))
    path = write(tmp_path, edited("    - {center: [0, 3], radius_m: 3, height_m: 0.8}", hills))
    with pytest.raises(ScenarioError) as e:
        load(path)
    assert str(e.value) == (f"{path}: arena.hills: must have at most 50 entries "
                            "(each one is summed over the whole heightfield at every reset), got 51")


def test_a_50_mb_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with open(path, "wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse: 50 MB of NUL bytes, which YAML would choke on if read
    with pytest.raises(ScenarioError) as e:
        load(path)
    assert str(e.value) == (f"{path}: the file is 52428800 bytes, over the limit of 32768 (32 KiB) "
                            "that keeps reading it under a second")
    with pytest.raises(ScenarioError, match=r"^text.yaml: the file is 40000 characters, over the limit"):
        parse("#" * 40000, "text.yaml")


def test_deep_nesting_is_malformed_not_a_crash() -> None:
    with pytest.raises(ScenarioError, match=r"^deep.yaml: malformed YAML: nested too deeply$"):
        parse("[" * 5000 + "]" * 5000, "deep.yaml")


def test_every_builtin_and_the_contract_example_are_within_the_limits(tmp_path: Path) -> None:
    for name in names():
        load(name)
    load(write(tmp_path, EXAMPLE))
    assert limits.MAX_ARENA_SIDE_M == 50 and limits.MAX_PAYLOAD_KG == 75 and limits.MAX_FILE_BYTES == 32768
    assert set(limits.__all__) >= {"MAX_OBSTACLES", "MAX_HILL_HEIGHT_M", "MAX_FRICTION", "MAX_NOISE_SD",
                                   "RANDOM_PLACEMENT_TRIES"}


def test_random_placement_gives_up_with_a_scenario_error() -> None:
    from envs.terrain_nav import TerrainNavEnv

    data = {"version": 1, "name": "t", "arena": {"size_m": [20, 20]}, "robot": {"start": {"x": -7, "y": 0}},
            "goal": {"x": 7, "y": 0},
            "obstacles": [{"box": {"center": [0, 5], "size": [1, 1, 1]}},
                          {"random": {"count": 6, "min_size_m": 0.3, "max_size_m": 1, "keep_clear_m": 25}}]}
    env = TerrainNavEnv(from_dict(data, "t.yaml"))
    with pytest.raises(ScenarioError) as e:
        env.reset(seed=0)
    assert str(e.value) == ("t.yaml: obstacles[1].random: cannot place box 1 of 6: 200 random spots in a row were "
                            "within keep_clear_m (25 m) of the start or the goal; lower keep_clear_m or max_size_m, "
                            "or enlarge the arena")
    data["obstacles"][1]["random"]["keep_clear_m"] = 1.5  # the same env works again once it can place them
    env.scenario = from_dict(data, "t.yaml")
    obs, _ = env.reset(seed=0)
    assert np.isfinite(obs).all() and len(env.terrain.obstacles) == 7
    env.close()


# ---------------------------------------------------------------- YAML 1.2 numbers

@pytest.mark.parametrize("text, value", [("1e-3", 1e-3), ("1.0e9", 1e9), ("2E+3", 2e3), (".5", 0.5),
                                         ("-1e-3", -1e-3), ("-.5", -0.5), ("+1e1", 10.0), ("1.", 1.0),
                                         ("1.0e-3", 1e-3), ("60", 60), ("-.inf", -np.inf)])
def test_yaml_12_numbers_load_as_numbers(text: str, value: float) -> None:
    loaded = load_yaml(f"x: {text}\n", "n.yaml")["x"]
    assert loaded == value and type(loaded) is type(value)


@pytest.mark.parametrize("text", ["1e", "e3", "1.2.3", "0x1p3", "1_0e3x", "'1e-3'"])
def test_what_is_not_a_number_stays_text(text: str) -> None:
    assert isinstance(load_yaml(f"x: {text}\n", "n.yaml")["x"], str)


def test_plain_pyyaml_is_left_as_it_was() -> None:
    assert yaml.safe_load("x: 1e-3") == {"x": "1e-3"}  # our reader changes no global table


def test_scenario_fields_take_yaml_12_numbers(tmp_path: Path) -> None:
    sc = load(write(tmp_path, edited("friction: 0.08", "friction: 1e-1", "time_limit_s: 60", "time_limit_s: 3e1",
                                     "payload_kg: 0\n", "payload_kg: 7.5E+1\n", "payload_kg: [0, 10]",
                                     "payload_kg: [0, .0]", "at_time_s: 12", "at_time_s: 1.2e1")))
    assert (sc.surfaces[0].friction, sc.time_limit_s, sc.robot.payload_kg) == (0.1, 30.0, 75.0)
    assert sc.events[0].at_time_s == 12.0 and sc.randomize.payload_kg == (0.0, 0.0)


@pytest.mark.parametrize("text, reason", [
    ("60s", "must be a number, got string '60s' (write the number alone: the field's name gives its unit)"),
    ("1,5", "must be a number, got string '1,5' (write decimals with a dot)"),
    ("1e", "must be a number, got string '1e' (an exponent needs digits, e.g. 1e-3)"),
    ("1.2.3", "must be a number, got string '1.2.3'"),
])
def test_what_is_truly_not_a_number_gets_the_precise_error(text: str, reason: str, tmp_path: Path) -> None:
    path = write(tmp_path, edited("time_limit_s: 60", f"time_limit_s: {text}"))
    with pytest.raises(ScenarioError) as e:
        load(path)
    assert str(e.value) == f"{path}: time_limit_s: {reason}"


def test_an_integer_field_says_a_float_is_not_an_integer(tmp_path: Path) -> None:
    path = write(tmp_path, edited("count: 6", "count: 6e0"))
    with pytest.raises(ScenarioError, match=r"obstacles\[2\]\.random\.count: must be an integer, got number 6\.0$"):
        load(path)


def test_gate_files_take_yaml_12_numbers_and_keep_their_errors(tmp_path: Path) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text("thresholds:\n  - {metric: spl, min: 5e-1}\n  - {metric: errors, max: 0}\n")
    assert [t.min for t in gate.load_gate(path)] == [0.5, None]
    path.write_text("thresholds:\n  - {metric: spl, min: 5e-1}\nthresholds: []\n")
    with pytest.raises(UsageError, match=r"gate.yaml: line 3: duplicate key 'thresholds'$"):
        gate.load_gate(path)
    with pytest.raises(UsageError, match=r"nosuch.yaml: cannot read the file: "):
        gate.load_gate(tmp_path / "nosuch.yaml")


def test_training_configs_take_yaml_12_numbers(tmp_path: Path) -> None:
    from navctl.train_config import load_config

    path = tmp_path / "config.yaml"
    path.write_text("name: tiny\npolicy: {kind: mlp}\nscenarios: {train: [flat], validation: [flat]}\n"
                    "optim: {lr: 3e-3, lr_min: 3E-4, grad_clip: 1e0}\ndagger: {beta_start: .5}\n")
    cfg = load_config(path)
    assert (cfg.optim.lr, cfg.optim.lr_min, cfg.optim.grad_clip) == (3e-3, 3e-4, 1.0)
    assert cfg.dagger.beta_start == 0.5
    path.write_text("name: a\nname: b\n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: line 2: duplicate key 'name'$"):
        load_config(path)
