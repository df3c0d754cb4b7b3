"""The Husky and its wheel model: skid-steer kinematics, motor gains, payload, per-wheel friction.

The Husky URDF ships with pybullet_data. Its wheels are loaded as implicit cylinders and
driven by velocity control with a torque limit. A side with motor gain g turns its wheels at
g times the commanded speed with g times the torque limit (SCENARIOS.md); a wheel in mud
with drag d loses the fraction d of its torque limit.
"""
from __future__ import annotations

import math

import numpy as np
from envs.quiet import pybullet as p

from envs.quiet import c_output_silenced

WHEEL_RADIUS_M = 0.17775
TRACK_M = 0.5708  # distance between the left and right wheel centres
V_MAX = 1.0  # m/s forward speed at action[0] = 1
W_MAX = 2.0  # rad/s yaw rate at action[1] = 1 (counter-clockwise positive)
TORQUE_LIMIT_NM = 30.0  # per wheel, at motor gain 1
# Skid-steer tyres scrub sideways in every turn; with equal friction along and across the
# tread the chassis hardly turns, so the sideways coefficient is this fraction of the zone's.
LATERAL_FRICTION_RATIO = 0.3
CHASSIS_LINK = 0  # base_link; the URDF's root is base_footprint, at ground level
CHASSIS_MASS_KG = 33.455
WHEEL_JOINTS = (2, 3, 4, 5)  # front left, front right, rear left, rear right
# Wheel centres in the base_footprint frame (x forward, y left), metres.
WHEEL_OFFSETS = np.array([[0.256, 0.2854], [0.256, -0.2854], [-0.256, 0.2854], [-0.256, -0.2854]])
CHASSIS_HALF_SIZE = (0.504, 0.2855)  # collision box half extents (x, y), metres


def wheel_speed_targets(action: np.ndarray) -> tuple[float, float]:
    """Skid-steer: normalised (forward, yaw rate) -> (left, right) rim speeds in m/s."""
    v = float(action[0]) * V_MAX
    w = float(action[1]) * W_MAX
    return v - w * TRACK_M / 2, v + w * TRACK_M / 2


class Husky:
    """One Husky in a PyBullet client: applies commands and reports its state."""

    def __init__(self, client: int, x: float, y: float, z: float, yaw_rad: float, visuals: bool) -> None:
        self.client = client
        flags = p.URDF_USE_IMPLICIT_CYLINDER
        if not visuals:  # the detailed meshes cost load and render time; collision shapes are drawn instead
            flags |= p.URDF_IGNORE_VISUAL_SHAPES
        with c_output_silenced():
            self.body = p.loadURDF(
                "husky/husky.urdf",
                [x, y, z],
                p.getQuaternionFromEuler([0, 0, yaw_rad]),
                flags=flags,
                physicsClientId=client,
            )
        self._wheel_friction = np.full(4, -1.0)
        self.motor_gain = np.ones(2)
        self.payload_kg = 0.0
        self.drag = np.zeros(4)
        self._last_command: tuple = ()
        self._inertia0 = np.array(p.getDynamicsInfo(self.body, CHASSIS_LINK, physicsClientId=client)[2])
        for j in WHEEL_JOINTS:
            p.changeDynamics(self.body, j, rollingFriction=0.0, spinningFriction=0.0,
                             anisotropicFriction=[1.0, LATERAL_FRICTION_RATIO, 1.0],  # wheel link y = axle
                             physicsClientId=client)

    # --- actuation -------------------------------------------------------------------
    def command(self, action: np.ndarray) -> None:
        """Sets the wheel velocity motors for a normalised action (forward, yaw rate)."""
        left, right = wheel_speed_targets(action)
        g_left, g_right = float(self.motor_gain[0]), float(self.motor_gain[1])
        w_left, w_right = left * g_left / WHEEL_RADIUS_M, right * g_right / WHEEL_RADIUS_M
        keep = (1.0 - self.drag).tolist()  # FL, FR, RL, RR
        targets = (w_left, w_right, w_left, w_right)
        forces = tuple(TORQUE_LIMIT_NM * g * k for g, k in zip((g_left, g_right, g_left, g_right), keep))
        if (targets, forces) == self._last_command:
            return  # motors keep their targets between calls; re-sending them slows the next steps
        self._last_command = (targets, forces)
        p.setJointMotorControlArray(self.body, WHEEL_JOINTS, p.VELOCITY_CONTROL, targetVelocities=targets,
                                    forces=forces, physicsClientId=self.client)

    def set_wheel_friction(self, friction: np.ndarray) -> None:
        """Wheel-ground friction coefficient per wheel (the ground's own coefficient is 1)."""
        for i in np.flatnonzero(friction != self._wheel_friction):
            p.changeDynamics(self.body, WHEEL_JOINTS[i], lateralFriction=float(friction[i]), physicsClientId=self.client)
        self._wheel_friction = friction.copy()

    def set_payload(self, payload_kg: float) -> None:
        """Extra mass on the chassis, kg; the chassis inertia scales with its mass."""
        self.payload_kg = float(payload_kg)
        scale = (CHASSIS_MASS_KG + self.payload_kg) / CHASSIS_MASS_KG
        p.changeDynamics(
            self.body,
            CHASSIS_LINK,
            mass=CHASSIS_MASS_KG + self.payload_kg,
            localInertiaDiagonal=(self._inertia0 * scale).tolist(),
            physicsClientId=self.client,
        )

    # --- state -----------------------------------------------------------------------
    def pose(self) -> tuple[np.ndarray, tuple[float, float, float, float]]:
        """Position (m, world) of base_footprint and its orientation quaternion."""
        pos, orn = p.getBasePositionAndOrientation(self.body, physicsClientId=self.client)
        return np.asarray(pos), orn

    def velocity(self) -> tuple[np.ndarray, np.ndarray]:
        """Linear (m/s) and angular (rad/s) velocity in the world frame."""
        lin, ang = p.getBaseVelocity(self.body, physicsClientId=self.client)
        return np.asarray(lin), np.asarray(ang)

    def wheel_rim_speeds(self) -> np.ndarray:
        """Encoder readings as rim speeds, m/s (FL, FR, RL, RR)."""
        states = p.getJointStates(self.body, WHEEL_JOINTS, physicsClientId=self.client)
        return np.array([s[1] for s in states]) * WHEEL_RADIUS_M

    def wheel_xy(self, pos: np.ndarray, yaw: float) -> np.ndarray:
        """World (x, y) of the four wheel centres, m; from the pose, with no extra query."""
        c, s = math.cos(yaw), math.sin(yaw)
        rot = np.array([[c, -s], [s, c]])
        return pos[:2] + WHEEL_OFFSETS @ rot.T
