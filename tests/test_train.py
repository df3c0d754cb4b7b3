"""navctl train: learning happens, resume after SIGKILL is exact, bad configs fail early."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from envs.terrain_nav import TerrainNavEnv
from navctl.errors import UsageError
from navctl.expert import ExpertController
from navctl.rollout import rollout
from navctl.train import mirror, train
from navctl.train_config import load_config

REPO = Path(__file__).resolve().parent.parent

TINY = {
    "name": "tiny",
    "seed": 3,
    "policy": {"kind": "liquid", "units": 16},
    "scenarios": {"train": ["short"], "validation": ["short"], "validation_episodes": 4},
    "dagger": {"expert_episodes": 6, "rounds": 1, "episodes_per_round": 4, "beta_start": 0.5},
    "optim": {"epochs": 6, "batch_episodes": 4, "chunk_steps": 40, "lr": 0.005},
    "workers": 1,
}


SHORT = {  # a 6 m drive across a small arena: a tiny run can learn it in a minute
    "version": 1, "name": "short", "time_limit_s": 15, "arena": {"size_m": [12, 12]},
    "robot": {"start": {"x": -3, "y": 0}}, "goal": {"x": 3, "y": 0, "radius_m": 0.5},
    "randomize": {"start": {"y": [-2, 2], "yaw_deg": [-60, 60]}, "goal": {"y": [-2, 2]}},
}


def write_config(tmp_path: Path, data: dict, name: str = "tiny.yaml") -> Path:
    """Writes a config (with scenario "short" pointing at a scenario file next to it)."""
    (tmp_path / "short.yaml").write_text(yaml.safe_dump(SHORT))
    text = yaml.safe_dump(data).replace("- short\n", f"- {tmp_path / 'short.yaml'}\n")
    path = tmp_path / name
    path.write_text(text)
    return path


def weights(path: Path) -> dict[str, np.ndarray]:
    import policies

    policy = policies.load(path)
    return {k: v.detach().numpy() for k, v in policy.net.state_dict().items()}


def test_mirror_is_an_involution_and_flips_the_turn():
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(5, 41)).astype(np.float32)
    act = rng.normal(size=(5, 2)).astype(np.float32)
    m_obs, m_act = mirror(obs, act)
    back_obs, back_act = mirror(m_obs, m_act)
    assert np.array_equal(back_obs, obs) and np.array_equal(back_act, act)
    assert np.array_equal(m_act[:, 1], -act[:, 1]) and np.array_equal(m_obs[:, 17], obs[:, 17])  # ray ahead stays
    assert np.array_equal(m_obs[:, 17 + 6], obs[:, 17 + 18])  # left 90° <- right 90°


def test_mirrored_episode_matches_the_mirrored_world(tmp_path):
    """Driving a scenario and its mirror image with mirrored actions gives mirrored observations."""
    base = {"version": 1, "name": "m", "time_limit_s": 5, "arena": {"size_m": [20, 20]},
            "robot": {"start": {"x": -7, "y": 1, "yaw_deg": 20}}, "goal": {"x": 5, "y": 3},
            "obstacles": [{"box": {"center": [-3, 2.5], "size": [1, 1, 1]}}]}
    flipped = json.loads(json.dumps(base))
    flipped["robot"]["start"] = {"x": -7, "y": -1, "yaw_deg": -20}
    flipped["goal"] = {"x": 5, "y": -3}
    flipped["obstacles"] = [{"box": {"center": [-3, -2.5], "size": [1, 1, 1]}}]
    from envs.terrain_nav import TerrainNavEnv

    out = []
    for data, sign in ((base, 1.0), (flipped, -1.0)):
        env = TerrainNavEnv(str(write_config(tmp_path, data, f"{sign}.yaml")))
        obs, _ = env.reset(seed=0)
        seq = [obs]
        for t in range(30):
            obs, *_ = env.step(np.array([0.7, sign * 0.4], dtype=np.float32))
            seq.append(obs)
        env.close()
        out.append(np.array(seq))
    m_obs, _ = mirror(out[0], np.zeros((len(out[0]), 2), np.float32))
    # contact noise makes the two runs differ a little (most in the roll rate); a wrong sign or
    # ray order would be off by the size of the signal
    assert np.allclose(m_obs, out[1], atol=0.12)
    assert np.abs(out[1][:, 1]).max() > 0.5


def test_the_teacher_labels_every_step_and_takes_over_with_its_probability():
    import policies

    env = TerrainNavEnv("flat")
    student, expert = policies.build({"kind": "liquid", "units": 16}), ExpertController()
    try:
        runs = {p: rollout(env, student, seed=1, teacher=expert, takeover=p, coin_seed=5, max_steps=40)
                for p in (0.0, 0.5, 1.0)}
        alone = rollout(env, student, seed=1, max_steps=40)
    finally:
        env.close()
    for traj in runs.values():
        assert traj.observations.shape == (41, 41) and traj.labels.shape == (40, 2)
        assert np.all(np.abs(traj.labels) <= 1.0)
    assert np.array_equal(runs[0.0].actions, alone.actions) and alone.labels is None  # the student drove
    assert np.array_equal(runs[1.0].actions, runs[1.0].labels)  # the expert drove
    mixed = runs[0.5]
    by_expert = np.all(mixed.actions == mixed.labels, axis=1)
    assert 0.2 < by_expert.mean() < 0.8


def test_bad_config_names_file_and_field(tmp_path):
    bad = dict(TINY, optim={"epoch": 2, "lr": 0.1})
    with pytest.raises(UsageError, match=r"tiny.yaml: optim.epoch: unknown field \(did you mean 'epochs'\?\)"):
        load_config(write_config(tmp_path, bad))
    bad = dict(TINY, seed="zero")
    with pytest.raises(UsageError, match=r"tiny.yaml: seed: must be an integer, got string 'zero'"):
        load_config(write_config(tmp_path, bad))
    bad = dict(TINY, scenarios={"train": ["flat", "no-such-place"]})
    with pytest.raises(UsageError, match=r"tiny.yaml: scenarios.train\[1\]: .*no-such-place"):
        load_config(write_config(tmp_path, bad))
    bad = dict(TINY, optim=dict(TINY["optim"], lr_min=0.01))
    with pytest.raises(UsageError, match=r"tiny.yaml: optim.lr_min: must be in \(0, lr\], got 0.01"):
        load_config(write_config(tmp_path, bad))
    bad = {k: v for k, v in TINY.items() if k != "policy"}
    with pytest.raises(UsageError, match=r"tiny.yaml: policy: missing required field"):
        load_config(write_config(tmp_path, bad))
    bad = dict(TINY, dagger=dict(TINY["dagger"], teacher="planner"))
    with pytest.raises(UsageError, match=r"tiny.yaml: dagger.teacher: must be one of expert, guided, guided-rescue, guided-escape, got 'planner'"):
        load_config(write_config(tmp_path, bad))


def test_cli_bad_config_exits_2_without_traceback(tmp_path):
    path = write_config(tmp_path, dict(TINY, dagger={"rounds": -1}))
    proc = subprocess.run([sys.executable, "-m", "navctl", "train", "--config", str(path), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2
    assert "dagger.rounds" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()  # failed before any work


@pytest.mark.slow
def test_tiny_training_learns_and_beats_the_untrained_policy(tmp_path):
    import policies
    from navctl.backends import Executor
    from navctl.train import _validation_tasks, run_episodes

    config = write_config(tmp_path, TINY)
    cfg = load_config(config)
    untrained = policies.build(cfg.policy)
    with Executor(workers=1) as executor:
        before = [t.success for t in run_episodes(executor, _validation_tasks(cfg, untrained))]
    card = train(str(config), out=str(tmp_path / "run"), show_progress=False)
    rounds = card["rounds"]
    assert rounds[-1]["loss"] < rounds[0]["loss"] or rounds[0]["loss"] < 0.05
    assert card["validation"]["success_rate"] > np.mean(before)
    metrics = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert len(metrics) == len(rounds) + 1
    assert {"collect_s", "fit_s", "validate_s"} <= set(metrics[0].split(","))
    for r in rounds:  # where the time went: the three phases make up the round
        assert min(r["collect_s"], r["fit_s"], r["validate_s"]) > 0
        assert r["collect_s"] + r["fit_s"] + r["validate_s"] == pytest.approx(r["seconds"], rel=0.05)
    assert card["time_s"]["fit"] == pytest.approx(sum(r["fit_s"] for r in rounds), abs=0.1)


def kill_after_first_round(config: Path, out: Path) -> int:
    """Starts `navctl train` in a process, SIGKILLs it once its first round is on disk;
    returns the rounds it had completed."""
    cmd = [sys.executable, "-m", "navctl", "train", "--config", str(config), "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:
        progress = out / "progress.json"
        if progress.exists() and json.loads(progress.read_text())["rounds_done"] >= 1:
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return json.loads((out / "progress.json").read_text())["rounds_done"]


@pytest.mark.slow
def test_resume_after_sigkill_gives_the_same_weights(tmp_path):
    config = write_config(tmp_path, dict(TINY, dagger=dict(TINY["dagger"], rounds=2)))
    full = tmp_path / "full"
    train(str(config), out=str(full), show_progress=False)

    killed = tmp_path / "killed"
    assert kill_after_first_round(config, killed) < 3
    train(str(config), out=str(killed), resume=True, show_progress=False)
    for name in ("model.safetensors", "best.safetensors"):  # the last round's and the one validation chose
        a, b = weights(full / name), weights(killed / name)
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{name}: {k}")


@pytest.mark.slow
def test_collection_on_ray_gives_the_same_data_and_weights_as_local_processes(tmp_path):
    pytest.importorskip("ray")
    small = dict(TINY, dagger=dict(TINY["dagger"], expert_episodes=3, episodes_per_round=2, max_episode_s=6.0),
                 optim=dict(TINY["optim"], epochs=1), scenarios=dict(TINY["scenarios"], validation_episodes=2),
                 workers=2)
    config = write_config(tmp_path, small)
    train(str(config), out=str(tmp_path / "local"), show_progress=False)
    train(str(config), out=str(tmp_path / "ray"), show_progress=False, backend="ray")
    for r in (0, 1):
        with np.load(tmp_path / "local" / "data" / f"round_{r}.npz") as a, \
                np.load(tmp_path / "ray" / "data" / f"round_{r}.npz") as b:
            assert sorted(a.files) == sorted(b.files)
            for k in a.files:
                np.testing.assert_array_equal(a[k], b[k], err_msg=f"round {r} {k}")
    a, b = weights(tmp_path / "local" / "model.safetensors"), weights(tmp_path / "ray" / "model.safetensors")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


PROCEDURAL = dict(  # a built-in-style file and procedural training, validated on procedural validation scenarios
    TINY, name="tiny-procedural",
    scenarios={"train": ["short", "procedural-train"], "validation": ["procedural-validation"],
               "validation_episodes": 2, "procedural_share": 0.5},
    dagger={"expert_episodes": 4, "rounds": 1, "episodes_per_round": 2, "beta_start": 0.5, "max_episode_s": 5.0},
    optim={"epochs": 2, "batch_episodes": 4, "chunk_steps": 40, "lr": 0.005})


def round_meta(run: Path, r: int) -> list[dict]:
    with np.load(run / "data" / f"round_{r}.npz") as z:
        return json.loads(z["meta"].tobytes().decode())


@pytest.mark.slow
def test_training_on_procedural_scenarios_end_to_end_and_resume_after_sigkill(tmp_path):
    from envs.scenarios import PROCEDURAL_SPLITS
    from navctl.evaluate import plan
    from navctl.scenario_sets import ProceduralSet
    from navctl.train import _validation_tasks

    config = write_config(tmp_path, PROCEDURAL)
    full = tmp_path / "full"
    card = train(str(config), out=str(full), show_progress=False)
    # half of every round's episodes on the short file, half on new procedural train scenarios
    # (seed 3 starts at train scenario 300000), never one twice
    metas = [round_meta(full, r) for r in (0, 1)]
    assert [[m["scenario_seed"] for m in ms] for ms in metas] == [[None, None, 300_000, 300_001], [None, 300_002]]
    assert all(m["scenario"] == f"procedural-{m['scenario_seed']}" for ms in metas for m in ms if m["scenario_seed"])
    assert [(r["distinct_scenarios"], r["procedural_scenarios"]) for r in card["rounds"]] == [(3, 2), (4, 3)]
    chosen = card["rounds"][card["chosen_round"]]  # the round validation chose describes the card
    assert card["distinct_scenarios"] == chosen["distinct_scenarios"] and card["data_steps"] == chosen["data_steps"] > 0
    assert card["validation"]["success_rate"] == max(r["val_success"] for r in card["rounds"])
    assert "distinct_scenarios" in (full / "metrics.csv").read_text().splitlines()[0]
    # validation: procedural validation scenarios 0 and 1, on the env seeds `navctl evaluate --seed 0` uses
    import policies

    tasks = _validation_tasks(load_config(config), policies.build(TINY["policy"]))
    assert [t.scenario.scenario_seed(t.seed) for t in tasks] == list(PROCEDURAL_SPLITS["validation"][:2])
    assert [t.seed for t in tasks] == [t.seed for t in plan(["x"], [ProceduralSet("validation")], 2, 0)]
    assert card["validation"]["procedural_scenarios"] == 2 and 0 <= card["validation"]["success_rate"] <= 1

    killed = tmp_path / "killed"
    assert kill_after_first_round(config, killed) == 1
    resumed = train(str(config), out=str(killed), resume=True, show_progress=False)
    assert round_meta(killed, 1) == metas[1] and resumed["rounds"][-1]["distinct_scenarios"] == 4
    a, b = weights(full / "model.safetensors"), weights(killed / "model.safetensors")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("scenarios, message", [
    ({"train": ["procedural-test"]}, r"scenarios.train\[0\]: procedural-test: train uses procedural-train"),
    ({"train": ["short", "procedural"]}, r"scenarios.train\[1\]: procedural: train uses procedural-train"),
    ({"validation": ["procedural-train"]}, r"scenarios.validation\[0\]: procedural-train: validation uses "
                                           r"procedural-validation"),
    ({"train": ["procedural-2000004"]}, r"scenarios.train\[0\]: procedural-2000004: a train scenario must come "
                                        r"from the procedural train split's seeds"),
    ({"train": []}, r"scenarios.train: names no scenario"),
    ({"train": ["procedural-train"], "procedural_share": 1.5}, r"scenarios.procedural_share: must be"),
])
def test_procedural_entries_stay_in_their_part(tmp_path, scenarios, message):
    bad = dict(TINY, scenarios=dict(TINY["scenarios"], **scenarios))
    with pytest.raises(UsageError, match=r"tiny.yaml: " + message):
        load_config(write_config(tmp_path, bad))


def test_procedural_share_splits_every_round_and_seeds_never_repeat(tmp_path):
    from navctl.train_config import first_procedural_index, procedural_episodes

    cfg = load_config(write_config(tmp_path, dict(PROCEDURAL, dagger=dict(PROCEDURAL["dagger"], rounds=3))))
    assert [procedural_episodes(cfg, r) for r in range(4)] == [2, 1, 1, 1]
    assert [first_procedural_index(cfg, r) for r in range(4)] == [300_000, 300_002, 300_003, 300_004]
    only = load_config(write_config(tmp_path, dict(PROCEDURAL, scenarios=dict(PROCEDURAL["scenarios"],
                                                                              train=["procedural-train"]))))
    assert [procedural_episodes(only, r) for r in range(2)] == [4, 2]  # no built-in: every episode
    assert [procedural_episodes(load_config(write_config(tmp_path, TINY)), r) for r in range(2)] == [0, 0]


def test_a_run_started_before_a_config_field_existed_still_resumes(tmp_path):
    from navctl.run_directory import RunDirectory

    config = write_config(tmp_path, TINY)
    cfg = load_config(config)
    with RunDirectory(tmp_path / "run", cfg, str(config), resume=False) as run:
        state = dict(run.state, config=json.loads(json.dumps(run.state["config"])), config_digest="older")
    del state["config"]["scenarios"]["procedural_share"]  # as a run from before the field wrote it
    (tmp_path / "run" / "progress.json").write_text(json.dumps(state))
    with RunDirectory(tmp_path / "run", cfg, str(config), resume=True) as run:
        assert run.rounds_done == 0
    state["config"]["seed"] = 4
    (tmp_path / "run" / "progress.json").write_text(json.dumps(state))
    with pytest.raises(UsageError, match="different config or seed"):
        RunDirectory(tmp_path / "run", cfg, str(config), resume=True)
