"""The fast training path of the liquid cells (`cell.sequence`: the fused plastic CfC, the
LTC on its synapse list) against the reference path (`cell.stepwise`, one `forward` per
step): same actions, same final state, same gradient for every parameter, on a batch of
sequences of different lengths with a different dt per sample and step, continuing from
the state a previous chunk left (as truncated BPTT in navctl/train.py does). The plastic
CfC's trace loops run in C when a compiler is there (policies/cfc_kernel.py); the eager
torch path they replace is tested against them and as the fallback without a compiler."""
from __future__ import annotations

import shutil

import pytest
import torch

from policies import cfc_kernel
from policies.learned import build_policy

CASES = [
    ("liquid", {"modulator": "neuron", "alpha_init": 0.5}, True),  # the shipped rule
    ("liquid", {"modulator": "sample"}, True),
    ("liquid", {}, False),  # plasticity switched off
    ("liquid-ltc", {"modulator": "neuron"}, True),
    ("liquid-ltc", {}, True),
    ("liquid-ltc", {}, False),
    ("ltc", {}, False),
]


def make_net(kind: str, extra: dict, plasticity: bool):
    policy = build_policy({"kind": kind, "seed": 3, **extra})
    net = policy.net.double()
    if net.cell.rule is not None:
        with torch.no_grad():  # stronger rule than at initialisation, so the traces matter and saturate
            net.cell.rule.alpha.mul_(2.0)
            net.cell.rule.eta.mul_(4.0)
            net.obs_std.fill_(0.7)
        net.cell.plasticity = plasticity
    return net


def chunk_data(batch: int = 5, steps: int = 30, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    obs = torch.randn(batch, steps, 41, generator=gen, dtype=torch.float64) * 2
    dt = 0.02 + 0.1 * torch.rand(batch, steps, generator=gen, dtype=torch.float64)  # s, per sample and step
    lengths = torch.tensor([steps, steps - 7, 3, steps - 1, 12])[:batch]
    mask = (torch.arange(steps)[None] < lengths[:, None]).double()  # padded steps do not count
    target = torch.rand(batch, steps, 2, generator=gen, dtype=torch.float64) * 2 - 1
    return obs, dt, mask, target


def run(net, fast: bool, obs, dt, mask, target, state):
    """Loss of a chunk (masked action error + terms on the final state), its gradients and outputs."""
    net.zero_grad()
    x, cell_dt = net.normalize(obs), dt / net.time_unit
    y, new_state = (net.cell.sequence if fast else net.cell.stepwise)(x, cell_dt, state)
    actions = torch.tanh(y)
    loss = (((actions - target) ** 2).sum(-1) * mask).sum() / mask.sum()
    weights = torch.Generator().manual_seed(9)
    for s in new_state.tensors():  # the next chunk's gradient flows back through the final state too
        loss = loss + 0.01 * (s * torch.randn(s.shape, generator=weights, dtype=s.dtype)).sum()
    loss.backward()
    grads = {name: p.grad.clone() for name, p in net.named_parameters() if p.grad is not None}
    return actions.detach(), tuple(s.detach() for s in new_state.tensors()), grads


@pytest.mark.parametrize("kind,extra,plasticity", CASES)
def test_fast_path_matches_the_stepwise_reference(kind, extra, plasticity):
    net = make_net(kind, extra, plasticity)
    obs, dt, mask, target = chunk_data()
    with torch.no_grad():  # a previous chunk: neuron states and traces away from zero
        _, state = net.cell.stepwise(net.normalize(obs), dt / net.time_unit, net.initial_state(obs.shape[0]))
    obs2, dt2, mask2, target2 = chunk_data(seed=1)
    fast = run(net, True, obs2, dt2, mask2, target2, state)
    ref = run(net, False, obs2, dt2, mask2, target2, state)
    torch.testing.assert_close(fast[0], ref[0], atol=1e-9, rtol=0)
    for got, want in zip(fast[1], ref[1]):
        torch.testing.assert_close(got, want, atol=1e-9, rtol=0)
    trained = {name for name, _ in net.named_parameters() if plasticity or ".rule." not in name}
    assert fast[2].keys() == ref[2].keys() == trained  # every parameter that acts gets a gradient
    for name in ref[2]:
        torch.testing.assert_close(fast[2][name], ref[2][name], atol=1e-5, rtol=0, msg=name)
    if plasticity:
        assert ref[1][1].abs().max() == net.cell.rule.h_max  # some traces hit the clamp
        assert ref[2]["cell.rule.alpha"].abs().max() > 1e-3  # the rule's gradients are not trivially zero


@pytest.mark.parametrize("kind", ["liquid", "liquid-ltc"])
def test_fast_path_in_float32_and_deterministic(kind):
    """float32 as in training: close to the reference, and bit-identical when run again."""
    policy = build_policy({"kind": kind, "modulator": "neuron"})
    obs, dt, _, _ = (t.float() for t in chunk_data())

    def grads():
        policy.net.zero_grad()
        actions, _ = policy.train_forward(obs, dt)
        actions.pow(2).sum().backward()
        return actions.detach(), [p.grad.clone() for p in policy.net.parameters()]

    a1, g1 = grads()
    a2, g2 = grads()
    assert torch.equal(a1, a2) and all(torch.equal(x, y) for x, y in zip(g1, g2))
    with torch.no_grad():
        y, _ = policy.net.cell.stepwise(policy.net.normalize(obs), dt / policy.net.time_unit,
                                        policy.net.initial_state(obs.shape[0]))
    torch.testing.assert_close(a1, torch.tanh(y), atol=1e-5, rtol=0)


def shipped_rule_chunk():
    """The shipped rule (float64, strengthened) and a chunk continuing from a previous one."""
    net = make_net("liquid", {"modulator": "neuron", "alpha_init": 0.5}, True)
    obs, dt, _, _ = chunk_data()
    with torch.no_grad():
        _, state = net.cell.stepwise(net.normalize(obs), dt / net.time_unit, net.initial_state(obs.shape[0]))
    return net, (*chunk_data(seed=1), state)


def assert_same_run(got, want, atol: float) -> None:
    torch.testing.assert_close(got[0], want[0], atol=atol, rtol=0)
    for a, b in zip(got[1], want[1]):
        torch.testing.assert_close(a, b, atol=atol, rtol=0)
    assert got[2].keys() == want[2].keys()
    for name in want[2]:
        torch.testing.assert_close(got[2][name], want[2][name], atol=1e-5, rtol=0, msg=name)


def test_c_trace_kernels_and_the_eager_path_agree(monkeypatch):
    """policies/cfc_kernel.py's loops (used when a C compiler is there) and the eager torch path."""
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler: only the eager path exists here")
    assert cfc_kernel.kernels(torch.float64) is not None
    net, chunk = shipped_rule_chunk()
    with_kernels = run(net, True, *chunk)
    monkeypatch.setenv("NAVCTL_EAGER", "1")
    assert cfc_kernel.kernels(torch.float64) is None
    assert_same_run(with_kernels, run(net, True, *chunk), atol=1e-9)


def test_without_a_c_compiler_training_falls_back_to_the_eager_path(monkeypatch):
    monkeypatch.setattr(cfc_kernel, "_LIB", [])  # not built yet in this process
    monkeypatch.setenv("CC", "/nonexistent/cc")
    net, chunk = shipped_rule_chunk()
    with pytest.warns(UserWarning, match="using the eager path"):
        fast = run(net, True, *chunk)
    assert cfc_kernel.kernels(torch.float64) is None
    assert_same_run(fast, run(net, False, *chunk), atol=1e-9)
