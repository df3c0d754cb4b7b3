"""optim.takeover_weight: DAgger records where the guided-escape teacher's escape chose the
label, keeps the flags with the run's data, and fit() weights those steps in the loss."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from envs.scenarios import from_dict
from envs.terrain_nav import TerrainNavEnv
from navctl.errors import UsageError
from navctl.expert import ExpertConfig, GuidedExpert
from navctl.rollout import rollout
from navctl.run_directory import RunDirectory
from navctl.train import CONTROL_DT_S, fit, labelled, training_sequences
from navctl.train_config import Optim, load_config
from test_escape import drive
from test_rescue import u_trap
from test_train import TINY, write_config


@pytest.fixture(scope="module")
def escape_run() -> tuple:
    """The guided-escape teacher labelling its own episode in the U trap (where it escapes),
    and the same episode driven by test_escape's loop: the side the escape drove each step."""
    env = TerrainNavEnv(from_dict(u_trap(time_limit_s=45), "u-trap.yaml"))
    try:
        teacher = GuidedExpert(ExpertConfig(escape=True))
        traj = rollout(env, teacher, seed=0, teacher=teacher)
        _, _, sides = drive(env, GuidedExpert(ExpertConfig(escape=True)), seed=0)
    finally:
        env.close()
    return traj, sides


def test_the_steps_the_escape_drove_are_recorded(escape_run):
    traj, sides = escape_run
    assert traj.success
    assert traj.takeovers.shape == (traj.steps,) and traj.takeovers.dtype == bool
    assert 0 < traj.takeovers.sum() < traj.steps  # the classical route drove too
    np.testing.assert_array_equal(traj.takeovers, np.array(sides) != 0)
    np.testing.assert_array_equal(labelled(traj)[2], traj.takeovers)


def test_the_flags_are_stored_with_the_data_and_old_data_loads_without(tmp_path, escape_run):
    traj, _ = escape_run
    config = write_config(tmp_path, TINY)
    with RunDirectory(tmp_path / "run", load_config(config), str(config), resume=False) as run:
        run.save_data(0, [labelled(traj)], [{"scenario": "u-trap"}])
        run.state["rounds_done"] = 1
        (obs, labels, takeovers, _), = run.load_data()[0]
        np.testing.assert_array_equal(takeovers, traj.takeovers)
        path = tmp_path / "run" / "data" / "round_0.npz"
        with np.load(path) as z:  # as a run from before the flags were recorded wrote it
            old = {k: z[k] for k in z.files if not k.startswith("takeover_")}
        np.savez(path, **old)
        (obs_old, labels_old, takeovers_old, _), = run.load_data()[0]
    np.testing.assert_array_equal(obs_old, obs)
    np.testing.assert_array_equal(labels_old, labels)
    assert takeovers_old.dtype == bool and takeovers_old.shape == takeovers.shape and not takeovers_old.any()


def fitted(escape_run, weight: float, with_flags: bool = True, epochs: int = 2) -> tuple[float, dict, object]:
    """A tiny liquid policy fitted on the episode (and its mirror image): the loss, the
    weights, and the policy before the fit."""
    import policies

    traj, _ = escape_run
    obs, labels, takeovers, since_event = labelled(traj)
    torch.manual_seed(0)
    policy = policies.build({"dt": CONTROL_DT_S, "kind": "liquid", "units": 8})
    before = copy.deepcopy(policy)
    flags = takeovers if with_flags else np.zeros_like(takeovers)
    seqs = training_sequences(policy, [(obs, labels, flags, since_event)], mirrored=True)
    assert [len(s) for s in seqs] == [4, 4]
    np.testing.assert_array_equal(seqs[1][2], flags)  # the mirror image keeps them
    optim = Optim(epochs=epochs, batch_episodes=2, chunk_steps=traj.steps, takeover_weight=weight)
    loss = fit(policy, seqs, optim, seed=0)
    return loss, {k: v.detach().numpy().copy() for k, v in policy.net.state_dict().items()}, before


def test_weight_one_trains_bit_identically_to_no_flags(escape_run):
    loss, trained, _ = fitted(escape_run, 1.0)
    loss_plain, trained_plain, _ = fitted(escape_run, 1.0, with_flags=False)
    assert loss == loss_plain
    for k in trained:
        np.testing.assert_array_equal(trained[k], trained_plain[k], err_msg=k)


def test_a_weight_above_one_is_the_weighted_mean_and_changes_the_fit(escape_run):
    traj, _ = escape_run
    loss, trained, before = fitted(escape_run, 5.0, epochs=1)
    loss_one, trained_one, _ = fitted(escape_run, 1.0, epochs=1)
    assert any(not np.array_equal(trained[k], trained_one[k]) for k in trained)
    # one epoch, one batch (the episode and its mirror image), one chunk: the loss is the
    # untrained policy's, the weighted mean sum(w l) / sum(w) over both sequences' steps
    seqs = training_sequences(before, [labelled(traj)], mirrored=True)
    with torch.no_grad():
        pred, _ = before.train_forward(torch.from_numpy(np.stack([s[0] for s in seqs])),
                                       torch.full((2, traj.steps), CONTROL_DT_S), None)
    per_step = ((pred.numpy() - np.stack([s[1] for s in seqs])) ** 2).sum(-1)
    w = np.where(np.stack([s[2] for s in seqs]), 5.0, 1.0)
    assert loss == pytest.approx(np.sum(w * per_step) / np.sum(w), rel=1e-4)
    assert loss_one == pytest.approx(per_step.mean(), rel=1e-4)
    assert abs(loss - loss_one) > 1e-3 * loss_one


@pytest.mark.parametrize("value, message", [
    (0.5, r"tiny.yaml: optim.takeover_weight: must be >= 1, got 0.5"),
    ("five", r"tiny.yaml: optim.takeover_weight: must be a number, got string 'five'"),
])
def test_a_bad_takeover_weight_is_rejected(tmp_path, value, message):
    bad = dict(TINY, optim=dict(TINY["optim"], takeover_weight=value))
    with pytest.raises(UsageError, match=message):
        load_config(write_config(tmp_path, bad))
    good = dict(TINY, optim=dict(TINY["optim"], takeover_weight=5))
    assert load_config(write_config(tmp_path, good)).optim.takeover_weight == 5.0
