"""Episode metrics: success, SPL, soft-SPL, collisions, time to goal, recovery after events.

Progress rate is the speed toward the goal, -d(distance to goal)/dt in m/s. Around each event
it is averaged over EVENT_WINDOW_S before and after; the recovery time is the time from the
event until the progress rate over the next RATE_WINDOW_S is back to RECOVERY_FRACTION of its
pre-event level (reaching the goal counts as recovered). An event that fires while the robot
is not making progress (pre-event rate below MIN_RATE) has no recovery time.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from navctl.rollout import Trajectory

EVENT_WINDOW_S = 3.0
RATE_WINDOW_S = 1.0
RECOVERY_FRACTION = 0.8
MIN_RATE = 0.05  # m/s


def _mean_rate(traj: Trajectory, t0: float, t1: float) -> float:
    """Average progress rate between simulated times t0 and t1 (clipped to the episode)."""
    t = traj.time_s
    t0, t1 = max(t0, t[0]), min(t1, t[-1])
    if t1 - t0 < traj.dt / 2:
        return math.nan
    d0, d1 = np.interp([t0, t1], t, traj.distance)
    return float((d0 - d1) / (t1 - t0))


def event_metrics(traj: Trajectory) -> list[dict[str, Any]]:
    """Before/after progress rates and recovery time for each event that fired."""
    out = []
    for ev in traj.events:
        te = ev["time_s"]
        before = _mean_rate(traj, te - EVENT_WINDOW_S, te)
        after = _mean_rate(traj, te, te + EVENT_WINDOW_S)
        recovery: float | None = None
        if not math.isnan(before) and before >= MIN_RATE:
            target = RECOVERY_FRACTION * before
            for t in traj.time_s[traj.time_s >= te - 1e-9]:
                if t + RATE_WINDOW_S > traj.time_s[-1]:
                    if traj.success:
                        recovery = float(traj.time_s[-1] - te)
                    break
                if _mean_rate(traj, t, t + RATE_WINDOW_S) >= target:
                    recovery = max(0.0, float(t - te))
                    break
        out.append({
            "index": ev["index"],
            "trigger": ev["trigger"],
            "time_s": te,
            "position": ev.get("position"),
            "set": ev.get("set"),
            "rate_before": before,
            "rate_after": after,
            "recovery_s": recovery,
            "recovered": recovery is not None,
            "applicable": not math.isnan(before) and before >= MIN_RATE,
        })
    return out


def path_efficiency(shortest_m: float, driven_m: float) -> float:
    """shortest / max(shortest, driven), the SPL factor (1 when there was no way to go)."""
    return shortest_m / max(shortest_m, driven_m) if shortest_m > 0 else 1.0


def spl(traj: Trajectory) -> float:
    """Success weighted by path length: path_efficiency on success, 0 otherwise."""
    return path_efficiency(traj.shortest_path_length, traj.path_length) if traj.success else 0.0


def episode_metrics(traj: Trajectory) -> dict[str, Any]:
    """The per-episode row: outcome, efficiency, safety, adaptation."""
    shortest = traj.shortest_path_length
    ratio = path_efficiency(shortest, traj.path_length)
    d0 = max(traj.distance[0] - traj.goal[2], 1e-9)
    progress = min(1.0, max(0.0, 1.0 - max(traj.distance[-1] - traj.goal[2], 0.0) / d0))
    onsets = int(np.count_nonzero(traj.collisions[1:] & ~traj.collisions[:-1]) + (traj.collisions[:1].sum()))
    events = event_metrics(traj)
    applicable = [e for e in events if e["applicable"]]
    recoveries = [e["recovery_s"] for e in applicable if e["recovered"]]
    return {
        "policy": traj.policy,
        "scenario": traj.scenario,
        "seed": traj.seed,
        "success": traj.success,
        "spl": spl(traj),
        "soft_spl": progress * ratio,
        "collisions": onsets,
        "collided": onsets > 0,
        "time_to_goal_s": float(traj.time_s[-1]) if traj.success else math.nan,
        "episode_time_s": float(traj.time_s[-1]),
        "path_length_m": traj.path_length,
        "shortest_path_m": shortest,
        "final_distance_m": float(traj.distance[-1]),
        "termination": traj.termination,
        "events_fired": len(events),
        "recovered_events": len(recoveries),
        "mean_recovery_s": float(np.mean(recoveries)) if recoveries else math.nan,
        "events": events,
    }


def aligned_progress(traj: Trajectory, before_s: float = 5.0, after_s: float = 15.0,
                     step_s: float = 0.25) -> tuple[np.ndarray, np.ndarray] | None:
    """Progress rate (m/s, RATE_WINDOW_S average) on a grid of times relative to the first
    event; NaN outside the episode. None if no event fired."""
    if not traj.events:
        return None
    offsets = np.arange(-before_s, after_s + 1e-9, step_s)
    te = traj.events[0]["time_s"]
    rates = np.array([_mean_rate(traj, te + o - RATE_WINDOW_S / 2, te + o + RATE_WINDOW_S / 2)
                      if traj.time_s[0] <= te + o - RATE_WINDOW_S / 2 and te + o + RATE_WINDOW_S / 2 <= traj.time_s[-1]
                      else math.nan for o in offsets])
    return offsets, rates
