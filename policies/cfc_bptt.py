"""Training path of the plastic CfC: a whole sequence as one autograd operation.

`PlasticCfCSequence.apply` runs the plastic CfC (the model is in policies/cfc.py) over T
steps with no autograd bookkeeping and back-propagates through time with a hand-written
backward. It computes the same function as stepping `CfCCell.forward` T times; a test
compares every gradient with that reference path. What makes it fast:

- the batch is the last, contiguous axis of every tensor (neuron states (units, batch),
  traces (synapses, batch)), so every elementwise operation runs over long rows and the
  per-synapse parameters broadcast as columns;
- the traces live only on the plastic blocks of the wiring: for layer l the block
  [presynaptic neurons of l, neurons of l] (previous layer + own layer), 712 rows for the
  32-neuron NCP instead of 32 x 32;
- the first layer's input projection is one matrix product for all T steps (done by the
  caller, so autograd carries its weights), and weight gradients are one product per
  layer over all steps; per-synapse rule gradients are summed over the batch once.
- the trace update, the plastic input and their gradients run as four C loops
  (policies/cfc_kernel.py, `_Kernels`) when a C compiler is there: two passes over the
  traces per step forward and two backward instead of ~30 eager passes. Without one (or
  with NAVCTL_EAGER=1) the same math runs as eager torch ops; a test keeps the two equal.

The caller gives the rule's parameters already gathered onto the blocks (alpha * mask,
eta * mask, sigmoid(decay_logit)) and the masked layer weights; autograd carries their
gradients back to the dense parameters.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch


@dataclass(frozen=True)
class BlockLayout:
    """Where each layer's plastic block sits in the compact trace (synapses, batch).

    Layer l has neurons [start, stop) and presynaptic neurons [src, stop) (src = start for
    the first layer, whose plastic synapses come from its own old state; the previous
    layer's start otherwise); its block [src:stop, start:stop] is stored row-major from
    row `offset`.
    """

    layers: tuple[tuple[int, int, int, int], ...]  # (start, stop, src, offset)
    size: int
    units: int

    @classmethod
    def of(cls, ranges: list[tuple[int, int]], units: int) -> "BlockLayout":
        layers, offset = [], 0
        for l, (s, e) in enumerate(ranges):
            src = s if l == 0 else ranges[l - 1][0]
            layers.append((s, e, src, offset))
            offset += (e - src) * (e - s)
        return cls(tuple(layers), offset, units)

    def flat_index(self) -> np.ndarray:
        """For each compact row, its index in the flattened dense (units x units) [pre, post]."""
        parts = []
        for s, e, src, _ in self.layers:
            pre, post = np.meshgrid(np.arange(src, e), np.arange(s, e), indexing="ij")
            parts.append((pre * self.units + post).reshape(-1))
        return np.concatenate(parts)

    def block(self, rows: torch.Tensor, l: int) -> torch.Tensor:
        """Layer l's block of a (..., size, batch) tensor as a (..., pre, post, batch) view."""
        s, e, src, o = self.layers[l]
        return rows[..., o:o + (e - src) * (e - s), :].view(*rows.shape[:-2], e - src, e - s, rows.shape[-1])


def _pre(h_old: torch.Tensor, h_new: torch.Tensor, layout: BlockLayout, l: int) -> torch.Tensor:
    """Layer l's presynaptic values (pre, batch): the previous layer's new state, then its own old state."""
    s, e, src, _ = layout.layers[l]
    return h_old[s:e] if l == 0 else torch.cat([h_new[src:s], h_old[s:e]], 0)


def _m_block(m: torch.Tensor, layout: BlockLayout, l: int) -> torch.Tensor:
    """The modulation layer l's block sees: (1, 1, batch) per sample or (1, post, batch) per neuron."""
    s, e = layout.layers[l][:2]
    return m.unsqueeze(0) if m.shape[0] == 1 else m[s:e].unsqueeze(0)


class _Pool:
    """Large work buffers kept from one call to the next.

    Touching freshly allocated memory costs a page fault per 4 KiB, which for the traces of
    a batch of 256 costs more than the arithmetic done on them; so the buffers a call needs
    (the traces and products of every step, scratch rows, gradient accumulators) are taken
    from here and given back when the backward pass (or a forward pass that needs none) is
    done. At most `keep` buffers are kept, the most recently given: a training run's
    changing chunk lengths and batch sizes do not pile up memory.
    """

    def __init__(self, keep: int = 16) -> None:
        self.keep = keep
        self._free: list[tuple[tuple, torch.Tensor]] = []

    def take(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        key = (tuple(shape), like.dtype, like.device)
        for i, (k, t) in enumerate(self._free):
            if k == key:
                return self._free.pop(i)[1]
        return like.new_empty(shape)

    def give(self, *tensors: torch.Tensor) -> None:
        self._free.extend(((tuple(t.shape), t.dtype, t.device), t) for t in tensors)
        del self._free[:-self.keep]


_POOL = _Pool()


class _Buffers:
    """Everything one call keeps per step, with the per-step and per-layer views made once.

    Stacks over time: h (T+1, units, batch), trace (T+1, size, batch), and the step's
    u = trace + m d (before the clamp), coactivity and d (T, size, batch), taken from the pool;
    per layer: presynaptic values (T, pre, batch), f = tanh(ff1 | ff2) (T, 2, n, batch) and
    the time gate (T, n, batch). `at[name][t]` is step t of a stack, `blk[name][l][t]` step t
    of layer l's (pre, post, batch) block (indexing Python lists costs nothing; slicing
    tensors in the loop would cost a few microseconds each).
    """

    def __init__(self, layout: BlockLayout, steps: int, like: torch.Tensor, modulators: int, products: bool):
        batch = like.shape[-1]
        layers = range(len(layout.layers))
        self.h = like.new_empty(steps + 1, layout.units, batch)
        self.trace = _POOL.take((steps + 1, layout.size, batch), like)
        # the C kernels recompute u, coactivity and d; the eager path keeps them
        self.pooled = [self.trace] + [_POOL.take((steps if products else 0, layout.size, batch), like) for _ in range(3)]
        self.u, self.coact, self.d = self.pooled[1:]
        self.tmp = _POOL.take((layout.size, batch), like)
        self.m = like.new_empty(steps, modulators, batch)
        self.pre = [self.h[:-1, s:e] if l == 0 else like.new_empty(steps, e - src, batch)
                    for l, (s, e, src, _) in enumerate(layout.layers)]
        stacks = {"h": self.h, "trace": self.trace, "u": self.u, "coact": self.coact, "d": self.d, "m": self.m}
        self.at = {name: x.unbind(0) for name, x in stacks.items()}
        self.blk = {name: [layout.block(stacks[name], l).unbind(0) for l in layers]
                    for name in ("trace", "u", "coact", "d")}
        self.tmp_blk = [layout.block(self.tmp, l) for l in layers]
        self.layer = {  # per layer, per step
            "f": [like.new_empty(steps, 2, e - s, batch).unbind(0) for s, e, _, _ in layout.layers],
            "gate": [like.new_empty(steps, e - s, batch).unbind(0) for s, e, _, _ in layout.layers],
            "pre": [p.unbind(0) for p in self.pre],
            "post": [self.h[1:, s:e].unbind(0) for s, e, _, _ in layout.layers],
            "m": [(self.m.unsqueeze(1) if modulators == 1 else self.m[:, s:e].unsqueeze(1)).unbind(0)
                  for s, e, _, _ in layout.layers],
        }

    def release(self) -> None:
        _POOL.give(self.tmp, *self.pooled)


def _trace_products(layout: BlockLayout, buf: _Buffers, t: int, eta: torch.Tensor, decay: torch.Tensor) -> None:
    """Step t's coactivity = pre x post, d = eta coactivity - decay trace and u = trace + m d (the trace before its clamp)."""
    at, blk, lay = buf.at, buf.blk, buf.layer
    for l in range(len(layout.layers)):
        torch.mul(lay["pre"][l][t].unsqueeze(1), lay["post"][l][t].unsqueeze(0), out=blk["coact"][l][t])
    torch.mul(eta, at["coact"][t], out=at["d"][t]).addcmul_(decay, at["trace"][t], value=-1.0)
    for l in range(len(layout.layers)):
        torch.addcmul(blk["trace"][l][t], blk["d"][l][t], lay["m"][l][t], out=blk["u"][l][t])


class _Kernels:
    """The trace loops of policies/cfc_kernel.py bound to one call's layout, dtype and rule parameters.

    Each loop gets raw addresses: a layer's block of step t of a (steps, size, batch) stack
    starts at base + (t size + offset) batch bytes-per-element.
    """

    def __init__(self, fns: dict, layout: BlockLayout, like: torch.Tensor, per_neuron: bool,
                 alpha: torch.Tensor, eta: torch.Tensor, decay: torch.Tensor):
        self.fns, self.layout, self.batch, self.per_neuron = fns, layout, like.shape[-1], int(per_neuron)
        self.es = like.element_size()
        self.params = [x.contiguous() for x in (alpha, eta, decay)]  # kept alive: the loops read their memory
        self.alpha, self.eta, self.decay = (x.data_ptr() for x in self.params)
        self.g_pre = [like.new_empty(e - src, self.batch) for s, e, src, _ in layout.layers]

    @classmethod
    def of(cls, layout: BlockLayout, like: torch.Tensor, modulators: int, alpha, eta, decay) -> Optional["_Kernels"]:
        from policies.cfc_kernel import kernels  # here: importing it may build the library

        fns = kernels(like.dtype)
        return None if fns is None else cls(fns, layout, like, modulators > 1, alpha, eta, decay)

    def _row(self, stack: torch.Tensor, t: int, offset: int) -> int:
        """Address of row `offset` of step t of a contiguous (steps, rows, batch) stack."""
        return stack.data_ptr() + (t * stack.shape[1] + offset) * self.batch * self.es

    def _at(self, rows: torch.Tensor, offset: int) -> int:
        """Address of row `offset` of a contiguous (rows, batch) tensor."""
        return rows.data_ptr() + offset * self.batch * self.es

    def _m(self, buf: _Buffers, t: int, s: int) -> int:
        return self._row(buf.m, t, s if self.per_neuron else 0)

    def plastic(self, l: int, trace: torch.Tensor, t: int, pre: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """out (post, batch) = sum_i alpha_ij trace_ij pre_i over layer l's block at step t."""
        s, e, src, o = self.layout.layers[l]
        self.fns["fwd_plastic"](e - src, e - s, self.batch, self.alpha + o * self.es, self._row(trace, t, o),
                                pre.data_ptr(), out.data_ptr())
        return out

    def trace_update(self, buf: _Buffers, t: int, h_max: float) -> None:
        """buf.trace[t + 1] = clamp(trace + m (eta pre x post - decay trace)) on every block."""
        for l, (s, e, src, o) in enumerate(self.layout.layers):
            self.fns["fwd_trace"](e - src, e - s, self.batch, self._row(buf.trace, t, o),
                                  buf.layer["pre"][l][t].data_ptr(), buf.layer["post"][l][t].data_ptr(),
                                  self._m(buf, t, s), self.per_neuron, self.eta + o * self.es,
                                  self.decay + o * self.es, h_max, self._row(buf.trace, t + 1, o))

    def backward(self, buf: _Buffers, t: int, h_max: float, g_tr: torch.Tensor, g_next: torch.Tensor, acc: list,
                 dt: torch.Tensor, weights: list, g_gates: list, g_new: torch.Tensor, g_old: torch.Tensor) -> torch.Tensor:
        """Back through step t from dL/dtrace_{t+1} (g_tr) and dL/dh_{t+1} (g_new): writes dL/dtrace_t
        into g_next, fills g_gates, adds into acc (alpha, eta, decay) and g_old; returns dL/dm (K, batch)."""
        g_m = torch.zeros_like(buf.at["m"][t])
        es, (a_acc, e_acc, d_acc), g_m_row = self.es, (x.data_ptr() for x in acc), self.per_neuron
        for l in reversed(range(len(self.layout.layers))):
            s, e, src, o = self.layout.layers[l]
            pre, post, g_pre = buf.layer["pre"][l][t], buf.layer["post"][l][t], self.g_pre[l].zero_()
            trace = self._row(buf.trace, t, o)
            self.fns["bwd_trace"](e - src, e - s, self.batch, trace, pre.data_ptr(), post.data_ptr(),
                                  self._m(buf, t, s), self.per_neuron, self.eta + o * es, self.decay + o * es, h_max,
                                  self._at(g_tr, o), self._at(g_next, o), self._at(g_m, s * g_m_row), e_acc + o * es,
                                  d_acc + o * es, g_new[s:e].data_ptr(), g_pre.data_ptr())
            g_plastic = _gates_backward(g_new[s:e], buf.layer["f"][l][t], buf.layer["gate"][l][t], dt, g_gates[l])
            g_plastic = g_plastic.contiguous()  # strided like g_gates[0] in the first layer
            self.fns["bwd_plastic"](e - src, e - s, self.batch, trace, pre.data_ptr(), g_plastic.data_ptr(),
                                    self.alpha + o * es, self._at(g_next, o), a_acc + o * es,
                                    g_pre.data_ptr())
            _add_pre_grad(self.layout, l, g_pre.addmm_(weights[l], g_gates[l]), g_new, g_old)
        return g_m


class PlasticCfCSequence(torch.autograd.Function):
    """apply(layout, h_max, gin0, dt, h0, trace0, mod_w, mod_b, alpha, eta, decay, w0_own, *[w_l, b_l])
    -> (h_seq (T, units, batch), trace (size, batch)).

    gin0 (T, 4 n0, batch): the first layer's gate pre-activations from the input, bias
    included; dt (T, batch) elapsed time per step in the cell's unit; h0 (units, batch);
    trace0 (size, batch) on the blocks; mod_w (K, units), mod_b (K,) the modulator (K = 1
    or units); alpha, eta, decay (size, 1); w0_own (n0, 4 n0) the first layer's weights from
    its own state; then each later layer's masked weights (pre, 4 n) and bias (4 n,).
    """

    @staticmethod
    def forward(ctx, layout, h_max, gin0, dt, h0, trace0, mod_w, mod_b, alpha, eta, decay, w0_own, *rest):
        steps, batch = dt.shape
        kern = _Kernels.of(layout, h0, mod_w.shape[0], alpha, eta, decay)
        buf = _Buffers(layout, steps, h0, mod_w.shape[0], products=kern is None)
        buf.h[0] = h0
        buf.trace[0] = trace0
        at, blk, lay = buf.at, buf.blk, buf.layer
        weights_t = [w0_own.t(), *(w.t() for w in rest[0::2])]
        biases = [None, *(b.unsqueeze(1) for b in rest[1::2])]
        alpha_blk = [layout.block(alpha, l) for l in range(len(layout.layers))]  # (pre, post, 1)
        gin0_at, dt_at, mod_b = gin0.unbind(0), dt.unsqueeze(1).unbind(0), mod_b.unsqueeze(1)
        plastic_out = [h0.new_empty(e - s, batch) for s, e, _, _ in layout.layers]
        for t in range(steps):
            h_old, h_new = at["h"][t], at["h"][t + 1]
            torch.addmm(mod_b, mod_w, h_old, out=at["m"][t]).tanh_()
            for l, (s, e, src, _) in enumerate(layout.layers):
                n, pre, post = e - s, lay["pre"][l][t], lay["post"][l][t]
                if l:
                    torch.cat([h_new[src:s], h_old[s:e]], 0, out=pre)
                gates = torch.addmm(gin0_at[t] if l == 0 else biases[l], weights_t[l], pre)
                if kern is not None:
                    plastic = kern.plastic(l, buf.trace, t, pre, plastic_out[l])
                else:
                    tmp = torch.mul(alpha_blk[l], blk["trace"][l][t], out=buf.tmp_blk[l])
                    plastic = tmp.mul_(pre.unsqueeze(1)).sum(0)  # sum_i pre_i alpha_ij trace_ij
                f, gate = lay["f"][l][t], lay["gate"][l][t]
                torch.add(gates[:2 * n].view(2, n, batch), plastic, out=f).tanh_()
                torch.addcmul(gates[3 * n:], gates[2 * n:3 * n], dt_at[t], out=gate).sigmoid_()
                torch.sub(f[1], f[0], out=post).mul_(gate).add_(f[0])
            if kern is not None:
                kern.trace_update(buf, t, h_max)
            else:
                _trace_products(layout, buf, t, eta, decay)
                torch.clamp(at["u"][t], -h_max, h_max, out=at["trace"][t + 1])
        final = buf.trace[steps].clone()
        if any(ctx.needs_input_grad):
            ctx.layout, ctx.h_max, ctx.kern = layout, h_max, kern
            ctx.saved = (dt, buf, mod_w, alpha_blk, eta, decay, [w0_own, *rest[0::2]])
        else:
            buf.release()
        return buf.h[1:].clone(), final

    @staticmethod
    def backward(ctx, g_hseq, g_trace):
        if ctx.saved is None:
            raise RuntimeError("PlasticCfCSequence: backward runs once per forward (retain_graph is not supported)")
        layout: BlockLayout = ctx.layout
        dt, buf, mod_w, alpha_blk, eta, decay, weights = ctx.saved
        ctx.saved = None
        steps, batch = dt.shape
        kern: Optional[_Kernels] = ctx.kern
        n_layers = len(layout.layers)
        g_h = buf.h.new_zeros(layout.units, batch)
        g_tr = (g_trace.clone(memory_format=torch.contiguous_format) if g_trace is not None  # often transposed
                else buf.trace.new_zeros(layout.size, batch))
        # autograd hands g_hseq over transposed; one copy beats a strided read every step
        g_hseq = g_hseq.contiguous() if g_hseq is not None else buf.h.new_zeros(steps, layout.units, batch)
        # rule gradients: per synapse and sample (eager), or already summed over the batch (kernels)
        acc_shape = (layout.size, 1) if kern is not None else tuple(g_tr.shape)
        acc = [_POOL.take(acc_shape, g_tr).zero_() for _ in range(3)]  # alpha, eta, decay
        scratch = _POOL.take(tuple(g_tr.shape), g_tr)  # dL/du (eager) or the next dL/dtrace (kernels)
        g_gates_stack = [buf.h.new_empty(steps, 4 * (e - s), batch) for s, e, _, _ in layout.layers]
        # the first layer's goes back to the caller's (batch, steps, gates) input product: in that layout
        g_gates_stack[0] = buf.h.new_empty(batch, steps, 4 * (layout.layers[0][1] - layout.layers[0][0])).permute(1, 2, 0)
        g_gates = [g.unbind(0) for g in g_gates_stack]
        g_mod = torch.empty_like(buf.m)
        g_hseq_at, g_mod_at, dt_at, mod_w_t = g_hseq.unbind(0), g_mod.unbind(0), dt.unsqueeze(1).unbind(0), mod_w.t()
        step = _EagerStep(layout, buf, ctx.h_max, eta, decay, acc, scratch) if kern is None else None
        for t in reversed(range(steps)):
            g_new = g_hseq_at[t] + g_h  # dL/dh_{t+1}
            g_old = torch.zeros_like(g_h)  # dL/dh_t
            g_step = [g_gates[l][t] for l in range(n_layers)]
            if kern is None:
                g_m = step.backward(t, g_tr, dt_at[t], alpha_blk, weights, g_step, g_new, g_old)
            else:
                g_m = kern.backward(buf, t, ctx.h_max, g_tr, scratch, acc, dt_at[t], weights, g_step, g_new, g_old)
                g_tr, scratch = scratch, g_tr
            m = buf.at["m"][t]
            torch.mul(g_m, 1.0 - m * m, out=g_mod_at[t])  # through the modulator's tanh
            g_h = g_old.addmm_(mod_w_t, g_mod_at[t])
        grads_w = [_sum_over_steps(buf.pre[l], g_gates_stack[l]) for l in range(n_layers)]
        rest = [g for l in range(1, n_layers) for g in (grads_w[l], g_gates_stack[l].sum((0, 2)))]
        grads = (None, None, g_gates_stack[0], None, g_h, g_tr.clone(), _sum_over_steps(g_mod, buf.h[:-1]),
                 g_mod.sum((0, 2)), acc[0].sum(1, keepdim=True), acc[1].sum(1, keepdim=True),
                 -acc[2].sum(1, keepdim=True), grads_w[0], *rest)
        buf.release()
        _POOL.give(*acc, scratch, g_tr)
        return grads


def _sum_over_steps(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum over t and batch of a[t] b[t]^T for a (T, p, batch), b (T, g, batch): (p, g).
    One batched product per step, no copy (an einsum would transpose both stacks first)."""
    return torch.bmm(a, b.transpose(1, 2)).sum(0)


class _EagerStep:
    """The eager backward of one step's trace update and layers (when the C kernels are unavailable)."""

    def __init__(self, layout: BlockLayout, buf: _Buffers, h_max: float, eta: torch.Tensor, decay: torch.Tensor,
                 acc: list[torch.Tensor], g_u: torch.Tensor):
        self.layout, self.buf, self.eta, self.decay, self.acc, self.g_u = layout, buf, eta, decay, acc, g_u
        self.bounds = _clamp_pass_bounds(h_max, buf.trace.dtype)
        self.blocks = [[layout.block(x, l) for l in range(len(layout.layers))] for x in (g_u, acc[0])]

    def backward(self, t: int, g_tr: torch.Tensor, dt: torch.Tensor, alpha_blk: list, weights: list,
                 g_gates: list, g_new: torch.Tensor, g_old: torch.Tensor) -> torch.Tensor:
        """From dL/dtrace_{t+1} (g_tr, overwritten by dL/dtrace_t) and dL/dh_{t+1} (g_new): fills
        g_gates, adds dL/dh_t into g_old and returns dL/dm (K, batch)."""
        buf, g_u, (lo, hi) = self.buf, self.g_u, self.bounds
        at = buf.at
        torch.ops.aten.hardtanh_backward.grad_input(g_tr, at["u"][t], lo, hi, grad_input=g_u)  # the clamp
        g_m = _trace_update_backward(self.layout, buf, t, self.blocks[0])  # buf.d[t] now holds dL/dd
        g_d = at["d"][t]
        self.acc[1].addcmul_(g_d, at["coact"][t])
        self.acc[2].addcmul_(g_d, at["trace"][t])
        torch.addcmul(g_u, g_d, self.decay, value=-1.0, out=g_tr)  # dL/dtrace_t; the plastic weights add below
        g_d.mul_(self.eta)  # now dL/dcoactivity
        g_tr_blk = [self.layout.block(g_tr, l) for l in range(len(self.layout.layers))]
        for l in reversed(range(len(self.layout.layers))):
            _layer_backward(self.layout, l, t, buf, dt, alpha_blk[l], weights[l], g_gates[l], g_new, g_old,
                            g_tr_blk[l], self.blocks[1][l])
        return g_m


def _clamp_pass_bounds(h_max: float, dtype: torch.dtype) -> tuple[float, float]:
    """Bounds for hardtanh_backward (strict) that pass exactly what clamp's gradient passes (|u| <= h_max)."""
    np_type = np.float32 if dtype == torch.float32 else np.float64
    bound = np_type(h_max)
    return float(np.nextafter(-bound, np_type(-np.inf))), float(np.nextafter(bound, np_type(np.inf)))


def _trace_update_backward(layout: BlockLayout, buf: _Buffers, t: int, g_u_blk: list[torch.Tensor]) -> torch.Tensor:
    """u = trace + m d at step t: from dL/du writes dL/dd over buf.d[t] and returns dL/dm (K, batch)."""
    m = buf.at["m"][t]
    per_sample = m.shape[0] == 1
    g_m = torch.zeros_like(m) if per_sample else torch.empty_like(m)
    for l, (s, e, _, _) in enumerate(layout.layers):
        d = buf.blk["d"][l][t]
        g_ud = torch.mul(g_u_blk[l], d, out=buf.tmp_blk[l])
        if per_sample:
            g_m += g_ud.sum((0, 1))
        else:
            torch.sum(g_ud, 0, out=g_m[s:e])
        torch.mul(g_u_blk[l], buf.layer["m"][l][t], out=d)
    return g_m


def _layer_backward(layout: BlockLayout, l: int, t: int, buf: _Buffers, dt: torch.Tensor, alpha: torch.Tensor,
                    weight: torch.Tensor, g_gates: torch.Tensor, g_new: torch.Tensor, g_old: torch.Tensor,
                    g_trace: torch.Tensor, acc_alpha: torch.Tensor) -> None:
    """Back through layer l at step t: its coactivity block (dL/dcoactivity is in buf.d), its
    gates and its plastic input. Fills g_gates (4 n, batch); adds into g_new, g_old, and the
    layer's blocks of g_trace and acc_alpha."""
    s, e = layout.layers[l][:2]
    lay = buf.layer
    pre, post, trace = lay["pre"][l][t], lay["post"][l][t], buf.blk["trace"][l][t]
    g_coact, tmp = buf.blk["d"][l][t], buf.tmp_blk[l]
    g_new[s:e] += torch.mul(g_coact, pre.unsqueeze(1), out=tmp).sum(0)  # coactivity = pre x post
    g_plastic = _gates_backward(g_new[s:e], lay["f"][l][t], lay["gate"][l][t], dt, g_gates)
    g_delta = torch.mul(pre.unsqueeze(1), g_plastic.unsqueeze(0), out=tmp)  # plastic = sum_i pre_i alpha_ij trace_ij
    acc_alpha.addcmul_(g_delta, trace)
    g_trace.addcmul_(g_delta, alpha)
    g_pre = torch.mul(alpha, trace, out=tmp).mul_(g_plastic.unsqueeze(0)).addcmul_(g_coact, post.unsqueeze(0)).sum(1)
    _add_pre_grad(layout, l, g_pre.addmm_(weight, g_gates), g_new, g_old)


def _add_pre_grad(layout: BlockLayout, l: int, g_pre: torch.Tensor, g_new: torch.Tensor, g_old: torch.Tensor) -> None:
    s, e, src, _ = layout.layers[l]
    if l == 0:
        g_old[s:e] += g_pre
    else:
        g_new[src:s] += g_pre[:s - src]
        g_old[s:e] += g_pre[s - src:]


def _gates_backward(g_post: torch.Tensor, f: torch.Tensor, gate: torch.Tensor, dt: torch.Tensor,
                    g_gates: torch.Tensor) -> torch.Tensor:
    """Back through h = f1 + gate (f2 - f1), f = tanh(ff), gate = sigmoid(time_a dt + time_b), dt (1, batch):
    writes dL/d[ff1, ff2, time_a, time_b] into g_gates (4 n, batch); returns dL/dplastic."""
    n = g_post.shape[0]
    g_f = g_gates[:2 * n].view(2, n, -1)
    torch.mul(g_post, 1.0 - gate, out=g_f[0])
    torch.mul(g_post, gate, out=g_f[1])
    g_f.mul_(1.0 - f * f)
    g_tb = g_gates[3 * n:]
    torch.mul(g_post, f[1] - f[0], out=g_tb).mul_(gate * (1.0 - gate))
    torch.mul(g_tb, dt, out=g_gates[2 * n:3 * n])
    return g_f[0] + g_f[1]
