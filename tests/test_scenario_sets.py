"""navctl.scenario_sets: what --scenarios names, and how episodes map to env seeds and to the
generated scenario the env runs (checked against the env's own info)."""
from __future__ import annotations

import pytest

from envs import scenarios
from envs.terrain_nav import TerrainNavEnv
from navctl.errors import UsageError
from navctl.scenario_sets import ProceduralSet, env_seed, resolve


@pytest.mark.parametrize("split", ["test", "validation", "train"])
def test_episode_i_of_a_split_runs_its_scenario_i_for_every_base_seed(split):
    env = TerrainNavEnv(f"procedural-{split}")
    source = ProceduralSet(split)
    try:
        for base, index in ((0, 0), (7, 0), (7, 3)):
            seed = env_seed(source, base, index)
            assert 0 <= seed < 2 ** 32
            _, info = env.reset(seed=seed)
            assert info["scenario_seed"] == source.scenario_seed(seed) == scenarios.procedural_seed(split, index)
            assert info["scenario"] == f"procedural-{info['scenario_seed']}"
    finally:
        env.close()
    assert env_seed(source, 0, 0) != env_seed(source, 7, 0)  # the base seed still varies the episode


def test_plain_procedural_takes_the_env_seed_mod_2_to_the_31():
    env = TerrainNavEnv("procedural")
    source = ProceduralSet()
    try:
        for seed in (env_seed(source, 0, 0), 2 ** 31 + 5):
            _, info = env.reset(seed=seed)
            assert info["scenario_seed"] == source.scenario_seed(seed) == seed % 2 ** 31
    finally:
        env.close()


def test_resolve_mixes_splits_names_generated_scenarios_and_procedural_sets():
    found = resolve(["eval", "procedural-test", "procedural-17", "flat", "procedural"])
    assert [s.name for s in found] == [*scenarios.names("eval"), "procedural-test", "procedural-17", "flat", "procedural"]
    assert found[len(scenarios.names("eval")) + 1] == scenarios.generate(17)
    with pytest.raises(UsageError, match="procedural-test has 10000 scenarios: episode 10000 is beyond it"):
        ProceduralSet("test").reset_seed(0, 10_000)
