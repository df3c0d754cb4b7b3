"""The guided teacher's observable escape (ExpertConfig.escape) in the real simulator: it
follows a wall on one committed side out of the local minimum the classical route stalls
in, and changes nothing where the route does not stall."""
from __future__ import annotations

import numpy as np
import pytest

from envs.scenarios import from_dict
from envs.terrain_nav import TerrainNavEnv
from navctl.expert import ExpertConfig, GuidedExpert
from test_rescue import assert_no_action_changes_without_a_stall, u_trap
from test_rescue import drive as drive_probed

WALL_GAP_SEED = 11  # procedural train scenario 11: layout wall-gap, where the guided teacher times out


def drive(env: TerrainNavEnv, teacher: GuidedExpert, seed: int) -> tuple[dict, list[np.ndarray], list[float]]:
    """One episode driven by `teacher`: the final info, its actions and, each step, the side
    the escape drives on (+1 / -1) or 0 while it does not drive."""
    return drive_probed(env, teacher, seed, lambda t: t.escape_side(0) if t.rescuing(0) else 0.0)


def escapes(sides: list[float]) -> list[list[float]]:
    """The runs of consecutive steps the escape drove, each as its steps' sides."""
    runs: list[list[float]] = []
    for prev, side in zip([0.0] + sides, sides):
        if side != 0 and prev == 0:
            runs.append([])
        if side != 0:
            runs[-1].append(side)
    return runs


@pytest.mark.slow
def test_escape_gets_the_guided_teacher_through_a_wall_gap_on_one_side():
    env = TerrainNavEnv("procedural-train")
    try:
        old, _, _ = drive(env, GuidedExpert(), seed=WALL_GAP_SEED)
        new, _, sides = drive(env, GuidedExpert(ExpertConfig(escape=True)), seed=WALL_GAP_SEED)
    finally:
        env.close()
    assert "layout wall-gap" in env.scenario.description
    assert old["termination"] == "time_limit"  # the classical route wanders in front of the wall
    assert new["is_success"], new["termination"]
    runs = escapes(sides)
    assert sides[0] == 0 and runs, "the classical route should drive first, then the escape"
    for run in runs:  # the side is chosen at the stall and kept until the hand-back
        assert run[0] in (-1.0, 1.0) and all(s == run[0] for s in run), f"the side changed during an escape: {set(run)}"
    assert sides[-1] == 0, "the escape should hand back to the classical route once out"


def test_escape_gets_out_of_a_u_trap():
    """The U of tests/test_rescue.py, where the guided teacher stays: following the U's
    inside on one side leads round its arm."""
    env = TerrainNavEnv(from_dict(u_trap(time_limit_s=45), "u-trap.yaml"))
    try:
        info, _, sides = drive(env, GuidedExpert(ExpertConfig(escape=True)), seed=0)
    finally:
        env.close()
    assert info["is_success"], info["termination"]
    assert escapes(sides)


def test_without_a_stall_the_escape_changes_no_action():
    assert_no_action_changes_without_a_stall(ExpertConfig(escape=True))


def test_rescue_and_escape_are_alternatives():
    with pytest.raises(ValueError, match="rescue and escape are alternatives"):
        GuidedExpert(ExpertConfig(rescue=True, escape=True))
