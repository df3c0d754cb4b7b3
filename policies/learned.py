"""Learned policies: a config, the constructor `build_policy`, and `LearnedPolicy`, the
stateful numpy-in numpy-out controller that wraps a torch network.

Kinds (same observation and action interface, sizes chosen for similar parameter counts;
`parameter_table()` lists them):
    liquid      plastic CfC on an NCP wiring          (the project's controller)
    liquid-ltc  plastic LTC on an NCP wiring
    cfc, ltc    the same cells without plasticity     (ablations)
    lsm         Liquid State Machine: a fixed random spiking reservoir, plastic readout (policies/lsm.py)
    lstm, gru   one recurrent layer + linear head     (baselines)
    mlp         memoryless perceptron                 (baseline)

A policy whose config has a `base` corrects the classical controller (policies/classical.py)
instead of driving alone: each step the classical controller acts on the observation, the
network sees the observation and that action, and its output is a residual added to it
(policies/networks.py, RESIDUAL_SCALE). The config stores what the classical controller knows
of the robot, so a checkpoint is self-contained.

A policy whose config has `progress_inputs` also feeds its network the progress features
(policies/progress.py): how long the observation's goal distance has gone without progress,
the escape teacher's clock. act() keeps them step by step (reset by `reset()`), training
computes them over whole episodes (`network_inputs`); the network's inputs are then
[observation, features, base action if any].

At batch 1 a liquid policy (and the LSM) acts through the cell's numpy fast path (policies/fastpath.py), which
takes a snapshot of the weights at every `reset()` (and after `train_forward`); other batch
sizes, and per-sample dt, run the torch network under inference mode. Both give the same
actions (tested to 1e-5; the LSM's to 5e-5 over a real episode, its spikes bit for bit).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

from policies.base import ACT_DIM, GOAL_DISTANCE, OBS_DIM, Policy
from policies.cfc import CfCCell
from policies.classical import ClassicalConfig, ClassicalController, Robot
from policies.fastpath import NumpyStep, _clip, numpy_step
from policies.lsm import LSMCell, LSMNet, ReservoirSpec
from policies.ltc import LTCCell
from policies.networks import RESIDUAL_SCALE, LiquidNet, MLPNet, PolicyNet, RecurrentNet, State
from policies.plasticity import RuleSpec
from policies.progress import NUM_FEATURES, ProgressTracker, progress_features
from policies.wiring import Wiring, build_wiring

# kind -> (cell, plastic) for the liquid kinds
LIQUID_KINDS = {"liquid": ("cfc", True), "liquid-ltc": ("ltc", True), "cfc": ("cfc", False), "ltc": ("ltc", False)}
PLASTIC_KINDS = ("liquid", "liquid-ltc", "lsm")
KINDS = (*LIQUID_KINDS, "lsm", "lstm", "gru", "mlp")
# baseline widths giving parameter counts close to the non-plastic CfC's (parameter_table())
DEFAULT_HIDDEN = {"lstm": 22, "gru": 26}


@dataclass(frozen=True)
class PolicyConfig:
    """Everything needed to rebuild a learned policy (stored in its checkpoint)."""

    kind: str = "liquid"
    obs_dim: int = OBS_DIM
    act_dim: int = ACT_DIM
    dt: float = 0.05  # s: control period act() assumes unless told
    time_unit: float = 0.05  # s per time unit of the liquid cells (they see dt / time_unit)
    obs_clip: Optional[float] = 10.0  # bound on the normalised observation, in standard deviations
    # liquid kinds
    units: int = 32  # neurons, motor neurons included (= act_dim)
    wiring: str = "ncp"  # "ncp" or "fully_connected"
    sparsity: float = 0.5
    wiring_seed: int = 22222
    modulator: str = "sample"  # neuromodulator: one per sample, or one per neuron ("neuron")
    h_max: float = 1.0  # bound on the Hebbian traces
    alpha_init: float = 0.1  # the plastic gains alpha start uniform in [-alpha_init, alpha_init]
    lifelong: bool = False  # keep the traces across reset() (episodes)
    ode_unfolds: int = 6  # LTC solver steps per control step
    # lsm (policies/lsm.py, ReservoirSpec documents each): the reservoir, fixed from lsm_seed
    lsm_grid: tuple[int, ...] = ReservoirSpec.grid
    lsm_inhibitory: float = ReservoirSpec.inhibitory
    lsm_connection_lambda: float = ReservoirSpec.connection_lambda
    lsm_weight_scale: float = ReservoirSpec.weight_scale
    lsm_input_fanin: int = ReservoirSpec.input_fanin
    lsm_input_scale: float = ReservoirSpec.input_scale
    lsm_bias: tuple[float, ...] = ReservoirSpec.bias
    lsm_tau_m_ms: float = ReservoirSpec.tau_m_ms
    lsm_substep_ms: float = ReservoirSpec.substep_ms
    lsm_refractory_ms: float = ReservoirSpec.refractory_ms
    lsm_rate_tau_ms: float = ReservoirSpec.rate_tau_ms
    lsm_seed: int = ReservoirSpec.seed
    # baselines
    hidden: int = 0  # LSTM/GRU width; 0 = the kind's default
    mlp_hidden: tuple[int, ...] = (56, 56)
    seed: int = 0  # torch seed for the initial weights
    # the classical controller this network corrects: its Robot (policies.classical) as a
    # dict, which navctl fills in from envs for `base: classical`; None: the network drives alone
    base: Optional[dict[str, Any]] = None
    base_escape: bool = False  # the base is `classical-escape` (ClassicalConfig.escape)
    # add the progress features (policies/progress.py: the escape teacher's stall clock, from
    # the observation's goal distance) to the network's inputs, after the observation
    progress_inputs: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown policy kind {self.kind!r}; known: {', '.join(KINDS)}")
        if self.base is not None:
            if not isinstance(self.base, dict):
                raise ValueError(f"base must be the classical controller's robot description (a mapping), got {self.base!r}")
            Robot.from_dict(self.base)
        object.__setattr__(self, "mlp_hidden", tuple(int(v) for v in self.mlp_hidden))
        object.__setattr__(self, "lsm_grid", tuple(int(v) for v in self.lsm_grid))
        object.__setattr__(self, "lsm_bias", tuple(float(v) for v in self.lsm_bias))
        if self.kind == "lsm":
            self.reservoir_spec()  # validates the lsm_ fields
        for name in ("progress_inputs", "base_escape"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.base_escape and self.base is None:
            raise ValueError("base_escape needs a base")
        for name in ("dt", "time_unit", "h_max"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PolicyConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown policy config keys {unknown}; known: {sorted(known)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for name in ("mlp_hidden", "lsm_grid", "lsm_bias"):
            data[name] = list(data[name])
        return data

    def reservoir_spec(self) -> ReservoirSpec:
        """The LSM reservoir's settings: the lsm_ fields."""
        prefix = "lsm_"
        return ReservoirSpec(**{f.name[len(prefix):]: getattr(self, f.name)
                                for f in dataclasses.fields(self) if f.name.startswith(prefix)})

    @property
    def input_dim(self) -> int:
        """The network's inputs: the observation, the progress features if on, then the base
        controller's action if any (a residual network reads it as its last act_dim inputs)."""
        return (self.obs_dim + (NUM_FEATURES if self.progress_inputs else 0)
                + (self.act_dim if self.base is not None else 0))

    @property
    def goal_distance_index(self) -> int:
        """Where the goal distance (m) is in the observation: the base robot's layout, else the env's default."""
        if self.base is None:
            return GOAL_DISTANCE
        return Robot.from_dict(self.base).obs_layout["goal_distance"].start

    def make_base(self) -> Optional[ClassicalController]:
        """A fresh base controller, or None."""
        if self.base is None:
            return None
        return ClassicalController(Robot.from_dict(self.base), ClassicalConfig(escape=self.base_escape))

    @property
    def hidden_size(self) -> int:
        return self.hidden or DEFAULT_HIDDEN.get(self.kind, 0)

    def make_wiring(self) -> Wiring:
        return build_wiring(self.wiring, self.input_dim, self.units, self.act_dim, self.sparsity, self.wiring_seed)


def build_network(config: PolicyConfig, wiring: Optional[Wiring] = None) -> PolicyNet:
    """A fresh network for `config` (the given wiring, or the config's)."""
    residual = config.base is not None
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        if config.kind in LIQUID_KINDS:
            cell_kind, plastic = LIQUID_KINDS[config.kind]
            wiring = wiring or config.make_wiring()
            if (wiring.input_dim, wiring.output_dim) != (config.input_dim, config.act_dim):
                raise ValueError(
                    f"wiring has {wiring.input_dim} inputs and {wiring.output_dim} outputs, "
                    f"config wants {config.input_dim} and {config.act_dim}"
                )
            rule = RuleSpec(config.modulator, config.h_max, config.alpha_init) if plastic else None
            common = dict(rule=rule, output_mapping="affine")
            if cell_kind == "cfc":
                cell = CfCCell(wiring, **common)
            else:
                cell = LTCCell(wiring, ode_unfolds=config.ode_unfolds, **common)
            return LiquidNet(cell, config.time_unit, config.obs_clip, residual)
        if config.kind == "lsm":
            rule = RuleSpec(config.modulator, config.h_max, config.alpha_init)
            cell = LSMCell(config.reservoir_spec(), config.input_dim, config.act_dim, config.time_unit, rule)
            return LSMNet(cell, config.time_unit, config.obs_clip, residual)
        if config.kind in ("lstm", "gru"):
            return RecurrentNet(config.kind, config.input_dim, config.act_dim, config.hidden_size, config.obs_clip, residual)
        return MLPNet(config.input_dim, config.act_dim, config.mlp_hidden, config.obs_clip, residual)


def build_policy(config: Union[PolicyConfig, dict[str, Any], None] = None, wiring: Optional[Wiring] = None) -> "LearnedPolicy":
    """An untrained policy from a config (a PolicyConfig or a dict of its fields)."""
    if config is None:
        config = PolicyConfig()
    elif isinstance(config, dict):
        config = PolicyConfig.from_dict(config)
    return LearnedPolicy(build_network(config, wiring), config)


class LearnedPolicy(Policy):
    """A torch network driven as a Policy: `reset(batch)`, then `act(obs)` each control step."""

    def __init__(self, net: PolicyNet, config: PolicyConfig):
        self.net = net
        self.config = config
        self.name = config.kind
        self._batch = 0
        self._stored_trace: Optional[torch.Tensor] = None  # lifelong traces read from a checkpoint
        self._state: State = ()
        self._fast: Optional[NumpyStep] = None  # the numpy stepper, when acting at batch 1
        self._stale = True  # the stepper's weight snapshot needs rebuilding
        self._fast_norm: tuple = ()  # observation normalisation as numpy arrays, for the stepper
        self.base = config.make_base()  # the controller the network corrects, or None
        self._progress = ProgressTracker() if config.progress_inputs else None  # the progress features' clocks
        self._goal_index = config.goal_distance_index
        self._obs_buf = np.zeros(config.input_dim, np.float32)
        self._flat_shape = (config.input_dim,)
        self._cell_dt = config.dt / config.time_unit  # act()'s default dt in the cells' time unit

    # -- properties ----------------------------------------------------------------------
    @property
    def cell(self):
        return self.net.cell if isinstance(self.net, LiquidNet) else None

    @property
    def plasticity(self) -> bool:
        return self.cell is not None and self.cell.plastic and self.cell.plasticity

    @plasticity.setter
    def plasticity(self, on: bool) -> None:
        if self.cell is None or not self.cell.plastic:
            if on:
                raise ValueError(f"policy {self.name!r} has no plastic synapses")
            return
        state = self.state if self._batch else None
        self.cell.plasticity = on
        self._stale = True
        if state is not None:  # same neuron state; traces frozen at zero when off
            self.set_state((state[0], torch.zeros_like(state[1])))

    @property
    def lifelong(self) -> bool:
        return self.config.lifelong

    @property
    def lifelong_trace(self) -> Optional[torch.Tensor]:
        """The traces a lifelong plastic policy carries into its next episode (batch,
        *trace_shape), or None (not lifelong, plasticity off, or nothing adapted yet). Saved with
        the checkpoint, so a restarted robot keeps what it adapted to."""
        if not (self.config.lifelong and self.plasticity):
            return None
        return self.state[1] if self._batch else self._stored_trace

    @lifelong_trace.setter
    def lifelong_trace(self, trace: torch.Tensor) -> None:
        """Traces (batch, *trace_shape) that the next `reset` with that batch size starts from."""
        if not (self.config.lifelong and self.plasticity):
            raise ValueError(f"policy {self.name!r} is not a lifelong plastic policy")
        shape = self.trace_shape
        if trace.dim() != 3 or tuple(trace.shape[1:]) != shape:
            raise ValueError(f"lifelong trace must have shape (batch, {shape[0]}, {shape[1]}), got {tuple(trace.shape)}")
        self._stored_trace = trace.detach().clone()
        self._batch, self._fast = 0, None  # the next act() or reset() starts from it

    @property
    def trace_shape(self) -> Optional[tuple[int, int]]:
        """(pre, post) of the plastic traces of one sample: (units, units) for the liquid
        cells, (features, actions) for the LSM's readout; None without plastic synapses."""
        return None if self.cell is None or self.cell.rule is None else tuple(self.cell.rule.shape)

    @property
    def num_parameters(self) -> int:
        """Trainable parameters that act on the output (masked-out synapses not counted)."""
        if self.cell is not None:
            return self.cell.count_parameters()
        return sum(p.numel() for p in self.net.parameters() if p.requires_grad)

    @property
    def state(self) -> State:
        """The recurrent state as torch tensors (batch first), named by `net.state_names()`:
        ("h",) / ("h", "trace") / ("h", "c") / ()."""
        if self._fast is not None:
            return tuple(torch.from_numpy(a) for a in self._fast.state())
        return tuple(t.clone() for t in self._state)

    def set_state(self, state: Sequence[torch.Tensor]) -> None:
        if self._fast is not None:
            self._fast.set_state(tuple(np.asarray(t.detach().cpu(), np.float32) for t in state))
        else:
            self._state = tuple(t.detach().clone() for t in state)

    # -- acting ----------------------------------------------------------------------------
    def reset(self, batch_size: int = 1) -> None:
        """Start an episode: zero neuron states; zero traces unless the policy is lifelong."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        keep = self.lifelong_trace
        if keep is not None and keep.shape[0] != batch_size:
            keep = None  # per-sample traces do not carry over to another batch size
        self._stored_trace = None
        self._batch = batch_size
        if self.base is not None:
            self.base.reset(batch_size)
        if self._progress is not None:
            self._progress.reset(batch_size)
        if batch_size == 1 and isinstance(self.net, LiquidNet):
            # a fresh snapshot of the weights every episode (~0.3 ms), so that changes made
            # to the network between episodes are always seen
            self._fast = numpy_step(self.cell)
            self._fast_norm = _numpy_normalizer(self.net)
            self._stale = False
        else:
            self._fast = None
            with torch.no_grad():
                self._state = self.net.initial_state(batch_size)
        if keep is not None:
            state = self.state
            self.set_state((state[0], keep))

    def refresh(self) -> None:
        """Take a new snapshot of the weights for the numpy path, keeping the state."""
        if self._fast is not None:
            state = self.state
            self._fast = numpy_step(self.cell)
            self._fast.set_state(tuple(t.numpy() for t in state))
            self._fast_norm = _numpy_normalizer(self.net)
        self._stale = False

    def act(self, obs: np.ndarray, info: Any = None, dt: Union[None, float, np.ndarray] = None) -> np.ndarray:
        """obs (obs_dim,) or (batch, obs_dim) -> action of the same leading shape, in [-1, 1].

        dt: elapsed time since the previous step in seconds (a number, or one per sample);
        the config's control period by default.
        """
        if self.base is None and self._progress is None:
            return self._act_network(obs, dt)
        obs = np.asarray(obs, dtype=np.float32)
        if obs.shape[-1:] != (self.config.obs_dim,) or obs.ndim > 2:
            raise ValueError(f"obs must have shape ({self.config.obs_dim},) or (batch, {self.config.obs_dim}), got {obs.shape}")
        parts = [obs]
        if self._progress is not None:
            parts.append(self._progress_step(obs, dt))
        if self.base is not None:
            parts.append(self.base.act(obs))
        return self._act_network(np.concatenate(parts, axis=-1), dt)

    def _progress_step(self, obs: np.ndarray, dt: Union[None, float, np.ndarray]) -> np.ndarray:
        """This step's progress features, (NUM_FEATURES,) or (batch, NUM_FEATURES) like obs."""
        if obs.ndim == 1 and self._batch == 1 and (dt is None or np.size(dt) == 1):  # the common case, kept short
            return self._progress.step_one(obs[self._goal_index], self.config.dt if dt is None else np.reshape(dt, -1)[0])
        batch = 1 if obs.ndim == 1 else obs.shape[0]
        self._check_batch(batch)
        features = self._progress.step(obs.reshape(batch, -1)[:, self._goal_index], self.config.dt if dt is None else dt)
        return features[0] if obs.ndim == 1 else features

    def _check_batch(self, batch: int) -> None:
        """Resets for `batch` when act() comes first; otherwise the batch must be the reset one."""
        if self._batch == 0:
            self.reset(batch)
        elif batch != self._batch:
            raise ValueError(f"obs has batch {batch} but the policy was reset for batch {self._batch}")

    def network_inputs(self, obs: np.ndarray) -> np.ndarray:
        """An episode's observations (T, obs_dim) as the network sees them (T, input_dim): each
        followed by its progress features (computed over the whole episode, the config's dt
        per step) when on, then by the action a fresh base controller takes on it when it has one."""
        parts = [obs]
        if self._progress is not None:
            parts.append(progress_features(obs[:, self._goal_index], self.config.dt).astype(obs.dtype))
        if self.base is not None:
            base = self.config.make_base()
            base.reset(1)
            parts.append(np.stack([base.act(o) for o in obs]).astype(obs.dtype))
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def _act_network(self, obs: np.ndarray, dt: Union[None, float, np.ndarray]) -> np.ndarray:
        """act() on the network's inputs (laid out as `network_inputs` lays out an episode)."""
        if dt is None and self._fast is not None and not self._stale and getattr(obs, "shape", None) == self._flat_shape:
            return self._act_fast(obs, self._cell_dt)  # the common case, kept short
        obs = np.asarray(obs)
        batch = 1 if obs.ndim == 1 else obs.shape[0]
        if obs.shape[-1] != self.config.input_dim or obs.ndim > 2:
            raise ValueError(f"obs must have shape ({self.config.input_dim},) or (batch, {self.config.input_dim}), got {obs.shape}")
        self._check_batch(batch)
        dt = self.config.dt if dt is None else dt
        if self._fast is not None and np.size(dt) == 1:
            if self._stale:
                self.refresh()
            action = self._act_fast(obs.reshape(-1), float(np.reshape(dt, -1)[0]) / self.net.time_unit)
            return action if obs.ndim == 1 else action[None]
        with torch.inference_mode():
            obs_t = torch.as_tensor(obs, dtype=torch.float32).reshape(batch, -1)
            dt_t = torch.as_tensor(np.broadcast_to(np.asarray(dt, np.float32), (batch,)).copy())
            action, self._state = self.net.step(obs_t, dt_t, self._state)
        action = action.numpy()
        return action[0] if obs.ndim == 1 else action

    def _act_fast(self, obs: np.ndarray, cell_dt: float) -> np.ndarray:
        """The numpy path: normalise, one cell step (dt in the cell's unit), tanh (added to
        the base action, the inputs' last two, when residual)."""
        mean, inv_std, lo, hi = self._fast_norm
        x = self._obs_buf
        np.subtract(obs, mean, x)
        np.multiply(x, inv_std, x)
        if lo is not None:
            _clip(x, lo, hi, x)
        action = np.tanh(self._fast.step(x, cell_dt))
        if self.base is None:
            return action
        return _clip(obs[-self.config.act_dim:] + RESIDUAL_SCALE * action, -1.0, 1.0)

    # -- training --------------------------------------------------------------------------
    def initial_state(self, batch_size: int = 1) -> State:
        return self.net.initial_state(batch_size)

    def train_forward(
        self, obs_seq: torch.Tensor, dt_seq: Union[None, float, torch.Tensor] = None, state: Optional[State] = None,
        features: Optional[torch.Tensor] = None,
    ) -> tuple[torch.Tensor, State]:
        """Differentiable rollout: obs_seq (batch, time, input_dim) (see `network_inputs`), dt_seq seconds (number or
        (batch, time); default the config's dt), state (default zeros) -> (actions, state).
        `features`: the same steps of `net.fixed_features` when the net has them (the LSM).

        Gradients flow through the neuron states and the plastic traces (BPTT). The numpy
        fast path re-reads the weights at the next act() after this call.
        """
        self._stale = True
        dt = self.config.dt if dt_seq is None else dt_seq
        if features is not None:
            return self.net(obs_seq, dt, state, features=features)
        return self.net(obs_seq, dt, state)

    def __repr__(self) -> str:
        return f"LearnedPolicy({self.name}, {self.num_parameters} parameters)"


def _numpy_normalizer(net: PolicyNet) -> tuple:
    mean = net.obs_mean.detach().cpu().numpy().astype(np.float32)
    inv_std = (1.0 / net.obs_std.detach().cpu()).numpy().astype(np.float32)
    if net.obs_clip is None:
        return mean, inv_std, None, None
    return mean, inv_std, np.array(-net.obs_clip, np.float32), np.array(net.obs_clip, np.float32)


def parameter_table(config: Optional[dict[str, Any]] = None) -> list[tuple[str, int]]:
    """(kind, parameter count) of every kind with the default sizes (and `config` overrides)."""
    rows = []
    for kind in KINDS:
        rows.append((kind, build_policy({**(config or {}), "kind": kind}).num_parameters))
    return rows
