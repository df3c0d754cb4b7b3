"""Figures (PNG, headless): results by scenario and policy, the adaptation curve, and the
path of an episode drawn over a map of its arena.

Figures are built with matplotlib's object API (no pyplot, no display needed) and written
atomically.
"""
from __future__ import annotations

import math
import os
from collections import defaultdict
from typing import Any, Optional, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle as CirclePatch, Polygon, Rectangle

from envs.events import describe_set
from envs.scenarios import Scenario
from envs.scenarios.model import BoxObstacle, Circle, Rect
from envs.terrain import hill_heights
from navctl.episode import curve_offsets
from navctl.io import atomic_path
from navctl.rollout import Trajectory
from navctl.scenario_text import event_label, trigger_text  # event_label: run.py takes it from here too

DPI = 120


def _save(fig: Figure, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")


PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]


def _colors(names: Sequence[str]) -> dict[str, str]:
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}


# --- evaluation figures ---------------------------------------------------------------------
def plot_results(results: Sequence[dict[str, Any]], path: str | os.PathLike) -> None:
    """Success rate and SPL by scenario (groups) and policy (bars), with 95% intervals."""
    policies = list(dict.fromkeys(r["policy"] for r in results))
    scenarios = list(dict.fromkeys(r["scenario"] for r in results))
    colors = _colors(policies)
    fig = Figure(figsize=(max(6.0, 0.55 * len(scenarios) * max(1, len(policies)) + 2), 6.5), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    width = 0.8 / max(1, len(policies))
    x = np.arange(len(scenarios))
    by_key = {(r["policy"], r["scenario"]): r for r in results}
    for ax, metric, label in ((axes[0], "success_rate", "success rate"), (axes[1], "spl", "SPL")):
        for i, policy in enumerate(policies):
            means, errs = [], [[], []]
            for s in scenarios:
                r = by_key.get((policy, s), {})
                m, ci = r.get(metric), r.get(f"{metric}_ci")
                means.append(np.nan if m is None else m)
                errs[0].append(0 if ci is None else max(0.0, m - ci[0]))
                errs[1].append(0 if ci is None else max(0.0, ci[1] - m))
            ax.bar(x + (i - (len(policies) - 1) / 2) * width, means, width, yerr=errs, capsize=2,
                   color=colors[policy], label=policy, error_kw={"elinewidth": 0.8})
        ax.set_ylabel(label)
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Success and SPL by scenario\n(bars: mean; whiskers: 95% bootstrap interval)", fontsize=10)
    fig.legend(handles=axes[0].get_legend_handles_labels()[0], loc="outside lower center", fontsize=8,
               ncol=min(6, len(policies)), frameon=False)
    axes[1].set_xticks(x, scenarios, rotation=20 if len(scenarios) > 3 else 0, ha="right" if len(scenarios) > 3 else "center")
    _save(fig, path)


def plot_adaptation(rows: Sequence[dict[str, Any]], path: str | os.PathLike) -> None:
    """Progress rate around the first event (parsed rows' progress_curve): per scenario,
    the mean over episodes per policy with a 95% band (mean +- 1.96 standard errors)."""
    offsets = curve_offsets()
    curves: dict[str, dict[str, list[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
    policies = list(dict.fromkeys(r["policy"] for r in rows))
    for r in rows:
        if r.get("status") == "ok" and r.get("progress_curve") is not None:
            curves[r["scenario"]][r["policy"]].append(r["progress_curve"])
    colors = _colors(policies)
    n = max(1, len(curves))
    cols = min(3, n)
    nrows = math.ceil(n / cols)
    fig = Figure(figsize=(4.6 * cols, 3.4 * nrows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, cols, squeeze=False)).ravel()
    if not curves:
        axes[0].text(0.5, 0.5, "no event fired in these episodes", ha="center", va="center",
                     transform=axes[0].transAxes)
        axes[0].set_axis_off()
    for ax, (scenario, per_policy) in zip(axes, curves.items()):  # in the order of the rows
        for policy in policies:
            if policy not in per_policy:
                continue
            stack = np.vstack(per_policy[policy])
            count = np.sum(~np.isnan(stack), axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(count > 0, np.nansum(stack, axis=0) / np.maximum(count, 1), np.nan)
                sd = np.sqrt(np.where(count > 1, np.nansum((stack - mean) ** 2, axis=0) / np.maximum(count - 1, 1), np.nan))
                half = 1.96 * sd / np.sqrt(count)
            ax.plot(offsets, mean, color=colors[policy], label=f"{policy} (n={len(stack)})", lw=1.5)
            ax.fill_between(offsets, mean - half, mean + half, color=colors[policy], alpha=0.2, lw=0)
        ax.axvline(0, color="k", lw=0.8, ls="--")
        ax.set_xlim(offsets[0], offsets[-1])
        ax.axhline(0, color="0.6", lw=0.5)
        ax.set_title(scenario, fontsize=10)
        ax.set_xlabel("time since the event (s)")
        ax.set_ylabel("progress toward goal (m/s)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[len(curves) if curves else 1:]:
        ax.set_axis_off()
    fig.suptitle("Progress toward the goal around the first event\n(line: mean over episodes; band: 95% interval)",
                 fontsize=10)
    _save(fig, path)


# --- the arena map ------------------------------------------------------------------------
def _rect_corners(center: Sequence[float], size: Sequence[float], yaw_deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    half = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * np.asarray(size[:2]) / 2
    return half @ np.array([[c, s], [-s, c]]) + np.asarray(center)


def _draw_arena(ax, scenario: Scenario, obstacles: Sequence[Any]) -> Optional[Any]:
    """Draws the map; returns the friction image (for a colour bar) or None without zones."""
    sx, sy = scenario.arena.size_m
    extent = (-sx / 2, sx / 2, -sy / 2, sy / 2)
    image = None
    xs, ys = np.linspace(-sx / 2, sx / 2, 401), np.linspace(-sy / 2, sy / 2, 401)
    gx, gy = np.meshgrid(xs, ys)
    if scenario.surfaces:
        friction = np.ones(gx.shape)
        for surface in scenario.surfaces:
            friction = np.where(surface.shape.contains(gx, gy), surface.friction, friction)
        shaded = np.ma.masked_where(friction >= 1.0, friction)
        image = ax.imshow(shaded, origin="lower", extent=extent, cmap="Blues_r", vmin=0, vmax=1.2, alpha=0.6,
                          interpolation="nearest")
        for surface in scenario.surfaces:
            cx, cy = surface.shape.center
            if isinstance(surface.shape, Rect) and surface.shape.size[1] >= 0.8 * sy:
                cy = sy / 2 - 0.5  # a strip across the arena: label it at the top
            drag = f", drag {surface.drag:g}" if surface.drag else ""
            ax.text(cx, cy, f"{surface.name}\nμ={surface.friction:g}{drag}", ha="center", va="top", fontsize=7,
                    color="#08306b")
    if scenario.arena.hills:
        h = hill_heights(scenario, gx, gy)
        levels = [v for v in np.arange(-2.0, 2.01, 0.2) if abs(v) > 1e-9 and h.min() < v < h.max()]
        if levels:
            cs = ax.contour(gx, gy, h, levels=levels, colors="#8c510a", linewidths=0.7)
            ax.clabel(cs, fmt="%.1f m", fontsize=6)
    if scenario.arena.walls:
        ax.add_patch(Rectangle((-sx / 2, -sy / 2), sx, sy, fill=False, lw=2.5, ec="0.3"))
    for ob in obstacles:
        if isinstance(ob, BoxObstacle):
            ax.add_patch(Polygon(_rect_corners(ob.center, ob.size, ob.yaw_deg), closed=True, fc="0.45", ec="0.2"))
        else:
            ax.add_patch(CirclePatch(ob.center, ob.radius_m, fc="0.45", ec="0.2"))
    for event in scenario.events:
        if isinstance(event.on_enter, Rect):
            ax.add_patch(Polygon(_rect_corners(event.on_enter.center, event.on_enter.size, event.on_enter.yaw_deg),
                                 closed=True, fill=False, ls=":", ec="#d62728", lw=1))
        elif isinstance(event.on_enter, Circle):
            ax.add_patch(CirclePatch(event.on_enter.center, event.on_enter.radius_m, fill=False, ls=":",
                                     ec="#d62728", lw=1))
    ax.set_xlim(-sx / 2 - 0.3, sx / 2 + 0.3)
    ax.set_ylim(-sy / 2 - 0.3, sy / 2 + 0.3)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    return image


def _draw_episode(ax, traj: Trajectory, color: str) -> None:
    x, y, yaw = traj.start
    ax.plot(traj.xy[:, 0], traj.xy[:, 1], color=color, lw=1.8, zorder=4)
    ax.plot([x], [y], marker="o", ms=6, color="k", zorder=5)
    ax.annotate("", xy=(x + 0.9 * math.cos(yaw), y + 0.9 * math.sin(yaw)), xytext=(x, y),
                arrowprops={"arrowstyle": "->", "lw": 1.2}, zorder=5)
    ax.text(x, y - 0.7, "start", ha="center", va="top", fontsize=7)
    gx, gy, gr = traj.goal
    ax.add_patch(CirclePatch((gx, gy), gr, fc="#2ca02c", alpha=0.35, ec="#2ca02c", lw=1.5, zorder=3))
    ax.text(gx, gy - gr - 0.2, "goal", ha="center", va="top", fontsize=7)
    ex, ey = traj.xy[-1]
    ax.plot([ex], [ey], marker="s", ms=5, color=color, zorder=5)
    for i, ev in enumerate(traj.events):
        px, py = ev["position"]
        ax.plot([px], [py], marker="X", ms=9, color="#d62728", mec="white", zorder=6)
        nx, ny = _label_side(traj, ev["time_s"], flip=i % 2 == 1)
        ax.annotate(f"{ev['time_s']:.1f} s: {event_label(ev['set'])}", (px, py), xytext=(12 * nx, 12 * ny),
                    textcoords="offset points", fontsize=7, color="#a50f15", zorder=3.5,  # under the path
                    ha="right" if nx < 0 else "left", va="bottom" if ny > 0 else "top",
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.7})


def _label_side(traj: Trajectory, time_s: float, flip: bool) -> tuple[float, float]:
    """Unit normal to the path where it was at `time_s`, pointing up (down if flip): an event's
    label placed along it stays off the path."""
    k = int(np.clip(np.searchsorted(traj.time_s, time_s), 1, len(traj.xy) - 1))
    lo, hi = max(k - 10, 0), min(k + 10, len(traj.xy) - 1)
    dx, dy = traj.xy[hi] - traj.xy[lo]
    norm = math.hypot(dx, dy)
    nx, ny = (-dy / norm, dx / norm) if norm > 1e-6 else (0.0, 1.0)
    if ny < 0:
        nx, ny = -nx, -ny
    return (-nx, -ny) if flip else (nx, ny)


def plot_trajectories(scenario: Scenario, panels: Sequence[tuple[str, Trajectory, Sequence[Any]]],
                      path: str | os.PathLike, title: Optional[str] = None) -> None:
    """Side by side, one panel per (title, trajectory, obstacles): the path over the arena map
    (friction zones shaded, hills as contours, obstacles, start, goal, events where they fired)."""
    sx, sy = scenario.arena.size_m
    fig = Figure(figsize=(5.6 * len(panels) + 0.8, 5.6 * sy / sx + 1.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels), squeeze=False)).ravel()
    image = None
    for i, (ax, (label, traj, obstacles)) in enumerate(zip(axes, panels)):
        image = _draw_arena(ax, scenario, obstacles)
        _draw_episode(ax, traj, PALETTE[i % len(PALETTE)])
        ax.set_title(label, fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=axes.tolist(), shrink=0.8, pad=0.01, label="ground friction (1.0 outside the zones)")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.legend(handles=_legend_handles(scenario), loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    _save(fig, path)


def _legend_handles(scenario: Scenario) -> list:
    handles = [Line2D([], [], color="0.3", lw=1.8, label="path (square: end)"),
               Line2D([], [], color="k", marker="o", ls="", label="start (arrow: heading)"),
               CirclePatch((0, 0), 1, fc="#2ca02c", alpha=0.35, ec="#2ca02c", label="goal"),
               Line2D([], [], color="#d62728", marker="X", ls="", ms=8, label="event fired here"),
               Rectangle((0, 0), 1, 1, fc="0.45", ec="0.2", label="obstacle")]
    if any(e.on_enter is not None for e in scenario.events):
        handles.append(Line2D([], [], color="#d62728", ls=":", label="event trigger zone"))
    if scenario.surfaces:
        handles.append(Rectangle((0, 0), 1, 1, fc="#6baed6", alpha=0.6, label="friction zone"))
    if scenario.arena.hills:
        handles.append(Line2D([], [], color="#8c510a", lw=0.7, label="hill contours (m)"))
    return handles


# --- a scenario on its own: `navctl scenarios show --out` ---------------------------------
def _draw_places(ax, scenario: Scenario) -> None:
    """Start (dot, heading arrow) and goal (circle) as written, and the ranges randomize draws
    them from (dashed rectangles over the centres)."""
    start, goal, rz = scenario.robot.start, scenario.goal, scenario.randomize
    for (xs, ys), fixed, color in (((rz.start.x, rz.start.y), (start.x, start.y), "k"),
                                   ((rz.goal.x, rz.goal.y), (goal.x, goal.y), "#2ca02c")):
        if xs or ys:
            (x0, x1), (y0, y1) = xs or (fixed[0],) * 2, ys or (fixed[1],) * 2
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ls="--", lw=1.2, ec=color, zorder=4))
    yaw = math.radians(start.yaw_deg)
    ax.plot([start.x], [start.y], marker="o", ms=6, color="k", zorder=5)
    ax.annotate("", xy=(start.x + 0.9 * math.cos(yaw), start.y + 0.9 * math.sin(yaw)), xytext=(start.x, start.y),
                arrowprops={"arrowstyle": "->", "lw": 1.2}, zorder=5)
    turn = f"\nyaw {rz.start.yaw_deg[0]:g}..{rz.start.yaw_deg[1]:g}°" if rz.start.yaw_deg else ""
    ax.text(start.x, start.y - 0.7, "start" + turn, ha="center", va="top", fontsize=7)
    ax.add_patch(CirclePatch((goal.x, goal.y), goal.radius_m, fc="#2ca02c", alpha=0.35, ec="#2ca02c", lw=1.5, zorder=3))
    ax.text(goal.x, goal.y - goal.radius_m - 0.2, "goal", ha="center", va="top", fontsize=7)


def plot_scenario_map(scenario: Scenario, path: str | os.PathLike, random_obstacles: Sequence[Any] = ()) -> None:
    """The arena map of `trajectory.png` with no path: friction zones, hills, obstacles, event
    trigger zones; plus the start and goal with the ranges randomize draws them from (dashed),
    `random_obstacles` (one draw of the random boxes, hatched) and every event's trigger and effect."""
    sx, sy = scenario.arena.size_m
    fig = Figure(figsize=(6.4, 6.4 * sy / sx + 1.8), layout="constrained")
    ax = fig.subplots()
    image = _draw_arena(ax, scenario, scenario.obstacles)
    for ob in random_obstacles:
        ax.add_patch(Polygon(_rect_corners(ob.center, ob.size, ob.yaw_deg), closed=True, fc="0.85", ec="0.4", hatch="///"))
    _draw_places(ax, scenario)
    if image is not None:
        fig.colorbar(image, ax=ax, shrink=0.8, pad=0.01, label="ground friction (1.0 outside the zones)")
    jitter = scenario.randomize.event_time_jitter_s
    events = [f"event {i}: {trigger_text(e, jitter)}: {event_label(describe_set(e.set))}"
              for i, e in enumerate(scenario.events)]
    ax.set_title("\n".join([f"{scenario.name}" + (f" ({scenario.split})" if scenario.split else ""), *events]),
                 fontsize=8)
    handles = [h for h in _legend_handles(scenario) if not h.get_label().startswith(("path", "event fired"))]
    handles.append(Rectangle((0, 0), 1, 1, fill=False, ls="--", ec="k", label="start / goal drawn in"))
    if random_obstacles:
        handles.append(Rectangle((0, 0), 1, 1, fc="0.85", ec="0.4", hatch="///", label="random boxes (one draw)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=7, frameon=False)
    _save(fig, path)
