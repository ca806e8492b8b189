"""Record-breaking: how far a reading lies beyond everything seen so far, in units of the range seen so far.

Never seen before is the plainest anomaly an operator knows ("it has never read this high"). The range is the
running minimum and maximum since the series began (causal: never the whole file's), so a quiet series rarely
breaks a record by much, and a record broken by a wide margin is news.

>>> r = RunningRange()
>>> for x in [10.0, 12.0, 11.0, 9.0]:
...     r.learn(x)
>>> r.excess(11.5), r.excess(13.0), r.excess(8.0)
(0.0, 0.3333333333333333, 0.3333333333333333)
"""
from __future__ import annotations

import math
from typing import Any


class RunningRange:
    def __init__(self, two_sided: bool = True):
        self.two_sided = two_sided
        self.lo = math.inf
        self.hi = -math.inf

    def excess(self, x: float) -> float:
        """0 inside the range; else the distance beyond it over the range's width."""
        if self.hi < self.lo:
            return 0.0
        beyond = max(x - self.hi, (self.lo - x) if self.two_sided else 0.0, 0.0)
        width = self.hi - self.lo
        if beyond == 0.0:
            return 0.0
        return beyond / width if width > 0 else 1.0

    def learn(self, x: float) -> None:
        self.lo, self.hi = min(self.lo, x), max(self.hi, x)

    def state(self) -> dict[str, Any]:
        return {"lo": self.lo, "hi": self.hi}

    def restore(self, st: dict[str, Any]) -> None:
        self.lo, self.hi = float(st["lo"]), float(st["hi"])
