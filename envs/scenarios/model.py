"""The validated scenario: plain immutable data (format version 1, see SCENARIOS.md).

Lengths are metres, angles degrees, times seconds; the world frame has x east, y north,
z up, origin at the arena centre. `envs.scenarios.load` builds these from YAML after
checking every field; nothing here reads files.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np

Range = tuple[float, float]  # a uniform draw [lo, hi]


@dataclass(frozen=True)
class Rect:
    """A rectangle of `size` (x, y extent before rotation) centred at `center`, turned by yaw_deg."""

    center: tuple[float, float]
    size: tuple[float, float]
    yaw_deg: float = 0.0

    def contains(self, x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray:
        """True where the world point (x, y) in metres lies inside (vectorised)."""
        c, s = math.cos(math.radians(self.yaw_deg)), math.sin(math.radians(self.yaw_deg))
        dx, dy = np.asarray(x) - self.center[0], np.asarray(y) - self.center[1]
        u, v = c * dx + s * dy, -s * dx + c * dy
        return (np.abs(u) <= self.size[0] / 2) & (np.abs(v) <= self.size[1] / 2)


@dataclass(frozen=True)
class Circle:
    center: tuple[float, float]
    radius_m: float

    def contains(self, x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray:
        """True where the world point (x, y) in metres lies inside (vectorised)."""
        dx, dy = np.asarray(x) - self.center[0], np.asarray(y) - self.center[1]
        return dx * dx + dy * dy <= self.radius_m ** 2


Shape = Union[Rect, Circle]


@dataclass(frozen=True)
class Hill:
    """A gaussian bump: height_m * exp(-d^2 / (2 sigma^2)) with sigma = radius_m / 2.

    At d = radius_m the bump is down to 13.5% of its height; a negative height is a hollow.
    """

    center: tuple[float, float]
    radius_m: float
    height_m: float


@dataclass(frozen=True)
class Arena:
    size_m: tuple[float, float]
    walls: bool = True
    roughness_m: float = 0.0
    hills: tuple[Hill, ...] = ()


@dataclass(frozen=True)
class Pose:
    x: float
    y: float
    yaw_deg: float = 0.0


@dataclass(frozen=True)
class RobotSpec:
    start: Pose
    payload_kg: float = 0.0


@dataclass(frozen=True)
class Goal:
    x: float
    y: float
    radius_m: float = 0.5


@dataclass(frozen=True)
class Surface:
    """A friction zone. Friction is the wheel-ground coefficient; drag the fraction of wheel torque lost."""

    name: str
    shape: Shape
    friction: float
    drag: float = 0.0


@dataclass(frozen=True)
class BoxObstacle:
    center: tuple[float, float]
    size: tuple[float, float, float]
    yaw_deg: float = 0.0


@dataclass(frozen=True)
class CylinderObstacle:
    center: tuple[float, float]
    radius_m: float
    height_m: float = 1.0


Obstacle = Union[BoxObstacle, CylinderObstacle]


@dataclass(frozen=True)
class RandomObstacles:
    """`count` boxes with footprint sides in [min_size_m, max_size_m], drawn per episode."""

    count: int
    min_size_m: float
    max_size_m: float
    keep_clear_m: float = 1.5
    # its place in the file's `obstacles:` list, for messages; not a field of the file format
    list_index: int = field(default=0, metadata={"in_file": False})


@dataclass(frozen=True)
class MotorGain:
    """Per-side gain (0..1.5); None means "unchanged" in an event."""

    left: Optional[float] = None
    right: Optional[float] = None


@dataclass(frozen=True)
class EventSet:
    """What an event sets; None fields are left as they are."""

    motor_gain: Optional[MotorGain] = None
    payload_kg: Optional[float] = None
    friction_scale: Optional[float] = None


@dataclass(frozen=True)
class Event:
    """Fires at most once, when its one trigger is met.

    Exactly one of at_time_s (simulated seconds since reset), at_distance_m (path length
    driven, metres) and on_enter (chassis centre enters the shape) is set.
    """

    set: EventSet
    at_time_s: Optional[float] = None
    at_distance_m: Optional[float] = None
    on_enter: Optional[Shape] = None

    @property
    def trigger(self) -> str:
        if self.at_time_s is not None:
            return "at_time_s"
        if self.at_distance_m is not None:
            return "at_distance_m"
        return "on_enter"


@dataclass(frozen=True)
class StartRandomize:
    x: Optional[Range] = None
    y: Optional[Range] = None
    yaw_deg: Optional[Range] = None


@dataclass(frozen=True)
class GoalRandomize:
    x: Optional[Range] = None
    y: Optional[Range] = None


@dataclass(frozen=True)
class MotorGainRandomize:
    left: Optional[Range] = None
    right: Optional[Range] = None


@dataclass(frozen=True)
class Randomize:
    start: StartRandomize = field(default_factory=StartRandomize)
    goal: GoalRandomize = field(default_factory=GoalRandomize)
    friction_scale: Optional[Range] = None
    payload_kg: Optional[Range] = None
    motor_gain: MotorGainRandomize = field(default_factory=MotorGainRandomize)
    event_time_jitter_s: float = 0.0


@dataclass(frozen=True)
class SensorNoise:
    """Standard deviations of additive Gaussian noise (lidar in metres)."""

    lidar_m: float = 0.0
    imu: float = 0.0
    odometry: float = 0.0


@dataclass(frozen=True)
class Sensors:
    noise: SensorNoise = field(default_factory=SensorNoise)


@dataclass(frozen=True)
class Scenario:
    version: int
    name: str
    arena: Arena
    robot: RobotSpec
    goal: Goal
    description: str = ""
    split: Optional[str] = None
    time_limit_s: float = 60.0
    surfaces: tuple[Surface, ...] = ()
    obstacles: tuple[Obstacle, ...] = ()
    random_obstacles: Optional[RandomObstacles] = None
    events: tuple[Event, ...] = ()
    randomize: Randomize = field(default_factory=Randomize)
    sensors: Sensors = field(default_factory=Sensors)
    source: str = ""  # the file it came from, for messages
