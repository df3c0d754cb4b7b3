"""Episode metrics on hand-built trajectories: SPL, soft-SPL, collisions, recovery after events."""
from __future__ import annotations

import math

import numpy as np
import pytest

from navctl.metrics import aligned_progress, episode_metrics, event_metrics
from navctl.rollout import Trajectory

DT = 0.05


def straight(speeds: np.ndarray, start_distance: float = 20.0, goal_radius: float = 0.5,
             termination: str | None = None, events: list | None = None, collisions: np.ndarray | None = None,
             path_factor: float = 1.0) -> Trajectory:
    """A robot driving straight at the goal with the given per-step speeds (m/s)."""
    steps = len(speeds)
    travelled = np.concatenate([[0.0], np.cumsum(speeds) * DT])
    distance = start_distance - travelled
    if termination is None:
        termination = "success" if distance[-1] <= goal_radius else "time_limit"
    xy = np.stack([travelled, np.zeros(steps + 1)], axis=1)
    return Trajectory(
        scenario="hand", seed=0, policy="test", dt=DT, time_s=np.arange(steps + 1) * DT, xy=xy,
        yaw=np.zeros(steps + 1), distance=distance, actions=np.zeros((steps, 2), np.float32),
        rewards=np.zeros(steps), collisions=np.zeros(steps, bool) if collisions is None else collisions,
        goal=np.array([start_distance, 0.0, goal_radius]), start=np.zeros(3), events=events or [],
        termination=termination, path_length=float(travelled[-1]) * path_factor,
        shortest_path_length=start_distance - goal_radius)


def event(time_s: float) -> dict:
    return {"index": 0, "trigger": "at_time_s", "time_s": time_s, "position": [0.0, 0.0],
            "set": {"motor_gain": {"left": 0.4}}}


def test_spl_of_a_successful_detour():
    speeds = np.full(400, 1.0)  # 20 m in 20 s, reaches the goal (radius 0.5) near the end
    traj = straight(speeds, path_factor=1.25)
    m = episode_metrics(traj)
    assert m["success"] and m["termination"] == "success"
    assert m["spl"] == pytest.approx(19.5 / traj.path_length)
    assert m["soft_spl"] == pytest.approx(m["spl"])
    assert m["time_to_goal_s"] == pytest.approx(20.0)


def test_failure_has_zero_spl_and_partial_soft_spl():
    traj = straight(np.full(200, 0.5))  # 5 of 19.5 m toward the goal's edge in 10 s
    m = episode_metrics(traj)
    assert not m["success"] and m["termination"] == "time_limit"
    assert m["spl"] == 0.0
    assert math.isnan(m["time_to_goal_s"])
    progress = 5.0 / 19.5
    assert m["soft_spl"] == pytest.approx(progress * 1.0)  # path shorter than the shortest: ratio 1


def test_collisions_count_onsets_not_steps():
    hits = np.zeros(100, bool)
    hits[10:20] = True  # one long contact
    hits[50] = True  # and a short one
    m = episode_metrics(straight(np.full(100, 0.5), collisions=hits))
    assert m["collisions"] == 2 and m["collided"]


def test_recovery_time_when_the_rate_comes_back():
    # 1 m/s, an event at 5 s drops the speed to 0.3 m/s for 2 s, then 1 m/s again.
    t = np.arange(500) * DT
    speeds = np.where((t >= 5.0) & (t < 7.0), 0.3, 1.0)
    traj = straight(speeds, start_distance=40.0, events=[event(5.0)])
    (e,) = event_metrics(traj)
    assert e["rate_before"] == pytest.approx(1.0)
    assert e["rate_after"] == pytest.approx((2 * 0.3 + 1 * 1.0) / 3)
    # the 1 s average is back to 0.8 m/s once 0.3 (7 - t) + (t - 6) >= 0.8, i.e. t >= 6.714 -> 6.75 on the grid
    assert e["recovered"] and e["applicable"]
    assert e["recovery_s"] == pytest.approx(1.75)
    m = episode_metrics(traj)
    assert m["recovered_events"] == 1 and m["mean_recovery_s"] == pytest.approx(1.75)


def test_not_recovered_is_a_value():
    t = np.arange(400) * DT
    speeds = np.where(t >= 5.0, 0.3, 1.0)  # never back, time runs out
    traj = straight(speeds, start_distance=40.0, events=[event(5.0)])
    (e,) = event_metrics(traj)
    assert e["applicable"] and not e["recovered"] and e["recovery_s"] is None
    m = episode_metrics(traj)
    assert m["events_fired"] == 1 and m["recovered_events"] == 0 and math.isnan(m["mean_recovery_s"])


def test_event_while_standing_still_has_no_recovery():
    t = np.arange(200) * DT
    speeds = np.where(t >= 5.0, 1.0, 0.0)
    (e,) = event_metrics(straight(speeds, events=[event(4.0)]))
    assert not e["applicable"] and e["recovery_s"] is None


def test_recovery_is_never_negative():
    # the event time as the env logs it (rounded to 1e-6 s) can sit a hair after the step time
    traj = straight(np.full(300, 1.0), start_distance=40.0, events=[event(5.0 + 1e-12)])
    (e,) = event_metrics(traj)
    assert e["recovery_s"] == 0.0


def test_aligned_progress_is_on_a_fixed_grid_around_the_event():
    t = np.arange(400) * DT
    speeds = np.where(t >= 5.0, 0.5, 1.0)
    offsets, rates = aligned_progress(straight(speeds, start_distance=40.0, events=[event(5.0)]), 2.0, 4.0, 0.5)
    assert offsets[0] == -2.0 and offsets[-1] == 4.0 and len(offsets) == len(rates) == 13
    assert rates[0] == pytest.approx(1.0) and rates[-1] == pytest.approx(0.5)
    assert aligned_progress(straight(speeds)) is None  # no event
