"""A scenario in words: its events' triggers and effects, and the summary `navctl scenarios show`
prints. Plain text only (no matplotlib), so listing and showing stay fast.

Lengths are metres, angles degrees, times seconds, masses kilograms.
"""
from __future__ import annotations

from typing import Any, Optional

from envs.events import describe_set
from envs.scenarios import Scenario
from envs.scenarios.model import BoxObstacle, Event, Range, Rect


def event_label(effect: dict[str, Any]) -> str:
    """Short text for an event's effect, e.g. 'right motor x0.35, payload 45 kg'."""
    parts = []
    for side, gain in (effect.get("motor_gain") or {}).items():
        parts.append(f"{side} motor x{gain:g}")
    if effect.get("payload_kg") is not None:
        parts.append(f"payload {effect['payload_kg']:g} kg")
    if effect.get("friction_scale") is not None:
        parts.append(f"friction x{effect['friction_scale']:g}")
    return ", ".join(parts) or "event"


def trigger_text(event: Event, jitter_s: float) -> str:
    """When an event fires, e.g. 'at 12 s ± 2 s', 'after 6 m driven', 'on entering its zone' (dotted on the map)."""
    if event.at_time_s is not None:
        return f"at {event.at_time_s:g} s" + (f" ± {jitter_s:g} s" if jitter_s else "")
    if event.at_distance_m is not None:
        return f"after {event.at_distance_m:g} m driven"
    return "on entering its zone"


def shape_text(shape: Any) -> str:
    if isinstance(shape, Rect):
        return (f"rect at ({shape.center[0]:g}, {shape.center[1]:g}), {shape.size[0]:g} x {shape.size[1]:g} m, "
                f"yaw {shape.yaw_deg:g}")
    return f"circle at ({shape.center[0]:g}, {shape.center[1]:g}), radius {shape.radius_m:g} m"


def _span(fixed: float, drawn: Optional[Range]) -> str:
    """A value as written, or the range randomize draws it from."""
    return f"{drawn[0]:g}..{drawn[1]:g}" if drawn else f"{fixed:g}"


def describe(sc: Scenario) -> list[str]:
    """The lines `navctl scenarios show` prints."""
    a, st, g, rz = sc.arena, sc.robot.start, sc.goal, sc.randomize
    lines = [f"{sc.name} ({sc.split or 'no split'}): {sc.description or 'no description'}",
             f"  file {sc.source}, time limit {sc.time_limit_s:g} s",
             f"  arena {a.size_m[0]:g} x {a.size_m[1]:g} m, walls {'on' if a.walls else 'off'}, "
             f"roughness {a.roughness_m:g} m"]
    lines += [f"  hill at ({h.center[0]:g}, {h.center[1]:g}): height {h.height_m:g} m, radius {h.radius_m:g} m"
              for h in a.hills]
    payload = f"{sc.robot.payload_kg:g}" + (f" + {_span(0, rz.payload_kg)}" if rz.payload_kg else "")
    lines += [f"  start x {_span(st.x, rz.start.x)}, y {_span(st.y, rz.start.y)}, "
              f"yaw {_span(st.yaw_deg, rz.start.yaw_deg)}; payload {payload} kg",
              f"  goal x {_span(g.x, rz.goal.x)}, y {_span(g.y, rz.goal.y)}, radius {g.radius_m:g} m"]
    lines += [f"  surface {s.name or '(unnamed)'}: friction {s.friction:g}, drag {s.drag:g}, {shape_text(s.shape)}"
              for s in sc.surfaces]
    lines += [f"  obstacle: box at ({o.center[0]:g}, {o.center[1]:g}), {o.size[0]:g} x {o.size[1]:g} x {o.size[2]:g} m"
              if isinstance(o, BoxObstacle) else
              f"  obstacle: cylinder at ({o.center[0]:g}, {o.center[1]:g}), radius {o.radius_m:g} m" for o in sc.obstacles]
    r = sc.random_obstacles
    if r is not None:
        lines.append(f"  obstacles drawn per episode: {r.count} boxes, sides {r.min_size_m:g}..{r.max_size_m:g} m, "
                     f"{r.keep_clear_m:g} m clear of start and goal")
    for i, e in enumerate(sc.events):
        where = f" ({shape_text(e.on_enter)})" if e.on_enter is not None else ""
        lines.append(f"  event {i} {trigger_text(e, rz.event_time_jitter_s)}{where}: {event_label(describe_set(e.set))}")
    n = sc.sensors.noise
    lines += [f"  per episode: friction x{_span(1, rz.friction_scale)}, motor gain left {_span(1, rz.motor_gain.left)} "
              f"right {_span(1, rz.motor_gain.right)}",
              f"  sensor noise (std): lidar {n.lidar_m:g} m, imu {n.imu:g}, odometry {n.odometry:g}"]
    return lines
