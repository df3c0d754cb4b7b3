"""TerrainNav against the real simulator (PyBullet DIRECT): API, physics effects, events."""
from __future__ import annotations

import copy
import math

import gymnasium as gym
import numpy as np
import pytest

import envs
from envs.scenarios import from_dict
from envs.terrain_nav import TerrainNavEnv

BASE = {
    "version": 1,
    "name": "test",
    "time_limit_s": 30,
    "arena": {"size_m": [20, 20]},
    "robot": {"start": {"x": -7, "y": 0, "yaw_deg": 0}},
    "goal": {"x": 7, "y": 0, "radius_m": 0.5},
}


def scenario(**changes):
    """BASE with top-level fields replaced (nested dicts replace whole)."""
    data = copy.deepcopy(BASE)
    data.update(changes)
    return from_dict(data, "test.yaml")


def drive(env: TerrainNavEnv, action, steps: int, seed: int = 0):
    """Resets, applies one action for `steps` control steps; returns per-step (obs, info)."""
    env.reset(seed=seed)
    out = []
    for _ in range(steps):
        obs, _, terminated, truncated, info = env.step(np.asarray(action, dtype=np.float32))
        out.append((obs, info))
        if terminated or truncated:
            break
    return out


def run(sc, action, steps: int, seed: int = 0):
    env = TerrainNavEnv(sc)
    try:
        return drive(env, action, steps, seed)
    finally:
        env.close()


def pose(info) -> np.ndarray:
    return np.asarray(info["privileged"]["pose"])


# --- API ---------------------------------------------------------------------------------
def test_make_registered_env_with_default_and_named_scenario():
    env = gym.make(envs.ENV_ID)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert env.unwrapped.physics_hz == 240 and env.unwrapped.control_hz == 20
    layout = env.unwrapped.obs_layout
    assert sum(s.stop - s.start for s in layout.values()) == obs.shape[0]
    env.close()
    env = gym.make(envs.ENV_ID, scenario="ice-strip")
    assert env.unwrapped.scenario.name == "ice-strip"
    env.close()


def test_gymnasium_check_env_with_render():
    from gymnasium.utils.env_checker import check_env

    env = TerrainNavEnv("clutter", render_mode="rgb_array", render_width=64, render_height=48)
    check_env(env, skip_render_check=False)
    env.close()


def test_stable_baselines3_check_env():
    from stable_baselines3.common.env_checker import check_env

    env = TerrainNavEnv("flat")
    check_env(env, warn=False)
    env.close()


def test_observation_has_no_privileged_quantity_and_layout_is_physical():
    env = TerrainNavEnv(scenario(sensors={"noise": {"lidar_m": 0, "imu": 0, "odometry": 0}}))
    obs, info = env.reset(seed=0)
    lay = env.obs_layout
    assert obs[lay["goal_distance"]][0] == pytest.approx(14.0, abs=0.05)
    sin_b, cos_b = obs[lay["goal_bearing"]]
    assert cos_b == pytest.approx(1.0, abs=1e-3) and abs(sin_b) < 1e-2  # goal straight ahead
    lidar = obs[lay["lidar"]]
    back = lidar[len(lidar) // 2]  # ray pointing backwards sees the wall 3 m behind
    assert back == pytest.approx(3.0, abs=0.1)
    assert lidar[0] == pytest.approx(8.0)  # nothing within 8 m ahead
    for value in (0.08, 0.5):  # a privileged value never shows up as a component
        assert not np.any(np.isclose(obs, value, atol=1e-7))
    env.close()


def test_nan_action_raises_and_out_of_range_is_clipped():
    env = TerrainNavEnv("flat")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action\[1\].*nan"):
        env.step(np.array([0.5, np.nan], dtype=np.float32))
    with pytest.raises(ValueError, match=r"action\[0\].*inf"):
        env.step(np.array([np.inf, 0.0], dtype=np.float32))
    obs, *_ = env.step(np.array([3.0, -7.0], dtype=np.float32))
    assert np.allclose(obs[env.obs_layout["prev_action"]], [1.0, -1.0])
    env.close()


def test_rgb_array_render_is_sized_and_not_blank():
    env = TerrainNavEnv("clutter", render_mode="rgb_array", render_width=96, render_height=64)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (64, 96, 3) and frame.dtype == np.uint8
    assert frame.std() > 5  # ground, robot and obstacles, not a flat colour
    env.close()


# --- determinism -------------------------------------------------------------------------
def _trajectory(env: TerrainNavEnv, seed: int, steps: int = 60):
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(123)
    obs_seq, rewards = [obs], []
    for _ in range(steps):
        obs, r, term, trunc, _ = env.step(rng.uniform(-1, 1, 2).astype(np.float32))
        obs_seq.append(obs)
        rewards.append(r)
    return np.stack(obs_seq), np.array(rewards)


def test_same_seed_and_actions_are_bit_identical_across_resets_and_instances():
    env = TerrainNavEnv("slick-clutter")
    a_obs, a_rew = _trajectory(env, seed=3)
    _trajectory(env, seed=4)  # a different episode in between must leave no trace
    b_obs, b_rew = _trajectory(env, seed=3)
    env.close()
    other = TerrainNavEnv("slick-clutter")
    c_obs, c_rew = _trajectory(other, seed=3)
    other.close()
    assert np.array_equal(a_obs, b_obs) and np.array_equal(a_rew, b_rew)
    assert np.array_equal(a_obs, c_obs) and np.array_equal(a_rew, c_rew)


def test_golden_trajectory(golden):
    """Pins the simulation: a change to physics, sensors or RNG use shows up here."""
    env = TerrainNavEnv("rough-hills-left-fade")
    obs, rew = _trajectory(env, seed=7, steps=200)
    env.close()
    golden("rough_hills_left_fade_seed7", obs=obs, rewards=rew)


# --- terrain features change the dynamics ------------------------------------------------
def test_ice_slips_more_than_dry_ground():
    """Full throttle from rest: on ice the wheels spin far faster than the chassis moves."""
    ice = scenario(surfaces=[{"name": "ice", "rect": {"center": [0, 0], "size": [20, 20]}, "friction": 0.08}])
    slips = []
    for sc in (scenario(), ice):
        steps = run(sc, [1.0, 0.0], 10)
        obs, info = steps[-1]
        wheel = obs[11:15].mean()
        ground = obs[3]
        slips.append(wheel - ground)
    assert slips[0] < 0.1 and slips[1] > 3 * slips[0] + 0.2


def test_mud_drag_slows_the_climb_out_of_rest():
    mud = scenario(surfaces=[{"name": "mud", "rect": {"center": [0, 0], "size": [20, 20]}, "friction": 1.0, "drag": 0.8}],
                   robot={"start": {"x": -7, "y": 0}, "payload_kg": 40})
    dry = scenario(robot={"start": {"x": -7, "y": 0}, "payload_kg": 40})
    d_dry = pose(run(dry, [1.0, 0.0], 6)[-1][1])[0] + 7
    d_mud = pose(run(mud, [1.0, 0.0], 6)[-1][1])[0] + 7
    assert d_mud < 0.8 * d_dry


def test_weak_left_motor_veers_left():
    weak = scenario(robot={"start": {"x": -7, "y": 0}},
                    events=[{"at_time_s": 0.0, "set": {"motor_gain": {"left": 0.4}}}])
    yaw_ok = pose(run(scenario(), [0.8, 0.0], 60)[-1][1])[2]
    steps = run(weak, [0.8, 0.0], 60)
    yaw_weak = pose(steps[-1][1])[2]
    assert abs(yaw_ok) < 0.05
    assert yaw_weak > 0.5  # counter-clockwise = to the left
    assert steps[-1][1]["privileged"]["motor_gain"][0] == pytest.approx(0.4)


def test_payload_slows_acceleration():
    light = pose(run(scenario(), [1.0, 0.0], 4)[-1][1])[0]
    heavy = pose(run(scenario(robot={"start": {"x": -7, "y": 0}, "payload_kg": 60}), [1.0, 0.0], 4)[-1][1])[0]
    assert heavy + 7 < 0.9 * (light + 7)


def test_hill_pitches_the_chassis():
    hill = scenario(arena={"size_m": [20, 20], "hills": [{"center": [-3, 0], "radius_m": 3, "height_m": 0.8}]})
    pitch = [abs(obs[10]) for obs, _ in run(hill, [0.8, 0.0], 120)]
    flat_pitch = [abs(obs[10]) for obs, _ in run(scenario(), [0.8, 0.0], 120)]
    assert max(pitch) > 0.2 and max(flat_pitch) < 0.05


def test_rough_ground_shakes_the_chassis():
    rough = scenario(arena={"size_m": [20, 20], "roughness_m": 0.04})
    roll_rough = np.std([obs[9] for obs, _ in run(rough, [1.0, 0.0], 100)])
    roll_flat = np.std([obs[9] for obs, _ in run(scenario(), [1.0, 0.0], 100)])
    assert roll_rough > 3 * roll_flat + 0.005


def test_friction_under_each_wheel_follows_the_zones():
    half = scenario(surfaces=[{"name": "ice", "rect": {"center": [0, 5], "size": [20, 10]}, "friction": 0.1}],
                    robot={"start": {"x": -7, "y": 0.0, "yaw_deg": 0}})
    env = TerrainNavEnv(half)
    _, info = env.reset(seed=0)
    friction = info["privileged"]["wheel_friction"]
    env.close()
    # left wheels (y = +0.29) are on the ice half (y > 0), right wheels on dry ground
    assert friction[0] == pytest.approx(0.1) and friction[2] == pytest.approx(0.1)
    assert friction[1] == pytest.approx(1.0) and friction[3] == pytest.approx(1.0)


# --- events ------------------------------------------------------------------------------
def test_events_fire_once_at_their_trigger_and_are_logged():
    sc = scenario(events=[
        {"at_time_s": 1.0, "set": {"payload_kg": 30}},
        {"at_distance_m": 2.0, "set": {"motor_gain": {"right": 0.5}}},
        {"on_enter": {"circle": {"center": [-3, 0], "radius_m": 1.0}}, "set": {"friction_scale": 0.5}},
    ])
    steps = run(sc, [1.0, 0.0], 140)
    log = steps[-1][1]["events"]
    assert [e["index"] for e in log] == [0, 1, 2]
    assert log[0]["time_s"] == pytest.approx(1.0)
    assert log[1]["distance_m"] >= 2.0 and log[1]["distance_m"] < 2.2
    assert math.hypot(log[2]["position"][0] + 3, log[2]["position"][1]) <= 1.0
    priv = steps[-1][1]["privileged"]
    assert priv["payload_kg"] == 30 and priv["motor_gain"][1] == 0.5 and priv["friction_scale"] == 0.5
    assert np.allclose(priv["wheel_friction"], 0.5)


def test_event_time_jitter_is_drawn_per_episode_but_reproducible():
    sc = scenario(events=[{"at_time_s": 2.0, "set": {"payload_kg": 5}}], randomize={"event_time_jitter_s": 1.0})
    times = {seed: run(sc, [0.0, 0.0], 70, seed=seed)[-1][1]["events"][0]["time_s"] for seed in (0, 1, 2, 0)}
    assert len(set(times.values())) >= 2
    assert all(1.0 - 1e-9 <= t <= 3.05 for t in times.values())
    assert times[0] == run(sc, [0.0, 0.0], 70, seed=0)[-1][1]["events"][0]["time_s"]


# --- outcomes ----------------------------------------------------------------------------
def test_collision_flag_on_hitting_a_box():
    boxed = scenario(obstacles=[{"box": {"center": [-4, 0], "size": [1, 2, 1]}}])
    steps = run(boxed, [0.8, 0.0], 100)
    flags = [info["collision"] for _, info in steps]
    assert any(flags) and not flags[0]
    assert pose(steps[-1][1])[0] < -4.4  # stopped by the box
    assert not any(info["collision"] for _, info in run(scenario(), [0.8, 0.0], 60))  # wheels on ground don't count


def test_success_on_reaching_the_goal_and_path_metrics():
    steps = run(scenario(goal={"x": -3, "y": 0, "radius_m": 0.5}), [1.0, 0.0], 200)
    obs, info = steps[-1]
    assert info["is_success"] and info["termination"] == "success"
    assert info["distance_to_goal"] <= 0.5
    assert info["shortest_path_length"] == pytest.approx(3.5, abs=0.05)
    assert 3.4 < info["path_length"] < 4.0


def test_shortest_path_goes_around_obstacles():
    wall = scenario(obstacles=[{"box": {"center": [0, 0], "size": [1, 12, 1]}}])
    env = TerrainNavEnv(wall)
    _, info = env.reset(seed=0)
    env.close()
    assert info["shortest_path_length"] > 14.5  # the straight line (13.5 m) is blocked


def test_time_limit_truncates():
    env = TerrainNavEnv(scenario(time_limit_s=1.0))
    env.reset(seed=0)
    for i in range(20):
        _, _, terminated, truncated, info = env.step(np.zeros(2, dtype=np.float32))
    assert truncated and not terminated and info["termination"] == "time_limit"
    env.close()


def test_async_vector_env_runs():
    vec = gym.make_vec(envs.ENV_ID, num_envs=2, vectorization_mode="async", scenario="flat")
    obs, _ = vec.reset(seed=0)
    for _ in range(5):
        obs, rew, term, trunc, info = vec.step(np.zeros((2, 2), dtype=np.float32))
    assert obs.shape == (2, 41) and np.all(np.isfinite(obs))
    vec.close()


@pytest.mark.slow
def test_memory_flat_over_2000_resets():
    psutil = pytest.importorskip("psutil")
    env = TerrainNavEnv("clutter")
    proc = psutil.Process()
    for i in range(200):
        env.reset(seed=i)
    before = proc.memory_info().rss
    bodies_before = envs.quiet.pybullet.getNumBodies(physicsClientId=env.client)
    for i in range(1800):
        env.reset(seed=i % 50)
    grown = proc.memory_info().rss - before
    assert envs.quiet.pybullet.getNumBodies(physicsClientId=env.client) <= bodies_before + 8
    env.close()
    assert grown < 20 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over 1800 resets"


# --- render_mode="human" without a display: an error, never a dead interpreter --------------
def _python_without_display(code: str, display: str | None = None):
    """Runs `code` in a fresh interpreter with DISPLAY unset (or set to `display`)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    if display is not None:
        env["DISPLAY"] = display
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)


HUMAN_MAKE = """
import gymnasium, envs
from envs.display import NoDisplayError
try:
    gymnasium.make("navctl/TerrainNav-v0", render_mode="human")
except NoDisplayError as e:
    print("error:", e)
"""


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="the X11 check is Linux only")
@pytest.mark.parametrize("display", [None, ":97"], ids=["unset", "unreachable"])
def test_human_mode_without_display_raises_a_clear_error(display):
    proc = _python_without_display(HUMAN_MAKE, display)
    assert proc.returncode == 0, proc.stderr
    message = proc.stdout.strip()
    assert message.startswith("error: render_mode='human' opens PyBullet's GUI window, but ")
    assert ("DISPLAY is empty" if display is None else "DISPLAY=':97' cannot be opened") in message
    assert "render_mode='rgb_array'" in message and "--video" in message and "\n" not in message


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="the X11 check is Linux only")
def test_gymnasium_check_env_on_a_made_env_survives_without_display():
    # check_env makes the env again in every render mode, "human" included.
    proc = _python_without_display("""
import gymnasium, envs
from gymnasium.utils.env_checker import check_env
from envs.display import NoDisplayError
env = gymnasium.make("navctl/TerrainNav-v0", scenario="flat")
try:
    check_env(env.unwrapped)
    print("passed")
except NoDisplayError as e:
    print("error:", e)
print("still running")
""")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == "still running"
    assert lines[0] == "passed" or ("render_mode='human'" in lines[0] and "rgb_array" in lines[0])
