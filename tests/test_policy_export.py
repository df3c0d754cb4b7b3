"""Export of the control step: ONNX (run in onnxruntime) and TorchScript, each for 500
steps against the eager policy, with every state tensor fed back explicitly."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import policies
from policies.export import export_onnx, export_torchscript, io_names

ort = pytest.importorskip("onnxruntime")
torch.set_num_threads(1)

STEPS = 500


def make_policy(kind: str):
    policy = policies.build({"kind": kind, "seed": 1})
    with torch.no_grad():
        policy.net.obs_mean.uniform_(-1, 1)
        policy.net.obs_std.uniform_(0.5, 2.0)
    return policy


def observations(batch: int) -> np.ndarray:
    obs = np.random.default_rng(0).standard_normal((STEPS, batch, 41)).astype(np.float32) * 2
    obs[STEPS // 2:, :, :4] *= 50
    return obs


def zero_state(policy, batch):
    return [t.numpy() for t in policy.net.initial_state(batch)]


@pytest.mark.parametrize("kind", ["liquid", "liquid-ltc", "cfc", "lstm", "gru", "mlp"])
def test_onnx_step_matches_eager_for_500_steps(kind, tmp_path):
    policy = make_policy(kind)
    path = export_onnx(policy, tmp_path / f"{kind}.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inputs, outputs = io_names(policy)
    feeds = {i.name for i in session.get_inputs()}
    assert feeds <= set(inputs) and [o.name for o in session.get_outputs()] == outputs
    obs = observations(1)
    state = zero_state(policy, 1)
    dt = np.full(1, policy.config.dt, np.float32)
    policy.reset(1)
    worst = 0.0
    for t in range(STEPS):
        values = dict(zip(inputs, [obs[t], dt, *state]))
        action, *state = session.run(None, {k: v for k, v in values.items() if k in feeds})
        worst = max(worst, float(np.abs(action[0] - policy.act(obs[t, 0])).max()))
    assert worst <= 1e-5, worst
    for got, want in zip(state, policy.state):
        np.testing.assert_allclose(got, want.numpy(), atol=1e-5, rtol=0)


def test_onnx_batch_axis_is_dynamic(tmp_path):
    policy = make_policy("liquid")
    session = ort.InferenceSession(str(export_onnx(policy, tmp_path / "p.onnx")), providers=["CPUExecutionProvider"])
    obs = observations(5)
    state = zero_state(policy, 5)
    dt = np.array([0.05, 0.05, 0.1, 0.02, 0.05], np.float32)
    policy.reset(5)
    for t in range(20):
        action, *state = session.run(None, {"obs": obs[t], "dt": dt, "h": state[0], "trace": state[1]})
        np.testing.assert_allclose(action, policy.act(obs[t], dt=dt), atol=1e-5, rtol=0)


@pytest.mark.filterwarnings("ignore:`torch.jit")
@pytest.mark.parametrize("kind", ["liquid", "liquid-ltc", "lstm"])
def test_torchscript_step_matches_eager_for_500_steps(kind, tmp_path):
    policy = make_policy(kind)
    module = torch.jit.load(str(export_torchscript(policy, tmp_path / f"{kind}.pt")))
    obs = torch.from_numpy(observations(1))
    state = policy.net.initial_state(1)
    dt = torch.full((1,), policy.config.dt)
    policy.reset(1)
    with torch.no_grad():
        for t in range(STEPS):
            action, *state = module(obs[t], dt, *state)
            np.testing.assert_allclose(action[0].numpy(), policy.act(obs[t, 0].numpy()), atol=1e-5, rtol=0)
    for got, want in zip(state, policy.state):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_export_with_plasticity_off_keeps_traces_zero(tmp_path):
    policy = make_policy("liquid")
    policy.plasticity = False
    session = ort.InferenceSession(str(export_onnx(policy, tmp_path / "off.onnx")), providers=["CPUExecutionProvider"])
    state = zero_state(policy, 1)
    for o in observations(1)[:30]:
        action, *state = session.run(None, {"obs": o, "dt": np.full(1, 0.05, np.float32), "h": state[0], "trace": state[1]})
    assert not state[1].any()
