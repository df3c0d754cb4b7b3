"""navctl evaluate against the real simulator: outputs, determinism across workers and
backends, faults, resume, names, gates. A short user scenario keeps every episode ~1 s."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from navctl import gate, policy_names
from navctl.cli import main
from navctl.episode import COLUMNS, episode_seed
from navctl.errors import UsageError
from navctl.summary import bootstrap_ci, paired_difference, paired_differences
from policies.base import Policy

SHORT = """\
version: 1
name: short
description: A 5 m drive; the left motor fades at 2 s.
time_limit_s: 9
arena: {size_m: [10, 10]}
robot: {start: {x: -2.5, y: 0, yaw_deg: 0}}
goal: {x: 2.5, y: 0, radius_m: 0.5}
randomize: {start: {y: [-1, 1], yaw_deg: [-20, 20]}}
events:
  - {at_time_s: 2, set: {motor_gain: {left: 0.4}}}
"""


@pytest.fixture
def short(tmp_path) -> str:
    path = tmp_path / "short.yaml"
    path.write_text(SHORT)
    return str(path)


def evaluate(out: Path, scenario: str, *extra: str, policies: str = "expert,classical", episodes: int = 2,
             workers: int = 1) -> int:
    return main(["evaluate", "--policies", policies, "--scenarios", scenario, "--episodes", str(episodes),
                 "--seed", "3", "--workers", str(workers), "--out", str(out), *extra])


def rows(out: Path) -> list[dict[str, str]]:
    with open(out / "episodes.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_writes_every_output_with_the_schema(tmp_path, short, capsys):
    out = tmp_path / "eval"
    assert evaluate(out, short) == 0
    for name in ("episodes.csv", "summary.json", "summary.md", "results.png", "adaptation.png"):
        assert (out / name).stat().st_size > 0, name
    table = rows(out)
    assert list(table[0]) == COLUMNS
    assert [(r["policy"], r["episode"]) for r in table] == [("expert", "0"), ("expert", "1"),
                                                            ("classical", "0"), ("classical", "1")]
    assert all(r["status"] == "ok" for r in table)
    # seeds depend on the base seed, scenario and index only: the same for both policies
    assert table[0]["seed"] == table[2]["seed"] == str(episode_seed(3, "short", 0))
    event = json.loads(table[0]["events"])[0]
    assert {"time_s", "rate_before", "rate_after", "recovery_s", "recovered", "set", "position"} <= set(event)

    summary = json.loads((out / "summary.json").read_text())
    assert [(r["policy"], r["scenario"]) for r in summary["results"]] == [("expert", "short"), ("classical", "short")]
    result = summary["results"][0]
    for key in ("episodes", "success_rate", "spl", "soft_spl", "collision_rate", "mean_time_to_goal_s",
                "recovery_rate", "mean_recovery_s", "success_rate_ci", "spl_ci", "errors"):
        assert key in result, key
    assert result["episodes"] == 2 and result["errors"] == 0
    run = summary["run"]
    assert run["seed"] == 3 and run["command"].startswith("navctl evaluate") and "numpy" in run["versions"]
    assert run["wall_time_s"] > 0
    # classical against expert, paired over the same two episodes
    (diff,) = summary["differences"]
    assert (diff["policy"], diff["reference"], diff["scenario"], diff["pairs"]) == ("classical", "expert", "short", 2)
    by = {(r["policy"], r["episode"]): r for r in table}
    expected = np.mean([float(by["classical", e]["spl"]) - float(by["expert", e]["spl"]) for e in "01"])
    assert diff["spl"] == pytest.approx(expected)
    assert diff["spl_ci"][0] <= diff["spl"] <= diff["spl_ci"][1]
    md = (out / "summary.md").read_text()
    assert "## short" in md and "| expert |" in md and "| classical |" in md
    assert "Paired against expert" in md and "| classical | 2 |" in md
    assert "## short" in capsys.readouterr().out  # the Markdown is printed too


def test_paired_differences_pair_the_same_episodes_and_narrow_the_interval():
    rng = np.random.default_rng(0)
    hardness = rng.uniform(0.2, 1.0, 200)  # what both policies share, episode by episode
    rows = []
    for policy, bonus in (("a", 0.0), ("b", 0.05)):
        for e, h in enumerate(hardness):
            rows.append({"policy": policy, "scenario": "s", "episode": e, "seed": 100 + e, "status": "ok",
                         "success": True, "spl": min(h + bonus, 1.0)})
    rows.append({"policy": "b", "scenario": "s", "episode": 200, "seed": 300, "status": "ok", "success": False,
                 "spl": 0.0})  # unpaired: a has no such episode
    rows[3]["status"] = "error"  # a's episode 3 did not finish: not a pair
    (d,) = paired_differences(rows, ["a", "b"], ["s"])
    assert d["pairs"] == 199 and d["success_rate"] == 0.0 and d["success_rate_ci"] == [0.0, 0.0]
    kept = [e for e in range(200) if e != 3]
    assert d["spl"] == pytest.approx(np.mean([min(hardness[e] + 0.05, 1.0) - hardness[e] for e in kept]))
    paired_width = d["spl_ci"][1] - d["spl_ci"][0]
    a_ci = bootstrap_ci([hardness[e] for e in kept])
    assert 0 < paired_width < 0.2 * (a_ci[1] - a_ci[0])  # the shared hardness cancels
    assert paired_differences(rows, ["a"], ["s"]) == []
    with pytest.raises(ValueError, match="3 values against 2"):
        paired_difference([1, 2, 3], [1, 2])


def test_seeds_are_stable_and_independent_of_everything_else():
    assert episode_seed(0, "flat", 0) == episode_seed(0, "flat", 0) == 1634427897
    assert len({episode_seed(s, n, i) for s in (0, 1) for n in ("flat", "hills") for i in range(3)}) == 12


@pytest.fixture
def checkpoint(tmp_path) -> str:
    """An untrained liquid policy saved as a checkpoint file (the liquid network's own code path)."""
    import policies
    from policies.checkpoint import save_policy

    path = tmp_path / "liquid-untrained.safetensors"
    save_policy(policies.build({"kind": "liquid"}), path)
    return str(path)


def test_checkpoint_paths_and_frozen_names_resolve(checkpoint):
    assert policy_names.make_policy(checkpoint).plasticity
    assert not policy_names.make_policy(checkpoint + "-frozen").plasticity
    with pytest.raises(UsageError, match="no such file"):
        policy_names.make_policy("missing/liquid.safetensors")
    with pytest.raises(UsageError, match="no plastic synapses"):
        policy_names.make_policy("expert-frozen")


def test_rows_are_identical_for_one_and_two_workers(tmp_path, short, checkpoint):
    policies = f"expert,{checkpoint}"
    assert evaluate(tmp_path / "w1", short, policies=policies, workers=1) == 0
    assert evaluate(tmp_path / "w2", short, policies=policies, workers=2) == 0
    table = rows(tmp_path / "w1")
    assert {r["policy"] for r in table} == {"expert", checkpoint} and all(r["status"] == "ok" for r in table)
    assert (tmp_path / "w1" / "episodes.csv").read_bytes() == (tmp_path / "w2" / "episodes.csv").read_bytes()


@pytest.mark.slow
def test_ray_backend_matches_local(tmp_path, short):
    pytest.importorskip("ray")
    assert evaluate(tmp_path / "local", short, workers=1) == 0
    assert evaluate(tmp_path / "ray", short, "--backend", "ray", workers=2) == 0
    assert (tmp_path / "local" / "episodes.csv").read_bytes() == (tmp_path / "ray" / "episodes.csv").read_bytes()


class Broken(Policy):
    """Drives for a few steps, then raises."""

    name = "broken"

    def reset(self, batch_size: int = 1) -> None:
        self.steps = 0

    def act(self, obs, info=None):
        self.steps += 1
        if self.steps > 5:
            raise RuntimeError("actuator on fire")
        return np.zeros(2, np.float32)


def test_an_episode_that_raises_is_recorded_and_the_run_goes_on(tmp_path, short, monkeypatch, capsys):
    real = policy_names.make_policy
    monkeypatch.setattr(policy_names, "make_policy", lambda name: Broken() if name == "broken" else real(name))
    out = tmp_path / "eval"
    assert evaluate(out, short, policies="broken,expert") == 0
    table = rows(out)
    assert [r["status"] for r in table] == ["error", "error", "ok", "ok"]
    assert table[0]["error"] == "RuntimeError: actuator on fire"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["results"][0]["errors"] == 2 and summary["results"][0]["episodes"] == 0
    assert summary["results"][0]["success_rate"] is None
    assert summary["results"][1]["episodes"] == 2
    assert "2 episode(s) failed" in capsys.readouterr().err


def test_resume_runs_only_the_missing_episodes(tmp_path, short, capsys):
    out = tmp_path / "eval"
    assert evaluate(out, short, policies="expert", episodes=3) == 0
    complete = (out / "episodes.csv").read_text()
    lines = complete.splitlines(keepends=True)
    # a kill after the first episode, in the middle of writing the second row
    (out / "episodes.csv").write_text("".join(lines[:2]) + lines[2][:30])
    capsys.readouterr()
    assert evaluate(out, short, "--resume", policies="expert", episodes=3) == 0
    assert "(2 episodes run, 1 resumed" in capsys.readouterr().out
    assert (out / "episodes.csv").read_text() == complete
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["episodes_resumed"] == 1 and summary["results"][0]["episodes"] == 3


@pytest.mark.parametrize("args, listed", [
    (["--policies", "expert,nosuchpolicy", "--scenarios", "flat"], "liquid-frozen, liquid-ltc, cfc, lstm, mlp, lsm, lsm-frozen, classical, classical-escape, expert"),
    (["--policies", "expert", "--scenarios", "flat,nosuchscenario"], "black-ice-obstacle, clutter, flat"),
    (["--policies", "expert", "--scenarios", "flat", "--no-such-flag"], "unrecognized arguments"),
])
def test_bad_names_exit_2_with_one_line_and_the_valid_names(tmp_path, args, listed):
    proc = subprocess.run([sys.executable, "-m", "navctl", "evaluate", *args, "--out", str(tmp_path / "x")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("navctl evaluate: error: ") and proc.stderr.count("\n") == 1
    assert listed in proc.stderr
    assert not (tmp_path / "x" / "episodes.csv").exists()


def test_module_entry_point_works(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "navctl.evaluate", "--policies", "nosuch", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("navctl evaluate: error: unknown policy 'nosuch'")


def write_gate(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_gate_passes_and_fails_with_the_metric_policy_and_scenario(tmp_path, short, capsys):
    out = tmp_path / "eval"
    assert evaluate(out, short, policies="expert") == 0
    capsys.readouterr()
    ok = write_gate(tmp_path / "ok.yaml", "thresholds:\n  - {policy: expert, metric: spl, min: 0.5}\n"
                                          "  - {metric: errors, max: 0}\n")
    assert evaluate(out, short, "--resume", "--gate", ok, policies="expert") == 0
    assert "gate passed" in capsys.readouterr().out
    strict = write_gate(tmp_path / "strict.yaml", "thresholds:\n  - {policy: expert, scenario: sh*, metric: success_rate, min: 1.5}\n")
    assert evaluate(out, short, "--resume", "--gate", strict, policies="expert") == 1
    err = capsys.readouterr().err
    assert "gate failed: expert on short: success_rate 1 < min 1.5" in err
    typo = write_gate(tmp_path / "typo.yaml", "thresholds:\n  - {policy: expret, metric: spl, min: 0.5}\n")
    assert evaluate(out, short, "--resume", "--gate", typo, policies="expert") == 1
    assert "no result matches policy 'expret'" in capsys.readouterr().err


@pytest.mark.parametrize("text, message", [
    ("thresholds:\n  - {metric: spl, mni: 0.5}\n", "gate.yaml: thresholds[0].mni: unknown field"),
    ("thresholds:\n  - {metric: speed, min: 0.5}\n", "gate.yaml: thresholds[0].metric: must be one of"),
    ("thresholds:\n  - {metric: spl}\n", "gate.yaml: thresholds[0]: needs 'min' or 'max'"),
    ("thresholds:\n  - {metric: spl, min: high}\n", "gate.yaml: thresholds[0].min: must be a number"),
    ("limits: []\n", "gate.yaml: limits: unknown field"),
    ("thresholds: [\n", "gate.yaml: line 2: malformed YAML"),
])
def test_gate_files_are_validated(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    Path("gate.yaml").write_text(text)
    with pytest.raises(UsageError) as e:
        gate.load_gate("gate.yaml")
    assert str(e.value).startswith(message)


def test_a_procedural_split_runs_the_same_scenarios_for_every_seed_worker_count_and_resume(tmp_path, short, capsys):
    def run(name: str, seed: str, workers: str, *extra: str) -> list[dict[str, str]]:
        assert main(["evaluate", "--policies", "classical", "--scenarios", f"procedural-test,{short}", "--episodes", "2",
                     "--seed", seed, "--workers", workers, "--out", str(tmp_path / name), *extra]) == 0
        return rows(tmp_path / name)

    a, b = run("a", "3", "1"), run("b", "4", "2")
    for table in (a, b):  # episode i runs test scenario i, whatever the seed
        assert [(r["scenario"], r["scenario_seed"]) for r in table] == [
            ("procedural-test", "2000000"), ("procedural-test", "2000001"), ("short", ""), ("short", "")]
        assert all(r["status"] == "ok" and int(r["seed"]) % 10_000 == int(r["episode"]) for r in table[:2])
    assert a[0]["seed"] != b[0]["seed"]  # ... while --seed still changes the episode's randomize draws
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert [(r["scenario"], r["episodes"]) for r in summary["results"]] == [("procedural-test", 2), ("short", 2)]
    assert "## procedural-test" in (tmp_path / "a" / "summary.md").read_text()

    run("c", "3", "2")  # two workers: the same bytes
    assert (tmp_path / "a" / "episodes.csv").read_bytes() == (tmp_path / "c" / "episodes.csv").read_bytes()
    lines = (tmp_path / "a" / "episodes.csv").read_text().splitlines(keepends=True)
    (tmp_path / "a" / "episodes.csv").write_text("".join(lines[:2]) + lines[2][:40])  # killed mid-row
    capsys.readouterr()
    run("a", "3", "1", "--resume")
    assert "(3 episodes run, 1 resumed" in capsys.readouterr().out
    assert (tmp_path / "a" / "episodes.csv").read_bytes() == (tmp_path / "c" / "episodes.csv").read_bytes()


def test_too_many_episodes_for_a_split_and_unknown_procedural_names_are_usage_errors(tmp_path, capsys):
    assert evaluate(tmp_path / "x", "procedural-validation", episodes=10_001) == 2
    assert "error: --episodes 10001: procedural-validation has only 10000 scenarios" in capsys.readouterr().err
    assert evaluate(tmp_path / "x", "procedural-tst") == 2
    assert "error: procedural-tst: unknown procedural name (use procedural, procedural-train, " \
           "procedural-validation, procedural-test or procedural-<seed>)" in capsys.readouterr().err
    assert not (tmp_path / "x" / "episodes.csv").exists()
