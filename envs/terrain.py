"""The world of one episode: ground (plane or heightfield), walls, obstacles, friction zones.

`Terrain.draw` turns a scenario plus the episode's RNG into a layout (pure numpy: heights,
random obstacles); `Terrain.build` puts it into a PyBullet client. The same object answers
"what is the friction / drag / height here" and makes the grid maps the expert plans on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from envs.frozen import FrozenMap

import numpy as np
from envs.quiet import pybullet as p

from envs.scenarios.limits import RANDOM_PLACEMENT_TRIES
from envs.scenarios.model import BoxObstacle, Circle, CylinderObstacle, Obstacle, Rect, Scenario
from envs.scenarios.parse import ScenarioError

HEIGHTFIELD_RES_M = 0.2  # spacing of heightfield vertices
BUMP_SPACING_M = 0.6  # spacing of the random bumps of `roughness_m`
MAP_RES_M = 0.1  # cell size of the obstacle / friction maps in info["privileged"]
MARGIN_M = 1.0  # ground extends this far beyond the arena edge
WALL_HEIGHT_M = 0.5
WALL_THICKNESS_M = 0.2
RANDOM_OBSTACLE_HEIGHT_M = 0.8
GROUND_FRICTION = 1.0  # PyBullet multiplies the two bodies' coefficients; the wheel carries the zone's


def hill_heights(scenario: Scenario, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sum of the scenario's gaussian hills at world points, metres (sigma = radius_m / 2)."""
    h = np.zeros(np.broadcast(x, y).shape)
    for hill in scenario.arena.hills:
        sigma = hill.radius_m / 2
        d2 = (x - hill.center[0]) ** 2 + (y - hill.center[1]) ** 2
        h = h + hill.height_m * np.exp(-d2 / (2 * sigma * sigma))
    return h


def rough_bumps(amplitude_m: float, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Random bumps of height U(-a, a) every BUMP_SPACING_M, bilinear in between, on the
    heightfield's vertex grid. Spaced bumps keep slopes near 2a / spacing (a robot on ice
    with friction 0.07 is not trapped in a 2 cm pit, as it is with noise at every vertex)."""
    step = int(round(BUMP_SPACING_M / HEIGHTFIELD_RES_M))
    ny, nx = shape
    coarse = rng.uniform(-amplitude_m, amplitude_m, ((ny - 1) // step + 2, (nx - 1) // step + 2))
    fy, fx = np.arange(ny) / step, np.arange(nx) / step
    iy, ix = fy.astype(int), fx.astype(int)
    ty, tx = (fy - iy)[:, None], (fx - ix)[None, :]
    c00, c01 = coarse[np.ix_(iy, ix)], coarse[np.ix_(iy, ix + 1)]
    c10, c11 = coarse[np.ix_(iy + 1, ix)], coarse[np.ix_(iy + 1, ix + 1)]
    return (1 - ty) * ((1 - tx) * c00 + tx * c01) + ty * ((1 - tx) * c10 + tx * c11)


def obstacle_shape(ob: Obstacle) -> Rect | Circle:
    """The 2-D footprint of an obstacle."""
    if isinstance(ob, BoxObstacle):
        return Rect(center=ob.center, size=(ob.size[0], ob.size[1]), yaw_deg=ob.yaw_deg)
    return Circle(center=ob.center, radius_m=ob.radius_m)


@dataclass
class Terrain:
    scenario: Scenario
    obstacles: tuple[Obstacle, ...]  # fixed then random
    heights: np.ndarray | None  # (ny, nx) heightfield vertices, or None for a flat plane
    friction_scale: float

    # --- drawing the layout ---------------------------------------------------------
    @classmethod
    def draw(cls, scenario: Scenario, rng: np.random.Generator, start_xy: np.ndarray, goal_xy: np.ndarray,
             friction_scale: float) -> "Terrain":
        """The episode's layout: roughness and random obstacles drawn from rng."""
        heights = None
        arena = scenario.arena
        if arena.roughness_m > 0 or arena.hills:
            xs, ys = cls._vertex_axes(scenario)
            gx, gy = np.meshgrid(xs, ys)
            heights = hill_heights(scenario, gx, gy)
            if arena.roughness_m > 0:
                heights = heights + rough_bumps(arena.roughness_m, heights.shape, rng)
        obstacles = tuple(scenario.obstacles) + cls._random_obstacles(scenario, rng, start_xy, goal_xy)
        return cls(scenario, obstacles, heights, friction_scale)

    @staticmethod
    def _vertex_axes(scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
        axes = []
        for size in scenario.arena.size_m:
            n = int(round((size + 2 * MARGIN_M) / HEIGHTFIELD_RES_M)) + 1
            half = (n - 1) * HEIGHTFIELD_RES_M / 2
            axes.append(np.linspace(-half, half, n))
        return axes[0], axes[1]

    @staticmethod
    def _random_obstacles(scenario: Scenario, rng: np.random.Generator, start_xy: np.ndarray,
                          goal_xy: np.ndarray) -> tuple[Obstacle, ...]:
        spec = scenario.random_obstacles
        if spec is None or spec.count == 0:
            return ()
        sx, sy = scenario.arena.size_m
        placed: list[Obstacle] = []
        for k in range(spec.count):
            for _attempt in range(RANDOM_PLACEMENT_TRIES):
                size = rng.uniform(spec.min_size_m, spec.max_size_m, 2)
                half_diag = 0.5 * math.hypot(*size)
                cx = rng.uniform(-sx / 2 + half_diag, sx / 2 - half_diag)
                cy = rng.uniform(-sy / 2 + half_diag, sy / 2 - half_diag)
                yaw = rng.uniform(0.0, 180.0)
                c = np.array([cx, cy])
                if min(np.linalg.norm(c - start_xy), np.linalg.norm(c - goal_xy)) - half_diag >= spec.keep_clear_m:
                    placed.append(BoxObstacle(center=(float(cx), float(cy)),
                                              size=(float(size[0]), float(size[1]), RANDOM_OBSTACLE_HEIGHT_M),
                                              yaw_deg=float(yaw)))
                    break
            else:
                raise ScenarioError(scenario.source or scenario.name, f"obstacles[{spec.list_index}].random",
                                    f"cannot place box {k + 1} of {spec.count}: {RANDOM_PLACEMENT_TRIES} random spots "
                                    f"in a row were within keep_clear_m ({spec.keep_clear_m:g} m) of the start or the "
                                    f"goal; lower keep_clear_m or max_size_m, or enlarge the arena")
        return tuple(placed)

    # --- queries --------------------------------------------------------------------
    def height_at(self, x: float, y: float) -> float:
        """Ground height at a world point, metres (bilinear in the heightfield)."""
        if self.heights is None:
            return 0.0
        ny, nx = self.heights.shape
        fx = (x + (nx - 1) * HEIGHTFIELD_RES_M / 2) / HEIGHTFIELD_RES_M
        fy = (y + (ny - 1) * HEIGHTFIELD_RES_M / 2) / HEIGHTFIELD_RES_M
        ix = int(np.clip(math.floor(fx), 0, nx - 2))
        iy = int(np.clip(math.floor(fy), 0, ny - 2))
        tx, ty = min(max(fx - ix, 0.0), 1.0), min(max(fy - iy, 0.0), 1.0)
        h = self.heights
        return float((1 - ty) * ((1 - tx) * h[iy, ix] + tx * h[iy, ix + 1])
                     + ty * ((1 - tx) * h[iy + 1, ix] + tx * h[iy + 1, ix + 1]))

    def zone_friction_drag(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Zone friction (before friction_scale) and drag at world points; later zones win."""
        friction = np.ones(np.shape(x))
        drag = np.zeros(np.shape(x))
        for surface in self.scenario.surfaces:
            inside = surface.shape.contains(x, y)
            friction = np.where(inside, surface.friction, friction)
            drag = np.where(inside, surface.drag, drag)
        return friction, drag

    def map_axes(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell-centre coordinates (x, y) of the privileged maps, metres."""
        sx, sy = self.scenario.arena.size_m
        nx, ny = int(round(sx / MAP_RES_M)), int(round(sy / MAP_RES_M))
        return (-sx / 2 + MAP_RES_M * (np.arange(nx) + 0.5), -sy / 2 + MAP_RES_M * (np.arange(ny) + 0.5))

    def maps(self) -> dict:
        """Grid maps over the arena: occupancy (obstacles + the boundary ring), friction, drag."""
        xs, ys = self.map_axes()
        gx, gy = np.meshgrid(xs, ys)
        grid = np.zeros(gx.shape, dtype=bool)
        for ob in self.obstacles:
            grid |= obstacle_shape(ob).contains(gx, gy)
        grid[0, :] = grid[-1, :] = grid[:, 0] = grid[:, -1] = True  # walls, or the edge that ends the episode
        friction, drag = self.zone_friction_drag(gx, gy)
        maps = {
            "obstacle_map": FrozenMap(
                {"grid": grid, "resolution_m": MAP_RES_M, "origin_xy": (float(xs[0]), float(ys[0]))}),
            "friction_map": (friction * self.friction_scale).astype(np.float32),
            "drag_map": drag.astype(np.float32),
        }
        for a in (grid, maps["friction_map"], maps["drag_map"]):
            a.flags.writeable = False  # shared by every info of the episode
        return maps

    # --- building it in PyBullet -----------------------------------------------------
    def build(self, client: int, visuals: bool) -> tuple[int, list[int]]:
        """Creates the ground, walls and obstacles; returns (ground id, obstacle and wall ids)."""
        ground = self._build_ground(client, visuals)
        solid = [self._build_obstacle(client, ob) for ob in self.obstacles]
        if self.scenario.arena.walls:
            solid += self._build_walls(client)
        if visuals:
            self._draw_surfaces(client)
        return ground, solid

    def _build_ground(self, client: int, visuals: bool) -> int:
        if self.heights is None:
            shape = p.createCollisionShape(p.GEOM_PLANE, physicsClientId=client)
            vis = -1
            if visuals:  # a finite slab: TinyRenderer draws the default infinite plane slowly
                sx, sy = self.scenario.arena.size_m
                vis = p.createVisualShape(p.GEOM_BOX, halfExtents=[sx / 2 + MARGIN_M, sy / 2 + MARGIN_M, 0.001],
                                          visualFramePosition=[0, 0, -0.001], rgbaColor=[0.55, 0.6, 0.5, 1],
                                          physicsClientId=client)
            ground = p.createMultiBody(0, shape, vis, physicsClientId=client)
        else:
            ny, nx = self.heights.shape
            shape = p.createCollisionShape(
                p.GEOM_HEIGHTFIELD,
                meshScale=[HEIGHTFIELD_RES_M, HEIGHTFIELD_RES_M, 1.0],
                heightfieldData=self.heights.ravel(),  # x varies fastest: row iy holds y = ys[iy]
                numHeightfieldRows=nx,
                numHeightfieldColumns=ny,
                physicsClientId=client,
            )
            # Bullet centres a heightfield between its lowest and highest vertex.
            mid = (float(self.heights.min()) + float(self.heights.max())) / 2
            ground = p.createMultiBody(0, shape, basePosition=[0, 0, mid], physicsClientId=client)
            p.changeVisualShape(ground, -1, rgbaColor=[0.55, 0.6, 0.5, 1], physicsClientId=client)
        p.changeDynamics(ground, -1, lateralFriction=GROUND_FRICTION, physicsClientId=client)
        return ground

    def _build_obstacle(self, client: int, ob: Obstacle) -> int:
        if isinstance(ob, BoxObstacle):
            half = [ob.size[0] / 2, ob.size[1] / 2, ob.size[2] / 2]
            col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=client)
            vis = p.createVisualShape(p.GEOM_BOX, halfExtents=half, rgbaColor=[0.6, 0.35, 0.2, 1], physicsClientId=client)
            height, yaw = ob.size[2], ob.yaw_deg
        else:
            assert isinstance(ob, CylinderObstacle)
            col = p.createCollisionShape(p.GEOM_CYLINDER, radius=ob.radius_m, height=ob.height_m, physicsClientId=client)
            vis = p.createVisualShape(p.GEOM_CYLINDER, radius=ob.radius_m, length=ob.height_m,
                                      rgbaColor=[0.6, 0.35, 0.2, 1], physicsClientId=client)
            height, yaw = ob.height_m, 0.0
        z = self.height_at(*ob.center) + height / 2
        orn = p.getQuaternionFromEuler([0, 0, math.radians(yaw)])
        return p.createMultiBody(0, col, vis, [ob.center[0], ob.center[1], z], orn, physicsClientId=client)

    def _build_walls(self, client: int) -> list[int]:
        sx, sy = self.scenario.arena.size_m
        t, h = WALL_THICKNESS_M, WALL_HEIGHT_M
        walls = []
        for cx, cy, hx, hy in ((0, sy / 2 + t / 2, sx / 2 + t, t / 2), (0, -sy / 2 - t / 2, sx / 2 + t, t / 2),
                               (sx / 2 + t / 2, 0, t / 2, sy / 2), (-sx / 2 - t / 2, 0, t / 2, sy / 2)):
            col = p.createCollisionShape(p.GEOM_BOX, halfExtents=[hx, hy, h], physicsClientId=client)
            vis = p.createVisualShape(p.GEOM_BOX, halfExtents=[hx, hy, h], rgbaColor=[0.5, 0.5, 0.55, 1],
                                      physicsClientId=client)
            walls.append(p.createMultiBody(0, col, vis, [cx, cy, self.height_at(cx * 0.99, cy * 0.99)],
                                           physicsClientId=client))
        return walls

    def _draw_surfaces(self, client: int) -> None:
        """Visual-only tiles that shade friction zones (no collision: rays and wheels ignore them)."""
        for surface in self.scenario.surfaces:
            color = [0.7, 0.85, 1.0, 0.8] if surface.friction < 0.3 else [0.45, 0.3, 0.15, 0.8]
            shape = surface.shape
            if isinstance(shape, Rect):
                vis = p.createVisualShape(p.GEOM_BOX, halfExtents=[shape.size[0] / 2, shape.size[1] / 2, 0.005],
                                          rgbaColor=color, physicsClientId=client)
                yaw = shape.yaw_deg
            else:
                vis = p.createVisualShape(p.GEOM_CYLINDER, radius=shape.radius_m, length=0.01, rgbaColor=color,
                                          physicsClientId=client)
                yaw = 0.0
            z = self.height_at(*shape.center) + 0.01
            p.createMultiBody(0, -1, vis, [shape.center[0], shape.center[1], z],
                              p.getQuaternionFromEuler([0, 0, math.radians(yaw)]), physicsClientId=client)
