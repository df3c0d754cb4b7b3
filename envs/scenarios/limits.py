"""The bounds a scenario must stay within, with the reason for each (README: "Limits").

A scenario outside them is rejected by the parser with the usual one-line error
`<file>: <field path>: <reason>`. Anything that writes scenarios (the procedural generator,
a user's script) stays within them. Lengths are metres, masses kilograms, times seconds.
Measured costs are from one core of the development machine (see README).
"""
from __future__ import annotations

# --- the file -------------------------------------------------------------------------------
# PyYAML's pure-Python parser reads about 50 KiB per second on the shared 2-core development
# machine; 32 KiB keeps every verdict (good or bad) under a second and is more than the
# largest file that fits the count limits below needs (200 obstacles in flow style: 16 KiB).
MAX_FILE_BYTES = 32 * 1024

# --- sizes and counts: what one reset builds (0.1 m grid maps, a 0.2 m heightfield, A*) --------
# A 50 m x 50 m arena with every count at its maximum resets in 1.4 s (40x the built-in
# `flat`; benchmarks/scenario_limits.py); the cost grows with the area (the maps, the plan)
# and with the counts (one body and one map pass each).
MAX_ARENA_SIDE_M = 50.0
# Every other length or coordinate (centres, sizes, radii): nothing in an arena is bigger
# or farther from its centre than the largest arena itself.
MAX_LENGTH_M = MAX_ARENA_SIDE_M
MAX_OBSTACLES = 200  # fixed obstacles plus the random `count`
MAX_HILLS = 50
MAX_SURFACES = 50
MAX_EVENTS = 50
# Random placement draws a spot up to this many times per obstacle before it gives up with
# an error (a spot is refused only when it lies within keep_clear_m of the start or goal).
RANDOM_PLACEMENT_TRIES = 200
# 10 simulated minutes (12000 control steps): a 50 m arena's diagonal is 71 m at 1 m/s.
MAX_TIME_LIMIT_S = 600.0

# --- physics -----------------------------------------------------------------------------------
# Clearpath's rated payload for the Husky. With it the robot weighs 125 kg (50 kg of its own);
# four wheels at 30 N*m on a 0.178 m radius push 675 N, enough for a 33 degree slope.
MAX_PAYLOAD_KG = 75.0
# Hills are terrain to drive over. A gaussian hill's steepest slope is about 1.2 * height /
# radius_m, so 5 m is already a wall at radii that fit the arena; the tallest built-in is 0.9 m.
MAX_HILL_HEIGHT_M = 5.0
# Bumps of U(-a, a) every 0.6 m make slopes near 2a / 0.6: at 0.2 m that is 34 degrees, about
# the steepest the loaded robot climbs; higher bumps are walls, not rough ground.
MAX_ROUGHNESS_M = 0.2
# Tyre rubber on real ground stays below about 1.2 (dry asphalt); 2 leaves room for sticky test
# surfaces. The same bound holds for the scale that events and randomize multiply it by.
MAX_FRICTION = 2.0
MAX_FRICTION_SCALE = 2.0
# drag is the fraction of wheel torque lost, so it lies in [0, 1) by its meaning.
# A standard deviation of 1 (m for lidar and odometry, m/s, rad/s and rad for the IMU) already
# drowns what each sensor measures: ranges of 0.65-8 m, speeds up to 1 m/s, tilts up to 1 rad.
MAX_NOISE_SD = 1.0

__all__ = [name for name in dir() if name.isupper()]
