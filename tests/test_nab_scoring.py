"""Our NAB scoring, checked on small hand-made files whose scores are worked out by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from bench.nab import scoring

N = 1000            # probation = min(floor(0.15 * 1000), 750) = 150 rows
WIN = [(400, 499)]  # one window, W = 100


def raw(scores, windows=WIN, profile="standard", threshold=0.5):
    ev = [scoring.file_events(np.asarray(scores, float), windows)]
    return scoring.raw_at(ev, profile, threshold), scoring.sweep(ev, profile)


def hit(*rows):
    s = np.zeros(N)
    s[list(rows)] = 1.0
    return s


def test_probation_length():
    assert scoring.probation_rows(1000) == 150 and scoring.probation_rows(10_000) == 750


def test_detection_at_the_left_edge_scores_about_plus_one():
    r, _ = raw(hit(400))
    assert r == pytest.approx(1.0, abs=1e-9)  # y = -1: 2*sig(5) - 1 over itself


def test_detection_mid_window_scores_the_scaled_sigmoid():
    r, _ = raw(hit(450))  # y = -(499 - 450 + 1) / 100 = -0.5
    want = (2 / (1 + math.exp(-2.5)) - 1) / (2 / (1 + math.exp(-5)) - 1)
    assert r == pytest.approx(want)


def test_only_the_earliest_detection_in_a_window_counts():
    r, _ = raw(hit(400, 450, 499))
    assert r == pytest.approx(1.0)


def test_missed_window_costs_a_fn_per_profile():
    assert raw(np.zeros(N))[0] == -1.0
    assert raw(np.zeros(N), profile="reward_low_FN_rate")[0] == -2.0


def test_false_positive_far_from_windows_costs_a_fp():
    # row 200 lies before the first window: exactly -A_FP, on top of the missed window
    assert raw(hit(200))[0] == pytest.approx(-1.0 - 0.11)
    assert raw(hit(200), profile="reward_low_FP_rate")[0] == pytest.approx(-1.0 - 0.22)
    # row 900 lies (900 - 499) / 99 = 4.05 > 3 window-widths after it: exactly -A_FP too
    assert raw(hit(400, 900))[0] == pytest.approx(1.0 - 0.11)


def test_false_positive_just_after_a_window_costs_little():
    r = raw(hit(400, 500))[0]  # y = 1 / 99
    assert r == pytest.approx(1.0 + 0.11 * (2 / (1 + math.exp(5 / 99)) - 1))
    assert -0.01 < r - 1.0 < 0


def test_every_detected_row_outside_windows_is_charged():
    assert raw(hit(200, 201, 202))[0] == pytest.approx(-1.0 - 3 * 0.11)


def test_probation_rows_are_ignored():
    assert raw(hit(10, 100, 149))[0] == -1.0


def test_oracle_sweep_finds_the_best_threshold():
    s = np.zeros(N)
    s[400], s[200] = 0.6, 0.9  # the FP scores higher than the hit: best threshold is 0.6, raw 1 - 0.11
    best, thr = scoring.sweep([scoring.file_events(s, WIN)], "standard")
    assert thr == 0.6 and best == pytest.approx(1.0 - 0.11)
    s[200] = 0.3  # now a threshold above 0.3 keeps the hit and drops the FP
    best, thr = scoring.sweep([scoring.file_events(s, WIN)], "standard")
    assert thr == 0.6 and best == pytest.approx(1.0)


def test_normalisation_null_is_zero_and_perfect_is_hundred():
    for profile, (a_tp, a_fn, _) in scoring.PROFILES.items():
        assert scoring.normalise(-a_fn * 116, profile, 116) == 0.0
        assert scoring.normalise(a_tp * 116, profile, 116) == 100.0
    # a perfect detector: every window hit at its left edge, nothing else
    wins = [(200, 299), (600, 699)]
    ev = [scoring.file_events(hit(200, 600), wins)]
    assert scoring.normalise(scoring.raw_at(ev, "standard", 0.5), "standard", 2) == pytest.approx(100.0)
    ev = [scoring.file_events(np.zeros(N), wins)]
    assert scoring.normalise(scoring.raw_at(ev, "standard", 0.5), "standard", 2) == 0.0


def test_window_rows_from_timestamps():
    ts = np.arange("2014-01-01T00:00", "2014-01-01T10:00", np.timedelta64(5, "m"), dtype="datetime64[us]")
    w = scoring.window_rows(ts, [(np.datetime64("2014-01-01T01:00"), np.datetime64("2014-01-01T02:00"))])
    assert w == [(12, 24)]
