"""NAB's scoring, in our own words (see /work/shared/nab/SCORING.md): window-weighted earliest detection,
per-row false-positive cost relative to the previous window, three cost profiles, null/perfect normalisation.

Everything is expressed as *events* so a threshold sweep is one sort: as the threshold falls past a row's
score, the file's raw score changes by that row's event value (an FP cost, or the rise of a window's best
weight). The raw score at threshold θ is the base (every window missed) plus the sum of events with score >= θ.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PROFILES: dict[str, tuple[float, float, float]] = {  # (A_TP, A_FN, A_FP)
    "standard": (1.0, 1.0, 0.11),
    "reward_low_FP_rate": (1.0, 1.0, 0.22),
    "reward_low_FN_rate": (1.0, 2.0, 0.11),
}


def probation_rows(n: int) -> int:
    return min(int(math.floor(0.15 * n)), 750)


def scaled_sigmoid(y: np.ndarray) -> np.ndarray:
    """2*sigmoid(-5y) - 1, and exactly -1 beyond y > 3 (far behind a window)."""
    y = np.asarray(y, float)
    out = 2.0 / (1.0 + np.exp(5.0 * y)) - 1.0
    return np.where(y > 3.0, -1.0, out)


def window_rows(timestamps: np.ndarray, windows: list[tuple[np.datetime64, np.datetime64]]) -> list[tuple[int, int]]:
    """Label windows (inclusive timestamps) as inclusive row-index ranges [L, R]."""
    out = []
    for start, end in windows:
        lo = int(np.searchsorted(timestamps, start, side="left"))
        hi = int(np.searchsorted(timestamps, end, side="right")) - 1
        if hi >= lo:
            out.append((lo, hi))
    return out


@dataclass
class FileEvents:
    """One file's contribution to a sweep: base score (all windows missed) and (score, tp_delta, fp_delta) events.

    TP deltas are in units of A_TP, with the FN charge carried separately (fn_delta in units of A_FN), and FP
    deltas in units of A_FP, so one set of events serves every profile."""

    n_windows: int
    scores: np.ndarray
    tp: np.ndarray
    fn: np.ndarray
    fp: np.ndarray


def file_events(scores: np.ndarray, windows: list[tuple[int, int]]) -> FileEvents:
    scores = np.asarray(scores, float)
    n = len(scores)
    start = probation_rows(n)
    idx = np.arange(n)
    inside = np.zeros(n, bool)
    # weight of each row in a window (units of A_TP) and FP cost of rows outside (units of A_FP, negative)
    fp_cost = np.full(n, -1.0)
    ev_s, ev_tp, ev_fn, ev_fp = [], [], [], []
    norm = 2.0 / (1.0 + math.exp(-5.0)) - 1.0
    for k, (lo, hi) in enumerate(windows):
        inside[lo:hi + 1] = True
        width = hi - lo + 1
        nxt = windows[k + 1][0] if k + 1 < len(windows) else n
        after = idx[hi + 1:nxt]
        if len(after):
            fp_cost[hi + 1:nxt] = scaled_sigmoid((after - hi) / max(width - 1, 1))
        rows = idx[max(lo, start):hi + 1]
        if len(rows) == 0:
            continue  # a window wholly in probation can only be missed
        w = scaled_sigmoid(-(hi - rows + 1) / width) / norm
        s = scores[rows]
        order = np.argsort(-s, kind="stable")
        s, w = s[order], w[order]
        best = np.maximum.accumulate(w)  # best weight once the threshold falls to each row's score
        gain_tp = np.diff(np.concatenate([[0.0], best]))
        first = np.zeros(len(rows))
        first[0] = 1.0  # the first detection turns the miss (-A_FN) into a hit: +A_FN
        keep = (gain_tp != 0) | (first != 0)
        ev_s.append(s[keep]); ev_tp.append(gain_tp[keep]); ev_fn.append(first[keep]); ev_fp.append(np.zeros(keep.sum()))
    out = ~inside
    out[:start] = False
    ev_s.append(scores[out]); ev_tp.append(np.zeros(out.sum())); ev_fn.append(np.zeros(out.sum()))
    ev_fp.append(fp_cost[out])
    return FileEvents(len(windows), np.concatenate(ev_s), np.concatenate(ev_tp), np.concatenate(ev_fn),
                      np.concatenate(ev_fp))


def sweep(events: list[FileEvents], profile: str) -> tuple[float, float]:
    """(best raw score, its threshold) over every threshold, as the published scoreboard picks it."""
    a_tp, a_fn, a_fp = PROFILES[profile]
    base = -a_fn * sum(e.n_windows for e in events)
    s = np.concatenate([e.scores for e in events])
    d = (a_tp * np.concatenate([e.tp for e in events]) + a_fn * np.concatenate([e.fn for e in events])
         + a_fp * np.concatenate([e.fp for e in events]))
    if len(s) == 0:
        return base, math.inf
    order = np.argsort(-s, kind="stable")
    s, d = s[order], d[order]
    total = base + np.cumsum(d)
    last_of_tie = np.r_[s[1:] != s[:-1], True]  # a threshold admits every row with an equal score
    total, thr = total[last_of_tie], s[last_of_tie]
    i = int(np.argmax(total))
    if total[i] <= base:
        return base, math.inf
    return float(total[i]), float(thr[i])


def raw_at(events: list[FileEvents], profile: str, threshold: float) -> float:
    a_tp, a_fn, a_fp = PROFILES[profile]
    raw = -a_fn * sum(e.n_windows for e in events)
    for e in events:
        hit = e.scores >= threshold
        raw += float(a_tp * e.tp[hit].sum() + a_fn * e.fn[hit].sum() + a_fp * e.fp[hit].sum())
    return raw


def normalise(raw: float, profile: str, n_windows: int) -> float:
    a_tp, a_fn, _ = PROFILES[profile]
    null, perfect = -a_fn * n_windows, a_tp * n_windows
    return 100.0 * (raw - null) / (perfect - null)
