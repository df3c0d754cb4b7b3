"""TerrainNav: drive a Husky to a goal over terrain that changes under it.

Rates: physics at 240 Hz, control at 20 Hz (12 physics steps per `step`).

Scenario: a built-in name, a YAML path or a Scenario; or "procedural" (each reset generates
the scenario of generator seed = reset seed) or "procedural-train" | "-validation" | "-test"
(generator seed = PROCEDURAL_SPLITS[split][reset seed % len(split)]); without a reset seed
the scenario is drawn from the env's RNG. info["scenario"] names the episode's scenario and
info["scenario_seed"] gives its generator seed (None for a fixed scenario).

Action: Box(-1, 1, (2,)) = (forward speed, yaw rate), normalised to V_MAX = 1 m/s and
W_MAX = 2 rad/s (counter-clockwise positive), turned into left/right wheel speeds by
skid-steer kinematics; each side then delivers its motor gain times that. Finite values
outside [-1, 1] are clipped; NaN or inf raises ValueError naming the component.

Observation: float32 vector of 41 in physical units, slices named by `obs_layout`
(see envs/sensors.py). It holds only what the robot's own sensors give; the truth the
privileged expert uses (friction under each wheel, motor gains, payload, maps) is in
`info["privileged"]`.

Reward per control step:
    + (distance to goal before - after), metres of progress
    - 0.01 (time)
    - 0.5 if the robot touches an obstacle or wall in this step
    + 10 on reaching the goal, - 5 on flipping over or leaving the arena.

Episode end: terminated on success (chassis centre within goal.radius_m of the goal),
flip (|roll| or |pitch| > 60 degrees) or out of the arena (more than 0.5 m past its edge);
truncated when the simulated time reaches the scenario's time_limit_s.
"""
from __future__ import annotations

import functools
import math
import os
import time
from envs.frozen import FrozenMap
from typing import Any, Optional

import gymnasium as gym
import numpy as np
from envs.quiet import pybullet as p
import pybullet_data

from envs import planning, scenarios
from envs.display import check_gui_display
from envs.events import EventSchedule, describe_set
from envs.quiet import c_output_silenced
from envs.robot import CHASSIS_HALF_SIZE, Husky
from envs.scenarios.model import Scenario
from envs.sensors import OBS_DIM, OBS_LAYOUT, Lidar, noise_scale, observe, roll_pitch
from envs.terrain import Terrain

FLIP_LIMIT_RAD = math.radians(60)
OUT_OF_ARENA_M = 0.5
PLAN_INFLATION_M = 0.35  # obstacle inflation for the shortest path (about the chassis half width)
SETTLE_STEPS = 24  # physics steps at reset, motors holding still, before time starts
DEFAULT_SCENARIO = "flat"
PROCEDURAL = "procedural"  # scenario= "procedural" or "procedural-train" | "-validation" | "-test"


def _draw(rng: np.random.Generator, fixed: float, rng_range: Optional[tuple[float, float]]) -> float:
    return fixed if rng_range is None else float(rng.uniform(rng_range[0], rng_range[1]))


def _procedural_split(scenario: str | Scenario) -> Optional[str]:
    """"any" for scenario="procedural", the split for "procedural-<split>", else None."""
    if not isinstance(scenario, str) or not scenario.startswith(PROCEDURAL):
        return None
    if scenario == PROCEDURAL:
        return "any"
    split = scenario[len(PROCEDURAL) + 1:]
    if scenario[len(PROCEDURAL)] == "-" and split in scenarios.PROCEDURAL_SPLITS:
        return split
    if scenario[len(PROCEDURAL)] == "-" and "." not in split and not os.path.exists(scenario):
        known = ", ".join(f"{PROCEDURAL}-{s}" for s in scenarios.PROCEDURAL_SPLITS)
        raise scenarios.ScenarioError(scenario, None, f"unknown procedural split (use {PROCEDURAL}, {known})")
    return None  # a file such as procedural-x.yaml


def _split_seeds(split: str) -> range:
    """Generator seeds an episode may get: every seed for "any", else the split's."""
    return range(0, 2 ** 31) if split == "any" else scenarios.PROCEDURAL_SPLITS[split]


@functools.lru_cache(maxsize=256)
def _procedural(seed: int) -> Scenario:
    return scenarios.generate(seed)  # frozen: safe to share between envs; cached for repeated seeds


def _read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


class TerrainNavEnv(gym.Env):
    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 20}
    physics_hz = 240
    control_hz = 20

    def __init__(self, scenario: str | Scenario = DEFAULT_SCENARIO, render_mode: Optional[str] = None,
                 render_width: int = 320, render_height: int = 240) -> None:
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be one of None, 'human', 'rgb_array'; got {render_mode!r}")
        self.procedural_split = _procedural_split(scenario)  # None: one fixed scenario
        self.scenario_seed: Optional[int] = None  # the generator seed of a procedural episode
        self.scenario = _procedural(_split_seeds(self.procedural_split)[0]) if self.procedural_split \
            else scenario if isinstance(scenario, Scenario) else scenarios.load(scenario)
        self.render_mode = render_mode
        self.render_size = (int(render_width), int(render_height))
        self.obs_layout = dict(OBS_LAYOUT)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.substeps = self.physics_hz // self.control_hz
        self.dt = 1.0 / self.control_hz
        if render_mode == "human":
            check_gui_display()  # PyBullet's GUI ends the process, silently, when it has no window
        with c_output_silenced():
            self.client = p.connect(p.GUI if render_mode == "human" else p.DIRECT)
        p.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=self.client)
        self.robot: Optional[Husky] = None

    # --- episode set-up --------------------------------------------------------------
    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if self.procedural_split is not None:
            self.scenario_seed = self._draw_scenario_seed(seed)
            self.scenario = _procedural(self.scenario_seed)
        rng, sc, rz = self.np_random, self.scenario, self.scenario.randomize
        start = np.array([_draw(rng, sc.robot.start.x, rz.start.x), _draw(rng, sc.robot.start.y, rz.start.y)])
        yaw = math.radians(_draw(rng, sc.robot.start.yaw_deg, rz.start.yaw_deg))
        self.goal = np.array([_draw(rng, sc.goal.x, rz.goal.x), _draw(rng, sc.goal.y, rz.goal.y)])
        self.friction_scale = _draw(rng, 1.0, rz.friction_scale)
        payload = sc.robot.payload_kg + _draw(rng, 0.0, rz.payload_kg)
        gains = np.array([_draw(rng, 1.0, rz.motor_gain.left), _draw(rng, 1.0, rz.motor_gain.right)])
        self.terrain = Terrain.draw(sc, rng, start, self.goal, self.friction_scale)
        self.schedule = EventSchedule(sc.events, rz.event_time_jitter_s, rng)
        noise = sc.sensors.noise
        self.noise_sd = noise_scale(noise.lidar_m, noise.imu, noise.odometry)

        # A fresh world every episode: nothing of the last one (contacts, bodies, joint states) survives.
        c = self.client
        p.resetSimulation(physicsClientId=c)
        p.setGravity(0, 0, -9.81, physicsClientId=c)
        p.setTimeStep(1.0 / self.physics_hz, physicsClientId=c)
        p.setPhysicsEngineParameter(deterministicOverlappingPairs=1, physicsClientId=c)
        if self.render_mode == "human":
            p.configureDebugVisualizer(p.COV_ENABLE_RENDERING, 0, physicsClientId=c)
        self.ground, solid = self.terrain.build(c, visuals=self.render_mode is not None)
        self.solid = frozenset(solid)
        corners = [(start[0] + dx, start[1] + dy) for dx in (-0.6, 0.6) for dy in (-0.4, 0.4)]
        z = max(self.terrain.height_at(x, y) for x, y in corners + [tuple(start)]) + 0.02
        self.robot = Husky(c, start[0], start[1], z, yaw, visuals=self.render_mode == "human")
        self.robot.motor_gain = gains
        self.robot.set_payload(payload)
        self.lidar = Lidar(c, self.robot.body)
        if self.render_mode == "human":
            p.configureDebugVisualizer(p.COV_ENABLE_RENDERING, 1, physicsClientId=c)

        self.maps = self.terrain.maps()
        self._zone_friction_map = self.maps["friction_map"] / np.float32(self.friction_scale)
        grid = self.maps["obstacle_map"]
        self._map_corner = np.asarray(grid["origin_xy"]) - grid["resolution_m"] / 2
        self._map_last = np.array(grid["grid"].shape[::-1]) - 1
        path = planning.plan_path(planning.inflate(grid["grid"], PLAN_INFLATION_M, grid["resolution_m"]),
                                  grid["resolution_m"], grid["origin_xy"], start, self.goal)
        length = planning.path_length(path) if path is not None else float(np.linalg.norm(self.goal - start))
        self.shortest_path_length = max(0.0, length - sc.goal.radius_m)

        self.prev_action = np.zeros(2)
        self.wheel_friction = np.full(4, math.nan)
        self._update_wheel_contact_zones(start, yaw)
        self.robot.command(self.prev_action)
        for _ in range(SETTLE_STEPS):
            p.stepSimulation(physicsClientId=c)
        self.time_s = 0.0
        self.path_length = 0.0
        self.events_log: list[dict[str, Any]] = []
        self._read_state()
        self.distance = math.hypot(self.goal[0] - self.pos[0], self.goal[1] - self.pos[1])
        self._last_frame_time = time.perf_counter()
        return self._observe(), self._info(collision=False, termination=None)

    def _draw_scenario_seed(self, seed: Optional[int]) -> int:
        """The generator seed for this episode: the reset seed itself ("procedural") or the
        split's seed number (reset seed mod split size); without a reset seed, a draw from
        the env's RNG."""
        seeds = _split_seeds(self.procedural_split)
        if seed is None:
            return seeds[int(self.np_random.integers(len(seeds)))]
        return seeds[seed % len(seeds)]

    # --- one control step --------------------------------------------------------------
    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self.robot is None:
            raise RuntimeError("TerrainNavEnv.step called before reset()")
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (2,):
            raise ValueError(f"action must have 2 components (forward, yaw rate), got shape {np.shape(action)}")
        if not np.isfinite(a).all():
            i = int(np.flatnonzero(~np.isfinite(a))[0])
            raise ValueError(f"action[{i}] ({('forward', 'yaw rate')[i]}) is {a[i]}: actions must be finite")
        a = np.minimum(np.maximum(a, -1.0), 1.0)

        self._update_wheel_contact_zones(self.pos, self.yaw)
        self.robot.command(a)
        c = self.client
        for _ in range(self.substeps):
            p.stepSimulation(physicsClientId=c)
        self.time_s += self.dt
        x0, y0 = self.pos[0], self.pos[1]
        self._read_state()
        x, y = self.pos[0], self.pos[1]
        self.path_length += math.hypot(x - x0, y - y0)
        self.prev_action = a
        for i in self.schedule.due(self.time_s, self.path_length, x, y):
            self._fire(i)

        solid = self.solid
        collision = any(cp[2] in solid for cp in p.getContactPoints(bodyA=self.robot.body, physicsClientId=c))
        old_distance = self.distance
        self.distance = math.hypot(self.goal[0] - x, self.goal[1] - y)
        termination = self._termination()
        reward = old_distance - self.distance - 0.01 - (0.5 if collision else 0.0)
        if termination == "success":
            reward += 10.0
        elif termination is not None:
            reward -= 5.0
        truncated = termination is None and self.time_s >= self.scenario.time_limit_s - 1e-9
        if truncated:
            termination = "time_limit"
        if self.render_mode == "human":
            self._follow_in_gui()
        return (self._observe(), reward, termination not in (None, "time_limit"), truncated,
                self._info(collision, termination))

    def _update_wheel_contact_zones(self, pos: np.ndarray, yaw: float) -> None:
        """Friction and drag under each wheel, looked up in the zone maps (MAP_RES_M cells)."""
        if self.scenario.surfaces:
            xy = self.robot.wheel_xy(pos, yaw)
            ix, iy = self._map_index(xy)
            self.wheel_friction = self.maps["friction_map"][iy, ix].astype(np.float64)
            self.robot.drag = self.maps["drag_map"][iy, ix].astype(np.float64)
        elif self.wheel_friction[0] != self.friction_scale:  # one zone everywhere: only events change it
            self.wheel_friction = np.full(4, self.friction_scale)
        else:
            return
        self.robot.set_wheel_friction(self.wheel_friction)

    def _map_index(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map cell (ix, iy) of world points, clipped to the arena."""
        grid = self.maps["obstacle_map"]
        ij = ((xy - self._map_corner) * (1.0 / grid["resolution_m"])).astype(np.intp)  # >= 0 inside: truncation floors
        np.minimum(np.maximum(ij, 0, out=ij), self._map_last, out=ij)
        return ij[:, 0], ij[:, 1]

    def _read_state(self) -> None:
        pos, orn = self.robot.pose()
        self.pos = pos
        self.rot = np.array(p.getMatrixFromQuaternion(orn)).reshape(3, 3)
        self.yaw = math.atan2(self.rot[1, 0], self.rot[0, 0])
        self.lin_vel, self.ang_vel = self.robot.velocity()

    def _fire(self, index: int) -> None:
        effect = self.scenario.events[index].set
        if effect.motor_gain is not None:
            for side, value in enumerate((effect.motor_gain.left, effect.motor_gain.right)):
                if value is not None:
                    self.robot.motor_gain[side] = value
        if effect.payload_kg is not None:
            self.robot.set_payload(effect.payload_kg)
        if effect.friction_scale is not None:
            self.friction_scale = effect.friction_scale
            self.maps["friction_map"] = _read_only(self._zone_friction_map * np.float32(self.friction_scale))
        event = self.scenario.events[index]
        self.events_log.append({
            "index": index,
            "trigger": event.trigger,
            "time_s": round(self.time_s, 6),
            "distance_m": self.path_length,
            "position": [float(self.pos[0]), float(self.pos[1])],
            "set": describe_set(effect),
        })

    def _termination(self) -> Optional[str]:
        if self.distance <= self.scenario.goal.radius_m:
            return "success"
        roll, pitch = roll_pitch(self.rot)
        if abs(roll) > FLIP_LIMIT_RAD or abs(pitch) > FLIP_LIMIT_RAD:
            return "flipped"
        sx, sy = self.scenario.arena.size_m
        if abs(self.pos[0]) > sx / 2 + OUT_OF_ARENA_M or abs(self.pos[1]) > sy / 2 + OUT_OF_ARENA_M:
            return "out_of_arena"
        return None

    # --- what the agent and the caller see ---------------------------------------------
    def _observe(self) -> np.ndarray:
        scan = self.lidar.scan()
        return observe(self.pos, self.rot, self.yaw, self.lin_vel, self.ang_vel, self.robot.wheel_rim_speeds(),
                       self.prev_action, scan, self.goal, self.noise_sd, self.np_random)

    def _info(self, collision: bool, termination: Optional[str]) -> dict[str, Any]:
        return {
            "scenario": self.scenario.name,
            "scenario_seed": self.scenario_seed,
            "is_success": termination == "success",
            "collision": collision,
            "distance_to_goal": self.distance,
            "path_length": self.path_length,
            "shortest_path_length": self.shortest_path_length,
            "time_s": self.time_s,
            "termination": termination,
            "events": list(self.events_log),
            # Read-only: the maps are shared by every info of the episode (arrays flagged read-only).
            "privileged": FrozenMap({
                "pose": np.array([self.pos[0], self.pos[1], self.yaw]),
                "velocity": np.array([self.lin_vel[0], self.lin_vel[1], self.ang_vel[2]]),
                "wheel_friction": self.wheel_friction,  # replaced, never changed in place
                "wheel_drag": self.robot.drag,  # likewise
                "motor_gain": self.robot.motor_gain.copy(),
                "payload_kg": self.robot.payload_kg,
                "friction_scale": self.friction_scale,
                "goal": np.array([self.goal[0], self.goal[1], self.scenario.goal.radius_m]),
                "obstacle_map": self.maps["obstacle_map"],
                "friction_map": self.maps["friction_map"],
                "drag_map": self.maps["drag_map"],
                "arena_size": tuple(self.scenario.arena.size_m),
                "chassis_half_size": CHASSIS_HALF_SIZE,
            }),
        }

    # --- rendering -----------------------------------------------------------------------
    def render(self) -> Optional[np.ndarray]:
        if self.render_mode != "rgb_array":
            return None
        if self.robot is None:
            raise RuntimeError("TerrainNavEnv.render called before reset()")
        w, h = self.render_size
        target = [self.pos[0], self.pos[1], self.pos[2] + 0.2]
        view = p.computeViewMatrixFromYawPitchRoll(target, 5.0, math.degrees(self.yaw) - 90, -35, 0, 2,
                                                   physicsClientId=self.client)
        proj = p.computeProjectionMatrixFOV(60, w / h, 0.1, 60, physicsClientId=self.client)
        img = p.getCameraImage(w, h, view, proj, renderer=p.ER_TINY_RENDERER, shadow=0,
                               physicsClientId=self.client)
        return np.asarray(img[2], dtype=np.uint8).reshape(h, w, 4)[:, :, :3].copy()

    def _follow_in_gui(self) -> None:
        p.resetDebugVisualizerCamera(5.0, math.degrees(self.yaw) - 90, -35, self.pos.tolist(),
                                     physicsClientId=self.client)
        # real time: wait out the rest of the control period
        delay = self.dt - (time.perf_counter() - self._last_frame_time)
        if delay > 0:
            time.sleep(delay)
        self._last_frame_time = time.perf_counter()

    def close(self) -> None:
        if getattr(self, "client", None) is not None and p.isConnected(self.client):
            p.disconnect(self.client)
        self.client = None
