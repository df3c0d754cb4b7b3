"""The privileged expert and the classical baseline: unit tests on a kinematic toy world,
then short closed-loop episodes in navctl/TerrainNav-v0."""
from __future__ import annotations

import math

import numpy as np
import pytest

from envs import robot, sensors
from envs.planning import inflate
from navctl import expert
from navctl.expert import ExpertController, wheel_compensated_action
from navctl.policy_names import classical_controller as ClassicalController
from policies import classical

RES = 0.1
DT = 0.05


# --- a kinematic toy world: skid-steer with motor gains, a grid map, a ray-marched lidar ---
class ToyWorld:
    """20 x 20 m walled arena on a 0.1 m grid; the robot moves exactly as commanded,
    except that each side delivers its motor gain times its commanded rim speed."""

    def __init__(self, boxes=(), gains=(1.0, 1.0), start=(-7.0, 0.0, 0.0), goal=(7.0, 0.0)) -> None:
        self.origin = (-9.95, -9.95)
        xs = self.origin[0] + RES * np.arange(200)
        gx, gy = np.meshgrid(xs, xs)
        self.grid = np.zeros((200, 200), dtype=bool)
        self.grid[0, :] = self.grid[-1, :] = self.grid[:, 0] = self.grid[:, -1] = True
        for cx, cy, hx, hy in boxes:
            self.grid |= (np.abs(gx - cx) <= hx) & (np.abs(gy - cy) <= hy)
        self.gains = np.array(gains, dtype=float)
        self.pose = np.array(start, dtype=float)
        self.goal = np.array(goal, dtype=float)
        self.vel = np.zeros(3)
        self.prev = np.zeros(2)
        self.collided = False

    def step(self, action: np.ndarray) -> None:
        a = np.clip(np.asarray(action, dtype=float), -1, 1)
        v, w = a[0] * robot.V_MAX, a[1] * robot.W_MAX
        vl = (v - w * robot.TRACK_M / 2) * self.gains[0]
        vr = (v + w * robot.TRACK_M / 2) * self.gains[1]
        v, w = (vl + vr) / 2, (vr - vl) / robot.TRACK_M
        x, y, yaw = self.pose
        self.pose = np.array([x + v * math.cos(yaw) * DT, y + v * math.sin(yaw) * DT, yaw + w * DT])
        self.vel = np.array([v * math.cos(yaw), v * math.sin(yaw), w])
        self.prev = a
        self.collided |= self.footprint_hits()

    def footprint_hits(self) -> bool:
        x, y, yaw = self.pose
        u, s = np.meshgrid(np.linspace(-0.5, 0.5, 11), np.linspace(-0.28, 0.28, 7))
        px = x + u * math.cos(yaw) - s * math.sin(yaw)
        py = y + u * math.sin(yaw) + s * math.cos(yaw)
        ix = np.rint((px - self.origin[0]) / RES).astype(int)
        iy = np.rint((py - self.origin[1]) / RES).astype(int)
        return bool(self.grid[iy, ix].any())

    @property
    def distance(self) -> float:
        return float(np.hypot(*(self.goal - self.pose[:2])))

    def info(self) -> dict:
        ny, nx = self.grid.shape
        return {"privileged": {
            "pose": self.pose.copy(),
            "velocity": self.vel.copy(),
            "wheel_friction": np.ones(4),
            "wheel_drag": np.zeros(4),
            "motor_gain": self.gains.copy(),
            "payload_kg": 0.0,
            "friction_scale": 1.0,
            "goal": np.array([self.goal[0], self.goal[1], 0.5]),
            "obstacle_map": {"grid": self.grid, "resolution_m": RES, "origin_xy": self.origin},
            "friction_map": np.ones((ny, nx), np.float32),
            "drag_map": np.zeros((ny, nx), np.float32),
            "arena_size": (20.0, 20.0),
        }}

    def obs(self) -> np.ndarray:
        x, y, yaw = self.pose
        o = np.zeros(41, dtype=np.float32)
        dx, dy = self.goal - self.pose[:2]
        bearing = math.atan2(dy, dx) - yaw
        o[0], o[1], o[2] = self.distance, math.sin(bearing), math.cos(bearing)
        o[3] = self.vel[0] * math.cos(yaw) + self.vel[1] * math.sin(yaw)
        o[8] = self.vel[2]
        o[15:17] = self.prev
        angles = yaw + np.arange(sensors.LIDAR_RAYS) * (2 * math.pi / sensors.LIDAR_RAYS)
        r = np.arange(0.65, sensors.LIDAR_RANGE_M, 0.05)
        px = x + r[None, :] * np.cos(angles)[:, None]
        py = y + r[None, :] * np.sin(angles)[:, None]
        ix = np.clip(np.rint((px - self.origin[0]) / RES).astype(int), 0, 199)
        iy = np.clip(np.rint((py - self.origin[1]) / RES).astype(int), 0, 199)
        hit = self.grid[iy, ix]
        o[17:] = np.where(hit.any(axis=1), r[np.argmax(hit, axis=1)], sensors.LIDAR_RANGE_M)
        return o


def drive(world: ToyWorld, policy, seconds: float = 60.0) -> bool:
    """Runs the policy until the goal (0.5 m) or the time is up; True on success."""
    policy.reset(1)
    for _ in range(int(seconds / DT)):
        a = policy.act(world.obs(), world.info()) if policy.privileged else policy.act(world.obs())
        assert a.shape == (2,) and np.all(np.abs(a) <= 1.0)
        world.step(a)
        if world.distance <= 0.5:
            return True
    return False


# --- the wheel model -------------------------------------------------------------------------
@pytest.mark.parametrize("gains", [(1.0, 1.0), (0.4, 1.0), (1.0, 0.35), (0.7, 1.3)])
@pytest.mark.parametrize("v, w", [(0.3, 0.0), (0.25, 0.4), (0.0, -0.8), (-0.2, 0.3)])
def test_compensation_delivers_the_desired_wheel_speeds(gains, v, w):
    a = wheel_compensated_action(v, w, *gains)
    assert np.all(np.abs(a) <= 1.0)
    left, right = robot.wheel_speed_targets(a)
    np.testing.assert_allclose([left * gains[0], right * gains[1]],
                               [v - w * robot.TRACK_M / 2, v + w * robot.TRACK_M / 2], atol=1e-9)


def test_delivered_motion_inverts_the_compensation():
    for gains in [(1.0, 1.0), (0.4, 1.0), (1.2, 0.5)]:
        a = wheel_compensated_action(0.3, -0.4, *gains)
        np.testing.assert_allclose(expert.delivered_motion(a, *gains), (0.3, -0.4), atol=1e-9)


def test_compensation_saturates_keeping_the_curvature():
    a = wheel_compensated_action(1.0, 0.5, 0.35, 1.0)  # far beyond what a weak left side can do
    assert np.max(np.abs(a)) == pytest.approx(1.0)
    gl, gr = 0.35, 1.0
    vl = (a[0] * robot.V_MAX - a[1] * robot.W_MAX * robot.TRACK_M / 2) * gl
    vr = (a[0] * robot.V_MAX + a[1] * robot.W_MAX * robot.TRACK_M / 2) * gr
    v, w = (vl + vr) / 2, (vr - vl) / robot.TRACK_M
    assert w / v == pytest.approx(0.5)


# --- the expert in the toy world -------------------------------------------------------------
WALL = [(0.0, 2.0, 0.2, 6.0)]  # x in [-0.2, 0.2], y in [-4, 8]: go round its lower end
CLUTTER = [(-2.0, 0.0, 0.5, 0.5), (2.5, -1.0, 0.6, 0.4), (4.5, 1.5, 0.3, 0.8)]


@pytest.mark.parametrize("gains", [(1.0, 1.0), (0.4, 1.0), (1.0, 0.35)])
@pytest.mark.parametrize("boxes", [WALL, CLUTTER], ids=["wall", "clutter"])
def test_expert_reaches_the_goal_without_touching_anything(boxes, gains):
    world = ToyWorld(boxes=boxes, gains=gains, start=(-7.0, 1.0, 2.5), goal=(7.0, 0.5))
    assert drive(world, ExpertController(), seconds=60.0)
    assert not world.collided


def test_expert_path_is_efficient():
    world = ToyWorld(boxes=WALL, start=(-7.0, 2.0, 0.0), goal=(7.0, 2.0))
    policy = ExpertController()
    policy.reset(1)
    travelled, last = 0.0, world.pose[:2].copy()
    while world.distance > 0.5:
        world.step(policy.act(world.obs(), world.info()))
        travelled += float(np.hypot(*(world.pose[:2] - last)))
        last = world.pose[:2].copy()
        assert travelled < 100
    shortest = 2 * math.hypot(7.0, 6.0) - 0.5  # round the wall's end at (0, -4)
    assert shortest / travelled > 0.8


def test_expert_follows_a_moved_goal():
    world = ToyWorld(start=(0.0, 0.0, 0.0), goal=(5.0, 0.0))
    policy = ExpertController()
    policy.reset(1)
    for _ in range(40):
        world.step(policy.act(world.obs(), world.info()))
    world.goal = np.array([-5.0, 4.0])
    assert drive_on(world, policy, seconds=40.0)


def drive_on(world: ToyWorld, policy, seconds: float) -> bool:
    for _ in range(int(seconds / DT)):
        world.step(policy.act(world.obs(), world.info()))
        if world.distance <= 0.5:
            return True
    return False


def test_expert_labels_while_another_policy_drives_then_takes_over():
    """DAgger: the expert is queried on states a learner visits, then drives from there."""
    world = ToyWorld(boxes=CLUTTER, start=(-7.0, 0.0, 0.0), goal=(7.0, 0.5))
    learner, teacher = ClassicalController(), ExpertController()
    learner.reset(1)
    teacher.reset(1)
    rng = np.random.default_rng(0)
    for _ in range(100):
        label = teacher.act(world.obs(), world.info())
        assert label.shape == (2,) and np.all(np.isfinite(label)) and np.all(np.abs(label) <= 1)
        world.step(0.5 * learner.act(world.obs()) + rng.normal(0, 0.2, 2))
    assert drive_on(world, teacher, seconds=50.0)


def test_expert_batches_and_needs_info():
    worlds = [ToyWorld(start=(-7.0, y, 0.0)) for y in (-2.0, 0.0, 2.0)]
    policy = ExpertController()
    policy.reset(3)
    obs = np.stack([w.obs() for w in worlds])
    a = policy.act(obs, [w.info() for w in worlds])
    assert a.shape == (3, 2) and a.dtype == np.float32
    for i, w in enumerate(worlds):  # each row is what a policy of its own would do
        single = ExpertController()
        single.reset(1)
        out = single.act(w.obs(), w.info())
        assert out.shape == (2,)
        np.testing.assert_allclose(out, a[i], atol=1e-6)
    with pytest.raises(ValueError):
        single.act(worlds[0].obs())
    assert ExpertController.privileged and not ClassicalController().privileged


def test_expert_slows_down_before_a_corner_on_ice():
    """Rounding the wall's end: on ice the expert comes in slower than on dry ground."""
    corner = np.array([0.0, -4.75])
    top = {}
    for mu in (1.0, 0.08):
        world = ToyWorld(boxes=WALL, start=(-7.0, -5.5, 0.0), goal=(3.0, 4.0))
        policy = ExpertController()
        policy.reset(1)
        top[mu] = 0.0
        for _ in range(600):
            info = world.info()
            info["privileged"]["wheel_friction"] = np.full(4, mu)
            info["privileged"]["friction_map"] = np.full(world.grid.shape, mu, np.float32)
            a = policy.act(world.obs(), info)
            if np.hypot(*(world.pose[:2] - corner)) < 1.0:
                top[mu] = max(top[mu], float(a[0]))
            world.step(a)
        assert world.distance < 0.5 and not world.collided
    assert top[0.08] < top[1.0] - 0.2


# --- the classical controller in the toy world ----------------------------------------------------
@pytest.mark.parametrize("boxes", [[], CLUTTER], ids=["open", "clutter"])
def test_classical_reaches_the_goal(boxes):
    world = ToyWorld(boxes=boxes, start=(-7.0, 0.5, 0.3), goal=(7.0, 0.0))
    assert drive(world, ClassicalController(), seconds=60.0)
    assert not world.collided


def test_classical_corridor_clearance():
    pts = np.array([[2.0, 0.0], [0.1, 1.0], [-3.0, 0.0]])
    free = classical.corridor_clearance(pts, np.array([0.0, math.pi / 2, math.pi]), 0.3, 0.5, 8.0)
    np.testing.assert_allclose(free, [1.5, 0.5, 2.5])
    assert classical.corridor_clearance(np.zeros((0, 2)), np.array([0.0]), 0.3, 0.5, 8.0)[0] == 8.0


def test_classical_batches_and_ignores_info():
    worlds = [ToyWorld(start=(-7.0, y, 0.0)) for y in (-1.0, 1.0)]
    policy = ClassicalController()
    policy.reset(2)
    a = policy.act(np.stack([w.obs() for w in worlds]))
    assert a.shape == (2, 2) and np.all(np.abs(a) <= 1)
    policy.reset(1)
    assert policy.act(worlds[0].obs(), {"anything": 1}).shape == (2,)


# --- closed loop in the simulation --------------------------------------------------------------
def run_episode(scenario: str, policy, seed: int) -> dict:
    gym = pytest.importorskip("gymnasium")
    import envs  # noqa: F401  (registers the env)
    from envs import scenarios

    if scenario not in scenarios.names():
        pytest.skip(f"no built-in scenario {scenario!r}")
    env = gym.make(envs.ENV_ID, scenario=scenario)
    try:
        obs, info = env.reset(seed=seed)
        policy.reset(1)
        while True:
            a = policy.act(obs, info) if policy.privileged else policy.act(obs)
            obs, _, terminated, truncated, info = env.step(a)
            if terminated or truncated:
                return info
    finally:
        env.close()


def spl(info: dict) -> float:
    shortest, driven = info["shortest_path_length"], info["path_length"]
    return float(info["is_success"]) * shortest / max(driven, shortest, 1e-9)


@pytest.mark.parametrize("scenario", ["flat", "black-ice-obstacle", "right-motor-fade"])
def test_expert_succeeds_in_the_simulation(scenario):
    info = run_episode(scenario, ExpertController(), seed=0)
    assert info["is_success"], info["termination"]
    assert spl(info) > 0.8


def test_classical_succeeds_on_flat_ground():
    info = run_episode("flat", ClassicalController(), seed=0)
    assert info["is_success"], info["termination"]


@pytest.mark.slow
def test_expert_succeeds_on_every_builtin_scenario():
    from envs import scenarios

    failures = []
    for name in scenarios.names():
        for seed in (1, 2):
            info = run_episode(name, ExpertController(), seed=seed)
            if not info["is_success"] or spl(info) < 0.7:
                failures.append((name, seed, info["termination"], round(spl(info), 2)))
    assert not failures


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["clutter", "slick-clutter", "mud-patch"])
def test_classical_succeeds_where_nothing_needs_adapting(scenario):
    info = run_episode(scenario, ClassicalController(), seed=1)
    assert info["is_success"], info["termination"]


def test_expert_labels_do_not_wind_up_while_another_controller_drives():
    """DAgger asks the expert for labels while the student drives. Its yaw-rate integral
    must follow the commands actually applied: before the fix, with the classical controller
    driving, half of the expert's labels were full-lock turns."""
    import gymnasium as gym

    import envs
    from navctl.rollout import rollout

    saturated = []
    for seed in (100, 101, 102):
        env = gym.make(envs.ENV_ID, scenario="procedural-train")
        try:
            traj = rollout(env.unwrapped, ClassicalController(), seed, teacher=ExpertController(), takeover=0.0)
        finally:
            env.close()
        saturated.append(np.mean(np.abs(traj.labels[:, 1]) > 0.9))
    assert np.mean(saturated) < 0.2, saturated


@pytest.mark.parametrize("scenario", ["right-motor-fade", "ice-posts"])
def test_guided_expert_drives_the_classical_route_with_the_experts_compensation(scenario):
    """The guided teacher heads where the classical controller heads, but undoes the motor
    gains and minds the grip: it reaches the goal where a weak side or ice is in the way."""
    from navctl.expert import GuidedExpert

    info = run_episode(scenario, GuidedExpert(), seed=0)
    assert info["is_success"], info["termination"]
    guided, classical = GuidedExpert(), ClassicalController()
    guided.reset(1)
    classical.reset(1)
    import gymnasium as gym

    import envs

    env = gym.make(envs.ENV_ID, scenario="flat")
    obs, info = env.reset(seed=0)
    try:  # on flat ground with even motors it turns the way the classical controller turns
        for _ in range(40):
            a_guided, a_classical = guided.act(obs, info), classical.act(obs)
            assert np.sign(a_guided[1]) == np.sign(a_classical[1]) or abs(a_classical[1]) < 0.05
            obs, _, terminated, truncated, info = env.step(a_guided)
            if terminated or truncated:
                break
    finally:
        env.close()
