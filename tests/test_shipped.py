"""The shipped checkpoints: they load by name, their model cards match the committed configs,
and the default `liquid` policy drives (a CI gate on fixed seeded episodes)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import policies
from envs.terrain_nav import TerrainNavEnv
from navctl.rollout import rollout
from navctl.train_config import load_config, validate_config

REPO = Path(__file__).resolve().parent.parent
SHIPPED = ("liquid", "liquid-ltc", "cfc", "lstm", "mlp", "lsm")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoint_loads_and_card_matches_config(name):
    policy = policies.load(name)
    card = json.loads((policies.CHECKPOINT_DIR / f"{name}.json").read_text())
    config = load_config(REPO / "configs" / f"{name}.yaml")
    assert validate_config(card["config"], "card") == config  # read with today's defaults for fields added since
    assert card["config_file"] == f"configs/{name}.yaml"
    assert policy.config.kind == config.policy["kind"]
    for key, value in config.policy.items():
        assert getattr(policy.config, key) == value, key
    assert card["num_parameters"] == policy.num_parameters
    assert card["data_steps"] > 0 and card["training_wall_time_s"] > 0
    assert 0.0 <= card["validation"]["success_rate"] <= 1.0
    obs = np.zeros(41, np.float32)
    policy.reset(1)
    assert np.all(np.abs(policy.act(obs)) <= 1.0)


@pytest.mark.parametrize("scenario,seed", [("flat", 11), ("flat", 12), ("left-motor-fade", 11), ("left-motor-fade", 12)])
def test_shipped_liquid_policy_reaches_the_goal(scenario, seed):
    env = TerrainNavEnv(scenario)
    traj = rollout(env, policies.load("liquid"), seed=seed)
    env.close()
    assert traj.success, f"{scenario} seed {seed}: {traj.termination}, {traj.distance[-1]:.1f} m from the goal"
