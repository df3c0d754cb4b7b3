"""Liquid time-constant (LTC) cell on a wiring, with optional plastic synapses.

Each neuron is a leaky membrane of potential v with capacitance cm, leak conductance
gleak and leak potential vleak. A synapse i -> j (allowed by the wiring) has a maximum
conductance w_ij, a sigmoid activation s_ij = sigmoid(sigma_ij * (v_i - mu_ij)) and a
reversal potential erev_ij (initialised to the wiring's polarity). The ODE

    cm dv_j/dt = gleak_j (vleak_j - v_j) + sum_i w_ij s_ij (erev_ij - v_j)   (+ sensory synapses)

is integrated over the elapsed time dt with `ode_unfolds` fused semi-implicit Euler
steps of dt / ode_unfolds each (the scheme of ncps). Positive quantities (w, sensory w, cm,
gleak) are softplus of their parameters (ncps' implicit constraints).

With plasticity, the neuron -> neuron conductance becomes softplus(w + alpha * H): the
trace changes the synaptic conductance and it stays positive. The Hebbian product is
pre = s_ij (the synapse's activation in the last unfold) times post = tanh(v_j).
Sensory synapses are not plastic.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from policies.cell import LiquidCell, NumpyStep, NumpyTrace, State
from policies.wiring import Wiring

MIN_DT = 1e-6  # dt is clamped to this: the update divides by dt (dt -> 0 leaves v unchanged)

# ncps' initial ranges
_INIT = {
    "gleak": (0.001, 1.0), "vleak": (-0.2, 0.2), "cm": (0.4, 0.6),
    "w": (0.001, 1.0), "sigma": (3.0, 8.0), "mu": (0.3, 0.8),
}


def _uniform(shape: tuple[int, ...], name: str) -> nn.Parameter:
    lo, hi = _INIT[name]
    return nn.Parameter(torch.rand(*shape) * (hi - lo) + lo)


class LTCCell(LiquidCell):
    """LTC cell on `wiring`; see the module docstring and LiquidCell for the step contract."""

    def __init__(
        self,
        wiring: Wiring,
        *,
        plastic: bool = False,
        ode_unfolds: int = 6,
        epsilon: float = 1e-8,
        input_mapping: str = "affine",
        output_mapping: str = "affine",
        modulator: str = "sample",
        h_max: float = 1.0,
        alpha_init: float = 0.1,
    ):
        super().__init__(
            wiring, plastic=plastic, input_mapping=input_mapping, output_mapping=output_mapping,
            modulator=modulator, h_max=h_max, alpha_init=alpha_init,
        )
        if ode_unfolds < 1:
            raise ValueError(f"ode_unfolds must be at least 1, got {ode_unfolds}")
        n, n_in = wiring.units, wiring.input_dim
        self.ode_unfolds = int(ode_unfolds)
        self.epsilon = float(epsilon)
        self.register_buffer("mask", torch.as_tensor(np.abs(wiring.adjacency), dtype=torch.float32), persistent=False)
        self.register_buffer(
            "sensory_mask", torch.as_tensor(np.abs(wiring.sensory_adjacency), dtype=torch.float32), persistent=False
        )
        self.gleak = _uniform((n,), "gleak")
        self.vleak = _uniform((n,), "vleak")
        self.cm = _uniform((n,), "cm")
        self.w = _uniform((n, n), "w")
        self.sigma = _uniform((n, n), "sigma")
        self.mu = _uniform((n, n), "mu")
        self.erev = nn.Parameter(torch.from_numpy(wiring.adjacency.astype(np.float32)))
        self.sensory_w = _uniform((n_in, n), "w")
        self.sensory_sigma = _uniform((n_in, n), "sigma")
        self.sensory_mu = _uniform((n_in, n), "mu")
        self.sensory_erev = nn.Parameter(torch.from_numpy(wiring.sensory_adjacency.astype(np.float32)))
        pre, post = np.nonzero(wiring.adjacency)  # the synapse list the step works on
        scatter = np.zeros((pre.size, n), np.float32)
        scatter[np.arange(pre.size), post] = 1.0
        self.register_buffer("syn_pre", torch.as_tensor(pre), persistent=False)
        self.register_buffer("syn_post", torch.as_tensor(post), persistent=False)
        self.register_buffer("syn_flat", torch.as_tensor(pre * n + post), persistent=False)
        self.register_buffer("syn_scatter", torch.as_tensor(scatter), persistent=False)

    @staticmethod
    def plastic_mask(wiring: Wiring) -> np.ndarray:
        return np.abs(wiring.adjacency).astype(np.float32)

    def _own_parameter_masks(self) -> dict[str, torch.Tensor]:
        masks = {name: self.mask for name in ("w", "sigma", "mu", "erev")}
        masks.update({f"sensory_{name}": self.sensory_mask for name in ("w", "sigma", "mu", "erev")})
        return masks

    def _dynamics(
        self, x: torch.Tensor, h: torch.Tensor, dt: torch.Tensor, delta: Optional[torch.Tensor], want_hebb: bool
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        v = h
        batch, n = v.shape
        # Work on the list of the wiring's synapses (pre -> post), not on dense n x n arrays.
        pre, post = self.syn_pre, self.syn_post
        # sensory synapses do not depend on v: once per step
        sensory = F.softplus(self.sensory_w) * torch.sigmoid(self.sensory_sigma * (x.unsqueeze(2) - self.sensory_mu))
        sensory = sensory * self.sensory_mask
        num_sensory = (sensory * self.sensory_erev).sum(1)
        den_sensory = sensory.sum(1)
        cm_t = F.softplus(self.cm) / (dt.clamp_min(MIN_DT) / self.ode_unfolds).unsqueeze(1)
        gleak = F.softplus(self.gleak)
        w = self.w[pre, post]
        if delta is not None:
            w = w + delta.reshape(batch, n * n)[:, self.syn_flat]
        g = F.softplus(w)  # (synapses,) or (batch, synapses)
        weights = torch.stack([g * self.erev[pre, post], g])  # [numerator; denominator] per synapse
        if g.dim() == 1:
            weights = weights.unsqueeze(1)
        sigma, mu = self.sigma[pre, post], self.mu[pre, post]
        num_const = gleak * self.vleak + num_sensory
        den_const = cm_t + gleak + den_sensory + self.epsilon
        s = v
        for _ in range(self.ode_unfolds):
            s = torch.sigmoid(sigma * (v[:, pre] - mu))
            # sums over each neuron's incoming synapses: [numerator; denominator] in one product
            sums = (weights * s) @ self.syn_scatter
            v = (cm_t * v + num_const + sums[0]) / (den_const + sums[1])
        if not want_hebb:
            return v, None
        hebb_syn = s * torch.tanh(v)[:, post]
        hebb = v.new_zeros(batch, n * n).scatter(1, self.syn_flat.expand(batch, -1), hebb_syn)
        return v, hebb.view(batch, n, n)

    def sequence(self, x: torch.Tensor, dt: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """As LiquidCell.sequence, on the synapse list: the sensory synapses for all steps at once,
        the parameters prepared once, the traces only on the wiring's synapses (batch, synapses)."""
        batch, steps = x.shape[:2]
        n, pre, post = self.wiring.units, self.syn_pre, self.syn_post
        num_sensory, den_sensory = self._sensory_sums(self.map_inputs(x))  # (batch, time, units)
        cm_t = F.softplus(self.cm) / (dt.clamp_min(MIN_DT) / self.ode_unfolds).unsqueeze(2)
        gleak = F.softplus(self.gleak)
        num_const = num_sensory + gleak * self.vleak
        den_const = den_sensory + cm_t + (gleak + self.epsilon)
        w, erev = self.w[pre, post], self.erev[pre, post]
        sigma = self.sigma[pre, post]
        neg_sigma_mu = -sigma * self.mu[pre, post]
        plastic = self.rule is not None and self.plasticity
        if plastic:  # per-sample conductances multiply s; the scatter matrix carries erev
            scatter = torch.cat([self.syn_scatter * erev[:, None], self.syn_scatter], 1)  # (synapses, 2 units)
            rule, index = self.rule, self.syn_flat
            alpha, eta = (rule.alpha * rule.mask).reshape(-1)[index], (rule.eta * rule.mask).reshape(-1)[index]
            decay = torch.sigmoid(rule.decay_logit).reshape(-1)[index]
            trace = state[1].reshape(batch, -1)[:, index]
        else:  # conductances fixed: folded into the scatter matrix
            g = F.softplus(w)
            scatter = torch.cat([self.syn_scatter * (g * erev)[:, None], self.syn_scatter * g[:, None]], 1)
        # per-step slices made once (slicing in the loop costs a full-size zero fill per slice in backward)
        num_const, den_const, cm_t = num_const.unbind(1), den_const.unbind(1), cm_t.unbind(1)
        gather_pre = self.syn_scatter.new_zeros(n, pre.numel())
        gather_pre[pre, torch.arange(pre.numel(), device=pre.device)] = 1.0  # v @ gather_pre = v[:, pre]
        gather_post = self.syn_scatter.t()  # v @ gather_post = v[:, post]
        v, outputs = state[0], []
        for t in range(steps):
            if plastic:
                m = torch.tanh(rule.modulator(v))
                m = m if m.shape[1] == 1 else m @ gather_post
                g = F.softplus(w + alpha * trace)
            for _ in range(self.ode_unfolds):
                s = torch.sigmoid(torch.addcmul(neg_sigma_mu, v @ gather_pre, sigma))
                sums = ((g * s) if plastic else s) @ scatter  # [numerator | denominator] per neuron
                v = (torch.addcmul(num_const[t], cm_t[t], v) + sums[:, :n]) / (den_const[t] + sums[:, n:])
            if plastic:
                hebb = s * (torch.tanh(v) @ gather_post)
                trace = torch.clamp(trace + m * (eta * hebb - decay * trace), -rule.h_max, rule.h_max)
            outputs.append(v)
        if self.rule is None:
            new_state: State = (v,)
        elif plastic:
            new_state = (v, trace.new_zeros(batch, n * n).index_copy(1, self.syn_flat, trace).view(batch, n, n))
        else:
            new_state = (v, torch.zeros_like(state[1]))
        return self.map_outputs(torch.stack(outputs, 1)), new_state

    def _sensory_sums(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The sensory synapses' numerator and denominator sums per neuron, x (..., inputs) -> 2 x (..., units)."""
        s_pre, s_post = self.sensory_mask.nonzero(as_tuple=True)
        act = F.softplus(self.sensory_w[s_pre, s_post]) * torch.sigmoid(
            self.sensory_sigma[s_pre, s_post] * (x[..., s_pre] - self.sensory_mu[s_pre, s_post]))
        scatter = torch.zeros(s_pre.numel(), self.wiring.units, dtype=x.dtype, device=x.device)
        scatter[torch.arange(s_pre.numel()), s_post] = 1.0
        return (act * self.sensory_erev[s_pre, s_post]) @ scatter, act @ scatter

    def numpy_step(self) -> "NumpyLTCStep":
        return NumpyLTCStep(self)


class NumpyLTCStep(NumpyStep):
    """The LTC step for one sample in numpy, over the list of the wiring's synapses.

    sigmoid(q) = (1 + tanh(q/2)) / 2, so with tau_e = tanh(sigma_e (v_pre(e) - mu_e) / 2)
    for each synapse e, the update's numerator and denominator for every neuron are one
    matrix product of buf = [tau (synapses), v, 1] with a matrix M that scatters
    g_e/2 [erev_e, 1] to the synapse's postsynaptic neuron, holds cm_t on the rows of v, and
    in the row of the 1 the constants of the step (leak, the g_e/2 halves, the sensory
    synapses). An unfold is then four numpy calls: z = [v, 1] @ Z, tanh, the product with M,
    one division. Dense N x N arrays are never touched.
    """

    def __init__(self, cell: LTCCell):
        super().__init__(cell)
        n, n_in = cell.state_size, cell.input_size
        maps = cell._mapping_arrays()
        self._out_w, self._out_b = maps["out_w"], maps["out_b"]
        self._unfolds = cell.ode_unfolds
        self._eps = cell.epsilon

        def get(t: torch.Tensor) -> np.ndarray:
            return t.detach().cpu().numpy().astype(np.float32)

        with torch.no_grad():
            pre, post = np.nonzero(get(cell.mask))
            s_pre, s_post = np.nonzero(get(cell.sensory_mask))
            self._pre, self._post = pre, post
            n_syn, n_sens = pre.size, s_pre.size
            sigma, mu = get(cell.sigma)[pre, post], get(cell.mu)[pre, post]
            self._erev = get(cell.erev)[pre, post]
            self._w = get(cell.w)[pre, post]
            self._cm = get(F.softplus(cell.cm))
            gleak, vleak = get(F.softplus(cell.gleak)), get(cell.vleak)
            s_sigma, s_mu = get(cell.sensory_sigma)[s_pre, s_post], get(cell.sensory_mu)[s_pre, s_post]
            s_g = get(F.softplus(cell.sensory_w))[s_pre, s_post]
            s_erev = get(cell.sensory_erev)[s_pre, s_post]

        # sensory: tau_s = tanh([x, 1] @ z_s); sums = [tau_s, 1] @ m_s, once per step
        self._x1 = np.zeros(n_in + 1, np.float32)
        self._x1[-1] = 1.0
        self._x = self._x1[:n_in]
        self._z_s = np.zeros((n_in + 1, n_sens), np.float32)
        self._z_s[s_pre, np.arange(n_sens)] = 0.5 * s_sigma * maps["in_w"][s_pre]
        self._z_s[n_in] = 0.5 * s_sigma * (maps["in_b"][s_pre] - s_mu)
        self._tau_s1 = np.zeros(n_sens + 1, np.float32)
        self._tau_s1[-1] = 1.0
        self._tau_s = self._tau_s1[:n_sens]
        self._m_s = np.zeros((n_sens + 1, 2 * n), np.float32)
        _scatter(self._m_s[:n_sens], s_post, 0.5 * s_g * s_erev, 0.5 * s_g, n)
        self._m_s[n_sens] = self._m_s[:n_sens].sum(0)

        # buf = [tau (synapses), v, 1]
        self._buf = np.zeros(n_syn + n + 1, np.float32)
        self._tau = self._buf[:n_syn]
        self._v = self._buf[n_syn:n_syn + n]
        self._v1 = self._buf[n_syn:n_syn + n + 1]
        self._buf[n_syn + n] = 1.0
        self._sens = np.zeros(2 * n, np.float32)
        self._z_mat = np.zeros((n + 1, n_syn), np.float32)
        self._z_mat[pre, np.arange(n_syn)] = 0.5 * sigma
        self._z_mat[n] = -0.5 * sigma * mu
        self._z = np.zeros(n_syn, np.float32)
        self._m = np.zeros((self._buf.size, 2 * n), np.float32)  # M
        self._m_syn = self._m[:n_syn]
        self._m_const = self._m[n_syn + n]  # set every step: step constants + sensory sums
        self._m_cm = self._m[n_syn:n_syn + n, :n]  # diagonal: cm_t
        self._leak = np.concatenate([gleak * vleak, gleak + self._eps]).astype(np.float32)
        self._nd = np.zeros(2 * n, np.float32)
        self._num, self._den = self._nd[:n], self._nd[n:]
        self._motor = self._v[cell.wiring.motor_range[0]:]
        # where g_e/2 * erev_e and g_e/2 go in M (flat indices)
        rows = np.arange(n_syn)
        self._idx_num = np.ravel_multi_index((rows, post), self._m.shape)
        self._idx_den = np.ravel_multi_index((rows, n + post), self._m.shape)
        self._half_erev = 0.5 * self._erev
        self._ones = np.ones(n_syn, np.float32)
        self._cm_diag = np.arange(n)
        self._g_sum = np.zeros(2 * n, np.float32)
        self._set_conductances(_softplus(self._w))
        self._const = np.zeros(2 * n, np.float32)

        if self.plastic:
            rule = cell.rule.numpy_arrays()
            per_sample = cell.rule.modulator_kind == "sample"
            # hebb = (1 + tau) * tanh(v_post) = 2 s * post: eta halved to match
            self.trace = NumpyTrace([0.5 * rule["eta"][pre, post]], rule["decay"][pre, post], cell.rule.h_max, per_sample)
            mod = np.vstack([rule["mod_w"], rule["mod_b"][None]])  # [v, 1] @ mod
            self._mod = np.repeat(mod, self.trace.m_copies, axis=1) if per_sample else mod[:, post]
            self._mod_out = np.zeros(self._mod.shape[1], np.float32)
            self._alpha = rule["alpha"][pre, post]
            self._w_eff = np.zeros(n_syn, np.float32)
            self._sp = np.zeros(n_syn, np.float32)
            self._post_act = np.zeros(n, np.float32)
            self._post_e = np.zeros(n_syn, np.float32)

    def _set_conductances(self, g: np.ndarray) -> None:
        """Write g_e/2 [erev_e, 1] into M and their sums per neuron into _g_sum (z is scratch)."""
        np.multiply(g, self._half_erev, self._z)
        self._m.put(self._idx_num, self._z)
        np.multiply(g, 0.5, self._z)
        self._m.put(self._idx_den, self._z)
        np.dot(self._ones, self._m_syn, self._g_sum)

    def _set_dt(self, dt: float) -> None:
        n = self._v.size
        self._cm_t = self._cm / (max(dt, MIN_DT) / self._unfolds)
        self._m_cm[self._cm_diag, self._cm_diag] = self._cm_t
        self._dt_const = self._leak.copy()
        self._dt_const[n:] += self._cm_t
        np.add(self._dt_const, self._g_sum, self._const)  # without the sensory sums

    def _step(self, x: np.ndarray) -> np.ndarray:
        dot, tanh = np.dot, np.tanh
        np.copyto(self._x, x, casting="unsafe")
        trace = self.trace
        if trace is not None:
            tanh(dot(self._v1, self._mod, self._mod_out), self._mod_out)  # m from the state at the step's start
            # conductances with the plastic change: softplus(w + alpha * H)
            np.multiply(self._alpha, trace.H, self._w_eff)
            self._w_eff += self._w
            self._set_conductances(_softplus(self._w_eff, self._sp))
            np.add(self._dt_const, self._g_sum, self._const)
        tanh(dot(self._x1, self._z_s, self._tau_s), self._tau_s)
        dot(self._tau_s1, self._m_s, self._sens)
        np.add(self._const, self._sens, self._m_const)
        v1, z_mat, z, tau, buf, m, nd, num, den, v = (
            self._v1, self._z_mat, self._z, self._tau, self._buf, self._m, self._nd, self._num, self._den, self._v
        )
        for _ in range(self._unfolds):
            dot(v1, z_mat, z)
            tanh(z, tau)
            dot(buf, m, nd)
            np.divide(num, den, v)
        if trace is not None:
            tanh(v, self._post_act)
            np.take(self._post_act, self._post, out=self._post_e)
            hebb = trace.hebb[0]
            np.add(tau, 1.0, hebb)
            np.multiply(hebb, self._post_e, hebb)
            trace.update(self._mod_out)
        return self._motor * self._out_w + self._out_b

    def _get_h(self) -> np.ndarray:
        return self._v

    def _set_h(self, h: np.ndarray) -> None:
        self._v[...] = h

    def _get_trace(self) -> np.ndarray:
        n = self._v.size
        dense = np.zeros((n, n), np.float32)
        dense[self._pre, self._post] = self.trace.H
        return dense

    def _set_trace(self, trace: np.ndarray) -> None:
        self.trace.H[...] = trace[self._pre, self._post]


def _scatter(target: np.ndarray, post: np.ndarray, num: np.ndarray, den: np.ndarray, n: int) -> None:
    rows = np.arange(post.size)
    target[rows, post] = num
    target[rows, n + post] = den


def _softplus(x: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
    """log(1 + exp(x)) without overflow (np.logaddexp is ~10x slower); `out` must not be `x`."""
    out = np.empty_like(x) if out is None else out
    np.abs(x, out)
    np.negative(out, out)
    np.exp(out, out)
    np.log1p(out, out)
    out += np.maximum(x, 0.0)
    return out
