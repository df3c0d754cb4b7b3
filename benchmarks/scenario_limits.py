"""What the scenario limits buy: time to reject hostile files, and reset time at the limits.

Rows (wall seconds, best of --repeat, and the ratio to a reference measured in the same run):
  - rejecting each hostile file of issue 17 (50 MB, a 100 km arena, 100000 random boxes,
    a 1e9 kg payload, a 1e6 m hill) and a junk file just under MAX_FILE_BYTES that is
    malformed at its very end (the slowest rejection: the whole file is parsed);
  - reading the largest file the count limits admit, against the built-in `flat`;
  - one `reset` of a scenario at every limit at once (a 50 m arena, 200 obstacles, 50 hills,
    50 zones, the roughest ground), against one `reset` of `flat`.

    python benchmarks/scenario_limits.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Callable

import yaml

from envs import scenarios
from envs.scenarios import ScenarioError, limits
from envs.terrain_nav import TerrainNavEnv

FLAT = (scenarios.BUILTIN_DIR / "flat.yaml").read_text()


def largest() -> dict:
    """A valid scenario at every count limit, in a 50 m arena."""
    side = limits.MAX_ARENA_SIDE_M
    n_fixed = limits.MAX_OBSTACLES - 100
    return {
        "version": 1, "name": "largest", "time_limit_s": limits.MAX_TIME_LIMIT_S,
        "arena": {"size_m": [side, side], "roughness_m": limits.MAX_ROUGHNESS_M,
                  "hills": [{"center": [-20 + i % 10 * 4.5, -20 + i // 10 * 9], "radius_m": 3, "height_m": 0.5}
                            for i in range(limits.MAX_HILLS)]},
        "robot": {"start": {"x": -23, "y": 0}}, "goal": {"x": 23, "y": 0},
        "surfaces": [{"name": "ice", "circle": {"center": [-20 + i % 10 * 4.5, -22 + i // 10 * 9], "radius_m": 1.5},
                      "friction": 0.1} for i in range(limits.MAX_SURFACES)],
        "obstacles": [{"box": {"center": [-20 + i % 20 * 2.1, 3 + i // 20 * 2], "size": [0.5, 0.5, 1]}}
                      for i in range(n_fixed)]
                     + [{"random": {"count": 100, "min_size_m": 0.3, "max_size_m": 1.0}}],
        "events": [{"at_time_s": i, "set": {"friction_scale": 0.9}} for i in range(limits.MAX_EVENTS)],
    }


def hostile(tmp: Path) -> dict[str, Path]:
    """Issue 17's hostile files, and the slowest junk to reject."""
    def edit(name: str, old: str, new: str) -> Path:
        assert old in FLAT, old
        path = tmp / f"{name}.yaml"
        path.write_text(FLAT.replace(old, new, 1))
        return path

    big = tmp / "50mb.yaml"
    with open(big, "wb") as f:
        f.truncate(50 * 1024 * 1024)
    junk = tmp / "junk.yaml"
    line = "- {center: [1.5, 2.5], size: [1, 1, 1], yaw_deg: 30}\n"
    junk.write_text(line * ((limits.MAX_FILE_BYTES - 10) // len(line)) + "]\n")
    return {
        "50 MB file": big,
        "arena 100000 m": edit("arena", "size_m: [20, 20]", "size_m: [100000, 100000]"),
        "100000 random boxes": edit("boxes", "robot:", "obstacles: [{random: {count: 100000, min_size_m: 0.3, "
                                                       "max_size_m: 1}}]\nrobot:"),
        "payload 1e9 kg": edit("payload", "payload_kg: 0\n", "payload_kg: 1.0e+9\n"),
        "hill 1e6 m": edit("hill", "walls: true", "walls: true\n  hills: [{center: [0, 0], radius_m: 3, "
                                                  "height_m: 1.0e+6}]"),
        f"junk just under {limits.MAX_FILE_BYTES // 1024} KiB": junk,
    }


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def rejected(path: Path) -> Callable[[], str]:
    def run() -> str:
        try:
            scenarios.load(path)
        except ScenarioError as e:
            return str(e)
        raise AssertionError(f"{path} was accepted")
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "largest.yaml"
        big.write_text(yaml.safe_dump(largest(), default_flow_style=None, width=200))
        ref_parse = best(lambda: scenarios.parse(FLAT, "flat.yaml"), args.repeat)
        print(f"reading flat.yaml ({len(FLAT)} bytes): {ref_parse * 1e3:.1f} ms (reference)")
        t = best(lambda: scenarios.load(big), args.repeat)
        print(f"reading the largest valid file ({big.stat().st_size} bytes): {t:.3f} s = {t / ref_parse:.0f}x")
        for label, path in hostile(Path(tmp)).items():
            t = best(rejected(path), args.repeat)
            print(f"rejecting {label}: {t:.3f} s = {t / ref_parse:.0f}x  -> {rejected(path)().split(': ', 1)[1]}")
        flat, full = TerrainNavEnv("flat"), TerrainNavEnv(scenarios.load(big))
        ref_reset = best(lambda: flat.reset(seed=0), args.repeat)
        t = best(lambda: full.reset(seed=0), args.repeat)
        print(f"reset of flat: {ref_reset:.3f} s (reference); reset at every limit: {t:.3f} s = {t / ref_reset:.1f}x")


if __name__ == "__main__":
    main()
