#!/usr/bin/env python
"""A simulated navigation run: `python run_sim.py [options]` is `navctl run [options]`.

With no arguments the shipped plastic liquid policy drives a built-in scenario with a
mid-episode change for a few seeded episodes, headless, and writes runs/<timestamp>/
(summary.json, episodes.csv, trajectory.png). `python run_sim.py --help` lists the options.
"""
import sys

from navctl.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
