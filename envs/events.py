"""Scenario events: triggers checked once per control step, each firing at most once."""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from envs.scenarios.model import Event, EventSet


def describe_set(effect: EventSet) -> dict[str, Any]:
    """The event's `set:` block as plain data, only the fields it sets."""
    out: dict[str, Any] = {}
    if effect.motor_gain is not None:
        out["motor_gain"] = {k: v for k, v in asdict(effect.motor_gain).items() if v is not None}
    if effect.payload_kg is not None:
        out["payload_kg"] = effect.payload_kg
    if effect.friction_scale is not None:
        out["friction_scale"] = effect.friction_scale
    return out


class EventSchedule:
    """The events of one episode, with at_time_s already shifted by the drawn jitter."""

    def __init__(self, events: tuple[Event, ...], jitter_s: float, rng: np.random.Generator) -> None:
        self.events = events
        self.times = [
            None if e.at_time_s is None else max(0.0, e.at_time_s + (rng.uniform(-jitter_s, jitter_s) if jitter_s > 0 else 0.0))
            for e in events
        ]
        self.fired = [False] * len(events)

    def due(self, time_s: float, distance_m: float, x: float, y: float) -> list[int]:
        """Indices of events whose trigger is met now and that have not fired yet; marks them fired."""
        now = []
        for i, e in enumerate(self.events):
            if self.fired[i]:
                continue
            if e.at_time_s is not None:
                hit = time_s >= self.times[i]
            elif e.at_distance_m is not None:
                hit = distance_m >= e.at_distance_m
            else:
                hit = bool(e.on_enter.contains(x, y))
            if hit:
                self.fired[i] = True
                now.append(i)
        return now
