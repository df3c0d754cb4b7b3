"""navctl scenarios: list the built-in suite, check scenario files, show one as text or a map,
write generated scenarios out as files.

    navctl scenarios list [--split train|eval]     # name, split, one-line description
    navctl scenarios check FILE...                 # exit 0, or one line per bad file and exit 2
    navctl scenarios show NAME|FILE [--out map.png]   # NAME may be a generated procedural-<seed>
    navctl scenarios generate --split test [--first I] [--count N] --out DIR   # DIR/procedural-<seed>.yaml
    navctl scenarios generate --seed S [--count N] --out DIR                     # generator seeds S..S+N-1

`check` prints each bad file's error as the library raises it (`file: field: reason`) on
stderr, or how many files are valid on stdout. Errors of the command itself (an unknown
name for `show`, an unwritable --out) are one line `navctl scenarios: error: ...`, exit 2. `show --out` draws the arena map of `trajectory.png` (zones, hills, obstacles, event
trigger zones) with the start and goal ranges and one draw of the random boxes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from envs import scenarios
from envs.scenarios import Scenario, ScenarioError
from navctl.errors import UsageError
from navctl.io import atomic_write_text
from navctl.scenario_sets import ProceduralSet, load_one
from navctl.scenario_text import describe

RANDOM_DRAW_SEED = 0  # the draw of random boxes `show` prints and draws


def configure_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="{list,check,show,generate}", required=True)
    listing = actions.add_parser("list", help="the built-in scenarios: name, split, description")
    listing.add_argument("--split", choices=scenarios.SPLITS, help="only this split")
    check = actions.add_parser("check", help="validate scenario files; one line per bad file, exit 2 if any")
    check.add_argument("files", nargs="+", metavar="FILE")
    show = actions.add_parser("show", help="a scenario as text; with --out its arena map as a PNG")
    show.add_argument("scenario", metavar="NAME|FILE")
    show.add_argument("--out", metavar="MAP.png", help="also draw the arena map into this PNG")
    generate = actions.add_parser("generate", help="write generated scenarios as YAML files DIR/procedural-<seed>.yaml")
    generate.add_argument("--split", choices=list(scenarios.PROCEDURAL_SPLITS),
                          help="scenarios of this procedural split, from number --first on")
    generate.add_argument("--first", type=int, default=None, help="with --split: the first scenario's index (default 0)")
    generate.add_argument("--seed", type=int, default=None, help="instead of --split: the first generator seed")
    generate.add_argument("--count", type=int, default=1, help="how many scenarios (default 1)")
    generate.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory to write them into")


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


def generator_seeds(split: str | None, first: int | None, seed: int | None, count: int) -> range:
    """The generator seeds `generate` writes: `count` scenarios of a split from index `first`,
    or `count` seeds from `seed`. UsageError names the flag that is wrong."""
    if count < 1:
        raise UsageError(f"--count must be >= 1, got {count}")
    if (split is None) == (seed is None):
        raise UsageError("give either --split (train, validation, test) or --seed")
    if seed is not None:
        if first is not None:
            raise UsageError("--first goes with --split; with --seed the first scenario is seed S")
        if seed < 0:
            raise UsageError(f"--seed must be >= 0, got {seed}")
        return range(seed, seed + count)
    first = first or 0
    seeds = scenarios.PROCEDURAL_SPLITS[split]
    if first < 0 or first + count > len(seeds):
        raise UsageError(f"--first {first} --count {count}: the {split} split has scenarios 0..{len(seeds) - 1}")
    return seeds[first:first + count]


def _generate(args: argparse.Namespace) -> int:
    seeds = generator_seeds(args.split, args.first, args.seed, args.count)
    out: Path = args.out
    try:
        out.mkdir(parents=True, exist_ok=True)
        for seed in seeds:
            atomic_write_text(out / f"procedural-{seed}.yaml", scenarios.dump(scenarios.generate(seed)))
    except OSError as e:
        raise UsageError(f"cannot write into {out}: {e.strerror or e}") from None
    names = f"procedural-{seeds[0]}.yaml" + (f" .. procedural-{seeds[-1]}.yaml" if len(seeds) > 1 else "")
    print(f"wrote {len(seeds)} scenario file{'s' if len(seeds) > 1 else ''} into {out}: {names}")
    return 0


def _show(args: argparse.Namespace) -> int:
    sc = load_one(args.scenario)  # a name, a file or a generated procedural-<seed>
    if isinstance(sc, ProceduralSet):
        raise UsageError(f"{sc.name} is a new scenario every episode; show one of them, e.g. procedural-"
                         f"{sc.seeds[0]}")
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
    if args.action == "generate":
        return _generate(args)
    return _show(args)
