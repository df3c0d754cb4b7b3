"""The classical controller's escape (`classical-escape`, ClassicalConfig.escape) in the real
simulator: out of the U where the classical controller stays, the same actions where it does
not stall, and a learned policy correcting it (`base: classical-escape`) carries the escape."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import policies
from envs.scenarios import from_dict, generate
from envs.terrain_nav import TerrainNavEnv
from navctl.errors import UsageError
from navctl.policy_names import classical_controller, make_policy, with_base
from navctl.train_config import load_config
from policies.checkpoint import load_policy, save_policy
from test_policy_checkpoint import older_checkpoint
from test_rescue import drive as drive_probed
from test_rescue import u_trap


def drive(env: TerrainNavEnv, policy, seed: int) -> tuple[dict, list[np.ndarray], list[float]]:
    """One episode: the final info, the actions and, each step, the side the escape drove on
    (+1 / -1), 0 while it did not (a residual policy's escape is its base's)."""
    controller = getattr(policy, "base", None) or policy
    return drive_probed(env, policy, seed, lambda _: controller.escape_side(0) if controller.escaping(0) else 0.0)


@pytest.fixture(scope="module")
def u_env():
    env = TerrainNavEnv(from_dict(u_trap(time_limit_s=45), "u-trap.yaml"))
    yield env
    env.close()


def test_the_escape_gets_out_of_the_u_where_the_classical_controller_stays(u_env):
    stuck, _, _ = drive(u_env, classical_controller(), seed=0)
    out, _, sides = drive(u_env, make_policy("classical-escape"), seed=0)
    assert stuck["termination"] == "time_limit" and not stuck["is_success"]
    assert out["is_success"], out["termination"]
    first = int(np.argmax(np.array(sides) != 0))
    assert first > 100, "the escape starts only after 6 s without progress"
    escaping = np.array(sides[first:]) != 0
    run = sides[first:first + int(np.argmin(escaping))]  # the first escape, to its hand-back
    assert run and run[0] in (-1.0, 1.0) and all(s == run[0] for s in run), "one side for the whole escape"
    assert sides[-1] == 0, "it hands back to the goal-seeking route once out"


def test_without_a_stall_it_acts_exactly_like_the_classical_controller():
    env = TerrainNavEnv("procedural-train")
    try:
        info_off, off, _ = drive(env, classical_controller(), seed=0)
        info_on, on, sides = drive(env, classical_controller(escape=True), seed=0)
    finally:
        env.close()
    assert info_off["is_success"] and info_on["is_success"] and not any(sides)
    assert len(on) == len(off) > 50 and np.array_equal(np.array(on), np.array(off))


def test_a_policy_correcting_classical_escape_carries_the_escape_and_its_checkpoint_keeps_it(u_env, tmp_path):
    policy = policies.build(with_base({"kind": "mlp", "base": "classical-escape"}))
    assert policy.config.base_escape and policy.base.config.escape
    with torch.no_grad():  # a zero residual: the policy drives as its base does
        policy.net.mlp[-1].weight.zero_()
        policy.net.mlp[-1].bias.zero_()
    save_policy(policy, tmp_path / "p.safetensors")
    loaded = load_policy(tmp_path / "p.safetensors")
    assert loaded.config.base_escape
    info, actions, sides = drive(u_env, loaded, seed=0)
    _, base_actions, base_sides = drive(u_env, classical_controller(escape=True), seed=0)
    assert info["is_success"] and any(sides)
    np.testing.assert_array_equal(np.array(actions), np.array(base_actions))
    assert sides == base_sides


def test_training_configs_name_the_escaping_base(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: r\npolicy: {kind: cfc, base: classical-escape}\n")
    assert load_config(str(path)).policy["base_escape"] is True
    path.write_text("name: r\npolicy: {kind: cfc, base: classical}\n")
    assert load_config(str(path)).policy["base_escape"] is False
    path.write_text("name: r\npolicy: {kind: cfc, base: escape}\n")
    with pytest.raises(UsageError, match=r"c.yaml: policy: base must be 'classical' or 'classical-escape'"):
        load_config(str(path))
    with pytest.raises(ValueError, match="base_escape needs a base"):
        policies.build({"kind": "cfc", "base_escape": True})
    # a checkpoint from before base_escape: its base is the plain classical controller
    old = older_checkpoint(policies.build(with_base({"kind": "cfc", "base": "classical-escape"})),
                           tmp_path / "old.safetensors", without=("base_escape",))
    cfc = load_policy(old)
    assert cfc.config.base is not None and not cfc.config.base_escape and not cfc.base.config.escape


def test_the_unstick_backs_out_of_a_climb_where_the_classical_controller_stalls():
    # Procedural scenario 1000108 (a validation scenario), reset seed 0: 27.5+ kg of payload
    # driving up a hill through mud; the classical controller pushes on without moving.
    env = TerrainNavEnv(generate(1000108))
    try:
        stuck, _, _ = drive_probed(env, classical_controller(), seed=0, probe=lambda _: None)
        controller = classical_controller(escape=True)
        out, actions, unsticking = drive_probed(env, controller, seed=0, probe=lambda _: controller.unsticking(0))
    finally:
        env.close()
    assert stuck["termination"] == "time_limit"
    assert out["is_success"], out["termination"]
    steps = np.flatnonzero(unsticking)
    assert len(steps) > 0 and np.all(np.array(actions)[steps, 0] < 0), "it backs away from the climb it stalled on"


def test_the_unstick_fires_after_asking_to_move_without_moving_and_alternates():
    controller = classical_controller(escape=True)
    robot, cfg = controller.robot, controller.config
    layout = robot.obs_layout
    obs = np.zeros(max(s.stop for s in layout.values()), dtype=np.float32)
    obs[layout["goal_distance"]] = 5.0
    obs[layout["goal_bearing"]] = (0.0, 1.0)  # straight ahead
    obs[layout["lidar"]] = robot.lidar_range_m  # open ground

    def run(prev_action: tuple[float, float], steps: int, forward_mps: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """`steps` steps in which prev_action was applied and the body moved at forward_mps:
        the actions and whether the unstick drove each."""
        obs[layout["prev_action"]] = prev_action
        obs[layout["lin_vel"].start] = forward_mps
        out = [(controller.act(obs), controller.unsticking(0)) for _ in range(steps)]
        return np.array([a for a, _ in out]), np.array([u for _, u in out])

    after, lasts = round(cfg.unstick_after_s / robot.control_dt_s), round(cfg.unstick_s / robot.control_dt_s)
    controller.reset(1)
    actions, unsticking = run((0.8, -0.3), after + lasts + 10)  # asked forward, turning right; nothing moves
    fired = np.flatnonzero(unsticking)
    assert abs(fired[0] + 1 - after) <= 1, "it waits unstick_after_s"
    assert abs(len(fired) - lasts) <= 1 and np.all(np.diff(fired) == 1), "one manoeuvre of unstick_s"
    assert np.all(actions[fired, 0] < 0) and np.all(actions[fired, 1] < 0), "reverse, still turning right"
    assert np.all(actions[fired[-1] + 1:, 0] > 0), "then the route again"
    actions, unsticking = run((-0.6, -0.3), after + 1)  # the manoeuvre led nowhere: the other way
    assert unsticking[-1] and actions[-1, 0] > 0

    controller.reset(1)
    _, unsticking = run((0.8, -0.3), 3 * after, forward_mps=0.5)  # the same asks while moving never fire
    assert not unsticking.any()
