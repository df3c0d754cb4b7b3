"""Progress inputs (PolicyConfig.progress_inputs, policies/progress.py): the escape teacher's
stall clock computed from the observation alone, the same step by step in act() as over a
whole episode in training, reset every episode, on every path (numpy, torch, checkpoint,
ONNX, training); with the flag off nothing changes."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

import policies
from envs.scenarios import from_dict
from envs.sensors import OBS_LAYOUT
from envs.terrain_nav import TerrainNavEnv
from navctl.errors import UsageError
from navctl.expert import ExpertConfig, GuidedExpert
from navctl.policy_names import classical_controller, with_base
from navctl.train import CONTROL_DT_S, fit, mirror, set_normalization, training_sequences
from navctl.train_config import Optim, load_config
from policies.base import GOAL_DISTANCE, OBS_DIM
from policies.checkpoint import load_policy, save_policy
from policies.progress import NUM_FEATURES, ProgressSpec, ProgressTracker, progress_features
from policies.classical import ESCAPE_CLOCK
from test_rescue import u_trap
from test_policy_checkpoint import older_checkpoint
from test_residual import assert_onnx_acts_like

torch.set_num_threads(1)
STILL_STEPS = 130  # 6.5 s standing still: the stall clock (6 s) runs out at step 120
STALL_STEP = 120


def drive(env: TerrainNavEnv, seed: int, steps: int, still: int = 0) -> tuple[np.ndarray, dict]:
    """The observations of an episode (at most `steps`) in which the robot stands still for
    `still` steps, then the classical controller drives; and the last info."""
    controller = classical_controller()
    obs, info = env.reset(seed=seed)
    controller.reset(1)
    seen = [obs]
    for k in range(steps - 1):
        action = controller.act(obs) if k >= still else np.zeros(2, np.float32)
        obs, _, terminated, truncated, info = env.step(action)
        seen.append(obs)
        if terminated or truncated:
            break
    return np.stack(seen), info


@pytest.fixture(scope="module")
def stalled_obs() -> np.ndarray:
    """230 observations on flat ground: 6.5 s standing still, then the classical controller drives."""
    env = TerrainNavEnv("flat")
    try:
        return drive(env, seed=2, steps=STILL_STEPS + 100, still=STILL_STEPS)[0]
    finally:
        env.close()


def progress_policy(kind: str, base: bool = True, seed: int = 1):
    config = {"kind": kind, "seed": seed, "progress_inputs": True, **({"base": "classical"} if base else {})}
    policy = policies.build(with_base(config))
    with torch.no_grad():  # a normalisation under which the features move the network's inputs
        policy.net.obs_mean.uniform_(-0.5, 0.5)
        policy.net.obs_std.uniform_(0.2, 1.0)
    return policy


def test_the_escapes_figures_and_the_goal_distances_place():
    assert ESCAPE_CLOCK == ProgressSpec()
    assert (GOAL_DISTANCE, OBS_DIM) == (OBS_LAYOUT["goal_distance"].start, sum(s.stop - s.start for s in OBS_LAYOUT.values()))


def test_step_by_step_equals_the_whole_episode(stalled_obs):
    whole = progress_features(stalled_obs[:, GOAL_DISTANCE], CONTROL_DT_S)
    tracker = ProgressTracker()
    tracker.reset(2)  # two copies of the episode in one batch
    steps = np.stack([tracker.step(np.stack([o, o])[:, GOAL_DISTANCE], CONTROL_DT_S) for o in stalled_obs])
    assert whole.shape == (len(stalled_obs), NUM_FEATURES) and whole.dtype == np.float32
    assert np.array_equal(steps[:, 0], whole) and np.array_equal(steps[:, 1], whole)
    tracker.reset(1)  # and alone, as act() at batch 1 runs it
    assert np.array_equal(np.stack([tracker.step_one(o[GOAL_DISTANCE], CONTROL_DT_S) for o in stalled_obs]), whole)
    stall, escape, above = whole.T
    # standing still, the stall clock runs to 1 in 6 s; then the escape's clock starts at 1 ...
    np.testing.assert_allclose(stall[:STALL_STEP], np.arange(STALL_STEP) * CONTROL_DT_S / 6.0, atol=1e-6)
    start = int(np.argmax(escape > 0))  # the clock adds up 0.05 s steps: 120 of them may fall just short of 6 s
    assert start in (STALL_STEP, STALL_STEP + 1) and stall[start] == pytest.approx(1.0) and escape[start] == 1.0
    assert np.all(np.diff(escape[start:STILL_STEPS]) < 0) and np.all(stall[start:STILL_STEPS] == stall[start])
    # ... and once driving gets the goal 1 m closer than before the stall, both clocks start again
    out = STILL_STEPS + int(np.argmax(escape[STILL_STEPS:] == 0))
    assert out > STILL_STEPS and stall[out] == 0 and above[out] == 0
    assert stalled_obs[out, GOAL_DISTANCE] < stalled_obs[0, GOAL_DISTANCE] - 1.0
    assert np.all(np.abs(above[:STILL_STEPS]) < 0.1)  # standing still: the goal stays where it was


def test_the_stall_clock_is_the_escape_teachers():
    """Driven by the guided-escape teacher (the classical-escape route) into the U of
    tests/test_rescue.py: its escape starts at the very step the stall clock runs out and lasts
    at least as long as the features' escape (it also waits until the goal-ward heading is
    free, which they cannot see)."""
    env = TerrainNavEnv(from_dict(u_trap(time_limit_s=45), "u-trap.yaml"))
    teacher = GuidedExpert(ExpertConfig(escape=True))
    obs, info = env.reset(seed=0)
    teacher.reset(1)
    seen, escaping = [], []
    try:
        for _ in range(450):
            seen.append(obs)
            action = teacher.act(obs, info)
            escaping.append(teacher.rescuing(0))
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
    finally:
        env.close()
    features = progress_features(np.stack(seen)[:, GOAL_DISTANCE], CONTROL_DT_S)
    teacher_on, ours_on = np.array(escaping), features[:, 1] > 0
    start = int(np.argmax(teacher_on))
    assert teacher_on.any() and start == int(np.argmax(ours_on)) and features[start, 0] == pytest.approx(1.0)
    pinned = features[start - STALL_STEP:start + 1, 0]  # the 6 s in the U without progress
    assert pinned[0] < 0.02 and np.all(np.diff(pinned) >= 0) and not ours_on[:start].any()
    assert np.all(teacher_on[ours_on]) and ours_on.sum() > 100


def test_driving_straight_to_an_open_goal_never_stalls():
    env = TerrainNavEnv("flat")
    try:
        obs, info = drive(env, seed=4, steps=900)
    finally:
        env.close()
    assert info["is_success"]
    features = progress_features(obs[:, GOAL_DISTANCE], CONTROL_DT_S)
    assert features[:, 0].max() < 0.4 and not features[:, 1].any()
    assert np.all(features[:, 2] < 0.1) and np.all(features[:, 2] > -0.5)  # never further than its reference


@pytest.mark.parametrize("kind,base", [("liquid", True), ("lstm", True), ("cfc", False)])
def test_act_feeds_the_network_the_episodes_features(kind, base, stalled_obs):
    """act() (numpy fast path at batch 1, torch at batch 2) = the network on network_inputs,
    whose features the whole episode gives; without the features it would act otherwise."""
    policy = progress_policy(kind, base)
    inputs = policy.network_inputs(stalled_obs)
    width = OBS_DIM + NUM_FEATURES + (2 if base else 0)
    assert inputs.shape == (len(stalled_obs), width) and policy.config.input_dim == width
    np.testing.assert_array_equal(inputs[:, OBS_DIM:OBS_DIM + NUM_FEATURES],
                                  progress_features(stalled_obs[:, GOAL_DISTANCE], policy.config.dt))
    policy.reset(1)
    acted = np.stack([policy.act(o) for o in stalled_obs])
    with torch.no_grad():
        trained = policy.train_forward(torch.from_numpy(inputs)[None])[0][0].clamp(-1, 1).numpy()
        blind = inputs.copy()
        blind[:, OBS_DIM:OBS_DIM + NUM_FEATURES] = 0.0
        without = policy.train_forward(torch.from_numpy(blind)[None])[0][0].clamp(-1, 1).numpy()
    np.testing.assert_allclose(acted, trained, atol=1e-5, rtol=0)
    assert np.abs(acted - without).max() > 1e-3
    policy.reset(2)
    batched = np.stack([policy.act(np.stack([o, o])) for o in stalled_obs])
    np.testing.assert_allclose(batched[:, 1], acted, atol=1e-5, rtol=0)


def test_reset_starts_the_clocks_again(stalled_obs):
    policy = progress_policy("liquid")
    policy.reset(1)
    first = policy.act(stalled_obs[0])
    for o in stalled_obs[1:STILL_STEPS]:
        policy.act(o)
    policy.set_state(tuple(torch.zeros_like(t) for t in policy.state))  # fresh neurons and base ...
    policy.base.reset(1)
    assert not np.array_equal(policy.act(stalled_obs[0]), first)  # ... but the clocks in an escape
    policy.reset(1)
    assert np.array_equal(policy.act(stalled_obs[0]), first)


def test_a_batch_mismatch_is_an_error(stalled_obs):
    policy = progress_policy("lstm")
    policy.reset(2)
    with pytest.raises(ValueError, match="batch 3 but the policy was reset for batch 2"):
        policy.act(np.stack([stalled_obs[0]] * 3))


def test_mirroring_keeps_the_features(stalled_obs):
    policy = progress_policy("cfc")
    actions = np.zeros((len(stalled_obs), 2), np.float32)
    features = slice(OBS_DIM, OBS_DIM + NUM_FEATURES)
    assert np.array_equal(policy.network_inputs(mirror(stalled_obs, actions)[0])[:, features],
                          policy.network_inputs(stalled_obs)[:, features])


def test_checkpoint_round_trip(tmp_path, stalled_obs):
    policy = progress_policy("liquid")
    loaded = load_policy(save_policy(policy, tmp_path / "p.safetensors"))
    assert loaded.config == policy.config and loaded.config.progress_inputs and loaded.config.input_dim == 46
    policy.reset(1)
    loaded.reset(1)
    for o in stalled_obs[:STILL_STEPS + 10]:
        assert np.array_equal(loaded.act(o), policy.act(o))


def test_with_the_flag_off_nothing_changes(stalled_obs, tmp_path):
    config = with_base({"kind": "liquid", "base": "classical"})
    off = policies.build(config)
    assert not off.config.progress_inputs and off.config.input_dim == OBS_DIM + 2
    classical = classical_controller()
    classical.reset(1)
    expected = np.concatenate([stalled_obs, np.stack([classical.act(o) for o in stalled_obs])], axis=1)
    assert np.array_equal(off.network_inputs(stalled_obs), expected)
    # a checkpoint written before the flag existed has no such key and loads with it off
    path = older_checkpoint(policies.build(with_base({"kind": "cfc", "base": "classical"})), tmp_path / "old.safetensors",
                            without=("progress_inputs",))
    with safe_open(path, framework="pt") as f:
        assert "progress_inputs" not in json.loads(f.metadata()["config"])
    assert not load_policy(path).config.progress_inputs
    assert dataclasses.replace(off.config, progress_inputs=True).input_dim == OBS_DIM + NUM_FEATURES + 2


def test_onnx_export_takes_the_features_in_obs(tmp_path, stalled_obs):
    assert_onnx_acts_like(progress_policy("cfc"), stalled_obs, tmp_path / "p.onnx")


def test_training_configs_take_the_flag(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: p\npolicy: {kind: liquid, base: classical, progress_inputs: true}\n")
    assert load_config(str(path)).policy["progress_inputs"] is True
    path.write_text("name: p\npolicy: {kind: liquid, progress_inputs: 2}\n")
    with pytest.raises(UsageError, match=r"c.yaml: policy: progress_inputs must be true or false, got 2"):
        load_config(str(path))


def test_a_fit_on_sequences_with_features(stalled_obs):
    """Training sees the features of whole episodes (and of their mirror images), normalised
    with the rest of the inputs, and a one-epoch fit runs on them."""
    policy = progress_policy("liquid")
    labels = np.tile(np.array([[0.5, 0.0]], np.float32), (len(stalled_obs), 1))
    flags, never = np.zeros(len(stalled_obs), bool), np.full(len(stalled_obs), np.inf, np.float32)
    episodes = [(stalled_obs, labels, flags, never),
                (stalled_obs[:STILL_STEPS], labels[:STILL_STEPS], flags[:STILL_STEPS], never[:STILL_STEPS])]
    seqs = training_sequences(policy, episodes, mirrored=True)
    assert len(seqs) == 4 and all(s[0].shape[1] == 46 for s in seqs)
    np.testing.assert_array_equal(seqs[2][0][:, OBS_DIM:OBS_DIM + NUM_FEATURES],
                                  seqs[0][0][:STILL_STEPS, OBS_DIM:OBS_DIM + NUM_FEATURES])
    set_normalization(policy, seqs)
    assert policy.net.obs_std[OBS_DIM:OBS_DIM + NUM_FEATURES].min() > 0.05
    loss = fit(policy, seqs, Optim(epochs=1, batch_episodes=2, chunk_steps=50), seed=0)
    assert np.isfinite(loss)
