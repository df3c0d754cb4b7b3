"""benchmarks/soak.py runs, counts what it drove and reports memory; a bad scenario stops it first."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOAK = [sys.executable, str(REPO / "benchmarks" / "soak.py")]


def test_a_small_soak_counts_every_episode_and_step() -> None:
    proc = subprocess.run([*SOAK, "--rounds", "3", "--max-steps", "4", "--full-every", "0", "--quiet",
                           "--scenarios", "flat,slick-clutter"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    # 3 rounds x 2 scenarios x 2 sources, 4 steps each (nothing ends a drive within 0.2 s)
    assert re.match(r"12 episodes \(0 run to their end\) over 2 scenarios x random/policy, 48 control steps in ", lines[0])
    assert lines[1] == "non-finite observations or rewards: 0" and lines[2] == "errors: 0"
    assert "endings: capped 12" in lines
    assert re.search(r"memory \(RSS\): \d+ MiB at start, \d+ MiB after the warm-up \(4 episodes\), \d+ MiB at the end",
                     proc.stdout)


def test_a_bad_scenario_stops_the_soak_before_any_episode(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: bad\narena: {size_m: [100000, 100000]}\n"
                   "robot: {start: {x: 0, y: 0}}\ngoal: {x: 3, y: 0}\n")
    proc = subprocess.run([*SOAK, "--sources", "random", "--scenarios", f"flat,{bad}"], capture_output=True,
                          text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"soak: error: {bad}: arena.size_m[0]: must be <= 50 (the largest arena: the cost of every " \
                          "reset grows with its area), got 100000\n"
