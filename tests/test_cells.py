"""Liquid cells: equivalence with ncps, per-sample dt, sequences, gradients through the
plastic traces, the plasticity switch, and the numpy fast path against torch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from policies.cell import CellState
from policies.cfc import CfCCell
from policies.fastpath import numpy_step
from policies.ltc import LTCCell
from policies.plasticity import RuleSpec
from policies.wiring import auto_ncp, from_ncps, fully_connected

ncps_torch = pytest.importorskip("ncps.torch")
ncps_wirings = pytest.importorskip("ncps.wirings")

CELLS = {"cfc": CfCCell, "ltc": LTCCell}


def make_cell(kind: str, plastic: bool = True, seed: int = 0, modulator: str = "sample", **kw):
    torch.manual_seed(seed)
    cell = CELLS[kind](auto_ncp(16, 19, 2, seed=seed), rule=RuleSpec(modulator) if plastic else None, **kw)
    if plastic:  # stronger plasticity than the initialisation so the traces matter in a short test
        with torch.no_grad():
            cell.rule.alpha.mul_(5.0)
            cell.rule.eta.mul_(3.0)
    return cell


def copy_wired_cfc(ref, cell: CfCCell) -> None:
    """ncps WiredCfCCell -> our CfCCell (same layer order; ncps stores Linear (out, in))."""
    with torch.no_grad():
        for l, layer in enumerate(cell.layers):
            rl = getattr(ref, f"layer_{l}")
            parts = (rl.ff1, rl.ff2, rl.time_a, rl.time_b)
            layer.weight.copy_(torch.cat([p.weight.T for p in parts], 1))
            layer.bias.copy_(torch.cat([p.bias for p in parts]))


def copy_ltc(ref, cell: LTCCell, order: np.ndarray) -> None:
    """ncps LTCCell -> our LTCCell, relabelling neurons (ours[i] = ncps[order[i]])."""
    ix = torch.as_tensor(order)
    p = ref._params
    with torch.no_grad():
        for name in ("gleak", "vleak", "cm"):
            getattr(cell, name).copy_(p[name][ix])
        for name in ("w", "sigma", "mu", "erev"):
            getattr(cell, name).copy_(p[name][ix][:, ix])
        for name in ("sensory_w", "sensory_sigma", "sensory_mu", "sensory_erev"):
            getattr(cell, name).copy_(p[name][:, ix])
        for name in ("input_w", "input_b", "output_w", "output_b"):
            p[name].normal_()  # exercise the mappings, not just their identity init
            getattr(cell, name).copy_(p[name])


@pytest.mark.parametrize("units", [19, 32])
def test_cfc_matches_ncps_wired(units):
    torch.manual_seed(1)
    ncps_wiring = ncps_wirings.AutoNCP(units, 2, seed=7)
    ref = ncps_torch.WiredCfCCell(16, ncps_wiring)
    wiring, _ = from_ncps(ncps_wiring)
    cell = CfCCell(wiring)
    copy_wired_cfc(ref, cell)
    x, h = torch.randn(8, 16), torch.randn(8, units) * 0.5
    for dt in (1.0, 0.05, 2.7):  # ncps takes one dt for the batch
        y_ref, h_ref = ref(x, h, dt)
        y, (h_new, _) = cell(x, (h,), dt)
        torch.testing.assert_close(h_new, h_ref, atol=1e-5, rtol=0)
        torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=0)


def test_cfc_matches_ncps_fully_connected():
    torch.manual_seed(2)
    n = 12
    ref = ncps_torch.CfCCell(16, n, backbone_layers=0)
    wiring = fully_connected(16, n, n)
    cell = CfCCell(wiring)
    with torch.no_grad():
        parts = (ref.ff1, ref.ff2, ref.time_a, ref.time_b)
        cell.layers[0].weight.copy_(torch.cat([p.weight.T for p in parts], 1))
        cell.layers[0].bias.copy_(torch.cat([p.bias for p in parts]))
    x, h = torch.randn(5, 16), torch.randn(5, n) * 0.5
    h_ref, _ = ref(x, h, 0.7)
    y, (h_new, _) = cell(x, (h,), 0.7)
    torch.testing.assert_close(h_new, h_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(y, h_ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("units", [19, 32])
def test_ltc_matches_ncps(units):
    torch.manual_seed(3)
    ncps_wiring = ncps_wirings.AutoNCP(units, 2, seed=7)
    ref = ncps_torch.LTCCell(ncps_wiring, 16, ode_unfolds=6, implicit_param_constraints=True)
    wiring, order = from_ncps(ncps_wiring)
    cell = LTCCell(wiring, ode_unfolds=6)
    copy_ltc(ref, cell, order)
    inverse = torch.as_tensor(np.argsort(order))
    x, v = torch.randn(8, 16), torch.randn(8, units) * 0.5
    for dt in (1.0, 0.05, 2.7):
        y_ref, v_ref = ref(x, v[:, inverse], dt)
        y, (v_new, _) = cell(x, (v,), dt)
        torch.testing.assert_close(v_new, v_ref[:, torch.as_tensor(order)], atol=1e-5, rtol=0)
        torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", CELLS)
def test_batched_variable_dt_equals_per_sample_runs(kind):
    cell = make_cell(kind)
    batch = 5
    x = torch.randn(10, batch, 16)
    dt = torch.tensor([0.05, 0.5, 1.0, 1.7, 3.0])
    state = cell.initial_state(batch)
    singles = [cell.initial_state(1) for _ in range(batch)]
    with torch.no_grad():
        for t in range(10):
            y, state = cell(x[t], state, dt)
            for b in range(batch):
                y_b, singles[b] = cell(x[t, b:b + 1], singles[b], float(dt[b]))
                torch.testing.assert_close(y[b:b + 1], y_b, atol=1e-5, rtol=0)
    for b in range(batch):
        for got, want in zip(state, singles[b]):
            torch.testing.assert_close(got[b:b + 1], want, atol=1e-5, rtol=0)
    assert state[1].abs().max() > 0  # the traces did move


@pytest.mark.parametrize("kind", CELLS)
def test_sequence_state_carries_across_chunks(kind):
    """The training path with explicit state in and out: two halves equal the whole, which
    equals the step loop (tests/test_training_path.py compares the gradients)."""
    cell = make_cell(kind)
    x = torch.randn(3, 12, 16)
    dt = torch.rand(3, 12) + 0.1
    with torch.no_grad():
        y_seq, state_seq = cell.sequence(x, dt, cell.initial_state(3))
        y1, s1 = cell.sequence(x[:, :5], dt[:, :5], cell.initial_state(3))
        y2, s2 = cell.sequence(x[:, 5:], dt[:, 5:], s1)
        y_ref, state_ref = cell.stepwise(x, dt, cell.initial_state(3))
    assert isinstance(state_seq, CellState) and state_seq.trace.abs().max() > 0
    torch.testing.assert_close(torch.cat([y1, y2], 1), y_seq, atol=1e-6, rtol=0)
    torch.testing.assert_close(y_seq, y_ref, atol=1e-5, rtol=0)
    for a, b, c in zip(state_seq, s2, state_ref):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
        torch.testing.assert_close(a, c, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", CELLS)
@pytest.mark.parametrize("modulator", ["sample", "neuron"])
def test_gradients_reach_the_rule_through_the_traces(kind, modulator):
    cell = make_cell(kind, modulator=modulator)
    y, _ = cell.sequence(torch.randn(4, 8, 16), torch.ones(4, 8), cell.initial_state(4))
    y.pow(2).sum().backward()
    rule = cell.rule
    for name, p in [("alpha", rule.alpha), ("eta", rule.eta), ("decay_logit", rule.decay_logit),
                    ("modulator.weight", rule.modulator.weight), ("modulator.bias", rule.modulator.bias)]:
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient into {name}"
    # only synapses the wiring allows are plastic: no gradient elsewhere
    assert (rule.alpha.grad * (1 - rule.mask)).abs().sum() == 0
    assert (rule.eta.grad * (1 - rule.mask)).abs().sum() == 0


@pytest.mark.parametrize("kind", CELLS)
def test_plasticity_off_freezes_traces_and_equals_alpha_zero(kind):
    cell = make_cell(kind)
    x = torch.randn(15, 3, 16)
    reference = make_cell(kind)  # same seed: same weights
    with torch.no_grad():
        reference.rule.alpha.zero_()
    cell.plasticity = False
    state, ref_state = cell.initial_state(3), reference.initial_state(3)
    with torch.no_grad():
        for t in range(15):
            y, state = cell(x[t], state, 0.8)
            y_ref, ref_state = reference(x[t], ref_state, 0.8)
            assert torch.count_nonzero(state[1]) == 0
            torch.testing.assert_close(y, y_ref, atol=1e-6, rtol=0)
    assert torch.count_nonzero(ref_state[1]) > 0  # alpha = 0 still lets the traces move; only the output is equal
    with pytest.raises(ValueError):
        make_cell(kind, plastic=False).plasticity = True


@pytest.mark.parametrize("kind", CELLS)
@pytest.mark.parametrize("plastic,modulator", [(False, "sample"), (True, "sample"), (True, "neuron")])
def test_numpy_fast_path_equals_torch(kind, plastic, modulator):
    cell = make_cell(kind, plastic=plastic, modulator=modulator, output_mapping="affine")
    with torch.no_grad():
        cell.output_w.normal_()
        cell.output_b.normal_()
    fast = numpy_step(cell)
    fast.reset()
    state = cell.initial_state(1)
    x = torch.randn(120, 1, 16) * 2
    with torch.no_grad():
        for t in range(120):
            dt = 0.4 if t < 60 else 1.3  # a change of dt re-folds the time gates
            y, state = cell(x[t], state, dt)
            np.testing.assert_allclose(fast.step(x[t, 0].numpy(), dt), y[0].numpy(), atol=1e-5, rtol=0)
    for got, want in zip(fast.state(), state):
        np.testing.assert_allclose(got, want.numpy(), atol=1e-5, rtol=0)
    # state can be moved between the two paths
    fast.set_state(tuple(s.numpy() for s in state.tensors()))
    with torch.no_grad():
        y, _ = cell(x[0], state, 1.0)
    np.testing.assert_allclose(fast.step(x[0, 0].numpy(), 1.0), y[0].numpy(), atol=1e-5, rtol=0)


def test_masks_are_buffers_and_a_wiring_is_shared():
    wiring = auto_ncp(16, 19, 2)
    a, b = CfCCell(wiring, rule=RuleSpec()), LTCCell(wiring, rule=RuleSpec())
    for cell in (a, b):
        names = {n for n, _ in cell.named_parameters()}
        assert not any("mask" in n for n in names)
        assert any("mask" in n for n, _ in cell.named_buffers())
        assert not any("mask" in k for k in cell.state_dict())  # derived from the wiring, not saved
    assert a.wiring is b.wiring
    with pytest.raises(ValueError):
        wiring.adjacency[0, 0] = 1  # immutable
