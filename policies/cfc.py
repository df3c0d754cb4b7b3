"""Closed-form continuous-time (CfC) cell on a wiring, with optional plastic synapses.

As in ncps' WiredCfCCell, each wiring layer is a CfC layer that reads the previous layer's
new state (the inputs, for the first layer) and its own previous state:

    z = [input, h_own];  a_k = z @ (W_k * mask_k) + b_k  for k in ff1, ff2, time_a, time_b
    t = sigmoid(time_a * dt + time_b)
    h_own' = tanh(ff1) * (1 - t) + tanh(ff2) * t

ff1 and ff2 are masked by the wiring (input synapses) and dense inside a layer; the time
gates are dense. With plasticity, every neuron -> neuron synapse of those masks (previous
layer -> layer, and inside a layer) adds alpha * H to its ff1 and ff2 weights, and its
Hebbian product is pre x post with pre the value the synapse carried this step (the new
state of a previous-layer neuron, the old state of a same-layer neuron) and post the new
state. Sensory synapses are not plastic. Polarities are not used (as in ncps).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
from torch import nn

from policies.cell import LiquidCell, NumpyStep, NumpyTrace, State
from policies.cfc_bptt import BlockLayout, PlasticCfCSequence
from policies.wiring import Wiring


def cfc_masks(wiring: Wiring) -> tuple[np.ndarray, np.ndarray]:
    """(feedforward, recurrent) neuron -> neuron synapse masks [pre, post] of the layered CfC."""
    n = wiring.units
    forward = np.zeros((n, n), np.float32)
    recurrent = np.zeros((n, n), np.float32)
    for layer in range(wiring.num_layers):
        s, e = wiring.layer_range(layer)
        recurrent[s:e, s:e] = 1.0
        if layer > 0:
            ps, pe = wiring.layer_range(layer - 1)
            forward[ps:pe, s:e] = np.abs(wiring.adjacency[ps:pe, s:e])
    return forward, recurrent


class _CfCLayer(nn.Module):
    """One layer's fused weights [pre, (ff1 | ff2 | time_a | time_b)] and their mask (a buffer)."""

    def __init__(self, input_mask: np.ndarray):
        super().__init__()
        n_in, n = input_mask.shape
        fan_in = n_in + n
        ff_mask = np.vstack([np.abs(input_mask), np.ones((n, n))])
        mask = np.hstack([ff_mask, ff_mask, np.ones((fan_in, 2 * n))])
        self.units = n
        self.register_buffer("mask", torch.as_tensor(mask, dtype=torch.float32), persistent=False)
        bound = math.sqrt(6.0 / (fan_in + n))  # xavier-uniform per gate, as ncps
        self.weight = nn.Parameter(torch.empty(fan_in, 4 * n).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(4 * n).uniform_(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in)))

    def masked_weight(self) -> torch.Tensor:
        return self.weight * self.mask


class CfCCell(LiquidCell):
    """CfC cell ("default" mode of ncps) on `wiring`; see the module docstring and LiquidCell."""

    def __init__(
        self,
        wiring: Wiring,
        *,
        plastic: bool = False,
        output_mapping: str = "none",
        modulator: str = "sample",
        h_max: float = 1.0,
        alpha_init: float = 0.1,
    ):
        super().__init__(wiring, plastic=plastic, input_mapping="none", output_mapping=output_mapping, modulator=modulator,
                         h_max=h_max, alpha_init=alpha_init)
        self._ranges = [wiring.layer_range(l) for l in range(wiring.num_layers)]
        layers = []
        for l, (s, e) in enumerate(self._ranges):
            if l == 0:
                input_mask = wiring.sensory_adjacency[:, s:e]
            else:
                ps, pe = self._ranges[l - 1]
                input_mask = wiring.adjacency[ps:pe, s:e]
            layers.append(_CfCLayer(input_mask))
        self.layers = nn.ModuleList(layers)
        if plastic:
            forward, recurrent = cfc_masks(wiring)
            self.register_buffer("hebb_forward", torch.as_tensor(forward), persistent=False)
            self.register_buffer("hebb_recurrent", torch.as_tensor(recurrent), persistent=False)
            self._layout = BlockLayout.of(self._ranges, wiring.units)
            self.register_buffer("trace_index", torch.as_tensor(self._layout.flat_index()), persistent=False)

    @staticmethod
    def plastic_mask(wiring: Wiring) -> np.ndarray:
        forward, recurrent = cfc_masks(wiring)
        return forward + recurrent

    def _own_parameter_masks(self) -> dict[str, torch.Tensor]:
        return {f"layers.{l}.weight": layer.mask for l, layer in enumerate(self.layers)}

    def _dynamics(
        self, x: torch.Tensor, h: torch.Tensor, dt: torch.Tensor, delta: Optional[torch.Tensor], want_hebb: bool
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        dt = dt.unsqueeze(1)
        inp = x
        new = []
        for l, layer in enumerate(self.layers):
            s, e = self._ranges[l]
            own = h[:, s:e]
            z = torch.cat([inp, own], 1)
            ff1, ff2, time_a, time_b = torch.split(z @ layer.masked_weight() + layer.bias, layer.units, dim=1)
            if delta is not None:
                # presynaptic neurons of this layer's plastic synapses: [previous layer,] own layer
                pre_start, pre = (s, own) if l == 0 else (self._ranges[l - 1][0], z)
                plastic = torch.bmm(pre.unsqueeze(1), delta[:, pre_start:e, s:e]).squeeze(1)
                ff1 = ff1 + plastic
                ff2 = ff2 + plastic
            t = torch.sigmoid(time_a * dt + time_b)
            inp = torch.tanh(ff1) * (1.0 - t) + t * torch.tanh(ff2)
            new.append(inp)
        h_new = torch.cat(new, 1)
        hebb = None
        if want_hebb:
            pre = h_new.unsqueeze(2) * self.hebb_forward + h.unsqueeze(2) * self.hebb_recurrent
            hebb = pre * h_new.unsqueeze(1)
        return h_new, hebb

    def sequence(self, x: torch.Tensor, dt: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """As LiquidCell.sequence; with plasticity on, through the fused PlasticCfCSequence."""
        if self.rule is None or not self.plasticity:
            return self.stepwise(x, dt, state)
        batch, units, rule, index = x.shape[0], self.wiring.units, self.rule, self.trace_index
        n_in = self.wiring.input_dim
        w0 = self.layers[0].masked_weight()
        # the first layer's input part for all steps in one product: (time, 4 n0, batch)
        gin0 = (self.map_inputs(x) @ w0[:n_in] + self.layers[0].bias).permute(1, 2, 0)
        later = [t for layer in self.layers[1:] for t in (layer.masked_weight(), layer.bias)]

        def on_blocks(p: torch.Tensor) -> torch.Tensor:
            return p.reshape(-1)[index].unsqueeze(1)

        h_seq, trace = PlasticCfCSequence.apply(
            self._layout, rule.h_max, gin0.contiguous(), dt.t().contiguous(), state[0].t(),
            state[1].reshape(batch, -1)[:, index].t(), rule.modulator.weight, rule.modulator.bias,
            on_blocks(rule.alpha * rule.mask), on_blocks(rule.eta * rule.mask), on_blocks(torch.sigmoid(rule.decay_logit)),
            w0[n_in:], *later,
        )
        dense = trace.new_zeros(batch, units * units).index_copy(1, index, trace.t()).view(batch, units, units)
        return self.map_outputs(h_seq.permute(2, 0, 1)), (h_seq[-1].t(), dense)

    def numpy_step(self) -> "NumpyCfCStep":
        return NumpyCfCStep(self)


class NumpyCfCStep(NumpyStep):
    """The CfC step for one sample in numpy, shaped for few and contiguous numpy calls.

    All gate pre-activations come from one matrix P applied to [1, x, h]: the bias sits in
    the column of the 1, dt is folded into the time-gate rows, and the rows of a layer are
    contiguous, ordered [ff1, ff2, -u/2, u/2] (u = time_a*dt + time_b). After one tanh
    they read [f1, f2, -tau, tau] with tau = tanh(u/2), so sigmoid(u) = (1+tau)/2 and
        h = f1*(1-sigmoid(u)) + f2*sigmoid(u) = (f1 + f2 - tau*f1 + tau*f2) / 2:
    one multiply and one dot with [1/2]*4 finish the layer. The modulator's rows come
    first in the first layer's block. The plastic change alpha * H is written into P
    after each trace update (one strided view per layer).
    """

    def __init__(self, cell: CfCCell):
        super().__init__(cell)
        w = cell.wiring
        n_in, n = w.input_dim, w.units
        maps = cell._mapping_arrays()
        self._out_w, self._out_b = maps["out_w"], maps["out_b"]
        self._affine_out = cell.output_mapping != "none"
        k = 0  # modulator rows at the top of P
        if self.plastic:
            rule = cell.rule.numpy_arrays()
            forward, recurrent = cfc_masks(w)
            per_sample = cell.rule.modulator_kind == "sample"
            self.trace = NumpyTrace([rule["eta"] * forward, rule["eta"] * recurrent], rule["decay"], cell.rule.h_max, per_sample)
            k = self.trace.m_copies if per_sample else n  # a per-sample m once per copy the trace wants
            self._alpha = rule["alpha"]
            self._delta = np.zeros((n, n), np.float32)  # alpha * H [pre, post]

        c0 = 1 + n_in  # index of the first h in buf
        self._buf = np.zeros(c0 + 2 * n, np.float32)  # [1, x, h, h_old]
        self._buf[0] = 1.0
        self._x = self._buf[1:c0]
        self._h = self._buf[c0:c0 + n]
        self._h_old = self._buf[c0 + n:]
        self._inp = self._buf[:c0 + n]  # what P multiplies
        self._motor = self._h[w.motor_range[0]:]
        self._half = np.full(4, 0.5, np.float32)

        cols = c0 + n
        prod = np.zeros((k + 4 * n, cols), np.float32)  # P
        self._y = np.zeros(k + 4 * n, np.float32)
        self._time_a = np.zeros((n, cols), np.float32)  # time gates before dt is folded in
        self._time_b = np.zeros((n, cols), np.float32)
        self._u_neg_rows = np.zeros(n, np.int64)  # row of -u/2 and of u/2 for each neuron
        self._u_pos_rows = np.zeros(n, np.int64)
        self._layers = []  # per layer: (P rows, y rows, -tau|tau, f1|f2, [f1, f2, -tau*f1, tau*f2] as (4, size), h)
        self._plastic_views = []  # per layer: (the plastic block of P, its value without plasticity, alpha*H block)
        with torch.no_grad():
            for l, layer in enumerate(cell.layers):
                s, e = cell._ranges[l]
                size = e - s
                src = s if l == 0 else cell._ranges[l - 1][0]  # first neuron this layer reads
                wz = layer.masked_weight().numpy()
                gates = np.zeros((cols, 4 * size), np.float32)  # the layer's gates as a function of [1, x, h]
                gates[0] = layer.bias.numpy()
                if l == 0:
                    gates[1:c0] = wz[:n_in] * maps["in_w"][:, None]
                    gates[0] += maps["in_b"] @ wz[:n_in]
                    wz = wz[n_in:]
                gates[c0 + src:c0 + e] = wz
                g0 = k + 4 * s  # first gate row of the layer; the first layer also computes m
                r0 = 0 if l == 0 else g0
                prod[g0:g0 + 2 * size] = gates[:, :2 * size].T
                self._time_a[s:e] = gates[:, 2 * size:3 * size].T
                self._time_b[s:e] = gates[:, 3 * size:].T
                self._u_neg_rows[s:e] = g0 + 2 * size + np.arange(size)
                self._u_pos_rows[s:e] = g0 + 3 * size + np.arange(size)
                y = self._y[g0:g0 + 4 * size]
                self._layers.append(
                    (prod[r0:g0 + 4 * size], self._y[r0:g0 + 4 * size], y[2 * size:], y[:2 * size],
                     y.reshape(4, size), self._h[s:e])
                )
                if self.plastic:
                    view = prod[g0:g0 + 2 * size, c0 + src:c0 + e].reshape(2, size, e - src)
                    assert np.shares_memory(view, prod)
                    self._plastic_views.append((view, view.copy(), self._delta[src:e, s:e].T[None]))
        self._prod = prod
        self._u = np.zeros((n, cols), np.float32)

        if self.plastic:
            prod[:k, 0] = rule["mod_b"]  # (1,) or (n,): broadcast over the k rows
            prod[:k, c0:c0 + n] = rule["mod_w"].T
            self._m = self._y[:k]
            self._hh_col = self._buf[c0:][:, None]  # [h_new, h_old] as a column
            self._h_row = self._h[None, :]
            self._hebb_out = self.trace.hebb.reshape(2 * n, n)

    def _set_dt(self, dt: float) -> None:
        np.multiply(self._time_a, dt, self._u)
        self._u += self._time_b
        self._prod[self._u_neg_rows] = -0.5 * self._u
        self._prod[self._u_pos_rows] = 0.5 * self._u

    def _step(self, x: np.ndarray) -> np.ndarray:
        dot, tanh, mul = np.dot, np.tanh, np.multiply
        np.copyto(self._x, x, casting="unsafe")
        trace = self.trace
        if trace is not None:
            np.copyto(self._h_old, self._h)
        inp = self._inp
        half = self._half
        for prod, y, tau, f, comps, h in self._layers:
            dot(prod, inp, y)
            tanh(y, y)
            mul(tau, f, tau)
            dot(half, comps, h)
        if trace is not None:
            dot(self._hh_col, self._h_row, self._hebb_out)  # outer product as a rank-1 matmul: the fastest form
            trace.update(self._m)
            self._traces_changed()
        if self._affine_out:
            return self._motor * self._out_w + self._out_b
        return self._motor.copy()

    def _traces_changed(self) -> None:
        np.multiply(self._alpha, self.trace.H, self._delta)
        for view, base, delta in self._plastic_views:
            np.add(base, delta, view)

    def _get_h(self) -> np.ndarray:
        return self._h

    def _set_h(self, h: np.ndarray) -> None:
        self._h[...] = h
