"""Progress inputs: what a learned policy with `progress_inputs` adds to its network's inputs.

The classical controller's escape (policies/classical.py, `ClassicalConfig.escape`, which
the guided-escape teacher drives) decides when to escape from a local minimum with a clock
of 100+ control steps: it escapes when the observation's goal distance has not got
`progress_m` shorter than its reference (the best so far, moved only in steps of
progress_m) for `stall_s`, and drives the escape
until the goal is `escape_m` closer than that reference, or for `escape_max_s` at most. A
recurrent network trained by truncated BPTT on short chunks cannot learn to count that
long, so these features hand it the clock, computed causally from the goal distance alone
(no privileged information) by the same bookkeeping (`StallClock`):

    stall       seconds the goal distance has gone without progress / stall_s, in [0, 1]
                (1: the stall fires; it then stays frozen while escaping)
    escape      seconds the escape may still drive / escape_max_s, in [0, 1]; 0 when not
                escaping (the escape starts at 1 and ends when the goal is escape_m closer
                than the reference, or when it reaches 0)
    above_best  goal distance minus the reference (m), clipped to [-escape_m, 3]

Left out: the escape ends only once the goal-ward heading is free too (from the lidar
memory), and it restarts the clock when the goal distance jumps (a new goal). The goal distance is mirror-invariant, so are these.

`ProgressTracker` computes them step by step for a batch (act()), `progress_features` for a
whole episode (training); both run the same float64 arithmetic, so they agree exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Union

import numpy as np

FEATURES = ("stall", "escape", "above_best")
NUM_FEATURES = len(FEATURES)
ABOVE_BEST_MAX_M = 3.0  # m, upper bound of above_best


@dataclass(frozen=True)
class ProgressSpec:
    """The stall clock's figures, those of the classical controller's escape."""

    progress_m: float = 0.5  # m that count as progress
    stall_s: float = 6.0  # s without progress = stalled
    escape_m: float = 1.0  # m closer than the reference ends the escape
    escape_max_s: float = 20.0  # s an escape lasts at most


class StallClock:
    """One episode's bookkeeping, in Python floats (float64); also the classical
    controller's escape clock (policies/classical.py)."""

    __slots__ = ("best", "since", "left")

    def __init__(self) -> None:
        self.best = math.inf  # m: the reference goal distance
        self.since = 0.0  # s without progress (frozen while escaping)
        self.left = 0.0  # s the escape may still drive; > 0 while escaping

    @property
    def escaping(self) -> bool:
        return self.left > 0

    def advance(self, d: float, dt: float, spec: ProgressSpec, may_end: Callable[[], bool] = lambda: True) -> None:
        """One control step of dt s at goal distance d m. An escape ends once the goal is
        escape_m closer than the reference and may_end() (asked only then), or when its time
        is up."""
        if self.left > 0:
            self.left -= dt
            if (d < self.best - spec.escape_m and may_end()) or self.left <= 0:  # out, or enough
                self.left, self.best, self.since = 0.0, d, 0.0
        else:
            self.since += dt
            if d < self.best - spec.progress_m:
                self.best, self.since = d, 0.0
            if self.since >= spec.stall_s:
                self.left = spec.escape_max_s

    def step(self, d: float, dt: float, spec: ProgressSpec) -> tuple[float, float, float]:
        """Advances by one control step of dt s at goal distance d m; returns the features."""
        self.advance(d, dt, spec)
        stall = min(self.since / spec.stall_s, 1.0)
        escape = max(self.left, 0.0) / spec.escape_max_s
        above = min(max(d - self.best, -spec.escape_m), ABOVE_BEST_MAX_M)
        return stall, escape, above


class ProgressTracker:
    """The progress features step by step for a batch: `reset(batch)`, then `step(goal_distance, dt)`."""

    def __init__(self, spec: ProgressSpec = ProgressSpec()) -> None:
        self.spec = spec
        self._clocks: list[StallClock] = []

    def reset(self, batch_size: int = 1) -> None:
        self._clocks = [StallClock() for _ in range(batch_size)]

    def step_one(self, goal_distance: float, dt: float) -> np.ndarray:
        """`step` for a batch of one (what act() runs at batch 1): -> features (NUM_FEATURES,) float32."""
        if len(self._clocks) != 1:
            raise ValueError(f"progress inputs: got 1 goal distance for a batch of {len(self._clocks)}")
        return np.array(self._clocks[0].step(float(goal_distance), float(dt), self.spec), dtype=np.float32)

    def step(self, goal_distance: np.ndarray, dt: Union[float, np.ndarray]) -> np.ndarray:
        """goal_distance (batch,) m, dt s (a number or one per sample) -> features (batch, NUM_FEATURES) float32."""
        d = np.asarray(goal_distance, dtype=np.float64).reshape(-1)
        if len(d) != len(self._clocks):
            raise ValueError(f"progress inputs: got {len(d)} goal distances for a batch of {len(self._clocks)}")
        dts = np.broadcast_to(np.asarray(dt, dtype=np.float64).reshape(-1), d.shape)
        return np.array([c.step(float(x), float(s), self.spec) for c, x, s in zip(self._clocks, d, dts)],
                        dtype=np.float32)


def progress_features(goal_distance: np.ndarray, dt: float, spec: ProgressSpec = ProgressSpec()) -> np.ndarray:
    """One episode's goal distances (T,) m, a control period dt s -> its features (T, NUM_FEATURES)
    float32, the same as a ProgressTracker reset at the episode's start gives step by step."""
    clock = StallClock()
    rows = [clock.step(float(d), float(dt), spec) for d in np.asarray(goal_distance, dtype=np.float64).reshape(-1)]
    return np.array(rows, dtype=np.float32).reshape(-1, NUM_FEATURES)
