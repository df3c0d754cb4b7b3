"""Learned policies: numpy in/out for every kind, fast path = torch path, lifelong traces,
the plasticity switch, parameter counts, training forward, loading by name."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import policies
from policies.checkpoint import save_policy
from policies.learned import KINDS, LIQUID_KINDS, PolicyConfig, build_policy, parameter_table

torch.set_num_threads(1)


def randomize_normalisation(policy, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        policy.net.obs_mean.copy_(torch.randn(policy.config.obs_dim, generator=g))
        policy.net.obs_std.copy_(torch.rand(policy.config.obs_dim, generator=g) * 3 + 0.2)


def observations(steps: int, batch: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((steps, batch, 41)).astype(np.float32) * 3
    obs[steps // 2:, :, :5] *= 100  # some far outside the normalisation: exercises obs_clip
    return obs


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_acts_numpy_in_numpy_out(kind):
    policy = policies.build({"kind": kind})
    assert isinstance(policy, policies.Policy) and policy.name == kind
    obs = observations(5, 4)
    policy.reset(1)
    for t in range(5):
        a = policy.act(obs[t, 0])
        assert isinstance(a, np.ndarray) and a.shape == (2,) and np.all(np.abs(a) <= 1)
    assert policy.act(obs[0, :1]).shape == (1, 2)  # (1, obs_dim) in -> (1, act_dim) out
    policy.reset(4)
    for t in range(5):
        a = policy.act(obs[t])
        assert isinstance(a, np.ndarray) and a.shape == (4, 2) and np.all(np.abs(a) <= 1)
    with pytest.raises(ValueError, match="batch"):
        policy.act(obs[0, :2])
    with pytest.raises(ValueError, match="obs"):
        policy.act(np.zeros(40))


@pytest.mark.parametrize("kind", list(LIQUID_KINDS))
def test_batch1_fast_path_equals_batched_torch_path(kind):
    """act() at batch 1 (numpy fast path) and at batch 3 (torch) give the same actions."""
    policy = policies.build({"kind": kind})
    randomize_normalisation(policy)
    obs = observations(150, 3)
    single = [policies.build({"kind": kind}) for _ in range(3)]
    for p in single:
        randomize_normalisation(p)
        p.reset(1)
    policy.reset(3)
    for t in range(150):
        dt = 0.05 if t < 100 else 0.08
        batched = policy.act(obs[t], dt=dt)
        for b, p in enumerate(single):
            np.testing.assert_allclose(p.act(obs[t, b], dt=dt), batched[b], atol=1e-5, rtol=0)
    for b, p in enumerate(single):
        for got, want in zip(p.state, policy.state):
            np.testing.assert_allclose(got.numpy()[0], want.numpy()[b], atol=1e-5, rtol=0)


def test_per_sample_dt_in_act():
    policy = policies.build({"kind": "liquid"})
    policy.reset(2)
    obs = observations(3, 2)
    a = policy.act(obs[0], dt=np.array([0.05, 0.2]))
    ref = [policies.build({"kind": "liquid"}) for _ in range(2)]
    for b, (p, dt) in enumerate(zip(ref, (0.05, 0.2))):
        p.reset(1)
        np.testing.assert_allclose(p.act(obs[0, b], dt=dt), a[b], atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["liquid", "liquid-ltc"])
def test_traces_reset_with_the_episode_unless_lifelong(kind):
    obs = observations(30)
    for lifelong in (False, True):
        policy = policies.build({"kind": kind, "lifelong": lifelong})
        policy.reset(1)
        for t in range(30):
            policy.act(obs[t, 0])
        h, trace = policy.state
        assert trace.abs().max() > 0
        policy.reset(1)
        h2, trace2 = policy.state
        assert torch.count_nonzero(h2) == 0
        if lifelong:
            torch.testing.assert_close(trace2, trace)
        else:
            assert torch.count_nonzero(trace2) == 0
    policy.reset(2)  # another batch size cannot keep per-sample traces
    assert torch.count_nonzero(policy.state[1]) == 0


@pytest.mark.parametrize("kind", ["liquid", "liquid-ltc"])
def test_plasticity_switch_on_the_policy(kind):
    policy = policies.build({"kind": kind})
    assert policy.plasticity
    obs = observations(20)
    policy.reset(1)
    for t in range(10):
        policy.act(obs[t, 0])
    policy.plasticity = False
    assert not policy.plasticity and torch.count_nonzero(policy.state[1]) == 0
    for t in range(10, 20):
        policy.act(obs[t, 0])
        assert torch.count_nonzero(policy.state[1]) == 0
    policy.plasticity = True
    policy.act(obs[0, 0])
    assert torch.count_nonzero(policy.state[1]) > 0
    for kind in ("cfc", "ltc", "lstm", "gru", "mlp"):
        p = policies.build({"kind": kind})
        assert not p.plasticity
        p.plasticity = False
        with pytest.raises(ValueError):
            p.plasticity = True


def test_parameter_counts_side_by_side(capsys):
    table = dict(parameter_table())
    assert set(table) == set(KINDS)
    with capsys.disabled():
        print("\nparameters: " + ", ".join(f"{k} {n}" for k, n in table.items()))
    # the baselines are sized near the non-plastic CfC; plasticity adds the rule's parameters
    for kind in ("lstm", "gru", "mlp"):
        assert 0.75 * table["cfc"] <= table[kind] <= 1.5 * table["cfc"], kind
    assert table["liquid"] > table["cfc"] and table["liquid-ltc"] > table["ltc"]
    # only real synapses count: far fewer than the dense storage
    dense = sum(p.numel() for p in policies.build({"kind": "cfc"}).net.parameters())
    assert table["cfc"] < dense


@pytest.mark.parametrize("kind", KINDS)
def test_train_forward_is_differentiable(kind):
    policy = policies.build({"kind": kind})
    obs = torch.randn(2, 6, 41)
    actions, state = policy.train_forward(obs)
    assert actions.shape == (2, 6, 2)
    actions.pow(2).sum().backward()
    grads = [p.grad for p in policy.net.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    # state in and out: two halves equal the whole
    with torch.no_grad():
        whole, _ = policy.train_forward(obs)
        first, mid = policy.train_forward(obs[:, :3])
        second, _ = policy.train_forward(obs[:, 3:], None, mid)
    torch.testing.assert_close(torch.cat([first, second], 1), whole, atol=1e-6, rtol=0)


def test_act_uses_new_weights_after_training_step():
    policy = policies.build({"kind": "liquid"})
    obs = observations(2)
    policy.reset(1)
    before = policy.act(obs[0, 0])
    actions, _ = policy.train_forward(torch.from_numpy(obs[:1].transpose(1, 0, 2)))
    with torch.no_grad():
        for p in policy.net.parameters():
            p.add_(0.1)
    policy.reset(1)
    assert not np.allclose(policy.act(obs[0, 0]), before)


def test_load_by_name_and_config_errors(tmp_path):
    for name in ("liquid", "liquid-ltc", "cfc", "lstm", "mlp"):
        assert name in policies.names()
        if not (policies.CHECKPOINT_DIR / f"{name}.safetensors").exists():
            with pytest.raises(FileNotFoundError, match="is missing"):
                policies.load(name)
    with pytest.raises(ValueError, match="unknown policy"):
        policies.load("no-such-policy")
    path = save_policy(policies.build({"kind": "gru"}), tmp_path / "gru.safetensors")
    assert policies.load(path).name == "gru" and policies.load(str(path)).name == "gru"
    with pytest.raises(ValueError, match="unknown policy config keys"):
        policies.build({"kind": "liquid", "neurons": 3})
    with pytest.raises(ValueError, match="unknown policy kind"):
        PolicyConfig(kind="transformer")


def test_same_seed_same_policy():
    a, b = build_policy({"kind": "liquid", "seed": 3}), build_policy({"kind": "liquid", "seed": 3})
    for (name, x), (_, y) in zip(a.net.state_dict().items(), b.net.state_dict().items()):
        torch.testing.assert_close(x, y, msg=name)
    c = build_policy({"kind": "liquid", "seed": 4})
    assert not torch.equal(a.net.cell.layers[0].weight, c.net.cell.layers[0].weight)


def test_alpha_init_sets_the_range_of_the_plastic_gains():
    for scale in (0.1, 0.5):
        rule = build_policy({"kind": "liquid", "alpha_init": scale}).net.cell.rule
        alpha = rule.alpha[rule.mask.bool()]
        assert alpha.abs().max() <= scale and alpha.abs().max() > 0.8 * scale
    with pytest.raises(ValueError, match="alpha_init"):
        build_policy({"kind": "liquid", "alpha_init": -1.0})
