"""A plant's configuration: the shipped demo plant, standard presets under each point, and every mistake a safety
engineer can make in the file reported with the file, the key path and what is wrong."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from config.load import DEMO, ConfigError, load_plant, load_standards, parse_plant
from config.model import Sector, Tier

ROOT = Path(__file__).resolve().parents[1]
SKIPPED_PRESET_KEYS = ("standard", "note")


def write_plant(tmp_path: Path, points: list[dict], areas: list[dict] | None = None, name: str = "plant.yaml",
                **extra) -> Path:
    raw = {"site": "test", "name": "测试工厂",
           "areas": areas if areas is not None else [
               {"id": "dust1", "name": "抛光车间除尘系统", "sector": "dust"},
               {"id": "sump1", "name": "污水池有限空间", "sector": "confined_space"}],
           "points": points, **extra}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def hopper(**overrides) -> dict:
    return {"id": "dust1.hopper_t", "name": "灰斗温度", "area": "dust1", "kind": "hopper_temp", **overrides}


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_plant(path)
    assert caught.value.path == str(path)
    for line in str(caught.value).splitlines():
        assert line.startswith(f"{path}: "), line  # every line names the file
    return caught.value.problems


def one_problem(path: Path) -> str:
    problems = problems_of(path)
    assert len(problems) == 1, problems
    return problems[0]


# --- the shipped plant --------------------------------------------------------------------------------------

def test_the_demo_plant_loads_with_an_area_from_every_sector_and_two_pits_sharing_water():
    plant = load_plant(DEMO)
    assert plant.site == "demo" and plant.name == "示范工厂"
    assert len(plant.areas) == 6
    assert {a.sector for a in plant.areas} == set(Sector)
    assert [a.id for a in plant.areas if a.sector == Sector.ALUMINIUM_CASTING] == ["cast1", "cast2"]
    assert len(plant.points) == 37
    assert {p.area for p in plant.points} == {a.id for a in plant.areas}  # every area has points


def test_every_demo_point_with_a_kind_inherits_its_standard_preset():
    plant = load_plant(DEMO).point_map()
    raw_points = yaml.safe_load(DEMO.read_text(encoding="utf-8"))["points"]
    standards = load_standards()
    checked = 0
    for raw in raw_points:
        if "kind" not in raw:
            continue
        point = plant[raw["id"]]
        for key, preset in standards[raw["kind"]].items():
            if key in SKIPPED_PRESET_KEYS:
                continue
            if key in ("high", "low"):
                want = {**preset, **(raw.get(key) or {})}
                assert getattr(point, key).model_dump(exclude_none=True) == want, (raw["id"], key)
            elif key in ("rate", "forecast", "stuck", "glitch") and key not in raw:  # detector blocks: the preset, validated
                got = getattr(point, key)
                assert got == type(got).model_validate(preset), (raw["id"], key)
            elif key not in raw:
                got = getattr(point, key)
                assert (list(got) if key == "range" else got) == preset, (raw["id"], key)
            checked += 1
    assert checked > 100


def test_the_interlock_grade_casting_points_inherit_interlock_from_their_presets():
    plant = load_plant(DEMO).point_map()
    assert {p.id for p in plant.values() if p.interlock} == {
        "cast1.water_p", "cast1.water_q", "cast1.level", "cast1.block_dev", "cast2.water_p", "cast2.water_q", "cast2.level"}


@pytest.mark.parametrize("kind", sorted(load_standards()))
def test_every_standard_preset_makes_a_valid_point_on_its_own(tmp_path, kind):
    plant = load_plant(write_plant(tmp_path, [{"id": "dust1.x", "name": "测点", "area": "dust1", "kind": kind}]))
    assert plant.points[0].unit == load_standards()[kind]["unit"]


def test_a_point_overrides_its_preset_and_its_limits_merge_tier_by_tier(tmp_path):
    path = write_plant(tmp_path, [hopper(high={"red": 90}, on_delay_s=10, interval_s=2)])
    point = load_plant(path).points[0]
    assert point.high.by_tier() == [(Tier.BLUE, 50), (Tier.YELLOW, 60), (Tier.ORANGE, 70), (Tier.RED, 90)]
    assert (point.on_delay_s, point.interval_s) == (10, 2)  # the point's own keys win
    assert (point.unit, point.range, point.deadband, point.off_delay_s) == ("℃", (-40, 400), 2, 30)  # the rest inherited


def test_a_point_without_a_kind_needs_nothing_from_the_presets(tmp_path):
    path = write_plant(tmp_path, [{"id": "sump1.people", "name": "作业人数", "area": "sump1", "unit": "人",
                                   "range": [0, 20], "interval_s": 5}])
    point = load_plant(path).points[0]
    assert point.high is None and point.low is None and point.stale_factor == 3.0


# --- one mistake at a time ----------------------------------------------------------------------------------

def test_an_unknown_kind_is_reported_with_the_kinds_that_exist(tmp_path):
    problem = one_problem(write_plant(tmp_path, [hopper(kind="hoper_temp")]))
    assert problem.startswith("points[0] (id=dust1.hopper_t).kind: unknown kind 'hoper_temp'")
    assert "hopper_temp" in problem and "o2_pct" in problem


def test_a_duplicate_point_id_is_reported(tmp_path):
    problem = one_problem(write_plant(tmp_path, [hopper(), hopper(name="另一个灰斗")]))
    assert "duplicate point id 'dust1.hopper_t'" in problem


def test_a_duplicate_area_id_is_reported(tmp_path):
    areas = [{"id": "dust1", "name": "除尘", "sector": "dust"}, {"id": "dust1", "name": "除尘二", "sector": "dust"}]
    assert "duplicate area id 'dust1'" in one_problem(write_plant(tmp_path, [hopper()], areas=areas))


def test_a_point_in_an_area_that_does_not_exist_is_reported_with_the_areas_that_do(tmp_path):
    problem = one_problem(write_plant(tmp_path, [hopper(area="dust9")]))
    assert "dust1.hopper_t" in problem and "'dust9'" in problem and "dust1, sump1" in problem


def test_limits_out_of_order_are_reported_with_the_order_wanted(tmp_path):
    problem = one_problem(write_plant(tmp_path, [hopper(high={"yellow": 75, "orange": 72})]))
    assert problem.startswith("points[0] (id=dust1.hopper_t)")
    assert ".high: limits must be strictly ordered blue < yellow < orange < red" in problem


def test_low_limits_must_fall_as_the_tier_rises(tmp_path):
    o2 = {"id": "sump1.o2", "name": "氧气浓度", "area": "sump1", "kind": "o2_pct", "low": {"orange": 17.0}}
    problem = one_problem(write_plant(tmp_path, [o2]))  # orange 17 now lies below red 18
    assert problem.startswith("points[0] (id=sump1.o2)") and ".low: limits must be strictly ordered" in problem


def test_a_limit_outside_the_sensors_physical_range_is_reported(tmp_path):
    problem = one_problem(write_plant(tmp_path, [hopper(high={"red": 450})]))
    assert problem.startswith("points[0] (id=dust1.hopper_t)")
    assert ".high: limit 450.0 lies outside the physical range [-40.0, 400.0]" in problem


def test_a_high_limit_below_a_low_limit_is_reported(tmp_path):
    dp = {"id": "dust1.dp", "name": "进出口压差", "area": "dust1", "kind": "baghouse_dp", "low": {"blue": 1800}}
    assert "every high limit must lie above every low limit" in one_problem(write_plant(tmp_path, [dp]))


def test_a_misspelt_key_on_a_point_is_reported_as_an_unknown_key_at_its_path(tmp_path):
    problem = one_problem(write_plant(tmp_path, [hopper(on_dealy_s=10)]))
    assert problem == "points[0] (id=dust1.hopper_t).on_dealy_s: unknown key (check its spelling)"


def test_a_misspelt_tier_inside_limits_is_reported_at_its_path(tmp_path):
    problem = one_problem(write_plant(tmp_path, [hopper(high={"rde": 90})]))
    assert problem == "points[0] (id=dust1.hopper_t).high.rde: unknown key (check its spelling)"


def test_a_misspelt_top_level_section_is_reported(tmp_path):
    problem = one_problem(write_plant(tmp_path, [hopper()], brokr={"host": "mqtt.local"}))
    assert problem == "brokr: unknown key (check its spelling)"


def test_invalid_yaml_is_reported_with_its_line_and_column(tmp_path):
    path = tmp_path / "plant.yaml"
    path.write_text("site: test\nname: 测试工厂\nareas:\n  - {id: dust1, name: 除尘, sector: dust}\n"
                    "points:\n  - id: a\n   name: broken indentation\n", encoding="utf-8")
    problem = one_problem(path)
    assert problem.startswith("line 7, column 4: not valid YAML"), problem


def test_a_file_that_is_not_a_mapping_is_reported(tmp_path):
    path = tmp_path / "plant.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    assert "top level must be a mapping" in one_problem(path)


def test_a_missing_file_is_reported_as_not_found(tmp_path):
    assert one_problem(tmp_path / "nowhere.yaml") == "file not found"


def test_a_file_saved_in_gbk_by_a_chinese_windows_editor_is_a_configuration_error_not_a_crash(tmp_path):
    path = tmp_path / "plant.yaml"
    path.write_bytes("site: test\nname: 测试工厂\nareas: []\npoints: []\n".encode("gbk"))
    problems_of(path)


def test_a_token_read_from_a_missing_environment_variable_is_reported(tmp_path, monkeypatch):
    monkeypatch.delenv("RW_TEST_OPERATOR_TOKEN", raising=False)
    users = [{"name": "张工", "role": "operator", "token": "env:RW_TEST_OPERATOR_TOKEN"}]
    problem = one_problem(write_plant(tmp_path, [hopper()], users=users))
    assert problem == "users[0].token: environment variable RW_TEST_OPERATOR_TOKEN is not set"


def test_a_token_read_from_the_environment_is_used_and_never_the_env_reference(tmp_path, monkeypatch):
    monkeypatch.setenv("RW_TEST_OPERATOR_TOKEN", "operator-token-0123456789")
    users = [{"name": "张工", "role": "operator", "token": "env:RW_TEST_OPERATOR_TOKEN"}]
    plant = load_plant(write_plant(tmp_path, [hopper()], users=users))
    assert plant.users[0].token == "operator-token-0123456789"


def test_a_short_token_is_refused(tmp_path):
    users = [{"name": "张工", "role": "operator", "token": "short"}]
    assert one_problem(write_plant(tmp_path, [hopper()], users=users)).startswith("users[0].token:")


# --- every mistake at once ------------------------------------------------------------------------------------

def several_field_mistakes(tmp_path: Path) -> Path:
    areas = [{"id": "dust1", "name": "除尘", "sector": "dusty"},
             {"id": "sump1", "name": "污水池", "sector": "confined_space"}]
    points = [
        hopper(on_dealy_s=10),
        {"id": "dust1.inlet_t", "name": "进口温度", "area": "dust1", "kind": "duct_temp",
         "high": {"yellow": 75, "orange": 72}},
        {"id": "sump1.o2", "name": "氧气浓度", "area": "sump1", "kind": "o2_pct", "low": {"red": -1}},
        {"id": "sump1.h2s", "name": "硫化氢浓度", "area": "sump1", "kind": "h2s_ppm", "high": {"bleu": 3}},
    ]
    return write_plant(tmp_path, points, areas=areas, name="bad plant.yaml")


def test_several_mistakes_in_different_places_are_all_reported_at_once(tmp_path):
    problems = problems_of(several_field_mistakes(tmp_path))
    assert len(problems) == 5, problems
    text = "\n".join(problems)
    assert "areas[0] (id=dust1).sector:" in text
    assert "points[0] (id=dust1.hopper_t).on_dealy_s: unknown key" in text
    assert "points[1] (id=dust1.inlet_t).high: limits must be strictly ordered" in text
    assert "points[2] (id=sump1.o2).low: limit -1.0 lies outside the physical range" in text
    assert "points[3] (id=sump1.h2s).high.bleu: unknown key" in text


def test_a_point_in_a_missing_area_is_reported_alongside_a_limit_mistake_in_another_point(tmp_path):
    points = [hopper(area="dust9"),
              {"id": "dust1.inlet_t", "name": "进口温度", "area": "dust1", "kind": "duct_temp",
               "high": {"yellow": 75, "orange": 72}}]
    text = "\n".join(problems_of(write_plant(tmp_path, points)))
    assert "strictly ordered" in text
    assert "'dust9'" in text


def test_a_duplicate_point_id_is_reported_alongside_a_misspelt_key_elsewhere(tmp_path):
    points = [hopper(), hopper(name="另一个灰斗"),
              {"id": "sump1.o2", "name": "氧气浓度", "area": "sump1", "kind": "o2_pct", "deadbnad": 0.3}]
    text = "\n".join(problems_of(write_plant(tmp_path, points)))
    assert "deadbnad: unknown key" in text
    assert "duplicate point id 'dust1.hopper_t'" in text


def test_an_unknown_kind_is_reported_alongside_a_misspelt_key_in_another_point(tmp_path):
    points = [hopper(kind="hoper_temp"),
              {"id": "sump1.o2", "name": "氧气浓度", "area": "sump1", "kind": "o2_pct", "deadbnad": 0.3}]
    text = "\n".join(problems_of(write_plant(tmp_path, points)))
    assert "unknown kind 'hoper_temp'" in text
    assert "points[1] (id=sump1.o2).deadbnad: unknown key" in text


# --- riskwatch check-config, as the engineer runs it ----------------------------------------------------------

def check_config(path: Path | str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "riskwatch", "check-config", str(path)], cwd=ROOT,
                          capture_output=True, encoding="utf-8", errors="replace", timeout=120)


def test_check_config_lists_every_problem_of_a_bad_file_and_exits_1(tmp_path):
    path = several_field_mistakes(tmp_path)
    result = check_config(path)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith(f"{path}: ")]
    assert len(lines) == 5, result.stderr
    for fragment in ("areas[0] (id=dust1).sector:",
                     "points[0] (id=dust1.hopper_t).on_dealy_s: unknown key (check its spelling)",
                     "points[1] (id=dust1.inlet_t).high: limits must be strictly ordered blue < yellow < orange < red",
                     "points[2] (id=sump1.o2).low: limit -1.0 lies outside the physical range [0.0, 30.0]",
                     "points[3] (id=sump1.h2s).high.bleu: unknown key (check its spelling)"):
        assert any(fragment in line for line in lines), (fragment, result.stderr)
    assert "Traceback" not in result.stderr


def test_check_config_on_a_missing_file_exits_1_naming_it(tmp_path):
    result = check_config(tmp_path / "nowhere.yaml")
    assert result.returncode == 1
    assert f"{tmp_path / 'nowhere.yaml'}: file not found" in result.stderr


def test_check_config_passes_the_shipped_demo_plant():
    result = check_config("config/demo.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "config/demo.yaml: OK, site demo (示范工厂), 6 areas, 37 points, 0 users"


def test_a_point_overrides_one_key_of_its_kinds_rate_rule_and_keeps_the_rest():
    raw = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    hopper = next(p for p in raw["points"] if p["id"] == "dust1.hopper_t")
    hopper["rate"] = {"on_delay_s": 5}
    point = parse_plant(raw).point_map()["dust1.hopper_t"]
    preset = load_standards()["hopper_temp"]["rate"]
    assert point.rate.on_delay_s == 5 and point.rate.window_s == preset["window_s"]
    assert point.rate.rise.yellow == preset["rise"]["yellow"]
