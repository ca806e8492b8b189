"""The demo plant model: quiet in normal operation, a hopper that self-heats on schedule, the same values every run."""
from __future__ import annotations

import numpy as np
import pytest

from config.load import DEMO, load_plant
from config.model import Plant, Point, Tier
from simulators.demo_plant import INCIDENT_DURATION_S, DemoPlant, behaviour_of

HOPPER = "dust1.hopper_t"


@pytest.fixture(scope="module")
def plant() -> Plant:
    return load_plant(DEMO)


def crossings(point: Point, value: float) -> list[tuple[str, Tier]]:
    """Every raw limit the value is at or beyond: high side value >= limit, low side value <= limit."""
    found = []
    if point.high:
        found += [("high", tier) for tier, limit in point.high.by_tier() if value >= limit]
    if point.low:
        found += [("low", tier) for tier, limit in point.low.by_tier() if value <= limit]
    return found


def hour_at_1hz(model: DemoPlant, start: float = 0.0) -> np.ndarray:
    return np.array([model.sample_array(start + t) for t in range(3600)])


def highest_tier(point: Point, value: float) -> Tier:
    return max((tier for _, tier in crossings(point, value)), default=Tier.NORMAL)


def test_same_seed_gives_the_same_values_whatever_the_order_of_sampling(plant):
    times = [0.0, 0.5, 1.0, 17.25, 3599.0, 40.0, 100.0]
    forward = DemoPlant(plant, seed=7)
    backward = DemoPlant(plant, seed=7)
    first = {t: forward.sample(t) for t in times}
    second = {t: backward.sample(t) for t in reversed(times)}
    assert first == second
    assert forward.sample(17.25) == first[17.25]


def test_a_different_seed_gives_different_noise(plant):
    one, two = DemoPlant(plant, seed=1), DemoPlant(plant, seed=2)
    a, b = hour_at_1hz(one)[:60], hour_at_1hz(two)[:60]
    noisy = [i for i, p in enumerate(plant.points) if behaviour_of(p).shape not in ("state", "count")]
    changed = [plant.points[i].id for i in noisy if not np.array_equal(a[:, i], b[:, i])]
    assert changed == [plant.points[i].id for i in noisy]


def test_every_sample_covers_every_point_in_plant_order(plant):
    ids = [pid for pid, _ in DemoPlant(plant).sample(12.0)]
    assert ids == [p.id for p in plant.points]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_normal_hour_raises_no_alarm_at_any_tier(plant, seed):
    values = hour_at_1hz(DemoPlant(plant, seed=seed, incident_at=None))
    for i, point in enumerate(plant.points):
        column = values[:, i]
        lo, hi = point.range
        assert lo <= column.min() and column.max() <= hi, point.id
        hits = {c for v in column for c in crossings(point, v)}
        assert not hits, f"{point.id} crossed {hits} (min {column.min()}, max {column.max()})"


def test_normal_operation_reads_like_a_running_plant(plant):
    values = hour_at_1hz(DemoPlant(plant, incident_at=None))
    column = {p.id: values[:, i] for i, p in enumerate(plant.points)}
    for running in ("dust1.fan_on", "dust1.production", "cast1.casting"):
        assert set(column[running]) == {1.0}
    assert set(column["sump1.people"]) <= {0.0, 1.0, 2.0}
    assert 19.0 < column["dust1.velocity"].min()
    assert 800 <= column["dust1.dp"].min() and column["dust1.dp"].max() <= 1500
    assert np.ptp(column["dust1.dp"]) > 250  # the pulse-jet sawtooth is visible
    assert abs(column["sump1.o2"].mean() - 20.9) < 0.05
    assert abs(column["cast1.water_p"].mean() - 0.30) < 0.005
    assert abs(column["cast1.water_q"].mean() - 120) < 2
    assert abs(column["cast1.metal_t"].mean() - 720) < 10
    assert column["steel1.co_a"].max() < 10 and column["sump1.h2s"].max() < 2
    assert all(np.std(column[p.id]) > 0 for p in plant.points if behaviour_of(p).shape != "state")  # nothing stuck


def test_dust_hopper_self_heating_crosses_yellow_then_orange_then_red_and_cools_back(plant):
    model = DemoPlant(plant, incident_at=20.0, incident_period=None)
    (window,) = model.incident_windows(until=3600)
    hopper = plant.point_map()[HOPPER]
    i = model.point_ids.index(HOPPER)
    times = np.arange(0.0, window.end + 120, 0.5)
    temps = np.array([model.sample_array(t)[i] for t in times])
    tiers = [highest_tier(hopper, v) for v in temps]

    first = {tier: times[tiers.index(tier)] for tier in (Tier.BLUE, Tier.YELLOW, Tier.ORANGE, Tier.RED)}
    assert window.start < first[Tier.BLUE] < first[Tier.YELLOW] < first[Tier.ORANGE] < first[Tier.RED]
    assert first[Tier.RED] <= window.start + 85
    assert all(t == Tier.NORMAL for t, at in zip(tiers, times) if at < window.start)
    assert 85 <= temps.max() <= 92
    after = temps[times >= window.end]
    assert after.max() < 50 and abs(after.mean() - 38) < 2


def test_the_hopper_heats_with_an_accelerating_slope(plant):
    model = DemoPlant(plant, incident_at=0.0, incident_period=None)
    i = model.point_ids.index(HOPPER)
    temp = {t: model.sample_array(t)[i] for t in (0, 30, 60, 80)}
    assert temp[60] - temp[30] > 2 * (temp[30] - temp[0])
    assert temp[80] - temp[60] > 0.5 * (temp[60] - temp[30])


def test_only_the_dust_hopper_alarms_and_only_inside_incident_windows(plant):
    model = DemoPlant(plant, incident_at=20.0, incident_period=360.0)
    windows = model.incident_windows(until=3600)
    assert [w.start for w in windows] == [20.0 + 360.0 * n for n in range(10)]
    values = hour_at_1hz(model)
    for i, point in enumerate(plant.points):
        for t in np.flatnonzero([bool(crossings(point, v)) for v in values[:, i]]):
            assert point.id == HOPPER and any(w.start <= t < w.end for w in windows), (point.id, t)
    hopper = model.point_ids.index(HOPPER)
    reds = [t for t in range(3600) if highest_tier(plant.point_map()[HOPPER], values[t, hopper]) == Tier.RED]
    assert {next(n for n, w in enumerate(windows) if w.start <= t < w.end) for t in reds} == set(range(10))


def test_the_baghouse_pressure_drifts_up_a_little_during_the_incident(plant):
    quiet = DemoPlant(plant, incident_at=None)
    heating = DemoPlant(plant, incident_at=0.0, incident_period=None)
    i = quiet.point_ids.index("dust1.dp")
    rise = [heating.sample_array(t)[i] - quiet.sample_array(t)[i] for t in range(85, 145)]
    assert 80 <= min(rise) and max(rise) <= 160


def test_incident_windows_describe_when_the_incident_happens(plant):
    model = DemoPlant(plant, incident_at=20.0, incident_period=360.0)
    assert [(w.start, w.peak_at, w.cooling_at, w.end) for w in model.incident_windows(until=400)] == [
        (20.0, 105.0, 165.0, 240.0), (380.0, 465.0, 525.0, 600.0)]
    assert [w.start for w in model.incident_windows(until=1000, since=500)] == [380.0, 740.0]
    assert model.incident_elapsed(19.9) is None and model.incident_elapsed(400.0) == 20.0
    assert DemoPlant(plant, incident_at=None).incident_windows(until=1e6) == []
    assert len(DemoPlant(plant, incident_period=None).incident_windows(until=1e6)) == 1
    with pytest.raises(ValueError):
        DemoPlant(plant, incident_period=INCIDENT_DURATION_S - 1)


def test_scaled_points_each_get_values_from_their_original_with_their_own_noise(plant):
    scaled = plant.scaled(5)
    model = DemoPlant(scaled, incident_at=None)
    sample = dict(model.sample(42.0))
    assert set(sample) == {p.id for p in scaled.points}
    copies = [sample[f"dust1.hopper_t~{k}"] for k in range(5)]
    assert len(set(copies)) > 1 and all(30 < v < 46 for v in copies)
    values = hour_at_1hz(model)[::10]
    for i, point in enumerate(scaled.points):
        assert not any(crossings(point, v) for v in values[:, i]), point.id


def test_scaled_hoppers_all_self_heat(plant):
    scaled = plant.scaled(3)
    model = DemoPlant(scaled, incident_at=0.0, incident_period=None)
    at_peak = dict(model.sample(100.0))
    assert all(at_peak[f"{HOPPER}~{k}"] > 80 for k in range(3))


def test_a_point_the_demo_plant_does_not_know_stays_inside_its_limits(plant):
    extra = Point(id="boiler.drum_level", name="汽包水位", area="steel1", unit="mm", interval_s=1, range=(0, 400),
                  high={"yellow": 250, "red": 300}, low={"yellow": 150, "red": 100})
    other = plant.model_copy(update={"points": [*plant.points, extra]})
    values = hour_at_1hz(DemoPlant(other, incident_at=None))[:, -1]
    assert 150 < values.min() and values.max() < 250 and np.std(values) > 0
