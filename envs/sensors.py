"""What the robot can sense: lidar (rayTestBatch), IMU, wheel odometry, goal fix.

The observation is one flat float32 vector in physical units; `OBS_LAYOUT` names its slices.
Noise is additive Gaussian with the scenario's standard deviations, drawn from the
environment's seeded RNG so episodes stay reproducible.
"""
from __future__ import annotations

import math

import numpy as np
from envs.quiet import pybullet as p

LIDAR_RAYS = 24  # ray k points k * 15 degrees counter-clockwise from straight ahead
LIDAR_RANGE_M = 8.0  # a ray that hits nothing reads this
LIDAR_START_M = 0.65  # rays start outside the chassis (and wheels), measured from its centre
LIDAR_HEIGHT_M = 0.3  # above the base_footprint (ground level), in the chassis frame

OBS_LAYOUT: dict[str, slice] = {
    "goal_distance": slice(0, 1),  # m, chassis centre to goal centre, in the ground plane
    "goal_bearing": slice(1, 3),  # (sin, cos) of the goal direction in the robot frame, CCW positive
    "lin_vel": slice(3, 6),  # m/s, body frame (x forward, y left, z up)
    "ang_vel": slice(6, 9),  # rad/s, body frame
    "roll_pitch": slice(9, 11),  # rad
    "wheel_speeds": slice(11, 15),  # m/s rim speed from the encoders: FL, FR, RL, RR
    "prev_action": slice(15, 17),  # the last action applied, normalised
    "lidar": slice(17, 17 + LIDAR_RAYS),  # m, in [0, LIDAR_RANGE_M]
}
OBS_DIM = 17 + LIDAR_RAYS

_ANGLES = np.arange(LIDAR_RAYS) * (2 * math.pi / LIDAR_RAYS)
RAY_DIRS = np.stack([np.cos(_ANGLES), np.sin(_ANGLES), np.zeros(LIDAR_RAYS)], axis=1)


class Lidar:
    """A ring of LIDAR_RAYS rays fixed to the chassis, cast once per control step.

    The rays are given in the robot's base frame, so PyBullet places them itself and the
    ring tilts with the chassis as a mounted scanner does (on a slope it may see the ground).
    """

    def __init__(self, client: int, body: int) -> None:
        self.client = client
        self.body = body
        origin = np.array([0.0, 0.0, LIDAR_HEIGHT_M])
        self._starts = (origin + RAY_DIRS * LIDAR_START_M).tolist()
        self._ends = (origin + RAY_DIRS * LIDAR_RANGE_M).tolist()

    def scan(self) -> np.ndarray:
        """Ranges in metres from the chassis centre, ray k at k * 360/LIDAR_RAYS degrees CCW."""
        hits = p.rayTestBatch(self._starts, self._ends, parentObjectUniqueId=self.body, parentLinkIndex=-1,
                              physicsClientId=self.client)
        frac = np.array([h[2] for h in hits])  # 1.0 where nothing was hit
        return LIDAR_START_M + frac * (LIDAR_RANGE_M - LIDAR_START_M)


def noise_scale(lidar_m: float, imu: float, odometry: float) -> np.ndarray:
    """Per-component noise standard deviation of the observation (IMU on velocities and
    roll/pitch, odometry on the goal fix and the wheel encoders, none on prev_action)."""
    sd = np.zeros(OBS_DIM)
    sd[0:2] = odometry  # goal distance (m) and bearing (rad)
    sd[3:11] = imu
    sd[11:15] = odometry
    sd[17:] = lidar_m
    return sd


def observe(
    pos: np.ndarray,
    rot: np.ndarray,
    yaw: float,
    lin_vel_world: np.ndarray,
    ang_vel_world: np.ndarray,
    rim_speeds: np.ndarray,
    prev_action: np.ndarray,
    lidar_m: np.ndarray,
    goal_xy: np.ndarray,
    noise_sd: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Builds the observation vector; `rot` is the chassis rotation matrix (body to world)
    and `noise_sd` the per-component noise from `noise_scale`."""
    obs = np.empty(OBS_DIM)
    dx, dy = goal_xy[0] - pos[0], goal_xy[1] - pos[1]
    obs[0] = math.hypot(dx, dy)
    obs[1] = math.atan2(dy, dx) - yaw  # the bearing angle, until its noise is added
    obs[3:6] = lin_vel_world @ rot  # world to body: R^T v
    obs[6:9] = ang_vel_world @ rot
    obs[9:11] = roll_pitch(rot)
    obs[11:15] = rim_speeds
    obs[15:17] = prev_action
    obs[17:] = lidar_m
    obs += rng.standard_normal(OBS_DIM) * noise_sd
    obs[0] = abs(obs[0])
    np.minimum(np.maximum(obs[17:], 0.0, out=obs[17:]), LIDAR_RANGE_M, out=obs[17:])
    bearing = obs[1]
    obs[1] = math.sin(bearing)
    obs[2] = math.cos(bearing)
    return obs.astype(np.float32)


def roll_pitch(rot: np.ndarray) -> tuple[float, float]:
    """Roll and pitch (rad) of a body-to-world rotation matrix."""
    return math.atan2(rot[2, 1], rot[2, 2]), math.asin(max(-1.0, min(1.0, -rot[2, 0])))

