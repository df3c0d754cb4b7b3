"""One step of the plastic CfC's training path, forward and backward, as plain tensor math.

These two functions are what `policies/cfc_bptt.py` compiles with torch.compile (inductor),
which fuses each step's ~30 elementwise passes over the (synapses, batch) traces into a few
loops. They take the wiring's plastic blocks (`BlockLayout.layers`) and the trace
bound `h_max` as constants, and work on the batch-last layout of cfc_bptt.py: states
(units, batch), traces (synapses, batch), per-synapse parameters (synapses, 1).

The backward recomputes the step's coactivity, trace change and clamp input from the saved
trace and neuron states instead of storing them: inside a fused loop that costs less than
reading three more (synapses, batch) arrays.
"""
from __future__ import annotations

import torch


def _blk(rows: torch.Tensor, layer: tuple[int, int, int, int]) -> torch.Tensor:
    """A layer's block of a (size, batch) tensor as a (pre, post, batch) view."""
    s, e, src, o = layer
    return rows[o:o + (e - src) * (e - s)].view(e - src, e - s, rows.shape[-1])


def _m_blk(m: torch.Tensor, s: int, e: int) -> torch.Tensor:
    """The modulation a block sees: (1, 1, batch) per sample or (1, post, batch) per neuron."""
    return m.unsqueeze(0) if m.shape[0] == 1 else m[s:e].unsqueeze(0)


def step_forward(layers, h_max: float, h_old, trace, gin0, dt, mod_w, mod_b, alpha, eta, decay, weights_t, biases):
    """One step: h_old (units, batch), trace (size, batch), gin0 (4 n0, batch) the first
    layer's input gates, dt (1, batch); weights_t[l] (4 n, pre), biases[l] (4 n, 1) (None for
    the first layer). Returns (h_new, trace_new, m, f per layer (2, n, batch), time gate per layer)."""
    m = torch.tanh(torch.addmm(mod_b, mod_w, h_old))
    news, fs, gates_t, new_trace = [], [], [], []
    for l, layer in enumerate(layers):
        s, e, src, _ = layer
        n = e - s
        pre = h_old[s:e] if l == 0 else torch.cat([news[-1], h_old[s:e]], 0)
        gates = torch.addmm(gin0 if l == 0 else biases[l], weights_t[l], pre)
        trace_b = _blk(trace, layer)
        plastic = (_blk(alpha, layer) * trace_b * pre.unsqueeze(1)).sum(0)
        f = torch.tanh(gates[:2 * n].view(2, n, -1) + plastic)
        gate = torch.sigmoid(gates[2 * n:3 * n] * dt + gates[3 * n:])
        post = f[0] + gate * (f[1] - f[0])
        coact = pre.unsqueeze(1) * post.unsqueeze(0)
        d = _blk(eta, layer) * coact - _blk(decay, layer) * trace_b
        u = trace_b + _m_blk(m, s, e) * d
        new_trace.append(u.clamp(-h_max, h_max).view(-1, u.shape[-1]))
        news.append(post)
        fs.append(f)
        gates_t.append(gate)
    return torch.cat(news, 0), torch.cat(new_trace, 0), m, fs, gates_t


def _gates_backward(g_post, f, gate, dt):
    """Back through h = f1 + gate (f2 - f1), f = tanh(ff), gate = sigmoid(time_a dt + time_b):
    returns (dL/d[ff1, ff2, time_a, time_b] (4 n, batch), dL/dplastic (n, batch))."""
    g_f = torch.stack([g_post * (1.0 - gate), g_post * gate]) * (1.0 - f * f)
    g_tb = g_post * (f[1] - f[0]) * gate * (1.0 - gate)
    n = g_post.shape[0]
    return torch.cat([g_f.view(2 * n, -1), g_tb * dt, g_tb], 0), g_f[0] + g_f[1]


def step_backward(layers, h_max: float, g_new, g_trace, h_old, h_new, trace, m, fs, gates_t, dt,
                  mod_w, alpha, eta, decay, weights):
    """Back through one step_forward. g_new = dL/dh_new (units, batch), g_trace = dL/dtrace_new
    (size, batch); weights[l] (pre, 4 n). Returns (dL/dh_old, dL/dtrace, dL/dgates per layer
    (4 n, batch), dL/d(modulator pre-activation) (K, batch), and the step's rule gradients
    summed over the batch: alpha, eta, -decay, each (size,))."""
    g_post = [g_new[s:e] for s, e, _, _ in layers]
    g_old = [None] * len(layers)
    g_gates, g_tr, g_a, g_eta, g_dec, g_m = ([None] * len(layers) for _ in range(6))
    for l in reversed(range(len(layers))):
        layer = layers[l]
        s, e, src, _ = layer
        pre = h_old[s:e] if l == 0 else torch.cat([h_new[src:s], h_old[s:e]], 0)
        post, trace_b, eta_b, decay_b, alpha_b = h_new[s:e], _blk(trace, layer), _blk(eta, layer), \
            _blk(decay, layer), _blk(alpha, layer)
        m_b = _m_blk(m, s, e)
        coact = pre.unsqueeze(1) * post.unsqueeze(0)
        d = eta_b * coact - decay_b * trace_b
        u = trace_b + m_b * d
        g_u = torch.where((u >= -h_max) & (u <= h_max), _blk(g_trace, layer), 0.0)  # the clamp
        g_ud = g_u * d
        g_m[l] = g_ud.sum((0, 1)) if m.shape[0] == 1 else g_ud.sum(0)
        g_d = g_u * m_b
        g_eta[l], g_dec[l] = (g_d * coact).sum(-1), (g_d * trace_b).sum(-1)
        g_coact = g_d * eta_b
        g_p = g_post[l] + (g_coact * pre.unsqueeze(1)).sum(0)
        g_gates[l], g_plastic = _gates_backward(g_p, fs[l], gates_t[l], dt)
        g_delta = pre.unsqueeze(1) * g_plastic.unsqueeze(0)
        g_a[l] = (g_delta * trace_b).sum(-1)
        g_tr[l] = (g_u - decay_b * g_d + g_delta * alpha_b).view(-1, g_u.shape[-1])
        g_pre = (alpha_b * trace_b * g_plastic.unsqueeze(0) + g_coact * post.unsqueeze(0)).sum(1)
        g_pre = torch.addmm(g_pre, weights[l], g_gates[l])
        if l == 0:
            g_old[l] = g_pre
        else:
            g_post[l - 1] = g_post[l - 1] + g_pre[:s - src]
            g_old[l] = g_pre[s - src:]
    g_mod = (sum(g_m) if m.shape[0] == 1 else torch.cat(g_m, 0)) * (1.0 - m * m)
    g_old = torch.addmm(torch.cat(g_old, 0), mod_w.t(), g_mod)
    flat = [torch.cat([g.reshape(-1) for g in parts]) for parts in (g_a, g_eta, g_dec)]
    return g_old, torch.cat(g_tr, 0), g_gates, g_mod, *flat
