"""The privileged expert: plans on the true obstacle map and drives with full knowledge.

It reads `info["privileged"]` (pose, velocity, goal, obstacle / friction / drag maps, motor
gains, payload), plans an obstacle-free path on the inflated map (envs.planning), tracks it
with pure pursuit, slows down before corners by the braking distance the ground ahead
allows (long on ice), and solves for the command whose *delivered* wheel speeds are the
desired ones given the motor gains. It is the teacher for imitation learning and the oracle
in evaluations. It lives in navctl, beside the env contract it reads: the robot's constants,
the observation layout, the planner and the control rate come from envs.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from envs.planning import inflate, plan_path, segment_free
from envs.robot import TORQUE_LIMIT_NM, TRACK_M, V_MAX, W_MAX, WHEEL_RADIUS_M
from envs.sensors import OBS_LAYOUT
from envs.terrain_nav import TerrainNavEnv
from policies.base import ACT_DIM, Policy

CONTROL_DT_S = 1.0 / TerrainNavEnv.control_hz  # s, one control step
PREV_ACTION = OBS_LAYOUT["prev_action"]  # the last applied action, in the observation
ROBOT_MASS_KG = 46.0  # the expert's round figure for the robot without payload (chassis and wheels)
GRAVITY = 9.81  # m/s^2


@dataclass
class ExpertConfig:
    """Tuning of the expert; lengths in metres, speeds m/s, angles rad, times seconds."""

    inflate_m: tuple[float, ...] = (0.75, 0.6, 0.45, 0.35)  # tried in order until a path exists
    clear_m: float = 0.45  # the straight line to the pursuit target keeps this clear of obstacles
    replan_s: float = 3.0  # re-plan this often even if nothing changed
    off_path_m: float = 0.8  # re-plan at once when further than this from the path
    lookahead_m: float = 1.0  # pure-pursuit lookahead at standstill ...
    lookahead_per_speed_s: float = 0.5  # ... growing by this much per m/s of speed
    max_speed: float = 1.0  # m/s, never faster (<= V_MAX)
    turn_in_place_rad: float = 1.0  # heading error above which the robot turns on the spot
    min_turn_speed: float = 0.35  # m/s, pure pursuit turns at least as fast as at this speed
    brake_fraction: float = 0.4  # usable deceleration = brake_fraction * friction * g
    corner_speed: float = 0.4  # m/s through a right-angle corner on dry ground ...
    min_corner_speed: float = 0.25  # ... and never slower than this (or the robot stalls on ice)
    stop_margin_m: float = 0.4  # slow to corner speed this far before the corner
    accel_fraction: float = 0.6  # usable acceleration = fraction * min(friction * g, pull / mass)
    yaw_rate_ki: float = 4.0  # 1/s, integral gain of the yaw-rate loop (skid-steer turns lag)
    yaw_int_max: float = 1.0  # rad/s, bound of that integral on dry ground
    yaw_int_fade_s: float = 0.5  # s, time constant of its fading while someone else drives (DAgger)
    ice_friction: float = 0.3  # below this the ground counts as ice
    stuck_s: float = 2.0  # no headway for this long while asking to move: back off
    backoff_s: float = 1.0  # drive away from the nearest obstacle for this long
    # The guided teacher's rescue (GuidedExpert): when the classical route stalls, the expert's
    # own route drives until the robot has clearly escaped. Off: the guided teacher as shipped.
    rescue: bool = False
    rescue_stall_s: float = 6.0  # s in which neither the planned path nor the straight line to the goal
    #                              got rescue_progress_m shorter than ever before = stalled
    rescue_progress_m: float = 0.5  # m, what counts as progress
    rescue_on_backoff: bool = True  # a back-off (stuck_s without headway) also counts as a stall
    rescue_escape_m: float = 1.0  # m: escaped once this much closer to the goal (straight line) than before the stall
    rescue_max_s: float = 20.0  # s: hand back to the classical route at the latest after this long
    # The guided teacher on the classical-escape route (GuidedExpert), instead of the rescue:
    # where the goal distance stalls, the classical controller's escape (policies/classical.py,
    # ClassicalConfig.escape) follows an obstacle's boundary on one side until out. Off: the
    # guided teacher as shipped.
    escape: bool = False


def _wrap(a: float) -> float:
    """Angle wrapped to (-pi, pi] radians."""
    return (a + math.pi) % (2 * math.pi) - math.pi


def _spin_rate(heading: float, mu_here: float) -> float:
    """Yaw rate (rad/s) for turning on the spot towards `heading` (rad): slower on slippery
    ground (friction `mu_here`), where a fast spin only slides."""
    return math.copysign(W_MAX * (0.5 + 0.5 * min(mu_here, 1.0)), heading)


def wheel_compensated_action(v: float, w: float, gain_left: float, gain_right: float) -> np.ndarray:
    """The normalised action whose *delivered* motion is (v m/s, w rad/s) under the motor gains.

    The env turns (v, w) into rim speeds v_l = v - w B/2, v_r = v + w B/2 and each side
    delivers gain x commanded speed, so each side's desired speed is divided by its gain.
    When the result leaves [-1, 1]^2 both components shrink together (same curvature).
    """
    gl, gr = max(gain_left, 0.05), max(gain_right, 0.05)
    vl = (v - w * TRACK_M / 2) / gl
    vr = (v + w * TRACK_M / 2) / gr
    a = np.array([(vl + vr) / 2 / V_MAX, (vr - vl) / TRACK_M / W_MAX])
    peak = float(np.max(np.abs(a)))
    if peak > 1.0:
        a /= peak
    return a


def delivered_motion(action: np.ndarray, gain_left: float, gain_right: float) -> tuple[float, float]:
    """(v m/s, w rad/s) the robot is asked for when `action` meets the motor gains (the
    inverse of wheel_compensated_action, up to its saturation)."""
    v, w = float(action[0]) * V_MAX, float(action[1]) * W_MAX
    vl = (v - w * TRACK_M / 2) * gain_left
    vr = (v + w * TRACK_M / 2) * gain_right
    return (vl + vr) / 2, (vr - vl) / TRACK_M


class _Path:
    """A planned polyline (N, 2) in metres with its cumulative arc length."""

    def __init__(self, pts: np.ndarray) -> None:
        self.pts = np.asarray(pts, dtype=float)
        seg = np.diff(self.pts, axis=0)
        self.seg_len = np.hypot(seg[:, 0], seg[:, 1])
        self.s = np.concatenate([[0.0], np.cumsum(self.seg_len)])
        self.length = float(self.s[-1])
        if len(self.pts) >= 3:  # turn angle (rad) at each interior waypoint
            h = np.arctan2(seg[:, 1], seg[:, 0])
            self.corner_s = self.s[1:-1]
            self.corner_turn = np.abs((np.diff(h) + np.pi) % (2 * np.pi) - np.pi)
        else:
            self.corner_s = self.corner_turn = np.zeros(0)

    def project(self, xy: np.ndarray, s_min: float, s_max: float) -> tuple[float, float]:
        """(arc length, distance) of the path point nearest xy among those with s in [s_min, s_max]."""
        a = self.pts[:-1]
        d = self.pts[1:] - a
        seg = np.maximum(self.seg_len, 1e-9)
        t = np.clip(((xy - a) * d).sum(axis=1) / seg ** 2, 0.0, 1.0)
        s = np.clip(self.s[:-1] + t * self.seg_len, s_min, s_max)
        t = np.clip((s - self.s[:-1]) / seg, 0.0, 1.0)
        p = a + d * t[:, None]
        dist = np.hypot(p[:, 0] - xy[0], p[:, 1] - xy[1])
        k = int(np.argmin(dist))
        return float(self.s[k] + t[k] * self.seg_len[k]), float(dist[k])

    def point_at(self, s: float) -> np.ndarray:
        """World point at arc length s (clamped to the path)."""
        if s <= 0:
            return self.pts[0].copy()
        if s >= self.length:
            return self.pts[-1].copy()
        i = int(np.searchsorted(self.s, s, side="right")) - 1
        t = (s - self.s[i]) / max(self.seg_len[i], 1e-9)
        return self.pts[i] + t * (self.pts[i + 1] - self.pts[i])


@dataclass
class _State:
    """What the expert remembers about one environment of the batch."""

    path: Optional[_Path] = None
    goal: Optional[np.ndarray] = None
    map_key: Optional[tuple] = None  # fingerprint of the obstacle map the caches below belong to
    inflated: Optional[dict] = None  # index into ExpertConfig.inflate_m -> inflated grid
    inflate_from: int = 0  # first inflation to try when re-planning
    clear_grid: Optional[np.ndarray] = None  # obstacles inflated by clear_m
    progress_m: float = 0.0  # arc length reached along the path
    since_plan_s: float = 0.0
    w_int: float = 0.0  # rad/s, integral term of the yaw-rate loop
    last_action: Optional[np.ndarray] = None  # what it answered last step (normalised action)
    stuck_s: float = 0.0  # s spent asking to move without moving
    backoff_s: float = 0.0  # s of backing off left
    backoff_dir: float = -1.0  # +1 forward, -1 reverse
    anchor: Optional[np.ndarray] = None  # (x, y, yaw) where the robot last made headway


class ExpertController(Policy):
    """Privileged path-planning + pure-pursuit controller; batch-aware, numpy only.

    `act(obs, info)` takes the env's info dict (or a sequence of them, one per batch row)
    and reads only info["privileged"]; obs just sets the output shape.
    """

    name = "expert"
    privileged = True

    def __init__(self, config: Optional[ExpertConfig] = None) -> None:
        self.config = config or ExpertConfig()
        self._states: list[_State] = [_State()]

    def reset(self, batch_size: int = 1) -> None:
        self._states = [_State() for _ in range(batch_size)]

    def act(self, obs: np.ndarray, info: Optional[dict[str, Any] | Sequence[dict[str, Any]]] = None) -> np.ndarray:
        if info is None:
            raise ValueError("ExpertController needs the env's info (info['privileged'])")
        obs = np.asarray(obs, dtype=float)
        rows = obs.reshape(-1, obs.shape[-1])
        infos = [info] if isinstance(info, Mapping) else list(info)
        if len(infos) != len(rows):
            raise ValueError(f"got {len(rows)} observations but {len(infos)} infos")
        if len(infos) != len(self._states):
            self.reset(len(infos))
        out = np.zeros((len(infos), ACT_DIM), dtype=np.float32)
        for i, inf in enumerate(infos):
            out[i] = self._act_one(i, inf["privileged"], rows[i])
        return out[0] if obs.ndim == 1 else out

    # --- one environment ---------------------------------------------------------------
    def _act_one(self, i: int, priv: Mapping, obs: np.ndarray) -> np.ndarray:
        """Batch row i: where to go (`_route`), then how to get the robot to do it."""
        cfg, st = self.config, self._states[i]
        x, y, yaw = (float(v) for v in priv["pose"][:3])
        xy = np.array([x, y])
        vel = np.asarray(priv["velocity"], dtype=float)
        gains = np.asarray(priv.get("motor_gain", (1.0, 1.0)), dtype=float)
        mu_here = float(np.min(priv.get("wheel_friction", [1.0])))
        drag_here = float(np.max(priv.get("wheel_drag", [0.0])))
        v_des, w_des = self._route(i, priv, obs, xy, yaw, vel, mu_here)

        # Acceleration limit: payload and mud drag cut the pull, ice the grip. The limit is
        # relative to the forward speed the last applied action asked for (obs prev_action),
        # so it holds whoever drove the last step (DAgger).
        mass = ROBOT_MASS_KG + float(priv.get("payload_kg", 0.0))
        pull = 4 * TORQUE_LIMIT_NM / WHEEL_RADIUS_M * float(np.mean(np.clip(gains, 0.05, 1.5))) * (1.0 - drag_here)
        dv = cfg.accel_fraction * min(max(mu_here, 0.05) * GRAVITY, pull / mass) * CONTROL_DT_S
        v_prev = delivered_motion(obs[PREV_ACTION], float(gains[0]), float(gains[1]))[0]
        v_des = float(np.clip(v_des, v_prev - 3 * dv, v_prev + dv))  # braking may be quicker

        v_des, w_des = self._unstick(st, priv, xy, yaw, v_des, w_des)
        # its own command was applied last step, or someone else's (a DAgger student's)
        own = st.last_action is None or bool(np.allclose(obs[PREV_ACTION], st.last_action, atol=1e-4))
        w_cmd = self._yaw_loop(st, w_des, float(vel[2]), v_des, mu_here, own)
        st.last_action = wheel_compensated_action(v_des, w_cmd, float(gains[0]), float(gains[1]))
        return st.last_action

    def _route(self, i: int, priv: Mapping, obs: np.ndarray, xy: np.ndarray, yaw: float, vel: np.ndarray,
               mu_here: float) -> tuple[float, float]:
        """The motion (v m/s, w rad/s) wanted now: pure pursuit along a path planned on the
        true map, as fast as the corners and obstacles ahead allow on the ground there."""
        self._follow_path(self._states[i], priv, xy)
        return self._pursue(self._states[i], priv, xy, yaw, vel, mu_here)

    def _follow_path(self, st: _State, priv: Mapping, xy: np.ndarray) -> None:
        """Plans when needed (no path yet, the goal moved, replan_s passed, off the path),
        then advances st.progress_m (m) to where along the path the robot is; once per step."""
        cfg = self.config
        goal = np.asarray(priv["goal"], dtype=float)[:2]
        if st.path is None or st.goal is None or np.hypot(*(goal - st.goal)) > 0.05 or st.since_plan_s >= cfg.replan_s:
            self._plan(st, priv, xy, goal)
        s, off = st.path.project(xy, st.progress_m - 0.5, st.progress_m + 2.0)
        if off > cfg.off_path_m:
            self._plan(st, priv, xy, goal)
            s, off = st.path.project(xy, 0.0, 1.0)
        st.progress_m = max(st.progress_m, s)
        st.since_plan_s += CONTROL_DT_S

    def _pursue(self, st: _State, priv: Mapping, xy: np.ndarray, yaw: float, vel: np.ndarray,
                mu_here: float) -> tuple[float, float]:
        """Pure pursuit (v m/s, w rad/s) along st.path from where _follow_path found the robot."""
        cfg = self.config
        goal = np.asarray(priv["goal"], dtype=float)[:2]
        speed = float(vel[0] * math.cos(yaw) + vel[1] * math.sin(yaw))  # forward, m/s
        v_lim = min(self._speed_limit(st, priv, mu_here), self._obstacle_limit(st, priv, xy, yaw, vel, mu_here))

        # Pure pursuit toward a target point on the path.
        target = self._pursuit_target(st, priv, xy, goal, speed, mu_here)
        dx, dy = target - xy
        alpha = _wrap(math.atan2(dy, dx) - yaw)
        if abs(alpha) > cfg.turn_in_place_rad:
            v_des = 0.0
            w_des = _spin_rate(alpha, mu_here)
        else:
            # Steering grips less on slippery ground: slow down more for the same heading error.
            v_des = v_lim * max(math.cos(alpha), 0.0) ** (2.0 / math.sqrt(max(min(mu_here, 1.0), 0.1)))
            kappa = 2.0 * math.sin(alpha) / max(math.hypot(dx, dy), 1e-6)
            w_des = float(np.clip(kappa * max(v_des, cfg.min_turn_speed), -W_MAX, W_MAX))
        return v_des, w_des

    def _plan(self, st: _State, priv: Mapping, xy: np.ndarray, goal: np.ndarray) -> None:
        """A path from xy to the goal on the most inflated map that still has one.

        Inflated maps are cached per obstacle map; the search starts from the inflation
        that worked last time (a failing search explores the whole map, so it is costly)
        and only tries the larger ones again when the goal changes.
        """
        cfg = self.config
        grid, res, origin = self._maps(st, priv)
        if st.goal is None or np.hypot(*(goal - st.goal)) > 0.05:
            st.inflate_from = 0
        pts = None
        for k in range(st.inflate_from, len(cfg.inflate_m)):
            if k not in st.inflated:
                st.inflated[k] = inflate(grid, cfg.inflate_m[k], res)
            pts = plan_path(st.inflated[k], res, origin, xy, goal)
            if pts is not None:
                st.inflate_from = k
                break
        st.path = _Path(pts if pts is not None else np.stack([xy, goal]))
        st.goal = goal.copy()
        st.progress_m = 0.0
        st.since_plan_s = 0.0

    def _maps(self, st: _State, priv: Mapping) -> tuple[np.ndarray, float, Any]:
        """The obstacle grid, its resolution (m) and origin; (re)builds the clearance grid and
        empties the inflated-map cache when the map changed."""
        om = priv["obstacle_map"]
        grid, res = np.asarray(om["grid"], dtype=bool), float(om["resolution_m"])
        key = (grid.shape, hash(np.packbits(grid).tobytes()))
        if st.map_key != key:
            st.map_key, st.inflated, st.inflate_from = key, {}, 0
            st.clear_grid = inflate(grid, self.config.clear_m, res)
        return grid, res, om["origin_xy"]

    def _speed_limit(self, st: _State, priv: Mapping, mu_here: float) -> float:
        """Fastest speed (m/s) from which every corner ahead can still be taken.

        Braking uses the worst friction between here and the corner (friction map).
        """
        cfg, path = self.config, st.path
        look = min(path.length - st.progress_m, 8.0)
        ahead_s = st.progress_m + np.arange(0.0, look + 0.2, 0.2)
        mu_ahead = self._friction_at(priv, np.array([path.point_at(a) for a in ahead_s]), mu_here)
        mu_worst = np.minimum.accumulate(np.concatenate([[mu_here], mu_ahead]))[1:]
        v_lim = cfg.max_speed
        for cs, turn in zip(path.corner_s, path.corner_turn):
            d = cs - st.progress_m
            if d < -0.2 or d > look or turn < 0.25:
                continue
            mu = float(min(mu_worst[min(int(max(d, 0.0) / 0.2), len(mu_worst) - 1)], 1.0))
            v_corner = cfg.corner_speed * math.sqrt(mu) / max(math.sin(min(turn, math.pi / 2)), 0.3)
            v_corner = float(np.clip(v_corner, cfg.min_corner_speed, cfg.max_speed))
            a_brake = cfg.brake_fraction * mu * GRAVITY
            v_lim = min(v_lim, math.sqrt(v_corner ** 2 + 2 * a_brake * max(d - cfg.stop_margin_m, 0.0)))
        return v_lim

    def _obstacle_limit(self, st: _State, priv: Mapping, xy: np.ndarray, yaw: float,
                        vel: np.ndarray, mu_here: float) -> float:
        """Fastest speed (m/s) that can still stop before the first obstacle (inflated by
        clear_m) straight along the direction of travel (the heading when slow)."""
        cfg = self.config
        heading = math.atan2(vel[1], vel[0]) if math.hypot(vel[0], vel[1]) > 0.2 else yaw
        u = np.array([math.cos(heading), math.sin(heading)])
        steps = np.arange(0.1, 6.0, 0.1)
        pts = xy + steps[:, None] * u
        om = priv["obstacle_map"]
        res, (ox, oy) = float(om["resolution_m"]), om["origin_xy"]
        g = st.clear_grid
        ix = np.clip(np.rint((pts[:, 0] - ox) / res).astype(int), 0, g.shape[1] - 1)
        iy = np.clip(np.rint((pts[:, 1] - oy) / res).astype(int), 0, g.shape[0] - 1)
        hit = np.flatnonzero(g[iy, ix])
        if hit.size == 0:
            return cfg.max_speed
        if hit[0] == 0:  # already inside the clearance band: leave it to the path
            return cfg.max_speed
        d = float(steps[hit[0]])
        mu = float(min(mu_here, self._friction_at(priv, pts[:hit[0] + 1], mu_here).min(), 1.0))
        return math.sqrt(cfg.min_corner_speed ** 2 + 2 * cfg.brake_fraction * mu * GRAVITY * max(d - cfg.stop_margin_m, 0.0))

    @staticmethod
    def _friction_at(priv: Mapping, pts: np.ndarray, default: float) -> np.ndarray:
        """Effective friction at world points from info's friction_map (default without one)."""
        fmap = priv.get("friction_map")
        if fmap is None:
            return np.full(len(pts), default)
        om = priv["obstacle_map"]
        fmap = np.asarray(fmap)
        res, (ox, oy) = float(om["resolution_m"]), om["origin_xy"]
        ix = np.clip(np.rint((pts[:, 0] - ox) / res).astype(int), 0, fmap.shape[1] - 1)
        iy = np.clip(np.rint((pts[:, 1] - oy) / res).astype(int), 0, fmap.shape[0] - 1)
        return fmap[iy, ix]

    def _pursuit_target(self, st: _State, priv: Mapping, xy: np.ndarray, goal: np.ndarray,
                        speed: float, mu_here: float) -> np.ndarray:
        """The lookahead point: further on slippery ground, but never past what the robot
        can reach in a straight line with clear_m of room (so corners are not cut)."""
        cfg = self.config
        grip = min(max(mu_here, 0.25), 1.0)
        lookahead = (cfg.lookahead_m + cfg.lookahead_per_speed_s * max(speed, 0.0)) / math.sqrt(grip)
        if np.hypot(*(goal - xy)) < lookahead and self._sees(st, priv, xy, goal):
            return goal.copy()
        la = lookahead
        while la > 0.4:
            target = st.path.point_at(st.progress_m + la)
            if self._sees(st, priv, xy, target):
                return target
            la *= 0.7
        return st.path.point_at(st.progress_m + 0.4)

    @staticmethod
    def _sees(st: _State, priv: Mapping, a: np.ndarray, b: np.ndarray) -> bool:
        om = priv["obstacle_map"]
        return segment_free(st.clear_grid, float(om["resolution_m"]), om["origin_xy"], a, b)

    def _unstick(self, st: _State, priv: Mapping, xy: np.ndarray, yaw: float,
                 v_des: float, w_des: float) -> tuple[float, float]:
        """Detects asking to move without moving; then drives away from the nearest obstacle
        for backoff_s and re-plans."""
        cfg = self.config
        if st.backoff_s > 0:
            st.backoff_s -= CONTROL_DT_S
            if st.backoff_s <= 0:
                st.path = None  # re-plan from where we ended up
                st.anchor = None
            return 0.35 * st.backoff_dir, 0.0
        pose = np.array([xy[0], xy[1], yaw])
        if st.anchor is None or np.hypot(*(xy - st.anchor[:2])) > 0.15 or abs(_wrap(yaw - st.anchor[2])) > 0.25:
            st.anchor = pose
            st.stuck_s = 0.0
        elif abs(v_des) > 0.02 or abs(w_des) > 0.2:
            st.stuck_s += CONTROL_DT_S
        if st.stuck_s > cfg.stuck_s:
            st.stuck_s = 0.0
            st.backoff_s = cfg.backoff_s
            st.backoff_dir = self._away_from_obstacle(priv, xy, yaw)
            return 0.35 * st.backoff_dir, 0.0
        return v_des, w_des

    @staticmethod
    def _away_from_obstacle(priv: Mapping, xy: np.ndarray, yaw: float) -> float:
        """+1 (drive forward) when the nearest obstacle within 2 m is behind, else -1."""
        om = priv["obstacle_map"]
        grid, res, (ox, oy) = np.asarray(om["grid"], dtype=bool), float(om["resolution_m"]), om["origin_xy"]
        cx, cy = int(round((xy[0] - ox) / res)), int(round((xy[1] - oy) / res))
        r = int(2.0 / res)
        y0, x0 = max(cy - r, 0), max(cx - r, 0)
        iy, ix = np.nonzero(grid[y0:cy + r + 1, x0:cx + r + 1])
        if iy.size == 0:
            return -1.0
        px, py = ox + (ix + x0) * res - xy[0], oy + (iy + y0) * res - xy[1]
        k = int(np.argmin(px * px + py * py))
        ahead = px[k] * math.cos(yaw) + py[k] * math.sin(yaw)
        return 1.0 if ahead < 0 else -1.0

    def _yaw_loop(self, st: _State, w_des: float, w_meas: float, v_des: float, mu_here: float,
                  own: bool) -> float:
        """Yaw-rate command (rad/s): w_des plus a bounded integral of the yaw-rate error, since
        skid-steer delivers only part of a commanded turn. On slippery ground both sides
        keep turning forward while driving: a big turn command there only spins the wheels
        against each other and kills the forward speed."""
        cfg = self.config
        if own:
            st.w_int = float(np.clip(st.w_int + cfg.yaw_rate_ki * (w_des - w_meas) * CONTROL_DT_S,
                                     -cfg.yaw_int_max, cfg.yaw_int_max))
        else:
            # The measured yaw rate answers a command the expert did not give (a DAgger
            # student drove): integrating its error would wind the integral up to full lock.
            # It fades instead, so a label is the expert's answer to the state.
            st.w_int *= math.exp(-CONTROL_DT_S / cfg.yaw_int_fade_s)
        w_cmd = float(np.clip(w_des + st.w_int, -W_MAX, W_MAX))
        if mu_here < cfg.ice_friction:
            w_cap = max(abs(v_des), 0.15) / (TRACK_M / 2)
            w_cmd = float(np.clip(w_cmd, -w_cap, w_cap))
        return w_cmd


@dataclass
class _Rescue:
    """The guided teacher's rescue state for one environment of the batch."""

    goal: Optional[np.ndarray] = None  # the goal the figures below are about
    best_path_m: float = math.inf  # shortest planned path to the goal (m) since the last hand-back ...
    best_line_m: float = math.inf  # ... and straight-line distance, both in steps of rescue_progress_m
    since_best_s: float = 0.0  # s since either got rescue_progress_m shorter
    left_s: float = 0.0  # s the rescue may still drive; > 0 while it drives


class GuidedExpert(ExpertController):
    """The expert's driving on the classical controller's route: the teacher whose labels a
    policy that sees only the observation can learn.

    Where to go (heading and speed) is the classical controller's choice from the lidar,
    capped by the expert's friction-aware stopping distance to the true obstacles ahead; how
    to get there is the expert's, with privileged knowledge: acceleration limited by payload,
    drag and grip, backing off when stuck, the yaw-rate loop, and wheel commands that undo
    the motor gains. A student correcting the classical controller (policy `base: classical`)
    learns from it only what the observation can tell: compensation for the robot and the
    ground, and backing out, not a route it cannot see.

    With ExpertConfig.rescue it also shows how to get out of the local minima the classical
    route leads into (a U of obstacles, a wall across the way): when the route stalls (for
    rescue_stall_s neither the path planned on the true map nor the straight line to the goal
    got rescue_progress_m shorter than ever before, or the robot had to back off), the expert's
    own route drives until the robot is rescue_escape_m closer to the goal than it ever was
    before (out of the basin of the local minimum of goal distance that trapped the classical
    route), or for rescue_max_s at most, then the classical route again. Without a stall its
    actions are bit-identical to those of the rescue-less teacher.

    With ExpertConfig.escape instead, the route is the `classical-escape` controller's, a way
    out the observation history can tell: where the observation's goal distance stalls, it
    commits to the side where the lidar reads more free range and follows the obstacle's
    boundary on that side until out (policies/classical.py, ClassicalConfig.escape). A
    student correcting `classical-escape` (`base: classical-escape`) then only learns how
    to drive that route. Without a stall its actions are bit-identical to those of the
    guided teacher.
    """

    name = "guided"

    def __init__(self, config: Optional[ExpertConfig] = None) -> None:
        from navctl.policy_names import classical_controller

        super().__init__(config)
        if self.config.rescue and self.config.escape:
            raise ValueError("ExpertConfig: rescue and escape are alternatives, turn on at most one")
        self._classical = classical_controller(escape=self.config.escape)
        self._rescues: list[_Rescue] = [_Rescue()]

    def reset(self, batch_size: int = 1) -> None:
        super().reset(batch_size)
        self._classical.reset(batch_size)
        self._rescues = [_Rescue() for _ in range(batch_size)]

    def rescuing(self, i: int = 0) -> bool:
        """True while the rescue (the expert's route), the escape or its unstick drives batch row i."""
        c = self._classical
        return self._rescues[i].left_s > 0 or c.escaping(i) or c.unsticking(i)

    def escape_side(self, i: int = 0) -> float:
        """The side the last escape of batch row i committed to (+1 counter-clockwise, -1
        clockwise); 0 before the first escape of the current goal."""
        return self._classical.escape_side(i)

    def _route(self, i: int, priv: Mapping, obs: np.ndarray, xy: np.ndarray, yaw: float, vel: np.ndarray,
               mu_here: float) -> tuple[float, float]:
        heading, v = self._classical.route(i, obs)  # every step: it keeps its lidar memory current
        st = self._states[i]
        if self.config.rescue and self._rescue_drives(i, priv, xy):
            return self._pursue(st, priv, xy, yaw, vel, mu_here)
        self._maps(st, priv)
        if abs(heading) > self.config.turn_in_place_rad:
            return 0.0, _spin_rate(heading, mu_here)
        v = min(v, self._obstacle_limit(st, priv, xy, yaw, vel, mu_here))
        return v, self._classical.yaw_rate(heading)

    def _rescue_drives(self, i: int, priv: Mapping, xy: np.ndarray) -> bool:
        """Whether the expert's route drives this step: tracks the path planned on the true
        map (also while the classical route drives; that changes none of its actions) and the
        rescue's bookkeeping for batch row i, once per step. While the classical route drives
        it tracks progress along the planned path and in straight line, and takes over on a
        stall; it hands back once rescue_escape_m closer to the goal than ever before the
        stall, or after rescue_max_s."""
        cfg, st, r = self.config, self._states[i], self._rescues[i]
        self._follow_path(st, priv, xy)
        remaining = st.path.length - st.progress_m  # m along the planned path to the goal
        to_goal = float(np.hypot(*(st.goal - xy)))  # m, straight line
        if r.goal is None or np.hypot(*(st.goal - r.goal)) > 0.05:  # a new (or moved) goal
            self._rescues[i] = r = _Rescue(goal=st.goal.copy())
        if r.left_s > 0:
            r.left_s -= CONTROL_DT_S
            if to_goal < r.best_line_m - cfg.rescue_escape_m or r.left_s <= 0:  # escaped, or enough
                r.left_s, r.best_path_m, r.best_line_m, r.since_best_s = 0.0, remaining, to_goal, 0.0
                return False
            return True
        r.since_best_s += CONTROL_DT_S
        if remaining < r.best_path_m - cfg.rescue_progress_m:
            r.best_path_m, r.since_best_s = remaining, 0.0
        if to_goal < r.best_line_m - cfg.rescue_progress_m:
            r.best_line_m, r.since_best_s = to_goal, 0.0
        if r.since_best_s >= cfg.rescue_stall_s or (cfg.rescue_on_backoff and st.backoff_s > 0):
            r.left_s = cfg.rescue_max_s
            return True
        return False
