"""benchmarks/seed_results.py: numbers over training seeds from episodes.csv files.

The aggregation tests write episode rows by hand (they test the arithmetic, not the
simulator); the scenarios they name are real (built-in files, generated procedural seeds), so
which episodes count as "with a mid-episode change" comes from the real scenario definitions.
One end-to-end test runs a real `navctl evaluate` on two checkpoints.
"""
from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from envs import scenarios as scenario_files
from navctl.cli import main as navctl_main

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "seed_results.py"
_spec = importlib.util.spec_from_file_location("seed_results", SCRIPT)
seed_results = importlib.util.module_from_spec(_spec)
sys.modules["seed_results"] = seed_results  # a script, not a package module: dataclasses look it up here
_spec.loader.exec_module(seed_results)

COLUMNS = ["policy", "scenario", "episode", "seed", "scenario_seed", "status", "error", "success", "spl",
           "events_fired"]
STATIC, CHANGING = "black-ice-obstacle", "mud-right-fade"  # eval scenarios without / with an event


def test_seed_picks_have_the_events_the_tests_assume():
    assert scenario_files.load(STATIC).split == scenario_files.load(CHANGING).split == "eval"
    assert not scenario_files.load(STATIC).events and scenario_files.load(CHANGING).events


@pytest.fixture(scope="module")
def procedural_seeds() -> tuple[int, int]:
    """A test-split generator seed whose scenario has an event, and one whose has none."""
    found: dict[bool, int] = {}
    for i in range(50):
        seed = scenario_files.procedural_seed("test", i)
        found.setdefault(bool(scenario_files.generate(seed).events), seed)
        if len(found) == 2:
            return found[True], found[False]
    pytest.fail("no test scenario with and one without events among the first 50")


def row(policy: str, scenario: str, episode: int, success: int, spl: float, *, scenario_seed: str = "",
        status: str = "ok", events_fired: int = 0) -> dict[str, object]:
    return {"policy": policy, "scenario": scenario, "episode": episode, "seed": 1000 + episode,
            "scenario_seed": scenario_seed, "status": status, "error": "" if status == "ok" else "boom",
            "success": success if status == "ok" else "", "spl": spl if status == "ok" else "",
            "events_fired": events_fired}


def write(directory: Path, rows: list[dict[str, object]], columns: list[str] = COLUMNS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "episodes.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return directory


def eval_rows(policy: str, successes: list[int], spls: list[float]) -> list[dict[str, object]]:
    """Episodes 0..n-1 on the eval split: the first half on STATIC, the second on CHANGING; a
    STATIC episode claims an event fired, which must not put it in the change subset."""
    half = len(successes) // 2
    return [row(policy, STATIC if i < half else CHANGING, i % half if half else i, s, p, events_fired=1)
            for i, (s, p) in enumerate(zip(successes, spls))]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = seed_results.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def find(results: list[dict], test_set: str, name: str) -> dict:
    ts = next(t for t in results if t["test_set"] == test_set)
    return next(r for r in ts["rows"] if r["name"] == name)


# --- the numbers -----------------------------------------------------------------------------------
def test_mean_std_min_max_and_worst_seed_over_a_group(tmp_path, capsys):
    rows = (eval_rows("runs/liquid-s0.safetensors", [1, 1, 1, 1], [0.9, 0.8, 1.0, 0.9])
            + eval_rows("runs/liquid-s1.safetensors", [1, 0, 0, 1], [0.6, 0.0, 0.0, 0.8])
            + eval_rows("runs/liquid-s2.safetensors", [0, 1, 1, 1], [0.0, 0.7, 0.9, 0.8])
            + eval_rows("classical", [1, 0, 1, 1], [0.5, 0.0, 0.7, 0.6]))
    code, out, _ = run(capsys, write(tmp_path / "ev", rows), "--group", "liquid=runs/liquid-s*.safetensors",
                       "--out", tmp_path / "res")
    assert code == 0
    results = json.loads((tmp_path / "res" / "results.json").read_text())["test_sets"]
    assert not (tmp_path / "res" / "differences.png").exists()  # only with --compare
    liquid = find(results, "eval", "liquid")
    assert liquid["seeds"] == [f"runs/liquid-s{i}.safetensors" for i in range(3)]
    success = liquid["all"]["success_rate"]
    assert success["mean"] == pytest.approx(0.75) and success["std"] == pytest.approx(0.25)
    assert (success["min"], success["max"]) == (pytest.approx(0.5), pytest.approx(1.0))
    spl = liquid["all"]["spl"]
    assert spl["mean"] == pytest.approx(np.mean([0.9, 0.35, 0.6]))
    assert spl["std"] == pytest.approx(np.std([0.9, 0.35, 0.6], ddof=1))
    assert liquid["all"]["worst"] == {"policy": "runs/liquid-s1.safetensors", "success_rate": 0.5,
                                      "spl": pytest.approx(0.35)}
    classical = find(results, "eval", "classical")
    assert not classical["group"] and classical["all"]["success_rate"]["mean"] == pytest.approx(0.75)
    assert classical["all"]["success_rate"]["std"] is None
    assert "| liquid | 3 | 4 | 0.75 ± 0.25 | 0.50–1.00 | 0.62 ± 0.28 | 0.35–0.90 | 0.50 / 0.35 (liquid-s1.safetensors) |" in out


def test_compare_pairs_the_same_episodes_per_subset_and_resolves_shipped_groups(tmp_path, capsys):
    rows = (eval_rows("s0", [1, 1, 1, 1], [0.9, 0.8, 1.0, 0.9])
            + eval_rows("s1", [1, 0, 1, 1], [0.9, 0.0, 0.9, 0.9])
            + eval_rows("classical", [1, 0, 0, 1], [0.5, 0.0, 0.0, 0.6])
            + [row("classical", CHANGING, 7, 1, 0.9)])  # an episode the others did not run: no pair
    code, out, _ = run(capsys, write(tmp_path / "ev", rows), "--group", "liquid=s*", "--shipped", "liquid=s0",
                       "--compare", "liquid,classical", "--compare", "s1,s0", "--out", tmp_path / "res")
    assert code == 0
    (ts,) = json.loads((tmp_path / "res" / "results.json").read_text())["test_sets"]
    d = {(x["policy"], x["reference"], x["subset"]): x for x in ts["differences"]}
    everything = d["liquid", "classical", "all"]  # liquid = its shipped checkpoint s0
    assert everything["pairs"] == 4 and everything["success_rate"] == pytest.approx(0.5)
    assert everything["spl"] == pytest.approx(np.mean([0.4, 0.8, 1.0, 0.3]))
    change = d["liquid", "classical", "change"]  # the CHANGING half: episodes 2 and 3
    assert change["pairs"] == 2 and change["success_rate"] == pytest.approx(0.5)
    assert change["success_rate_ci"] == [0.0, 1.0]
    assert d["s1", "s0", "all"]["success_rate"] == pytest.approx(-0.25)
    assert d["s1", "s0", "all"]["success_rate_ci"][0] < -0.2 < d["s1", "s0", "all"]["success_rate_ci"][1] <= 0
    assert "| liquid − classical | all episodes | 4 | +0.500 [" in out
    assert (tmp_path / "res" / "differences.png").stat().st_size > 0


def test_change_subset_is_chosen_by_the_scenario_not_by_the_run(tmp_path, capsys):
    rows = (eval_rows("a-s0", [0, 0, 1, 1], [0.0, 0.0, 0.9, 0.7])
            + eval_rows("a-s1", [1, 1, 0, 1], [1.0, 1.0, 0.0, 0.5]))
    code, _, _ = run(capsys, write(tmp_path / "ev", rows), "--group", "a=a-s*", "--out", tmp_path)
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())["test_sets"]
    (ts,) = results
    assert ts["change_episodes_per_policy"] == {"a-s0": 2, "a-s1": 2}  # the CHANGING episodes only
    change = find(results, "eval", "a")["change"]
    assert change["per_seed"]["a-s0"] == {"episodes": 2, "errors": 0, "success_rate": 1.0, "spl": pytest.approx(0.8)}
    assert change["per_seed"]["a-s1"]["success_rate"] == 0.5
    assert change["worst"]["policy"] == "a-s1"
    assert find(results, "eval", "a")["all"]["worst"]["policy"] == "a-s0"  # 0.50 vs 0.75 over all episodes


def test_procedural_episodes_form_their_own_set_and_change_comes_from_the_generated_scenario(
        tmp_path, capsys, procedural_seeds):
    with_event, without = procedural_seeds
    rows = [row("p", "procedural-test", 0, 1, 0.9, scenario_seed=str(with_event)),
            row("p", "procedural-test", 1, 0, 0.0, scenario_seed=str(without), events_fired=2),
            row("p", "procedural-test", 2, 0, 0.0, scenario_seed=str(with_event)),
            row("p", "payload-pickup", 0, 1, 0.5),  # a train-split scenario with an event
            *eval_rows("p", [1, 0], [0.4, 0.0])]
    code, out, _ = run(capsys, write(tmp_path / "ev", rows), "--out", tmp_path)
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())["test_sets"]
    assert [t["test_set"] for t in results] == ["procedural-test", "train", "eval"]
    p = find(results, "procedural-test", "p")
    assert p["all"]["per_seed"]["p"]["success_rate"] == pytest.approx(1 / 3)
    assert p["change"]["per_seed"]["p"] == {"episodes": 2, "errors": 0, "success_rate": 0.5, "spl": 0.45}
    assert find(results, "train", "p")["change"]["per_seed"]["p"]["episodes"] == 1
    assert find(results, "eval", "p")["change"]["per_seed"]["p"]["success_rate"] == 0.0
    assert "## procedural-test: episodes with a mid-episode change (2 episodes per policy)" in out


def test_generated_scenarios_are_built_once_per_seed(procedural_seeds, monkeypatch):
    calls: list[int] = []
    real = scenario_files.generate
    monkeypatch.setattr(scenario_files, "generate", lambda seed: calls.append(seed) or real(seed))
    facts = seed_results.ScenarioFacts()
    episodes = [seed_results.Episode(f"p{k}", "procedural-test", 0, 1, procedural_seeds[0], 1.0, 1.0, "x")
                for k in range(5)]
    assert all(facts.has_change(e) for e in episodes) and calls == [procedural_seeds[0]]


def test_shipped_column_failed_episodes_and_repeated_inputs(tmp_path, capsys):
    seeds = (eval_rows("s0", [1, 1], [1.0, 1.0]) + eval_rows("s1", [0, 1], [0.0, 0.5])
             + [row("s1", CHANGING, 1, 0, 0.0, status="error")])
    shipped = eval_rows("liquid", [1, 0], [0.8, 0.0]) + eval_rows("classical", [1, 1], [0.7, 0.7])
    first, second = write(tmp_path / "a", seeds), write(tmp_path / "b", shipped + seeds[:2])  # s0 twice, same result
    code, out, _ = run(capsys, first, second, "--group", "liquid=s?", "--shipped", "liquid=liquid",
                       "--out", tmp_path / "res")
    assert code == 0
    results = json.loads((tmp_path / "res" / "results.json").read_text())["test_sets"]
    assert [r["name"] for r in results[0]["rows"]] == ["liquid", "classical"]  # the shipped one is in its group's row
    liquid = find(results, "eval", "liquid")
    assert liquid["all"]["shipped"] == {"episodes": 2, "errors": 0, "success_rate": 0.5, "spl": 0.4}
    assert liquid["all"]["per_seed"]["s1"] == {"episodes": 2, "errors": 1, "success_rate": 0.5, "spl": 0.25}
    assert liquid["all"]["per_seed"]["s0"]["episodes"] == 2
    assert "| liquid | 2 | 2 (1 errors) | 0.75 ± 0.35 | 0.50–1.00 |" in out and "| 0.50 / 0.40 |" in out
    assert (tmp_path / "res" / "results.md").read_text() + "\n" == out
    assert (tmp_path / "res" / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_seed_missing_from_a_test_set_is_not_counted_there(tmp_path, capsys, procedural_seeds):
    with_event, _ = procedural_seeds
    rows = (eval_rows("s0", [1, 1], [0.9, 0.9]) + eval_rows("s1", [1, 0], [0.8, 0.0])
            + [row(s, "procedural-test", 0, 1, 0.7, scenario_seed=str(with_event)) for s in ("s0", "s1", "s2")])
    code, out, _ = run(capsys, write(tmp_path / "ev", rows), "--group", "liquid=s?")
    assert code == 0
    assert "| liquid | 3 | 1 | 1.00 ± 0.00 |" in out  # procedural-test: all three seeds
    assert "| liquid | 2 of 3 | 0–2 | 0.75 ± 0.35 |" in out  # eval: s2 has no episodes there


# --- bad input ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("case, message", [
    ("missing", "no such file"),
    ("nomatch", "--group x=nothing*: matches no policy of the input (s0, s1)"),
    ("column", "no column spl"),
    ("spec", "--group 'liquid': expected NAME=VALUE"),
    ("shipped", "--shipped liquid=gone: no policy 'gone'"),
    ("shipped-group", "--shipped other=s0: no --group named 'other'"),
    ("two-groups", "policy 's0' matches two groups: a, b"),
    ("scenario", "scenario 'my-own' is neither built-in nor procedural"),
    ("same-name", "--group s0: the policy 's0' is in the input too"),
    ("differs", "with a different result"),
    ("value", "column success: not a number"),
    ("compare", "--compare 's0': expected A,B"),
    ("compare-name", "--compare: 'gone' is neither a policy of the input nor a group with --shipped"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case, message):
    rows = eval_rows("s0", [1, 0], [0.5, 0.0]) + eval_rows("s1", [1, 1], [0.5, 0.5])
    good = write(tmp_path / "good", rows)
    argv = {"missing": [tmp_path / "nowhere"],
            "nomatch": [good, "--group", "x=nothing*"],
            "column": [write(tmp_path / "c", rows, [c for c in COLUMNS if c != "spl"])],
            "spec": [good, "--group", "liquid"],
            "shipped": [good, "--group", "liquid=s*", "--shipped", "liquid=gone"],
            "shipped-group": [good, "--group", "liquid=s*", "--shipped", "other=s0"],
            "two-groups": [good, "--group", "a=s*", "--group", "b=s0"],
            "same-name": [good, "--group", "s0=s1"],
            "scenario": [write(tmp_path / "s", [row("s0", "my-own", 0, 1, 1.0)])],
            "differs": [good, write(tmp_path / "d", [row("s0", STATIC, 0, 0, 0.0)])],
            "value": [write(tmp_path / "v", [row("s0", STATIC, 0, "yes", 1.0)])],
            "compare": [good, "--compare", "s0"],
            "compare-name": [good, "--compare", "s0,gone"]}[case]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("seed_results: error: ") and message in err and err.count("\n") == 1


def test_the_script_exits_2_without_a_traceback(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "nowhere")], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().endswith("no such file (give navctl evaluate output directories or episodes.csv files)")
    usage = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1 and "inputs" in usage.stderr


# --- end to end -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_real_evaluation_of_two_checkpoints_and_their_frozen_twins(tmp_path, capsys):
    import policies
    from policies.checkpoint import save_policy

    paths = [str(save_policy(policies.build({"kind": "liquid", "seed": s}), tmp_path / f"liquid-s{s}.safetensors"))
             for s in (0, 1)]
    names = ",".join([*paths, *(p + "-frozen" for p in paths)])
    assert navctl_main(["evaluate", "--policies", names, "--scenarios", "procedural-test", "--episodes", "2",
                        "--workers", "2", "--out", str(tmp_path / "ev"), "--no-progress"]) == 0
    capsys.readouterr()
    code, out, _ = run(capsys, tmp_path / "ev", "--group", f"liquid={tmp_path}/liquid-s*.safetensors",
                       "--group", f"liquid-frozen={tmp_path}/liquid-s*.safetensors-frozen", "--out", tmp_path / "res")
    assert code == 0
    assert "| liquid | 2 | 2 |" in out and "| liquid-frozen | 2 | 2 |" in out
    results = json.loads((tmp_path / "res" / "results.json").read_text())["test_sets"]
    assert [t["test_set"] for t in results] == ["procedural-test"]
    expected = sum(bool(scenario_files.generate(scenario_files.procedural_seed("test", i)).events) for i in range(2))
    assert set(results[0]["change_episodes_per_policy"].values()) == {expected}
    assert find(results, "procedural-test", "liquid-frozen")["seeds"] == [p + "-frozen" for p in paths]


def test_seed_labels_keep_what_tells_the_seeds_apart():
    seeds = ["runs/seeds/liquid-s0/best.safetensors", "runs/seeds/liquid-s1/best.safetensors"]
    assert seed_results.seed_label(seeds[1], seeds) == "liquid-s1/best.safetensors"
    flat = ["runs/seeds/liquid-s0.safetensors-frozen", "runs/seeds/liquid-s1.safetensors-frozen"]
    assert seed_results.seed_label(flat[0], flat) == "liquid-s0.safetensors-frozen"
    assert seed_results.seed_label("s1", ["s0", "s1"]) == "s1"


def test_the_shipped_checkpoint_can_be_one_of_the_seeds(tmp_path, capsys):
    rows = (eval_rows("liquid", [1, 1, 1, 0], [0.9, 0.8, 1.0, 0.0])
            + eval_rows("runs/seeds/liquid-s1/best.safetensors", [1, 0, 0, 1], [0.6, 0.0, 0.0, 0.8]))
    code, out, _ = run(capsys, write(tmp_path / "ev", rows), "--group",
                       "liquid=liquid, runs/seeds/liquid-s*/best.safetensors", "--shipped", "liquid=liquid",
                       "--out", tmp_path / "res")
    assert code == 0
    results = json.loads((tmp_path / "res" / "results.json").read_text())["test_sets"]
    assert [r["name"] for r in results[0]["rows"]] == ["liquid"]
    liquid = find(results, "eval", "liquid")
    assert liquid["seeds"] == ["liquid", "runs/seeds/liquid-s1/best.safetensors"]
    assert liquid["all"]["success_rate"]["mean"] == pytest.approx(0.625)
    assert liquid["all"]["shipped"]["success_rate"] == 0.75
    assert liquid["all"]["worst"]["policy"] == "runs/seeds/liquid-s1/best.safetensors"
