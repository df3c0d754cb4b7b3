"""run_sim.py / navctl run: the run directory, the table, the twin policy, the video."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from navctl import policy_names, run
from navctl.errors import UsageError
from policies.base import Policy

REPO = Path(__file__).resolve().parent.parent
TINY = """\
version: 1
name: tiny
description: A 3 m drive; the right motor fades at 1 s.
time_limit_s: {limit}
arena: {{size_m: [8, 8]}}
robot: {{start: {{x: -1.5, y: 0, yaw_deg: 0}}}}
goal: {{x: 1.5, y: 0, radius_m: 0.5}}
obstacles:
  - {{cylinder: {{center: [0, 2], radius_m: 0.3}}}}
events:
  - {{at_time_s: 1, set: {{motor_gain: {{right: 0.5}}}}}}
"""


def tiny(tmp_path: Path, limit: float = 8) -> str:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.format(limit=limit))
    return str(path)


def test_run_sim_writes_the_run_directory_and_a_video(tmp_path):
    out, video = tmp_path / "run", tmp_path / "ep0.mp4"
    proc = subprocess.run([sys.executable, str(REPO / "run_sim.py"), "--scenario", tiny(tmp_path), "--policy", "expert",
                           "--episodes", "2", "--seed", "1", "--out", str(out), "--video", str(video)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for name in ("summary.json", "episodes.csv", "trajectory.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "trajectory.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert video.stat().st_size > 1000
    summary = json.loads((out / "summary.json").read_text())
    assert [r["policy"] for r in summary["results"]] == ["expert", "classical"]  # the expert's twin
    with open(out / "episodes.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 4
    # the table: one line per episode and policy, with the event and its recovery
    lines = [line for line in proc.stdout.splitlines() if line.startswith(("expert ", "classical "))]
    assert len(lines) == 4
    assert all("right motor x0.5" in line for line in lines)


@pytest.mark.slow
def test_run_sim_with_no_arguments(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "run_sim.py")], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (out,) = (tmp_path / "runs").iterdir()  # runs/<timestamp>/
    assert {"summary.json", "episodes.csv", "trajectory.png"} <= {p.name for p in out.iterdir()}
    policies = [r["policy"] for r in json.loads((out / "summary.json").read_text())["results"]]
    if (REPO / "policies" / "checkpoints" / "liquid.safetensors").exists():
        assert policies == ["liquid", "liquid-frozen"]
    else:  # the checkpoint was removed: the expert, clearly labelled
        assert policies == ["expert", "classical"] and "missing" in proc.stderr
    assert "right motor x0.35" in proc.stdout


def test_gif_video(tmp_path):
    from envs.scenarios import load

    path = tmp_path / "ep.gif"
    assert run.write_video(path, load(tiny(tmp_path, limit=1.5)), "classical", seed=0) is None
    assert path.read_bytes()[:6] == b"GIF89a"


class Plastic(Policy):
    name = "plastic"
    _on = True

    @property
    def plasticity(self) -> bool:
        return self._on

    @plasticity.setter
    def plasticity(self, on: bool) -> None:
        self._on = on


def test_twin_of_a_plastic_policy_is_the_same_policy_frozen(monkeypatch):
    monkeypatch.setattr(policy_names, "_load", lambda name: Plastic())
    assert run.choose_policies("liquid", no_plasticity=False) == ("liquid", "liquid-frozen", None)
    assert run.choose_policies("liquid", no_plasticity=True) == ("liquid-frozen", "liquid", None)
    assert run.choose_policies(None, no_plasticity=False) == ("liquid", "liquid-frozen", None)


def test_without_a_liquid_checkpoint_the_default_falls_back_to_the_expert(monkeypatch):
    def missing(name):
        raise UsageError(f"policy {name!r}: its checkpoint is missing")

    monkeypatch.setattr(policy_names, "_load", missing)
    policy, twin, note = run.choose_policies(None, no_plasticity=False)
    assert (policy, twin) == ("expert", "classical") and "missing" in note
    with pytest.raises(UsageError):  # asked for by name: an error, not a silent substitute
        run.choose_policies("liquid", no_plasticity=False)


def test_non_plastic_policies_cannot_be_frozen():
    with pytest.raises(UsageError, match="no plastic synapses"):
        run.choose_policies("classical", no_plasticity=True)
    assert run.choose_policies("classical", no_plasticity=False) == ("classical", None, None)


def test_bad_video_name_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "run_sim.py"), "--video", "x.avi", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr == "navctl run: error: --video: x.avi: the file must end in .mp4 or .gif\n"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs xvfb-run for a virtual display")
def test_gui_runs_on_a_virtual_display(tmp_path):
    proc = subprocess.run(["xvfb-run", "-a", sys.executable, str(REPO / "run_sim.py"), "--gui", "--policy", "classical",
                           "--scenario", tiny(tmp_path, limit=2), "--episodes", "1", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "GUI in real time" in proc.stdout and (tmp_path / "run" / "trajectory.png").exists()


def test_a_procedural_split_runs_its_scenarios_and_the_table_names_them(tmp_path, capsys):
    from navctl.cli import main

    out = tmp_path / "run"
    assert main(["run", "--scenario", "procedural-test", "--policy", "classical", "--episodes", "2", "--workers", "1",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("procedural-test: the procedural test split")
    lines = printed.splitlines()
    header = next(line for line in lines if line.startswith("policy "))
    assert "scenario seed" in header
    rows = [line.split() for line in lines if line.startswith("classical ")]
    assert [row[1:3] for row in rows] == [["0", "2000000"], ["1", "2000001"]]
    assert (out / "trajectory.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(out / "episodes.csv", newline="") as f:
        assert [r["scenario_seed"] for r in csv.DictReader(f)] == ["2000000", "2000001"]
