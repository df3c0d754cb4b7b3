"""A non-learned, non-privileged baseline: goal seeking with lidar obstacle avoidance.

Reads only the observation (goal distance and bearing, body velocities, the 24-ray lidar).
Each step it turns the lidar ranges into points, keeps the last couple of seconds of them
in the robot frame by dead reckoning (so an obstacle stays known once it slips between rays
or inside the lidar's blind ring), and picks, vector-field-histogram style, the heading
closest to the goal bearing whose straight corridor (robot width plus a margin) is free far
enough. No adaptation: motor weakness, ice and payload are not compensated. numpy only.
With ClassicalConfig.escape (`classical-escape`) it also gets out of local minima of goal
distance by following an obstacle's boundary on one side where it stalls, and out of spots
where the wheels stall (a turn on the spot with a heavy payload, a climb in mud, a bumper
against a post): asked to move without moving, it drives an arc the other way for a moment.

What it knows of the robot it is given (navctl passes the env's values): the observation
layout, the control period, the lidar's range and the action's full-scale speeds. The lidar's
rays are taken to be evenly spread counter-clockwise from straight ahead.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from policies.base import ACT_DIM, Policy
from policies.progress import ProgressSpec, StallClock

ESCAPE_CLOCK = ProgressSpec()  # the escape's stall clock: progress, stall and escape figures


@dataclass(frozen=True)
class Robot:
    """What the controller knows of the robot and its sensors (given by navctl from the env)."""

    obs_layout: Mapping[str, slice]  # name -> slice of the observation (see envs' obs_layout)
    control_dt_s: float  # s between two act() calls
    lidar_range_m: float  # a lidar ray that hits nothing reads this
    v_max: float  # m/s forward speed at action[0] = 1
    w_max: float  # rad/s yaw rate at action[1] = 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able copy (slices as [start, stop]), as a checkpoint stores it."""
        return {"obs_layout": {k: [s.start, s.stop] for k, s in self.obs_layout.items()},
                "control_dt_s": self.control_dt_s, "lidar_range_m": self.lidar_range_m,
                "v_max": self.v_max, "w_max": self.w_max}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Robot":
        """The inverse of `to_dict`; ValueError naming what is missing or malformed."""
        try:
            layout = {str(k): slice(int(v[0]), int(v[1])) for k, v in data["obs_layout"].items()}
            robot = cls(layout, float(data["control_dt_s"]), float(data["lidar_range_m"]),
                        float(data["v_max"]), float(data["w_max"]))
        except (KeyError, TypeError, IndexError, ValueError, AttributeError) as e:
            raise ValueError(f"base robot description is malformed ({type(e).__name__}: {e}); "
                             f"expected the keys of policies.classical.Robot") from None
        missing = sorted({"goal_distance", "goal_bearing", "lin_vel", "ang_vel", "lidar"} - set(layout))
        if missing:
            raise ValueError(f"base robot description: obs_layout lacks {missing}")
        return robot

    @property
    def lidar_angles(self) -> np.ndarray:
        """rad, counter-clockwise from straight ahead, one per ray."""
        lidar = self.obs_layout["lidar"]
        rays = lidar.stop - lidar.start
        return np.arange(rays) * (2 * math.pi / rays)


@dataclass
class ClassicalConfig:
    """Tuning; lengths in metres, speeds m/s, angles rad, times s."""

    half_width_m: float = 0.3  # half the chassis width ...
    margin_m: float = 0.25  # ... plus this much clearance on each side of the corridor
    front_m: float = 0.55  # chassis half-length: points closer ahead than this are beside us
    need_free_m: float = 2.5  # a heading is "free" when its corridor is clear this far (or to the goal)
    headings: int = 72  # candidate headings around the full circle
    memory_s: float = 2.0  # how long lidar points are remembered
    memory_radius_m: float = 4.0  # and only this close
    heading_gain: float = 2.0  # yaw rate (rad/s) per rad of heading error
    turn_in_place_rad: float = 1.0  # heading error above which the robot turns on the spot
    max_speed: float = 0.9  # m/s
    slow_clearance_m: float = 2.0  # slow down when the chosen corridor is clear less than this
    stop_clearance_m: float = 0.25  # and stop at this much free corridor in front of the chassis
    hysteresis_rad: float = 0.3  # cost bonus (rad) for staying near the previous heading
    # The escape from local minima of goal distance (a U of obstacles, a wall across the way),
    # off in the `classical` controller, on in `classical-escape`: when the goal distance has
    # not got progress_m shorter than ever before for stall_s (policies/progress.py,
    # StallClock, with ProgressSpec's figures), commit to the side where the lidar reads more
    # free range and follow the obstacle's boundary on that side until the goal is escape_m
    # closer than ever before with a free heading within escape_goalward_rad of the goal
    # bearing, or for escape_max_s at most.
    # With the escape on, also the unstick: when the last applied action (the observation's
    # prev_action) asked to move and the body has not moved (smoothed speed and yaw rate
    # under still_mps and still_radps) for unstick_after_s, drive unstick_s along an arc at
    # unstick_speed_mps the other way (reverse after asking forward, else towards the
    # freer of front and back; the opposite of the last manoeuvre when it ended under
    # unstick_repeat_s ago), holding unstick_heading_rad towards the side it was turning to.
    escape: bool = False
    escape_goalward_rad: float = 0.2
    unstick_after_s: float = 1.5
    unstick_s: float = 2.0
    unstick_speed_mps: float = 0.6
    unstick_heading_rad: float = 0.3
    unstick_repeat_s: float = 5.0
    still_mps: float = 0.05
    still_radps: float = 0.1
    still_smoothing_s: float = 0.5  # time constant of the speed and yaw-rate smoothing
    new_goal_jump_m: float = 0.5  # the goal distance growing this much in one step = a new goal


HEADING_BATCH = 8  # candidate headings whose corridors are measured together
UNSTICK_CONE_RAD = 0.55  # lidar rays within this of straight ahead (behind) tell the room in front (behind)


class _Memory:
    """Lidar points of the last few seconds, kept in the current robot frame (metres)."""

    def __init__(self) -> None:
        self.points = np.zeros((0, 2))
        self.ages = np.zeros(0)

    def update(self, ranges: np.ndarray, vx: float, vy: float, w: float, cfg: ClassicalConfig,
               robot: Robot, cos_sin: np.ndarray) -> np.ndarray:
        """Adds a scan (ranges in m, one per ray; cos_sin (2, rays) of the rays' angles) after
        the robot moved (vx, vy) m/s and turned w rad/s for one control period; returns all
        remembered points (N, 2), robot frame."""
        dt = robot.control_dt_s
        dth = w * dt
        c, s = math.cos(dth), math.sin(dth)
        p = self.points - np.array([vx * dt, vy * dt])
        p = p @ np.array([[c, -s], [s, c]])  # rotate by -dth (row vectors)
        hit = ranges < robot.lidar_range_m - 0.05
        new = (ranges[hit] * cos_sin[:, hit]).T
        ages = self.ages + dt
        keep = (ages < cfg.memory_s) & (np.hypot(p[:, 0], p[:, 1]) < cfg.memory_radius_m)
        self.points = np.concatenate([p[keep], new])
        self.ages = np.concatenate([ages[keep], np.zeros(len(new))])
        return self.points


def corridor_clearance(points: np.ndarray, headings: np.ndarray, half_width_m: float, front_m: float,
                       max_m: float) -> np.ndarray:
    """Free length (m) of a straight corridor of half-width half_width_m along each heading.

    `points` (N, 2) are obstacle points in the robot frame; length is measured from the
    chassis front (front_m ahead of the centre). max_m (the lidar's range) when nothing blocks.
    """
    return _clearance(points, np.stack([np.cos(headings), np.sin(headings)], axis=1), half_width_m, front_m, max_m)


def _clearance(points: np.ndarray, u: np.ndarray, half_width_m: float, front_m: float, max_m: float) -> np.ndarray:
    """corridor_clearance along the unit vectors u (H, 2)."""
    if len(points) == 0:
        return np.full(len(u), max_m)
    along = points @ u.T  # (N, H)
    cross = np.abs(points[:, :1] * u[:, 1] - points[:, 1:] * u[:, 0])
    return _free_length(along, cross, half_width_m, front_m, max_m)


def _clearance_ahead(points: np.ndarray, half_width_m: float, front_m: float, max_m: float) -> float:
    """_clearance straight ahead (u = (1, 0)), where along and cross are x and |y| exactly."""
    if len(points) == 0:
        return max_m
    return float(_free_length(points[:, 0], np.abs(points[:, 1]), half_width_m, front_m, max_m))


def _free_length(along: np.ndarray, cross: np.ndarray, half_width_m: float, front_m: float,
                 max_m: float) -> np.ndarray:
    """Free corridor length (m) per column from the points' distances along (m) and across
    (m, absolute) each corridor's axis."""
    blocking = (cross < half_width_m) & (along > -0.1)
    d = np.where(blocking, along - front_m, np.inf).min(axis=0)
    return np.minimum(max_m, np.maximum(d, 0.0))


@dataclass
class _Escape:
    """One batch row's escape state."""

    clock: StallClock = field(default_factory=StallClock)
    side: float = 0.0  # +1 follows the boundary counter-clockwise from the goal bearing, -1 clockwise
    last_m: float = math.inf  # the last step's goal distance (m)


@dataclass
class _Unstick:
    """One batch row's unstick state."""

    speed_mps: float = 0.0  # smoothed |forward speed|
    yaw_radps: float = 0.0  # smoothed |yaw rate|
    still_s: float = 0.0  # s asked to move without moving
    left_s: float = 0.0  # s the current manoeuvre still drives; > 0 while it does
    since_s: float = math.inf  # s since the last manoeuvre ended
    direction: float = 1.0  # the last manoeuvre's: +1 forward, -1 reverse
    heading: float = 0.0  # the heading (rad, robot frame) the manoeuvre holds


class ClassicalController(Policy):
    """Goal seeking with lidar obstacle avoidance; observation only, no adaptation."""

    name = "classical"
    privileged = False

    def __init__(self, robot: Robot, config: Optional[ClassicalConfig] = None) -> None:
        self.robot = robot
        self.config = config or ClassicalConfig()
        layout = robot.obs_layout
        self._goal_distance = layout["goal_distance"].start
        self._goal_sin, self._goal_cos = layout["goal_bearing"].start, layout["goal_bearing"].start + 1
        self._lin_vel, self._yaw_rate = layout["lin_vel"].start, layout["ang_vel"].start + 2
        self._lidar = layout["lidar"]
        self._ray_cos_sin = np.stack([np.cos(robot.lidar_angles), np.sin(robot.lidar_angles)])
        self._headings = np.linspace(-math.pi, math.pi, self.config.headings, endpoint=False)  # candidates, rad
        self._directions = np.stack([np.cos(self._headings), np.sin(self._headings)], axis=1)
        self._mem: list[_Memory] = [_Memory()]
        self._prev: list[float] = [0.0]
        self._escapes: list[_Escape] = [_Escape()]
        self._unsticks: list[_Unstick] = [_Unstick()]
        if self.config.escape:
            if "prev_action" not in layout:
                raise ValueError("ClassicalConfig.escape needs the observation's prev_action in Robot.obs_layout")
            self._prev_action = layout["prev_action"].start
            angles = robot.lidar_angles
            self._front_rays = np.cos(angles) > math.cos(UNSTICK_CONE_RAD)
            self._back_rays = np.cos(angles) < -math.cos(UNSTICK_CONE_RAD)

    def reset(self, batch_size: int = 1) -> None:
        self._mem = [_Memory() for _ in range(batch_size)]
        self._prev = [0.0] * batch_size
        self._escapes = [_Escape() for _ in range(batch_size)]
        self._unsticks = [_Unstick() for _ in range(batch_size)]

    def act(self, obs: np.ndarray, info: Optional[dict[str, Any] | Sequence[dict[str, Any]]] = None) -> np.ndarray:
        obs = np.asarray(obs, dtype=float)
        batch = obs.reshape(-1, obs.shape[-1])
        if len(batch) != len(self._mem):
            self.reset(len(batch))
        out = np.array([self._act_one(i, o) for i, o in enumerate(batch)], dtype=np.float32).reshape(-1, ACT_DIM)
        return out[0] if obs.ndim == 1 else out

    def _act_one(self, i: int, o: np.ndarray) -> np.ndarray:
        heading, v = self.route(i, o)
        return np.array([v / self.robot.v_max, self.yaw_rate(heading) / self.robot.w_max])

    def yaw_rate(self, heading: float) -> float:
        """The yaw rate (rad/s) it turns with towards `heading` (rad, robot frame)."""
        return min(max(self.config.heading_gain * heading, -self.robot.w_max), self.robot.w_max)

    def decide(self, i: int, o: np.ndarray) -> tuple[float, float]:
        """Sample i's step on observation `o`: the heading to take (rad, robot frame, CCW)
        and the forward speed (m/s). Updates the lidar memory; call once per step."""
        cfg, robot = self.config, self.robot
        dist, bearing = self._goal(o)
        yaw_rate = float(o[self._yaw_rate])
        turned = yaw_rate * robot.control_dt_s
        vx, vy = float(o[self._lin_vel]), float(o[self._lin_vel + 1])
        points = self._mem[i].update(o[self._lidar], vx, vy, yaw_rate, cfg, robot, self._ray_cos_sin)
        prev = self._prev[i] - turned  # last step's heading, in this step's frame

        headings = self._headings
        off_goal = np.abs((headings - bearing + math.pi) % (2 * math.pi) - math.pi)
        off_prev = np.abs((headings - prev + math.pi) % (2 * math.pi) - math.pi)
        cost = off_goal + cfg.hysteresis_rad * np.minimum(off_prev, 1.0)
        k = self._first_free(points, np.argsort(cost, kind="stable"), off_goal, self._need(dist))
        heading = float(headings[k])
        self._prev[i] = heading
        return heading, self._speed(points, heading, dist)

    def route(self, i: int, o: np.ndarray) -> tuple[float, float]:
        """Sample i's heading (rad, robot frame) and forward speed (m/s) this step: `decide`'s,
        or the escape's while it drives (with ClassicalConfig.escape). Call once per step."""
        heading, v = self.decide(i, o)
        if self.config.escape:
            escape = self._escape_heading(i, o)
            if escape is not None:
                heading, v = escape, self.take(i, o, escape)
            if self._unstick(i, o):
                u = self._unsticks[i]
                heading, v = u.heading, u.direction * self.config.unstick_speed_mps
        return heading, v

    def unsticking(self, i: int = 0) -> bool:
        """True while the unstick manoeuvre drove sample i's last step."""
        return self._unsticks[i].left_s > 0

    def _unstick(self, i: int, o: np.ndarray) -> bool:
        """Advances sample i's unstick bookkeeping by one step; True when its manoeuvre
        drives this step (its direction and heading are then in self._unsticks[i])."""
        cfg, u, dt = self.config, self._unsticks[i], self.robot.control_dt_s
        k = min(dt / cfg.still_smoothing_s, 1.0)
        u.speed_mps += k * (abs(float(o[self._lin_vel])) - u.speed_mps)
        u.yaw_radps += k * (abs(float(o[self._yaw_rate])) - u.yaw_radps)
        if u.left_s > 0:
            u.left_s -= dt
            if u.left_s > 0:
                return True
            u.since_s = 0.0
        u.since_s += dt
        v_asked = float(o[self._prev_action]) * self.robot.v_max
        w_asked = float(o[self._prev_action + 1]) * self.robot.w_max
        drive_asked = abs(v_asked) > 0.1  # m/s, forward or reverse
        asked = drive_asked or abs(w_asked) > 0.3
        still = u.speed_mps < cfg.still_mps and u.yaw_radps < cfg.still_radps
        u.still_s = u.still_s + dt if asked and still else 0.0
        if u.still_s < cfg.unstick_after_s:
            return False
        if u.since_s < cfg.unstick_repeat_s:
            u.direction = -u.direction  # the last way out led straight back in: try the other
        elif drive_asked:
            u.direction = -math.copysign(1.0, v_asked)
        else:
            ranges = o[self._lidar]
            front, back = float(ranges[self._front_rays].min()), float(ranges[self._back_rays].min())
            u.direction = 1.0 if front > max(back, 0.8) else -1.0
        u.heading = math.copysign(cfg.unstick_heading_rad, w_asked) if abs(w_asked) > 0.1 else 0.0
        u.still_s, u.left_s = 0.0, cfg.unstick_s
        return True

    def escaping(self, i: int = 0) -> bool:
        """True while the escape drove sample i's last step."""
        return self._escapes[i].clock.escaping

    def escape_side(self, i: int = 0) -> float:
        """The side sample i's last escape followed (+1 counter-clockwise, -1 clockwise); 0 before one."""
        return self._escapes[i].side

    def _escape_heading(self, i: int, o: np.ndarray) -> Optional[float]:
        """The escape's heading (rad, robot frame) when it drives this step, else None."""
        cfg, e = self.config, self._escapes[i]
        dist = float(o[self._goal_distance])
        if dist > e.last_m + cfg.new_goal_jump_m:
            self._escapes[i] = e = _Escape()
        e.last_m = dist
        if e.clock.escaping:  # one boundary scan: this step's heading, and whether the goal-ward one is free
            heading, off_goal = self.one_sided_heading(i, o, e.side)
            e.clock.advance(dist, self.robot.control_dt_s, ESCAPE_CLOCK, lambda: off_goal <= cfg.escape_goalward_rad)
            return heading if e.clock.escaping else None
        e.clock.advance(dist, self.robot.control_dt_s, ESCAPE_CLOCK)
        if not e.clock.escaping:
            return None
        ranges = o[self._lidar]  # just stalled: commit to the side with more free range
        half = len(ranges) // 2
        e.side = 1.0 if ranges[1:half].sum() >= ranges[half + 1:].sum() else -1.0
        return self.one_sided_heading(i, o, e.side)[0]

    def one_sided_heading(self, i: int, o: np.ndarray, side: float) -> tuple[float, float]:
        """For following an obstacle's boundary on one side: the first candidate heading
        (rad, robot frame) whose corridor is free, scanning from the goal bearing only
        counter-clockwise (side > 0) or only clockwise (side < 0), and how far (rad, >= 0)
        it is from the goal bearing in that direction. Reads the lidar memory as this step's
        `decide` left it; changes nothing."""
        dist, bearing = self._goal(o)
        turn = (math.copysign(1.0, side) * (self._headings - bearing)) % (2 * math.pi)
        k = self._first_free(self._mem[i].points, np.argsort(turn, kind="stable"), turn, self._need(dist))
        return float(self._headings[k]), float(turn[k])

    def take(self, i: int, o: np.ndarray, heading: float) -> float:
        """Takes `heading` (rad, robot frame) instead of this step's `decide` choice: it is
        remembered as the previous heading (hysteresis); returns the forward speed (m/s)
        `decide` would drive with along it."""
        self._prev[i] = heading
        return self._speed(self._mem[i].points, heading, self._goal(o)[0])

    def _goal(self, o: np.ndarray) -> tuple[float, float]:
        """Goal distance (m) and bearing (rad, robot frame, CCW) in observation `o`."""
        return float(o[self._goal_distance]), math.atan2(o[self._goal_sin], o[self._goal_cos])

    def _need(self, dist: float) -> float:
        """How far (m) a corridor must be free, with the goal `dist` m away."""
        return min(self.config.need_free_m, max(dist - 0.3, 0.3))

    def _first_free(self, points: np.ndarray, order: np.ndarray, off_goal: np.ndarray, need: float) -> int:
        """Index of the first candidate heading in `order` whose corridor is free `need` m;
        when none is, the most open one, leaning to the goal (off_goal: rad from its bearing)."""
        cfg = self.config
        # The corridors are measured a few headings at a time, in order, and the search stops
        # at the first free one: usually one batch instead of all 72.
        free = np.empty(len(self._headings))
        for start in range(0, len(order), HEADING_BATCH):
            batch = order[start:start + HEADING_BATCH]
            free[batch] = _clearance(points, self._directions[batch], cfg.half_width_m + cfg.margin_m, cfg.front_m,
                                     self.robot.lidar_range_m)
            ok = free[batch] >= need
            if ok.any():
                return int(batch[int(np.argmax(ok))])
        return int(np.argmax(free - 0.1 * off_goal))

    def _speed(self, points: np.ndarray, heading: float, dist: float) -> float:
        """Forward speed (m/s) along `heading` (rad) from the clearance straight ahead (the
        corridor we are actually in) and the turn still to make; the goal `dist` m away."""
        cfg = self.config
        ahead = _clearance_ahead(points, cfg.half_width_m + 0.05, cfg.front_m, self.robot.lidar_range_m)
        if abs(heading) > cfg.turn_in_place_rad:
            return 0.0
        v = cfg.max_speed * math.cos(heading) ** 2
        v *= min(max((ahead - cfg.stop_clearance_m) / cfg.slow_clearance_m, 0.0), 1.0)
        return min(v, 0.3 + 0.5 * dist)
