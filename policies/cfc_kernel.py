"""C loops for the plastic traces of policies/cfc_bptt.py, compiled once with the system C compiler.

Eager torch runs each step's trace update and its gradient as ~30 separate passes over the
(synapses, batch) traces; these four loops do the same work in two passes forward and two
backward. They are plain C (no torch headers), so compiling them takes about a second; the
shared library is cached under the temp directory, keyed by a hash of the source and flags.
`kernels(dtype)` returns None when no compiler is found or compiling fails, and the caller
falls back to the eager path.

Arrays are contiguous, the batch the last axis: a layer's trace block is (pre, post, batch)
row-major, pre (pre, batch), post and plastic (post, batch), the per-synapse parameters
(pre, post); no two arrays overlap (`restrict`). The modulation m is (post, batch) per neuron or (1, batch) per sample
(`per_neuron` = 0). Loops over the batch reassociate their sums (vectorised), so results
differ from torch's in the last bits, but every run of the same library gives the same bits.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import warnings
from string import Template
from typing import Optional

import torch

_TEMPLATE = Template(r"""
/* plastic[j] = sum_i alpha_ij trace_ij pre_i */
void fwd_plastic_$S(long P, long N, long B, const $R *restrict alpha, const $R *restrict trace, const $R *restrict pre, $R *restrict plastic) {
    for (long k = 0; k < N * B; k++) plastic[k] = 0;
    for (long i = 0; i < P; i++)
        for (long j = 0; j < N; j++) {
            const $R a = alpha[i * N + j], *restrict tr = trace + (i * N + j) * B, *restrict p = pre + i * B;
            $R *restrict out = plastic + j * B;
            for (long b = 0; b < B; b++) out[b] += a * tr[b] * p[b];
        }
}

/* trace_new = clamp(trace + m (eta pre post - decay trace), -hm, hm) */
void fwd_trace_$S(long P, long N, long B, const $R *restrict trace, const $R *restrict pre, const $R *restrict post, const $R *restrict m,
                  long per_neuron, const $R *restrict eta, const $R *restrict decay, double hm, $R *restrict trace_new) {
    const $R lo = ($R)-hm, hi = ($R)hm;
    for (long i = 0; i < P; i++)
        for (long j = 0; j < N; j++) {
            const long ij = i * N + j;
            const $R e = eta[ij], dc = decay[ij], *restrict tr = trace + ij * B, *restrict p = pre + i * B, *restrict q = post + j * B;
            const $R *restrict mm = m + (per_neuron ? j * B : 0);
            $R *restrict out = trace_new + ij * B;
            for (long b = 0; b < B; b++) {
                const $R u = tr[b] + mm[b] * (e * (p[b] * q[b]) - dc * tr[b]);
                out[b] = u < lo ? lo : (u > hi ? hi : u);
            }
        }
}

/* Back through the trace update (clamp, modulation, coactivity, decay) from g_in = dL/dtrace_new:
   writes g_out = dL/dtrace (without the plastic input's part); adds into g_m, g_post, g_pre
   (batch rows) and acc_eta, acc_decay (per synapse, summed over the batch). */
void bwd_trace_$S(long P, long N, long B, const $R *restrict trace, const $R *restrict pre, const $R *restrict post, const $R *restrict m,
                  long per_neuron, const $R *restrict eta, const $R *restrict decay, double hm, const $R *restrict g_in, $R *restrict g_out,
                  $R *restrict g_m, $R *restrict acc_eta, $R *restrict acc_decay, $R *restrict g_post, $R *restrict g_pre) {
    const $R lo = ($R)-hm, hi = ($R)hm;
    for (long i = 0; i < P; i++)
        for (long j = 0; j < N; j++) {
            const long ij = i * N + j;
            const $R e = eta[ij], dc = decay[ij], *restrict tr = trace + ij * B, *restrict p = pre + i * B, *restrict q = post + j * B;
            const $R *restrict mm = m + (per_neuron ? j * B : 0), *restrict gi = g_in + ij * B;
            $R *restrict gm = g_m + (per_neuron ? j * B : 0), *restrict gq = g_post + j * B, *restrict gp = g_pre + i * B, *restrict go = g_out + ij * B;
            $R se = 0, sd = 0;
            for (long b = 0; b < B; b++) {
                const $R c = p[b] * q[b], d = e * c - dc * tr[b], u = tr[b] + mm[b] * d;
                const $R gu = (u >= lo && u <= hi) ? gi[b] : 0;
                const $R gd = gu * mm[b], gc = gd * e;
                gm[b] += gu * d;
                se += gd * c;
                sd += gd * tr[b];
                gq[b] += gc * p[b];
                gp[b] += gc * q[b];
                go[b] = gu - dc * gd;
            }
            acc_eta[ij] += se;
            acc_decay[ij] += sd;
        }
}

/* Back through plastic[j] = sum_i alpha_ij trace_ij pre_i from g_plastic: adds into g_trace,
   g_pre and acc_alpha (per synapse, summed over the batch). */
void bwd_plastic_$S(long P, long N, long B, const $R *restrict trace, const $R *restrict pre, const $R *restrict g_plastic, const $R *restrict alpha,
                    $R *restrict g_trace, $R *restrict acc_alpha, $R *restrict g_pre) {
    for (long i = 0; i < P; i++)
        for (long j = 0; j < N; j++) {
            const long ij = i * N + j;
            const $R a = alpha[ij], *restrict tr = trace + ij * B, *restrict p = pre + i * B, *restrict g = g_plastic + j * B;
            $R *restrict gt = g_trace + ij * B, *restrict gp = g_pre + i * B, sa = 0;
            for (long b = 0; b < B; b++) {
                const $R gdelta = p[b] * g[b];
                sa += gdelta * tr[b];
                gt[b] += gdelta * a;
                gp[b] += a * tr[b] * g[b];
            }
            acc_alpha[ij] += sa;
        }
}
""")

# -ffp-contract=off: the backward recomputes the forward's clamp input bit for bit;
# -fassociative-math lets the sums over the batch vectorise.
_FLAGS = ["-O3", "-march=native", "-shared", "-fPIC", "-ffp-contract=off", "-fassociative-math",
          "-fno-signed-zeros", "-fno-trapping-math"]
_SOURCE = _TEMPLATE.substitute(R="float", S="f32") + _TEMPLATE.substitute(R="double", S="f64")
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
_LIB: list = []  # [] not tried yet, [None] failed, [CDLL] loaded


def _build() -> Optional[ctypes.CDLL]:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        return None
    key = hashlib.sha256((_SOURCE + " ".join(_FLAGS) + compiler).encode()).hexdigest()[:16]
    folder = os.path.join(tempfile.gettempdir(), f"navctl-kernels-{os.getuid()}")
    path = os.path.join(folder, f"cfc_trace_{key}.so")
    if not os.path.exists(path):
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
        os.close(fd)
        try:
            subprocess.run([compiler, *_FLAGS, "-x", "c", "-", "-o", tmp], input=_SOURCE.encode(),
                           check=True, capture_output=True, timeout=120)
            os.replace(tmp, path)  # atomic: concurrent processes never load a half-written library
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    lib = ctypes.CDLL(path)
    L, P, D = ctypes.c_long, ctypes.c_void_p, ctypes.c_double
    for s in _SUFFIX.values():
        getattr(lib, f"fwd_plastic_{s}").argtypes = [L, L, L, P, P, P, P]
        getattr(lib, f"fwd_trace_{s}").argtypes = [L, L, L, P, P, P, P, L, P, P, D, P]
        getattr(lib, f"bwd_trace_{s}").argtypes = [L, L, L, P, P, P, P, L, P, P, D, P, P, P, P, P, P, P]
        getattr(lib, f"bwd_plastic_{s}").argtypes = [L, L, L, P, P, P, P, P, P, P]
    return lib


def kernels(dtype: torch.dtype) -> Optional[dict]:
    """The four loops for `dtype` (float32 or float64) as {name: ctypes function}, or None
    when they cannot be built (no C compiler, a failed compile, another dtype, or
    NAVCTL_EAGER=1 in the environment)."""
    if dtype not in _SUFFIX or os.environ.get("NAVCTL_EAGER") == "1":
        return None
    if not _LIB:
        try:
            _LIB.append(_build())
        except (OSError, subprocess.SubprocessError) as err:
            warnings.warn(f"policies/cfc_kernel.py: C trace kernels unavailable ({err}); using the eager path")
            _LIB.append(None)
    lib = _LIB[0]
    if lib is None:
        return None
    s = _SUFFIX[dtype]
    return {name: getattr(lib, f"{name}_{s}") for name in ("fwd_plastic", "fwd_trace", "bwd_trace", "bwd_plastic")}
