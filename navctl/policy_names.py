"""Policy names as the command line takes them, turned into ready Policy objects.

    expert, classical   the hand-written controllers (policies/expert.py, policies/classical.py)
    liquid, liquid-ltc, cfc, lstm, mlp
                        shipped checkpoints, via policies.load
    NAME-frozen         NAME with its plastic traces frozen (plasticity ablation)
    a file path         a checkpoint, via policies.load
"""
from __future__ import annotations

import os

from navctl.errors import UsageError
from policies.base import Policy

CONTROLLERS = ("expert", "classical")
SHIPPED = ("liquid", "liquid-ltc", "cfc", "lstm", "mlp")
FROZEN_SUFFIX = "-frozen"


def valid_names() -> list[str]:
    """The names `make_policy` knows, in the order the help text lists them."""
    return ["liquid", "liquid-frozen", "liquid-ltc", "cfc", "lstm", "mlp", "classical", "expert"]


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


def _load(name: str) -> Policy:
    if name == "expert":
        from policies.expert import ExpertController
        return ExpertController()
    if name == "classical":
        from policies.classical import ClassicalController
        return ClassicalController()
    import policies
    load = getattr(policies, "load", None)
    if load is None:
        raise UsageError(f"policy {name!r} is not available yet: policies.load does not exist")
    try:
        return load(name)
    except FileNotFoundError as e:  # a shipped name whose checkpoint is not there (yet)
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


def is_plastic(name_or_path: str) -> bool:
    """Whether the named policy has plastic synapses switched on (loads it)."""
    return bool(make_policy(name_or_path).plasticity)
