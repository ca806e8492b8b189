"""The scenario issue's bar, held by CI: `riskwatch eval --check` on the shipped default configuration."""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT


def test_every_accident_is_caught_in_time_and_normal_life_stays_quiet(tmp_path):
    out = tmp_path / "eval.json"
    run = subprocess.run([sys.executable, "-m", "riskwatch", "eval", "--check", "--json", str(out)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text(encoding="utf-8"))
    accidents = {s["name"] for s in result["scenarios"]}
    assert accidents >= {"kunshan", "changzhou", "qingyuan", "guangxi", "nantong", "wenshui", "chengdu",
                         "shanghai-ammonia"}
    for s in result["scenarios"]:
        assert s["detected"] and s["lead_time_s"] > 0 and s["tier_at_danger"] in ("orange", "red"), s["name"]
    normal = result["normal"]
    assert normal["hours"] >= 7 * 24 and normal["consoles"] == 6
    assert normal["alarms_per_10min_per_console"] <= 1 and normal["max_alarms_in_10min"] <= 10
    assert normal["chattering"] == 0 and normal["false_red"] == 0
    assert all(q["ok"] for q in result["quiet"])
    assert "bar: met" in run.stdout
