"""The plastic traces stay within +/- h_max and nothing becomes NaN or inf over 10^6 steps
of random and adversarial inputs: 1000 samples x 1000 steps in the batched no-grad torch
path, and the batch-1 numpy path that `act` uses at deployment."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from policies.cfc import CfCCell
from policies.learned import build_policy
from policies.ltc import LTCCell
from policies.plasticity import RuleSpec
from policies.wiring import auto_ncp

torch.set_num_threads(1)  # small tensors: a second thread only adds contention on a shared machine

H_MAX = 0.75  # not the default, so the bound is the configured one


def adversarial(rule) -> None:
    """Rule parameters at their worst: huge learning rate and alpha, no decay, and m = -1
    (anti-Hebbian: the decay term then makes |H| grow geometrically until clipped)."""
    with torch.no_grad():
        rule.eta.mul_(100.0)
        rule.alpha.mul_(50.0)
        rule.decay_logit.fill_(-12.0)
        rule.modulator.weight.zero_()
        rule.modulator.bias.fill_(-20.0)


def inputs(step: int, batch: int, dim: int, gen: torch.Generator) -> torch.Tensor:
    """Per sample: random normal, random +/-1e6, a constant +1e6, a sign flipping every step."""
    x = torch.randn(batch, dim, generator=gen)
    q = batch // 4
    x[q:2 * q] = torch.sign(torch.randn(q, dim, generator=gen)) * 1e6
    x[2 * q:3 * q] = 1e6
    x[3 * q:] = (-1.0) ** step * 1e6
    return x


@pytest.mark.parametrize("cell_class", [CfCCell, LTCCell])
@pytest.mark.parametrize("worst", [False, True])
def test_traces_bounded_and_finite_batched(cell_class, worst):
    torch.manual_seed(0)
    cell = cell_class(auto_ncp(16, 19, 2), rule=RuleSpec(h_max=H_MAX))
    if worst:
        adversarial(cell.rule)
    gen = torch.Generator().manual_seed(1)
    batch, steps = 1000, 1000  # 10^6 sample-steps
    state = cell.initial_state(batch)
    dt = torch.rand(batch, generator=gen) * 2 + 0.01
    reached = 0.0
    with torch.no_grad():
        for t in range(steps):
            y, state = cell(inputs(t, batch, 16, gen), state, dt)
            if t % 50 == 49 or t == steps - 1:
                h, trace = state
                assert torch.isfinite(y).all() and torch.isfinite(h).all() and torch.isfinite(trace).all(), f"step {t}"
                assert trace.abs().max() <= H_MAX, f"step {t}: |H| = {trace.abs().max()}"
                reached = max(reached, float(trace.abs().max()))
    if worst:
        assert reached == pytest.approx(H_MAX)  # the adversary does drive H to the bound


@pytest.mark.parametrize("kind", ["liquid", "liquid-ltc"])
def test_traces_bounded_and_finite_at_deployment(kind):
    """The batch-1 numpy path behind act(), with the adversarial rule and extreme observations."""
    policy = build_policy({"kind": kind, "h_max": H_MAX})
    adversarial(policy.cell.rule)
    policy.reset(1)
    rng = np.random.default_rng(2)
    steps = 20000
    obs = rng.standard_normal((steps, policy.config.obs_dim)).astype(np.float32)
    obs[steps // 4:steps // 2] = np.sign(obs[steps // 4:steps // 2]) * 1e6
    obs[steps // 2:] = 1e6 * (-1.0) ** np.arange(steps - steps // 2)[:, None]
    for t in range(steps):
        action = policy.act(obs[t])
        if t % 500 == 499:
            h, trace = policy.state
            assert np.isfinite(action).all() and torch.isfinite(h).all() and torch.isfinite(trace).all(), f"step {t}"
            assert trace.abs().max() <= H_MAX
    assert float(policy.state[1].abs().max()) == pytest.approx(H_MAX)
