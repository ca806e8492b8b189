"""Robust level and spread of the recent past: median and MAD over a sliding window of readings.

The z-score of a reading against them is how far it lies from the recent level in units of the recent
(robust) spread; one wild reading moves neither statistic, unlike a mean and standard deviation.

>>> m = RollingMad(window=50)
>>> for x in [10.0, 11.0, 9.0, 10.5, 9.5] * 10:
...     m.learn(x)
>>> round(m.z(10.0), 2), m.z(30.0) > 10
(0.0, True)
"""
from __future__ import annotations

from typing import Any

import numpy as np


class RollingMad:
    def __init__(self, window: int = 300, stride: int = 4):
        self.window = window
        self.stride = stride        # the median is refreshed every `stride` readings (it moves slowly anyway)
        self.buf = np.zeros(window)
        self.filled = 0
        self.pos = 0
        self.median = 0.0
        self.mad = 0.0
        self._since = 0

    def learn(self, x: float) -> None:
        self.buf[self.pos] = x
        self.pos = (self.pos + 1) % self.window
        self.filled = min(self.filled + 1, self.window)
        self._since += 1
        if self._since >= self.stride or self.filled < 16:
            self._refresh()

    def z(self, x: float) -> float:
        if self.filled == 0:
            return 0.0
        return (x - self.median) / self.scale

    @property
    def scale(self) -> float:
        return max(1.4826 * self.mad, 1e-9, 1e-6 * abs(self.median))

    def keep_last(self, k: int) -> None:
        """Forget all but the latest k readings (the level has moved: the old ones describe another regime)."""
        k = min(k, self.filled)
        recent = self.recent(k)
        self.buf[:k] = recent
        self.filled, self.pos = k, k % self.window
        self._refresh()

    def recent(self, k: int) -> np.ndarray:
        idx = (self.pos - k + np.arange(k)) % self.window
        return self.buf[idx]

    def _refresh(self) -> None:
        self._since = 0
        x = self.buf[: self.filled]
        self.median = _median(x)
        self.mad = _median(np.abs(x - self.median))

    def state(self) -> dict[str, Any]:
        return {"recent": self.recent(self.filled).tolist(), "since": self._since, "median": self.median,
                "mad": self.mad}

    def restore(self, st: dict[str, Any]) -> None:
        rec = st["recent"]
        self.buf[:] = 0.0
        self.buf[: len(rec)] = rec
        self.filled, self.pos = len(rec), len(rec) % self.window
        self._since = int(st["since"])
        self.median, self.mad = float(st["median"]), float(st["mad"])  # as last refreshed, not recomputed


def _median(x: np.ndarray) -> float:
    """np.median without its overhead (it dominates at this size)."""
    n = len(x)
    k = n // 2
    if n % 2:
        return float(np.partition(x, k)[k])
    p = np.partition(x, (k - 1, k))
    return float((p[k - 1] + p[k]) / 2.0)
