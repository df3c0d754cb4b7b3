"""Controllers for navctl: liquid neural networks with plastic synapses, baselines, and
the non-privileged classical controller. torch + numpy only (never PyBullet, Gymnasium,
envs or navctl: what a policy needs to know of the robot it is given as arguments).

`load` knows the shipped checkpoints and checkpoint files; the names the command line takes
(the controllers, NAME-frozen, ...) are navctl.policy_names'.

    import policies
    policy = policies.load("liquid")            # a shipped name, or a checkpoint path
    policy = policies.build({"kind": "liquid"}) # an untrained policy from a config (kinds: policies.learned)
    policy.reset(1); action = policy.act(obs)

Importing this package is light: torch is imported when a learned policy is built or loaded.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Union

from policies.base import ACT_DIM, OBS_DIM, Policy

__all__ = ["ACT_DIM", "OBS_DIM", "Policy", "CheckpointError", "build", "load", "names", "CHECKPOINT_DIR", "SHIPPED"]

CHECKPOINT_DIR = Path(__file__).parent / "checkpoints"
SHIPPED = ("liquid", "liquid-ltc", "cfc", "lstm", "mlp", "lsm")  # checkpoints in CHECKPOINT_DIR, by name


def names() -> list[str]:
    """The shipped checkpoint names `load` accepts besides checkpoint paths."""
    return list(SHIPPED)


def load(name_or_path: Union[str, Path]) -> Policy:
    """A ready policy: a shipped checkpoint name (see `names()`) or a checkpoint file path."""
    from policies.checkpoint import load_policy

    key = str(name_or_path)
    if key in SHIPPED:
        path = CHECKPOINT_DIR / f"{key}.safetensors"
        if not path.is_file():
            raise FileNotFoundError(f"policy {key!r}: its checkpoint {path} is missing")
        return load_policy(path)
    path = Path(name_or_path)
    if path.suffix == ".safetensors" or path.exists():
        return load_policy(path)
    raise ValueError(f"unknown policy {key!r}: not a name ({', '.join(names())}) and no such checkpoint file")


def __getattr__(name: str) -> Any:
    # CheckpointError without importing torch on `import policies`
    if name == "CheckpointError":
        from policies.checkpoint import CheckpointError

        return CheckpointError
    raise AttributeError(f"module 'policies' has no attribute {name!r}")


def build(config: Union[dict[str, Any], None] = None) -> Policy:
    """An untrained learned policy from a config dict (see policies.learned.PolicyConfig)."""
    from policies.learned import build_policy

    return build_policy(config)
