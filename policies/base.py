"""The interface every controller offers to rollouts and evaluation."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

# Size of the environment's observation and action (see envs' obs_layout); policies take
# them from their config, these are the defaults of navctl/TerrainNav-v0.
OBS_DIM = 41
ACT_DIM = 2
GOAL_DISTANCE = 0  # index of the goal distance (m) in that observation


class Policy:
    """A stateful controller: `reset(batch_size)`, then `act(obs)` once per control step.

    `obs` is a float32 array (obs_dim,) or (batch, obs_dim); the action has the same leading
    shape with ACT_DIM columns in [-1, 1]: (forward speed, yaw rate), normalised.
    `info` is the env's info dict (or a sequence of them for a batch); only privileged
    controllers read it.
    """

    name: str = "policy"
    #: True when act() needs info["privileged"] (the expert).
    privileged: bool = False

    def reset(self, batch_size: int = 1) -> None:
        raise NotImplementedError

    def act(self, obs: np.ndarray, info: Optional[dict[str, Any] | Sequence[dict[str, Any]]] = None) -> np.ndarray:
        raise NotImplementedError

    @property
    def plasticity(self) -> bool:
        """Whether plastic traces change while acting (always False for non-plastic policies)."""
        return False

    @plasticity.setter
    def plasticity(self, on: bool) -> None:
        if on:
            raise ValueError(f"policy {self.name!r} has no plastic synapses")

    @property
    def num_parameters(self) -> int:
        return 0
