"""navctl scenarios: list the built-in suite, check scenario files, show one as text or a map.

    navctl scenarios list [--split train|eval]     # name, split, one-line description
    navctl scenarios check FILE...                 # exit 0, or one line per bad file and exit 2
    navctl scenarios show NAME|FILE [--out map.png]

`check` prints each bad file's error as the library raises it (`file: field: reason`) on
stderr, or how many files are valid on stdout. Errors of the command itself (an unknown
name for `show`, an unwritable --out) are one line `navctl scenarios: error: ...`, exit 2. `show --out` draws the arena map of `trajectory.png` (zones, hills, obstacles, event
trigger zones) with the start and goal ranges and one draw of the random boxes.
"""
from __future__ import annotations

import argparse
import sys
import numpy as np

from envs import scenarios
from envs.scenarios import Scenario, ScenarioError
from navctl.errors import UsageError
from navctl.scenario_text import describe

RANDOM_DRAW_SEED = 0  # the draw of random boxes `show` prints and draws


def configure_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="{list,check,show}", required=True)
    listing = actions.add_parser("list", help="the built-in scenarios: name, split, description")
    listing.add_argument("--split", choices=scenarios.SPLITS, help="only this split")
    check = actions.add_parser("check", help="validate scenario files; one line per bad file, exit 2 if any")
    check.add_argument("files", nargs="+", metavar="FILE")
    show = actions.add_parser("show", help="a scenario as text; with --out its arena map as a PNG")
    show.add_argument("scenario", metavar="NAME|FILE")
    show.add_argument("--out", metavar="MAP.png", help="also draw the arena map into this PNG")


def list_lines(split: str | None) -> list[str]:
    """One line per built-in scenario: name, split, description, in aligned columns."""
    found = [scenarios.load(n) for n in scenarios.names(split)]
    width = max(len(sc.name) for sc in found)
    return [f"{sc.name:<{width}}  {sc.split:<5}  {sc.description}" for sc in found]


def check_lines(files: list[str]) -> list[str]:
    """The error of every file that does not validate (empty when all do)."""
    bad = []
    for name in files:
        try:
            scenarios.load(name)
        except ScenarioError as e:
            bad.append(str(e))
    return bad


def random_draw(sc: Scenario) -> tuple:
    """One draw of the scenario's random boxes (seeded), placed around the start and goal as written."""
    from envs.terrain import Terrain

    if sc.random_obstacles is None:
        return ()
    start, goal = np.array([sc.robot.start.x, sc.robot.start.y]), np.array([sc.goal.x, sc.goal.y])
    drawn = Terrain.draw(sc, np.random.default_rng(RANDOM_DRAW_SEED), start, goal, friction_scale=1.0)
    return drawn.obstacles[len(sc.obstacles):]  # fixed first, then random


def _show(args: argparse.Namespace) -> int:
    sc = scenarios.load(args.scenario)
    print("\n".join(describe(sc)))
    if args.out:
        from navctl.plots import plot_scenario_map

        boxes = random_draw(sc)  # a ScenarioError here (boxes that cannot be placed) is the user's to fix
        try:
            plot_scenario_map(sc, args.out, boxes)
        except OSError as e:
            raise UsageError(f"cannot write {args.out}: {e.strerror or e}") from None
        print(f"map: {args.out}" + (f" (random boxes: the draw of seed {RANDOM_DRAW_SEED})" if boxes else ""))
    return 0


def main(args: argparse.Namespace) -> int:
    if args.action == "list":
        print("\n".join(list_lines(args.split)))
        return 0
    if args.action == "check":
        bad = check_lines(args.files)
        for line in bad:
            print(line, file=sys.stderr)
        if not bad:
            print(f"{len(args.files)} scenario file{'s' if len(args.files) > 1 else ''} valid")
        return 2 if bad else 0
    return _show(args)
