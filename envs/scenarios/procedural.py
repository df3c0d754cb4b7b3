"""Procedural scenarios: a valid, feasible scenario from a seed (format version 1, SCENARIOS.md).

    generate(17)                      -> Scenario "procedural-17"
    generate(17, layout="wall-gap")   -> a scenario with that obstacle layout
    procedural_seed("test", 3)        -> the generator seed of the 4th test scenario

Everything is drawn from `np.random.default_rng(seed)`, so a seed always gives the same
scenario. What is drawn (lengths in metres, angles degrees, times seconds):
- arena 12-30 m a side; start and goal at least 6 m apart, 1.2 m or more inside the edge;
- 0-3 hills or hollows (slope at most 0.3), roughness 0-0.04 m;
- 0-3 friction zones, rectangles (turned) or circles: black ice 0.05-0.15, slick 0.2-0.4,
  mud 0.4-0.6 with drag 0.15-0.4, gravel 0.6-0.8;
- one obstacle layout of LAYOUTS: open ground, clutter, slalom posts, walls with a gap, a
  corridor, or a `random:` entry the env draws per episode;
- 0-3 events (a side's motor gain down to 0.25, friction_scale, payload up to 60 kg),
  triggered at a time, after a distance driven or on entering a zone;
- randomize ranges (start, goal, friction scale, payload, motor gains) and sensor noise.
What the robot could not do is not drawn: a zone's friction (times any friction_scale the
scenario may apply) is at least twice the steepest slope in it, hills plus roughness bumps
(the ground's 1.5 times), and never below MIN_FRICTION; a weak motor side is never paired
with more payload than it can turn (turn_gain_floor). The time limit scales with the
planned path length and what slows the robot (ice, mud, weak motors, payload, obstacles).

Every scenario is written as the tree `dump` writes and read back through the parser's
checks before it is returned (so it passes what a file passes), and it is feasible: the
start and goal regions are clear and connected on the grid planner's map
(envs/planning.py) with obstacles inflated by FEASIBLE_CLEARANCE_M. The env draws the boxes
of a `random:` entry per episode, so that entry is only used on open ground: at most 3
boxes of at most 0.8 m, start and goal 3 m inside the edge. Such boxes, each blocking a
disc of at most 0.57 + 0.6 m radius, cannot close a 12 m arena (3 x 2.3 m < 12 m) nor
ring a start or goal they keep 1.5 m away from (a ring of radius 2 m is 13 m round).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .writer import dump_tree
from .model import (
    Arena, BoxObstacle, Circle, CylinderObstacle, Event, EventSet, Goal, GoalRandomize, Hill, MotorGain,
    MotorGainRandomize, Obstacle, Pose, RandomObstacles, Randomize, Rect, RobotSpec, Scenario, Sensors,
    SensorNoise, StartRandomize, Surface,
)
from .parse import from_dict

# Spacing of the roughness bumps, as envs/terrain.py draws them (a copy: envs.terrain imports
# this package; tests/test_generator.py checks that the two agree).
BUMP_SPACING_M = 0.6

LAYOUTS = ("open", "clutter", "slalom", "wall-gap", "corridor", "random")
SIZE_RANGE_M = (12.0, 30.0)
MIN_ROUTE_M = 6.0  # start to goal, straight line
MAX_ROUTE_M = 26.0
FEASIBLE_CLEARANCE_M = 0.6  # obstacles inflated by this for the feasibility check (the chassis' half diagonal)
KEEP_CLEAR_M = 1.5  # fixed obstacles stay this far from where the robot may start or the goal may lie
EDGE_MARGIN_M = 0.3  # fixed obstacles stay this far inside the arena edge
MAX_SLOPE = 0.3  # steepest hill flank (rise over run); the Husky climbs 0.31 with 45 kg in mud-free ground
MAX_PAYLOAD_KG = 60.0
MIN_FRICTION = 0.05  # lowest zone friction x friction_scale a scenario may produce
NOMINAL_SPEED = 0.7  # m/s, a competent driver's average on open dry ground

# Generator seeds of the three procedural splits: disjoint, fixed. Train on "train", choose on
# "validation", report on "test".
PROCEDURAL_SPLITS: dict[str, range] = {
    "train": range(0, 1_000_000),
    "validation": range(1_000_000, 1_010_000),
    "test": range(2_000_000, 2_010_000),
}


def procedural_seed(split: str, index: int) -> int:
    """The generator seed of scenario number `index` (0-based) of a procedural split."""
    if split not in PROCEDURAL_SPLITS:
        raise ValueError(f"split must be one of {', '.join(PROCEDURAL_SPLITS)}, got {split!r}")
    seeds = PROCEDURAL_SPLITS[split]
    if not 0 <= index < len(seeds):
        raise ValueError(f"index must be in [0, {len(seeds)}) for the {split} split, got {index}")
    return seeds[index]


def _r(x: float, digits: int = 2) -> float:
    """Rounded for the file: short numbers that read back exactly."""
    return round(float(x), digits) + 0.0  # + 0.0 turns -0.0 into 0.0


@dataclass(frozen=True)
class _Route:
    """Start and goal, with the half widths of their randomize boxes; t runs 0..1 from start
    to goal, v sideways (metres, to the left)."""

    start: np.ndarray
    goal: np.ndarray
    start_jitter: float
    goal_jitter: float

    @property
    def length(self) -> float:
        return float(np.linalg.norm(self.goal - self.start))

    @property
    def heading_deg(self) -> float:
        d = self.goal - self.start
        return math.degrees(math.atan2(d[1], d[0]))

    def at(self, t: float, v: float = 0.0) -> np.ndarray:
        d = self.goal - self.start
        normal = np.array([-d[1], d[0]]) / max(self.length, 1e-9)
        return self.start + t * d + v * normal

    def ends(self) -> list[tuple[np.ndarray, float]]:
        """(centre, radius of the circle round its randomize box) for the start and the goal."""
        return [(self.start, self.start_jitter * math.sqrt(2)), (self.goal, self.goal_jitter * math.sqrt(2))]


# ---------------------------------------------------------------- arena, route, ground

def _draw_route(rng: np.random.Generator, size: tuple[float, float], margin: float, shortest: float) -> _Route:
    """Start and goal inside the arena, `shortest`..MAX_ROUTE_M apart (the longest of 50 tries
    if none fits)."""
    jitters = [float(rng.choice([0.0, 0.25, 0.5, 0.75])) for _ in range(2)]
    best = None
    for _ in range(50):
        pts = [np.array([_r(rng.uniform(-(s / 2 - margin - j), s / 2 - margin - j)) for s in size]) for j in jitters]
        d = float(np.linalg.norm(pts[1] - pts[0]))
        if shortest <= d <= MAX_ROUTE_M:
            return _Route(pts[0], pts[1], *jitters)
        if best is None or (d <= MAX_ROUTE_M and d > float(np.linalg.norm(best[1] - best[0]))):
            best = pts
    return _Route(best[0], best[1], *jitters)


def _draw_hills(rng: np.random.Generator, size: tuple[float, float]) -> tuple[Hill, ...]:
    hills = []
    for _ in range(int(rng.choice(4, p=[0.35, 0.3, 0.25, 0.1]))):
        radius = rng.uniform(2.5, 4.5)
        top = MAX_SLOPE * radius / 1.21  # a gaussian bump's steepest flank is 1.21 height / radius
        height = rng.uniform(0.2, min(0.9, top)) if rng.random() < 0.7 else -rng.uniform(0.2, min(0.6, top))
        center = [_r(rng.uniform(-s / 2, s / 2), 1) for s in size]
        hills.append(Hill(center=tuple(center), radius_m=_r(radius, 1), height_m=_r(height)))
    return tuple(hills)


def hill_slope(hills: tuple[Hill, ...], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Steepness |grad h| (rise over run) of the summed gaussian hills at world points."""
    gx, gy = np.zeros(np.shape(x)), np.zeros(np.shape(x))
    for hill in hills:
        sigma2 = (hill.radius_m / 2) ** 2
        dx, dy = x - hill.center[0], y - hill.center[1]
        k = -hill.height_m * np.exp(-(dx * dx + dy * dy) / (2 * sigma2)) / sigma2
        gx, gy = gx + k * dx, gy + k * dy
    return np.hypot(gx, gy)


_SURFACE_KINDS = {  # name: (friction range, drag range)
    "black-ice": ((0.05, 0.15), (0.0, 0.0)),
    "slick": ((0.2, 0.4), (0.0, 0.0)),
    "mud": ((0.4, 0.6), (0.15, 0.4)),
    "gravel": ((0.6, 0.8), (0.0, 0.1)),
}


def _draw_shape(rng: np.random.Generator, route: _Route, size: tuple[float, float]) -> Rect | Circle:
    """A zone on or near the route: a strip across it, a turned patch, or a circle."""
    center = tuple(_r(c, 1) for c in route.at(rng.uniform(0.2, 0.8), rng.uniform(-2.0, 2.0)))
    kind = rng.random()
    if kind < 0.35:  # a strip across the route
        across = rng.uniform(6.0, math.hypot(*size))
        return Rect(center=center, size=(_r(rng.uniform(1.5, 5.0), 1), _r(across, 1)),
                    yaw_deg=_r(route.heading_deg + rng.uniform(-30, 30), 1))
    if kind < 0.65:
        return Rect(center=center, size=(_r(rng.uniform(2.0, 6.0), 1), _r(rng.uniform(2.0, 6.0), 1)),
                    yaw_deg=_r(rng.uniform(0, 180), 1))
    return Circle(center=center, radius_m=_r(rng.uniform(1.5, 4.0), 1))


def _steepest_in(shape: Rect | Circle, hills: tuple[Hill, ...], size: tuple[float, float]) -> float:
    """The steepest hill slope inside a zone (sampled every 0.25 m over the arena)."""
    if not hills:
        return 0.0
    xs, ys = (np.arange(-s / 2, s / 2 + 1e-9, 0.25) for s in size)
    gx, gy = np.meshgrid(xs, ys)
    inside = shape.contains(gx, gy)
    return float(hill_slope(hills, gx[inside], gy[inside]).max()) if inside.any() else 0.0


def _bump_slope(roughness_m: float) -> float:
    """Steepest flank of the roughness bumps: 2 a over the bump spacing (envs/terrain.py)."""
    return 2 * roughness_m / BUMP_SPACING_M


def _draw_surfaces(rng: np.random.Generator, route: _Route, size: tuple[float, float],
                   hills: tuple[Hill, ...], roughness_m: float) -> tuple[tuple[Surface, ...], float]:
    """0-3 friction zones, and the lowest friction_scale the scenario may then use.

    A wheel holds a slope when friction >= 2 x its steepness (hill plus bumps); a zone is
    redrawn (up to 5 times, else dropped) where that fails, and the friction scale may go no
    lower than keeps it so in every zone, nor below MIN_FRICTION anywhere.
    """
    surfaces, scale_floor = [], 0.0
    for _ in range(int(rng.choice(4, p=[0.2, 0.4, 0.3, 0.1]))):
        name = str(rng.choice(list(_SURFACE_KINDS), p=[0.35, 0.2, 0.27, 0.18]))
        (f_lo, f_hi), (d_lo, d_hi) = _SURFACE_KINDS[name]
        friction, drag = _r(rng.uniform(f_lo, f_hi)), _r(rng.uniform(d_lo, d_hi))
        for _attempt in range(5):
            shape = _draw_shape(rng, route, size)
            needed = max(MIN_FRICTION, 2 * (_steepest_in(shape, hills, size) + _bump_slope(roughness_m)))
            if needed <= friction:
                surfaces.append(Surface(name=name, shape=shape, friction=friction, drag=drag))
                scale_floor = max(scale_floor, needed / friction)
                break
    return tuple(surfaces), scale_floor


def turn_gain_floor(payload_kg: float, friction_max: float) -> float:
    """Lowest motor gain of a side at which the Husky still turns on the spot both ways
    (>= 0.5 rad/s) carrying payload_kg on ground of friction friction_max.

    Measured on flat ground (gains 0.25-0.5, payloads 0-60 kg, friction 1.0 and 1.2):
    turning holds while (46 kg + payload) x friction <= 55 + 230 (gain - 0.25); this keeps
    a margin: 50 + 220 (gain - 0.25). Below it, scrub outweighs the weak side.
    """
    return 0.25 + max(0.0, (46.0 + payload_kg) * friction_max - 50.0) / 220.0


# ---------------------------------------------------------------- obstacles

def _footprint_gap(ob: Obstacle, xy: np.ndarray) -> float:
    """Distance in metres from a point to an obstacle's footprint (0 inside)."""
    d = np.asarray(xy, dtype=float) - np.asarray(ob.center)
    if isinstance(ob, CylinderObstacle):
        return max(0.0, float(np.linalg.norm(d)) - ob.radius_m)
    c, s = math.cos(math.radians(ob.yaw_deg)), math.sin(math.radians(ob.yaw_deg))
    u, v = c * d[0] + s * d[1], -s * d[0] + c * d[1]
    return math.hypot(max(abs(u) - ob.size[0] / 2, 0.0), max(abs(v) - ob.size[1] / 2, 0.0))


def _inside_arena(ob: Obstacle, size: tuple[float, float]) -> bool:
    if isinstance(ob, CylinderObstacle):
        pts, pad = np.array([ob.center]), ob.radius_m
    else:
        c, s = math.cos(math.radians(ob.yaw_deg)), math.sin(math.radians(ob.yaw_deg))
        hx, hy = ob.size[0] / 2, ob.size[1] / 2
        pts = np.array([(ob.center[0] + c * u - s * v, ob.center[1] + s * u + c * v)
                        for u in (-hx, hx) for v in (-hy, hy)])
        pad = 0.0
    limit = np.array(size) / 2 - EDGE_MARGIN_M - pad
    return bool((np.abs(pts) <= limit).all())


def _admissible(ob: Obstacle, route: _Route, size: tuple[float, float]) -> bool:
    """Inside the arena and KEEP_CLEAR_M from the start and goal regions."""
    return _inside_arena(ob, size) and all(_footprint_gap(ob, c) - r >= KEEP_CLEAR_M for c, r in route.ends())


def _box(center: np.ndarray, length: float, width: float, height: float, yaw_deg: float) -> BoxObstacle:
    return BoxObstacle(center=(_r(center[0]), _r(center[1])), size=(_r(length), _r(width), _r(height)),
                       yaw_deg=_r(yaw_deg, 1))


def _loose_obstacle(rng: np.random.Generator, center: np.ndarray) -> Obstacle:
    """A box (0.4-1.4 m footprint, turned) or a post (radius 0.2-0.6 m) at center."""
    if rng.random() < 0.6:
        return _box(center, rng.uniform(0.4, 1.4), rng.uniform(0.4, 1.4), rng.uniform(0.5, 1.2), rng.uniform(0, 180))
    return CylinderObstacle(center=(_r(center[0]), _r(center[1])), radius_m=_r(rng.uniform(0.2, 0.6)),
                            height_m=_r(rng.uniform(0.6, 1.2)))


def _clutter(rng: np.random.Generator, route: _Route, size: tuple[float, float], n: int) -> list[Obstacle]:
    """n loose obstacles, half of them within 2.5 m of the straight route."""
    out = []
    for i in range(n):
        if i % 2 == 0:
            center = route.at(rng.uniform(0.15, 0.85), rng.uniform(-2.5, 2.5))
        else:
            center = np.array([rng.uniform(-s / 2, s / 2) for s in size])
        out.append(_loose_obstacle(rng, center))
    return out


def _slalom(rng: np.random.Generator, route: _Route) -> list[Obstacle]:
    """Posts along the route, 2-3.5 m apart, alternating sides within 0.8 m of the line."""
    spacing = rng.uniform(2.0, 3.5)
    n = max(2, min(7, int(route.length * 0.6 / spacing)))
    t0 = 0.5 - (n - 1) * spacing / route.length / 2
    side = rng.choice([-1.0, 1.0])
    posts = []
    for i in range(n):
        center = route.at(t0 + i * spacing / route.length, side * (-1) ** i * rng.uniform(0.0, 0.8))
        posts.append(CylinderObstacle(center=(_r(center[0]), _r(center[1])), radius_m=_r(rng.uniform(0.2, 0.4)),
                                      height_m=1.0))
    return posts


def _wall_pieces(center: np.ndarray, yaw_deg: float, length: float,
                 gap: float, gap_at: float) -> list[Obstacle]:
    """A 0.3 m thick wall of `length` through center along yaw_deg, with a gap of `gap` metres
    centred `gap_at` metres from the middle (pieces shorter than 0.3 m are left out)."""
    u = np.array([math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))])
    pieces = []
    for a, b in ((-length / 2, gap_at - gap / 2), (gap_at + gap / 2, length / 2)):
        if b - a >= 0.3:
            pieces.append(_box(center + u * (a + b) / 2, b - a, 0.3, 1.0, yaw_deg))
    return pieces


def _walls_with_gap(rng: np.random.Generator, route: _Route, size: tuple[float, float]) -> list[Obstacle]:
    """One or two walls across the route, each with a 1.8-3 m gap."""
    n = 1 if route.length < 12 or rng.random() < 0.5 else 2
    spots = [rng.uniform(0.35, 0.65)] if n == 1 else [rng.uniform(0.25, 0.4), rng.uniform(0.6, 0.75)]
    out = []
    for t in spots:
        length = rng.uniform(5.0, max(5.0, min(14.0, 0.9 * min(size))))
        gap = rng.uniform(1.8, 3.0)
        gap_at = rng.uniform(-length / 2 + gap / 2 + 0.5, length / 2 - gap / 2 - 0.5)
        yaw = route.heading_deg + 90 + rng.uniform(-25, 25)
        out += _wall_pieces(route.at(t), yaw, length, gap, gap_at)
    return out


def _corridor(rng: np.random.Generator, route: _Route) -> list[Obstacle]:
    """Two walls along the route, 2-3.2 m apart, over 30-60% of it (shortened to keep clear
    of the start and goal); the route line runs inside."""
    width = rng.uniform(2.0, 3.2)
    offset = rng.uniform(-(width / 2 - 0.8), width / 2 - 0.8)
    room = max(route.length - 2 * (KEEP_CLEAR_M + 1.5), 1.0)
    length = min(rng.uniform(0.3, 0.6) * route.length, room)
    mid = route.at(rng.uniform(0.45, 0.55))
    out = []
    for side in (-1.0, 1.0):
        center = mid + (route.at(0.5, offset + side * (width / 2 + 0.15)) - route.at(0.5))
        out.append(_box(center, length, 0.3, 1.0, route.heading_deg))
    return out


def _draw_layout(rng: np.random.Generator, layout: str, route: _Route, size: tuple[float, float]
                 ) -> tuple[list[Obstacle], Optional[RandomObstacles]]:
    """Fixed obstacles of the layout that keep clear of start, goal and edge, and the
    `random:` entry (only for layout "random")."""
    if layout == "random":
        return [], RandomObstacles(count=int(rng.integers(1, 4)), min_size_m=_r(rng.uniform(0.3, 0.5)),
                                   max_size_m=_r(rng.uniform(0.5, 0.8)), keep_clear_m=_r(rng.uniform(1.5, 2.0)))
    if layout == "clutter":
        candidates = _clutter(rng, route, size, int(rng.integers(4, 13)))
    elif layout == "slalom":
        candidates = _slalom(rng, route) + _clutter(rng, route, size, int(rng.integers(0, 3)))
    elif layout == "wall-gap":
        candidates = _walls_with_gap(rng, route, size) + _clutter(rng, route, size, int(rng.integers(0, 3)))
    elif layout == "corridor":
        candidates = _corridor(rng, route) + _clutter(rng, route, size, int(rng.integers(0, 4)))
    else:
        candidates = []
    return [ob for ob in candidates if _admissible(ob, route, size)], None


# ---------------------------------------------------------------- feasibility

def feasible_path(scenario: Scenario, clearance_m: float = FEASIBLE_CLEARANCE_M) -> Optional[np.ndarray]:
    """The grid planner's path (N, 2) in metres from start to goal with the fixed obstacles
    inflated by clearance_m, or None when there is none or when a cell of the start or goal
    region (the randomize box, or the point) is blocked. Random obstacles are not included."""
    from envs import planning  # envs.terrain imports this package: import it here, not at the top
    from envs.terrain import Terrain

    grid_map = Terrain(scenario, tuple(scenario.obstacles), None, 1.0).maps()["obstacle_map"]
    res, origin = grid_map["resolution_m"], grid_map["origin_xy"]
    grid = planning.inflate(grid_map["grid"], clearance_m, res)
    rz = scenario.randomize
    regions = (((rz.start.x or (scenario.robot.start.x,) * 2), (rz.start.y or (scenario.robot.start.y,) * 2)),
               ((rz.goal.x or (scenario.goal.x,) * 2), (rz.goal.y or (scenario.goal.y,) * 2)))
    for xs, ys in regions:
        ix = [int(round((x - origin[0]) / res)) for x in xs]
        iy = [int(round((y - origin[1]) / res)) for y in ys]
        if min(ix + iy) < 0 or max(ix) >= grid.shape[1] or max(iy) >= grid.shape[0] \
                or grid[iy[0]:iy[1] + 1, ix[0]:ix[1] + 1].any():
            return None
    start, goal = scenario.robot.start, scenario.goal
    return planning.plan_path(grid, res, origin, (start.x, start.y), (goal.x, goal.y))


def _place_obstacles(rng: np.random.Generator, draft: Scenario, layout: str, route: _Route
                     ) -> tuple[Scenario, np.ndarray]:
    """The draft with the layout's obstacles, dropping the last one until the scenario is
    feasible; returns it with the feasibility path."""
    size = draft.arena.size_m
    obstacles, random_obstacles = _draw_layout(rng, layout, route, size)
    while True:
        sc = Scenario(**{**draft.__dict__, "obstacles": tuple(obstacles), "random_obstacles": random_obstacles})
        path = feasible_path(sc)
        if path is not None:
            return sc, path
        if not obstacles:  # start or goal region itself blocked: cannot happen with the margins above
            raise RuntimeError(f"procedural scenario {draft.name}: no path on open ground")
        obstacles.pop()


# ---------------------------------------------------------------- events, randomize, time

def _round_up(x: float, digits: int = 2) -> float:
    return math.ceil(x * 10 ** digits - 1e-9) / 10 ** digits


def _draw_effect(rng: np.random.Generator, scale_floor: float, payload_cap: float) -> EventSet:
    """One change: a weaker motor side (or both), a new friction scale, or a payload."""
    kind = rng.choice(["motor_gain", "friction_scale", "payload_kg"], p=[0.45, 0.25, 0.3])
    if kind == "motor_gain":
        side = rng.choice(["left", "right", "both"], p=[0.45, 0.45, 0.1])
        if side == "both":
            gain = _r(rng.uniform(0.5, 0.9))
            return EventSet(motor_gain=MotorGain(left=gain, right=gain))
        return EventSet(motor_gain=MotorGain(**{str(side): _r(rng.uniform(0.25, 0.8))}))
    if kind == "friction_scale":
        scale = rng.uniform(0.3, 0.8) if rng.random() < 0.8 else rng.uniform(1.0, 1.2)
        return EventSet(friction_scale=max(_r(scale), _round_up(scale_floor)))
    return EventSet(payload_kg=_r(rng.uniform(10.0, payload_cap), 1))


def _draw_events(rng: np.random.Generator, n: int, route: _Route, path_m: float, draft: Scenario,
                 scale_floor: float, payload_cap: float) -> tuple[Event, ...]:
    """n events, each triggered at a time (15-60% of the nominal travel time), after a
    distance (15-70% of the path) or on entering a friction zone or a strip across the route."""
    nominal_s = path_m / NOMINAL_SPEED
    events = []
    for _ in range(n):
        effect = _draw_effect(rng, scale_floor, payload_cap)
        trigger = rng.choice(["at_time_s", "at_distance_m", "on_enter"], p=[0.4, 0.3, 0.3])
        if trigger == "at_time_s":
            events.append(Event(set=effect, at_time_s=_r(rng.uniform(0.15, 0.6) * nominal_s, 1)))
        elif trigger == "at_distance_m":
            events.append(Event(set=effect, at_distance_m=_r(rng.uniform(0.15, 0.7) * path_m, 1)))
        elif draft.surfaces and rng.random() < 0.5:
            events.append(Event(set=effect, on_enter=draft.surfaces[int(rng.integers(len(draft.surfaces)))].shape))
        else:  # a strip across the whole arena: every path from start to goal crosses it
            strip = Rect(center=tuple(_r(c, 1) for c in route.at(rng.uniform(0.25, 0.75))),
                         size=(_r(rng.uniform(1.0, 2.0), 1), _r(math.hypot(*draft.arena.size_m) + 1, 1)),
                         yaw_deg=_r(route.heading_deg, 1))
            events.append(Event(set=effect, on_enter=strip))
    return tuple(events)


def _keep_turnable(sc: Scenario) -> Scenario:
    """Pairs no weak motor side with more payload than it can turn (turn_gain_floor) on the
    grippiest ground the scenario may have: payload events are capped to what the weakest
    gain allows, and gains are raised where the load carried from the start is too much."""
    rz = sc.randomize
    grip = max([1.0, (rz.friction_scale or (1, 1))[1]] + [e.set.friction_scale or 0.0 for e in sc.events])
    grip *= max([1.0] + [s.friction for s in sc.surfaces])
    floor = _round_up(turn_gain_floor(sc.robot.payload_kg + (rz.payload_kg or (0, 0))[1], grip))
    weakest = min([1.0] + [g for e in sc.events if e.set.motor_gain
                           for g in (e.set.motor_gain.left, e.set.motor_gain.right) if g is not None])
    weakest = max(weakest, floor)
    allowed = math.floor((50.0 + 220.0 * (weakest - 0.25)) / grip - 46.0)  # turn_gain_floor solved for payload
    events = []
    for e in sc.events:
        effect = e.set
        if effect.motor_gain is not None:
            effect = EventSet(motor_gain=MotorGain(*(None if g is None else max(g, floor)
                                                     for g in (effect.motor_gain.left, effect.motor_gain.right))))
        elif effect.payload_kg is not None:
            effect = EventSet(payload_kg=float(max(0, min(effect.payload_kg, allowed))))
        events.append(Event(set=effect, at_time_s=e.at_time_s, at_distance_m=e.at_distance_m, on_enter=e.on_enter))
    return Scenario(**{**sc.__dict__, "events": tuple(events)})


def _draw_randomize(rng: np.random.Generator, route: _Route, scale_floor: float, payload0: float) -> Randomize:
    """Per-episode ranges: start and goal boxes (the route's jitters), start heading, friction
    scale, payload, motor gains, event time jitter."""
    def box(center: np.ndarray, j: float) -> tuple:
        return ((_r(center[0] - j), _r(center[0] + j)), (_r(center[1] - j), _r(center[1] + j))) if j else (None, None)

    sx, sy = box(route.start, route.start_jitter)
    gx, gy = box(route.goal, route.goal_jitter)
    spread = rng.uniform(10, 60) if rng.random() < 0.7 else 0.0
    heading = route.heading_deg + rng.uniform(-45, 45)
    yaw = (_r(heading - spread, 1), _r(heading + spread, 1)) if spread else None
    scale = (max(_r(rng.uniform(0.8, 1.0)), _round_up(scale_floor)), _r(rng.uniform(1.0, 1.2))) \
        if rng.random() < 0.7 else None
    payload = (0.0, _r(min(rng.uniform(5, 15), 45.0 - payload0), 1)) if rng.random() < 0.5 else None
    gains = {side: (_r(rng.uniform(0.8, 1.0)), 1.0) for side in ("left", "right") if rng.random() < 0.6}
    return Randomize(start=StartRandomize(x=sx, y=sy, yaw_deg=yaw), goal=GoalRandomize(x=gx, y=gy),
                     friction_scale=scale, payload_kg=payload, motor_gain=MotorGainRandomize(**gains),
                     event_time_jitter_s=_r(rng.uniform(0, 2), 1))


def _draw_noise(rng: np.random.Generator) -> Sensors:
    if rng.random() < 0.15:
        return Sensors()
    return Sensors(noise=SensorNoise(lidar_m=_r(rng.uniform(0, 0.05), 3), imu=_r(rng.uniform(0, 0.02), 3),
                                     odometry=_r(rng.uniform(0, 0.03), 3)))


def _time_limit(sc: Scenario, path_m: float, layout: str) -> float:
    """Seconds: 1.25 x the path at a speed slowed by what the scenario holds, + 10 s, in 5 s steps."""
    gains = [1.0, *(lo for lo, _ in (sc.randomize.motor_gain.left or (1, 1), sc.randomize.motor_gain.right or (1, 1)))]
    gains += [g for e in sc.events if e.set.motor_gain for g in (e.set.motor_gain.left, e.set.motor_gain.right)
              if g is not None]
    speed = min(NOMINAL_SPEED, 0.9 * min(gains))  # a weak side caps the speed of a straight drive
    if any(s.friction < 0.2 for s in sc.surfaces):
        speed *= 0.75
    if any(s.drag > 0.1 for s in sc.surfaces):
        speed *= 0.8
    if layout not in ("open", "random"):
        speed *= 0.85
    if sc.arena.hills or max([sc.robot.payload_kg] + [e.set.payload_kg or 0 for e in sc.events]) > 30:
        speed *= 0.9
    return float(5 * math.ceil((1.25 * path_m / speed + 10) / 5))


def _describe(seed: int, layout: str, sc: Scenario) -> str:
    """One line naming what was drawn, e.g.
    `Generated from seed 7 (layout slalom): 18 x 24 m; mud; 1 hill; events: motor_gain at_time_s`."""
    parts = [f"{_num_text(sc.arena.size_m[0])} x {_num_text(sc.arena.size_m[1])} m"]
    if sc.surfaces:
        parts.append(" + ".join(s.name for s in sc.surfaces))
    if sc.arena.hills:
        parts.append(f"{len(sc.arena.hills)} hill{'s' if len(sc.arena.hills) > 1 else ''}")
    if sc.arena.roughness_m:
        parts.append(f"rough {_num_text(sc.arena.roughness_m)} m")
    if sc.events:
        parts.append("events: " + " + ".join(f"{'/'.join(k for k, v in e.set.__dict__.items() if v is not None)} "
                                             f"{e.trigger}" for e in sc.events))
    return f"Generated from seed {seed} (layout {layout}): " + "; ".join(parts)


def _num_text(x: float) -> str:
    return f"{x:g}"


def generate(seed: int, *, layout: Optional[str] = None, n_events: Optional[int] = None) -> Scenario:
    """A valid, feasible scenario named `procedural-<seed>`, the same for the same arguments.

    seed: a non-negative integer (see PROCEDURAL_SPLITS for the train / validation / test seeds).
    layout: force one of LAYOUTS (default: drawn). n_events: force 0-3 events (default: drawn).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if n_events is not None and n_events not in range(4):
        raise ValueError(f"n_events must be 0, 1, 2 or 3, got {n_events!r}")
    rng = np.random.default_rng(int(seed))
    size = tuple(round(rng.uniform(*SIZE_RANGE_M) * 2) / 2 for _ in range(2))
    drawn_layout = str(rng.choice(LAYOUTS, p=[0.15, 0.25, 0.15, 0.2, 0.15, 0.1]))
    layout = layout or drawn_layout
    route = _draw_route(rng, size, margin=3.0 if layout == "random" else 1.2,
                        shortest=11.0 if layout == "corridor" else MIN_ROUTE_M)
    hills = _draw_hills(rng, size)
    roughness = 0.0 if rng.random() < 0.4 else _r(rng.uniform(0.005, 0.04), 3)
    surfaces, scale_floor = _draw_surfaces(rng, route, size, hills, roughness)
    steepest = _steepest_in(Rect(center=(0.0, 0.0), size=size), hills, size)
    scale_floor = max(scale_floor, 1.5 * (steepest + _bump_slope(roughness)))  # the ground (friction 1) holds too
    payload0 = _r(rng.uniform(0, 30), 1) if rng.random() < 0.3 else 0.0
    draft = Scenario(
        version=1, name=f"procedural-{int(seed)}",
        arena=Arena(size_m=size, walls=True, roughness_m=roughness, hills=hills),
        robot=RobotSpec(start=Pose(x=float(route.start[0]), y=float(route.start[1]),
                                   yaw_deg=_r(route.heading_deg, 1)), payload_kg=payload0),
        goal=Goal(x=float(route.goal[0]), y=float(route.goal[1]),
                  radius_m=_r(rng.choice([0.5, rng.uniform(0.4, 0.8)]))),
        surfaces=surfaces,
        randomize=_draw_randomize(rng, route, scale_floor, payload0),
        sensors=_draw_noise(rng),
    )
    draft, path = _place_obstacles(rng, draft, layout, route)
    path_m = max(_planned_length(path), route.length)
    payload_cap = MAX_PAYLOAD_KG if steepest <= 0.2 else 45.0  # 45 kg up a 0.3 slope is proven (payload-hill)
    events = _draw_events(rng, int(rng.choice(4, p=[0.25, 0.35, 0.25, 0.15])) if n_events is None else n_events,
                          route, path_m, draft, scale_floor, payload_cap)
    sc = _keep_turnable(Scenario(**{**draft.__dict__, "events": events}))
    sc = Scenario(**{**sc.__dict__, "time_limit_s": _time_limit(sc, path_m, layout),
                     "description": _describe(int(seed), layout, sc)})
    # The checks a file gets, on the tree `dump` writes (what parse reads from the text, minus the YAML scanning).
    return from_dict(dump_tree(sc), f"procedural-{int(seed)}")


def _planned_length(path: np.ndarray) -> float:
    return float(np.sum(np.hypot(*np.diff(path, axis=0).T)))
