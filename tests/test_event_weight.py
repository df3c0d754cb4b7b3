"""optim.event_weight: every labelled step records the seconds since the scenario's last event
fired (from the real simulator's event log), the run keeps them with its data, and fit()
weights the steps in the window after an event."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from envs.scenarios import from_dict
from envs.terrain_nav import TerrainNavEnv
from navctl.errors import UsageError
from navctl.expert import ExpertConfig, GuidedExpert
from navctl.rollout import rollout
from navctl.run_directory import RunDirectory
from navctl.train import CONTROL_DT_S, fit, labelled, step_weights, training_sequences
from navctl.train_config import Optim, load_config
from test_train import SHORT, TINY, write_config

EVENTS = [{"at_time_s": 2.0, "set": {"motor_gain": {"right": 0.5}}},
          {"at_time_s": 4.0, "set": {"payload_kg": 20}}]


@pytest.fixture(scope="module")
def traj():
    """The guided teacher labelling an episode of the short drive with two timed events."""
    scenario = dict(SHORT, name="short-events", randomize={}, events=EVENTS)
    env = TerrainNavEnv(from_dict(scenario, "short-events.yaml"))
    try:
        teacher = GuidedExpert(ExpertConfig())
        return rollout(env, teacher, seed=0, teacher=teacher)
    finally:
        env.close()


def test_the_seconds_since_the_last_event_follow_the_event_log(traj):
    fired = [e["time_s"] for e in traj.events]
    assert len(fired) == 2 and fired[0] == pytest.approx(2.0, abs=CONTROL_DT_S)
    since = labelled(traj)[3]
    assert since.shape == (traj.steps,) and since.dtype == np.float32
    t = np.round(traj.time_s[:-1], 6)  # as the event log rounds them
    assert np.all(np.isinf(since[t < fired[0]]))
    between = (t >= fired[0]) & (t < fired[1])
    np.testing.assert_allclose(since[between], t[between] - fired[0], atol=1e-5)
    np.testing.assert_allclose(since[t >= fired[1]], t[t >= fired[1]] - fired[1], atol=1e-5)
    assert since[between].min() == pytest.approx(0.0, abs=1e-5)
    assert since[t >= fired[1]].min() == pytest.approx(0.0, abs=1e-5)


def test_the_times_are_stored_with_the_data_and_old_data_loads_as_never(tmp_path, traj):
    config = write_config(tmp_path, TINY)
    with RunDirectory(tmp_path / "run", load_config(config), str(config), resume=False) as run:
        run.save_data(0, [labelled(traj)], [{"scenario": "short-events"}])
        run.state["rounds_done"] = 1
        (_, _, _, since), = run.load_data()[0]
        np.testing.assert_array_equal(since, labelled(traj)[3])
        path = tmp_path / "run" / "data" / "round_0.npz"
        with np.load(path) as z:  # as a run from before the times were recorded wrote it
            old = {k: z[k] for k in z.files if not k.startswith("since_event_")}
        np.savez(path, **old)
        (_, _, _, since_old), = run.load_data()[0]
    assert since_old.shape == since.shape and np.all(np.isinf(since_old))


def test_the_weights_multiply_in_the_window_after_each_event(traj):
    seq = labelled(traj)
    since = seq[3]
    np.testing.assert_array_equal(step_weights(seq), np.ones(traj.steps))
    np.testing.assert_array_equal(step_weights(seq, Optim()), np.ones(traj.steps))  # defaults: no weighting
    w = step_weights(seq, Optim(event_weight=4.0, event_window_s=1.0))
    inside = since < 1.0
    assert 0 < inside.sum() < traj.steps
    np.testing.assert_array_equal(w, np.where(inside, 4.0, 1.0))
    takeovers = np.zeros(traj.steps, dtype=bool)
    takeovers[::7] = True  # both weights on a step multiply
    both = Optim(takeover_weight=2.0, event_weight=4.0, event_window_s=1.0)
    w = step_weights((seq[0], seq[1], takeovers, since), both)
    np.testing.assert_array_equal(w, np.where(takeovers, 2.0, 1.0) * np.where(inside, 4.0, 1.0))


def fitted(traj, optim: Optim) -> tuple[float, dict]:
    """A tiny liquid policy fitted one epoch on the episode and its mirror image."""
    import policies

    torch.manual_seed(0)
    policy = policies.build({"dt": CONTROL_DT_S, "kind": "liquid", "units": 8})
    seqs = training_sequences(policy, [labelled(traj)], mirrored=True)
    np.testing.assert_array_equal(seqs[1][3], seqs[0][3])  # the mirror image keeps the times
    loss = fit(policy, seqs, optim, seed=0)
    return loss, {k: v.detach().numpy().copy() for k, v in policy.net.state_dict().items()}


def test_an_event_weight_changes_the_fit_and_one_does_not(traj):
    base = dict(epochs=1, batch_episodes=2, chunk_steps=traj.steps)
    loss, trained = fitted(traj, Optim(**base))
    loss_one, trained_one = fitted(traj, Optim(**base, event_weight=1.0, event_window_s=3.0))
    loss_four, trained_four = fitted(traj, Optim(**base, event_weight=4.0, event_window_s=3.0))
    assert loss_one == loss
    for k in trained:
        np.testing.assert_array_equal(trained_one[k], trained[k], err_msg=k)
    assert loss_four != loss
    assert any(not np.array_equal(trained_four[k], trained[k]) for k in trained)


@pytest.mark.parametrize("field, value, message", [
    ("event_weight", 0.5, r"tiny.yaml: optim.event_weight: must be >= 1, got 0.5"),
    ("event_window_s", 0, r"tiny.yaml: optim.event_window_s: must be > 0, got 0"),
    ("event_window_s", "10 s", r"tiny.yaml: optim.event_window_s: must be a number, got string '10 s'"),
])
def test_a_bad_event_weighting_is_rejected(tmp_path, field, value, message):
    bad = dict(TINY, optim=dict(TINY["optim"], **{field: value}))
    with pytest.raises(UsageError, match=message):
        load_config(write_config(tmp_path, bad))
    good = dict(TINY, optim=dict(TINY["optim"], event_weight=3, event_window_s=8))
    optim = load_config(write_config(tmp_path, good)).optim
    assert (optim.event_weight, optim.event_window_s) == (3.0, 8.0)
