"""Controllers for navctl: liquid neural networks with plastic synapses, baselines, and
the non-learned controllers. torch + numpy only (never PyBullet).

    import policies
    policy = policies.load("liquid")            # a shipped name, or a checkpoint path
    policy = policies.build({"kind": "liquid"}) # an untrained policy from a config
    policy.reset(1); action = policy.act(obs)

Importing this package is light: torch is imported when a learned policy is built or loaded.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Union

from policies.base import ACT_DIM, OBS_DIM, Policy

__all__ = ["ACT_DIM", "OBS_DIM", "Policy", "CheckpointError", "build", "load", "names", "register", "CHECKPOINT_DIR"]

CHECKPOINT_DIR = Path(__file__).parent / "checkpoints"

# name -> factory returning a ready policy; register() adds more (e.g. the expert)
_REGISTRY: dict[str, Callable[[], Policy]] = {}


def register(name: str, factory: Callable[[], Policy]) -> None:
    """Make `load(name)` return `factory()`."""
    _REGISTRY[name] = factory


def names() -> list[str]:
    """The names `load` accepts besides checkpoint paths."""
    return sorted(_REGISTRY)


def _shipped(name: str) -> Callable[[], Policy]:
    def factory() -> Policy:
        path = CHECKPOINT_DIR / f"{name}.safetensors"
        if not path.is_file():
            raise FileNotFoundError(
                f"policy {name!r} is not shipped yet: {path} does not exist (trained checkpoints come with "
                f"the training work). Build an untrained one with policies.build({{'kind': {name!r}}}) "
                "or pass the path of a checkpoint file."
            )
        from policies.checkpoint import load_policy

        return load_policy(path)

    return factory


for _name in ("liquid", "liquid-ltc", "cfc", "lstm", "mlp"):
    register(_name, _shipped(_name))


def load(name_or_path: Union[str, Path]) -> Policy:
    """A ready policy: a registered name (see `names()`) or a checkpoint file path."""
    key = str(name_or_path)
    if key in _REGISTRY:
        return _REGISTRY[key]()
    path = Path(name_or_path)
    if path.suffix == ".safetensors" or path.exists():
        from policies.checkpoint import load_policy

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
