"""The procedural scenario generator: valid, feasible, deterministic, round-trips, splits, env."""
from __future__ import annotations

import collections
import dataclasses
import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

import envs
from envs import planning
from envs.scenarios import (
    LAYOUTS, PROCEDURAL_SPLITS, ScenarioError, dump, from_dict, generate, load, names, parse, procedural_seed,
)
from envs.scenarios.procedural import hill_slope, turn_gain_floor
from envs.scenarios.model import BoxObstacle, CylinderObstacle, Rect
from envs import terrain
from envs.scenarios import procedural
from envs.terrain import Terrain, hill_heights
from envs.terrain_nav import TerrainNavEnv

CLEARANCE_M = 0.6  # the chassis' half diagonal: room to turn on the spot


def same(a, b) -> bool:
    """Equal scenarios, whatever file they were read from."""
    return dataclasses.replace(a, source="") == dataclasses.replace(b, source="")


def assert_feasible(sc) -> None:
    """Start and goal (points and randomize boxes) free, and joined by a planner path, on the
    env's obstacle map with obstacles inflated by CLEARANCE_M."""
    om = Terrain(sc, sc.obstacles, None, 1.0).maps()["obstacle_map"]
    res, (ox, oy) = om["resolution_m"], om["origin_xy"]
    grid = planning.inflate(om["grid"], CLEARANCE_M, res)
    rz, start, goal = sc.randomize, sc.robot.start, sc.goal
    for xs, ys in ((rz.start.x or (start.x,), rz.start.y or (start.y,)), (rz.goal.x or (goal.x,), rz.goal.y or (goal.y,))):
        for x in np.arange(min(xs), max(xs) + 1e-9, res / 2):
            for y in np.arange(min(ys), max(ys) + 1e-9, res / 2):
                assert not grid[int(round((y - oy) / res)), int(round((x - ox) / res))], f"{sc.name}: ({x}, {y}) blocked"
    path = planning.plan_path(grid, res, (ox, oy), (start.x, start.y), (goal.x, goal.y))
    assert path is not None, f"{sc.name}: no path from start to goal"


def tags(sc) -> set[str]:
    out = {sc.description.split("layout ")[1].split(")")[0]}
    out |= {f"zone:{s.name}:{type(s.shape).__name__}" for s in sc.surfaces}
    out |= {f"trigger:{e.trigger}" for e in sc.events}
    out |= {f"set:{k}" for e in sc.events for k, v in e.set.__dict__.items() if v is not None}
    out |= {f"events:{len(sc.events)}", "hill" if any(h.height_m > 0 for h in sc.arena.hills) else "",
            "hollow" if any(h.height_m < 0 for h in sc.arena.hills) else "",
            "rough" if sc.arena.roughness_m else "", "random:" if sc.random_obstacles else ""}
    return out


@pytest.mark.slow
def test_a_thousand_seeds_are_valid_feasible_within_bounds_and_varied():
    seeds = ([procedural_seed("train", i) for i in range(400)] + [procedural_seed("validation", i) for i in range(300)]
             + [procedural_seed("test", i) for i in range(300)])
    seen = collections.Counter()
    for seed in seeds:
        sc = generate(seed)
        assert sc.name == f"procedural-{seed}"
        back = parse(dump(sc), "dumped.yaml")  # the checks a file gets
        assert same(back, sc), seed
        assert_feasible(sc)
        assert all(12 <= s <= 30 for s in sc.arena.size_m) and len(sc.obstacles) <= 40
        assert max([sc.robot.payload_kg] + [e.set.payload_kg or 0 for e in sc.events]) <= 60
        gains = [g for e in sc.events if e.set.motor_gain for g in (e.set.motor_gain.left, e.set.motor_gain.right)
                 if g is not None]
        assert min(gains, default=1.0) >= 0.25
        rz = sc.randomize
        scales = [rz.friction_scale or (1.0, 1.0)] + [(e.set.friction_scale,) * 2 for e in sc.events
                                                        if e.set.friction_scale is not None]
        zones = [s.friction for s in sc.surfaces] + [1.0]
        assert min(zones) * min(lo for lo, _ in scales) >= 0.05 - 1e-9  # no ice slicker than 0.05
        payload = max([sc.robot.payload_kg + (rz.payload_kg or (0, 0))[1]] + [e.set.payload_kg or 0 for e in sc.events])
        grip = max(zones) * max(hi for _, hi in scales)
        assert min(gains, default=1.0) >= turn_gain_floor(payload, grip) - 1e-9  # a weak side can still turn
        assert len(sc.events) <= 3
        seen.update(tags(sc))
    wanted = set(LAYOUTS) | {f"zone:{k}:{s}" for k in ("black-ice", "slick", "mud", "gravel") for s in ("Rect", "Circle")}
    wanted |= {f"trigger:{t}" for t in ("at_time_s", "at_distance_m", "on_enter")}
    wanted |= {f"set:{k}" for k in ("motor_gain", "friction_scale", "payload_kg")} | {f"events:{n}" for n in range(4)}
    wanted |= {"hill", "hollow", "rough", "random:"}
    assert wanted <= set(seen), f"never drawn: {sorted(wanted - set(seen))}"


def test_generate_is_deterministic_in_process_and_across_processes():
    seeds = [0, 1, 17, 123_456, procedural_seed("test", 5)]
    texts = [dump(generate(s)) for s in seeds]
    assert texts == [dump(generate(s)) for s in seeds]
    assert len(set(texts)) == len(texts)
    code = ("import sys; from envs.scenarios import dump, generate; "
            "sys.stdout.write('\\n---\\n'.join(dump(generate(s)) for s in %r))" % seeds)
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": "12345"}).stdout
    assert other == "\n---\n".join(texts)


def test_options_force_layout_and_event_count_and_bad_options_fail_clearly():
    for layout in LAYOUTS:
        sc = generate(3, layout=layout, n_events=2)
        assert f"(layout {layout})" in sc.description and len(sc.events) == 2
    assert any(isinstance(o, (BoxObstacle, CylinderObstacle)) for o in generate(3, layout="wall-gap").obstacles)
    assert generate(3, layout="random").random_obstacles is not None
    with pytest.raises(ValueError, match="layout must be one of"):
        generate(1, layout="maze")
    with pytest.raises(ValueError, match="n_events"):
        generate(1, n_events=4)
    with pytest.raises(ValueError, match="non-negative integer"):
        generate(-1)
    with pytest.raises(TypeError):
        generate(1, size=3)


def test_dump_round_trips_every_builtin_and_awkward_numbers():
    for name in names():
        sc = load(name)
        assert same(parse(dump(sc), "x.yaml"), sc), name
    sc = generate(8)
    tiny = dataclasses.replace(sc, time_limit_s=1e-05 + 60, description="a: b, {c} # d",
                               surfaces=(dataclasses.replace(sc.surfaces[0], friction=1.25e-5),) if sc.surfaces else ())
    assert same(parse(dump(tiny), "x.yaml"), tiny)
    with pytest.raises(ScenarioError):  # what dump writes is checked like any file
        parse(dump(dataclasses.replace(sc, time_limit_s=-1.0)), "x.yaml")


def test_splits_are_disjoint_and_indexed():
    splits = list(PROCEDURAL_SPLITS.values())
    for i, a in enumerate(splits):
        for b in splits[i + 1:]:
            assert max(a.start, b.start) >= min(a.stop, b.stop), (a, b)
    assert set(PROCEDURAL_SPLITS) == {"train", "validation", "test"}
    assert len(PROCEDURAL_SPLITS["test"]) >= 300 and len(PROCEDURAL_SPLITS["validation"]) >= 300
    assert procedural_seed("test", 0) == PROCEDURAL_SPLITS["test"][0]
    with pytest.raises(ValueError, match="index"):
        procedural_seed("test", len(PROCEDURAL_SPLITS["test"]))
    with pytest.raises(ValueError, match="split"):
        procedural_seed("eval", 0)


def rollout(env, seed: int, steps: int):
    obs, info = env.reset(seed=seed)
    out, rewards = [obs], []
    for k in range(steps):
        obs, reward, terminated, truncated, info = env.step(np.array([0.8, 0.3 * np.sin(k / 5)], dtype=np.float32))
        out.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            break
    return np.array(out), np.array(rewards), info


def test_procedural_env_is_bit_identical_per_seed_and_says_which_scenario():
    a = gym.make(envs.ENV_ID, scenario="procedural")
    b = gym.make(envs.ENV_ID, scenario="procedural")
    try:
        obs_a, rew_a, info_a = rollout(a, 41, 60)
        rollout(b, 7, 5)  # b has run another episode first
        obs_b, rew_b, info_b = rollout(b, 41, 60)
        assert np.array_equal(obs_a, obs_b) and np.array_equal(rew_a, rew_b)
        assert info_a["scenario_seed"] == 41 and info_a["scenario"] == "procedural-41"
        assert same(a.unwrapped.scenario, generate(41))
        _, info = b.reset(seed=42)
        assert info["scenario"] == "procedural-42"
        _, info = b.reset()  # no seed: the next scenario comes from the env's RNG
        assert info["scenario"] == f"procedural-{info['scenario_seed']}" and info["scenario_seed"] != 42
    finally:
        a.close()
        b.close()


def test_split_env_maps_reset_seed_into_the_split():
    env = TerrainNavEnv("procedural-test")
    try:
        n = len(PROCEDURAL_SPLITS["test"])
        for seed in (3, n + 3):
            _, info = env.reset(seed=seed)
            assert info["scenario_seed"] == procedural_seed("test", 3)
        _, info = env.reset()
        assert info["scenario_seed"] in PROCEDURAL_SPLITS["test"]
    finally:
        env.close()
    flat = TerrainNavEnv("flat")
    _, info = flat.reset(seed=0)
    flat.close()
    assert info["scenario"] == "flat" and info["scenario_seed"] is None
    with pytest.raises(ScenarioError, match="unknown procedural split.*procedural-validation"):
        TerrainNavEnv("procedural-eval")


def test_a_dumped_scenario_file_runs_in_the_env(tmp_path):
    sc = generate(11, layout="wall-gap", n_events=1)
    path = tmp_path / "generated.yaml"
    path.write_text(dump(sc), encoding="utf-8")
    env = gym.make(envs.ENV_ID, scenario=str(path))
    try:
        assert same(env.unwrapped.scenario, sc)
        obs, rewards, info = rollout(env, 0, 40)
        assert info["scenario"] == "procedural-11" and len(obs) == 41 and np.isfinite(obs).all()
    finally:
        env.close()


def test_event_strips_cross_every_route():
    """An on_enter strip that is not a friction zone spans the arena across the route, so
    the robot cannot reach the goal without entering it."""
    checked = 0
    for seed in range(60):
        sc = generate(seed)
        zones = {s.shape for s in sc.surfaces}
        for e in sc.events:
            if e.trigger == "on_enter" and e.on_enter not in zones:
                strip = e.on_enter
                assert isinstance(strip, Rect) and strip.size[1] > np.hypot(*sc.arena.size_m)
                along = np.array([np.cos(np.radians(strip.yaw_deg)), np.sin(np.radians(strip.yaw_deg))])
                sides = [np.dot(np.subtract(p, strip.center), along) for p in
                         ((sc.robot.start.x, sc.robot.start.y), (sc.goal.x, sc.goal.y))]
                assert sides[0] < 0 < sides[1], seed  # start and goal on either side of the strip
                checked += 1
    assert checked > 0


def spin_rate(gain_left: float, payload_kg: float, action) -> float:
    """Yaw rate (rad/s) on flat ground (friction 1) with the left side at gain_left, after 2 s."""
    data = {"version": 1, "name": "spin", "time_limit_s": 30, "arena": {"size_m": [20, 20]},
            "robot": {"start": {"x": 0, "y": 0}, "payload_kg": payload_kg}, "goal": {"x": 8, "y": 8},
            "events": [{"at_time_s": 0, "set": {"motor_gain": {"left": gain_left}}}]}
    env = TerrainNavEnv(from_dict(data, "spin.yaml"))
    try:
        env.reset(seed=0)
        for _ in range(40):
            _, _, _, _, info = env.step(np.asarray(action, dtype=np.float32))
        yaw0 = info["privileged"]["pose"][2]
        for _ in range(20):
            _, _, _, _, info = env.step(np.asarray(action, dtype=np.float32))
        return float((info["privileged"]["pose"][2] - yaw0 + np.pi) % (2 * np.pi) - np.pi)  # over 1 s
    finally:
        env.close()


def test_turn_gain_floor_separates_turning_from_stuck_in_the_simulator():
    floor = turn_gain_floor(45.0, 1.0)
    assert 0.35 < floor < 0.5
    # at the floor the robot still turns on the spot both ways; far below it, it cannot
    assert spin_rate(floor, 45.0, [0.0, 1.0]) > 0.5 and spin_rate(floor, 45.0, [0.0, -1.0]) < -0.5
    assert abs(spin_rate(0.25, 45.0, [0.0, 1.0])) < 0.1


def test_hill_slope_is_the_gradient_of_the_terrain_heights():
    assert procedural.BUMP_SPACING_M == terrain.BUMP_SPACING_M  # the generator's copy of the bump spacing
    sc = next(s for s in map(generate, range(50)) if len(s.arena.hills) >= 2)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-5, 5, 40), rng.uniform(-5, 5, 40)
    h = 1e-5
    gx = (hill_heights(sc, x + h, y) - hill_heights(sc, x - h, y)) / (2 * h)
    gy = (hill_heights(sc, x, y + h) - hill_heights(sc, x, y - h)) / (2 * h)
    np.testing.assert_allclose(hill_slope(sc.arena.hills, x, y), np.hypot(gx, gy), atol=1e-6)
