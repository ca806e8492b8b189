"""One batch seen whole: every point's readings laid end to end, with each point's first and last times and its
lowest and highest value, so that a detector can tell in a few numpy calls which points this batch cannot move.

A detector that has `settle(frame)` handles those points in bulk (its state brought forward exactly as its
feed() would bring it) and returns them as a mask; the pipeline calls feed() only for the rest. In a quiet plant
that is nearly every point, and the cost of a batch stops growing with points x detectors in Python. A detector's
settle may take fewer points than could be taken, never more: a point it is unsure of goes through feed().
"""
from __future__ import annotations

import numpy as np

_F64 = np.dtype(np.float64)


class Frame:
    """`groups`: (point, reading times, arrival times, values) with reading times already no later than
    arrival, none empty. Index i is the i-th group throughout."""

    def __init__(self, groups: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]):
        self.ids = [g[0] for g in groups]
        self.size = len(groups)
        self.key = tuple(self.ids)  # (what a detector's per-point constants are aligned by: see aligned())
        lens = np.fromiter(map(len, (g[1] for g in groups)), np.int64, self.size)
        self.lens = lens
        self.ends = np.cumsum(lens)
        self.starts = self.ends - lens
        last = self.ends - 1
        ts = [g[1] for g in groups]
        arrived = [g[2] for g in groups]
        self.ts = np.concatenate(ts)
        self.arrived = self.ts if all(a is t for a, t in zip(arrived, ts)) else np.concatenate(arrived)
        values = [g[3] for g in groups]
        # numpy compares a float32 batch in float32: only float64 points may be judged here, as feed() would
        self.f64 = np.fromiter((v.dtype is _F64 and len(v) == len(t) for v, t in zip(values, ts)), bool, self.size)
        self.values = np.concatenate(values).astype(np.float64, copy=False) if self.f64.all() else None
        self.t_first, self.t_last = self.ts[self.starts], self.ts[last]
        self._t_min: np.ndarray | None = None
        self._position: dict[str, int] | None = None
        self.a_first, self.a_last = self.arrived[self.starts], self.arrived[last]
        if self.values is not None:
            self.vmin = np.minimum.reduceat(self.values, self.starts)  # (NaN propagates: a NaN is never quiet)
            self.vmax = np.maximum.reduceat(self.values, self.starts)
            self.v_last = self.values[last]

    @property
    def t_min(self) -> np.ndarray:
        """Per group, its earliest reading time (readings need not come in order)."""
        if self._t_min is None:
            self._t_min = np.minimum.reduceat(self.ts, self.starts)
        return self._t_min

    def position(self, point: str) -> int | None:
        """The index of the point's group, if it is in the batch."""
        if self._position is None:
            self._position = {p: i for i, p in enumerate(self.ids)}
        return self._position.get(point)

    def membership(self, points: set[str] | frozenset[str]) -> np.ndarray:
        """Which groups are points of the set."""
        return np.fromiter(map(points.__contains__, self.ids), bool, self.size)

    def gather(self, table: dict[str, float]) -> np.ndarray:
        """table[point] per group, NaN where the point is not in it (state kept per point, such as last times)."""
        get = table.get
        return np.array([get(p, np.nan) for p in self.ids], dtype=float)

    def gaps(self, before: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Per group, the longest step from one time to the next, the first step starting at `before`."""
        prev = np.empty_like(times)
        prev[1:] = times[:-1]
        prev[self.starts] = before
        return np.maximum.reduceat(times - prev, self.starts)

    def last_step(self) -> np.ndarray:
        """Per group, |last value - the one before it| (NaN for a group of one reading)."""
        step = np.full(self.size, np.nan)
        two = self.lens >= 2
        ends = self.ends[two]
        step[two] = np.abs(self.values[ends - 1] - self.values[ends - 2])
        return step


class Aligned:
    """A detector's per-point constants (limits, windows) as arrays in a frame's order, rebuilt only when the
    batch's points or their order change (the live pipeline sends much the same batch every second)."""

    def __init__(self, build):
        self._build = build
        self._key: tuple | None = None
        self._value = None

    def __call__(self, frame: Frame):
        if frame.key != self._key:
            self._value = self._build(frame.ids)
            self._key = frame.key
        return self._value
