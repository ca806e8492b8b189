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
from collections import deque
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

    def beyond(self, x: float) -> float:
        """How far x lies beyond the range (0 inside it), in x's units."""
        if self.hi < self.lo:
            return 0.0
        return max(x - self.hi, (self.lo - x) if self.two_sided else 0.0, 0.0)

    def learn(self, x: float) -> None:
        self.lo, self.hi = min(self.lo, x), max(self.hi, x)

    def state(self) -> dict[str, Any]:
        return {"lo": self.lo, "hi": self.hi}

    def restore(self, st: dict[str, Any]) -> None:
        self.lo, self.hi = float(st["lo"]), float(st["hi"])


class Record:
    """A record that must hold: the last ``hold`` readings all beyond the range of the readings before them, on
    one side. ``update(x)`` returns the smallest of their excesses over the range's width (0 if not all beyond).

    Under i.i.d. noise reading n is a record with probability 1/n, so a bare record is no evidence in a
    long-running series; ``hold`` of them in a row has probability about 1/n**hold.

    >>> r = Record(hold=2)
    >>> [round(r.update(x), 2) for x in [10.0, 12.0, 9.0, 11.0, 14.0, 11.0, 15.0, 16.0]]
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2]
    """

    def __init__(self, hold: int = 1):
        self.hold = max(hold, 1)
        self.n = 0  # readings learned into the range
        self.range = RunningRange()
        self.pending: deque[float] = deque()

    def update(self, x: float, wide: float = math.inf, wide_only: bool = False) -> float:
        """The smallest excess of the last ``hold`` readings over the range, as a fraction of its width; a
        single reading at least ``wide`` (in x's units) beyond the range counts alone. With ``wide_only`` only
        such a reading counts."""
        self.pending.append(x)
        out = 0.0
        r = self.range
        if r.hi >= r.lo:
            beyond = max(x - r.hi, r.lo - x, 0.0)
            if beyond < wide:
                if wide_only:
                    beyond = 0.0
                elif len(self.pending) >= self.hold:
                    beyond = max(min(self.pending) - r.hi, r.lo - max(self.pending), 0.0)
                else:
                    beyond = 0.0
            if beyond > 0.0:
                width = r.hi - r.lo
                out = beyond / width if width > 0 else 1.0
        if len(self.pending) >= self.hold:
            r.learn(self.pending.popleft())
            self.n += 1
        return out

    def state(self) -> dict[str, Any]:
        return {"range": self.range.state(), "pending": list(self.pending), "n": self.n}

    def restore(self, st: dict[str, Any]) -> None:
        self.range.restore(st["range"])
        self.pending = deque(float(v) for v in st["pending"])
        self.n = int(st["n"])
