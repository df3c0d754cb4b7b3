"""The numpy control path of the liquid cells: one step for one sample, in numpy.

`numpy_step(cell)` returns a stepper holding a snapshot of the cell's current weights
(rebuild it after the weights change) and its own state: `step(x, dt)` takes x (inputs,)
and a number dt in the cell's time unit and returns y (outputs,). Each stepper is the
same function as the cell's torch `forward` at batch 1 (tested to 1e-5), arranged so that
a control step is a few contiguous numpy calls on buffers allocated once: this is what
`LearnedPolicy.act` runs at batch 1.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from policies.cell import LiquidCell
from policies.cfc import CfCCell, cfc_masks
from policies.ltc import MIN_DT, LTCCell
from policies.plasticity import HebbianRule


def numpy_step(cell: LiquidCell) -> "NumpyStep":
    """A batch-1 numpy stepper of `cell` (a CfCCell, an LTCCell or an LSMCell) with a snapshot of its weights."""
    from policies.lsm import LSMCell, NumpyLSMStep  # lsm builds on this module

    if isinstance(cell, LSMCell):
        return NumpyLSMStep(cell)
    if isinstance(cell, CfCCell):
        return NumpyCfCStep(cell)
    if isinstance(cell, LTCCell):
        return NumpyLTCStep(cell)
    raise TypeError(f"no numpy step for {type(cell).__name__}")


def _mapping_arrays(cell: LiquidCell) -> dict[str, np.ndarray]:
    """Input/output mappings as float32 arrays (identity where the mapping is absent)."""
    def get(name: str, default: float, size: int) -> np.ndarray:
        p = getattr(cell, name, None)
        return np.full(size, default, np.float32) if p is None else _np(p)

    w = cell.wiring
    return {
        "in_w": get("input_w", 1.0, w.input_dim),
        "in_b": get("input_b", 0.0, w.input_dim),
        "out_w": get("output_w", 1.0, w.output_dim),
        "out_b": get("output_b", 0.0, w.output_dim),
    }


def _rule_arrays(rule: HebbianRule) -> dict[str, np.ndarray]:
    """float32 snapshots of the rule's parameters, dense [pre, post]."""
    with torch.no_grad():
        mask = rule.mask
        return {
            "alpha": _np(rule.alpha * mask),
            "eta": _np(rule.eta * mask),
            "decay": _np(torch.sigmoid(rule.decay_logit)),
            "mod_w": _np(rule.modulator.weight.t()),  # (state, K)
            "mod_b": _np(rule.modulator.bias),
        }


def _np(t: torch.Tensor) -> np.ndarray:
    """A float32 numpy copy of a tensor."""
    return t.detach().cpu().numpy().astype(np.float32, copy=True)


class NumpyTrace:
    """The rule for one sample in numpy, with every buffer allocated once.

    Works on any layout of the synapses (a dense (pre, post) matrix, or a list of the
    wiring's synapses): `decay` and each eta block have that layout. The coactivity may
    come in k blocks with their own eta (a cell whose synapses see different presynaptic
    values writes one pre x post block for each); the cell writes them into `coactivity`, then
    calls `update(m)`. With a per-sample modulator, m is the sample's m repeated `m_copies`
    times (so that one dot both sums the blocks and scales them); otherwise m broadcasts
    against the layout (per postsynaptic neuron).
    """

    def __init__(self, eta_blocks: Sequence[np.ndarray], decay: np.ndarray, h_max: float, per_sample: bool = True):
        k = len(eta_blocks)
        # the trace lives as the last block of the stack so that one multiply gives every term
        # of sum_b eta_b * coactivity_b - decay * trace.
        self._stack = np.zeros((k + 1, *decay.shape), dtype=np.float32)
        self.coactivity = self._stack[:k]
        self.values = self._stack[k]  # the trace
        self._coef = np.stack([*eta_blocks, -decay]).astype(np.float32)
        self._prod = np.empty_like(self._stack)
        self._prod_rows = self._prod.reshape(k + 1, -1)
        self._step = np.empty(decay.shape, dtype=np.float32)
        self._step_flat = self._step.reshape(-1)
        self.per_sample = per_sample
        self.m_copies = k + 1
        self._lo = np.array(-h_max, dtype=np.float32)  # 0-d arrays: scalars cost the clip ufunc ~1 us
        self._hi = np.array(h_max, dtype=np.float32)

    def update(self, m: np.ndarray) -> None:
        """trace <- clip(trace + m * (eta * coactivity - decay * trace))."""
        np.multiply(self._stack, self._coef, self._prod)
        if self.per_sample:
            np.dot(m, self._prod_rows, self._step_flat)
        else:
            np.add.reduce(self._prod, 0, out=self._step)
            np.multiply(self._step, m, self._step)
        np.add(self.values, self._step, self.values)
        _clip(self.values, self._lo, self._hi, self.values)

    def reset(self) -> None:
        self._stack.fill(0.0)



_clip = getattr(np, "_core", np).umath.clip  # the clip ufunc itself: np.clip adds ~3 us of Python per call


class NumpyStep:
    """Batch-1 control step of a cell in numpy, with every buffer allocated once.

    It holds a snapshot of the cell's weights taken when it was built (rebuild it after
    the weights change) and its own state. `step(x, dt)` takes x (inputs,) and a number dt
    and returns y (outputs,) as a new array. `state()` / `set_state()` use the cell's torch
    layout with a batch of one: (h (1, units),) or (h, trace (1, *trace_shape)), the trace
    (units, units) unless a subclass says otherwise.
    """

    def __init__(self, cell: LiquidCell):
        self.units = cell.state_size
        self.trace_shape = (self.units, self.units)
        self.plastic = cell.rule is not None and cell.plasticity
        self.has_trace = cell.rule is not None  # a plastic cell with plasticity off reports trace = 0
        self.trace: Optional[NumpyTrace] = None
        self._dt: Optional[float] = None

    def step(self, x: np.ndarray, dt: float = 1.0) -> np.ndarray:
        if dt != self._dt:
            self._set_dt(float(dt))
            self._dt = dt
        return self._step(x)

    def state(self) -> tuple[np.ndarray, ...]:
        h = self._get_h()[None].copy()
        if not self.has_trace:
            return (h,)
        if self.trace is None:
            return (h, np.zeros((1, *self.trace_shape), np.float32))
        return (h, self._get_trace()[None].copy())

    def set_state(self, state: tuple[np.ndarray, ...]) -> None:
        self._set_h(np.asarray(state[0], np.float32).reshape(self.units))
        if self.trace is not None:
            self._set_trace(np.asarray(state[1], np.float32).reshape(self.trace_shape))
            self._traces_changed()

    def reset(self, keep_traces: bool = False) -> None:
        """Neuron states to zero; traces too unless `keep_traces`."""
        self._set_h(np.zeros(self.units, np.float32))
        if self.trace is not None and not keep_traces:
            self.trace.reset()
            self._traces_changed()

    # -- supplied by the neuron model ---------------------------------------------------------
    def _set_dt(self, dt: float) -> None:
        raise NotImplementedError

    def _step(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _get_h(self) -> np.ndarray:
        raise NotImplementedError

    def _set_h(self, h: np.ndarray) -> None:
        raise NotImplementedError

    def _get_trace(self) -> np.ndarray:
        """The trace as a dense (pre, post) matrix."""
        return self.trace.values

    def _set_trace(self, trace: np.ndarray) -> None:
        self.trace.values[...] = trace

    def _traces_changed(self) -> None:
        """Called after the trace changed other than by a step (set from outside, reset)."""


class NumpyCfCStep(NumpyStep):
    """The CfC step for one sample in numpy, shaped for few and contiguous numpy calls.

    All gate pre-activations come from one matrix P applied to [1, x, h]: the bias sits in
    the column of the 1, dt is folded into the time-gate rows, and the rows of a layer are
    contiguous, ordered [ff1, ff2, -u/2, u/2] (u = time_a*dt + time_b). After one tanh
    they read [f1, f2, -tau, tau] with tau = tanh(u/2), so sigmoid(u) = (1+tau)/2 and
        h = f1*(1-sigmoid(u)) + f2*sigmoid(u) = (f1 + f2 - tau*f1 + tau*f2) / 2:
    one multiply and one dot with [1/2]*4 finish the layer. The modulator's rows come
    first in the first layer's block. The plastic change alpha * trace is written into P
    after each trace update (one strided view per layer).
    """

    def __init__(self, cell: CfCCell):
        super().__init__(cell)
        maps = _mapping_arrays(cell)
        self._out_w, self._out_b = maps["out_w"], maps["out_b"]
        self._affine_out = cell.output_mapping != "none"
        rule = _rule_arrays(cell.rule) if self.plastic else None
        k = self._init_trace(cell, rule) if rule is not None else 0  # modulator rows at the top of P
        self._init_buffers(cell.wiring)
        self._init_layers(cell, maps, k)
        if rule is not None:
            self._init_modulator(rule, k)

    def _init_trace(self, cell: CfCCell, rule: dict[str, np.ndarray]) -> int:
        """The trace and alpha; returns how many modulator rows P needs."""
        n = cell.wiring.units
        forward, recurrent = cfc_masks(cell.wiring)
        per_sample = cell.rule.modulator_kind == "sample"
        self.trace = NumpyTrace([rule["eta"] * forward, rule["eta"] * recurrent], rule["decay"], cell.rule.h_max, per_sample)
        self._alpha = rule["alpha"]
        self._delta = np.zeros((n, n), np.float32)  # alpha * trace [pre, post]
        return self.trace.m_copies if per_sample else n  # a per-sample m once per copy the trace wants

    def _init_buffers(self, w) -> None:
        """buf = [1, x, h, h_old] and its views."""
        n_in, n = w.input_dim, w.units
        c0 = 1 + n_in  # index of the first h in buf
        self._c0 = c0
        self._buf = np.zeros(c0 + 2 * n, np.float32)
        self._buf[0] = 1.0
        self._x = self._buf[1:c0]
        self._h = self._buf[c0:c0 + n]
        self._h_old = self._buf[c0 + n:]
        self._inp = self._buf[:c0 + n]  # what P multiplies
        self._motor = self._h[w.motor_range[0]:]
        self._half = np.full(4, 0.5, np.float32)

    def _init_layers(self, cell: CfCCell, maps: dict[str, np.ndarray], k: int) -> None:
        """P: every layer's gates as rows over [1, x, h], plus the views each step uses."""
        n_in, n, c0 = cell.wiring.input_dim, cell.wiring.units, self._c0
        cols = c0 + n
        prod = np.zeros((k + 4 * n, cols), np.float32)  # P
        self._y = np.zeros(k + 4 * n, np.float32)
        self._time_a = np.zeros((n, cols), np.float32)  # time gates before dt is folded in
        self._time_b = np.zeros((n, cols), np.float32)
        self._u_neg_rows = np.zeros(n, np.int64)  # row of -u/2 and of u/2 for each neuron
        self._u_pos_rows = np.zeros(n, np.int64)
        self._layers = []  # per layer: (P rows, y rows, -tau|tau, f1|f2, [f1, f2, -tau*f1, tau*f2] as (4, size), h)
        self._plastic_views = []  # per layer: (the plastic block of P, its value without plasticity, alpha*trace block)
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

    def _init_modulator(self, rule: dict[str, np.ndarray], k: int) -> None:
        """The modulator's rows of P and the views of the trace update."""
        c0, n = self._c0, self._h.size
        self._prod[:k, 0] = rule["mod_b"]  # (1,) or (n,): broadcast over the k rows
        self._prod[:k, c0:c0 + n] = rule["mod_w"].T
        self._m = self._y[:k]
        self._hh_col = self._buf[c0:][:, None]  # [h_new, h_old] as a column
        self._h_row = self._h[None, :]
        self._coactivity_out = self.trace.coactivity.reshape(2 * n, n)

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
            dot(self._hh_col, self._h_row, self._coactivity_out)  # outer product as a rank-1 matmul: the fastest form
            trace.update(self._m)
            self._traces_changed()
        if self._affine_out:
            return self._motor * self._out_w + self._out_b
        return self._motor.copy()

    def _traces_changed(self) -> None:
        np.multiply(self._alpha, self.trace.values, self._delta)
        for view, base, delta in self._plastic_views:
            np.add(base, delta, view)

    def _get_h(self) -> np.ndarray:
        return self._h

    def _set_h(self, h: np.ndarray) -> None:
        self._h[...] = h


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
        maps = _mapping_arrays(cell)
        self._out_w, self._out_b = maps["out_w"], maps["out_b"]
        self._unfolds = cell.ode_unfolds
        self._eps = cell.epsilon
        self._init_sensory(cell, maps)
        self._init_synapses(cell)
        if self.plastic:
            self._init_trace(cell)

    def _init_sensory(self, cell: LTCCell, maps: dict[str, np.ndarray]) -> None:
        """Sensory synapses: tau_s = tanh([x, 1] @ z_s); sums = [tau_s, 1] @ m_s, once per step."""
        n, n_in = cell.state_size, cell.input_size
        with torch.no_grad():
            s_pre, s_post = np.nonzero(_np(cell.sensory_mask))
            s_sigma, s_mu = _np(cell.sensory_sigma)[s_pre, s_post], _np(cell.sensory_mu)[s_pre, s_post]
            s_g = _np(F.softplus(cell.sensory_w))[s_pre, s_post]
            s_erev = _np(cell.sensory_erev)[s_pre, s_post]
        n_sens = s_pre.size
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

    def _init_synapses(self, cell: LTCCell) -> None:
        """buf = [tau (synapses), v, 1], the matrices Z and M, and where g_e/2 [erev_e, 1] go in M."""
        n = cell.state_size
        with torch.no_grad():
            pre, post = np.nonzero(_np(cell.mask))
            sigma, mu = _np(cell.sigma)[pre, post], _np(cell.mu)[pre, post]
            self._erev = _np(cell.erev)[pre, post]
            self._w = _np(cell.w)[pre, post]
            self._cm = _np(F.softplus(cell.cm))
            gleak, vleak = _np(F.softplus(cell.gleak)), _np(cell.vleak)
        self._pre, self._post = pre, post
        n_syn = pre.size
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
        rows = np.arange(n_syn)  # flat indices in M
        self._idx_num = np.ravel_multi_index((rows, post), self._m.shape)
        self._idx_den = np.ravel_multi_index((rows, n + post), self._m.shape)
        self._half_erev = 0.5 * self._erev
        self._ones = np.ones(n_syn, np.float32)
        self._cm_diag = np.arange(n)
        self._g_sum = np.zeros(2 * n, np.float32)
        self._set_conductances(_softplus(self._w))
        self._const = np.zeros(2 * n, np.float32)

    def _init_trace(self, cell: LTCCell) -> None:
        """The trace on the synapse list, the modulator's matrix and the plastic scratch buffers."""
        pre, post, n = self._pre, self._post, cell.state_size
        rule = _rule_arrays(cell.rule)
        per_sample = cell.rule.modulator_kind == "sample"
        # coactivity = (1 + tau) * tanh(v_post) = 2 s * post: eta halved to match
        self.trace = NumpyTrace([0.5 * rule["eta"][pre, post]], rule["decay"][pre, post], cell.rule.h_max, per_sample)
        mod = np.vstack([rule["mod_w"], rule["mod_b"][None]])  # [v, 1] @ mod
        self._mod = np.repeat(mod, self.trace.m_copies, axis=1) if per_sample else mod[:, post]
        self._mod_out = np.zeros(self._mod.shape[1], np.float32)
        self._alpha = rule["alpha"][pre, post]
        self._w_eff = np.zeros(pre.size, np.float32)
        self._sp = np.zeros(pre.size, np.float32)
        self._post_act = np.zeros(n, np.float32)
        self._post_e = np.zeros(pre.size, np.float32)

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
            # conductances with the plastic change: softplus(w + alpha * trace)
            np.multiply(self._alpha, trace.values, self._w_eff)
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
            coactivity = trace.coactivity[0]
            np.add(tau, 1.0, coactivity)
            np.multiply(coactivity, self._post_e, coactivity)
            trace.update(self._mod_out)
        return self._motor * self._out_w + self._out_b

    def _get_h(self) -> np.ndarray:
        return self._v

    def _set_h(self, h: np.ndarray) -> None:
        self._v[...] = h

    def _get_trace(self) -> np.ndarray:
        n = self._v.size
        dense = np.zeros((n, n), np.float32)
        dense[self._pre, self._post] = self.trace.values
        return dense

    def _set_trace(self, trace: np.ndarray) -> None:
        self.trace.values[...] = trace[self._pre, self._post]


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

