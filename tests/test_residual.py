"""A learned policy that corrects the classical controller (`base: classical`): it acts as the
classical controller plus its network's residual, on every path (numpy, torch, training,
checkpoint, ONNX), and training configs name the base by name."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs  # noqa: F401 - registers navctl/TerrainNav-v0
import policies
from navctl.errors import UsageError
from navctl.policy_names import classical_controller, with_base
from navctl.train_config import load_config
from policies.checkpoint import load_policy, save_policy
from policies.networks import RESIDUAL_SCALE

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def episode_obs() -> np.ndarray:
    """200 observations of the classical controller driving the ice-posts scenario."""
    env = gym.make("navctl/TerrainNav-v0", scenario="ice-posts")
    controller = classical_controller()
    obs, _ = env.reset(seed=3)
    controller.reset(1)
    seen = [obs]
    for _ in range(199):
        obs, *_ = env.step(controller.act(obs))
        seen.append(obs)
    env.close()
    return np.stack(seen)


def residual(kind: str, seed: int = 1):
    policy = policies.build(with_base({"kind": kind, "base": "classical", "seed": seed}))
    with torch.no_grad():
        policy.net.obs_mean.uniform_(-1, 1)
        policy.net.obs_std.uniform_(0.5, 2.0)
    return policy


def test_a_zero_residual_drives_exactly_like_the_classical_controller(episode_obs):
    policy = policies.build(with_base({"kind": "mlp", "base": "classical"}))
    with torch.no_grad():
        policy.net.mlp[-1].weight.zero_()
        policy.net.mlp[-1].bias.zero_()
    classical = classical_controller()
    policy.reset(1)
    classical.reset(1)
    for obs in episode_obs:
        np.testing.assert_array_equal(policy.act(obs), classical.act(obs))


@pytest.mark.parametrize("kind", ["liquid", "lstm"])
def test_act_is_the_base_action_plus_the_scaled_residual_on_every_path(kind, episode_obs):
    policy = residual(kind)
    policy.reset(1)
    acted = np.stack([policy.act(obs) for obs in episode_obs])
    # the classical controller's own actions, and the network on the observation + that action
    inputs = policy.network_inputs(episode_obs)
    classical = classical_controller()
    classical.reset(1)
    np.testing.assert_array_equal(inputs[:, -2:], np.stack([classical.act(o) for o in episode_obs]))
    with torch.no_grad():
        trained, _ = policy.train_forward(torch.from_numpy(inputs)[None])
    np.testing.assert_allclose(acted, np.clip(trained[0].numpy(), -1, 1), atol=1e-5, rtol=0)
    assert np.abs(acted - inputs[:, -2:]).max() > 0.05  # the residual does change the action
    assert np.all(np.abs(acted) <= 1.0) and np.abs(trained.numpy()).max() <= 1 + RESIDUAL_SCALE
    policy.reset(2)  # batched torch path, two copies of the episode
    batched = np.stack([policy.act(np.stack([o, o])) for o in episode_obs])
    np.testing.assert_allclose(batched[:, 0], acted, atol=1e-5, rtol=0)


def test_the_checkpoint_carries_the_base_and_loads_without_navctl(tmp_path, episode_obs):
    policy = residual("liquid")
    path = save_policy(policy, tmp_path / "r.safetensors")
    loaded = load_policy(path)
    assert loaded.config.base == policy.config.base and loaded.config.input_dim == 43
    policy.reset(1)
    loaded.reset(1)
    for obs in episode_obs[:80]:
        np.testing.assert_array_equal(loaded.act(obs), policy.act(obs))
    with pytest.raises(ValueError, match="obs"):
        loaded.act(np.zeros(43, np.float32))  # the network's width is not the observation's


def assert_onnx_acts_like(policy, observations: np.ndarray, path) -> None:
    """The policy's exported step, fed `policy.network_inputs` of an episode's observations,
    answers each step as the policy's act() does."""
    ort = pytest.importorskip("onnxruntime")
    from policies.export import export_onnx, io_names

    session = ort.InferenceSession(str(export_onnx(policy, path)), providers=["CPUExecutionProvider"])
    inputs, _ = io_names(policy)
    state = [t.numpy() for t in policy.net.initial_state(1)]
    policy.reset(1)
    for obs, x in zip(observations, policy.network_inputs(observations)):
        values = dict(zip(inputs, [x[None], np.full(1, policy.config.dt, np.float32), *state]))
        action, *state = session.run(None, values)
        np.testing.assert_allclose(action[0], policy.act(obs), atol=1e-5, rtol=0)


def test_onnx_export_of_a_residual_policy_takes_the_base_action(tmp_path, episode_obs):
    assert_onnx_acts_like(residual("cfc"), episode_obs[:60], tmp_path / "r.onnx")


def test_training_configs_name_the_base(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: r\npolicy: {kind: cfc, base: classical}\n")
    base = load_config(str(path)).policy["base"]
    assert base["obs_layout"]["lidar"] == [17, 41] and base["control_dt_s"] == pytest.approx(0.05)
    path.write_text("name: r\npolicy: {kind: cfc, base: expert}\n")
    with pytest.raises(UsageError, match=r"c.yaml: policy: base must be 'classical' or 'classical-escape'"):
        load_config(str(path))
    with pytest.raises(ValueError, match="obs_layout"):
        policies.build({"kind": "cfc", "base": {"obs_layout": {}, "control_dt_s": 0.05, "lidar_range_m": 8,
                                                 "v_max": 1, "w_max": 1}})
