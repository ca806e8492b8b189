"""What every detector emits, and the one protocol every detector follows."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from config.model import Tier


@dataclass(slots=True, frozen=True)
class Finding:
    """A detector's verdict on one (point, rule): the tier it is at now (NORMAL = condition gone)."""

    point: str
    rule: str
    tier: Tier
    ts: float  # seconds since epoch, from the readings (or the pipeline's tick), never from a clock read here
    value: float | None
    reason_zh: str
    reason_en: str
    area: str = ""  # for findings about no configured point (a gateway, a composite rule); else the point's area


class Detector(Protocol):
    """feed: a batch of one point's readings, time-ordered; tick: time passes with no reading (for silence).
    Both return findings only when a (point, rule) changes tier. state/restore: for restart and replay;
    assume: the tier the alert book holds for a (point, rule), which wins over a restored state. Optional
    `fed_points` (a set of point ids, fixed once built): feed() of any other point does nothing and returns [],
    so the pipeline need not call it."""

    clock: str  # "reading": fed the readings' timestamps; "arrival": fed when they arrived

    def feed(self, point: str, ts: np.ndarray, values: np.ndarray) -> list[Finding]: ...
    def tick(self, now: float) -> list[Finding]: ...
    def assume(self, point: str, rule: str, tier: Tier) -> None: ...
    def state(self) -> dict[str, Any]: ...
    def restore(self, state: dict[str, Any]) -> None: ...


class JointDetector(Detector, Protocol):
    """A detector that judges several points and other detectors' findings together (composite rules, gateways):
    `joint = True`. Its feed() is not called; after the per-point detectors have seen a batch, feed_joint gets
    every point's readings of that batch (point, reading times, values) and the findings they raised; tick gets
    the findings the per-point detectors raised on the same tick."""

    joint: bool

    def feed_joint(self, groups: list[tuple[str, np.ndarray, np.ndarray]], findings: list[Finding]
                   ) -> list[Finding]: ...
    def tick(self, now: float, findings: list[Finding] = ...) -> list[Finding]: ...  # type: ignore[override]


def fmt(value: float) -> str:
    """A reading as an operator reads it: no float noise."""
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
