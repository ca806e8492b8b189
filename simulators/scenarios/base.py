"""What a scenario is: a stretch of plant life in simulated time, with ground truth to score detection against."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

import numpy as np

from config.model import Plant, Sector

Series = tuple[np.ndarray, np.ndarray]  # (seconds since the scenario's start, values): one point's readings


@dataclass(frozen=True)
class Truth:
    """When the hazard begins, and the danger point: the last moment a warning is still useful."""

    hazard_start_s: float
    danger_s: float
    points: tuple[str, ...]  # where the hazard shows: an alert on one of these (not a sensor alarm) detects it
    note: str = ""  # what the danger point is, in the accident's own terms


@dataclass(frozen=True)
class Scenario:
    name: str  # short, lower case: `riskwatch simulate --scenario NAME`
    sector: Sector
    title_zh: str
    title_en: str
    summary: str  # what happens and what the signals look like (English)
    start_local: str  # ISO-8601 with zone: time of day matters (shifts, the 07:34 fan start)
    duration_s: float
    build: Callable[[Plant, int], dict[str, Series]]  # (demo plant, seed) -> readings per point
    truth: Truth | None = None  # None: a scenario that must raise nothing (but what `allowed_rules` allows)
    allowed_rules: frozenset[str] = field(default_factory=frozenset)  # e.g. {"stale"}: a dead sensor IS an alarm
    expected_rules: frozenset[str] = field(default_factory=frozenset)  # sensor faults that must be found
    max_alerts: int | None = None  # at most this many alerts in all (a gateway outage is one alarm, not one per point)

    @property
    def start_epoch(self) -> float:
        return datetime.fromisoformat(self.start_local).timestamp()

    @property
    def start_hour(self) -> float:
        dt = datetime.fromisoformat(self.start_local)
        return dt.hour + dt.minute / 60 + dt.second / 3600

    def series(self, plant: Plant, seed: int = 1) -> dict[str, Series]:
        out = self.build(plant, seed)
        known = plant.point_map()
        for point, (t, v) in out.items():  # a scenario that writes nonsense must fail loudly, not score
            if point not in known:
                raise ValueError(f"scenario {self.name}: unknown point {point!r}")
            if len(t) != len(v) or (len(t) > 1 and np.any(np.diff(t) <= 0)):
                raise ValueError(f"scenario {self.name}: {point} needs strictly increasing times, one value each")
            lo, hi = known[point].range
            if len(v) and (v.min() < lo or v.max() > hi):
                raise ValueError(f"scenario {self.name}: {point} leaves its physical range [{lo}, {hi}]")
        return out


def sample_times(plant: Plant, point: str, duration_s: float) -> np.ndarray:
    """Each point reports at its own configured interval."""
    return np.arange(0.0, duration_s, plant.point_map()[point].interval_s)
