"""The Liquid State Machine (Maass, Natschläger & Markram 2002): a fixed random reservoir of
spiking neurons, read out by a trained linear layer whose synapses are plastic.

The reservoir ("the liquid") is built once from a seed and never trained:
- N leaky integrate-and-fire neurons on the points of a 3-D grid (`lsm_grid`), a share
  `lsm_inhibitory` of them (chosen at random, exactly round(share * N)) inhibitory;
- a synapse from a to b with probability C(type a, type b) * exp(-(D(a, b) / lambda)^2), D the
  grid distance (Maass et al.'s rule and their C), no self-connections;
- Dale's law: every outgoing weight of an excitatory neuron is > 0, of an inhibitory one < 0;
  magnitudes are Maass et al.'s mean strengths (converted below) times a gamma(2, 1/2) draw
  times `lsm_weight_scale`;
- input currents: every neuron takes `lsm_input_fanin` channels of the normalised
  observation x (std 1), each with a weight N(0, `lsm_input_scale`), plus a background
  current drawn uniform in `lsm_bias`.

Units: the membrane potential v is normalised, 0 = rest = reset, 1 = threshold (Maass et al.'s
15 mV above rest); currents are in the same units (the v they would hold a neuron at);
times in ms. Each control step (dt, 50 ms at 20 Hz) runs K = round(dt / `lsm_substep_ms`)
sub-steps of

    v <- (v * leak + (1 - leak) * I + W^T s_prev) * free,   leak = exp(-substep / tau_m)
    s  = [v >= 1]                                        (a spike)

with I the input current (held over the control step), s_prev the previous sub-step's
spikes (one sub-step of synaptic delay; a spike moves v by its synapse's weight), and
free = 0 for `lsm_refractory_ms` (rounded to sub-steps, at least one) after a spike, which
is also the reset to 0. Hence no neuron fires faster than 1 / (substep * (1 + refractory
sub-steps)) (100 Hz by default).

The readout sees z = [r, x]: r the spike trains low-pass filtered with `lsm_rate_tau_ms`
(r <- r * exp(-substep / tau_r) + s every sub-step: about rate x tau_r, ~0.6 at 20 Hz), and
the normalised observation itself. action = tanh(z (W + alpha * trace) + b). The trace
follows the neuromodulated Hebbian rule of the plastic CfC (policies/plasticity.py) on the
readout's synapses [feature, action], with coactivity z x action and the modulator reading
z. Training meta-learns W, b and the rule (alpha, eta, decay, modulator) by BPTT through the
readout, the spikes computed under no_grad as fixed inputs.

State, as for the liquid cells, a `CellState(h, trace)`: h (batch, N * (2 + refractory
sub-steps)) packs [v, r, the spikes of the last refractory sub-steps, oldest first]; trace
(batch, features, actions).

Recurrent weights are multiples of 2^-12, so a sum of them is exact in float32 in any
order: the numpy control path (`NumpyLSMStep`, what `act()` runs at batch 1) and the torch
path compute bit-identical spikes (everything else in the reservoir is the same sequence of
element-wise float32 operations); the readout agrees to float rounding.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
import torch
from torch import nn

from policies.cell import CellState, PlasticSwitch, batch_dt
from policies.fastpath import NumpyStep, NumpyTrace, _np, _rule_arrays
from policies.networks import LiquidNet
from policies.plasticity import HebbianRule, RuleSpec

EXCITATORY, INHIBITORY = 0, 1
# Maass et al. 2002: connection probability scale C and mean synaptic strength by
# [presynaptic type, postsynaptic type]. Strengths are their currents (EE 30, EI 60, IE -19,
# II -19 nA through 1 MOhm, time constants 3 ms excitatory, 6 ms inhibitory) converted to the
# jump of v they give a 30 ms membrane, in units of the 15 mV threshold: A * tau_s / tau_m / 15 mV.
CONNECTION_SCALE = np.array([[0.3, 0.2], [0.4, 0.1]])
MEAN_STRENGTH = np.array([[0.2, 0.4], [-0.25, -0.25]])
WEIGHT_QUANTUM = 2.0 ** -12  # recurrent weights are multiples of this (exact float32 sums)
THRESHOLD = 1.0  # v at which a neuron spikes (normalised units; rest and reset are 0)


@dataclass(frozen=True)
class ReservoirSpec:
    """The reservoir's settings (the `lsm_*` fields of the policy config)."""

    grid: tuple[int, int, int] = (5, 5, 12)  # neurons on a 3-D grid: N = product
    inhibitory: float = 0.2  # share of inhibitory neurons
    connection_lambda: float = 2.0  # grid units: the reach of the connection rule
    weight_scale: float = 1.0  # multiplies Maass et al.'s strengths
    input_fanin: int = 2  # observation channels per neuron
    input_scale: float = 0.5  # std of an input weight (threshold units per std of the observation)
    bias: tuple[float, float] = (0.8, 1.0)  # background current, uniform in this range (threshold units)
    tau_m_ms: float = 30.0  # membrane time constant
    substep_ms: float = 5.0  # simulation step of the reservoir
    refractory_ms: float = 5.0  # rounded to whole sub-steps, at least one
    rate_tau_ms: float = 30.0  # low-pass filter of the spike trains the readout sees
    seed: int = 7  # the reservoir's random draw

    def __post_init__(self) -> None:
        object.__setattr__(self, "grid", tuple(int(g) for g in self.grid))
        object.__setattr__(self, "bias", tuple(float(b) for b in self.bias))
        if len(self.grid) != 3 or min(self.grid) < 1:
            raise ValueError(f"lsm_grid must be three positive sizes, got {list(self.grid)}")
        if not 0.0 <= self.inhibitory < 1.0:
            raise ValueError(f"lsm_inhibitory must be in [0, 1), got {self.inhibitory}")
        if len(self.bias) != 2 or self.bias[0] > self.bias[1]:
            raise ValueError(f"lsm_bias must be [low, high] with low <= high, got {list(self.bias)}")
        if self.input_fanin < 1:
            raise ValueError(f"lsm_input_fanin must be >= 1, got {self.input_fanin}")
        for name in ("connection_lambda", "tau_m_ms", "substep_ms", "refractory_ms", "rate_tau_ms"):
            if not getattr(self, name) > 0:
                raise ValueError(f"lsm_{name} must be positive, got {getattr(self, name)}")
        for name in ("weight_scale", "input_scale"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"lsm_{name} must be >= 0, got {getattr(self, name)}")

    @property
    def size(self) -> int:
        return int(np.prod(self.grid))

    @property
    def refractory_steps(self) -> int:
        return max(1, int(round(self.refractory_ms / self.substep_ms)))

    @property
    def leak(self) -> float:
        """v's decay over one sub-step."""
        return math.exp(-self.substep_ms / self.tau_m_ms)

    @property
    def rate_decay(self) -> float:
        """r's decay over one sub-step."""
        return math.exp(-self.substep_ms / self.rate_tau_ms)

    def substeps(self, dt_ms: float) -> int:
        """Sub-steps in a control step of dt_ms."""
        return int(round(dt_ms / self.substep_ms))


@dataclass(frozen=True)
class Reservoir:
    """A drawn reservoir, as numpy arrays (N neurons, k = input fan-in)."""

    positions: np.ndarray  # (N, 3) grid coordinates
    inhibitory: np.ndarray  # (N,) bool
    weights: np.ndarray  # (N, N) float32 [pre, post], threshold units, multiples of WEIGHT_QUANTUM
    input_index: np.ndarray  # (k, N) int64: the observation channels each neuron takes
    input_weight: np.ndarray  # (k, N) float32
    bias: np.ndarray  # (N,) float32 background current


def build_reservoir(spec: ReservoirSpec, inputs: int) -> Reservoir:
    """Draws the reservoir of `spec` for `inputs` observation channels (deterministic per spec.seed)."""
    rng = np.random.default_rng(spec.seed)
    n = spec.size
    positions = np.stack(np.meshgrid(*[np.arange(g) for g in spec.grid], indexing="ij"), -1).reshape(n, 3)
    inhibitory = np.zeros(n, bool)
    inhibitory[rng.choice(n, int(round(spec.inhibitory * n)), replace=False)] = True
    kind = inhibitory.astype(int)
    dist2 = ((positions[:, None, :] - positions[None, :, :]) ** 2).sum(-1)
    prob = CONNECTION_SCALE[kind[:, None], kind[None, :]] * np.exp(-dist2 / spec.connection_lambda ** 2)
    np.fill_diagonal(prob, 0.0)
    connected = rng.random((n, n)) < prob
    strength = MEAN_STRENGTH[kind[:, None], kind[None, :]] * spec.weight_scale * rng.gamma(2.0, 0.5, (n, n))
    # quantised, and at least one quantum, so that a drawn synapse keeps its sign (Dale's law)
    magnitude = np.maximum(np.round(np.abs(strength) / WEIGHT_QUANTUM), 1.0) * WEIGHT_QUANTUM
    weights = np.where(connected, np.sign(strength) * magnitude, 0.0).astype(np.float32)  # weight_scale 0: all 0
    input_index = np.stack([rng.choice(inputs, spec.input_fanin, replace=inputs < spec.input_fanin)
                            for _ in range(n)], 1).astype(np.int64)
    input_weight = (rng.standard_normal((spec.input_fanin, n)) * spec.input_scale).astype(np.float32)
    bias = rng.uniform(spec.bias[0], spec.bias[1], n).astype(np.float32)
    return Reservoir(positions, inhibitory, weights, input_index, input_weight, bias)


class LSMCell(PlasticSwitch, nn.Module):
    """The reservoir and the plastic readout, with the step contract of the liquid cells:
    `y, state = cell(x, state, dt)`, x (batch, inputs) normalised, dt (batch,) in units of
    `time_unit_s` seconds, y (batch, outputs) before the tanh, state a CellState(h, trace)."""

    def __init__(self, spec: ReservoirSpec, inputs: int, outputs: int, time_unit_s: float,
                 rule: Optional[RuleSpec] = None):
        super().__init__()
        self.spec = spec
        self.time_unit_s = float(time_unit_s)
        self._inputs, self._outputs = inputs, outputs
        res = build_reservoir(spec, inputs)
        self.neurons = spec.size
        self.features = self.neurons + inputs
        # the reservoir is fixed: buffers, saved with the checkpoint (so a file does not
        # depend on this generator), never trained
        self.register_buffer("reservoir_weights", torch.from_numpy(res.weights))
        self.register_buffer("reservoir_inhibitory", torch.from_numpy(res.inhibitory))
        self.register_buffer("input_index", torch.from_numpy(res.input_index))
        self.register_buffer("input_weight", torch.from_numpy(res.input_weight))
        self.register_buffer("reservoir_bias", torch.from_numpy(res.bias))
        bound = 1.0 / math.sqrt(self.features)
        self.readout_w = nn.Parameter(torch.empty(self.features, outputs).uniform_(-bound, bound))
        self.readout_b = nn.Parameter(torch.zeros(outputs))
        self.rule: Optional[HebbianRule] = (
            HebbianRule(np.ones((self.features, outputs)), self.features, rule) if rule is not None else None
        )
        self._plasticity = rule is not None

    # -- the liquid cells' interface (and PlasticSwitch's plastic, plasticity) -----------------------
    @property
    def input_size(self) -> int:
        return self._inputs

    @property
    def output_size(self) -> int:
        return self._outputs

    @property
    def state_size(self) -> int:
        """Size of h: [v, r, the last refractory sub-steps' spikes]."""
        return self.neurons * (2 + self.spec.refractory_steps)

    def initial_state(self, batch_size: int = 1, like: Optional[torch.Tensor] = None) -> CellState:
        like = self.readout_w if like is None else like
        h = like.new_zeros((batch_size, self.state_size))
        return CellState(h, None if self.rule is None else self.rule.zero_trace(batch_size, like))

    def state_names(self) -> tuple[str, ...]:
        return CellState.names(self.rule is not None)

    def count_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def forward(self, x: torch.Tensor, state: Optional[tuple] = None,
                dt: Union[float, torch.Tensor] = 1.0) -> tuple[torch.Tensor, CellState]:
        """One control step: x (batch, inputs), dt (number or (batch,)) -> (y, new CellState)."""
        dt = batch_dt(dt, x.shape[0], x)
        y, new = self.sequence(x[:, None], dt[:, None], state if state is not None else self.initial_state(x.shape[0], x))
        return y[:, 0], new

    def sequence(self, x: torch.Tensor, dt: torch.Tensor, state: tuple) -> tuple[torch.Tensor, CellState]:
        """x (batch, time, inputs), dt (batch, time) -> (y (batch, time, outputs), final state)."""
        h, trace = CellState(*state)
        features, h = self.run_reservoir(x, dt, h)
        y, trace = self.readout(features, trace)
        return y, CellState(h, trace)

    # -- the reservoir (no gradient) -------------------------------------------------------------
    def input_drive(self, x: torch.Tensor) -> torch.Tensor:
        """(1 - leak) * I for x (batch, inputs): the input's share of v's update, per sub-step."""
        gain = 1.0 - self.spec.leak
        drive = self.reservoir_bias * gain
        for k in range(self.input_index.shape[0]):  # in this order, as the numpy path does
            drive = drive + (self.input_weight[k] * gain) * x[:, self.input_index[k]]
        return drive

    def split_h(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """h (batch, state_size) -> v (batch, N), r (batch, N), spikes (batch, refractory, N)."""
        n = self.neurons
        return h[:, :n], h[:, n:2 * n], h[:, 2 * n:].reshape(h.shape[0], -1, n)

    @torch.no_grad()
    def run_reservoir(self, x: torch.Tensor, dt: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Spikes under no_grad: x (batch, time, inputs), dt (batch, time) in time units, h ->
        (features z = [r, x] (batch, time, N + inputs), final h)."""
        if not torch.isfinite(dt).all():
            raise ValueError("dt must be finite")
        counts = torch.round(dt * (self.time_unit_s * 1000.0) / self.spec.substep_ms).clamp(min=0).long()
        v, r, spikes = (t.clone() for t in self.split_h(h.detach()))
        rates = []
        for t in range(x.shape[1]):
            v, spikes, fired = self._control_step(self.input_drive(x[:, t].detach()), counts[:, t], v, spikes)
            r = self._filter(r, fired, counts[:, t])
            rates.append(r)
        features = torch.cat([torch.stack(rates, 1), x.detach()], -1) if rates else x.new_zeros(x.shape[0], 0, self.features)
        return features, torch.cat([v, r, spikes.flatten(1)], 1)

    def _control_step(self, drive: torch.Tensor, steps: torch.Tensor, v: torch.Tensor,
                      spikes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """`steps` (batch,) sub-steps of the neurons from v (batch, N) and the last spikes
        (batch, refractory, N); returns the new v, last spikes, and the spikes of every sub-step."""
        k_max = int(steps.max()) if steps.numel() else 0
        uniform = bool((steps == k_max).all())
        one = spikes.shape[1] == 1  # refractory for one sub-step: the usual case, fewer operations
        fired = []
        for j in range(k_max):
            free = 1.0 - (spikes[:, 0] if one else spikes.sum(1))
            # the numpy path's order of operations (bit-identical spikes)
            v_new = (v * self.spec.leak + drive + spikes[:, -1] @ self.reservoir_weights) * free
            s = (v_new >= THRESHOLD).to(v.dtype)
            hist = s[:, None] if one else torch.cat([spikes[:, 1:], s[:, None]], 1)
            if uniform:
                v, spikes = v_new, hist
            else:  # samples whose dt has fewer sub-steps stay as they are
                active = (j < steps)[:, None]
                v, s = torch.where(active, v_new, v), s * active
                spikes = torch.where(active[:, None], hist, spikes)
            fired.append(s)
        return v, spikes, fired

    def _filter(self, r: torch.Tensor, fired: list[torch.Tensor], steps: torch.Tensor) -> torch.Tensor:
        """The filtered spike trains after a control step: r decays over its `steps` sub-steps
        and every spike adds 1, decayed over the sub-steps after it."""
        decay, k = self.spec.rate_decay, len(fired)
        if bool((steps == k).all()):  # one dt for all: constant weights (and an exported graph without dt)
            r = r * decay ** k
            if not fired:
                return r
            weights = torch.tensor([decay ** (k - 1 - j) for j in range(k)], dtype=r.dtype)
            return r + weights @ torch.stack(fired, 1)
        r = r * (decay ** steps.to(r.dtype))[:, None]
        age = steps[:, None] - 1 - torch.arange(len(fired), device=steps.device)  # sub-steps since spike j
        weights = torch.where(age >= 0, decay ** age.clamp(min=0).to(r.dtype), torch.zeros((), dtype=r.dtype))
        return r + (weights[:, None, :] @ torch.stack(fired, 1)).squeeze(1)

    # -- the readout (differentiable) ------------------------------------------------------------
    def readout(self, z: torch.Tensor, trace: Optional[torch.Tensor]) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """z (batch, time, features) -> (y (batch, time, outputs) before tanh, final trace)."""
        if self.rule is None or not self._plasticity:
            y = z @ self.readout_w + self.readout_b
            return y, None if self.rule is None else torch.zeros_like(trace)
        ys = []
        for t in range(z.shape[1]):
            zt = z[:, t]
            # z (W + alpha * trace) + b, in this order, as the numpy path computes it
            y = (zt.unsqueeze(1) @ (self.readout_w + self.rule.delta(trace))).squeeze(1) + self.readout_b
            m = self.rule.modulation(zt)
            trace = self.rule.update(trace, m, zt.unsqueeze(2) * torch.tanh(y).unsqueeze(1))
            ys.append(y)
        return torch.stack(ys, 1), trace


class LSMNet(LiquidNet):
    """A LiquidNet around an LSMCell. It normalises with the reciprocal of the std (as the
    numpy path does), so that both paths give the reservoir bit-identical inputs."""

    has_fixed_features = True  # the reservoir: training computes its output once (fixed_features)

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        x = (obs - self.obs_mean) * (1.0 / self.obs_std)
        if self.obs_clip is not None:
            x = torch.clamp(x, -self.obs_clip, self.obs_clip)
        return x

    def fixed_features(self, obs_seq: torch.Tensor, dt_seq: torch.Tensor) -> torch.Tensor:
        """The readout's inputs z (batch, time, features) over whole sequences from the
        reservoir's rest state: obs_seq (batch, time, inputs), dt_seq (batch, time) in s.
        The reservoir is fixed, so training computes them once rather than every epoch."""
        h = self.cell.initial_state(obs_seq.shape[0], obs_seq).h
        return self.cell.run_reservoir(self.normalize(obs_seq), dt_seq / self.time_unit, h)[0]

    def forward(self, obs_seq: torch.Tensor, dt_seq: Union[None, float, torch.Tensor] = None,
                state: Optional[tuple] = None, features: Optional[torch.Tensor] = None) -> tuple:
        """As LiquidNet.forward; with `features` (that chunk of `fixed_features`) only the
        readout runs, and h, which the features already account for, is passed through."""
        if features is None:
            return super().forward(obs_seq, dt_seq, state)
        h, trace = CellState(*(state if state is not None else self.initial_state(obs_seq.shape[0])))
        y, trace = self.cell.readout(features, trace)
        return self.action(y, obs_seq, acting=False), CellState(h, trace).tensors()


class NumpyLSMStep(NumpyStep):
    """The LSM's control step for one sample in numpy (what `act()` runs at batch 1).

    Per sub-step: one dense float32 vector-matrix product for the recurrent input (faster
    here than gathering the rows of the few neurons that spiked) and five element-wise
    calls, on buffers allocated once; the spikes of a control step land in the rows of one
    (refractory + K, N) array, so that the filtered rates are one product with the filter's
    weights at the end.
    """

    def __init__(self, cell: LSMCell):
        super().__init__(cell)
        self.trace_shape = (cell.features, cell.output_size)
        spec, n = cell.spec, cell.neurons
        self._n, self._nref, self._spec = n, spec.refractory_steps, spec
        self._ms_per_unit = cell.time_unit_s * 1000.0
        self._leak = np.float32(spec.leak)
        with torch.no_grad():  # the same float32 constants as the torch path
            gain = 1.0 - spec.leak
            self._drive_bias = _np(cell.reservoir_bias * gain)
            self._in_w = _np(cell.input_weight * gain)
            self._w = _np(cell.reservoir_weights)
            self._out_w, self._out_b = _np(cell.readout_w), _np(cell.readout_b)
        self._in_idx = cell.input_index.numpy().copy()
        self._gathered = np.zeros(self._in_w.shape, np.float32)
        self._v = np.zeros(n, np.float32)
        self._drive = np.zeros(n, np.float32)
        self._rec = np.zeros(n, np.float32)
        self._free = np.zeros(n, np.float32)
        self._hist = np.zeros((self._nref, n), np.float32)
        self._z = np.zeros(cell.features, np.float32)  # [r, x]
        self._r, self._x = self._z[:n], self._z[n:]
        self._filtered = np.zeros(n, np.float32)
        self._y = np.zeros(cell.output_size, np.float32)
        self._w_eff = self._out_w.copy()
        if self.plastic:
            self._init_rule(cell)
        self._set_dt(1.0)

    def _init_rule(self, cell: LSMCell) -> None:
        rule = _rule_arrays(cell.rule)
        per_sample = cell.rule.modulator_kind == "sample"
        self.trace = NumpyTrace([rule["eta"]], rule["decay"], cell.rule.h_max, per_sample)
        self._alpha = rule["alpha"]
        self._mod_w = np.repeat(rule["mod_w"], self.trace.m_copies, 1) if per_sample else rule["mod_w"]
        self._mod_b = np.repeat(rule["mod_b"], self.trace.m_copies) if per_sample else rule["mod_b"]
        self._m = np.zeros(self._mod_b.size, np.float32)
        self._post = np.zeros(cell.output_size, np.float32)
        self._z_col = self._z[:, None]
        self._post_row = self._post[None, :]

    def _set_dt(self, dt: float) -> None:
        k = max(self._spec.substeps(dt * self._ms_per_unit), 0)
        self._k = k
        self._spikes = np.zeros((self._nref + k, self._n), np.float32)  # [history, this step's spikes]
        decay = self._spec.rate_decay
        self._rate_decay_k = np.float32(decay ** k)
        self._rate_weights = (decay ** np.arange(k - 1, -1, -1)).astype(np.float32)  # spike j decays K-1-j sub-steps

    @property
    def spikes(self) -> np.ndarray:
        """The spikes of the last control step (K sub-steps, N neurons; 1 = spike), a view."""
        return self._spikes[self._nref:]

    def _step(self, x: np.ndarray) -> np.ndarray:
        np.copyto(self._x, x, casting="unsafe")
        self._run_reservoir()
        return self._readout()

    def _run_reservoir(self) -> None:
        dot, mul, add = np.dot, np.multiply, np.add
        v, drive, rec, free, spikes, w, leak, nref = (
            self._v, self._drive, self._rec, self._free, self._spikes, self._w, self._leak, self._nref)
        # I: the same element-wise sequence as LSMCell.input_drive
        np.take(self._x, self._in_idx, out=self._gathered)
        mul(self._gathered, self._in_w, self._gathered)
        add(self._drive_bias, self._gathered[0], drive)
        for k in range(1, self._gathered.shape[0]):
            add(drive, self._gathered[k], drive)
        spikes[:nref] = self._hist
        for row in range(nref, nref + self._k):
            dot(spikes[row - 1], w, rec)
            mul(v, leak, v)
            add(v, drive, v)
            add(v, rec, v)
            if nref == 1:
                np.subtract(1.0, spikes[row - 1], free)
            else:
                np.subtract(1.0, np.add.reduce(spikes[row - nref:row], 0), free)
            mul(v, free, v)
            np.greater_equal(v, THRESHOLD, out=spikes[row], casting="unsafe")
        self._hist[...] = spikes[self._k:]
        mul(self._r, self._rate_decay_k, self._r)
        if self._k:
            dot(self._rate_weights, spikes[nref:], self._filtered)
            add(self._r, self._filtered, self._r)

    def _readout(self) -> np.ndarray:
        y = np.dot(self._z, self._w_eff, self._y)
        y += self._out_b
        trace = self.trace
        if trace is not None:
            np.tanh(np.dot(self._z, self._mod_w, self._m) + self._mod_b, self._m)
            np.tanh(y, self._post)
            np.dot(self._z_col, self._post_row, trace.coactivity[0])
            trace.update(self._m)
            self._traces_changed()
        return y.copy()

    def _traces_changed(self) -> None:
        np.multiply(self._alpha, self.trace.values, self._w_eff)
        self._w_eff += self._out_w

    def _get_h(self) -> np.ndarray:
        return np.concatenate([self._v, self._r, self._hist.reshape(-1)])

    def _set_h(self, h: np.ndarray) -> None:
        n = self._n
        self._v[...] = h[:n]
        self._r[...] = h[n:2 * n]
        self._hist[...] = h[2 * n:].reshape(self._nref, n)
