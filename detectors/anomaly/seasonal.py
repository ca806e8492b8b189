"""A time-of-day baseline: what did this point read at this time on the previous days?

Many series follow the clock (load, traffic, ambient temperature, shifts). A reading that is normal for the
series overall can still be abnormal for the hour: the day's peak missing, or a night that looks like a day.
The day is cut into slots (5 minutes by default); each slot keeps the mean of its readings on each of the last
``days`` days, and the reference for a reading is the median of its slot over those days. It needs readings
with timestamps and at least ``min_days`` days of history; until then it has no opinion (``nan``). Memory is
bounded by slots x days whatever the reading rate.

>>> s = Seasonal(slot=3600.0, days=4, min_days=2)
>>> for day in range(3):
...     for hour in range(24):
...         s.learn(day * 86400.0 + hour * 3600.0, 10.0 + hour)
>>> s.reference(3 * 86400.0 + 5 * 3600.0), s.reference(3 * 86400.0 + 5.5 * 3600.0)
(15.0, 15.0)
"""
from __future__ import annotations

import math
from typing import Any


class Seasonal:
    def __init__(self, period: float = 86400.0, slot: float = 300.0, days: int = 7, min_days: int = 3):
        self.period, self.slot, self.days, self.min_days = period, slot, days, min_days
        self.n_slots = max(int(period // slot), 1)
        self.hist: list[list[float]] = [[] for _ in range(self.n_slots)]  # per slot: past days' means, oldest first
        self.key = (-1, -1)  # (day, slot) being accumulated
        self.acc = 0.0
        self.count = 0

    def _key(self, t: float) -> tuple[int, int]:
        day, into = divmod(t, self.period)
        return int(day), min(int(into // self.slot), self.n_slots - 1)

    def reference(self, t: float) -> float:
        h = self.hist[self._key(t)[1]]
        if len(h) < self.min_days:
            return math.nan
        v = sorted(h)
        m = len(v) // 2
        return v[m] if len(v) % 2 else 0.5 * (v[m - 1] + v[m])

    def learn(self, t: float, x: float) -> None:
        key = self._key(t)
        if key != self.key:
            self._flush()
            self.key = key
        self.acc += x
        self.count += 1

    def _flush(self) -> None:
        if self.count:
            h = self.hist[self.key[1]]
            h.append(self.acc / self.count)
            if len(h) > self.days:
                del h[0]
        self.acc, self.count = 0.0, 0

    def state(self) -> dict[str, Any]:
        return {"hist": [list(h) for h in self.hist], "key": list(self.key), "acc": self.acc, "count": self.count}

    def restore(self, st: dict[str, Any]) -> None:
        self.hist = [[float(v) for v in h] for h in st["hist"]]
        self.key = (int(st["key"][0]), int(st["key"][1]))
        self.acc, self.count = float(st["acc"]), int(st["count"])
