"""The one place a policy reference becomes a ready Policy object.

Names as the command line takes them:

    expert, classical   the hand-written controllers (navctl/expert.py, policies/classical.py);
    classical-escape    the classical controller that follows an obstacle's boundary where it stalls;
    guided              the expert's driving on the classical controller's route (navctl/expert.py);
    guided-rescue       the same, and the expert's own route where the classical one stalls;
    guided-escape       the same on the classical-escape route;
                        navctl gives them what they know of the robot, from envs
    liquid, liquid-ltc, cfc, lstm, mlp, lsm
                        shipped checkpoints, via policies.load
    NAME-frozen         NAME with its plastic traces frozen (plasticity ablation)
    a file path         a checkpoint, via policies.load

and, for training, a learned policy by value (`PolicyWeights`: its config and weights), which
is how the student travels to the workers that collect its episodes.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from navctl.errors import UsageError
from policies import SHIPPED
from policies.base import Policy

CONTROLLERS = ("expert", "guided", "guided-rescue", "guided-escape", "classical", "classical-escape")
FROZEN_SUFFIX = "-frozen"


@dataclass(frozen=True, eq=False)
class PolicyWeights:
    """A learned policy by value: `config` for policies.build and its state dict as numpy arrays."""

    config: dict[str, Any]
    weights: dict[str, np.ndarray]
    digest: str = field(init=False)  # identifies the weights (a worker rebuilds the policy only when it changes)

    def __post_init__(self) -> None:
        h = hashlib.sha256()
        for k in sorted(self.weights):
            h.update(k.encode())
            h.update(np.ascontiguousarray(self.weights[k]).tobytes())
        object.__setattr__(self, "digest", h.hexdigest()[:16])

    @classmethod
    def of(cls, policy: Any, config: dict[str, Any]) -> "PolicyWeights":
        """The current weights of a learned policy built from `config`."""
        return cls(config, {k: v.detach().cpu().numpy().copy() for k, v in policy.net.state_dict().items()})

    def build(self) -> Policy:
        """The policy, in eval mode."""
        import policies
        import torch

        policy = policies.build(self.config)
        policy.net.load_state_dict({k: torch.from_numpy(v) for k, v in self.weights.items()})
        policy.net.eval()
        return policy


def valid_names() -> list[str]:
    """The names `make_policy` knows, in the order the help text lists them."""
    return ["liquid", "liquid-frozen", "liquid-ltc", "cfc", "lstm", "mlp", "lsm", "lsm-frozen", "classical",
            "classical-escape", "expert", "guided", "guided-rescue", "guided-escape"]


def _describe_valid() -> str:
    return f"valid: {', '.join(valid_names())}, NAME{FROZEN_SUFFIX}, or a checkpoint file"


def looks_like_path(name: str) -> bool:
    """True when `name` is meant as a file rather than a policy name."""
    return os.sep in name or "/" in name or os.path.splitext(name)[1] != "" or os.path.exists(name)


def check_name(name: str) -> None:
    """Raises UsageError (listing the valid names) unless `name` could be resolved."""
    base = name[: -len(FROZEN_SUFFIX)] if name.endswith(FROZEN_SUFFIX) and name not in SHIPPED else name
    if base in CONTROLLERS or base in SHIPPED:
        return
    if looks_like_path(base):
        if not os.path.isfile(base):
            raise UsageError(f"policy checkpoint {base!r}: no such file")
        return
    raise UsageError(f"unknown policy {name!r} ({_describe_valid()})")


def classical_robot():  # noqa: ANN201 - a policies.classical.Robot
    """What the classical controller knows of the robot, from envs: the observation layout,
    control period, lidar range and action scale."""
    from envs.robot import V_MAX, W_MAX
    from envs.sensors import LIDAR_RANGE_M, OBS_LAYOUT
    from envs.terrain_nav import TerrainNavEnv
    from policies.classical import Robot

    return Robot(obs_layout=dict(OBS_LAYOUT), control_dt_s=1.0 / TerrainNavEnv.control_hz,
                 lidar_range_m=LIDAR_RANGE_M, v_max=V_MAX, w_max=W_MAX)


def classical_controller(escape: bool = False) -> Policy:
    """The classical controller (with its escape: `classical-escape`), told what it knows of
    the robot by envs."""
    from policies.classical import ClassicalConfig, ClassicalController

    return ClassicalController(classical_robot(), ClassicalConfig(escape=escape))


def with_base(config: dict[str, Any]) -> dict[str, Any]:
    """A learned policy's config with `base: classical` or `base: classical-escape` (a network
    that corrects that controller) replaced by the classical controller's robot description
    (and `base_escape: true` for the escape), which is what policies.build needs and the
    checkpoint stores. Other configs pass unchanged."""
    base = config.get("base")
    if base is None:
        return config
    if isinstance(base, dict):  # already filled in (a model card's config); older ones have no base_escape
        return {"base_escape": False, **config}
    if base not in ("classical", "classical-escape"):
        raise ValueError(f"base must be 'classical' or 'classical-escape' (the controllers a network can correct), "
                         f"got {base!r}")
    return {**config, "base": classical_robot().to_dict(), "base_escape": base == "classical-escape"}


def _load(name: str) -> Policy:
    if name == "expert":
        from navctl.expert import ExpertController
        return ExpertController()
    if name in ("guided", "guided-rescue", "guided-escape"):
        from navctl.expert import ExpertConfig, GuidedExpert
        return GuidedExpert(ExpertConfig(rescue=name == "guided-rescue", escape=name == "guided-escape"))
    if name in ("classical", "classical-escape"):
        return classical_controller(escape=name == "classical-escape")
    import policies
    try:
        return policies.load(name)
    except FileNotFoundError as e:  # a shipped name whose checkpoint file is missing
        raise UsageError(str(e)) from None


def make_policy(name_or_path: str) -> Policy:
    """A ready policy for a name or checkpoint path (see the module docstring).

    Raises UsageError on an unknown name; errors of policies.load (a missing or bad
    checkpoint) pass through unchanged.
    """
    check_name(name_or_path)
    if name_or_path.endswith(FROZEN_SUFFIX) and name_or_path not in SHIPPED:
        base = name_or_path[: -len(FROZEN_SUFFIX)]
        policy = _load(base)
        if not policy.plasticity:
            raise UsageError(f"policy {name_or_path!r}: {base!r} has no plastic synapses to freeze")
        policy.plasticity = False
        return policy
    return _load(name_or_path)
