"""Export of a learned policy's single control step to ONNX and TorchScript.

The exported graph is one `step`, with every state tensor as an explicit input and output:

    inputs:  obs (batch, input_dim) float32, dt (batch,) float32 seconds, then the state
             (liquid: h (batch, units) [, trace (batch, units, units)]; lsm: h (batch, N * (2 +
             refractory sub-steps)), trace (batch, features, act_dim); lstm: h, c; gru: h; mlp: none)
    outputs: action (batch, act_dim) in [-1, 1], then the new state, named <state>_out

The caller feeds each step's state outputs back as the next step's inputs (zeros at the
start of an episode). The batch axis is dynamic. A policy with a base controller (policies.learned)
exports its network: `obs` is then the observation followed by the classical controller's
action for it (input_dim = obs_dim + act_dim), and `action` is already the corrected action;
the classical controller itself is numpy code and runs beside the exported graph. A policy with
`progress_inputs` likewise takes its progress features in `obs`, between the observation and
the base action (input_dim = obs_dim + 3 [+ act_dim]): policies.progress.ProgressTracker
computes them beside the graph from the observation's goal distance, reset at every episode's
start (`LearnedPolicy.network_inputs` lays out a whole episode). Plasticity is exported as it is set on the
policy at export time (off exports the frozen-trace ablation).

The LSM's step is exported for the config's control period: its number of reservoir
sub-steps is fixed in the graph, which therefore has no `dt` input (feed only the inputs the
model lists). Run without onnxruntime's graph optimisations, it computes the same spikes as
the policy bit for bit; with them, its constants are folded in another order (v differs by
~1e-8).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Union

import torch
from torch import nn

from policies.learned import LearnedPolicy


class StepModule(nn.Module):
    """forward(obs, dt, *state) -> (action, *new_state): the policy network's step."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, obs: torch.Tensor, dt: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        action, new_state = self.net.step(obs, dt, tuple(state))
        return (action, *new_state)


def io_names(policy: LearnedPolicy) -> tuple[list[str], list[str]]:
    """(input names, output names) of the exported step."""
    state = list(policy.net.state_names())
    return ["obs", "dt", *state], ["action", *[f"{name}_out" for name in state]]


def _example(policy: LearnedPolicy, batch: int = 2) -> tuple[torch.Tensor, ...]:
    obs = torch.zeros(batch, policy.config.input_dim)
    dt = torch.full((batch,), float(policy.config.dt))
    return (obs, dt, *policy.net.initial_state(batch))


def export_onnx(policy: LearnedPolicy, path: Union[str, Path], opset: int = 17) -> Path:
    """Write the step of `policy` (a LearnedPolicy) as an ONNX model."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    inputs, outputs = io_names(policy)
    module = StepModule(policy.net).eval()
    with warnings.catch_warnings():
        # the TorchScript-based exporter is deprecated in favour of the dynamo one, which
        # needs onnxscript (not a dependency); for this graph they give the same model
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, _example(policy), str(path), input_names=inputs, output_names=outputs,
            dynamic_axes={name: {0: "batch"} for name in inputs + outputs},
            opset_version=opset, dynamo=False,
        )
    return path


def export_torchscript(policy: LearnedPolicy, path: Union[str, Path]) -> Path:
    """Write the step of `policy` as a traced TorchScript module (torch.jit.load to run)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = StepModule(policy.net).eval()
    with torch.no_grad(), warnings.catch_warnings():
        # tracing is deprecated in torch 2.13 (in favour of torch.export) but still the way to
        # write a TorchScript file that C++ and older runtimes load
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(module, _example(policy), check_trace=False)
    traced.save(str(path))
    return path
