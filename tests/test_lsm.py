"""The Liquid State Machine (policies/lsm.py): the reservoir's structure and firing, spikes
fixed by the seed, the numpy control path against the torch path over a real episode, bounded
traces over 10^6 steps of hostile input, the checkpoint round trip, export, the plasticity
switch, and a tiny training run through navctl.train."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from test_plasticity_stability import adversarial
from test_train import TINY, write_config

import policies
from envs.terrain_nav import TerrainNavEnv
from navctl.errors import UsageError
from navctl.expert import ExpertController
from navctl.policy_names import make_policy
from navctl.rollout import rollout
from policies.checkpoint import save_policy
from policies.fastpath import numpy_step
from policies.learned import PolicyConfig, build_policy
from policies.lsm import WEIGHT_QUANTUM, ReservoirSpec, build_reservoir

torch.set_num_threads(1)

SPEC = ReservoirSpec()  # the defaults, as configs/lsm.yaml uses them
MAX_RATE_HZ = 1000.0 / (SPEC.substep_ms * (1 + SPEC.refractory_steps))  # a spike, then refractory sub-steps
CONTROL_DT_S = 0.05
ACTION_TOL = 5e-5  # the readout sums 341 features (inputs up to the clip, 10): float32 rounding the traces carry


@pytest.fixture(scope="module")
def episode() -> np.ndarray:
    """The observations of a real episode: the expert on right-motor-fade (the right side weakens mid-run)."""
    env = TerrainNavEnv("right-motor-fade")
    traj = rollout(env, ExpertController(), seed=3, keep_observations=True)
    env.close()
    return np.asarray(traj.observations, np.float32)


def lsm(episode: np.ndarray, **config):
    """An untrained lsm policy normalising the observations as training would for `episode`."""
    policy = build_policy({"kind": "lsm", **config})
    with torch.no_grad():
        policy.net.obs_mean.copy_(torch.from_numpy(episode.mean(0)))
        policy.net.obs_std.copy_(torch.from_numpy(np.maximum(episode.std(0), 1e-2)))
    return policy


def normalised(policy, obs: np.ndarray) -> np.ndarray:
    return policy.net.normalize(torch.from_numpy(np.asarray(obs, np.float32))).numpy()


def spike_raster(policy, x: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Spikes (steps, K, N) of the reservoir driven by normalised inputs x (steps, inputs) on
    the batch-1 numpy path, and the lowest and highest membrane potential seen."""
    step = numpy_step(policy.cell)
    n = policy.cell.neurons
    raster, lo, hi = [], 0.0, 0.0
    for xt in x:
        step.step(xt, 1.0)
        raster.append(step.spikes.copy())
        v = step.state()[0][0, :n]
        lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
    return np.stack(raster), lo, hi


def test_reservoir_has_the_inhibitory_share_dales_law_and_the_distance_rule():
    res = build_reservoir(SPEC, 41)
    n, w = SPEC.size, res.weights
    assert n == 300 and w.shape == (n, n) and w.dtype == np.float32
    assert res.inhibitory.sum() == round(0.2 * n)
    # Dale's law: a neuron's outgoing weights (its row) all have its sign
    assert (w[~res.inhibitory] >= 0).all() and (w[res.inhibitory] <= 0).all()
    assert (w[~res.inhibitory] > 0).any(1).mean() > 0.9 and (w[res.inhibitory] < 0).any(1).mean() > 0.9
    assert np.all(np.diag(w) == 0)
    assert 0.01 < (w != 0).mean() < 0.1  # sparse
    # the distance rule: neighbours on the grid connect far more often than neurons 3 apart
    dist = np.sqrt(((res.positions[:, None] - res.positions[None]) ** 2).sum(-1))
    near, far = (w != 0)[dist == 1].mean(), (w != 0)[dist == 3].mean()
    assert near > 4 * far > 0
    assert np.array_equal(w / WEIGHT_QUANTUM, np.round(w / WEIGHT_QUANTUM))  # exact sums in float32
    assert res.input_index.shape == (SPEC.input_fanin, n) and 0 <= res.input_index.min() <= res.input_index.max() < 41


def test_firing_rates_bounded_under_typical_and_hostile_input(episode):
    policy = lsm(episode)
    raster, lo, hi = spike_raster(policy, normalised(policy, episode))
    rates = raster.sum((0, 1)) / (len(episode) * CONTROL_DT_S)  # Hz per neuron
    assert 5.0 < rates.mean() < 40.0, rates.mean()  # neither silent nor saturated
    assert (rates == 0).mean() < 0.2 and (rates > 0.8 * MAX_RATE_HZ).mean() < 0.05
    assert -20 < lo and hi < 5
    rng = np.random.default_rng(0)
    steps = 300
    hostile = {  # raw observations far outside the data; the policy clips them to +-obs_clip
        "random signs": np.sign(rng.standard_normal((steps, 41))) * 1e6,
        "all +1e6": np.full((steps, 41), 1e6),
        "all -1e6": np.full((steps, 41), -1e6),
        "flipping": 1e6 * (-1.0) ** np.arange(steps)[:, None] * np.ones((steps, 41)),
    }
    for name, obs in hostile.items():
        raster, lo, hi = spike_raster(policy, normalised(policy, obs))
        rates = raster.sum((0, 1)) / (steps * CONTROL_DT_S)
        assert rates.max() <= MAX_RATE_HZ, name  # the refractory period bounds every neuron
        assert rates.mean() < 0.6 * MAX_RATE_HZ, name
        assert -50 < lo and hi < 10, (name, lo, hi)


def test_spikes_are_deterministic_per_seed(episode):
    x = normalised(lsm(episode), episode[:100])

    def raster(**config) -> np.ndarray:
        return spike_raster(lsm(episode, **config), x)[0]

    a = raster(lsm_seed=7, seed=0)
    assert a.sum() > 0
    assert np.array_equal(a, raster(lsm_seed=7, seed=0))
    assert np.array_equal(a, raster(lsm_seed=7, seed=3))  # the torch seed draws the readout only
    assert not np.array_equal(a, raster(lsm_seed=8, seed=0))
    assert not torch.equal(build_policy({"kind": "lsm", "lsm_seed": 8}).cell.reservoir_weights,
                           build_policy({"kind": "lsm"}).cell.reservoir_weights)


@pytest.mark.parametrize("modulator", ["sample", "neuron"])
def test_numpy_path_equals_torch_path_over_an_episode(episode, modulator):
    """act() at batch 1 (numpy) and at batch 2 (torch): the same spikes bit for bit, the same
    actions to float rounding; and train_forward over the whole episode gives those actions."""
    single, batched = (lsm(episode, modulator=modulator, alpha_init=0.05) for _ in range(2))
    n = single.cell.neurons
    single.reset(1)
    batched.reset(2)
    actions = []
    for obs in episode:
        a, b = single.act(obs), batched.act(np.stack([obs, obs]))
        np.testing.assert_allclose(a, b[0], atol=ACTION_TOL, rtol=0)
        (h1, trace1), (h2, trace2) = single.state, batched.state
        assert torch.equal(h1[0, :n], h2[0, :n]) and torch.equal(h1[0, 2 * n:], h2[0, 2 * n:])  # v, last spikes
        actions.append(a)
    assert trace1.abs().max() > 0.1
    with torch.no_grad():
        y, _ = single.train_forward(torch.from_numpy(episode)[None])
    np.testing.assert_allclose(y[0].numpy(), np.array(actions), atol=ACTION_TOL, rtol=0)


def test_training_on_the_reservoir_features_computed_once_equals_running_the_reservoir(episode):
    """fit() computes the fixed reservoir's features once per sequence (navctl.train.fixed_features);
    the readout then gives what the full network gives chunk by chunk, state carried."""
    from navctl.train import fixed_features

    policy = lsm(episode, modulator="neuron", alpha_init=0.5)
    seqs = [(episode, np.zeros((len(episode), 2), np.float32), np.zeros(len(episode), bool)),
            (episode[:150], np.zeros((150, 2), np.float32), np.zeros(150, bool))]
    feats = fixed_features(policy, seqs, batch_size=2)
    assert [f.shape for f in feats] == [(len(episode), policy.cell.features), (150, policy.cell.features)]
    obs, dt = torch.from_numpy(episode)[None], torch.full((1, 50), CONTROL_DT_S)
    full = cached = None
    with torch.no_grad():
        for t0 in (0, 50, 100):
            y_full, full = policy.train_forward(obs[:, t0:t0 + 50], dt, full)
            y_cached, cached = policy.train_forward(obs[:, t0:t0 + 50], dt, cached,
                                                    features=torch.from_numpy(feats[0][None, t0:t0 + 50]))
            np.testing.assert_allclose(y_cached.numpy(), y_full.numpy(), atol=ACTION_TOL, rtol=0)
            np.testing.assert_allclose(cached[1].numpy(), full[1].numpy(), atol=ACTION_TOL, rtol=0)  # traces
    np.testing.assert_array_equal(feats[1], feats[0][:150])  # a sequence's features do not depend on its batch


def test_per_sample_dt_runs_each_sample_its_own_sub_steps(episode):
    dts = (0.05, 0.08)  # 10 and 16 sub-steps
    batched = lsm(episode)
    singles = [lsm(episode) for _ in dts]
    batched.reset(2)
    for p in singles:
        p.reset(1)
    n = batched.cell.neurons
    for obs in episode[:60]:
        b = batched.act(np.stack([obs, obs]), dt=np.array(dts))
        for k, (p, dt) in enumerate(zip(singles, dts)):
            np.testing.assert_allclose(p.act(obs, dt=dt), b[k], atol=ACTION_TOL, rtol=0)
            assert torch.equal(p.state[0][0, :n], batched.state[0][k, :n])
    assert not np.allclose(singles[0].act(episode[60]), singles[1].act(episode[60], dt=0.08))


def test_readout_traces_bounded_over_a_million_steps_of_hostile_input():
    """10^6 sample-steps (1000 x 1000, batched) of the plastic readout under the adversarial
    rule, fed the extremes of what it can see: rates from 0 to a spike every sub-step and
    inputs at the clip. The spikes are inputs to the rule, so this covers every reservoir."""
    h_max = 0.75
    policy = build_policy({"kind": "lsm", "h_max": h_max, "modulator": "neuron"})
    cell = policy.cell
    adversarial(cell.rule)
    r_max, clip, n = 1.0 / (1.0 - SPEC.rate_decay), policy.config.obs_clip, cell.neurons
    gen = torch.Generator().manual_seed(1)
    batch, steps = 1000, 1000
    trace = cell.rule.zero_trace(batch, cell.readout_w)
    reached = 0.0
    q = batch // 4
    with torch.no_grad():
        for t in range(steps):
            z = torch.rand(batch, cell.features, generator=gen)
            z[:, :n] *= r_max
            z[:, n:] = (z[:, n:] * 2 - 1) * clip
            z[q:2 * q, :n] = torch.randint(0, 2, (q, n), generator=gen) * r_max  # rates at 0 or the maximum
            z[q:2 * q, n:] = torch.sign(torch.randn(q, cell.features - n, generator=gen)) * clip
            z[2 * q:3 * q] = torch.cat([torch.full((n,), r_max), torch.full((cell.features - n,), clip)])
            z[3 * q:, n:] = (-1.0) ** t * clip
            y, trace = cell.readout(z[:, None], trace)
            if t % 100 == 99:
                assert torch.isfinite(y).all() and torch.isfinite(trace).all(), f"step {t}"
                assert trace.abs().max() <= h_max, f"step {t}"
                reached = max(reached, float(trace.abs().max()))
    assert reached == pytest.approx(h_max)  # the adversary does drive the traces to the bound


def test_traces_bounded_at_deployment_under_hostile_observations():
    """The batch-1 numpy path behind act(), the whole reservoir included, with the adversarial rule."""
    policy = build_policy({"kind": "lsm", "h_max": 0.75})
    adversarial(policy.cell.rule)
    policy.reset(1)
    rng = np.random.default_rng(2)
    steps = 6000
    obs = rng.standard_normal((steps, 41)).astype(np.float32)
    obs[steps // 3:2 * steps // 3] = np.sign(obs[steps // 3:2 * steps // 3]) * 1e6
    obs[2 * steps // 3:] = 1e6 * (-1.0) ** np.arange(steps - 2 * steps // 3)[:, None]
    for t in range(steps):
        action = policy.act(obs[t])
        if t % 500 == 499:
            h, trace = policy.state
            assert np.isfinite(action).all() and torch.isfinite(h).all(), f"step {t}"
            assert trace.abs().max() <= 0.75
    assert float(policy.state[1].abs().max()) == pytest.approx(0.75)


@pytest.mark.parametrize("lifelong", [False, True])
def test_checkpoint_round_trip_gives_bit_identical_actions(episode, tmp_path, lifelong):
    policy = lsm(episode, modulator="neuron", lifelong=lifelong, lsm_seed=11)
    policy.reset(1)
    for obs in episode[:100]:  # traces built: a lifelong policy carries them into the file
        policy.act(obs)
    loaded = policies.load(save_policy(policy, tmp_path / "lsm.safetensors"))
    assert loaded.config == policy.config and loaded.num_parameters == policy.num_parameters
    assert torch.equal(loaded.cell.reservoir_weights, policy.cell.reservoir_weights)
    policy.reset(1)
    loaded.reset(1)
    if lifelong:
        assert loaded.state[1].abs().max() > 0
    for obs in episode:
        assert np.array_equal(loaded.act(obs), policy.act(obs))


def test_the_reservoir_is_read_from_the_file_not_redrawn(episode, tmp_path):
    policy = lsm(episode)
    with torch.no_grad():  # a file written by another generator: its weights are what counts
        policy.cell.reservoir_weights.mul_(0.5)
    loaded = policies.load(save_policy(policy, tmp_path / "lsm.safetensors"))
    assert torch.equal(loaded.cell.reservoir_weights, policy.cell.reservoir_weights)


def test_plasticity_off_freezes_the_readout_traces(episode):
    policy = lsm(episode, modulator="neuron")
    assert policy.plasticity
    policy.reset(1)
    for obs in episode[:50]:
        policy.act(obs)
    assert policy.state[1].abs().max() > 0
    policy.plasticity = False
    assert torch.count_nonzero(policy.state[1]) == 0
    for obs in episode[50:100]:
        policy.act(obs)
    assert torch.count_nonzero(policy.state[1]) == 0
    # `lsm-frozen` is the shipped lsm with its traces frozen (a clear error while none is shipped)
    if (policies.CHECKPOINT_DIR / "lsm.safetensors").is_file():
        assert not make_policy("lsm-frozen").plasticity
    else:
        with pytest.raises(UsageError, match="lsm.*missing"):
            make_policy("lsm-frozen")


def test_bad_reservoir_settings_name_the_field():
    for field, value, message in [("lsm_grid", (0, 3, 3), "lsm_grid"), ("lsm_inhibitory", 1.5, "lsm_inhibitory"),
                                  ("lsm_substep_ms", 0.0, "lsm_substep_ms"), ("lsm_bias", (1.0, 0.5), "lsm_bias")]:
        with pytest.raises(ValueError, match=message):
            PolicyConfig(kind="lsm", **{field: value})


def test_onnx_export_matches_act_over_an_episode(episode, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from policies.export import export_onnx, io_names

    policy = lsm(episode, modulator="neuron")
    options = ort.SessionOptions()
    # onnxruntime's graph optimisations fold the constants in another order (v off by ~1e-8,
    # which may move a spike at the threshold); without them the step is the same arithmetic
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(export_onnx(policy, tmp_path / "lsm.onnx")), options,
                                   providers=["CPUExecutionProvider"])
    inputs, outputs = io_names(policy)
    feeds = [i.name for i in session.get_inputs()]
    assert feeds == ["obs", "h", "trace"]  # the sub-steps are fixed at export: dt is not an input
    assert [o.name for o in session.get_outputs()] == outputs
    state = [t.numpy() for t in policy.net.initial_state(1)]
    n = policy.cell.neurons
    policy.reset(1)
    for obs in episode:
        action, *state = session.run(None, dict(zip(feeds, [obs[None], *state])))
        np.testing.assert_allclose(action[0], policy.act(obs), atol=ACTION_TOL, rtol=0)
        h = policy.state[0][0].numpy()
        assert np.array_equal(state[0][0, :n], h[:n]) and np.array_equal(state[0][0, 2 * n:], h[2 * n:])  # v, spikes


@pytest.mark.slow
def test_tiny_training_improves_closed_loop_success(tmp_path):
    from navctl.backends import Executor
    from navctl.train import _validation_tasks, run_episodes, train
    from navctl.train_config import load_config

    config = write_config(tmp_path, dict(TINY, name="tiny-lsm", policy={"kind": "lsm", "modulator": "neuron",
                                                                        "alpha_init": 0.05}))
    cfg = load_config(config)
    with Executor(workers=1) as executor:
        before = np.mean([t.success for t in run_episodes(executor, _validation_tasks(cfg, policies.build(cfg.policy)))])
    card = train(str(config), out=str(tmp_path / "run"), show_progress=False)
    assert card["validation"]["success_rate"] > before
    assert card["num_parameters"] == policies.load(tmp_path / "run" / "model.safetensors").num_parameters
