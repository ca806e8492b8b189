"""Composite rules: engineers write conditions over several points, alarms and plant state in the plant file; the
language is parsed (never eval'd) and checked against the plant, and the stories of the demo plant's rules run
through the pipeline's own detect_groups / tick_all next to the threshold and stale detectors."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import yaml

from alerting.book import AlertBook
from config.expr import (MAX_DEPTH, MAX_LENGTH, TIERS, Binary, Call, ExprError, Logic, Num, Ref, Status, Unary, parse,
                         references, render, walk)
from config.load import DEMO, ConfigError, load_plant, parse_plant
from config.model import CompositeRule, Plant, Tier
from detectors.composite import CompositeDetector
from detectors.finding import Finding
from detectors.stale import StaleDetector
from detectors.threshold import ThresholdDetector
from riskwatch.pipeline import detect_groups, tick_all

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_732_300_000.0
RAW = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
FAN_RULE = "dust1.fan_stopped_while_grinding"
RESTART_RULE = "dust1.restarted_after_red"
H2S_RULE = "sump1.h2s_with_people_inside"
DEFROST_RULE = "nh3.defrost_excursions"


# --- the language -------------------------------------------------------------------------------------------

def test_precedence_is_or_below_and_below_not_below_comparison_below_arithmetic():
    node = parse("a + b * 2 > 3 and not c or d")
    a_plus = Binary("+", Ref("a"), Binary("*", Ref("b"), Num(2.0)))
    assert node == Logic("or", (Logic("and", (Binary(">", a_plus, Num(3.0)), Unary("not", Status(Ref("c"))))),
                                Status(Ref("d"))))
    assert parse("a - b - c > 0") == Binary(">", Binary("-", Binary("-", Ref("a"), Ref("b")), Ref("c")), Num(0.0))
    assert parse("-x * 2 < -3") == Binary("<", Binary("*", Unary("-", Ref("x")), Num(2.0)), Num(-3.0))


def test_durations_are_seconds_written_with_their_unit():
    node = parse("held(x, 90s) and count(y > 1, 10min) >= 3 and held(z, 1.5h)")
    windows = [n.args[1] for n in _calls(node)]
    assert [(w.value, w.unit) for w in windows] == [(90.0, "s"), (600.0, "min"), (5400.0, "h")]
    assert parse("age(x) > 2min").right.value == 120.0


def test_a_mistake_names_its_column_and_points_a_caret_at_it():
    with pytest.raises(ExprError) as e:
        parse("dust1.fan_on = 0")
    assert e.value.column == 14 and str(e.value) == "'=' is not an operator: compare with == (col 14)"
    assert e.value.caret().splitlines() == ["dust1.fan_on = 0",
                                            "             ^ '=' is not an operator: compare with =="]
    with pytest.raises(ExprError, match=r"comparisons do not chain.*\(col 7\)"):
        parse("a < b < c")


@pytest.mark.parametrize("text, message", [
    ('__import__("os")', "unknown function '__import__'; the functions are abs, age, alarm, any_alarm, count"),
    ('eval("1") > 0', "unknown function 'eval'"),
    ("a.__class__ > 0", "no attribute access"),
    ("(a).real > 0", "attribute access is not part of the language"),
    ('"abc".upper() > 0', "attribute access is not part of the language"),
    ('"abc" > 1', "a quoted string can only be a function's argument"),
    ("a[0] > 1", "no indexing"),
    ("lambda: 1", "unexpected character ':'"),
    ("a + (b > 1)", "expected a number here, got a condition"),
    ("sump1.h2s + 1", "expected a condition here, got a number"),
    ("held(a, 5)", "held(): argument 2 must be a duration with its unit"),
    ("held(a, 10m)", "unknown unit 'm'"),
    ("count(a, 2d) > 1", "unknown unit 'd'"),
    ("held(a, 2h) and held(b, 25h)", "window must be more than 0 and at most 24h"),
    ("limit(a, purple) > 1", "limit(): argument 2 must be a tier"),
    ("alarm(1) > 0", "alarm(): argument 1 must be a point id"),
    ("rose(a, b)", "rose() takes 1 argument"),
    ("held(rose(a), 1min)", "rose() is true for one moment only"),
    ("1e999 > a", "number out of range"),
    ("", "empty condition"),
])
def test_what_is_not_in_the_language_is_refused(text, message):
    with pytest.raises(ExprError) as e:
        parse(text)
    assert message in str(e.value)


def test_input_is_bounded_in_length_and_depth():
    parse(" or ".join(["a"] * 20))
    with pytest.raises(ExprError, match=f"longer than {MAX_LENGTH} characters"):
        parse("a or " * 400 + "a")
    with pytest.raises(ExprError, match="nested more than"):
        parse("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(ExprError, match="nested more than"):
        parse("not " * (MAX_DEPTH + 1) + "a")
    with pytest.raises(ExprError, match="nested more than"):
        parse(" + ".join(["a"] * (MAX_DEPTH + 1)) + " > 0")


@pytest.mark.parametrize("text", [
    "dust1.production and not dust1.fan_on",
    "rose(dust1.production) and any_alarm(dust1, red)",
    'any_alarm("*", orange) or alarm(sump1.h2s, "high") >= yellow',
    "cast1.casting and cast1.water_q < 0.8 * 120",
    "nh3.defrost and count(nh3.room_ppm > 25, 10min) >= 3",
    'point("a-b") - (x~3 - 2) / -4 > max(1, abs(y), 2.5) and not (p or q)',
    "held(a and (b or c), 90s) or age(z) >= 2h",
    'point("and") > low_limit(point("or"), red)',
])
def test_render_writes_back_what_parses_to_the_same_tree(text):
    node = parse(text)
    assert parse(render(node)) == node


def test_references_are_every_point_a_condition_names():
    node = parse('alarm(x) >= yellow and point("a-b") > limit(y, "red") and age(z) < 5s and any_alarm(dust1, red)')
    assert references(node) == {"x", "a-b", "y", "z"}


def test_tier_words_are_the_plants_tiers():
    assert TIERS == {t.label: int(t) for t in (Tier.BLUE, Tier.YELLOW, Tier.ORANGE, Tier.RED)}


def _calls(node) -> list[Call]:
    return [n for n in walk(node) if isinstance(n, Call)]


# --- rules in the plant file --------------------------------------------------------------------------------

def test_the_demo_plant_ships_rules_for_the_issues_examples():
    plant = load_plant(DEMO)
    rules = {r.id: r for r in plant.rules}
    assert set(rules) == {FAN_RULE, RESTART_RULE, "cast1.shared_pump_starved", H2S_RULE, DEFROST_RULE,
                          "nh3.defrost_pressure_shocks"}
    points = plant.point_map()
    for r in plant.rules:
        assert references(r.condition) <= set(points), r.id
        assert r.area in plant.area_map() and r.name and r.name_en
    assert rules[FAN_RULE].level == Tier.RED and rules[DEFROST_RULE].level == Tier.ORANGE


def bad_rule_file(tmp_path: Path, *rules: dict, points: list[dict] | None = None) -> Path:
    raw = {**RAW, "rules": [*RAW["rules"], *rules]}
    if points is not None:
        raw["points"] = points
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def rule(rule_id: str, when: str, **more) -> dict:
    return {"id": rule_id, "name": "测试规则", "area": "dust1", "tier": "red", "when": when, **more}


def test_a_misspelt_point_in_a_rule_is_reported_at_its_key_path_with_its_column(tmp_path):
    path = bad_rule_file(tmp_path, rule("dust1.typo", "dust1.production >= 0.5 and dust1.fann_on < 0.5"))
    with pytest.raises(ConfigError) as e:
        load_plant(path)
    assert e.value.problems == [f"rules[{len(RAW['rules'])}] (id=dust1.typo).when: unknown point 'dust1.fann_on'; "
                                f"did you mean 'dust1.fan_on'? (col 29)"]


def test_every_rule_mistake_is_reported_at_once_with_a_point_mistake(tmp_path):
    points = [dict(p) for p in RAW["points"]]
    points[0]["on_dealy_s"] = 5
    n = len(RAW["rules"])
    path = bad_rule_file(
        tmp_path,
        rule("dust1.fan_on", "dust1.production"),                               # a point's id
        rule("r.area", "dust1.production", area="dust9"),                        # no such area
        rule("r.number", "dust1.hopper_t and dust1.production"),                 # not a 0/1 status point
        rule("r.limit", "cast1.water_q < limit(cast1.water_q, red)"),            # only low limits there
        rule("r.syntax", "dust1.production and fan_on("),
        rule("r.rose", "rose(dust1.production)", for_s=10),                     # a moment never lasts 10 s
        rule("r.area2", "any_alarm(dust2, red)"),
        points=points)
    with pytest.raises(ConfigError) as e:
        load_plant(path)
    problems = e.value.problems
    for fragment in (
            "points[0] (id=dust1.hopper_t).on_dealy_s: unknown key",
            f"rules[{n}] (id=dust1.fan_on).id: rule id 'dust1.fan_on' is also a point id",
            f"rules[{n + 1}] (id=r.area).area: area 'dust9' is not in areas (cast1, cast2, dust1, nh3, steel1, sump1)",
            f"rules[{n + 2}] (id=r.number).when: dust1.hopper_t is not a 0/1 status point: compare it",
            f"rules[{n + 3}] (id=r.limit).when: cast1.water_q has no high red limit (high limits: none; "
            f"limit() reads the high side, low_limit() the low) (col 17)",
            f"rules[{n + 4}] (id=r.syntax).when: unknown function 'fan_on'",
            f"rules[{n + 5}] (id=r.rose): the condition uses rose(), true for one moment only",
            f"rules[{n + 6}] (id=r.area2).when: unknown area 'dust2'"):
        assert any(p.startswith(fragment) for p in problems), (fragment, problems)
    assert len(problems) == 8, problems


def test_rule_ids_are_unique(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_plant(bad_rule_file(tmp_path, rule(FAN_RULE, "dust1.production")))
    assert e.value.problems == [f"rules: duplicate rule id '{FAN_RULE}'"]


def test_check_config_reports_a_broken_rule_and_exits_1(tmp_path):
    path = bad_rule_file(tmp_path, rule("dust1.typo", "dust1.production and not dust1.fann_on"))
    result = subprocess.run([sys.executable, "-m", "riskwatch", "check-config", str(path)], cwd=ROOT,
                            capture_output=True, encoding="utf-8", timeout=120)
    assert result.returncode == 1
    assert f"{path}: rules[{len(RAW['rules'])}] (id=dust1.typo).when: unknown point 'dust1.fann_on'" in result.stderr
    assert "(col 26)" in result.stderr and "Traceback" not in result.stderr


def test_rules_built_in_code_are_checked_against_the_plant_too():
    plant = load_plant(DEMO)
    with pytest.raises(ValueError, match="unknown point 'nowhere'"):
        Plant(**{**plant.model_dump(exclude={"rules"}),
                 "rules": [CompositeRule(id="r", name="r", area="dust1", tier="red", when="nowhere > 1")]})


def test_a_scaled_plant_copies_every_rule_onto_its_own_copy_of_the_points():
    plant = load_plant(DEMO).scaled(3)
    assert len(plant.rules) == 3 * len(load_plant(DEMO).rules)
    copy = {r.id: r for r in plant.rules}[f"{DEFROST_RULE}~2"]
    assert copy.when == "nh3.defrost~2 and count(nh3.room_ppm~2 > 25, 10min) >= 3"
    ids = {p.id for p in plant.points}
    assert all(references(r.condition) <= ids for r in plant.rules)
    restarted = {r.id: r for r in plant.rules}[f"{RESTART_RULE}~1"]
    assert restarted.when == ("rose(dust1.production~1) and (any_alarm(dust1, red) or "
                              "count(not any_alarm(dust1, red), 1h) >= 1)")  # areas are not copied
    Plant.model_validate(plant.model_dump())  # and the copy is a valid plant


# --- the plant's stories --------------------------------------------------------------------------------------

def plant_of(points: list[str], rules: list[str] = (), extra: list[dict] = ()) -> Plant:
    """A slice of the demo plant: these points, these of its rules and any extra ones."""
    return parse_plant({**RAW, "points": [p for p in RAW["points"] if p["id"] in points],
                        "rules": [r for r in RAW["rules"] if r["id"] in rules] + list(extra)})


Signal = Callable[[np.ndarray], np.ndarray]  # seconds since T0 -> value (NaN: no reading then)


class Story:
    """Readings once a second, in batches, through the pipeline's detect_groups, a tick after every batch."""

    def __init__(self, plant: Plant):
        points = plant.point_map()
        self.plant = plant
        self.detectors = [ThresholdDetector(points), StaleDetector(points, T0), CompositeDetector(plant)]
        self.found: list[Finding] = []

    def run(self, signals: dict[str, Signal], start_s: float, end_s: float, batch_s: float = 10.0) -> "Story":
        for a in np.arange(start_s, end_s, batch_s):
            s = np.arange(a, min(a + batch_s, end_s))
            groups = []
            for pid, signal in signals.items():
                v = np.broadcast_to(np.asarray(signal(s), float), s.shape)
                keep = ~np.isnan(v)
                if keep.any():
                    groups.append((pid, T0 + s[keep], T0 + s[keep], v[keep].copy()))
            self.found += detect_groups(self.detectors, groups)
            self.found += tick_all(self.detectors, T0 + s[-1] + 0.5)
        return self

    def composite(self) -> list[tuple[str, str, float]]:
        return [(f.point.removeprefix("rule:"), f.tier.name, round(f.ts - T0, 3)) for f in self.found
                if f.rule == "composite"]

    def state(self) -> list[dict]:
        return json.loads(json.dumps([d.state() for d in self.detectors]))


def step(at: float, before: float, after: float) -> Signal:
    return lambda s: np.where(s < at, before, after)


def spikes(at: list[float], high: float = 30.0, base: float = 10.0, width: float = 3.0) -> Signal:
    return lambda s: np.where(np.any([(s >= a) & (s < a + width) for a in at], axis=0), high, base)


FAN_STOPS = {"dust1.production": lambda s: 1.0, "dust1.fan_on": lambda s: np.where((s >= 100) & (s < 200), 0.0, 1.0)}


def test_the_dust_fan_stopping_while_grinding_continues_is_red_after_10_s_and_clears_30_s_after_it_restarts():
    story = Story(plant_of(["dust1.production", "dust1.fan_on"], [FAN_RULE])).run(FAN_STOPS, 0, 300)
    assert story.composite() == [(FAN_RULE, "RED", 110.0), (FAN_RULE, "NORMAL", 230.0)]
    raised, cleared = [f for f in story.found if f.rule == "composite"]
    assert raised.reason_zh == "除尘风机停机但打磨仍在进行（生产运行=1，风机运行=0，已持续 10 秒）"
    assert raised.reason_en == ("Dust fan stopped while grinding continues (Production running=1, Fan running=0, "
                                "for 10 s)")
    assert cleared.reason_zh == "除尘风机停机但打磨仍在进行已恢复（生产运行=1，风机运行=1）"
    assert cleared.reason_en.startswith("Dust fan stopped while grinding continues cleared")
    assert raised.area == "dust1" and raised.point == f"rule:{FAN_RULE}" and raised.value is None


def test_the_fan_stopping_after_production_stopped_is_no_alarm_and_a_stop_shorter_than_for_s_neither():
    signals = {"dust1.production": step(50, 1.0, 0.0), "dust1.fan_on": step(100, 1.0, 0.0)}
    assert Story(plant_of(["dust1.production", "dust1.fan_on"], [FAN_RULE])).run(signals, 0, 300).composite() == []
    blip = {"dust1.production": lambda s: 1.0, "dust1.fan_on": lambda s: np.where((s >= 100) & (s < 109), 0.0, 1.0)}
    assert Story(plant_of(["dust1.production", "dust1.fan_on"], [FAN_RULE])).run(blip, 0, 300).composite() == []


@pytest.mark.parametrize("batch_s", [1.0, 7.0, 60.0, 300.0])
def test_when_a_rule_fires_does_not_depend_on_how_the_readings_are_batched(batch_s):
    story = Story(plant_of(["dust1.production", "dust1.fan_on"], [FAN_RULE])).run(FAN_STOPS, 0, 300, batch_s)
    assert story.composite() == [(FAN_RULE, "RED", 110.0), (FAN_RULE, "NORMAL", 230.0)]


def test_people_inside_the_sump_with_h2s_above_its_yellow_limit_is_red():
    plant = plant_of(["sump1.people", "sump1.h2s"], [H2S_RULE])
    h2s = lambda s: np.where((s >= 100) & (s < 200), 9.0, 1.0)  # noqa: E731 - yellow limit is 7 ppm
    story = Story(plant).run({"sump1.people": step(50, 0.0, 2.0), "sump1.h2s": h2s}, 0, 400)
    assert story.composite() == [(H2S_RULE, "RED", 102.0), (H2S_RULE, "NORMAL", 260.0)]
    raised = next(f for f in story.found if f.rule == "composite")
    assert raised.reason_zh == "有人在有限空间内且硫化氢超标（作业人数=2人，硫化氢浓度=9ppm，已持续 2 秒）"
    assert [(f.rule, f.tier.name) for f in story.found if f.point == "sump1.h2s"][0] == ("high", "YELLOW")
    nobody = Story(plant).run({"sump1.people": lambda s: 0.0, "sump1.h2s": h2s}, 0, 400)
    assert nobody.composite() == [] and any(f.point == "sump1.h2s" for f in nobody.found)


def test_production_restarted_while_a_red_alarm_is_active_in_its_area_is_red_for_off_delay():
    plant = plant_of(["dust1.production", "dust1.hopper_t", "sump1.h2s"], [RESTART_RULE])
    production = lambda s: np.where((s >= 60) & (s < 200), 0.0, 1.0)  # noqa: E731 - stopped, then restarted
    story = Story(plant).run({"dust1.production": production, "dust1.hopper_t": lambda s: 90.0,
                              "sump1.h2s": lambda s: 1.0}, 0, 600)
    assert ("dust1.hopper_t", "high", Tier.RED) in [(f.point, f.rule, f.tier) for f in story.found]
    assert story.composite() == [(RESTART_RULE, "RED", 200.0), (RESTART_RULE, "NORMAL", 500.0)]
    raised = next(f for f in story.found if f.rule == "composite")
    assert raised.reason_zh == "红色报警期间或解除后1小时内恢复生产（生产运行=1，红色及以上报警：灰斗温度）"
    assert raised.reason_en.endswith("(Production running=1, red or higher alarm: Ash hopper temperature)")
    # the same restart with the hopper cool, or with the red alarm in another area: nothing
    cool = Story(plant).run({"dust1.production": production, "dust1.hopper_t": lambda s: 40.0,
                             "sump1.h2s": lambda s: 30.0}, 0, 600)
    assert ("sump1.h2s", "high", Tier.RED) in [(f.point, f.rule, f.tier) for f in cool.found]
    assert cool.composite() == []


@pytest.mark.parametrize("restart_after_clear_s, raised", [(1800, True), (3500, True), (3700, False)])
def test_a_restart_within_an_hour_after_a_red_alarm_ended_is_red_too(restart_after_clear_s, raised):
    plant = plant_of(["dust1.production", "dust1.hopper_t"], [RESTART_RULE])
    hot = Story(plant).run({"dust1.production": step(60, 1.0, 0.0), "dust1.hopper_t": step(600, 90.0, 40.0)}, 0, 700)
    cleared = next(f.ts - T0 for f in hot.found if f.point == "dust1.hopper_t" and f.tier == Tier.NORMAL)
    restart = cleared + restart_after_clear_s
    production = lambda s: np.where((s >= 60) & (s < restart), 0.0, 1.0)  # noqa: E731
    story = Story(plant).run({"dust1.production": production, "dust1.hopper_t": step(600, 90.0, 40.0)}, 0, 5000)
    assert [c[1:] for c in story.composite()][:1] == ([("RED", restart)] if raised else [])
    if raised:
        assert "1 小时内 1 次" in next(f for f in story.found if f.rule == "composite").reason_zh


def test_three_nh3_excursions_within_10_min_during_hot_gas_defrost_raise_orange():
    plant = plant_of(["nh3.room_ppm", "nh3.defrost"], [DEFROST_RULE])
    three = spikes([100, 200, 300])
    story = Story(plant).run({"nh3.defrost": lambda s: 1.0, "nh3.room_ppm": three}, 0, 1500)
    # the first excursion leaves the 10 min window at 700 s; 600 s later the alert clears
    assert story.composite() == [(DEFROST_RULE, "ORANGE", 300.0), (DEFROST_RULE, "NORMAL", 1300.0)]
    raised = next(f for f in story.found if f.rule == "composite")
    assert raised.reason_zh == "热氨融霜期间氨浓度反复超标（热氨融霜进行中=1，机房氨气浓度=30ppm，10 分钟内 3 次）"
    assert raised.reason_en.endswith("(Hot-gas defrost active=1, NH3 in machine room=30 ppm, 3 times in 10 min)")
    no_defrost = Story(plant).run({"nh3.defrost": lambda s: 0.0, "nh3.room_ppm": three}, 0, 1500)
    two = Story(plant).run({"nh3.defrost": lambda s: 1.0, "nh3.room_ppm": spikes([100, 200])}, 0, 1500)
    spread = Story(plant).run({"nh3.defrost": lambda s: 1.0, "nh3.room_ppm": spikes([0, 400, 800])}, 0, 1500)
    assert no_defrost.composite() == two.composite() == spread.composite() == []
    assert all(f.rule == "stale" or f.point != "nh3.room_ppm" for f in story.found)  # 30 ppm is below its limits


def test_a_rule_never_fires_on_missing_data_and_holds_its_tier_while_its_data_is_missing():
    plant = plant_of(["dust1.production", "dust1.fan_on"], [FAN_RULE])
    never_heard = Story(plant).run({"dust1.production": lambda s: 1.0}, 0, 300)
    assert never_heard.composite() == []
    assert [(f.point, f.rule) for f in never_heard.found] == [("dust1.fan_on", "stale")]  # silence has its alarm
    silent = {"dust1.production": lambda s: 1.0, "dust1.fan_on": lambda s: np.where(s < 50, 0.0, np.nan)}
    assert Story(plant).run(silent, 0, 300).composite() == [(FAN_RULE, "RED", 10.0)]  # raised, never cleared
    back = {"dust1.production": lambda s: 1.0,
            "dust1.fan_on": lambda s: np.where(s < 50, 0.0, np.where(s < 200, np.nan, 1.0))}
    assert Story(plant).run(back, 0, 300).composite() == [(FAN_RULE, "RED", 10.0), (FAN_RULE, "NORMAL", 230.0)]


def test_a_silence_inside_the_on_delay_restarts_it():
    plant = plant_of(["dust1.production", "dust1.fan_on"],
                     extra=[rule("dust1.fan_off_1min", "dust1.production and not dust1.fan_on", for_s=60)])
    off = {"dust1.production": lambda s: 1.0, "dust1.fan_on": step(100, 1.0, 0.0)}
    assert Story(plant).run(off, 0, 300).composite() == [("dust1.fan_off_1min", "RED", 160.0)]
    gap = {"dust1.production": lambda s: 1.0,
           "dust1.fan_on": lambda s: np.where(s < 100, 1.0, np.where((s >= 103) & (s < 125), np.nan, 0.0))}
    # fan off at 100, then silent from 103: unknown after its stale limit (15 s); heard again at 125, the
    # minute starts again there
    assert Story(plant).run(gap, 0, 300).composite() == [("dust1.fan_off_1min", "RED", 185.0)]


def test_division_by_zero_is_unknown_and_unknown_is_not_true():
    extra = [rule("dust1.ratio", "dust1.fan_on / (dust1.production - 1) < 5 or not dust1.fan_on"),
             rule("dust1.either", "dust1.fan_on / (dust1.production - 1) < 5 or dust1.production")]
    story = Story(plant_of(["dust1.production", "dust1.fan_on"], extra=extra)).run(
        {"dust1.production": lambda s: 1.0, "dust1.fan_on": lambda s: 1.0}, 0, 30)
    assert story.composite() == [("dust1.either", "RED", 0.0)]  # unknown or true = true; unknown or false: unknown


def test_held_and_age_come_due_between_readings_on_the_tick():
    extra = [rule("dust1.held", "held(dust1.production and not dust1.fan_on, 1min)"),
             rule("dust1.fan_current_old", "dust1.production and age(dust1.fan_a) > 30s", tier="yellow")]
    plant = plant_of(["dust1.production", "dust1.fan_on", "dust1.fan_a"], extra=extra)
    signals = {"dust1.production": lambda s: 1.0, "dust1.fan_on": step(100, 1.0, 0.0),
               "dust1.fan_a": lambda s: np.where(s < 20, 40.0, np.nan)}
    story = Story(plant).run(signals, 0, 300)
    # fan current last heard at 19 s: older than 30 s at the tick of 49.5 s; the fan stopped at 100 s
    assert story.composite() == [("dust1.fan_current_old", "YELLOW", 49.5), ("dust1.held", "RED", 160.0)]


def test_alarm_of_a_point_reads_its_highest_active_tier_and_one_rules():
    extra = [rule("sump1.h2s_alarm_inside", 'sump1.people >= 1 and alarm(sump1.h2s) >= orange', area="sump1"),
             rule("sump1.h2s_low_rule", 'alarm(sump1.h2s, "low") > 0', area="sump1")]
    plant = plant_of(["sump1.people", "sump1.h2s"], extra=extra)
    h2s = lambda s: np.where((s >= 100) & (s < 200), 12.0, 1.0)  # noqa: E731 - orange 10 ppm, on-delay 2 s
    story = Story(plant).run({"sump1.people": lambda s: 1.0, "sump1.h2s": h2s}, 0, 400)
    # h2s returns below its limits at 200; the threshold's off-delay (60 s) clears it at 260, and the rule with it
    assert story.composite() == [("sump1.h2s_alarm_inside", "RED", 102.0), ("sump1.h2s_alarm_inside", "NORMAL", 260.0)]


def test_state_saved_mid_story_and_restored_gives_the_same_findings():
    plant = plant_of(["dust1.production", "dust1.fan_on", "nh3.room_ppm", "nh3.defrost"], [FAN_RULE, DEFROST_RULE])
    signals = {**FAN_STOPS, "nh3.defrost": lambda s: 1.0, "nh3.room_ppm": spikes([100, 200, 300])}
    whole = Story(plant).run(signals, 0, 1500)
    assert len(whole.composite()) == 4
    for cut in (105.0, 250.0, 302.0):  # inside the on-delay; two excursions counted; alert up and counting
        first = Story(plant).run(signals, 0, cut)
        second = Story(plant)
        for d, s in zip(second.detectors, first.state()):
            d.restore(s)
        second.run(signals, cut, 1500)
        assert [_key(f) for f in first.found + second.found] == [_key(f) for f in whole.found], cut


def test_a_redelivered_batch_raises_nothing_twice():
    plant = plant_of(["dust1.production", "dust1.fan_on"], [FAN_RULE])
    d = CompositeDetector(plant)
    ts = T0 + np.arange(0.0, 30.0)
    groups = [("dust1.production", ts, np.ones(30)), ("dust1.fan_on", ts, np.zeros(30))]
    first = d.feed_joint(groups, [])
    assert [(f.tier, f.ts - T0) for f in first] == [(Tier.RED, 10.0)]
    assert d.feed_joint(groups, []) == []
    assert d.feed_joint([(p, ts[:5], v[:5]) for p, _, v in groups], []) == []
    assert d.tick(T0 + 30) == []


def test_a_composite_alert_lands_in_its_area_in_the_alert_book_and_survives_a_restart():
    plant = plant_of(["dust1.production", "dust1.fan_on"], [FAN_RULE])
    book = AlertBook(":memory:", plant.point_map())
    story = Story(plant).run(FAN_STOPS, 0, 150)
    book.apply(story.found)
    (alert,) = [a for a in book.listed() if a.rule == "composite"]
    assert (alert.point, alert.area, alert.tier, alert.state) == (f"rule:{FAN_RULE}", "dust1", Tier.RED, "active")
    assert alert.reason_zh.startswith("除尘风机停机但打磨仍在进行（")
    # a restart without the detector's state: the book tells where the rule stands, so nothing is raised twice
    again = Story(plant)
    for (point, rule_name), tier in book.open_tiers().items():
        for d in again.detectors:
            d.assume(point, rule_name, tier)
    again.run(FAN_STOPS, 150, 300)
    assert again.composite() == [(FAN_RULE, "NORMAL", 230.0)]
    book.apply(again.found)
    assert [a.state for a in book.listed() if a.rule == "composite"] == ["cleared"]


def test_the_alert_book_tells_a_fresh_detector_which_alarms_are_active():
    plant = plant_of(["dust1.production", "dust1.hopper_t"], [RESTART_RULE])
    story = Story(plant)
    story.detectors[2].assume("dust1.hopper_t", "high", Tier.RED)  # red since before the restart
    production = step(100, 0.0, 1.0)
    story.run({"dust1.production": production, "dust1.hopper_t": lambda s: 90.0}, 0, 200)
    assert story.composite()[0] == (RESTART_RULE, "RED", 100.0)


def test_a_first_reading_or_a_return_from_silence_is_not_a_restart():
    plant = plant_of(["dust1.production", "dust1.hopper_t"], [RESTART_RULE])
    hot = {"dust1.hopper_t": lambda s: 90.0}
    first_heard_running = Story(plant).run({**hot, "dust1.production": lambda s: np.where(s < 30, np.nan, 1.0)},
                                           0, 200)
    back_from_silence = Story(plant).run(
        {**hot, "dust1.production": lambda s: np.where(s < 30, 0.0, np.where(s < 100, np.nan, 1.0))}, 0, 200)
    assert first_heard_running.composite() == back_from_silence.composite() == []


def test_rules_see_each_others_alerts_without_looping_on_each_other():
    # each rule's alert changes the other's condition: a later rule (in file order) sees an earlier one's alert
    # at once, an earlier one sees a later one's only at its own next evaluation, so no moment loops forever
    extra = [rule("dust1.a", "dust1.production and not any_alarm(cast1, red)"),
             rule("cast1.b", "any_alarm(dust1, red)", area="cast1")]  # woken by alerts only
    plant = plant_of(["dust1.production"], extra=extra)
    d = CompositeDetector(plant)
    found: list[Finding] = []
    worker = threading.Thread(target=lambda: found.extend(
        d.feed_joint([("dust1.production", T0 + np.arange(3.0), np.ones(3))], [])), daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "evaluation looped"
    assert [(f.point, f.tier.name, f.ts - T0) for f in found] == [("rule:dust1.a", "RED", 0.0),
                                                                    ("rule:cast1.b", "RED", 0.0)]


def _key(f: Finding) -> tuple:
    return f.point, f.rule, f.tier, round(f.ts, 6), f.reason_zh, f.reason_en
