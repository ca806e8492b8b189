"""Two-sided CUSUM (Page 1954) of standardised residuals: small persistent shifts add up, noise does not.

``g+ = max(0, g+ + z - k)`` and ``g- = max(0, g- - z - k)``; the statistic is the larger. k (in sigmas) is the
slack: half the smallest shift worth catching.

>>> c = Cusum(k=0.5)
>>> [round(c.update(z), 1) for z in [0.2, -0.3, 1.5, 1.5, 1.5]]
[0.0, 0.0, 1.0, 2.0, 3.0]
"""
from __future__ import annotations

from typing import Any


class Cusum:
    def __init__(self, k: float = 0.5, cap: float = 50.0):
        self.k = k
        self.cap = cap  # bounded so one long excursion does not take forever to forget
        self.up = 0.0
        self.down = 0.0

    def update(self, z: float) -> float:
        self.up = min(max(0.0, self.up + z - self.k), self.cap)
        self.down = min(max(0.0, self.down - z - self.k), self.cap)
        return max(self.up, self.down)

    def reset(self) -> None:
        self.up = self.down = 0.0

    def state(self) -> dict[str, Any]:
        return {"up": self.up, "down": self.down}

    def restore(self, st: dict[str, Any]) -> None:
        self.up, self.down = float(st["up"]), float(st["down"])
