"""Policy checkpoints: one safetensors file, no pickle.

The file holds the network's tensors (weights and the observation normalisation), for a
lifelong plastic policy its current traces (`lifelong_trace`, so that a restarted robot
keeps what it adapted to), and a JSON metadata header: format name and version, policy kind, the full config, the wiring
(its adjacency matrices, so the file does not depend on the wiring generator) and a
SHA-256 of the tensors. Loading validates all of it and raises `CheckpointError` (a
ValueError) naming the file and what does not match.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Union

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from policies.learned import PLASTIC_KINDS, LearnedPolicy, PolicyConfig, build_network
from policies.wiring import Wiring

FORMAT = "navctl-policy"
FORMAT_VERSION = 1
LIFELONG_TRACE = "lifelong_trace"  # tensor key of a lifelong policy's traces


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded; the message names the file and the problem."""


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def save_policy(policy: LearnedPolicy, path: Union[str, Path]) -> Path:
    """Write a LearnedPolicy to `path` (a .safetensors file); returns the path."""
    if not isinstance(policy, LearnedPolicy):
        raise TypeError(f"only learned policies have checkpoints, got {type(policy).__name__}")
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in policy.net.state_dict().items()}
    if policy.lifelong_trace is not None:
        tensors[LIFELONG_TRACE] = policy.lifelong_trace.detach().cpu().contiguous().clone()
    wiring = getattr(policy.cell, "wiring", None)  # the liquid cells' (the LSM's reservoir is in the tensors)
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "kind": policy.config.kind,
        "config": json.dumps(policy.config.to_dict(), sort_keys=True),
        "wiring": json.dumps(wiring.to_dict() if wiring is not None else None),
        "sha256": _digest(tensors),
        "torch_version": torch.__version__,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return path


def _lifelong_trace_problems(trace: torch.Tensor, config: PolicyConfig, shape: tuple[int, int]) -> list[str]:
    """What is wrong with a stored lifelong trace for a policy of `config` whose traces are
    `shape` per sample (nothing: [])."""
    if not (config.lifelong and config.kind in PLASTIC_KINDS):
        return [f"{LIFELONG_TRACE} present but the policy is not lifelong and plastic"]
    if trace.dim() != 3 or tuple(trace.shape[1:]) != shape or trace.dtype != torch.float32:
        return [f"{LIFELONG_TRACE} has shape {tuple(trace.shape)} ({trace.dtype}), "
                f"expected (batch, {shape[0]}, {shape[1]}) float32"]
    if not torch.isfinite(trace).all():
        return [f"{LIFELONG_TRACE} holds non-finite values"]
    return []


def load_policy(path: Union[str, Path]) -> LearnedPolicy:
    """Read a checkpoint written by `save_policy` and return a ready LearnedPolicy."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint (truncated or corrupted?): {e}") from e

    def fail(what: str) -> CheckpointError:
        return CheckpointError(f"{path}: {what}")

    if metadata.get("format") != FORMAT:
        raise fail(f"format is {metadata.get('format')!r}, expected {FORMAT!r} (not a navctl policy checkpoint)")
    if metadata.get("format_version") != str(FORMAT_VERSION):
        raise fail(f"format version {metadata.get('format_version')!r} is not supported (this code reads {FORMAT_VERSION})")
    try:
        config = PolicyConfig.from_dict(json.loads(metadata["config"]))
    except (KeyError, TypeError, ValueError) as e:
        raise fail(f"invalid config: {e}") from e
    if metadata.get("kind") != config.kind:
        raise fail(f"kind {metadata.get('kind')!r} does not match the config's kind {config.kind!r}")
    try:
        wiring_data = json.loads(metadata.get("wiring", "null"))
        wiring = Wiring.from_dict(wiring_data) if wiring_data is not None else None
    except (KeyError, TypeError, ValueError) as e:
        raise fail(f"invalid wiring: {e}") from e
    if metadata.get("sha256") != _digest(tensors):
        raise fail("tensor data does not match its SHA-256 (corrupted file)")

    try:
        net = build_network(config, wiring)
    except ValueError as e:
        raise fail(f"config and wiring do not fit together: {e}") from e
    trace = tensors.pop(LIFELONG_TRACE, None)
    rule = getattr(getattr(net, "cell", None), "rule", None)
    shape = tuple(rule.shape) if rule is not None else (0, 0)
    problems = _lifelong_trace_problems(trace, config, shape) if trace is not None else []
    problems += _tensor_problems(net.state_dict(), tensors)
    if problems:
        raise fail("does not match its config (kind " + repr(config.kind) + "): " + "; ".join(problems))
    net.load_state_dict(tensors, strict=True)
    policy = LearnedPolicy(net, config)
    if trace is not None:
        policy.lifelong_trace = trace
    return policy


def _tensor_problems(expected: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor]) -> list[str]:
    """What keeps `tensors` from loading into a network whose state dict is `expected`."""
    problems = []
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing:
        problems.append(f"missing tensors {missing}")
    if unexpected:
        problems.append(f"unexpected tensors {unexpected}")
    for name in sorted(set(expected) & set(tensors)):
        want, got = expected[name], tensors[name]
        if tuple(got.shape) != tuple(want.shape):
            problems.append(f"{name} has shape {tuple(got.shape)}, the config needs {tuple(want.shape)}")
        elif got.dtype != want.dtype:
            problems.append(f"{name} has dtype {got.dtype}, expected {want.dtype}")
        elif not torch.isfinite(got).all():
            problems.append(f"{name} holds non-finite values")
    return problems
